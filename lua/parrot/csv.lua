-- parrot.csv: data feeders from CSV files (users, payloads). parrot.csv(file, {mode, header,
-- delimiter}) reads the file once per load thread; `:next()` hands out rows:
--   sequential  rows in order, wrapping around: one position for the whole run, so rows 1, 2,
--               3, ... come in that order whichever thread asks, and in a cluster each row is
--               handed out once, by one worker, before the file starts again. The position is a
--               run-wide counter (csv.position below): in `parrot run` the process's, in a
--               cluster the queen's;
--   random      a random row each time;
--   unique      every row at most once across the whole cluster; nil and a message when none is
--               left. In a run, rows come in leases from the queen (parrot.cluster.rows): ranges
--               of rows nobody else in the run gets, so workers that join or leave mid-run never
--               see a row twice (the rows a leaving worker had leased and not used are not handed
--               out again). A lease is asked for before the last one runs out; a VU that finds
--               none at hand waits for the queen's answer. Without a queen (parrot test), the
--               rows are split over the load threads.
local M = {}

-- The records of a CSV text: RFC 4180, so a quoted field may hold the delimiter, "" for a
-- quote, and line breaks (CRLF or LF); empty lines are skipped.
local function records(text, d)
  local out, fields, i, n = {}, {}, 1, #text
  local function field_end(v, j) -- v ends at j (a delimiter, a line break or the end)
    fields[#fields + 1] = v
    local c = text:sub(j, j)
    if c == d then return j + #d end
    if c == "\r" and text:sub(j + 1, j + 1) == "\n" then j = j + 1 end
    if not (#fields == 1 and fields[1] == "") then out[#out + 1] = fields end
    fields = {}
    return j + 1
  end
  while i <= n do
    if text:sub(i, i) == '"' then
      local buf, j = {}, i + 1
      while true do
        local q = text:find('"', j, true)
        if not q then buf[#buf + 1] = text:sub(j); j = n + 1; break end
        buf[#buf + 1] = text:sub(j, q - 1)
        if text:sub(q + 1, q + 1) == '"' then buf[#buf + 1] = '"'; j = q + 2
        else j = q + 1; break end
      end
      local k = j -- after the closing quote: anything up to the delimiter or line end is kept too
      while k <= n and text:sub(k, k + #d - 1) ~= d and not text:sub(k, k):find("[\r\n]") do k = k + 1 end
      i = field_end(table.concat(buf) .. text:sub(j, k - 1), k)
    else
      local k = i
      while k <= n and text:sub(k, k + #d - 1) ~= d and not text:sub(k, k):find("[\r\n]") do k = k + 1 end
      i = field_end(text:sub(i, k - 1), k)
    end
  end
  if #fields > 0 and not (#fields == 1 and fields[1] == "") then out[#out + 1] = fields end
  return out
end

function M.parse(text, opts)
  opts = opts or {}
  local d = opts.delimiter or ","
  local rows, names = {}, nil
  for _, f in ipairs(records(text, d)) do
    if opts.header ~= false and not names then
      names = f
    else
      local row = {}
      for i, v in ipairs(f) do
        row[i] = v
        if names and names[i] then row[names[i]] = v end
      end
      rows[#rows + 1] = row
    end
  end
  return rows, names
end

------------------------------------------------------------------------------------------------
-- Positions over a run: csv.position(key) -> 1, 2, 3, ..., each handed out once in the whole run
-- (sequential feeders, Tsung's user ids and its order="iter" file sources). With a queen of
-- several workers (parrot.cluster, not alone), positions come in leases from the queen's counter
-- for `key` (parrot.cluster.rows, the lease mechanism of unique mode), which only grows: a worker
-- joining mid-run continues from it, one leaving takes only the positions it was answered and
-- did not hand out (a rare gap, never a repeat). A thread asks for as many positions as callers
-- wait for, with one question out at a time, so callers that come during a round trip share the
-- next one and the first users get 1, 2, 3, ...; a thread that takes over 50 positions a second
-- also keeps about 0.1 s of them at hand, so a busy run does not wait on the queen for each. A
-- caller with none at hand waits (in a VU) for the answer. In `parrot run` (alone) and
-- `parrot test`, the counter is the process's (parrot.ext.shared_add; `scope` keeps runs of one
-- process apart): the same numbers, without a round trip.

local pools = {} -- key -> this thread's positions from the queen
local ASK_AGAIN = 2 -- seconds before a question (or its answer) counts as lost and is asked again
local BUSY = 50 -- positions a second above which a thread keeps some at hand

local function queen_cluster()
  local c = package.loaded["parrot.cluster"]
  if type(c) == "table" and c.rows and not c.alone then return c end
end

local local_counts = {} -- key -> count, when parrot.ext is not there (plain LuaJIT)
local function count_here(key)
  local ok, ext = pcall(require, "parrot.ext")
  if ok and type(ext) == "table" and ext.shared_add then return ext.shared_add(key, 1) end
  local_counts[key] = (local_counts[key] or 0) + 1
  return local_counts[key]
end

-- Ask the queen for what the waiting callers and the reserve need, unless a question is out
-- (for less than ASK_AGAIN seconds) or nothing is needed.
local function pool_ask(p)
  local t = p.core.now()
  if p.asking and t - p.asked_at < ASK_AGAIN then return end
  local want = #p.waiters + p.reserve - p.left
  if want <= 0 then p.asking = false; return end
  p.asking, p.asked_at = true, t
  p.cluster.rows(p.key, want)
  if not p.watching then -- a watcher asks again when an answer is lost, while anyone waits
    p.watching = true
    p.core.spawn(function()
      while p.asking or #p.waiters > 0 do
        p.core.sleep(0.05)
        if not p.refused then pool_ask(p) end
      end
      p.watching = false
    end)
  end
end

-- The next position at hand (1-based), or nil; counts the thread's pace to size the reserve.
local function pool_take(p)
  local r = p.ranges[1]
  if not r then return nil end
  local pos = r[1]
  if pos >= r[2] then table.remove(p.ranges, 1) else r[1] = pos + 1 end
  p.left = p.left - 1
  local t = p.core.now()
  p.taken = p.taken + 1
  if t - p.since >= 1 then
    local rate = p.taken / (t - p.since)
    p.reserve = rate >= BUSY and math.min(1000, math.floor(rate / 10)) or 0
    p.taken, p.since = 0, t
  end
  if p.reserve > 0 and p.left < p.reserve / 2 then pool_ask(p) end
  return pos
end

-- The queen's answer for a pool: positions first+1 .. first+count go to the waiting callers in
-- the order they came, the rest stay at hand; count 0 is a refusal (the queen's table is full).
local function pool_lease(p, first, count)
  p.asking = false
  if count <= 0 then
    p.refused = true
  else
    p.ranges[#p.ranges + 1] = { first + 1, first + count }
    p.left = p.left + count
  end
  while #p.waiters > 0 do
    local co = table.remove(p.waiters, 1)
    local pos = pool_take(p)
    if not pos then
      if not p.refused then table.insert(p.waiters, 1, co); break end
      p.core.wake(co, false)
    elseif not p.core.wake(co, pos) then -- that caller is gone: the next one gets it
      table.insert(p.ranges, 1, { pos, pos })
      p.left = p.left + 1
    end
  end
  if #p.waiters > 0 then pool_ask(p) end
end

-- csv.position(key[, scope]) -> the next position of `key` in the run (1, 2, 3, ...), or nil and
-- a message when it cannot be had (outside a VU in a cluster; the queen refused).
function M.position(key, scope)
  local cluster = queen_cluster()
  if not cluster then return count_here(scope and (key .. " " .. scope) or key) end
  local p = pools[key]
  if not p then
    p = { key = key, cluster = cluster, core = require "parrot.core", ranges = {}, left = 0,
          waiters = {}, reserve = 0, taken = 0, since = 0 }
    p.since = p.core.now()
    pools[key] = p
  end
  local pos = pool_take(p)
  if pos then return pos end
  local why = key .. ": the queen hands out no more positions "
    .. "(over 1,024 feeders and counters in the run, or a name over 512 bytes)"
  if p.refused then return nil, why end
  if not coroutine.running() then
    return nil, key .. ": positions come from the queen during the run: "
      .. "ask for them in a session, setup or teardown"
  end
  p.waiters[#p.waiters + 1] = coroutine.running()
  pool_ask(p)
  pos = p.core.park()
  if not pos then return nil, why end
  return pos
end

------------------------------------------------------------------------------------------------
-- feeders

local feeder = {}
feeder.__index = feeder

local leased = {} -- key -> unique feeder of this thread whose rows come from the queen
local nleased = 0
local nshared = 0 -- sequential feeders opened (the n-th is the same feeder on every thread)

local function exhausted(self)
  local msg = string.format("%s: every row has been used (mode unique, %d rows)", self.file, self.total)
  if self.dry == "refused" then
    msg = string.format("%s: the queen leases no more rows (over %d unique feeders?)", self.file, self.total)
  end
  if not self.warned then self.warned = true; io.stderr:write("parrot: " .. msg .. "\n") end
  return nil, msg
end

-- Ask the queen for the next lease unless a question is out (for less than ASK_AGAIN seconds: a
-- question or its answer lost on the way is asked again; a late answer only adds a lease) or the
-- rows are all gone.
local ASK_AGAIN = 2
local function ask(self)
  if self.dry then return end
  local t = self.core.now()
  if self.asking and t - self.asked_at < ASK_AGAIN then return end
  self.asking, self.asked_at = true, t
  self.cluster.rows(self.key, self.chunk)
end

-- M.lease(key, first, count): the queen's answer: rows (or positions) first+1 .. first+count
-- (1-based) are this thread's; count 0 is a refusal. VUs waiting for rows find them on their next
-- look; callers of csv.position waiting for positions are woken.
function M.lease(key, first, count)
  if pools[key] then return pool_lease(pools[key], first, count) end
  local self = leased[key]
  if not self then return end
  self.asking = false
  if count <= 0 then
    self.dry = "refused"
  elseif first >= #self.rows then
    self.dry = "used"
  else
    local last = math.min(first + count, #self.rows)
    self.leases[#self.leases + 1] = { first + 1, last }
    self.left = self.left + last - first
  end
end

-- A unique row from the leases at hand, asking for more while some are left; waits (in a VU)
-- when none is at hand.
local function next_leased(self)
  while true do
    local l = self.leases[1]
    if l then
      local idx = l[1]
      if idx >= l[2] then table.remove(self.leases, 1) else l[1] = idx + 1 end
      self.left = self.left - 1
      if self.left <= self.low then ask(self) end
      return self.rows[idx]
    end
    if self.dry then return exhausted(self) end
    ask(self)
    local co = coroutine.running()
    if not co then
      return nil, self.file .. ": unique rows come from the queen during the run: "
        .. "call next() in a session, setup or teardown"
    end
    self.core.sleep(0.02) -- the answer, or the time to ask again
  end
end

-- feeder:next() -> row, or nil and a message (unique mode, when every row was used)
function feeder:next()
  local n = #self.rows
  if n == 0 then return nil, self.file .. ": no rows" end
  if self.mode == "random" then return self.rows[math.random(n)] end
  if self.leases then return next_leased(self) end
  if self.shared then
    local pos, err = M.position(self.key)
    if not pos then return nil, self.file .. ": " .. err end
    return self.rows[(pos - 1) % n + 1]
  end
  local idx = self.pos
  if idx > n then
    if self.mode == "unique" then return exhausted(self) end
    idx = self.first
  end
  self.pos = idx + self.step
  return self.rows[idx]
end

function feeder:len() return #self.rows end

-- Unique rows leased from the queen when this thread has one (parrot.cluster), else nothing.
local function lease_from_queen(self, core, threads)
  local ok, cluster = pcall(require, "parrot.cluster")
  if not ok or type(cluster) ~= "table" or not core then return end
  nleased = nleased + 1
  self.key = self.file .. "#" .. nleased -- the same on every thread: all load the scenario alike
  self.cluster, self.core = cluster, core
  self.leases, self.left = {}, 0
  -- leases of about 1/8 of a thread's share (1 to 1,000 rows); the next is asked for at half
  self.chunk = math.max(1, math.min(1000, math.floor(#self.rows / (8 * threads))))
  self.low = math.floor(self.chunk / 2)
  leased[self.key] = self
end

function M.open(file, opts, dir)
  opts = opts or {}
  local mode = opts.mode or "sequential"
  if mode ~= "sequential" and mode ~= "random" and mode ~= "unique" then
    error("parrot.csv: mode must be sequential, random or unique (got '" .. tostring(mode) .. "')", 3)
  end
  local path = file
  if not file:find("^/") and dir then path = dir .. "/" .. file end
  local f, err = io.open(path, "rb")
  if not f and dir then -- named in `files = {...}` from outside the directory: it travels under its base name
    f = io.open(dir .. "/" .. (file:match("([^/]+)$") or file), "rb")
  end
  if not f then error("parrot.csv: cannot read " .. file .. ": " .. tostring(err), 3) end
  local text = f:read("*a")
  f:close()
  local rows = M.parse(text, opts)
  local thread, threads = 0, 1
  local ok, core = pcall(require, "parrot.core")
  if ok then thread, threads = core.thread() else core = nil end
  local self = setmetatable({ file = file, mode = mode, rows = rows, total = #rows,
                              first = thread + 1, pos = thread + 1, step = threads }, feeder)
  if mode == "random" then self.first, self.pos, self.step = 1, 1, 1 end
  if mode == "sequential" and #rows < threads then self.first, self.pos, self.step = 1, 1, 1 end
  if mode == "unique" then lease_from_queen(self, core, threads) end
  local has_ext, ext = pcall(require, "parrot.ext")
  if mode == "sequential" and has_ext and type(ext) == "table" and ext.shared_add then
    nshared = nshared + 1 -- one position for the whole run (csv.position), when loaded in parrot
    self.shared, self.key = true, "csv " .. file .. "#" .. nshared
  end
  return self
end

return M
