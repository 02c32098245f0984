/* main: the `parrot` command line — subcommands and their options. */
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
#include "worker.h"
#include "target.h"
#include "tsung.h"

#define PARROT_VERSION "0.1.0"

static int cmd_target(int argc, char **argv)
{
    target_options o = {.host = "127.0.0.1", .port = 8080, .threads = 1};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--port") && i + 1 < argc) o.port = atoi(argv[++i]);
        else if (!strcmp(a, "--host") && i + 1 < argc) o.host = argv[++i];
        else if (!strcmp(a, "--threads") && i + 1 < argc) o.threads = atoi(argv[++i]);
        else if (!strcmp(a, "--tls")) o.tls = 1;
        else if (!strcmp(a, "--log") && i + 1 < argc) o.log_file = argv[++i];
        else if (!strcmp(a, "--quiet")) o.quiet = 1;
        else if (!strcmp(a, "--cert-out") && i + 1 < argc) o.cert_out = argv[++i];
        else {
            fprintf(stderr, "parrot target: unknown option '%s' (see parrot help target)\n", a);
            return 2;
        }
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
    "  --vus N            virtual users (closed and rate models)\n"
    "  --duration D       how long: 500ms, 30s, 5m, 1h\n"
    "  --rate R           iterations/s (rate model) or arrivals/s (open model)\n"
    "  --iterations N     stop each closed-model run after N iterations in all\n"
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
    "exit codes: 0 ok, 99 a threshold was crossed, 2 bad scenario or options, 1 failure\n";

static const char *usage_target =
    "usage: parrot target [--port N] [--host ADDR] [--threads N] [--tls [--cert-out FILE]] [--log FILE]\n"
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

static int bad_option(const char *cmd, const char *what, const char *arg);

static const char *usage_import =
    "usage: parrot import tsung FILE.xml [--server HOST:PORT] [--skip-unsupported] [-x TAGS] > scenario.lua\n"
    "\n"
    "  writes the Lua scenario equivalent to a Tsung configuration, with the XML line of each part\n"
    "  in a comment; parrot run FILE.xml runs the same translation directly.\n"
    "  -x, --exclude-tags A,B  leave out the requests tagged A or B (tsung -x)\n";

/* `parrot import tsung FILE.xml`: the translation on stdout, notes on stderr. */
static int cmd_import(int argc, char **argv)
{
    tsung_options o = {0};
    const char *file = NULL;
    if (argc < 1 || strcmp(argv[0], "tsung")) {
        fputs(usage_import, stderr);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--skip-unsupported")) o.skip_unsupported = 1;
        else if (!strcmp(argv[i], "--server") && i + 1 < argc) o.server = argv[++i];
        else if ((!strcmp(argv[i], "-x") || !strcmp(argv[i], "--exclude-tags")) && i + 1 < argc)
            o.exclude_tags = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_import, stdout);
            return 0;
        } else if (argv[i][0] != '-' && !file) file = argv[i];
        else return bad_option("import", "unknown option", argv[i]);
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

static int help(const char *cmd)
{
    if (cmd && !strcmp(cmd, "import")) {
        fputs(usage_import, stdout);
        return 0;
    }
    if (cmd && !strcmp(cmd, "queen")) fputs(usage_queen, stdout);
    else if (cmd && !strcmp(cmd, "worker")) fputs(usage_worker, stdout);
    else if (cmd && !strcmp(cmd, "run")) fputs(usage_run, stdout);
    else if (cmd && !strcmp(cmd, "target")) fputs(usage_target, stdout);
    else fputs(usage_main, stdout);
    return 0;
}

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

static int bad_option(const char *cmd, const char *what, const char *arg)
{
    fprintf(stderr, "parrot %s: %s '%s' (parrot help %s)\n", cmd, what, arg, cmd);
    return 2;
}

/* "500ms" "30s" "5m" "1h" or plain seconds -> seconds; -1 when unreadable. */
static double parse_duration(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0) return -1;
    if (!*end || !strcmp(end, "s")) return v;
    if (!strcmp(end, "ms")) return v / 1000;
    if (!strcmp(end, "m")) return v * 60;
    if (!strcmp(end, "h")) return v * 3600;
    if (!strcmp(end, "us")) return v / 1e6;
    return -1;
}

/* "10k" "2M" "15" -> number; -1 when unreadable. */
static double parse_count(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0) return -1;
    if (!*end) return v;
    if ((*end == 'k' || *end == 'K') && !end[1]) return v * 1e3;
    if ((*end == 'm' || *end == 'M') && !end[1]) return v * 1e6;
    return -1;
}

static int cmd_worker(int argc, char **argv)
{
    worker_options o = {0};
    strlist sources = {0};
    char *source_copy = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_worker, stdout);
            return 0;
        }
        if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            o.quiet = 1;
            continue;
        }
        if (!v) return bad_option("worker", "unknown option or missing value", a);
        i++;
        if (!strcmp(a, "--queen")) o.queen = v;
        else if (!strcmp(a, "--threads")) {
            if ((o.threads = atoi(v)) < 1) return bad_option("worker", "cannot read thread count", v);
        } else if (!strcmp(a, "--name")) o.name = v;
        else if (!strcmp(a, "--keys")) o.keys_dir = v;
        else if (!strcmp(a, "--queen-key")) o.queen_key = v;
        else if (!strcmp(a, "--source")) {
            free(source_copy);
            source_copy = strdup(v);
            for (char *tok = strtok(source_copy, ","); tok; tok = strtok(NULL, ",")) strlist_add(&sources, tok);
        } else return bad_option("worker", "unknown option", a);
    }
    if (!o.queen) {
        fputs(usage_worker, stderr);
        return 2;
    }
    if (!!o.keys_dir != !!o.queen_key) {
        fprintf(stderr, "parrot worker: --keys and --queen-key go together (the worker's pair, the queen's key)\n");
        return 2;
    }
    o.sources = sources.v;
    int rc = worker_main(&o);
    free(sources.v);
    free(source_copy);
    return rc;
}

/* `parrot run` and `parrot queen`: the same options; the queen adds the cluster's. */
static int cmd_run(int argc, char **argv, int queen)
{
    static int dump_left;
    const char *cmd = queen ? "queen" : "run";
    static char server_env[300], tags_env[1100];
    queen_options o = {0};
    strlist env = {0}, outs = {0}, headers = {0}, resolve = {0}, sources = {0};
    char *source_copy = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV                                                                                     \
    if (!v) return bad_option(cmd, "missing value after", a);                                   \
    i++
        if (!strcmp(a, "--vus")) {
            NEEDV;
            double n = parse_count(v);
            if (n < 1) return bad_option(cmd, "--vus needs a positive count, not", v);
            o.overrides.vus = (int)n;
        } else if (!strcmp(a, "--duration")) {
            NEEDV;
            if ((o.overrides.duration = parse_duration(v)) <= 0) return bad_option(cmd, "cannot read duration", v);
        } else if (!strcmp(a, "--rate")) {
            NEEDV;
            if ((o.overrides.rate = parse_count(v)) <= 0) return bad_option(cmd, "cannot read rate", v);
        } else if (!strcmp(a, "--iterations")) {
            NEEDV;
            double n = parse_count(v);
            if (n < 1) return bad_option(cmd, "cannot read iterations", v);
            o.overrides.iterations = (long)n;
        } else if (!strcmp(a, "--threads")) {
            NEEDV;
            if ((o.threads = atoi(v)) < 1) return bad_option(cmd, "cannot read thread count", v);
        } else if (!strcmp(a, "--out")) {
            NEEDV;
            strlist_add(&outs, v);
        } else if (!strcmp(a, "-e")) {
            NEEDV;
            if (!strchr(v, '=')) return bad_option(cmd, "-e needs NAME=value, not", v);
            strlist_add(&env, v);
        } else if (!strcmp(a, "-H")) {
            NEEDV;
            if (!strchr(v, ':')) return bad_option(cmd, "-H needs 'Name: value', not", v);
            strlist_add(&headers, v);
        } else if (!strcmp(a, "--url")) {
            NEEDV;
            o.overrides.url = v;
        } else if (!strcmp(a, "--method")) {
            NEEDV;
            o.overrides.method = v;
        } else if (!strcmp(a, "--body")) {
            NEEDV;
            o.overrides.body = v;
        } else if ((!queen && !strcmp(a, "--insecure")) || !strcmp(a, "-k") || !strcmp(a, "--insecure-tls")) {
            o.overrides.insecure = 1;
            o.http.insecure = 1;
        } else if (queen && !strcmp(a, "--insecure")) {
            o.insecure_bind = 1;
        } else if (queen && !strcmp(a, "--bind")) {
            NEEDV;
            o.bind = v;
        } else if (queen && !strcmp(a, "--expect")) {
            NEEDV;
            if ((o.expect = atoi(v)) < 1) return bad_option(cmd, "--expect needs a worker count, not", v);
        } else if (queen && !strcmp(a, "--serve")) {
            o.serve = 1;
        } else if (queen && !strcmp(a, "--keys")) {
            NEEDV;
            o.keys_dir = v;
        } else if (queen && !strcmp(a, "--allow")) {
            NEEDV;
            o.allow_file = v;
        } else if (!strcmp(a, "--proxy")) {
            NEEDV;
            o.http.proxy = v;
        } else if (!strcmp(a, "--resolve")) {
            NEEDV;
            strlist_add(&resolve, v);
        } else if (!strcmp(a, "--source")) {
            NEEDV;
            free(source_copy);
            source_copy = strdup(v);
            for (char *tok = strtok(source_copy, ","); tok; tok = strtok(NULL, ",")) strlist_add(&sources, tok);
        } else if (!strcmp(a, "--dump")) {
            NEEDV;
            dump_left = atoi(v);
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            o.quiet = 1;
        } else if (!strcmp(a, "--server")) { /* Tsung files: point every <server> at HOST:PORT */
            NEEDV;
            if (!strchr(v, ':')) return bad_option(cmd, "--server needs HOST:PORT, not", v);
            snprintf(server_env, sizeof server_env, "TSUNG_SERVER=%s", v);
            strlist_add(&env, server_env);
        } else if (!strcmp(a, "-x") || !strcmp(a, "--exclude-tags")) { /* Tsung files: tsung -x */
            NEEDV;
            snprintf(tags_env, sizeof tags_env, "TSUNG_EXCLUDE_TAGS=%s", v);
            strlist_add(&env, tags_env);
        } else if (!strcmp(a, "--tsung-report")) {
            o.tsung_report = 1;
        } else if (!strcmp(a, "--skip-unsupported")) {
            strlist_add(&env, "TSUNG_SKIP_UNSUPPORTED=1");
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            return help(cmd);
        } else if (a[0] == '-') {
            return bad_option(cmd, "unknown option", a);
        } else if (!o.script) {
            o.script = a;
        } else {
            return bad_option(cmd, "one scenario file at a time; extra argument", a);
        }
#undef NEEDV
    }
    if (!o.script && !o.overrides.url) {
        fputs(queen ? usage_queen : usage_run, stderr);
        return 2;
    }
    if (queen && !o.bind) o.bind = "tcp://127.0.0.1:5555";
    if (o.script && o.overrides.url) return bad_option(cmd, "give a file or --url, not both:", o.script);
    o.env = env.v;
    o.outs = outs.v;
    o.overrides.headers = headers.v;
    o.http.resolve = resolve.v;
    o.http.sources = sources.v;
    o.http.dump_left = &dump_left;
    int rc = queen_run(&o);
    free(env.v);
    free(outs.v);
    free(headers.v);
    free(resolve.v);
    free(sources.v);
    free(source_copy);
    return rc;
}

#ifndef __SANITIZE_ADDRESS__ /* the sanitizers report these themselves */
/* An internal error must not be silent: say so and where, then die as the signal says. */
static void on_fatal(int sig)
{
    static const char msg[] = "parrot: internal error (signal); backtrace:\n";
    if (write(2, msg, sizeof msg - 1) < 0) {}
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
    if (!strcmp(cmd, "help")) return help(argc > 2 ? argv[2] : NULL);
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) return help(NULL);
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("parrot %s\n", PARROT_VERSION);
        return 0;
    }
    fprintf(stderr, "parrot: unknown command '%s' (parrot --help)\n", cmd);
    return 2;
}
