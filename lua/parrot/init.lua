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
-- load models

-- parrot.closed{vus, duration, ramp, stages, graceful_stop}: a fixed population looping.
function parrot.closed(t)
  t = t or {}
  local l = { model = "closed", graceful_stop = t.graceful_stop }
  if t.stages then
    l.stages = {}
    for i, st in ipairs(t.stages) do
      l.stages[i] = { duration = parrot.duration(st.duration or st[1], "stages[" .. i .. "].duration"),
                      target = parrot.count(st.target or st[2], "stages[" .. i .. "].target") }
    end
  else
    l.vus = parrot.count(t.vus or 1, "closed.vus")
    l.duration = parrot.duration(t.duration or "10s", "closed.duration")
    l.ramp = t.ramp and parrot.duration(t.ramp, "closed.ramp") or 0
  end
  l.iterations = t.iterations and parrot.count(t.iterations, "closed.iterations")
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
  sc._thresholds = list
end

-- Apply command-line overrides (`--vus`, `--rate`, `--duration`) to the load model.
local function apply_overrides(l, ov)
  if ov.vus then
    if l.model == "closed" then l.stages = nil; l.vus = ov.vus; l.duration = l.duration or 10; l.ramp = l.ramp or 0
    elseif l.model == "rate" then l.vus = ov.vus end
  end
  if ov.rate then
    if l.model == "rate" then l.rate = ov.rate
    elseif l.model == "open" then
      l.phases = { { rate = ov.rate, duration = parrot.load_duration(l), dist = l.dist } }
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
  if ov.iterations then l.iterations = ov.iterations end
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
    else chunk, err = loadfile(path) end
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
  sc.load = sc.load or parrot.closed { vus = 1, duration = "10s" }
  if type(sc.load) ~= "table" or not sc.load.model then
    error((path or "scenario") .. ": load must be parrot.closed{...}, parrot.open{...} or parrot.rate{...}", 0)
  end
  apply_overrides(sc.load, ov)
  sc.load.graceful_stop = parrot.duration(sc.load.graceful_stop or sc.graceful_stop or 10, "graceful_stop")
  sc._duration = parrot.load_duration(sc.load)
  normalize_thresholds(sc)
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
  return loadstring(src, "@" .. path)
end

-- The scenario `parrot run --url URL` runs: one GET per iteration, from a Lua coroutine as always.
function parrot.url_scenario(ov)
  local http = require "parrot.http"
  local u, method = ov.url, ov.method or "GET"
  -- one options table for every request: http.request reads it and never changes it
  local spec = { method = method, url = u, body = ov.body, name = method .. " " .. u, discard_body = true }
  return parrot.scenario {
    name = u,
    load = parrot.closed { vus = ov.vus or 10, duration = ov.duration or 10 },
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
  if self.kind == "counter" then c.counter(self.name, v or 1) else c.trend(self.name, assert(tonumber(v), "trend:add needs a number")) end
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
