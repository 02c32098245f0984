#!/usr/bin/env bash
# spec/e2e/tls.sh: HTTPS against nginx with a certificate from a test CA: refused without the CA
# (a tls error, no success), accepted with tls = {ca = ...} or --insecure; 200 users starting at
# once resume one TLS session instead of each paying a full handshake (nginx says which it was);
# and against `parrot target --tls` with the certificate it writes (--cert-out).
. "$(dirname "$0")/lib.sh"

# A test CA and a server certificate for localhost / 127.0.0.1 signed by it.
pki=$TMP/pki
mkdir -p "$pki"
if ! (
    cd "$pki" &&
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=parrot e2e test CA" \
            -keyout ca.key -out ca.pem &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr &&
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >ext.cnf &&
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile ext.cnf -out server.pem
) >"$TMP/openssl.log" 2>&1; then
    notok "tls: openssl makes a CA and a server certificate" "$(tail -n 3 "$TMP/openssl.log")"
    done_testing
fi
ok "tls: openssl makes a CA and a server certificate"

if start_nginx tls "        listen 127.0.0.1:@PORT@ ssl;
        ssl_certificate $pki/server.pem;
        ssl_certificate_key $pki/server.key;
        location / { return 200 \"hello over tls\n\"; }
        location /reused { return 200 \$ssl_session_reused; }"; then
    url=https://localhost:$NGINX_PORT
    res=(--resolve "localhost:$NGINX_PORT:127.0.0.1" --vus 2 --threads 2 --iterations 10)

    prun noca "$SCEN/tls.lua" -e URL="$url" "${res[@]}" --out "$TMP/noca.json"
    exit_normal "$RC" "tls: without the CA: exits normally"
    gt "$(json_num "$TMP/noca.json" errors_by_kind.tls)" 0 "tls: without the CA: the certificate is refused (errors_by_kind.tls)"
    is "$(json_num "$TMP/noca.json" status.200)" 0 "tls: without the CA: no success"
    is "$(json_num "$TMP/noca.json" "checks.https 200.passed")" 0 "tls: without the CA: no check passes"

    prun ca "$SCEN/tls.lua" -e URL="$url" -e CA="$pki/ca.pem" "${res[@]}" --out "$TMP/ca.json"
    is "$RC" 0 "tls: with tls = {ca = ca.pem}: exit code 0"
    is "$(json_num "$TMP/ca.json" status.200)" 10 "tls: with tls = {ca = ca.pem}: all 10 answered 200"
    is "$(json_num "$TMP/ca.json" totals.errors)" 0 "tls: with tls = {ca = ca.pem}: no errors"

    prun insecure "$SCEN/tls.lua" -e URL="$url" "${res[@]}" --insecure --out "$TMP/insecure.json"
    is "$RC" 0 "tls: --insecure: exit code 0"
    is "$(json_num "$TMP/insecure.json" status.200)" 10 "tls: --insecure: all 10 answered 200"

    # the CA of another name must not vouch for this server: a certificate for the wrong host
    prun wronghost "$SCEN/tls.lua" -e URL="https://127.0.0.2.nip.invalid:$NGINX_PORT" -e CA="$pki/ca.pem" \
        --resolve "127.0.0.2.nip.invalid:$NGINX_PORT:127.0.0.1" --vus 1 --threads 1 --iterations 2 --out "$TMP/wronghost.json"
    gt "$(json_num "$TMP/wronghost.json" errors_by_kind.tls)" 0 "tls: a certificate for another host name is refused even with the CA"

    # 200 users at once on one thread, no session cached yet: one full handshake, the others wait
    # for it and resume its session (nginx: session tickets), so the first answers come at once
    prun stampede "$SCEN/tls_stampede.lua" -e URL="$url" -e CA="$pki/ca.pem" \
        --resolve "localhost:$NGINX_PORT:127.0.0.1" --threads 1 --out "$TMP/stampede.json"
    is "$(json_num "$TMP/stampede.json" "checks.answered.passed")" 200 "tls: 200 users at once: all answered"
    between "$(json_num "$TMP/stampede.json" "checks.resumed.passed")" 195 200 \
        "tls: 200 users at once: nginx saw (nearly) all of them resume the session"
    between "$(json_num "$TMP/stampede.json" latency_ms.p95)" 0 500 \
        "tls: 200 users at once: p95 of the first requests under 500 ms (200 full handshakes take about 1 s)"

    stop_nginx
    is "$(lines "$NGINX_LOG" ' 200 "GET / HTTP/1.1"')" 20 "tls: nginx saw exactly the 20 successful requests"
else
    notok "tls: nginx with ssl starts" "see the log above"
fi

# parrot target --tls writes its self-signed certificate; parrot run trusts it with tls.ca
if start_target tlstarget --tls --cert-out "$TMP/target-cert.pem"; then
    [ -s "$TMP/target-cert.pem" ] && ok "tls: parrot target --cert-out writes the certificate" ||
        notok "tls: parrot target --cert-out writes the certificate" "empty or missing"
    prun tt "$SCEN/tls.lua" -e URL="https://localhost:$TARGET_PORT" -e CA="$TMP/target-cert.pem" \
        --resolve "localhost:$TARGET_PORT:127.0.0.1" --vus 2 --threads 1 --iterations 10 --out "$TMP/tt.json"
    is "$RC" 0 "tls: parrot target --tls with tls.ca = its certificate: exit code 0"
    is "$(json_num "$TMP/tt.json" status.200)" 10 "tls: parrot target --tls: all 10 answered 200"
    prun tt_ip "$SCEN/tls.lua" -e URL="https://127.0.0.1:$TARGET_PORT" -e CA="$TMP/target-cert.pem" \
        --vus 1 --threads 1 --iterations 3 --out "$TMP/tt_ip.json"
    is "$(json_num "$TMP/tt_ip.json" status.200)" 3 "tls: parrot target --tls by IP address (SAN IP:127.0.0.1) verifies"
    prun tt_noca "$SCEN/tls.lua" -e URL="https://localhost:$TARGET_PORT" \
        --resolve "localhost:$TARGET_PORT:127.0.0.1" --vus 1 --threads 1 --iterations 3 --out "$TMP/tt_noca.json"
    gt "$(json_num "$TMP/tt_noca.json" errors_by_kind.tls)" 0 "tls: parrot target --tls without its certificate is refused"
    stop_target
    want=$(($(json_num "$TMP/tt.json" status.200) + $(json_num "$TMP/tt_ip.json" status.200)))
    is "$(lines "$TARGET_LOG")" "$want" "tls: the target logged exactly the requests parrot counted as 200"
else
    notok "tls: parrot target --tls starts" "no 'listening on' line"
fi

done_testing
