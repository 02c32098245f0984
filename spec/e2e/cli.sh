#!/usr/bin/env bash
# spec/e2e/cli.sh: the `parrot` command line as a user meets it: --help, help COMMAND, --version,
# units and --name=value on the command line, mistakes found before any load (exit 2, one line,
# no request reaches the target), and overrides that do not fit the scenario's load model.
. "$(dirname "$0")/lib.sh"

# has FILE TEXT DESC: ok when FILE contains the fixed string TEXT
has() {
    if grep -qF -- "$2" "$1"; then ok "$3"; else notok "$3" "no '$2' in: $(head -c 300 "$1")"; fi
}
# one_line FILE DESC: ok when FILE holds exactly one line
one_line() { is "$(lines "$1")" 1 "$2"; }

# (a) help and version
"$PARROT" --help >"$TMP/help.out" 2>&1
is "$?" 0 "parrot --help: exit code 0"
has "$TMP/help.out" "run FILE.lua" "parrot --help lists the run command"
has "$TMP/help.out" "help COMMAND" "parrot --help says how to get one command's options"
"$PARROT" help run >"$TMP/helprun.out" 2>&1
is "$?" 0 "parrot help run: exit code 0"
for o in --vus --duration --rate --iterations --out --proxy --resolve --dump --quiet; do
    has "$TMP/helprun.out" "$o" "parrot help run documents $o"
done
"$PARROT" run --help >"$TMP/runhelp.out" 2>&1
cmp -s "$TMP/helprun.out" "$TMP/runhelp.out" && ok "parrot run --help prints the same page" ||
    notok "parrot run --help prints the same page" "they differ"
for c in queen worker target import keygen test; do
    "$PARROT" help "$c" >"$TMP/help_$c.out" 2>&1
    rc=$?
    if [ "$rc" = 0 ] && grep -q "usage: parrot $c" "$TMP/help_$c.out"; then ok "parrot help $c: its usage, exit 0"
    else notok "parrot help $c: its usage, exit 0" "exit $rc: $(head -c 200 "$TMP/help_$c.out")"; fi
done
"$PARROT" help nosuch >"$TMP/nosuch.out" 2>"$TMP/nosuch.err"
is "$?" 2 "parrot help nosuch: exit code 2"
has "$TMP/nosuch.err" "unknown command 'nosuch'" "parrot help nosuch says the command is unknown"
one_line "$TMP/nosuch.err" "parrot help nosuch: one line"
is "$(lines "$TMP/nosuch.out")" 0 "parrot help nosuch prints no help page"
"$PARROT" frobnicate >/dev/null 2>"$TMP/cmd.err"
is "$?" 2 "an unknown command: exit code 2"
v=$("$PARROT" --version)
is "$?" 0 "parrot --version: exit code 0"
[[ $v =~ ^parrot\ [0-9]+\.[0-9]+\.[0-9]+$ ]] && ok "parrot --version prints 'parrot X.Y.Z'" ||
    notok "parrot --version prints 'parrot X.Y.Z'" "got '$v'"

# (b) units and --name=value on the command line
if start_target units; then
    prun units "$SCEN/count.lua" -e PORT="$TARGET_PORT" --vus=2 --iterations 1k --out "$TMP/units.json"
    is "$RC" 0 "--iterations 1k: exit code 0"
    is "$(json_get "$TMP/units.json" totals.requests)" 1000 "--iterations 1k makes 1000 requests"
    is "$(json_num "$TMP/units.json" totals.vus_max)" 2 "--vus=2 (with =) runs 2 VUs"
    prun dur --url "$TARGET_URL/" --vus 1 --duration 1500ms --out="$TMP/dur.json"
    is "$RC" 0 "--duration 1500ms: exit code 0"
    between "$(json_num "$TMP/dur.json" duration_s)" 1.4 2.6 "--duration 1500ms runs about 1.5 s"
    [ -s "$TMP/dur.json" ] && ok "--out=FILE (with =) writes the file" || notok "--out=FILE (with =) writes the file" "no file"
    stop_target
    is "$(lines "$TARGET_LOG")" "$((1000 + $(json_num "$TMP/dur.json" totals.requests)))" \
        "the access log has every request of both runs"
fi

# (c) mistakes found before any load: exit 2, one line, nothing sent
if start_target bad; then
    bad_run() { # NAME EXPECTED-TEXT ARGS...
        local name=$1 text=$2; shift 2
        prun "$name" "$@"
        is "$RC" 2 "$name: exit code 2"
        has "$TMP/$name.stderr" "$text" "$name: says '$text'"
        one_line "$TMP/$name.stderr" "$name: in one line"
    }
    bad_run out_ext "unknown file type" "$SCEN/count.lua" -e PORT="$TARGET_PORT" --out "$TMP/x.txt"
    bad_run out_dir "no directory /nonexistent/dir" "$SCEN/count.lua" -e PORT="$TARGET_PORT" --out /nonexistent/dir/s.json
    mkdir -p "$TMP/adir.json"
    bad_run out_isdir "is a directory" --url "$TARGET_URL/" --out "$TMP/adir.json"
    bad_run vus_zero "--vus needs a positive count" --url "$TARGET_URL/" --vus 0
    bad_run vus_eq "--vus needs a positive count" --url "$TARGET_URL/" --vus=lots
    bad_run dur_bad "cannot read duration" --url "$TARGET_URL/" --duration 10parsecs
    bad_run flag_value "takes no value" --url "$TARGET_URL/" --quiet=yes
    "$PARROT" run --url "$TARGET_URL/" --duration >/dev/null 2>"$TMP/missing.err"
    is "$?" 2 "missing: exit code 2"
    has "$TMP/missing.err" "missing value after '--duration'" "missing: says 'missing value after'"
    bad_run unknown "unknown option" --url "$TARGET_URL/" --vuz 3
    bad_run both "give a file or --url, not both" "$SCEN/count.lua" --url "$TARGET_URL/"
    [ ! -e "$TMP/x.txt" ] && ok "a refused --out leaves no file behind" || notok "a refused --out leaves no file behind" "x.txt exists"
    stop_target
    is "$(lines "$TARGET_LOG")" 0 "no refused run sent a request"
fi

# (d) overrides that do not fit the load model: one warning line each, the run goes on
if start_target ov; then
    prun rate_closed "$SCEN/count.lua" -e PORT="$TARGET_PORT" --iterations 10 --rate 50
    is "$RC" 0 "--rate on a closed scenario: the run goes on"
    has "$TMP/rate_closed.stderr" "warning: --rate applies to the rate and open models" "--rate on a closed scenario warns"
    is "$(grep -c 'warning: --rate' "$TMP/rate_closed.stderr")" 1 "--rate on a closed scenario warns once (not per thread)"
    prun vus_open "$SCEN/open.lua" -e PORT="$TARGET_PORT" -e OPEN_RATE=20 --vus 5 --duration 1s
    is "$RC" 0 "--vus on an open scenario: the run goes on"
    has "$TMP/vus_open.stderr" "warning: --vus does not apply to the open model" "--vus on an open scenario warns"
    prun it_rate "$SCEN/rate.lua" -e PORT="$TARGET_PORT" --iterations 5 --duration 1s
    has "$TMP/it_rate.stderr" "warning: --iterations applies to the closed model" "--iterations on a rate scenario warns"
    prun url_rate --url "$TARGET_URL/" --rate 50 --duration 2s --out "$TMP/url_rate.json"
    is "$RC" 0 "--url --rate: exit code 0"
    between "$(json_num "$TMP/url_rate.json" totals.iterations)" 80 120 "--url --rate 50 for 2 s makes about 100 requests (wrk2's constant rate)"
    stop_target
fi

done_testing
