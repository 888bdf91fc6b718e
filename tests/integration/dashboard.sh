#!/usr/bin/env bash
# dashboard.sh — the web dashboard in a real browser (Debian's chromium driven by playwright-core
# from npm; nothing downloads a browser) and /metrics parsed by prometheus_client.
# Screenshots of every view land in <build>/dashboard-screenshots/.
source "$RIFT_TESTLIB"

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$RIFT_BIN/.." && pwd)
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || fail "no $chromium: install Debian's chromium (packaging/install-deps.sh)"
command -v node >/dev/null && command -v npm >/dev/null ||
	fail "node and npm are needed (packaging/install-deps.sh installs them)"
/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null ||
	fail "python3-prometheus-client is needed (packaging/install-deps.sh installs it)"

# playwright-core from the lockfile, into the build directory; it never fetches a browser
nodedir=$build/browser-tests
mkdir -p "$nodedir"
if ! cmp -s "$here/../browser/package-lock.json" "$nodedir/package-lock.json" ||
	[ ! -d "$nodedir/node_modules/playwright-core" ]; then
	cp "$here/../browser/package.json" "$here/../browser/package-lock.json" "$nodedir/"
	(cd "$nodedir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1 \
		npm ci --no-audit --no-fund --loglevel=error) >"$TEST_TMP/npm.log" 2>&1 ||
		{ cat "$TEST_TMP/npm.log" >&2; fail "npm ci of tests/browser failed"; }
fi
cp "$here/../browser/dashboard.mjs" "$nodedir/"

state=$TEST_TMP/state
"$RIFT_BIN/rift" --state "$state" init >/dev/null || fail "rift init failed"
api_port=$(free_port)
token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$token" >"$TEST_TMP/token"
chmod 600 "$TEST_TMP/token"
sed -i -e "0,/^listen = $/s||listen = 127.0.0.1:$api_port|" \
	-e "s|^token_file = $|token_file = $TEST_TMP/token|" "$state/rift.conf"
grep -q "^listen = 127.0.0.1:$api_port$" "$state/rift.conf" || fail "could not set [api] listen"
# HTTPS, the default; DASH_TLS=off tests plain HTTP (for a TLS proxy in front)
if [ "${DASH_TLS:-on}" = off ]; then
	set_conf "$state" tls off
	grep -q '^tls = off$' "$state/rift.conf" || fail "could not set [api] tls = off"
	scheme=http
else
	scheme=https
fi
start_riftd "$state"
rift() { "$RIFT_BIN/rift" --state "$state" "$@"; }

# a small tree with data of its own, so there are bytes to compare
rift create feat-a -q >/dev/null
psql -X -qAtc "create table t as select g, repeat('x', 200) as pad from generate_series(1, 20000) g; checkpoint" \
	"$(rift url feat-a)" || fail "could not write to feat-a"
rift stop feat-a >/dev/null
rift create feat-b --from feat-a -q >/dev/null

shots=$build/dashboard-screenshots
rm -rf "$shots"
# over HTTPS, rift init's self-signed certificate: node trusts it as a CA, chromium by its key
spki=$(openssl x509 -in "$state/tls/server.crt" -pubkey -noout |
	openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64) ||
	fail "cannot compute the API certificate's key hash"
DASH_URL=$scheme://127.0.0.1:$api_port DASH_TOKEN=$token RIFT_STATE_DIR=$state DASH_SHOTS=$shots \
	DASH_SPKI=$spki NODE_EXTRA_CA_CERTS=$state/tls/server.crt CHROMIUM=$chromium \
	timeout 600 node "$nodedir/dashboard.mjs" ||
	fail "the browser checks failed (screenshots so far in $shots)"
# a browser that trusts the certificate completes every handshake: riftd logged no TLS error
if grep -i "handshake\|tls.*error" "$TEST_TMP/riftd.log"; then
	fail "riftd logged TLS errors while the browser used the dashboard"
fi

# /metrics: parses, and its per-branch series are the API's, with a client connected
url=$(rift url feat-b)
psql -X -qAtc "select pg_sleep(60)" "$url" &
psql_pid=$!
on_exit "kill $psql_pid"
for ((i = 0; i < 200; i++)); do
	[ "$(rift --json list | jq '[.branches[].connections] | add')" = 1 ] && break
	sleep 0.1
done
[ "$i" -lt 200 ] || fail "feat-b never showed its psql connection"
/usr/bin/python3 "$here/metrics_check.py" "$scheme://127.0.0.1:$api_port" "$token" \
	"$state/run/riftd.sock" "$state/tls/server.crt" || fail "/metrics does not match the API"
kill "$psql_pid" 2>/dev/null || true
