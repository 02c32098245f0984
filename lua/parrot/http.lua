-- parrot.http: the HTTP API of scenarios. It turns options into one call of the C client
-- (parrot.core.request, which parks the virtual user until the response is complete), follows
-- redirects, and adds the response methods :json(), :match() and :xpath().
local core = require "parrot.core"
local ext = require "parrot.ext"
local cjson = require "cjson"

local http = {}

-- Set by the runner: the scenario's target and defaults, the CLI's --insecure.
http.defaults = { target = nil, headers = {}, insecure = false }

local REDIRECT = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }
local METHODS = { "get", "post", "put", "patch", "delete", "head", "options" }

local function urlencode_table(t)
  local keys, parts = {}, {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local v = t[k]
    if type(v) == "table" then
      for _, x in ipairs(v) do parts[#parts + 1] = ext.url_encode(tostring(k)) .. "=" .. ext.url_encode(tostring(x)) end
    else
      parts[#parts + 1] = ext.url_encode(tostring(k)) .. "=" .. ext.url_encode(tostring(v))
    end
  end
  return table.concat(parts, "&")
end
http.urlencode = urlencode_table

local function absolute(u)
  if u:find("^https?://") then return u end
  local base = http.defaults.target
  if not base then
    error("relative URL '" .. u .. "' needs the scenario's target (target = \"http://host:port\")", 4)
  end
  if u:sub(1, 1) ~= "/" then u = "/" .. u end
  return (base:gsub("/+$", "")) .. u
end

-- The path of a URL without its query: "METHOD path" is the default statistics name.
local function path_of(u)
  local path = u:match("^https?://[^/?#]*([^?#]*)") or u:match("^([^?#]*)")
  if path == "" then path = "/" end
  return path
end

-- Requests name the same few URLs over and over: their absolute form and default names are
-- worked out once per URL (for the current target) and kept, up to URL_CACHE_MAX entries.
local URL_CACHE_MAX = 4096
local url_cache, url_cache_n, url_cache_target = {}, 0, nil

local function resolve(method, u)
  if url_cache_target ~= http.defaults.target then
    url_cache, url_cache_n, url_cache_target = {}, 0, http.defaults.target
  end
  local e = url_cache[u]
  if not e then
    local abs = absolute(u)
    e = { abs = abs, path = path_of(abs), names = {} }
    if url_cache_n >= URL_CACHE_MAX then url_cache, url_cache_n = {}, 0 end
    url_cache[u], url_cache_n = e, url_cache_n + 1
  end
  local name = e.names[method]
  if not name then
    name = method .. " " .. e.path
    e.names[method] = name
  end
  return e.abs, name
end

local UPPER = {}
for _, m in ipairs(METHODS) do UPPER[m], UPPER[m:upper()] = m:upper(), m:upper() end

-- A timeout option in seconds: a number as it is, a string ("5s", "250ms") converted.
local duration
local function seconds(v, what)
  if v == nil or type(v) == "number" then return v end
  duration = duration or require("parrot").duration
  return duration(v, what)
end

-- Headers as the flat array the C client takes ({name1, value1, ...}), or nil for none. The
-- scenario's headers alone are flattened once and the list reused (the C client never changes it).
local dflt_src, dflt_list
local function header_list(o, ctype)
  local own, dflt = o and o.headers, http.defaults.headers
  if not own and not ctype then
    if next(dflt) == nil then return nil end
    if dflt_src ~= dflt then
      dflt_list = {}
      for n, v in pairs(dflt) do
        dflt_list[#dflt_list + 1] = n
        dflt_list[#dflt_list + 1] = tostring(v)
      end
      dflt_src = dflt
    end
    return dflt_list
  end
  local hdrs, seen = {}, {}
  for n, v in pairs(own or {}) do
    hdrs[#hdrs + 1] = n
    hdrs[#hdrs + 1] = tostring(v)
    seen[n:lower()] = true
  end
  for n, v in pairs(dflt) do
    if not seen[n:lower()] then
      hdrs[#hdrs + 1] = n
      hdrs[#hdrs + 1] = tostring(v)
      seen[n:lower()] = true
    end
  end
  if ctype and not seen["content-type"] then
    hdrs[#hdrs + 1] = "Content-Type"
    hdrs[#hdrs + 1] = ctype
  end
  return hdrs
end

-- core.request with the options send() read (see there); the ones that are nil are left out.
local function request(method, u, hdrs, body, name, flags, to, cto, maxb, tls, expect)
  if to or cto or maxb or tls or expect then
    return core.request(method, u, hdrs, body, name, nil, flags, to, cto, maxb, tls, expect)
  end
  return core.request(method, u, hdrs, body, name, nil, flags)
end

-- One request and the redirects after it. `o` is the caller's options table (never changed);
-- `body` a raw body given outside it (http.post(url, body)).
local function send(method, u, o, body)
  method = UPPER[method] or method:upper()
  u = assert(u, "http.request needs a url")
  local q = o and o.query
  if q then
    q = type(q) == "table" and urlencode_table(q) or tostring(q)
    if q ~= "" then u = u .. (u:find("?", 1, true) and "&" or "?") .. q end
  end
  local name
  u, name = resolve(method, u)
  if o and o.name then name = o.name end
  local ctype
  if type(body) == "table" then -- http.post(url, {k = v}): a form, as k6 sends it
    body, ctype = urlencode_table(body), "application/x-www-form-urlencoded"
  elseif body == nil and o then
    if o.form then
      body = type(o.form) == "table" and urlencode_table(o.form) or tostring(o.form)
      ctype = "application/x-www-form-urlencoded"
    elseif o.json ~= nil then
      body = cjson.encode(o.json)
      ctype = "application/json"
    else
      body = o.body
    end
  end
  if body ~= nil then body = tostring(body) end
  local hdrs = header_list(o, ctype)
  -- the options the C client reads, as core.request takes them: no table walk per request
  local flags, to, cto, maxb, tls, expect = http.defaults.insecure and 1 or 0
  if o then
    if o.insecure ~= nil then flags = o.insecure and 1 or 0 end
    if o.discard_body then flags = flags + 2 end
    if o.compression then flags = flags + 4 end
    if o.cookies == false then flags = flags + 8 end
    if o.version == 1.0 or o.version == "1.0" then flags = flags + 16 end
    to, cto = seconds(o.timeout, "timeout"), seconds(o.connect_timeout, "connect_timeout")
    maxb, tls, expect = o.max_body, o.tls, o.expect
  end
  local r, status = request(method, u, hdrs, body, name, flags, to, cto, maxb, tls, expect)
  local left = o and o.redirects
  if left == nil then left = 10 elseif left == false then left = 0 end
  while REDIRECT[status] and left > 0 do
    local loc = r:header("location")
    if not loc then break end
    local nu = ext.url_resolve(u, loc)
    if not nu then break end
    left = left - 1
    if status == 303 or ((status == 301 or status == 302) and method ~= "GET" and method ~= "HEAD") then
      method, body = "GET", nil
      if hdrs then
        local h2 = {}
        for i = 1, #hdrs, 2 do
          local n = hdrs[i]:lower()
          if n ~= "content-type" and n ~= "content-length" then h2[#h2 + 1] = hdrs[i]; h2[#h2 + 1] = hdrs[i + 1] end
        end
        hdrs = h2
      end
    end
    u = nu
    if not (o and o.name) then name = method .. " " .. path_of(u) end
    r, status = request(method, u, hdrs, body, name, flags, to, cto, maxb, tls, expect)
  end
  return r
end

-- http.request{method, url, headers, query, body | form | json, name, timeout, redirects,
--              insecure, discard_body, compression, expect, max_body, version, cookies,
--              tls = {cert, key, ca}}
function http.request(spec)
  return send(spec.method or "GET", spec.url, spec, nil)
end

local WITH_BODY = { POST = true, PUT = true, PATCH = true }
for _, m in ipairs(METHODS) do
  local M = m:upper()
  if WITH_BODY[M] then
    -- http.post(url, body [, opts]), as k6: a string body is sent as it is, a table as a form
    -- (application/x-www-form-urlencoded), nil for none (or body/form/json in opts).
    http[m] = function(u, body, o) return send(M, u, o, body) end
  else
    -- http.get(url [, opts])
    http[m] = function(u, o) return send(M, u, o, nil) end
  end
end

-- Cookies of the current virtual user.
http.cookies = {
  get = function(name, u) return core.cookie(absolute(u or "/"), name) end,
  add = function(c) core.cookie_add(assert(c.domain, "cookie domain"), c.path or "/", assert(c.name), tostring(c.value)) end,
  clear = function() core.cookies_clear() end,
  -- http.cookies.save() -> saved: a copy of the jar as it is now; http.cookies.restore(saved)
  -- makes the jar hold those cookies again (and only those).
  save = function() return core.cookies_save() end,
  restore = function(saved) core.cookies_restore(saved) end,
}

-- Response methods.
local methods = core.response_methods
local json_cache = setmetatable({}, { __mode = "k" })

-- r:json() -> the decoded body (decoded once); raises on a body that is not JSON.
function methods.json(r)
  local v = json_cache[r]
  if v == nil then
    local body = r.body
    if not body or body == "" then error("response of " .. r.url .. " has no body to decode as JSON", 2) end
    local ok, res = pcall(cjson.decode, body)
    if not ok then error("response of " .. r.url .. " is not JSON: " .. tostring(res), 2) end
    v = res
    json_cache[r] = v
  end
  return v
end

-- r:match(regex) -> the captures of a PCRE2 regular expression (or the whole match), nil if none.
function methods.match(r, re) return ext.re_match(r.body or "", re) end
-- r:match_all(regex) -> every match (first capture or whole match), as an array.
function methods.match_all(r, re) return ext.re_gmatch_all(r.body or "", re) end

-- r:xpath(expr) -> array of strings; HTML unless the response says XML.
function methods.xpath(r, expr)
  local ct = (r:header("content-type") or ""):lower()
  local html = not (ct:find("xml", 1, true) and not ct:find("html", 1, true))
  return ext.xpath(r.body or "", expr, html)
end

return http
