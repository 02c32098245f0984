#!/usr/bin/env bash
# spec/e2e/run.sh: `parrot run` against `parrot target`, checked the way a user would check it:
# summary.json against the target's access log, exit codes, thresholds, script errors, series.csv,
# expect, cookies, redirects, SIGINT, the open and rate models, -e, setup/teardown and threads.
. "$(dirname "$0")/lib.sh"

# fresh_target NAME: a new target with its own access log (so counts never mix between tests)
fresh_target() {
    start_target "$1" || { notok "$1: parrot target starts" "no 'listening on' line"; return 1; }
}

# (a) exact counts: --iterations 200, one request per iteration
if fresh_target count; then
    prun count "$SCEN/count.lua" -e PORT="$TARGET_PORT" --iterations 200 --out "$TMP/count.json"
    stop_target
    is "$RC" 0 "iterations: exit code 0"
    is "$(json_get "$TMP/count.json" totals.requests)" 200 "iterations: --iterations 200 makes 200 requests"
    is "$(json_get "$TMP/count.json" totals.iterations)" 200 "iterations: totals.iterations is 200"
    is "$(lines "$TARGET_LOG")" 200 "iterations: the target's access log has 200 lines"
    is "$(json_get "$TMP/count.json" status.200)" 200 "iterations: status 200 counted 200 times"
    is "$(json_num "$TMP/count.json" totals.errors)" 0 "iterations: no errors"
    is "$(json_get "$TMP/count.json" "checks.root is 200.passed")" 200 "iterations: the check passed 200 times"
    gt "$(json_num "$TMP/count.json" totals.bytes_in)" 0 "iterations: bytes_in counted"
    is "$(json_num "$TMP/count.json" totals.vus_max)" 4 "iterations: vus_max is the scenario's 4 VUs (even in a run under 1 s)"
fi

# (b) --url mode
if fresh_target url; then
    prun url --url "$TARGET_URL/" --vus 4 --duration 2s --out "$TMP/url.json"
    stop_target
    is "$RC" 0 "--url: exit code 0"
    n=$(json_num "$TMP/url.json" totals.requests)
    gt "$n" 0 "--url: requests were made"
    is "$(lines "$TARGET_LOG")" "$n" "--url: summary requests equal the access log lines"
    is "$(json_num "$TMP/url.json" totals.vus_max)" 4 "--url: --vus 4 runs 4 VUs"
fi

# (c) thresholds
if fresh_target thr; then
    prun thr_fail "$SCEN/thresholds.lua" -e PORT="$TARGET_PORT" -e 'P95=< 0.001ms' --out "$TMP/thr_fail.json"
    is "$RC" 99 "thresholds: p95 < 0.001ms is crossed, exit code 99"
    is "$(json_get "$TMP/thr_fail.json" thresholds.0.ok)" false "thresholds: summary.json says ok false"
    is "$(json_get "$TMP/thr_fail.json" thresholds.0.key)" p95 "thresholds: summary.json names the key"
    prun thr_pass "$SCEN/thresholds.lua" -e PORT="$TARGET_PORT" -e 'P95=< 10s' --out "$TMP/thr_pass.json"
    is "$RC" 0 "thresholds: p95 < 10s passes, exit code 0"
    is "$(json_get "$TMP/thr_pass.json" thresholds.0.ok)" true "thresholds: summary.json says ok true"
    stop_target
fi

# (d) a syntax error: exit 2 before any request, stderr names file:line
if fresh_target syn; then
    prun syn "$SCEN/syntax_error.lua" -e PORT="$TARGET_PORT" --duration 2s
    stop_target
    is "$RC" 2 "syntax error: exit code 2"
    is "$(lines "$TARGET_LOG")" 0 "syntax error: no request was made"
    if grep -q 'syntax_error.lua:6' "$TMP/syn.stderr"; then ok "syntax error: stderr names syntax_error.lua:6"
    else notok "syntax error: stderr names syntax_error.lua:6" "stderr: $(head -c 300 "$TMP/syn.stderr")"; fi
fi

# (e) a runtime error in a VU every 3rd iteration: reported once, counted, the run goes on
if fresh_target rte; then
    prun rte "$SCEN/runtime_error.lua" -e PORT="$TARGET_PORT" --out "$TMP/rte.json"
    stop_target
    is "$RC" 0 "runtime error: exit code 0 (no thresholds)"
    n=$(grep -c 'attempt to index' "$TMP/rte.stderr")
    is "$n" 1 "runtime error: printed once on stderr"
    grep -q 'runtime_error.lua:13' "$TMP/rte.stderr" && ok "runtime error: stderr names runtime_error.lua:13" ||
        notok "runtime error: stderr names runtime_error.lua:13" "stderr: $(head -c 300 "$TMP/rte.stderr")"
    script=$(json_num "$TMP/rte.json" errors_by_kind.script)
    gt "$script" 1 "runtime error: counted in errors_by_kind.script each time"
    req=$(json_num "$TMP/rte.json" totals.requests)
    gt "$req" "$((script * 2))" "runtime error: the VUs go on (requests > 2 x script errors)"
    is "$(lines "$TARGET_LOG")" "$req" "runtime error: requests equal the access log lines"
fi

# (f) --out series.csv: header, about one row per second
if fresh_target ser; then
    prun ser --url "$TARGET_URL/" --vus 2 --duration 3s --out "$TMP/ser.csv" --out "$TMP/ser.json"
    stop_target
    is "$RC" 0 "series: exit code 0"
    head -n1 "$TMP/ser.csv" | grep -q '^t,vus,rps,' && ok "series: header starts with t,vus,rps," ||
        notok "series: header starts with t,vus,rps," "header: $(head -n1 "$TMP/ser.csv" 2>/dev/null)"
    rows=$(($(lines "$TMP/ser.csv") - 1))
    between "$rows" 2 5 "series: about one row per second of a 3 s run"
    sum=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "requests") c = i; next } c { s += $c } END { print s + 0 }' "$TMP/ser.csv")
    is "$sum" "$(json_num "$TMP/ser.json" totals.requests)" "series: the rows' requests add up to the total"
fi

# (g) expect
if fresh_target exp; then
    prun exp "$SCEN/expect.lua" -e PORT="$TARGET_PORT" --out "$TMP/exp.json"
    stop_target
    is "$(json_num "$TMP/exp.json" requests.expected.count)" 10 "expect: 10 expected 404s made"
    is "$(json_num "$TMP/exp.json" requests.expected.errors)" 0 "expect: a 404 in expect is no error"
    is "$(json_num "$TMP/exp.json" requests.unexpected.errors)" 10 "expect: a 404 without expect is an error"
    is "$(json_num "$TMP/exp.json" errors_by_kind.status)" 10 "expect: counted in errors_by_kind.status"
    is "$(json_num "$TMP/exp.json" status.404)" 20 "expect: status 404 counted 20 times"
fi

# (h) cookies
if fresh_target ck; then
    prun ck "$SCEN/cookies.lua" -e PORT="$TARGET_PORT" --out "$TMP/ck.json"
    stop_target
    is "$(json_num "$TMP/ck.json" "checks.cookie seen.passed")" 6 "cookies: /cookie/check sees the cookie every time"
    is "$(json_num "$TMP/ck.json" "checks.cookie seen.failed")" 0 "cookies: never missing"
fi

# (i) redirects
if fresh_target rd; then
    prun rd "$SCEN/redirects.lua" -e PORT="$TARGET_PORT" --threads 1 --out "$TMP/rd.json"
    stop_target
    for c in "followed to 200" "followed url ends in /" "not followed is 302"; do
        p=$(json_num "$TMP/rd.json" "checks.$c.passed") f=$(json_num "$TMP/rd.json" "checks.$c.failed")
        if [ "$p" = 3 ] && [ "$f" = 0 ]; then ok "redirects: $c"; else notok "redirects: $c" "passed $p, failed $f"; fi
    done
    is "$(lines "$TARGET_LOG" 'GET /redirect/0 ')" 3 "redirects: the chain was followed to its end"
    is "$(json_num "$TMP/rd.json" totals.errors)" 0 "redirects: no errors"
fi

# (j) SIGINT mid-run: stops within 5 s, still writes summary.json with interrupted true
if fresh_target int; then
    "$PARROT" run --url "$TARGET_URL/" --vus 2 --duration 30s --quiet --out "$TMP/int.json" \
        >"$TMP/int.stdout" 2>"$TMP/int.stderr" </dev/null &
    pid=$!
    BG_PIDS+=("$pid")
    sleep 1.5
    t0=$(date +%s.%N)
    kill -INT "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    t1=$(date +%s.%N)
    if kill -0 "$pid" 2>/dev/null; then
        notok "SIGINT: exits within 5 s" "still running after 10 s"
        kill -KILL "$pid"
    else
        between "$(python3 -c "print($t1 - $t0)")" 0 5 "SIGINT: exits within 5 s"
    fi
    wait "$pid" 2>/dev/null
    stop_target
    [ -s "$TMP/int.json" ] && ok "SIGINT: summary.json still written" || notok "SIGINT: summary.json still written" "no file"
    is "$(json_get "$TMP/int.json" interrupted)" true "SIGINT: summary.json says interrupted true"
    gt "$(json_num "$TMP/int.json" totals.requests)" 0 "SIGINT: the requests before the interrupt are counted"
fi

# (k) open model: rate 50 for 2 s ~ 100 sessions; max_users = 1 against /delay/200 drops arrivals
if fresh_target open; then
    prun open "$SCEN/open.lua" -e PORT="$TARGET_PORT" -e OPEN_RATE=50 --out "$TMP/open.json"
    is "$RC" 0 "open: exit code 0"
    between "$(json_num "$TMP/open.json" totals.requests)" 70 130 "open: rate 50/s for 2 s makes about 100 sessions"
    prun drop "$SCEN/open.lua" -e PORT="$TARGET_PORT" -e OPEN_RATE=50 -e OPEN_MAX=1 -e OPEN_PATH=/delay/200 \
        --threads 1 --out "$TMP/drop.json"
    stop_target
    gt "$(json_num "$TMP/drop.json" totals.dropped)" 0 "open: max_users = 1 against /delay/200 drops arrivals"
    between "$(json_num "$TMP/drop.json" totals.requests)" 5 16 "open: max_users = 1 serves about one 200 ms session at a time"
    is "$(json_num "$TMP/drop.json" totals.vus_max)" 1 "open: never more than max_users users"
fi

# (l) rate model: 100/s for 2 s ~ 200 iterations
if fresh_target rate; then
    prun rate "$SCEN/rate.lua" -e PORT="$TARGET_PORT" --out "$TMP/rate.json"
    stop_target
    is "$RC" 0 "rate: exit code 0"
    between "$(json_num "$TMP/rate.json" totals.iterations)" 170 230 "rate: 100/s for 2 s makes 200 iterations (+-15%)"
fi

# (m) -e NAME=value
if fresh_target env; then
    prun env "$SCEN/env.lua" -e PORT="$TARGET_PORT" --threads 1 -e GREETING=hello-parrot --out "$TMP/env.json"
    stop_target
    is "$(json_num "$TMP/env.json" "checks.env at load time.passed")" 2 "-e: parrot.env has the value when the scenario loads"
    is "$(json_num "$TMP/env.json" "checks.env in a VU.passed")" 2 "-e: parrot.env has the value inside a VU"
    is "$(lines "$TARGET_LOG" '/echo?greeting=hello-parrot ')" 2 "-e: the value reaches the requests"
fi

# (n) setup / teardown
if fresh_target hooks; then
    prun hooks "$SCEN/setup.lua" -e PORT="$TARGET_PORT" --threads 2 --out "$TMP/hooks.json"
    stop_target
    is "$RC" 0 "setup: exit code 0"
    is "$(lines "$TARGET_LOG" 'GET /echo?setup ')" 1 "setup: runs exactly once"
    is "$(lines "$TARGET_LOG" 'GET /echo?teardown')" 1 "teardown: runs exactly once"
    is "$(lines "$TARGET_LOG" 'GET /echo?teardown-with-data ')" 1 "teardown: receives setup's data"
    is "$(lines "$TARGET_LOG" 'GET /echo?run ')" 20 "setup: then the 20 iterations run"
    is "$(json_num "$TMP/hooks.json" "checks.vu sees setup data.passed")" 20 "setup: every VU sees vu.setup"
    is "$(json_num "$TMP/hooks.json" "checks.vu sees setup data.failed")" 0 "setup: no VU misses vu.setup"
fi

# (o) --threads 2, closed 4 VUs, --iterations 100: exactly 100
if fresh_target thr2; then
    prun thr2 "$SCEN/count.lua" -e PORT="$TARGET_PORT" --threads 2 --vus 4 --iterations 100 --out "$TMP/thr2.json"
    stop_target
    is "$RC" 0 "threads: exit code 0"
    is "$(json_get "$TMP/thr2.json" totals.requests)" 100 "threads: --threads 2 --vus 4 --iterations 100 makes exactly 100 requests"
    is "$(lines "$TARGET_LOG")" 100 "threads: the access log has 100 lines"
    is "$(json_get "$TMP/thr2.json" threads)" 2 "threads: summary.json says 2 threads"
fi
# fewer VUs than threads: the iterations still all happen, and the run ends when they are done
if fresh_target thr3; then
    t0=$(date +%s)
    prun thr3 "$SCEN/count.lua" -e PORT="$TARGET_PORT" --threads 2 --vus 1 --iterations 3 --duration 5s --out "$TMP/thr3.json"
    t1=$(date +%s)
    stop_target
    is "$(json_get "$TMP/thr3.json" totals.requests)" 3 "threads: --threads 2 --vus 1 --iterations 3 makes 3 requests"
    between "$((t1 - t0))" 0 3 "threads: ... and ends as soon as they are done (not at --duration 5s)"
fi

done_testing
