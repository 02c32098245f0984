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
