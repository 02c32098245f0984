-- A scenario with a syntax error on line 6: parrot run exits 2 and names the file and line.
local http = require "parrot.http"
return parrot.scenario {
  name = "broken",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  sessions = { { name = "one", run = function() http.get("/") end end } },
}
