-- Twin of c2.xml (equivalence spec c2: match do=abort and do=continue), written by hand with the
-- plain parrot API: one VU, one iteration. Run with -e PORT=<target port>.
local http = require "parrot.http"

local function has(r, text) return (r.body or ""):find(text, 1, true) ~= nil end

return parrot.scenario {
  name = "tsung-twin-c2",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 1, iterations = 1 },
  sessions = { { name = "matchabort", run = function()
    if not has(http.get("/item/311"), "item 311") then return end -- abort when="nomatch"
    if has(http.get("/item/312"), "no such text") then return end -- continue, then abort: no match
    if has(http.get("/item/313"), "item 313") then return end      -- abort: it matches
    http.get("/item/314")
  end } },
}
