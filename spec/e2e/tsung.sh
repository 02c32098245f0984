#!/usr/bin/env bash
# spec/e2e/tsung.sh: Tsung configurations run by `parrot run FILE.xml` against `parrot target`:
# (1) every example of Debian's tsung package (HTTP ones run, the others are refused before any
# load), (2) bad XML, (3) equivalence specs: a Tsung XML with one user and its hand-written Lua
# twin (spec/e2e/tsung/X.xml and X.lua) send the same request lines in the same order, (4) real
# Tsung and parrot on one configuration make the same request counts per URL (when Tsung runs),
# (6) what Tsung does that a user notices: users counted per phase, the load's duration as a hard
# stop, user ids, shared file positions, <user> alone, ssl servers, error names, -x, change_type
# store/restore between two servers.
# Independent runs go in parallel, each against its own target, so the script stays under 2 min.
. "$(dirname "$0")/lib.sh"

TS=$E2E_DIR/tsung
EXAMPLES=${TSUNG_EXAMPLES:-/usr/share/doc/tsung/examples} # overridable, to try the SKIP path

declare -A JOB TPORT TPID TLOG

# target NAME: a fresh `parrot target` with its own access log; fills TPORT/TPID/TLOG[NAME]
target() { # target NAME [parrot target options]
    if start_target "$@"; then
        TPORT[$1]=$TARGET_PORT TPID[$1]=$TARGET_PID TLOG[$1]=$TARGET_LOG
        return 0
    fi
    notok "$1: parrot target starts" "no 'listening on' line"
    TPORT[$1]=9 TPID[$1]= TLOG[$1]=$TMP/$1.log
    return 1
}
# untarget NAME: stop it so that its access log is complete
untarget() { [ -n "${TPID[$1]}" ] && stop_bg "${TPID[$1]}"; TPID[$1]=; }

# bgrun NAME ARGS...: `parrot run ARGS --quiet` in the background (60 s at most); stdout and
# stderr in $TMP/NAME.stdout / .stderr. bgwait NAME: wait for it, exit code in RC.
bgrun() {
    local name=$1; shift
    timeout -k 5 60 "$PARROT" run "$@" --quiet >"$TMP/$name.stdout" 2>"$TMP/$name.stderr" </dev/null &
    JOB[$name]=$!
    BG_PIDS+=("$!")
}
bgwait() { wait "${JOB[$1]}"; RC=$?; }

# requests LOG: the request lines of an access log, in order ("METHOD /path?query")
requests() { sed -E -n 's/^[^"]*"([A-Z]+ [^ ]*) HTTP\/1\.[01]".*$/\1/p' "$1"; }
# answered LOG: the request lines and their statuses, in order ("METHOD /path?query STATUS")
answered() { sed -E -n 's/^[^"]*"([A-Z]+ [^ ]*) HTTP\/1\.[01]" ([0-9]+) .*$/\1 \2/p' "$1"; }

# no_crash NAME DESC: the run printed no internal error or Lua traceback
no_crash() {
    if grep -q -e 'internal error' -e 'stack traceback' "$TMP/$1.stderr"; then
        notok "$2" "stderr: $(grep -m1 -B1 -e 'internal error' -e 'stack traceback' "$TMP/$1.stderr" | tr '\n' ' ' | head -c 300)"
    else ok "$2"; fi
}

# same_lines A B DESC: files A and B have the same lines; else the first difference
same_lines() {
    if [ ! -s "$1" ]; then notok "$3" "no requests in $(basename "$1")"
    elif cmp -s "$1" "$2"; then ok "$3"
    else notok "$3" "$(diff "$1" "$2" | grep '^[<>]' | head -n 4 | tr '\n' ' ') ($(lines "$1") vs $(lines "$2") requests)"; fi
}

# ---------------------------------------------------------------------------------------------
# 0. Debian's tsung package: its examples (and the real Tsung for section 4)

have_examples=1
if [ ! -d "$EXAMPLES" ]; then
    sudo=
    [ "$(id -u)" = 0 ] || sudo="sudo -n"
    echo "# installing the tsung package for its examples" >&2
    { timeout 100 $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q tsung ||
        { timeout 60 $sudo apt-get update -q && timeout 100 $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q tsung; }
    } >"$TMP/apt.log" 2>&1 </dev/null
    [ -d "$EXAMPLES" ] || have_examples=
fi

EX=$TMP/examples # a copy: .gz unpacked, and the files the file_server options name
if [ -n "$have_examples" ]; then
    mkdir -p "$EX/src/test"
    for f in "$EXAMPLES"/*.xml "$EXAMPLES"/*.xml.gz; do
        [ -f "$f" ] || continue
        case $f in
        *.gz) zcat "$f" >"$EX/$(basename "$f" .gz)" ;;
        *) cp "$f" "$EX/" ;;
        esac
    done
    printf 'alice;secret1\nbob;secret2\n' >"$EX/src/test/test_file_server.csv"
    mkdir -p "$TMP/nofile" && cp "$EX/http_setdynvars.xml" "$TMP/nofile/"
fi

# The HTTP examples that run (--rate 4 --duration 2s: their own slow arrivals could bring nobody in
# 2 s; sessions still running get graceful_stop, 10 s)
HTTP_RUN="http_simple http_setdynvars http-digest http-oauth http_tag"
if [ -n "$have_examples" ]; then
    for x in $HTTP_RUN; do
        target "ex_$x" && bgrun "ex_$x" "$EX/$x.xml" --server "127.0.0.1:${TPORT[ex_$x]}" --rate 4 --duration 2s --out "$TMP/ex_$x.json"
    done
fi

# ---------------------------------------------------------------------------------------------
# 3 (started now, checked below). Equivalence specs: X.xml (one user) and X.lua (one VU, one
# iteration), each against its own target. Both run with --threads 1: with more threads, a phase's
# maxnumber is split between threads and one user becomes none (checked on its own in section 4),
# and parrot.csv hands the rows of a file to the threads in turn.
EQ="a b c1 c2 c3 d e"
for s in $EQ; do
    target "eqx_$s" && bgrun "eqx_$s" "$TS/$s.xml" --server "127.0.0.1:${TPORT[eqx_$s]}" --threads 1 --out "$TMP/eqx_$s.json"
    target "eql_$s" && bgrun "eql_$s" "$TS/$s.lua" -e PORT="${TPORT[eql_$s]}" --threads 1 --out "$TMP/eql_$s.json"
done

# 4 (started now). The same configuration as real Tsung would run it, parrot's side with the
# default threads; Tsung's side below, when Tsung runs here.
target user_el && bgrun user_el "$TS/user.xml" --server "127.0.0.1:${TPORT[user_el]}" --out "$TMP/user_el.json"
target cmp_parrot && bgrun cmp_parrot "$TS/cmp.xml" --server "127.0.0.1:${TPORT[cmp_parrot]}" --out "$TMP/cmp_parrot.json"
tsung_skip=
if [ -z "$have_examples" ] || ! command -v tsung >/dev/null 2>&1; then
    tsung_skip="the tsung package is not installed"
elif ! command -v erl >/dev/null 2>&1; then
    tsung_skip="erlang (erl) is missing"
elif target cmp_tsung; then
    TW=$TMP/tsung_run
    mkdir -p "$TW/home" "$TW/log"
    sed "s/port=\"8080\"/port=\"${TPORT[cmp_tsung]}\"/" "$TS/cmp.xml" >"$TW/cmp.xml"
    (cd "$TW" && HOME=$TW/home exec timeout -k 5 60 tsung -i "e2e$$" -f "$TW/cmp.xml" -l "$TW/log" start) \
        >"$TMP/cmp_tsung.stdout" 2>"$TMP/cmp_tsung.stderr" </dev/null &
    JOB[cmp_tsung]=$!
    BG_PIDS+=("$!")
    tsung_start=$SECONDS
else
    tsung_skip="its parrot target did not start"
fi

# 6 (started now). Tsung's semantics a user notices; checked in section 6 below.
target f_one && for k in 1 2 3; do
    bgrun "f_one$k" "$TS/f_one.xml" --server "127.0.0.1:${TPORT[f_one]}" --tsung-report
done
target f_limit && bgrun f_limit "$TS/f_limit.xml" --server "127.0.0.1:${TPORT[f_limit]}" --out "$TMP/f_limit.json"
target f_uid && bgrun f_uid "$TS/f_uid.xml" --server "127.0.0.1:${TPORT[f_uid]}"
# a file_server path that is absolute, inside the XML's directory, run from another directory
mkdir -p "$TMP/absdir/x" && printf 'a\nb\nc\nd\n' >"$TMP/absdir/x/letters.csv"
sed "s#value=\"f_letters.csv\"#value=\"$TMP/absdir/x/letters.csv\"#" "$TS/f_uid.xml" >"$TMP/absdir/f_abs.xml"
if target f_abs; then
    cd / && bgrun f_abs "$TMP/absdir/f_abs.xml" --server "127.0.0.1:${TPORT[f_abs]}"
    cd - >/dev/null || exit 1
fi
target f_user_only && bgrun f_user_only "$TS/f_user_only.xml" --server "127.0.0.1:${TPORT[f_user_only]}"
bgrun f_refused "$TS/f_one.xml" --server "127.0.0.1:$(free_port)" --tsung-report
if target f_tls --tls; then
    sed "s/port=\"PORT\"/port=\"${TPORT[f_tls]}\"/" "$TS/f_ssl.xml" >"$TMP/f_ssl.xml"
    bgrun f_tls "$TMP/f_ssl.xml"
fi
if target f_store_a && target f_store_b; then
    sed -e "s/PORT_A/${TPORT[f_store_a]}/g" -e "s/PORT_B/${TPORT[f_store_b]}/g" "$TS/f_store.xml" >"$TMP/f_store.xml"
    bgrun f_store "$TMP/f_store.xml"
fi
if [ -n "$have_examples" ]; then
    target f_tag && bgrun f_tag "$EX/http_tag.xml" --server "127.0.0.1:${TPORT[f_tag]}" -x landing,gif --rate 4 --duration 2s
fi

# ---------------------------------------------------------------------------------------------
# 1b. The examples that are not HTTP (and http_distributed, whose SOAP request calls Erlang) are
# refused by `parrot run`: exit 2 before any load, naming each unsupported element with its line.
if [ -n "$have_examples" ]; then
    target refused
    crashed=
    for f in "$EX"/*.xml; do
        x=$(basename "$f" .xml)
        case $x in http*) continue ;; esac
        prun "no_$x" "$f" --server "127.0.0.1:${TPORT[refused]}" --duration 2s
        is "$RC" 2 "example $x: refused, exit code 2"
        if grep -Eq "$x\.xml: not HTTP, cannot run here: <[a-z_]+[^>]*> lines? [0-9]+" "$TMP/no_$x.stderr"; then
            ok "example $x: the message names the unsupported elements with their lines"
        else
            notok "example $x: the message names the unsupported elements with their lines" "stderr: $(head -c 200 "$TMP/no_$x.stderr")"
        fi
        grep -q -e 'stack traceback' -e 'internal error' "$TMP/no_$x.stderr" && crashed="$crashed $x"
    done
    prun no_distributed "$EX/http_distributed.xml" --server "127.0.0.1:${TPORT[refused]}" --duration 2s
    is "$RC" 2 "example http_distributed: refused (Erlang code in a request), exit code 2"
    grep -q 'http_distributed.xml: Erlang code, cannot run here: %%symbol:new%% line 111' "$TMP/no_distributed.stderr" &&
        ok "example http_distributed: the message names %%symbol:new%% and its line 111" ||
        notok "example http_distributed: the message names %%symbol:new%% and its line 111" "stderr: $(head -c 200 "$TMP/no_distributed.stderr")"
    prun no_distributed_skip "$EX/http_distributed.xml" --server "127.0.0.1:${TPORT[refused]}" --duration 2s --skip-unsupported
    is "$RC" 2 "example http_distributed --skip-unsupported: refused, its session probabilities sum to 60 (as Tsung refuses it)"
    grep -q 'http_distributed.xml:[0-9]*:[0-9]*: session probabilities sum to 60' "$TMP/no_distributed_skip.stderr" &&
        ok "example http_distributed --skip-unsupported: the message says the probabilities sum to 60" ||
        notok "example http_distributed --skip-unsupported: the message says the probabilities sum to 60" "stderr: $(head -c 200 "$TMP/no_distributed_skip.stderr")"
    # http_setdynvars without the CSV its file_server names: refused, naming the file
    prun no_file "$TMP/nofile/http_setdynvars.xml" --server "127.0.0.1:${TPORT[refused]}" --duration 2s
    is "$RC" 2 "example http_setdynvars without ./src/test/test_file_server.csv: exit code 2"
    grep -q 'test_file_server.csv' "$TMP/no_file.stderr" && grep -q 'http_setdynvars.xml:29' "$TMP/no_file.stderr" &&
        ok "example http_setdynvars without its CSV: the message names the file and line 29" ||
        notok "example http_setdynvars without its CSV: the message names the file and line 29" "stderr: $(head -c 300 "$TMP/no_file.stderr")"
    for n in distributed distributed_skip file; do
        grep -q -e 'stack traceback' -e 'internal error' "$TMP/no_$n.stderr" && crashed="$crashed no_$n"
    done
    [ -z "$crashed" ] && ok "refused examples: one-line messages, no stack traceback" ||
        notok "refused examples: one-line messages, no stack traceback" "a traceback after the message for:$crashed"
else
    ok "Debian's tsung examples # SKIP tsung examples not available"
fi

# ---------------------------------------------------------------------------------------------
# 2. Bad XML: exit 2 and one line naming FILE:LINE(:COL), no request
[ -n "${TPORT[refused]:-}" ] || target refused
bad() { # bad NAME WANT-REGEX DESC
    prun "bad_$1" "$TS/bad_$1.xml" --server "127.0.0.1:${TPORT[refused]}" --duration 2s
    is "$RC" 2 "bad XML, $3: exit code 2"
    if grep -Eq "^parrot: ([^ ]*/)?$2" "$TMP/bad_$1.stderr"; then ok "bad XML, $3: the message is '$(head -n1 "$TMP/bad_$1.stderr" | head -c 120)'"
    else notok "bad XML, $3: the message names the place" "want /$2/, stderr: $(head -c 200 "$TMP/bad_$1.stderr")"; fi
    is "$(grep -c . "$TMP/bad_$1.stderr")" 1 "bad XML, $3: one line on stderr"
}
bad notwf 'bad_notwf\.xml:9:45: mismatched tag' "not well-formed (FILE:LINE:COL)"
bad root 'bad_root\.xml:3:1: .*root element is <config>' "wrong root element (FILE:LINE:COL)"
bad noattr 'bad_noattr\.xml:9:16: <http> needs url' "missing required attribute (FILE:LINE:COL)"
bad unknown 'bad_unknown\.xml:9:16: unknown element <frobnicate>' "unknown element (FILE:LINE:COL)"
bad value 'bad_value\.xml:9:16: <match do="jump">: do must be one of continue, loop, abort, restart, log, dump, abort_test' \
    "a value the DTD does not list (FILE:LINE:COL)"
untarget refused
is "$(lines "${TLOG[refused]}")" 0 "refused configurations: no request reached the target"

# ---------------------------------------------------------------------------------------------
# 1a. The HTTP examples ran: a normal exit, requests made
if [ -n "$have_examples" ]; then
    for x in $HTTP_RUN; do
        bgwait "ex_$x"
        untarget "ex_$x"
        exit_normal "$RC" "example $x: parrot run --server --duration 2s exits 0 or 99"
        no_crash "ex_$x" "example $x: no internal error"
        gt "$(json_num "$TMP/ex_$x.json" totals.requests)" 0 "example $x: summary.json counts requests"
        gt "$(lines "${TLOG[ex_$x]}")" 0 "example $x: requests reached the target"
    done
    # http_tag's tagged requests are sent (no -x given), http_setdynvars' CSV users are used
    is "$(lines "${TLOG[ex_http_tag]}" 'GET /img/excluded.png ')" "$(lines "${TLOG[ex_http_tag]}" 'GET /img/not-excluded.png ')" \
        "example http_tag: every request of a session is sent (tags exclude nothing without -x)"
    grep -Eq '"GET /index\.html\?toto=&user=(alice|bob)&password=secret[12]&id=[a-z]{5}&id2=[0-9]+-[0-9]+ ' "${TLOG[ex_http_setdynvars]}" &&
        ok "example http_setdynvars: the CSV user and password, a 5-letter random string and the really unique id (epoch-id) substituted" ||
        notok "example http_setdynvars: the CSV user and password, a 5-letter random string and the really unique id (epoch-id) substituted" \
            "$(grep -m1 'index.html' "${TLOG[ex_http_setdynvars]}")"
fi

# ---------------------------------------------------------------------------------------------
# 3. Equivalence specs: the same request lines in the same order
for s in $EQ; do
    bgwait "eqx_$s"; rcx=$RC
    bgwait "eql_$s"; rcl=$RC
    untarget "eqx_$s"; untarget "eql_$s"
    is "$rcx" 0 "equivalence $s: parrot run $s.xml exits 0"
    no_crash "eqx_$s" "equivalence $s: $s.xml runs without an internal error"
    is "$rcl" 0 "equivalence $s: parrot run $s.lua (the twin) exits 0"
    requests "${TLOG[eqx_$s]}" >"$TMP/eq_$s.xml.req"
    requests "${TLOG[eql_$s]}" >"$TMP/eq_$s.lua.req"
done

same_lines "$TMP/eq_a.xml.req" "$TMP/eq_a.lua.req" "equivalence a (requests, methods, bodies checked by /echo, thinktimes): same requests in the same order"
is "$(lines "$TMP/eq_a.xml.req")" 7 "equivalence a: 7 requests"
between "$(json_get "$TMP/eqx_a.json" custom.session.mean)" 1950 4000 "equivalence a: the session lasts its thinktimes (1 s + 1..2 s)"
between "$(json_get "$TMP/eql_a.json" custom.iteration_duration.mean)" 1950 4000 "equivalence a: the twin lasts as long"

same_lines "$TMP/eq_b.xml.req" "$TMP/eq_b.lua.req" "equivalence b (dyn_variable re, form field, jsonpath, no match; subst): same requests in the same order"
grep -qx 'GET /echo?t=abc123&title=parrot%20target' "$TMP/eq_b.xml.req" &&
    ok "equivalence b: the token captured from / is sent to /echo?t= (and a space as %20)" ||
    notok "equivalence b: the token captured from / is sent to /echo?t= (and a space as %20)" "$(grep -m1 'echo?t=' "$TMP/eq_b.xml.req")"

same_lines "$TMP/eq_c1.xml.req" "$TMP/eq_c1.lua.req" "equivalence c1 (match do=loop max_loop=2, when=nomatch, do=restart max_restart=2): same requests in the same order"
is "$(lines "$TMP/eq_c1.xml.req" 'GET /item/301')" 9 "equivalence c1: 3 sessions (2 restarts) x 3 sends of the looping request"
is "$(lines "$TMP/eq_c1.xml.req" 'GET /item/304')" 0 "equivalence c1: after max_restart the session is aborted"
between "$(json_get "$TMP/eqx_c1.json" custom.session.mean)" 5900 9000 "equivalence c1: sleep_loop=1 waits 1 s before each loop (6 loops)"

same_lines "$TMP/eq_c2.xml.req" "$TMP/eq_c2.lua.req" "equivalence c2 (match do=abort, when=nomatch, do=continue): same requests in the same order"
is "$(tail -n1 "$TMP/eq_c2.xml.req")" "GET /item/313" "equivalence c2: the session ends at the request whose match aborts"

same_lines "$TMP/eq_c3.xml.req" "$TMP/eq_c3.lua.req" "equivalence c3 (match do=loop with loop_back over a transaction and a setdynvars, and over a login): same requests in the same order"
is "$(lines "$TMP/eq_c3.xml.req" 'GET /item/402')" 3 "equivalence c3: loop_back=5 max_loop=2 runs the transaction again twice"
is "$(lines "$TMP/eq_c3.xml.req" 'POST /login')" 3 "equivalence c3: loop_back=1 logs in again until the match no longer fires (session 3)"

same_lines "$TMP/eq_d.xml.req" "$TMP/eq_d.lua.req" "equivalence d (for, repeat while/until/max_repeat, if eq/neq/gt/lt, foreach include/exclude): same requests in the same order"
is "$(lines "$TMP/eq_d.xml.req" 'GET /echo?d=while')" 5 "equivalence d: repeat max_repeat=3 with a condition that always holds runs 1 + 3 times (as Tsung 1.7), then the while-neq once"

# e: the random parts are checked for their shape, then replaced for the comparison
for w in xml lua; do
    f=$TMP/eq_e.$w.req
    n=$(sed -n 's#^GET /item/\([0-9]*\)$#\1#p' "$f")
    if grep -Eq "^GET /item/[3-7]$" "$f" && grep -Eq "^GET /echo\?e=str&s=[a-z]{8}&n=$n$" "$f"; then
        ok "equivalence e ($w): random_number 3..7 in /item/N, random_string of 8 letters, the number kept"
    else
        notok "equivalence e ($w): random_number 3..7 in /item/N, random_string of 8 letters, the number kept" "$(grep -E 'item|e=str' "$f" | tr '\n' ' ')"
    fi
    sed -E -e 's#^GET /item/[3-7]$#GET /item/RND#' -e 's#^(GET /echo\?e=str&s=)[a-z]{8}&n=[3-7]$#\1STR\&n=RND#' "$f" >"$f.shape"
done
same_lines "$TMP/eq_e.xml.req.shape" "$TMP/eq_e.lua.req.shape" "equivalence e (setdynvars file order=iter wrapping, random_number, random_string): same requests in the same order"
grep -qx 'GET /echo?e=user&k=4&user=alice&pass=secret1' "$TMP/eq_e.xml.req" &&
    ok "equivalence e: the CSV's 4th read wraps to its first line" ||
    notok "equivalence e: the CSV's 4th read wraps to its first line" "$(grep 'k=4' "$TMP/eq_e.xml.req")"

# ---------------------------------------------------------------------------------------------
# 4. cmp.xml: exactly 3 users (maxnumber) x 4 requests; real Tsung and parrot, counts per URL
bgwait cmp_parrot
untarget cmp_parrot
exit_normal "$RC" "cmp.xml: parrot run exits 0 or 99"
requests "${TLOG[cmp_parrot]}" | sort | uniq -c | awk '{ print $2, $3, $1 }' >"$TMP/cmp_parrot.counts"
is "$(tr '\n' ',' <"$TMP/cmp_parrot.counts")" "GET /echo?cmp=3 3,GET /item/501 3,GET /item/502 6," \
    "cmp.xml: maxnumber=3 with the default threads starts exactly 3 users (counts per URL)"

if [ -z "$tsung_skip" ]; then
    bgwait cmp_tsung
    untarget cmp_tsung
    requests "${TLOG[cmp_tsung]}" | sort | uniq -c | awk '{ print $2, $3, $1 }' >"$TMP/cmp_tsung.counts"
    if [ ! -s "$TMP/cmp_tsung.counts" ]; then
        if ! grep -q 'Log directory is' "$TMP/cmp_tsung.stdout" || [ $((SECONDS - tsung_start)) -ge 30 ]; then
            tsung_skip="tsung did not start (exit $RC): $(tail -n 2 "$TMP/cmp_tsung.stdout" "$TMP/cmp_tsung.stderr" 2>/dev/null | tr '\n' ' ' | head -c 150)"
        else
            tsung_skip="tsung made no request (exit $RC)"
        fi
    fi
fi
# ---------------------------------------------------------------------------------------------
# 5. <user session start_time>: one user at a set time, besides the arrivals
bgwait user_el
untarget user_el
exit_normal "$RC" "user.xml: parrot run exits 0 or 99"
requests "${TLOG[user_el]}" | sort | uniq -c | awk '{ print $2, $3, $1 }' >"$TMP/user_el.counts"
is "$(tr '\n' ',' <"$TMP/user_el.counts")" "GET /echo?main 2,GET /echo?special 2,GET /echo?spectator 1," \
    "<user session=\"special\"> and <user session=\"spec*\"> each start their users at their time"

# ---------------------------------------------------------------------------------------------
# 6. Tsung's semantics a user notices
for k in 1 2 3; do bgwait "f_one$k"; done
untarget f_one
is "$(lines "${TLOG[f_one]}" 'GET /echo?one ')" 3 \
    "maxnumber=1 interarrival=1 over 1 s starts exactly one user (3 runs, 3 requests), 1 s of one every 3 s none"
grep -q '^  size_rcv ' "$TMP/f_one1.stdout" && grep -q '^  size_sent ' "$TMP/f_one1.stdout" &&
    grep -Eq '^  users_count +[0-9.]+ / sec +[0-9.]+ / sec +1$' "$TMP/f_one1.stdout" &&
    grep -Eq '^  finish_users_count ' "$TMP/f_one1.stdout" && grep -Eq '^  connected +[0-9]+$' "$TMP/f_one1.stdout" &&
    ok "--tsung-report: network throughput, users_count, finish_users_count, connected" ||
    notok "--tsung-report: network throughput, users_count, finish_users_count, connected" "$(sed -n '/Tsung report/,$p' "$TMP/f_one1.stdout" | head -c 600)"

bgwait f_limit
untarget f_limit
is "$RC" 0 "<load duration=1>: parrot run exits 0"
between "$(json_get "$TMP/f_limit.json" duration_s)" 0.9 2.5 "<load duration=1>: the run ends at 1 s though the users would go on for 4 s"
is "$(json_num "$TMP/f_limit.json" custom.error_abort.value)" 2 "<load duration=1>: both users still running are stopped, counting error_abort"
between "$(lines "${TLOG[f_limit]}" 'GET /echo?ld=')" 4 12 "<load duration=1>: no request after it (2 users, 0.2 s apart)"

bgwait f_uid
untarget f_uid
is "$(sed -E -n 's#^.*"GET /echo\?uid=([0-9]+)&u=([0-9]+)&x=([a-d]) .*$#\1 \2 \3#p' "${TLOG[f_uid]}" | awk '$1 == $2 { print $1 }' | sort -n | tr '\n' ,)" "1,2,3,4," \
    "tsung_userid and get_unique_id: the users are 1..4 over all load threads, the same id twice in a request"
is "$(sed -E -n 's#^.*"GET /echo\?uid=[0-9]+&u=[0-9]+&x=([a-d]) .*$#\1#p' "${TLOG[f_uid]}" | sort | tr '\n' ,)" "a,b,c,d," \
    "setdynvars file order=iter: one position for every user of every load thread (each line once)"
is "$(sed -E -n 's#^.*"GET /echo\?again=([0-9]+) .*$#\1#p' "${TLOG[f_uid]}" | sort -n | tr '\n' ,)" "1,2,3,4," \
    "get_unique_id is the same for the whole session"

bgwait f_abs
untarget f_abs
is "$(sed -E -n 's#^.*"GET /echo\?uid=[0-9]+&u=[0-9]+&x=([a-d]) .*$#\1#p' "${TLOG[f_abs]}" | sort | tr '\n' ,)" "a,b,c,d," \
    "file_server with an absolute path inside the XML's directory, run from elsewhere: the workers read it"
grep -q 'cannot read' "$TMP/f_abs.stderr" && notok "... and no 'cannot read' error" "$(grep -m1 'cannot read' "$TMP/f_abs.stderr")" ||
    ok "... and no 'cannot read' error"

bgwait f_user_only
untarget f_user_only
is "$RC" 0 "a <load> of <user> elements only: parrot run exits 0"
is "$(lines "${TLOG[f_user_only]}" 'GET /echo?only ')" 1 "a <load> of <user> elements only runs that user"

bgwait f_refused
if grep -Eq '^  error_connect_econnrefused +[0-9.]+ / sec +4$' "$TMP/f_refused.stdout" &&
    grep -Eq '^  error_abort_max_conn_retries +[0-9.]+ / sec +1$' "$TMP/f_refused.stdout" &&
    grep -q '^  Errors$' "$TMP/f_refused.stdout"; then
    ok "a refused connection: tried again max_retries (3) times, error_connect_econnrefused 4, error_abort_max_conn_retries 1, in the Errors table"
else
    notok "a refused connection: tried again max_retries (3) times, error_connect_econnrefused 4, error_abort_max_conn_retries 1, in the Errors table" \
        "$(sed -n '/Errors/,$p' "$TMP/f_refused.stdout" | head -c 400)"
fi

if [ -n "${JOB[f_tls]:-}" ]; then
    bgwait f_tls
    untarget f_tls
    is "$RC" 0 "a server of type ssl with a self-signed certificate: parrot run exits 0"
    is "$(lines "${TLOG[f_tls]}" 'GET /echo?tls ')" 1 "a server of type ssl: the certificate is not checked (as in Tsung 1.7)"
fi

if [ -n "${JOB[f_store]:-}" ]; then
    bgwait f_store
    untarget f_store_a; untarget f_store_b
    is "$RC" 0 "change_type store/restore: parrot run exits 0"
    is "$(answered "${TLOG[f_store_a]}" | tr '\n' ,)" \
        "POST /login 200,GET /account?on=a 200,GET /account?on=a-restored 200,GET /echo?a_is=alice 200,GET /account?on=a-new 401," \
        "change_type back to the first server with restore=\"true\": its session goes on (alice's cookie); without restore a new one"
    is "$(answered "${TLOG[f_store_b]}" | tr '\n' ,)" \
        "GET /account?on=b-new 401,POST /login 200,GET /account?on=b-restored 200,GET /echo?b_is=bob 200," \
        "change_type to another server starts a new session (no cookie of the first); restore=\"true\" brings back the one stored (bob's)"
fi

if [ -n "${JOB[f_tag]:-}" ]; then
    bgwait f_tag
    untarget f_tag
    is "$(lines "${TLOG[f_tag]}" 'GET /img/excluded')" 0 "-x landing,gif: the requests with those tags are left out"
    gt "$(lines "${TLOG[f_tag]}" 'GET /img/not-excluded.png ')" 0 "-x landing,gif: the other requests are sent"
fi

if [ -n "$tsung_skip" ]; then
    ok "real Tsung comparison # SKIP $tsung_skip"
else
    is "$(tr '\n' ',' <"$TMP/cmp_parrot.counts")" "$(tr '\n' ',' <"$TMP/cmp_tsung.counts")" \
        "real Tsung comparison: Tsung and parrot make the same request counts per URL on cmp.xml"
fi

done_testing
