#!/usr/bin/env bash
# spec/e2e/progress.sh: the live progress on stderr. Not a terminal (a CI log): one plain line per
# second. A terminal (through util-linux's `script`): one line redrawn in place with \r. During
# the graceful stop the clock says "stopping" instead of running past the planned duration.
. "$(dirname "$0")/lib.sh"

PROGRESS_RE='^  [0-9]+s/[0-9]+s( \+[0-9]+s stopping)? +vus +[0-9]+  rps +[0-9.,]+  p50 +[^ ]+  p95 +[^ ]+  p99 +[^ ]+  err [0-9,]+ \([0-9.]+%\)$'

if start_target prog; then
    # (a) stderr is a file: plain lines, one per second
    timeout -k 5 30 "$PARROT" run --url "$TARGET_URL/" --vus 2 --duration 3s >"$TMP/plain.out" 2>"$TMP/plain.err" </dev/null
    is "$?" 0 "not a terminal: exit code 0"
    n=$(grep -cE "$PROGRESS_RE" "$TMP/plain.err")
    between "$n" 2 4 "not a terminal: one progress line per second of a 3 s run ($n)"
    if grep -q $'\r' "$TMP/plain.err"; then notok "not a terminal: no carriage returns" "found \\r in stderr"
    else ok "not a terminal: no carriage returns"; fi
    grep -qE '^  1s/3s +vus +2 ' "$TMP/plain.err" && ok "not a terminal: the first line reads 1s/3s, vus 2" ||
        notok "not a terminal: the first line reads 1s/3s, vus 2" "$(head -n 3 "$TMP/plain.err")"
    grep -q "^  scenario" "$TMP/plain.err" && notok "the summary goes to stdout, not stderr" "found in stderr" ||
        ok "the summary goes to stdout, not stderr"

    # (b) --quiet: no progress at all
    timeout -k 5 30 "$PARROT" run --url "$TARGET_URL/" --vus 1 --duration 2s --quiet >/dev/null 2>"$TMP/quiet.err" </dev/null
    is "$(grep -cE "$PROGRESS_RE" "$TMP/quiet.err")" 0 "--quiet: no progress lines"

    # (c) the graceful stop: the clock stops at the planned duration and says stopping
    timeout -k 5 30 "$PARROT" run "$SCEN/linger.lua" -e PORT="$TARGET_PORT" >"$TMP/linger.out" 2>"$TMP/linger.err" </dev/null
    is "$?" 0 "graceful stop: exit code 0"
    grep -qE '^  1s/1s \+1s stopping +vus +1 ' "$TMP/linger.err" && ok "graceful stop: the progress reads '1s/1s +1s stopping'" ||
        notok "graceful stop: the progress reads '1s/1s +1s stopping'" "$(grep -E 's/1s' "$TMP/linger.err" | head -n 4)"
    grep -qE '^  [2-9]s/1s ' "$TMP/linger.err" && notok "graceful stop: never 2s/1s" "$(grep -E '^  [2-9]s/1s' "$TMP/linger.err" | head -n 1)" ||
        ok "graceful stop: never 2s/1s"

    # (d) a terminal: one line redrawn in place
    if command -v script >/dev/null 2>&1; then
        timeout -k 5 30 script -qfec "'$PARROT' run --url '$TARGET_URL/' --vus 1 --duration 2s 2>&1 >/dev/null" /dev/null \
            >"$TMP/tty.out" 2>&1 </dev/null
        is "$?" 0 "a terminal: exit code 0"
        redraws=$(grep -o $'\r\033\[K  [0-9]*s/2s' "$TMP/tty.out" | wc -l)
        gt "$redraws" 0 "a terminal: the progress line is redrawn with \\r and a line clear ($redraws)"
        is "$(grep -cE 's/2s +vus' "$TMP/tty.out")" 1 "a terminal: every redraw stays on one line (no newline per second)"
    else
        ok "a terminal: skipped (no util-linux script) # SKIP"
    fi
    stop_target
fi

done_testing
