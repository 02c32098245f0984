/* tsung_conf: internal to the Tsung importer, the first part of its Lua writer: the scenario's
 * configuration (ts.config, from <servers> and <options>) and its load (parrot.open, from
 * <load>); for tsung_lua.c only. */
#ifndef PARROT_TSUNG_CONF_H
#define PARROT_TSUNG_CONF_H

#include "tsung_tree.h"

/* `local T = ts.config { ... }` into c->out: servers (--server applied), options, file_servers,
 * the load's duration as `limit`. Fails (c->failed) on what it cannot use. */
void tsung_emit_config(ctx *c);
/* `load = parrot.open { ... },` into c->out. */
void tsung_emit_load(ctx *c);
/* The name file `path` (as the XML gives it, at element n) has in the scenario's bundle, into
 * `name`; the file joins c->files, the files that travel in the bundle. */
void tsung_bundle_name(ctx *c, node *n, const char *path, sbuf *name);

#endif
