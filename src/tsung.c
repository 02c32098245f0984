/* tsung: Tsung XML configurations translated to Lua scenarios on parrot.tsung (see tsung.h for the
 * shape of the generated Lua). Three passes over a small element tree built with libexpat: check
 * it against the DTD's elements and attributes, find what cannot run here, then write the Lua. */
#include "tsung.h"

#include <errno.h>
#include <expat.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TS_MAX_DEPTH 64
#define TS_MAX_NODES 100000
#define TS_MAX_INPUT (32u << 20)
#define TS_MAX_TEXT (16u << 20)
#define TS_MAX_PHASES 10000
#define TS_MAX_UNSUP_LINES 8 /* lines listed per unsupported element before "..." */

/* ------------------------------------------------------------------------------------------ */
/* growable strings */

typedef struct sbuf {
    char *s; /* owned, NUL-terminated when non-NULL */
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) abort();
        b->s = s;
        b->cap = cap;
    }
    if (n) memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = 0;
}
static void sb_puts(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        sb_add(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) abort();
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, big, (size_t)n);
    free(big);
}

/* ------------------------------------------------------------------------------------------ */
/* the element tree */

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

static void node_free(node *n)
{
    if (!n) return;
    for (int i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    for (char **a = n->attr; a && *a; a++)
        free(*a);
    free(n->attr);
    free(n->kids);
    free(n->text.s);
    free(n->name);
    free(n);
}

static const char *attr(const node *n, const char *name)
{
    for (char **a = n->attr; a && a[0]; a += 2)
        if (!strcmp(a[0], name)) return a[1];
    return NULL;
}
static int is_true(const char *v) { return v && !strcmp(v, "true"); }

/* The text of a node without surrounding white space (points into n->text, may be ""). */
static const char *text_trim(node *n, size_t *len)
{
    const char *s = n->text.s ? n->text.s : "";
    size_t l = n->text.len;
    while (l && strchr(" \t\r\n", *s))
        s++, l--;
    while (l && strchr(" \t\r\n", s[l - 1]))
        l--;
    *len = l;
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* the translation's state */

typedef struct unsup_item {
    char *label; /* owned: "<jabber>" */
    sbuf lines;  /* "33, 40" */
    int count, last;
} unsup_item;

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
    int loops; /* for/foreach nested in the current Lua function (4 locals each) */
    char *err;
    size_t errlen;
} ctx;

__attribute__((format(printf, 3, 4))) static void fail(ctx *c, int line, const char *fmt, ...)
{
    if (c->failed++) return;
    int n = line > 0 ? snprintf(c->err, c->errlen, "%s:%d: ", c->file, line)
                     : snprintf(c->err, c->errlen, "%s: ", c->file);
    if (n < 0 || (size_t)n >= c->errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 3, 4))) static void note(ctx *c, int line, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        sb_printf(&c->notes, "%s:%d: %s\n", c->file, line, msg);
    else
        sb_printf(&c->notes, "%s: %s\n", c->file, msg);
}

/* Something that cannot run here: listed in the refusal, or left out with a note. kind 1 = not
 * HTTP, 2 = Erlang code. */
static void unsupported(ctx *c, node *n, const char *label, int kind)
{
    if (c->o->skip_unsupported && label[0] == '%') {
        note(c, n->line, "%s is Erlang code: it becomes an empty string", label);
        return;
    }
    if (c->o->skip_unsupported) {
        n->drop = 1;
        note(c, n->line, "%s left out (%s)", label, kind == 1 ? "not HTTP" : "Erlang code cannot run here");
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
    if (it->count < TS_MAX_UNSUP_LINES)
        sb_printf(&it->lines, "%s%d", it->count ? ", " : "", n->line);
    else if (it->count == TS_MAX_UNSUP_LINES)
        sb_puts(&it->lines, ", ...");
    it->count++;
}

/* ------------------------------------------------------------------------------------------ */
/* parsing (expat) */

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    ctx *c = ud;
    int line = (int)XML_GetCurrentLineNumber(c->xp);
    if (c->depth >= TS_MAX_DEPTH || c->nnodes >= TS_MAX_NODES) {
        fail(c, line, "%s",
             c->depth >= TS_MAX_DEPTH ? "elements nested deeper than 64" : "more than 100000 elements");
        XML_StopParser(c->xp, XML_FALSE);
        return;
    }
    if (!c->cur && c->root) return; /* cannot happen: one root */
    if (!c->root && strcmp(name, "tsung")) {
        fail(c, line, "the root element is <%s>, not <tsung>: not a Tsung configuration", name);
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
        fail(c, (int)XML_GetCurrentLineNumber(c->xp), "more than 16 MB of text");
        XML_StopParser(c->xp, XML_FALSE);
        return;
    }
    c->ntext += (size_t)len;
    sb_add(&c->cur->text, s, (size_t)len);
}

/* Entities declared in the document can multiply its size; Tsung files never need them. */
static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value, int vlen,
                              const XML_Char *base, const XML_Char *sys, const XML_Char *pub,
                              const XML_Char *notation)
{
    ctx *c = ud;
    (void)is_param, (void)value, (void)vlen, (void)base, (void)sys, (void)pub, (void)notation;
    fail(c, (int)XML_GetCurrentLineNumber(c->xp), "entity declarations (<!ENTITY %s ...>) are not supported",
         name);
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
        fail(c, 0, "larger than 32 MB");
    } else if (XML_Parse(c->xp, buf, (int)len, XML_TRUE) != XML_STATUS_OK && !c->failed) {
        enum XML_Error e = XML_GetErrorCode(c->xp);
        c->failed++;
        snprintf(c->err, c->errlen, "%s:%lu:%lu: %s", c->file, (unsigned long)XML_GetCurrentLineNumber(c->xp),
                 (unsigned long)XML_GetCurrentColumnNumber(c->xp) + 1, XML_ErrorString(e));
    }
    XML_ParserFree(c->xp);
    c->xp = NULL;
    if (!c->failed && !c->root) fail(c, 0, "no <tsung> element");
    return c->failed ? -1 : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* what the DTD allows (children in any order) */

#define FLOW                                                                                                 \
    "request thinktime transaction setdynvars for repeat if change_type foreach interaction abort "          \
    "set_option while until"
#define NONHTTP "jabber raw pgsql ldap mysql fs shell job websocket amqp mqtt"
#define COMPARE "var eq neq gt gte lt lte"

typedef struct elem_spec {
    const char *name, *attrs, *required, *kids; /* space-separated; attrs NULL = not checked */
    int nonhttp;
} elem_spec;

static const elem_spec specs[] = {
    {"tsung", "dumptraffic backend loglevel version", "",
     "information clients servers monitoring load options sessions", 0},
    {"information", "", "", "name description username organisation", 0},
    {"name", "", "", "", 0},
    {"description", "", "", "", 0},
    {"username", "", "", "", 0},
    {"organisation", "", "", "", 0},
    {"servers", "", "", "server", 0},
    {"server", "host port weight type", "host port type", "", 0},
    {"clients", "", "", "client", 0},
    {"client", "cpu type host batch scan_intf maxusers use_controller_vm weight", "", "ip iprange", 0},
    {"ip", "value scan", "value", "", 0},
    {"iprange", "value version", "value", "", 0},
    {"monitoring", "", "", "monitor", 0},
    {"monitor", "host batch type", "host", "snmp munin mysqladmin", 0},
    {"mysqladmin", "port username password", "", "", 0},
    {"snmp", "version community port", "", "oid", 0},
    {"oid", "value name type eval", "value name", "", 0},
    {"munin", "port", "", "", 0},
    {"load", "duration unit loop", "", "arrivalphase user", 0},
    {"arrivalphase", "duration phase wait_all_sessions_end unit", "duration phase unit",
     "users session_setup", 0},
    {"users", "interarrival arrivalrate unit maxnumber", "unit", "", 0},
    {"user", "start_time unit session", "session", "", 0},
    {"session_setup", "name probability weight", "name", "", 0},
    {"options", "", "", "option", 0},
    {"option", "name override random id min max type value", "name", "user_agent", 0},
    {"set_option", "name id min max type value", "name", "user_agent certificate", 0},
    {"certificate", "cacertfile keyfile keypass certfile", "", "", 0},
    {"user_agent", "probability", "probability", "", 0},
    {"sessions", "", "", "session", 0},
    {"session", "name bidi persistent probability weight type", "name type", FLOW, 0},
    {"abort", "type", "", "", 0},
    {"interaction", "action id", "action id", "", 0},
    {"change_type", "new_type host port server_type store restore bidi", "new_type host port server_type", "",
     0},
    {"request", "subst tag", "", "match dyn_variable http " NONHTTP, 0},
    {"match", "do when subst loop_back name max_loop max_restart sleep_loop apply_to_content skip_headers",
     "", "", 0},
    {"thinktime", "random value min max", "", "", 0},
    {"transaction", "name", "name", FLOW, 0},
    {"http", "contents contents_from_file content_type if_modified_since method url version", "url",
     "oauth www_authenticate soap http_header add_cookie", 0},
    {"soap", "action", "action", "", 0},
    {"dyn_variable", "name xpath re jsonpath pgsql_expr regexp header decode", "name", "", 0},
    {"http_header", "name encoding value", "name", "", 0},
    {"add_cookie", "key domain path value", "key value", "", 0},
    {"www_authenticate", "passwd userid nonce opaque cnonce nc realm qop type", "passwd userid", "", 0},
    {"oauth", "consumer_key consumer_secret access_token access_token_secret method",
     "consumer_key consumer_secret", "", 0},
    {"setdynvars", "sourcetype callback code fileid order delimiter length start end from jsonpath value",
     "sourcetype", "var", 0},
    {"var", "name", "name", "", 0},
    {"for", "var from to incr", "var from to", FLOW, 0},
    {"foreach", "name in include exclude", "name in", FLOW, 0},
    {"repeat", "name max_repeat", "name", FLOW, 0},
    {"if", COMPARE, "var", FLOW, 0},
    {"while", COMPARE, "var", "", 0},
    {"until", COMPARE, "var", "", 0},
    /* not HTTP: accepted by the check, refused (or left out) afterwards */
    {"jabber", NULL, "", "xmpp_authenticate", 1},
    {"xmpp_authenticate", NULL, "", "", 1},
    {"raw", NULL, "", "", 1},
    {"pgsql", NULL, "", "", 1},
    {"mysql", NULL, "", "", 1},
    {"ldap", NULL, "", "attr modification", 1},
    {"modification", NULL, "", "attr", 1},
    {"attr", NULL, "", "value", 1},
    {"value", NULL, "", "", 1},
    {"fs", NULL, "", "", 1},
    {"shell", NULL, "", "", 1},
    {"job", NULL, "", "", 1},
    {"websocket", NULL, "", "", 1},
    {"amqp", NULL, "", "", 1},
    {"mqtt", NULL, "", "", 1},
};

/* Is `w` one of the space-separated words of `list`? */
static int has_word(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ' ');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !memcmp(p, w, n)) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

static const elem_spec *spec_of(const char *name)
{
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        if (!strcmp(specs[i].name, name)) return &specs[i];
    return NULL;
}

/* Pass 1: every element known, where the DTD allows it, with its required attributes. */
static void check_tree(ctx *c, node *n, const elem_spec *parent)
{
    const elem_spec *s = spec_of(n->name);
    if (!s) return fail(c, n->line, "unknown element <%s>", n->name);
    if (parent && !has_word(parent->kids, n->name))
        return fail(c, n->line, "<%s> cannot be inside <%s>", n->name, parent->name);
    if (s->attrs) {
        char w[64];
        for (const char *p = s->required; *p;) {
            size_t l = strcspn(p, " ");
            snprintf(w, sizeof w, "%.*s", (int)l, p);
            if (!attr(n, w)) return fail(c, n->line, "<%s> needs %s", n->name, w);
            p += l + (p[l] == ' ');
        }
        for (char **a = n->attr; a && a[0]; a += 2)
            if (!has_word(s->attrs, a[0]))
                note(c, n->line, "<%s %s=...>: unknown attribute, ignored", n->name, a[0]);
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
    const char *subst = attr(req, "subst");
    int on = subst && (!strcmp(subst, "true") || !strcmp(subst, "all_except_body"));
    for (int i = 0; i < req->nkids; i++) {
        node *k = req->kids[i];
        const elem_spec *s = spec_of(k->name);
        if (s->nonhttp) {
            char label[80];
            snprintf(label, sizeof label, "<%s>", k->name);
            unsupported(c, req, label, 1);
        } else if (!strcmp(k->name, "http") && on) {
            scan_attrs(c, k, strcmp(subst, "true") ? "contents" : NULL);
            for (int j = 0; j < k->nkids; j++)
                scan_attrs(c, k->kids[j], NULL);
        } else if (!strcmp(k->name, "match") && is_true(attr(k, "subst"))) {
            scan_calls(c, k, k->text.s);
        }
        if (!strcmp(k->name, "match")) {
            const char *f = attr(k, "apply_to_content");
            if (f && strcmp(f, "undefined") && strcmp(f, "ts_digest:md5hex"))
                note(c, k->line,
                     "match apply_to_content=%s is Erlang code: the match sees the response as it is", f);
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
            t = attr(k, "new_type");
            if (strcmp(t, "ts_http")) {
                char label[100];
                snprintf(label, sizeof label, "<change_type new_type=%.60s>", t);
                unsupported(c, k, label, 1);
            }
        } else if (!strcmp(nm, "setdynvars")) {
            t = attr(k, "sourcetype");
            const char *cb = attr(k, "callback");
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
        if (spec_of(k->name)->nonhttp && strcmp(n->name, k->name) && !spec_of(n->name)->nonhttp) {
            char label[80];
            snprintf(label, sizeof label, "<%s>", k->name);
            unsupported(c, k, label, 1);
        } else {
            scan_foreign(c, k);
        }
    }
}

static const char *const http_server_types[] = {"tcp", "ssl", "tcp6", "ssl6", "tls", NULL};

static int in_list(const char *const *l, const char *s)
{
    for (; s && *l; l++)
        if (!strcmp(*l, s)) return 1;
    return 0;
}

static void scan_unsupported(ctx *c)
{
    for (int i = 0; i < c->root->nkids; i++) {
        node *sec = c->root->kids[i];
        for (int j = 0; j < sec->nkids; j++) {
            node *k = sec->kids[j];
            char label[120];
            const char *t = attr(k, "type"), *nm = attr(k, "name");
            if (!strcmp(k->name, "server") && !in_list(http_server_types, t)) {
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
    sb_puts(&m, c->unsup_kinds == 1   ? "not HTTP"
                : c->unsup_kinds == 2 ? "Erlang code"
                                      : "not HTTP or Erlang code");
    sb_puts(&m, ", cannot run here: ");
    for (int i = 0; i < c->nunsup; i++)
        sb_printf(&m, "%s%s line%s %s", i ? ", " : "", c->unsup[i].label, c->unsup[i].count > 1 ? "s" : "",
                  c->unsup[i].lines.s);
    sb_puts(&m, " (--skip-unsupported runs the HTTP sessions alone)");
    fail(c, 0, "%s", m.s);
    free(m.s);
}

/* ------------------------------------------------------------------------------------------ */
/* Lua output helpers */

static void lua_str(sbuf *b, const char *s, size_t n)
{
    int nl = 0, plain = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n')
            nl = 1;
        else if ((ch < 32 && ch != '\t') || ch == 127)
            plain = 0;
    }
    if (nl && plain && n > 60) { /* a long bracket reads better for bodies */
        int level = 0;
        char close[72];
        for (;; level++) {
            close[0] = ']';
            memset(close + 1, '=', (size_t)level);
            close[level + 1] = ']';
            close[level + 2] = 0;
            if (!memmem(s, n, close, (size_t)level + 2) && !(n && s[n - 1] == ']' && level == 0)) break;
            if (level > 60) break;
        }
        if (level <= 60) {
            sb_puts(b, "[");
            for (int i = 0; i < level; i++)
                sb_puts(b, "=");
            sb_puts(b, "[\n"); /* the first newline after the bracket is not part of the string */
            sb_add(b, s, n);
            sb_puts(b, close);
            return;
        }
    }
    sb_puts(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            sb_printf(b, "\\%c", ch);
        else if (ch == '\n')
            sb_puts(b, "\\n");
        else if (ch == '\t')
            sb_puts(b, "\\t");
        else if (ch < 32 || ch == 127)
            sb_printf(b, "\\%03d", ch);
        else
            sb_add(b, (const char *)&ch, 1);
    }
    sb_puts(b, "\"");
}
static void lua_cstr(sbuf *b, const char *s) { lua_str(b, s, strlen(s)); }

/* A plain decimal number ("2", "0.5", "1e3"), as Tsung writes numbers. */
static int num_of(const char *s, double *v)
{
    if (!s || !*s || strspn(s, "0123456789.eE+-") != strlen(s) || !strpbrk(s, "0123456789")) return 0;
    if (s[0] != '-' && s[0] != '.' && (s[0] < '0' || s[0] > '9')) return 0;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (*end || errno || !isfinite(d)) return 0;
    *v = d;
    return 1;
}

static void lua_num(sbuf *b, double d)
{
    char t[40];
    if (d == floor(d) && fabs(d) < 1e15) {
        snprintf(t, sizeof t, "%.0f", d);
    } else {
        snprintf(t, sizeof t, "%.15g", d);
        if (strtod(t, NULL) != d) snprintf(t, sizeof t, "%.17g", d);
    }
    sb_puts(b, t);
}

/* key = value, for an attribute that is there: a number when it reads as one, else a string. */
static int field(sbuf *b, int *first, const char *key, const char *v, int numeric)
{
    if (!v) return 0;
    double d;
    sb_puts(b, *first ? "" : ", ");
    *first = 0;
    if (!strcmp(key, "do") || !strcmp(key, "end"))
        sb_printf(b, "[\"%s\"] = ", key);
    else
        sb_printf(b, "%s = ", key);
    if (numeric && num_of(v, &d))
        lua_num(b, d);
    else
        lua_cstr(b, v);
    return 1;
}

static void ind(ctx *c)
{
    for (int i = 0; i < c->indent; i++)
        sb_puts(&c->out, "  ");
}

/* ------------------------------------------------------------------------------------------ */
/* files the scenario needs: bundle names and the paths that travel */

/* "/a/./b/../c" -> "/a/c" in place (for paths that do not exist yet, so realpath cannot). */
static char *path_clean(char *p)
{
    char *out = p, *r = p;
    while (*r) {
        while (*r == '/')
            r++;
        char *seg = r;
        while (*r && *r != '/')
            r++;
        size_t l = (size_t)(r - seg);
        if (l == 0 || (l == 1 && seg[0] == '.')) continue;
        if (l == 2 && seg[0] == '.' && seg[1] == '.') {
            while (out > p && *--out != '/') {
            }
            continue;
        }
        *out++ = '/';
        memmove(out, seg, l);
        out += l;
    }
    if (out == p) *out++ = '/';
    *out = 0;
    return p;
}

/* The name a file_server/contents_from_file file has inside the bundle (its path relative to the
 * XML's directory when inside it, else its base name); the path itself joins `files`. */
static void bundle_name(ctx *c, node *n, const char *path, sbuf *name)
{
    char joined[PATH_MAX * 2], real[PATH_MAX];
    if (path[0] == '/')
        snprintf(joined, sizeof joined, "%s", path);
    else
        snprintf(joined, sizeof joined, "%s/%s", c->dir, path);
    const char *abs = realpath(joined, real) ? real : joined[0] == '/' ? path_clean(joined) : joined;
    if (access(abs, R_OK) != 0)
        note(c, n->line, "%s: cannot read it (%s); the run needs it", path, strerror(errno));
    size_t dl = strlen(c->dir);
    const char *base = strrchr(abs, '/');
    if (!strncmp(abs, c->dir, dl) && abs[dl] == '/')
        sb_puts(name, abs + dl + 1);
    else
        sb_puts(name, base && base[1] ? base + 1 : abs);
    for (int i = 0; i < c->nfiles; i++)
        if (!strcmp(c->files[i], abs)) return;
    char **f = realloc(c->files, (size_t)(c->nfiles + 1) * sizeof *f);
    if (!f) abort();
    c->files = f;
    if (!(f[c->nfiles++] = strdup(abs))) abort();
}

/* ------------------------------------------------------------------------------------------ */
/* Pass 3: the Lua */

static node *section(ctx *c, const char *name)
{
    for (int i = 0; i < c->root->nkids; i++)
        if (!strcmp(c->root->kids[i]->name, name)) return c->root->kids[i];
    return NULL;
}

static double unit_secs(ctx *c, node *n, const char *u)
{
    if (!u || !strcmp(u, "second")) return 1;
    if (!strcmp(u, "minute")) return 60;
    if (!strcmp(u, "hour")) return 3600;
    if (!strcmp(u, "millisecond")) return 0.001;
    fail(c, n->line, "<%s unit=\"%s\">: unit must be hour, minute, second or millisecond", n->name, u);
    return 1;
}

/* A positive number attribute or a failure naming it. */
static double positive(ctx *c, node *n, const char *a, int zero_ok)
{
    double d = 0;
    const char *v = attr(n, a);
    if (!num_of(v, &d) || d < 0 || (!zero_ok && d == 0))
        fail(c, n->line, "<%s %s=\"%s\">: expected a %s number", n->name, a, v ? v : "",
             zero_ok ? "non-negative" : "positive");
    return d;
}

static void emit_servers(ctx *c)
{
    node *srv = section(c, "servers");
    sbuf *b = &c->out;
    char host[256] = "";
    int port = 0, tls = 0;
    if (c->o->server) {
        const char *s = c->o->server;
        if (!strncmp(s, "https://", 8))
            s += 8, tls = 1;
        else if (!strncmp(s, "http://", 7))
            s += 7;
        const char *colon = strrchr(s, ':');
        char *end;
        long p = colon ? strtol(colon + 1, &end, 10) : 0;
        if (!colon || colon == s || *end || p <= 0 || p > 65535 || colon - s >= (long)sizeof host)
            return fail(c, 0, "--server %s: expected HOST:PORT", c->o->server);
        if (*s == '[' && colon[-1] == ']')
            snprintf(host, sizeof host, "%.*s", (int)(colon - s - 2), s + 1);
        else
            snprintf(host, sizeof host, "%.*s", (int)(colon - s), s);
        port = (int)p;
        note(c, srv ? srv->line : 0, "every <server> is now %s:%d (%s)", host, port, tls ? "ssl" : "tcp");
    }
    sb_puts(b, "  servers = {\n");
    int n = 0;
    for (int i = 0; srv && i < srv->nkids; i++) {
        node *k = srv->kids[i];
        if (k->drop) continue;
        const char *t = attr(k, "type");
        int ssl = !strcmp(t, "ssl") || !strcmp(t, "ssl6") || !strcmp(t, "tls");
        double p = 0, w = 1;
        if (!port && (!num_of(attr(k, "port"), &p) || p <= 0 || p > 65535 || p != floor(p)))
            return fail(c, k->line, "<server port=\"%s\">: not a port number", attr(k, "port"));
        if (attr(k, "weight") && (!num_of(attr(k, "weight"), &w) || w < 0))
            return fail(c, k->line, "<server weight=\"%s\">: not a number", attr(k, "weight"));
        sb_puts(b, "    { host = ");
        lua_cstr(b, port ? host : attr(k, "host"));
        sb_printf(b, ", port = %d, type = \"%s\", weight = ", port ? port : (int)p,
                  (port ? tls : ssl) ? "ssl" : "tcp");
        lua_num(b, w);
        sb_printf(b, " }, -- line %d\n", k->line);
        n++;
    }
    sb_puts(b, "  },\n");
    if (!n) fail(c, srv ? srv->line : 0, "no HTTP <server> to send requests to");
}

static void emit_option(ctx *c, node *k, sbuf *extra)
{
    static const char *const no_effect[] = {"hibernate",
                                            "ports_range",
                                            "tcp_rcv_buffer",
                                            "tcp_snd_buffer",
                                            "udp_rcv_buffer",
                                            "udp_snd_buffer",
                                            "tcp_reuseaddr",
                                            "tcp_reuseport",
                                            "ip_transparent",
                                            "ssl_ciphers",
                                            "ssl_versions",
                                            "ssl_reuse_sessions",
                                            "max_ssh_startup_per_core",
                                            "job_notify_port",
                                            "seed",
                                            "rate_limit",
                                            "retry_timeout",
                                            "global_ack_timeout",
                                            "certificate",
                                            NULL};
    const char *nm = attr(k, "name"), *v = attr(k, "value");
    int first = 1;
    if (!strcmp(nm, "user_agent")) {
        sb_printf(extra, "  user_agents = { -- line %d\n", k->line);
        for (int i = 0; i < k->nkids; i++) {
            node *ua = k->kids[i];
            size_t l;
            const char *t = text_trim(ua, &l);
            double p;
            if (!num_of(attr(ua, "probability"), &p) || p < 0)
                return fail(c, ua->line, "<user_agent probability=\"%s\">: not a number",
                            attr(ua, "probability"));
            sb_puts(extra, "    { probability = ");
            lua_num(extra, p);
            sb_puts(extra, ", value = ");
            lua_str(extra, t, l);
            sb_puts(extra, " },\n");
        }
        sb_puts(extra, "  },\n");
    } else if (!strcmp(nm, "thinktime")) {
        sb_puts(extra, "  thinktime = { ");
        field(extra, &first, "value", v, 1);
        if (attr(k, "random"))
            sb_printf(extra, "%srandom = %s", first ? "" : ", ",
                      is_true(attr(k, "random")) ? "true" : "false"),
                first = 0;
        field(extra, &first, "min", attr(k, "min"), 1);
        field(extra, &first, "max", attr(k, "max"), 1);
        sb_printf(extra, "%soverride = %s }, -- line %d\n", first ? "" : ", ",
                  is_true(attr(k, "override")) ? "true" : "false", k->line);
    } else if (!strcmp(nm, "file_server")) {
        const char *id = attr(k, "id") ? attr(k, "id") : "default";
        if (!v) return fail(c, k->line, "<option name=\"file_server\"> needs value (the file's path)");
        sbuf bn = {0};
        bundle_name(c, k, v, &bn);
        sb_puts(&c->file_servers, "    [");
        lua_cstr(&c->file_servers, id);
        sb_puts(&c->file_servers, "] = ");
        lua_cstr(&c->file_servers, bn.s);
        sb_printf(&c->file_servers, ", -- line %d\n", k->line);
        free(bn.s);
    } else if (!strcmp(nm, "http_use_server_as_proxy")) {
        sb_printf(extra, "  use_server_as_proxy = %s, -- line %d\n", is_true(v) ? "true" : "false", k->line);
    } else if (!strcmp(nm, "connect_timeout") || !strcmp(nm, "idle_timeout") || !strcmp(nm, "max_retries")) {
        sb_puts(extra, "  ");
        field(extra, &first, nm, v ? v : "", 1);
        sb_printf(extra, ", -- line %d%s\n", k->line, strcmp(nm, "max_retries") ? " (milliseconds)" : "");
    } else if (in_list(no_effect, nm)) {
        note(c, k->line, "option %s has no effect here", nm);
    } else {
        note(c, k->line, "unknown option %s, ignored (as Tsung does)", nm);
    }
}

static void emit_config(ctx *c)
{
    sbuf *b = &c->out;
    node *opts = section(c, "options");
    const char *slash = strrchr(c->file, '/');
    sb_printf(b, "local T = ts.config { -- <servers>, <options>\n  file = ");
    lua_cstr(b, slash ? slash + 1 : c->file);
    sb_puts(b, ",\n");
    emit_servers(c);
    sbuf extra = {0};
    for (int i = 0; opts && i < opts->nkids && !c->failed; i++)
        if (!opts->kids[i]->drop) emit_option(c, opts->kids[i], &extra);
    if (extra.s) sb_puts(b, extra.s);
    free(extra.s);
    if (c->file_servers.s) sb_printf(b, "  file_servers = {\n%s  },\n", c->file_servers.s);
    sb_puts(b, "}\n\n");
}

typedef struct phase {
    double num, rate, inter, dur, max;
    int line, has_max;
} phase;

static int by_phase(const void *a, const void *b)
{
    const phase *x = a, *y = b;
    return x->num < y->num ? -1 : x->num > y->num;
}

/* One <arrivalphase>: its duration and the arrival of its <users>. */
static void read_phase(ctx *c, node *ap, phase *ph)
{
    memset(ph, 0, sizeof *ph);
    ph->line = ap->line;
    ph->num = positive(c, ap, "phase", 1);
    ph->dur = positive(c, ap, "duration", 0) * unit_secs(c, ap, attr(ap, "unit"));
    if (is_true(attr(ap, "wait_all_sessions_end")))
        note(c, ap->line, "wait_all_sessions_end has no effect here: the next phase starts on time");
    node *u = NULL;
    for (int i = 0; i < ap->nkids; i++) {
        node *k = ap->kids[i];
        if (!strcmp(k->name, "session_setup")) {
            note(c, k->line, "<session_setup> is not supported: this phase uses the sessions' own mix");
        } else if (u) {
            return fail(c, k->line, "<arrivalphase> has more than one <users>");
        } else {
            u = k;
        }
    }
    if (!u) return fail(c, ap->line, "<arrivalphase> needs <users>");
    const char *ar = attr(u, "arrivalrate"), *ia = attr(u, "interarrival");
    if (!!ar == !!ia) return fail(c, u->line, "<users> needs one of arrivalrate and interarrival");
    double us = unit_secs(c, u, attr(u, "unit"));
    if (ar)
        ph->rate = positive(c, u, "arrivalrate", 0) / us;
    else
        ph->inter = positive(c, u, "interarrival", 0) * us;
    if (attr(u, "maxnumber")) ph->max = positive(c, u, "maxnumber", 1), ph->has_max = 1;
}

static void emit_load(ctx *c)
{
    sbuf *b = &c->out;
    node *load = section(c, "load");
    phase *ph = calloc((size_t)load->nkids + 1, sizeof *ph);
    if (!ph) abort();
    int n = 0;
    for (int i = 0; i < load->nkids && !c->failed; i++) {
        node *k = load->kids[i];
        if (!strcmp(k->name, "user"))
            note(c, k->line, "<user session=\"%s\"> (one user at a set time) is not supported yet; left out",
                 attr(k, "session"));
        else
            read_phase(c, k, &ph[n++]);
    }
    qsort(ph, (size_t)n, sizeof *ph, by_phase);
    for (int i = 1; i < n && !c->failed; i++)
        if (ph[i].num == ph[i - 1].num) fail(c, ph[i].line, "phase %g is there twice", ph[i].num);
    if (!n && !c->failed) fail(c, load->line, "<load> has no <arrivalphase>: nothing to run");
    double loop = 0, limit = 0;
    if (attr(load, "loop")) loop = floor(positive(c, load, "loop", 1));
    if (attr(load, "duration"))
        limit = positive(c, load, "duration", 0) * unit_secs(c, load, attr(load, "unit"));
    if ((loop + 1) * n > TS_MAX_PHASES)
        fail(c, load->line, "loop=%g makes more than %d phases", loop, TS_MAX_PHASES);
    if (c->failed) return free(ph);
    sb_printf(b, "  load = parrot.open { phases = { -- <load> line %d\n", load->line);
    double at = 0;
    for (int r = 0; r <= (int)loop; r++) {
        if (loop > 0) sb_printf(b, "    -- run %d of %d (loop=%g)\n", r + 1, (int)loop + 1, loop);
        for (int i = 0; i < n; i++) {
            double d = ph[i].dur;
            if (limit > 0 && at + d > limit) d = limit - at;
            if (d <= 0) break;
            at += d;
            sb_puts(b, "    { ");
            if (ph[i].inter > 0)
                sb_puts(b, "interarrival = "), lua_num(b, ph[i].inter);
            else
                sb_puts(b, "rate = "), lua_num(b, ph[i].rate);
            sb_puts(b, ", duration = ");
            lua_num(b, d);
            if (ph[i].has_max) sb_puts(b, ", max = "), lua_num(b, ph[i].max);
            sb_printf(b, " }, -- <arrivalphase phase=\"%g\"> line %d\n", ph[i].num, ph[i].line);
        }
    }
    sb_puts(b, "  } },\n");
    if (limit > 0)
        note(c, load->line,
             "<load duration>: arrivals stop after %g s; users still running then finish (Tsung stops them)",
             limit);
    free(ph);
}

static void emit_block(ctx *c, node *n);

/* One element of a request's headers (0), cookies (1), dyn (2) or matches (3) list. */
static void emit_item(ctx *c, sbuf *b, int pass, node *k)
{
    int f = 1;
    sb_puts(b, "{ ");
    if (pass == 0) {
        lua_cstr(b, attr(k, "name"));
        sb_puts(b, ", ");
        lua_cstr(b, attr(k, "value") ? attr(k, "value") : "");
        if (attr(k, "encoding")) sb_puts(b, ", "), lua_cstr(b, attr(k, "encoding"));
    } else if (pass == 1) {
        static const char *const a[] = {"key", "value", "domain", "path"};
        for (int j = 0; j < 4; j++)
            field(b, &f, a[j], attr(k, a[j]), 0);
    } else if (pass == 2) {
        static const char *const a[] = {"name", "re", "xpath", "jsonpath", "header", "decode"};
        for (int j = 0; j < 6; j++)
            if (j != 5 || strcmp(attr(k, "decode") ? attr(k, "decode") : "false", "false"))
                field(b, &f, a[j], attr(k, a[j]), 0);
        if (attr(k, "regexp") && !attr(k, "re")) {
            field(b, &f, "re", attr(k, "regexp"), 0);
            note(c, k->line, "dyn_variable regexp= is read as re= (Tsung 1.7 ignores regexp=)");
        }
        if (attr(k, "pgsql_expr")) note(c, k->line, "dyn_variable pgsql_expr= is for PostgreSQL; ignored");
    } else {
        static const char *const a[] = {"do",           "when",      "max_loop",
                                        "sleep_loop",   "loop_back", "max_restart",
                                        "skip_headers", "name",      "apply_to_content"};
        size_t l;
        const char *t = text_trim(k, &l);
        sb_puts(b, "regex = ");
        lua_str(b, t, l);
        f = 0;
        for (int j = 0; j < 9; j++) {
            const char *v = attr(k, a[j]);
            if (v && !((j == 6 && !strcmp(v, "no")) || (j == 7 && !strcmp(v, "-")) ||
                       (j == 8 && !strcmp(v, "undefined"))))
                field(b, &f, a[j], v, j >= 2 && j <= 5);
        }
        if (is_true(attr(k, "subst"))) sb_puts(b, ", subst = true");
    }
    sb_puts(b, " }");
}

/* The Lua table of one <request>: its <http> attributes and children, dyn_variables, matches. */
static void emit_request(ctx *c, node *req)
{
    sbuf *b = &c->out;
    node *h = NULL;
    for (int i = 0; i < req->nkids; i++)
        if (!strcmp(req->kids[i]->name, "http")) h = req->kids[i];
    if (!h) return fail(c, req->line, "<request> needs <http>");
    int first = 1;
    const char *subst = attr(req, "subst"), *url = attr(h, "url");
    sbuf u = {0};
    if (c->o->server && (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8))) {
        const char *rest = strchr(strstr(url, "://") + 3, '/');
        sb_printf(&u, "%s://%s%s", strncmp(c->o->server, "https://", 8) ? "http" : "https",
                  c->o->server +
                      (strstr(c->o->server, "://") ? strstr(c->o->server, "://") - c->o->server + 3 : 0),
                  rest ? rest : "/");
        note(c, h->line, "%s now goes to %s (--server)", url, u.s);
        url = u.s;
    }
    ind(c);
    sb_puts(b, "s:request { ");
    field(b, &first, "method", attr(h, "method") ? attr(h, "method") : "GET", 0);
    field(b, &first, "url", url, 0);
    field(b, &first, "version", attr(h, "version") ? attr(h, "version") : "1.1", 0);
    free(u.s);
    if (subst && !strcmp(subst, "true"))
        sb_puts(b, ", subst = true");
    else if (subst && !strcmp(subst, "all_except_body"))
        field(b, &first, "subst", subst, 0);
    if (attr(req, "tag") && strcmp(attr(req, "tag"), "undefined"))
        field(b, &first, "tag", attr(req, "tag"), 0);
    field(b, &first, "contents", attr(h, "contents"), 0);
    if (attr(h, "contents_from_file")) {
        sbuf bn = {0};
        bundle_name(c, h, attr(h, "contents_from_file"), &bn);
        field(b, &first, "contents_from_file", bn.s, 0);
        free(bn.s);
    }
    field(b, &first, "content_type", attr(h, "content_type"), 0);
    field(b, &first, "if_modified_since", attr(h, "if_modified_since"), 0);
    sbuf lists = {0};
    for (int pass = 0; pass < 4; pass++) {
        static const char *const names[] = {"http_header", "add_cookie", "dyn_variable", "match"};
        static const char *const keys[] = {"headers", "cookies", "dyn", "matches"};
        node *src = pass < 2 ? h : req;
        sbuf items = {0};
        int n = 0;
        for (int i = 0; i < src->nkids; i++) {
            if (strcmp(src->kids[i]->name, names[pass])) continue;
            if (n++) {
                sb_puts(&items, ",\n");
                for (int s = 0; s <= c->indent + 1; s++)
                    sb_puts(&items, "  ");
            }
            emit_item(c, &items, pass, src->kids[i]);
        }
        if (!n) continue;
        for (int s = 0; s <= c->indent; s++)
            sb_puts(&lists, "  ");
        if (n == 1) {
            sb_printf(&lists, "%s = { %s },\n", keys[pass], items.s);
        } else {
            sb_printf(&lists, "%s = {\n", keys[pass]);
            for (int s = 0; s <= c->indent + 1; s++)
                sb_puts(&lists, "  ");
            sb_printf(&lists, "%s,\n", items.s);
            for (int s = 0; s <= c->indent; s++)
                sb_puts(&lists, "  ");
            sb_puts(&lists, "},\n");
        }
        free(items.s);
    }
    for (int i = 0; i < h->nkids; i++) {
        node *k = h->kids[i];
        int f = 1;
        if (!strcmp(k->name, "soap")) {
            field(b, &first, "soap_action", attr(k, "action"), 0);
        } else if (!strcmp(k->name, "www_authenticate") || !strcmp(k->name, "oauth")) {
            int oauth = k->name[0] == 'o';
            for (int s = 0; s <= c->indent; s++)
                sb_puts(&lists, "  ");
            sb_printf(&lists, "%s = { ", oauth ? "oauth" : "auth");
            if (!oauth) field(&lists, &f, "type", attr(k, "type") ? attr(k, "type") : "basic", 0);
            for (char **a = k->attr; a && a[0]; a += 2)
                if ((oauth || strcmp(a[0], "type")) && has_word(spec_of(k->name)->attrs, a[0]))
                    field(&lists, &f, a[0], a[1], 0);
            sb_puts(&lists, " },\n");
            if (oauth)
                note(c, k->line,
                     "<oauth> is passed on as request.oauth; the runtime does not sign requests yet");
        }
    }
    if (lists.s) {
        sb_printf(b, ", -- line %d\n%s", req->line, lists.s);
        ind(c);
        sb_puts(b, "}\n");
    } else {
        sb_printf(b, " } -- line %d\n", req->line);
    }
    free(lists.s);
}

/* The comparison of an <if>/<while>/<until>: "op", value (the first of eq neq gt gte lt lte). */
static const char *compare_of(ctx *c, node *n, const char **value)
{
    static const char *const ops[] = {"eq", "neq", "gt", "gte", "lt", "lte"};
    const char *op = NULL;
    for (int i = 0; i < 6; i++)
        if (attr(n, ops[i])) {
            if (op)
                note(c, n->line, "<%s> has both %s and %s: %s is used", n->name, op, ops[i], op);
            else
                op = ops[i], *value = attr(n, ops[i]);
        }
    if (!op) fail(c, n->line, "<%s> needs one of eq, neq, gt, gte, lt, lte", n->name);
    return op;
}

static void emit_thinktime(ctx *c, node *k)
{
    sbuf *b = &c->out;
    const char *v = attr(k, "value");
    if (v && (!strcmp(v, "wait_global") || !strcmp(v, "wait_bidi"))) {
        note(c, k->line, "thinktime %s (a barrier between users) has no effect here", v);
        ind(c), sb_printf(b, "-- <thinktime value=\"%s\"> line %d: no effect here\n", v, k->line);
        return;
    }
    int first = 1;
    ind(c), sb_puts(b, "s:thinktime { ");
    field(b, &first, "value", v, 1);
    if (is_true(attr(k, "random"))) sb_puts(b, first ? "random = true" : ", random = true"), first = 0;
    field(b, &first, "min", attr(k, "min"), 1);
    field(b, &first, "max", attr(k, "max"), 1);
    sb_printf(b, "%s} -- line %d\n", first ? "" : " ", k->line);
}

static void emit_setdynvars(ctx *c, node *k)
{
    static const char *const a[] = {"callback", "fileid", "order", "delimiter", "length",
                                    "start",    "end",    "from",  "jsonpath",  "value"};
    sbuf *b = &c->out;
    int first = 1;
    const char *t = attr(k, "sourcetype");
    if (!strcmp(t, "file")) {
        const char *id = attr(k, "fileid") ? attr(k, "fileid") : "default";
        sbuf want = {0};
        sb_puts(&want, "    [");
        lua_cstr(&want, id);
        sb_puts(&want, "] = ");
        int found = c->file_servers.s && strstr(c->file_servers.s, want.s);
        free(want.s);
        if (!found)
            return fail(c, k->line, "<setdynvars fileid=\"%s\">: no <option name=\"file_server\" id=\"%s\">",
                        id, id);
    }
    ind(c), sb_puts(b, "s:setdynvars { ");
    field(b, &first, "sourcetype", t, 0);
    for (int i = 0; i < 10; i++)
        field(b, &first, a[i], attr(k, a[i]), i >= 4 && i <= 6);
    sb_puts(b, ", vars = { ");
    for (int i = 0, n = 0; i < k->nkids; i++)
        if (!strcmp(k->kids[i]->name, "var"))
            sb_puts(b, n++ ? ", " : ""), lua_cstr(b, attr(k->kids[i], "name"));
    sb_printf(b, " } } -- line %d\n", k->line);
}

/* The body of a Lua function (transaction, repeat), whose loops count afresh. */
static void emit_function_body(ctx *c, node *k)
{
    int loops = c->loops;
    c->loops = 0;
    c->indent++, emit_block(c, k), c->indent--;
    c->loops = loops;
}

/* The body of a for/foreach loop and its end: each costs the function 4 of its 200 locals. */
static void emit_loop_body(ctx *c, node *k)
{
    if (++c->loops > 40) return fail(c, k->line, "more than 40 <for>/<foreach> loops inside one another");
    c->indent++, emit_block(c, k), c->indent--;
    c->loops--;
    ind(c), sb_puts(&c->out, "end\n");
}

/* <repeat>: the body, then the while/until child as the condition. */
static void emit_repeat(ctx *c, node *k)
{
    sbuf *b = &c->out;
    node *cond = NULL;
    for (int i = 0; i < k->nkids; i++)
        if (!strcmp(k->kids[i]->name, "while") || !strcmp(k->kids[i]->name, "until")) {
            if (cond) return fail(c, k->kids[i]->line, "<repeat> has more than one <while>/<until>");
            cond = k->kids[i];
        }
    int first = 1;
    ind(c), sb_puts(b, "s:repeat_loop({ ");
    field(b, &first, "name", attr(k, "name"), 0);
    field(b, &first, "max_repeat", attr(k, "max_repeat"), 1);
    sb_printf(b, " }, function() -- line %d\n", k->line);
    emit_function_body(c, k);
    ind(c);
    if (!cond) {
        note(c, k->line, "<repeat> without <while> or <until> runs once");
        sb_puts(b, "end)\n");
        return;
    }
    const char *v = NULL, *op = compare_of(c, cond, &v);
    if (!op) return;
    sb_printf(b, "end, { kind = \"%s\", var = ", cond->name);
    lua_cstr(b, attr(cond, "var"));
    sb_printf(b, ", op = \"%s\", value = ", op);
    lua_cstr(b, v);
    sb_printf(b, " }) -- <%s> line %d\n", cond->name, cond->line);
}

/* One statement of a session, transaction or loop body. */
static void emit_stmt(ctx *c, node *k)
{
    sbuf *b = &c->out;
    const char *nm = k->name;
    if (k->drop) {
        ind(c), sb_printf(b, "-- <%s> line %d left out (--skip-unsupported)\n", nm, k->line);
    } else if (!strcmp(nm, "request")) {
        emit_request(c, k);
    } else if (!strcmp(nm, "thinktime")) {
        emit_thinktime(c, k);
    } else if (!strcmp(nm, "setdynvars")) {
        emit_setdynvars(c, k);
    } else if (!strcmp(nm, "transaction")) {
        ind(c), sb_puts(b, "s:transaction("), lua_cstr(b, attr(k, "name"));
        sb_printf(b, ", function() -- line %d\n", k->line);
        emit_function_body(c, k);
        ind(c), sb_puts(b, "end)\n");
    } else if (!strcmp(nm, "for")) {
        ind(c), sb_puts(b, "for _ in s:for_loop("), lua_cstr(b, attr(k, "var"));
        sb_puts(b, ", "), lua_cstr(b, attr(k, "from"));
        sb_puts(b, ", "), lua_cstr(b, attr(k, "to"));
        sb_puts(b, ", "), lua_cstr(b, attr(k, "incr") ? attr(k, "incr") : "1");
        sb_printf(b, ") do -- line %d\n", k->line);
        emit_loop_body(c, k);
    } else if (!strcmp(nm, "foreach")) {
        int first = 1;
        ind(c), sb_puts(b, "for _ in s:foreach("), lua_cstr(b, attr(k, "name"));
        sb_puts(b, ", "), lua_cstr(b, attr(k, "in"));
        sb_puts(b, ", { ");
        field(b, &first, "include", attr(k, "include"), 0);
        field(b, &first, "exclude", attr(k, "exclude"), 0);
        sb_printf(b, "%s}) do -- line %d\n", first ? "" : " ", k->line);
        emit_loop_body(c, k);
    } else if (!strcmp(nm, "if")) {
        const char *v = NULL, *op = compare_of(c, k, &v);
        if (!op) return;
        ind(c), sb_puts(b, "if s:test("), lua_cstr(b, attr(k, "var"));
        sb_printf(b, ", \"%s\", ", op), lua_cstr(b, v);
        sb_printf(b, ") then -- line %d\n", k->line);
        c->indent++, emit_block(c, k), c->indent--;
        ind(c), sb_puts(b, "end\n");
    } else if (!strcmp(nm, "repeat")) {
        emit_repeat(c, k);
    } else if (!strcmp(nm, "abort")) {
        const char *t = attr(k, "type");
        ind(c),
            sb_printf(b, "s:abort(\"%s\") -- line %d\n", t && !strcmp(t, "all") ? "all" : "session", k->line);
    } else if (!strcmp(nm, "while") || !strcmp(nm, "until")) {
        if (strcmp(k->parent->name, "repeat")) note(c, k->line, "<%s> outside a <repeat> has no effect", nm);
    } else { /* change_type to ts_http, set_option, interaction */
        const char *what = attr(k, "name")     ? attr(k, "name")
                           : attr(k, "action") ? attr(k, "action")
                                               : attr(k, "new_type");
        note(c, k->line, "<%s %s> has no effect here", nm, what ? what : "");
        ind(c), sb_printf(b, "-- <%s> line %d: no effect here\n", nm, k->line);
    }
}

static void emit_block(ctx *c, node *n)
{
    if (c->indent > 80) return fail(c, n->line, "control flow nested too deeply");
    for (int i = 0; i < n->nkids && !c->failed; i++)
        emit_stmt(c, n->kids[i]);
}

/* The probability or weight of each HTTP session; probabilities must sum to 100 (as Tsung
 * wants) unless sessions were left out, when what is left keeps them as weights. */
static void emit_sessions(ctx *c)
{
    sbuf *b = &c->out;
    node *ss = section(c, "sessions");
    double sum = 0;
    int nprob = 0, nweight = 0, n = 0;
    for (int i = 0; i < ss->nkids; i++) {
        node *k = ss->kids[i];
        if (k->drop) continue;
        n++;
        const char *p = attr(k, "probability"), *w = attr(k, "weight");
        if (p && w) return fail(c, k->line, "<session> has both probability and weight");
        if (!p && !w) return fail(c, k->line, "<session> needs probability or weight");
        sum += positive(c, k, p ? "probability" : "weight", 1);
        nprob += !!p, nweight += !!w;
        if (attr(k, "persistent"))
            note(c, k->line, "persistent has no effect: a closed connection is always reopened");
        if (attr(k, "bidi")) note(c, k->line, "bidi has no effect here");
    }
    if (c->failed) return;
    if (!n) return fail(c, ss->line, "no HTTP <session> left to run");
    if (nprob && nweight) return fail(c, ss->line, "sessions mix probability and weight; use one");
    int as_weight = nweight || (c->dropped_sessions && fabs(sum - 100) > 0.05);
    if (nprob && !as_weight && fabs(sum - 100) > 0.05)
        return fail(c, ss->line, "session probabilities sum to %g, not 100", sum);
    if (sum <= 0) return fail(c, ss->line, "every session has probability 0: nothing to run");
    if (nprob && as_weight) note(c, ss->line, "the HTTP sessions left keep their probabilities as weights");
    sb_printf(b, "  sessions = { -- line %d\n", ss->line);
    c->indent = 3;
    for (int i = 0; i < ss->nkids && !c->failed; i++) {
        node *k = ss->kids[i];
        if (k->drop) continue;
        const char *p = attr(k, "probability") ? attr(k, "probability") : attr(k, "weight");
        double d = 0;
        num_of(p, &d);
        sb_puts(b, "    { name = ");
        lua_cstr(b, attr(k, "name"));
        sb_printf(b, ", %s = ", as_weight ? "weight" : "probability");
        lua_num(b, d);
        sb_printf(b, ", run = T:session(function(s) -- line %d\n", k->line);
        emit_block(c, k);
        sb_puts(b, "    end) },\n");
    }
    sb_puts(b, "  },\n");
}

static void emit_top(ctx *c)
{
    sbuf *b = &c->out;
    const char *base = strrchr(c->file, '/') ? strrchr(c->file, '/') + 1 : c->file;
    size_t bl = strlen(base);
    if (bl > 4 && !strcmp(base + bl - 4, ".xml")) bl -= 4;
    sb_puts(b, "-- ");
    for (size_t i = 0; i < strlen(base); i++)
        sb_add(b, (unsigned char)base[i] < 32 ? "?" : base + i, 1);
    sb_puts(b, ": a Tsung configuration as a parrot scenario (written by `parrot import tsung`).\n"
               "-- Each part names the line of the XML it comes from.\n"
               "local http = require \"parrot.http\" -- luacheck: ignore\n"
               "local ts = require \"parrot.tsung\"\n\n");
    node *cl = section(c, "clients");
    for (int i = 0; cl && i < cl->nkids; i++) {
        node *k = cl->kids[i];
        sb_printf(b, "-- <client> line %d:", k->line);
        for (char **a = k->attr; a && a[0]; a += 2) {
            sb_printf(b, " %s=", a[0]);
            for (const char *p = a[1]; *p && p - a[1] < 80; p++)
                sb_add(b, (unsigned char)*p < 32 ? "?" : p, 1);
        }
        sb_puts(b, " (a hint only: parrot splits the load over its workers)\n");
        if (k->nkids) note(c, k->line, "<client> source addresses (<ip>, <iprange>) are not used");
    }
    if (cl && cl->nkids)
        note(c, cl->line,
             "<clients> are hints only (maxusers, cpu, weight): parrot splits the load over its workers");
    node *mon = section(c, "monitoring");
    if (mon) note(c, mon->line, "<monitoring> is not done here (use the servers' own tools)");
    emit_config(c);
    if (c->failed) return;
    sb_puts(b, "return parrot.scenario {\n  name = ");
    lua_str(b, base, bl);
    sb_puts(b, ",\n");
    size_t files_at = b->len;
    emit_load(c);
    if (!c->failed) emit_sessions(c);
    if (c->failed) return;
    sb_puts(b, "}\n");
    if (c->nfiles) { /* the files list goes right after the name; sessions may have added some */
        sbuf f = {0};
        sb_puts(&f, "  files = { -- file_server and contents_from_file files travel in the bundle\n");
        for (int i = 0; i < c->nfiles; i++)
            sb_puts(&f, "    "), lua_cstr(&f, c->files[i]), sb_puts(&f, ",\n");
        sb_puts(&f, "  },\n");
        sbuf all = {0};
        sb_add(&all, b->s, files_at);
        sb_add(&all, f.s, f.len);
        sb_add(&all, b->s + files_at, b->len - files_at);
        free(b->s), free(f.s);
        *b = all;
    }
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
            if (!section(&c, *s)) fail(&c, c.root->line, "<tsung> needs <%s>", *s);
    }
    if (!c.failed) scan_unsupported(&c);
    if (!c.failed) emit_top(&c);
    node_free(c.root);
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
        sb_add(&b, chunk, n);
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
    }
    char *src, *notes, err[1024];
    if (tsung_import(path, &o, &src, &notes, err, sizeof err) != 0) {
        free(notes);
        lua_pushstring(L, err);
        return lua_error(L);
    }
    lua_pushstring(L, src);
    if (notes)
        lua_pushstring(L, notes);
    else
        lua_pushnil(L);
    free(src);
    free(notes);
    return 2;
}
