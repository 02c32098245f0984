-- ITER iterations over 2 VUs, each one GET /delay/DELAY; no duration: the run lasts as long as the
-- iterations take (the cap is 10 minutes, as k6's). With --duration shorter than they need, the
-- run ends at that cap with a warning.
local http = require "parrot.http"
return parrot.scenario {
  name = "iterations",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 2, iterations = tonumber(parrot.env.ITER or "6") },
  run = function() http.get("/delay/" .. (parrot.env.DELAY or "100"), { name = "delay" }) end,
}
