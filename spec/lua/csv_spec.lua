-- parrot.csv: data feeders from CSV files. Open them at the top of a scenario file (relative
-- names are looked up beside the scenario); each `feeder:next()` hands out one row.
local csv = require "parrot.csv"

-- Write `text` to a fresh temporary CSV file and return its path.
local function csv_file(text)
  local path = os.tmpname() .. ".csv"
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

describe("parsing", function()
  it("the first line names the fields; rows have them by name and by position", function()
    local path = csv_file("user,pass\nalice,secret\nbob,hunter2\n")
    local users = parrot.csv(path)
    os.remove(path)
    local row = users:next()
    assert.equal("alice", row.user)
    assert.equal("secret", row.pass)
    assert.equal("alice", row[1])
    assert.equal(2, users:len())
  end)

  it("quoted fields may hold line breaks (RFC 4180); CRLF line ends and empty lines are fine", function()
    local rows = csv.parse('user,note\r\nalice,"line1\nline2"\r\n\r\nbob,x\n')
    assert.equal(2, #rows)
    assert.equal("line1\nline2", rows[1].note)
    assert.equal("bob", rows[2].user)
    assert.equal("x", rows[2].note)
  end)

  it("quoted fields may hold the delimiter, quotes (doubled) and spaces", function()
    local rows = csv.parse('name,quote\n"Smith, Jane","she said ""hi"""\n" padded ",x\n')
    assert.equal("Smith, Jane", rows[1].name)
    assert.equal('she said "hi"', rows[1].quote)
    assert.equal(" padded ", rows[2].name)
  end)

  it("empty fields stay empty strings; CRLF line ends and blank lines are fine", function()
    local rows = csv.parse("a,b,c\r\n1,,3\r\n\r\n4,5,\r\n")
    assert.equal(2, #rows)
    assert.same({ "1", "", "3", a = "1", b = "", c = "3" }, rows[1])
    assert.equal("", rows[2].c)
  end)

  it("header = false keeps the first line as data", function()
    local rows = csv.parse("1,2\n3,4\n", { header = false })
    assert.same({ { "1", "2" }, { "3", "4" } }, rows)
  end)

  it("delimiter = ';' reads other separators", function()
    local rows = csv.parse("a;b\n1;2\n", { delimiter = ";" })
    assert.equal("2", rows[1].b)
  end)

  it("a missing file is an error that names it", function()
    assert.has_error(function() parrot.csv("/nonexistent/users.csv") end, "cannot read /nonexistent/users.csv")
  end)

  it("an unknown mode is an error", function()
    local path = csv_file("a\n1\n")
    local ok, err = pcall(parrot.csv, path, { mode = "shuffled" })
    os.remove(path)
    assert.falsy(ok)
    assert.matches("mode must be sequential, random or unique", err)
  end)
end)

describe("modes", function()
  local path
  before_each(function() path = csv_file("id\n1\n2\n3\n") end)
  after_each(function() os.remove(path) end)

  it("sequential (the default) hands out rows in order and wraps around", function()
    local f = parrot.csv(path, { mode = "sequential" })
    local seen = {}
    for i = 1, 7 do seen[i] = f:next().id end
    assert.same({ "1", "2", "3", "1", "2", "3", "1" }, seen)
  end)

  it("random hands out rows of the file in any order", function()
    local f = parrot.csv(path, { mode = "random" })
    local count = {}
    for _ = 1, 300 do
      local id = f:next().id
      count[id] = (count[id] or 0) + 1
    end
    assert.not_nil(count["1"]); assert.not_nil(count["2"]); assert.not_nil(count["3"])
    assert.equal(300, count["1"] + count["2"] + count["3"])
  end)

  it("unique hands out each row once, then nil and a message", function()
    local f = parrot.csv(path, { mode = "unique" })
    assert.equal("1", f:next().id)
    assert.equal("2", f:next().id)
    assert.equal("3", f:next().id)
    local row, msg = f:next()
    assert.is_nil(row)
    assert.matches("every row has been used", msg)
    assert.is_nil((f:next()), "and stays empty")
  end)

  it("an empty file gives nil and a message", function()
    local empty = csv_file("id\n")
    local f = parrot.csv(empty)
    os.remove(empty)
    local row, msg = f:next()
    assert.is_nil(row)
    assert.matches("no rows", msg)
  end)
end)

-- In a cluster a sequential feeder's position (and Tsung's user ids, and its order="iter" files)
-- is the run's, not a worker's: csv.position(key) hands out 1, 2, 3, ... leased from the queen.
-- Here a fake queen stands in for it: one counter per key, each answer a moment later, as over
-- the wire; a second instance of the module stands in for a second worker.
describe("over a cluster", function()
  local core = require "parrot.core"
  local asked, drop -- the questions the queen heard (counts); how many more to drop
  local asked_by -- key -> questions about it (an earlier test's thread may still ask about its own)
  local counters

  -- a parrot.cluster whose answers go to `mod` (a worker's parrot.csv)
  local function cluster_for(mod)
    return { rows = function(key, count)
      asked[#asked + 1] = count
      asked_by[key] = (asked_by[key] or 0) + 1
      if drop > 0 then drop = drop - 1; return end
      local first = counters[key] or 0
      counters[key] = first + count
      core.spawn(function() core.sleep(0.005); mod.lease(key, first, count) end)
    end }
  end

  -- a worker's parrot.csv: a fresh instance of the module
  local function other_worker()
    package.loaded["parrot.csv"] = nil
    local mod = require "parrot.csv"
    package.loaded["parrot.csv"] = csv
    return mod
  end

  local path
  before_each(function()
    asked, asked_by, drop, counters = {}, {}, 0, {}
    package.loaded["parrot.cluster"] = cluster_for(csv)
    path = csv_file("id\n1\n2\n3\n4\n5\n")
  end)
  after_each(function()
    package.loaded["parrot.cluster"] = nil
    os.remove(path)
  end)

  it("sequential: two workers share the file's position, each row once before it starts again", function()
    local workers = { { csv = other_worker() }, { csv = other_worker() } } -- as loaded by each
    for _, w in ipairs(workers) do
      w.cluster, w.rows = cluster_for(w.csv), w.csv.open(path, { mode = "sequential" })
    end
    local seen = {}
    for i = 1, 10 do -- the first worker takes two rows, the second one, and so on
      local w = workers[i % 3 == 0 and 2 or 1]
      package.loaded["parrot.cluster"] = w.cluster -- what that worker's threads see
      seen[i] = w.rows:next().id
    end
    assert.same({ "1", "2", "3", "4", "5", "1", "2", "3", "4", "5" }, seen)
    assert.same({ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, asked, "one by one, as each is wanted")
  end)

  it("users who wait at once share one question to the queen; the first ones get 1, 2, 3, ...", function()
    local got = {}
    for i = 1, 5 do core.spawn(function() got[i] = csv.position("users-at-once") end) end
    core.sleep(0.1)
    assert.same({ 1, 2, 3, 4, 5 }, got)
    assert.same({ 1, 4 }, asked, "the first user asks for one; the four who came meanwhile, for four")
  end)

  it("a busy thread (over 50 a second) keeps about 0.1 s of positions at hand: fewer questions, no wait", function()
    local got = {}
    local function take_for(seconds) -- one every 10 ms (and the wait for the queen, if any)
      local t0 = core.now()
      while core.now() - t0 < seconds do
        got[#got + 1] = csv.position("busy")
        core.sleep(0.01)
      end
    end
    take_for(1.1) -- at first each one is asked for: the thread's pace is not known yet
    local taken, questions = #got, #asked
    take_for(1)
    taken, questions = #got - taken, #asked - questions
    for i, pos in ipairs(got) do assert.equal(i, pos) end
    assert.truthy(taken >= 80, taken .. " taken in the second second: the takers did not wait")
    assert.truthy(questions <= taken / 2, questions .. " questions for " .. taken .. " positions")
  end)

  it("a question (or its answer) lost on the way is asked again after 2 s", function()
    drop = 1
    local t = core.now()
    assert.equal(1, csv.position("lost"))
    assert.truthy(core.now() - t >= 1.9, "it waited for the second question")
    assert.equal(2, asked_by.lost)
  end)

  it("a refusal (over 1,024 feeders and counters in the run) is nil and a message", function()
    package.loaded["parrot.cluster"] = { rows = function(key)
      core.spawn(function() csv.lease(key, 0, 0) end)
    end }
    local pos, msg = csv.position("refused")
    assert.is_nil(pos)
    assert.matches("no more positions", msg)
  end)

  it("parrot run (the only worker of its queen): the process's own counter, no question", function()
    package.loaded["parrot.cluster"] = { alone = true, rows = function() error("no question expected") end }
    local a, b = csv.position("alone", "run1"), csv.position("alone", "run1")
    assert.equal(a + 1, b)
    assert.equal(1, csv.position("alone", "run2"), "another run counts from 1")
  end)
end)
