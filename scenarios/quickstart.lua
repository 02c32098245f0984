-- quickstart: 20 virtual users for 10 seconds against `parrot target`.
--   parrot target --port 8080 &
--   parrot run scenarios/quickstart.lua -e PORT=8080
local http = require "parrot.http"

return parrot.scenario {
  name = "quickstart",
  target = "http://127.0.0.1:" .. (parrot.env.PORT or "8080"),
  load = parrot.closed { vus = 20, duration = "10s", ramp = "2s" },
  thresholds = {
    p95 = "< 100ms",
    ["errors.rate"] = "< 1%",
    ["home:p99"] = "< 200ms",
  },
  run = function(vu)
    local home = http.get("/", { name = "home" })
    check(home.status == 200, "home is up")

    local list = http.get("/json", { name = "list" })
    check(list, {
      ["list is 200"] = function(r) return r.status == 200 end,
      ["list has items"] = function(r) return #r:json().items > 0 end,
    })

    think(0.2, 0.5) -- a user reads the page
    http.get("/delay/20", { name = "slow page" })
  end,
}
