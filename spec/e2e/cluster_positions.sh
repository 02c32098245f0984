#!/usr/bin/env bash
# spec/e2e/cluster_positions.sh: positions and ids are per run across a cluster, not per worker.
# `parrot queen` + real `parrot worker`s (each in its own network namespace when root, else on
# loopback with its own source address, so the target's access log tells the workers apart):
#   1. a Tsung file, 2 workers and a third joining mid-run: tsung_userid (= get_unique_id) is
#      1..N over the whole test, each id once; the order="iter" file source hands its lines out
#      in turn over the cluster (N users over M lines: each line N/M times, give or take one);
#   2. parrot.csv sequential, 40 rows used 40 times by 2 workers: each row exactly once;
#   3. a Tsung order="iter" file of 30 lines read by 30 users on 2 workers: each line once;
#   4. a worker killed mid-run: the ids handed out later never repeat one it had.
# The clusters run side by side (the load is light); the script takes about 20 s.
. "$(dirname "$0")/lib.sh"

export PARROT_CACHE=$TMP/cache # the queens'; each worker gets its own below
declare -A QPID RCS

# ---- where the processes run -------------------------------------------------------------------
# With namespaces: the queens and the target in NS0 (10.77.0.1, a bridge), worker i in NSi
# (10.77.0.(i+1)). Without: everything on loopback, worker i with --source 127.0.0.(i+1).
NS=()
NS_MADE=
netns_up() {
    local i ns
    ip netns add "ppos$$0" && NS_MADE=1 || return 1
    ip -n "ppos$$0" link add br0 type bridge || return 1
    ip -n "ppos$$0" addr add 10.77.0.1/24 dev br0 && ip -n "ppos$$0" link set br0 up &&
        ip -n "ppos$$0" link set lo up || return 1
    for i in 1 2 3 4 5 6; do
        ns=ppos$$$i
        ip netns add "$ns" || return 1
        NS[i]=$ns
        ip link add eth0 netns "$ns" type veth peer name "v$i" netns "ppos$$0" || return 1
        ip -n "ppos$$0" link set "v$i" master br0 && ip -n "ppos$$0" link set "v$i" up || return 1
        ip -n "$ns" addr add "10.77.0.$((i + 1))/24" dev eth0 && ip -n "$ns" link set eth0 up &&
            ip -n "$ns" link set lo up || return 1
    done
}
netns_down() {
    [ -n "$NS_MADE" ] || return 0
    ip -n "ppos$$0" link del br0 2>/dev/null
    local i
    for i in 0 1 2 3 4 5 6; do ip netns del "ppos$$$i" 2>/dev/null; done
    NS_MADE=
}
trap 'cleanup; netns_down' EXIT

IN0=() # the command prefix that runs in the queens' and target's place
if [ "$(id -u)" = 0 ] && ip netns list >/dev/null 2>&1 && netns_up; then
    HOST=10.77.0.1 NET=10.77.0
    IN0=(ip netns exec "ppos$$0")
    echo "# each worker in its own network namespace"
else
    netns_down
    HOST=127.0.0.1 NET=127.0.0
    echo "# on loopback, each worker with its own source address"
fi

# the target (in NS0), one access log for every cluster: paths tell the scenarios apart
TARGET_LOG=$TMP/target.log
: >"$TARGET_LOG"
start_bg "$TMP/target.out" "${IN0[@]}" timeout -k 2 60 "$PARROT" target --host "$HOST" --port 0 --log "$TARGET_LOG"
TPID=$BG_PID
for _ in $(seq 50); do grep -q "listening on" "$TMP/target.out" && break; sleep 0.1; done
TPORT=$(sed -n 's#.*listening on http://[^:]*:\([0-9][0-9]*\).*#\1#p' "$TMP/target.out" | head -n 1)
if [ -z "$TPORT" ]; then
    notok "the target starts" "$(tail -n 3 "$TMP/target.out")"
    done_testing
fi

# queen NAME PORT FILE WORKERS [options...]: a queen for FILE expecting WORKERS workers; summary
# in $TMP/NAME.json, exit code later in RCS[NAME] (finish)
queen() {
    local name=$1 port=$2 file=$3 n=$4
    shift 4
    "${IN0[@]}" timeout -k 2 40 "$PARROT" queen "$file" --bind "tcp://$HOST:$port" --insecure --expect "$n" \
        -e HOST="$HOST" -e PORT="$TPORT" --out "$TMP/$name.json" "$@" >"$TMP/$name.stdout" 2>"$TMP/$name.stderr" </dev/null &
    QPID[$name]=$!
    BG_PIDS+=("${QPID[$name]}")
}

# worker I NAME PORT: worker number I (its namespace or source address) for the queen on PORT;
# output in $TMP/NAME.out, pid (the timeout's) in WPID
worker() {
    local i=$1 name=$2 port=$3 where=() src=()
    if [ -n "$NS_MADE" ]; then where=(ip netns exec "${NS[$i]}"); else src=(--source "$NET.$((i + 1))"); fi
    mkdir -p "$TMP/cache-$name"
    start_bg "$TMP/$name.out" "${where[@]}" env PARROT_CACHE="$TMP/cache-$name" \
        timeout -k 2 40 "$PARROT" worker --queen "tcp://$HOST:$port" --threads 1 --name "$name" "${src[@]}"
    WPID=$BG_PID
}

finish() { wait "${QPID[$1]}"; RCS[$1]=$?; }

# values KEY [IP]: the values of query parameter KEY in the access log (of worker address IP)
values() {
    grep -F "${2:+$2 }" "$TARGET_LOG" | sed -E -n "s#^.*\"GET /echo\\?([^ ]*&)?$1=([^& ]*)[& ].*\$#\\2#p"
}
# is_once DESC LIST-FILE WANT-COUNT: the list holds WANT-COUNT values, no one twice
is_once() {
    local n u
    n=$(wc -l <"$2" | tr -d ' ')
    u=$(sort -u "$2" | wc -l | tr -d ' ')
    if [ "$n" = "$3" ] && [ "$u" = "$3" ]; then ok "$1"; else
        notok "$1" "$n values, $u distinct, want $3 each once; twice: $(sort "$2" | uniq -d | head -n 5 | tr '\n' ' ')"
    fi
}

# ---- scenarios ---------------------------------------------------------------------------------
mkdir -p "$TMP/ids" "$TMP/seq" "$TMP/iter" "$TMP/kill"
# 1. users arrive 12 a second for 5 s; each reads the next line of a 7-line file
cat >"$TMP/ids/ids.xml" <<'EOF'
<?xml version="1.0"?>
<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd">
<tsung loglevel="notice" version="1.0">
  <clients><client host="localhost" use_controller_vm="true"/></clients>
  <servers><server host="127.0.0.1" port="8080" type="tcp"/></servers>
  <load>
    <arrivalphase phase="1" duration="5" unit="second"><users arrivalrate="12" unit="second"/></arrivalphase>
  </load>
  <options><option name="file_server" id="lines" value="lines.csv"/></options>
  <sessions>
    <session name="ids" probability="100" type="ts_http">
      <setdynvars sourcetype="file" fileid="lines" order="iter"><var name="line"/></setdynvars>
      <request subst="true"><http url="/echo?uid=%%_tsung_userid%%&amp;u=%%ts_user_server:get_unique_id%%&amp;line=%%_line%%" method="GET"/></request>
      <thinktime value="0.2"/>
      <request subst="true"><http url="/echo?again=%%ts_user_server:get_unique_id%%" method="GET"/></request>
    </session>
  </sessions>
</tsung>
EOF
seq -f 'l%g' 1 7 >"$TMP/ids/lines.csv"
# 2. 40 rows, 40 iterations over 2 workers (20 each)
cat >"$TMP/seq/seq.lua" <<'EOF'
local http = require "parrot.http"
local rows = parrot.csv("rows.csv")
return parrot.scenario {
  name = "positions_seq",
  target = "http://" .. parrot.env.HOST .. ":" .. parrot.env.PORT,
  load = parrot.closed { vus = 4, iterations = 40 },
  sessions = { { name = "row", run = function()
    http.get("/echo?row=" .. rows:next().id, { name = "row" })
    think(0.05)
  end } },
}
EOF
{
    echo id
    seq 1 40
} >"$TMP/seq/rows.csv"
# 3. 30 users (maxnumber), 30 lines
sed -e 's#<users arrivalrate="12" unit="second"/>#<users maxnumber="30" arrivalrate="15" unit="second"/>#' \
    -e 's#uid=%%_tsung_userid%%&amp;u=%%ts_user_server:get_unique_id%%&amp;line=%%_line%%#iter=%%_line%%#' \
    -e '/again=/d' "$TMP/ids/ids.xml" >"$TMP/iter/iter.xml"
seq -f 'i%g' 1 30 >"$TMP/iter/lines.csv"
# 4. users arrive 15 a second for 5 s, each holding its id for 0.5 s
sed -e 's#arrivalrate="12"#arrivalrate="15"#' -e 's#uid=%%_tsung_userid%%&amp;u=#kid=#' \
    -e 's#&amp;line=%%_line%%##' -e 's#again=#kagain=#' -e 's#value="0.2"#value="0.5"#' \
    "$TMP/ids/ids.xml" >"$TMP/kill/kill.xml"
cp "$TMP/ids/lines.csv" "$TMP/kill/lines.csv"

# ---- the runs ----------------------------------------------------------------------------------
declare -A PORT
for c in ids seq iter kill; do PORT[$c]=$(free_port); done
queen ids "${PORT[ids]}" "$TMP/ids/ids.xml" 2 --server "$HOST:$TPORT"
queen seq "${PORT[seq]}" "$TMP/seq/seq.lua" 2
queen iter "${PORT[iter]}" "$TMP/iter/iter.xml" 2 --server "$HOST:$TPORT"
queen kill "${PORT[kill]}" "$TMP/kill/kill.xml" 2 --server "$HOST:$TPORT"
worker 1 ids-1 "${PORT[ids]}"
worker 2 ids-2 "${PORT[ids]}"
worker 1 seq-1 "${PORT[seq]}"
worker 2 seq-2 "${PORT[seq]}"
worker 1 iter-1 "${PORT[iter]}"
worker 2 iter-2 "${PORT[iter]}"
worker 4 kill-1 "${PORT[kill]}"
worker 5 kill-2 "${PORT[kill]}"
VICTIM=$WPID # `timeout`: the worker is its child
for f in ids-1 kill-2; do
    for _ in $(seq 100); do grep -qF "run " "$TMP/$f.out" 2>/dev/null && break; sleep 0.1; done
done
sleep 2 # into the runs: a third worker joins one, a worker of the other is killed
worker 3 ids-3 "${PORT[ids]}"
worker 6 kill-3 "${PORT[kill]}"
victim=$(pgrep -P "$VICTIM" | head -n 1)
disown "$VICTIM" 2>/dev/null # no "Killed" job notice on stderr
[ -n "$victim" ] && kill -KILL "$victim"
for c in ids seq iter kill; do finish "$c"; done
stop_bg "$TPID"

# ---- 1. Tsung ids over 3 workers (one joining mid-run) -----------------------------------------
is "${RCS[ids]}" 0 "tsung ids: the queen exits 0"
is "$(json_get "$TMP/ids.json" workers)" 3 "tsung ids: 3 workers took part (one joined mid-run)"
values uid >"$TMP/uid"
n=$(wc -l <"$TMP/uid" | tr -d ' ')
between "$n" 45 75 "tsung ids: about 60 users arrived (12 a second for 5 s)"
is_once "tsung ids: each tsung_userid once over the cluster" "$TMP/uid" "$n"
is "$(sort -n "$TMP/uid" | tr '\n' ' ')" "$(seq 1 "$n" | tr '\n' ' ')" "tsung ids: the ids are 1..$n, none skipped"
is "$(grep -cE '/echo\?uid=([0-9]+)&u=\1&' "$TARGET_LOG")" "$n" "tsung ids: get_unique_id is tsung_userid"
values again | sort -n >"$TMP/again"
is "$(tr '\n' ' ' <"$TMP/again")" "$(sort -n "$TMP/uid" | tr '\n' ' ')" "tsung ids: each user keeps its id for its whole session"
for i in 1 2 3; do
    values uid "$NET.$((i + 1))" >"$TMP/uid-$i"
    gt "$(wc -l <"$TMP/uid-$i")" 0 "tsung ids: worker $i handed out ids"
done
is "$(cat "$TMP/uid-1" "$TMP/uid-2" "$TMP/uid-3" | sort | uniq -d | wc -l | tr -d ' ')" 0 \
    "tsung ids: no id on two workers (the one that joined continued from the others)"
# the iter source: N users over 7 lines, each line handed out in turn: lines 1..r get q+1 users
values line | sort | uniq -c | awk '{ print $2 "=" $1 }' | sort -V | tr '\n' ' ' >"$TMP/line-counts"
want=$(awk -v n="$n" 'BEGIN { q = int(n / 7); r = n % 7; for (i = 1; i <= 7; i++) printf "l%d=%d ", i, q + (i <= r) }')
is "$(cat "$TMP/line-counts")" "$want" "tsung ids: the order=\"iter\" file goes round the cluster in turn ($n users, 7 lines)"

# ---- 2. parrot.csv sequential ------------------------------------------------------------------
is "${RCS[seq]}" 0 "csv sequential: the queen exits 0"
is "$(json_get "$TMP/seq.json" workers)" 2 "csv sequential: 2 workers took part"
values row >"$TMP/rows"
is_once "csv sequential: 40 rows used 40 times over 2 workers, each row exactly once" "$TMP/rows" 40
for i in 1 2; do
    gt "$(values row "$NET.$((i + 1))" | wc -l)" 0 "csv sequential: worker $i sent rows"
done

# ---- 3. Tsung order="iter" ---------------------------------------------------------------------
is "${RCS[iter]}" 0 "tsung iter: the queen exits 0"
values iter >"$TMP/iters"
is_once "tsung iter: a 30-line file read by 30 users on 2 workers, each line exactly once" "$TMP/iters" 30
for i in 1 2; do
    gt "$(values iter "$NET.$((i + 1))" | wc -l)" 0 "tsung iter: worker $i read lines"
done

# ---- 4. a worker killed mid-run ----------------------------------------------------------------
is "${RCS[kill]}" 0 "tsung ids, a worker killed: the run completes with exit code 0"
is "$(json_num "$TMP/kill.json" workers_lost)" 1 "tsung ids, a worker killed: workers_lost == 1"
values kid >"$TMP/kid"
gt "$(wc -l <"$TMP/kid")" 40 "tsung ids, a worker killed: the users went on arriving"
is_once "tsung ids, a worker killed: no id twice, before or after" "$TMP/kid" "$(wc -l <"$TMP/kid" | tr -d ' ')"
gt "$(values kid "$NET.7" | wc -l)" 0 "tsung ids, a worker killed: the one that joined handed out ids"

done_testing
