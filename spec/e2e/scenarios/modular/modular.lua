-- A scenario in a directory of its own whose session lives in lib/steps.lua: a runtime error in
-- that module is reported as lib/steps.lua:LINE, never as a path in the worker's bundle cache.
return parrot.scenario {
  name = "modular",
  load = parrot.closed { vus = 1, iterations = 2 },
  run = require("lib.steps"),
}
