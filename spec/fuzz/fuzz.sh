#!/usr/bin/env bash
# Builds every spec/fuzz/fuzz_NAME.c as a libFuzzer binary (ASan + UBSan) and runs each for
# FUZZ_SECONDS (default 60) over a scratch copy of spec/fuzz/corpus/NAME/, so the seeds in git stay
# small. A fuzzer links src/NAME.c, or the files on a "fuzz-sources:" line in its source (one line;
# the word llhttp there stands for llhttp's C files from the node-llhttp package).
# Crashes are kept as build/fuzz/NAME-crash-*; replay one with: build/fuzz/fuzz_NAME FILE
# Usage: spec/fuzz/fuzz.sh [NAME...]        e.g. FUZZ_SECONDS=600 spec/fuzz/fuzz.sh wire
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-60}
out=build/fuzz
mkdir -p "$out"

have_fuzzer_rt() { # clang can link -fsanitize=fuzzer
  echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n; }' |
    clang -x c -fsanitize=fuzzer -o "$out/.probe" - >/dev/null 2>&1
}
if ! command -v clang >/dev/null || ! have_fuzzer_rt; then
  echo "fuzz: installing clang and libclang-rt-14-dev" >&2
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y clang libclang-rt-14-dev >&2
fi

pkgs="luajit libuv libpcre2-8 libxml-2.0 zlib msgpack libzmq expat"
# shellcheck disable=SC2086
cflags=$(pkg-config --cflags $pkgs 2>/dev/null || true)
# shellcheck disable=SC2086
libs=$(pkg-config --libs $pkgs 2>/dev/null || echo -lmsgpackc)

llhttp_srcs="/usr/share/llhttp/llhttp.c /usr/share/llhttp/api.c /usr/share/llhttp/http.c"

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in spec/fuzz/fuzz_*.c; do names+=("$(basename "$f" .c | sed 's/^fuzz_//')"); done
fi

status=0
for name in "${names[@]}"; do
  src=spec/fuzz/fuzz_$name.c
  [ -f "$src" ] || { echo "fuzz: no $src" >&2; status=1; continue; }
  extra=$(sed -n 's|.*fuzz-sources:\(.*\)\*/.*|\1|p' "$src" | head -n 1)
  srcs=""
  for f in ${extra:-src/$name.c}; do
    if [ "$f" = llhttp ]; then srcs="$srcs $llhttp_srcs"; else srcs="$srcs $f"; fi
  done
  bin=$out/fuzz_$name
  echo "fuzz: building $bin"
  # shellcheck disable=SC2086
  clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -std=gnu11 -D_GNU_SOURCE -Isrc -I/usr/share/include/llhttp $cflags -o "$bin" "$src" $srcs $libs
  work=$(mktemp -d "$out/corpus-$name.XXXXXX")
  [ -d "spec/fuzz/corpus/$name" ] && cp -r "spec/fuzz/corpus/$name/." "$work/"
  echo "fuzz: running $name for ${seconds}s over $(ls "$work" | wc -l) seeds"
  log=$out/fuzz_$name.log
  if "$bin" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$out/$name-" \
    "$work" >"$log" 2>&1; then
    runs=$(sed -n 's/^Done \([0-9]*\) runs in.*/\1/p' "$log" | tail -n 1)
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1)
    echo "fuzz: $name ok: ${runs:-?} runs, ${cov:-cov: ?}, corpus grew to $(ls "$work" | wc -l) (log $log)"
  else
    status=1
    echo "fuzz: $name FOUND A PROBLEM (log $log):"
    grep -E 'ERROR|SUMMARY|Test unit written|runtime error' "$log" | head -n 20
  fi
  rm -rf "$work"
done
exit $status
