/* test_tsung: `parrot import tsung` — Tsung XML in, a Lua scenario out. Every example of Debian's
 * tsung package is translated (HTTP) or refused with the elements and lines that cannot run here
 * (the rest); hand-written files show each rule: bad XML with line:column, the DTD's elements and
 * attributes, --server, file_server paths, Erlang code, and every control-flow element. The Lua is
 * compiled, and run against a recording stand-in for parrot.tsung to see the calls it makes. */
#include "check.h"
#include "tsung.h"

#include <dirent.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define EXAMPLES "/usr/share/doc/tsung/examples"

static char tmp[256];

static void write_file(const char *path, const char *text)
{
    FILE *f = text ? fopen(path, "w") : NULL;
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* Translate XML text written to tmp/NAME; returns rc; *lua and *notes owned by the caller. */
static int import_text(const char *name, const char *xml, const tsung_options *o, char **lua, char **notes,
                       char *err)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    write_file(path, xml);
    return tsung_import(path, o, lua, notes, err, 1024);
}

/* A recording stand-in for parrot.tsung: each s:method(...) call appends "method" and its
 * arguments (tables flattened as k=v) to CALLS, one line per call. */
static const char *stub =
    "CALLS = {}\n"
    "local function flat(v)\n"
    "  if type(v) ~= 'table' then return tostring(v) end\n"
    "  local keys = {}\n"
    "  for k in pairs(v) do keys[#keys + 1] = k end\n"
    "  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)\n"
    "  local out = {}\n"
    "  for _, k in ipairs(keys) do out[#out + 1] = tostring(k) .. '=' .. flat(v[k]) end\n"
    "  return '{' .. table.concat(out, ',') .. '}'\n"
    "end\n"
    "local S = {}\n"
    "local function rec(name, ...)\n"
    "  local t = { name }\n"
    "  for i = 1, select('#', ...) do local a = select(i, ...); if type(a) ~= 'function' then t[#t + 1] = "
    "flat(a) end end\n"
    "  CALLS[#CALLS + 1] = table.concat(t, ' ')\n"
    "end\n"
    "setmetatable(S, { __index = function(_, k) return function(self, ...) rec(k, ...) end end })\n"
    "function S:transaction(n, f) rec('transaction', n); f() end\n"
    "function S:loop_back(n, f) rec('loop_back', n); f(); rec('end loop_back', n) end\n"
    "function S:repeat_loop(o, f, c) rec('repeat_loop', o, c); f() end\n"
    "function S:for_loop(...) rec('for_loop', ...); local once = true\n"
    "  return function() if once then once = false; return 1 end end end\n"
    "function S:foreach(...) rec('foreach', ...); local once = true\n"
    "  return function() if once then once = false; return 'x' end end end\n"
    "function S:test(...) rec('test', ...); return true end\n"
    "local ts = { config = function(t) CONFIG = t; return { session = function(_, fn)\n"
    "  return function() fn(S) end end } end }\n"
    "package.preload['parrot.tsung'] = function() return ts end\n"
    "package.preload['parrot.http'] = function() return {} end\n"
    "parrot = { scenario = function(t) return t end, open = function(t) return t end }\n";

/* Compile the Lua; with run, also run it (stub above) and every session, leaving CALLS joined
 * by newlines in *calls (malloc'ed). Returns 1 when it all worked. */
static int lua_check(const char *lua, int run, char **calls, char *why, size_t whylen)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    int ok = luaL_loadbuffer(L, lua, strlen(lua), "=scenario") == 0;
    if (ok && run) {
        ok = luaL_dostring(L, stub) == 0 && lua_pcall(L, 0, 1, 0) == 0;
        const char *runner =
            "local sc = ...\n"
            "for _, s in ipairs(sc.sessions) do CALLS[#CALLS + 1] = 'session ' .. s.name; s.run() end\n"
            "return table.concat(CALLS, '\\n')";
        if (ok) ok = luaL_loadstring(L, runner) == 0 && (lua_insert(L, -2), lua_pcall(L, 1, 1, 0) == 0);
        if (ok && calls) *calls = strdup(lua_tostring(L, -1));
    }
    snprintf(why, whylen, "%s", ok ? "ok" : lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
    lua_close(L);
    return ok;
}

static int has(const char *hay, const char *needle) { return hay && strstr(hay, needle) != NULL; }

/* Copy the examples into tmp/examples, gunzipping the .gz ones. */
static int copy_examples(char names[][64], int max)
{
    DIR *d = opendir(EXAMPLES);
    if (!d) return -1;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/examples", tmp);
    mkdir(dir, 0700);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t l = strlen(e->d_name);
        int gz = l > 7 && !strcmp(e->d_name + l - 7, ".xml.gz");
        if (!gz && !(l > 4 && !strcmp(e->d_name + l - 4, ".xml"))) continue;
        char src[512], dst[512], buf[8192];
        snprintf(src, sizeof src, "%s/%s", EXAMPLES, e->d_name);
        snprintf(names[n], 64, "%.*s", (int)(gz ? l - 3 : l), e->d_name);
        snprintf(dst, sizeof dst, "%s/%s", dir, names[n]);
        gzFile in = gzopen(src, "rb");
        FILE *out = fopen(dst, "w");
        int r;
        while (in && out && (r = gzread(in, buf, sizeof buf)) > 0)
            fwrite(buf, 1, (size_t)r, out);
        if (in) gzclose(in);
        if (out) fclose(out);
        n++;
    }
    closedir(d);
    return n;
}

static void test_examples(void)
{
    char names[64][64];
    int n = copy_examples(names, 64);
    if (n < 0) {
        printf("ok - Debian's tsung examples # SKIP tsung not installed (%s missing)\n", EXAMPLES);
        return;
    }
    CHECK(n >= 20, "the tsung package has its examples (%d)", n);
    for (int i = 0; i < n; i++) {
        char path[512], err[1024] = "", why[512];
        char *lua = NULL, *notes = NULL, *calls = NULL;
        snprintf(path, sizeof path, "%.250s/examples/%.63s", tmp, names[i]);
        int rc = tsung_import(path, NULL, &lua, &notes, err, sizeof err);
        int http = !strncmp(names[i], "http", 4);
        if (!strcmp(names[i], "http_distributed.xml")) {
            CHECK(rc == -1 && has(err, "%%symbol:new%% line 111") && has(err, "Erlang code"),
                  "%s is refused: its request calls Erlang (%s)", names[i], err);
        } else if (http) {
            int ok = rc == 0 && lua_check(lua, 1, &calls, why, sizeof why);
            CHECK(ok, "%s translates to Lua that compiles and runs (%s)", names[i], rc ? err : why);
        } else {
            CHECK(rc == -1 && has(err, "not HTTP, cannot run here: ") && has(err, "<session type=ts_") &&
                      has(err, "--skip-unsupported"),
                  "%s is refused, naming what is not HTTP (%s)", names[i], err);
        }
        if (!strcmp(names[i], "http_simple.xml") && lua) {
            CHECK(has(lua, "{ host = \"myserver\", port = 80, type = \"tcp\", weight = 1 }, -- line 12"),
                  "http_simple: its server");
            CHECK(has(lua, "{ interarrival = 2, duration = 600, count = 300 }, -- <arrivalphase phase=\"1\"> "
                           "line 25"),
                  "http_simple: 10 minutes of one user every 2 s: 300 users, as Tsung counts them");
            CHECK(has(lua, "{ probability = 80, value = \"Mozilla/5.0 (X11;") &&
                      has(lua, "{ probability = 20, value ="),
                  "http_simple: user agents with their probabilities");
            CHECK(has(lua,
                      "{ name = \"http-example\", probability = 100, run = T:session(function(s) -- line 42"),
                  "http_simple: its session and probability");
            CHECK(has(calls, "request {if_modified_since=Fri, 14 Nov 2003 02:43:31 "
                             "GMT,method=GET,url=/images/accueil1.gif,version=1.1}") &&
                      has(calls, "url=/index.en.html") && has(calls, "thinktime {random=true,value=20}"),
                  "http_simple: the requests and the thinktime, in order");
            CHECK(has(notes, "http_simple.xml:17: <monitoring> is not done here"),
                  "http_simple: monitoring is noted");
        }
        if (!strcmp(names[i], "http_setdynvars.xml") && calls) {
            CHECK(has(calls,
                      "setdynvars {callback=ts_user_server:get_unique_id,sourcetype=erlang,vars={1=id1}}"),
                  "http_setdynvars: the get_unique_id callback maps to a built-in");
            CHECK(has(calls,
                      "setdynvars "
                      "{delimiter=;,fileid=userdb,order=iter,sourcetype=file,vars={1=user,2=user_password}}"),
                  "http_setdynvars: a file source");
            CHECK(has(lua, "[\"userdb\"] = \"src/test/test_file_server.csv\"") &&
                      has(lua, "examples/src/test/test_file_server.csv\","),
                  "http_setdynvars: the file_server's name in the bundle and its path in files");
            CHECK(has(lua, "-- run 3 of 3 (loop=2)"), "http_setdynvars: loop=2 plays the phases 3 times");
            CHECK(has(calls, "dyn={1={name=title,re=<title>(.*)</title>}}"),
                  "http_setdynvars: dyn_variable re");
        }
        if (!strcmp(names[i], "http-digest.xml") && calls)
            CHECK(has(calls,
                      "auth={nonce=%%_nonce%%,passwd=passwd,realm=%%_realm%%,type=digest,userid=user}") &&
                      has(lua, "type = \"ssl\""),
                  "http-digest: digest authentication over ssl");
        if (!strcmp(names[i], "http_tag.xml") && calls)
            CHECK(has(calls, "tag=landing"), "http_tag: request tags");
        if (!strcmp(names[i], "jabber.xml"))
            CHECK(has(err, "<session type=ts_jabber> lines 31, 67") &&
                      has(err, "<jabber> lines 33, 36, 37, 40"),
                  "jabber.xml: sessions and elements with their lines");
        if (!http) {
            tsung_options skip = {.skip_unsupported = 1};
            free(lua), free(notes);
            lua = notes = NULL;
            rc = tsung_import(path, &skip, &lua, &notes, err, sizeof err);
            CHECK(rc == -1 && has(err, "no HTTP"), "%s with --skip-unsupported: nothing HTTP left (%s)",
                  names[i], err);
        }
        free(lua), free(notes), free(calls);
    }
}

#define HEAD "<?xml version=\"1.0\"?>\n<!DOCTYPE tsung SYSTEM \"/usr/share/tsung/tsung-1.0.dtd\">\n"
#define TOP                                                                                                  \
    "<tsung><clients><client host=\"localhost\" use_controller_vm=\"true\"/></clients>\n"                    \
    "<servers><server host=\"example.com\" port=\"80\" type=\"tcp\"/></servers>\n"                           \
    "<load><arrivalphase phase=\"1\" duration=\"1\" unit=\"minute\"><users arrivalrate=\"120\" "             \
    "unit=\"minute\"/></arrivalphase></load>\n"
#define SESSION(body)                                                                                        \
    TOP "<sessions><session name=\"s\" probability=\"100\" type=\"ts_http\">\n" body                         \
        "</session></sessions></tsung>\n"

/* rc, err and the run's calls for one hand-written file. */
typedef struct result {
    int rc, runs;
    char err[1024], *lua, *notes, *calls;
} result;

static result *try(const char *name, const char *xml, const tsung_options *o)
{
    static result r;
    free(r.lua), free(r.notes), free(r.calls);
    memset(&r, 0, sizeof r);
    r.rc = import_text(name, xml, o, &r.lua, &r.notes, r.err);
    char why[512];
    if (r.rc == 0) {
        r.runs = lua_check(r.lua, 1, &r.calls, why, sizeof why);
        if (!r.runs) printf("# %s: %s\n%s\n", name, why, r.lua);
    }
    return &r;
}

static void test_bad_xml(void)
{
    result *r = try("broken.xml", "<tsung>\n<clients>\n  </tsung>\n", NULL);
    CHECK(r->rc == -1 && has(r->err, "broken.xml:3:5: mismatched tag"),
          "not well-formed: file:line:col and expat's reason (%s)", r->err);
    r = try("root.xml", HEAD "<config>\n</config>\n", NULL);
    CHECK(r->rc == -1 && has(r->err, "root.xml:3:1: the root element is <config>, not <tsung>"),
          "wrong root element (%s)", r->err);
    r = try("req.xml", HEAD SESSION("<request>\n<http method=\"GET\"/></request>\n"), NULL);
    CHECK(r->rc == -1 && has(r->err, "req.xml:8:1: <http> needs url"), "a missing required attribute (%s)",
          r->err);
    r = try("unknown.xml", HEAD SESSION("<request><http url=\"/\"/></request>\n<sleep value=\"1\"/>\n"),
            NULL);
    CHECK(r->rc == -1 && has(r->err, "unknown.xml:8:1: unknown element <sleep>"), "an unknown element (%s)",
          r->err);
    r = try("where.xml", HEAD SESSION("<http url=\"/\"/>\n"), NULL);
    CHECK(r->rc == -1 && has(r->err, "where.xml:7:1: <http> cannot be inside <session>"),
          "an element out of place (%s)", r->err);
    r = try(
        "nested.xml",
        HEAD
        "<tsung>"
        "<a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>"
        "<a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>",
        NULL);
    CHECK(r->rc == -1 && has(r->err, "nested deeper than 64"), "nesting is capped (%s)", r->err);
    r = try("lol.xml",
            "<!DOCTYPE tsung [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b "
            "\"&a;&a;&a;&a;&a;&a;&a;&a;\">]>\n<tsung>&b;</tsung>",
            NULL);
    CHECK(r->rc == -1 && has(r->err, "entity declarations"), "entity declarations are refused (%s)", r->err);
    r = try("sum.xml",
            HEAD TOP "<sessions><session name=\"a\" probability=\"70\" type=\"ts_http\"/>\n"
                     "<session name=\"b\" probability=\"20\" type=\"ts_http\"/></sessions></tsung>",
            NULL);
    CHECK(r->rc == -1 && has(r->err, "sum.xml:6:1: session probabilities sum to 90, not 100"),
          "probabilities must sum to 100 (%s)", r->err);
    r = try("none.xml", HEAD "<tsung/>", NULL);
    CHECK(r->rc == -1 && has(r->err, "none.xml:3:1: <tsung> needs <clients>"),
          "an empty <tsung>: FILE:LINE:COL (%s)", r->err);
}

static void test_translation(void)
{
    /* children in any order: options before load, dyn_variable before match, http_header before
     * www_authenticate, sessions before servers */
    result *r = try(
        "order.xml",
        HEAD
        "<tsung><sessions>\n"
        "<session name=\"browse\" probability=\"70\" type=\"ts_http\">\n"
        "<request subst=\"true\"><dyn_variable name=\"id\" jsonpath=\"items[0].id\"/>\n"
        "<match do=\"abort\" when=\"nomatch\">200 OK</match>\n"
        "<http url=\"http://other.example:8080/x?a=%%_id%%\" method=\"POST\" "
        "contents=\"a=1&amp;b=&quot;2&quot;\">\n"
        "<http_header name=\"X-A\" value=\"1\"/><www_authenticate userid=\"u\" passwd=\"p\"/><add_cookie "
        "key=\"k\" value=\"v\"/>\n"
        "</http></request></session>\n"
        "<session name=\"buy\" probability=\"30\" type=\"ts_http\" persistent=\"true\"><request><http "
        "url=\"/\"/></request></session>\n"
        "</sessions>\n"
        "<options><option name=\"hibernate\" value=\"5\"/><option name=\"thinktime\" value=\"2\" "
        "random=\"true\" override=\"true\"/>\n"
        "<option name=\"max_retries\" value=\"5\"/><option name=\"connect_timeout\" "
        "value=\"2000\"/></options>\n"
        "<load duration=\"90\" unit=\"second\"><arrivalphase phase=\"2\" duration=\"1\" "
        "unit=\"minute\"><users interarrival=\"500\" unit=\"millisecond\" maxnumber=\"10\"/></arrivalphase>\n"
        "<arrivalphase phase=\"1\" duration=\"1\" unit=\"minute\"><users arrivalrate=\"3\" "
        "unit=\"minute\"/></arrivalphase></load>\n"
        "<servers><server host=\"example.com\" port=\"443\" type=\"ssl\"/></servers>\n"
        "<clients><client host=\"localhost\" maxusers=\"100\"/></clients></tsung>\n",
        NULL);
    CHECK(r->rc == 0 && r->runs, "children in any order are accepted (%s)", r->err);
    CHECK(has(r->lua, "{ name = \"browse\", probability = 70,") &&
              has(r->lua, "{ name = \"buy\", probability = 30,"),
          "session probabilities");
    CHECK(has(r->calls, "auth={passwd=p,type=basic,userid=u}") &&
              has(r->calls, "cookies={1={key=k,value=v}}") && has(r->calls, "headers={1={1=X-A,2=1}}") &&
              has(r->calls, "contents=a=1&b=\"2\"") &&
              has(r->calls, "matches={1={do=abort,regex=200 OK,when=nomatch}}") &&
              has(r->calls, "dyn={1={jsonpath=items[0].id,name=id}}"),
          "a request's headers, cookies, auth, body, match and dyn_variable");
    CHECK(has(r->lua, "{ rate = 0.05, duration = 60, count = 3 }, -- <arrivalphase phase=\"1\"> line 15") &&
              has(r->lua, "{ interarrival = 0.5, duration = 30, max = 10, count = 10 }, -- <arrivalphase "
                          "phase=\"2\"> line 14"),
          "phases in phase order, units converted, cut at the load's duration; each starts "
          "round(duration x rate) users, at most maxnumber (counted on the whole phase, as Tsung does)");
    CHECK(has(r->lua, "limit = 90, -- <load duration> line 14") && has(r->lua, "graceful_stop = 0,"),
          "<load duration>: a limit where every user stops, and no time after the phases");
    CHECK(has(r->lua, "thinktime = { value = 2, random = true, override = true }") &&
              has(r->lua, "max_retries = 5") && has(r->lua, "connect_timeout = 2000") &&
              !has(r->notes, "connect_timeout"),
          "options: thinktime default, max_retries, connect_timeout (milliseconds, applied to each request)");
    CHECK(has(r->lua, "insecure = true, -- servers of type ssl") &&
              has(r->notes, "type=\"ssl\": certificates are not checked (Tsung 1.7 does not check them)"),
          "a server of type ssl: certificates are not checked, as in Tsung 1.7, with a note");
    CHECK(has(r->notes, "order.xml:12: option hibernate has no effect here\n") &&
              has(r->notes, "order.xml:10: persistent has no effect"),
          "notes, one per line, with the line");
    tsung_options srv = {.server = "127.0.0.1:9999"};
    r = try("order.xml", NULL, &srv); /* same file */
    CHECK(r->rc == 0 && has(r->lua, "{ host = \"127.0.0.1\", port = 9999, type = \"tcp\", weight = 1 }") &&
              has(r->calls, "url=http://127.0.0.1:9999/x?a=%%_id%%"),
          "--server points the servers and absolute URLs at HOST:PORT (%s)", r->err);
}

/* file_server and contents_from_file: names in the bundle, paths that travel with it. */
static void test_files(void)
{
    char abs[400], xml[2048], dir[300];
    snprintf(dir, sizeof dir, "%s/data", tmp);
    mkdir(dir, 0700);
    snprintf(abs, sizeof abs, "%s/data/users.csv", tmp);
    write_file(abs, "a;b\n");
    mkdir("/tmp/tsung-test-outside", 0700);
    write_file("/tmp/tsung-test-outside/ids.csv", "1\n");
    snprintf(
        xml, sizeof xml,
        HEAD
        "<tsung><clients><client host=\"localhost\"/></clients>\n"
        "<servers><server host=\"h\" port=\"80\" type=\"tcp\"/></servers>\n"
        "<load><arrivalphase phase=\"1\" duration=\"1\" unit=\"second\"><users arrivalrate=\"1\" "
        "unit=\"second\"/></arrivalphase></load>\n"
        "<options><option name=\"file_server\" value=\"./data/users.csv\"/>\n"
        "<option name=\"file_server\" id=\"ids\" value=\"/tmp/tsung-test-outside/ids.csv\"/></options>\n"
        "<sessions><session name=\"s\" weight=\"1\" type=\"ts_http\">\n"
        "<setdynvars sourcetype=\"file\" order=\"random\"><var name=\"u\"/><var name=\"p\"/></setdynvars>\n"
        "<setdynvars sourcetype=\"file\" fileid=\"ids\"><var name=\"id\"/></setdynvars>\n"
        "<request><http url=\"/\" method=\"PUT\" contents_from_file=\"data/users.csv\"/></request>\n"
        "</session></sessions></tsung>\n");
    result *r = try("files.xml", xml, NULL);
    char want[600];
    snprintf(want, sizeof want, "\"%s\",\n    \"/tmp/tsung-test-outside/ids.csv\",", abs);
    CHECK(r->rc == 0 && has(r->lua, "[\"default\"] = \"data/users.csv\"") &&
              has(r->lua, "[\"ids\"] = \"ids.csv\"") && has(r->lua, want),
          "file_server: relative to the XML's directory or absolute; bundle names and files (%s)", r->err);
    CHECK(has(r->calls, "contents_from_file=data/users.csv") && has(r->lua, "weight = 1"),
          "contents_from_file and weight");
    r = try("nofile.xml",
            HEAD SESSION("<setdynvars sourcetype=\"file\" fileid=\"x\"><var name=\"a\"/></setdynvars>\n"),
            NULL);
    CHECK(r->rc == -1 && has(r->err, "no <option name=\"file_server\" id=\"x\">"),
          "a fileid must name a file_server (%s)", r->err);
}

static void test_unsupported(void)
{
    const char *eval = HEAD SESSION(
        "<setdynvars sourcetype=\"eval\" code=\"fun({Pid,DynVars})-&gt;ok end.\"><var "
        "name=\"a\"/></setdynvars>\n"
        "<request subst=\"true\"><http url=\"/%%mymod:f%%/%%ts_user_server:get_unique_id%%\"/></request>\n"
        "<request><http url=\"/%%literal:x%%\"/></request>\n");
    result *r = try("eval.xml", eval, NULL);
    CHECK(r->rc == -1 && has(r->err, "eval.xml: Erlang code, cannot run here: <setdynvars sourcetype=eval> "
                                     "line 7, %%mymod:f%% line 8 ("),
          "setdynvars eval and %%%%mod:fun%%%% are refused with their lines (%s)", r->err);
    tsung_options skip = {.skip_unsupported = 1};
    r = try("eval.xml", eval, &skip);
    CHECK(r->rc == 0 && r->runs && has(r->notes, "eval.xml:7: <setdynvars sourcetype=eval> left out") &&
              has(r->lua, "-- <setdynvars> line 7 left out") && has(r->calls, "url=/%%mymod:f%%/") &&
              has(r->notes, "eval.xml:8: %%mymod:f%% is Erlang code: it becomes an empty string"),
          "... or left out with a note under --skip-unsupported (%s)", r->err);
    const char *mixed = HEAD
        "<tsung><clients><client host=\"localhost\"/></clients>\n"
        "<servers><server host=\"h\" port=\"80\" type=\"tcp\"/><server host=\"x\" port=\"5222\" "
        "type=\"bosh\"/></servers>\n"
        "<monitoring><monitor host=\"h\"/></monitoring>\n"
        "<load><arrivalphase phase=\"1\" duration=\"1\" unit=\"second\"><users arrivalrate=\"1\" "
        "unit=\"second\"/></arrivalphase></load>\n"
        "<options><option type=\"ts_jabber\" name=\"domain\" value=\"d\"/></options>\n"
        "<sessions><session name=\"web\" probability=\"60\" type=\"ts_http\"><request><http "
        "url=\"/a\"/></request>\n"
        "<request><jabber type=\"connect\" ack=\"no_ack\"/></request>\n"
        "<change_type new_type=\"ts_jabber\" host=\"x\" port=\"1\" server_type=\"tcp\"/></session>\n"
        "<session name=\"chat\" probability=\"40\" type=\"ts_jabber\"><transaction "
        "name=\"t\"><request><jabber type=\"connect\" ack=\"no_ack\"/></request></transaction></session>\n"
        "</sessions></tsung>\n";
    r = try("mixed.xml", mixed, NULL);
    CHECK(r->rc == -1 && has(r->err, "mixed.xml: not HTTP, cannot run here: <server type=bosh> line 4, "
                                     "<option type=ts_jabber name=domain> line 7, "
                                     "<jabber> lines 9, 11, <change_type new_type=ts_jabber> line 10, "
                                     "<session type=ts_jabber> line 11 (--skip-unsupported"),
          "one message lists every part that is not HTTP with its line (%s)", r->err);
    r = try("mixed.xml", mixed, &skip);
    CHECK(r->rc == 0 && r->runs && has(r->lua, "{ name = \"web\", weight = 60,") &&
              !has(r->lua, "\"chat\"") && has(r->calls, "url=/a") && !has(r->lua, "5222"),
          "--skip-unsupported keeps the HTTP sessions (%s)", r->err);
    CHECK(has(r->notes, "mixed.xml:11: <session type=ts_jabber> left out (not HTTP)") &&
              has(r->notes, "<monitoring> is not done here"),
          "... and says what it left out");
}

static void test_control_flow(void)
{
    result *r = try(
        "flow.xml",
        HEAD SESSION(
            "<transaction name=\"login\"><request><http url=\"/login\"/></request><thinktime "
            "value=\"1\"/></transaction>\n"
            "<for var=\"i\" from=\"1\" to=\"3\" incr=\"1\"><request subst=\"true\"><http "
            "url=\"/p/%%_i%%\"/></request></for>\n"
            "<repeat name=\"r\" max_repeat=\"5\"><request><dyn_variable name=\"st\" "
            "re=\"state=(\\w+)\"/><http url=\"/poll\"/></request>\n"
            "<while var=\"st\" eq=\"busy\"/></repeat>\n"
            "<repeat name=\"u\"><until var=\"st\" neq=\"done\"/><thinktime min=\"1\" max=\"2\"/></repeat>\n"
            "<if var=\"st\" gte=\"3\"><abort type=\"all\"/></if>\n"
            "<foreach name=\"link\" in=\"links\" exclude=\"logout\"><request subst=\"true\"><http "
            "url=\"%%_link%%\"/></request></foreach>\n"
            "<setdynvars sourcetype=\"random_number\" start=\"1\" end=\"10\"><var name=\"n\"/></setdynvars>\n"
            "<change_type new_type=\"ts_http\" host=\"h\" port=\"80\" server_type=\"tcp\" store=\"true\"/>\n"
            "<change_type new_type=\"ts_http\" host=\"g\" port=\"81\" server_type=\"tcp\" "
            "restore=\"true\"/>\n"
            "<set_option name=\"rate_limit\" value=\"64\"/><interaction action=\"send\" id=\"x\"/>\n"
            "<abort/>\n"),
        NULL);
    CHECK(r->rc == 0 && r->runs, "every control-flow element translates and runs (%s)", r->err);
    const char *want[] = {"transaction login",
                          "request {method=GET,url=/login,version=1.1}",
                          "thinktime {value=1}",
                          "for_loop i 1 3 1",
                          "request {method=GET,subst=true,url=/p/%%_i%%,version=1.1}",
                          "repeat_loop {max_repeat=5,name=r} {kind=while,op=eq,value=busy,var=st}",
                          "repeat_loop {name=u} {kind=until,op=neq,value=done,var=st}",
                          "thinktime {max=2,min=1}",
                          "test st gte 3",
                          "abort all",
                          "foreach link links {exclude=logout}",
                          "setdynvars {end=10,sourcetype=random_number,start=1,vars={1=n}}",
                          "change_type {host=h,port=80,server_type=tcp,store=true}",
                          "change_type {host=g,port=81,restore=true,server_type=tcp}",
                          "abort session"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK(has(r->calls, want[i]), "calls %s", want[i]);
    CHECK(has(r->lua, "for _ in s:for_loop(\"i\", \"1\", \"3\", \"1\") do -- line 8") &&
              has(r->lua, "if s:test(\"st\", \"gte\", \"3\") then -- line 12"),
          "loops and tests read as Lua control flow with their lines");
    CHECK(has(r->notes, "<set_option rate_limit> has no effect here") &&
              has(r->notes, "<interaction send> has no effect here"),
          "set_option and interaction are noted");

    /* loop_back counts back over Tsung's actions: the block it runs again holds whole elements */
    r = try(
        "loop_back.xml",
        HEAD SESSION("<request><http url=\"/login\"/></request>\n"
                     "<transaction name=\"t\"><request><http url=\"/a\"/></request><thinktime "
                     "value=\"1\"/></transaction>\n"
                     "<request tag=\"x\"><http url=\"/excluded\"/></request>\n"
                     "<if var=\"v\" eq=\"1\"><setdynvars sourcetype=\"value\" value=\"1\"><var "
                     "name=\"v\"/></setdynvars></if>\n"
                     "<request><match do=\"loop\" loop_back=\"2\">busy</match><http url=\"/b\"/></request>\n"
                     "<request><match do=\"loop\" loop_back=\"7\" max_loop=\"3\">busy</match><match "
                     "do=\"loop\" loop_back=\"7\">wait</match><http url=\"/c\"/></request>\n"
                     "<request><match do=\"loop\">again</match><http url=\"/d\"/></request>\n"),
        &(tsung_options){.exclude_tags = "x"});
    CHECK(r->rc == 0 && r->runs, "loop_back translates and runs (%s)", r->err);
    CHECK(has(r->calls,
              "session s\nrequest {method=GET,url=/login,version=1.1}\nloop_back 7\n"
              "transaction t\nrequest {method=GET,url=/a,version=1.1}\nthinktime {value=1}\n"
              "loop_back 2\ntest v eq 1\nsetdynvars {sourcetype=value,value=1,vars={1=v}}\n"
              "request {matches={1={do=loop,loop_back=2,regex=busy}},method=GET,url=/b,version=1.1}\n"
              "end loop_back 2\nrequest {matches={1={do=loop,loop_back=7,max_loop=3,regex=busy},"
              "2={do=loop,loop_back=7,regex=wait}},method=GET,url=/c,version=1.1}\nend loop_back 7\n"
              "request {matches={1={do=loop,regex=again}},method=GET,url=/d,version=1.1}"),
          "a block as Tsung counts actions: a request, a transaction's start and end, an if's start; a "
          "request left out with -x counts none; blocks hold one another; the request comes last");
    CHECK(has(r->lua, "s:loop_back(2, function() -- <match do=\"loop\"> line 11 runs these again\n"),
          "the block names the match's line");

    /* LuaJIT allows 200 locals per function and each for loop takes 4: 40 loops inside one another */
    char deep[8192];
    for (int n = 40; n <= 41; n++) {
        int at = snprintf(deep, sizeof deep,
                          HEAD TOP "<sessions><session name=\"s\" probability=\"100\" type=\"ts_http\">");
        for (int i = 0; i < n; i++)
            at += snprintf(deep + at, sizeof deep - (size_t)at, "<for var=\"i%d\" from=\"1\" to=\"1\">", i);
        at += snprintf(deep + at, sizeof deep - (size_t)at, "<request><http url=\"/\"/></request>");
        for (int i = 0; i < n; i++)
            at += snprintf(deep + at, sizeof deep - (size_t)at, "</for>");
        snprintf(deep + at, sizeof deep - (size_t)at, "</session></sessions></tsung>");
        r = try("deep.xml", deep, NULL);
        if (n == 40)
            CHECK(r->rc == 0 && r->runs, "40 <for> loops inside one another run (%s)", r->err);
        else
            CHECK(r->rc == -1 && has(r->err, "more than 40 <for>/<foreach> loops"), "41 are refused (%s)",
                  r->err);
    }

    /* strings that need escaping keep their bytes */
    r = try("quote.xml",
            HEAD SESSION("<request><http url=\"/a&quot;b\\c]]x\" method=\"POST\" "
                         "contents=\"line1&#10;]]&#13;]==]&#9;&quot;end\"/></request>\n"
                         "<request><http url=\"/long\" method=\"POST\" "
                         "contents=\"0123456789012345678901234567890123456789&#10;"
                         "0123456789012345678901234567890123456789]]\"/></request>\n"),
            NULL);
    CHECK(r->rc == 0 && r->runs && has(r->calls, "url=/a\"b\\c]]x") &&
              has(r->calls, "contents=line1\n]]\r]==]\t\"end") &&
              has(r->calls, "0123456789\n0123456789012345678901234567890123456789]],"),
          "quotes, backslashes, brackets, newlines survive into Lua");
}

/* Values the DTD lists, numbers Tsung reads, and what must name something that is there: each
 * refused at import with FILE:LINE:COL and what to write instead. */
static void test_refusals(void)
{
    static const struct {
        const char *body, *want;
    } bad[] = {
        {"<request><match do=\"jump\">x</match><http url=\"/\"/></request>\n",
         "bad.xml:7:10: <match do=\"jump\">: do must be one of continue, loop, abort, restart, log, dump, "
         "abort_test"},
        {"<request><match when=\"always\">x</match><http url=\"/\"/></request>\n",
         "bad.xml:7:10: <match when=\"always\">: when must be one of match, nomatch"},
        {"<request subst=\"yes\"><http url=\"/\"/></request>\n",
         "bad.xml:7:1: <request subst=\"yes\">: subst must be one of true, false, all_except_body"},
        {"<setdynvars sourcetype=\"magic\"><var name=\"a\"/></setdynvars>\n",
         "bad.xml:7:1: <setdynvars sourcetype=\"magic\">: sourcetype must be one of random_string"},
        {"<request><http url=\"/\" version=\"2.0\"/></request>\n",
         "bad.xml:7:10: <http version=\"2.0\">: version must be one of 1.0, 1.1"},
        {"<request><http url=\"/\" method=\"FETCH\"/></request>\n",
         "bad.xml:7:10: <http method=\"FETCH\">: method must be one of GET, POST"},
        {"<abort type=\"everything\"/>\n",
         "bad.xml:7:1: <abort type=\"everything\">: type must be one of session, all"},
        {"<thinktime value=\"abc\"/>\n",
         "bad.xml:7:1: <thinktime value=\"abc\">: expected a number of seconds"},
        {"<thinktime value=\"0\"/>\n",
         "bad.xml:7:1: <thinktime value=\"0\">: expected a number of seconds above 0"},
        {"<thinktime min=\"3\" max=\"2\"/>\n",
         "bad.xml:7:1: <thinktime min=\"3\" max=\"2\">: expected 0 < min < max"},
        {"<thinktime value=\"1\" min=\"1\" max=\"2\"/>\n",
         "bad.xml:7:1: <thinktime>: give value, or min and max"},
        {"<request><match max_loop=\"many\">x</match><http url=\"/\"/></request>\n",
         "bad.xml:7:10: <match max_loop=\"many\">: expected a whole number"},
        {"<repeat name=\"r\" max_repeat=\"2.5\"><request><http url=\"/\"/></request><while var=\"a\" "
         "eq=\"1\"/></repeat>\n",
         "bad.xml:7:1: <repeat max_repeat=\"2.5\">: expected a whole number"},
        {"<setdynvars sourcetype=\"random_number\" start=\"%%_a%%\" end=\"9\"><var "
         "name=\"n\"/></setdynvars>\n",
         "bad.xml:7:1: <setdynvars start=\"%%_a%%\">: expected a whole number"},
        {"<request><match do=\"loop\" loop_back=\"2\">x</match><http url=\"/\"/></request>\n",
         "bad.xml:7:10: <match loop_back=\"2\">: only 0 actions come before this request in its session"},
        {"<transaction name=\"t\"><request><http url=\"/a\"/></request></transaction>\n"
         "<request><match do=\"loop\" loop_back=\"1\">x</match><http url=\"/b\"/></request>\n",
         "bad.xml:8:10: <match loop_back=\"1\">: going back lands inside the <transaction> of line 7 "
         "(loop_back=\"3\" or \"0\" would run it whole or leave it out)"},
        {"<thinktime value=\"1\"/><for var=\"i\" from=\"1\" to=\"2\"><request><match do=\"loop\" "
         "loop_back=\"2\">x</match><http url=\"/\"/></request></for>\n",
         "bad.xml:7:61: <match loop_back=\"2\">: going back leaves the <for> of line 7 (0 actions come "
         "before this request inside it)"},
        {"<request><http url=\"/a\"/></request><request><http url=\"/b\"/></request>\n"
         "<request><match do=\"loop\" loop_back=\"1\">x</match><http url=\"/c\"/></request>\n"
         "<request><match do=\"loop\" loop_back=\"1\">x</match><http url=\"/d\"/></request>\n",
         "bad.xml:9:10: <match loop_back>: the actions it runs again overlap those of the <match loop_back> "
         "of line 8; one must hold the other whole"},
        {"<request><http url=\"/a\"/></request><request><match do=\"loop\" loop_back=\"1\">x</match>"
         "<match do=\"loop\" loop_back=\"2\">y</match><http url=\"/c\"/></request>\n",
         "bad.xml:7:85: <match loop_back=\"2\">: another match of this request goes back 1; give both the "
         "same loop_back"},
        {"<change_type new_type=\"ts_http\" host=\"h\" port=\"80\" server_type=\"udp\"/>\n",
         "bad.xml:7:1: <change_type server_type=\"udp\">: expected tcp or ssl"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char xml[2048];
        snprintf(xml, sizeof xml, HEAD SESSION("%s"), bad[i].body);
        result *r = try("bad.xml", xml, NULL);
        CHECK(r->rc == -1 && has(r->err, bad[i].want), "refused: %s", r->rc ? r->err : "(translated)");
    }
    static const struct {
        const char *xml, *want;
    } more[] = {
        {HEAD "<tsung>\n  <clients><client host=\"localhost\"/></clients>\n"
              "<servers><server host=\"h\" port=\"80\" type=\"tcp\"/></servers>\n"
              "  <load duration=\"2\" unit=\"days\"><arrivalphase phase=\"1\" duration=\"1\" unit=\"second\">"
              "<users arrivalrate=\"1\" unit=\"second\"/></arrivalphase></load>\n"
              "<sessions><session name=\"s\" probability=\"100\" type=\"ts_http\"/></sessions></tsung>\n",
         "more.xml:6:3: <load unit=\"days\">: unit must be one of hour, minute, second, millisecond"},
        {HEAD "<tsung>\n<clients><client host=\"localhost\"/></clients>\n"
              "<servers><server host=\"h\" port=\"80\" type=\"tcp\"/></servers>\n"
              "<load>\n  <user session=\"nosuch\" start_time=\"1\" unit=\"second\"/></load>\n"
              "<sessions><session name=\"s\" probability=\"100\" type=\"ts_http\"/></sessions></tsung>\n",
         "more.xml:7:3: <user session=\"nosuch\">: no <session> of that name"},
        {HEAD "<tsung>\n<clients><client host=\"localhost\"/></clients>\n"
              "<servers><server host=\"h\" port=\"80\" type=\"tcp\"/></servers>\n"
              "<load><user session=\"s\" start_time=\"1\" unit=\"second\"/></load>\n"
              "<options>\n <option type=\"ts_http\" name=\"user_agent\"><user_agent "
              "probability=\"60\">a</user_agent>"
              "<user_agent probability=\"30\">b</user_agent></option></options>\n"
              "<sessions><session name=\"s\" probability=\"100\" type=\"ts_http\"/></sessions></tsung>\n",
         "more.xml:8:2: user_agent probabilities sum to 90, not 100"},
    };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        result *r = try("more.xml", more[i].xml, NULL);
        CHECK(r->rc == -1 && has(r->err, more[i].want), "refused: %s", r->rc ? r->err : "(translated)");
    }
}

/* What Tsung does that the importer writes down: arrivals counted per phase, a load of <user>
 * elements only, change_type, thinktimes that take the default's kind, -x, every unsupported line. */
static void test_fidelity(void)
{
    result *r = try("users.xml",
                    HEAD "<tsung><clients><client host=\"localhost\"/></clients>\n"
                         "<servers><server host=\"h\" port=\"80\" type=\"tcp\"/></servers>\n"
                         "<load><user session=\"s\" start_time=\"2\" unit=\"second\"/></load>\n"
                         "<sessions><session name=\"s\" probability=\"100\" type=\"ts_http\"><request><http "
                         "url=\"/\"/></request></session></sessions></tsung>\n",
                    NULL);
    CHECK(r->rc == 0 && r->runs &&
              has(r->lua, "phases = {\n    },\n    users = {\n      { session = \"s\", start = 2 }"),
          "a <load> of <user> elements only runs those users (%s)", r->err);

    r = try("one.xml",
            HEAD "<tsung><clients><client host=\"localhost\"/></clients>\n"
                 "<servers><server host=\"h\" port=\"80\" type=\"tcp\"/></servers>\n"
                 "<load><arrivalphase phase=\"1\" duration=\"1\" unit=\"second\"><users maxnumber=\"1\" "
                 "interarrival=\"1\" unit=\"second\"/></arrivalphase>\n"
                 "<arrivalphase phase=\"2\" duration=\"1\" unit=\"second\"><users interarrival=\"3\" "
                 "unit=\"second\"/></arrivalphase></load>\n"
                 "<options><option name=\"thinktime\" value=\"2\" random=\"true\"/></options>\n"
                 "<sessions><session name=\"s\" probability=\"100\" type=\"ts_http\">\n"
                 "<thinktime value=\"3\"/><thinktime value=\"4\" random=\"false\"/>\n"
                 "<change_type new_type=\"ts_http\" host=\"other\" port=\"8081\" server_type=\"ssl\"/>\n"
                 "<request tag=\"img\"><http url=\"/a.png\"/></request><request tag=\"page\"><http "
                 "url=\"/\"/></request>\n"
                 "</session></sessions></tsung>\n",
            NULL);
    CHECK(r->rc == 0 && r->runs && has(r->lua, "{ interarrival = 1, duration = 1, max = 1, count = 1 }") &&
              has(r->lua, "{ interarrival = 3, duration = 1, count = 0 }"),
          "maxnumber=1 over 1 s starts exactly one user; 1 s of one every 3 s starts none (%s)", r->err);
    CHECK(
        has(r->calls, "thinktime {value=3}\nthinktime {random=false,value=4}"),
        "thinktimes: random=\"false\" is written down, so that only those without random take the default's");
    CHECK(has(r->calls, "change_type {host=other,port=8081,server_type=ssl}") &&
              has(r->lua, "insecure = true"),
          "change_type to ts_http: later requests go to that server (ssl: certificates not checked)");
    CHECK(has(r->calls, "url=/a.png") && has(r->calls, "url=/,"), "without -x every tagged request is sent");
    tsung_options x = {.exclude_tags = "img,other"};
    r = try("one.xml", NULL, &x);
    CHECK(r->rc == 0 && r->runs && !has(r->calls, "url=/a.png") && has(r->calls, "url=/,") &&
              has(r->lua, "-- <request> line 11 left out (its tag is excluded with -x)"),
          "-x img,other leaves out the requests tagged img (%s)", r->err);
    tsung_options srv = {.server = "127.0.0.1:9"};
    r = try("one.xml", NULL, &srv);
    CHECK(r->rc == 0 && has(r->calls, "change_type {host=127.0.0.1,port=9,server_type=tcp}"),
          "--server points change_type there too (%s)", r->err);

    /* every line of every unsupported element, however many */
    char many[8192];
    int at = snprintf(many, sizeof many,
                      HEAD TOP "<sessions><session name=\"j\" probability=\"100\" type=\"ts_jabber\">\n");
    for (int i = 0; i < 30; i++)
        at += snprintf(many + at, sizeof many - (size_t)at,
                       "<request><jabber type=\"connect\" ack=\"no_ack\"/></request>\n");
    snprintf(many + at, sizeof many - (size_t)at, "</session></sessions></tsung>\n");
    r = try("many.xml", many, NULL);
    CHECK(r->rc == -1 && has(r->err, "<jabber> lines 7, 8, 9,") && has(r->err, ", 35, 36 (--skip") &&
              !has(r->err, "..."),
          "the refusal lists every line of every unsupported element (%.200s...)", r->err);
}

/* A file_server path that is absolute, inside the XML's directory, keeps its name in the bundle
 * when the XML is read again from a copy of the bundle (where workers read it). */
static void test_bundle_names(void)
{
    char a[400], b[400], path[500], xml[2048];
    snprintf(a, sizeof a, "%s/proj", tmp);
    snprintf(b, sizeof b, "%s/bundlecopy", tmp);
    mkdir(a, 0700), mkdir(b, 0700);
    snprintf(path, sizeof path, "%s/x", a), mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/x", b), mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/x/in.csv", b), write_file(path, "u1;p1\n");
    snprintf(path, sizeof path, "%s/x/in.csv", a), write_file(path, "u1;p1\n");
    snprintf(xml, sizeof xml,
             HEAD "<tsung><clients><client host=\"localhost\"/></clients>\n"
                  "<servers><server host=\"h\" port=\"80\" type=\"tcp\"/></servers>\n"
                  "<load><arrivalphase phase=\"1\" duration=\"1\" unit=\"second\"><users arrivalrate=\"1\" "
                  "unit=\"second\"/></arrivalphase></load>\n"
                  "<options><option name=\"file_server\" id=\"u\" value=\"%s\"/></options>\n"
                  "<sessions><session name=\"s\" probability=\"100\" type=\"ts_http\">\n"
                  "<request><http url=\"/\" method=\"POST\" contents_from_file=\"%s\"/></request>\n"
                  "</session></sessions></tsung>\n",
             path, path);
    const char *dirs[] = {"proj", "bundlecopy", "bundlecopy"};
    for (int i = 0; i < 3; i++) {
        char name[300];
        if (i == 2) unlink(path); /* a worker elsewhere: the absolute path is not there at all */
        snprintf(name, sizeof name, "%s/t.xml", dirs[i]);
        result *r = try(name, xml, NULL);
        CHECK(r->rc == 0 && has(r->lua, "[\"u\"] = \"x/in.csv\"") &&
                  has(r->calls, "contents_from_file=x/in.csv"),
              "an absolute path inside the XML's directory is x/in.csv in the bundle, read from %s%s (%s)",
              dirs[i], i == 2 ? " where the path is gone" : "", r->err);
    }
}

static void test_lua_binding(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    char path[400];
    snprintf(path, sizeof path, "%s/flow.xml", tmp);
    lua_pushcfunction(L, tsung_lua_import);
    lua_pushstring(L, path);
    lua_newtable(L);
    lua_pushstring(L, "10.0.0.1:81");
    lua_setfield(L, -2, "server");
    int rc = lua_pcall(L, 2, 2, 0);
    CHECK(rc == 0 && has(lua_tostring(L, -2), "host = \"10.0.0.1\", port = 81") && lua_isstring(L, -1),
          "tsung_import(path, {server=...}) returns the Lua and the notes");
    lua_settop(L, 0);
    snprintf(path, sizeof path, "%s/eval.xml", tmp);
    lua_pushcfunction(L, tsung_lua_import);
    lua_pushstring(L, path);
    rc = lua_pcall(L, 1, 2, 0);
    CHECK(rc != 0 && has(lua_tostring(L, -1), "eval.xml: Erlang code, cannot run here"),
          "a refusal raises its message");
    lua_settop(L, 0);
    lua_pushcfunction(L, tsung_lua_import);
    lua_pushstring(L, path);
    lua_newtable(L);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "skip_unsupported");
    rc = lua_pcall(L, 2, 2, 0);
    CHECK(rc == 0 && has(lua_tostring(L, -1), "left out"),
          "skip_unsupported = true leaves parts out, with notes");
    lua_close(L);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/test_tsung.XXXXXX");
    if (!mkdtemp(tmp)) return 1;
    test_examples();
    test_bad_xml();
    test_translation();
    test_files();
    test_unsupported();
    test_control_flow();
    test_refusals();
    test_fidelity();
    test_bundle_names();
    test_lua_binding();
    try("none", "", NULL); /* frees the last result */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' /tmp/tsung-test-outside", tmp);
    if (system(cmd) != 0) printf("# could not remove %s\n", tmp);
    return check_done();
}
