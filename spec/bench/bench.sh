#!/usr/bin/env bash
# `make bench`: how much CPU and memory parrot spends, next to wrk, on one machine.
#  1. nginx (one worker, pinned to CPU 1) answers `return 200 "hello\n"` on a free loopback port;
#     parrot (--url, 1 load thread, 50 VUs) and wrk (1 thread, 50 connections), pinned to CPU 0,
#     each run 10 s. Each client's user+sys CPU seconds and peak RSS come from /usr/bin/time,
#     its request count from its own output; CPU per request is the figure that matters (both
#     clients saturate the same server, so requests/s alone says little).
#  2. parrot's peak RSS with 1k and 10k VUs all sleeping in think time, per VU.
# Every figure is the median of RUNS runs (default 3). Never part of `make test`.
set -eu
cd "$(dirname "$0")/../.."
PARROT=${PARROT:-$PWD/parrot}
RUNS=${RUNS:-3}
SECS=${SECS:-10}
CONNS=${CONNS:-50}

need() { # COMMAND PACKAGE: install PACKAGE with apt-get when COMMAND is missing
  command -v "$1" >/dev/null 2>&1 && return
  echo "bench: installing $2"
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >/dev/null
}
need wrk wrk
need nginx nginx-light
need taskset util-linux
[ -x /usr/bin/time ] || need /usr/bin/time time
[ -x "$PARROT" ] || { echo "bench: $PARROT not found; run make first" >&2; exit 1; }

ncpu=$(nproc)
if [ "$ncpu" -ge 2 ]; then SERVER_CPU=1 CLIENT_CPU=0; else SERVER_CPU=0 CLIENT_CPU=0; fi

tmp=$(mktemp -d)
nginx_pid=""
cleanup() {
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/body;
  proxy_temp_path $tmp/proxy;
  fastcgi_temp_path $tmp/fastcgi;
  uwsgi_temp_path $tmp/uwsgi;
  scgi_temp_path $tmp/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    location / { return 200 "hello\n"; }
  }
}
CONF
taskset -c "$SERVER_CPU" nginx -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/error.log" &
nginx_pid=$!
url="http://127.0.0.1:$port/"
for _ in $(seq 50); do
  curl -fs "$url" >/dev/null 2>&1 && break
  python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
  sleep 0.1
done

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# run_client NAME: one measured run; appends "requests cpu_s rss_kb" to $tmp/NAME.runs
run_client() {
  local name=$1 reqs
  if [ "$name" = parrot ]; then
    /usr/bin/time -f "%U %S %M" -o "$tmp/time" taskset -c "$CLIENT_CPU" \
      "$PARROT" run --url "$url" --threads 1 --vus "$CONNS" --duration "${SECS}s" --quiet \
      --out "$tmp/summary.json" >/dev/null 2>"$tmp/parrot.err" || true
    reqs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["requests"])' "$tmp/summary.json" 2>/dev/null || echo 0)
  else
    /usr/bin/time -f "%U %S %M" -o "$tmp/time" taskset -c "$CLIENT_CPU" \
      wrk -t1 -c"$CONNS" -d"${SECS}s" "$url" >"$tmp/wrk.out" 2>&1 || true
    reqs=$(sed -n 's/^ *\([0-9][0-9]*\) requests in.*/\1/p' "$tmp/wrk.out")
  fi
  read -r u s m <"$tmp/time"
  echo "$reqs $(echo "$u $s" | awk '{ print $1 + $2 }') $m" >>"$tmp/$name.runs"
}

echo "bench: nginx on CPU $SERVER_CPU at $url; clients on CPU $CLIENT_CPU, ${SECS}s each, $CONNS connections, median of $RUNS runs"
for i in $(seq "$RUNS"); do
  for c in parrot wrk; do
    run_client "$c"
    echo "  run $i $c: $(tail -n 1 "$tmp/$c.runs" | awk '{ printf "%d requests, %.2f CPU s, %d KB", $1, $2, $3 }')"
  done
done

echo
printf "%-8s %12s %8s %16s %10s\n" client "req/s" "CPU s" "CPU µs/request" "peak RSS"
for c in parrot wrk; do
  reqs=$(awk '{ print $1 }' "$tmp/$c.runs" | median)
  cpu=$(awk '{ print $2 }' "$tmp/$c.runs" | median)
  rss=$(awk '{ print $3 }' "$tmp/$c.runs" | median)
  us=$(awk '{ if ($1 > 0) print $2 * 1e6 / $1; else print "nan" }' "$tmp/$c.runs" | median)
  eval "${c}_us=$us"
  awk -v c="$c" -v r="$reqs" -v s="$SECS" -v cpu="$cpu" -v us="$us" -v rss="$rss" \
    'BEGIN { printf "%-8s %12.0f %8.2f %16.2f %7.1f MB\n", c, r / s, cpu, us, rss / 1024 }'
done
awk -v w="$wrk_us" -v p="$parrot_us" 'BEGIN { if (p > 0) printf "CPU per request, wrk/parrot: %.2f (1.00 = as cheap as wrk; below 1 = parrot costs more)\n", w / p }'

# Memory per sleeping VU: every VU parked in think(30) for the whole run.
cat >"$tmp/idle.lua" <<'LUA'
return parrot.scenario {
  name = "idle",
  load = parrot.closed { vus = tonumber(parrot.env.VUS), duration = "5s", graceful_stop = "0s" },
  run = function() think(30) end,
}
LUA
echo
printf "%-8s %10s %10s\n" VUs "peak RSS" "KB/VU"
for n in 1000 10000; do
  : >"$tmp/mem.$n"
  for i in $(seq "$RUNS"); do
    /usr/bin/time -f "%M" -o "$tmp/time" "$PARROT" run "$tmp/idle.lua" -e VUS="$n" --threads 1 --quiet \
      >/dev/null 2>"$tmp/idle.err" || true
    cat "$tmp/time" >>"$tmp/mem.$n"
  done
  rss=$(median <"$tmp/mem.$n")
  eval "rss_$n=$rss"
  awk -v n="$n" -v rss="$rss" 'BEGIN { printf "%-8d %7.1f MB %10.1f\n", n, rss / 1024, rss / n }'
done
awk -v a="$rss_1000" -v b="$rss_10000" 'BEGIN { printf "marginal: %.1f KB per extra VU (from 1k to 10k)\n", (b - a) / 9000 }'

# The queen's cost of merging 1,000 workers' statistics over the wire (issue 3).
echo; PARROT="$PARROT" spec/bench/bench_queen.sh || echo "bench: the queen benchmark failed (see above)"
