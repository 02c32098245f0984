/* luart: Lua states for scenarios, with the parrot library embedded as bytecode. */
#include "luart.h"

#include <lauxlib.h>
#include <luajit.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luaext.h"
#include "tsung.h"
#include "url.h"
#include "vu.h"

extern const struct {
    const char *name;
    const unsigned char *code;
    size_t len;
} parrot_luamods[]; /* build/luamods.c, made by src/embed-lua.sh */

/* package.preload loader for an embedded module; upvalue 1 = index in parrot_luamods. */
static int load_embedded(lua_State *L)
{
    int i = (int)lua_tointeger(L, lua_upvalueindex(1));
    char chunk[128];
    snprintf(chunk, sizeof chunk, "=%s", parrot_luamods[i].name);
    if (luaL_loadbuffer(L, (const char *)parrot_luamods[i].code, parrot_luamods[i].len, chunk) != 0)
        return lua_error(L);
    lua_pushstring(L, parrot_luamods[i].name);
    lua_call(L, 1, 1);
    return 1;
}

/* ext.url_resolve(base, ref) -> absolute URL or nil */
static int l_url_resolve(lua_State *L)
{
    char *u = url_resolve(luaL_checkstring(L, 1), luaL_checkstring(L, 2));
    if (!u) return 0;
    lua_pushstring(L, u);
    free(u);
    return 1;
}

static int open_ext(lua_State *L)
{
    luaext_open(L);
    lua_pushcfunction(L, l_url_resolve);
    lua_setfield(L, -2, "url_resolve");
    lua_pushcfunction(L, tsung_lua_import);
    lua_setfield(L, -2, "tsung_import");
    return 1;
}

static int nocore_call(lua_State *L)
{
    return luaL_error(L, "%s can only be used inside a virtual user (a session, setup or teardown)",
                      lua_tostring(L, lua_upvalueindex(1)));
}

static int nocore_index(lua_State *L)
{
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, nocore_call, 1);
    return 1;
}

static int nocore_thread(lua_State *L)
{
    lua_pushinteger(L, 0);
    lua_pushinteger(L, 1);
    return 2;
}

/* parrot.core where there are no virtual users (the queen's state): every primitive raises. */
static int open_nocore(lua_State *L)
{
    lua_newtable(L);
    lua_newtable(L);
    lua_setfield(L, -2, "response_methods");
    lua_pushcfunction(L, nocore_thread);
    lua_setfield(L, -2, "thread");
    lua_newtable(L);
    lua_pushcfunction(L, nocore_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    return 1;
}

static void set_preload(lua_State *L)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    for (int i = 0; parrot_luamods[i].name; i++) {
        lua_pushinteger(L, i);
        lua_pushcclosure(L, load_embedded, 1);
        lua_setfield(L, -2, parrot_luamods[i].name);
    }
    lua_pushcfunction(L, open_ext);
    lua_setfield(L, -2, "parrot.ext");
    lua_pushcfunction(L, open_nocore); /* replaced by vu_sched_new on load threads */
    lua_setfield(L, -2, "parrot.core");
    lua_pop(L, 2);
}

/* package.path: the scenario's directory first, so `require "buy"` finds buy.lua beside it. */
static void set_path(lua_State *L, const char *script)
{
    char dir[4096] = ".";
    if (script) {
        const char *slash = strrchr(script, '/');
        if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - script), script);
        if (!dir[0]) strcpy(dir, "/");
    }
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "parrot");
    lua_call(L, 1, 1);
    lua_pushstring(L, dir);
    lua_setfield(L, -2, "_dir");
    lua_setglobal(L, "parrot");
}

/* Debian 12's LuaJIT (2.1 of March 2022) carries upstream bug #827: once the JIT blacklists a
 * `for k, v in pairs(t)` loop it patches the loop's bytecode in a way that ends the iteration early
 * (a loop over three headers saw none). pairs() therefore hands out a plain Lua iterator instead of
 * `next` itself: such loops are never specialised, so never despecialised mid-loop. It costs a
 * function call per step; ipairs and next are untouched. */
static const char pairs_fix[] =
    "local next = next\n"
    "local function step(t, k) return next(t, k) end\n"
    "function pairs(t)\n"
    "  if type(t) ~= 'table' then error(\"bad argument #1 to 'pairs' (table expected, got \" "
    ".. type(t) .. ')', 2) end\n"
    "  return step, t, nil\n"
    "end\n";

lua_State *luart_new(const char *script, const char *const *env)
{
    lua_State *L = luaL_newstate();
    if (!L) return NULL;
    luaL_openlibs(L);
    if (luaL_loadbuffer(L, pairs_fix, sizeof pairs_fix - 1, "=parrot") || lua_pcall(L, 0, 0, 0))
        lua_pop(L, 1);
    set_preload(L);
    set_path(L, script);
    lua_getglobal(L, "parrot");
    lua_getfield(L, -1, "env");
    for (int i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        if (!eq) continue;
        lua_pushlstring(L, env[i], (size_t)(eq - env[i]));
        lua_pushstring(L, eq + 1);
        lua_rawset(L, -3);
    }
    lua_pop(L, 2);
    /* seed math.random differently per state */
    lua_getglobal(L, "math");
    lua_getfield(L, -1, "randomseed");
    lua_pushnumber(L, (double)((uintptr_t)L ^ (uintptr_t)time(NULL)) / 7.0);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    return L;
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) msg = "(error object is not a string)";
    /* errors that already carry a traceback (or are one-line user errors) pass unchanged */
    if (strstr(msg, "stack traceback:")) {
        lua_pushstring(L, msg);
        return 1;
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int luart_pcall(lua_State *L, int nargs, int nresults, char *err, size_t errlen)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    if (rc != 0) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

static void push_overrides(lua_State *L, const luart_overrides *ov)
{
    lua_newtable(L);
    if (!ov) return;
#define SETS(f)                                                                                              \
    if (ov->f) {                                                                                             \
        lua_pushstring(L, ov->f);                                                                            \
        lua_setfield(L, -2, #f);                                                                             \
    }
#define SETN(f)                                                                                              \
    if (ov->f > 0) {                                                                                         \
        lua_pushnumber(L, (double)ov->f);                                                                    \
        lua_setfield(L, -2, #f);                                                                             \
    }
    SETS(url);
    SETS(method);
    SETS(body);
    SETN(vus);
    SETN(rate);
    SETN(duration);
    SETN(iterations);
#undef SETS
#undef SETN
    if (ov->insecure) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "insecure");
    }
    lua_newtable(L);
    for (int i = 0; ov->headers && ov->headers[i]; i++) {
        lua_pushstring(L, ov->headers[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "headers");
}

static int load_run(lua_State *L, const char *script, const luart_overrides *ov, char *err, size_t errlen)
{
    lua_getglobal(L, "parrot");
    lua_getfield(L, -1, "load");
    lua_remove(L, -2);
    if (script)
        lua_pushstring(L, script);
    else
        lua_pushnil(L);
    push_overrides(L, ov);
    /* no traceback: parrot.load's errors are already one line (file:line), or carry their own */
    if (lua_pcall(L, 2, 1, 0) != 0) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

/* A scenario's top level that runs this long is taken for an endless loop: the queen and every
 * load thread would wait for it forever. $PARROT_LOAD_TIMEOUT (seconds) changes it. */
#define LOAD_TIMEOUT_S 60.0
#define LOAD_HOOK_EVERY 1000000 /* VM instructions between two looks at the clock */

/* While the top level runs, jit.on() and jit.off() without arguments (the compiler as a whole)
 * only note the wish; the function returned puts them back and tells the last wish (nil: none). */
static const char JIT_GUARD[] =
    "local jit, wish = require 'jit'\n"
    "local on, off = jit.on, jit.off\n"
    "jit.on = function(...) if select('#', ...) == 0 then wish = true return end return on(...) end\n"
    "jit.off = function(...) if select('#', ...) == 0 then wish = false return end return off(...) end\n"
    "return function() jit.on, jit.off = on, off return wish end\n";

static __thread uint64_t load_deadline_ns; /* per thread: load threads load at the same time */
static __thread double load_limit_s;

static void load_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    if (uv_hrtime() < load_deadline_ns) return;
    lua_sethook(L, NULL, 0, 0);
    lua_Debug d;
    if (lua_getstack(L, 0, &d) && lua_getinfo(L, "Sl", &d) && d.currentline > 0)
        luaL_error(L, "%s:%d: the scenario's top level has run for %g s without returning (an endless loop?)",
                   d.short_src, d.currentline, load_limit_s);
    luaL_error(L, "the scenario's top level has run for %g s without returning (an endless loop?)",
               load_limit_s);
}

int luart_load(lua_State *L, const char *script, const luart_overrides *ov, char *err, size_t errlen)
{
    const char *env = getenv("PARROT_LOAD_TIMEOUT");
    double limit = env ? atof(env) : 0;
    load_limit_s = limit > 0 ? limit : LOAD_TIMEOUT_S;
    load_deadline_ns = uv_hrtime() + (uint64_t)(load_limit_s * 1e9);
    /* compiled code calls no hooks: the top level runs in the interpreter, watched; what it asks
     * of the compiler as a whole (jit.on(), jit.off()) is done once it has returned */
    int guarded = luaL_loadstring(L, JIT_GUARD) == 0 && lua_pcall(L, 0, 1, 0) == 0;
    if (!guarded) lua_pop(L, 1); /* its error message: the compiler is switched back on */
    int restore = lua_gettop(L); /* the guard's function, under what load_run leaves */
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    lua_sethook(L, load_hook, LUA_MASKCOUNT, LOAD_HOOK_EVERY);
    int rc = load_run(L, script, ov, err, errlen);
    lua_sethook(L, NULL, 0, 0);
    int off = 0;
    if (guarded) { /* put jit.on and jit.off back; what did the top level ask? */
        lua_pushvalue(L, restore);
        if (lua_pcall(L, 0, 1, 0) == 0) off = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
        lua_pop(L, 1);
        lua_remove(L, restore);
    }
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | (off ? LUAJIT_MODE_OFF : LUAJIT_MODE_ON));
    return rc;
}

/* ---- parrot test ---- */

typedef struct test_run {
    int failed;
    uv_loop_t *loop;
} test_run;

/* The spec's VU ended: leave the loop (the scheduler's own handles keep it alive otherwise). */
static void test_idle(vu_sched *s, void *ud)
{
    (void)s;
    uv_stop(((test_run *)ud)->loop);
}

static void test_script_error(vu_sched *s, const char *msg, void *ud)
{
    (void)s;
    test_run *t = ud;
    t->failed++;
    printf("not ok - %s\n", msg);
}

/* Run one spec file in a VU of a fresh loop and state; returns the number of failures. */
static int run_spec(const char *file)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    lua_State *L = luart_new(file, NULL);
    test_run t = {0, &loop};
    char err[512];
    int failed = 0;
    int dump = 0;
    http_client_config hc = {.dump_left = &dump};
    vu_sched_config cfg = {.thread_index = 0,
                           .thread_count = 1,
                           .http = &hc,
                           .on_script_error = test_script_error,
                           .on_idle = test_idle,
                           .ud = &t};
    vu_sched *s = vu_sched_new(&loop, L, &cfg, err, sizeof err);
    if (!s) {
        printf("not ok - %s: %s\n", file, err);
        failed = 1;
    } else {
        lua_getglobal(L, "require");
        lua_pushliteral(L, "parrot.test");
        if (luart_pcall(L, 1, 1, err, sizeof err) != 0) {
            printf("not ok - %s\n", err);
            failed = 1;
        } else {
            lua_getfield(L, -1, "run_file");
            lua_pushstring(L, file);
            if (luart_pcall(L, 1, 1, err, sizeof err) != 0) {
                printf("not ok - %s\n", err);
                failed = 1;
            } else {
                vu_sched_spawn(s); /* the function run_file returned */
                uv_run(&loop, UV_RUN_DEFAULT);
            }
            lua_pop(L, 1);
            lua_getglobal(L, "require");
            lua_pushliteral(L, "parrot.test");
            lua_call(L, 1, 1);
            lua_getfield(L, -1, "failed");
            failed += (int)lua_tointeger(L, -1);
            lua_pop(L, 2);
        }
        vu_sched_free(s);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    lua_close(L);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    fflush(stdout);
    return failed + t.failed;
}

int luart_test_main(int nfiles, char **files)
{
    int failed = 0;
    if (nfiles == 0) {
        fprintf(stderr, "usage: parrot test SPEC.lua...\n");
        return 2;
    }
    for (int i = 0; i < nfiles; i++)
        failed += run_spec(files[i]);
    return failed ? 1 : 0;
}
