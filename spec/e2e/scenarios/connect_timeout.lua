-- connect_timeout per request: PORT is a listener whose accept queue is full, so a connect there
-- hangs until the timeout given (seconds, or a string as "250ms"); each request prints how it
-- ended and how long it took.
local http = require "parrot.http"
local function try(name, opts)
  local r = http.get("http://127.0.0.1:" .. parrot.env.PORT .. "/", opts)
  io.stdout:write(string.format("%s error=%s total_ms=%.0f\n", name, tostring(r.error), r.timings.total))
end
return parrot.scenario {
  name = "connect_timeout",
  load = parrot.closed { vus = 1, iterations = 1 },
  run = function()
    try("number", { name = "number", connect_timeout = 0.3 })
    try("string", { name = "string", connect_timeout = "400ms" })
  end,
}
