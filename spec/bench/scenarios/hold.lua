-- `make bench`, memory: VUS virtual users that each make one request, then sleep holding their
-- keep-alive connection (http, or https with SCHEME=https). Connections are spread over the ports
-- in PORTS (comma-separated) so the ephemeral ports of one address:port never run out. RAMP
-- (default 0) spreads the VUs' starts: over TLS, a VU that starts once a session is cached resumes
-- it instead of paying a full handshake.
--   parrot run spec/bench/scenarios/hold.lua -e VUS=15000 -e PORTS=8081,8082 -e RAMP=2s --threads 1
local http = require "parrot.http"

-- HOSTS=N: each VU names one of N host names h1.bench .. hN.bench (pinned to 127.0.0.1 with
-- --resolve), so over TLS each is an origin of its own with no session to resume: full handshakes.
local urls, hosts = {}, tonumber(parrot.env.HOSTS)
for p in (parrot.env.PORTS or "8080"):gmatch("%d+") do
  urls[#urls + 1] = (parrot.env.SCHEME or "http") .. "://127.0.0.1:" .. p .. "/"
end
local function url_of(id)
  if not hosts then return urls[id % #urls + 1] end
  return urls[1]:gsub("127%.0%.0%.1", "h" .. (id % hosts + 1) .. ".bench")
end
local HOLD = { name = "hold" }

return parrot.scenario {
  name = "hold",
  insecure = true, -- the bench's nginx has a self-signed certificate
  load = parrot.closed { vus = tonumber(parrot.env.VUS or 1000), duration = parrot.env.DURATION or "10s",
                         graceful_stop = "0s", ramp = parrot.env.RAMP or 0 },
  run = function(vu)
    local r = http.get(url_of(vu.id), HOLD)
    check(r.status == 200, "connected")
    think(3600)
  end,
}
