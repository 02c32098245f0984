-- A scenario whose top level never returns (a loop the JIT would compile): the run must end with
-- one error naming the line, not wait for ever.
local n = 0
while n >= 0 do n = n + 1 end
return parrot.scenario {
  name = "endless_top",
  load = parrot.closed { vus = 1, iterations = 1 },
  run = function() end,
}
