-- /redirect/3 is followed to "/" (status 200); with redirects = false the 302 is the answer.
local http = require "parrot.http"
return parrot.scenario {
  name = "redirects",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 1, iterations = 3, duration = "4s" },
  sessions = { { name = "one", run = function()
    local r = http.get("/redirect/3", { name = "follow" })
    check(r.status == 200, "followed to 200")
    check(type(r.url) == "string" and r.url:sub(-1) == "/", "followed url ends in /")
    local n = http.get("/redirect/3", { name = "nofollow", redirects = false, expect = { 302 } })
    check(n.status == 302, "not followed is 302")
  end } },
}
