#!/usr/bin/env bash
# Runs every test of the project and ends with one line "N passed, N failed".
# Each test program prints TAP lines ("ok - ..." / "not ok - ..."); a program that exits non-zero
# without a "not ok" line counts as one failure, so a crash is never silent.
# Usage: spec/run.sh [PATTERN]   (only tests whose file name contains PATTERN)
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/rel}
export PARROT=${PARROT:-$PWD/parrot}
pattern=${1:-}
passed=0 failed=0
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

run_one() { # NAME COMMAND...
  local name=$1; shift
  [ -n "$pattern" ] && [[ "$name" != *"$pattern"* ]] && return
  echo "# $name"
  local out="$log/out" rc p f
  timeout --kill-after=10 600 "$@" >"$out" 2>"$log/err" </dev/null; rc=$?
  grep -E '^(not )?ok\b' "$out"
  p=$(grep -cE '^ok\b' "$out"); f=$(grep -cE '^not ok\b' "$out")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "not ok - $name exited with $rc"; f=1
  fi
  if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then sed 's/^/#   /' "$log/err" | tail -n 30; fi
  passed=$((passed + p)); failed=$((failed + f))
}

for t in "$BUILD"/spec/test_*; do
  [ -x "$t" ] && run_one "$(basename "$t")" "$t"
done
# The Lua specs make real requests: one `parrot target` on a free port serves them all.
target_pid=""
stop_target() { [ -n "$target_pid" ] && kill "$target_pid" 2>/dev/null && wait "$target_pid" 2>/dev/null; target_pid=""; }
trap 'stop_target; rm -rf "$log"' EXIT
if compgen -G "spec/lua/*_spec.lua" >/dev/null; then
  "$PARROT" target --port 0 --quiet >"$log/target" 2>&1 </dev/null &
  target_pid=$!
  port=""
  for _ in $(seq 50); do
    port=$(sed -n 's|^listening on http://[^:]*:\([0-9]*\).*|\1|p' "$log/target" | head -n 1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "not ok - parrot target did not start: $(cat "$log/target")"; failed=$((failed + 1)); }
  export PARROT_TARGET="http://127.0.0.1:${port:-9}"
fi
for s in spec/lua/*_spec.lua; do
  [ -f "$s" ] && run_one "$(basename "$s")" "$PARROT" test "$s"
done
stop_target
for e in spec/e2e/*.sh; do
  [ -f "$e" ] && run_one "$(basename "$e")" bash "$e"
done

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
