-- `make bench`, memory: VUS virtual users that only sleep in think time, holding no connection.
--   parrot run spec/bench/scenarios/idle.lua -e VUS=100000 --threads 1
return parrot.scenario {
  name = "idle",
  load = parrot.closed { vus = tonumber(parrot.env.VUS or 1000), duration = "5s", graceful_stop = "0s" },
  run = function() think(30) end,
}
