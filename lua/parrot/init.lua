-- parrot: the scenario API users see. `parrot.scenario`, the load builders, data feeders,
-- custom metrics, the environment, and the globals `check`, `think`, `sleep`, `transaction`.
local parrot = { VERSION = "0.1.0" }

-- The VU primitives; on the queen's state a stand-in whose functions raise a clear error.
-- Required lazily: the load thread registers the real one after this module loads.
local function need_core() return require "parrot.core" end

------------------------------------------------------------------------------------------------
-- units: "500ms", "30s", "5m", "1h", "1h30m", numbers are seconds; "10k" counts

local time_units = { us = 1e-6, ms = 1e-3, s = 1, m = 60, h = 3600, d = 86400 }

-- parrot.duration(v [, what]) -> seconds
function parrot.duration(v, what)
  if type(v) == "number" then return v end
  if type(v) ~= "string" then
    error(string.format("%s: expected a duration like 30s, got %s", what or "duration", tostring(v)), 2)
  end
  local total, rest = 0, v:gsub("%s+", "")
  if rest == "" then error((what or "duration") .. ": empty duration", 2) end
  while rest ~= "" do
    local num, unit, tail = rest:match("^([%d%.]+)(%a*)(.*)$")
    local n = tonumber(num or "")
    local mul = time_units[unit == "" and "s" or unit]
    if not n or not mul then
      error(string.format("%s: cannot read duration '%s' (use 500ms, 30s, 5m, 1h)", what or "duration", v), 2)
    end
    total, rest = total + n * mul, tail
  end
  return total
end

-- parrot.count(v [, what]) -> number; "10k" = 10000, "2M" = 2000000
function parrot.count(v, what)
  if type(v) == "number" then return v end
  local num, unit = tostring(v):match("^%s*([%d%.]+)%s*([kKmM]?)%s*$")
  local n = tonumber(num or "")
  if not n then error(string.format("%s: expected a number, got '%s'", what or "count", tostring(v)), 2) end
  local mul = ({ [""] = 1, k = 1e3, K = 1e3, m = 1e6, M = 1e6 })[unit]
  return n * mul
end

------------------------------------------------------------------------------------------------
-- warnings about the plan: printed once, by the queen's state (every load thread loads the same
-- scenario; only there does `parrot.core` lack `spawn`)

local function warn(msg)
  if rawget(require("parrot.core"), "spawn") == nil then io.stderr:write("parrot: warning: ", msg, "\n") end
end

------------------------------------------------------------------------------------------------
-- load models

-- A closed model given `iterations` runs until they are done, within this cap (k6's
-- max duration for iterations is 10 minutes too); reaching it first is warned about at the end.
parrot.ITERATIONS_CAP = 600

local duration_given = setmetatable({}, { __mode = "k" }) -- closed loads whose duration was written

local function stages_peak(stages)
  local peak = 0
  for _, st in ipairs(stages) do peak = math.max(peak, st.target) end
  return peak
end

-- parrot.closed{vus, duration, ramp, stages, iterations, graceful_stop}: a fixed population looping.
function parrot.closed(t)
  t = t or {}
  local l = { model = "closed", graceful_stop = t.graceful_stop }
  l.iterations = t.iterations and parrot.count(t.iterations, "closed.iterations")
  if t.stages then
    l.stages = {}
    for i, st in ipairs(t.stages) do
      l.stages[i] = { duration = parrot.duration(st.duration or st[1], "stages[" .. i .. "].duration"),
                      target = parrot.count(st.target or st[2], "stages[" .. i .. "].target") }
    end
    l.vus = stages_peak(l.stages) -- the most VUs at once (the stages never go past it)
  else
    l.vus = parrot.count(t.vus or 1, "closed.vus")
    duration_given[l] = t.duration ~= nil
    l.duration = parrot.duration(t.duration or (l.iterations and parrot.ITERATIONS_CAP or "10s"), "closed.duration")
    l.ramp = t.ramp and parrot.duration(t.ramp, "closed.ramp") or 0
  end
  return l
end

-- parrot.open{phases = {{rate | interarrival, duration, dist, max, count}}, max_users, users}:
-- Tsung's arrivals.
function parrot.open(t)
  t = t or {}
  local l = { model = "open", phases = {}, max_users = t.max_users and parrot.count(t.max_users, "open.max_users"),
              graceful_stop = t.graceful_stop, dist = t.dist or "poisson", users = {} }
  -- users = { {session = "name" | "prefix*", start = "30s"}, ... }: one user each at a set time
  for i, u in ipairs(t.users or {}) do
    if type(u.session) ~= "string" then error("users[" .. i .. "]: needs a session name", 2) end
    l.users[i] = { session = u.session, start = parrot.duration(u.start or 0, "users[" .. i .. "].start") }
  end
  for i, p in ipairs(t.phases or { t }) do
    local what = "phases[" .. i .. "]"
    local rate = p.rate and parrot.count(p.rate, what .. ".rate")
    if p.interarrival then rate = 1 / parrot.duration(p.interarrival, what .. ".interarrival") end
    if not rate then error(what .. ": give a rate (users per second) or an interarrival time", 2) end
    -- count: exactly this many arrivals in the phase (Tsung), the first at its start
    l.phases[i] = { rate = rate, duration = parrot.duration(p.duration or "10s", what .. ".duration"),
                    dist = p.dist or l.dist, max = p.max and parrot.count(p.max),
                    count = p.count and parrot.count(p.count, what .. ".count") }
  end
  return l
end

-- parrot.rate{rate, vus, duration}: constant iterations per second over a pool of VUs (wrk2).
function parrot.rate(t)
  t = t or {}
  return { model = "rate", rate = parrot.count(t.rate or 1, "rate.rate"), vus = parrot.count(t.vus or 10, "rate.vus"),
           duration = parrot.duration(t.duration or "10s", "rate.duration"), graceful_stop = t.graceful_stop }
end

function parrot.load_duration(l)
  if l.stages then
    local d = 0
    for _, st in ipairs(l.stages) do d = d + st.duration end
    return d
  elseif l.phases then
    local d = 0
    for _, p in ipairs(l.phases) do d = d + p.duration end
    for _, u in ipairs(l.users or {}) do d = math.max(d, u.start) end -- users at a set time
    return d
  end
  return l.duration or 0
end

------------------------------------------------------------------------------------------------
-- scenario

function parrot.scenario(t)
  if type(t) ~= "table" then error("parrot.scenario expects a table", 2) end
  t._scenario = true
  return t
end

local function normalize_sessions(sc, where)
  local sessions = sc.sessions
  if not sessions and sc.run then sessions = { { name = "default", run = sc.run } } end
  if type(sessions) ~= "table" or #sessions == 0 then
    error(where .. ": the scenario has no sessions (sessions = { {name = ..., run = function(vu) ... end} })", 0)
  end
  local probs, nprob = 0, 0
  for i, s in ipairs(sessions) do
    if type(s) == "function" then s = { run = s }; sessions[i] = s end
    s.name = s.name or ("session" .. i)
    s.run = s.run or s.fn
    if type(s.run) ~= "function" then error(where .. ": session '" .. s.name .. "' has no run function", 0) end
    if s.probability then probs, nprob = probs + s.probability, nprob + 1 end
  end
  if nprob > 0 then
    if nprob ~= #sessions or math.abs(probs - 100) > 1e-6 then
      error(string.format("%s: session probabilities must all be given and sum to 100 (they sum to %g)", where, probs), 0)
    end
    for _, s in ipairs(sessions) do s.weight = s.probability end
  end
  local total = 0
  for _, s in ipairs(sessions) do
    s.weight = s.weight or 1
    if type(s.weight) ~= "number" or s.weight < 0 then error(where .. ": session '" .. s.name .. "' has a bad weight", 0) end
    total = total + s.weight
  end
  if total <= 0 then error(where .. ": session weights sum to 0", 0) end
  sc.sessions = sessions
end

local function normalize_thresholds(sc)
  local list = {}
  for key, v in pairs(sc.thresholds or {}) do
    local exprs, abort = v, false
    if type(v) == "table" then abort = v.abort and true or false else exprs = { v } end
    for _, e in ipairs(type(exprs) == "table" and exprs or { exprs }) do
      list[#list + 1] = { key = key, expr = tostring(e), abort = abort }
    end
  end
  table.sort(list, function(a, b) return a.key < b.key end)
  -- the plan's iterations and their duration cap travel with the thresholds (thresholds.h's
  -- THRESHOLDS_PLAN_KEY): the end of the run warns when the cap came first
  local l = sc.load
  if l.model == "closed" and l.iterations then
    list[#list + 1] = { key = "_plan.iterations", abort = false,
                        expr = string.format("%d %.17g", l.iterations, parrot.load_duration(l)) }
  end
  sc._thresholds = list
end

-- setup() that fails ends the test before any load, as in k6: one line with its error (and
-- file:line) through parrot.abort_test, exit 1, the summary still written.
local function guard_setup(sc)
  local user_setup = sc.setup
  if type(user_setup) ~= "function" then return end
  local function where(e)
    local msg = tostring(e)
    if msg:match("^[^\n:]+:%d+:") then return msg end
    for level = 2, 6 do -- an error without a position (error(x, 0), a table): the innermost Lua line
      local info = debug.getinfo(level, "Sl")
      if info and info.what ~= "C" and (info.currentline or -1) > 0 then
        return info.short_src .. ":" .. info.currentline .. ": " .. msg
      end
    end
    return msg
  end
  sc.setup = function(...)
    local res = { xpcall(user_setup, where, ...) }
    if res[1] then return unpack(res, 2, table.maxn(res)) end
    need_core().abort_test("setup() failed, no load was started: " .. res[2]:match("^[^\n]*"))
    return nil
  end
end

------------------------------------------------------------------------------------------------
-- scenario files: loaded under the name users know them by, their path in the scenario's
-- directory ("rte.lua", "lib/util.lua"), never where the bundle happens to sit (a worker's cache),
-- so errors read `rte.lua:5: ...`.

local function bundle_name(path)
  local dir = rawget(parrot, "_dir")
  if path:sub(1, 2) == "./" then path = path:sub(3) end
  if dir and dir ~= "." and dir ~= "" and path:sub(1, #dir + 1) == dir .. "/" then return path:sub(#dir + 2) end
  return path
end

-- loadfile with a chosen chunk name; a first line starting with '#' (#!) is skipped as loadfile does.
local function load_as(path, name)
  local f, err = io.open(path, "rb")
  if not f then return nil, "cannot open " .. name .. ": " .. tostring(err):gsub("^[^:]*: ", "") end
  local src = f:read("*a")
  f:close()
  if src:sub(1, 1) == "#" then src = "--" .. src end
  return loadstring(src, "@" .. name)
end

-- `require "buy"` finds buy.lua (or buy/init.lua) in the scenario's directory under its bundle name.
local function bundle_searcher(modname)
  local dir = rawget(parrot, "_dir")
  if not dir then return nil end
  local rel, tried = modname:gsub("%.", "/"), {}
  for _, cand in ipairs { rel .. ".lua", rel .. "/init.lua" } do
    local path = dir .. "/" .. cand
    local f = io.open(path, "rb")
    if f then
      f:close()
      local chunk, err = load_as(path, cand)
      if not chunk then error("error loading module '" .. modname .. "': " .. err, 0) end
      return chunk
    end
    tried[#tried + 1] = "\n\tno file '" .. cand .. "' in the scenario's directory"
  end
  return table.concat(tried)
end
table.insert(package.loaders, 2, bundle_searcher)

-- --vus on stages: the stages keep their shape and total duration, their targets scaled so the
-- peak is --vus (k6 instead replaces them with a constant VU count).
local function scale_stages(l, vus)
  local peak = stages_peak(l.stages)
  if peak <= 0 then return warn("--vus: every stage targets 0 VUs, nothing to scale: ignored") end
  for _, st in ipairs(l.stages) do st.target = math.floor(st.target * vus / peak + 0.5) end
  l.vus = vus
end

-- Apply command-line overrides (`--vus`, `--rate`, `--iterations`, `--duration`) to the load
-- model; one that does not apply to the model is ignored with a warning, never silently.
local function apply_overrides(l, ov)
  if ov.vus then
    if l.model == "closed" and l.stages then scale_stages(l, ov.vus)
    elseif l.model == "closed" or l.model == "rate" then l.vus = ov.vus
    else warn("--vus does not apply to the open model (users arrive at a rate; max_users caps them): ignored") end
  end
  if ov.rate then
    if l.model == "rate" then l.rate = ov.rate
    elseif l.model == "open" then
      l.phases = { { rate = ov.rate, duration = parrot.load_duration(l), dist = l.dist } }
    else
      warn("--rate applies to the rate and open models; this scenario's load is closed (a fixed number of looping VUs): ignored")
    end
  end
  if ov.iterations then
    if l.model ~= "closed" then
      warn("--iterations applies to the closed model; this scenario's load is " .. l.model .. ": ignored")
    else
      l.iterations = ov.iterations
      if not l.stages and not duration_given[l] then l.duration = parrot.ITERATIONS_CAP end
    end
  end
  if ov.duration then
    if l.model == "open" then
      local rate = l.phases[#l.phases].rate
      if #l.phases ~= 1 then l.phases = { { rate = rate, dist = l.dist } } end
      l.phases[1].duration = ov.duration
    elseif l.stages then
      local scale = ov.duration / parrot.load_duration(l)
      for _, st in ipairs(l.stages) do st.duration = st.duration * scale end
    else
      l.duration = ov.duration
    end
  end
end

-- parrot.load(path, overrides) -> the scenario, checked and normalized. Errors name file:line.
function parrot.load(path, ov)
  ov = ov or {}
  local sc
  if ov.url then
    sc = parrot.url_scenario(ov)
  else
    local chunk, err
    if path:lower():match("%.xml$") then chunk, err = parrot.tsung_chunk(path)
    else chunk, err = load_as(path, bundle_name(path)) end
    if not chunk then error(err, 0) end
    local ok, res = xpcall(chunk, function(e) return debug.traceback(tostring(e), 2) end)
    if not ok then error(res, 0) end
    sc = res
    if type(sc) ~= "table" or not sc._scenario then
      error(path .. ": the file must end with `return parrot.scenario { ... }`", 0)
    end
  end
  normalize_sessions(sc, path or "--url")
  sc.name = sc.name or (path and path:match("([^/]+)%.%w+$")) or "scenario"
  sc.load = sc.load or parrot.closed { vus = 1 } -- 10 s, or until --iterations are done
  if type(sc.load) ~= "table" or not sc.load.model then
    error((path or "scenario") .. ": load must be parrot.closed{...}, parrot.open{...} or parrot.rate{...}", 0)
  end
  apply_overrides(sc.load, ov)
  sc.load.graceful_stop = parrot.duration(sc.load.graceful_stop or sc.graceful_stop or 10, "graceful_stop")
  sc._duration = parrot.load_duration(sc.load)
  normalize_thresholds(sc)
  guard_setup(sc)
  sc.insecure = sc.insecure or ov.insecure
  sc.headers = sc.headers or {}
  for _, h in ipairs(ov.headers or {}) do
    local n, v = h:match("^%s*([^:]+):%s*(.*)$")
    if not n then error("-H '" .. h .. "': expected 'Name: value'", 0) end
    sc.headers[n] = v
  end
  return sc
end

-- A Tsung XML configuration, translated to Lua (parrot import tsung shows the same text).
-- --server HOST:PORT, --skip-unsupported and -x TAGS arrive as TSUNG_SERVER, TSUNG_SKIP_UNSUPPORTED
-- and TSUNG_EXCLUDE_TAGS.
function parrot.tsung_chunk(path)
  local ext = require "parrot.ext"
  if not ext.tsung_import then return nil, path .. ": this parrot cannot read Tsung files" end
  local ok, src, notes = pcall(ext.tsung_import, path, {
    server = rawget(parrot.env, "TSUNG_SERVER") or os.getenv("TSUNG_SERVER"),
    exclude_tags = rawget(parrot.env, "TSUNG_EXCLUDE_TAGS") or os.getenv("TSUNG_EXCLUDE_TAGS"),
    skip_unsupported = (rawget(parrot.env, "TSUNG_SKIP_UNSUPPORTED") or "") ~= "" })
  if not ok then return nil, tostring(src) end
  -- notes once, from the queen's state (load threads have the real core with `spawn`)
  if notes and notes ~= "" and rawget(require("parrot.core"), "spawn") == nil then
    io.stderr:write((notes:gsub("[^\n]+", "parrot: note: %0")))
    if not notes:find("\n$") then io.stderr:write("\n") end
  end
  return loadstring(src, "@" .. bundle_name(path))
end

-- The scenario `parrot run --url URL` runs: one GET per iteration, from a Lua coroutine as always.
function parrot.url_scenario(ov)
  local http = require "parrot.http"
  local u, method = ov.url, ov.method or "GET"
  -- one options table for every request: http.request reads it and never changes it
  local spec = { method = method, url = u, body = ov.body, name = method .. " " .. u, discard_body = true }
  -- --rate makes it wrk2's constant rate over the VUs; else they loop as fast as they can
  local load = ov.rate and parrot.rate { rate = ov.rate, vus = ov.vus or 10, duration = ov.duration or 10 }
               or parrot.closed { vus = ov.vus or 10, duration = ov.duration }
  return parrot.scenario {
    name = u,
    load = load,
    sessions = { { name = "url", run = function() http.request(spec) end } },
  }
end

------------------------------------------------------------------------------------------------
-- environment: -e NAME=value (filled by the runtime), falling back to the process environment

parrot.env = setmetatable({}, { __index = function(_, k) return os.getenv(k) end })

------------------------------------------------------------------------------------------------
-- custom metrics, as in k6

local metric_mt = {}
metric_mt.__index = metric_mt
function metric_mt:add(v)
  local c = need_core("metrics")
  if self.kind == "counter" then return c.counter(self.name, v or 1) end
  local n = tonumber(v) -- any finite number, negative and past an hour included, as in k6
  if not n or n ~= n or n == math.huge or n == -math.huge then error("trend:add needs a number", 0) end
  c.trend(self.name, n)
end

function parrot.counter(name) return setmetatable({ name = name, kind = "counter" }, metric_mt) end
function parrot.trend(name) return setmetatable({ name = name, kind = "trend" }, metric_mt) end

-- parrot.abort_test(reason): end the whole test now (every worker), as k6's test.abort(); the
-- summary says it was interrupted and why.
function parrot.abort_test(reason) need_core().abort_test(reason and tostring(reason) or "parrot.abort_test()") end

------------------------------------------------------------------------------------------------
-- data feeders

parrot.csv = function(file, opts) return require("parrot.csv").open(file, opts, parrot._dir) end

------------------------------------------------------------------------------------------------
-- globals for scenarios

-- check(value, name) or check(value, {name = function(v) ... end, ...}); returns whether all passed.
function check(v, what)
  local c = need_core("check")
  if type(what) == "table" then
    local all = true
    for name, fn in pairs(what) do
      local ok, r = pcall(fn, v)
      ok = ok and r and true or false
      c.check(name, ok)
      all = all and ok
    end
    return all
  end
  local ok = v and true or false
  c.check(what or "check", ok)
  return ok
end

-- think(min [, max]): a random pause, uniform in [min, max] seconds (or exactly min).
function think(min, max)
  local c = need_core("think")
  min = parrot.duration(min or 0, "think")
  if max then
    max = parrot.duration(max, "think")
    min = min + math.random() * (max - min)
  end
  c.sleep(min)
end

function sleep(s) need_core("sleep").sleep(parrot.duration(s or 0, "sleep")) end

-- transaction(name, fn, ...): time fn as one named unit; an error inside marks it failed and
-- goes on up.
function transaction(name, fn, ...)
  local c = need_core("transaction")
  local t0 = c.now()
  local res = { pcall(fn, ...) }
  c.transaction(name, c.now() - t0, not res[1])
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2)
end

return parrot
