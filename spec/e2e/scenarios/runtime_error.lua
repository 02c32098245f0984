-- Every 3rd iteration of a VU indexes nil: a script error, reported once on stderr, counted in
-- errors_by_kind.script; the other iterations still make their requests.
local http = require "parrot.http"
return parrot.scenario {
  name = "runtime_error",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 3, duration = "2s" },
  sessions = { { name = "one", run = function(vu)
    vu.vars.n = (vu.vars.n or 0) + 1
    http.get("/", { name = "root" })
    if vu.vars.n % 3 == 0 then
      local missing = nil
      return missing.field -- boom
    end
    think(0.01)
  end } },
}
