#!/usr/bin/env bash
# ci_burst.sh — P CI jobs at once, as users run them: each creates a branch, connects with the
# URL `rift url` prints (libpq defaults, so TLS through the router), runs a small migration,
# queries, and deletes its branch. Side by side: the same jobs the way people do it today on one
# server, `CREATE DATABASE jN TEMPLATE demo` per job.
#
# usage: tests/bench/ci_burst.sh        (root; build first into build/)
# env: BURSTS ["10 50 100"] jobs at once per round, RIFT_BIN [<repo>/build/bin],
#      WARM [0] sets [instances] warm (a special setting: report it beside the default run),
#      WAYS ["rift tmpl"] which sides run (WAYS=rift for A/B runs of rift builds alone)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
RIFT_BIN=${RIFT_BIN:-$here/../../build/bin}
PG_BIN=/usr/lib/postgresql/15/bin
BURSTS=${BURSTS:-10 50 100}
tmp=$(mktemp -d /var/tmp/rift-burst.XXXXXX)
chmod 755 "$tmp"
as_pg() { su postgres -s /bin/bash -c "$*"; }
ms() { date +%s%N | cut -c1-13; }
riftd_pid=
tmpl_data=
cleanup() {
	set +e
	[ -n "$riftd_pid" ] && kill -TERM "$riftd_pid" && wait "$riftd_pid"
	pkill -KILL -f -- "-D $tmp/" 2>/dev/null
	for m in $(awk -v p="$tmp/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo); do
		umount -l "$m"
	done
	[ -n "$tmpl_data" ] && as_pg "$PG_BIN/pg_ctl -D $tmpl_data -m immediate -w stop" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# pct P < numbers: the P-th percentile (nearest rank)
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {if (!NR) {print "-"; exit} i=int((p*NR+99)/100); if (i<1) i=1; print a[i]}'; }

echo "command: $0 (BURSTS=\"$BURSTS\"), $(nproc) cores, $(date -u +%FT%TZ)"
WARM=${WARM:-0}
WAYS=${WAYS:-rift tmpl}
[ "$WARM" != 0 ] && echo "special setting: [instances] warm = $WARM (the default is 0)"

# ---- rift: the demo base, default rift.conf
state=$tmp/state
"$RIFT_BIN/rift" --state "$state" init -q >/dev/null
own_riftd_conf "$state" 1800000000
sed -i "s/^warm = 0$/warm = $WARM/" "$state/rift.conf"
"$RIFT_BIN/riftd" --state "$state" 2>"$tmp/riftd.log" &
riftd_pid=$!
for _ in $(seq 100); do [ -S "$state/run/riftd.sock" ] && break; sleep 0.1; done
rift() { "$RIFT_BIN/rift" --state "$state" "$@"; }

# ---- the TEMPLATE way: one server holding the same demo data as database "demo"
tmpl_data=$tmp/tmpl
tport=$(port)
mkdir -p "$tmp/sock" && chown postgres "$tmp/sock"
install -d -o postgres -m 700 "$tmpl_data"
as_pg "$PG_BIN/initdb -D $tmpl_data -A trust -U postgres" >/dev/null
as_pg "$PG_BIN/pg_ctl -D $tmpl_data -l $tmp/sock/tmpl.log -w -o '-p $tport -k $tmp/sock -c listen_addresses=127.0.0.1 -c max_connections=300' start" >/dev/null
pw=$(sed -n 's/^demo_password=//p' "$state/base.conf")
psql -X -q "$(rift url main)" -c 'select 1' >/dev/null
# copy main's demo database into the template server, so both sides hold the same data
PGPASSWORD=$pw pg_dump -h 127.0.0.1 -p "$rport" -U rift -d main --no-owner |
	as_pg "psql -X -q -h $tmp/sock -p $tport -d postgres -c 'create database demo' && psql -X -q -h $tmp/sock -p $tport -d demo" >/dev/null
rift stop main -q >/dev/null

migrate='create table job_t (id int primary key, v text);
insert into job_t select g, md5(g::text) from generate_series(1, 1000) g;
create index on job_t (v);'

# rift_job N: create, first query through rift url, migration, query, delete; prints
# "rc create_to_first_query_ms whole_job_ms"
rift_job() {
	local n=$1 t0 t1 t2 url rc=0
	t0=$(ms)
	{ rift create "b$n" -q >/dev/null && url=$(rift url "b$n") &&
		psql -X -Atc 'select count(*) from orders' "$url" >/dev/null; } || rc=1
	t1=$(ms)
	[ $rc = 0 ] && { psql -X -q -v ON_ERROR_STOP=1 -c "$migrate" "$url" >/dev/null &&
		psql -X -Atc 'select count(*) from job_t' "$url" >/dev/null &&
		rift delete "b$n" -q >/dev/null; } || rc=1
	t2=$(ms)
	echo "$rc $((t1 - t0)) $((t2 - t0))"
}
tmpl_job() {
	local n=${1//-/_} t0 t1 t2 rc=0
	local url="host=127.0.0.1 port=$tport user=postgres dbname=t$n"
	t0=$(ms)
	{ psql -X -q -h 127.0.0.1 -p "$tport" -U postgres -d postgres \
		-c "create database t$n template demo" >/dev/null &&
		psql -X -Atc 'select count(*) from orders' "$url" >/dev/null; } || rc=1
	t1=$(ms)
	[ $rc = 0 ] && { psql -X -q -v ON_ERROR_STOP=1 -c "$migrate" "$url" >/dev/null &&
		psql -X -Atc 'select count(*) from job_t' "$url" >/dev/null &&
		psql -X -q -h 127.0.0.1 -p "$tport" -U postgres -d postgres -c "drop database t$n" >/dev/null; } || rc=1
	t2=$(ms)
	echo "$rc $((t1 - t0)) $((t2 - t0))"
}

# busy_ms: CPU time the whole machine has spent busy since boot (all cores), in ms
busy_ms() { echo $(($(machine_busy_ticks) * 1000 / CLK_TCK)); }

# burst KIND P: P jobs at once; prints one table row
burst() {
	local kind=$1 p=$2 n out=$tmp/$1-$2 t0 t1 c0 c1 pids=()
	mkdir -p "$out"
	c0=$(busy_ms)
	t0=$(ms)
	for ((n = 1; n <= p; n++)); do
		"${kind}_job" "$p-$n" >"$out/job.$n" 2>"$out/err.$n" &
		pids+=($!)
	done
	wait "${pids[@]}" # not riftd or the template server
	t1=$(ms)
	c1=$(busy_ms)
	cat "$out"/job.* >"$out/all"
	printf '%-9s %5s %7s %8s %8s %8s %8s %8s %8s %9s\n' "$kind" "$p" \
		"$(awk '$1 != 0' "$out/all" | wc -l)" \
		"$(awk '$1 == 0 {print $2}' "$out/all" | pct 50)" \
		"$(awk '$1 == 0 {print $2}' "$out/all" | pct 95)" \
		"$(awk '$1 == 0 {print $2}' "$out/all" | pct 100)" \
		"$(awk '$1 == 0 {print $3}' "$out/all" | pct 50)" \
		"$(awk '$1 == 0 {print $3}' "$out/all" | pct 95)" \
		"$(awk '$1 == 0 {print $3}' "$out/all" | pct 100)" "$((t1 - t0))"
	echo "$((t1 - t0))" >"$tmp/wall-$kind-$p"
	echo "  busy CPU of the whole machine: $(((c1 - c0) / p)) ms per $kind job"
	for n in $(awk '$1 != 0 {print FILENAME}' "$out"/job.* | head -1 | sed 's/.*job\.//'); do
		echo "  first failure of $kind: $(head -c 300 "$out/err.$n")"
	done
}

# wait_warm N: until the warm pool holds N servers (at most 5 minutes)
wait_warm() {
	local i
	for ((i = 0; i < 3000 && $1 > 0; i++)); do
		[ "$(rift --json status | jq '.warm.ready')" -ge "$1" ] && return 0
		sleep 0.1
	done
}

printf '\n%-9s %5s %7s %8s %8s %8s %8s %8s %8s %9s\n' way jobs failed "1stq p50" "1stq p95" \
	"1stq max" "job p50" "job p95" "job max" "burst ms"
for p in $BURSTS; do
	wait_warm "$((WARM < p ? WARM : p))"
	[[ " $WAYS " == *" rift "* ]] && burst rift "$p"
	[[ " $WAYS " == *" tmpl "* ]] && burst tmpl "$p"
	[ -f "$tmp/wall-rift-$p" ] && [ -f "$tmp/wall-tmpl-$p" ] && echo "  rift/TEMPLATE whole burst time at $p jobs: $(echo "scale=2; $(cat "$tmp/wall-rift-$p") / $(cat "$tmp/wall-tmpl-$p")" | bc)"
done
echo
echo "1stq: from the job's start (rift create / CREATE DATABASE) to the answer of its first query;"
echo "job: create, migrate (table, 1,000 rows, index), query, delete. Milliseconds. rift jobs use"
echo "\`rift url\` as printed (sslmode=prefer: TLS through the router) and the default rift.conf."
echo "Targets: 0 failures at 100 jobs; without a pool, 1stq p95 <= 3000 ms at 50 jobs; whole"
echo "burst no slower than TEMPLATE at 50 jobs."
sed -n 's/.*started in \([0-9.]*\) s (after \([0-9.]*\) s waiting.*/\1 \2/p' "$tmp/riftd.log" |
	sort -n | awk '{s[NR] = $1; w += $2} END {if (NR) printf "riftd: %d server starts, median %.2f s, max %.2f s, mean wait for a start slot %.2f s\n", NR, s[int((NR + 1) / 2)], s[NR], w / NR}'
