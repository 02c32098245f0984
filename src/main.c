/* main: the `parrot` command line — subcommands and their options. Long options take their
 * value as the next argument or after '=' (`--vus 10`, `--vus=10`); every mistake ends in one
 * line naming the option and exit code 2, before any load. */
#include <ctype.h>
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "curve.h"
#include "luart.h"
#include "queen.h"
#include "report.h"
#include "worker.h"
#include "target.h"
#include "tsung.h"

#define PARROT_VERSION "0.1.0"

/* ---- option reading ---- */

static int bad_option(const char *cmd, const char *what, const char *arg)
{
    fprintf(stderr, "parrot %s: %s '%s' (parrot help %s)\n", cmd, what, arg, cmd);
    return 2;
}

/* One argument read as an option: `name` is "--vus" also when it was written "--vus=10", and
 * `inl` then points at "10". Short options (-e, -H) never split at '='. */
typedef struct opt {
    char name[64];
    const char *inl; /* the value after '=', or NULL */
    const char *cmd; /* for messages: "run", "queen", ... */
} opt;

static void opt_read(opt *o, const char *cmd, const char *arg)
{
    const char *eq = arg[0] == '-' && arg[1] == '-' ? strchr(arg, '=') : NULL;
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    if (n >= sizeof o->name) n = sizeof o->name - 1;
    memcpy(o->name, arg, n);
    o->name[n] = '\0';
    o->inl = eq ? eq + 1 : NULL;
    o->cmd = cmd;
}

static int opt_is(const opt *o, const char *name) { return !strcmp(o->name, name); }

/* The option's value: after '=' or the next argument (then *i moves past it). NULL, with the
 * message printed, when there is none. */
static const char *opt_value(opt *o, int argc, char **argv, int *i)
{
    if (o->inl) {
        const char *v = o->inl;
        o->inl = NULL; /* consumed */
        return v;
    }
    if (*i + 1 >= argc) {
        bad_option(o->cmd, "missing value after", o->name);
        return NULL;
    }
    return argv[++*i];
}

/* A flag written with a value ("--quiet=1"): refused. Returns 2 then, else 0. */
static int opt_flag(const opt *o) { return o->inl ? bad_option(o->cmd, "takes no value:", o->name) : 0; }

/* A growing NULL-terminated list of strings (argv pointers); the caller frees `v`. */
typedef struct strlist {
    const char **v;
    int n;
} strlist;

static void strlist_add(strlist *l, const char *s)
{
    l->v = realloc(l->v, (size_t)(l->n + 2) * sizeof *l->v);
    if (!l->v) abort();
    l->v[l->n++] = s;
    l->v[l->n] = NULL;
}

/* "500ms" "30s" "5m" "1h" "1h30m" or plain seconds -> seconds; -1 when unreadable. */
static double parse_duration(const char *s)
{
    static const struct {
        const char *unit;
        double mul;
    } units[] = {
        {"ms", 1e-3}, {"us", 1e-6}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400},
    };
    double total = 0;
    int parts = 0;
    while (*s) {
        char *end;
        double v = strtod(s, &end);
        if (end == s || v < 0 || (*s != '.' && !isdigit((unsigned char)*s))) return -1;
        s = end;
        double mul = parts == 0 && !*s ? 1 : -1;
        for (size_t i = 0; i < sizeof units / sizeof *units && mul < 0; i++) {
            size_t n = strlen(units[i].unit);
            if (!strncmp(s, units[i].unit, n) && !isalpha((unsigned char)s[n])) mul = units[i].mul, s += n;
        }
        if (mul < 0) return -1;
        total += v * mul;
        parts++;
    }
    return parts ? total : -1;
}

/* "10k" "2M" "15" -> number; -1 when unreadable. */
static double parse_count(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0 || !isdigit((unsigned char)*s)) return -1;
    if (!*end) return v;
    if ((*end == 'k' || *end == 'K') && !end[1]) return v * 1e3;
    if ((*end == 'm' || *end == 'M') && !end[1]) return v * 1e6;
    return -1;
}

/* A whole count of at least `min` ("4", "2k"); -1 when unreadable or out of range. */
static long parse_int(const char *s, long min)
{
    double v = parse_count(s);
    if (v < min || v > 1e9 || v != (double)(long)v) return -1;
    return (long)v;
}

static const char *usage_target; /* below, with the other usage texts */

/* ---- small commands ---- */

static int cmd_target(int argc, char **argv)
{
    target_options o = {.host = "127.0.0.1", .port = 8080, .threads = 1};
    for (int i = 0; i < argc; i++) {
        opt op;
        const char *v;
        long n;
        opt_read(&op, "target", argv[i]);
        if (opt_is(&op, "--help") || opt_is(&op, "-h")) {
            fputs(usage_target, stdout);
            return 0;
        } else if (opt_is(&op, "--tls") || opt_is(&op, "--quiet")) {
            if (opt_flag(&op)) return 2;
            if (opt_is(&op, "--tls"))
                o.tls = 1;
            else
                o.quiet = 1;
        } else if (!opt_is(&op, "--port") && !opt_is(&op, "--host") && !opt_is(&op, "--threads") &&
                   !opt_is(&op, "--log") && !opt_is(&op, "--cert-out")) {
            return bad_option("target", "unknown option", argv[i]);
        } else if (!(v = opt_value(&op, argc, argv, &i))) {
            return 2;
        } else if (opt_is(&op, "--port")) {
            if ((n = parse_int(v, 0)) < 0 || n > 65535)
                return bad_option("target", "--port needs 0..65535, not", v);
            o.port = (int)n;
        } else if (opt_is(&op, "--threads")) {
            if ((n = parse_int(v, 1)) < 0)
                return bad_option("target", "--threads needs a positive count, not", v);
            o.threads = (int)n;
        } else if (opt_is(&op, "--host"))
            o.host = v;
        else if (opt_is(&op, "--log"))
            o.log_file = v;
        else
            o.cert_out = v;
    }
    return target_main(&o);
}

/* mkdir -p `dir`; each directory it creates is private (0700). 0, or -1 with errno set. */
static int mkdir_private(const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *s = p + 1;; s++) {
        if (*s && *s != '/') continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST) return -1;
        *s = c;
        if (!c) return 0;
    }
}

/* `parrot keygen DIR`: a CURVE key pair for a queen or a worker. */
static int cmd_keygen(int argc, char **argv)
{
    if (argc != 1) {
        fputs("usage: parrot keygen DIR   (writes DIR/parrot.key and DIR/parrot.secret)\n", stderr);
        return 2;
    }
    char err[512];
    curve_keys k;
    /* missing parents are made like the directory itself, private (0700): it holds a secret */
    if (mkdir_private(argv[0]) < 0) {
        fprintf(stderr, "parrot keygen: cannot create directory %s: %s\n", argv[0], strerror(errno));
        return 1;
    }
    if (curve_keygen(argv[0], err, sizeof err) || curve_load(argv[0], &k, err, sizeof err)) {
        fprintf(stderr, "parrot keygen: %s\n", err);
        return 1;
    }
    printf("wrote %s/parrot.key and %s/parrot.secret; public key: %s\n", argv[0], argv[0], k.pub);
    return 0;
}

static const char *usage_main =
    "parrot — an HTTP load tester with Lua scenarios\n"
    "\n"
    "usage: parrot COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  run FILE.lua            run a scenario on this machine (live progress, summary, exit code)\n"
    "  run --url URL           a plain GET scenario without a file, as wrk and hey do\n"
    "  queen FILE.lua          coordinate a cluster: workers join, the queen splits and merges\n"
    "  worker --queen URL      one machine's load for a queen\n"
    "  target                  a small fast HTTP server with test endpoints\n"
    "  test SPEC.lua...        run Lua specs inside parrot (they may make real requests)\n"
    "  import tsung FILE.xml   the Lua scenario equivalent to a Tsung configuration\n"
    "  keygen DIR              a CURVE key pair for the cluster (DIR/parrot.key, DIR/parrot.secret)\n"
    "  help COMMAND            the options of one command\n"
    "\n"
    "parrot --version prints the version.\n";

static const char *usage_run =
    "usage: parrot run FILE.lua|FILE.xml [options]      (FILE.xml: a Tsung configuration)\n"
    "       parrot run --url URL [-H 'Name: value']... [options]\n"
    "\n"
    "  --vus N            virtual users (closed and rate models; on stages: the peak, targets scaled)\n"
    "  --duration D       how long: 500ms, 30s, 5m, 1h\n"
    "  --rate R           iterations/s (rate model, and --url) or arrivals/s (open model)\n"
    "  --iterations N     stop a closed-model run after N iterations in all (duration cap: 10m)\n"
    "  --threads N        load threads (default: one per core)\n"
    "  --out FILE         write summary.json (.json) or the per-second series (.csv); repeatable\n"
    "  -e NAME=value      set parrot.env.NAME; repeatable\n"
    "  -H 'Name: value'   a header on every request; repeatable\n"
    "  --method M, --body S   with --url\n"
    "  --insecure         do not verify TLS certificates\n"
    "  --proxy URL        send requests through an HTTP proxy (CONNECT for https);\n"
    "                     HTTP_PROXY, HTTPS_PROXY and NO_PROXY are honoured too\n"
    "  --resolve H:P:ADDR pin a host name to an address, as curl does; repeatable\n"
    "  --source A[,B...]  spread connections over these local source addresses\n"
    "  --dump N           print the first N request/response pairs to stderr\n"
    "  --quiet            no live progress\n"
    "  --server HOST:PORT Tsung files: send to this server instead of the file's <server>\n"
    "  --skip-unsupported Tsung files: run the HTTP sessions alone, leaving out what cannot run\n"
    "  -x, --exclude-tags A,B  Tsung files: leave out the requests tagged A or B (tsung -x)\n"
    "  --tsung-report     add a section laid out like Tsung's report (request, page, session,\n"
    "                     connect, tr_*, status codes, counters over 10-second windows)\n"
    "\n"
    "Numbers take units: 500ms 30s 5m 1h, 10k 2M. Long options also take --name=value.\n"
    "exit codes: 0 ok, 99 a threshold was crossed, 2 bad scenario or options, 1 failure\n";

static const char *usage_target =
    "usage: parrot target [--port N] [--host ADDR] [--threads N] [--tls [--cert-out FILE]] [--log FILE]\n"
    "                     [--quiet]\n"
    "\n"
    "endpoints: /  /bytes/N  /delay/MS  /status/N  /chunked/N  /echo  /cookie/set?k=v  /cookie/check\n"
    "           /redirect/N  /redirect-to?url=U  /json  /gzip  /login  /account  /item/ID\n";

static const char *usage_queen =
    "usage: parrot queen FILE.lua|--url URL [--bind tcp://127.0.0.1:5555] [--expect N] [run options]\n"
    "\n"
    "  --bind ENDPOINT    where workers connect (default tcp://127.0.0.1:5555)\n"
    "  --expect N         start once N workers joined (default 1); later ones join the running test\n"
    "  --keys DIR         the queen's CURVE key pair (parrot keygen DIR)\n"
    "  --allow FILE       worker public keys admitted with --keys, one per line\n"
    "  --insecure         allow binding a non-loopback address without keys\n"
    "  --serve            stay up between runs: Enter on the queen's terminal runs the test again\n"
    "                     (Enter also starts a run before --expect workers joined)\n"
    "  -k, --insecure-tls do not verify TLS certificates (what --insecure means for parrot run)\n"
    "  every option of parrot run (--vus, --duration, --rate, --out, -e, -H, ...) works too\n";

static const char *usage_worker =
    "usage: parrot worker --queen tcp://HOST:5555 [--threads N] [--name NAME]\n"
    "                     [--keys DIR --queen-key KEY|FILE] [--source A[,B...]] [--quiet]\n"
    "\n"
    "  joins the queen, sends a heartbeat every second, reconnects forever while the queen is away,\n"
    "  and runs the share of each test it is given.\n";

static const char *usage_import =
    "usage: parrot import tsung FILE.xml [--server HOST:PORT] [--skip-unsupported] [-x TAGS] > scenario.lua\n"
    "\n"
    "  writes the Lua scenario equivalent to a Tsung configuration, with the XML line of each part\n"
    "  in a comment; parrot run FILE.xml runs the same translation directly.\n"
    "  -x, --exclude-tags A,B  leave out the requests tagged A or B (tsung -x)\n";

static const char *usage_keygen =
    "usage: parrot keygen DIR\n"
    "\n"
    "  writes a CURVE key pair, DIR/parrot.key (public) and DIR/parrot.secret, for a queen or a worker.\n";

static const char *usage_test =
    "usage: parrot test SPEC.lua...\n"
    "\n"
    "  runs specs (describe/it, assert.*) inside a virtual user, so they can make real requests;\n"
    "  prints TAP lines and exits 1 when one fails.\n";

/* `parrot import tsung FILE.xml`: the translation on stdout, notes on stderr. */
static int cmd_import(int argc, char **argv)
{
    tsung_options o = {0};
    const char *file = NULL;
    if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        fputs(usage_import, stdout);
        return 0;
    }
    if (argc < 1 || strcmp(argv[0], "tsung")) {
        fputs(usage_import, stderr);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        opt op;
        opt_read(&op, "import", argv[i]);
        if (opt_is(&op, "--skip-unsupported")) {
            if (opt_flag(&op)) return 2;
            o.skip_unsupported = 1;
        } else if (opt_is(&op, "--server")) {
            if (!(o.server = opt_value(&op, argc, argv, &i))) return 2;
        } else if (opt_is(&op, "-x") || opt_is(&op, "--exclude-tags")) {
            if (!(o.exclude_tags = opt_value(&op, argc, argv, &i))) return 2;
        } else if (opt_is(&op, "--help") || opt_is(&op, "-h")) {
            fputs(usage_import, stdout);
            return 0;
        } else if (argv[i][0] != '-' && !file)
            file = argv[i];
        else
            return bad_option("import", "unknown option", argv[i]);
    }
    if (!file) {
        fputs(usage_import, stderr);
        return 2;
    }
    char *lua = NULL, *notes = NULL;
    static char err[65536]; /* a refusal lists every unsupported element with its lines */
    if (tsung_import(file, &o, &lua, &notes, err, sizeof err) != 0) {
        fprintf(stderr, "parrot import: %s\n", err);
        free(notes);
        return 2;
    }
    if (notes && *notes) fprintf(stderr, "%s%s", notes, notes[strlen(notes) - 1] == '\n' ? "" : "\n");
    fputs(lua, stdout);
    free(lua);
    free(notes);
    return 0;
}

/* Split "A,B,C" into `l` (pointers into a copy kept in *copy, which the caller frees). */
static void split_list(strlist *l, char **copy, const char *v)
{
    free(*copy);
    *copy = strdup(v);
    if (!*copy) abort();
    for (char *tok = strtok(*copy, ","); tok; tok = strtok(NULL, ","))
        strlist_add(l, tok);
}

static int cmd_worker(int argc, char **argv)
{
    worker_options o = {0};
    strlist sources = {0};
    char *source_copy = NULL;
    int rc = 0;
    for (int i = 0; i < argc && !rc; i++) {
        opt op;
        const char *v;
        opt_read(&op, "worker", argv[i]);
        if (opt_is(&op, "--help") || opt_is(&op, "-h")) {
            fputs(usage_worker, stdout);
            goto out;
        } else if (opt_is(&op, "--quiet") || opt_is(&op, "-q")) {
            rc = opt_flag(&op);
            o.quiet = 1;
        } else if (!opt_is(&op, "--queen") && !opt_is(&op, "--threads") && !opt_is(&op, "--name") &&
                   !opt_is(&op, "--keys") && !opt_is(&op, "--queen-key") && !opt_is(&op, "--source")) {
            rc = bad_option("worker", "unknown option", argv[i]);
        } else if (!(v = opt_value(&op, argc, argv, &i))) {
            rc = 2;
        } else if (opt_is(&op, "--queen"))
            o.queen = v;
        else if (opt_is(&op, "--threads")) {
            long n = parse_int(v, 1);
            if (n < 1) rc = bad_option("worker", "cannot read thread count", v);
            o.threads = (int)n;
        } else if (opt_is(&op, "--name"))
            o.name = v;
        else if (opt_is(&op, "--keys"))
            o.keys_dir = v;
        else if (opt_is(&op, "--queen-key"))
            o.queen_key = v;
        else
            split_list(&sources, &source_copy, v);
    }
    if (rc) goto out;
    if (!o.queen) {
        fputs(usage_worker, stderr);
        rc = 2;
    } else if (!!o.keys_dir != !!o.queen_key) {
        fprintf(stderr,
                "parrot worker: --keys and --queen-key go together (the worker's pair, the queen's key)\n");
        rc = 2;
    } else {
        o.sources = sources.v;
        rc = worker_main(&o);
    }
out:
    free(sources.v);
    free(source_copy);
    return rc;
}

/* ---- parrot run / parrot queen ---- */

/* Everything `parrot run` and `parrot queen` read from their command line. The lists hold
 * pointers into argv (or into `source_copy`); run_args_free releases the lists only. */
typedef struct run_args {
    queen_options o;
    strlist env, outs, headers, resolve, sources;
    char *source_copy;
    int queen;
    const char *cmd;
} run_args;

/* What an option group's reader returns besides 0 (read) and 2 (a bad option, said). */
enum { OPT_NOT_MINE = -1, OPT_HELP_SHOWN = -2 };

static int is_any(const opt *op, const char *const *names)
{
    for (; *names; names++)
        if (opt_is(op, *names)) return 1;
    return 0;
}

/* --vus --duration --rate --iterations --threads: how much load. */
static int run_opt_load(run_args *ra, opt *op, int argc, char **argv, int *i)
{
    static const char *const names[] = {"--vus", "--duration", "--rate", "--iterations", "--threads", NULL};
    if (!is_any(op, names)) return OPT_NOT_MINE;
    const char *v = opt_value(op, argc, argv, i);
    luart_overrides *ov = &ra->o.overrides;
    long n;
    if (!v) return 2;
    if (opt_is(op, "--vus")) {
        if ((n = parse_int(v, 1)) < 1) return bad_option(ra->cmd, "--vus needs a positive count, not", v);
        ov->vus = (int)n;
    } else if (opt_is(op, "--duration")) {
        if ((ov->duration = parse_duration(v)) <= 0)
            return bad_option(ra->cmd, "cannot read duration (500ms, 30s, 5m, 1h)", v);
    } else if (opt_is(op, "--rate")) {
        if ((ov->rate = parse_count(v)) <= 0) return bad_option(ra->cmd, "cannot read rate", v);
    } else if (opt_is(op, "--iterations")) {
        if ((n = parse_int(v, 1)) < 1) return bad_option(ra->cmd, "cannot read iterations", v);
        ov->iterations = n;
    } else {
        if ((n = parse_int(v, 1)) < 1) return bad_option(ra->cmd, "cannot read thread count", v);
        ra->o.threads = (int)n;
    }
    return 0;
}

/* --url --method --body -H -e --out: what to run and where the results go. */
static int run_opt_what(run_args *ra, opt *op, int argc, char **argv, int *i)
{
    static const char *const names[] = {"--url", "--method", "--body", "-H", "-e", "--out", NULL};
    if (!is_any(op, names)) return OPT_NOT_MINE;
    const char *v = opt_value(op, argc, argv, i);
    luart_overrides *ov = &ra->o.overrides;
    if (!v) return 2;
    if (opt_is(op, "--url"))
        ov->url = v;
    else if (opt_is(op, "--method"))
        ov->method = v;
    else if (opt_is(op, "--body"))
        ov->body = v;
    else if (opt_is(op, "--out"))
        strlist_add(&ra->outs, v);
    else if (opt_is(op, "-e")) {
        if (!strchr(v, '=') || v[0] == '=') return bad_option(ra->cmd, "-e needs NAME=value, not", v);
        strlist_add(&ra->env, v);
    } else {
        if (!strchr(v, ':')) return bad_option(ra->cmd, "-H needs 'Name: value', not", v);
        strlist_add(&ra->headers, v);
    }
    return 0;
}

/* --proxy --resolve --source --dump --insecure: how requests travel. */
static int run_opt_http(run_args *ra, opt *op, int argc, char **argv, int *i)
{
    static int dump_left; /* shared with the embedded worker for the whole run */
    static const char *const flags[] = {"-k", "--insecure-tls", NULL};
    static const char *const names[] = {"--proxy", "--resolve", "--source", "--dump", NULL};
    if (is_any(op, flags) || (!ra->queen && opt_is(op, "--insecure"))) {
        ra->o.overrides.insecure = ra->o.http.insecure = 1;
        return opt_flag(op);
    }
    if (!is_any(op, names)) return OPT_NOT_MINE;
    const char *v = opt_value(op, argc, argv, i);
    if (!v) return 2;
    if (opt_is(op, "--proxy"))
        ra->o.http.proxy = v;
    else if (opt_is(op, "--resolve")) {
        if (!strchr(v, ':')) return bad_option(ra->cmd, "--resolve needs HOST:PORT:ADDR, not", v);
        strlist_add(&ra->resolve, v);
    } else if (opt_is(op, "--source"))
        split_list(&ra->sources, &ra->source_copy, v);
    else {
        long n = parse_int(v, 0);
        if (n < 0) return bad_option(ra->cmd, "--dump needs a count, not", v);
        dump_left = (int)n;
        ra->o.http.dump_left = &dump_left;
    }
    return 0;
}

/* --bind --expect --keys --allow --serve --insecure: the queen's own options. */
static int run_opt_queen(run_args *ra, opt *op, int argc, char **argv, int *i)
{
    static const char *const names[] = {"--bind", "--expect", "--keys", "--allow", NULL};
    if (!ra->queen) return OPT_NOT_MINE;
    if (opt_is(op, "--serve") || opt_is(op, "--insecure")) {
        if (opt_is(op, "--serve"))
            ra->o.serve = 1;
        else
            ra->o.insecure_bind = 1;
        return opt_flag(op);
    }
    if (!is_any(op, names)) return OPT_NOT_MINE;
    const char *v = opt_value(op, argc, argv, i);
    long n;
    if (!v) return 2;
    if (opt_is(op, "--bind"))
        ra->o.bind = v;
    else if (opt_is(op, "--keys"))
        ra->o.keys_dir = v;
    else if (opt_is(op, "--allow"))
        ra->o.allow_file = v;
    else if ((n = parse_int(v, 1)) < 1)
        return bad_option(ra->cmd, "--expect needs a worker count, not", v);
    else
        ra->o.expect = (int)n;
    return 0;
}

/* --quiet --help and the Tsung file options. */
static int run_opt_misc(run_args *ra, opt *op, int argc, char **argv, int *i)
{
    static char server_env[300];
    if (opt_is(op, "--quiet") || opt_is(op, "-q")) {
        ra->o.quiet = 1;
        return opt_flag(op);
    }
    if (opt_is(op, "--help") || opt_is(op, "-h")) {
        fputs(ra->queen ? usage_queen : usage_run, stdout);
        return OPT_HELP_SHOWN;
    }
    if (opt_is(op, "--tsung-report") || opt_is(op, "--skip-unsupported")) {
        if (opt_is(op, "--tsung-report"))
            ra->o.tsung_report = 1;
        else
            strlist_add(&ra->env, "TSUNG_SKIP_UNSUPPORTED=1");
        return opt_flag(op);
    }
    if (opt_is(op, "-x") || opt_is(op, "--exclude-tags")) { /* Tsung files: tsung -x TAGS */
        static char tags_env[1100];
        const char *t = opt_value(op, argc, argv, i);
        if (!t) return 2;
        snprintf(tags_env, sizeof tags_env, "TSUNG_EXCLUDE_TAGS=%s", t);
        strlist_add(&ra->env, tags_env);
        return 0;
    }
    if (!opt_is(op, "--server")) return OPT_NOT_MINE;
    const char *v = opt_value(op, argc, argv, i); /* Tsung files: point every <server> at HOST:PORT */
    if (!v) return 2;
    if (!strchr(v, ':')) return bad_option(ra->cmd, "--server needs HOST:PORT, not", v);
    snprintf(server_env, sizeof server_env, "TSUNG_SERVER=%s", v);
    strlist_add(&ra->env, server_env);
    return 0;
}

/* Read every argument; 0, 2 (said why) or OPT_HELP_SHOWN. */
static int run_args_parse(run_args *ra, int argc, char **argv)
{
    static int (*const groups[])(run_args *, opt *, int, char **, int *) = {
        run_opt_load, run_opt_what, run_opt_http, run_opt_queen, run_opt_misc,
    };
    for (int i = 0; i < argc; i++) {
        opt op;
        int rc = OPT_NOT_MINE;
        opt_read(&op, ra->cmd, argv[i]);
        for (size_t g = 0; g < sizeof groups / sizeof *groups && rc == OPT_NOT_MINE; g++)
            rc = groups[g](ra, &op, argc, argv, &i);
        if (rc != OPT_NOT_MINE && rc != 0) return rc;
        if (rc == 0) continue;
        if (argv[i][0] == '-' && argv[i][1]) return bad_option(ra->cmd, "unknown option", argv[i]);
        if (ra->o.script) return bad_option(ra->cmd, "one scenario file at a time; extra argument", argv[i]);
        ra->o.script = argv[i];
    }
    return 0;
}

/* What can be known wrong before any load: no scenario, a file and --url, an --out file that
 * could not be written at the end. */
static int run_args_check(run_args *ra)
{
    queen_options *o = &ra->o;
    char err[4200];
    if (!o->script && !o->overrides.url) {
        fputs(ra->queen ? usage_queen : usage_run, stderr);
        return 2;
    }
    if (o->script && o->overrides.url)
        return bad_option(ra->cmd, "give a file or --url, not both:", o->script);
    for (int i = 0; i < ra->outs.n; i++) {
        if (report_out_check(ra->outs.v[i], err, sizeof err) != 0) {
            fprintf(stderr, "parrot %s: %s\n", ra->cmd, err);
            return 2;
        }
    }
    return 0;
}

/* `parrot run` and `parrot queen`: the same options; the queen adds the cluster's. */
static int cmd_run(int argc, char **argv, int queen)
{
    static int no_dump;
    run_args ra = {.queen = queen, .cmd = queen ? "queen" : "run", .o.http.dump_left = &no_dump};
    int rc = run_args_parse(&ra, argc, argv);
    if (rc == 0) rc = run_args_check(&ra);
    if (rc == 0) {
        if (queen && !ra.o.bind) ra.o.bind = "tcp://127.0.0.1:5555";
        ra.o.env = ra.env.v;
        ra.o.outs = ra.outs.v;
        ra.o.overrides.headers = ra.headers.v;
        ra.o.http.resolve = ra.resolve.v;
        ra.o.http.sources = ra.sources.v;
        rc = queen_run(&ra.o);
    } else if (rc == OPT_HELP_SHOWN) {
        rc = 0;
    }
    free(ra.env.v);
    free(ra.outs.v);
    free(ra.headers.v);
    free(ra.resolve.v);
    free(ra.sources.v);
    free(ra.source_copy);
    return rc;
}

/* ---- help, signals, dispatch ---- */

/* `parrot help [COMMAND]`: the general help, or one command's options; an unknown command is a
 * usage error (exit 2). */
static int help(const char *cmd)
{
    static const struct {
        const char *name;
        const char **text;
    } pages[] = {
        {"run", &usage_run},       {"queen", &usage_queen},   {"worker", &usage_worker},
        {"target", &usage_target}, {"import", &usage_import}, {"keygen", &usage_keygen},
        {"test", &usage_test},     {"help", &usage_main},
    };
    if (!cmd) {
        fputs(usage_main, stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof pages / sizeof *pages; i++) {
        if (strcmp(cmd, pages[i].name)) continue;
        fputs(*pages[i].text, stdout);
        return 0;
    }
    fprintf(stderr, "parrot help: unknown command '%s' (parrot --help lists them)\n", cmd);
    return 2;
}

#ifndef __SANITIZE_ADDRESS__ /* the sanitizers report these themselves */
/* An internal error must not be silent: say so and where, then die as the signal says. */
static void on_fatal(int sig)
{
    static const char msg[] = "parrot: internal error (signal); backtrace:\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    void *frames[64];
    int n = backtrace(frames, 64);
    backtrace_symbols_fd(frames, n, 2);
    signal(sig, SIG_DFL);
    raise(sig);
}
#endif

int main(int argc, char **argv)
{
#ifndef __SANITIZE_ADDRESS__ /* the sanitizers report these themselves */
    signal(SIGABRT, on_fatal);
    signal(SIGSEGV, on_fatal);
    signal(SIGBUS, on_fatal);
#endif
    signal(SIGPIPE, SIG_IGN);
#ifdef PARROT_LLHTTP_SSE42
    if (!__builtin_cpu_supports("sse4.2")) { /* built where it had it, copied to where it has not */
        fputs("parrot: this build needs a CPU with SSE4.2; build it on this machine (make) or with "
              "make LLHTTP_SSE42=0\n",
              stderr);
        return 1;
    }
#endif
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2, 0);
    if (!strcmp(cmd, "queen")) return cmd_run(argc - 2, argv + 2, 1);
    if (!strcmp(cmd, "worker")) return cmd_worker(argc - 2, argv + 2);
    if (!strcmp(cmd, "import")) return cmd_import(argc - 2, argv + 2);
    if (!strcmp(cmd, "target")) return cmd_target(argc - 2, argv + 2);
    if (!strcmp(cmd, "test")) return luart_test_main(argc - 2, argv + 2);
    if (!strcmp(cmd, "keygen")) return cmd_keygen(argc - 2, argv + 2);
    if (!strcmp(cmd, "help"))
        return argc > 3 ? bad_option("help", "one command at a time; extra argument", argv[3])
                        : help(argc > 2 ? argv[2] : NULL);
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) return help(NULL);
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("parrot %s\n", PARROT_VERSION);
        return 0;
    }
    fprintf(stderr, "parrot: unknown command '%s' (parrot --help)\n", cmd);
    return 2;
}
