# shellcheck shell=bash disable=SC2034,SC2153,SC2154 # sourced by bench.sh: its variables are shared
# `make bench`, part 1: what each client spends per request against the same nginx (sourced by
# bench.sh, which has started nginx on $NGINX_PORT). Two workloads, RUNS runs each, the clients
# taking turns within a run:
#   plain     parrot run --url, wrk, h2load --h1 and (when installed) Tsung: GET / on CONNS
#             keep-alive connections for SECS seconds;
#   scripted  parrot with scenarios/scripted.lua and wrk with scenarios/scripted_wrk.lua: two paths
#             per iteration, a header read on each response, a check.
# A run appends "requests cpu_s rss_kb connections" to $tmp/WORKLOAD.CLIENT.runs: requests from
# the client's own report, CPU (user + sys) and peak RSS from /usr/bin/time, connections from
# nginx's accept counter. Tsung appends two more fields, see tsung_run.

bench_url="http://127.0.0.1:$NGINX_PORT"

# client_run WORKLOAD CLIENT: one measured run
client_run() {
  local w=$1 c=$2 reqs="" extra="" a0 a1
  a0=$(nginx_status "$NGINX_PORT" | awk '{ print $1 }')
  case $w.$c in
  plain.parrot)
    timed "$tmp/time" "$PARROT" run --url "$bench_url/" --threads 1 --vus "$CONNS" --duration "${SECS}s" \
      --quiet --out "$tmp/p.json" >/dev/null 2>"$tmp/parrot.err"
    reqs=$(json "$tmp/p.json" 'd["totals"]["requests"]')
    extra="$(json "$tmp/p.json" 'd["totals"]["errors"]') errors"
    ;;
  scripted.parrot)
    timed "$tmp/time" "$PARROT" run "$BENCH_DIR/scenarios/scripted.lua" -e TARGET="$bench_url" --threads 1 \
      --vus "$CONNS" --duration "${SECS}s" --quiet --out "$tmp/p.json" >/dev/null 2>"$tmp/parrot.err"
    reqs=$(json "$tmp/p.json" 'd["totals"]["requests"]')
    extra="$(json "$tmp/p.json" 'd["totals"]["errors"]') errors, $(json "$tmp/p.json" 'd["totals"]["checks_failed"]') checks failed"
    ;;
  plain.wrk | scripted.wrk)
    local script=()
    [ "$w" = scripted ] && script=(-s "$BENCH_DIR/scenarios/scripted_wrk.lua")
    timed "$tmp/time" wrk -t1 -c"$CONNS" -d"${SECS}s" "${script[@]}" "$bench_url/" >"$tmp/wrk.out" 2>&1
    reqs=$(sed -n 's/^ *\([0-9][0-9]*\) requests in.*/\1/p' "$tmp/wrk.out")
    extra=$(grep -E 'Non-2xx|Socket errors|checks failed' "$tmp/wrk.out" | tr -s ' \n' ' ' || true)
    ;;
  plain.h2load)
    timed "$tmp/time" h2load --h1 -c "$CONNS" -t 1 -D "$SECS" "$bench_url/" >"$tmp/h2load.out" 2>&1
    reqs=$(sed -n 's/^requests: .* \([0-9][0-9]*\) done,.*/\1/p' "$tmp/h2load.out")
    extra=$(sed -n 's/^requests: .* \([0-9][0-9]*\) failed, \([0-9][0-9]*\) errored.*/\1 failed, \2 errored/p' "$tmp/h2load.out")
    ;;
  plain.tsung)
    tsung_run
    return
    ;;
  esac
  a1=$(nginx_status "$NGINX_PORT" | awk '{ print $1 }')
  echo "${reqs:-0} $(cat "$tmp/time") $((a1 - a0 - 1))" >>"$tmp/$w.$c.runs"
  tail -n 1 "$tmp/$w.$c.runs" | awk -v w="$w" -v c="$c" -v i="$run" -v s="$SECS" -v x="$extra" '{
    printf "  run %d %-8s %-7s %9d requests %8.0f/s %6.2f CPU s %7.2f µs/request %6.1f MB %4d connections  %s\n",
      i, w, c, $1, $1 / s, $2, ($1 > 0 ? $2 * 1e6 / $1 : 0), $3 / 1024, $4, x }'
}

# tsung_run: one run of real Tsung (an Erlang VM: it takes a second or two to start and writes its
# report after the load). Its CPU is measured over the load itself: the VM's utime + stime and
# nginx's request counter are sampled every 0.25 s, and the window runs from the last sample
# before requests began to the last one where they grew. Appends "requests cpu_s rss_kb
# connections whole_run_cpu_s window_s".
tsung_run() {
  local tw=$tmp/tsung beam="" tpid line s0 a0
  rm -rf "$tw" && mkdir -p "$tw/home" "$tw/log"
  sed -e "s/PORT/$NGINX_PORT/" -e "s/USERS/$CONNS/" -e "s/SECS/$SECS/g" "$BENCH_DIR/scenarios/tsung_get.xml" >"$tw/get.xml"
  [ -n "$EPMD_BEFORE" ] || EPMD_BEFORE=$(pgrep -x epmd || echo none)
  a0=$(nginx_status "$NGINX_PORT" | awk '{ print $1 }')
  (cd "$tw" && HOME=$tw/home exec /usr/bin/time -f "%U %S %M" -o "$tw/time" taskset -c "$CLIENT_CPU" \
    timeout -k 5 $((SECS + 60)) tsung -f "$tw/get.xml" -l "$tw/log" start) >"$tw/out" 2>&1 </dev/null &
  tpid=$!
  TSUNG_PID=$tpid
  : >"$tw/samples"
  while kill -0 "$tpid" 2>/dev/null; do
    [ -n "$beam" ] || { beam=$(descendant "$tpid" beam.smp) && TSUNG_BEAM=$beam; } || beam=""
    if [ -n "$beam" ] && s0=$(cpu_ticks "$beam") && [ -n "$s0" ]; then
      line=$(nginx_status "$NGINX_PORT")
      echo "$(date +%s.%N) $s0 $line" >>"$tw/samples"
    fi
    sleep 0.25
  done
  wait "$tpid" 2>/dev/null || true
  TSUNG_PID="" TSUNG_BEAM=""
  local epmd_now
  epmd_now=$(pgrep -x epmd || echo none)
  [ "$EPMD_BEFORE" = none ] && [ "$epmd_now" != none ] && EPMD_STARTED=$epmd_now
  # samples: wall ticks accepted requests active; each sample's own status request is one request
  read -r reqs cpu secs <<<"$(awk -v hz="$HZ" '{ t[NR] = $1; c[NR] = $2; r[NR] = $4 - NR }
    END {
      a = 0; b = 0
      for (i = 2; i <= NR; i++) if (r[i] > r[i - 1]) { if (!a) a = i - 1; b = i }
      if (!a) { print 0, 0, 0; exit }
      print r[b] - r[a], (c[b] - c[a]) / hz, t[b] - t[a]
    }' "$tw/samples")"
  local whole rss a1
  read -r whole rss <<<"$(awk '{ print $1 + $2, $3 }' "$tw/time" 2>/dev/null || echo "0 0")"
  a1=$(nginx_status "$NGINX_PORT" | awk '{ print $1 }')
  # connections: minus one per status sample
  echo "$reqs $cpu $rss $((a1 - a0 - $(wc -l <"$tw/samples") - 1)) $whole $secs" >>"$tmp/plain.tsung.runs"
  tail -n 1 "$tmp/plain.tsung.runs" | awk -v i="$run" '{
    printf "  run %d plain    tsung   %9d requests %8.0f/s %6.2f CPU s %7.2f µs/request %6.1f MB %4d connections  (load window %.1f s; whole run %.2f CPU s)\n",
      i, $1, ($6 > 0 ? $1 / $6 : 0), $2, ($1 > 0 ? $2 * 1e6 / $1 : 0), $3 / 1024, $4, $6, $5 }'
  if ! awk '{ exit !($1 > 0) }' "$tmp/plain.tsung.runs"; then
    echo "  tsung made no request; its output ends with:" && tail -n 3 "$tw/out" | sed 's/^/    /'
  fi
}

# clients_summarize WORKLOAD CLIENT...: medians into R[WORKLOAD.CLIENT.*]
clients_summarize() {
  local w=$1 c f
  shift
  for c in "$@"; do
    f=$tmp/$w.$c.runs
    [ -s "$f" ] || continue
    R[$w.$c.reqs]=$(col "$f" 1)
    R[$w.$c.cpu]=$(col "$f" 2)
    R[$w.$c.rss]=$(col "$f" 3)
    R[$w.$c.conns]=$(col "$f" 4)
    R[$w.$c.us]=$(awk '{ if ($1 > 0) print $2 * 1e6 / $1; else print "nan" }' "$f" | median)
    if [ "$c" = tsung ]; then
      R[$w.$c.rps]=$(awk '{ if ($6 > 0) print $1 / $6; else print 0 }' "$f" | median)
      R[$w.$c.whole]=$(col "$f" 5)
    else
      R[$w.$c.rps]=$(awk -v s="$SECS" '{ print $1 / s }' "$f" | median)
    fi
  done
}

clients_bench() {
  local plain=(parrot wrk h2load) scripted=(parrot wrk)
  if command -v tsung >/dev/null 2>&1 && command -v erl >/dev/null 2>&1 && [ "${TSUNG:-1}" != 0 ]; then
    plain+=(tsung)
  else
    R[tsung.missing]=1
  fi
  echo "bench: clients against nginx (CPU $SERVER_CPU) at $bench_url, on CPU $CLIENT_CPU, ${SECS}s each," \
    "$CONNS connections, median of $RUNS runs"
  for run in $(seq "$RUNS"); do
    for c in "${plain[@]}"; do client_run plain "$c"; done
    for c in "${scripted[@]}"; do client_run scripted "$c"; done
  done
  clients_summarize plain "${plain[@]}"
  clients_summarize scripted "${scripted[@]}"
}
