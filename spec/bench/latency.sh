# shellcheck shell=bash disable=SC2034,SC2153,SC2154 # sourced by bench.sh: its variables are shared
# `make bench`, part 3: is the latency parrot reports the latency there was? (sourced by bench.sh)
#  accuracy  `parrot target` (server CPU) answers /delay/10 after a timer and says in X-Delay-Us
#            how long it really waited. First the loopback round trip: parrot's p50 for `/` with
#            one VU. Then one VU loops over /delay/10 (scenarios/delay.lua), recording X-Delay-Us;
#            parrot's p50 should be the mean applied delay plus the round trip: the error in %.
#  stall     spec/bench/stall_server.py answers at once, except for one STALL_S window, SECS/2
#            after the first request, in which it answers nothing. parrot's constant-rate model
#            (scenarios/stall.lua: STALL_RATE requests/s over STALL_VUS VUs) counts latency from
#            each request's intended start, so the requests due during the stall show in p99:
#            about STALL_S x (1 - 0.01 x SECS / STALL_S) when the rate is steady. wrk (-c STALL_VUS,
#            as fast as it can) waits with the server and records one slow request per
#            connection: its p99 hides the stall (coordinated omission); its max shows it.

# ms VALUE-WITH-UNIT: wrk's "950.12us", "1.02ms", "1.00s", "1.50m" in milliseconds
ms() { awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
  if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000; print n }'; }

latency_bench() {
  local port target
  echo "bench: latency accuracy against parrot target (CPU $SERVER_CPU), client on CPU $CLIENT_CPU"
  server_start "$tmp/target.out" "$PARROT" target --port 0 --threads 1
  local tpid=$server_pid
  for _ in $(seq 50); do
    port=$(sed -n 's#^listening on http://127.0.0.1:\([0-9]*\).*#\1#p' "$tmp/target.out")
    [ -n "$port" ] && break
    sleep 0.1
  done
  target="http://127.0.0.1:$port"
  taskset -c "$CLIENT_CPU" "$PARROT" run --url "$target/" --threads 1 --vus 1 --duration "${LAT_SECS}s" --quiet \
    --out "$tmp/rtt.json" >/dev/null 2>&1 || true
  R[lat.rtt]=$(json "$tmp/rtt.json" 'd["latency_ms"]["p50"]')
  taskset -c "$CLIENT_CPU" "$PARROT" run "$BENCH_DIR/scenarios/delay.lua" -e TARGET="$target" --threads 1 \
    --duration "${LAT_SECS}s" --quiet --out "$tmp/delay.json" >/dev/null 2>&1 || true
  server_stop "$tpid"
  R[lat.p50]=$(json "$tmp/delay.json" 'd["latency_ms"]["p50"]')
  R[lat.applied]=$(json "$tmp/delay.json" 'd["custom"]["applied_ms"]["mean"]')
  R[lat.n]=$(json "$tmp/delay.json" 'd["totals"]["requests"]')
  R[lat.err]=$(awk -v p="${R[lat.p50]}" -v a="${R[lat.applied]}" -v r="${R[lat.rtt]}" \
    'BEGIN { if (p == "nan" || a == "nan" || r == "nan") print "nan"; else printf "%.2f", (p - (a + r)) / (a + r) * 100 }')
  echo "  round trip p50 ${R[lat.rtt]} ms; /delay/10: ${R[lat.n]} requests, applied ${R[lat.applied]} ms on average," \
    "parrot's p50 ${R[lat.p50]} ms: error ${R[lat.err]} %"

  echo "bench: a ${STALL_S} s server stall ${SECS}s run, $((SECS / 2)) s in; parrot at $STALL_RATE requests/s over" \
    "$STALL_VUS VUs, wrk with $STALL_VUS connections"
  local spid sport
  for c in parrot wrk; do
    server_start "$tmp/stall.$c.out" python3 "$BENCH_DIR/stall_server.py" --at $((SECS / 2)) --stall "$STALL_S"
    spid=$server_pid sport=""
    for _ in $(seq 50); do
      sport=$(head -n 1 "$tmp/stall.$c.out")
      [ -n "$sport" ] && break
      sleep 0.1
    done
    if [ "$c" = parrot ]; then
      taskset -c "$CLIENT_CPU" "$PARROT" run "$BENCH_DIR/scenarios/stall.lua" -e TARGET="http://127.0.0.1:$sport" \
        -e RATE="$STALL_RATE" -e VUS="$STALL_VUS" --threads 1 --duration "${SECS}s" --quiet --out "$tmp/stall.json" \
        >/dev/null 2>&1 || true
      R[stall.parrot.p99]=$(json "$tmp/stall.json" 'd["latency_ms"]["p99"]')
      R[stall.parrot.p50]=$(json "$tmp/stall.json" 'd["latency_ms"]["p50"]')
      R[stall.parrot.max]=$(json "$tmp/stall.json" 'd["latency_ms"]["max"]')
      R[stall.parrot.n]=$(json "$tmp/stall.json" 'd["totals"]["requests"]')
      R[stall.parrot.dropped]=$(json "$tmp/stall.json" 'd["totals"]["dropped"]')
    else
      taskset -c "$CLIENT_CPU" wrk -t1 -c"$STALL_VUS" -d"${SECS}s" --latency "http://127.0.0.1:$sport/" \
        >"$tmp/stall.wrk" 2>&1 || true
      R[stall.wrk.p99]=$(ms "$(awk '$1 == "99%" { print $2 }' "$tmp/stall.wrk")")
      R[stall.wrk.p50]=$(ms "$(awk '$1 == "50%" { print $2 }' "$tmp/stall.wrk")")
      R[stall.wrk.max]=$(ms "$(awk '$1 == "Latency" { print $4 }' "$tmp/stall.wrk")")
      R[stall.wrk.n]=$(sed -n 's/^ *\([0-9][0-9]*\) requests in.*/\1/p' "$tmp/stall.wrk")
    fi
    server_stop "$spid"
    echo "  $c: ${R[stall.$c.n]:-?} requests, p50 ${R[stall.$c.p50]} ms, p99 ${R[stall.$c.p99]} ms," \
      "max ${R[stall.$c.max]} ms; server: $(tail -n 1 "$tmp/stall.$c.out")"
  done
  R[stall.expect]=$(awk -v s="$STALL_S" -v d="$SECS" 'BEGIN { printf "%.0f", s * 1000 * (1 - 0.01 * d / s) }')
}
