-- Twin of a.xml (equivalence spec a: plain requests and thinktimes), written by hand with the
-- plain parrot API: one VU, one iteration. Run with -e PORT=<target port>.
local http = require "parrot.http"

-- Tsung's <match do="abort" when="nomatch">: the session ends when the body lacks `text`
local function body_has(r, text) return (r.body or ""):find(text, 1, true) ~= nil end

return parrot.scenario {
  name = "tsung-twin-a",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 1, iterations = 1 },
  sessions = { { name = "plain", run = function()
    http.get("/item/101")
    sleep(1)
    http.get("/echo?spec=a&n=2")
    local r = http.post("/echo?spec=a&n=3", "k=v&w=x",
                        { headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
    if not body_has(r, '"body":"k=v&w=x"') then return end
    think(1, 2)
    http.get("/item/104", { version = "1.0" })
    http.get("/status/404?spec=a", { expect = { 404 } })
    r = http.put("/echo?spec=a&n=6", "put-body", { headers = { ["Content-Type"] = "text/plain" } })
    if not body_has(r, '"content-type":"text/plain"') or not body_has(r, '"body":"put-body"') then return end
    http.delete("/echo?spec=a&n=7")
  end } },
}
