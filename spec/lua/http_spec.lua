-- parrot.http: the requests a virtual user makes, and what it can read from the responses.
-- Run with `parrot test spec/lua/http_spec.lua`; spec/run.sh starts `parrot target` and sets
-- PARROT_TARGET to its address.
local http = require "parrot.http"
local T = os.getenv("PARROT_TARGET") or "http://127.0.0.1:8080"

describe("http methods", function()
  it("http.get fetches a page", function()
    local r = http.get(T .. "/")
    assert.equal(200, r.status)
    assert.truthy(r.ok)
    assert.matches("parrot target", r.body)
  end)

  it("http.post sends its second argument as the body", function()
    local r = http.post(T .. "/echo", "hello")
    local echo = r:json()
    assert.equal("POST", echo.method)
    assert.equal("hello", echo.body)
  end)

  it("http.post with a table as the body sends it as a form, as k6 does", function()
    local echo = http.post(T .. "/echo", { user = "alice", pass = "a&b" }):json()
    assert.equal("pass=a%26b&user=alice", echo.body)
    assert.equal("application/x-www-form-urlencoded", echo.headers["content-type"])
  end)

  it("http.post never changes the options table it is given", function()
    local opts = { name = "echo", headers = { ["X-A"] = "1" } }
    http.post(T .. "/echo", "secret-payload", opts)
    assert.is_nil(opts.body)
    local again = http.get(T .. "/echo", opts):json()
    assert.equal("", again.body)
  end)

  it("a VU repeating a request sends what changed: headers, body, cookies", function()
    local a = http.get(T .. "/echo", { headers = { ["X-N"] = "1" } }):json()
    local b = http.get(T .. "/echo", { headers = { ["X-N"] = "2" } }):json()
    assert.equal("1", a.headers["x-n"])
    assert.equal("2", b.headers["x-n"])
    assert.equal("ab", http.post(T .. "/echo", "ab"):json().body)
    assert.equal("abc", http.post(T .. "/echo", "abc"):json().body)
    http.cookies.clear()
    assert.is_nil(http.get(T .. "/echo"):json().headers.cookie)
    http.get(T .. "/cookie/set?repeat=yes")
    assert.equal("repeat=yes", http.get(T .. "/echo"):json().headers.cookie)
    http.cookies.clear()
  end)

  it("http.put and http.patch take a body too", function()
    assert.equal("PUT", http.put(T .. "/echo", "x"):json().method)
    local p = http.patch(T .. "/echo", "y"):json()
    assert.equal("PATCH", p.method)
    assert.equal("y", p.body)
  end)

  it("http.delete, http.head and http.options send their method", function()
    assert.equal("DELETE", http.delete(T .. "/echo"):json().method)
    local h = http.head(T .. "/")
    assert.equal(200, h.status)
    assert.equal("", h.body)
    assert.equal("OPTIONS", http.options(T .. "/echo"):json().method)
  end)

  it("http.request takes everything in one table", function()
    local r = http.request { method = "put", url = T .. "/echo", body = "data",
                             headers = { ["X-Test"] = "1" } }
    local echo = r:json()
    assert.equal("PUT", echo.method)
    assert.equal("data", echo.body)
    assert.equal("1", echo.headers["x-test"])
  end)
end)

describe("request options", function()
  it("headers are sent as given", function()
    local echo = http.get(T .. "/echo", { headers = { ["X-Request-Id"] = "42" } }):json()
    assert.equal("42", echo.headers["x-request-id"])
  end)

  it("a query table is encoded into the URL (keys sorted, form encoding)", function()
    local echo = http.get(T .. "/echo", { query = { q = "a b&c", page = 2 } }):json()
    assert.equal("page=2&q=a+b%26c", echo.query)
  end)

  it("a query table adds to a query already in the URL", function()
    local echo = http.get(T .. "/echo?x=1", { query = { y = 2 } }):json()
    assert.equal("x=1&y=2", echo.query)
  end)

  it("form = {...} posts an urlencoded form", function()
    local echo = http.post(T .. "/echo", nil, { form = { user = "alice", pass = "s3cret&" } }):json()
    assert.equal("pass=s3cret%26&user=alice", echo.body)
    assert.equal("application/x-www-form-urlencoded", echo.headers["content-type"])
  end)

  it("json = {...} posts a JSON body", function()
    local echo = http.post(T .. "/echo", nil, { json = { id = 7, tags = { "a" } } }):json()
    assert.equal("application/json", echo.headers["content-type"])
    assert.same({ id = 7, tags = { "a" } }, require("cjson").decode(echo.body))
  end)

  it("a request that takes longer than its timeout fails with error_kind 'timeout'", function()
    local r = http.get(T .. "/delay/2000", { timeout = "200ms" })
    assert.equal(0, r.status)
    assert.falsy(r.ok)
    assert.equal("timeout", r.error_kind)
    assert.not_nil(r.error)
  end)

  it("redirects are followed (up to 10); r.url is where they ended", function()
    -- /redirect/3 -> /redirect/2 -> /redirect/1 -> /redirect/0 -> /
    local r = http.get(T .. "/redirect/3")
    assert.equal(200, r.status)
    assert.equal(T .. "/", r.url)
  end)

  it("redirects = false returns the redirect itself", function()
    local r = http.get(T .. "/redirect/3", { redirects = false })
    assert.equal(302, r.status)
    assert.equal("/redirect/2", r:header("Location"))
  end)

  it("discard_body counts the bytes but keeps none", function()
    local r = http.get(T .. "/bytes/5000", { discard_body = true })
    assert.equal(200, r.status)
    assert.is_nil(r.body)
    assert.equal(5000, r.bytes)
  end)

  it("version = \"1.0\" (or 1.0) sends HTTP/1.0: the connection is not kept for the next request", function()
    http.get(T .. "/json")
    assert.truthy(http.get(T .. "/json").reused, "HTTP/1.1: kept alive")
    for _, v in ipairs({ "1.0", 1.0 }) do
      http.get(T .. "/json", { version = v })
      assert.falsy(http.get(T .. "/json", { version = v }).reused, "HTTP/1.0 (" .. type(v) .. "): a new connection each time")
    end
  end)

  it("compression = true asks for gzip and decodes the body", function()
    local r = http.get(T .. "/gzip", { compression = true })
    assert.equal("gzip", r.headers["content-encoding"])
    assert.equal(3, r:json().count)
  end)

  it("a status >= 400 is a failure unless listed in expect", function()
    local r = http.get(T .. "/status/404")
    assert.equal(404, r.status)
    assert.falsy(r.ok)
    assert.equal("status", r.error_kind)
    local e = http.get(T .. "/status/404", { expect = { 200, 404 } })
    assert.truthy(e.ok)
    assert.is_nil(e.error)
  end)

  it("expect can also make a 200 a failure", function()
    local r = http.get(T .. "/", { expect = { 201 } })
    assert.falsy(r.ok)
  end)
end)

describe("responses", function()
  it("headers can be read in any case", function()
    local r = http.get(T .. "/json")
    assert.equal("application/json", r.headers["content-type"])
    assert.equal("application/json", r.headers["Content-Type"])
    assert.equal("application/json", r:header("CONTENT-TYPE"))
  end)

  it("r.head is the status line and headers as received: case, order and repeats kept", function()
    local r = http.get(T .. "/cookie/set?a=1&b=2")
    assert.equal("OK", r.reason)
    assert.matches("^HTTP/1%.1 200 OK\r\n", r.head)
    assert.matches("\r\nContent%-Type: text/plain\r\n", r.head)
    assert.matches("Set%-Cookie: a=1; Path=/\r\nSet%-Cookie: b=2; Path=/\r\n", r.head)
    assert.matches("\r\n\r\n$", r.head)
    assert.equal("a=1; Path=/, b=2; Path=/", r.headers["set-cookie"])
  end)

  it("core.intend(t) makes the VU's next request count its latency from t (the rate model's intended start)", function()
    local core = require "parrot.core"
    core.intend(core.now() - 0.25) -- the iteration should have started 250 ms ago
    local late = http.get(T .. "/")
    local next_one = http.get(T .. "/")
    assert.truthy(late.timings.latency >= 250, "latency from the intended start: " .. late.timings.latency)
    assert.truthy(late.timings.total < 250, "the exchange itself was quick: " .. late.timings.total)
    assert.truthy(next_one.timings.latency < 250, "only the next request: " .. next_one.timings.latency)
  end)

  it("r.timings has the phases of the request in milliseconds", function()
    local r = http.get(T .. "/delay/50")
    local t = r.timings
    for _, k in ipairs { "dns", "connect", "tls", "send", "ttfb", "total", "latency" } do
      assert.equal("number", type(t[k]), k)
    end
    assert.truthy(t.total >= 50, "total includes the 50 ms delay: " .. t.total)
    assert.truthy(t.ttfb <= t.total)
  end)

  it("r:json() decodes a JSON body", function()
    local data = http.get(T .. "/json"):json()
    assert.equal(3, data.count)
    assert.equal("apple", data.items[1].name)
  end)

  it("r:json() raises on a body that is not JSON", function()
    local r = http.get(T .. "/")
    assert.has_error(function() r:json() end, "not JSON")
  end)

  it("r:match() returns the capture of a regular expression, nil when none", function()
    local r = http.get(T .. "/")
    assert.equal("abc123", r:match('name="token" value="([^"]+)"'))
    assert.is_nil(r:match("no such text"))
  end)

  it("r:xpath() queries the HTML of a page", function()
    local r = http.get(T .. "/")
    assert.same({ "abc123" }, r:xpath("//input[@name='token']/@value"))
    assert.same({ "/json" }, r:xpath("//a/@href"))
  end)

  it("r.url, r.proto and r.reused tell where and how it went", function()
    local r = http.get(T .. "/json")
    assert.equal(T .. "/json", r.url)
    assert.equal("HTTP/1.1", r.proto)
    assert.truthy(http.get(T .. "/json").reused, "the second request reuses the kept-alive connection")
  end)

  it("a refused connection is an error of kind 'connect', not a crash", function()
    local r = http.get("http://127.0.0.1:9/")
    assert.equal(0, r.status)
    assert.equal("connect", r.error_kind)
  end)
end)

describe("request names", function()
  -- The name groups requests in the statistics; it is not visible on the response, so these
  -- specs read the default the way the library builds it: METHOD and path, without the query.
  it("defaults to METHOD /path without the query", function()
    local seen
    local core = require "parrot.core"
    local real = core.request
    core.request = function(...) seen = select(5, ...); return real(...) end
    local ok, err = pcall(http.get, T .. "/item/3?x=1")
    core.request = real
    assert(ok, err)
    assert.equal("GET /item/3", seen)
  end)

  it("name = ... replaces it", function()
    local seen
    local core = require "parrot.core"
    local real = core.request
    core.request = function(...) seen = select(5, ...); return real(...) end
    local ok, err = pcall(http.get, T .. "/item/3", { name = "item" })
    core.request = real
    assert(ok, err)
    assert.equal("item", seen)
  end)
end)

describe("relative URLs", function()
  it("are resolved against the scenario's target", function()
    -- in a scenario, `target = "http://host:port"` sets http.defaults.target
    local saved = http.defaults.target
    http.defaults.target = T
    local ok, r = pcall(http.get, "/json")
    http.defaults.target = saved
    assert(ok, r)
    assert.equal(200, r.status)
    assert.equal(T .. "/json", r.url)
  end)

  it("raise a clear error when the scenario has no target", function()
    local saved = http.defaults.target
    http.defaults.target = nil
    local ok, err = pcall(http.get, "/json")
    http.defaults.target = saved
    assert.falsy(ok)
    assert.matches("needs the scenario's target", err)
  end)
end)
