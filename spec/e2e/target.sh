#!/bin/bash
# End-to-end test of `parrot target`: starts real servers on free ports and checks every endpoint
# with curl (and raw sockets through bash's /dev/tcp for pipelining and malformed requests).
# Prints TAP lines; exits 1 if any check failed. PARROT=path/to/parrot (default ./parrot).
PARROT=${PARROT:-./parrot}
TMP=$(mktemp -d)
PIDS=()
FAILED=0
N=0
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; [ -n "$KEEP" ] || rm -rf "$TMP"' EXIT

ok() { # ok CONDITION-STATUS DESCRIPTION
    N=$((N + 1))
    if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; FAILED=1; fi
}
check() { local d=$1; shift; "$@" >/dev/null 2>&1; ok $? "$d"; }
has() { grep -q -- "$2" <<<"$1"; } # has TEXT PATTERN

# start NAME ARGS...: runs the server, waits for its listening line, sets URL_<NAME> and PID_<NAME>
start() {
    local name=$1; shift
    "$PARROT" target --port 0 --quiet "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 100); do
        grep -q "^listening on " "$TMP/$name.out" 2>/dev/null && break
        sleep 0.05
    done
    local url
    url=$(sed -n 's/^listening on //p' "$TMP/$name.out")
    printf -v "URL_$name" %s "$url"
    printf -v "PID_$name" %s "$pid"
}

# raw PORT REQUEST-BYTES: sends them on one connection, prints everything until the server closes
raw() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "$2" >&3 && timeout 5 cat <&3)
}

start plain --log "$TMP/access.log"
ok "$([[ $URL_plain =~ ^http://127\.0\.0\.1:[0-9]+$ ]]; echo $?)" "prints 'listening on http://127.0.0.1:PORT'"
U=$URL_plain
PORT=${U##*:}

r=$(curl -si "$U/")
check "/ answers 200 with HTML" has "$r" "HTTP/1.1 200"
check "/ is text/html" has "$r" "Content-Type: text/html"
check "/ has a title and a link" has "$r" '<title>parrot target</title>.*<a href='
check "/ has the hidden token input" has "$r" '<input type="hidden" name="token" value="abc123">'

j=$(curl -s "$U/json")
check "/json is the items document" has "$j" '"count":3'
check "/json parses as JSON" python3 -c "import json,sys; assert json.loads(sys.argv[1])['items'][0]['name']=='apple'" "$j"
g=$(curl -s --compressed "$U/gzip")
ok "$([ "$g" = "$j" ]; echo $?)" "/gzip decompresses to the /json document"
check "/gzip says Content-Encoding: gzip" has "$(curl -si "$U/gzip" -o /dev/null -D -)" "Content-Encoding: gzip"

ok "$([ "$(curl -s "$U/bytes/12345" | wc -c)" = 12345 ]; echo $?)" "/bytes/12345 sends 12345 bytes"
ok "$([ "$(curl -s "$U/bytes/0" | wc -c)" = 0 ]; echo $?)" "/bytes/0 sends an empty body"
ok "$([ "$(curl -s "$U/bytes/3000000" | wc -c)" = 3000000 ]; echo $?)" "/bytes/3000000 sends 3 MB"
h=$(curl -sI "$U/bytes/100")
check "HEAD /bytes/100 has Content-Length: 100" has "$h" "Content-Length: 100"

c=$(curl -s --raw "$U/chunked/5000")
check "/chunked/5000 is sent in chunks" has "$c" $'^4e2\r$'
ok "$([ "$(curl -s "$U/chunked/5000" | wc -c)" = 5000 ]; echo $?)" "/chunked/5000 decodes to 5000 bytes"
check "/chunked says Transfer-Encoding: chunked" has "$(curl -s -D - -o /dev/null "$U/chunked/10")" "Transfer-Encoding: chunked"

d=$(curl -s -D - -o /dev/null -w 'time=%{time_total}\n' "$U/delay/150")
us=$(sed -n 's/^X-Delay-Us: \([0-9]*\).*/\1/p' <<<"$d")
ok "$([ -n "$us" ] && [ "$us" -ge 150000 ] && [ "$us" -lt 1000000 ]; echo $?)" "/delay/150 waits 150 ms and says so in X-Delay-Us ($us)"

ok "$([ "$(curl -s -o /dev/null -w '%{http_code}' "$U/status/418")" = 418 ]; echo $?)" "/status/418 answers 418"
check "/status/418 has its reason phrase" has "$(curl -si "$U/status/418")" "418 I'm a teapot"
ok "$([ "$(curl -s -o /dev/null -w '%{http_code}' "$U/status/204")" = 204 ]; echo $?)" "/status/204 answers 204"
ok "$([ "$(curl -s -o /dev/null -w '%{http_code}' "$U/status/503")" = 503 ]; echo $?)" "/status/503 answers 503"
ok "$([ "$(curl -s -o /dev/null -w '%{http_code}' "$U/status/101")" = 400 ]; echo $?)" "/status/1xx answers 400"
ok "$([ "$(curl -s -o /dev/null -w '%{http_code}' "$U/status/x")" = 400 ]; echo $?)" "/status/x answers 400"

e=$(curl -s -X PUT -H 'X-Test: "quoted"' --data-binary $'line1\nline2' "$U/echo?a=1&b=two")
check "/echo returns method, path, query, lowercased headers and body" python3 -c '
import json,sys; d=json.loads(sys.argv[1])
assert d["method"]=="PUT" and d["path"]=="/echo" and d["query"]=="a=1&b=two"
assert d["headers"]["x-test"]=="\"quoted\"" and d["body"]=="line1\nline2"' "$e"
e=$(printf 'abc' | curl -s -H 'Transfer-Encoding: chunked' --data-binary @- "$U/echo")
check "/echo reads a chunked request body" has "$e" '"body":"abc"'
ok "$([ "$(head -c 2000000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' --data-binary @- "$U/echo")" = 413 ]; echo $?)" \
    "/echo refuses bodies over 1 MB with 413"

s=$(curl -si "$U/cookie/set?flavor=oat&size=big")
check "/cookie/set sets each pair with Path=/" has "$s" "Set-Cookie: size=big; Path=/"
curl -s -c "$TMP/jar" "$U/cookie/set?flavor=oat&size=big" >/dev/null
k=$(curl -s -b "$TMP/jar" "$U/cookie/check")
check "/cookie/check shows the cookies sent back" has "$k" '{"cookies":{.*"flavor":"oat".*}}'
check "/cookie/check without cookies is empty" has "$(curl -s "$U/cookie/check")" '{"cookies":{}}'

check "/redirect/3 points at /redirect/2" has "$(curl -si "$U/redirect/3")" "Location: /redirect/2"
check "/redirect/0 points at /" has "$(curl -si "$U/redirect/0")" $'Location: /\r'
ok "$([ "$(curl -sL -o /dev/null -w '%{num_redirects} %{url_effective}' "$U/redirect/3")" = "4 $U/" ]; echo $?)" \
    "following /redirect/3 takes 4 hops and lands on /"
check "/redirect-to?url= redirects to the decoded URL" has "$(curl -si "$U/redirect-to?url=%2Fitem%2F7%3Fx%3D1")" \
    $'Location: /item/7?x=1\r'

l=$(curl -si -c "$TMP/jar2" -d 'user=bob&pass=secret' "$U/login")
check "POST /login sets the session cookie" has "$l" "Set-Cookie: session=bob-[0-9]*; Path=/; HttpOnly"
check "POST /login answers ok JSON" has "$l" '{"ok":true,"user":"bob"}'
a=$(curl -s -w ' %{http_code}' -b "$TMP/jar2" "$U/account" | tr -d '\n')
check "/account with the session answers 200 with the user" has "$a" '"user":"bob".* 200$'
ok "$([ "$(curl -s -o /dev/null -w '%{http_code}' "$U/account")" = 401 ]; echo $?)" "/account without a session answers 401"
ok "$([ "$(curl -s -o /dev/null -w '%{http_code}' "$U/login")" = 405 ]; echo $?)" "GET /login answers 405"

check "/item/42 describes item 42" has "$(curl -s "$U/item/42")" '{"id":42,"name":"item 42","price":[0-9.]*}'
ok "$([ "$(curl -s -o /dev/null -w '%{http_code}' "$U/no/such/thing")" = 404 ]; echo $?)" "unknown paths answer 404"

ka=$(curl -sv "$U/item/1" "$U/item/2" 2>&1 >/dev/null)
check "HTTP/1.1 keeps the connection alive" has "$ka" "Re-using existing connection"
check "Connection: close is honoured" has "$(curl -sv -H 'Connection: close' "$U/" 2>&1)" "< Connection: close"
check "HTTP/1.0 closes by default" has "$(curl -si --http1.0 "$U/")" "Connection: close"
check "HTTP/1.0 with keep-alive stays open" has "$(curl -si --http1.0 -H 'Connection: keep-alive' "$U/")" "Connection: keep-alive"

p=$(raw "$PORT" 'GET /delay/100 HTTP/1.1\r\nHost: x\r\n\r\nGET /item/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /item/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
order=$(grep -o 'waited_us\|item 1\|item 2' <<<"$p" | tr '\n' ' ')
ok "$([ "$order" = "waited_us item 1 item 2 " ]; echo $?)" "pipelined requests are answered in order, behind a delay ($order)"
b=$(raw "$PORT" 'NONSENSE\r\n\r\n')
check "a malformed request gets 400 and the connection closes" has "$b" "HTTP/1.1 400"
b=$(raw "$PORT" 'POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /x HTTP/1.1\r\nContent-Length: zz\r\n\r\n')
check "a good request before a bad one is answered first" has "$(tr -d '\r' <<<"$b" | tr '\n' ' ')" '"body":"hello"}.*HTTP/1.1 400'

# a second server on the same port must fail with a clear message
"$PARROT" target --port "$PORT" >"$TMP/busy.out" 2>"$TMP/busy.err"
st=$?
ok "$([ $st = 1 ]; echo $?)" "a busy port exits 1"
check "a busy port says 'address already in use'" grep -q "cannot listen on 127.0.0.1:$PORT: address already in use" "$TMP/busy.err"

kill -TERM "$PID_plain"
wait "$PID_plain"
ok $? "SIGTERM stops the server with exit code 0"
check "the access log has one line per request" grep -qE \
    '^127\.0\.0\.1 - - \[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9:]{8} \+0000\] "GET /item/42 HTTP/1\.1" 200 [0-9]+$' "$TMP/access.log"
check "the access log records statuses" grep -q '"GET /status/418 HTTP/1.1" 418 ' "$TMP/access.log"

start tls --tls --cert-out "$TMP/cert.pem"
ok "$([[ $URL_tls =~ ^https://127\.0\.0\.1:[0-9]+$ ]]; echo $?)" "--tls prints 'listening on https://...'"
check "--cert-out writes a PEM certificate" grep -q "BEGIN CERTIFICATE" "$TMP/cert.pem"
check "HTTPS verifies against the certificate for 127.0.0.1" has "$(curl -s --cacert "$TMP/cert.pem" "$URL_tls/json")" '"count":3'
check "HTTPS verifies against the certificate for localhost" has \
    "$(curl -s --cacert "$TMP/cert.pem" "https://localhost:${URL_tls##*:}/item/5")" '"id":5'
ok "$([ "$(curl -s --cacert "$TMP/cert.pem" "$URL_tls/bytes/2000000" | wc -c)" = 2000000 ]; echo $?)" "HTTPS /bytes/2000000 sends 2 MB"
check "HTTPS echo" has "$(curl -s --cacert "$TMP/cert.pem" -d 'x=1' "$URL_tls/echo")" '"body":"x=1"'

start multi --threads 3 --host ::1
ok "$([[ $URL_multi =~ ^http://\[::1\]:[0-9]+$ ]]; echo $?)" "--host ::1 prints 'listening on http://[::1]:PORT'"
codes=$(for i in $(seq 20); do curl -s -o /dev/null -w '%{http_code} ' "$URL_multi/item/$i"; done)
ok "$([ "$codes" = "$(printf '200 %.0s' $(seq 20))" ]; echo $?)" "--threads 3 answers every request"

kill -TERM "$PID_tls" "$PID_multi"
wait "$PID_tls" && wait "$PID_multi"
ok $? "the HTTPS and threaded servers stop cleanly"
ok "$(! grep -l 'Sanitizer\|runtime error' "$TMP"/*.err; echo $?)" "no sanitizer reports (when built with SAN=1)"

echo "1..$N"
exit $FAILED
