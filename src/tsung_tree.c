/* tsung_tree: the Tsung importer's element tree and what its parts share: growable strings, the
 * nodes libexpat builds, the elements and attributes the DTD allows (and the values it lists),
 * the messages (fail, note) that name a line of the XML, and the helpers that write Lua. Internal
 * to tsung.c, tsung_conf.c and tsung_lua.c. */
#include "tsung_tree.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* growable strings */

void tsung_sb_add(sbuf *b, const char *p, size_t n)
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
void tsung_sb_puts(sbuf *b, const char *s) { tsung_sb_add(b, s, strlen(s)); }

void tsung_sb_printf(sbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        tsung_sb_add(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) abort();
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    tsung_sb_add(b, big, (size_t)n);
    free(big);
}

/* ------------------------------------------------------------------------------------------ */
/* the element tree */

void tsung_node_free(node *n)
{
    if (!n) return;
    for (int i = 0; i < n->nkids; i++)
        tsung_node_free(n->kids[i]);
    for (char **a = n->attr; a && *a; a++)
        free(*a);
    free(n->attr);
    free(n->kids);
    free(n->text.s);
    free(n->name);
    free(n);
}

const char *tsung_attr(const node *n, const char *name)
{
    for (char **a = n->attr; a && a[0]; a += 2)
        if (!strcmp(a[0], name)) return a[1];
    return NULL;
}
int tsung_is_true(const char *v) { return v && !strcmp(v, "true"); }

/* The text of a node without surrounding white space (points into n->text, may be ""). */
const char *tsung_text_trim(node *n, size_t *len)
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
/* messages */

static void fail_v(ctx *c, int line, int col, const char *fmt, va_list ap)
{
    if (c->failed++) return;
    int n = line > 0 && col > 0 ? snprintf(c->err, c->errlen, "%s:%d:%d: ", c->file, line, col)
            : line > 0          ? snprintf(c->err, c->errlen, "%s:%d: ", c->file, line)
                                : snprintf(c->err, c->errlen, "%s: ", c->file);
    if (n < 0 || (size_t)n >= c->errlen) return;
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
}

void tsung_fail(ctx *c, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(c, line, c->fail_col, fmt, ap);
    va_end(ap);
}

void tsung_fail_at(ctx *c, const node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(c, n ? n->line : 0, n ? n->col : 0, fmt, ap);
    va_end(ap);
}

void tsung_note(ctx *c, int line, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        tsung_sb_printf(&c->notes, "%s:%d: %s\n", c->file, line, msg);
    else
        tsung_sb_printf(&c->notes, "%s: %s\n", c->file, msg);
}

/* ------------------------------------------------------------------------------------------ */
/* what the DTD allows (children in any order) */

#define FLOW                                                                                                 \
    "request thinktime transaction setdynvars for repeat if change_type foreach interaction abort "          \
    "set_option while until"
#define NONHTTP "jabber raw pgsql ldap mysql fs shell job websocket amqp mqtt"
#define COMPARE "var eq neq gt gte lt lte"

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

/* The values the DTD allows for attributes (a list of words), and the attributes Tsung reads as
 * numbers: "#int" a whole number (0, 1, 2...), "#num" a number (2, 0.5). */
typedef struct attr_rule {
    const char *elem, *attr, *allowed;
} attr_rule;

#define BOOL "true false"
#define SESSION_TYPES                                                                                        \
    "ts_jabber ts_http ts_raw ts_pgsql ts_ldap ts_webdav ts_mysql ts_fs ts_shell ts_job ts_websocket "       \
    "ts_amqp ts_mqtt"
#define HTTP_METHODS                                                                                         \
    "GET POST PUT PATCH DELETE HEAD PROPFIND PROPPATCH COPY MOVE LOCK UNLOCK MKCOL MKACTIVITY OPTIONS "      \
    "REPORT VERSION-CONTROL MERGE CHECKOUT"

static const attr_rule rules[] = {
    {"tsung", "dumptraffic", "true false light protocol protocol_local"},
    {"tsung", "backend", "text json rrdtool fullstats"},
    {"tsung", "loglevel", "emergency critical error warning notice info debug"},
    {"server", "type", "ssl tcp udp erlang ssl6 tcp6 udp6 bosh bosh_ssl websocket websocket_ssl tls"},
    {"server", "port", "#int"},
    {"server", "weight", "#num"},
    {"client", "type", "machine batch"},
    {"client", "batch", "torque pbs lsf oar"},
    {"client", "use_controller_vm", BOOL},
    {"ip", "scan", BOOL},
    {"monitor", "batch", BOOL},
    {"monitor", "type", "snmp erlang munin"},
    {"snmp", "version", "v1 v2"},
    /* millisecond: the DTD has it for phases and <user> only; here every unit may use it */
    {"load", "unit", "hour minute second millisecond"},
    {"load", "duration", "#int"},
    {"load", "loop", "#int"},
    {"arrivalphase", "unit", "hour minute second millisecond"},
    {"arrivalphase", "phase", "#int"},
    {"arrivalphase", "duration", "#int"},
    {"users", "unit", "hour minute second millisecond"},
    {"users", "maxnumber", "#int"},
    {"users", "interarrival", "#num"},
    {"users", "arrivalrate", "#num"},
    {"user", "unit", "hour minute second millisecond"},
    {"user", "start_time", "#num"},
    {"option", "override", BOOL},
    {"option", "random", BOOL},
    {"option", "type", "ts_http ts_jabber ts_pgsql ts_amqp"},
    {"set_option", "type", "ts_http ts_jabber ts_pgsql"},
    {"user_agent", "probability", "#num"},
    {"session", "persistent", BOOL},
    {"session", "type", SESSION_TYPES},
    {"session", "probability", "#num"},
    {"session", "weight", "#num"},
    {"session_setup", "probability", "#num"},
    {"session_setup", "weight", "#num"},
    {"abort", "type", "session all"},
    {"interaction", "action", "send receive"},
    {"change_type", "new_type", SESSION_TYPES},
    {"change_type", "store", BOOL},
    {"change_type", "restore", BOOL},
    {"change_type", "bidi", BOOL},
    {"request", "subst", "true false all_except_body"},
    {"match", "do", "continue loop abort restart log dump abort_test"},
    {"match", "when", "match nomatch"},
    {"match", "subst", BOOL},
    {"match", "max_loop", "#int"},
    {"match", "loop_back", "#int"},
    {"match", "max_restart", "#int"},
    {"match", "sleep_loop", "#int"},
    {"thinktime", "random", BOOL},
    {"thinktime", "min", "#int"},
    {"thinktime", "max", "#int"},
    {"http", "method", HTTP_METHODS},
    {"http", "version", "1.0 1.1"},
    {"dyn_variable", "decode", "html_entities false"},
    {"www_authenticate", "type", "basic digest"},
    {"oauth", "method", "HMAC-SHA1 PLAINTEXT RSA-SHA1"},
    {"setdynvars", "sourcetype",
     "random_string urandom_string random_number file erlang eval jsonpath value server"},
    {"setdynvars", "order", "iter random"},
    {"setdynvars", "length", "#int"},
    {"setdynvars", "start", "#int"},
    {"setdynvars", "end", "#int"},
    {"for", "incr", "#int"},
    {"repeat", "max_repeat", "#int"},
};

const char *tsung_attr_rule(const char *elem, const char *attr)
{
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (!strcmp(rules[i].elem, elem) && !strcmp(rules[i].attr, attr)) return rules[i].allowed;
    return NULL;
}

/* Is `w` one of the space-separated words of `list`? */
int tsung_has_word(const char *list, const char *w)
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

const elem_spec *tsung_spec_of(const char *name)
{
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        if (!strcmp(specs[i].name, name)) return &specs[i];
    return NULL;
}

int tsung_in_list(const char *const *l, const char *s)
{
    for (; s && *l; l++)
        if (!strcmp(*l, s)) return 1;
    return 0;
}

node *tsung_section(ctx *c, const char *name)
{
    for (int i = 0; i < c->root->nkids; i++)
        if (!strcmp(c->root->kids[i]->name, name)) return c->root->kids[i];
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Lua output helpers */

void tsung_lua_str(sbuf *b, const char *s, size_t n)
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
            tsung_sb_puts(b, "[");
            for (int i = 0; i < level; i++)
                tsung_sb_puts(b, "=");
            tsung_sb_puts(b, "[\n"); /* the first newline after the bracket is not part of the string */
            tsung_sb_add(b, s, n);
            tsung_sb_puts(b, close);
            return;
        }
    }
    tsung_sb_puts(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            tsung_sb_printf(b, "\\%c", ch);
        else if (ch == '\n')
            tsung_sb_puts(b, "\\n");
        else if (ch == '\t')
            tsung_sb_puts(b, "\\t");
        else if (ch < 32 || ch == 127)
            tsung_sb_printf(b, "\\%03d", ch);
        else
            tsung_sb_add(b, (const char *)&ch, 1);
    }
    tsung_sb_puts(b, "\"");
}
void tsung_lua_cstr(sbuf *b, const char *s) { tsung_lua_str(b, s, strlen(s)); }

/* A plain decimal number ("2", "0.5", "1e3"), as Tsung writes numbers. */
int tsung_num_of(const char *s, double *v)
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

void tsung_lua_num(sbuf *b, double d)
{
    char t[40];
    if (d == floor(d) && fabs(d) < 1e15) {
        snprintf(t, sizeof t, "%.0f", d);
    } else {
        snprintf(t, sizeof t, "%.15g", d);
        if (strtod(t, NULL) != d) snprintf(t, sizeof t, "%.17g", d);
    }
    tsung_sb_puts(b, t);
}

/* key = value, for an attribute that is there: a number when it reads as one, else a string. */
int tsung_field(sbuf *b, int *first, const char *key, const char *v, int numeric)
{
    if (!v) return 0;
    double d;
    tsung_sb_puts(b, *first ? "" : ", ");
    *first = 0;
    if (!strcmp(key, "do") || !strcmp(key, "end"))
        tsung_sb_printf(b, "[\"%s\"] = ", key);
    else
        tsung_sb_printf(b, "%s = ", key);
    if (numeric && tsung_num_of(v, &d))
        tsung_lua_num(b, d);
    else
        tsung_lua_cstr(b, v);
    return 1;
}

void tsung_ind(ctx *c)
{
    for (int i = 0; i < c->indent; i++)
        tsung_sb_puts(&c->out, "  ");
}

/* A positive number attribute or a failure naming it. */
double tsung_positive(ctx *c, node *n, const char *a, int zero_ok)
{
    double d = 0;
    const char *v = tsung_attr(n, a);
    if (!tsung_num_of(v, &d) || d < 0 || (!zero_ok && d == 0))
        tsung_fail_at(c, n, "<%s %s=\"%s\">: expected a %s number", n->name, a, v ? v : "",
                      zero_ok ? "non-negative" : "positive");
    return d;
}
