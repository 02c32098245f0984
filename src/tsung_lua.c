/* tsung_lua: pass 3 of the Tsung importer, the Lua writer. Walks the checked element tree and
 * writes the scenario on parrot.tsung (its shape is in tsung.h), each part with the XML line it
 * comes from; what it cannot express fails or becomes a note. */
#include "tsung_lua.h"

#include "tsung_tree.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TS_MAX_PHASES 10000

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
    tsung_sb_puts(b, t);
}

/* key = value, for an attribute that is there: a number when it reads as one, else a string. */
static int field(sbuf *b, int *first, const char *key, const char *v, int numeric)
{
    if (!v) return 0;
    double d;
    tsung_sb_puts(b, *first ? "" : ", ");
    *first = 0;
    if (!strcmp(key, "do") || !strcmp(key, "end"))
        tsung_sb_printf(b, "[\"%s\"] = ", key);
    else
        tsung_sb_printf(b, "%s = ", key);
    if (numeric && num_of(v, &d))
        lua_num(b, d);
    else
        lua_cstr(b, v);
    return 1;
}

static void ind(ctx *c)
{
    for (int i = 0; i < c->indent; i++)
        tsung_sb_puts(&c->out, "  ");
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

/* Do files a and b hold the same bytes? */
static int same_content(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    char x[8192], y[8192];
    while (same) {
        size_t n = fread(x, 1, sizeof x, fa), m = fread(y, 1, sizeof y, fb);
        same = n == m && !memcmp(x, y, n);
        if (n < sizeof x) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

/* For an absolute path outside the XML's directory: the longest tail of it ("x/in.csv" of
 * "/a/x/in.csv") that is a file under that directory, when it is that very file (same bytes) or
 * the path cannot be read here. That is how the file's name comes out the same when the XML is
 * imported again from a copy of the bundle (a worker's), where the file, inside the scenario's
 * directory on the queen, sits at its relative path. NULL when there is none. */
static const char *bundled_tail(ctx *c, const char *clean)
{
    struct stat st;
    char p[PATH_MAX * 2];
    for (const char *t = strchr(clean + 1, '/'); t; t = strchr(t + 1, '/')) {
        snprintf(p, sizeof p, "%s/%s", c->dir, t + 1);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && (access(clean, R_OK) != 0 || same_content(p, clean)))
            return t + 1;
    }
    return NULL;
}

/* The name a file_server/contents_from_file file has inside the bundle: its path relative to the
 * XML's directory when inside it, else its base name (as the bundle stores it); the path itself
 * joins `files`. An absolute path names the same file whichever directory the XML is read in. */
static void bundle_name(ctx *c, node *n, const char *path, sbuf *name)
{
    char joined[PATH_MAX * 2], real[PATH_MAX], clean[PATH_MAX * 2];
    if (path[0] == '/')
        snprintf(joined, sizeof joined, "%s", path);
    else
        snprintf(joined, sizeof joined, "%s/%s", c->dir, path);
    snprintf(clean, sizeof clean, "%s", joined);
    if (clean[0] == '/') path_clean(clean);
    const char *abs = realpath(joined, real) ? real : clean;
    size_t dl = strlen(c->dir);
    const char *base = strrchr(abs, '/'), *tail = NULL;
    if (!strncmp(abs, c->dir, dl) && abs[dl] == '/')
        tsung_sb_puts(name, abs + dl + 1);
    else if (path[0] == '/' && (tail = bundled_tail(c, clean)))
        tsung_sb_puts(name, tail);
    else
        tsung_sb_puts(name, base && base[1] ? base + 1 : abs);
    if (!tail && access(abs, R_OK) != 0)
        tsung_note(c, n->line, "%s: cannot read it (%s); the run needs it", path, strerror(errno));
    for (int i = 0; i < c->nfiles; i++)
        if (!strcmp(c->files[i], abs)) return;
    char **f = realloc(c->files, (size_t)(c->nfiles + 1) * sizeof *f);
    if (!f) abort();
    c->files = f;
    if (!(f[c->nfiles++] = strdup(abs))) abort();
}

/* ------------------------------------------------------------------------------------------ */
/* Pass 3: the Lua */

static double unit_secs(ctx *c, node *n, const char *u)
{
    if (!u || !strcmp(u, "second")) return 1;
    if (!strcmp(u, "minute")) return 60;
    if (!strcmp(u, "hour")) return 3600;
    if (!strcmp(u, "millisecond")) return 0.001;
    tsung_fail_at(c, n, "<%s unit=\"%s\">: unit must be hour, minute, second or millisecond", n->name, u);
    return 1;
}

/* A positive number attribute or a failure naming it. */
static double positive(ctx *c, node *n, const char *a, int zero_ok)
{
    double d = 0;
    const char *v = tsung_attr(n, a);
    if (!num_of(v, &d) || d < 0 || (!zero_ok && d == 0))
        tsung_fail_at(c, n, "<%s %s=\"%s\">: expected a %s number", n->name, a, v ? v : "",
                   zero_ok ? "non-negative" : "positive");
    return d;
}

static void emit_servers(ctx *c)
{
    node *srv = tsung_section(c, "servers");
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
            return tsung_fail(c, 0, "--server %s: expected HOST:PORT", c->o->server);
        if (*s == '[' && colon[-1] == ']')
            snprintf(host, sizeof host, "%.*s", (int)(colon - s - 2), s + 1);
        else
            snprintf(host, sizeof host, "%.*s", (int)(colon - s), s);
        port = (int)p;
        tsung_note(c, srv ? srv->line : 0, "every <server> is now %s:%d (%s)", host, port,
                   tls ? "ssl" : "tcp");
        snprintf(c->srv_host, sizeof c->srv_host, "%s", host);
        c->srv_port = port, c->srv_tls = tls;
    }
    tsung_sb_puts(b, "  servers = {\n");
    int n = 0;
    for (int i = 0; srv && i < srv->nkids; i++) {
        node *k = srv->kids[i];
        if (k->drop) continue;
        const char *t = tsung_attr(k, "type");
        int ssl = !strcmp(t, "ssl") || !strcmp(t, "ssl6") || !strcmp(t, "tls");
        double p = 0, w = 1;
        if (!port && (!num_of(tsung_attr(k, "port"), &p) || p <= 0 || p > 65535 || p != floor(p)))
            return tsung_fail_at(c, k, "<server port=\"%s\">: not a port number", tsung_attr(k, "port"));
        if (tsung_attr(k, "weight") && (!num_of(tsung_attr(k, "weight"), &w) || w < 0))
            return tsung_fail_at(c, k, "<server weight=\"%s\">: not a number", tsung_attr(k, "weight"));
        tsung_sb_puts(b, "    { host = ");
        lua_cstr(b, port ? host : tsung_attr(k, "host"));
        tsung_sb_printf(b, ", port = %d, type = \"%s\", weight = ", port ? port : (int)p,
                        (port ? tls : ssl) ? "ssl" : "tcp");
        lua_num(b, w);
        tsung_sb_printf(b, " }, -- line %d\n", k->line);
        c->tls_servers += port ? tls : ssl;
        n++;
    }
    tsung_sb_puts(b, "  },\n");
    if (!n) tsung_fail_at(c, srv, "no HTTP <server> to send requests to");
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
                                            "global_ack_timeout",
                                            "certificate",
                                            NULL};
    const char *nm = tsung_attr(k, "name"), *v = tsung_attr(k, "value");
    int first = 1;
    if (!strcmp(nm, "user_agent")) {
        tsung_sb_printf(extra, "  user_agents = { -- line %d\n", k->line);
        double sum = 0;
        for (int i = 0; i < k->nkids; i++) {
            node *ua = k->kids[i];
            size_t l;
            const char *t = tsung_text_trim(ua, &l);
            double p;
            if (!num_of(tsung_attr(ua, "probability"), &p) || p < 0)
                return tsung_fail_at(c, ua, "<user_agent probability=\"%s\">: not a number",
                                  tsung_attr(ua, "probability"));
            sum += p;
            tsung_sb_puts(extra, "    { probability = ");
            lua_num(extra, p);
            tsung_sb_puts(extra, ", value = ");
            lua_str(extra, t, l);
            tsung_sb_puts(extra, " },\n");
        }
        if (k->nkids && fabs(sum - 100) >= 0.05)
            return tsung_fail_at(c, k, "user_agent probabilities sum to %g, not 100", sum);
        tsung_sb_puts(extra, "  },\n");
    } else if (!strcmp(nm, "thinktime")) {
        tsung_sb_puts(extra, "  thinktime = { ");
        field(extra, &first, "value", v, 1);
        if (tsung_attr(k, "random"))
            tsung_sb_printf(extra, "%srandom = %s", first ? "" : ", ",
                            tsung_is_true(tsung_attr(k, "random")) ? "true" : "false"),
                first = 0;
        field(extra, &first, "min", tsung_attr(k, "min"), 1);
        field(extra, &first, "max", tsung_attr(k, "max"), 1);
        tsung_sb_printf(extra, "%soverride = %s }, -- line %d\n", first ? "" : ", ",
                        tsung_is_true(tsung_attr(k, "override")) ? "true" : "false", k->line);
    } else if (!strcmp(nm, "file_server")) {
        const char *id = tsung_attr(k, "id") ? tsung_attr(k, "id") : "default";
        if (!v) return tsung_fail_at(c, k, "<option name=\"file_server\"> needs value (the file's path)");
        sbuf bn = {0};
        bundle_name(c, k, v, &bn);
        tsung_sb_puts(&c->file_servers, "    [");
        lua_cstr(&c->file_servers, id);
        tsung_sb_puts(&c->file_servers, "] = ");
        lua_cstr(&c->file_servers, bn.s);
        tsung_sb_printf(&c->file_servers, ", -- line %d\n", k->line);
        free(bn.s);
    } else if (!strcmp(nm, "http_use_server_as_proxy")) {
        tsung_sb_printf(extra, "  use_server_as_proxy = %s, -- line %d\n",
                        tsung_is_true(v) ? "true" : "false", k->line);
    } else if (!strcmp(nm, "idle_timeout") || !strcmp(nm, "max_retries") || !strcmp(nm, "retry_timeout")) {
        tsung_sb_puts(extra, "  ");
        field(extra, &first, nm, v ? v : "", 1);
        tsung_sb_printf(extra, ", -- line %d%s\n", k->line,
                        strcmp(nm, "max_retries") ? " (milliseconds)" : "");
    } else if (!strcmp(nm, "connect_timeout")) {
        tsung_note(c, k->line, "option connect_timeout has no effect here: connections give up after 10 s");
    } else if (tsung_in_list(no_effect, nm)) {
        tsung_note(c, k->line, "option %s has no effect here", nm);
    } else {
        tsung_note(c, k->line, "unknown option %s, ignored (as Tsung does)", nm);
    }
}

static double load_limit(ctx *c);

static void emit_config(ctx *c)
{
    sbuf *b = &c->out;
    node *opts = tsung_section(c, "options");
    const char *slash = strrchr(c->file, '/');
    tsung_sb_printf(b, "local T = ts.config { -- <servers>, <options>\n  file = ");
    lua_cstr(b, slash ? slash + 1 : c->file);
    tsung_sb_puts(b, ",\n");
    emit_servers(c);
    sbuf extra = {0};
    for (int i = 0; opts && i < opts->nkids && !c->failed; i++)
        if (!opts->kids[i]->drop) emit_option(c, opts->kids[i], &extra);
    if (extra.s) tsung_sb_puts(b, extra.s);
    free(extra.s);
    if (c->file_servers.s) tsung_sb_printf(b, "  file_servers = {\n%s  },\n", c->file_servers.s);
    double limit = load_limit(c);
    if (limit > 0) {
        tsung_sb_puts(b, "  limit = ");
        lua_num(b, limit);
        tsung_sb_printf(b, ", -- <load duration> line %d: every user stops then (error_abort)\n",
                        tsung_section(c, "load")->line);
    }
    tsung_sb_puts(b, "}\n\n");
}

typedef struct phase {
    double num, rate, inter, dur, max; /* rate: users a second; inter: seconds (or 0) */
    node *n;
    int has_max;
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
    ph->n = ap;
    ph->num = positive(c, ap, "phase", 1);
    ph->dur = positive(c, ap, "duration", 0) * unit_secs(c, ap, tsung_attr(ap, "unit"));
    if (tsung_is_true(tsung_attr(ap, "wait_all_sessions_end")))
        tsung_note(c, ap->line, "wait_all_sessions_end has no effect here: the next phase starts on time");
    node *u = NULL;
    for (int i = 0; i < ap->nkids; i++) {
        node *k = ap->kids[i];
        if (!strcmp(k->name, "session_setup")) {
            tsung_note(c, k->line, "<session_setup> is not supported: this phase uses the sessions' own mix");
        } else if (u) {
            return tsung_fail_at(c, k, "<arrivalphase> has more than one <users>");
        } else {
            u = k;
        }
    }
    if (!u) return tsung_fail_at(c, ap, "<arrivalphase> needs <users>");
    const char *ar = tsung_attr(u, "arrivalrate"), *ia = tsung_attr(u, "interarrival");
    if (!!ar == !!ia) return tsung_fail_at(c, u, "<users> needs one of arrivalrate and interarrival");
    double us = unit_secs(c, u, tsung_attr(u, "unit"));
    if (ar)
        ph->rate = positive(c, u, "arrivalrate", 0) / us;
    else
        ph->inter = positive(c, u, "interarrival", 0) * us;
    if (tsung_attr(u, "maxnumber")) ph->max = positive(c, u, "maxnumber", 1), ph->has_max = 1;
}

/* The users a phase starts, as Tsung counts them (ts_config_server:get_client_cfg): the phase's
 * duration times its rate, at most maxnumber, rounded; arrivals are random, their number is not. */
static double phase_count(const phase *p)
{
    double n = p->dur * (p->inter > 0 ? 1 / p->inter : p->rate);
    if (p->has_max && p->max < n) n = p->max;
    return round(n);
}

/* Does a <user session=...> name a session to run (NAME, or a prefix with '*')? 0 none, 1 one
 * left to run, -1 only sessions left out (--skip-unsupported). */
static int session_named(ctx *c, const char *want)
{
    node *ss = tsung_section(c, "sessions");
    size_t wl = strlen(want);
    int star = wl && want[wl - 1] == '*', found = 0;
    for (int i = 0; ss && i < ss->nkids; i++) {
        const char *nm = tsung_attr(ss->kids[i], "name");
        if (nm && (star ? !strncmp(nm, want, wl - 1) : !strcmp(nm, want))) found = ss->kids[i]->drop ? (found ? found : -1) : 1;
    }
    return found;
}

/* <user session= start_time= unit=>: one user running that session (each matching one, for a
 * name ending in '*') at a set time, besides the arrivals; none after the load's duration
 * (`limit`, 0 for none). Returns the last start time. */
static double emit_users(ctx *c, node *load, double limit)
{
    sbuf *b = &c->out;
    int any = 0;
    double last = 0;
    for (int i = 0; i < load->nkids && !c->failed; i++) {
        node *k = load->kids[i];
        if (strcmp(k->name, "user")) continue;
        double at = tsung_attr(k, "start_time") ? positive(c, k, "start_time", 1) : 0;
        at *= unit_secs(c, k, tsung_attr(k, "unit"));
        const char *sn = tsung_attr(k, "session");
        int found = session_named(c, sn);
        if (!found) {
            tsung_fail_at(c, k, "<user session=\"%s\">: no <session> of that name", sn);
            break;
        }
        if (found < 0 || (limit > 0 && at >= limit)) {
            tsung_note(c, k->line, "<user session=\"%s\"> left out (%s)", sn,
                       found < 0 ? "its session is left out" : "it starts after the load's duration");
            continue;
        }
        if (at > last) last = at;
        if (!any++) tsung_sb_puts(b, ",\n    users = {\n");
        tsung_sb_puts(b, "      { session = ");
        lua_cstr(b, sn);
        tsung_sb_puts(b, ", start = ");
        lua_num(b, at);
        tsung_sb_printf(b, " }, -- <user> line %d\n", k->line);
    }
    if (any) tsung_sb_puts(b, "    }");
    return last;
}

/* The load's duration in seconds (Tsung's hard stop of the whole test), 0 when it has none. */
static double load_limit(ctx *c)
{
    node *load = tsung_section(c, "load");
    if (!load || !tsung_attr(load, "duration")) return 0;
    return positive(c, load, "duration", 0) * unit_secs(c, load, tsung_attr(load, "unit"));
}

/* One phase of the open model: its arrivals, `d` seconds of it (cut at the load's duration),
 * and the number of users it starts. */
static void emit_phase(ctx *c, const phase *p, double d)
{
    sbuf *b = &c->out;
    tsung_sb_puts(b, "    { ");
    if (p->inter > 0)
        tsung_sb_puts(b, "interarrival = "), lua_num(b, p->inter);
    else
        tsung_sb_puts(b, "rate = "), lua_num(b, p->rate);
    tsung_sb_puts(b, ", duration = ");
    lua_num(b, d);
    if (p->has_max) tsung_sb_puts(b, ", max = "), lua_num(b, p->max);
    tsung_sb_puts(b, ", count = ");
    lua_num(b, phase_count(p));
    tsung_sb_printf(b, " }, -- <arrivalphase phase=\"%g\"> line %d\n", p->num, p->n->line);
}

/* <load>: the phases in phase order (loop times over), cut at the load's duration, the <user>
 * elements, and when the load has a duration the time left after the phases for running users
 * (graceful_stop: Tsung stops every user at the load's duration). */
static void emit_load(ctx *c)
{
    sbuf *b = &c->out;
    node *load = tsung_section(c, "load");
    phase *ph = calloc((size_t)load->nkids + 1, sizeof *ph);
    if (!ph) abort();
    int n = 0, users = 0;
    for (int i = 0; i < load->nkids && !c->failed; i++) {
        node *k = load->kids[i];
        if (strcmp(k->name, "user"))
            read_phase(c, k, &ph[n++]);
        else
            users++;
    }
    qsort(ph, (size_t)n, sizeof *ph, by_phase);
    for (int i = 1; i < n && !c->failed; i++)
        if (ph[i].num == ph[i - 1].num) tsung_fail_at(c, ph[i].n, "phase %g is there twice", ph[i].num);
    if (!n && !users && !c->failed) tsung_fail_at(c, load, "<load> needs <arrivalphase> or <user>: nothing to run");
    double loop = 0, limit = load_limit(c);
    if (tsung_attr(load, "loop")) loop = floor(positive(c, load, "loop", 1));
    if ((loop + 1) * n > TS_MAX_PHASES)
        tsung_fail_at(c, load, "loop=%g makes more than %d phases", loop, TS_MAX_PHASES);
    if (c->failed) return free(ph);
    tsung_sb_printf(b, "  load = parrot.open { -- <load> line %d\n    phases = {\n", load->line);
    double at = 0;
    for (int r = 0; r <= (int)loop; r++) {
        if (loop > 0) tsung_sb_printf(b, "    -- run %d of %d (loop=%g)\n", r + 1, (int)loop + 1, loop);
        for (int i = 0; i < n; i++) {
            double d = ph[i].dur;
            if (limit > 0 && at + d > limit) d = limit - at;
            if (d <= 0) break;
            at += d;
            emit_phase(c, &ph[i], d);
        }
    }
    tsung_sb_puts(b, "    }");
    double last = emit_users(c, load, limit);
    if (limit > 0) {
        double end = last + 0.01 > at ? last + 0.01 : at;
        tsung_sb_puts(b, ",\n    graceful_stop = ");
        lua_num(b, limit > end ? limit - end : 0);
        tsung_sb_printf(b, ", -- users still running at %g s (<load duration>) are stopped", limit);
    }
    tsung_sb_puts(b, "\n  },\n");
    free(ph);
}

static void emit_block(ctx *c, node *n);

/* One element of a request's headers (0), cookies (1), dyn (2) or matches (3) list. */
static void emit_item(ctx *c, sbuf *b, int pass, node *k)
{
    int f = 1;
    tsung_sb_puts(b, "{ ");
    if (pass == 0) {
        lua_cstr(b, tsung_attr(k, "name"));
        tsung_sb_puts(b, ", ");
        lua_cstr(b, tsung_attr(k, "value") ? tsung_attr(k, "value") : "");
        if (tsung_attr(k, "encoding")) tsung_sb_puts(b, ", "), lua_cstr(b, tsung_attr(k, "encoding"));
    } else if (pass == 1) {
        static const char *const a[] = {"key", "value", "domain", "path"};
        for (int j = 0; j < 4; j++)
            field(b, &f, a[j], tsung_attr(k, a[j]), 0);
    } else if (pass == 2) {
        static const char *const a[] = {"name", "re", "xpath", "jsonpath", "header", "decode"};
        for (int j = 0; j < 6; j++)
            if (j != 5 || strcmp(tsung_attr(k, "decode") ? tsung_attr(k, "decode") : "false", "false"))
                field(b, &f, a[j], tsung_attr(k, a[j]), 0);
        if (tsung_attr(k, "regexp") && !tsung_attr(k, "re")) {
            field(b, &f, "re", tsung_attr(k, "regexp"), 0);
            tsung_note(c, k->line, "dyn_variable regexp= is read as re= (Tsung 1.7 ignores regexp=)");
        }
        if (tsung_attr(k, "pgsql_expr"))
            tsung_note(c, k->line, "dyn_variable pgsql_expr= is for PostgreSQL; ignored");
    } else {
        static const char *const a[] = {"do",           "when",      "max_loop",
                                        "sleep_loop",   "loop_back", "max_restart",
                                        "skip_headers", "name",      "apply_to_content"};
        size_t l;
        const char *t = tsung_text_trim(k, &l), *back = tsung_attr(k, "loop_back"), *d = tsung_attr(k, "do");
        if (d && !strcmp(d, "loop") && back && strspn(back, "0") != strlen(back))
            return tsung_fail_at(c, k,
                                 "<match do=\"loop\" loop_back=\"%s\">: jumping back to earlier actions is not "
                                 "supported (without loop_back the request itself is sent again)",
                                 back);
        tsung_sb_puts(b, "regex = ");
        lua_str(b, t, l);
        f = 0;
        for (int j = 0; j < 9; j++) {
            const char *v = tsung_attr(k, a[j]);
            if (v && !((j == 6 && !strcmp(v, "no")) || (j == 7 && !strcmp(v, "-")) ||
                       (j == 8 && !strcmp(v, "undefined"))))
                field(b, &f, a[j], v, j >= 2 && j <= 5);
        }
        if (tsung_is_true(tsung_attr(k, "subst"))) tsung_sb_puts(b, ", subst = true");
    }
    tsung_sb_puts(b, " }");
}

/* The Lua table of one <request>: its <http> attributes and children, dyn_variables, matches. */
static void emit_request(ctx *c, node *req)
{
    sbuf *b = &c->out;
    node *h = NULL;
    for (int i = 0; i < req->nkids; i++)
        if (!strcmp(req->kids[i]->name, "http")) h = req->kids[i];
    if (!h) return tsung_fail_at(c, req, "<request> needs <http>");
    int first = 1;
    const char *subst = tsung_attr(req, "subst"), *url = tsung_attr(h, "url");
    sbuf u = {0};
    if (c->o->server && (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8))) {
        const char *rest = strchr(strstr(url, "://") + 3, '/');
        tsung_sb_printf(
            &u, "%s://%s%s", strncmp(c->o->server, "https://", 8) ? "http" : "https",
            c->o->server + (strstr(c->o->server, "://") ? strstr(c->o->server, "://") - c->o->server + 3 : 0),
            rest ? rest : "/");
        tsung_note(c, h->line, "%s now goes to %s (--server)", url, u.s);
        url = u.s;
    }
    ind(c);
    tsung_sb_puts(b, "s:request { ");
    field(b, &first, "method", tsung_attr(h, "method") ? tsung_attr(h, "method") : "GET", 0);
    field(b, &first, "url", url, 0);
    field(b, &first, "version", tsung_attr(h, "version") ? tsung_attr(h, "version") : "1.1", 0);
    free(u.s);
    if (subst && !strcmp(subst, "true"))
        tsung_sb_puts(b, ", subst = true");
    else if (subst && !strcmp(subst, "all_except_body"))
        field(b, &first, "subst", subst, 0);
    if (tsung_attr(req, "tag") && strcmp(tsung_attr(req, "tag"), "undefined"))
        field(b, &first, "tag", tsung_attr(req, "tag"), 0);
    field(b, &first, "contents", tsung_attr(h, "contents"), 0);
    if (tsung_attr(h, "contents_from_file")) {
        sbuf bn = {0};
        bundle_name(c, h, tsung_attr(h, "contents_from_file"), &bn);
        field(b, &first, "contents_from_file", bn.s, 0);
        free(bn.s);
    }
    field(b, &first, "content_type", tsung_attr(h, "content_type"), 0);
    field(b, &first, "if_modified_since", tsung_attr(h, "if_modified_since"), 0);
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
                tsung_sb_puts(&items, ",\n");
                for (int s = 0; s <= c->indent + 1; s++)
                    tsung_sb_puts(&items, "  ");
            }
            emit_item(c, &items, pass, src->kids[i]);
        }
        if (!n) continue;
        for (int s = 0; s <= c->indent; s++)
            tsung_sb_puts(&lists, "  ");
        if (n == 1) {
            tsung_sb_printf(&lists, "%s = { %s },\n", keys[pass], items.s);
        } else {
            tsung_sb_printf(&lists, "%s = {\n", keys[pass]);
            for (int s = 0; s <= c->indent + 1; s++)
                tsung_sb_puts(&lists, "  ");
            tsung_sb_printf(&lists, "%s,\n", items.s);
            for (int s = 0; s <= c->indent; s++)
                tsung_sb_puts(&lists, "  ");
            tsung_sb_puts(&lists, "},\n");
        }
        free(items.s);
    }
    for (int i = 0; i < h->nkids; i++) {
        node *k = h->kids[i];
        int f = 1;
        if (!strcmp(k->name, "soap")) {
            field(b, &first, "soap_action", tsung_attr(k, "action"), 0);
        } else if (!strcmp(k->name, "www_authenticate") || !strcmp(k->name, "oauth")) {
            int oauth = k->name[0] == 'o';
            for (int s = 0; s <= c->indent; s++)
                tsung_sb_puts(&lists, "  ");
            tsung_sb_printf(&lists, "%s = { ", oauth ? "oauth" : "auth");
            if (!oauth) field(&lists, &f, "type", tsung_attr(k, "type") ? tsung_attr(k, "type") : "basic", 0);
            for (char **a = k->attr; a && a[0]; a += 2)
                if ((oauth || strcmp(a[0], "type")) && tsung_has_word(tsung_spec_of(k->name)->attrs, a[0]))
                    field(&lists, &f, a[0], a[1], 0);
            tsung_sb_puts(&lists, " },\n");
            if (oauth)
                tsung_note(c, k->line,
                           "<oauth> is passed on as request.oauth; the runtime does not sign requests yet");
        }
    }
    if (lists.s) {
        tsung_sb_printf(b, ", -- line %d\n%s", req->line, lists.s);
        ind(c);
        tsung_sb_puts(b, "}\n");
    } else {
        tsung_sb_printf(b, " } -- line %d\n", req->line);
    }
    free(lists.s);
}

/* The comparison of an <if>/<while>/<until>: "op", value (the first of eq neq gt gte lt lte). */
static const char *compare_of(ctx *c, node *n, const char **value)
{
    static const char *const ops[] = {"eq", "neq", "gt", "gte", "lt", "lte"};
    const char *op = NULL;
    for (int i = 0; i < 6; i++)
        if (tsung_attr(n, ops[i])) {
            if (op)
                tsung_note(c, n->line, "<%s> has both %s and %s: %s is used", n->name, op, ops[i], op);
            else
                op = ops[i], *value = tsung_attr(n, ops[i]);
        }
    if (!op) tsung_fail_at(c, n, "<%s> needs one of eq, neq, gt, gte, lt, lte", n->name);
    return op;
}

static void emit_thinktime(ctx *c, node *k)
{
    sbuf *b = &c->out;
    const char *v = tsung_attr(k, "value");
    if (v && (!strcmp(v, "wait_global") || !strcmp(v, "wait_bidi"))) {
        tsung_note(c, k->line, "thinktime %s (a barrier between users) has no effect here", v);
        ind(c), tsung_sb_printf(b, "-- <thinktime value=\"%s\"> line %d: no effect here\n", v, k->line);
        return;
    }
    const char *r = tsung_attr(k, "random"), *lo = tsung_attr(k, "min"), *hi = tsung_attr(k, "max");
    double d = 0, dlo = 0, dhi = 0;
    if (v && strncmp(v, "%%", 2) && (!num_of(v, &d) || d <= 0))
        return tsung_fail_at(c, k, "<thinktime value=\"%s\">: expected a number of seconds above 0", v);
    if ((lo || hi) && (v || !lo || !hi))
        return tsung_fail_at(c, k, "<thinktime>: give value, or min and max (not both)");
    if (lo && (!num_of(lo, &dlo) || !num_of(hi, &dhi) || dlo <= 0 || dhi <= dlo))
        return tsung_fail_at(c, k, "<thinktime min=\"%s\" max=\"%s\">: expected 0 < min < max", lo, hi);
    int first = 1;
    ind(c), tsung_sb_puts(b, "s:thinktime { ");
    field(b, &first, "value", v, 1);
    if (r) /* random="false" too: without it the element takes the default's kind */
        tsung_sb_printf(b, "%srandom = %s", first ? "" : ", ", tsung_is_true(r) ? "true" : "false"), first = 0;
    field(b, &first, "min", tsung_attr(k, "min"), 1);
    field(b, &first, "max", tsung_attr(k, "max"), 1);
    tsung_sb_printf(b, "%s} -- line %d\n", first ? "" : " ", k->line);
}

static void emit_setdynvars(ctx *c, node *k)
{
    static const char *const a[] = {"callback", "fileid", "order", "delimiter", "length",
                                    "start",    "end",    "from",  "jsonpath",  "value"};
    sbuf *b = &c->out;
    int first = 1;
    const char *t = tsung_attr(k, "sourcetype");
    if (!strcmp(t, "file")) {
        const char *id = tsung_attr(k, "fileid") ? tsung_attr(k, "fileid") : "default";
        sbuf want = {0};
        tsung_sb_puts(&want, "    [");
        lua_cstr(&want, id);
        tsung_sb_puts(&want, "] = ");
        int found = c->file_servers.s && strstr(c->file_servers.s, want.s);
        free(want.s);
        if (!found)
            return tsung_fail_at(c, k, "<setdynvars fileid=\"%s\">: no <option name=\"file_server\" id=\"%s\">",
                                 id, id);
    }
    ind(c), tsung_sb_puts(b, "s:setdynvars { ");
    field(b, &first, "sourcetype", t, 0);
    for (int i = 0; i < 10; i++)
        field(b, &first, a[i], tsung_attr(k, a[i]), i >= 4 && i <= 6);
    tsung_sb_puts(b, ", vars = { ");
    for (int i = 0, n = 0; i < k->nkids; i++)
        if (!strcmp(k->kids[i]->name, "var"))
            tsung_sb_puts(b, n++ ? ", " : ""), lua_cstr(b, tsung_attr(k->kids[i], "name"));
    tsung_sb_printf(b, " } } -- line %d\n", k->line);
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
    if (++c->loops > 40)
        return tsung_fail_at(c, k, "more than 40 <for>/<foreach> loops inside one another");
    c->indent++, emit_block(c, k), c->indent--;
    c->loops--;
    ind(c), tsung_sb_puts(&c->out, "end\n");
}

/* <repeat>: the body, then the while/until child as the condition. */
static void emit_repeat(ctx *c, node *k)
{
    sbuf *b = &c->out;
    node *cond = NULL;
    for (int i = 0; i < k->nkids; i++)
        if (!strcmp(k->kids[i]->name, "while") || !strcmp(k->kids[i]->name, "until")) {
            if (cond) return tsung_fail_at(c, k->kids[i], "<repeat> has more than one <while>/<until>");
            cond = k->kids[i];
        }
    int first = 1;
    ind(c), tsung_sb_puts(b, "s:repeat_loop({ ");
    field(b, &first, "name", tsung_attr(k, "name"), 0);
    field(b, &first, "max_repeat", tsung_attr(k, "max_repeat"), 1);
    tsung_sb_printf(b, " }, function() -- line %d\n", k->line);
    emit_function_body(c, k);
    ind(c);
    if (!cond) {
        tsung_note(c, k->line, "<repeat> without <while> or <until> runs once");
        tsung_sb_puts(b, "end)\n");
        return;
    }
    const char *v = NULL, *op = compare_of(c, cond, &v);
    if (!op) return;
    tsung_sb_printf(b, "end, { kind = \"%s\", var = ", cond->name);
    lua_cstr(b, tsung_attr(cond, "var"));
    tsung_sb_printf(b, ", op = \"%s\", value = ", op);
    lua_cstr(b, v);
    tsung_sb_printf(b, " }) -- <%s> line %d\n", cond->name, cond->line);
}

/* <change_type new_type="ts_http" host= port= server_type=>: later requests go to that server
 * (--server points it elsewhere too); store/restore keep or bring back a session's state. */
static void emit_change_type(ctx *c, node *k)
{
    sbuf *b = &c->out;
    int first = 1;
    char port[16];
    snprintf(port, sizeof port, "%d", c->srv_port);
    const char *t = tsung_attr(k, "server_type");
    ind(c), tsung_sb_puts(b, "s:change_type { ");
    field(b, &first, "host", c->srv_port ? c->srv_host : tsung_attr(k, "host"), 0);
    field(b, &first, "port", c->srv_port ? port : tsung_attr(k, "port"), 1);
    field(b, &first, "server_type", c->srv_port ? (c->srv_tls ? "ssl" : "tcp") : t, 0);
    if (tsung_is_true(tsung_attr(k, "store"))) tsung_sb_puts(b, ", store = true");
    tsung_sb_printf(b, " } -- line %d\n", k->line);
    if (c->srv_port) tsung_note(c, k->line, "<change_type> now goes to %s:%d (--server)", c->srv_host, c->srv_port);
    if (tsung_is_true(tsung_attr(k, "restore")))
        tsung_note(c, k->line, "<change_type restore=\"true\">: the user goes on with its current cookies");
    if (strcmp(t, "tcp") && strcmp(t, "ssl") && strcmp(t, "tcp6") && strcmp(t, "ssl6") && strcmp(t, "tls"))
        tsung_fail_at(c, k, "<change_type server_type=\"%s\">: expected tcp or ssl", t);
    else if (!strncmp(t, "ssl", 3) || !strcmp(t, "tls"))
        c->tls_servers++;
}

/* Is `tag` one of the tags -x leaves out ("a,b")? */
static int excluded(ctx *c, const char *tag)
{
    const char *list = c->o->exclude_tags;
    size_t tl = tag ? strlen(tag) : 0;
    for (const char *p = list; tl && p && *p;) {
        size_t l = strcspn(p, ",");
        if (l == tl && !memcmp(p, tag, l)) return 1;
        p += l + (p[l] == ',');
    }
    return 0;
}

/* One statement of a session, transaction or loop body. */
static void emit_stmt(ctx *c, node *k)
{
    sbuf *b = &c->out;
    const char *nm = k->name;
    if (k->drop) {
        ind(c), tsung_sb_printf(b, "-- <%s> line %d left out (--skip-unsupported)\n", nm, k->line);
    } else if (!strcmp(nm, "request") && excluded(c, tsung_attr(k, "tag"))) {
        ind(c), tsung_sb_printf(b, "-- <request> line %d left out (its tag is excluded with -x)\n", k->line);
    } else if (!strcmp(nm, "request")) {
        emit_request(c, k);
    } else if (!strcmp(nm, "thinktime")) {
        emit_thinktime(c, k);
    } else if (!strcmp(nm, "setdynvars")) {
        emit_setdynvars(c, k);
    } else if (!strcmp(nm, "transaction")) {
        ind(c), tsung_sb_puts(b, "s:transaction("), lua_cstr(b, tsung_attr(k, "name"));
        tsung_sb_printf(b, ", function() -- line %d\n", k->line);
        emit_function_body(c, k);
        ind(c), tsung_sb_puts(b, "end)\n");
    } else if (!strcmp(nm, "for")) {
        ind(c), tsung_sb_puts(b, "for _ in s:for_loop("), lua_cstr(b, tsung_attr(k, "var"));
        tsung_sb_puts(b, ", "), lua_cstr(b, tsung_attr(k, "from"));
        tsung_sb_puts(b, ", "), lua_cstr(b, tsung_attr(k, "to"));
        tsung_sb_puts(b, ", "), lua_cstr(b, tsung_attr(k, "incr") ? tsung_attr(k, "incr") : "1");
        tsung_sb_printf(b, ") do -- line %d\n", k->line);
        emit_loop_body(c, k);
    } else if (!strcmp(nm, "foreach")) {
        int first = 1;
        ind(c), tsung_sb_puts(b, "for _ in s:foreach("), lua_cstr(b, tsung_attr(k, "name"));
        tsung_sb_puts(b, ", "), lua_cstr(b, tsung_attr(k, "in"));
        tsung_sb_puts(b, ", { ");
        field(b, &first, "include", tsung_attr(k, "include"), 0);
        field(b, &first, "exclude", tsung_attr(k, "exclude"), 0);
        tsung_sb_printf(b, "%s}) do -- line %d\n", first ? "" : " ", k->line);
        emit_loop_body(c, k);
    } else if (!strcmp(nm, "if")) {
        const char *v = NULL, *op = compare_of(c, k, &v);
        if (!op) return;
        ind(c), tsung_sb_puts(b, "if s:test("), lua_cstr(b, tsung_attr(k, "var"));
        tsung_sb_printf(b, ", \"%s\", ", op), lua_cstr(b, v);
        tsung_sb_printf(b, ") then -- line %d\n", k->line);
        c->indent++, emit_block(c, k), c->indent--;
        ind(c), tsung_sb_puts(b, "end\n");
    } else if (!strcmp(nm, "repeat")) {
        emit_repeat(c, k);
    } else if (!strcmp(nm, "abort")) {
        const char *t = tsung_attr(k, "type");
        ind(c), tsung_sb_printf(b, "s:abort(\"%s\") -- line %d\n", t && !strcmp(t, "all") ? "all" : "session",
                                k->line);
    } else if (!strcmp(nm, "change_type")) {
        emit_change_type(c, k);
    } else if (!strcmp(nm, "while") || !strcmp(nm, "until")) {
        if (strcmp(k->parent->name, "repeat"))
            tsung_note(c, k->line, "<%s> outside a <repeat> has no effect", nm);
    } else { /* set_option, interaction */
        const char *what = tsung_attr(k, "name")     ? tsung_attr(k, "name")
                           : tsung_attr(k, "action") ? tsung_attr(k, "action")
                                                     : tsung_attr(k, "new_type");
        tsung_note(c, k->line, "<%s %s> has no effect here", nm, what ? what : "");
        ind(c), tsung_sb_printf(b, "-- <%s> line %d: no effect here\n", nm, k->line);
    }
}

static void emit_block(ctx *c, node *n)
{
    if (c->indent > 80) return tsung_fail_at(c, n, "control flow nested too deeply");
    for (int i = 0; i < n->nkids && !c->failed; i++)
        emit_stmt(c, n->kids[i]);
}

/* The probability or weight of each HTTP session; probabilities must sum to 100 (as Tsung
 * wants) unless sessions were left out, when what is left keeps them as weights. */
static void emit_sessions(ctx *c)
{
    sbuf *b = &c->out;
    node *ss = tsung_section(c, "sessions");
    double sum = 0;
    int nprob = 0, nweight = 0, n = 0;
    for (int i = 0; i < ss->nkids; i++) {
        node *k = ss->kids[i];
        if (k->drop) continue;
        n++;
        const char *p = tsung_attr(k, "probability"), *w = tsung_attr(k, "weight");
        if (p && w) return tsung_fail_at(c, k, "<session> has both probability and weight");
        if (!p && !w) return tsung_fail_at(c, k, "<session> needs probability or weight");
        sum += positive(c, k, p ? "probability" : "weight", 1);
        nprob += !!p, nweight += !!w;
        if (tsung_attr(k, "persistent"))
            tsung_note(c, k->line, "persistent has no effect: a closed connection is always reopened");
        if (tsung_attr(k, "bidi")) tsung_note(c, k->line, "bidi has no effect here");
    }
    if (c->failed) return;
    if (!n) return tsung_fail_at(c, ss, "no HTTP <session> left to run");
    if (nprob && nweight) return tsung_fail_at(c, ss, "sessions mix probability and weight; use one");
    int as_weight = nweight || (c->dropped_sessions && fabs(sum - 100) > 0.05);
    if (nprob && !as_weight && fabs(sum - 100) > 0.05)
        return tsung_fail_at(c, ss, "session probabilities sum to %g, not 100", sum);
    if (sum <= 0) return tsung_fail_at(c, ss, "every session has probability 0: nothing to run");
    if (nprob && as_weight)
        tsung_note(c, ss->line, "the HTTP sessions left keep their probabilities as weights");
    tsung_sb_printf(b, "  sessions = { -- line %d\n", ss->line);
    c->indent = 3;
    for (int i = 0; i < ss->nkids && !c->failed; i++) {
        node *k = ss->kids[i];
        if (k->drop) continue;
        const char *p = tsung_attr(k, "probability") ? tsung_attr(k, "probability") : tsung_attr(k, "weight");
        double d = 0;
        num_of(p, &d);
        tsung_sb_puts(b, "    { name = ");
        lua_cstr(b, tsung_attr(k, "name"));
        tsung_sb_printf(b, ", %s = ", as_weight ? "weight" : "probability");
        lua_num(b, d);
        tsung_sb_printf(b, ", run = T:session(function(s) -- line %d\n", k->line);
        emit_block(c, k);
        tsung_sb_puts(b, "    end) },\n");
    }
    tsung_sb_puts(b, "  },\n");
}

/* Pass 3: the whole scenario into c->out, or c->failed with the reason in c->err. */
void tsung_lua_write(ctx *c)
{
    sbuf *b = &c->out;
    const char *base = strrchr(c->file, '/') ? strrchr(c->file, '/') + 1 : c->file;
    size_t bl = strlen(base);
    if (bl > 4 && !strcmp(base + bl - 4, ".xml")) bl -= 4;
    tsung_sb_puts(b, "-- ");
    for (size_t i = 0; i < strlen(base); i++)
        tsung_sb_add(b, (unsigned char)base[i] < 32 ? "?" : base + i, 1);
    tsung_sb_puts(b, ": a Tsung configuration as a parrot scenario (written by `parrot import tsung`).\n"
                     "-- Each part names the line of the XML it comes from.\n"
                     "local http = require \"parrot.http\" -- luacheck: ignore\n"
                     "local ts = require \"parrot.tsung\"\n\n");
    node *cl = tsung_section(c, "clients");
    for (int i = 0; cl && i < cl->nkids; i++) {
        node *k = cl->kids[i];
        tsung_sb_printf(b, "-- <client> line %d:", k->line);
        for (char **a = k->attr; a && a[0]; a += 2) {
            tsung_sb_printf(b, " %s=", a[0]);
            for (const char *p = a[1]; *p && p - a[1] < 80; p++)
                tsung_sb_add(b, (unsigned char)*p < 32 ? "?" : p, 1);
        }
        tsung_sb_puts(b, " (a hint only: parrot splits the load over its workers)\n");
        if (k->nkids) tsung_note(c, k->line, "<client> source addresses (<ip>, <iprange>) are not used");
    }
    if (cl && cl->nkids)
        tsung_note(
            c, cl->line,
            "<clients> are hints only (maxusers, cpu, weight): parrot splits the load over its workers");
    node *mon = tsung_section(c, "monitoring");
    if (mon) tsung_note(c, mon->line, "<monitoring> is not done here (use the servers' own tools)");
    emit_config(c);
    if (c->failed) return;
    tsung_sb_puts(b, "return parrot.scenario {\n  name = ");
    lua_str(b, base, bl);
    tsung_sb_puts(b, ",\n");
    size_t files_at = b->len;
    emit_load(c);
    if (!c->failed) emit_sessions(c);
    if (c->failed) return;
    tsung_sb_puts(b, "}\n");
    /* what the sessions found goes right after the name: the files, certificates not checked */
    sbuf f = {0};
    if (c->tls_servers) {
        tsung_sb_puts(&f, "  insecure = true, -- servers of type ssl: Tsung 1.7 does not check certificates\n");
        tsung_note(c, tsung_section(c, "servers")->line,
                   "type=\"ssl\": certificates are not checked (Tsung 1.7 does not check them)");
    }
    if (c->nfiles) {
        tsung_sb_puts(&f, "  files = { -- file_server and contents_from_file files travel in the bundle\n");
        for (int i = 0; i < c->nfiles; i++)
            tsung_sb_puts(&f, "    "), lua_cstr(&f, c->files[i]), tsung_sb_puts(&f, ",\n");
        tsung_sb_puts(&f, "  },\n");
    }
    if (f.len) {
        sbuf all = {0};
        tsung_sb_add(&all, b->s, files_at);
        tsung_sb_add(&all, f.s, f.len);
        tsung_sb_add(&all, b->s + files_at, b->len - files_at);
        free(b->s);
        *b = all;
    }
    free(f.s);
}
