-- parrot.test: the runner of `parrot test SPEC.lua` — a busted-like describe/it/assert that runs
-- inside a virtual user, so specs can make real requests and sleep on the real loop.
-- Each `it` prints a TAP line: "ok - describe it" or "not ok - describe it: reason".
local M = { failed = 0, passed = 0 }

local tests, stack, befores, afters = {}, {}, {}, {}

local function fullname(name)
  local parts = {}
  for _, s in ipairs(stack) do parts[#parts + 1] = s end
  parts[#parts + 1] = name
  return table.concat(parts, " ")
end

function describe(name, fn)
  stack[#stack + 1] = name
  local nb, na = #befores, #afters
  fn()
  for i = #befores, nb + 1, -1 do befores[i] = nil end
  for i = #afters, na + 1, -1 do afters[i] = nil end
  stack[#stack] = nil
end

function it(name, fn)
  local b, a = {}, {}
  for i, f in ipairs(befores) do b[i] = f end
  for i, f in ipairs(afters) do a[i] = f end
  tests[#tests + 1] = { name = fullname(name), fn = fn, before = b, after = a }
end

function before_each(fn) befores[#befores + 1] = fn end
function after_each(fn) afters[#afters + 1] = fn end
function pending(name) tests[#tests + 1] = { name = fullname(name), pending = true } end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" then return tostring(v) end
  local ok, cjson = pcall(require, "cjson")
  if ok then
    local ok2, s = pcall(cjson.encode, v)
    if ok2 then return s end
  end
  return tostring(v)
end

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do if not deep_equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function fail(msg) error(msg, 3) end

assert = setmetatable({
  equal = function(expected, actual, msg)
    if expected ~= actual then fail((msg and msg .. ": " or "") .. "expected " .. show(expected) .. ", got " .. show(actual)) end
  end,
  same = function(expected, actual, msg)
    if not deep_equal(expected, actual) then fail((msg and msg .. ": " or "") .. "expected " .. show(expected) .. ", got " .. show(actual)) end
  end,
  truthy = function(v, msg) if not v then fail(msg or ("expected a true value, got " .. show(v))) end end,
  falsy = function(v, msg) if v then fail(msg or ("expected a false value, got " .. show(v))) end end,
  is_nil = function(v, msg) if v ~= nil then fail(msg or ("expected nil, got " .. show(v))) end end,
  not_nil = function(v, msg) if v == nil then fail(msg or "expected a value, got nil") end end,
  matches = function(pattern, s, msg)
    if type(s) ~= "string" or not s:find(pattern) then fail((msg and msg .. ": " or "") .. show(s) .. " does not match " .. show(pattern)) end
  end,
  near = function(expected, actual, tol, msg)
    if type(actual) ~= "number" or math.abs(expected - actual) > tol then
      fail((msg and msg .. ": " or "") .. "expected " .. show(expected) .. " +/- " .. tol .. ", got " .. show(actual))
    end
  end,
  has_error = function(fn, pattern)
    local ok, err = pcall(fn)
    if ok then fail("expected an error" .. (pattern and (" matching " .. show(pattern)) or "")) end
    if pattern and not tostring(err):find(pattern, 1, true) and not tostring(err):find(pattern) then
      fail("error " .. show(tostring(err)) .. " does not match " .. show(pattern))
    end
  end,
}, { __call = function(_, v, msg, ...) if not v then error(msg or "assertion failed!", 2) end return v, msg, ... end })

-- Load the spec file (registering its tests) and return the function that runs them.
function M.run_file(file)
  local chunk, err = loadfile(file)
  if not chunk then error(err, 0) end
  chunk()
  return function()
    for _, t in ipairs(tests) do
      if t.pending then
        print("ok - " .. t.name .. " # SKIP pending")
      else
        local ok, e = xpcall(function()
          for _, f in ipairs(t.before) do f() end
          t.fn()
          for _, f in ipairs(t.after) do f() end
        end, function(e) return tostring(e) end)
        if ok then
          M.passed = M.passed + 1
          print("ok - " .. t.name)
        else
          M.failed = M.failed + 1
          print("not ok - " .. t.name .. ": " .. tostring(e):gsub("\n", " "))
        end
      end
      io.stdout:flush()
    end
  end
end

return M
