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

int main(void)
{
    struct dirent **names;
    int n = corpus_list(CORPUS, &names);
    CHECK(n > 0, "the corpus %s has seeds (%d)", CORPUS, n);
    lua_State *L = luaL_newstate();
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", CORPUS, names[i]->d_name);
        size_t len;
        char *buf = corpus_slurp(path, &len);
        CHECK(buf != NULL, "%s reads", path);
        int broken = !strncmp(names[i]->d_name, "broken-", 7);
        for (int skip = 0; buf && skip < 2; skip++) {
            tsung_options o = {.skip_unsupported = skip, .server = skip ? "127.0.0.1:8080" : NULL};
            char *lua = NULL, *notes = NULL, err[1024] = "";
            int rc = tsung_import_buffer(buf, len, path, &o, &lua, &notes, err, sizeof err);
            int compiles = rc == 0 && luaL_loadbuffer(L, lua, strlen(lua), "=tsung") == 0;
            lua_settop(L, 0);
            if (broken)
                CHECK(rc == -1 && *err, "%s%s is refused (%s)", names[i]->d_name, skip ? " (skip)" : "", err);
            else
                CHECK(rc == -1 ? *err != 0 : compiles, "%s%s: %s", names[i]->d_name, skip ? " (skip)" : "",
                      rc         ? err
                      : compiles ? "Lua that compiles"
                                 : "Lua that does not compile");
            free(lua);
            free(notes);
        }
        free(buf);
        free(names[i]);
    }
    free(names);
    lua_close(L);
    return check_done();
}
