-- One VU whose iteration outlasts the 1 s duration: the run goes on in its graceful stop (up to
-- 5 s) until the iteration ends, about 2.5 s in. The progress line says so.
local http = require "parrot.http"
return parrot.scenario {
  name = "linger",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 1, duration = "1s", graceful_stop = "5s" },
  run = function()
    http.get("/", { name = "before" })
    sleep(2.5)
    http.get("/", { name = "after" })
  end,
}
