-- Custom metrics with values a histogram cannot hold: 12,500,000 (past an hour in ms), -5, 0.5.
-- The summary's count, mean, min and max are exact, as in k6.
return parrot.scenario {
  name = "trends",
  load = parrot.closed { vus = 1, iterations = 1 },
  run = function()
    local t = parrot.trend("wide")
    t:add(12500000)
    t:add(-5)
    t:add(0.5)
    parrot.counter("things"):add(-2.5)
  end,
}
