#!/usr/bin/env bash
# router_pgbench.sh — pgbench through rift's router as users connect (the URL `rift url` prints,
# libpq's default sslmode=prefer, so TLS), with sslmode=require and sslmode=disable, against the
# branch's server directly (plaintext, and with its own TLS: the floor of every TLS row) and
# against PgBouncer (session mode, TLS on its client side with the same certificate, same
# sslmode): select-only and TPC-B, 8 and 64 clients, with and without -C. Runs of one cell
# alternate (rep 1 of every target, then rep 2, ...) so the shared machine's noise hits them
# alike; medians of the reps are printed with the ratios.
#
# usage: tests/bench/router_pgbench.sh [--quick]   (as root, after building into build/)
# env: BENCH_DURATION [20 | 5] seconds per run, BENCH_REPS [3], BENCH_SCALE [10 | 2],
#      BENCH_CLIENTS ["8 64"], BENCH_WORKLOADS ["select tpcb"], BENCH_CONNECT ["keep new"],
#      RIFT_BIN [<repo>/build/bin]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
RIFT_BIN=${RIFT_BIN:-$here/../../build/bin}
quick=0
[ "${1:-}" = "--quick" ] && quick=1
dur=${BENCH_DURATION:-$([ $quick = 1 ] && echo 5 || echo 20)}
reps=${BENCH_REPS:-3}
scale=${BENCH_SCALE:-$([ $quick = 1 ] && echo 2 || echo 10)}
client_counts=${BENCH_CLIENTS:-8 64}
workloads=${BENCH_WORKLOADS:-select tpcb}
connects=${BENCH_CONNECT:-keep new}
tmp=$(mktemp -d /var/tmp/rift-router-bench.XXXXXX)
chmod 755 "$tmp"
state=$tmp/state

cleanup() {
	set +e
	for f in "$tmp"/bouncer*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
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
own_riftd_conf "$state" 1801000000
"$RIFT_BIN/riftd" --state "$state" 2>"$tmp/riftd.log" &
riftd=$!
rift() { "$RIFT_BIN/rift" --state "$state" "$@"; }
for _ in $(seq 200); do rift status >/dev/null 2>&1 && break; sleep 0.1; done
rift create bench -q >/dev/null
dport=$(rift --json start bench | sed 's/.*"port":\([0-9]*\).*/\1/')
PGPASSWORD=$(sed -n 's/^demo_password=//p' "$state/base.conf")
export PGPASSWORD
# the server runs as the branch's own uid (socket dir closed to others): TCP as the demo role
sql() { psql -X -At "host=127.0.0.1 port=$dport user=rift dbname=demo sslmode=disable" -c "$1"; }
# 64 clients through the router (kept sessions), PgBouncer and directly, one after the other
sql "alter system set max_connections = 400" >/dev/null
rift stop bench >/dev/null
dport=$(rift --json start bench | sed 's/.*"port":\([0-9]*\).*/\1/')
secret=$(sql "select rolpassword from pg_authid where rolname = 'rift'")
# The branch's server with TLS of its own (rift's certificate, readable by the server's uid):
# what TLS costs a client with no relay in between, the floor under every TLS row.
suid=$(stat -c %u "$state/mnt/bench")
mkdir "$tmp/srvtls"
cp "$state/tls/server.crt" "$state/tls/server.key" "$tmp/srvtls/"
chown -R "$suid" "$tmp/srvtls"
chmod 600 "$tmp/srvtls/server.key"
sql "alter system set ssl_cert_file = '$tmp/srvtls/server.crt'" >/dev/null
sql "alter system set ssl_key_file = '$tmp/srvtls/server.key'" >/dev/null
sql "alter system set ssl = on" >/dev/null
sql "select pg_reload_conf()" >/dev/null
sleep 0.5
[ "$(psql -X -At "host=127.0.0.1 port=$dport user=rift dbname=demo sslmode=require" \
	-c 'select ssl from pg_stat_ssl where pid = pg_backend_pid()')" = t ] ||
	{ echo "router_pgbench: the branch's server did not turn TLS on" >&2; exit 1; }

# PgBouncer: session mode, SCRAM for its clients like the router's path, TLS on its client side
# with rift's own certificate (client_tls_sslmode = allow: each client's sslmode decides)
bport=$(port)
cp "$state/tls/server.crt" "$state/tls/server.key" "$tmp/"
cat >"$tmp/bouncer.ini" <<INI
[databases]
bench = host=127.0.0.1 port=$dport dbname=demo user=rift password=$PGPASSWORD
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $tmp/bouncer.users
pool_mode = session
max_client_conn = 400
default_pool_size = 100
client_tls_sslmode = allow
client_tls_cert_file = $tmp/server.crt
client_tls_key_file = $tmp/server.key
logfile = $tmp/bouncer.log
pidfile = $tmp/bouncer.pid
INI
echo "\"rift\" \"$secret\"" >"$tmp/bouncer.users"
chmod 600 "$tmp/bouncer.ini" "$tmp/bouncer.users"
touch "$tmp/bouncer.log"
chown postgres "$tmp"/bouncer.* "$tmp"/server.* "$tmp"
chmod 600 "$tmp/server.key"
su postgres -s /bin/sh -c "pgbouncer -d $tmp/bouncer.ini" >/dev/null 2>&1
sleep 1

url=$(rift url bench) # exactly as printed: libpq defaults, so sslmode=prefer
direct="host=127.0.0.1 port=$dport user=rift dbname=demo sslmode=disable"
pgb="host=127.0.0.1 port=$bport user=rift dbname=bench"
declare -A target=(
	[direct]="$direct"
	[direct_tls]="${direct/sslmode=disable/sslmode=require}"
	[url]="$url"
	[require]="$url?sslmode=require"
	[disable]="$url?sslmode=disable"
	[pgb_url]="$pgb"
	[pgb_require]="$pgb sslmode=require"
	[pgb_disable]="$pgb sslmode=disable"
)
order="direct direct_tls url pgb_url require pgb_require disable pgb_disable"
pgbench -q -i -s "$scale" "$direct" >/dev/null 2>&1

echo "command: $0 ${1:-}  (BENCH_DURATION=$dur BENCH_REPS=$reps BENCH_SCALE=$scale)"
echo "pgbench -j 2 -T $dur [-S] -c N [-C]; medians of $reps alternating runs; $(nproc) CPUs"
echo "direct:    $direct"
echo "dTLS:      the same with sslmode=require: the server's own TLS, no relay (the TLS floor)"
echo "url:       rift url bench, as printed: ${url/:$PGPASSWORD@/:***@}"
echo "require:   the same with ?sslmode=require;  disable: with ?sslmode=disable"
echo "pgb_*:     PgBouncer $(pgbouncer --version | head -1 | awk '{print $2}'), session mode, the same sslmode"
tps() { # CONNINFO ARGS...
	local c=$1
	shift
	local out
	out=$(pgbench -n -j 2 -T "$dur" "$@" "$c" 2>&1) || true
	# a run that failed counts 0 and says why once
	grep -m1 -i 'error\|fatal' <<<"$out" | sed "s/^/  ($*): /" >>"$tmp/failures.txt" || true
	sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | head -1 | grep . || echo 0
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print NR ? a[int((NR+1)/2)] : 0}'; }
ratio() { echo "scale=2; $1 / ($2 + 0.000001)" | bc -l; }

printf '\n%-6s %-4s %-4s %-8s %8s %8s %8s %8s %7s %7s %7s\n' work N conn sslmode direct dTLS router \
	pgbouncer r/direct r/dTLS r/pgb
for w in $workloads; do
	for n in $client_counts; do
		for conn in $connects; do
			args=(-c "$n")
			[ "$w" = select ] && args+=(-S)
			[ "$conn" = new ] && args+=(-C)
			declare -A runs=()
			for ((rep = 0; rep < reps; rep++)); do
				for t in $order; do
					runs[$t]+=" $(tps "${target[$t]}" "${args[@]}")"
				done
			done
			d=$(echo "${runs[direct]}" | median)
			dt=$(echo "${runs[direct_tls]}" | median)
			for mode in url require disable; do
				r=$(echo "${runs[$mode]}" | median)
				b=$(echo "${runs[pgb_$mode]}" | median)
				# a plaintext row has no TLS floor to compare with
				rt=$([ "$mode" = disable ] && echo - || ratio "$r" "$dt")
				printf '%-6s %-4s %-4s %-8s %8.0f %8.0f %8.0f %8.0f %7s %7s %7s\n' "$w" "$n" \
					"$conn" "$mode" "$d" "$dt" "$r" "$b" "$(ratio "$r" "$d")" "$rt" \
					"$(ratio "$r" "$b")"
			done
			unset runs
		done
	done
done
echo "targets: router/direct >= 0.9 with the URL as printed and with sslmode=require (-S, 8 clients);"
echo "         router >= pgbouncer in every row; dTLS/direct is what TLS costs with no relay at all"
[ -s "$tmp/failures.txt" ] && { echo "failed runs:"; sort -u "$tmp/failures.txt" | head -20; }
echo "riftd's close lines: $(grep -c 'TLS relayed by a relay thread' "$tmp/riftd.log") TLS sessions on relay threads, $(grep -c 'kernel-spliced' "$tmp/riftd.log") spliced"
