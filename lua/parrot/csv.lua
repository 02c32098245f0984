-- parrot.csv: data feeders from CSV files (users, payloads). parrot.csv(file, {mode, header,
-- delimiter}) reads the file once per load thread; `:next()` hands out rows:
--   sequential  rows in order, wrapping around (threads interleave, so each row comes up once
--               per pass over the whole file);
--   random      a random row each time;
--   unique      every row at most once across all threads; nil and a message when none is left.
local M = {}

-- Split one CSV record (RFC 4180 quotes, "" inside quotes); returns the fields.
local function split(line, d)
  local fields, i, n = {}, 1, #line
  while i <= n + 1 do
    if line:sub(i, i) == '"' then
      local buf, j = {}, i + 1
      while true do
        local q = line:find('"', j, true)
        if not q then buf[#buf + 1] = line:sub(j); j = n + 1; break end
        buf[#buf + 1] = line:sub(j, q - 1)
        if line:sub(q + 1, q + 1) == '"' then buf[#buf + 1] = '"'; j = q + 2
        else j = q + 1; break end
      end
      fields[#fields + 1] = table.concat(buf)
      local nd = line:find(d, j, true)
      i = nd and nd + 1 or n + 2
    else
      local nd = line:find(d, i, true)
      fields[#fields + 1] = line:sub(i, (nd or n + 1) - 1)
      i = nd and nd + 1 or n + 2
    end
  end
  return fields
end
M.split = split

function M.parse(text, opts)
  opts = opts or {}
  local d = opts.delimiter or ","
  local rows, names = {}, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = line:gsub("\r$", "")
    if line ~= "" then
      local f = split(line, d)
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
  end
  return rows, names
end

local feeder = {}
feeder.__index = feeder

-- feeder:next() -> row, or nil and a message (unique mode, when every row was used)
function feeder:next()
  local n = #self.rows
  if n == 0 then return nil, self.file .. ": no rows" end
  if self.mode == "random" then return self.rows[math.random(n)] end
  local idx = self.pos
  if idx > n then
    if self.mode == "unique" then
      local msg = string.format("%s: every row has been used (mode unique, %d rows)", self.file, self.total)
      if not self.warned then self.warned = true; io.stderr:write("parrot: " .. msg .. "\n") end
      return nil, msg
    end
    idx = self.first
  end
  self.pos = idx + self.step
  return self.rows[idx]
end

function feeder:len() return #self.rows end

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
  if ok then thread, threads = core.thread() end
  local self = setmetatable({ file = file, mode = mode, rows = rows, total = #rows,
                              first = thread + 1, pos = thread + 1, step = threads }, feeder)
  if mode == "random" then self.first, self.pos, self.step = 1, 1, 1 end
  if mode == "sequential" and #rows < threads then self.first, self.pos, self.step = 1, 1, 1 end
  return self
end

return M
