-- Twin of b.xml (equivalence spec b: dynamic variables and substitution), written by hand with
-- the plain parrot API: one VU, one iteration. Run with -e PORT=<target port>.
local http = require "parrot.http"

-- Tsung substitutes into a URL with its spaces as %20
local function url_value(s) return (s:gsub(" ", "%%20")) end

return parrot.scenario {
  name = "tsung-twin-b",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 1, iterations = 1 },
  sessions = { { name = "dyn", run = function()
    local r = http.get("/")
    local token = r:match('name="token" value="([^"]+)"') or ""
    local title = r:match("<title>(.*)</title>") or ""
    http.get("/echo?t=" .. token .. "&title=" .. url_value(title))
    r = http.get("/?b=again")
    -- a dyn_variable without an expression reads the hidden form field of its name
    local form = r:match('name="token"[^>]*value="([^"]*)"') or ""
    local missing = r:match("no-such-(thing)") or "" -- no match: the empty string
    http.get("/echo?form=" .. form .. "&missing=" .. missing .. "&undef=undefined")
    local j = http.get("/json?b=1"):json()
    http.get("/echo?fruit=" .. j.items[2].name .. "&count=" .. j.count)
    r = http.post("/echo?b=post", "t=" .. form)
    if not (r.body or ""):find('"body":"t=abc123"', 1, true) then return end
    http.get("/echo?literal=%%_token%%")
  end } },
}
