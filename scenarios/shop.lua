-- shop: two kinds of visitors against `parrot target`, 70% browse and 30% buy.
--   parrot target --port 8080 &
--   parrot run scenarios/shop.lua -e PORT=8080
-- Shows: weighted sessions, think times, correlation (a JSON field, a regular expression),
-- a CSV data file (users.csv, in buy.lua), a transaction, a custom counter and thresholds.
local http = require "parrot.http"

local pages = parrot.counter("pages_seen")

local function browse(vu)
  -- correlation through a regular expression: the hidden form token of the home page
  local home = http.get("/", { name = "home" })
  local token = home:match('name="token" value="([^"]+)"')
  check(token ~= nil, "home has a token")
  think(0.5, 1.5)

  -- correlation through JSON: pick an item from the list, then open it
  local list = http.get("/json", { name = "list", query = { token = token } })
  local items = list:json().items
  local pick = items[math.random(#items)]
  local item = http.get("/item/" .. pick.id, { name = "item" })
  check(item, {
    ["item is 200"] = function(r) return r.status == 200 end,
    ["item is the one picked"] = function(r) return r:json().id == pick.id end,
  })
  pages:add(3)
  think(1, 2)
end

return parrot.scenario {
  name = "shop",
  target = "http://127.0.0.1:" .. (parrot.env.PORT or "8080"),
  load = parrot.closed { vus = 30, duration = "30s", ramp = "5s" },
  thresholds = {
    p95 = "< 100ms",
    ["errors.rate"] = "< 1%",
    ["checks.rate"] = "> 99%",
    ["checkout:p95"] = "< 200ms",
  },
  sessions = {
    { name = "browse", weight = 70, run = browse },
    { name = "buy", weight = 30, run = require("buy") },
  },
}
