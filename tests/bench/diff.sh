#!/usr/bin/env bash
# diff.sh — `rift diff` of a small change on a pgbench base against what users do today: dump
# both sides' tables sorted and compare them (an EXCEPT ALL of every table). Prints medians and
# the ratio, per base size.
#
# usage: tests/bench/diff.sh   (root; build first into build/)
# env: SCALES ["10"] pgbench scales (the issue's target is 100, and flat at 1000), RUNS [3],
#      RIFT_BIN [<repo>/build/bin]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
RIFT_BIN=${RIFT_BIN:-$here/../../build/bin}
PG_BIN=/usr/lib/postgresql/15/bin
SCALES=${SCALES:-10}
RUNS=${RUNS:-3}
tmp=$(mktemp -d /var/tmp/rift-diffbench.XXXXXX)
chmod 755 "$tmp"
as_pg() { su postgres -s /bin/bash -c "$*"; }
ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
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

echo "command: SCALES=\"$SCALES\" RUNS=$RUNS $0, $(nproc) cores, $(date -u +%FT%TZ)"
mkdir -p "$tmp/sock" && chown postgres "$tmp/sock"
printf '\n%-6s %8s %14s %14s %14s %16s %10s %10s\n' scale "db MB" "rift --summary" "rift --rows 100" \
	"fork point" "dump+compare" "ratio sum" "ratio rows"
for scale in $SCALES; do
	up=$tmp/up$scale
	uport=$(port)
	mkdir "$up" && chown postgres "$up" && chmod 700 "$up"
	as_pg "$PG_BIN/initdb -D $up -A trust -U postgres" >/dev/null
	echo "host replication postgres 127.0.0.1/32 trust" >>"$up/pg_hba.conf"
	as_pg "$PG_BIN/pg_ctl -D $up -l $tmp/sock/up$scale.log -w -o '-p $uport -k $tmp/sock -c listen_addresses=127.0.0.1' start" >/dev/null
	upstreams+=("$up")
	as_pg "psql -q -h $tmp/sock -p $uport -c 'create database app' postgres"
	as_pg "$PG_BIN/pgbench -q -i -s $scale -h $tmp/sock -p $uport app" >/dev/null 2>&1
	as_pg "psql -q -h $tmp/sock -p $uport app" <<EOF
create table notes (id int primary key, body text);
insert into notes select i, repeat(md5(i::text), 8) from generate_series(1, $scale * 10000) i;
-- as autovacuum leaves a loaded table (pgbench -i vacuums its own): hint bits set. Otherwise
-- the first scan on a branch sets them, and rift diff sees every page it wrote as changed
vacuum notes;
checkpoint;
EOF
	dbmb=$(as_pg "psql -At -h $tmp/sock -p $uport -c \"select pg_database_size('app') >> 20\" app")
	state=$tmp/state$scale
	"$RIFT_BIN/rift" --state "$state" init -q --upstream "postgres://postgres@127.0.0.1:$uport/app" 2>/dev/null
	as_pg "$PG_BIN/pg_ctl -D $up -w stop" >/dev/null
	own_riftd_conf "$state" 1802000000
	"$RIFT_BIN/riftd" --state "$state" 2>"$tmp/riftd$scale.log" &
	riftds+=($!)
	for _ in $(seq 100); do [ -S "$state/run/riftd.sock" ] && break; sleep 0.1; done
	rift() { "$RIFT_BIN/rift" --state "$state" "$@"; }
	rift create feat -q >/dev/null
	furl=$(rift url feat)
	murl=$(rift url main)
	n=$((scale * 100000))
	psql -X -q "$furl" <<EOF
update pgbench_accounts set abalance = abalance + 1 where aid in (select (i * 7919) % $n + 1 from generate_series(1, 100) i);
insert into pgbench_accounts select $n + i, 1, 0, '' from generate_series(1, 100) i;
delete from pgbench_accounts where aid in (select (i * 104729) % $n + 1 from generate_series(1, 100) i);
update notes set body = 'changed' where id in (select (i * 7919) % ($scale * 10000) + 1 from generate_series(1, 100) i);
alter table notes add column tag text;
create index notes_tag on notes (tag);
checkpoint;
EOF
	psql -X -q "$murl" -c 'select 1' >/dev/null # main's server up too, like feat's
	sum=() rows=() fork=() base=()
	for _ in $(seq "$RUNS"); do
		t0=$(ms)
		rift diff feat main --summary >"$tmp/sum.txt"
		t1=$(ms)
		rift diff feat main --rows 100 >"$tmp/rows.txt"
		t2=$(ms)
		# against the fork point: includes starting a server over that point
		rift diff feat --summary >"$tmp/fork.txt"
		tf=$(ms)
		fork+=($((tf - t2)))
		# today's way: every table of both sides dumped in key order, then compared
		for t in pgbench_accounts:aid pgbench_branches:bid pgbench_tellers:tid notes:id pgbench_history:mtime; do
			name=${t%:*} key=${t#*:}
			psql -X -q "$furl" -c "\\copy (select * from $name order by $key) to '$tmp/f.copy'"
			psql -X -q "$murl" -c "\\copy (select * from $name order by $key) to '$tmp/m.copy'"
			diff "$tmp/f.copy" "$tmp/m.copy" | grep -c '^[<>]' >/dev/null || true
		done
		t3=$(ms)
		sum+=($((t1 - t0)))
		rows+=($((t2 - t1)))
		base+=($((t3 - tf)))
		echo "  run: --summary ${sum[-1]} ms, --rows 100 ${rows[-1]} ms, fork point ${fork[-1]} ms, dump+compare ${base[-1]} ms"
	done
	# riftd's own account of the last run's diffs, per database (rows, pg_dump, checkpoints)
	grep -E 'diff: database [0-9]+: (rows|[0-9]+ tables)' "$tmp/riftd$scale.log" | tail -12 | sed 's/^/  riftd: /' || true
	# 100 accounts inserted and deleted, 100 accounts and 100 notes updated; notes gained a
	# column and an index
	grep -q 'app: schema 1 added, 0 removed, 1 changed; rows 100 added, 100 removed, 200 changed' \
		"$tmp/sum.txt" || { cat "$tmp/sum.txt"; echo "unexpected diff"; }
	grep -q 'app: schema 1 added, 0 removed, 1 changed; rows 100 added, 100 removed, 200 changed' \
		"$tmp/fork.txt" || { cat "$tmp/fork.txt"; echo "unexpected diff against the fork point"; }
	# what was read (narrowing by the store), from the last --rows run
	grep -E '^  read:|^    in full:' "$tmp/rows.txt" | sed 's/^/  /' || true
	s=$(printf '%s\n' "${sum[@]}" | median)
	r=$(printf '%s\n' "${rows[@]}" | median)
	fk=$(printf '%s\n' "${fork[@]}" | median)
	b=$(printf '%s\n' "${base[@]}" | median)
	printf '%-6s %8s %11s ms %11s ms %11s ms %13s ms %10s %10s\n' "$scale" "$dbmb" "$s" "$r" "$fk" "$b" \
		"$(awk -v a="$b" -v b="$s" 'BEGIN {printf "%.2fx", a / b}')" \
		"$(awk -v a="$b" -v b="$r" 'BEGIN {printf "%.2fx", a / b}')"
	kill -TERM "${riftds[-1]}"
	wait "${riftds[-1]}" 2>/dev/null || true
done
echo "ratio = dump+compare time / rift diff time (higher is better for rift; the issue's target is >= 50x, rift diff < 2 s)"
