-- setup() runs once before the load and its result reaches every VU as vu.setup; teardown(data)
-- runs once after it. Each hook makes one request to a path of its own, counted in the access log.
local http = require "parrot.http"
return parrot.scenario {
  name = "setup",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 4, iterations = 20, duration = "5s" },
  setup = function()
    http.get("/echo?setup", { name = "setup" })
    return { token = "t0ken", n = 42 }
  end,
  sessions = { { name = "one", run = function(vu)
    check(type(vu.setup) == "table" and vu.setup.token == "t0ken" and vu.setup.n == 42, "vu sees setup data")
    http.get("/echo?run", { name = "run" })
  end } },
  teardown = function(data)
    http.get("/echo?teardown" .. ((data and data.token == "t0ken") and "-with-data" or "-without-data"),
             { name = "teardown" })
  end,
}
