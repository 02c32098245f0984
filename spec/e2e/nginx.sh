#!/usr/bin/env bash
# spec/e2e/nginx.sh: parrot run against a real nginx: exact request counts on both sides over
# 10 VUs on 2 threads, and keep-alive (each VU keeps its connection: no more connections than VUs).
. "$(dirname "$0")/lib.sh"

if ! start_nginx nginx '        listen 127.0.0.1:@PORT@;
        location / { return 200 "hello\n"; }'; then
    notok "nginx: starts" "see the log above"
    done_testing
fi
ok "nginx: starts on a free port"

prun nginx "$SCEN/count.lua" -e PORT="$NGINX_PORT" --vus 10 --threads 2 --iterations 500 --out "$TMP/nginx.json"
stop_nginx
is "$RC" 0 "nginx: exit code 0"
is "$(json_get "$TMP/nginx.json" totals.requests)" 500 "nginx: summary.json counts 500 requests"
is "$(lines "$NGINX_LOG")" 500 "nginx: nginx's access log has 500 lines"
is "$(lines "$NGINX_LOG" ' 200 "GET / HTTP/1.1"')" 500 "nginx: all of them GET / HTTP/1.1 answered 200"
is "$(json_num "$TMP/nginx.json" status.200)" 500 "nginx: status 200 counted 500 times"
is "$(json_num "$TMP/nginx.json" totals.errors)" 0 "nginx: no errors"
is "$(json_get "$TMP/nginx.json" "checks.root is 200.passed")" 500 "nginx: the check passed 500 times"
conns=$(awk '{ print $1 }' "$NGINX_LOG" | sort -u | wc -l)
between "$conns" 1 10 "nginx: keep-alive: at most one connection per VU ($conns connections for 10 VUs)"
gt "$(json_num "$TMP/nginx.json" totals.bytes_out)" 0 "nginx: bytes_out counted"

done_testing
