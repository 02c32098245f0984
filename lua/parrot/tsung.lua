-- parrot.tsung: the runtime of Tsung configurations. `parrot import tsung` (src/tsung.c) writes Lua
-- that calls this module (the shape is the comment in src/tsung.h); here each call does what Tsung
-- 1.7 does: per-user dynamic variables and %%_var%% substitution, the Host header and sticky hosts of
-- absolute URLs, no redirects, dyn_variable extraction, <match> actions, thinktimes, control flow.
local parrot = require "parrot"
local http = require "parrot.http"
local ext = require "parrot.ext"
local csv = require "parrot.csv"
local cjson = require "cjson"

local ts = {}

-- parrot.core is the real VU core only on load threads; take it when a session runs.
local function core() return require "parrot.core" end

local function counter(name, n) core().counter(name, n or 1) end

------------------------------------------------------------------------------------------------
-- control flow: <match do=abort|restart|abort_test> and <abort> end a session by throwing one of
-- these; T:session catches them. Anything else thrown is a real script error and goes on up.

local Control = {}
Control.__index = Control
Control.__tostring = function(c) return "tsung " .. c.kind .. (c.why and (": " .. c.why) or "") end

local function throw(kind, why) error(setmetatable({ kind = kind, why = why }, Control), 0) end
local function is_control(e) return getmetatable(e) == Control end

-- Warnings a user should see once per thread, not once per user.
local warned = {}
local function warn_once(key, msg)
  if warned[key] then return end
  warned[key] = true
  io.stderr:write("parrot: tsung: " .. msg .. "\n")
end

------------------------------------------------------------------------------------------------
-- substitution: %%_name%% (a user's variable; "undefined" when it has none, as in Tsung),
-- %%_list[N]%% (element N, 1-based, of a list variable) and %%module:function%% built-ins

-- What keeps one run's shared counters apart from another's in a worker that runs several.
local function run_key(vu) return vu and vu.t0 and string.format("%.6f", vu.t0) or "-" end

-- A user's id, as Tsung's tsung_userid: 1, 2, 3, ... in the order users start, over the whole
-- run: every thread, and every worker of a cluster (leased from the queen: csv.position). Specs
-- give vu.id instead.
local function next_userid(vu)
  if not vu.t0 then return tostring(vu.id or 1) end
  local id, err = csv.position("tsung.userid", run_key(vu))
  if not id then error("tsung_userid: " .. err, 0) end
  return tostring(id)
end

-- %%ts_user_server:...%%: get_unique_id is the user's id (the same for its whole session, as
-- Tsung's is tsung_userid); get_really_unique_id is "<epoch seconds>-<id>"; get_id is a random
-- user number (1..10000, Tsung's default userid_max).
local builtins = {
  ["ts_user_server:get_unique_id"] = function(s) return s.vars.tsung_userid end,
  ["ts_user_server:get_really_unique_id"] = function(s) return os.time() .. "-" .. s.vars.tsung_userid end,
  ["ts_user_server:get_id"] = function() return tostring(math.random(10000)) end,
}

local S = {} -- the methods of a user's state
S.__index = S

-- The value of variable `name` ("x" or "x[N]"), or nil when the user has none.
function S:lookup(name)
  local base, idx = name:match("^(.-)%[(%d+)%]$")
  if base then
    local l = self.lists[base]
    if l then return l[tonumber(idx)] end
    if tonumber(idx) == 1 then return self.vars[base] end
    return nil
  end
  return self.vars[name]
end

function S:subst(str)
  if type(str) ~= "string" or not str:find("%%", 1, true) then return str end
  return (str:gsub("%%%%([^%%]*)%%%%", function(inner)
    if inner:sub(1, 1) == "_" then
      local v = self:lookup(inner:sub(2))
      if v == nil then return "undefined" end
      return tostring(v)
    end
    if inner:find(":", 1, true) then
      local fn = builtins[inner]
      if fn then return fn(self) end
      warn_once("builtin:" .. inner, "%%" .. inner .. "%% is Erlang code that cannot run here; it becomes an empty string")
      return ""
    end
    return nil -- not a substitution: left as it is
  end))
end

------------------------------------------------------------------------------------------------
-- config

local Config = {}
Config.__index = Config

local function bool(v) return v == true or v == "true" end

-- ts.config{servers, user_agents, thinktime, file_servers, use_server_as_proxy, idle_timeout,
-- connect_timeout, max_retries, retry_timeout, limit} (timeouts in milliseconds) -> T, whose T:session(fn) makes a session's run(vu) function.
-- limit: the load's duration in seconds; every user still running then stops (error_abort).
function ts.config(t)
  t = t or {}
  local c = setmetatable({ file = t.file or "tsung", servers = {}, user_agents = t.user_agents,
                           thinktime = t.thinktime, file_servers = t.file_servers or {},
                           idle_timeout = t.idle_timeout, connect_timeout = tonumber(t.connect_timeout),
                           max_retries = tonumber(t.max_retries) or 3,
                           retry_timeout = tonumber(t.retry_timeout) or 10, limit = tonumber(t.limit),
                           use_server_as_proxy = bool(t.use_server_as_proxy) }, Config)
  for i, s in ipairs(t.servers or {}) do
    if not s.host then error(c.file .. ": server " .. i .. " has no host", 2) end
    local kind = (s.type or "tcp"):lower()
    local tls = kind == "ssl" or kind == "tls" or kind == "ssl6"
    c.servers[i] = { host = s.host, port = tonumber(s.port) or (tls and 443 or 80),
                     scheme = tls and "https" or "http", weight = tonumber(s.weight) or 1 }
  end
  if #c.servers == 0 then error(c.file .. ": no <server> to send requests to", 2) end
  if c.user_agents and #c.user_agents > 0 then
    local sum = 0
    for _, ua in ipairs(c.user_agents) do sum = sum + (tonumber(ua.probability) or 0) end
    if math.abs(sum - 100) > 0.05 then
      error(string.format("%s: user_agent probabilities must sum to 100 (they sum to %g)", c.file, sum), 2)
    end
  else
    c.user_agents = nil
  end
  if c.use_server_as_proxy then
    warn_once("proxy", "http_use_server_as_proxy is not supported; requests go to their URLs' hosts")
  end
  return c
end

local function pick_weighted(list, key)
  local total = 0
  for _, x in ipairs(list) do total = total + (tonumber(x[key]) or 0) end
  local r = math.random() * total
  for _, x in ipairs(list) do
    r = r - (tonumber(x[key]) or 0)
    if r < 0 then return x end
  end
  return list[#list]
end

local function origin(scheme, host, port)
  local h = host:find(":", 1, true) and ("[" .. host .. "]") or host
  return scheme .. "://" .. h .. ":" .. port
end

-- A user's state: its variables, its server, its current host (sticky after an absolute URL),
-- its user agent (Tsung's own name when the configuration gives none).
local function new_state(T, vu)
  local srv = #T.servers == 1 and T.servers[1] or pick_weighted(T.servers, "weight")
  local s = setmetatable({ T = T, vu = vu, vars = { tsung_userid = next_userid(vu) }, lists = {},
                           server = srv, scheme = srv.scheme, host = srv.host, port = srv.port,
                           ua = T.user_agents and pick_weighted(T.user_agents, "probability").value or "Tsung",
                           restarts = 0, cookie_names = {} }, S)
  s.base = origin(s.scheme, s.host, s.port)
  -- the load's duration, unless --duration made the run longer (the importer cuts phases at it)
  if T.limit and vu.t0 and not (vu.load and parrot.load_duration(vu.load) > T.limit + 1e-6) then
    s.deadline = vu.t0 + T.limit
  end
  return s
end

------------------------------------------------------------------------------------------------
-- the load's duration: Tsung stops every user then, counting error_abort. A user stops itself
-- at its next step (before a request, or a thinktime cut short); users waiting on a response
-- are counted by a watchdog coroutine of the thread, and the runner ends them.

local LIMIT_MARGIN = 0.002 -- users stop this much before the runner's own end of the run
local active, active_for = {}, nil -- this thread's users with a deadline, and that deadline (the run's)
local watcher_for = nil            -- the deadline a running watchdog looks after

function S:stop_at_limit()
  if not self.limit_hit then
    self.limit_hit = true
    counter("error_abort")
  end
  throw("abort", "the load's duration")
end

-- Stop here when the load's duration has come (or the watchdog said so).
function S:check_limit()
  if self.limit_hit or (self.deadline and core().now() >= self.deadline - LIMIT_MARGIN) then self:stop_at_limit() end
end

-- A user with a deadline joins its run's list, which a watchdog looks after while it is not
-- empty (users of an earlier run, ended by the runner, are left behind with their list; a
-- watchdog the runner ended is replaced by the next run's).
local function enlist(s)
  local deadline = s.deadline
  if active_for ~= deadline then active, active_for = {}, deadline end
  active[s] = true
  s.active = active
  if watcher_for == deadline then return end
  watcher_for = deadline
  local users = active
  core().spawn(function()
    while next(users) do
      local left = deadline - LIMIT_MARGIN - core().now()
      if left <= 0 then
        for st in pairs(users) do
          if not st.limit_hit then st.limit_hit = true; counter("error_abort") end
        end
        break
      end
      core().sleep(math.min(left, 0.25))
    end
    if watcher_for == deadline then watcher_for = nil end
  end)
end

------------------------------------------------------------------------------------------------
-- Tsung's `connected` statistic: +1 when a user opens its connection, -1 when it is closed.

function S:set_connected(on)
  if on ~= (self.connected or false) then
    self.connected = on
    counter("connected", on and 1 or -1)
  end
end

-- T:session(fn) -> run(vu): runs fn(s) once for the user; a match do=restart runs it again from
-- the start (the user keeps its variables and cookies, as in Tsung); abort ends it quietly.
function Config:session(fn)
  local T = self
  return function(vu)
    local s = new_state(T, vu or {})
    local t0 = core().now()
    local err
    counter("users_count")
    if s.deadline then enlist(s) end
    while true do
      s.loop_block = nil -- a restart leaves any s:loop_back block it was in
      local ok, e = xpcall(fn, function(x)
        if is_control(x) then return x end
        return debug.traceback(tostring(x), 2)
      end, s)
      if ok then break end
      if not is_control(e) then err = e; break end
      if e.kind == "abort_test" then -- the whole test ends, as in Tsung
        core().abort_test("abort_test" .. (e.why and (": " .. e.why) or ""))
        break
      elseif e.kind ~= "restart" then
        break
      end
    end
    if s.active then s.active[s] = nil end
    s:page_end()
    s:set_connected(false)
    counter("finish_users_count")
    core().trend("session", (core().now() - t0) * 1000)
    if err then error(err, 0) end
  end
end

------------------------------------------------------------------------------------------------
-- pages and transactions

-- Requests not separated by a thinktime form one page (Tsung's `page` statistic).
function S:page_end()
  if self.page_t0 then
    core().trend("page", (core().now() - self.page_t0) * 1000)
    self.page_t0 = nil
  end
end

-- s:transaction(name, fn): Tsung's tr_NAME, timed including thinktimes inside; a session that
-- ends inside it (abort, restart) closes it, as Tsung closes unfinished transactions.
function S:transaction(name, fn)
  local c = core()
  local t0 = c.now()
  local ok, e = pcall(fn)
  c.transaction("tr_" .. name, c.now() - t0, not ok and not is_control(e))
  if not ok then error(e, 0) end
end

------------------------------------------------------------------------------------------------
-- thinktime

-- The random kind of a <thinktime> that gives none, from the configuration's default: "range"
-- (its min/max), true (exponential) or false.
local function default_random(def)
  if def.min and def.max then return "range" end
  return bool(def.random)
end

-- The pause of a thinktime in seconds, as Tsung 1.7 reads it (ts_config.erl): a "%%_var%%" value
-- is substituted and fixed; override = true takes the configuration's value and kind; min/max is
-- uniform; otherwise the element's value (or the default's, 5 s without one) with its own random
-- or, when it has none, the default's (exponential, or the default's min/max range).
function S:think_seconds(t)
  local def = self.T.thinktime or {}
  if type(t.value) == "string" and t.value:find("%%", 1, true) then
    local v = self:subst(t.value)
    local secs = tonumber(v)
    if not secs then
      warn_once("think:" .. tostring(v), "thinktime value '" .. tostring(v) .. "' is not a number of seconds; no pause")
    end
    return secs or 0
  end
  local value, random, min, max
  if bool(def.override) then
    value, random, min, max = def.value, default_random(def), def.min, def.max
  elseif t.min and t.max then
    random, min, max = "range", t.min, t.max
  else
    value = t.value or def.value
    if t.random ~= nil then random = bool(t.random) else random = default_random(def) end
    min, max = def.min, def.max
  end
  if random == "range" then
    min, max = tonumber(min) or 0, tonumber(max) or 0
    return min + math.random() * (max - min)
  end
  local secs = tonumber(value) or 5
  if random then secs = -secs * math.log(1 - math.random()) end
  return secs
end

-- s:thinktime{value | min, max | random}: a pause (see think_seconds); it ends the page, and it
-- is cut short at the load's duration, where the user stops.
function S:thinktime(t)
  local secs = self:think_seconds(t or {})
  self:page_end()
  self:pause(secs)
end

-- Sleep `secs`, or until the load's duration and stop there.
function S:pause(secs)
  local dl = self.deadline
  if dl and core().now() + secs >= dl - LIMIT_MARGIN then
    core().sleep(math.max(0, dl - LIMIT_MARGIN - core().now()))
    self:stop_at_limit()
  end
  core().sleep(secs)
end

------------------------------------------------------------------------------------------------
-- requests

local BODY_METHODS = { POST = true, PUT = true, PATCH = true, DELETE = true }

local file_cache = {}
-- A file of the bundle: absolute paths are tried as they are, then under the bundle's directory
-- (files named outside it travel there under their base name).
local function bundle_path(name)
  local dir = parrot._dir or "."
  local tries = {}
  if name:sub(1, 1) == "/" then tries[#tries + 1] = name else tries[#tries + 1] = dir .. "/" .. name end
  tries[#tries + 1] = dir .. "/" .. (name:match("([^/]+)$") or name)
  for _, p in ipairs(tries) do
    local f = io.open(p, "rb")
    if f then f:close(); return p end
  end
  return nil
end

local function read_file(name, what)
  if file_cache[name] then return file_cache[name] end
  local p = bundle_path(name)
  local f = p and io.open(p, "rb")
  if not f then error(what .. ": cannot read " .. name .. " (it must be in the scenario's bundle)", 0) end
  local text = f:read("*a")
  f:close()
  file_cache[name] = text
  return text
end

-- A header list as the contract gives it ({ {name, value}, ... }) or a map.
local function each_header(h)
  local out = {}
  if not h then return out end
  if #h > 0 then
    for _, p in ipairs(h) do out[#out + 1] = { p[1] or p.name, p[2] or p.value, p[3] or p.encoding } end
  else
    for n, v in pairs(h) do out[#out + 1] = { n, v } end
  end
  return out
end

-- Authorization: Digest as Tsung 1.7 writes it (RFC 2617; qop quoted as Tsung quotes it).
local function digest_header(a, method, uri)
  local realm, nonce = a.realm or "", a.nonce or ""
  local ha1 = ext.md5_hex(a.userid .. ":" .. realm .. ":" .. a.passwd)
  local ha2 = ext.md5_hex(method .. ":" .. uri)
  local h = string.format('Digest username="%s", realm="%s", nonce="%s", uri="%s"', a.userid, realm, nonce, uri)
  local resp
  if a.qop and a.qop ~= "" then
    local nc = a.nc or "00000001"
    local cnonce = a.cnonce or ext.md5_hex(tostring(math.random()) .. tostring(os.time())):sub(1, 16)
    resp = ext.md5_hex(table.concat({ ha1, nonce, nc, cnonce, a.qop, ha2 }, ":"))
    h = h .. string.format(', response="%s"', resp)
    if a.opaque then h = h .. string.format(', opaque="%s"', a.opaque) end
    h = h .. string.format(', qop="%s", nc=%s, cnonce="%s"', a.qop, nc, cnonce)
  else
    resp = ext.md5_hex(ha1 .. ":" .. nonce .. ":" .. ha2)
    h = h .. string.format(', response="%s"', resp)
    if a.opaque then h = h .. string.format(', opaque="%s"', a.opaque) end
  end
  return h
end

-- Turn the request's url into an absolute one; an absolute URL moves this user's later relative
-- URLs to its host. Returns the absolute URL and the request target (path and query).
function S:resolve(u)
  local scheme, hostport, rest = u:match("^(https?)://([^/?#]*)(.*)$")
  if scheme then
    local host, port = hostport:match("^%[(.-)%]:?(%d*)$")
    if not host then host, port = hostport:match("^([^:]*):?(%d*)$") end
    self.scheme, self.host = scheme, host
    self.port = tonumber(port) or (scheme == "https" and 443 or 80)
    self.base = origin(self.scheme, self.host, self.port)
    if rest == "" then rest = "/" end
    return self.base .. rest, rest
  end
  if u:sub(1, 1) ~= "/" then u = "/" .. u end
  return self.base .. u, u
end

-- The http.request spec of one <request>: url, method, headers, body, as Tsung sends them.
function S:build(q)
  local fields = q.subst == true or q.subst == "true" or q.subst == "all_except_body"
  local body_too = q.subst == true or q.subst == "true"
  local sub = function(v) if fields then return self:subst(v) end return v end
  local u = q.url or "/"
  if fields then u = self:subst(u):gsub(" ", "%%20") end
  local full, target = self:resolve(u)
  local method = (q.method or "GET"):upper()
  local headers, names = {}, {}
  local function set(n, v)
    local low = n:lower()
    if names[low] then headers[names[low]] = nil end
    names[low] = n
    headers[n] = v
  end
  set("User-Agent", self.ua)
  local body
  if BODY_METHODS[method] then
    if q.contents_from_file then body = read_file(q.contents_from_file, "contents_from_file")
    else body = q.contents or "" end
    if body_too then body = self:subst(body) end
    set("Content-Type", sub(q.content_type) or "application/x-www-form-urlencoded")
  elseif q.if_modified_since then
    set("If-Modified-Since", q.if_modified_since)
  end
  local a = q.auth
  if a and a.userid and a.passwd then
    local auth = {}
    for k, v in pairs(a) do auth[k] = sub(v) end
    if (auth.type or "basic") == "digest" then
      set("Authorization", digest_header(auth, method, target))
    else
      set("Authorization", "Basic " .. ext.base64_encode(auth.userid .. ":" .. auth.passwd))
    end
  end
  if q.soap_action then set("SOAPAction", '"' .. q.soap_action .. '"') end
  if q.cookies and #q.cookies > 0 then
    -- a Cookie header of ours replaces the jar's, so the jar's cookies for this URL go first
    local parts = {}
    for name in pairs(self.cookie_names) do
      local v = http.cookies.get(name, full)
      if v then parts[#parts + 1] = name .. "=" .. v end
    end
    table.sort(parts)
    for _, c in ipairs(q.cookies) do parts[#parts + 1] = c.key .. "=" .. tostring(sub(c.value) or "") end
    set("Cookie", table.concat(parts, "; "))
  end
  for _, h in ipairs(each_header(q.headers)) do
    local v = sub(h[2]) or ""
    if h[3] == "base64" then v = ext.base64_encode(v) end
    set(h[1], v)
  end
  local name = q.tag
  if not name or name == "" then name = target:match("^([^?#]*)") end
  if name == "" then name = "/" end
  local spec = { method = method, url = full, headers = headers, body = body, name = name,
                 redirects = false, version = q.version == "1.0" and "1.0" or nil }
  if self.T.idle_timeout then spec.timeout = tonumber(self.T.idle_timeout) / 1000 end
  if self.T.connect_timeout then spec.connect_timeout = tonumber(self.T.connect_timeout) / 1000 end
  return spec
end

-- The response as Tsung's regexes see it: the status line and headers exactly as received (names
-- in their case, in order, repeated ones on lines of their own), a blank line, the body.
local function raw_response(r) return r.head .. (r.body or "") end

------------------------------------------------------------------------------------------------
-- jsonpath: Tsung's subset — a.b[0].c, an optional "$." prefix, * and [?key=val], 0-based

local function jp_steps(expr)
  expr = expr:gsub("^%$%.?", "")
  local steps = {}
  for seg in expr:gmatch("[^%.]+") do
    local key, rest = seg:match("^([^%[]*)(.*)$")
    if key ~= "" then steps[#steps + 1] = { key = key } end
    for inner in rest:gmatch("%[(.-)%]") do
      local fk, fv = inner:match("^%?%(?@?%.?([^=!<>]+)==?'?\"?(.-)\"?'?%)?$")
      if fk then steps[#steps + 1] = { filter = fk, value = fv }
      elseif inner == "*" then steps[#steps + 1] = { key = "*" }
      else steps[#steps + 1] = { index = tonumber(inner) } end
    end
  end
  return steps
end

local function jsonpath(doc, expr)
  local cur = { doc }
  for _, st in ipairs(jp_steps(expr)) do
    local nxt = {}
    for _, v in ipairs(cur) do
      if type(v) == "table" then
        if st.key == "*" then
          if #v > 0 then for _, x in ipairs(v) do nxt[#nxt + 1] = x end
          else for _, x in pairs(v) do nxt[#nxt + 1] = x end end
        elseif st.key then
          if v[st.key] ~= nil then nxt[#nxt + 1] = v[st.key] end
        elseif st.index then
          if v[st.index + 1] ~= nil then nxt[#nxt + 1] = v[st.index + 1] end
        elseif st.filter then
          for _, x in ipairs(v) do
            if type(x) == "table" and x[st.filter] ~= nil and tostring(x[st.filter]) == st.value then nxt[#nxt + 1] = x end
          end
        end
      end
    end
    cur = nxt
  end
  local out = {}
  for i, v in ipairs(cur) do
    if type(v) == "table" then out[i] = cjson.encode(v)
    elseif v == cjson.null then out[i] = "null"
    elseif type(v) == "number" and v == math.floor(v) and math.abs(v) < 2^53 then out[i] = string.format("%d", v)
    else out[i] = tostring(v) end
  end
  return out
end
ts.jsonpath = jsonpath

------------------------------------------------------------------------------------------------
-- dyn_variable

-- The value of a hidden form field <input name="NAME" value="...">, attributes in any order.
local function form_field(body, name)
  for _, tag in ipairs(ext.re_gmatch_all(body, "(?i)<input[^>]*>")) do
    local n = tag:match("[Nn][Aa][Mm][Ee]%s*=%s*[\"']([^\"']*)[\"']") or tag:match("[Nn][Aa][Mm][Ee]%s*=%s*([^%s>]+)")
    if n == name then
      return tag:match("[Vv][Aa][Ll][Uu][Ee]%s*=%s*\"([^\"]*)\"") or tag:match("[Vv][Aa][Ll][Uu][Ee]%s*=%s*'([^']*)'")
          or tag:match("[Vv][Aa][Ll][Uu][Ee]%s*=%s*([^%s>]+)")
    end
  end
  return nil
end

-- "www-authenticate/nonce": the field nonce="..." (or nonce=...) of that header.
local function header_field(r, spec)
  local hname, field = spec:match("^([^/]+)/(.+)$")
  local v = r:header(hname or spec)
  if not v or not field then return v end
  local low = v:lower()
  local pos = 1
  while true do
    local a, b = low:find(field:lower() .. "%s*=%s*", pos)
    if not a then return nil end
    local prev = a > 1 and v:sub(a - 1, a - 1) or " "
    if prev:match("[%s,]") then
      local rest = v:sub(b + 1)
      return rest:match('^"([^"]*)"') or rest:match("^([^,%s]*)")
    end
    pos = b + 1
  end
end

-- Set the variables of q.dyn from response r (Tsung: a re that does not match gives "").
function S:extract(dyn, r, raw)
  for _, d in ipairs(dyn or {}) do
    local value, list
    if d.re or d.regexp then
      value = ext.re_match(raw(), d.re or d.regexp) or ""
    elseif d.xpath then
      local ct = (r:header("content-type") or ""):lower()
      local html = not (ct:find("xml", 1, true) and not ct:find("html", 1, true))
      local ok, res = pcall(ext.xpath, r.body or "", d.xpath, html)
      list = ok and res or {}
      if not ok then warn_once("xpath:" .. d.xpath, "xpath '" .. d.xpath .. "': " .. tostring(res)) end
    elseif d.jsonpath then
      local ok, doc = pcall(cjson.decode, r.body or "")
      if ok then list = jsonpath(doc, d.jsonpath) else counter("error_json_unparsable"); list = {} end
    elseif d.header then
      value = header_field(r, d.header)
      if value == nil then -- "name/field" that is not there keeps the old value, as in Tsung
        value = d.header:find("/", 1, true) and self.vars[d.name] or ""
      end
    else
      value = form_field(r.body or "", d.name) or ""
    end
    if list then
      if d.decode == "html_entities" then for i, v in ipairs(list) do list[i] = ext.html_unescape(v) end end
      self.lists[d.name] = list
      self.vars[d.name] = list[1] or ""
    else
      if d.decode == "html_entities" then value = ext.html_unescape(value) end
      self.lists[d.name] = nil
      self.vars[d.name] = value
    end
  end
end

------------------------------------------------------------------------------------------------
-- match

-- apply_to_content functions Tsung ships that have a twin here
local content_funs = { ["ts_digest:md5hex"] = function(x) return ext.md5_hex(x) end }

local logged = {}
local function log_once(key, line)
  if logged[key] then return end
  logged[key] = true
  io.stderr:write(line .. "\n")
end

-- What a match's regex runs on: the raw response, or the body alone with skip_headers="http",
-- through apply_to_content when it names a function we have.
local function match_subject(m, r, raw)
  local subject = m.skip_headers == "http" and (r.body or "") or raw()
  if m.apply_to_content then
    local fn = content_funs[m.apply_to_content]
    if fn then return fn(subject) end
    warn_once("apply:" .. m.apply_to_content, "match apply_to_content=" .. m.apply_to_content ..
      " is Erlang code that cannot run here; the match sees the response as it is")
  end
  return subject
end

-- Do what a match that fired says. Returns "loop" to send the request again; abort, abort_test
-- and restart throw; a loop with loop_back tells the s:loop_back block around the request.
function S:match_fired(m, act, label, raw, url, loops)
  if act == "log" then
    log_once("log:" .. label .. url, string.format("parrot: tsung match (%s) %s on %s (user %s)",
      m.when or "match", label, url, self.vars.tsung_userid))
  elseif act == "dump" then
    log_once("dump:" .. label .. url, string.format("parrot: tsung match (%s) %s on %s; the response:\n%s",
      m.when or "match", label, url, raw()))
  elseif act == "abort" then
    counter("match_stop")
    throw("abort", label)
  elseif act == "abort_test" then
    counter("match_stop_test")
    throw("abort_test", "match " .. label .. " on " .. url)
  elseif act == "restart" then
    if self.restarts >= (tonumber(m.max_restart) or 3) then
      counter("match_restart_abort")
      throw("abort", "max_restart")
    end
    self.restarts = self.restarts + 1
    counter("match_restart")
    throw("restart", label)
  elseif act == "loop" then
    local back, block = tonumber(m.loop_back) or 0, self.loop_block
    if back > 0 then -- the block around the request (s:loop_back) runs again, the request last
      if not block or block.back ~= back then
        error("match loop_back = " .. back .. ": its request must come last in s:loop_back(" .. back .. ", ...)", 0)
      end
      loops = block.runs
    end
    if loops >= (tonumber(m.max_loop) or 20) then return end
    counter("match_loop")
    self:pause(tonumber(m.sleep_loop) or 5)
    if back == 0 then return "loop" end
    block.runs, block.again = block.runs + 1, true
  end
end

-- Run q.matches in order on response r, as Tsung does: each counts match or nomatch; continue,
-- log and dump go on to the next one, the other actions end the list. Returns "loop" when the
-- request must be sent again; `loops` counts its re-sends so far.
function S:check_matches(matches, r, raw, url, loops)
  for _, m in ipairs(matches or {}) do
    local regex = m.regex or ""
    if bool(m.subst) then regex = self:subst(regex) end
    local ok, res = pcall(ext.re_match, match_subject(m, r, raw), regex)
    if not ok then
      warn_once("badre:" .. regex, "match: bad regular expression '" .. regex .. "': " .. tostring(res))
      counter("badregexp")
    else
      local found = res ~= nil
      counter(found and "match" or "nomatch")
      local fire = ((m.when or "match") == "match") == found
      local act = m["do"] or "continue"
      local label = m.name or regex
      if act == "continue" then
        check(fire, label) -- passes when the match does what `when` says (matches, or not)
      elseif not fire then
        if act == "restart" then self.restarts = 0 end -- Tsung counts restarts in a row
      elseif self:match_fired(m, act, label, raw, url, loops) == "loop" then
        return "loop"
      elseif act ~= "log" and act ~= "dump" then
        return nil
      end
    end
  end
end

-- uv_strerror's words for the POSIX names Tsung puts in its error counters
local POSIX = {
  ["connection refused"] = "econnrefused", ["connection timed out"] = "etimedout",
  ["host is unreachable"] = "ehostunreach", ["network is unreachable"] = "enetunreach",
  ["connection reset by peer"] = "econnreset", ["address already in use"] = "eaddrinuse",
  ["address not available"] = "eaddrnotavail", ["too many open files"] = "emfile",
  ["permission denied"] = "eacces", ["broken pipe"] = "epipe", ["connection aborted"] = "econnaborted",
}
local function posix_of(msg)
  local low = (msg or ""):lower()
  for words, name in pairs(POSIX) do
    if low:find(words, 1, true) then return name end
  end
end

-- The error counter Tsung names for a request that got no response, and whether it was the
-- connection that failed (Tsung tries those again, max_retries times).
local function tsung_error(r)
  local kind, msg = r.error_kind, r.error or ""
  if kind == "connect" then
    if msg:find("connect timeout", 1, true) then return "error_connect_timeout", true end
    return "error_connect_" .. (posix_of(msg) or "error"), true
  elseif kind == "dns" then return "error_connect_nxdomain", true
  elseif kind == "tls" then return "error_connect_ssl", true
  elseif kind == "fd_limit" then return "error_connect_emfile", true
  elseif kind == "timeout" then return "error_timeout", false
  elseif kind == "reset" then
    local p = posix_of(msg)
    return p and ("error_inet_" .. p) or "error_closed", false
  elseif kind == "protocol" or kind == "too_large" then return "error_unknown_data", false
  end
  return "error_unknown", false
end

-- Send one request as Tsung does: a connection that fails is counted (error_connect_<reason>)
-- and tried again after retry_timeout x the tries so far, max_retries times, then the user stops
-- (error_abort_max_conn_retries); any other transport error stops it too.
function S:send(spec)
  local tries = 0
  while true do
    self:check_limit()
    if not self.page_t0 then self.page_t0 = core().now() end
    local r = http.request(spec)
    local tm = r.timings
    local connect = tm.connect + tm.tls
    if connect > 0 then
      core().trend("connect", connect) -- Tsung's `connect` statistic
      self:set_connected(true)
    end
    if r.status ~= 0 then return r end
    self:set_connected(false)
    local name, retry = tsung_error(r)
    if r.error_kind == "cancelled" then throw("abort", r.error) end
    counter(name)
    if not retry then throw("abort", r.error) end
    if tries >= self.T.max_retries then
      counter("error_abort_max_conn_retries")
      throw("abort", r.error)
    end
    tries = tries + 1
    self:pause(self.T.retry_timeout * tries / 1000)
  end
end

-- s:request{...}: one <request>: built, sent (no redirects), then dyn variables, then matches.
-- A transport error ends the user's session, as it does in Tsung.
function S:request(q)
  local loops = 0
  while true do
    local spec = self:build(q)
    local r = self:send(spec)
    if spec.version == "1.0" or (r:header("connection") or ""):lower():find("close", 1, true) then
      self:set_connected(false) -- the server closes it (HTTP/1.0 always does)
    end
    if r:header("set-cookie") then -- the names the jar may hold, for add_cookie to send them too
      for _, n in ipairs(ext.re_gmatch_all(r.headers["set-cookie"], "(?:^|,)\\s*([^=;,\\s]+)=")) do
        self.cookie_names[n] = true
      end
    end
    local raw_text
    local function raw()
      if not raw_text then raw_text = raw_response(r) end
      return raw_text
    end
    self:extract(q.dyn, r, raw)
    if self:check_matches(q.matches, r, raw, spec.url, loops) ~= "loop" then return r end
    loops = loops + 1
  end
end

------------------------------------------------------------------------------------------------
-- setdynvars

local files = {} -- path -> { lines, name, path }: a file_server file, read once per thread

local function file_source(T, fileid)
  local name = T.file_servers[fileid or "default"]
  if not name then error("setdynvars: no file_server with id '" .. tostring(fileid or "default") .. "'", 0) end
  local p = bundle_path(name)
  if not p then error("setdynvars: cannot read " .. name .. " (file_server " .. tostring(fileid) .. ")", 0) end
  local f = files[p]
  if f then return f end
  local fh = io.open(p, "rb")
  local text = fh:read("*a")
  fh:close()
  local lines = {}
  for line in text:gmatch("[^\n]+") do
    line = line:gsub("\r$", "")
    if line ~= "" then lines[#lines + 1] = line end
  end
  f = { lines = lines, name = name, path = p }
  files[p] = f
  return f
end

local function split_plain(line, d)
  local out, i = {}, 1
  while true do
    local a, b = line:find(d, i, true)
    if not a then out[#out + 1] = line:sub(i); return out end
    out[#out + 1] = line:sub(i, a - 1)
    i = b + 1
  end
end

local function random_lower(n)
  local t = {}
  for i = 1, n do t[i] = string.char(96 + math.random(26)) end
  return table.concat(t)
end

-- s:setdynvars{sourcetype = ..., vars = {...}, ...}
function S:setdynvars(o)
  local vars, kind = o.vars or {}, o.sourcetype
  if kind == "random_number" then
    local a, b = tonumber(self:subst(o.start)) or 1, tonumber(self:subst(o["end"])) or 10
    for _, v in ipairs(vars) do self.vars[v] = tostring(math.random(math.min(a, b), math.max(a, b))) end
  elseif kind == "random_string" then
    for _, v in ipairs(vars) do self.vars[v] = random_lower(tonumber(o.length) or 20) end
  elseif kind == "urandom_string" then
    for _, v in ipairs(vars) do self.vars[v] = ext.random_string(tonumber(o.length) or 20) end
  elseif kind == "value" then
    for _, v in ipairs(vars) do self.vars[v] = self:subst(tostring(o.value or "")) end
  elseif kind == "server" then
    if vars[1] then self.vars[vars[1]] = self.host end
    if vars[2] then self.vars[vars[2]] = tostring(self.port) end
  elseif kind == "jsonpath" then
    local ok, doc = pcall(cjson.decode, self.vars[o.from] or "")
    local list = ok and jsonpath(doc, o.jsonpath or "") or {}
    if not ok then counter("error_json_unparsable") end
    for _, v in ipairs(vars) do self.vars[v] = list[1] or ""; self.lists[v] = list end
  elseif kind == "file" then
    local f = file_source(self.T, o.fileid)
    local n = #f.lines
    if n == 0 then error("setdynvars: " .. f.name .. " has no lines", 0) end
    local line
    if o.order == "random" then
      line = f.lines[math.random(n)]
    else -- iter: one position for all users of the run (every worker of a cluster), wrapping
      local k, err = csv.position("tsung.iter " .. f.name, run_key(self.vu))
      if not k then error("setdynvars: " .. err, 0) end
      line = f.lines[(k - 1) % n + 1]
    end
    local fields = split_plain(line, o.delimiter or ";")
    for i, v in ipairs(vars) do if fields[i] ~= nil then self.vars[v] = fields[i] end end
  elseif kind == "erlang" and builtins[o.callback or ""] then
    for _, v in ipairs(vars) do self.vars[v] = builtins[o.callback](self) end
  else
    error("setdynvars: sourcetype '" .. tostring(kind) .. "' cannot run here", 0)
  end
end

------------------------------------------------------------------------------------------------
-- control flow: for, repeat, if, foreach, abort

-- Tsung's comparisons: eq/neq compare strings, the others numbers (strings when either is not a
-- number). Tsung 1.7.0's parser turns gte into gt and lte into lt; we do the same, so a
-- configuration behaves here as it does under Tsung.
local function compare(a, op, b)
  if op == "eq" then return a == b end
  if op == "neq" then return a ~= b end
  local x, y = tonumber(a), tonumber(b)
  if not x or not y then x, y = tostring(a), tostring(b) end
  if op == "gt" or op == "gte" then return x > y end -- gte as gt: Tsung 1.7.0's quirk
  if op == "lt" or op == "lte" then return x < y end -- lte as lt: Tsung 1.7.0's quirk
  error("unknown comparison '" .. tostring(op) .. "' (eq, neq, gt, gte, lt, lte)", 0)
end

-- s:test(var, op, value) for <if>: an undefined variable counts error_if_undef and the body runs,
-- as Tsung does.
function S:test(var, op, value)
  local v = self:lookup(var)
  if v == nil then
    counter("error_if_undef")
    return true
  end
  return compare(tostring(v), op, self:subst(tostring(value or "")))
end

-- for _ in s:for_loop(var, from, to, incr): inclusive; the body runs at least once (Tsung tests
-- at the end); the next value is the variable's current value plus incr.
function S:for_loop(var, from, to, incr)
  local first = true
  local step = tonumber(self:subst(tostring(incr or 1))) or 1
  local last = tonumber(self:subst(tostring(to)))
  if not last then error("for: 'to' is not a number: " .. tostring(to), 0) end
  return function()
    local i
    if first then
      first = false
      i = tonumber(self:subst(tostring(from)))
      if not i then error("for: 'from' is not a number: " .. tostring(from), 0) end
    else
      i = (tonumber(self.vars[var]) or 0) + step
      if i > last then return nil end
    end
    self.vars[var] = tostring(i)
    return i
  end
end

-- s:repeat_loop({name, max_repeat}, body, {kind = while|until, var, op, value}): a do-while, as
-- Tsung 1.7 runs it (ts_client.erl): after each pass the variable named like the repeat counts
-- the passes (%%_NAME%% is 2 in the second pass; it is not reset when the loop ends); past
-- max_repeat (default 20) it stops and counts max_repeat; a condition on a variable the user does
-- not have counts error_repeat_NAMEundef and leaves the loop.
function S:repeat_loop(opts, body, cond)
  local name = opts and opts.name or "repeat"
  local max = tonumber(opts and opts.max_repeat) or 20
  while true do
    body()
    if not cond then return end
    local iteration = tonumber(self.vars[name]) or 1
    if iteration > max then
      counter("max_repeat")
      return
    end
    local v = self:lookup(cond.var)
    if v == nil then
      counter("error_repeat_" .. name .. "undef")
      return
    end
    local holds = compare(tostring(v), cond.op, self:subst(tostring(cond.value or "")))
    self.vars[name] = tostring(iteration + 1)
    if holds ~= (cond.kind ~= "until") then return end
  end
end

-- s:loop_back(n, body) for <match do="loop" loop_back="n">: body holds the n actions before a
-- request (as Tsung counts them) and that request, last. When the match fires, the user waits
-- sleep_loop seconds and runs body again, at most max_loop times, as Tsung goes back n actions.
function S:loop_back(n, body)
  local outer = self.loop_block
  local block = { back = n, runs = 0 }
  repeat
    block.again = false
    self.loop_block = block
    body()
  until not block.again
  self.loop_block = outer
end

-- for _ in s:foreach(name, listvar, {include, exclude}): each element of a list variable (an
-- xpath or jsonpath result), those matching include and not exclude, in vars[name].
function S:foreach(name, listvar, o)
  o = o or {}
  local list = self.lists[listvar] or (self.vars[listvar] and { self.vars[listvar] }) or {}
  local i = 0
  return function()
    while true do
      i = i + 1
      local v = list[i]
      if v == nil then return nil end
      local keep = (not o.include or ext.re_match(v, o.include) ~= nil) and
                   (not o.exclude or ext.re_match(v, o.exclude) == nil)
      if keep then
        self.vars[name] = v
        return v
      end
    end
  end
end

-- s:change_type{host, port, server_type, store, restore}: later requests of the user go to this
-- server (relative URLs, Host header), in a new session of it: an empty cookie jar. store = true
-- first keeps the session being left (its cookies; its connections stay open) under the server it
-- was on; restore = true on a later change_type back to that server goes on with that session
-- instead of a new one. Without store the connections to the server left are closed. (Tsung keeps one stored
-- session per protocol; as every one is HTTP here, they are kept per server.) "%%_var%%" host
-- and port are substituted.
function S:change_type(o)
  local host, port = self:subst(o.host), tonumber(self:subst(tostring(o.port)))
  if not host or host == "" or not port then error("change_type: needs a host and a port number", 0) end
  if bool(o.store) then
    self.stored = self.stored or {}
    self.stored[self.base] = { jar = http.cookies.save(), names = self.cookie_names }
  else -- the connections to the server left close; a stored server's stay open
    core().close_connections(self.base)
    self:set_connected(false)
  end
  local t = (o.server_type or "tcp"):lower()
  self.scheme = (t == "ssl" or t == "ssl6" or t == "tls") and "https" or "http"
  self.host, self.port = host, port
  self.base = origin(self.scheme, self.host, self.port)
  local kept = bool(o.restore) and self.stored and self.stored[self.base]
  self.cookie_names = {}
  if kept then
    http.cookies.restore(kept.jar)
    for n in pairs(kept.names) do self.cookie_names[n] = true end
  else
    http.cookies.clear()
  end
end

-- s:abort("session" | "all")
function S:abort(kind)
  if kind == "all" then throw("abort_test", "<abort type=\"all\"/>") end
  throw("abort", "<abort/>")
end

ts.State = S
ts.is_control = is_control

return ts
