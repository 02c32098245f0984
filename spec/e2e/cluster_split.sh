#!/usr/bin/env bash
# spec/e2e/cluster_split.sh: how a cluster splits the load, checked the way a user would, against
# `parrot target`'s access log. `parrot queen` and `parrot worker` processes on loopback:
#   1. the open model (20 users/s), the rate model (20 iterations/s) over 2 workers: the total is
#      the scenario's; max_users = 3 over 2 workers: at most 3 users at once (vus_max = 3);
#   2. a worker joining mid-run, open and rate model: the total stays the scenario's (the new
#      worker does not replay the arrivals it missed), no second carries a spike, nothing dropped;
#      parrot.csv unique mode over 3 workers, one joining mid-run: every row used exactly once;
#   3. a scenario whose data.csv is a symlink, run by a worker whose bundle cache cannot be
#      written; `parrot keygen` into a directory whose parents do not exist.
# Independent clusters run side by side (the load is light); the script takes about 25 s.
. "$(dirname "$0")/lib.sh"

export PARROT_CACHE=$TMP/cache # the queens'; each worker gets its own below
declare -A QPID TPID TLOG RCS

# scenario NAME: write stdin to $TMP/NAME/NAME.lua (each scenario a directory: its bundle)
scenario() {
    mkdir -p "$TMP/$1"
    cat >"$TMP/$1/$1.lua"
}

# worker NAME ENDPOINT [CACHE]: `parrot worker` with one load thread (its own bundle cache, or
# CACHE); output in $TMP/NAME.out
worker() {
    local cache=${3:-$TMP/cache-$1}
    start_bg "$TMP/$1.out" env PARROT_CACHE="$cache" \
        timeout -k 2 40 "$PARROT" worker --queen "$2" --threads 1 --name "$1"
}

# cluster NAME SCENARIO WORKERS [queen options...]: a target, a queen for the scenario
# $TMP/SCENARIO/SCENARIO.lua expecting WORKERS workers (started here as NAME-1 .. NAME-WORKERS),
# summary in $TMP/NAME.json. The queen's endpoint is in EP[NAME].
declare -A EP
cluster() {
    local name=$1 scen=$2 n=$3 i
    shift 3
    start_target "$name" || { notok "$name: parrot target starts" "no 'listening on' line"; return 1; }
    TPID[$name]=$TARGET_PID
    TLOG[$name]=$TARGET_LOG
    EP[$name]=tcp://127.0.0.1:$(free_port)
    timeout -k 2 40 "$PARROT" queen "$TMP/$scen/$scen.lua" --bind "${EP[$name]}" --expect "$n" \
        -e PORT="$TARGET_PORT" --out "$TMP/$name.json" "$@" >"$TMP/$name.stdout" 2>"$TMP/$name.stderr" </dev/null &
    QPID[$name]=$!
    BG_PIDS+=("${QPID[$name]}")
    for i in $(seq "$n"); do worker "$name-$i" "${EP[$name]}"; done
}

# has_run NAME: wait (up to 10 s) until NAME's first worker has its run
has_run() {
    local _
    for _ in $(seq 100); do grep -qF "run " "$TMP/$1-1.out" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}

# finish NAME: wait for the queen (its exit code in RCS[NAME]), then stop the target so its
# access log is complete
finish() {
    wait "${QPID[$1]}"
    RCS[$1]=$?
    stop_bg "${TPID[$1]}"
}

# series_max FILE: the highest requests-per-second of the summary's per-second series, but for
# the last (partial) second
series_max() {
    python3 -c 'import json,sys; print(round(max([r["rps"] for r in json.load(open(sys.argv[1]))["series"]][:-1] or [0])))' "$1" 2>/dev/null
}

# ---- scenarios ---------------------------------------------------------------------------------
# Uniform arrivals make the counts exact: 20 a second for 4 s are 80 requests, whatever the split.
scenario open <<'EOF'
local http = require "parrot.http"
return parrot.scenario {
  name = "split_open",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.open { phases = { { rate = 20, duration = parrot.env.DURATION or "4s", dist = "uniform" } } },
  sessions = { { name = "arrive", run = function() http.get("/echo?open", { name = "arrival" }) end } },
}
EOF
scenario rate <<'EOF'
local http = require "parrot.http"
return parrot.scenario {
  name = "split_rate",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.rate { rate = 20, vus = 4, duration = parrot.env.DURATION or "4s" },
  sessions = { { name = "tick", run = function() http.get("/echo?rate", { name = "tick" }) end } },
}
EOF
# Each user holds its slot for 2 s: 20 arrivals a second fill max_users at once.
scenario maxu <<'EOF'
local http = require "parrot.http"
return parrot.scenario {
  name = "split_maxu",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.open { phases = { { rate = 20, duration = "3s" } }, max_users = 3 },
  sessions = { { name = "slow", run = function() http.get("/delay/2000", { name = "slow" }) end } },
}
EOF
# 300 users, each to be used once: about 60 are wanted a second for 6 s, so all are used up.
scenario unique <<'EOF'
local http = require "parrot.http"
local users = parrot.csv("users.csv", { mode = "unique" })
return parrot.scenario {
  name = "split_unique",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 6, duration = "6s" },
  sessions = { { name = "login", run = function(vu)
    local user = users:next()
    if user then http.get("/echo?user=" .. user.id .. "&slot=" .. vu.thread, { name = "login" }) end
    think(0.1)
  end } },
}
EOF
{
    echo id
    seq 1 300
} >"$TMP/unique/users.csv"
# data.csv is a symlink to a file outside the scenario's directory
mkdir -p "$TMP/shared"
printf 'id\nsym-7\nsym-8\n' >"$TMP/shared/data.csv"
scenario sym <<'EOF'
local http = require "parrot.http"
local data = parrot.csv("data.csv")
return parrot.scenario {
  name = "split_sym",
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 1, duration = "1s" },
  sessions = { { name = "read", run = function() http.get("/echo?" .. data:next().id); think(0.1) end } },
}
EOF
ln -s "$TMP/shared/data.csv" "$TMP/sym/data.csv"

# ---- 1. the split over 2 workers ---------------------------------------------------------------
cluster open open 2
cluster rate rate 2
cluster maxu maxu 2
for c in open rate maxu; do finish "$c"; done

is "${RCS[open]}" 0 "open, 2 workers: exit code 0"
is "$(json_get "$TMP/open.json" workers)" 2 "open, 2 workers: both took part"
between "$(lines "${TLOG[open]}" "/echo?open")" 77 81 "open 20/s for 4 s over 2 workers: 80 arrivals in the access log"
is "${RCS[rate]}" 0 "rate, 2 workers: exit code 0"
between "$(lines "${TLOG[rate]}" "/echo?rate")" 78 82 "rate 20/s for 4 s over 2 workers: 80 iterations in the access log"
is "$(json_num "$TMP/rate.json" totals.dropped)" 0 "rate, 2 workers: nothing dropped (4 VUs are plenty)"
is "${RCS[maxu]}" 0 "max_users, 2 workers: exit code 0"
is "$(json_get "$TMP/maxu.json" totals.vus_max)" 3 "max_users = 3 over 2 workers: at most 3 users at once (vus_max)"
gt "$(json_num "$TMP/maxu.json" totals.dropped)" 20 "max_users: the arrivals past it are dropped"
between "$(lines "${TLOG[maxu]}" "/delay/2000")" 3 9 "max_users: the access log holds what 3 users can do in 3 s"

# ---- 2. a worker joining mid-run ---------------------------------------------------------------
cluster openj open 1 -e DURATION=6s
cluster ratej rate 1 -e DURATION=6s
cluster unique unique 2
has_run openj && has_run ratej && has_run unique
sleep 2.5 # into the runs
worker openj-late "${EP[openj]}"
worker ratej-late "${EP[ratej]}"
worker unique-late "${EP[unique]}"
for c in openj ratej unique; do finish "$c"; done

is "${RCS[openj]}" 0 "open, a worker joins: exit code 0"
is "$(json_get "$TMP/openj.json" workers)" 2 "open, a worker joins: it took part"
has_share() { if grep -qF "share changed" "$1"; then ok "$2"; else notok "$2" "$(tail -n 3 "$1" | tr '\n' '|')"; fi; }
has_share "$TMP/openj-1.out" "open, a worker joins: the first one shed part of its share"
between "$(lines "${TLOG[openj]}" "/echo?open")" 116 122 "open 20/s for 6 s, a worker joining: still 120 arrivals (no catch-up)"
between "$(series_max "$TMP/openj.json")" 15 24 "open, a worker joins: no second above 24 requests"
is "${RCS[ratej]}" 0 "rate, a worker joins: exit code 0"
is "$(json_get "$TMP/ratej.json" workers)" 2 "rate, a worker joins: it took part"
between "$(lines "${TLOG[ratej]}" "/echo?rate")" 117 123 "rate 20/s for 6 s, a worker joining: still 120 iterations"
is "$(json_num "$TMP/ratej.json" totals.dropped)" 0 "rate, a worker joins: nothing counted as dropped"
between "$(series_max "$TMP/ratej.json")" 15 24 "rate, a worker joins: no second above 24 requests"

is "${RCS[unique]}" 0 "csv unique, 3 workers: exit code 0"
is "$(json_get "$TMP/unique.json" workers)" 3 "csv unique: 3 workers took part"
grep -o 'user=[0-9]*' "${TLOG[unique]}" | sort >"$TMP/users.seen"
is "$(wc -l <"$TMP/users.seen" | tr -d ' ')" 300 "csv unique: 300 rows were asked for"
is "$(sort -u "$TMP/users.seen" | wc -l | tr -d ' ')" 300 "csv unique: each row exactly once across the cluster"
is "$(uniq -d "$TMP/users.seen" | head -n 3 | tr '\n' ' ')" "" "csv unique: no row repeats"
gt "$(lines "${TLOG[unique]}" "&slot=2")" 0 "csv unique: the worker that joined mid-run got rows of its own"

# ---- 3. bundles and keys -----------------------------------------------------------------------
start_target sym || notok "sym: parrot target starts" "no 'listening on' line"
ep=tcp://127.0.0.1:$(free_port)
timeout -k 2 30 "$PARROT" queen "$TMP/sym/sym.lua" --bind "$ep" --expect 1 -e PORT="$TARGET_PORT" \
    --out "$TMP/sym.json" >"$TMP/sym.stdout" 2>"$TMP/sym.stderr" </dev/null &
qp=$!
BG_PIDS+=("$qp")
worker sym-w "$ep" /proc/nope/cache
wait "$qp"
rc=$?
stop_target
is "$rc" 0 "a symlinked data.csv, a worker without a writable cache: exit code 0"
gt "$(lines "$TARGET_LOG" "/echo?sym-7")" 0 "the symlink's rows reached the worker"
has_warning() { if grep -qF "$2" "$1"; then ok "$3"; else notok "$3" "$(tail -n 3 "$1" | tr '\n' '|')"; fi; }
has_warning "$TMP/sym-w.out" "bundle cache is not writable" "the worker says once that its cache is not writable"
is "$(grep -c "cannot read" "$TMP/sym-w.out")" 0 "and it read every file of the bundle"

"$PARROT" keygen "$TMP/keys/a/b" >"$TMP/keygen.out" 2>&1
is "$?" 0 "keygen into a directory whose parents do not exist: exit code 0"
is "$(stat -c %a "$TMP/keys/a" "$TMP/keys/a/b" 2>/dev/null | tr '\n' ' ')" "700 700 " "keygen: the directories it makes are private"
is "$(stat -c %a "$TMP/keys/a/b/parrot.secret" 2>/dev/null)" 600 "keygen: the secret is private"

done_testing
