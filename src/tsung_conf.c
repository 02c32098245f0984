/* tsung_conf: the Lua writer's first part (pass 3 of the Tsung importer): <servers> and
 * <options> as `ts.config {...}`, <load> as `parrot.open {...}` (phases in order, the users each
 * starts as Tsung counts them, <user> elements, the load's duration), and the names that
 * file_server and contents_from_file files have in the scenario's bundle. */
#include "tsung_conf.h"

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
void tsung_bundle_name(ctx *c, node *n, const char *path, sbuf *name)
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

static double unit_secs(ctx *c, node *n, const char *u)
{
    if (!u || !strcmp(u, "second")) return 1;
    if (!strcmp(u, "minute")) return 60;
    if (!strcmp(u, "hour")) return 3600;
    if (!strcmp(u, "millisecond")) return 0.001;
    tsung_fail_at(c, n, "<%s unit=\"%s\">: unit must be hour, minute, second or millisecond", n->name, u);
    return 1;
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
        if (!port && (!tsung_num_of(tsung_attr(k, "port"), &p) || p <= 0 || p > 65535 || p != floor(p)))
            return tsung_fail_at(c, k, "<server port=\"%s\">: not a port number", tsung_attr(k, "port"));
        if (tsung_attr(k, "weight") && (!tsung_num_of(tsung_attr(k, "weight"), &w) || w < 0))
            return tsung_fail_at(c, k, "<server weight=\"%s\">: not a number", tsung_attr(k, "weight"));
        tsung_sb_puts(b, "    { host = ");
        tsung_lua_cstr(b, port ? host : tsung_attr(k, "host"));
        tsung_sb_printf(b, ", port = %d, type = \"%s\", weight = ", port ? port : (int)p,
                        (port ? tls : ssl) ? "ssl" : "tcp");
        tsung_lua_num(b, w);
        tsung_sb_printf(b, " }, -- line %d\n", k->line);
        c->tls_servers += port ? tls : ssl;
        n++;
    }
    tsung_sb_puts(b, "  },\n");
    if (!n) tsung_fail_at(c, srv, "no HTTP <server> to send requests to");
}

/* <option type="ts_http" name="user_agent">: each user picks one by probability (they must sum
 * to 100, as Tsung checks). */
static void emit_user_agents(ctx *c, node *k, sbuf *extra)
{
    tsung_sb_printf(extra, "  user_agents = { -- line %d\n", k->line);
    double sum = 0;
    for (int i = 0; i < k->nkids; i++) {
        node *ua = k->kids[i];
        size_t l;
        const char *t = tsung_text_trim(ua, &l);
        double p;
        if (!tsung_num_of(tsung_attr(ua, "probability"), &p) || p < 0)
            return tsung_fail_at(c, ua, "<user_agent probability=\"%s\">: not a number",
                                 tsung_attr(ua, "probability"));
        sum += p;
        tsung_sb_puts(extra, "    { probability = ");
        tsung_lua_num(extra, p);
        tsung_sb_puts(extra, ", value = ");
        tsung_lua_str(extra, t, l);
        tsung_sb_puts(extra, " },\n");
    }
    if (k->nkids && fabs(sum - 100) >= 0.05)
        return tsung_fail_at(c, k, "user_agent probabilities sum to %g, not 100", sum);
    tsung_sb_puts(extra, "  },\n");
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
        emit_user_agents(c, k, extra);
    } else if (!strcmp(nm, "thinktime")) {
        tsung_sb_puts(extra, "  thinktime = { ");
        tsung_field(extra, &first, "value", v, 1);
        if (tsung_attr(k, "random"))
            tsung_sb_printf(extra, "%srandom = %s", first ? "" : ", ",
                            tsung_is_true(tsung_attr(k, "random")) ? "true" : "false"),
                first = 0;
        tsung_field(extra, &first, "min", tsung_attr(k, "min"), 1);
        tsung_field(extra, &first, "max", tsung_attr(k, "max"), 1);
        tsung_sb_printf(extra, "%soverride = %s }, -- line %d\n", first ? "" : ", ",
                        tsung_is_true(tsung_attr(k, "override")) ? "true" : "false", k->line);
    } else if (!strcmp(nm, "file_server")) {
        const char *id = tsung_attr(k, "id") ? tsung_attr(k, "id") : "default";
        if (!v) return tsung_fail_at(c, k, "<option name=\"file_server\"> needs value (the file's path)");
        sbuf bn = {0};
        tsung_bundle_name(c, k, v, &bn);
        tsung_sb_puts(&c->file_servers, "    [");
        tsung_lua_cstr(&c->file_servers, id);
        tsung_sb_puts(&c->file_servers, "] = ");
        tsung_lua_cstr(&c->file_servers, bn.s);
        tsung_sb_printf(&c->file_servers, ", -- line %d\n", k->line);
        free(bn.s);
    } else if (!strcmp(nm, "http_use_server_as_proxy")) {
        tsung_sb_printf(extra, "  use_server_as_proxy = %s, -- line %d\n",
                        tsung_is_true(v) ? "true" : "false", k->line);
    } else if (!strcmp(nm, "idle_timeout") || !strcmp(nm, "max_retries") || !strcmp(nm, "retry_timeout") ||
               !strcmp(nm, "connect_timeout")) {
        tsung_sb_puts(extra, "  ");
        tsung_field(extra, &first, nm, v ? v : "", 1);
        tsung_sb_printf(extra, ", -- line %d%s\n", k->line,
                        strcmp(nm, "max_retries") ? " (milliseconds)" : "");
    } else if (tsung_in_list(no_effect, nm)) {
        tsung_note(c, k->line, "option %s has no effect here", nm);
    } else {
        tsung_note(c, k->line, "unknown option %s, ignored (as Tsung does)", nm);
    }
}

/* The load's duration in seconds (Tsung's hard stop of the whole test), 0 when it has none. */
static double load_limit(ctx *c)
{
    node *load = tsung_section(c, "load");
    if (!load || !tsung_attr(load, "duration")) return 0;
    return tsung_positive(c, load, "duration", 0) * unit_secs(c, load, tsung_attr(load, "unit"));
}

void tsung_emit_config(ctx *c)
{
    sbuf *b = &c->out;
    node *opts = tsung_section(c, "options");
    const char *slash = strrchr(c->file, '/');
    tsung_sb_printf(b, "local T = ts.config { -- <servers>, <options>\n  file = ");
    tsung_lua_cstr(b, slash ? slash + 1 : c->file);
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
        tsung_lua_num(b, limit);
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
    ph->num = tsung_positive(c, ap, "phase", 1);
    ph->dur = tsung_positive(c, ap, "duration", 0) * unit_secs(c, ap, tsung_attr(ap, "unit"));
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
        ph->rate = tsung_positive(c, u, "arrivalrate", 0) / us;
    else
        ph->inter = tsung_positive(c, u, "interarrival", 0) * us;
    if (tsung_attr(u, "maxnumber")) ph->max = tsung_positive(c, u, "maxnumber", 1), ph->has_max = 1;
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
        if (nm && (star ? !strncmp(nm, want, wl - 1) : !strcmp(nm, want)))
            found = ss->kids[i]->drop ? (found ? found : -1) : 1;
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
        double at = tsung_attr(k, "start_time") ? tsung_positive(c, k, "start_time", 1) : 0;
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
        tsung_lua_cstr(b, sn);
        tsung_sb_puts(b, ", start = ");
        tsung_lua_num(b, at);
        tsung_sb_printf(b, " }, -- <user> line %d\n", k->line);
    }
    if (any) tsung_sb_puts(b, "    }");
    return last;
}

/* One phase of the open model: its arrivals, `d` seconds of it (cut at the load's duration),
 * and the number of users it starts. */
static void emit_phase(ctx *c, const phase *p, double d)
{
    sbuf *b = &c->out;
    tsung_sb_puts(b, "    { ");
    if (p->inter > 0)
        tsung_sb_puts(b, "interarrival = "), tsung_lua_num(b, p->inter);
    else
        tsung_sb_puts(b, "rate = "), tsung_lua_num(b, p->rate);
    tsung_sb_puts(b, ", duration = ");
    tsung_lua_num(b, d);
    if (p->has_max) tsung_sb_puts(b, ", max = "), tsung_lua_num(b, p->max);
    tsung_sb_puts(b, ", count = ");
    tsung_lua_num(b, phase_count(p));
    tsung_sb_printf(b, " }, -- <arrivalphase phase=\"%g\"> line %d\n", p->num, p->n->line);
}

/* <load>: the phases in phase order (loop times over), cut at the load's duration, the <user>
 * elements, and when the load has a duration the time left after the phases for running users
 * (graceful_stop: Tsung stops every user at the load's duration). */
void tsung_emit_load(ctx *c)
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
    if (!n && !users && !c->failed)
        tsung_fail_at(c, load, "<load> needs <arrivalphase> or <user>: nothing to run");
    double loop = 0, limit = load_limit(c);
    if (tsung_attr(load, "loop")) loop = floor(tsung_positive(c, load, "loop", 1));
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
        tsung_lua_num(b, limit > end ? limit - end : 0);
        tsung_sb_printf(b, ", -- users still running at %g s (<load duration>) are stopped", limit);
    }
    tsung_sb_puts(b, "\n  },\n");
    free(ph);
}
