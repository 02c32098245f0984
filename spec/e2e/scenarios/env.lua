-- -e GREETING=hello-parrot reaches the scenario as parrot.env.GREETING (also inside VUs).
local http = require "parrot.http"
local at_load = parrot.env.GREETING
return parrot.scenario {
  name = "env",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 1, iterations = 2, duration = "4s" },
  sessions = { { name = "one", run = function()
    check(at_load == "hello-parrot", "env at load time")
    check(parrot.env.GREETING == "hello-parrot", "env in a VU")
    http.get("/echo?greeting=" .. tostring(parrot.env.GREETING), { name = "echo" })
  end } },
}
