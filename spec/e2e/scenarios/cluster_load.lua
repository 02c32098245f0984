-- The cluster scenario: closed model, GET /load?n per iteration with a short think time; setup and
-- teardown each make exactly one request to a path of their own. parrot.env: HOST (default
-- 127.0.0.1), PORT, VUS (default 6), DURATION (default 3s), TAG (a word in every load path, so two
-- runs against one target can be told apart in its access log).
local http = require "parrot.http"
local env = parrot.env
local tag = env.TAG or "a"
return parrot.scenario {
  name = "cluster_" .. tag,
  target = "http://" .. (env.HOST or "127.0.0.1") .. ":" .. env.PORT,
  load = parrot.closed { vus = tonumber(env.VUS or "6"), duration = env.DURATION or "3s" },
  setup = function()
    http.get("/echo?cluster-setup-" .. tag, { name = "setup" })
    return { tag = tag }
  end,
  sessions = { { name = "load", run = function(vu)
    local r = http.get("/echo?cluster-load-" .. tag, { name = "load" })
    check(r.status == 200, "load is 200")
    think(0.01)
  end } },
  teardown = function(data)
    http.get("/echo?cluster-teardown-" .. ((data and data.tag) or "nodata"), { name = "teardown" })
  end,
}
