-- Twin of c3.xml (equivalence spec c3: match do="loop" with loop_back), written by hand with the
-- plain parrot API: one VU, one iteration. Run with -e PORT=<target port>.
local http = require "parrot.http"

local function has(r, text) return (r.body or ""):find(text, 1, true) ~= nil end

return parrot.scenario {
  name = "tsung-twin-c3",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 1, iterations = 1 },
  sessions = { { name = "loopback", run = function()
    http.get("/item/401")
    for _ = 1, 3 do -- loop_back="5" max_loop="2": the transaction and the request, 3 times
      transaction("t", function()
        http.get("/item/402")
        sleep(0.1)
      end)
      http.get("/echo?lb=v")
    end
    repeat -- loop_back="1": the login again, until the account shows session 3
      http.post("/login", "user=u&pass=x")
    until has(http.get("/account"), '"session":3')
    http.get("/item/403")
  end } },
}
