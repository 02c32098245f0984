# shellcheck shell=bash disable=SC2034,SC2153,SC2154 # sourced by bench.sh: its variables are shared
# `make bench`, part 2: parrot's memory per virtual user, one load thread (sourced by bench.sh).
#   sleeping   1k, 10k and 100k VUs that only sleep in think time, no connection (scenarios/idle.lua);
#   keep-alive HOLD_VUS VUs that each make one request to nginx and sleep holding the connection,
#              spread over the ports in $HOLD_PORTS (scenarios/hold.lua);
#   TLS        TLS_VUS VUs doing the same over TLS (nginx's self-signed certificate, insecure = true),
#              over $TLS_PORTS: mbedTLS keeps its record buffers per connection, so this is its own row.
#              Both ramp up over HOLD_RAMP, so a TLS VU finds a session to resume.
#   handshakes TLS_BURST VUs starting at once over TLS, each to an origin of its own (host names
#              pinned with --resolve): none finds a session to resume, every one pays a full
#              handshake (ECDHE and ECDSA on P-256): parrot's CPU per handshake.
# Peak RSS comes from /usr/bin/time; KB per VU is peak RSS / VUs. While a holding run lasts,
# nginx's count of active connections is sampled: its peak shows the connections really were held
# at the same time. Each figure is the median of MEMRUNS runs (default RUNS).

# mem_run NAME VUS SCENARIO [parrot options...]: one run; appends "rss_kb held ok cpu_s p50_ms"
# to $tmp/mem.NAME
mem_run() {
  local name=$1 n=$2 scen=$3 pid peak=0 act ok
  shift 3
  /usr/bin/time -f "%M %U %S" -o "$tmp/mtime" taskset -c "$CLIENT_CPU" "$PARROT" run "$BENCH_DIR/scenarios/$scen" \
    -e VUS="$n" --threads 1 --quiet --out "$tmp/m.json" "$@" >/dev/null 2>"$tmp/mem.err" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$scen" = hold.lua ]; then
      act=$(nginx_status "$NGINX_PORT" | awk '{ print $3 - 1 }') # minus the status request itself
      [ "${act:-0}" -gt "$peak" ] && peak=$act
    fi
    sleep 0.5
  done
  wait "$pid" 2>/dev/null || true
  ok=$(json "$tmp/m.json" 'd["checks"]["connected"]["passed"] if "connected" in d["checks"] else d["totals"]["vus_max"]')
  echo "$(tail -n 1 "$tmp/mtime" | awk '{ print $1 }') $peak $ok $(tail -n 1 "$tmp/mtime" | awk '{ print $2 + $3 }')" \
    "$(json "$tmp/m.json" 'd["latency_ms"]["p50"]')" >>"$tmp/mem.$name"
  tail -n 1 "$tmp/mem.$name" | awk -v name="$name" -v n="$n" -v s="$scen" '{
    printf "  %-10s %6d VUs: peak RSS %7.1f MB, %5.2f KB/VU, %.2f CPU s", name, n, $1 / 1024, $1 / n, $4
    if (s == "hold.lua") printf ", %d connected (p50 %.0f ms), nginx saw %d at once", $3, $5, $2
    printf "\n" }'
  grep -v 'warning: .* file descriptors' "$tmp/mem.err" | head -n 3 | sed 's/^/    /' || true
}

memory_bench() {
  local i n
  echo "bench: memory, one load thread, median of $MEMRUNS runs"
  for i in $(seq "$MEMRUNS"); do
    for n in 1000 10000 100000; do mem_run "idle$n" "$n" idle.lua; done
    mem_run hold "$HOLD_VUS" hold.lua -e PORTS="$HOLD_PORTS" -e DURATION="$HOLD_SECS" -e RAMP="$HOLD_RAMP"
    mem_run tls "$TLS_VUS" hold.lua -e PORTS="$TLS_PORTS" -e SCHEME=https -e DURATION="$HOLD_SECS" -e RAMP="$HOLD_RAMP"
  done
  # every VU its own origin (a host name pinned with --resolve): no session to resume, each a full
  # handshake (new connections to one origin would wait for its first handshake and resume it)
  local resolve=() port=${TLS_PORTS%%,*}
  for i in $(seq "$TLS_BURST"); do resolve+=(--resolve "h$i.bench:$port:127.0.0.1"); done
  mem_run burst "$TLS_BURST" hold.lua -e PORTS="$port" -e SCHEME=https -e DURATION="$HOLD_SECS" \
    -e HOSTS="$TLS_BURST" "${resolve[@]}"
  for n in 1000 10000 100000; do R[mem.idle$n]=$(col "$tmp/mem.idle$n" 1); done
  for n in hold tls burst; do
    R[mem.$n]=$(col "$tmp/mem.$n" 1)
    R[mem.$n.held]=$(col "$tmp/mem.$n" 2)
    R[mem.$n.ok]=$(col "$tmp/mem.$n" 3)
    R[mem.$n.cpu]=$(col "$tmp/mem.$n" 4)
    R[mem.$n.p50]=$(col "$tmp/mem.$n" 5)
  done
}
