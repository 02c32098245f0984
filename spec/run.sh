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
for s in spec/lua/*_spec.lua; do
  [ -f "$s" ] && run_one "$(basename "$s")" "$PARROT" test "$s"
done
for e in spec/e2e/*.sh; do
  [ -f "$e" ] && run_one "$(basename "$e")" bash "$e"
done

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
