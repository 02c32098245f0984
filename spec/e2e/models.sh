#!/usr/bin/env bash
# spec/e2e/models.sh: the load models as a user counts them, with two load threads (the default on
# two cores), against a real `parrot target`: session weights over threads, the constant-rate
# model with fewer VUs than threads, uniform open arrivals, a stop signal that lets in-flight
# requests finish, and graceful_stop on a stages ramp-down.
. "$(dirname "$0")/lib.sh"

# scenario NAME LUA: a scenario file in a directory of its own (a bundle is its directory)
scenario() { mkdir -p "$TMP/sc_$1" && cat >"$TMP/sc_$1/$1.lua"; echo "$TMP/sc_$1/$1.lua"; }

# (a) weights 7:3 over 10 VUs on 2 threads: exactly 7 and 3, as on one thread
w=$(scenario weights <<'LUA'
local http = require "parrot.http"
return parrot.scenario {
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 10, iterations = 10 },
  sessions = {
    { name = "a", weight = 7, run = function() http.get("/echo?a", { name = "a" }) end },
    { name = "b", weight = 3, run = function() http.get("/echo?b", { name = "b" }) end },
  },
}
LUA
)
if start_target weights; then
    prun weights "$w" -e PORT="$TARGET_PORT" --threads 2 --out "$TMP/weights.json"
    stop_target
    is "$RC" 0 "weights: exit code 0"
    is "$(lines "$TARGET_LOG" '/echo?a')" 7 "weights 7:3 over 2 threads: 7 VUs ran session a"
    is "$(lines "$TARGET_LOG" '/echo?b')" 3 "weights 7:3 over 2 threads: 3 VUs ran session b"
fi

# (b) the rate model with 1 VU over 2 threads: the thread with the VU takes the whole rate
r=$(scenario rate <<'LUA'
local http = require "parrot.http"
return parrot.scenario {
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.rate { rate = 10, vus = 1, duration = "2s" },
  run = function() http.get("/") end,
}
LUA
)
if start_target rate; then
    prun rate "$r" -e PORT="$TARGET_PORT" --threads 2 --out "$TMP/rate.json"
    stop_target
    is "$RC" 0 "rate: exit code 0"
    between "$(json_num "$TMP/rate.json" totals.iterations)" 19 21 "rate 10/s for 2 s with 1 VU on 2 threads: 20 iterations"
    is "$(json_num "$TMP/rate.json" totals.dropped)" 0 "rate: none dropped (the VU is never busy at 10/s)"
    is "$(lines "$TARGET_LOG")" "$(json_num "$TMP/rate.json" totals.requests)" "rate: the access log agrees"
fi

# (c) uniform open arrivals: rate x duration users, the first at once, on every thread count
u=$(scenario uniform <<'LUA'
local http = require "parrot.http"
return parrot.scenario {
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.open { phases = { { rate = tonumber(parrot.env.RATE), duration = parrot.env.DUR } }, dist = "uniform" },
  run = function() http.get("/") end,
}
LUA
)
if start_target uniform; then
    for case in "1 2s 2" "10 1s 10" "7 3s 21"; do
        set -- $case
        prun "uni$1" "$u" -e PORT="$TARGET_PORT" -e RATE="$1" -e DUR="$2" --threads 2 --out "$TMP/uni$1.json"
        is "$(json_num "$TMP/uni$1.json" totals.requests)" "$3" "uniform arrivals at $1/s for $2 on 2 threads: $3 users"
    done
    stop_target
fi

# (d) SIGTERM while requests are in flight: they finish (within 2 s), the summary says so
s=$(scenario slow <<'LUA'
local http = require "parrot.http"
return parrot.scenario {
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 2, duration = "10s" },
  run = function() http.get("/delay/1500", { name = "slow" }) end,
}
LUA
)
if start_target slow; then
    "$PARROT" run "$s" -e PORT="$TARGET_PORT" --threads 2 --quiet --out "$TMP/slow.json" \
        >"$TMP/slow.stdout" 2>"$TMP/slow.stderr" </dev/null &
    pid=$!
    BG_PIDS+=("$pid")
    sleep 0.6
    kill -TERM "$pid"
    t0=$(date +%s%N)
    wait "$pid"
    RC=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    stop_target
    is "$RC" 0 "SIGTERM: exit code 0"
    between "$ms" 100 2600 "SIGTERM: parrot ends once the in-flight requests are done (${ms} ms), within 2 s"
    is "$(json_num "$TMP/slow.json" totals.requests)" 2 "SIGTERM: the 2 requests in flight finished and were counted"
    is "$(json_num "$TMP/slow.json" errors_by_kind.cancelled)" 0 "SIGTERM: none was cut"
    is "$(json_get "$TMP/slow.json" interrupted)" true "SIGTERM: summary.json says the run was interrupted"
fi

# (e) stages ramping down to 0: VUs in a long request are cut graceful_stop after the ramp-down
g=$(scenario rampdown <<'LUA'
local http = require "parrot.http"
return parrot.scenario {
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { stages = { { duration = "1s", target = 2 }, { duration = "0.5s", target = 0 },
                                    { duration = "3s", target = 0 } }, graceful_stop = "1s" },
  run = function() http.get("/delay/3000", { name = "slow" }) end,
}
LUA
)
if start_target rampdown; then
    prun rampdown "$g" -e PORT="$TARGET_PORT" --threads 2 --out "$TMP/rampdown.json"
    stop_target
    is "$RC" 0 "ramp-down: exit code 0"
    is "$(json_num "$TMP/rampdown.json" errors_by_kind.cancelled)" 2 "ramp-down: both VUs were cut mid-request"
    # the series row at ~3.1 s: the VUs left by ~2.5 s (ramp-down 1.0-1.5 s + graceful_stop 1 s)
    vus3=$(python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['series']; print([r['vus'] for r in s if r['t'] > 2.9][0])" "$TMP/rampdown.json" 2>/dev/null)
    is "$vus3" 0 "ramp-down: no VU left 3 s in (graceful_stop 1 s after the ramp-down), not at the 3 s request's end"
fi

# (f) a sequential CSV feeder keeps one position for the process: 1 VU on 2 threads reads u1..u6
c=$(scenario seqcsv <<'LUA'
local http = require "parrot.http"
local users = parrot.csv("users.csv", { mode = "sequential" })
return parrot.scenario {
  target = "http://127.0.0.1:" .. parrot.env.PORT,
  load = parrot.closed { vus = 1, iterations = 8 },
  run = function() http.get("/echo?u=" .. users:next().user) end,
}
LUA
)
printf 'user\nu1\nu2\nu3\nu4\nu5\nu6\n' >"$(dirname "$c")/users.csv"
if start_target seqcsv; then
    prun seqcsv "$c" -e PORT="$TARGET_PORT" --threads 2
    stop_target
    is "$RC" 0 "sequential csv: exit code 0"
    is "$(grep -o 'u=u[0-9]*' "$TARGET_LOG" | tr '\n' ' ')" "u=u1 u=u2 u=u3 u=u4 u=u5 u=u6 u=u1 u=u2 " \
        "sequential csv on 2 threads: every row in order, then around again"
fi

done_testing
