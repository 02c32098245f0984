# shellcheck shell=bash disable=SC2034,SC2153,SC2154 # sourced by bench.sh: its variables are shared
# Helpers shared by spec/bench/bench.sh and the parts it sources (clients.sh, memory.sh,
# latency.sh): installing a missing tool, starting and stopping loopback servers, measuring a
# client's CPU and memory, medians. Sourced, never run; expects $tmp (a scratch directory).

# need COMMAND PACKAGE: install PACKAGE with apt-get when COMMAND is missing
need() {
  command -v "$1" >/dev/null 2>&1 && return
  echo "bench: installing $2"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >/dev/null
}

# Every server a part starts goes through server_start, so the EXIT trap stops it (by its pid).
SERVER_PIDS=()
# server_start LOG COMMAND...: start COMMAND in the background on the server CPU; sets $server_pid
server_start() {
  local log=$1
  shift
  taskset -c "$SERVER_CPU" "$@" >"$log" 2>&1 &
  server_pid=$!
  SERVER_PIDS+=("$server_pid")
}
# server_stop PID: stop one server and wait for it
server_stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
servers_stop_all() {
  local p
  for p in "${SERVER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${SERVER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  SERVER_PIDS=()
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_port PORT [SECONDS]: until something accepts on 127.0.0.1:PORT
wait_port() {
  local i
  for i in $(seq $((${2:-5} * 10))); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench: nothing listens on 127.0.0.1:$1" >&2
  return 1
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# col FILE N: the median of column N of FILE (one run per line)
col() { awk -v n="$2" '{ print $n }' "$1" | median; }

# timed OUT COMMAND...: run COMMAND on the client CPU under /usr/bin/time; OUT gets
# "cpu_seconds peak_rss_kb" (user + sys of COMMAND and its children; the largest child's RSS)
timed() {
  local out=$1
  shift
  /usr/bin/time -f "%U %S %M" -o "$out.raw" taskset -c "$CLIENT_CPU" "$@" || true
  tail -n 1 "$out.raw" | awk '{ print $1 + $2, $3 }' >"$out" # the first line may say the exit status
}

# json FILE EXPR: a value from a JSON file (EXPR in Python over d), "nan" when absent
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@" 2>/dev/null || echo nan; }

# nginx_status PORT: "accepted requests active" from nginx's stub_status
nginx_status() {
  curl -fs "http://127.0.0.1:$1/nginx_status" 2>/dev/null |
    awk '/^Active/ { a = $3 } NR == 3 { acc = $1; req = $3 } END { print acc + 0, req + 0, a + 0 }'
}

# verdict OK: PASS or FAIL from an awk condition's exit code ("n/a" when a figure is missing)
verdict() { # verdict FIGURE AWK-CONDITION-ON-x
  awk -v x="$1" "BEGIN { if (x == \"\" || x == \"nan\" || x == \"?\") { print \"n/a\"; exit } if ($2) print \"PASS\"; else print \"FAIL\" }"
}

# cpu_ticks PID: utime + stime of one process in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }

# descendant PID COMM: the pid of the first descendant of PID whose command name is COMM
descendant() {
  local p kids
  for p in $(pgrep -P "$1" 2>/dev/null); do
    if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ]; then
      echo "$p"
      return 0
    fi
    kids=$(descendant "$p" "$2") && { echo "$kids"; return 0; }
  done
  return 1
}
