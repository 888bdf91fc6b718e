#!/usr/bin/env bash
# pgbench_multi.sh — N rift branches at once against N native clusters at once (aggregate tps),
# straight to each branch's server and through the router with the URL `rift url` prints.
#
# One seed cluster gets `pgbench -i -s SCALE` and is stopped. rift: `rift init --pgdata SEED`
# (a physical base holding the pgbench tables), the default rift.conf, riftd, N branches created
# and started by riftd. Native: N copies of the seed (cp -a) on the same disk, started with the
# settings riftd gives a branch's server (wal_init_zero=off, wal_recycle=off, the same
# shared_buffers). Three sides, each N pgbench at once, one per branch or cluster:
#   native  the native clusters;
#   rift    each branch's own server, its port from `rift start --json` (plaintext);
#   url     `rift url bN` exactly as printed, libpq's defaults: sslmode=prefer, so TLS through
#           the router, as users connect.
# For each shared_buffers (the default rift.conf's, then 128 MB: riftd restarts with it) and
# each workload (TPC-B, select-only -S), rounds rotate which side goes first; each run starts
# from a CHECKPOINT on every server. Prints every aggregate tps with the CPU the run used (the
# machine's busy time and riftd's, whose threads are the FUSE filesystem, RocksDB and the
# router: on 2 cores every riftd CPU second is taken from the servers), the medians, and the
# ratios against issue 13's targets (TPC-B >= 0.9 of native with one branch, >= 0.85 with several;
# select-only >= 0.95) and the router's against issue 14's (url >= 0.9 of straight).
#
# usage: tests/bench/pgbench_multi.sh [--quick] [--help]      (as root, after building build/)
# env (defaults; --quick changes the second):
#   BENCH_BRANCHES [4]        branches (and native clusters) at once
#   BENCH_SCALE [20 | 2]      pgbench -s of the seed
#   BENCH_CLIENTS [2]         pgbench -c per branch or cluster
#   BENCH_DURATION [30 | 5]   seconds per measured run
#   BENCH_ROUNDS [3 | 1]      measured runs per side
#   BENCH_SIDES ["native rift url"]
#   BENCH_WORKLOADS ["tpcb select"]
#   BENCH_SHARED_BUFFERS ["default 128"]   MB, or "default" for the default rift.conf's
#   BENCH_TMPDIR [/var/tmp]   parent of the temp dir (a real disk, not tmpfs)
#   RIFT_BIN [<repo>/build/bin]
# Exit status 0 when every run completed (targets met or not), 1 on error. Everything it started
# (riftd, its servers and mounts, the native clusters) and its temp dir go away on any exit.
set -euo pipefail

usage() { sed -n '2,/^# Exit status/s/^# \{0,1\}//p' "$0"; }
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
bench_args pgbench_multi.sh "$@"
RIFT_BIN=${RIFT_BIN:-$here/../../build/bin}
PG_BIN=/usr/lib/postgresql/15/bin
N=${BENCH_BRANCHES:-4}
SCALE=${BENCH_SCALE:-$([ $quick = 1 ] && echo 2 || echo 20)}
CLIENTS=${BENCH_CLIENTS:-2}
DURATION=${BENCH_DURATION:-$([ $quick = 1 ] && echo 5 || echo 30)}
ROUNDS=${BENCH_ROUNDS:-$([ $quick = 1 ] && echo 1 || echo 3)}
SIDES=${BENCH_SIDES:-native rift url}
WORKLOADS=${BENCH_WORKLOADS:-tpcb select}
BUFFERS=${BENCH_SHARED_BUFFERS:-default 128}
die() {
	echo "pgbench_multi.sh: $*" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || die "run as root (riftd mounts FUSE filesystems; servers run as postgres)"
for v in N SCALE CLIENTS DURATION ROUNDS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
for v in $SIDES; do [[ $v =~ ^(native|rift|url)$ ]] || die "unknown side '$v' in BENCH_SIDES"; done
for v in $WORKLOADS; do [[ $v =~ ^(tpcb|select)$ ]] || die "unknown workload '$v' in BENCH_WORKLOADS"; done
for v in $BUFFERS; do [[ $v =~ ^(default|[1-9][0-9]*)$ ]] || die "BENCH_SHARED_BUFFERS: '$v' is not a size in MB"; done
[ -x "$RIFT_BIN/riftd" ] || die "$RIFT_BIN/riftd missing: build first (cmake --build build)"

mkdir -p "${BENCH_TMPDIR:-/var/tmp}"
tmp=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/rift-multi.XXXXXX")
chmod 755 "$tmp"
state=$tmp/state
riftd_pid=
natives=()
as_pg() { su postgres -s /bin/bash -c "$*"; }
cleanup() {
	local rc=$? d
	set +e
	[ -n "$riftd_pid" ] && kill -TERM "$riftd_pid" && wait "$riftd_pid"
	for d in "${natives[@]}"; do
		as_pg "$PG_BIN/pg_ctl -D $d -m immediate -w stop" >/dev/null 2>&1
	done
	pkill -KILL -f -- "-D $tmp/" 2>/dev/null
	for m in $(awk -v p="$tmp/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo); do
		umount -l "$m"
	done
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
now() { date +%s.%N; }

echo "== pgbench_multi: $N rift branches at once vs $N native clusters at once =="
echo "command:  $0${*:+ $*}  (BENCH_BRANCHES=$N BENCH_SCALE=$SCALE BENCH_CLIENTS=$CLIENTS" \
	"BENCH_DURATION=$DURATION BENCH_ROUNDS=$ROUNDS BENCH_SIDES='$SIDES'" \
	"BENCH_WORKLOADS='$WORKLOADS' BENCH_SHARED_BUFFERS='$BUFFERS')"
echo "host:     $(uname -n), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
echo "git:      $(git -C "$here" describe --always --dirty 2>/dev/null || echo unknown)"
echo "temp dir: $tmp on $(df -PT "$tmp" | awk 'NR == 2 { print $2 }')"

# ---- the seed: pgbench tables in a stopped cluster
seed=$tmp/seed
install -d -o postgres -m 700 "$seed"
install -d -o postgres "$tmp/log"
as_pg "$PG_BIN/initdb -D $seed -A trust -U postgres" >"$tmp/initdb.log" 2>&1 ||
	die "initdb failed: $(tail -3 "$tmp/initdb.log")"
sport=$(port)
as_pg "$PG_BIN/pg_ctl -D $seed -l $tmp/log/seed.log -w -o '-p $sport -k /tmp -c listen_addresses=127.0.0.1' start" >/dev/null
pgbench -q -i -s "$SCALE" "host=127.0.0.1 port=$sport user=postgres dbname=postgres" >/dev/null 2>&1 ||
	die "pgbench -i on the seed failed"
as_pg "$PG_BIN/pg_ctl -D $seed -m fast -w stop" >/dev/null

# ---- rift: a physical base from the seed, the default rift.conf
t0=$(now)
"$RIFT_BIN/rift" --state "$state" init -q --pgdata "$seed" --login-role postgres >/dev/null ||
	die "rift init --pgdata failed"
echo "rift init --pgdata: $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s"
own_riftd_conf "$state" 1804000000
sb_default=$(sed -n 's/^shared_buffers_mb = \([0-9]*\)$/\1/p' "$state/rift.conf")
[ -n "$sb_default" ] || die "no shared_buffers_mb in the default rift.conf"
rift() { "$RIFT_BIN/rift" --state "$state" "$@"; }
declare -A target
made=
# rift_up MB: riftd with shared_buffers_mb = MB (the rest of rift.conf as made), every branch
# started; sets the rift and url targets
rift_up() {
	sed -i "s/^shared_buffers_mb = [0-9]*$/shared_buffers_mb = $1/" "$state/rift.conf"
	"$RIFT_BIN/riftd" --state "$state" 2>>"$tmp/riftd.log" &
	riftd_pid=$!
	for _ in $(seq 200); do rift status >/dev/null 2>&1 && break; sleep 0.1; done
	for ((i = 1; i <= N; i++)); do
		[ -n "$made" ] || rift create "b$i" -q >/dev/null || die "rift create b$i failed"
		p=$(rift --json start "b$i" | jq -r .port)
		[[ $p =~ ^[0-9]+$ ]] || die "rift start b$i gave no port"
		target[rift.$i]="host=127.0.0.1 port=$p user=postgres dbname=postgres sslmode=disable"
		target[url.$i]=$(rift url "b$i") || die "rift url b$i failed"
	done
	made=1
}
rift_down() {
	kill -TERM "$riftd_pid" && wait "$riftd_pid" || die "riftd did not stop cleanly"
	riftd_pid=
}

# ---- native: N copies of the seed, the server settings riftd gives a branch
opts="-c listen_addresses=127.0.0.1 -c wal_init_zero=off -c wal_recycle=off"
for ((i = 1; i <= N; i++)); do
	cp -a "$seed" "$tmp/native$i"
	natives+=("$tmp/native$i")
done
# native_up MB: the native clusters with shared_buffers = MB; sets the native targets
native_up() {
	local d p
	for ((i = 1; i <= N; i++)); do
		d=$tmp/native$i
		p=$(port)
		as_pg "$PG_BIN/pg_ctl -D $d -l $tmp/log/native$i.log -w -o '-p $p -k /tmp $opts -c shared_buffers=${1}MB' start" >/dev/null ||
			die "native cluster $i did not start"
		target[native.$i]="host=127.0.0.1 port=$p user=postgres dbname=postgres sslmode=disable"
	done
}
native_down() {
	for ((i = 1; i <= N; i++)); do
		as_pg "$PG_BIN/pg_ctl -D $tmp/native$i -m fast -w stop" >/dev/null || die "native cluster $i did not stop"
	done
}
echo "server:   $opts, shared_buffers as below (native; riftd's servers get the same and its own)"
echo "run:      pgbench -n -c $CLIENTS -j 1 -T $DURATION [-S], $N at once, one per branch or cluster"
rift_up "$sb_default"
echo "url:      rift url b1, as printed: $(rift url b1 | sed 's/:[^:@/]*@/:***@/')"

# CPU ticks used so far: the whole machine's busy time and riftd's (every thread: FUSE,
# RocksDB's flushes and compactions, the router's relays)
cpu_now() { echo "$(machine_busy_ticks) $(cpu_ticks_of "$riftd_pid")"; }

# run SIDE WORKLOAD: N pgbench at once; prints the aggregate tps, and leaves the CPU the run
# used (machine, riftd) in $tmp/cpu.last
run() {
	local side=$1 i pids=() sum s= c0
	[ "$2" = select ] && s=-S
	for ((i = 1; i <= N; i++)); do
		psql -X -q -c checkpoint "${target[$side.$i]}" >/dev/null
	done
	c0=$(cpu_now)
	for ((i = 1; i <= N; i++)); do
		pgbench -n $s -c "$CLIENTS" -j 1 -T "$DURATION" "${target[$side.$i]}" >"$tmp/$side.$i.out" 2>&1 &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || die "a pgbench on $side failed: $(cat "$tmp/$side".*.out | grep -m1 -i error)"; done
	echo "$c0 $(cpu_now)" | awk -v hz="$CLK_TCK" '{ printf "%.1f %.1f\n", ($3 - $1) / hz, ($4 - $2) / hz }' \
		>"$tmp/cpu.last"
	sum=0
	for ((i = 1; i <= N; i++)); do
		t=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$tmp/$side.$i.out")
		[ -n "$t" ] || die "no tps from pgbench $i on $side"
		sum=$(awk -v a="$sum" -v b="$t" 'BEGIN { printf "%.1f", a + b }')
	done
	echo "$sum"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print NR ? a[int((NR+1)/2)] : 0}'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t) ? "met" : "MISSED" }'; }
summary=()
first=1
for mb in $BUFFERS; do
	[ "$mb" = default ] && mb=$sb_default
	if [ $first = 1 ]; then
		first=0 # riftd runs already, with the default
		[ "$mb" = "$sb_default" ] || { rift_down; rift_up "$mb"; }
	else
		rift_down
		rift_up "$mb"
	fi
	native_up "$mb"
	for w in $WORKLOADS; do
		declare -A all=() cpu_rd=()
		echo
		echo "-- shared_buffers ${mb}MB, $w"
		read -r -a sides <<<"$SIDES"
		for ((r = 1; r <= ROUNDS; r++)); do
			# rotate who goes first, so each side leads and follows alike
			for ((k = 0; k < ${#sides[@]}; k++)); do
				side=${sides[$(((k + r - 1) % ${#sides[@]}))]}
				t=$(run "$side" "$w")
				all[$side]+=" $t"
				read -r cm cr <"$tmp/cpu.last"
				cpu_rd[$side]+=" $cr"
				printf 'round %d  %-6s  aggregate tps %9.1f   CPU s: machine %5.1f, riftd %5.1f\n' \
					"$r" "$side" "$t" "$cm" "$cr"
			done
		done
		declare -A med=()
		for side in "${sides[@]}"; do med[$side]=$(echo "${all[$side]}" | median); done
		want=0.95
		[ "$w" = tpcb ] && { if [ "$N" = 1 ]; then want=0.9; else want=0.85; fi; }
		line=$(printf '%-6s %5sMB' "$w" "$mb")
		for side in "${sides[@]}"; do line+=$(printf '  %s %9s' "$side" "${med[$side]}"); done
		if [ -n "${med[rift]:-}" ] && [ -n "${med[native]:-}" ]; then
			rr=$(ratio "${med[rift]}" "${med[native]}")
			line+="  rift/native $rr ($(verdict "$rr" "$want") >= $want)"
		fi
		# the router's share, TLS as libpq defaults to (issue 14's target: >= 0.9 of direct)
		[ -n "${med[url]:-}" ] && [ -n "${med[native]:-}" ] &&
			line+="  url/native $(ratio "${med[url]}" "${med[native]}")"
		if [ -n "${med[url]:-}" ] && [ -n "${med[rift]:-}" ]; then
			rr=$(ratio "${med[url]}" "${med[rift]}")
			line+="  url/rift $rr ($(verdict "$rr" 0.9) >= 0.9)"
		fi
		line+="  riftd CPU s/run:"
		for side in "${sides[@]}"; do line+=" $side $(echo "${cpu_rd[$side]}" | median)"; done
		summary+=("$line")
		for side in "${sides[@]}"; do echo "   all runs $side: [${all[$side]# }]"; done
	done
	native_down
done
echo
echo "== medians of $ROUNDS, aggregate tps of $N at once (targets: issue 13)"
printf '%s\n' "${summary[@]}"
echo "   store db/ $(du -sh "$state/db" | cut -f1), blocks/ $(du -sh "$state/blocks" 2>/dev/null | cut -f1), native data dirs $(du -sch "$tmp"/native? | tail -1 | cut -f1)"
echo "load avg: $(cut -d' ' -f1-3 /proc/loadavg) at the end; well above $(nproc) means other load shared the machine"
