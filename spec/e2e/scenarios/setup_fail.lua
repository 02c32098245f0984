-- setup() fails (a login that finds no token): the test must end before any load, with the
-- error and setup_fail.lua:LINE in one line, exit 1, and the summary still written.
local http = require "parrot.http"
return parrot.scenario {
  name = "setup_fail",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 2, duration = "5s" },
  setup = function()
    local r = http.get("/json", { name = "setup login" })
    if parrot.env.HOW == "table" then error({ code = 42 }) end
    if not r:match('"session":"([^"]+)"') then error("no token in the login response") end -- line 11
  end,
  run = function() http.get("/", { name = "load" }) end,
  teardown = function() http.get("/echo?teardown", { name = "teardown" }) end,
}
