-- `make bench`, coordinated omission: a constant RATE of requests/s over a pool of VUS against a
-- server that stalls for a second once (spec/bench/stall_server.py). Latency counts from each
-- request's intended start, so the requests the stall held back show in the percentiles.
--   parrot run spec/bench/scenarios/stall.lua -e TARGET=http://127.0.0.1:8080 -e RATE=200 -e VUS=300
local http = require "parrot.http"

local GET = { name = "stall" }

return parrot.scenario {
  name = "stall",
  target = parrot.env.TARGET or "http://127.0.0.1:8080",
  load = parrot.rate { rate = tonumber(parrot.env.RATE or 200), vus = tonumber(parrot.env.VUS or 300),
                       duration = parrot.env.DURATION or "10s", graceful_stop = "3s" },
  run = function() http.get("/", GET) end,
}
