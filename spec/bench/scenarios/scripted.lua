-- `make bench`, scripted workload: two requests per iteration, a header read on each response and
-- one check per iteration. spec/bench/scenarios/scripted_wrk.lua makes wrk do the same work.
--   parrot run spec/bench/scenarios/scripted.lua -e TARGET=http://127.0.0.1:8080 --threads 1 --vus 50
local http = require "parrot.http"

local A, B = { name = "a" }, { name = "b" } -- options tables made once, not per request

return parrot.scenario {
  name = "scripted",
  target = parrot.env.TARGET or "http://127.0.0.1:8080",
  load = parrot.closed { vus = 50, duration = "10s", graceful_stop = "1s" },
  run = function()
    local a = http.get("/a", A)
    local b = http.get("/b", B)
    check(a:header("x-bench") == "a" and b:header("x-bench") == "b", "x-bench says which path")
  end,
}
