-- parrot.runner: drives one load thread's share of a scenario. A driver coroutine starts virtual
-- users as the load model says (closed population, open arrivals, constant rate), each VU runs
-- its session's iterations, and at the end VUs finish their iteration within graceful_stop.
local core = require "parrot.core"
local parrot = require "parrot"
local http = require "parrot.http"

local runner = {}

local now, sleep = core.now, core.sleep
local TICK = 0.1 -- seconds between the driver's looks at the clock and at stop requests

local function traceback(e) return debug.traceback(tostring(e), 2) end

-- Run fn(...) and report an error once (file:line and traceback); the caller goes on.
local function guarded(fn, ...)
  local ok, err = xpcall(fn, traceback, ...)
  if not ok then core.script_error(tostring(err)) end
  return ok
end

-- This thread's part of a total `n` (VUs, max_users, a phase's maxnumber) shared over the
-- cluster's load slots: slot i of N gets floor(n(i+1)/N) - floor(ni/N), so the parts differ by at
-- most one and sum to n exactly. Callers re-read it when the slots change (runner.share).
local function part(ctx, n)
  return math.floor(n * (ctx.thread + 1) / ctx.threads) - math.floor(n * ctx.thread / ctx.threads)
end

-- Pick sessions by weight: smooth weighted round robin, so 7:3 gives exactly 7 of every 10.
-- The sequence is the cluster's: pick(k) is the session of the k-th VU (or iteration) counted over
-- every thread, so threads that each start some of the VUs together give the exact mix.
local function picker(sessions)
  local cur, seq = {}, {}
  local total = 0
  for i, s in ipairs(sessions) do cur[i] = 0; total = total + s.weight end
  if #sessions == 1 then return function() return sessions[1] end end
  local period = 0 -- the sequence repeats after `total` picks when the weights are integers
  if total == math.floor(total) and total <= 10000 then period = total end
  return function(k)
    if period > 0 then k = (k - 1) % period + 1 end
    while #seq < k do
      local best
      for i, s in ipairs(sessions) do
        cur[i] = cur[i] + s.weight
        if not best or cur[i] > cur[best] then best = i end
      end
      cur[best] = cur[best] - total
      seq[#seq + 1] = best
    end
    return sessions[seq[k]]
  end
end

local function random_picker(sessions)
  local total = 0
  for _, s in ipairs(sessions) do total = total + s.weight end
  return function()
    local x = math.random() * total
    for _, s in ipairs(sessions) do
      x = x - s.weight
      if x < 0 then return s end
    end
    return sessions[#sessions]
  end
end

local function new_vu(id, ctx)
  return { id = id, iteration = 0, vars = {}, setup = ctx.setup, thread = ctx.thread, stop = false,
           t0 = ctx.t0, load = ctx.scenario.load }
end

local function start_session(vu, s)
  vu.session = s.name
  vu.started = vu.started or {}
  if s.on_start and not vu.started[s] then
    vu.started[s] = true
    guarded(s.on_start, vu)
  end
end

-- One iteration of session `s`; `intended` is its planned start (rate model) or nil, `start` the
-- clock when it starts (the end of the one before, as returned) or nil. Returns the clock at its
-- end and whether a stop was asked.
local function iterate(vu, s, intended, start)
  vu.iteration = vu.iteration + 1
  local t0 = intended or start or now()
  if intended then core.intend(intended) end -- the first request's latency counts from here
  guarded(s.run, vu)
  if intended then core.intend(nil) end
  return core.iteration(t0) -- counts it, and its duration in the iteration_duration trend
end

-- Wait until `pred()` is true, the deadline passes or a stop is requested; true if pred held.
-- With `grace`, a stop request (Ctrl-C, SIGTERM, the queen's STOP) does not end the wait but
-- brings its deadline to at most STOP_GRACE from then: what is in flight may finish.
local STOP_GRACE = 2
local function wait_until(deadline, pred, grace)
  local cut = false
  while true do
    if pred and pred() then return true end
    local t = now()
    if core.stopping() then
      if not grace then return false end
      if not cut then cut, deadline = true, math.min(deadline, t + STOP_GRACE) end
    end
    if t >= deadline then return false end
    sleep(math.min(TICK, deadline - t))
  end
end

-- The end of a run: stop starting iterations, give running ones graceful_stop (2 s after a stop
-- request), then cut.
local function finish(ctx, vus)
  ctx.stopping = true
  for _, vu in pairs(vus) do vu.stop = true end
  local deadline = now() + ctx.scenario.load.graceful_stop
  wait_until(deadline, function() return core.live() <= 1 + (ctx.parked or 0) end, true)
  if ctx.wake_all then ctx.wake_all() end
  wait_until(math.min(deadline, now() + 1), function() return core.live() <= 1 end, true)
  core.kill_others()
end

------------------------------------------------------------------------------------------------
-- closed model: `vus` VUs loop over iterations (ids interleaved over threads so all ramp together)

local function closed(ctx)
  local l, sc = ctx.scenario.load, ctx.scenario
  local pick = picker(sc.sessions)
  local vus, started = {}, 0
  -- global VU ids for this thread: thread, thread + threads, ... (1-based)
  local function count_of(thread, target) -- how many of the first `target` global ids `thread` owns
    if target <= thread then return 0 end
    return math.floor((target - 1 - thread) / ctx.threads) + 1
  end
  local function my_count(target) return count_of(ctx.thread, target) end
  -- a total iteration count is shared in proportion to each thread's VUs
  local iterations_left
  if l.iterations then
    local vus = l.vus or 0
    for _, st in ipairs(l.stages or {}) do vus = math.max(vus, st.target) end
    local before = 0
    for t = 0, ctx.thread - 1 do before = before + count_of(t, vus) end
    local mine = my_count(vus)
    iterations_left = math.floor(l.iterations * (before + mine) / vus) - math.floor(l.iterations * before / vus)
  end
  local function spawn(k, id)
    local vu = new_vu(id, ctx)
    local s = pick(id)
    vus[k] = vu
    core.spawn(function()
      vu.co = coroutine.running()
      core.vus(1)
      start_session(vu, s)
      -- back to back: an iteration starts at the clock the one before it read at its end
      local t, stop = nil, core.stopping()
      while not vu.stop and not ctx.stopping and not stop do
        if iterations_left then
          if iterations_left <= 0 then break end
          iterations_left = iterations_left - 1
        end
        t, stop = iterate(vu, s, nil, t)
      end
      vu.gone = true
      core.vus(-1)
      if vus[k] == vu then vus[k] = nil end
    end)
  end
  -- VUs told to leave on a ramp-down finish their iteration within graceful_stop, then are cut
  local leaving = {}
  local function cut_leavers()
    for i = #leaving, 1, -1 do
      local e = leaving[i]
      if e.vu.gone then
        table.remove(leaving, i)
      elseif now() >= e.at then
        e.vu.gone = true
        core.vus(-1)
        core.kill(e.vu.co)
        if vus[e.k] == e.vu then vus[e.k] = nil end
        table.remove(leaving, i)
      end
    end
  end
  local function id_of(k) return ctx.thread + (k - 1) * ctx.threads + 1 end
  local t0 = ctx.t0
  local total = parrot.load_duration(l)
  local function target_at(t)
    if not l.stages then
      if l.ramp and l.ramp > 0 and t < l.ramp then return math.floor(l.vus * t / l.ramp) + 1 end
      return l.vus
    end
    local from, acc = 0, 0
    for _, st in ipairs(l.stages) do
      if t < acc + st.duration then return math.floor(from + (st.target - from) * (t - acc) / st.duration + 0.5) end
      acc, from = acc + st.duration, st.target
    end
    return from
  end
  while true do
    local t = now() - t0
    if t >= total or core.stopping() then break end
    if iterations_left and iterations_left <= 0 and core.live() <= 1 then break end
    local want = my_count(math.min(target_at(t), l.vus or math.huge))
    while started < want do started = started + 1; spawn(started, id_of(started)) end
    while started > want do -- ramp down (or a smaller share): the newest VUs finish their iteration and leave
      local vu = vus[started]
      if vu and not vu.stop then
        vu.stop = true
        leaving[#leaving + 1] = { vu = vu, k = started, at = now() + l.graceful_stop }
      end
      started = started - 1
    end
    cut_leavers()
    sleep(math.min(TICK, math.max(0.001, total - t)))
  end
  finish(ctx, vus)
end

------------------------------------------------------------------------------------------------
-- open model (Tsung): users arrive (Poisson by default), run one session, and leave

-- One phase on this thread, from max(its start, now) to its end: a thread that joins mid-run (or
-- whose phase is already over) does not replay the arrivals that came before it; they were the
-- others'. `arrive(session)` starts a user; `active()` counts this thread's users.
local function open_phase(ctx, p, phase_start, pick, arrive, active)
  local max_users = ctx.scenario.load.max_users
  local phase_end = phase_start + p.duration
  -- a phase's maxnumber is shared: this slot starts its part of it (slots interleave)
  local my_max = p.max and part(ctx, p.max)
  -- a phase's count (Tsung) is shared the same way: exactly that many arrivals, the first at once
  local my_count = p.count and part(ctx, p.count)
  local started = 0
  local r = p.rate / ctx.threads -- this thread's arrival rate; the share can change while the phase runs
  local function gap()
    if r <= 0 then return math.huge end
    if p.dist == "uniform" then return 1 / r end
    return -math.log(1 - math.random()) / r
  end
  local next_at = math.max(phase_start, now())
  if p.dist == "uniform" and not my_count then
    -- fixed gaps over the cluster: arrival k (0, 1, ...) at k / rate, arrivals dealt to the slots
    -- in turn, so the first comes at once and rate x duration arrive in all
    next_at = next_at + (p.rate > 0 and ctx.thread / p.rate or math.huge)
  elseif not my_count then
    next_at = next_at + gap()
  end
  while next_at < phase_end do
    local t = now()
    if core.stopping() then return end
    if my_count and started >= my_count then break end
    local nr = p.rate / ctx.threads
    if nr ~= r then
      -- the share changed: the wait left scales with it (for Poisson arrivals too, being
      -- memoryless), so the cluster's total rate stays the phase's
      next_at, r = t + math.max(0, next_at - t) * r / nr, nr
    elseif t >= next_at then
      if my_max and started >= my_max then
        -- maxnumber reached: no more arrivals in this phase (not dropped: they never come)
      elseif max_users and active() >= part(ctx, max_users) then
        core.dropped(1) -- max_users is split exactly over the slots, re-read as they change
      else
        started = started + 1
        arrive(pick())
      end
      next_at = next_at + gap()
    else
      sleep(math.min(next_at - t, TICK))
    end
  end
  wait_until(phase_end)
end

local function open(ctx)
  local l, sc = ctx.scenario.load, ctx.scenario
  local pick = random_picker(sc.sessions)
  local active, k, vus = 0, 0, {}
  local t0 = ctx.t0
  local function arrive(s) -- one user running session s once
    k = k + 1
    local key = k
    local vu = new_vu(ctx.thread + (k - 1) * ctx.threads + 1, ctx)
    active = active + 1
    vus[key] = vu
    core.spawn(function()
      core.vus(1)
      start_session(vu, s)
      iterate(vu, s)
      core.vus(-1)
      active = active - 1
      vus[key] = nil
    end)
  end
  -- users at a set time (Tsung's <user>): started by the first slot only, each matching session
  if ctx.thread == 0 and #(l.users or {}) > 0 then
    core.spawn(function()
      local list = {}
      for _, u in ipairs(l.users) do list[#list + 1] = u end
      table.sort(list, function(a, b) return a.start < b.start end)
      for _, u in ipairs(list) do
        if not wait_until(t0 + u.start) and core.stopping() then return end
        local prefix = u.session:match("^(.*)%*$")
        local found = false
        for _, s in ipairs(sc.sessions) do
          if s.name == u.session or (prefix and s.name:sub(1, #prefix) == prefix) then arrive(s); found = true end
        end
        if not found then core.script_error("users: no session named '" .. u.session .. "'") end
      end
    end)
  end
  local phase_start = t0
  for _, p in ipairs(l.phases) do
    open_phase(ctx, p, phase_start, pick, arrive, function() return active end)
    if core.stopping() then break end
    phase_start = phase_start + p.duration
  end
  if ctx.thread == 0 then -- users at a set time may come after the phases
    local last = 0
    for _, u in ipairs(l.users or {}) do last = math.max(last, u.start) end
    wait_until(t0 + last + 0.01)
  end
  -- Tsung lets sessions that arrived finish; we give them graceful_stop
  finish(ctx, vus)
end

------------------------------------------------------------------------------------------------
-- constant rate (wrk2): `rate` iterations per second handed to free VUs of a pool; an iteration's
-- latency counts from its intended start; when no VU is free the iteration is dropped.

local function rate(ctx)
  local l, sc = ctx.scenario.load, ctx.scenario
  local pick = picker(sc.sessions)
  local free, vus, nvus = {}, {}, 0 -- free: parked VUs; vus[1..nvus]: the pool
  local unborn = 0 -- VUs spawned that have not parked yet (they run on the loop's next turn)
  ctx.parked = 0
  local function take(vu) -- a free VU leaves the free list (the caller wakes it)
    for i = #free, 1, -1 do
      if free[i] == vu then table.remove(free, i); ctx.parked = ctx.parked - 1; return true end
    end
  end
  local function spawn_vu(k)
    local vu = new_vu(ctx.thread + (k - 1) * ctx.threads + 1, ctx)
    vus[k] = vu
    unborn = unborn + 1
    core.spawn(function()
      vu.co = coroutine.running()
      unborn = unborn - 1
      core.vus(1)
      while not vu.retire do
        free[#free + 1] = vu
        ctx.parked = ctx.parked + 1
        local job = core.park()
        if not job then break end
        start_session(vu, job.session)
        iterate(vu, job.session, job.intended)
      end
      core.vus(-1)
    end)
  end
  -- The pool is this thread's part of `vus`: it grows when the share grows (a worker left) and
  -- shrinks when it shrinks (a worker joined): free VUs leave now, busy ones after their iteration.
  local function resize()
    local want = part(ctx, l.vus)
    while nvus < want do nvus = nvus + 1; spawn_vu(nvus) end
    while nvus > want do
      local vu = vus[nvus]
      vus[nvus], nvus, vu.retire = nil, nvus - 1, true
      if vu.co and take(vu) then core.wake(vu.co, false) end
    end
  end
  resize()
  ctx.wake_all = function()
    while #free > 0 do
      local vu = table.remove(free)
      ctx.parked = ctx.parked - 1
      core.wake(vu.co, false)
    end
  end
  local t0, total = ctx.t0, l.duration
  local slot, slots = ctx.thread, ctx.threads
  -- this thread's rate follows its part of the VUs (a thread without VUs runs nothing)
  local function my_rate() return l.vus > 0 and l.rate * part(ctx, l.vus) / l.vus or 0 end
  local r = my_rate()
  -- iterations since base_t at the current per-thread rate; from now, never from the run's start:
  -- a thread that joins mid-run does not replay (nor count as dropped) what came before it
  local k, base, base_t = 0, 0, math.max(t0, now())
  while true do
    if ctx.thread ~= slot or ctx.threads ~= slots then -- the share changed
      local nr = my_rate()
      base_t = r > 0 and base_t + (k - base) / r or math.max(base_t, now())
      base, r = k, nr -- the schedule goes on continuously from here
      slot, slots = ctx.thread, ctx.threads
      resize()
    end
    local intended = r > 0 and base_t + (k - base) / r or now()
    if intended - t0 >= total or core.stopping() then break end
    local t = now()
    if r <= 0 then
      sleep(TICK) -- no VUs here (fewer VUs than threads): only a change of share brings work
    elseif t < intended then
      sleep(math.min(intended - t, TICK))
    elseif #free == 0 and unborn > 0 then
      sleep(0.001) -- the pool was just made (or grew): its VUs are not parked yet, which is no drop
    else
      k = k + 1
      local vu = table.remove(free)
      if vu then
        ctx.parked = ctx.parked - 1
        core.wake(vu.co, { session = pick((k - 1) * ctx.threads + ctx.thread + 1), intended = intended })
      else
        core.dropped(1)
      end
    end
  end
  finish(ctx, vus)
end

------------------------------------------------------------------------------------------------

local models = { closed = closed, open = open, rate = rate }
local current -- this thread's running context

-- runner.share(slot, nslots): the cluster's slots changed while the load runs.
function runner.share(thread, threads)
  if current then current.thread, current.threads = thread, threads end
end

-- runner.start(scenario, {thread, threads, t0, setup}): spawn the driver of this thread's share.
function runner.start(sc, ctx)
  ctx.scenario = sc
  current = ctx
  http.defaults.target = sc.target
  http.defaults.headers = sc.headers or {}
  http.defaults.insecure = sc.insecure
  local drive = assert(models[sc.load.model], "unknown load model " .. tostring(sc.load.model))
  core.spawn(function()
    local ok, err = xpcall(drive, traceback, ctx)
    if not ok then core.script_error("parrot runner: " .. tostring(err)); core.kill_others() end
  end)
end

-- runner.hook(sc, "setup" | "teardown", data_json): run a scenario hook in a coroutine; setup's
-- result is handed to `done` encoded as JSON.
function runner.hook(sc, which, data, done)
  http.defaults.target = sc.target
  http.defaults.headers = sc.headers or {}
  http.defaults.insecure = sc.insecure
  local fn = sc[which]
  if not fn then return done(nil) end
  core.spawn(function()
    local cjson = require "cjson"
    local arg = data and cjson.decode(data) or nil
    local ok, res = xpcall(fn, traceback, arg)
    if not ok then
      core.script_error(which .. "(): " .. tostring(res))
      return done(nil)
    end
    if which == "setup" and res ~= nil then
      local ok2, enc = pcall(cjson.encode, res)
      if not ok2 then core.script_error("setup(): its result cannot be sent to the VUs as JSON: " .. tostring(enc)) end
      return done(ok2 and enc or nil)
    end
    done(nil)
  end)
end

return runner
