/* test_tsung_corpus: replays the fuzzer's seed corpus (spec/fuzz/corpus/tsung/, run from the repo
 * root) through the Tsung importer, both refusing and skipping unsupported parts: "broken-*"
 * seeds are refused with a reason, the others translate to Lua that compiles, nothing crashes. */
#include "check.h"
#include "tsung.h"

#include <dirent.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#define CORPUS "spec/fuzz/corpus/tsung"

/* The whole file in a buffer of exactly its size (so ASan sees any over-read). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc(n ? (size_t)n : 1)) && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = buf ? (size_t)n : 0;
    return buf;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}
static int not_dot(const struct dirent *d) { return d->d_name[0] != '.'; }

int main(void)
{
    struct dirent **names;
    int n = scandir(CORPUS, &names, not_dot, by_name);
    CHECK(n > 0, "the corpus %s has seeds (%d)", CORPUS, n);
    lua_State *L = luaL_newstate();
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", CORPUS, names[i]->d_name);
        size_t len;
        char *buf = slurp(path, &len);
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
