-- A cookie set by one response is sent by the same VU on the next request.
local http = require "parrot.http"
return parrot.scenario {
  name = "cookies",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 2, iterations = 6, duration = "5s" },
  sessions = { { name = "one", run = function(vu)
    local v = "v" .. vu.id
    http.get("/cookie/set?flavor=" .. v, { name = "set" })
    local r = http.get("/cookie/check", { name = "check" })
    local ok, body = pcall(function() return r:json() end)
    check(ok and body.cookies and body.cookies.flavor == v, "cookie seen")
  end } },
}
