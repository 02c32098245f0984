-- parrot.tsung: the runtime that Tsung configurations run on. `parrot import tsung FILE.xml` writes
-- Lua that calls it; each example here is one Tsung behaviour, written as that Lua would be.
-- Run with `parrot test spec/lua/tsung_spec.lua`; spec/run.sh starts `parrot target` and sets
-- PARROT_TARGET to its address.
local ts = require "parrot.tsung"
local http = require "parrot.http"
local ext = require "parrot.ext"
local cjson = require "cjson"
local now = require("parrot.core").now

local TARGET = os.getenv("PARROT_TARGET") or "http://127.0.0.1:8080"
local HOST, PORT = TARGET:match("^http://([^:/]+):(%d+)")
PORT = tonumber(PORT)

-- A configuration with the target as its one <server>, plus any options.
local function config(opts)
  local t = { servers = { { host = HOST, port = PORT, type = "tcp" } } }
  for k, v in pairs(opts or {}) do t[k] = v end
  return ts.config(t)
end

-- Run one user's session of configuration T (or a default one) and return its state.
local function run(fn, T, vu)
  local state
  ;(T or config()):session(function(s) state = s; return fn(s) end)(vu or { id = 1 })
  return state
end

-- Count the requests a function sends (and keep their URLs).
local function counting(fn)
  local real, urls = http.request, {}
  http.request = function(spec) urls[#urls + 1] = spec.url; return real(spec) end
  local ok, err = pcall(fn)
  http.request = real
  if not ok then error(err, 0) end
  return #urls, urls
end

local function echo(r) return cjson.decode(r.body) end

-- The counters (Tsung's statistics: error_*, match_*, users_count...) a function adds up.
local function counters(fn)
  local core = require "parrot.core"
  local real, got = core.counter, {}
  core.counter = function(name, n) got[name] = (got[name] or 0) + (n or 1); return real(name, n) end
  local ok, err = pcall(fn)
  core.counter = real
  if not ok then error(err, 0) end
  return got
end

describe("tsung requests", function()
  it("a plain GET of a relative URL goes to the <server>, Host header host:port", function()
    local r
    run(function(s) r = s:request { method = "GET", url = "/echo" } end)
    local e = echo(r)
    assert.equal("GET", e.method)
    assert.equal("/echo", e.path)
    assert.equal(HOST .. ":" .. PORT, e.headers.host)
  end)

  it("without <user_agent> options the user agent is Tsung's", function()
    local r
    run(function(s) r = s:request { url = "/echo" } end)
    assert.equal("Tsung", echo(r).headers["user-agent"])
  end)

  it("each user picks one user agent by probability for its whole session", function()
    local T = config { user_agents = { { probability = 100, value = "Mozilla/5.0 parrot" } } }
    local a, b
    run(function(s)
      a = echo(s:request { url = "/echo" }).headers["user-agent"]
      b = echo(s:request { url = "/echo" }).headers["user-agent"]
    end, T)
    assert.equal("Mozilla/5.0 parrot", a)
    assert.equal(a, b)
  end)

  it("a server of type ssl is reached over https; each user picks a server by weight", function()
    local T = ts.config { servers = { { host = "a.example", port = 80, type = "tcp", weight = 0 },
                                      { host = "b.example", port = 8443, type = "ssl", weight = 1 } } }
    for id = 1, 5 do
      run(function(s) assert.equal("https://b.example:8443/x?y", s:build { url = "/x?y" }.url) end, T, { id = id })
    end
  end)

  it("user agent probabilities must sum to 100", function()
    assert.has_error(function() config { user_agents = { { probability = 30, value = "a" } } } end, "sum to 100")
  end)

  it("a POST body gets Content-Type application/x-www-form-urlencoded by default", function()
    local e
    run(function(s) e = echo(s:request { method = "POST", url = "/echo", contents = "a=1&b=2" }) end)
    assert.equal("POST", e.method)
    assert.equal("a=1&b=2", e.body)
    assert.equal("application/x-www-form-urlencoded", e.headers["content-type"])
  end)

  it("content_type replaces the default one", function()
    local e
    run(function(s) e = echo(s:request { method = "PUT", url = "/echo", contents = "{}", content_type = "application/json" }) end)
    assert.equal("application/json", e.headers["content-type"])
  end)

  it("contents_from_file reads the body from a file of the bundle", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w")); f:write("from a file"); f:close()
    local e
    run(function(s) e = echo(s:request { method = "POST", url = "/echo", contents_from_file = path }) end)
    os.remove(path)
    assert.equal("from a file", e.body)
  end)

  it("if_modified_since adds an If-Modified-Since header to a GET", function()
    local e
    run(function(s) e = echo(s:request { url = "/echo", if_modified_since = "Fri, 14 Dec 2001 12:00:00 GMT" }) end)
    assert.equal("Fri, 14 Dec 2001 12:00:00 GMT", e.headers["if-modified-since"])
  end)

  it("http_header adds headers; one named User-Agent or Host replaces the default", function()
    local e
    run(function(s)
      e = echo(s:request { url = "/echo", headers = { { "Accept", "text/html" }, { "User-Agent", "mine" },
                                                      { "Host", "www.example.com" } } })
    end)
    assert.equal("text/html", e.headers.accept)
    assert.equal("mine", e.headers["user-agent"])
    assert.equal("www.example.com", e.headers.host)
  end)

  it("add_cookie sends cookies with this request only", function()
    local first, second
    run(function(s)
      first = echo(s:request { url = "/echo", cookies = { { key = "a", value = "1" }, { key = "b", value = "2" } } })
      second = echo(s:request { url = "/echo" })
    end)
    assert.equal("a=1; b=2", first.headers.cookie)
    assert.is_nil(second.headers.cookie)
  end)

  it("cookies the server set are kept and sent along with add_cookie ones", function()
    local e
    run(function(s)
      s:request { url = "/cookie/set?session=xyz" }
      e = echo(s:request { url = "/echo", cookies = { { key = "a", value = "1" } } })
    end)
    http.cookies.clear() -- the specs share one virtual user; Tsung's users each have their own jar
    assert.equal("session=xyz; a=1", e.headers.cookie)
  end)

  it("www_authenticate basic sends Authorization: Basic base64(user:pass)", function()
    local e
    run(function(s) e = echo(s:request { url = "/echo", auth = { type = "basic", userid = "alice", passwd = "s3cret" } }) end)
    assert.equal("Basic " .. ext.base64_encode("alice:s3cret"), e.headers.authorization)
  end)

  it("www_authenticate digest answers the challenge as RFC 2617 says (fields from dyn variables)", function()
    local e
    run(function(s)
      s.vars.nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093"
      e = echo(s:request { url = "/echo", subst = true,
                           auth = { type = "digest", userid = "Mufasa", passwd = "Circle Of Life",
                                    realm = "testrealm@host.com", nonce = "%%_nonce%%", qop = "auth",
                                    nc = "00000001", cnonce = "0a4f113b", opaque = "5ccc069c403ebaf9f0171e9517f40e41" } })
    end)
    local ha1 = ext.md5_hex("Mufasa:testrealm@host.com:Circle Of Life")
    local ha2 = ext.md5_hex("GET:/echo")
    local resp = ext.md5_hex(ha1 .. ":dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:" .. ha2)
    local h = e.headers.authorization
    assert.matches('^Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"', h)
    assert.matches('uri="/echo"', h)
    assert.matches('response="' .. resp .. '"', h)
    assert.matches('opaque="5ccc069c403ebaf9f0171e9517f40e41"', h)
    assert.matches('qop="auth", nc=00000001, cnonce="0a4f113b"', h)
  end)

  it("soap action adds a quoted SOAPAction header", function()
    local e
    run(function(s) e = echo(s:request { method = "POST", url = "/echo", contents = "<x/>", soap_action = "urn:Get" }) end)
    assert.equal('"urn:Get"', e.headers.soapaction)
  end)

  it("redirects are not followed: the 302 is the response", function()
    local r
    run(function(s) r = s:request { url = "/redirect/1" } end)
    assert.equal(302, r.status)
  end)

  it("version 1.0 sends an HTTP/1.0 request", function()
    local real, sent = http.request, nil
    http.request = function(spec) sent = spec.version; return real(spec) end
    local ok, r = pcall(run, function(s) return s:request { url = "/echo", version = "1.0" } end)
    http.request = real
    assert.truthy(ok, r)
    assert.equal("1.0", sent)
  end)

  it("an absolute URL moves the user's later relative URLs to that host", function()
    local n, urls = counting(function()
      run(function(s)
        s:request { url = "http://localhost:" .. PORT .. "/echo" }
        local e = echo(s:request { url = "/echo?after" })
        assert.equal("localhost:" .. PORT, e.headers.host)
      end)
    end)
    assert.equal(2, n)
    assert.equal("http://localhost:" .. PORT .. "/echo?after", urls[2])
  end)

  it("a tag names the request in the statistics; otherwise its URL path does", function()
    local real, names = http.request, {}
    http.request = function(spec) names[#names + 1] = spec.name; return real(spec) end
    local ok, err = pcall(run, function(s)
      s:request { url = "/echo?q=1", tag = "search" }
      s:request { url = "/echo?q=1" }
    end)
    http.request = real
    assert.truthy(ok, err)
    assert.same({ "search", "/echo" }, names)
  end)
end)

describe("tsung substitution", function()
  it("subst=true expands %%_var%% in url, body, headers and cookies; undefined is 'undefined'", function()
    local e
    run(function(s)
      s.vars.q = "a b"
      s.vars.who = "bob"
      e = echo(s:request { method = "POST", url = "/echo?q=%%_q%%&n=%%_nope%%", subst = true,
                           contents = "user=%%_who%%&id=%%_tsung_userid%%",
                           headers = { { "X-Who", "%%_who%%" } }, cookies = { { key = "w", value = "%%_who%%" } } })
    end, nil, { id = 7 })
    assert.equal("q=a%20b&n=undefined", e.query)
    assert.equal("user=bob&id=7", e.body)
    assert.equal("bob", e.headers["x-who"])
    assert.equal("w=bob", e.headers.cookie)
  end)

  it("without subst %%_var%% is sent as it is", function()
    local e
    run(function(s) s.vars.x = "1"; e = echo(s:request { method = "POST", url = "/echo", contents = "%%_x%%" }) end)
    assert.equal("%%_x%%", e.body)
  end)

  it("subst=all_except_body expands everything but the body", function()
    local e
    run(function(s)
      s.vars.x = "1"
      e = echo(s:request { method = "POST", url = "/echo?x=%%_x%%", subst = "all_except_body", contents = "%%_x%%" })
    end)
    assert.equal("x=1", e.query)
    assert.equal("%%_x%%", e.body)
  end)

  it("%%ts_user_server:get_unique_id%% is the user's id (tsung_userid) for its whole session", function()
    local a, b, really
    run(function(s)
      a = echo(s:request { url = "/echo?%%ts_user_server:get_unique_id%%", subst = true }).query
      b = echo(s:request { url = "/echo?%%ts_user_server:get_unique_id%%", subst = true }).query
      really = echo(s:request { url = "/echo?%%ts_user_server:get_really_unique_id%%", subst = true }).query
    end, nil, { id = 5 })
    assert.equal("5", a)
    assert.equal("5", b)
    assert.matches("^%d+%-5$", really) -- "<epoch seconds>-<id>"
    assert.near(os.time(), tonumber(really:match("^%d+")), 2)
  end)

  it("in a run, users are numbered 1, 2, 3... in the order they start (over the process's threads)", function()
    local T, t0, ids = config(), now(), {}
    for _ = 1, 3 do run(function(s) ids[#ids + 1] = s.vars.tsung_userid end, T, { t0 = t0 }) end
    assert.same({ "1", "2", "3" }, ids)
    run(function(s) ids[4] = s.vars.tsung_userid end, T, { t0 = t0 + 1 }) -- another run counts afresh
    assert.equal("1", ids[4])
  end)
end)

describe("tsung dyn_variable", function()
  it("with no attribute it takes the value of the hidden form field of that name", function()
    local st = run(function(s) s:request { url = "/", dyn = { { name = "token" } } } end)
    assert.equal("abc123", st.vars.token)
  end)

  it("re takes capture 1 on the headers and body; no match gives an empty string", function()
    local st = run(function(s)
      s:request { url = "/", dyn = { { name = "title", re = "<title>([^<]*)</title>" },
                                     { name = "ctype", re = "Content-Type: ([^\r\n]*)" },
                                     { name = "none", re = "nothing (here)" } } }
    end)
    assert.equal("parrot target", st.vars.title)
    assert.matches("^text/html", st.vars.ctype)
    assert.equal("", st.vars.none)
  end)

  it("xpath gives a list (for foreach); the variable is its first element", function()
    local st = run(function(s) s:request { url = "/", dyn = { { name = "links", xpath = "//a/@href" } } } end)
    assert.equal("/json", st.vars.links)
    assert.same({ "/json" }, st.lists.links)
  end)

  it("jsonpath takes Tsung's subset: a.b[0].c, $., *, [?key=val]", function()
    local st = run(function(s)
      s:request { url = "/json", dyn = { { name = "first", jsonpath = "items[0].name" },
                                         { name = "count", jsonpath = "$.count" },
                                         { name = "names", jsonpath = "items.*.name" },
                                         { name = "pear", jsonpath = "items[?id=2].name" } } }
    end)
    assert.equal("apple", st.vars.first)
    assert.equal("3", st.vars.count)
    assert.same({ "apple", "pear", "plum" }, st.lists.names)
    assert.equal("pear", st.vars.pear)
  end)

  it("header takes a response header, or one field of it with header/field", function()
    local st = run(function(s)
      s:request { url = "/redirect/1", dyn = { { name = "loc", header = "location" } } }
    end)
    assert.equal("/redirect/0", st.vars.loc)
    local r = { header = function(_, n) if n == "www-authenticate" then return 'Digest realm="r1", nonce="n42", qop="auth"' end end }
    local s = setmetatable({ vars = {}, lists = {} }, ts.State)
    s:extract({ { name = "nonce", header = "www-authenticate/nonce" } }, r, function() return "" end)
    assert.equal("n42", s.vars.nonce)
  end)

  it("decode=html_entities unescapes the value", function()
    local st = run(function(s)
      s:request { url = "/echo?x=a%26amp%3Bb", dyn = { { name = "q", re = '"query":"([^"]*)"' } } }
      s.vars.enc = "a&amp;b"
      s:request { url = "/echo?%%_enc%%", subst = true,
                  dyn = { { name = "d", re = '"query":"([^"]*)"', decode = "html_entities" } } }
    end)
    assert.equal("a&b", st.vars.d)
  end)
end)

describe("tsung match", function()
  it("do=continue counts the match as a check (named by name, or by the regex) and goes on", function()
    local real, checks = check, {}
    check = function(v, name) checks[#checks + 1] = name .. "=" .. tostring(v); return real(v, name) end
    local n
    local ok, err = pcall(function()
      n = counting(function()
        run(function(s)
          s:request { url = "/status/404", matches = { { regex = "HTTP/1.1 404", ["do"] = "continue", when = "match" },
                                                       { regex = "Welcome", ["do"] = "continue", name = "welcome" } } }
          s:request { url = "/echo" }
        end)
      end)
    end)
    check = real
    assert.truthy(ok, err)
    assert.same({ "HTTP/1.1 404=true", "welcome=false" }, checks)
    assert.equal(2, n)
  end)

  it("do=loop sends the same request again after sleep_loop, at most max_loop times", function()
    local n = counting(function()
      run(function(s)
        s:request { url = "/echo", matches = { { regex = "never there", ["do"] = "loop", when = "nomatch",
                                                 max_loop = 2, sleep_loop = 0.01 } } }
      end)
    end)
    assert.equal(3, n)
  end)

  it("do=loop with loop_back=N runs the N actions before the request again, then the request", function()
    -- <request /echo?before>, <request /echo?first>, <setdynvars>, <request /echo?check> whose
    -- match goes back 2 actions (the setdynvars and /echo?first): the importer writes the block
    -- that a loop runs again as s:loop_back(2, function() ... end), the request last
    local n, urls
    local c = counters(function()
      n, urls = counting(function()
        run(function(s)
          s:request { url = "/echo?before" }
          s:loop_back(2, function()
            s:request { url = "/echo?first" }
            s:setdynvars { sourcetype = "value", value = "x", vars = { "v" } }
            s:request { url = "/echo?check", matches = { { regex = "never there", ["do"] = "loop", when = "nomatch",
                                                           loop_back = 2, max_loop = 2, sleep_loop = 0.01 } } }
          end)
          s:request { url = "/echo?after" }
        end)
      end)
    end)
    for i, u in ipairs(urls) do urls[i] = u:match("%?(.*)$") end
    assert.same({ "before", "first", "check", "first", "check", "first", "check", "after" }, urls)
    assert.equal(8, n)
    assert.equal(2, c.match_loop) -- at most max_loop times
  end)

  it("do=loop with loop_back stops going back once the match no longer fires", function()
    local t0 = now()
    local _, urls = counting(function()
      run(function(s)
        s:loop_back(1, function()
          s.vars.k = tostring((tonumber(s.vars.k) or 0) + 1) -- stands for an action that changes k
          s:request { url = "/echo?k=%%_k%%", subst = true,
                      matches = { { regex = "k=3", when = "nomatch", ["do"] = "loop", loop_back = 1, sleep_loop = 0.05 } } }
        end)
      end)
    end)
    for i, u in ipairs(urls) do urls[i] = u:match("%?(.*)$") end
    assert.same({ "k=1", "k=2", "k=3" }, urls)
    assert.truthy(now() - t0 >= 0.1, "sleep_loop before each time it goes back")
  end)

  it("loop_back blocks inside one another each count their own loops", function()
    local _, urls = counting(function()
      run(function(s)
        s:loop_back(2, function()
          s:loop_back(1, function()
            s:thinktime { value = 0.001 }
            s:request { url = "/echo?inner", matches = { { regex = "never", when = "nomatch", ["do"] = "loop",
                                                           loop_back = 1, max_loop = 1, sleep_loop = 0 } } }
          end)
          s:request { url = "/echo?outer", matches = { { regex = "never", when = "nomatch", ["do"] = "loop",
                                                         loop_back = 2, max_loop = 1, sleep_loop = 0 } } }
        end)
      end)
    end)
    for i, u in ipairs(urls) do urls[i] = u:match("%?(.*)$") end
    assert.same({ "inner", "inner", "outer", "inner", "inner", "outer" }, urls)
  end)

  it("a loop_back match whose request is not last in s:loop_back(N, ...) is an error that says so", function()
    local ok, err = pcall(run, function(s)
      s:request { url = "/echo", matches = { { regex = "never", when = "nomatch", ["do"] = "loop", loop_back = 3 } } }
    end)
    assert.falsy(ok)
    assert.truthy(tostring(err):find("must come last in s:loop_back(3, ...)", 1, true), tostring(err))
  end)

  it("do=abort ends the user's session quietly", function()
    local n = counting(function()
      run(function(s)
        s:request { url = "/status/404", matches = { { regex = "404", ["do"] = "abort", when = "match" } } }
        s:request { url = "/echo" }
      end)
    end)
    assert.equal(1, n)
  end)

  it("do=abort on nomatch, skip_headers=http looks at the body only", function()
    local n = counting(function()
      run(function(s)
        -- "Content-Type" is in the headers only: on the body alone it does not match
        s:request { url = "/", matches = { { regex = "Content-Type", ["do"] = "abort", when = "match", skip_headers = "http" } } }
        s:request { url = "/", matches = { { regex = "Content-Type", ["do"] = "abort", when = "nomatch" } } }
        s:request { url = "/echo" }
      end)
    end)
    assert.equal(3, n)
  end)

  it("do=log writes one line per match and URL (not one per user) and goes on", function()
    local real, lines = io.stderr, {}
    io.stderr = { write = function(_, x) lines[#lines + 1] = x end }
    local ok, err = pcall(function()
      for id = 1, 3 do
        run(function(s)
          s:request { url = "/status/404", matches = { { regex = "404", ["do"] = "log", name = "missing page" } } }
        end, nil, { id = id })
      end
    end)
    io.stderr = real
    assert.truthy(ok, err)
    assert.equal(1, #lines)
    assert.matches("missing page on .*/status/404", lines[1])
  end)

  it("do=restart runs the session again from the start, at most max_restart times", function()
    local runs = 0
    local n = counting(function()
      run(function(s)
        runs = runs + 1
        s:request { url = "/echo", matches = { { regex = "echo", ["do"] = "restart", max_restart = 2 } } }
        s:request { url = "/never" }
      end)
    end)
    assert.equal(3, runs) -- the first run and 2 restarts; the third match aborts the session
    assert.equal(3, n)
  end)

  it("do=abort_test ends the session (the notice says the run goes on), counting match_stop_test", function()
    local n
    local c = counters(function()
      n = counting(function()
        run(function(s)
          s:request { url = "/echo", matches = { { regex = "echo", ["do"] = "abort_test" } } }
          s:request { url = "/echo" }
        end)
      end)
    end)
    assert.equal(1, n)
    assert.equal(1, c.match_stop_test)
    assert.is_nil(c.match_stop)
  end)

  it("when=nomatch with do=continue: a check that passes when the regex does not match", function()
    local real, checks = check, {}
    check = function(v, name) checks[#checks + 1] = name .. "=" .. tostring(v); return real(v, name) end
    local ok, err = pcall(run, function(s)
      s:request { url = "/echo", matches = { { regex = "error", when = "nomatch", name = "no_error" },
                                             { regex = "echo", when = "nomatch", name = "no_echo" } } }
    end)
    check = real
    assert.truthy(ok, err)
    assert.same({ "no_error=true", "no_echo=false" }, checks)
  end)

  it("match subst=true expands variables in the regex", function()
    local n = counting(function()
      run(function(s)
        s.vars.word = "nowhere-to-be-found"
        s:request { url = "/echo", matches = { { regex = "%%_word%%", subst = true, ["do"] = "abort", when = "nomatch" } } }
        s:request { url = "/echo" }
      end)
    end)
    assert.equal(1, n)
  end)

  it("transactions are named tr_NAME and a session ending inside one closes it", function()
    local n = counting(function()
      run(function(s)
        s:transaction("login", function()
          s:request { url = "/echo" }
          s:abort("session")
        end)
        s:request { url = "/echo" }
      end)
    end)
    assert.equal(1, n)
  end)
end)

describe("tsung thinktime", function()
  it("value is a fixed pause in seconds", function()
    local t0 = now()
    run(function(s) s:thinktime { value = 0.1 } end)
    assert.near(0.1, now() - t0, 0.05)
  end)

  it("min/max is uniform between them", function()
    local t0 = now()
    run(function(s) s:thinktime { min = 0.05, max = 0.1 } end)
    local d = now() - t0
    assert.truthy(d >= 0.045 and d < 0.15, "took " .. d)
  end)

  it("random=true is exponential around the value (mean over many draws)", function()
    local real, total, n = require("parrot.core").sleep, 0, 2000
    local core = require "parrot.core"
    local ok, err = pcall(function()
      core.sleep = function(x) total = total + x end
      run(function(s) for _ = 1, n do s:thinktime { value = 2, random = true } end end)
    end)
    core.sleep = real
    assert.truthy(ok, err)
    assert.near(2, total / n, 0.2)
  end)

  it("<thinktime/> takes the configuration's default; override=true replaces every thinktime", function()
    local t0 = now()
    run(function(s) s:thinktime {} end, config { thinktime = { value = 0.05 } })
    assert.near(0.05, now() - t0, 0.04)
    t0 = now()
    run(function(s) s:thinktime { value = 10 } end, config { thinktime = { value = 0.05, override = true } })
    assert.near(0.05, now() - t0, 0.04)
  end)

  it("a thinktime with a value takes the default's random (exponential) unless it gives its own", function()
    local T = config { thinktime = { value = 9, random = true } }
    local sum, fixed, n = 0, 0, 2000
    run(function(s)
      for _ = 1, n do sum = sum + s:think_seconds { value = 2 } end
      for _ = 1, n do fixed = fixed + s:think_seconds { value = 2, random = false } end
    end, T)
    assert.near(2, sum / n, 0.2) -- the element's value, the default's kind
    assert.equal(2 * n, fixed)
  end)

  it("a thinktime with a value takes the default's min/max (uniform) when the default has them", function()
    local T = config { thinktime = { value = 9, min = 1, max = 3 } }
    run(function(s)
      local lo, hi = math.huge, 0
      for _ = 1, 500 do
        local x = s:think_seconds { value = 20 }
        lo, hi = math.min(lo, x), math.max(hi, x)
      end
      assert.truthy(lo >= 1 and hi <= 3 and hi - lo > 1.5, lo .. ".." .. hi)
      assert.equal(20, s:think_seconds { value = 20, random = false })
    end, T)
  end)

  it("a %%_var%% thinktime is fixed, even under override", function()
    run(function(s)
      s.vars.t = "0.25"
      assert.equal(0.25, s:think_seconds { value = "%%_t%%" })
    end, config { thinktime = { value = 3, override = true } })
  end)

  it("a %%_var%% value is substituted", function()
    local t0 = now()
    run(function(s) s.vars.t = "0.05"; s:thinktime { value = "%%_t%%" } end)
    assert.near(0.05, now() - t0, 0.04)
  end)
end)

describe("tsung setdynvars", function()
  it("random_number is an integer between start and end inclusive", function()
    run(function(s)
      for _ = 1, 50 do
        s:setdynvars { sourcetype = "random_number", start = 3, ["end"] = 5, vars = { "n" } }
        local n = tonumber(s.vars.n)
        assert.truthy(n >= 3 and n <= 5 and n == math.floor(n))
      end
    end)
  end)

  it("random_string and urandom_string have the length asked", function()
    local st = run(function(s)
      s:setdynvars { sourcetype = "random_string", length = 12, vars = { "a" } }
      s:setdynvars { sourcetype = "urandom_string", length = 7, vars = { "b" } }
    end)
    assert.matches("^%l+$", st.vars.a)
    assert.equal(12, #st.vars.a)
    assert.equal(7, #st.vars.b)
  end)

  it("value sets a constant; server gives the current host and port", function()
    local st = run(function(s)
      s:setdynvars { sourcetype = "value", value = "hello", vars = { "v" } }
      s:setdynvars { sourcetype = "server", vars = { "h", "p" } }
    end)
    assert.equal("hello", st.vars.v)
    assert.equal(HOST, st.vars.h)
    assert.equal(tostring(PORT), st.vars.p)
  end)

  it("jsonpath reads from another variable", function()
    local st = run(function(s)
      s.vars.doc = '{"user":{"name":"ann"}}'
      s:setdynvars { sourcetype = "jsonpath", from = "doc", jsonpath = "user.name", vars = { "who" } }
    end)
    assert.equal("ann", st.vars.who)
  end)

  it("file order=iter hands out lines in order, one position shared by all users, wrapping", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w")); f:write("alice;pw1\nbob;pw2\ncarol;pw3\n"); f:close()
    local T = config { file_servers = { users = path } }
    local seen = {}
    for id = 1, 4 do
      run(function(s)
        s:setdynvars { sourcetype = "file", fileid = "users", delimiter = ";", order = "iter", vars = { "user", "pass" } }
        seen[#seen + 1] = s.vars.user .. "/" .. s.vars.pass
      end, T, { id = id })
    end
    os.remove(path)
    assert.same({ "alice/pw1", "bob/pw2", "carol/pw3", "alice/pw1" }, seen)
  end)

  it("file order=iter: the position is shared by every user of the run, whichever thread runs it", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w")); f:write("a\nb\nc\n"); f:close()
    -- two configurations stand for two threads' states; they share the run's position
    local T1, T2, t0, seen = config { file_servers = { f = path } }, config { file_servers = { f = path } }, now(), {}
    for i = 1, 4 do
      run(function(s)
        s:setdynvars { sourcetype = "file", fileid = "f", vars = { "x" } }
        seen[#seen + 1] = s.vars.x
      end, i % 2 == 0 and T2 or T1, { t0 = t0 })
    end
    os.remove(path)
    assert.same({ "a", "b", "c", "a" }, seen)
  end)

  it("file order=random picks lines of the file", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w")); f:write("x,1\ny,2\n"); f:close()
    local st = run(function(s)
      s:setdynvars { sourcetype = "file", fileid = "default", delimiter = ",", order = "random", vars = { "k", "v" } }
    end, config { file_servers = { default = path } })
    os.remove(path)
    assert.truthy(st.vars.k == "x" and st.vars.v == "1" or st.vars.k == "y" and st.vars.v == "2")
  end)
end)

describe("tsung control flow", function()
  it("for is inclusive and its bounds may be variables", function()
    local got = {}
    run(function(s)
      s.vars.last = "7"
      for _ in s:for_loop("i", "1", "%%_last%%", "3") do got[#got + 1] = s.vars.i end
    end)
    assert.same({ "1", "4", "7" }, got)
  end)

  it("for runs its body at least once, as Tsung tests at the end", function()
    local n = 0
    run(function(s) for _ in s:for_loop("i", "5", "1", "1") do n = n + 1 end end)
    assert.equal(1, n)
  end)

  it("repeat is a do-while: while eq, until neq", function()
    local n, m = 0, 0
    run(function(s)
      s.vars.x = "go"
      s:repeat_loop({ name = "r", max_repeat = 20 }, function()
        n = n + 1
        if n == 3 then s.vars.x = "stop" end
      end, { kind = "while", var = "x", op = "eq", value = "go" })
      s:repeat_loop({ name = "u" }, function() m = m + 1 end, { kind = "until", var = "x", op = "neq", value = "go" })
    end)
    assert.equal(3, n)
    assert.equal(1, m)
  end)

  it("repeat counts its passes in the variable of its name: %%_NAME%% is 2 in the second pass", function()
    local seen = {}
    run(function(s)
      s.vars.x = "1"
      s:repeat_loop({ name = "rep", max_repeat = 10 }, function()
        seen[#seen + 1] = s:subst("%%_rep%%")
        if #seen == 3 then s.vars.x = "0" end
      end, { kind = "while", var = "x", op = "eq", value = "1" })
    end)
    assert.same({ "undefined", "2", "3" }, seen)
  end)

  it("repeat on a variable the user does not have counts error_repeat_NAMEundef and leaves", function()
    local n = 0
    local c = counters(function()
      run(function(s)
        s:repeat_loop({ name = "r" }, function() n = n + 1 end, { kind = "until", var = "nothing", op = "eq", value = "x" })
      end)
    end)
    assert.equal(1, n)
    assert.equal(1, c.error_repeat_rundef)
  end)

  it("repeat stops after max_repeat repetitions of its first pass (as Tsung 1.7 runs it)", function()
    local n = 0
    run(function(s)
      s.vars.x = "1"
      s:repeat_loop({ name = "r", max_repeat = 4 }, function() n = n + 1 end, { kind = "while", var = "x", op = "eq", value = "1" })
    end)
    assert.equal(5, n) -- real Tsung 1.7 sends a body 4 times for max_repeat="3"
  end)

  it("if compares strings with eq/neq and numbers with gt/lt", function()
    run(function(s)
      s.vars.a = "10"
      assert.truthy(s:test("a", "eq", "10"))
      assert.falsy(s:test("a", "neq", "10"))
      assert.truthy(s:test("a", "gt", "9"))   -- numbers: 10 > 9, though "10" < "9" as strings
      assert.truthy(s:test("a", "lt", "11"))
    end)
  end)

  it("gte behaves as gt and lte as lt, as in Tsung 1.7.0", function()
    run(function(s)
      s.vars.a = "5"
      assert.falsy(s:test("a", "gte", "5"))
      assert.falsy(s:test("a", "lte", "5"))
      assert.truthy(s:test("a", "gte", "4"))
      assert.truthy(s:test("a", "lte", "6"))
    end)
  end)

  it("if on an undefined variable runs the body (and counts error_if_undef)", function()
    run(function(s) assert.truthy(s:test("nothing", "eq", "x")) end)
  end)

  it("if indexes a list variable with list[N]", function()
    run(function(s)
      s:request { url = "/json", dyn = { { name = "names", jsonpath = "items.*.name" } } }
      assert.truthy(s:test("names[2]", "eq", "pear"))
    end)
  end)

  it("foreach walks a list variable, with include and exclude", function()
    local got = {}
    run(function(s)
      s:request { url = "/json", dyn = { { name = "names", jsonpath = "items.*.name" } } }
      for _ in s:foreach("n", "names", { include = "p", exclude = "^plum$" }) do got[#got + 1] = s.vars.n end
    end)
    assert.same({ "apple", "pear" }, got)
  end)

  it("change_type to ts_http: later requests go to that server, a new connection, an empty cookie jar", function()
    local before, after
    run(function(s)
      s:request { url = "/cookie/set?ct=1" }
      before = echo(s:request { url = "/echo" }).headers
      s:change_type { host = "localhost", port = tostring(PORT), server_type = "tcp" }
      after = echo(s:request { url = "/echo" }).headers
    end)
    http.cookies.clear()
    assert.equal("ct=1", before.cookie)
    assert.equal("localhost:" .. PORT, after.host)
    assert.is_nil(after.cookie)
  end)

  it("change_type store=true keeps the session left; restore=true on the way back goes on with it", function()
    local A, B = TARGET, "http://localhost:" .. PORT
    local seen = {}
    run(function(s)
      s:request { url = "/cookie/set?who=first" } -- on the <server>: A
      s:change_type { host = "localhost", port = PORT, server_type = "tcp", store = true }
      seen.jar_on_b = http.cookies.get("who", A .. "/") -- B starts a new session: an empty jar
      s:request { url = "/cookie/set?who=second" }
      s:change_type { host = HOST, port = PORT, server_type = "tcp", store = true, restore = true }
      local r = s:request { url = "/echo" }
      seen.back_on_a, seen.reused = echo(r).headers.cookie, r.reused
      seen.b_in_jar = http.cookies.get("who", B .. "/") -- A's session alone
      s:change_type { host = "localhost", port = PORT, server_type = "tcp", restore = true }
      seen.b_again = echo(s:request { url = "/echo" }).headers.cookie
      s:change_type { host = HOST, port = PORT, server_type = "tcp" }
      seen.a_without_restore = echo(s:request { url = "/echo" }).headers.cookie
    end)
    http.cookies.clear()
    assert.is_nil(seen.jar_on_b)
    assert.equal("who=first", seen.back_on_a)
    assert.equal(true, seen.reused, "the connection to A stayed open while the user was on B")
    assert.is_nil(seen.b_in_jar)
    assert.equal("who=second", seen.b_again) -- B's session, kept by the store on the way to A
    assert.is_nil(seen.a_without_restore) -- without restore: a new session, though A's was kept
  end)

  it("change_type without store closes the connections to the server left, not a stored server's", function()
    local seen = {}
    run(function(s)
      s:request { url = "/echo" } -- on the <server>: A, a connection kept alive
      s:change_type { host = "localhost", port = PORT, server_type = "tcp", store = true }
      s:request { url = "/echo" } -- on B
      s:change_type { host = HOST, port = PORT, server_type = "tcp", restore = true } -- B left, not stored
      seen.a = s:request { url = "/echo" }.reused
      s:change_type { host = "localhost", port = PORT, server_type = "tcp" }
      seen.b = s:request { url = "/echo" }.reused
    end)
    http.cookies.clear()
    assert.equal(true, seen.a, "A's connection, kept by the store, is used again")
    assert.equal(false, seen.b, "B's connection was closed when the user left B without store")
  end)

  it("change_type restore=true without an earlier store starts a new session", function()
    local cookie
    run(function(s)
      s:request { url = "/cookie/set?who=first" }
      s:change_type { host = HOST, port = PORT, server_type = "tcp", restore = true }
      cookie = echo(s:request { url = "/echo" }).headers.cookie
    end)
    assert.is_nil(cookie)
  end)

  it("abort ends the session; nothing after it runs", function()
    local after = false
    run(function(s) s:abort("session"); after = true end)
    assert.falsy(after)
  end)
end)

describe("tsung errors, retries and the load's duration", function()
  it("a refused connection is tried max_retries more times, retry_timeout apart, then the user stops", function()
    local n, c
    local t0 = now()
    c = counters(function()
      n = counting(function()
        run(function(s)
          s:request { url = "http://127.0.0.1:1/x" }
          s:request { url = "/echo" }
        end, config { max_retries = 2, retry_timeout = 50 })
      end)
    end)
    assert.equal(3, n) -- the first try and 2 retries; nothing after
    assert.equal(3, c.error_connect_econnrefused)
    assert.equal(1, c.error_abort_max_conn_retries)
    assert.truthy(now() - t0 >= 0.15, "50 ms then 100 ms between tries")
  end)

  it("no response within idle_timeout counts error_timeout and stops the user", function()
    local n
    local c = counters(function()
      n = counting(function()
        run(function(s)
          s:request { url = "/delay/2000" }
          s:request { url = "/echo" }
        end, config { idle_timeout = 200 })
      end)
    end)
    assert.equal(1, n)
    assert.equal(1, c.error_timeout)
  end)

  it("every user counts users_count when it starts and finish_users_count when it ends", function()
    local c = counters(function()
      for _ = 1, 2 do run(function(s) s:abort("session") end) end
    end)
    assert.equal(2, c.users_count)
    assert.equal(2, c.finish_users_count)
  end)

  it("at the load's duration a user in a thinktime stops there, counting error_abort", function()
    local t0, n = now(), nil
    local c = counters(function()
      n = counting(function()
        run(function(s)
          s:request { url = "/echo" }
          s:thinktime { value = 5 }
          s:request { url = "/echo?never" }
        end, config { limit = 0.3 }, { t0 = t0 })
      end)
    end)
    assert.equal(1, n)
    assert.equal(1, c.error_abort)
    assert.near(0.3, now() - t0, 0.1)
  end)

  it("a user waiting on a response at the load's duration is counted once and sends nothing more", function()
    local t0, n = now(), nil
    local c = counters(function()
      n = counting(function()
        run(function(s)
          s:request { url = "/delay/600" } -- the run's end would cut it; here it comes back late
          s:request { url = "/echo?never" }
        end, config { limit = 0.2 }, { t0 = t0 })
      end)
    end)
    assert.equal(1, n)
    assert.equal(1, c.error_abort)
  end)
end)
