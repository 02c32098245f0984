#!/usr/bin/env bash
# `make demo`: start `parrot target` on a free port, run scenarios/quickstart.lua against it with
# live progress and the summary, stop the target, and exit with parrot's exit code.
set -u
cd "$(dirname "$0")/.."
PARROT=${PARROT:-./parrot}

tmp=$(mktemp -d)
target_pid=""
cleanup() {
  [ -n "$target_pid" ] && kill "$target_pid" 2>/dev/null && wait "$target_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$PARROT" target --port 0 >"$tmp/target.out" 2>"$tmp/target.err" &
target_pid=$!

# Wait (up to 5 s) for "listening on http://127.0.0.1:PORT".
port=""
for _ in $(seq 50); do
  port=$(sed -n 's|^listening on http://[^:]*:\([0-9]*\).*|\1|p' "$tmp/target.out" | head -n 1)
  [ -n "$port" ] && break
  kill -0 "$target_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "demo: parrot target did not start:" >&2
  cat "$tmp/target.err" >&2
  exit 1
fi

echo "demo: parrot target is listening on 127.0.0.1:$port; running scenarios/quickstart.lua"
echo
"$PARROT" run scenarios/quickstart.lua -e PORT="$port"
rc=$?
echo
case $rc in
  0) echo "demo: done, every threshold held (exit code 0)" ;;
  99) echo "demo: a threshold was crossed (exit code 99)" ;;
  *) echo "demo: parrot run failed (exit code $rc)" ;;
esac
exit $rc
