-- Stages that climb to 2 VUs, hold them for 1.5 s and leave: 2.5 s in all. `--vus 6` keeps
-- the shape and the duration and makes the peak 6.
local http = require "parrot.http"
return parrot.scenario {
  name = "stages",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { stages = { { duration = "0.5s", target = 2 }, { duration = "1.5s", target = 2 },
                                    { duration = "0.5s", target = 0 } }, graceful_stop = "1s" },
  run = function() http.get("/delay/50", { name = "step" }); sleep(0.05) end,
}
