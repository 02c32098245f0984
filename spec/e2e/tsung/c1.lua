-- Twin of c1.xml (equivalence spec c1: match do=loop and do=restart), written by hand with the
-- plain parrot API: one VU, one iteration. Run with -e PORT=<target port>.
local http = require "parrot.http"

local function has(r, text) return (r.body or ""):find(text, 1, true) ~= nil end

-- <match do="loop" max_loop=N sleep_loop=S [when="nomatch"]>: send the request again (after S
-- seconds) while the response (does not) match, at most N more times
local function get_looping(url, text, max_loop, sleep_s, when_nomatch)
  local r = http.get(url)
  for _ = 1, max_loop do
    if has(r, text) == (when_nomatch == true) then break end
    sleep(sleep_s)
    r = http.get(url)
  end
  return r
end

return parrot.scenario {
  name = "tsung-twin-c1",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 1, iterations = 1 },
  sessions = { { name = "matchloop", run = function()
    -- <match do="restart" max_restart="2">: the session starts again from its first request,
    -- twice; the third time the match fires, the session is aborted
    for restarts = 0, 2 do
      http.get("/item/300")
      get_looping("/item/301", "item 301", 2, 1)
      get_looping("/item/302", "item 302", 5, 1, true)
      local r = http.get("/item/303")
      if not has(r, "item 303") then break end
      if restarts == 2 then return end -- max_restart reached: abort
    end
    http.get("/item/304")
  end } },
}
