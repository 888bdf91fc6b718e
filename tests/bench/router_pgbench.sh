#!/usr/bin/env bash
# router_pgbench.sh — pgbench -S directly to a branch's server, through rift's router, and
# through PgBouncer (session mode) to the same server, side by side; also with -C.
#
# usage: tests/bench/router_pgbench.sh [--quick]   (as root, after building into build/)
# env: BENCH_DURATION [30 | 8] seconds per run, BENCH_CLIENTS [8], BENCH_SCALE [10 | 2],
#      RIFT_BIN [<repo>/build/bin]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
RIFT_BIN=${RIFT_BIN:-$here/../../build/bin}
quick=0
[ "${1:-}" = "--quick" ] && quick=1
dur=${BENCH_DURATION:-$([ $quick = 1 ] && echo 8 || echo 30)}
clients=${BENCH_CLIENTS:-8}
scale=${BENCH_SCALE:-$([ $quick = 1 ] && echo 2 || echo 10)}
tmp=$(mktemp -d /var/tmp/rift-router-bench.XXXXXX)
chmod 755 "$tmp"
state=$tmp/state
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cleanup() {
	set +e
	for f in "$tmp"/bouncer-*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
	[ -n "${riftd:-}" ] && kill -TERM "$riftd" 2>/dev/null && wait "$riftd" 2>/dev/null
	pkill -KILL -f -- "-D $state/mnt/" 2>/dev/null
	for m in $(awk -v p="$state/mnt/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo); do
		umount -l "$m"
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$RIFT_BIN/rift" --state "$state" init -q
rport=$(port)
sed -i "s/^listen = 127.0.0.1:6432/listen = 127.0.0.1:$rport/" "$state/rift.conf"
"$RIFT_BIN/riftd" --state "$state" 2>"$tmp/riftd.log" &
riftd=$!
for _ in $(seq 100); do [ -S "$state/run/riftd.sock" ] && break; sleep 0.1; done
"$RIFT_BIN/rift" --state "$state" create bench -q >/dev/null
dport=$("$RIFT_BIN/rift" --state "$state" --json start bench | sed 's/.*"port":\([0-9]*\).*/\1/')
PGPASSWORD=$(sed -n 's/^demo_password=//p' "$state/base.conf")
export PGPASSWORD

# PgBouncer twice: with the trust auth the issue names, and with SCRAM like the router's path
# (its clients prove the same password; server connections are pooled either way).
secret=$(su postgres -s /bin/sh -c "psql -X -At -h $state/run/pg/bench -p $dport -d demo \
	-c \"select rolpassword from pg_authid where rolname = 'rift'\"")
start_bouncer() { # NAME AUTH_TYPE SECRET -> port on stdout
	local p
	p=$(port)
	cat >"$tmp/$1.ini" <<INI
[databases]
bench = host=$state/run/pg/bench port=$dport dbname=demo user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $p
unix_socket_dir =
auth_type = $2
auth_file = $tmp/$1.users
pool_mode = session
max_client_conn = 200
default_pool_size = 20
logfile = $tmp/$1.log
pidfile = $tmp/$1.pid
INI
	echo "\"rift\" \"$3\"" >"$tmp/$1.users"
	touch "$tmp/$1.log"
	chown postgres "$tmp/$1.ini" "$tmp/$1.users" "$tmp/$1.log" "$tmp"
	su postgres -s /bin/sh -c "pgbouncer -d $tmp/$1.ini" >/dev/null 2>&1
	echo "$p"
}
bport=$(start_bouncer bouncer-trust trust "")
sport=$(start_bouncer bouncer-scram scram-sha-256 "$secret")
sleep 1

direct="host=127.0.0.1 port=$dport user=rift dbname=demo"
router="host=127.0.0.1 port=$rport user=rift dbname=bench sslmode=disable"
pgb="host=127.0.0.1 port=$bport user=rift dbname=bench"
pgs="host=127.0.0.1 port=$sport user=rift dbname=bench"
pgbench -q -i -s "$scale" "$direct" >/dev/null 2>&1

echo "command: $0 ${1:-}; pgbench -S -c $clients -j 2 -T $dur (scale $scale), then with -C"
echo "direct: $direct"
echo "router: rift router on 127.0.0.1:$rport (loopback TCP to the server; sessions kept)"
echo "pgbouncer: session mode, unix socket to the server, clients authenticated the same way"
echo "  as the router's: SCRAM first (127.0.0.1:$sport), then trust (127.0.0.1:$bport) after"
echo "  the branch's pg_hba.conf trusts 127.0.0.1"
run() { # MODE CONNINFO EXTRA
	local out
	out=$(pgbench -S -c "$clients" -j 2 -T "$dur" $3 "$2" 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
	echo "${out:-0}"
}
row() { # AUTH PGBOUNCER_CONNINFO
	local mode extra d r b
	for mode in "-S" "-S -C"; do
		extra=${mode#-S}
		d=$(run "$mode" "$direct" "$extra")
		r=$(run "$mode" "$router" "$extra")
		b=$(run "$mode" "$2" "$extra")
		printf '%-6s %-7s %9.0f %9.0f %9.0f %11.2f %11.2f\n' "$1" "$mode" "$d" "$r" "$b" \
			"$(echo "$r / $d" | bc -l)" "$(echo "$r / $b" | bc -l)"
	done
}
printf '\n%-6s %-7s %9s %9s %9s %11s %11s\n' auth mode direct router pgbouncer \
	router/dir router/pgb
row scram "$pgs"
# the same with every login from 127.0.0.1 trusted by the branch's server
sed -i '1i host all all 127.0.0.1/32 trust' "$state/mnt/bench/pg_hba.conf"
su postgres -s /bin/sh -c "psql -X -q -h $state/run/pg/bench -p $dport -d demo \
	-c 'select pg_reload_conf()'" >/dev/null
sleep 11 # the router's approval of SCRAM logins lapses; the next login shows trust
row trust "$pgb"
echo "targets: router/direct >= 0.9 for -S; router >= pgbouncer in both modes"
