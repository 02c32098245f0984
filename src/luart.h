/* luart: the scenario runtime's Lua states. A state gets the embedded parrot library (LuaJIT
 * bytecode linked into the binary), the scenario's directory on package.path, `parrot.env` from
 * -e, and loads a scenario with its errors reported as file:line before any load starts. */
#ifndef PARROT_LUART_H
#define PARROT_LUART_H

#include <lua.h>
#include <stddef.h>

/* What the command line overrides in a scenario (unset: 0 / NULL). */
typedef struct luart_overrides {
    const char *url;            /* --url: a plain GET scenario instead of a file */
    const char *method;         /* --method with --url */
    const char *body;           /* --body with --url */
    const char *const *headers; /* -H 'Name: value', NULL-terminated */
    int vus;                    /* --vus, 0 = scenario's */
    double rate;                /* --rate, 0 = scenario's */
    double duration;            /* --duration in seconds, 0 = scenario's */
    long iterations;            /* --iterations, 0 = unbounded */
    int insecure;               /* --insecure */
} luart_overrides;

/* A new state with the parrot library loadable (`require "parrot"`, "parrot.http", ...).
 * `script` is the scenario path (its directory goes on package.path) or NULL; `env` holds
 * "NAME=value" strings (NULL-terminated, or NULL). Returns NULL on out-of-memory. */
lua_State *luart_new(const char *script, const char *const *env);
/* Load and normalize the scenario (parrot.load): pushes the scenario table and returns 0, or
 * returns -1 with the one-line (or traceback) reason in `err`, pushing nothing. */
int luart_load(lua_State *L, const char *script, const luart_overrides *ov, char *err, size_t errlen);
/* lua_pcall with a traceback handler; on error copies the message into err and pops it. */
int luart_pcall(lua_State *L, int nargs, int nresults, char *err, size_t errlen);
/* Run the specs in `files` (the `parrot test` command). Returns the process exit code. */
int luart_test_main(int nfiles, char **files);

#endif
