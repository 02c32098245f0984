-- The scenario API: check, think, sleep, transaction, units, parrot.env, custom metrics, the
-- load builders and how parrot.load reads a scenario file.
local http = require "parrot.http"
local core = require "parrot.core"
local T = os.getenv("PARROT_TARGET") or "http://127.0.0.1:8080"

-- Write `text` to a fresh temporary .lua file and return its path.
-- Each scenario in a directory of its own: the whole directory travels as the scenario's bundle.
local function scenario_file(text)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir) == 0)
  local path = dir .. "/scenario.lua"
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

describe("check", function()
  it("check(value, name) records a named check and returns whether it passed", function()
    assert.equal(true, check(1 + 1 == 2, "arithmetic works"))
    assert.equal(false, check(nil, "nil fails"))
  end)

  it("check(response, {name = function}) runs every function on the value", function()
    local r = http.get(T .. "/json")
    local ok = check(r, {
      ["status is 200"] = function(res) return res.status == 200 end,
      ["three items"] = function(res) return #res:json().items == 3 end,
    })
    assert.equal(true, ok)
  end)

  it("a failing or raising function makes the whole check false", function()
    local ok = check(42, {
      ["is a number"] = function(v) return type(v) == "number" end,
      ["raises"] = function(v) return v.field.missing end,
    })
    assert.equal(false, ok)
  end)
end)

describe("think and sleep", function()
  it("sleep(s) pauses the virtual user for s seconds", function()
    local t0 = core.now()
    sleep(0.2)
    assert.near(0.2, core.now() - t0, 0.05)
  end)

  it("sleep takes duration strings too", function()
    local t0 = core.now()
    sleep("150ms")
    assert.near(0.15, core.now() - t0, 0.05)
  end)

  it("think(min, max) pauses a random time between min and max", function()
    for _ = 1, 3 do
      local t0 = core.now()
      think(0.05, 0.15)
      local dt = core.now() - t0
      assert.truthy(dt >= 0.045 and dt < 0.2, "slept " .. dt)
    end
  end)

  it("think(s) pauses exactly s", function()
    local t0 = core.now()
    think(0.1)
    assert.near(0.1, core.now() - t0, 0.05)
  end)
end)

describe("transaction", function()
  it("returns what its function returns", function()
    local a, b = transaction("pair", function(x) return x, x * 2 end, 21)
    assert.equal(21, a)
    assert.equal(42, b)
  end)

  it("times requests made inside as one unit", function()
    local t0 = core.now()
    local status = transaction("two pages", function()
      http.get(T .. "/delay/30")
      return http.get(T .. "/delay/30").status
    end)
    assert.equal(200, status)
    assert.truthy(core.now() - t0 >= 0.06)
  end)

  it("records a failure and raises the error again", function()
    assert.has_error(function()
      transaction("broken", function() error("out of stock", 0) end)
    end, "out of stock")
  end)
end)

describe("units", function()
  it("parrot.duration reads seconds from a number or a string", function()
    assert.equal(30, parrot.duration(30))
    assert.equal(0.5, parrot.duration("500ms"))
    assert.equal(30, parrot.duration("30s"))
    assert.equal(300, parrot.duration("5m"))
    assert.equal(5400, parrot.duration("1h30m"))
    assert.near(0.00025, parrot.duration("250us"), 1e-12)
  end)

  it("parrot.duration names what it could not read", function()
    assert.has_error(function() parrot.duration("soon", "ramp") end, "ramp: cannot read duration 'soon'")
  end)

  it("parrot.count reads k and M suffixes", function()
    assert.equal(15, parrot.count(15))
    assert.equal(15, parrot.count("15"))
    assert.equal(10000, parrot.count("10k"))
    assert.equal(2000000, parrot.count("2M"))
    assert.has_error(function() parrot.count("many", "vus") end, "vus: expected a number")
  end)
end)

describe("parrot.env", function()
  it("falls back to the process environment", function()
    assert.equal(os.getenv("HOME"), parrot.env.HOME)
    assert.is_nil(parrot.env.SURELY_NOT_SET_ANYWHERE_42)
  end)

  it("holds -e NAME=value settings, which win over the environment", function()
    rawset(parrot.env, "HOME", "/from/-e") -- what `parrot run -e HOME=/from/-e` does
    assert.equal("/from/-e", parrot.env.HOME)
    parrot.env.HOME = nil
    assert.equal(os.getenv("HOME"), parrot.env.HOME)
  end)
end)

describe("custom metrics", function()
  it("parrot.counter(name):add() adds 1 or a given amount", function()
    local orders = parrot.counter("orders")
    orders:add()
    orders:add(3)
    assert.equal("counter", orders.kind)
  end)

  it("parrot.trend(name):add(v) records a value", function()
    local basket = parrot.trend("basket_size")
    basket:add(12.5)
    basket:add(3)
    assert.equal("trend", basket.kind)
  end)

  it("trend:add refuses what is not a number", function()
    assert.has_error(function() parrot.trend("t"):add("lots") end, "trend:add needs a number")
  end)
end)

describe("load models", function()
  it("parrot.closed: a fixed number of VUs looping, with an optional ramp", function()
    local l = parrot.closed { vus = 20, duration = "1m", ramp = "10s" }
    assert.same({ model = "closed", vus = 20, duration = 60, ramp = 10 }, l)
  end)

  it("parrot.closed with stages ramps between targets", function()
    local l = parrot.closed { stages = { { duration = "30s", target = 10 }, { "1m", 0 } } }
    assert.same({ { duration = 30, target = 10 }, { duration = 60, target = 0 } }, l.stages)
    assert.equal(90, parrot.load_duration(l))
  end)

  it("parrot.closed{iterations} stops after that many iterations in all", function()
    assert.equal(100, parrot.closed({ vus = 5, iterations = 100 }).iterations)
  end)

  it("parrot.open: users arriving at a rate (or interarrival time), Poisson by default", function()
    local l = parrot.open { phases = { { rate = 10, duration = "1m" },
                                       { interarrival = "200ms", duration = "30s", dist = "uniform" } },
                           max_users = "20k" }
    assert.equal("open", l.model)
    assert.equal(20000, l.max_users)
    assert.same({ rate = 10, duration = 60, dist = "poisson" }, l.phases[1])
    assert.same({ rate = 5, duration = 30, dist = "uniform" }, l.phases[2])
    assert.equal(90, parrot.load_duration(l))
  end)

  it("parrot.open without phases is one phase", function()
    local l = parrot.open { rate = 50, duration = "10s" }
    assert.same({ { rate = 50, duration = 10, dist = "poisson" } }, l.phases)
  end)

  it("parrot.open needs a rate", function()
    assert.has_error(function() parrot.open { phases = { { duration = "1m" } } } end, "give a rate")
  end)

  it("parrot.rate: constant iterations per second over a pool of VUs", function()
    assert.same({ model = "rate", rate = 1000, vus = 50, duration = 30 },
                parrot.rate { rate = "1k", vus = 50, duration = "30s" })
  end)
end)

describe("parrot.load reads a scenario file", function()
  it("fills in defaults: a name from the file, one closed VU for 10 s", function()
    local path = scenario_file [[
      return parrot.scenario { run = function() end }
    ]]
    local sc = parrot.load(path)
    os.remove(path)
    assert.equal("closed", sc.load.model)
    assert.equal(1, sc.load.vus)
    assert.equal(10, sc._duration)
    assert.equal("default", sc.sessions[1].name)
    assert.equal("scenario", sc.name)
  end)

  it("applies the command line's --vus and --duration", function()
    local path = scenario_file [[
      return parrot.scenario { load = parrot.closed { vus = 5, duration = "1m" }, run = function() end }
    ]]
    local sc = parrot.load(path, { vus = 50, duration = 20 })
    os.remove(path)
    assert.equal(50, sc.load.vus)
    assert.equal(20, sc.load.duration)
  end)

  it("turns thresholds into a sorted list of key, expression and abort", function()
    local path = scenario_file [[
      return parrot.scenario {
        run = function() end,
        thresholds = { p95 = "< 250ms", ["home:p99"] = { "< 400ms", abort = true } },
      }
    ]]
    local sc = parrot.load(path)
    os.remove(path)
    assert.same({ { key = "home:p99", expr = "< 400ms", abort = true },
                  { key = "p95", expr = "< 250ms", abort = false } }, sc._thresholds)
  end)

  it("accepts session probabilities that sum to 100", function()
    local path = scenario_file [[
      return parrot.scenario { sessions = {
        { name = "a", probability = 70, run = function() end },
        { name = "b", probability = 30, run = function() end } } }
    ]]
    local sc = parrot.load(path)
    os.remove(path)
    assert.equal(70, sc.sessions[1].weight)
  end)

  it("refuses session probabilities that do not sum to 100, and says so", function()
    local path = scenario_file [[
      return parrot.scenario { sessions = {
        { name = "a", probability = 60, run = function() end },
        { name = "b", probability = 30, run = function() end } } }
    ]]
    local ok, err = pcall(parrot.load, path)
    os.remove(path)
    assert.falsy(ok)
    assert.matches("probabilities must all be given and sum to 100 %(they sum to 90%)", err)
    assert.truthy(err:find(path, 1, true), "the message names the file")
  end)

  it("refuses a file that does not return parrot.scenario", function()
    local path = scenario_file "return { run = function() end }"
    local ok, err = pcall(parrot.load, path)
    os.remove(path)
    assert.falsy(ok)
    assert.matches("must end with `return parrot.scenario", err)
  end)

  it("refuses a scenario without sessions", function()
    local path = scenario_file "return parrot.scenario { name = 'empty' }"
    local ok, err = pcall(parrot.load, path)
    os.remove(path)
    assert.falsy(ok)
    assert.matches("has no sessions", err)
  end)

  it("reports a syntax error with the file and line", function()
    local path = scenario_file "return parrot.scenario {\n run = function( end }"
    local ok, err = pcall(parrot.load, path)
    os.remove(path)
    assert.falsy(ok)
    assert.truthy(err:find(path .. ":2:", 1, true), err)
  end)
end)

describe("a whole run: setup, on_start, teardown and thresholds", function()
  -- Runs `parrot run` as a child process (io.popen blocks this VU, which is fine in a spec).
  local PARROT = os.getenv("PARROT") or "./parrot"

  it("setup's result reaches sessions and teardown; on_start runs once per VU", function()
    local log = os.tmpname()
    local path = scenario_file([[
      local http = require "parrot.http"
      local LOG = ]] .. string.format("%q", log) .. [[
      local function note(s) local f = io.open(LOG, "a"); f:write(s, "\n"); f:close() end
      return parrot.scenario {
        target = parrot.env.TARGET,
        load = parrot.closed { vus = 2, duration = "1s" },
        setup = function() return { token = http.get("/json"):json().token } end,
        teardown = function(data) note("teardown " .. data.token) end,
        thresholds = { ["errors.rate"] = "< 1%" },
        sessions = { {
          name = "s",
          on_start = function(vu) note("on_start " .. vu.id) end,
          run = function(vu)
            check(vu.setup.token == "abc123", "setup data")
            http.get("/", { name = "home" })
            sleep(0.2)
          end } },
      }
    ]])
    local out = os.tmpname() .. ".json"
    local cmd = string.format("%s run %s -e TARGET=%s --threads 1 --quiet --out %s >/dev/null 2>&1; echo $?",
                              PARROT, path, T, out)
    local p = io.popen(cmd)
    local rc = tonumber(p:read("*a"))
    p:close()
    local f = io.open(log)
    local text = f and f:read("*a") or ""
    if f then f:close() end
    local sf = io.open(out)
    local summary = sf and require("cjson").decode(sf:read("*a")) or {}
    if sf then sf:close() end
    os.remove(path); os.remove(log); os.remove(out)
    assert.equal(0, rc, "exit code")
    assert.matches("teardown abc123", text)
    local _, starts = text:gsub("on_start", "")
    assert.equal(2, starts, "one on_start per VU: " .. text)
    assert.equal(0, summary.checks["setup data"].failed)
    assert.truthy(summary.totals.requests > 0)
  end)

  it("a crossed threshold makes the exit code 99", function()
    local path = scenario_file [[
      local http = require "parrot.http"
      return parrot.scenario {
        target = parrot.env.TARGET,
        load = parrot.closed { vus = 1, duration = "1s" },
        thresholds = { ["errors.rate"] = "< 1%" },
        run = function() http.get("/status/500"); sleep(0.1) end,
      }
    ]]
    local p = io.popen(string.format("%s run %s -e TARGET=%s --threads 1 --quiet >/dev/null 2>&1; echo $?",
                                     PARROT, path, T))
    local rc = tonumber(p:read("*a"))
    p:close()
    os.remove(path)
    assert.equal(99, rc)
  end)

  it("parrot.abort_test(reason) ends the whole test at once: exit code 1, summary interrupted", function()
    local path = scenario_file [[
      local http = require "parrot.http"
      return parrot.scenario {
        target = parrot.env.TARGET,
        load = parrot.closed { vus = 2, duration = "30s" },
        run = function(vu)
          http.get("/")
          if vu.iteration == 3 then parrot.abort_test("seen enough") end
          sleep(0.05)
        end,
      }
    ]]
    local out = os.tmpname() .. ".json"
    local core = require "parrot.core"
    local t0 = core.now()
    local p = io.popen(string.format("%s run %s -e TARGET=%s --quiet --out %s 2>&1 >/dev/null; echo rc=$?",
                                     PARROT, path, T, out))
    local text = p:read("*a")
    p:close()
    local elapsed = core.now() - t0
    local f = io.open(out)
    local summary = f and require("cjson").decode(f:read("*a")) or {}
    if f then f:close() end
    os.remove(path); os.remove(out)
    assert.matches("rc=1", text)
    assert.matches("the scenario ended the test: seen enough", text)
    assert.equal(true, summary.interrupted)
    assert.truthy(elapsed < 10, "it stopped long before its 30 s (" .. elapsed .. " s)")
  end)
end)

describe("the Lua runtime", function()
  it("pairs() visits every key, even in loops the JIT gives up on (LuaJIT bug #827 in Debian 12's LuaJIT)", function()
    local t = { 1, 2, 3, 4, 5 }
    local tab = { a = t, b = t, c = t, d = t, e = t }
    local function f() for _ = 1, 100 do end end
    local short = 0
    for _ = 1, 100000 do
      f() -- back to the interpreter each time, as in the upstream report
      local c = 0
      for _, v in pairs(tab) do
        for _ in pairs(v) do end
        c = c + 1
      end
      if c ~= 5 then short = short + 1 end
    end
    assert.equal(0, short)
  end)
end)
