-- Twin of d.xml (equivalence spec d: for, repeat, if, foreach), written by hand with the plain
-- parrot API: one VU, one iteration. Run with -e PORT=<target port>. The repeat counts are real
-- Tsung 1.7's: <repeat max_repeat="N"> whose condition always holds runs its body N + 1 times.
local http = require "parrot.http"

local steps = parrot.csv("d_steps.csv", { delimiter = ";", header = false })

return parrot.scenario {
  name = "tsung-twin-d",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  files = { "d_steps.csv" },
  load = parrot.closed { vus = 1, iterations = 1 },
  sessions = { { name = "flow", run = function()
    for i = 1, 3 do http.get("/item/40" .. i) end
    for j = 2, 6, 2 do http.get("/echo?d=for2&j=" .. j) end
    -- repeat ... until step == "stop" (max_repeat 10)
    for _ = 0, 10 do
      local step = steps:next()[1]
      http.get("/echo?d=until&step=" .. step)
      if step == "stop" then break end
    end
    local flag, n = "go", 5
    -- repeat ... while flag == "go", max_repeat 3: the body, then 3 repeats
    for _ = 0, 3 do
      http.get("/echo?d=while")
      if flag ~= "go" then break end
    end
    -- repeat ... while flag ~= "go": once
    http.get("/echo?d=while-neq")
    if flag == "go" then http.get("/echo?d=if-eq-yes") end
    if flag == "stop" then http.get("/echo?d=if-eq-no") end
    if flag ~= "stop" then http.get("/echo?d=if-neq-yes") end
    if n > 3 then http.get("/echo?d=if-gt-yes") end
    if n > 12 then http.get("/echo?d=if-gt-no") end
    if n < 12 then http.get("/echo?d=if-lt-yes") end
    if n < 3 then http.get("/echo?d=if-lt-no") end
    local fruits = {}
    for _, item in ipairs(http.get("/json?d=list"):json().items) do fruits[#fruits + 1] = item.name end
    for _, fruit in ipairs(fruits) do http.get("/echo?d=each&fruit=" .. fruit) end
    for _, fruit in ipairs(fruits) do
      if fruit ~= "pear" then http.get("/echo?d=each-but-pear&fruit=" .. fruit) end
    end
    http.get("/echo?d=end")
  end } },
}
