#!/usr/bin/env bash
# fuse_floor_multi.sh — fuse_floor.sh's question with several clusters busy at once: how much of
# the gap of N branches to N native clusters is FUSE's, and how much rift's. Three sides of N
# clusters each, every one a physical copy of one seed cluster that got `pgbench -i`:
#   native  N clusters in plain directories;
#   floor   N clusters on N mounts of libfuse's passthrough_ll example (from Debian's
#           libfuse3-dev, built into the temp dir, never kept) with rift-fs's kernel settings;
#   rift    N stores, each with the seed imported as its base and one branch mounted by its own
#           rift-fs: copy-on-write over base files, as after `rift init --pgdata`. riftd serves
#           every branch from one store and process; pgbench_multi.sh measures that.
# On floor and rift, pg_wal and base/pgsql_tmp are plain directories beside the mount, linked from
# it, as riftd lays out a branch; every server gets the settings riftd gives a branch's. A run is
# N pgbench TPC-B at once, one per cluster of a side, after a CHECKPOINT on each; rounds rotate
# which side goes first. Prints each run's aggregate tps, the CPU the side's FUSE daemons used
# (all of them, in seconds and in microseconds per transaction) and the machine's busy time, then
# the medians and the ratios floor/native, rift/native and rift/floor.
#
# usage: tests/bench/fuse_floor_multi.sh [--quick] [--help]      (as root: FUSE mounts need it)
# env (defaults; --quick changes the ones shown second):
#   BENCH_CLUSTERS [4]            clusters per side, all busy at once
#   BENCH_SCALE [20 | 2]          pgbench -s of the seed
#   BENCH_CLIENTS [2]             pgbench -c per cluster
#   BENCH_DURATION [20 | 5]       seconds per run
#   BENCH_ROUNDS [3 | 1]          runs per side
#   BENCH_SHARED_BUFFERS [32MB]   riftd's default for a branch's server
#   BENCH_TMPDIR [/var/tmp]       parent of the temp dir (a real disk, not tmpfs)
#   RIFT_FS_THREADS [rift-fs's default]   passed as rift-fs --threads
#   RIFT_BIN [<repo>/build/bin]   where rift-fs and store_admin are
#   PG_BIN [/usr/lib/postgresql/15/bin]
# Exit status 0 when every run completed, 1 on error. Servers, mounts and the temp dir go away on
# any exit.
set -euo pipefail

usage() { sed -n '2,/^# Exit status/s/^# \{0,1\}//p' "$0"; }
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
bench_args fuse_floor_multi.sh "$@"
RIFT_BIN=${RIFT_BIN:-$here/../../build/bin}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
if [ "$quick" = 1 ]; then
	SCALE=${BENCH_SCALE:-2} DURATION=${BENCH_DURATION:-5} ROUNDS=${BENCH_ROUNDS:-1}
else
	SCALE=${BENCH_SCALE:-20} DURATION=${BENCH_DURATION:-20} ROUNDS=${BENCH_ROUNDS:-3}
fi
N=${BENCH_CLUSTERS:-4}
CLIENTS=${BENCH_CLIENTS:-2}
SB=${BENCH_SHARED_BUFFERS:-32MB}

die() {
	echo "fuse_floor_multi.sh: $*" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || die "run as root (FUSE mounts need it; the servers run as postgres)"
for b in "$RIFT_BIN/rift-fs" "$RIFT_BIN/store_admin"; do
	[ -x "$b" ] || die "$b missing: build first (cmake --build build), or set RIFT_BIN"
done
[ -f "$FLOOR_EXAMPLES/passthrough_ll.c" ] ||
	die "$FLOOR_EXAMPLES/passthrough_ll.c missing: apt-get install libfuse3-dev"
for v in N SCALE CLIENTS DURATION ROUNDS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
[ -z "${RIFT_FS_THREADS:-}" ] || [[ $RIFT_FS_THREADS =~ ^[1-9][0-9]*$ ]] ||
	die "RIFT_FS_THREADS must be a positive integer, got '$RIFT_FS_THREADS'"
RIFT_BIN=$(cd "$RIFT_BIN" && pwd)

TMP=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/rift-floor-multi.XXXXXX")
chmod 755 "$TMP"
install -d -o postgres "$TMP/sock"
as_pg() { su postgres -s /bin/bash -c "$*"; }
SIDES="native floor rift"
declare -A data pgport fspid
OPTS="-c listen_addresses= -k $TMP/sock -c shared_buffers=$SB -c wal_init_zero=off -c wal_recycle=off"

pg_start() { # KEY (side and number: native1, floor2, ...)
	as_pg "'$PG_BIN/pg_ctl' -D '${data[$1]}' -l '$TMP/sock/$1.log' -w -t 120 -o '-p ${pgport[$1]} $OPTS' start" \
		>/dev/null || die "the $1 server did not start: $(tail -3 "$TMP/sock/$1.log")"
}
pg_stop() { as_pg "'$PG_BIN/pg_ctl' -D '${data[$1]}' -m fast -w -t 60 stop" >/dev/null 2>&1; }
mounts_left() { # prints the mounts under TMP still there
	local m
	for m in "$TMP"/*-mnt*; do
		[ -d "$m" ] && mountpoint -q "$m" && echo "$m"
	done
	return 0
}
cleanup() {
	local rc=$? k m
	set +e
	trap '' INT TERM
	for k in "${!data[@]}"; do
		[ -f "${data[$k]}/postmaster.pid" ] && pg_stop "$k"
	done
	for m in $(mounts_left); do umount "$m" 2>/dev/null || umount -l "$m"; done
	for k in "${!fspid[@]}"; do
		kill -TERM "${fspid[$k]}" 2>/dev/null
		wait "${fspid[$k]}" 2>/dev/null
	done
	if [ -n "$(mounts_left)" ]; then
		echo "fuse_floor_multi.sh: a mount under $TMP is still there; leaving $TMP in place" >&2
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the floor's daemon: libfuse's example, with rift-fs's op_init settings added
floor_build "$TMP" || die "the floor's daemon could not be built (above)"

wait_mount() { # KEY MOUNTPOINT
	local i
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$2" && return 0
		kill -0 "${fspid[$1]}" 2>/dev/null || die "the daemon of $1 exited (see $TMP/$1.fs.log)"
		sleep 0.1
	done
	die "$1 did not mount at $2 within 10 s"
}

echo "== fuse_floor_multi: $N native clusters vs $N on FUSE passthrough mounts vs $N rift branches, each $N at once =="
echo "command:  $0${*:+ $*}  (BENCH_CLUSTERS=$N BENCH_SCALE=$SCALE BENCH_CLIENTS=$CLIENTS BENCH_DURATION=$DURATION BENCH_ROUNDS=$ROUNDS BENCH_SHARED_BUFFERS=$SB${RIFT_FS_THREADS:+ RIFT_FS_THREADS=$RIFT_FS_THREADS})"
echo "host:     $(nproc) cores, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
echo "git:      $(git -C "$here" describe --always --dirty 2>/dev/null || echo unknown)"
echo "server:   postgres -p PORT $OPTS"
echo "run:      pgbench -n -c $CLIENTS -j 1 -T $DURATION, $N at once, one per cluster of a side"
echo

# ---- one seed, loaded once; every cluster of every side starts from a copy of it
install -d -o postgres "$TMP/seed"
seed_cluster "$TMP/seed/data" "$TMP/sock" "$SCALE" "$PG_BIN" "$TMP/load.log" ||
	die "loading the seed cluster failed: $(tail -3 "$TMP/load.log")"

rift_args=(-f)
[ -n "${RIFT_FS_THREADS:-}" ] && rift_args+=(--threads "$RIFT_FS_THREADS")
for ((i = 1; i <= N; i++)); do
	data[native$i]=$TMP/native$i
	cp -a "$TMP/seed/data" "${data[native$i]}"

	install -d -o postgres "$TMP/floor-src$i" "$TMP/floor-mnt$i"
	cp -a "$TMP/seed/data" "$TMP/floor-src$i/data"
	link_out "$TMP/floor-src$i/data" "$TMP/floor-wal$i" "$TMP/floor-temp$i"
	"$TMP/passthrough_ll" -f -o "$(floor_opts "$TMP/floor-src$i")" "$TMP/floor-mnt$i" 2>>"$TMP/floor$i.fs.log" &
	fspid[floor$i]=$!
	wait_mount "floor$i" "$TMP/floor-mnt$i"
	data[floor$i]=$TMP/floor-mnt$i/data

	"$RIFT_BIN/store_admin" "$TMP/state$i" import "$TMP/seed/data" >"$TMP/store_admin.log" 2>&1 &&
		"$RIFT_BIN/store_admin" "$TMP/state$i" create bench >>"$TMP/store_admin.log" 2>&1 ||
		die "store_admin failed: $(cat "$TMP/store_admin.log")"
	install -d "$TMP/rift-mnt$i"
	"$RIFT_BIN/rift-fs" "${rift_args[@]}" --state "$TMP/state$i" bench "$TMP/rift-mnt$i" 2>>"$TMP/rift$i.fs.log" &
	fspid[rift$i]=$!
	wait_mount "rift$i" "$TMP/rift-mnt$i"
	link_out "$TMP/rift-mnt$i" "$TMP/rift-wal$i" "$TMP/rift-temp$i"
	data[rift$i]=$TMP/rift-mnt$i
done
for s in $SIDES; do
	for ((i = 1; i <= N; i++)); do
		pgport[$s$i]=$(port)
		pg_start "$s$i"
	done
done

daemon_ticks() { # SIDE: CPU ticks all of the side's FUSE daemons have used
	local i t=0
	[ "$1" = native ] && { echo 0; return; }
	for ((i = 1; i <= N; i++)); do t=$((t + $(cpu_ticks_of "${fspid[$1$i]}"))); done
	echo "$t"
}
run_side() { # SIDE: one run; prints "TPS DAEMON_TICKS MACHINE_TICKS"
	local s=$1 i c0 m0 pids=() tps=0 t
	for ((i = 1; i <= N; i++)); do
		as_pg "'$PG_BIN/psql' -X -q -h '$TMP/sock' -p ${pgport[$s$i]} -c checkpoint postgres"
	done
	c0=$(daemon_ticks "$s")
	m0=$(machine_busy_ticks)
	for ((i = 1; i <= N; i++)); do
		pgbench -n -c "$CLIENTS" -j 1 -T "$DURATION" -h "$TMP/sock" -p "${pgport[$s$i]}" -U postgres postgres \
			>"$TMP/out.$s$i" 2>&1 &
		pids+=($!)
	done
	for ((i = 1; i <= N; i++)); do
		wait "${pids[i - 1]}" || die "pgbench failed on $s$i: $(tail -3 "$TMP/out.$s$i")"
		t=$(sed -n 's/^tps = \([0-9.]*\) (without.*/\1/p' "$TMP/out.$s$i")
		[ -n "$t" ] || die "no tps from pgbench on $s$i: $(tail -3 "$TMP/out.$s$i")"
		tps=$(awk -v a="$tps" -v b="$t" 'BEGIN { printf "%.1f", a + b }')
	done
	echo "$tps $(($(daemon_ticks "$s") - c0)) $(($(machine_busy_ticks) - m0))"
}
order() { case $(($1 % 3)) in 1) echo native floor rift ;; 2) echo floor rift native ;; *) echo rift native floor ;; esac; }

declare -A tps=([native]="" [floor]="" [rift]="")
for ((r = 1; r <= ROUNDS; r++)); do
	for s in $(order "$r"); do
		read -r t dt busy <<<"$(run_side "$s")"
		[ -n "${busy:-}" ] || die "the $s run failed (above)"
		tps[$s]+="$t "
		awk -v r="$r" -v s="$s" -v t="$t" -v d="$dt" -v m="$busy" -v hz="$CLK_TCK" -v dur="$DURATION" 'BEGIN {
			us = (t > 0 && s != "native") ? sprintf("%.0f", d / hz * 1e6 / (t * dur)) : "-"
			printf "round %d  %-6s  aggregate %8.1f tps   FUSE daemons %5.1f s CPU (%s us/transaction)   machine busy %5.1f s\n",
				r, s, t, d / hz, us, m / hz }'
	done
done

echo
echo "== medians of $ROUNDS (scale $SCALE, $N clusters a side, $CLIENTS clients each, shared_buffers $SB)"
declare -A mt
for s in $SIDES; do
	# shellcheck disable=SC2086 # the list is words
	mt[$s]=$(median ${tps[$s]})
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }
printf '%-24s %8s %8s %8s   %s %s %s\n' "" native floor rift floor/nat rift/nat rift/floor
printf '%-24s %8.0f %8.0f %8.0f   %9s %8s %10s\n' "TPC-B aggregate tps" "${mt[native]}" "${mt[floor]}" "${mt[rift]}" \
	"$(ratio "${mt[floor]}" "${mt[native]}")" "$(ratio "${mt[rift]}" "${mt[native]}")" "$(ratio "${mt[rift]}" "${mt[floor]}")"
echo "issue 13's target: several branches at once >= 0.85 of as many native clusters. The floor column"
echo "is what FUSE itself costs here; rift/floor is what the store adds on top."
echo "load avg at the end: $(cut -d' ' -f1-3 /proc/loadavg) (well above $(nproc) means other load shared the machine)"
