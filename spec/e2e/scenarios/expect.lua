-- expect = {404}: a 404 counts as success; the same request without expect is a status error.
local http = require "parrot.http"
return parrot.scenario {
  name = "expect",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 2, iterations = 10, duration = "5s" },
  sessions = { { name = "one", run = function()
    http.get("/status/404", { name = "expected", expect = { 404 } })
    http.get("/status/404", { name = "unexpected" })
  end } },
}
