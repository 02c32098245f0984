-- A threshold on p95 given from the command line: -e P95="< 0.001ms" must fail (exit 99),
-- -e P95="< 10s" must pass (exit 0).
local http = require "parrot.http"
return parrot.scenario {
  name = "thresholds",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 2, iterations = 20, duration = "5s" },
  thresholds = { p95 = parrot.env.P95 or "< 10s" },
  sessions = { { name = "one", run = function() http.get("/") end } },
}
