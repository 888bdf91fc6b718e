#!/usr/bin/env bash
# cli_remote.sh — the CLI against riftd's TCP API over HTTPS (--host/RIFT_HOST, token, --cacert or
# --pin): create/list/url/delete, labels, a URL that connects through the router from the remote
# side, clear failures for a wrong or missing token and an unverifiable certificate, and
# [api] max_connections.
source "$RIFT_TESTLIB"
state=$TEST_TMP/state
rift() { "$RIFT_BIN/rift" "$@"; }

rift --state "$state" init -q
api_port=$(free_port)
head -c 32 /dev/urandom | base64 | tr -d '/+=' >"$TEST_TMP/token"
chmod 600 "$TEST_TMP/token"
sed -i -e "/^\[api\]/,/^\[/ s|^listen = $|listen = 127.0.0.1:$api_port|" \
	-e "s|^token_file = .*|token_file = $TEST_TMP/token|" \
	-e "s|^max_connections = .*|max_connections = 3|" "$state/rift.conf"
grep -q "^max_connections = 3$" "$state/rift.conf" || fail "rift.conf has no [api] max_connections"
start_riftd "$state"
pin=$(rift --state "$state" --json status | jq -r .api_tls_pin)
[[ "$pin" == sha256//* ]] || fail "status shows no api_tls_pin: $pin"

# the remote side: no state directory at all, only the host, the token and the trust
export RIFT_STATE=$TEST_TMP/nothing-here RIFT_HOST=https://127.0.0.1:$api_port
export RIFT_TOKEN
RIFT_TOKEN=$(cat "$TEST_TMP/token")

# an unverifiable certificate (self-signed, no --cacert or --pin) is refused, clearly
expect_status 1 rift list
expect_output 'cannot verify the TLS certificate of riftd at https://127.0.0.1:[0-9]+: .*--cacert'
expect_status 1 rift --pin 'sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' list
expect_output 'cannot verify the TLS certificate'
# plain HTTP to the HTTPS port gets nothing useful, and the token never went out in clear
expect_status 1 rift --host "http://127.0.0.1:$api_port" list

export RIFT_CACERT=$state/tls/server.crt
# wrong and missing tokens: 401 in words, exit 1
expect_status 1 env RIFT_TOKEN=wrong-token-wrong-token "$RIFT_BIN/rift" list
expect_output 'refused the API token \(wrong token\).*RIFT_TOKEN'
expect_status 1 env -u RIFT_TOKEN "$RIFT_BIN/rift" list
expect_output 'refused the API token \(no token given\)'
echo "$RIFT_TOKEN" >"$TEST_TMP/token-copy"
expect_status 0 env -u RIFT_TOKEN "$RIFT_BIN/rift" --token-file "$TEST_TMP/token-copy" list
expect_output '^main '

# create/list/url/delete remotely, with the pin instead of the CA file too
expect_status 0 rift create remote-1 --label pr=5
expect_output 'created branch remote-1'
expect_status 0 env -u RIFT_CACERT "$RIFT_BIN/rift" --pin "$pin" create remote-2 --label pr=5
[ "$(rift --json list --label pr=5 | jq -r '[.branches[].name] | join(" ")')" = "remote-1 remote-2" ] ||
	fail "remote list --label: $(rift --json list)"
url=$(rift url remote-1)
[[ "$url" =~ ^postgres://rift:[A-Za-z0-9]+@127\.0\.0\.1:$ROUTER_PORT/remote-1$ ]] ||
	fail "remote rift url printed $url"
[ "$(psql -X -At "$url" -c 'select count(*) from products')" = 200 ] ||
	fail "the remote URL does not connect through the router"
json_url=$(rift --json create remote-3 --new-password | jq -r .url)
[[ "$json_url" =~ ^postgres://rift:[A-Za-z0-9]{24}@127\.0\.0\.1:$ROUTER_PORT/remote-3$ ]] ||
	fail "remote create --new-password URL: $json_url"
[ "$(psql -X -At "$json_url" -c 'select 1')" = 1 ] || fail "the new password does not log in"
[ "$(rift url remote-3)" = "$json_url" ] || fail "rift url of remote-3 differs from create's"
expect_status 0 rift delete remote-3
expect_status 0 rift delete --label pr=5
expect_output 'deleted branch remote-1'
[ "$(rift --json list | jq -r '[.branches[].name] | join(" ")')" = main ] || fail "left: $(rift list)"
expect_status 1 rift delete nope
expect_output 'does not exist'
# what runs only on riftd's machine says so
expect_status 2 rift init
expect_output "runs on riftd's own machine"
expect_status 2 rift mount main /tmp

# [api] max_connections = 3: while three connections are held open, a fourth waits (riftd
# accepts it only when one ends), so idle connections cannot pile up threads in riftd
python3 - "$api_port" "$RIFT_BIN/rift" <<'PY' || fail "max_connections was not enforced"
import socket, subprocess, sys, time
port, rift = int(sys.argv[1]), sys.argv[2]
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
time.sleep(0.5)
waiting = subprocess.Popen([rift, "list"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
time.sleep(3)
served_while_full = waiting.poll() is not None
for s in held:
    s.close()
rc = waiting.wait(timeout=20)
print("served while full:", served_while_full, "rc after:", rc)
sys.exit(0 if not served_while_full and rc == 0 else 1)
PY
