#!/usr/bin/env bash
# spec/e2e/hostile.sh: parrot run against servers that misbehave (hostile.py), a closed port and an
# unresolvable name. Each failure lands in the right errors_by_kind, the VUs go on making requests,
# and parrot exits normally (0 or 99, never a crash).
. "$(dirname "$0")/lib.sh"

start_bg "$TMP/hostile.out" python3 -u "$E2E_DIR/hostile.py" 0
HOSTILE_PID=$BG_PID
port=
for _ in $(seq 50); do
    port=$(sed -n 's#^listening on http://127.0.0.1:\([0-9]*\)$#\1#p' "$TMP/hostile.out")
    [ -n "$port" ] && break
    sleep 0.1
done
if [ -z "$port" ]; then
    notok "hostile: hostile.py starts" "$(tail -n 5 "$TMP/hostile.out")"
    done_testing
fi
base=http://127.0.0.1:$port
closed=$(free_port) # nothing listens there

# name  url  expected kind  (all runs go in parallel: each is 2 s of 2 VUs on one thread)
cases=(
    "ok $base/ok -"
    "truncated $base/truncated reset"
    "badchunk $base/badchunk protocol"
    "garbage $base/garbage protocol"
    "nothttp $base/nothttp protocol"
    "bigheaders $base/bigheaders too_large"
    "drip $base/drip timeout"
    "reset $base/reset reset"
    "silent $base/silent timeout"
    "refused http://127.0.0.1:$closed/ connect"
    "dns http://nonexistent.invalid/ dns"
)
pids=()
for c in "${cases[@]}"; do
    set -- $c
    kind=$3
    [ "$kind" = - ] && kind=
    (prun "h_$1" "$SCEN/hostile.lua" -e URL="$2" -e KIND="$kind" --threads 1 --out "$TMP/h_$1.json"
        echo "$RC" >"$TMP/h_$1.rc") &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

for c in "${cases[@]}"; do
    set -- $c
    name=$1 kind=$3 f=$TMP/h_$1.json
    rc=$(cat "$TMP/h_$name.rc" 2>/dev/null)
    exit_normal "${rc:-none}" "$name: parrot exits normally"
    req=$(json_num "$f" totals.requests)
    gt "$req" 2 "$name: the run goes on (several requests, not just one)"
    if [ "$kind" = - ]; then
        is "$(json_num "$f" totals.errors)" 0 "$name: a well-behaved answer has no error"
        is "$(json_num "$f" status.200)" "$req" "$name: all answered 200"
        continue
    fi
    got=$(json_num "$f" "errors_by_kind.$kind")
    if [ "$got" = "$req" ] && [ "$got" != 0 ]; then
        ok "$name: every request is counted in errors_by_kind.$kind"
    else
        notok "$name: every request is counted in errors_by_kind.$kind" \
            "requests $req, errors_by_kind $(json_get "$f" errors_by_kind)"
    fi
    is "$(json_num "$f" totals.errors)" "$req" "$name: every request is an error"
    is "$(json_num "$f" checks.error_kind.failed)" 0 "$name: r.error_kind is \"$kind\" in the script"
    is "$(json_num "$f" "checks.error message.failed")" 0 "$name: r.error has a message"
done

kill -0 "$HOSTILE_PID" 2>/dev/null && ok "hostile: the server survived it all" || notok "hostile: the server survived it all" "it died"
done_testing
