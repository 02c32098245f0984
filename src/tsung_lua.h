/* tsung_lua: internal to the Tsung importer, its third pass: the Lua writer. Turns the element
 * tree that tsung.c has read and checked into the scenario described in tsung.h (the public
 * surface of the importer stays tsung.h; this header is for tsung.c only). */
#ifndef PARROT_TSUNG_LUA_H
#define PARROT_TSUNG_LUA_H

#include "tsung_tree.h"

/* Writes the whole scenario into c->out, and notes into c->notes. c->root is checked (passes 1
 * and 2 found nothing to refuse). On a failure c->failed is set with the reason in c->err, and
 * c->out holds a partial text that the caller frees. */
void tsung_lua_write(ctx *c);

#endif
