-- Cookies: every virtual user has its own jar, like a browser. Set-Cookie is stored and sent
-- back on later requests; http.cookies reads and changes the jar from a scenario.
local http = require "parrot.http"
local T = os.getenv("PARROT_TARGET") or "http://127.0.0.1:8080"

describe("the cookie jar", function()
  before_each(function() http.cookies.clear() end)

  it("keeps a cookie the server sets and sends it back", function()
    http.get(T .. "/cookie/set?flavour=oat")
    local seen = http.get(T .. "/cookie/check"):json()
    assert.equal("oat", seen.cookies.flavour)
  end)

  it("logs in with a form, then the session cookie opens /account", function()
    assert.equal(401, http.get(T .. "/account").status)
    local login = http.post(T .. "/login", nil, { form = { user = "alice", pass = "secret" } })
    assert.equal(200, login.status)
    local account = http.get(T .. "/account")
    assert.equal(200, account.status)
    assert.equal("alice", account:json().user)
  end)

  it("http.cookies.get(name, url) reads a cookie for a URL", function()
    http.get(T .. "/cookie/set?lang=fr")
    assert.equal("fr", http.cookies.get("lang", T .. "/"))
    assert.is_nil(http.cookies.get("nothing", T .. "/"))
  end)

  it("http.cookies.add{domain, path, name, value} puts a cookie in the jar", function()
    http.cookies.add { domain = "127.0.0.1", path = "/", name = "ab", value = "b" }
    assert.equal("b", http.cookies.get("ab", T .. "/"))
    local seen = http.get(T .. "/cookie/check"):json()
    assert.equal("b", seen.cookies.ab)
  end)

  it("http.cookies.clear() empties the jar", function()
    http.get(T .. "/cookie/set?k=v")
    http.cookies.clear()
    assert.is_nil(http.cookies.get("k", T .. "/"))
    local seen = http.get(T .. "/cookie/check"):json()
    assert.is_nil(seen.cookies.k)
  end)

  it("http.cookies.save() keeps a copy of the jar; http.cookies.restore(saved) brings it back", function()
    http.get(T .. "/cookie/set?who=alice")
    local alice = http.cookies.save()
    http.cookies.clear()
    http.get(T .. "/cookie/set?who=bob&extra=1")
    local bob = http.cookies.save()
    http.cookies.restore(alice)
    local seen = http.get(T .. "/cookie/check"):json()
    assert.equal("alice", seen.cookies.who)
    assert.is_nil(seen.cookies.extra) -- only what the jar held when it was saved
    http.cookies.restore(bob)
    assert.equal("bob", http.cookies.get("who", T .. "/"))
    assert.equal("1", http.cookies.get("extra", T .. "/"))
    http.cookies.restore(alice) -- a saved jar can be restored again: it does not change
    assert.equal("alice", http.cookies.get("who", T .. "/"))
    assert.has_error(function() http.cookies.restore({}) end)
  end)

  it("cookies = false neither sends nor stores cookies for one request", function()
    http.get(T .. "/cookie/set?k=v")
    local seen = http.get(T .. "/cookie/check", { cookies = false }):json()
    assert.is_nil(seen.cookies.k)
    http.get(T .. "/cookie/set?other=1", { cookies = false })
    assert.is_nil(http.cookies.get("other", T .. "/"))
  end)
end)
