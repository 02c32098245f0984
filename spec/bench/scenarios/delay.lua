-- `make bench`, latency accuracy: one VU asks `parrot target` for /delay/10 in a loop; the delay
-- the target really applied (its X-Delay-Us header) goes to the trend `applied_ms`, so the summary
-- shows it beside the latency parrot measured.
--   parrot target --port 8080 & parrot run spec/bench/scenarios/delay.lua -e TARGET=http://127.0.0.1:8080
local http = require "parrot.http"

local applied = parrot.trend("applied_ms")
local DELAY = { name = "delay" }

return parrot.scenario {
  name = "delay",
  target = parrot.env.TARGET or "http://127.0.0.1:8080",
  load = parrot.closed { vus = 1, duration = "5s" },
  run = function()
    local r = http.get("/delay/10", DELAY)
    local us = tonumber(r:header("x-delay-us"))
    if check(us, "X-Delay-Us present") then applied:add(us / 1000) end
  end,
}
