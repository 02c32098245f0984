#!/usr/bin/env bash
# spec/e2e/cluster_faults.sh: a cluster under faults, checked as a user would. A worker's link cut
# for 2 s (a TCP proxy on loopback) and a worker frozen (SIGSTOP) for longer than three heartbeats
# both end with summary request counts equal to the target's access log and `workers` equal to
# the number of processes; a VU stuck in an endless loop is reported with file:line and the
# worker still stops; a keyless worker against a keyed queen is told so within 5 s; malformed
# messages are counted in summary.json's wire_errors; --serve starts later runs only on Enter;
# queen options that belong to workers are refused. Every process runs under `timeout`; the whole
# script stays under 60 s.
. "$(dirname "$0")/lib.sh"

CL=$SCEN/cluster_load.lua
export PARROT_CACHE=$TMP/cache
trap 'echo "not ok - cluster_faults.sh: the whole script takes < 60 s: stopped at 58 s"; exit 1' USR1
(sleep 58 && kill -USR1 $$) >/dev/null 2>&1 </dev/null &
WATCHDOG=$!
faults_cleanup() {
    kill "$WATCHDOG" 2>/dev/null
    cleanup
}
trap faults_cleanup EXIT

# start_worker NAME ENDPOINT [options...]: a 1-thread worker with its own cache; pid in WPID
start_worker() {
    local name=$1 ep=$2
    shift 2
    mkdir -p "$TMP/cache-$name"
    start_bg "$TMP/$name.out" env PARROT_CACHE="$TMP/cache-$name" \
        timeout -k 2 50 "$PARROT" worker --queen "$ep" --threads 1 --name "$name" "$@"
    WPID=$BG_PID
}
# start_queen NAME LIMIT ARGS...: stdout/stderr in $TMP/NAME.stdout/.stderr, pid in QPID_NAME
start_queen() {
    local name=$1 limit=$2
    shift 2
    timeout -k 2 "$limit" "$PARROT" queen "$@" >"$TMP/$name.stdout" 2>"$TMP/$name.stderr" </dev/null &
    BG_PIDS+=("$!")
    printf -v "QPID_$name" %s "$!"
}
wait_for() { # FILE STRING SECONDS
    local _
    for _ in $(seq $(($3 * 10))); do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
has() { if grep -qF -- "$2" "$1" 2>/dev/null; then ok "$3"; else notok "$3" "no '$2' in $(basename "$1"): $(tail -n 3 "$1" 2>/dev/null | tr '\n' '|')"; fi; }
parrot_of() { pgrep -P "$1" | head -n 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# A TCP proxy on loopback: LISTEN -> TARGET; at CUT_AT s it closes every connection and refuses
# new ones for CUT_FOR s (a link that drops and comes back: ZeroMQ reconnects underneath).
cat >"$TMP/proxy.py" <<'PY'
import socket, sys, threading, time
listen, target, cut_at, cut_for = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
conns, lock = [], threading.Lock()
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
    except OSError: pass
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
def serve(ls):
    while True:
        try: c, _ = ls.accept()
        except OSError: return
        try: u = socket.create_connection(("127.0.0.1", target))
        except OSError:
            c.close(); continue
        with lock: conns.extend([c, u])
        for a, b in ((c, u), (u, c)): threading.Thread(target=pipe, args=(a, b), daemon=True).start()
def open_listener():
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", listen)); ls.listen(16)
    threading.Thread(target=serve, args=(ls,), daemon=True).start(); return ls
ls = open_listener(); print("listening", flush=True)
time.sleep(cut_at)
ls.close()
with lock:
    for s in conns:
        try: s.shutdown(socket.SHUT_RDWR); s.close()
        except OSError: pass
    conns.clear()
print("cut", flush=True)
time.sleep(cut_for)
ls = open_listener(); print("back", flush=True)
time.sleep(120)
PY

# count_checks NAME JSON TAG LOG
count_checks() {
    local name=$1 js=$2 tag=$3 log=$4 n
    n=$(json_num "$js" totals.requests)
    gt "$n" 0 "$name: requests were made"
    is "$n" "$(lines "$log")" "$name: totals.requests equals the access log lines (none lost, none counted twice)"
    is "$(json_num "$js" requests.load.count)" "$(lines "$log" "cluster-load-$tag ")" \
        "$name: load requests equal the access log lines for the load path"
    is "$(json_get "$js" workers)" 2 "$name: summary.json workers == 2 (the number of worker processes)"
}

# ---- 1 and 2 side by side: a 2 s link cut, and a worker frozen for 4 s -----------------------
start_target blip || notok "blip: parrot target starts" "no 'listening on' line"
BLIP_PORT=$TARGET_PORT BLIP_LOG=$TARGET_LOG BLIP_TPID=$TARGET_PID
start_target frozen || notok "frozen: parrot target starts" "no 'listening on' line"
FROZEN_PORT=$TARGET_PORT FROZEN_LOG=$TARGET_LOG FROZEN_TPID=$TARGET_PID
qp=$(free_port) px=$(free_port)
start_bg "$TMP/proxy.out" timeout 40 python3 "$TMP/proxy.py" "$px" "$qp" 3 2
wait_for "$TMP/proxy.out" listening 5
start_queen blip 40 "$CL" --bind "tcp://127.0.0.1:$qp" --expect 2 -e PORT="$BLIP_PORT" -e TAG=blip \
    --vus 4 --duration 7s --out "$TMP/blip.json"
start_worker blipa "tcp://127.0.0.1:$qp"
WA=$WPID
start_worker blipb "tcp://127.0.0.1:$px" # through the proxy
WB=$WPID
fq=$(free_port)
start_queen frozen 40 "$CL" --bind "tcp://127.0.0.1:$fq" --expect 2 -e PORT="$FROZEN_PORT" -e TAG=frozen \
    --vus 4 --duration 9s --out "$TMP/frozen.json"
start_worker frozena "tcp://127.0.0.1:$fq"
FA=$WPID
start_worker frozenb "tcp://127.0.0.1:$fq"
FB=$WPID
if wait_for "$TMP/frozenb.out" "run 1" 10; then
    sleep 2
    victim=$(parrot_of "$FB")
    kill -STOP "$victim"
    sleep 4.5 # longer than three heartbeats: the queen drops it, then it comes back
    kill -CONT "$victim"
else
    notok "frozen: the run starts" "worker frozenb never got a run"
fi
wait "$QPID_blip"
is "$?" 0 "blip: queen exit code 0"
wait "$QPID_frozen"
is "$?" 0 "frozen: queen exit code 0"
stop_bg "$BLIP_TPID"
stop_bg "$FROZEN_TPID"
has "$TMP/proxy.out" back "blip: the proxy cut the link for 2 s mid-run"
count_checks blip "$TMP/blip.json" blip "$BLIP_LOG"
has "$TMP/frozen.stderr" "missed 3 heartbeats" "frozen: the queen dropped the frozen worker"
has "$TMP/frozen.stderr" "is back" "frozen: ... and took it back when it woke up"
count_checks frozen "$TMP/frozen.json" frozen "$FROZEN_LOG"
is "$(json_num "$TMP/frozen.json" workers_lost)" 0 "frozen: workers_lost == 0 (it came back)"
for p in "$WA" "$WB" "$FA" "$FB"; do stop_bg "$p"; done

# ---- 3. a virtual user stuck in an endless loop ----------------------------------------------
if start_target stuck; then
    sq=$(free_port)
    start_queen stuck 30 "$SCEN/stuck.lua" --bind "tcp://127.0.0.1:$sq" --expect 1 -e PORT="$TARGET_PORT"
    # the stuck thread's Lua state is abandoned on purpose: a sanitizer build must not call it a leak
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 start_worker stuckw "tcp://127.0.0.1:$sq"
    SW=$WPID
    if wait_for "$TMP/stuck.stderr" "stuck in Lua" 10; then ok "stuck: the queen reports a load thread stuck in Lua"; else notok "stuck: the queen reports a load thread stuck in Lua" "$(tail -n 3 "$TMP/stuck.stderr" | tr '\n' '|')"; fi
    has "$TMP/stuck.stderr" "stuck.lua:11" "stuck: ... with the file and line of the loop (stuck.lua:11)"
    has "$TMP/stuckw.out" "stuck.lua:11" "stuck: the worker says it too"
    t0=$(now)
    kill -TERM "$(parrot_of "$SW")"
    for _ in $(seq 80); do kill -0 "$SW" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SW" 2>/dev/null; then
        notok "stuck: SIGTERM ends the worker within 8 s" "still running after $(since "$t0") s: $(tail -n 2 "$TMP/stuckw.out" | tr '\n' '|')"
    else
        wait "$SW"
        is "$?" 0 "stuck: SIGTERM ends the worker (exit code 0) within 8 s ($(since "$t0") s)"
    fi
    wait "$QPID_stuck"
    rc=$?
    if [ "$rc" != 124 ] && [ "$rc" != 137 ]; then ok "stuck: the queen ends once its only worker left (exit $rc)"; else notok "stuck: the queen ends once its only worker left" "exit $rc"; fi
    stop_target
fi

# ---- 4. keys on one side only ----------------------------------------------------------------
K=$TMP/keys
mkdir -p "$K"
"$PARROT" keygen "$K/queen" >/dev/null 2>&1
"$PARROT" keygen "$K/w" >/dev/null 2>&1
cat "$K/w/parrot.key" >"$K/allow"
kq=$(free_port)
start_queen keyed 8 "$CL" --bind "tcp://127.0.0.1:$kq" --keys "$K/queen" --allow "$K/allow" -e PORT=9
t0=$(now)
start_worker keyless "tcp://127.0.0.1:$kq"
KW=$WPID
if wait_for "$TMP/keyless.out" "has none" 5; then
    between "$(since "$t0")" 0 5 "keys: a keyless worker against a keyed queen says so within 5 s"
else
    notok "keys: a keyless worker against a keyed queen says so within 5 s" "$(tail -n 3 "$TMP/keyless.out" | tr '\n' '|')"
fi
has "$TMP/keyless.out" "--keys DIR --queen-key" "keys: ... and what to give it"
if wait_for "$TMP/keyed.stderr" "failed the CURVE handshake" 3; then ok "keys: the queen logs the refused handshake"; else notok "keys: the queen logs the refused handshake" "$(tail -n 3 "$TMP/keyed.stderr" | tr '\n' '|')"; fi
is "$(grep -c "failed the CURVE handshake" "$TMP/keyed.stderr")" 1 "keys: ... once, though the worker keeps retrying"
stop_bg "$KW"
stop_bg "$QPID_keyed"

# ---- 5. malformed messages are counted ---------------------------------------------------------
# A peer that speaks ZMTP 3.0 (NULL security) as a DEALER and sends junk: 4 frames of an unknown
# protocol version, 3 that are not msgpack, and 1 message of two parts.
cat >"$TMP/junk.py" <<'PY'
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([3, 0]) + b"NULL".ljust(20, b"\x00") + b"\x00" * 32)
prop = lambda n, v: bytes([len(n)]) + n + struct.pack(">I", len(v)) + v
ready = b"\x05READY" + prop(b"Socket-Type", b"DEALER") + prop(b"Identity", b"junk")
s.sendall(bytes([0x04, len(ready)]) + ready)
frame = lambda d, more=False: bytes([1 if more else 0, len(d)]) + d
time.sleep(0.3)
for _ in range(4): s.sendall(frame(b"\x93\x07\x01\x80"))
for _ in range(3): s.sendall(frame(b"\xc1junk"))
s.sendall(frame(b"a", True) + frame(b"b"))
time.sleep(1)
PY
if start_target junk; then
    jq=$(free_port)
    start_queen junk 20 "$CL" --bind "tcp://127.0.0.1:$jq" --expect 1 -e PORT="$TARGET_PORT" -e TAG=junk \
        --vus 2 --duration 3s --out "$TMP/junk.json"
    wait_port "$jq" 5
    timeout 10 python3 "$TMP/junk.py" "$jq" >"$TMP/junk.out" 2>&1
    start_worker junkw "tcp://127.0.0.1:$jq"
    JW=$WPID
    wait "$QPID_junk"
    is "$?" 0 "junk: the run completes with exit code 0 despite the junk"
    is "$(json_num "$TMP/junk.json" wire_errors)" 8 "junk: summary.json wire_errors == 8 malformed messages"
    has "$TMP/junk.stdout" "8 malformed messages" "junk: the summary shows the count"
    is "$(grep -c "dropped a malformed message" "$TMP/junk.stderr")" 3 "junk: one line per kind (version, encoding, frames)"
    is "$(json_get "$TMP/junk.json" workers)" 1 "junk: the junk peer is not a worker"
    stop_bg "$JW"
    stop_target
fi

# ---- 6. --serve on a terminal: the first run starts at --expect, later ones only on Enter ------
cat >"$TMP/serve.py" <<'PY'
import os, pty, select, subprocess, sys, time
parrot, scen, port, qp, tmp = sys.argv[1:6]
pid, fd = pty.fork()
if pid == 0:
    os.execv(parrot, [parrot, "queen", scen, "--bind", "tcp://127.0.0.1:" + qp, "--expect", "1", "--serve",
                      "-e", "PORT=" + port, "-e", "TAG=serve", "--vus", "2", "--duration", "1s", "--quiet"])
out = b""
def until(pred, secs):
    global out
    end = time.time() + secs
    while time.time() < end and not pred():
        if select.select([fd], [], [], 0.1)[0]:
            try: out += os.read(fd, 65536)
            except OSError: break
    return pred()
runs = lambda: out.count(b"scenario    cluster_serve")
def worker(name):
    env = dict(os.environ, PARROT_CACHE=os.path.join(tmp, "cache-" + name))
    return subprocess.Popen([parrot, "worker", "--queen", "tcp://127.0.0.1:" + qp, "--threads", "1", "--name", name],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
ws = [worker("serve1")]
print("first", until(lambda: runs() == 1 and b"press Enter to run" in out, 10))
ws.append(worker("serve2"))
until(lambda: b"serve2 joined" in out, 5)
until(lambda: runs() > 1, 1.5)
print("joined", b"serve2 joined" in out, runs())
os.write(fd, b"\n")
print("enter", until(lambda: runs() == 2 and out.count(b"press Enter to run") == 2, 10),
      b"workers 2" in out.split(b"scenario    cluster_serve")[-1])
os.write(fd, b"q\n")
until(lambda: False, 0.5)
_, st = os.waitpid(pid, 0)
print("exit", os.WEXITSTATUS(st) if os.WIFEXITED(st) else "signal")
for w in ws: w.terminate()
PY
if start_target serve; then
    timeout 30 python3 "$TMP/serve.py" "$PARROT" "$CL" "$TARGET_PORT" "$(free_port)" "$TMP" >"$TMP/serve.res" 2>&1
    is "$(sed -n 's/^first //p' "$TMP/serve.res")" True "serve: the first run starts once --expect workers joined"
    is "$(sed -n 's/^joined //p' "$TMP/serve.res")" "True 1" "serve: a worker joining between runs starts no run"
    is "$(sed -n 's/^enter //p' "$TMP/serve.res")" "True True" "serve: Enter runs the test again, with both workers"
    is "$(sed -n 's/^exit //p' "$TMP/serve.res")" 0 "serve: q quits with exit code 0"
    stop_target
fi

# ---- 7. options that belong to workers, and --serve without a terminal ----------------------
timeout 5 "$PARROT" queen "$CL" --threads 2 -e PORT=9 >"$TMP/thr.out" 2>&1 </dev/null
is "$?" 2 "options: parrot queen --threads exits 2"
has "$TMP/thr.out" "parrot worker --threads" "options: ... pointing to parrot worker --threads"
timeout 5 "$PARROT" queen "$CL" --source 127.0.0.1 -e PORT=9 >"$TMP/src.out" 2>&1 </dev/null
is "$?" 2 "options: parrot queen --source exits 2 (a worker option)"
timeout 5 "$PARROT" queen "$CL" --serve -e PORT=9 >"$TMP/serve.out" 2>&1 </dev/null
is "$?" 2 "options: --serve without a terminal exits 2"
has "$TMP/serve.out" "--serve needs a terminal" "options: ... saying it needs one"

done_testing
