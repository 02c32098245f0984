-- buy: the "buy" session of shop.lua, in a file of its own (`run = require("buy")`).
-- A user from users.csv logs in, looks at their account, and checks out one item.
local http = require "parrot.http"

local users = parrot.csv("users.csv", { mode = "sequential" }) -- beside this file, in the bundle
local orders = parrot.counter("orders")                         -- a custom metric in the summary

return function(vu)
  local u = users:next()

  local login = http.post("/login", nil, { form = { user = u.user, pass = u.pass }, name = "login" })
  check(login.status == 200, "login accepted")
  -- the session cookie from Set-Cookie is in the VU's jar and goes with the next request
  local account = http.get("/account", { name = "account" })
  check(account, {
    ["account is 200"] = function(r) return r.status == 200 end,
    ["account is ours"] = function(r) return r:json().user == u.user end,
  })
  think(0.5, 1)

  transaction("checkout", function()
    local list = http.get("/json", { name = "list" })
    local items = list:json().items
    local id = items[math.random(#items)].id
    local item = http.get("/item/" .. id, { name = "item" })
    check(item:json().id == id, "item matches")
    local r = http.post("/echo", nil, { json = { item = id, user = u.user }, name = "order" })
    check(r.status == 200, "order placed")
    orders:add(1)
  end)
  think(0.5, 1)
end
