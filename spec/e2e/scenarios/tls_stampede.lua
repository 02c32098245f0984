-- Users starting all at once against an HTTPS origin no session is cached for yet. nginx answers
-- /reused with "r" when the connection resumed a TLS session and "." after a full handshake: all
-- but the first user of each thread wait for that one's handshake and resume its session.
local http = require "parrot.http"
return parrot.scenario {
  name = "tls stampede",
  target = parrot.env.URL,
  load = parrot.closed { vus = 200, iterations = 200, duration = "20s" },
  sessions = { { name = "one", run = function()
    local r = http.get("/reused", { name = "reused", timeout = 10, tls = { ca = parrot.env.CA } })
    check(r.status == 200, "answered")
    check(r.body == "r", "resumed")
  end } },
}
