-- VUS virtual users that only think, for 1 s: enough to plan more connections than `ulimit -n`
-- allows (the warning at start) without opening any.
return parrot.scenario {
  name = "idle",
  load = parrot.closed { vus = tonumber(parrot.env.VUS or "10"), duration = "1s", graceful_stop = "0s" },
  run = function() think(5) end,
}
