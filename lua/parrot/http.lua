-- parrot.http: the HTTP API of scenarios. It turns options into one call of the C client
-- (parrot.core.request, which parks the virtual user until the response is complete), follows
-- redirects, and adds the response methods :json(), :match() and :xpath().
local core = require "parrot.core"
local ext = require "parrot.ext"
local cjson = require "cjson"

local http = {}

-- Set by the runner: the scenario's target and defaults, the CLI's --insecure.
http.defaults = { target = nil, headers = {}, insecure = false }
-- The intended start (seconds, core.now() clock) of the current iteration's first request, set
-- by the constant-rate model so coordinated omission cannot hide a stall.
http.intended = nil

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

-- "GET /path" without the query: the default statistics name.
local function default_name(method, u)
  local path = u:match("^https?://[^/?#]*([^?#]*)") or u:match("^([^?#]*)")
  if path == "" then path = "/" end
  return method .. " " .. path
end

local function build(spec)
  local method = (spec.method or "GET"):upper()
  local u = absolute(assert(spec.url, "http.request needs a url"))
  if spec.query then
    local q = type(spec.query) == "table" and urlencode_table(spec.query) or tostring(spec.query)
    if q ~= "" then u = u .. (u:find("?", 1, true) and "&" or "?") .. q end
  end
  local hdrs, seen = {}, {}
  local function add(n, v)
    hdrs[#hdrs + 1] = n
    hdrs[#hdrs + 1] = tostring(v)
    seen[n:lower()] = true
  end
  for n, v in pairs(spec.headers or {}) do add(n, v) end
  for n, v in pairs(http.defaults.headers) do if not seen[n:lower()] then add(n, v) end end
  local body = spec.body
  if spec.form then
    body = type(spec.form) == "table" and urlencode_table(spec.form) or tostring(spec.form)
    if not seen["content-type"] then add("Content-Type", "application/x-www-form-urlencoded") end
  elseif spec.json ~= nil then
    body = cjson.encode(spec.json)
    if not seen["content-type"] then add("Content-Type", "application/json") end
  end
  if body ~= nil then body = tostring(body) end
  local tls = spec.tls or {}
  local opts = {
    name = spec.name or default_name(method, u),
    timeout = spec.timeout and require("parrot").duration(spec.timeout, "timeout"),
    insecure = spec.insecure or http.defaults.insecure,
    discard_body = spec.discard_body, compression = spec.compression,
    max_body = spec.max_body, expect = spec.expect,
    http10 = spec.version == "1.0" or spec.version == 1.0,
    no_cookies = spec.cookies == false,
    tls_cert = tls.cert, tls_key = tls.key, tls_ca = tls.ca,
  }
  return method, u, hdrs, body, opts
end

-- http.request{method, url, headers, query, body | form | json, name, timeout, redirects,
--              insecure, discard_body, compression, expect, max_body, tls = {cert, key, ca}}
function http.request(spec)
  local method, u, hdrs, body, opts = build(spec)
  if http.intended then opts.start, http.intended = http.intended, nil end
  local r = core.request(method, u, hdrs, body, opts)
  local left = spec.redirects
  if left == nil then left = 10 elseif left == false then left = 0 end
  while REDIRECT[r.status] and left > 0 do
    local loc = r:header("location")
    if not loc then break end
    local nu = ext.url_resolve(u, loc)
    if not nu then break end
    left = left - 1
    if r.status == 303 or ((r.status == 301 or r.status == 302) and method ~= "GET" and method ~= "HEAD") then
      method, body = "GET", nil
      local h2 = {}
      for i = 1, #hdrs, 2 do
        local n = hdrs[i]:lower()
        if n ~= "content-type" and n ~= "content-length" then h2[#h2 + 1] = hdrs[i]; h2[#h2 + 1] = hdrs[i + 1] end
      end
      hdrs = h2
    end
    u = nu
    if not spec.name then opts.name = default_name(method, u) end
    opts.start = nil
    r = core.request(method, u, hdrs, body, opts)
  end
  return r
end

for _, m in ipairs(METHODS) do
  local M = m:upper()
  -- http.get(url [, opts]); http.post(url, body_or_nil [, opts]) takes the body second, as k6 does,
  -- or in opts (form/json/body).
  http[m] = function(u, a, b)
    local opts
    if (M == "POST" or M == "PUT" or M == "PATCH") and b ~= nil then
      opts = b
      opts.body = a
    elseif (M == "POST" or M == "PUT" or M == "PATCH") and type(a) ~= "table" and a ~= nil then
      opts = { body = a }
    else
      opts = a or {}
    end
    local spec = {}
    for k, v in pairs(opts) do spec[k] = v end
    spec.method, spec.url = M, u
    return http.request(spec)
  end
end

-- Cookies of the current virtual user.
http.cookies = {
  get = function(name, u) return core.cookie(absolute(u or "/"), name) end,
  add = function(c) core.cookie_add(assert(c.domain, "cookie domain"), c.path or "/", assert(c.name), tostring(c.value)) end,
  clear = function() core.cookies_clear() end,
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
