-- One GET / per iteration, no think time: the exact-count scenario (totals.requests equals the
-- number of iterations and the target's access log lines). Run with --iterations N.
local http = require "parrot.http"
return parrot.scenario {
  name = "count",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 4, duration = "20s" },
  sessions = { { name = "one", run = function()
    local r = http.get("/", { name = "root" })
    check(r.status == 200, "root is 200")
  end } },
}
