/* test_tsung_corpus: replays the fuzzer's seed corpus (spec/fuzz/corpus/tsung/, run from the repo
 * root) through the Tsung importer, both refusing and skipping unsupported parts: "broken-*"
 * seeds are refused with a reason, the others translate to Lua that compiles, nothing crashes. */
#include "check.h"
#include "corpus.h"
#include "tsung.h"

#include <dirent.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#define CORPUS "spec/fuzz/corpus/tsung"

static void seed(const char *name, const char *path, const char *buf, size_t len, void *ud)
{
    lua_State *L = ud;
    int broken = !strncmp(name, "broken-", 7);
    for (int skip = 0; skip < 2; skip++) {
        tsung_options o = {.skip_unsupported = skip, .server = skip ? "127.0.0.1:8080" : NULL};
        char *lua = NULL, *notes = NULL, err[1024] = "";
        int rc = tsung_import_buffer(buf, len, path, &o, &lua, &notes, err, sizeof err);
        int compiles = rc == 0 && luaL_loadbuffer(L, lua, strlen(lua), "=tsung") == 0;
        lua_settop(L, 0);
        if (broken)
            CHECK(rc == -1 && *err, "%s%s is refused (%s)", name, skip ? " (skip)" : "", err);
        else
            CHECK(rc == -1 ? *err != 0 : compiles, "%s%s: %s", name, skip ? " (skip)" : "",
                  rc         ? err
                  : compiles ? "Lua that compiles"
                             : "Lua that does not compile");
        free(lua);
        free(notes);
    }
}

int main(void)
{
    lua_State *L = luaL_newstate();
    corpus_each(CORPUS, seed, L);
    lua_close(L);
    return check_done();
}
