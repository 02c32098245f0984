# shellcheck shell=bash disable=SC2034,SC2153,SC2154 # sourced by bench.sh: its variables are shared
# `make bench`: the one table at the end, from the figures the parts left in R[] (sourced by
# bench.sh). Goals stand beside their figures with PASS or FAIL; a missing figure says n/a.

# num X [DECIMALS]: X with thousands separators, or "-" when missing
num() { awk -v x="$1" -v d="${2:-0}" 'BEGIN { if (x == "" || x == "nan") { print "-"; exit }
  s = sprintf("%." d "f", x); i = index(s, "."); w = i ? substr(s, 1, i - 1) : s; f = i ? substr(s, i) : ""
  neg = (w ~ /^-/); if (neg) w = substr(w, 2)
  while (length(w) > 3) { f = "," substr(w, length(w) - 2) f; w = substr(w, 1, length(w) - 3) } print (neg ? "-" : "") w f }'; }

bench_table() {
  local line w c label ratio goal v us p
  line=$(printf '%.0s-' $(seq 104))
  echo "${line//-/=}"
  echo "loadParrot bench, $(date '+%Y-%m-%d %H:%M'), $("$PARROT" --version 2>/dev/null | head -n 1)," \
    "$(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs, RUNS=$RUNS SECS=$SECS CONNS=$CONNS (medians)"
  echo "$line"
  printf '%-10s %-8s %10s %7s %11s %9s %6s %12s  %s\n' workload client "req/s" "CPU s" "CPU µs/req" "peak RSS" conns \
    "peer/parrot" "goal"
  for w in plain scripted; do
    [ "$w" = plain ] && label="plain GET" || label="scripted"
    for c in parrot wrk h2load tsung; do
      [ -n "${R[$w.$c.reqs]:-}" ] || continue
      us=${R[$w.$c.us]} p=${R[$w.parrot.us]:-nan}
      ratio=$(awk -v a="$us" -v b="$p" 'BEGIN { if (a == "nan" || b == "nan" || b <= 0) print "-"; else printf "%.2f", a / b }')
      goal=""
      if [ "$c" = parrot ]; then ratio=""; fi
      if [ "$c" = wrk ]; then
        [ "$w" = plain ] && v=1.0 || v=0.9
        goal="wrk/parrot ≥ $v $(verdict "${ratio/-/}" "x >= $v")"
      fi
      [ "$c" = tsung ] && goal="see note"
      printf '%-10s %-8s %10s %7s %11s %6s MB %6s %12s  %s\n' "$label" "$c" "$(num "${R[$w.$c.rps]}")" \
        "$(num "${R[$w.$c.cpu]}" 2)" "$(num "$us" 2)" "$(num "$(awk -v k="${R[$w.$c.rss]}" 'BEGIN { print k / 1024 }')" 1)" \
        "${R[$w.$c.conns]}" "$ratio" "$goal"
    done
  done
  # the ratio run by run: parrot and wrk take turns, so each pair saw the same machine
  for w in plain scripted; do
    [ -s "$tmp/$w.parrot.runs" ] && [ -s "$tmp/$w.wrk.runs" ] || continue
    awk 'NR == FNR { p[FNR] = ($1 > 0 ? $2 / $1 : 0); next }
      { if (p[FNR] > 0 && $1 > 0) print ($2 / $1) / p[FNR] }' "$tmp/$w.parrot.runs" "$tmp/$w.wrk.runs" >"$tmp/$w.pairs"
    [ -s "$tmp/$w.pairs" ] || continue
    printf '  %s: wrk/parrot run by run (each pair back to back) %s, their median %.2f\n' \
      "$([ "$w" = plain ] && echo "plain GET" || echo "scripted")" \
      "$(awk '{ printf "%s%.2f", (NR > 1 ? ", " : ""), $1 }' "$tmp/$w.pairs")" "$(median <"$tmp/$w.pairs")"
  done
  [ -n "${R[tsung.missing]:-}" ] && echo "  (Tsung is not installed: no Tsung row)"
  [ "${R[plain.wrk.conns]:-}" = $((CONNS + 1)) ] && echo "  (wrk's extra connection: it connects once to check the address before it starts)"
  if [ -n "${R[plain.tsung.reqs]:-}" ]; then
    awk -v whole="${R[plain.tsung.whole]}" -v win="$(col "$tmp/plain.tsung.runs" 6)" -v secs="$SECS" \
      -v conns="${R[plain.tsung.conns]}" -v want="$CONNS" 'BEGIN {
      printf "  note: Tsung'\''s CPU is its Erlang VM'\''s over the %.1f s in which nginx saw its requests (the whole run,\n", win
      printf "  with the VM'\''s start and its report, took %.2f CPU s)", whole
      if (conns != want || win < 0.6 * secs) printf ": NOT comparable this run (%d connections, a %.1f s window)", conns, win
      else printf ": comparable (same connections, the window is the load)"
      printf "\n" }'
  fi
  echo "$line"
  printf '%-34s %9s %10s %8s  %s\n' "memory, one load thread" VUs "peak RSS" "KB/VU" goal
  local n kb rows=("idle1000 sleeping in think time" "idle10000 sleeping in think time"
    "idle100000 sleeping in think time" "hold holding a keep-alive connection" "tls holding a TLS connection")
  local r key vus
  for r in "${rows[@]}"; do
    key=${r%% *} label=${r#* }
    case $key in idle*) vus=${key#idle} ;; hold) vus=$HOLD_VUS ;; tls) vus=$TLS_VUS ;; esac
    v=${R[mem.$key]:-nan}
    kb=$(awk -v v="$v" -v n="$vus" 'BEGIN { if (v == "nan") print "nan"; else printf "%.2f", v / n }')
    goal=""
    case $key in
    idle100000) goal="≤ 4 KB/VU $(verdict "$kb" "x <= 4"), under 1 GiB $(verdict "$v" "x < 1048576")" ;;
    hold | tls) goal="${R[mem.$key.ok]:-?} connected, nginx saw ${R[mem.$key.held]:-?} at once" ;;
    esac
    [ "$key" = idle100000 ] && goal="$goal; $(awk -v a="${R[mem.idle10000]:-nan}" -v b="$v" 'BEGIN {
      if (a != "nan" && b != "nan") printf "%.2f KB per VU past 10k", (b - a) / 90000 }')"
    [ "$key" = tls ] && goal="$goal (mbedTLS buffers: counted apart)"
    printf '%-34s %9s %7s MB %8s  %s\n' "$label" "$(num "$vus")" \
      "$(num "$(awk -v k="$v" 'BEGIN { if (k == "nan") print "nan"; else print k / 1024 }')" 1)" "$kb" "$goal"
  done
  awk -v n="$TLS_BURST" -v cpu="${R[mem.burst.cpu]:-nan}" -v p50="${R[mem.burst.p50]:-nan}" -v ok="${R[mem.burst.ok]:-0}" 'BEGIN {
    if (cpu == "nan") exit
    printf "TLS: %d VUs starting at once (no session to resume): %.1f ms of CPU per full handshake; %d connected,\n", n, cpu * 1000 / n, ok
    printf "  their first response after %.0f ms at the median (with the ramp above, later VUs resume a cached session)\n", p50 }'
  echo "$line"
  printf '%-52s %-28s %s\n' "latency" "figure" goal
  printf '%-52s %-28s %s\n' "/delay/10: parrot p50 vs applied delay + round trip" \
    "$(num "${R[lat.p50]}" 3) vs $(num "${R[lat.applied]}" 3) + $(num "${R[lat.rtt]}" 3) ms" \
    "error ${R[lat.err]} %, |error| ≤ 3 % $(verdict "${R[lat.err]}" "x <= 3 && x >= -3")"
  printf '%-52s %-28s %s\n' "${STALL_S} s stall, constant rate: parrot p99 ($STALL_RATE/s)" \
    "$(num "${R[stall.parrot.p99]:-nan}" 1) ms (max $(num "${R[stall.parrot.max]:-nan}" 0))" \
    "≈ ${R[stall.expect]} ms expected, shows the stall $(verdict "${R[stall.parrot.p99]:-nan}" "x >= 0.8 * ${R[stall.expect]}")"
  awk -v max="${R[stall.parrot.max]:-nan}" -v s="$STALL_S" 'BEGIN { if (max != "nan" && max > s * 1000 + 100)
    printf "  (parrot'\''s max is %.0f ms over the stall: it sent some requests late, its CPU was busy; latency from\n  the intended start counts that delay too)\n", max - s * 1000 }'
  printf '%-52s %-28s %s\n' "${STALL_S} s stall: wrk p99 (-c$STALL_VUS, as fast as it can)" \
    "$(num "${R[stall.wrk.p99]:-nan}" 1) ms (max $(num "${R[stall.wrk.max]:-nan}" 0))" "for comparison (see note)"
  echo "  note: wrk 4 records one slow request per connection during the stall, then at the end of the run"
  echo "  adds synthetic samples at its mean interval per connection (stats_correct): a correction after the"
  echo "  fact, which shows the stall when the rate was steady; wrk2 and parrot measure from intended starts."
  echo "$line"
  if [ "${QUEEN:-1}" != 0 ]; then
    local q
    for n in 1000 100; do
      q=${R[queen.$n]:-}
      goal=""
      [ "$n" = 1000 ] && goal="< 10 % of a core $(verdict "${q%% *}" "x < 10")"
      [ -n "$q" ] && q="${q%% *} % of a core, ${q##* } MB"
      printf '%-52s %-28s %s\n' "queen merge: $(num "$n") workers x 20 names, 1 snapshot/s" "${q:-n/a}" "$goal"
    done
    [ -n "${R[queen.behind]:-}" ] && echo "  (the queen fell behind: see its lines above)"
    echo "$line"
  fi
}
