/* fuzz_tsung: libFuzzer target for the Tsung importer. Every input is translated or refused with a
 * reason; what translates must be Lua that LuaJIT compiles (spec/fuzz/fuzz.sh builds and runs it over
 * spec/fuzz/corpus/tsung/). */
/* fuzz-sources: src/tsung.c src/tsung_conf.c src/tsung_lua.c src/tsung_tree.c */
#include "tsung.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile size_t sink;
static lua_State *L;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the last byte's low bits pick the options, so both ways of handling unsupported parts run */
    tsung_options o = {.skip_unsupported = size && (data[size - 1] & 1),
                       .server = size && (data[size - 1] & 2) ? "127.0.0.1:8080" : NULL};
    char *lua = NULL, *notes = NULL, err[512];
    int rc = tsung_import_buffer((const char *)data, size, "fuzz.xml", &o, &lua, &notes, err, sizeof err);
    if (rc != 0) {
        if (lua || !err[0]) abort(); /* a refusal has a reason and no Lua */
    } else {
        if (!L) L = luaL_newstate();
        if (luaL_loadbuffer(L, lua, strlen(lua), "=tsung") != 0) {
            fprintf(stderr, "generated Lua does not compile: %s\n%s\n", lua_tostring(L, -1), lua);
            abort();
        }
        lua_settop(L, 0);
        lua_gc(L, LUA_GCSTEP, 100);
        sink += strlen(lua);
    }
    if (notes) sink += strlen(notes);
    free(lua);
    free(notes);
    return 0;
}
