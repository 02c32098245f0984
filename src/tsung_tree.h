/* tsung_tree: internal to the Tsung importer (tsung.c reads and checks, tsung_conf.c and
 * tsung_lua.c write Lua). The element tree, the translation's state, growable strings, the DTD's
 * element and value tables, the messages (fail, note) that name a line of the XML, and the
 * helpers that write Lua values; not for use outside tsung*.c. */
#ifndef PARROT_TSUNG_TREE_H
#define PARROT_TSUNG_TREE_H

#include "tsung.h"

#include <expat.h>
#include <limits.h>
#include <stddef.h>

/* A growable string. */
typedef struct sbuf {
    char *s; /* owned, NUL-terminated when non-NULL */
    size_t len, cap;
} sbuf;

/* Appends (aborts when out of memory, as every allocation of the importer does). */
void tsung_sb_add(sbuf *b, const char *p, size_t n);
void tsung_sb_puts(sbuf *b, const char *s);
__attribute__((format(printf, 2, 3))) void tsung_sb_printf(sbuf *b, const char *fmt, ...);

/* One XML element. */
typedef struct node {
    char *name;  /* owned */
    char **attr; /* owned: name, value, ..., NULL */
    sbuf text;   /* character data directly inside */
    int line, col;
    struct node **kids; /* owned */
    int nkids, kcap;
    struct node *parent; /* borrowed */
    int drop;            /* left out (--skip-unsupported) */
} node;

/* Frees n and everything below it (NULL is fine). */
void tsung_node_free(node *n);
/* The value of attribute `name`, or NULL. */
const char *tsung_attr(const node *n, const char *name);
/* v is "true". */
int tsung_is_true(const char *v);
/* The text of a node without surrounding white space (points into n->text, may be ""). */
const char *tsung_text_trim(node *n, size_t *len);

/* An element that cannot run here, with the lines it is on (for the refusal). */
typedef struct unsup_item {
    char *label; /* owned: "<jabber>" */
    sbuf lines;  /* "33, 40" */
    int count, last;
} unsup_item;

/* The translation's state, from the XML to the Lua. */
typedef struct ctx {
    const char *file;   /* as given, for messages */
    char dir[PATH_MAX]; /* the XML's directory (realpath when it exists) */
    const tsung_options *o;
    XML_Parser xp;
    node *root, *cur; /* tree (owned) and the parser's position */
    int depth, nnodes;
    size_t ntext;
    sbuf out, notes;
    unsup_item *unsup;       /* owned */
    int nunsup, unsup_kinds; /* kinds: 1 not HTTP, 2 Erlang code */
    char **files;            /* owned: absolute paths for the bundle */
    int nfiles;
    sbuf file_servers; /* Lua "id = name, " pairs */
    int indent, failed, dropped_sessions;
    int loops;          /* for/foreach nested in the current Lua function (4 locals each) */
    int tls_servers;    /* servers of type ssl: certificates are not checked, as in Tsung 1.7 */
    char srv_host[256]; /* --server's host, port (0: none) and scheme */
    int srv_port, srv_tls;
    char *err;
    size_t errlen;
    int fail_col; /* > 0: the next failure names this column too (FILE:LINE:COL) */
} ctx;

/* The first failure wins: "FILE:LINE: message" into c->err (line <= 0: no line), c->failed set. */
__attribute__((format(printf, 3, 4))) void tsung_fail(ctx *c, int line, const char *fmt, ...);
/* The same at element n: "FILE:LINE:COL: message" (the column of the element's '<'). */
__attribute__((format(printf, 3, 4))) void tsung_fail_at(ctx *c, const node *n, const char *fmt, ...);
/* A line for the user in c->notes ("FILE:LINE: message"). */
__attribute__((format(printf, 3, 4))) void tsung_note(ctx *c, int line, const char *fmt, ...);

/* What the DTD allows of one element: space-separated words; attrs NULL = not checked. */
typedef struct elem_spec {
    const char *name, *attrs, *required, *kids;
    int nonhttp;
} elem_spec;

/* The element named `name`, or NULL when the DTD has no such element. */
const elem_spec *tsung_spec_of(const char *name);
/* What attribute `attr` of <elem> may be: the DTD's space-separated values, "#int" (a whole
 * number), "#num" (a number), or NULL when any text goes. */
const char *tsung_attr_rule(const char *elem, const char *attr);
/* Is `w` one of the space-separated words of `list`? */
int tsung_has_word(const char *list, const char *w);
/* Is s (may be NULL) in the NULL-terminated list l? */
int tsung_in_list(const char *const *l, const char *s);
/* The first child of <tsung> named `name`, or NULL. */
node *tsung_section(ctx *c, const char *name);

/* ---- writing Lua (both halves of the writer, tsung_conf.c and tsung_lua.c) ---- */

/* A Lua string literal of s[0..n) (a long bracket for long multi-line text). */
void tsung_lua_str(sbuf *b, const char *s, size_t n);
void tsung_lua_cstr(sbuf *b, const char *s);
/* A plain decimal number ("2", "0.5", "1e3"), as Tsung writes numbers: 1 and *v, or 0. */
int tsung_num_of(const char *s, double *v);
/* A number as Lua reads it back exactly. */
void tsung_lua_num(sbuf *b, double d);
/* `key = value` (", " before all but the first) for an attribute that is there: a number when it
 * reads as one and `numeric`, else a string. Returns 1 when written. */
int tsung_field(sbuf *b, int *first, const char *key, const char *v, int numeric);
/* The indentation of c->indent levels. */
void tsung_ind(ctx *c);
/* Attribute a of n as a non-negative (zero_ok) or positive number, or a failure naming it. */
double tsung_positive(ctx *c, node *n, const char *a, int zero_ok);

#endif
