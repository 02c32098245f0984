/* tsung: Tsung XML configurations translated to Lua scenarios on parrot.tsung (see tsung.h for the
 * shape of the generated Lua). Three passes over a small element tree built with libexpat: check
 * it against the DTD's elements and attributes, find what cannot run here, then write the Lua
 * (tsung_conf.c for the configuration and the load, tsung_lua.c for the sessions; the tree and
 * the DTD's tables are in tsung_tree.c). */
#include "tsung.h"

#include "tsung_lua.h"
#include "tsung_tree.h"

#include <errno.h>
#include <expat.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_MAX_DEPTH 64
#define TS_MAX_NODES 100000
#define TS_MAX_INPUT (32u << 20)
#define TS_MAX_TEXT (16u << 20)
#define TS_MAX_ERR (64u << 10) /* a refusal lists every unsupported element and line */

/* Something that cannot run here: listed in the refusal, or left out with a note. kind 1 = not
 * HTTP, 2 = Erlang code. */
static void unsupported(ctx *c, node *n, const char *label, int kind)
{
    if (c->o->skip_unsupported && label[0] == '%') {
        tsung_note(c, n->line, "%s is Erlang code: it becomes an empty string", label);
        return;
    }
    if (c->o->skip_unsupported) {
        n->drop = 1;
        tsung_note(c, n->line, "%s left out (%s)", label,
                   kind == 1 ? "not HTTP" : "Erlang code cannot run here");
        return;
    }
    c->unsup_kinds |= kind;
    unsup_item *it = NULL;
    for (int i = 0; i < c->nunsup; i++)
        if (!strcmp(c->unsup[i].label, label)) it = &c->unsup[i];
    if (!it) {
        unsup_item *u = realloc(c->unsup, (size_t)(c->nunsup + 1) * sizeof *u);
        if (!u) abort();
        c->unsup = u;
        it = &u[c->nunsup++];
        memset(it, 0, sizeof *it);
        it->label = strdup(label);
        if (!it->label) abort();
    }
    if (it->count && it->last == n->line) return;
    it->last = n->line;
    tsung_sb_printf(&it->lines, "%s%d", it->count ? ", " : "", n->line);
    it->count++;
}

/* ------------------------------------------------------------------------------------------ */
/* parsing (expat) */

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    ctx *c = ud;
    int line = (int)XML_GetCurrentLineNumber(c->xp);
    c->fail_col = (int)XML_GetCurrentColumnNumber(c->xp) + 1; /* failures here name the '<' */
    if (c->depth >= TS_MAX_DEPTH || c->nnodes >= TS_MAX_NODES) {
        tsung_fail(c, line, "%s",
                   c->depth >= TS_MAX_DEPTH ? "elements nested deeper than 64" : "more than 100000 elements");
        XML_StopParser(c->xp, XML_FALSE);
        return;
    }
    if (!c->cur && c->root) return; /* cannot happen: one root */
    if (!c->root && strcmp(name, "tsung")) {
        tsung_fail(c, line, "the root element is <%s>, not <tsung>: not a Tsung configuration", name);
        XML_StopParser(c->xp, XML_FALSE);
        return;
    }
    node *n = calloc(1, sizeof *n);
    if (!n) abort();
    n->name = strdup(name);
    n->line = line;
    n->col = (int)XML_GetCurrentColumnNumber(c->xp) + 1;
    int na = 0;
    while (atts[na])
        na++;
    n->attr = calloc((size_t)na + 1, sizeof *n->attr);
    if (!n->name || !n->attr) abort();
    for (int i = 0; i < na; i++)
        if (!(n->attr[i] = strdup(atts[i]))) abort();
    if (c->cur) {
        node *p = c->cur;
        if (p->nkids == p->kcap) {
            p->kcap = p->kcap ? p->kcap * 2 : 4;
            node **k = realloc(p->kids, (size_t)p->kcap * sizeof *k);
            if (!k) abort();
            p->kids = k;
        }
        p->kids[p->nkids++] = n;
        n->parent = p;
    } else {
        c->root = n;
    }
    c->cur = n;
    c->depth++;
    c->nnodes++;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    ctx *c = ud;
    (void)name;
    if (c->cur) c->cur = c->cur->parent;
    c->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    ctx *c = ud;
    if (!c->cur || len <= 0) return;
    if (c->ntext + (size_t)len > TS_MAX_TEXT) {
        c->fail_col = (int)XML_GetCurrentColumnNumber(c->xp) + 1;
        tsung_fail(c, (int)XML_GetCurrentLineNumber(c->xp), "more than 16 MB of text");
        XML_StopParser(c->xp, XML_FALSE);
        return;
    }
    c->ntext += (size_t)len;
    tsung_sb_add(&c->cur->text, s, (size_t)len);
}

/* Entities declared in the document can multiply its size; Tsung files never need them. */
static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value, int vlen,
                              const XML_Char *base, const XML_Char *sys, const XML_Char *pub,
                              const XML_Char *notation)
{
    ctx *c = ud;
    (void)is_param, (void)value, (void)vlen, (void)base, (void)sys, (void)pub, (void)notation;
    c->fail_col = (int)XML_GetCurrentColumnNumber(c->xp) + 1;
    tsung_fail(c, (int)XML_GetCurrentLineNumber(c->xp),
               "entity declarations (<!ENTITY %s ...>) are not supported", name);
    XML_StopParser(c->xp, XML_FALSE);
}

static int parse_xml(ctx *c, const char *buf, size_t len)
{
    c->xp = XML_ParserCreate(NULL);
    if (!c->xp) abort();
    XML_SetUserData(c->xp, c);
    XML_SetElementHandler(c->xp, on_start, on_end);
    XML_SetCharacterDataHandler(c->xp, on_text);
    XML_SetEntityDeclHandler(c->xp, on_entity);
    XML_SetParamEntityParsing(c->xp, XML_PARAM_ENTITY_PARSING_NEVER);
    if (len > TS_MAX_INPUT) {
        tsung_fail(c, 0, "larger than 32 MB");
    } else if (XML_Parse(c->xp, buf, (int)len, XML_TRUE) != XML_STATUS_OK && !c->failed) {
        enum XML_Error e = XML_GetErrorCode(c->xp);
        c->failed++;
        snprintf(c->err, c->errlen, "%s:%lu:%lu: %s", c->file, (unsigned long)XML_GetCurrentLineNumber(c->xp),
                 (unsigned long)XML_GetCurrentColumnNumber(c->xp) + 1, XML_ErrorString(e));
    }
    XML_ParserFree(c->xp);
    c->xp = NULL;
    c->fail_col = 0; /* later failures name an element (tsung_fail_at) or no place */
    if (!c->failed && !c->root) tsung_fail(c, 0, "no <tsung> element");
    return c->failed ? -1 : 0;
}

/* A whole number ("0", "42") or a number ("0.5"), as Tsung reads them. */
static int is_int(const char *v) { return *v && strspn(v, "0123456789") == strlen(v); }
static int is_num(const char *v)
{
    char *end;
    if (!*v || !strchr("0123456789.", *v)) return 0;
    double d = strtod(v, &end);
    return !*end && d >= 0 && d < 1e15;
}

/* An attribute whose values the DTD lists, or that Tsung reads as a number. */
static void check_value(ctx *c, node *n, const char *a, const char *v)
{
    const char *allowed = tsung_attr_rule(n->name, a);
    if (!allowed) return;
    if (!strcmp(allowed, "#int")) {
        if (!is_int(v)) tsung_fail_at(c, n, "<%s %s=\"%s\">: expected a whole number", n->name, a, v);
    } else if (!strcmp(allowed, "#num")) {
        if (!is_num(v)) tsung_fail_at(c, n, "<%s %s=\"%s\">: expected a number", n->name, a, v);
    } else if (!tsung_has_word(allowed, v)) {
        sbuf m = {0};
        for (const char *p = allowed; *p; p++)
            tsung_sb_puts(&m, *p == ' ' ? ", " : (char[]){*p, 0});
        tsung_fail_at(c, n, "<%s %s=\"%s\">: %s must be one of %s", n->name, a, v, a, m.s);
        free(m.s);
    }
}

/* Pass 1: every element known, where the DTD allows it, with its required attributes. */
static void check_tree(ctx *c, node *n, const elem_spec *parent)
{
    const elem_spec *s = tsung_spec_of(n->name);
    if (!s) return tsung_fail_at(c, n, "unknown element <%s>", n->name);
    if (parent && !tsung_has_word(parent->kids, n->name))
        return tsung_fail_at(c, n, "<%s> cannot be inside <%s>", n->name, parent->name);
    if (s->attrs) {
        char w[64];
        for (const char *p = s->required; *p;) {
            size_t l = strcspn(p, " ");
            snprintf(w, sizeof w, "%.*s", (int)l, p);
            if (!tsung_attr(n, w)) return tsung_fail_at(c, n, "<%s> needs %s", n->name, w);
            p += l + (p[l] == ' ');
        }
        for (char **a = n->attr; a && a[0] && !c->failed; a += 2) {
            if (!tsung_has_word(s->attrs, a[0]))
                tsung_note(c, n->line, "<%s %s=...>: unknown attribute, ignored", n->name, a[0]);
            else
                check_value(c, n, a[0], a[1]);
        }
    }
    for (int i = 0; i < n->nkids && !c->failed; i++)
        check_tree(c, n->kids[i], s);
}

/* ------------------------------------------------------------------------------------------ */
/* Pass 2: what cannot run here */

static int builtin_known(const char *s, size_t n)
{
    static const char *const known[] = {"ts_user_server:get_unique_id", "ts_user_server:get_really_unique_id",
                                        "ts_user_server:get_id"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i]) == n && !memcmp(known[i], s, n)) return 1;
    return 0;
}

/* %%module:function%% calls in a substituted string that no built-in here stands for. */
static void scan_calls(ctx *c, node *n, const char *s)
{
    for (const char *p = s ? strstr(s, "%%") : NULL; p; p = strstr(p, "%%")) {
        const char *q = strstr(p + 2, "%%");
        if (!q) return;
        const char *in = p + 2;
        size_t l = (size_t)(q - in);
        if (l && in[0] != '_' && memchr(in, ':', l) && !memchr(in, '%', l) && !builtin_known(in, l)) {
            char label[120];
            snprintf(label, sizeof label, "%%%%%.*s%%%%", (int)(l > 80 ? 80 : l), in);
            unsupported(c, n, label, 2);
        }
        p = q + 2;
    }
}

static void scan_attrs(ctx *c, node *n, const char *skip)
{
    for (char **a = n->attr; a && a[0]; a += 2)
        if (!skip || strcmp(a[0], skip)) scan_calls(c, n, a[1]);
}

/* A request: a non-HTTP protocol element, or Erlang calls in what subst="true" substitutes. */
static void scan_request(ctx *c, node *req)
{
    const char *subst = tsung_attr(req, "subst");
    int on = subst && (!strcmp(subst, "true") || !strcmp(subst, "all_except_body"));
    for (int i = 0; i < req->nkids; i++) {
        node *k = req->kids[i];
        const elem_spec *s = tsung_spec_of(k->name);
        if (s->nonhttp) {
            char label[80];
            snprintf(label, sizeof label, "<%s>", k->name);
            unsupported(c, req, label, 1);
        } else if (!strcmp(k->name, "http") && on) {
            scan_attrs(c, k, strcmp(subst, "true") ? "contents" : NULL);
            for (int j = 0; j < k->nkids; j++)
                scan_attrs(c, k->kids[j], NULL);
        } else if (!strcmp(k->name, "match") && tsung_is_true(tsung_attr(k, "subst"))) {
            scan_calls(c, k, k->text.s);
        }
        if (!strcmp(k->name, "match")) {
            const char *f = tsung_attr(k, "apply_to_content");
            if (f && strcmp(f, "undefined") && strcmp(f, "ts_digest:md5hex"))
                tsung_note(c, k->line,
                           "match apply_to_content=%s is Erlang code: the match sees the response as it is",
                           f);
        }
    }
}

static void scan_flow(ctx *c, node *n)
{
    for (int i = 0; i < n->nkids; i++) {
        node *k = n->kids[i];
        const char *nm = k->name, *t;
        if (!strcmp(nm, "request")) {
            scan_request(c, k);
        } else if (!strcmp(nm, "change_type")) {
            t = tsung_attr(k, "new_type");
            if (strcmp(t, "ts_http")) {
                char label[100];
                snprintf(label, sizeof label, "<change_type new_type=%.60s>", t);
                unsupported(c, k, label, 1);
            }
        } else if (!strcmp(nm, "setdynvars")) {
            t = tsung_attr(k, "sourcetype");
            const char *cb = tsung_attr(k, "callback");
            if (!strcmp(t, "eval") || (!strcmp(t, "erlang") && (!cb || !builtin_known(cb, strlen(cb))))) {
                char label[140];
                snprintf(label, sizeof label, "<setdynvars sourcetype=%s%s%.80s>", t, cb ? " callback=" : "",
                         cb ? cb : "");
                unsupported(c, k, label, 2);
            } else {
                scan_attrs(c, k, NULL);
            }
        } else if (!strcmp(nm, "thinktime") || !strcmp(nm, "for") || !strcmp(nm, "if") ||
                   !strcmp(nm, "while") || !strcmp(nm, "until")) {
            scan_attrs(c, k, NULL);
        }
        if (k->nkids && strcmp(nm, "request")) scan_flow(c, k);
    }
}

/* The non-HTTP protocol elements of a non-HTTP session, at any depth, named in the refusal. */
static void scan_foreign(ctx *c, node *n)
{
    for (int i = 0; i < n->nkids; i++) {
        node *k = n->kids[i];
        if (tsung_spec_of(k->name)->nonhttp && strcmp(n->name, k->name) && !tsung_spec_of(n->name)->nonhttp) {
            char label[80];
            snprintf(label, sizeof label, "<%s>", k->name);
            unsupported(c, k, label, 1);
        } else {
            scan_foreign(c, k);
        }
    }
}

static const char *const http_server_types[] = {"tcp", "ssl", "tcp6", "ssl6", "tls", NULL};

static void scan_unsupported(ctx *c)
{
    for (int i = 0; i < c->root->nkids; i++) {
        node *sec = c->root->kids[i];
        for (int j = 0; j < sec->nkids; j++) {
            node *k = sec->kids[j];
            char label[120];
            const char *t = tsung_attr(k, "type"), *nm = tsung_attr(k, "name");
            if (!strcmp(k->name, "server") && !tsung_in_list(http_server_types, t)) {
                snprintf(label, sizeof label, "<server type=%.60s>", t);
                unsupported(c, k, label, 1);
            } else if (!strcmp(k->name, "option") &&
                       ((t && strcmp(t, "ts_http")) || !strncmp(nm, "bosh_", 5) ||
                        !strncmp(nm, "websocket_", 10))) {
                snprintf(label, sizeof label, "<option %s%.40s%sname=%.40s>", t ? "type=" : "", t ? t : "",
                         t ? " " : "", nm);
                unsupported(c, k, label, 1);
            } else if (!strcmp(k->name, "session")) {
                if (strcmp(t, "ts_http")) {
                    snprintf(label, sizeof label, "<session type=%.60s>", t);
                    unsupported(c, k, label, 1);
                    if (k->drop) c->dropped_sessions++;
                    if (!k->drop) scan_foreign(c, k);
                } else {
                    scan_flow(c, k);
                }
            }
        }
    }
    if (!c->nunsup) return;
    sbuf m = {0};
    tsung_sb_puts(&m, c->unsup_kinds == 1   ? "not HTTP"
                      : c->unsup_kinds == 2 ? "Erlang code"
                                            : "not HTTP or Erlang code");
    tsung_sb_puts(&m, ", cannot run here: ");
    for (int i = 0; i < c->nunsup; i++)
        tsung_sb_printf(&m, "%s%s line%s %s", i ? ", " : "", c->unsup[i].label,
                        c->unsup[i].count > 1 ? "s" : "", c->unsup[i].lines.s);
    tsung_sb_puts(&m, " (--skip-unsupported runs the HTTP sessions alone)");
    tsung_fail(c, 0, "%s", m.s);
    free(m.s);
}
/* ------------------------------------------------------------------------------------------ */
/* public */

int tsung_import_buffer(const char *buf, size_t len, const char *name, const tsung_options *o, char **lua_out,
                        char **notes, char *err, size_t errlen)
{
    static const tsung_options none;
    char scratch[2];
    ctx c = {.file = name,
             .o = o ? o : &none,
             .err = errlen ? err : scratch,
             .errlen = errlen ? errlen : sizeof scratch};
    c.err[0] = 0;
    *lua_out = NULL;
    if (notes) *notes = NULL;
    const char *slash = strrchr(name, '/');
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%.*s", slash ? (int)(slash - name) + (slash == name) : 1, slash ? name : ".");
    if (!realpath(d, c.dir)) snprintf(c.dir, sizeof c.dir, "%s", d);
    if (parse_xml(&c, buf, len) == 0) check_tree(&c, c.root, NULL);
    if (!c.failed) {
        for (const char *const *s = (const char *const[]){"clients", "servers", "load", "sessions", NULL}; *s;
             s++)
            if (!tsung_section(&c, *s)) tsung_fail_at(&c, c.root, "<tsung> needs <%s>", *s);
    }
    if (!c.failed) scan_unsupported(&c);
    if (!c.failed) tsung_lua_write(&c);
    tsung_node_free(c.root);
    for (int i = 0; i < c.nunsup; i++)
        free(c.unsup[i].label), free(c.unsup[i].lines.s);
    free(c.unsup);
    for (int i = 0; i < c.nfiles; i++)
        free(c.files[i]);
    free(c.files);
    free(c.file_servers.s);
    if (notes)
        *notes = c.notes.s;
    else
        free(c.notes.s);
    if (c.failed) {
        free(c.out.s);
        return -1;
    }
    *lua_out = c.out.s;
    return 0;
}

int tsung_import(const char *path, const tsung_options *o, char **lua_out, char **notes, char *err,
                 size_t errlen)
{
    *lua_out = NULL;
    if (notes) *notes = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    sbuf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len <= TS_MAX_INPUT)
        tsung_sb_add(&b, chunk, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        free(b.s);
        return -1;
    }
    int rc = tsung_import_buffer(b.s ? b.s : "", b.len, path, o, lua_out, notes, err, errlen);
    free(b.s);
    return rc;
}

int tsung_lua_import(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    tsung_options o = {0};
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "skip_unsupported");
        o.skip_unsupported = lua_toboolean(L, -1);
        lua_getfield(L, 2, "server");
        o.server = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL; /* stays on the stack */
        lua_getfield(L, 2, "exclude_tags");
        o.exclude_tags = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
    }
    char *src, *notes, *err = malloc(TS_MAX_ERR);
    if (!err) abort();
    if (tsung_import(path, &o, &src, &notes, err, TS_MAX_ERR) != 0) {
        free(notes);
        lua_pushstring(L, err);
        free(err);
        return lua_error(L);
    }
    free(err);
    lua_pushstring(L, src);
    if (notes)
        lua_pushstring(L, notes);
    else
        lua_pushnil(L);
    free(src);
    free(notes);
    return 2;
}
