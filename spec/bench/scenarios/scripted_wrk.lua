-- `make bench`, scripted workload for wrk: the same work as scenarios/scripted.lua. `request`
-- alternates two paths (requests formatted once, in init), `response` reads a header of every
-- response and counts the ones that fail the check; `done` prints that count.
--   wrk -t1 -c50 -d10s -s spec/bench/scenarios/scripted_wrk.lua http://127.0.0.1:8080
local reqs, i = {}, 0
local threads = {}
failed = 0 -- a global: done() reads it from each thread with thread:get

function setup(thread) threads[#threads + 1] = thread end

function init()
  reqs[1] = wrk.format("GET", "/a")
  reqs[2] = wrk.format("GET", "/b")
end

function request()
  i = i + 1
  return reqs[i % 2 + 1]
end

function response(status, headers)
  local v = headers["X-Bench"]
  if status ~= 200 or (v ~= "a" and v ~= "b") then failed = failed + 1 end
end

function done()
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("failed") end
  print("checks failed: " .. n)
end
