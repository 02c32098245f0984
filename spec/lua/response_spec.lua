-- Reading a response: every match of a regular expression (r:match_all), and bodies larger than a
-- request's max_body (read and counted, kept only up to max_body, r.truncated set).
-- Run with `parrot test spec/lua/response_spec.lua`; spec/run.sh starts `parrot target` and sets
-- PARROT_TARGET to its address.
local http = require "parrot.http"
local T = os.getenv("PARROT_TARGET") or "http://127.0.0.1:8080"

describe("r:match_all", function()
  it("returns the first capture of every match, in order", function()
    local r = http.get(T .. "/json") -- {"items":[{"id":1,...},{"id":2,...},{"id":3,...}],...}
    assert.same({ "1", "2", "3" }, r:match_all('"id":(\\d+)'))
  end)

  it("returns the whole matches when the expression has no capture", function()
    local r = http.get(T .. "/json")
    assert.same({ '"name":"apple"', '"name":"pear"', '"name":"plum"' }, r:match_all('"name":"[a-z]+"'))
  end)

  it("returns an empty table when nothing matches", function()
    local r = http.get(T .. "/json")
    assert.same({}, r:match_all("no such text"))
  end)

  it("r:match gives only the first match", function()
    local r = http.get(T .. "/json")
    assert.equal("1", r:match('"id":(\\d+)'))
  end)
end)

describe("max_body and r.truncated", function()
  it("a body within max_body is kept whole and not truncated", function()
    local r = http.get(T .. "/bytes/1000", { max_body = 4096 })
    assert.equal(1000, #r.body)
    assert.equal(1000, r.bytes)
    assert.falsy(r.truncated)
  end)

  it("a body past max_body is read to its end and counted, but only max_body bytes are kept", function()
    local r = http.get(T .. "/bytes/100000", { max_body = 1000 })
    assert.equal(200, r.status)
    assert.truthy(r.ok)
    assert.equal(1000, #r.body)
    assert.equal(100000, r.bytes)
    assert.truthy(r.truncated)
  end)

  it("the connection stays usable after a truncated body (the rest was read, not left behind)", function()
    http.get(T .. "/bytes/50000", { max_body = 10 })
    local r = http.get(T .. "/json")
    assert.equal(200, r.status)
    assert.truthy(r.reused)
    assert.equal(3, r:json().count)
  end)

  it("without max_body a 3 MB body is kept whole (the default limit is 10 MB)", function()
    local r = http.get(T .. "/bytes/3000000")
    assert.equal(3000000, #r.body)
    assert.falsy(r.truncated)
  end)
end)
