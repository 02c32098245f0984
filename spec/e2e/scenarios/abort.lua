-- An abort threshold no request can meet: the run, planned for 20 s, stops within a couple of
-- seconds with exit code 99.
local http = require "parrot.http"
return parrot.scenario {
  name = "abort",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 2, duration = "20s" },
  thresholds = { ["home:p95"] = { "< 0.001ms", abort = true } },
  run = function() http.get("/", { name = "home" }); sleep(0.01) end,
}
