# spec/e2e/lib.sh: shared helpers of the end-to-end tests (sourced, never run).
# TAP output (ok / notok / is / between), servers on free loopback ports (start_target, free_port,
# start_bg), summary.json reading (json_get) and cleanup of every process and file on exit.
# Every test script: `. "$(dirname "$0")/lib.sh"`, then uses $PARROT, $TMP and $SCEN.

[ "${BASH_SOURCE[0]}" = "$0" ] && exit 0 # a library: nothing to run on its own
set -u
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCEN=$E2E_DIR/scenarios
PARROT=${PARROT:-$E2E_DIR/../../parrot}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/parrot-e2e.XXXXXX")
BG_PIDS=()
T_PASS=0
T_FAIL=0

# cleanup: stop every background process we started (by pid), then remove the temp dir.
cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${BG_PIDS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    [ -n "${KEEP_TMP:-}" ] && echo "# kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { echo "ok - $1"; T_PASS=$((T_PASS + 1)); }
notok() { echo "not ok - $1: $2"; T_FAIL=$((T_FAIL + 1)); }
# check DESC CONDITION-WORDS... : ok when `test CONDITION` holds
check() { local d=$1; shift; if [ "$@" ] 2>/dev/null; then ok "$d"; else notok "$d" "test [ $* ] is false"; fi; }
# is GOT WANT DESC
is() { if [ "$1" = "$2" ]; then ok "$3"; else notok "$3" "got '$1', want '$2'"; fi; }
# between GOT LO HI DESC (integers or decimals)
between() {
    if [ -n "$1" ] && awk -v g="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(g ~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/ && g + 0 >= lo + 0 && g + 0 <= hi + 0) }'; then
        ok "$4"
    else
        notok "$4" "got '$1', want $2..$3"
    fi
}
# gt GOT N DESC : GOT > N
gt() { if [ -n "$1" ] && awk -v g="$1" -v n="$2" 'BEGIN { exit !(g ~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/ && g + 0 > n + 0) }'; then ok "$3"; else notok "$3" "got '$1', want > $2"; fi; }
# done_testing: the exit status of the script (0: the runner counts the "not ok" lines itself)
done_testing() { echo "# $T_PASS passed, $T_FAIL failed"; exit 0; }

# json_get FILE KEY.PATH -> the value (numbers as written, true/false, strings raw); empty if
# missing. Path parts are object keys or array indexes: totals.requests, thresholds.0.ok,
# "checks.root is 200.passed". The file is flattened once (python3) into FILE.flat, then read by awk.
json_get() {
    local flat=$1.flat
    if [ ! -f "$flat" ] || [ "$1" -nt "$flat" ]; then
        python3 - "$1" >"$flat" 2>/dev/null <<'EOF'
import json, sys
def out(prefix, v):
    if isinstance(v, dict):
        for k, x in v.items():
            out(prefix + [str(k)], x)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out(prefix + [str(i)], x)
    else:
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, float) and v.is_integer():
            v = int(v)
        elif v is None:
            v = "null"
        print(".".join(prefix) + "\t" + str(v).replace("\n", " "))
try:
    out([], json.load(open(sys.argv[1])))
except Exception:
    pass
EOF
    fi
    awk -F'\t' -v k="$2" '$1 == k { print $2; exit }' "$flat"
}
# json_num FILE KEY.PATH -> like json_get but 0 when missing
json_num() { local v; v=$(json_get "$1" "$2"); echo "${v:-0}"; }

# free_port -> a TCP port on 127.0.0.1 nobody listens on right now
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_bg OUTFILE CMD... : run CMD in the background (stdout+stderr to OUTFILE), remember its pid
# in BG_PID and in the cleanup list.
start_bg() {
    local out=$1; shift
    "$@" >"$out" 2>&1 &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
}

# stop_bg PID: SIGTERM, wait (up to 5 s), then SIGKILL. Returns the exit status.
stop_bg() {
    local p=$1 rc
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null; rc=$?
    return $rc
}

# wait_port PORT [SECONDS]: until something accepts on 127.0.0.1:PORT
wait_port() {
    local n=$((${2:-5} * 10))
    for _ in $(seq "$n"); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# start_target NAME [target options...]: `parrot target --port 0 --log $TMP/NAME.log`; sets
# TARGET_PID, TARGET_PORT, TARGET_LOG, TARGET_URL. Returns 1 when it does not come up in 5 s.
start_target() {
    local name=$1; shift
    TARGET_LOG=$TMP/$name.log
    : >"$TARGET_LOG"
    local out=$TMP/$name.out
    "$PARROT" target --port 0 --log "$TARGET_LOG" "$@" >"$out" 2>"$TMP/$name.err" &
    TARGET_PID=$!
    BG_PIDS+=("$TARGET_PID")
    TARGET_PORT=
    for _ in $(seq 50); do
        TARGET_PORT=$(sed -n 's#.*listening on https\{0,1\}://[^:]*:\([0-9][0-9]*\).*#\1#p' "$out" | head -n1)
        [ -n "$TARGET_PORT" ] && break
        kill -0 "$TARGET_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$TARGET_PORT" ]; then
        echo "# parrot target did not start: $(cat "$out" "$TMP/$name.err" 2>/dev/null | tail -n 5)" >&2
        return 1
    fi
    TARGET_URL=http://127.0.0.1:$TARGET_PORT
    return 0
}

# stop_target: stop the current target so its access log is complete
stop_target() { stop_bg "$TARGET_PID"; }

# start_nginx NAME 'SERVER-DIRECTIVES': a real nginx (foreground, one worker, everything under
# $TMP/NAME) with one server on a free port; @PORT@ and @DIR@ in the directives are replaced.
# Access log $TMP/NAME/access.log in format "$connection $status $request". Sets NGINX_PID,
# NGINX_PORT, NGINX_LOG, NGINX_DIR. Returns 1 when nginx is missing or does not come up.
NGINX=${NGINX:-/usr/sbin/nginx}
start_nginx() {
    local name=$1 server=$2 try
    NGINX_DIR=$TMP/$name
    NGINX_LOG=$NGINX_DIR/access.log
    mkdir -p "$NGINX_DIR"
    [ -x "$NGINX" ] || { echo "# no nginx at $NGINX" >&2; return 1; }
    for try in 1 2 3; do
        NGINX_PORT=$(free_port)
        local user=
        [ "$(id -u)" = 0 ] && user="user root;"
        server=${server//@DIR@/$NGINX_DIR}
        cat >"$NGINX_DIR/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
$user
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log;
events { worker_connections 1024; }
http {
    log_format e2e '\$connection \$status "\$request"';
    access_log $NGINX_LOG e2e;
    client_body_temp_path $NGINX_DIR/body;
    proxy_temp_path $NGINX_DIR/proxy;
    fastcgi_temp_path $NGINX_DIR/fastcgi;
    uwsgi_temp_path $NGINX_DIR/uwsgi;
    scgi_temp_path $NGINX_DIR/scgi;
    keepalive_requests 100000;
    keepalive_timeout 60s;
    server {
${server//@PORT@/$NGINX_PORT}
    }
}
EOF
        : >"$NGINX_LOG"
        "$NGINX" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" >"$NGINX_DIR/stdout" 2>&1 &
        NGINX_PID=$!
        BG_PIDS+=("$NGINX_PID")
        if wait_port "$NGINX_PORT" 5 && kill -0 "$NGINX_PID" 2>/dev/null; then return 0; fi
        stop_bg "$NGINX_PID"
    done
    echo "# nginx did not start: $(tail -n 3 "$NGINX_DIR/error.log" "$NGINX_DIR/stdout" 2>/dev/null)" >&2
    return 1
}

# stop_nginx: graceful stop (SIGQUIT), so the access log is complete
stop_nginx() {
    kill -QUIT "$NGINX_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
    stop_bg "$NGINX_PID"
}

# lines FILE [PATTERN] -> number of lines (matching the fixed string PATTERN)
lines() {
    if [ ! -f "$1" ]; then echo 0; return; fi
    if [ $# -gt 1 ]; then grep -cF -- "$2" "$1"; else wc -l <"$1" | tr -d ' '; fi
}

# prun NAME ARGS... : `parrot run ARGS --quiet` bounded by 60 s; stdout in $TMP/NAME.stdout,
# stderr in $TMP/NAME.stderr, exit code in RC.
prun() {
    local name=$1; shift
    timeout -k 5 60 "$PARROT" run "$@" --quiet >"$TMP/$name.stdout" 2>"$TMP/$name.stderr" </dev/null
    RC=$?
}

# exit_normal RC DESC: ok when RC is 0 or 99 (not a signal, not a crash)
exit_normal() {
    case $1 in
    0 | 99) ok "$2" ;;
    *) notok "$2" "exit code $1" ;;
    esac
}

if [ ! -x "$PARROT" ]; then
    echo "not ok - parrot binary: $PARROT is not executable (run make)"
    exit 1
fi
