-- GET -e URL=... with a 1 s timeout, over and over, against a server that misbehaves; -e KIND=...
-- is the error kind the response must carry (r.error_kind), "" for none.
local http = require "parrot.http"
local want = parrot.env.KIND or ""
return parrot.scenario {
  name = "hostile",
  load = parrot.closed { vus = 2, duration = "2s" },
  sessions = { { name = "one", run = function()
    local r = http.get(parrot.env.URL, { name = "hostile", timeout = "1s" })
    if want == "" then
      check(r.status == 200 and not r.error, "answered")
    else
      check(r.error_kind == want, "error_kind")
      check(type(r.error) == "string" and #r.error > 0, "error message")
    end
    think(0.05)
  end } },
}
