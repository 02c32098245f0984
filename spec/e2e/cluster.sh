#!/usr/bin/env bash
# spec/e2e/cluster.sh: `parrot queen` + `parrot worker` processes against `parrot target`, checked
# against the target's access log: three workers on loopback, two workers in other network
# namespaces (root only), a worker SIGKILLed mid-run, a queen restarted under live workers, CURVE
# keys (an unlisted worker, a wrong pinned queen key), the non-loopback bind guard, and a worker
# joining mid-run. Every process runs under `timeout`; the whole script stays under 90 s.
. "$(dirname "$0")/lib.sh"

CL=$SCEN/cluster_load.lua
export PARROT_CACHE=$TMP/cache # each worker gets its own below; this one is for the queens

# namespaces of section 2 (created only as root); removed after every process is gone
NS1=pe2e$$a NS2=pe2e$$b NS3=pe2e$$c
NS_MADE=
netns_down() {
    [ -n "$NS_MADE" ] || return 0
    ip -n "$NS1" link del br0 2>/dev/null
    local ns
    for ns in "$NS1" "$NS2" "$NS3"; do ip netns del "$ns" 2>/dev/null; done
    NS_MADE=
}
# a watchdog: the script never outlives 88 s (the trap below still cleans up)
# (its output goes nowhere, so a pipe reading this script's output closes when the script ends)
trap 'echo "not ok - cluster.sh: the whole script takes < 90 s: stopped at 88 s"; exit 1' USR1
(sleep 88 && kill -USR1 $$) >/dev/null 2>&1 </dev/null &
WATCHDOG=$!
cluster_cleanup() {
    pkill -P "$WATCHDOG" 2>/dev/null
    kill "$WATCHDOG" 2>/dev/null
    cleanup
    netns_down
}
trap cluster_cleanup EXIT

# fresh_target NAME: a new loopback target with its own access log
fresh_target() {
    start_target "$1" || { notok "$1: parrot target starts" "no 'listening on' line"; return 1; }
}

# start_worker NAME ENDPOINT [worker options...]: a worker (1 thread, its own bundle cache) under
# `timeout`; output (stdout+stderr) in $TMP/NAME.out; its pid (the timeout's) in WPID
start_worker() {
    local name=$1 ep=$2
    shift 2
    mkdir -p "$TMP/cache-$name"
    start_bg "$TMP/$name.out" env PARROT_CACHE="$TMP/cache-$name" \
        timeout -k 2 80 "$PARROT" worker --queen "$ep" --threads 1 --name "$name" "$@"
    WPID=$BG_PID
}

# start_queen NAME LIMIT ARGS...: `parrot queen ARGS` in the background under `timeout LIMIT`;
# stdout in $TMP/NAME.stdout, stderr in $TMP/NAME.stderr; pid in QUEEN_PID. wait_queen sets RC.
start_queen() {
    local name=$1 limit=$2
    shift 2
    timeout -k 2 "$limit" "$PARROT" queen "$@" >"$TMP/$name.stdout" 2>"$TMP/$name.stderr" </dev/null &
    QUEEN_PID=$!
    BG_PIDS+=("$QUEEN_PID")
}
wait_queen() { wait "$QUEEN_PID"; RC=$?; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# wait_for FILE STRING SECONDS: until FILE holds the fixed STRING; 1 when it never does
wait_for() {
    local _
    for _ in $(seq $(($3 * 10))); do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    grep -qF -- "$2" "$1" 2>/dev/null
}

# has FILE STRING DESC / hasnt FILE STRING DESC
has() { if grep -qF -- "$2" "$1" 2>/dev/null; then ok "$3"; else notok "$3" "no '$2' in $(basename "$1"): $(tail -n 3 "$1" 2>/dev/null | tr '\n' '|')"; fi; }
hasnt() { if grep -qF -- "$2" "$1" 2>/dev/null; then notok "$3" "'$2' in $(basename "$1"): $(grep -F -- "$2" "$1" | head -n 2 | tr '\n' '|')"; else ok "$3"; fi; }

# parrot_of PID: the parrot process under a `timeout` pid
parrot_of() { pgrep -P "$1" | head -n 1; }

# count_checks NAME JSON TAG: summary requests against the access log of the current target
count_checks() {
    local name=$1 js=$2 tag=$3 n
    n=$(json_num "$js" totals.requests)
    gt "$n" 0 "$name: requests were made"
    is "$n" "$(lines "$TARGET_LOG")" "$name: totals.requests equals the access log lines"
    is "$(json_num "$js" requests.load.count)" "$(lines "$TARGET_LOG" "cluster-load-$tag ")" \
        "$name: load requests equal the access log lines for the load path"
    is "$(lines "$TARGET_LOG" "cluster-setup-$tag ")" 1 "$name: setup ran exactly once"
    is "$(lines "$TARGET_LOG" "cluster-teardown-$tag ")" 1 "$name: teardown ran exactly once (with setup's data)"
}

# ---- 1. one queen, three workers on loopback -------------------------------------------------
if fresh_target one; then
    qp=$(free_port)
    ep=tcp://127.0.0.1:$qp
    start_queen one 25 "$CL" --bind "$ep" --expect 3 -e PORT="$TARGET_PORT" -e TAG=one \
        --vus 6 --duration 3s --out "$TMP/one.json"
    w=()
    for i in 1 2 3; do start_worker "one$i" "$ep"; w+=("$WPID"); done
    wait_queen
    stop_target
    for p in "${w[@]}"; do stop_bg "$p"; done
    is "$RC" 0 "loopback: queen exit code 0"
    is "$(json_get "$TMP/one.json" workers)" 3 "loopback: summary.json workers == 3"
    is "$(json_num "$TMP/one.json" workers_lost)" 0 "loopback: workers_lost == 0"
    count_checks loopback "$TMP/one.json" one
    for i in 1 2 3; do has "$TMP/one$i.out" "run " "loopback: worker one$i ran its share"; done
fi

# ---- 2. across network namespaces (root only) -----------------------------------------------
netns_up() {
    ip netns add "$NS1" && NS_MADE=1 && ip netns add "$NS2" && ip netns add "$NS3" || return 1
    ip -n "$NS1" link add br0 type bridge || return 1
    ip -n "$NS1" addr add 10.77.0.1/24 dev br0 && ip -n "$NS1" link set br0 up &&
        ip -n "$NS1" link set lo up || return 1
    local i ns
    for i in 2 3; do
        ns=$NS2
        [ "$i" = 3 ] && ns=$NS3
        ip link add eth0 netns "$ns" type veth peer name "v$i" netns "$NS1" || return 1
        ip -n "$NS1" link set "v$i" master br0 && ip -n "$NS1" link set "v$i" up || return 1
        ip -n "$ns" addr add "10.77.0.$i/24" dev eth0 && ip -n "$ns" link set eth0 up &&
            ip -n "$ns" link set lo up || return 1
    done
}
if [ "$(id -u)" != 0 ]; then
    echo "ok - network namespaces # SKIP not root"
elif ! ip netns list >/dev/null 2>&1; then
    echo "ok - network namespaces # SKIP ip netns does not work here"
elif ! netns_up; then
    notok "netns: three namespaces and a bridge on 10.77.0.0/24 are set up" "ip failed"
else
    ok "netns: three namespaces and a bridge on 10.77.0.0/24 are set up"
    TARGET_LOG=$TMP/ns_target.log
    : >"$TARGET_LOG"
    start_bg "$TMP/ns_target.out" ip netns exec "$NS1" timeout -k 2 40 "$PARROT" target --host 10.77.0.1 \
        --port 0 --log "$TARGET_LOG"
    TARGET_PID=$BG_PID
    wait_for "$TMP/ns_target.out" "listening on" 5
    tport=$(sed -n 's#.*listening on http://[^:]*:\([0-9][0-9]*\).*#\1#p' "$TMP/ns_target.out" | head -n 1)
    if [ -z "$tport" ]; then
        notok "netns: the target listens on 10.77.0.1 in ns1" "$(tail -n 3 "$TMP/ns_target.out")"
    else
        ok "netns: the target listens on 10.77.0.1 in ns1"
        ep=tcp://10.77.0.1:25555
        QUEEN_PID=
        ip netns exec "$NS1" timeout -k 2 25 "$PARROT" queen "$CL" --bind "$ep" --insecure --expect 2 \
            -e HOST=10.77.0.1 -e PORT="$tport" -e TAG=ns --vus 6 --duration 3s --out "$TMP/ns.json" \
            >"$TMP/ns.stdout" 2>"$TMP/ns.stderr" </dev/null &
        QUEEN_PID=$!
        BG_PIDS+=("$QUEEN_PID")
        w=()
        for i in 2 3; do
            ns=$NS2
            [ "$i" = 3 ] && ns=$NS3
            mkdir -p "$TMP/cache-ns$i"
            start_bg "$TMP/ns$i.out" ip netns exec "$ns" env PARROT_CACHE="$TMP/cache-ns$i" \
                timeout -k 2 40 "$PARROT" worker --queen "$ep" --threads 1 --name "ns$i"
            w+=("$BG_PID")
        done
        wait_queen
        stop_target
        for p in "${w[@]}"; do stop_bg "$p"; done
        is "$RC" 0 "netns: queen exit code 0"
        is "$(json_get "$TMP/ns.json" workers)" 2 "netns: summary.json workers == 2"
        count_checks netns "$TMP/ns.json" ns
        hasnt "$TARGET_LOG" "127.0.0.1 " "netns: every request came over the bridge, none from loopback"
    fi
    netns_down
fi

# ---- 3a. SIGKILL one of three workers mid-run -----------------------------------------------
if fresh_target kill; then
    qp=$(free_port)
    ep=tcp://127.0.0.1:$qp
    start_queen kill 30 "$CL" --bind "$ep" --expect 3 -e PORT="$TARGET_PORT" -e TAG=kill \
        --vus 6 --duration 6s --out "$TMP/kill.json"
    w=()
    for i in 1 2 3; do start_worker "kill$i" "$ep"; w+=("$WPID"); done
    if wait_for "$TMP/kill3.out" "run " 10; then
        sleep 2
        victim=$(parrot_of "${w[2]}")
        t_kill=$(now)
        disown "${w[2]}" 2>/dev/null # no "Killed" job notice on stderr
        [ -n "$victim" ] && kill -KILL "$victim"
        if wait_for "$TMP/kill.stderr" "missed 3 heartbeats" 7; then
            between "$(since "$t_kill")" 0 5 "kill: the queen logs the missed heartbeats within 5 s"
        else
            notok "kill: the queen logs the missed heartbeats within 5 s" "not logged: $(tail -n 3 "$TMP/kill.stderr" | tr '\n' '|')"
        fi
    else
        notok "kill: the run starts" "worker kill3 never got a run"
    fi
    wait_queen
    stop_target
    for p in "${w[@]}"; do stop_bg "$p"; done
    is "$RC" 0 "kill: the run completes with exit code 0"
    is "$(json_num "$TMP/kill.json" workers_lost)" 1 "kill: workers_lost == 1"
    n=$(json_num "$TMP/kill.json" totals.requests)
    logn=$(lines "$TARGET_LOG")
    gt "$n" 0 "kill: requests were made"
    between "$n" 1 "$logn" "kill: totals.requests <= the access log lines ($logn)"
    # what the lost worker could have done unreported: 2 s of its share (a third of the early rate)
    share=$(python3 -c "import json; s=json.load(open('$TMP/kill.json'))['series']; print(int(max(r['rps'] for r in s[:2]) / 3 * 2) + 10)" 2>/dev/null)
    between "$((logn - n))" 0 "${share:-0}" "kill: requests lost with the worker <= 2 s of its share (${share:-?})"
    after=$(python3 -c "
import json
s = [r for r in json.load(open('$TMP/kill.json'))['series'] if r['t'] >= 3]
print(min(r['rps'] for r in s) if len(s) >= 2 else 0)" 2>/dev/null)
    gt "${after:-0}" 0 "kill: requests per second after the kill stay > 0 (the others took over)"
    is "$(lines "$TARGET_LOG" "cluster-teardown-kill ")" 1 "kill: teardown still runs once"
fi

# ---- 3b. restart the queen while the workers live -------------------------------------------
if fresh_target restart; then
    qp=$(free_port)
    ep=tcp://127.0.0.1:$qp
    w=()
    for i in 1 2; do start_worker "rs$i" "$ep"; w+=("$WPID"); done
    start_queen rs1 20 "$CL" --bind "$ep" --expect 2 -e PORT="$TARGET_PORT" -e TAG=rs1 \
        --vus 4 --duration 2s --out "$TMP/rs1.json"
    wait_queen
    is "$RC" 0 "restart: queen #1 exit code 0"
    is "$(json_get "$TMP/rs1.json" workers)" 2 "restart: queen #1 had 2 workers"
    p1=$(parrot_of "${w[0]}") p2=$(parrot_of "${w[1]}")
    start_queen rs2 20 "$CL" --bind "$ep" --expect 2 -e PORT="$TARGET_PORT" -e TAG=rs2 \
        --vus 4 --duration 2s --out "$TMP/rs2.json"
    wait_queen
    stop_target
    is "$RC" 0 "restart: queen #2 on the same port exit code 0"
    is "$(json_get "$TMP/rs2.json" workers)" 2 "restart: queen #2's summary says workers == 2"
    if [ -n "$p1" ] && [ -n "$p2" ] && [ "$(parrot_of "${w[0]}")" = "$p1" ] && [ "$(parrot_of "${w[1]}")" = "$p2" ] &&
        kill -0 "$p1" 2>/dev/null && kill -0 "$p2" 2>/dev/null; then
        ok "restart: the same worker processes ($p1, $p2) are alive and ran both tests"
    else
        notok "restart: the same worker processes are alive and ran both tests" "pids '$p1' '$p2' now '$(parrot_of "${w[0]}")' '$(parrot_of "${w[1]}")'"
    fi
    for i in 1 2; do is "$(lines "$TMP/rs$i.out" "run ")" 2 "restart: worker rs$i ran two tests"; done
    gt "$(lines "$TARGET_LOG" "cluster-load-rs2 ")" 0 "restart: queen #2's test reached the target"
    is "$(json_num "$TMP/rs2.json" requests.load.count)" "$(lines "$TARGET_LOG" "cluster-load-rs2 ")" \
        "restart: queen #2's load requests equal the access log lines for its path"
    for p in "${w[@]}"; do stop_bg "$p"; done
fi

# ---- 3c / 3d. CURVE keys: an unlisted worker; a worker pinning the wrong queen key -----------
K=$TMP/keys
mkdir -p "$K"
for d in queen good bad pin other; do "$PARROT" keygen "$K/$d" >/dev/null 2>&1; done
if [ -s "$K/queen/parrot.key" ] && [ -s "$K/good/parrot.key" ]; then
    ok "keygen: writes the key pairs"
else
    notok "keygen: writes the key pairs" "no $K/queen/parrot.key"
fi
cat "$K/good/parrot.key" >"$K/allow"
cat "$K/pin/parrot.key" >"$K/allow_pin"
# 3d runs alongside 3c (its queen must time out at 8 s): start it first, check it after 3c
PIN_QUEEN=
if fresh_target pin; then
    PIN_TPID=$TARGET_PID PIN_TLOG=$TARGET_LOG
    qp=$(free_port)
    ep=tcp://127.0.0.1:$qp
    start_queen pin 8 "$CL" --bind "$ep" --keys "$K/queen" --allow "$K/allow_pin" --expect 1 \
        -e PORT="$TARGET_PORT" -e TAG=pin --vus 4 --duration 2s --out "$TMP/pin.json"
    PIN_QUEEN=$QUEEN_PID
    PIN_T0=$(now)
    start_worker kpin "$ep" --keys "$K/pin" --queen-key "$K/other/parrot.key"
    PIN_WORKER=$WPID
    # when the worker says so, measured while 3c runs
    (wait_for "$TMP/kpin.out" "does not match" 6 && since "$PIN_T0" >"$TMP/kpin.seen") &
    BG_PIDS+=("$!")
fi
if fresh_target keys; then
    qp=$(free_port)
    ep=tcp://127.0.0.1:$qp
    start_queen keys 20 "$CL" --bind "$ep" --keys "$K/queen" --allow "$K/allow" --expect 1 \
        -e PORT="$TARGET_PORT" -e TAG=keys --vus 4 --duration 2s --out "$TMP/keys.json"
    start_worker kgood "$ep" --keys "$K/good" --queen-key "$K/queen/parrot.key"
    wg=$WPID
    t0=$(now)
    start_worker kbad "$ep" --keys "$K/bad" --queen-key "$K/queen/parrot.key"
    wb=$WPID
    if wait_for "$TMP/kbad.out" "refused" 5; then
        between "$(since "$t0")" 0 5 "keys: an unlisted worker prints 'refused' within 5 s"
    else
        notok "keys: an unlisted worker prints 'refused' within 5 s" "$(tail -n 3 "$TMP/kbad.out" | tr '\n' '|')"
    fi
    wait_queen
    stop_target
    stop_bg "$wg"
    stop_bg "$wb"
    is "$RC" 0 "keys: the keyed run completes with exit code 0"
    is "$(json_get "$TMP/keys.json" workers)" 1 "keys: workers == 1 (the unlisted one never took part)"
    hasnt "$TMP/kbad.out" "run " "keys: the unlisted worker never ran anything"
    has "$TMP/kgood.out" "run " "keys: the listed worker ran the test"
    count_checks keys "$TMP/keys.json" keys
fi
if [ -n "$PIN_QUEEN" ]; then
    TARGET_PID=$PIN_TPID TARGET_LOG=$PIN_TLOG QUEEN_PID=$PIN_QUEEN
    wp=$PIN_WORKER
    wait_for "$TMP/kpin.seen" . 6
    if [ -s "$TMP/kpin.seen" ]; then
        between "$(cat "$TMP/kpin.seen")" 0 5 "pin: a worker pinning the wrong queen key prints 'does not match' within 5 s"
    else
        notok "pin: a worker pinning the wrong queen key prints 'does not match' within 5 s" "$(tail -n 3 "$TMP/kpin.out" | tr '\n' '|')"
    fi
    wait_queen
    stop_target
    stop_bg "$wp"
    is "$RC" 124 "pin: the queen (--expect 1, only that worker) is still waiting at timeout 8"
    hasnt "$TMP/kpin.out" "run " "pin: the worker never ran anything"
    hasnt "$TMP/pin.stderr" "joined" "pin: the worker never joined the queen"
    is "$(json_num "$TMP/pin.json" workers)" 0 "pin: the queen's summary has no workers"
    is "$(lines "$TARGET_LOG")" 0 "pin: the target saw no request"
fi

# ---- 3e. non-loopback bind without keys ------------------------------------------------------
qp=$(free_port)
timeout -k 2 5 "$PARROT" queen "$CL" --bind "tcp://0.0.0.0:$qp" -e PORT=9 >"$TMP/bind.stdout" 2>"$TMP/bind.stderr" </dev/null
is "$?" 2 "bind: tcp://0.0.0.0 without keys exits 2"
has "$TMP/bind.stderr" "refusing" "bind: ... with a line containing 'refusing'"
is "$(grep -c . "$TMP/bind.stderr")" 1 "bind: ... and only that one line"
start_queen insecure 10 "$CL" --bind "tcp://0.0.0.0:$qp" --insecure -e PORT=9
if wait_port "$qp" 3 && sleep 1 && kill -0 "$QUEEN_PID" 2>/dev/null; then
    ok "bind: with --insecure it binds tcp://0.0.0.0 and keeps listening"
else
    notok "bind: with --insecure it binds tcp://0.0.0.0 and keeps listening" "$(tail -n 3 "$TMP/insecure.stderr" | tr '\n' '|')"
fi
stop_bg "$QUEEN_PID"
hasnt "$TMP/insecure.stderr" "refusing" "bind: --insecure does not refuse"

# ---- 4. a worker joining mid-run -------------------------------------------------------------
if fresh_target join; then
    qp=$(free_port)
    ep=tcp://127.0.0.1:$qp
    start_queen join 30 "$CL" --bind "$ep" --expect 1 -e PORT="$TARGET_PORT" -e TAG=join \
        --vus 6 --duration 6s --out "$TMP/join.json"
    start_worker join1 "$ep"
    w1=$WPID
    w2=
    if wait_for "$TMP/join1.out" "run " 10; then
        sleep 2
        start_worker join2 "$ep"
        w2=$WPID
    else
        notok "join: the run starts" "worker join1 never got a run"
    fi
    wait_queen
    stop_target
    stop_bg "$w1"
    [ -n "$w2" ] && stop_bg "$w2"
    is "$RC" 0 "join: exit code 0"
    is "$(json_get "$TMP/join.json" workers)" 2 "join: summary.json workers == 2"
    is "$(json_num "$TMP/join.json" workers_lost)" 0 "join: workers_lost == 0"
    has "$TMP/join.stderr" "takes slots" "join: the queen logged that the new worker takes slots"
    has "$TMP/join2.out" "run " "join: the late worker ran a share of the running test"
    count_checks join "$TMP/join.json" join
fi

done_testing
