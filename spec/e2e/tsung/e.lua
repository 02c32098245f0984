-- Twin of e.xml (equivalence spec e: variables from a CSV file and random values), written by
-- hand with the plain parrot API: one VU, one iteration. Run with -e PORT=<target port>.
local http = require "parrot.http"

local users = parrot.csv("e_users.csv", { delimiter = ";", header = false }) -- rows in order, wrapping

local function random_letters(n)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(97, 122)) end
  return table.concat(t)
end

return parrot.scenario {
  name = "tsung-twin-e",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  files = { "e_users.csv" },
  load = parrot.closed { vus = 1, iterations = 1 },
  sessions = { { name = "feed", run = function()
    local row
    for k = 1, 4 do
      row = users:next()
      http.get(("/echo?e=user&k=%d&user=%s&pass=%s"):format(k, row[1], row[2]))
    end
    local rnd = math.random(3, 7)
    http.get("/item/" .. rnd)
    http.get(("/echo?e=str&s=%s&n=%d"):format(random_letters(8), rnd))
    http.get("/echo?e=end&user=" .. row[1])
  end } },
}
