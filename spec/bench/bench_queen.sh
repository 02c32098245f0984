#!/usr/bin/env bash
# The queen's cost of merging statistics (issue 3): spec/bench/wirebench.c simulates N workers over the
# wire (one DEALER each, one snapshot/s of 20 names x ~100 latencies, heartbeats, never any HTTP);
# `parrot queen --url http://127.0.0.1:9/` runs a 20 s test with them (queen and tool pinned to
# different CPUs when there are two). Figures:
#  - CPU % of one core: the queen's utime+stime (/proc/PID/stat) over the steady middle 10 s;
#  - CPU per snapshot: the queen's CPU from the run's start to its end / snapshots it merged, and
#    the share of a core that N snapshots/s need at that cost (the honest figure once it saturates);
#  - peak RSS: VmHWM; and the summary's request count must equal what wirebench sent.
# A queen that cannot keep up merges a backlog after the workers finished: its run lasts longer
# than the test; past CAP seconds after the end it is killed. Goal: < 10 % of a core at 1,000
# workers. WORKERS="1000 100" by default; about 60-90 s.
set -eu
cd "$(dirname "$0")/../.."
PARROT=${PARROT:-$PWD/parrot}
WORKERS=${WORKERS:-"1000 100"}
SECS=${SECS:-20}
CAP=${CAP:-30}
GOAL=10
[ -x "$PARROT" ] || { echo "bench_queen: $PARROT not found; run make first" >&2; exit 1; }
objs=""
for o in wire stats mpguard; do # mpguard: the msgpack size check wire and stats call
  [ -f "build/rel/$o.o" ] && objs="$objs build/rel/$o.o" && continue
  [ "$o" = mpguard ] || { echo "bench_queen: build/rel/$o.o not found; run make first" >&2; exit 1; }
done

tmp=$(mktemp -d)
queen_pid="" tool_pid=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  for p in $tool_pid $queen_pid; do kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck disable=SC2046,SC2086 # pkg-config's and the objects' words are meant to split
cc -std=gnu11 -O2 -g -Wall -Wextra -D_GNU_SOURCE -Isrc $(pkg-config --cflags msgpack libzmq) \
  -o "$tmp/wirebench" spec/bench/wirebench.c $objs $(pkg-config --libs libzmq msgpack) -lpthread -lm

pin_queen="" pin_tool=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then pin_queen="taskset -c 1" pin_tool="taskset -c 0"; fi
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; } # utime + stime
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
progress() { grep '^wirebench: progress' "$tmp/tool.out" | tail -n 1 | awk '{ print $4, $6, $8 }'; } # ms sent acked
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@" 2>/dev/null || echo "?"; }

status=0
for n in $WORKERS; do
  port=$(free_port)
  ep="tcp://127.0.0.1:$port"
  rm -f "$tmp/q.json"
  $pin_queen "$PARROT" queen --url http://127.0.0.1:9/ --bind "$ep" --expect "$n" --duration "${SECS}s" --quiet \
    --out "$tmp/q.json" >"$tmp/queen.out" 2>"$tmp/queen.err" &
  queen_pid=$!
  $pin_tool "$tmp/wirebench" --queen "$ep" --workers "$n" --linger $((CAP + 5)) >"$tmp/tool.out" 2>"$tmp/tool.err" &
  tool_pid=$!
  for _ in $(seq 300); do grep -q started "$tmp/tool.out" && break; sleep 0.1; done # joined, prepared, set up
  if ! grep -q started "$tmp/tool.out"; then
    echo "bench_queen: $n workers: the run never started; queen said:" >&2
    tail -n 5 "$tmp/queen.err" >&2
    status=1
    continue
  fi
  cs=$(cpu_ticks "$queen_pid") ts=$(date +%s.%N)
  sleep $((SECS / 4)) # the steady middle: from 5 s to 15 s of a 20 s run
  c0=$(cpu_ticks "$queen_pid") t0=$(date +%s.%N) p0=$(progress)
  sleep $((SECS / 2))
  c1=$(cpu_ticks "$queen_pid") t1=$(date +%s.%N) p1=$(progress)
  peak=$(hwm_kb "$queen_pid") ce=$c1
  deadline=$(awk -v t="$ts" -v s="$SECS" -v c="$CAP" 'BEGIN { printf "%d", t + s + c }')
  killed=0
  while kill -0 "$queen_pid" 2>/dev/null; do # until the queen exits: its peak and CPU so far
    v=$(hwm_kb "$queen_pid") && [ -n "$v" ] && peak=$v
    v=$(cpu_ticks "$queen_pid") && [ -n "$v" ] && ce=$v
    # SIGKILL: a queen behind its backlog handles SIGTERM only once the backlog is merged
    if [ "$(date +%s)" -gt "$deadline" ]; then killed=1 pk=$(progress); kill -KILL "$queen_pid"; break; fi
    sleep 0.2
  done
  wait "$queen_pid" 2>/dev/null || [ "$killed" = 1 ] || echo "bench_queen: the queen exited with an error" >&2
  queen_pid=""
  if [ "$killed" = 1 ]; then kill -KILL "$tool_pid" 2>/dev/null || true; fi
  wait "$tool_pid" 2>/dev/null || [ "$killed" = 1 ] || echo "bench_queen: wirebench exited with an error" >&2
  tool_pid=""

  line=$(grep '^wirebench: workers' "$tmp/tool.out" || true)
  snaps=$(echo "$line" | awk '{ print $5 }') sent=$(echo "$line" | awk '{ print $7 }')
  pct=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$hz" 'BEGIN { printf "%.1f", (b - a) / hz / (e - s) * 100 }')
  awk -v n="$n" -v p="$pct" -v r="$peak" -v g="$GOAL" 'BEGIN {
    printf "queen merge: %d workers x 20 names, 1 snapshot/s each: %s%% of one core, peak RSS %.0f MB (goal < %d%%)\n",
      n, p, r / 1024, g }'
  # merge rate in the window from the acknowledgements (the queen acks a snapshot once merged)
  echo "$p0 $p1" | awk -v a="$c0" -v b="$c1" -v hz="$hz" -v n="$n" 'NF == 6 && $6 > $3 {
    rate = ($6 - $3) / (($4 - $1) / 1000); ms = (b - a) / hz * 1000 / ($6 - $3)
    printf "  in that window: merged %.0f snapshots/s (sent %.0f/s), %.2f ms of queen CPU each; %d snapshots/s need %.0f%% of a core; backlog at its end %d\n",
      rate, ($5 - $2) / (($4 - $1) / 1000), ms, n, ms * n / 10, $5 - $6 }'
  if [ -n "$snaps" ] && [ "$snaps" -gt 0 ] && [ "$killed" = 0 ]; then
    awk -v a="$cs" -v b="$ce" -v hz="$hz" -v k="$snaps" 'BEGIN {
      printf "  whole run: %.2f ms of queen CPU per snapshot\n", (b - a) / hz * 1000 / k }'
  fi
  took=$(json "$tmp/q.json" 'round(d["duration_s"], 1)')
  if [ "$killed" = 1 ]; then
    echo "$pk" | awk -v c="$CAP" -v s="$SECS" '{ printf "  BEHIND: %d s after the %d s test the queen had merged %d of %d snapshots (a backlog); killed it\n", c, s, $3, $2 }'
    status=1
  elif awk -v t="$took" -v s="$SECS" 'BEGIN { exit !(t != "?" && t > s + 3) }'; then
    echo "  BEHIND: the queen's run lasted ${took} s for a ${SECS} s test: it merged a backlog after the workers finished"
  fi
  got=$(json "$tmp/q.json" 'd["totals"]["requests"]')
  if [ "$killed" = 1 ]; then
    echo "  consistency: not checked (no summary: the queen was killed)"
  elif [ -n "$sent" ] && [ "$got" = "$sent" ]; then
    echo "  consistency: summary requests $got = sent ($snaps snapshots, $((sent / snaps)) requests each on average): ok"
  else
    echo "  consistency: summary requests $got, sent ${sent:-?} ($snaps snapshots): MISMATCH"
    status=1
  fi
  grep -v '^wirebench: run' "$tmp/tool.err" | head -n 3 >&2 || true
done
[ "$status" = 0 ] || echo "  where the time goes: perf record --call-graph dwarf -p \$(pgrep -n -f 'parrot queen') -- sleep 5; perf report" >&2
exit $status
