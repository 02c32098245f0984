-- A scenario with a bug: virtual user 2 spins in an endless loop (line 11) after its first
-- request, so its load thread never returns to its event loop. The worker must say where, and
-- still stop. parrot.env: PORT.
local http = require "parrot.http"
return parrot.scenario {
  name = "stuck",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 2, duration = "30s", graceful_stop = "1s" },
  sessions = { { name = "s", run = function(vu)
    http.get("/echo?stuck")
    if vu.id == 2 then while true do end end
    think(0.05)
  end } },
}
