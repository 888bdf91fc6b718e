#!/usr/bin/env bash
# security_sockdir.sh — the branch's user owns the socket directory riftd's maintenance
# connections use (run/pg/<branch>): a socket of their own put in the server's place gets no
# password from riftd (root's password file is not consulted) and no query (riftd talks only to
# the postmaster it started).
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
# riftd asks a server for its clients every tenth of idle_timeout while the router has none
# for it: 2 s with 20 (and no idle stop before the test is done)
set_conf "$state" idle_timeout 20
secret="leak-$RANDOM$RANDOM"
echo "*:*:*:*:$secret" >"$TEST_TMP/pgpass"
chmod 600 "$TEST_TMP/pgpass"
# root's password file, as ~/.pgpass would be
PGPASSFILE=$TEST_TMP/pgpass start_riftd "$state"
R() { "$RIFT_BIN/rift" --state "$state" "$@"; }
expect_status 0 R create s
url="$(R -q url s)?sslmode=disable" || fail "rift url s failed"
q() { psql -X -At "$url" -c "$1"; }
port=$(q "show port") || fail "branch s did not start"
sock=$state/run/pg/s/.s.PGSQL.$port

# the impostor: asks every other connection for a password, lets the rest in and records what
# comes next
cat >"$TEST_TMP/impostor.py" <<'PY'
import os, socket, struct, sys, time
path, out = sys.argv[1], sys.argv[2]
os.unlink(path)
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(8)
srv.settimeout(1)
log = open(out, "a", buffering=1)
end, i = time.time() + 20, 0
while time.time() < end:
    try:
        c, _ = srv.accept()
    except socket.timeout:
        continue
    c.settimeout(5)
    try:
        n = struct.unpack("!I", c.recv(4))[0]
        c.recv(n - 4)
        if i % 2 == 0:
            c.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
            kind = "password"
        else:
            c.sendall(b"R" + struct.pack("!II", 8, 0) + b"Z" + struct.pack("!I", 5) + b"I")
            kind = "query"
        data = c.recv(4096)
        log.write("%s %s\n" % (kind, data.hex() if data else "none"))
    except Exception as e:
        log.write("error %s\n" % e)
    c.close()
    i += 1
PY
chmod 644 "$TEST_TMP/impostor.py"
touch "$TEST_TMP/impostor.out"
chmod 666 "$TEST_TMP/impostor.out" # the branch's server runs as a uid of its own
q "copy (select 1 where false) to program \$\$setsid python3 $TEST_TMP/impostor.py $sock $TEST_TMP/impostor.out \
	</dev/null >/dev/null 2>&1 &\$\$" >/dev/null || fail "COPY TO PROGRAM failed"
on_exit "pkill -f -- '$TEST_TMP/impostor.py'"

# riftd's idle check connects every 2 s here; wait for both kinds of answer
for _ in $(seq 150); do
	grep -q '^password' "$TEST_TMP/impostor.out" && grep -q '^query' "$TEST_TMP/impostor.out" &&
		break
	sleep 0.1
done
grep -q '^password' "$TEST_TMP/impostor.out" && grep -q '^query' "$TEST_TMP/impostor.out" ||
	fail "riftd did not connect to the socket twice: $(cat "$TEST_TMP/impostor.out")"
sleep 0.5
while read -r kind data; do
	case $kind in
	# 'p' (0x70) a password message; 'Q' (0x51) or 'P' (0x50) a query; 'X' is goodbye
	password) [ "${data:0:2}" != 70 ] || fail "riftd sent a password to the impostor: $data" ;;
	query) case ${data:0:2} in 51 | 50) fail "riftd sent a query to the impostor: $data" ;; esac ;;
	esac
done <"$TEST_TMP/impostor.out"
grep -q "$(printf '%s' "$secret" | od -An -tx1 | tr -d ' \n')" "$TEST_TMP/impostor.out" &&
	fail "root's password file reached the impostor"
wait_log "branch s: the socket in .* is not its server's" ||
	fail "riftd did not notice the socket is not its server's"

# the branch comes back whole at its next start
pkill -f -- "$TEST_TMP/impostor.py" || true
R stop s >/dev/null || fail "rift stop s failed"
[ "$(q "select 1")" = 1 ] || fail "the branch did not come back"
exit 0
