-- A threshold on a request name that never ran (a typo: "hme" for "home"): it passes, as in k6,
-- but the summary marks it "no data" and a warning says so once.
local http = require "parrot.http"
return parrot.scenario {
  name = "nodata",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 2, iterations = 10 },
  thresholds = { ["hme:p95"] = "< 1s", ["home:p95"] = "< 10s" },
  run = function() http.get("/", { name = "home" }) end,
}
