/* tsung: Tsung configuration files as parrot scenarios. Parses a Tsung XML file (libexpat), checks
 * it against what Tsung's DTD allows, and writes the equivalent Lua scenario (readable, with the
 * XML line of each part in a comment) that runs on the same runtime as a hand-written one. */
#ifndef PARROT_TSUNG_H
#define PARROT_TSUNG_H

#include <stddef.h>

typedef struct tsung_options {
    int skip_unsupported;     /* leave out non-HTTP sessions/elements (said on stderr) instead of refusing */
    const char *server;       /* "HOST:PORT": point every <server> there (--server) */
    const char *exclude_tags; /* "a,b": leave out the requests with these tags (tsung -x) */
} tsung_options;

/* Translate `path`. Returns 0 and a malloc'ed NUL-terminated Lua source in *lua_out, or -1 with a
 * one-line reason in err ("tsung.xml:12:4: not well-formed (invalid token)", "tsung.xml: unsupported
 * elements: <jabber> line 40, <pgsql> line 52 (use --skip-unsupported to run the HTTP sessions
 * alone)", ...). Notes for the user (ignored options, skipped parts) are appended to *notes
 * (malloc'ed, may be NULL) one per line. */
int tsung_import(const char *path, const tsung_options *o, char **lua_out, char **notes, char *err,
                 size_t errlen);

/*
 * The generated Lua calls the runtime module `parrot.tsung` (lua/parrot/tsung.lua). Its shape:
 *
 *   local http = require "parrot.http"
 *   local ts = require "parrot.tsung"
 *   local T = ts.config {                                  -- <options>, <servers>  (lines)
 *     file = "http_simple.xml",
 *     servers = { { host = "127.0.0.1", port = 8080, type = "tcp", weight = 1 } },   -- type tcp|ssl
 *     user_agents = { { probability = 80, value = "Mozilla/5.0 ..." }, ... },         -- or nil
 *     thinktime = { value = 2, random = true, min = nil, max = nil, override = false }, -- or nil
 *     file_servers = { default = "users.csv", userdb = "db.csv" },  -- names inside the bundle
 *     use_server_as_proxy = false, idle_timeout = nil, max_retries = 3, retry_timeout = nil,
 *     limit = 600,                                        -- <load duration> (seconds), or nil
 *   }
 *   return parrot.scenario {
 *     name = "http_simple",
 *     insecure = true,                                    -- only with servers of type ssl
 *     files = { "/abs/path/users.csv" },                  -- file_server files travel in the bundle
 *     load = parrot.open {
 *       phases = { { rate = 2, duration = 600, max = nil, count = 1200 }, ... },  -- or interarrival
 *       users = { { session = "name", start = 30 } },     -- <user> elements, or nil
 *       graceful_stop = 0,                                -- with a limit: the time left after the phases
 *     },
 *     sessions = {
 *       { name = "http-example", probability = 100, run = T:session(function(s)       -- line 20
 *           s:thinktime { value = 2, random = true }                                  -- line 21
 *           s:request { method = "GET", url = "/", version = "1.1", subst = false,    -- line 22
 *                       tag = nil, contents = nil, contents_from_file = nil, content_type = nil,
 *                       if_modified_since = nil,
 *                       headers = { { "Accept", "text/html" } },
 *                       cookies = { { key = "a", value = "1", domain = nil, path = nil } },
 *                       auth = { type = "basic", userid = "u", passwd = "p" },  -- or digest fields
 *                       soap_action = nil,
 *                       dyn = { { name = "token", re = "..." } },  -- re|xpath|jsonpath|header|form (no attr)
 *                       matches = { { regex = "...", ["do"] = "continue", when = "match",
 *                                     max_loop = 20, sleep_loop = 5, loop_back = 0, max_restart = 3,
 *                                     skip_headers = nil, subst = false, name = nil } } }
 *           s:transaction("login", function() ... end)
 *           s:loop_back(3, function() -- <match do="loop"> line 30 runs these again
 *             ...   -- whole elements: the 3 actions before the request, as Tsung counts them
 *             s:request { ..., matches = { { ["do"] = "loop", loop_back = 3 } } }  -- the request, last
 *           end)
 *           s:setdynvars { sourcetype = "random_number", start = 1, ["end"] = 10, vars = { "x" } }
 *           for _ in s:for_loop("i", "1", "10", "1") do ... end
 *           s:repeat_loop({ name = "r", max_repeat = 20 }, function() ... end,
 *                         { kind = "while", var = "x", op = "eq", value = "1" })
 *           if s:test("var", "eq", "value") then ... end
 *           for _ in s:foreach("name", "listvar", { include = nil, exclude = nil }) do ... end
 *           s:change_type { host = "h", port = 8080, server_type = "tcp", store = true, restore = true }
 *           s:abort("session")
 *         end) },
 *     },
 *   }
 */

/* The same from a buffer: `name` is the file name used in messages, and its directory is where
 * relative file_server/contents_from_file paths start (the fuzz target and tests use it). */
int tsung_import_buffer(const char *buf, size_t len, const char *name, const tsung_options *o, char **lua_out,
                        char **notes, char *err, size_t errlen);

/* Lua binding (registered as parrot.ext.tsung_import by the integrator):
 *   tsung_import(path [, { skip_unsupported = bool, server = "HOST:PORT", exclude_tags = "a,b" }])
 *     -> lua_source, notes
 * notes is a string of lines, or nil when there are none; a refused file raises its one-line
 * message (no position prefix). */
struct lua_State;
int tsung_lua_import(struct lua_State *L);

#endif
