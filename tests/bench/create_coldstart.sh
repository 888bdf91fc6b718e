#!/usr/bin/env bash
# create_coldstart.sh — time to a usable copy of a database: rift (create, and create → first
# query through the router) against pg_dump|pg_restore, CREATE DATABASE … TEMPLATE and cp -a,
# for two upstream sizes; plus the bytes a fresh branch stores after one UPDATE + CHECKPOINT.
#
# usage: tests/bench/create_coldstart.sh [--quick]   (root; build first into build/)
# env: SIZES ["7 140" | "1 10"] pgbench scales (~100 MB and ~2 GB), RUNS [15 | 5] creates per size,
#      RIFT_BIN [<repo>/build/bin]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
RIFT_BIN=${RIFT_BIN:-$here/../../build/bin}
PG_BIN=/usr/lib/postgresql/15/bin
quick=0
[ "${1:-}" = "--quick" ] && quick=1
SIZES=${SIZES:-$([ $quick = 1 ] && echo "1 10" || echo "7 140")}
RUNS=${RUNS:-$([ $quick = 1 ] && echo 5 || echo 15)}
tmp=$(mktemp -d /var/tmp/rift-coldstart.XXXXXX)
chmod 755 "$tmp"
as_pg() { su postgres -s /bin/bash -c "$*"; }
ms() { date +%s%N; }
riftds=()
upstreams=()
cleanup() {
	set +e
	for p in "${riftds[@]}"; do kill -TERM "$p"; wait "$p"; done 2>/dev/null
	pkill -KILL -f -- "-D $tmp/" 2>/dev/null
	for m in $(awk -v p="$tmp/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo); do
		umount -l "$m"
	done
	for d in "${upstreams[@]}"; do as_pg "$PG_BIN/pg_ctl -D $d -m immediate -w stop" >/dev/null 2>&1; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "command: $0 ${1:-} (SIZES=\"$SIZES\" RUNS=$RUNS), $(nproc) cores, $(date -u +%FT%TZ)"
mkdir -p "$tmp/sock" && chown postgres "$tmp/sock"
printf '\n%-6s %9s %10s %12s %14s %12s %10s %12s %14s\n' scale "db MB" "rift ms" \
	"rift 1st q" "dump|restore" "TEMPLATE" "cp -a" "cp+start" "branch bytes"
for scale in $SIZES; do
	up=$tmp/up$scale
	uport=$(port)
	mkdir "$up" && chown postgres "$up" && chmod 700 "$up"
	as_pg "$PG_BIN/initdb -D $up -A trust -U postgres" >/dev/null
	echo "host replication postgres 127.0.0.1/32 trust" >>"$up/pg_hba.conf"
	as_pg "$PG_BIN/pg_ctl -D $up -l $tmp/sock/up$scale.log -w -o '-p $uport -k $tmp/sock -c listen_addresses=127.0.0.1' start" >/dev/null
	upstreams+=("$up")
	as_pg "psql -q -h $tmp/sock -p $uport -c 'create database app' postgres"
	as_pg "$PG_BIN/pgbench -q -i -s $scale -h $tmp/sock -p $uport app" >/dev/null 2>&1
	dbmb=$(as_pg "psql -At -h $tmp/sock -p $uport -c \"select pg_database_size('app') >> 20\" app")

	# rift: physical base, riftd, then creates and cold starts through the router
	state=$tmp/state$scale
	"$RIFT_BIN/rift" --state "$state" init -q --upstream "postgres://postgres@127.0.0.1:$uport/app" 2>/dev/null
	own_riftd_conf "$state" 1803000000
	"$RIFT_BIN/riftd" --state "$state" 2>"$tmp/riftd$scale.log" &
	riftds+=($!)
	for _ in $(seq 100); do [ -S "$state/run/riftd.sock" ] && break; sleep 0.1; done
	sleep 0.5
	create=() first=()
	for i in $(seq "$RUNS"); do
		t0=$(ms)
		"$RIFT_BIN/rift" --state "$state" create "c$i" -q >/dev/null
		t1=$(ms)
		psql -X -At "host=127.0.0.1 port=$rport user=postgres dbname=c$i sslmode=disable" \
			-c 'select 1' >/dev/null
		t2=$(ms)
		create+=($(((t1 - t0) / 1000000)))
		first+=($(((t2 - t0) / 1000000)))
		"$RIFT_BIN/rift" --state "$state" stop "c$i" -q >/dev/null
	done
	c_med=$(printf '%s\n' "${create[@]}" | median)
	f_med=$(printf '%s\n' "${first[@]}" | median)
	# bytes stored by a fresh branch after one UPDATE + CHECKPOINT
	"$RIFT_BIN/rift" --state "$state" create upd -q >/dev/null
	psql -X -q "host=127.0.0.1 port=$rport user=postgres dbname=upd sslmode=disable" \
		-c 'update pgbench_accounts set abalance = abalance + 1 where aid = 1' -c checkpoint
	bytes=$("$RIFT_BIN/rift" --state "$state" --json list |
		jq '.branches[] | select(.name == "upd") | .bytes_own')

	# peers on the same data
	t0=$(ms)
	as_pg "$PG_BIN/pg_dump -Fc -h $tmp/sock -p $uport app | $PG_BIN/pg_restore --create -h $tmp/sock -p $uport -d postgres --no-owner" >/dev/null 2>&1 ||
		as_pg "psql -q -h $tmp/sock -p $uport -c 'create database app_copy' postgres && $PG_BIN/pg_dump -Fc -h $tmp/sock -p $uport app | $PG_BIN/pg_restore -h $tmp/sock -p $uport -d app_copy" >/dev/null 2>&1
	t1=$(ms)
	dump_ms=$(((t1 - t0) / 1000000))
	t0=$(ms)
	as_pg "psql -q -h $tmp/sock -p $uport -c 'create database tcopy template app' postgres"
	t1=$(ms)
	tmpl_ms=$(((t1 - t0) / 1000000))
	as_pg "$PG_BIN/pg_ctl -D $up -w stop" >/dev/null
	t0=$(ms)
	cp -a "$up" "$tmp/cp$scale"
	t1=$(ms)
	cport=$(port)
	rm -f "$tmp/cp$scale/postmaster.pid"
	as_pg "$PG_BIN/pg_ctl -D $tmp/cp$scale -l $tmp/sock/cp$scale.log -w -o '-p $cport -k $tmp/sock -c listen_addresses=' start" >/dev/null
	psql -X -At -h "$tmp/sock" -p "$cport" -U postgres -c 'select 1' app >/dev/null
	t2=$(ms)
	upstreams+=("$tmp/cp$scale")
	cp_ms=$(((t1 - t0) / 1000000))
	cps_ms=$(((t2 - t0) / 1000000))
	printf '%-6s %9s %10s %12s %14s %12s %10s %12s %14s\n' "$scale" "$dbmb" "$c_med" "$f_med" \
		"$dump_ms" "$tmpl_ms" "$cp_ms" "$cps_ms" "$bytes"
done
echo
echo "rift ms: median of $RUNS \`rift create\` (CLI → API → one synced batch); rift 1st q: create,"
echo "then psql through the router until 'select 1' answers (mount + server start + recovery)."
echo "Peers: pg_dump -Fc | pg_restore into a new database; CREATE DATABASE … TEMPLATE app; cp -a of"
echo "the stopped data directory (and cp -a + server start + first query)."
echo "Targets: create < 50 ms, first query < 1 s, both flat across sizes; branch bytes < 1 MiB."
