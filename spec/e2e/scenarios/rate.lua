-- Constant iteration rate: 100 iterations per second for 2 s over a pool of 10 VUs.
local http = require "parrot.http"
return parrot.scenario {
  name = "rate",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.rate { rate = 100, vus = 10, duration = "2s" },
  sessions = { { name = "one", run = function() http.get("/", { name = "root" }) end } },
}
