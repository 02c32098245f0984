#!/usr/bin/env bash
# spec/e2e/shipped.sh: the scenarios users copy from (scenarios/quickstart.lua, used by `make
# demo`, and scenarios/shop.lua) run against `parrot target` as their headers say, shortened with
# --duration: exit code 0 (their thresholds hold), every check passes, every request succeeds.
. "$(dirname "$0")/lib.sh"
SHIPPED=$E2E_DIR/../../scenarios

# shipped NAME DURATION: run scenarios/NAME.lua against a fresh target and check it as a user would
shipped() {
    local name=$1 dur=$2
    start_target "$name" || { notok "$name: parrot target starts" "no 'listening on' line"; return; }
    prun "$name" "$SHIPPED/$name.lua" -e PORT="$TARGET_PORT" --duration "$dur" --out "$TMP/$name.json"
    stop_target
    is "$RC" 0 "$name.lua: exit code 0 (its thresholds hold)"
    local req passed failed
    req=$(json_num "$TMP/$name.json" totals.requests)
    passed=$(json_num "$TMP/$name.json" totals.checks_passed)
    failed=$(json_num "$TMP/$name.json" totals.checks_failed)
    gt "$req" 0 "$name.lua: requests were made ($req)"
    is "$(json_num "$TMP/$name.json" totals.errors)" 0 "$name.lua: no request failed"
    gt "$passed" 0 "$name.lua: checks ran ($passed)"
    is "$failed" 0 "$name.lua: no check failed"
    is "$(lines "$TARGET_LOG")" "$req" "$name.lua: the target served every request of the summary"
    is "$(json_num "$TMP/$name.json" errors_by_kind.script)" 0 "$name.lua: no script error"
    if [ -s "$TMP/$name.stderr" ]; then notok "$name.lua: nothing on stderr" "$(head -c 300 "$TMP/$name.stderr")"
    else ok "$name.lua: nothing on stderr"; fi
}

shipped quickstart 3s
shipped shop 4s
for n in home list item login account order; do
    c=$(json_num "$TMP/shop.json" "requests.$n.count") e=$(json_num "$TMP/shop.json" "requests.$n.errors")
    if [ "$c" -gt 0 ] && [ "$e" = 0 ]; then ok "shop.lua: '$n' requests made and all succeed ($c)"
    else notok "shop.lua: '$n' requests made and all succeed" "count $c, errors $e"; fi
done
gt "$(json_num "$TMP/shop.json" transactions.checkout.count)" 0 "shop.lua: the checkout transaction ran"
gt "$(json_num "$TMP/shop.json" custom.pages_seen.value)" 0 "shop.lua: the pages_seen counter counted"

done_testing
