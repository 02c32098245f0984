/* test_report: what a run shows its user. The progress line, the summary table and the two
 * output files, made from statistics recorded the way the engine records them. The JSON file is
 * read back with python3's json module, so "parses" means what it means for a user's tools. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "report.h"

/* home: 1000 x 2 ms (990 OK, 10 x 404); item: 500 x 10 ms; one timeout without status;
 * a name with a quote, a newline and a broken UTF-8 byte; a long URL-like name;
 * a transaction, checks, a counter and a trend. */
static stats *make_total(void)
{
    stats *s = stats_new();
    int home = stats_name_id(s, "home", STATS_REQUEST), item = stats_name_id(s, "item", STATS_REQUEST);
    for (int i = 0; i < 1000; i++)
        stats_request(s, home, 2000, i < 10 ? 404 : 200, i < 10 ? ERR_STATUS : ERR_NONE, 1000, 100);
    for (int i = 0; i < 500; i++)
        stats_request(s, item, 10000, 200, ERR_NONE, 5000, 100);
    stats_request(s, item, 30000000, 0, ERR_TIMEOUT, 0, 100);
    stats_error_sample(s, ERR_TIMEOUT, "timeout after 30s (http://shop.test/item/9)");
    int odd = stats_name_id(s, "say \"hi\"\n\xff", STATS_REQUEST);
    stats_request(s, odd, 1500, 200, ERR_NONE, 10, 10);
    int longname = stats_name_id(s,
                                 "GET https://staging.example.com/api/v1/users/12345/orders/67890/items"
                                 "/abcdef/details?expand=everything&page=3",
                                 STATS_REQUEST);
    stats_request(s, longname, 3000, 200, ERR_NONE, 10, 10);
    int tx = stats_name_id(s, "checkout", STATS_TRANSACTION);
    stats_transaction(s, tx, 120000, 0);
    int ck = stats_name_id(s, "home is up", STATS_CHECK), ck2 = stats_name_id(s, "has price", STATS_CHECK);
    for (int i = 0; i < 10; i++)
        stats_check(s, ck, 1), stats_check(s, ck2, i < 9);
    int orders = stats_name_id(s, "orders", STATS_COUNTER);
    stats_counter_add(s, orders, 7), stats_counter_add(s, orders, 3);
    int cart = stats_name_id(s, "cart_value", STATS_TREND);
    for (int i = 1; i <= 100; i++)
        stats_trend_add(s, cart, i);
    s->iterations = 700, s->vus_max = 50, s->vus = 50, s->dropped = 2;
    return s;
}

/* A report over `s` with 3 seconds of rows and two thresholds (one failing, one without data). */
typedef struct fixture {
    stats *total;
    report_row rows[3];
    thresholds th;
    report r;
} fixture;

static void fixture_init(fixture *fx)
{
    char err[256];
    memset(fx, 0, sizeof *fx);
    fx->total = make_total();
    for (int i = 0; i < 3; i++)
        fx->rows[i] = report_row_make(fx->total, i + 1, 1.0);
    thresholds_add(&fx->th, "p95", "< 1ms", 0, err, sizeof err);
    thresholds_add(&fx->th, "ghost:p99", "< 400ms", 0, err, sizeof err);
    thresholds_eval(&fx->th, fx->total, 10, 0);
    fx->r = (report){.scenario = "shop",
                     .total = fx->total,
                     .rows = fx->rows,
                     .nrows = 3,
                     .workers = 2,
                     .workers_lost = 1,
                     .threads = 8,
                     .duration_s = 10,
                     .thresholds = &fx->th,
                     .interrupted = 1};
}

static void fixture_free(fixture *fx)
{
    thresholds_free(&fx->th);
    stats_free(fx->total);
}

static void test_row(void)
{
    stats *iv = stats_new();
    int id = stats_name_id(iv, "home", STATS_REQUEST);
    for (int i = 0; i < 100; i++)
        stats_request(iv, id, i < 60 ? 1000 : 2000, 200, i < 4 ? ERR_RESET : 0, 10, 1);
    iv->vus = 7;
    report_row r = report_row_make(iv, 12, 0.5);
    CHECK(r.t == 12 && r.vus == 7 && r.requests == 100 && r.errors == 4 && r.bytes_in == 1000,
          "a row copies the interval's counts");
    CHECK(r.rps == 200, "rps is requests over the interval length");
    CHECK(r.p50 == 1.0 && r.p95 == 2.0 && r.p99 == 2.0, "percentiles are in ms");
    stats_free(iv);
    iv = stats_new();
    r = report_row_make(iv, 13, 1);
    CHECK(r.requests == 0 && r.rps == 0 && r.p50 == 0 && r.p99 == 0, "a second without requests is all zero");
    stats_free(iv);
}

/* Run `fn` on a memory stream and return what it printed (caller frees). */
static char *capture_progress(const report_row *row, double dur, int tty)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    report_progress(f, row, dur, tty);
    fclose(f);
    return buf;
}

static void test_progress(void)
{
    report_row row = {.t = 12,
                      .vus = 50,
                      .rps = 9123.4,
                      .requests = 9123,
                      .errors = 0,
                      .p50 = 1.21,
                      .p95 = 3.4,
                      .p99 = 8.02};
    char *s = capture_progress(&row, 30, 0);
    CHECK(!strcmp(s, "  12s/30s  vus   50  rps  9,123  p50 1.21ms  p95 3.40ms  p99 8.02ms  err 0 (0.00%)\n"),
          "progress line for a log: [%.*s]", (int)strcspn(s, "\n"), s);
    free(s);
    row.p99 = 0.85, row.errors = 91, row.t = 75;
    s = capture_progress(&row, 0, 1);
    CHECK(!strncmp(s, "\r\033[K", 4) && !strchr(s, '\n'), "on a terminal the line redraws itself");
    CHECK(strstr(s, "1m15s    vus") && strstr(s, "p99  850\xc2\xb5s") && strstr(s, "err 91 (1.00%)"),
          "open-ended run, µs and errors: [%s]", s + 4);
    free(s);
    row.requests = 0, row.rps = 0;
    s = capture_progress(&row, 90, 0);
    CHECK(strstr(s, "p50      -  p95      -") != NULL, "a second without requests shows no latency: [%.*s]",
          (int)strcspn(s, "\n"), s);
    free(s);
}

/* Lines printed one per second keep their columns whatever the units: µs is one column wide. */
static void test_progress_columns(void)
{
    report_row a = {.t = 1, .vus = 5, .rps = 12000, .requests = 12000, .p50 = 0.085, .p95 = 0.9, .p99 = 0.95};
    report_row b = {.t = 2, .vus = 5, .rps = 11000, .requests = 11000, .p50 = 1.5, .p95 = 12.5, .p99 = 250};
    char *s1 = capture_progress(&a, 3, 0), *s2 = capture_progress(&b, 3, 0);
    size_t w1 = 0, w2 = 0;
    for (char *p = s1; *p; p++)
        w1 += ((unsigned char)*p & 0xc0) != 0x80;
    for (char *p = s2; *p; p++)
        w2 += ((unsigned char)*p & 0xc0) != 0x80;
    CHECK(w1 == w2, "µs and ms lines are as wide on screen: [%s] [%s]", s1, s2);
    const char *e1 = strstr(s1, "err"), *e2 = strstr(s2, "err");
    size_t c1 = 0, c2 = 0;
    for (const char *p = s1; p < e1; p++)
        c1 += ((unsigned char)*p & 0xc0) != 0x80;
    for (const char *p = s2; p < e2; p++)
        c2 += ((unsigned char)*p & 0xc0) != 0x80;
    CHECK(c1 == c2, "the error column starts at the same screen column");
    free(s1), free(s2);
}

/* During the graceful stop the clock says so instead of running past the planned duration. */
static void test_progress_stopping(void)
{
    report_row row = {.t = 4.1, .vus = 2, .rps = 0};
    char *s = capture_progress(&row, 3, 0);
    CHECK(!strncmp(s, "  3s/3s +1s stopping  vus", 25), "after the planned 3 s: [%.*s]",
          (int)strcspn(s, "\n"), s);
    free(s);
    row.t = 3.2;
    s = capture_progress(&row, 3, 0);
    CHECK(!strncmp(s, "  3s/3s    vus", 14), "the last planned second is not yet stopping: [%.*s]",
          (int)strcspn(s, "\n"), s);
    free(s);
}

static void test_summary(void)
{
    fixture fx;
    char *out = NULL;
    size_t len = 0;
    fixture_init(&fx);
    setenv("COLUMNS", "120", 1);
    FILE *f = open_memstream(&out, &len);
    report_summary(f, &fx.r);
    fclose(f);
    fputs(out, stderr); /* shown by spec/run.sh only when something fails */
    CHECK(strstr(out, "scenario    shop") != NULL, "the summary names the scenario");
    CHECK(strstr(out, "workers 2 (1 lost)") && strstr(out, "threads 8"), "workers and threads");
    CHECK(strstr(out, "requests    1,503") != NULL, "total requests with separators");
    CHECK(strstr(out, "\n  home ") && strstr(out, "\n  item ") && strstr(out, "\n  (all) "),
          "a row per request name and one for all");
    CHECK(strstr(out, "GET https://stag") && strstr(out, "...") && strstr(out, "page=3"),
          "a long name keeps its start and its end");
    CHECK(strstr(out, "say \"hi\"??") != NULL, "control characters and broken UTF-8 print as ?");
    CHECK(strstr(out, "\n  checkout ") && strstr(out, "transaction"), "transactions have their own table");
    CHECK(strstr(out, "200: 1,492") && strstr(out, "404: 10") && strstr(out, "none: 1"), "status codes");
    CHECK(strstr(out, "timeout: 1") && strstr(out, "status: 10"), "error kinds");
    CHECK(strstr(out, "timeout: 1  (timeout after 30s (http://shop.test/item/9))") != NULL,
          "an error kind shows its first message");
    CHECK(strstr(out, "ok    home is up") && strstr(out, "FAIL  has price") && strstr(out, "90.00%  (9/10)"),
          "checks with ok/FAIL and pass rates");
    CHECK(strstr(out, "sum 10  rate 1.0/s") != NULL, "a counter's sum and rate");
    CHECK(strstr(out, "count 100  mean 50.50") && strstr(out, "max 100"), "a trend in the user's unit");
    CHECK(strstr(out, "FAIL  p95") && strstr(out, "none  ghost:p99") && strstr(out, "no data"),
          "thresholds with the observed value; one without data is marked none");
    CHECK(strstr(out, "interrupted after 10.0s") != NULL, "an interrupted run says so");
    int long_lines = 0;
    for (char *p = out, *nl; (nl = strchr(p, '\n')); p = nl + 1)
        long_lines += nl - p > 130;
    CHECK(long_lines == 0, "lines fit the terminal width");
    free(out);
    setenv("COLUMNS", "80", 1);
    f = open_memstream(&out, &len);
    report_summary(f, &fx.r);
    fclose(f);
    fputs(out, stderr);
    long_lines = 0;
    for (char *p = out, *nl; (nl = strchr(p, '\n')); p = nl + 1)
        long_lines += nl - p > 80 + 1; /* µ: 2 bytes */
    CHECK(long_lines == 0, "on 80 columns mean, p90 and max make room for the name");
    CHECK(strstr(out, "  p95  ") && !strstr(out, "   mean   "), "the narrow table keeps the percentiles");
    free(out);
    fixture_free(&fx);
}

/* Run a python3 expression over the JSON file at `path` (bound to d): 1 when it is true. */
static int json_true(const char *path, const char *expr)
{
    char cmd[2048];
    snprintf(
        cmd, sizeof cmd,
        "python3 -c 'import json,sys,math; d=json.load(open(sys.argv[1])); sys.exit(0 if (%s) else 1)' %s",
        expr, path);
    return system(cmd) == 0;
}

static void test_json(const char *dir)
{
    fixture fx;
    char path[512];
    fixture_init(&fx);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    CHECK(report_write(path, &fx.r) == 0, "summary.json is written");
    CHECK(json_true(path, "True"), "summary.json parses as JSON");
    CHECK(json_true(path,
                    "d[\"scenario\"] == \"shop\" and d[\"workers\"] == 2 and d[\"workers_lost\"] == 1"
                    " and d[\"threads\"] == 8 and d[\"duration_s\"] == 10 and d[\"interrupted\"] is True"),
          "scenario, workers, threads, duration, interrupted");
    CHECK(json_true(path,
                    "d[\"totals\"] == {\"requests\": 1503, \"errors\": 11, \"rps\": 150.3, "
                    "\"bytes_in\": 1000*1000+500*5000+20, \"bytes_out\": 1501*100+20, \"iterations\": 700,"
                    " \"checks_passed\": 19, \"checks_failed\": 1, \"dropped\": 2, \"vus_max\": 50}"),
          "totals");
    CHECK(json_true(path, "set(d[\"latency_ms\"]) == {\"mean\",\"p50\",\"p90\",\"p95\",\"p99\",\"max\"}"
                          " and abs(d[\"latency_ms\"][\"p50\"] - 2) < 0.01"),
          "latency_ms over all requests");
    CHECK(json_true(
              path,
              "d[\"requests\"][\"home\"][\"count\"] == 1000 and d[\"requests\"][\"home\"][\"errors\"] == 10"
              " and d[\"requests\"][\"home\"][\"rps\"] == 100"
              " and abs(d[\"requests\"][\"item\"][\"latency_ms\"][\"p50\"] - 10) < 0.02"),
          "requests by name");
    CHECK(json_true(path, "\"say \\\"hi\\\"\\n\\ufffd\" in d[\"requests\"]"),
          "names are escaped, broken UTF-8 replaced");
    CHECK(json_true(path, "d[\"transactions\"][\"checkout\"][\"count\"] == 1"), "transactions");
    CHECK(json_true(path, "d[\"checks\"] == {\"home is up\": {\"passed\": 10, \"failed\": 0},"
                          " \"has price\": {\"passed\": 9, \"failed\": 1}}"),
          "checks");
    CHECK(json_true(path, "d[\"custom\"][\"orders\"] == {\"type\": \"counter\", \"value\": 10, \"rate\": 1}"),
          "a custom counter");
    CHECK(json_true(path, "d[\"custom\"][\"cart_value\"][\"type\"] == \"trend\" and "
                          "d[\"custom\"][\"cart_value\"][\"count\"] == 100"
                          " and abs(d[\"custom\"][\"cart_value\"][\"mean\"] - 50.5) < 0.1"
                          " and abs(d[\"custom\"][\"cart_value\"][\"max\"] - 100) < 0.2"),
          "a custom trend in the user's unit");
    CHECK(json_true(path, "d[\"status\"] == {\"200\": 1492, \"404\": 10}"), "status codes");
    CHECK(json_true(path, "d[\"errors_by_kind\"] == {\"status\": 10, \"timeout\": 1}"),
          "only the error kinds seen");
    CHECK(json_true(path,
                    "d[\"errors_sample\"] == {\"timeout\": \"timeout after 30s (http://shop.test/item/9)\"}"),
          "errors_sample: one message per kind that has one");
    CHECK(json_true(
              path,
              "d[\"thresholds\"][1].get(\"no_data\") is True and \"no_data\" not in d[\"thresholds\"][0]"),
          "a threshold without data says no_data");
    CHECK(
        json_true(path,
                  "d[\"thresholds\"][0][\"key\"] == \"p95\" and d[\"thresholds\"][0][\"expr\"] == \"< 1ms\""
                  " and d[\"thresholds\"][0][\"ok\"] is False and d[\"thresholds\"][0][\"observed\"] > 1"
                  " and d[\"thresholds\"][1][\"ok\"] is True and d[\"thresholds\"][1][\"observed\"] is None"),
        "thresholds with observed values (null without data)");
    CHECK(json_true(path,
                    "len(d[\"series\"]) == 3 and [r[\"t\"] for r in d[\"series\"]] == [1, 2, 3]"
                    " and set(d[\"series\"][0]) == "
                    "{\"t\",\"vus\",\"rps\",\"requests\",\"errors\",\"p50\",\"p95\",\"p99\",\"bytes_in\"}"),
          "series, one object per second");
    fx.r.thresholds = NULL, fx.r.nrows = 0, fx.r.scenario = NULL;
    CHECK(report_write(path, &fx.r) == 0 &&
              json_true(path, "d[\"thresholds\"] == [] and d[\"series\"] == []"),
          "no thresholds and no rows still make valid JSON");
    fixture_free(&fx);
}

/* Custom trends take any number, as k6's do: count, mean, min and max are exact. */
static void test_trend_values(const char *dir)
{
    fixture fx;
    char path[512];
    fixture_init(&fx);
    int big = stats_name_id(fx.total, "big", STATS_TREND), neg = stats_name_id(fx.total, "neg", STATS_TREND);
    stats_trend_add(fx.total, big, 12500000), stats_trend_add(fx.total, big, 2500000);
    stats_trend_add(fx.total, neg, -5), stats_trend_add(fx.total, neg, 3),
        stats_trend_add(fx.total, neg, 0.5);
    snprintf(path, sizeof path, "%s/trends.json", dir);
    CHECK(report_write(path, &fx.r) == 0, "summary.json with trends is written");
    CHECK(json_true(path,
                    "d[\"custom\"][\"big\"][\"count\"] == 2 and d[\"custom\"][\"big\"][\"max\"] == 12500000"
                    " and d[\"custom\"][\"big\"][\"mean\"] == 7500000 and d[\"custom\"][\"big\"][\"min\"] == "
                    "2500000"),
          "values past the histogram's 3,600,000: exact max, min and mean");
    CHECK(json_true(path, "d[\"custom\"][\"neg\"][\"count\"] == 3 and d[\"custom\"][\"neg\"][\"min\"] == -5"
                          " and d[\"custom\"][\"neg\"][\"max\"] == 3 and "
                          "abs(d[\"custom\"][\"neg\"][\"mean\"] + 0.5) < 1e-9"),
          "negative values: exact min and mean");
    CHECK(json_true(path,
                    "all(-5 <= d[\"custom\"][\"neg\"][k] <= 3 for k in (\"p50\",\"p90\",\"p95\",\"p99\"))"
                    " and d[\"custom\"][\"big\"][\"p50\"] >= 2500000"),
          "percentiles stay within min and max");
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    report_summary(f, &fx.r);
    fclose(f);
    CHECK(strstr(out, "mean 7,500,000") && strstr(out, "max 12,500,000"), "the summary shows them exactly");
    CHECK(strstr(out, "min -5") != NULL, "a negative minimum shows as such");
    free(out);
    fixture_free(&fx);
}

/* --out is checked before the run, so a typo never costs the results of a long test. */
static void test_out_check(const char *dir)
{
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/s.json", dir);
    CHECK(report_out_check(path, err, sizeof err) == 0, "a .json file in a writable directory is fine");
    CHECK(report_out_check("series.CSV", err, sizeof err) == 0,
          "a .csv file in the current directory is fine");
    CHECK(report_out_check("x.txt", err, sizeof err) == -1 && strstr(err, "unknown file type") &&
              strstr(err, ".json"),
          "an unknown extension is refused: %s", err);
    CHECK(report_out_check("/nonexistent/dir/s.json", err, sizeof err) == -1 &&
              strstr(err, "no directory /nonexistent/dir"),
          "a missing directory is refused: %s", err);
    snprintf(path, sizeof path, "%s/adir.json", dir);
    CHECK(mkdir(path, 0755) == 0 && report_out_check(path, err, sizeof err) == -1 &&
              strstr(err, "is a directory"),
          "a directory is refused: %s", err);
    if (geteuid() != 0) {
        snprintf(path, sizeof path, "%s/ro", dir);
        mkdir(path, 0555);
        snprintf(path, sizeof path, "%s/ro/s.json", dir);
        CHECK(report_out_check(path, err, sizeof err) == -1 && strstr(err, "not writable"),
              "a read-only directory is refused: %s", err);
    } else {
        CHECK(1, "a read-only directory is refused (skipped: root writes anywhere)");
    }
}

static void test_csv_and_errors(const char *dir)
{
    fixture fx;
    char path[512], line[256];
    fixture_init(&fx);
    snprintf(path, sizeof path, "%s/series.CSV", dir);
    CHECK(report_write(path, &fx.r) == 0, "series.csv is written (extension in any case)");
    FILE *f = fopen(path, "r");
    int n = 0, header = 0;
    while (f && fgets(line, sizeof line, f))
        if (n++ == 0) header = !strcmp(line, "t,vus,rps,requests,errors,p50,p95,p99,bytes_in\n");
    if (f) fclose(f);
    CHECK(header, "the CSV header names the columns");
    CHECK(n == 4, "one CSV line per second after the header (%d lines)", n);
    snprintf(path, sizeof path, "%s/out.txt", dir);
    errno = 0;
    CHECK(report_write(path, &fx.r) == -1 && errno == EINVAL && access(path, F_OK) != 0,
          "an unknown extension is EINVAL and writes nothing");
    errno = 0;
    CHECK(report_write("/nonexistent-dir/x.json", &fx.r) == -1 && errno == ENOENT,
          "an unwritable path returns -1 with errno");
    fixture_free(&fx);
}

int main(void)
{
    char dir[] = "/tmp/parrot-test-report-XXXXXX";
    if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
    test_row();
    test_progress();
    test_progress_columns();
    test_progress_stopping();
    test_summary();
    test_json(dir);
    test_csv_and_errors(dir);
    test_trend_values(dir);
    test_out_check(dir);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_done();
}
