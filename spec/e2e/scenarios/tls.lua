-- HTTPS against -e URL=https://host:port, verified against -e CA=ca.pem when given, else against
-- the system CA bundle (or not at all with --insecure). One GET / per iteration.
local http = require "parrot.http"
local ca = parrot.env.CA
if ca == "" then ca = nil end
return parrot.scenario {
  name = "tls",
  target = parrot.env.URL,
  load = parrot.closed { vus = 2, iterations = 10, duration = "5s" },
  sessions = { { name = "one", run = function()
    local r = http.get("/", { name = "https", timeout = "3s", tls = ca and { ca = ca } or nil })
    check(r.status == 200, "https 200")
  end } },
}
