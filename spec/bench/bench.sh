#!/usr/bin/env bash
# `make bench`: what parrot costs next to its peers, on one machine, in one table. Never part of
# `make test`; a missed goal says FAIL in the table but does not fail the command.
#  1. clients (clients.sh): nginx (one worker, access log off, pinned to CPU 1) on loopback; parrot,
#     wrk, h2load and Tsung (when installed), pinned to CPU 0, GET / on CONNS connections for SECS
#     seconds; then parrot and wrk on a scripted scenario. req/s, CPU s, CPU µs per request, peak
#     RSS, and the ratio peer/parrot of CPU per request. nginx caps req/s on two cores: CPU per
#     request is what separates the clients.
#  2. memory (memory.sh): peak RSS per VU of 100k sleeping VUs, of HOLD_VUS VUs holding a keep-alive
#     connection and of TLS_VUS VUs holding a TLS connection, on one load thread.
#  3. latency (latency.sh): parrot's p50 against `parrot target`'s /delay/10 versus the delay it
#     applied plus the round trip; a 1 s server stall under the constant-rate model, wrk beside it.
#  4. the queen's merge cost for 1,000 and 100 simulated workers (bench_queen.sh).
# Settings (environment): RUNS (3) runs per client figure, median quoted; SECS (10) per run; CONNS
# (50); MEMRUNS (RUNS); HOLD_VUS (15000); TLS_VUS (5000); TLS_BURST (500); STALL_RATE (200); STALL_VUS (300);
# QUEEN=0 skips part 4; TSUNG=0 leaves Tsung out. `RUNS=1 SECS=3 make bench` is a quick look.
set -eu
cd "$(dirname "$0")/../.."
BENCH_DIR=$PWD/spec/bench
PARROT=${PARROT:-$PWD/parrot}
RUNS=${RUNS:-3}
SECS=${SECS:-10}
CONNS=${CONNS:-50}
MEMRUNS=${MEMRUNS:-$RUNS}
HOLD_VUS=${HOLD_VUS:-15000}
TLS_VUS=${TLS_VUS:-5000}
HOLD_SECS=${HOLD_SECS:-8s}
HOLD_RAMP=${HOLD_RAMP:-2s}
TLS_BURST=${TLS_BURST:-500}
LAT_SECS=${LAT_SECS:-$(((SECS + 1) / 2))}
STALL_RATE=${STALL_RATE:-200}
STALL_VUS=${STALL_VUS:-300}
STALL_S=${STALL_S:-1}
if [ "$SECS" -ge 10 ]; then QUEEN_SECS=${QUEEN_SECS:-20}; else QUEEN_SECS=${QUEEN_SECS:-8}; fi
# shellcheck source=spec/bench/lib.sh
. "$BENCH_DIR/lib.sh"

need wrk wrk
need h2load nghttp2-client
need nginx nginx-light
need openssl openssl
need taskset util-linux
need curl curl
[ -x /usr/bin/time ] || need /usr/bin/time time
[ -x "$PARROT" ] || { echo "bench: $PARROT not found; run make first" >&2; exit 1; }

if [ "$(nproc)" -ge 2 ]; then SERVER_CPU=1 CLIENT_CPU=0; else SERVER_CPU=0 CLIENT_CPU=0; fi
HZ=$(getconf CLK_TCK)
declare -A R=() # every figure of the final table, by name

tmp=$(mktemp -d)
TSUNG_PID="" TSUNG_BEAM="" EPMD_BEFORE="" EPMD_STARTED=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  # Tsung's Erlang VM runs under a shell script that does not pass signals on: stop both
  [ -z "$TSUNG_PID" ] || kill "$TSUNG_PID" ${TSUNG_BEAM:+"$TSUNG_BEAM"} 2>/dev/null || true
  servers_stop_all
  [ -z "$EPMD_STARTED" ] || kill "$EPMD_STARTED" 2>/dev/null || true # the Erlang port mapper Tsung started
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# nginx: one worker for every part that needs it. NGINX_PORT for the clients (and stub_status);
# HOLD_PORTS and TLS_PORTS for the held connections, so no address:port runs out of ephemeral ports.
NGINX_PORT=$(free_port)
HOLD_PORTS="" TLS_PORTS=""
for _ in 1 2 3 4; do HOLD_PORTS="$HOLD_PORTS${HOLD_PORTS:+,}$(free_port)"; done
for _ in 1 2; do TLS_PORTS="$TLS_PORTS${TLS_PORTS:+,}$(free_port)"; done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
{
  cat <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log error;
events { worker_connections 19500; }
http {
  access_log off;
  client_body_temp_path $tmp/body;
  proxy_temp_path $tmp/proxy;
  fastcgi_temp_path $tmp/fastcgi;
  uwsgi_temp_path $tmp/uwsgi;
  scgi_temp_path $tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  ssl_certificate $tmp/cert.pem;
  ssl_certificate_key $tmp/key.pem;
  ssl_session_cache shared:SSL:20m;
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
CONF
  for p in ${HOLD_PORTS//,/ }; do echo "    listen 127.0.0.1:$p backlog=4096;"; done
  for p in ${TLS_PORTS//,/ }; do echo "    listen 127.0.0.1:$p ssl backlog=4096;"; done
  cat <<'CONF'
    location / { return 200 "hello\n"; }
    location = /a { add_header X-Bench a; return 200 "hello a\n"; }
    location = /b { add_header X-Bench b; return 200 "hello b\n"; }
    location = /nginx_status { stub_status; }
  }
}
CONF
} >"$tmp/nginx.conf"
server_start "$tmp/nginx.out" nginx -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/error.log"
wait_port "$NGINX_PORT" || { cat "$tmp/nginx.out" "$tmp/error.log" >&2; exit 1; }

started=$(date +%s)
echo "bench: parrot $("$PARROT" --version 2>/dev/null | head -n 1), $(nproc) CPUs, RUNS=$RUNS SECS=$SECS CONNS=$CONNS"
# shellcheck source=spec/bench/clients.sh
. "$BENCH_DIR/clients.sh"
clients_bench
echo
# shellcheck source=spec/bench/memory.sh
. "$BENCH_DIR/memory.sh"
memory_bench
echo
# shellcheck source=spec/bench/latency.sh
. "$BENCH_DIR/latency.sh"
latency_bench
echo
if [ "${QUEEN:-1}" != 0 ]; then
  echo "bench: the queen's merge (bench_queen.sh, ${QUEEN_SECS}s runs)"
  SECS=$QUEEN_SECS PARROT="$PARROT" "$BENCH_DIR/bench_queen.sh" 2>&1 | tee "$tmp/queen.out" || true
  for n in 1000 100; do
    R[queen.$n]=$(sed -n "s/^queen merge: $n workers.*: \([0-9.]*\)% of one core, peak RSS \([0-9]*\) MB.*/\1 \2/p" "$tmp/queen.out")
  done
  grep -q BEHIND "$tmp/queen.out" && R[queen.behind]=1
fi

# shellcheck source=spec/bench/table.sh
. "$BENCH_DIR/table.sh"
echo
bench_table | sed 's/[[:space:]]*$//'
echo "bench: took $(($(date +%s) - started)) s"
