-- Open model: RATE new sessions per second for 2 s (Poisson arrivals), each one GET PATH, at most
-- MAX users at once (arrivals beyond that are dropped).
local http = require "parrot.http"
local path = parrot.env.OPEN_PATH or "/"
return parrot.scenario {
  name = "open",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.open { phases = { { rate = tonumber(parrot.env.OPEN_RATE or "50"), duration = "2s" } },
                       max_users = tonumber(parrot.env.OPEN_MAX or "1000") },
  sessions = { { name = "one", run = function() http.get(path, { name = "arrival" }) end } },
}
