#!/usr/bin/env bash
# fuse_floor.sh — how much of a branch's gap to native Postgres is FUSE's, and how much rift's store:
# pgbench on three clusters side by side, alternating rounds:
#   native  a cluster in a plain directory;
#   floor   a cluster on a plain-file FUSE passthrough mount: libfuse's own passthrough_ll example
#           (from Debian's libfuse3-dev, built here into the temp dir, never kept), with rift-fs's
#           kernel settings (writeback cache, 1 MiB writes and readahead, attributes cached): what
#           any FUSE design can reach on this kernel with no store at all;
#   rift    a cluster imported as the base of a store, branch "bench" mounted with rift-fs.
# On floor and rift, pg_wal and base/pgsql_tmp are plain directories beside the mount, linked
# from it, as riftd lays out a branch. Every server gets the settings riftd gives a branch's.
# Measured: `pgbench -i` (bulk load) and then TPC-B on a mount remounted first, so its page cache
# is cold as a new branch's is (the files underneath stay in the host's cache, as a base's do).
# With BENCH_BASE=physical the tables are loaded once into a seed cluster instead, and each side
# starts from a copy of it (rift: the seed imported as the store's base, so a branch's writes are
# copy-on-write over base files, as after `rift init --pgdata`); only TPC-B is measured.
# Prints each run with the CPU of the FUSE daemon (passthrough_ll or rift-fs, all threads), the
# medians, and the ratios floor/native, rift/native and rift/floor.
#
# usage: tests/bench/fuse_floor.sh [--quick] [--help]      (as root: FUSE mounts need it)
# env (defaults; --quick changes the ones shown second):
#   BENCH_SCALE [50 | 5]          pgbench -s
#   BENCH_CLIENTS [4]             pgbench -c (TPC-B)
#   BENCH_DURATION [15 | 5]       seconds per TPC-B run
#   BENCH_ROUNDS [3 | 1]          loads and TPC-B runs per side
#   BENCH_SHARED_BUFFERS [32MB]   riftd's default for a branch's server
#   BENCH_BASE [loaded]           loaded: tables loaded through each side; physical: see above
#   BENCH_TMPDIR [/var/tmp]       parent of the temp dir (a real disk, not tmpfs)
#   RIFT_BIN [<repo>/build/bin]   where rift-fs and store_admin are
#   PG_BIN [/usr/lib/postgresql/15/bin]
# Exit status 0 when every run completed, 1 on error. Servers, mounts and the temp dir go away on
# any exit.
set -euo pipefail

usage() { sed -n '2,/^# Exit status/s/^# \{0,1\}//p' "$0"; }
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
bench_args fuse_floor.sh "$@"
RIFT_BIN=${RIFT_BIN:-$here/../../build/bin}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
if [ "$quick" = 1 ]; then
	SCALE=${BENCH_SCALE:-5} DURATION=${BENCH_DURATION:-5} ROUNDS=${BENCH_ROUNDS:-1}
else
	SCALE=${BENCH_SCALE:-50} DURATION=${BENCH_DURATION:-15} ROUNDS=${BENCH_ROUNDS:-3}
fi
CLIENTS=${BENCH_CLIENTS:-4}
SB=${BENCH_SHARED_BUFFERS:-32MB}
BASE=${BENCH_BASE:-loaded}

die() {
	echo "fuse_floor.sh: $*" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || die "run as root (FUSE mounts need it; the servers run as postgres)"
for b in "$RIFT_BIN/rift-fs" "$RIFT_BIN/store_admin"; do
	[ -x "$b" ] || die "$b missing: build first (cmake --build build), or set RIFT_BIN"
done
[ -f "$FLOOR_EXAMPLES/passthrough_ll.c" ] ||
	die "$FLOOR_EXAMPLES/passthrough_ll.c missing: apt-get install libfuse3-dev"
[[ $BASE =~ ^(loaded|physical)$ ]] || die "BENCH_BASE must be loaded or physical, got '$BASE'"
for v in SCALE CLIENTS DURATION ROUNDS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
RIFT_BIN=$(cd "$RIFT_BIN" && pwd)

TMP=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/rift-floor.XXXXXX")
chmod 755 "$TMP"
install -d -o postgres "$TMP/sock"
as_pg() { su postgres -s /bin/bash -c "$*"; }
declare -A data=([native]=$TMP/native [floor]=$TMP/floor-mnt/data [rift]=$TMP/rift-mnt)
declare -A fspid=([floor]= [rift]=)
declare -A pgport=([native]=$(port) [floor]=$(port) [rift]=$(port))
OPTS="-c listen_addresses= -k $TMP/sock -c shared_buffers=$SB -c wal_init_zero=off -c wal_recycle=off"

pg_stop() { as_pg "'$PG_BIN/pg_ctl' -D '${data[$1]}' -m fast -w -t 60 stop" >/dev/null 2>&1; }
fs_stop() { # SIDE: unmounts and waits for the daemon to end
	local m=$TMP/$1-mnt pid=${fspid[$1]}
	mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m"; }
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	fspid[$1]=
}
cleanup() {
	local rc=$? s
	set +e
	trap '' INT TERM
	for s in native floor rift; do
		[ -f "${data[$s]}/postmaster.pid" ] && pg_stop "$s"
	done
	fs_stop floor
	fs_stop rift
	if mountpoint -q "$TMP/floor-mnt" || mountpoint -q "$TMP/rift-mnt"; then
		echo "fuse_floor.sh: a mount under $TMP is still there; leaving $TMP in place" >&2
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the floor's daemon: libfuse's example, with rift-fs's op_init settings added
floor_build "$TMP" || die "the floor's daemon could not be built (above)"

# mount_side SIDE: mounts floor or rift and waits for the mount
mount_side() {
	local m=$TMP/$1-mnt i
	if [ "$1" = floor ]; then
		"$TMP/passthrough_ll" -f -o "$(floor_opts "$TMP/floor-src")" "$m" \
			2>>"$TMP/floor.log" &
	else
		"$RIFT_BIN/rift-fs" -f --state "$TMP/state" bench "$m" 2>>"$TMP/rift-fs.log" &
	fi
	fspid[$1]=$!
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$m" && return 0
		kill -0 "${fspid[$1]}" 2>/dev/null || die "the $1 mount's daemon exited"
		sleep 0.1
	done
	die "$1 did not mount at $m within 10 s"
}
pg_start() {
	as_pg "'$PG_BIN/pg_ctl' -D '${data[$1]}' -l '$TMP/sock/$1.log' -w -t 120 -o '-p ${pgport[$1]} $OPTS' start" \
		>/dev/null || die "the $1 server did not start: $(tail -3 "$TMP/sock/$1.log")"
}

echo "== fuse_floor: native vs a plain-file FUSE passthrough vs a rift branch =="
echo "command:  $0${*:+ $*}  (BENCH_SCALE=$SCALE BENCH_CLIENTS=$CLIENTS BENCH_DURATION=$DURATION BENCH_ROUNDS=$ROUNDS BENCH_SHARED_BUFFERS=$SB BENCH_BASE=$BASE)"
echo "host:     $(nproc) cores, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
echo "git:      $(git -C "$here" describe --always --dirty 2>/dev/null || echo unknown)"
echo "server:   postgres -p PORT $OPTS"
echo "floor:    passthrough_ll -o allow_other,writeback,cache=always (libfuse $(pkg-config --modversion fuse3))"
echo

install -d -o postgres "$TMP/native" "$TMP/seed" "$TMP/floor-src" "$TMP/floor-mnt" "$TMP/rift-mnt"
if [ "$BASE" = loaded ]; then
	for d in "$TMP/native" "$TMP/seed/data" "$TMP/floor-src/data"; do
		as_pg "'$PG_BIN/initdb' -D '$d' -A trust -U postgres" >"$TMP/initdb.log" 2>&1 ||
			die "initdb failed: $(tail -3 "$TMP/initdb.log")"
	done
else
	# one load into the seed; every side starts from a copy of it
	seed_cluster "$TMP/seed/data" "$TMP/sock" "$SCALE" "$PG_BIN" "$TMP/load.log" ||
		die "loading the seed cluster failed: $(tail -3 "$TMP/load.log")"
	rmdir "$TMP/native"
	cp -a "$TMP/seed/data" "$TMP/native"
	cp -a "$TMP/seed/data" "$TMP/floor-src/data"
fi
link_out "$TMP/floor-src/data" "$TMP/floor-wal" "$TMP/floor-temp"
"$RIFT_BIN/store_admin" "$TMP/state" import "$TMP/seed/data" >"$TMP/store_admin.log" 2>&1 &&
	"$RIFT_BIN/store_admin" "$TMP/state" create bench >>"$TMP/store_admin.log" 2>&1 ||
	die "store_admin failed: $(cat "$TMP/store_admin.log")"
mount_side floor
mount_side rift
link_out "$TMP/rift-mnt" "$TMP/rift-wal" "$TMP/rift-temp"
for s in native floor rift; do pg_start "$s"; done

daemon_s() { # SIDE T0: seconds of CPU the side's FUSE daemon used since ticks T0
	[ "$1" = native ] && { echo -; return; }
	awk -v a="$2" -v b="$(cpu_ticks_of "${fspid[$1]}")" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", (b - a) / hz }'
}
declare -A load=([native]= [floor]= [rift]=) tps=([native]= [floor]= [rift]=)
order() { case $(($1 % 3)) in 1) echo native floor rift ;; 2) echo floor rift native ;; *) echo rift native floor ;; esac; }

load_rounds=$ROUNDS
[ "$BASE" = loaded ] || load_rounds=0
for ((r = 1; r <= load_rounds; r++)); do
	for s in $(order "$r"); do
		c0=$(cpu_ticks_of "${fspid[$s]:-0}")
		t0=$(date +%s.%N)
		pgbench -q -i -s "$SCALE" -h "$TMP/sock" -p "${pgport[$s]}" -U postgres postgres >"$TMP/load.log" 2>&1 ||
			die "pgbench -i failed on $s: $(tail -3 "$TMP/load.log")"
		t=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
		load[$s]+="$t "
		printf 'load  round %d  %-6s  %6s s   daemon CPU %s s\n' "$r" "$s" "$t" "$(daemon_s "$s" "$c0")"
		sleep 5 # let writeback and compaction of one load settle before the next side's
	done
done

# cold mounts: everything on disk, servers stopped, the two mounts made again
for s in native floor rift; do as_pg "'$PG_BIN/psql' -X -q -h '$TMP/sock' -p ${pgport[$s]} -c checkpoint postgres"; done
for s in floor rift; do
	pg_stop "$s"
	fs_stop "$s"
	mount_side "$s"
	pg_start "$s"
done
for ((r = 1; r <= ROUNDS; r++)); do
	for s in $(order "$r"); do
		as_pg "'$PG_BIN/psql' -X -q -h '$TMP/sock' -p ${pgport[$s]} -c checkpoint postgres"
		c0=$(cpu_ticks_of "${fspid[$s]:-0}")
		out=$(pgbench -n -c "$CLIENTS" -j 1 -T "$DURATION" -h "$TMP/sock" -p "${pgport[$s]}" -U postgres postgres 2>&1) ||
			die "pgbench failed on $s: $out"
		t=$(sed -n 's/^tps = \([0-9.]*\) (without.*/\1/p' <<<"$out")
		tps[$s]+="$t "
		printf 'tpcb  round %d  %-6s  %9.1f tps  daemon CPU %s s\n' "$r" "$s" "$t" "$(daemon_s "$s" "$c0")"
	done
done

echo
echo "== medians of $ROUNDS (scale $SCALE, shared_buffers $SB)"
declare -A ml mt
for s in native floor rift; do
	# shellcheck disable=SC2086 # the lists are words
	ml[$s]=$(median ${load[$s]})
	# shellcheck disable=SC2086
	mt[$s]=$(median ${tps[$s]})
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }
printf '%-28s %8s %8s %8s   %s %s %s\n' "" native floor rift floor/nat rift/nat rift/floor
[ "$BASE" = loaded ] && printf '%-28s %8s %8s %8s   %9s %8s %10s\n' "pgbench -i, s (lower wins)" "${ml[native]}" "${ml[floor]}" "${ml[rift]}" \
	"$(ratio "${ml[floor]}" "${ml[native]}")" "$(ratio "${ml[rift]}" "${ml[native]}")" "$(ratio "${ml[rift]}" "${ml[floor]}")"
printf '%-28s %8.0f %8.0f %8.0f   %9s %8s %10s\n' "TPC-B tps, cold mount" "${mt[native]}" "${mt[floor]}" "${mt[rift]}" \
	"$(ratio "${mt[floor]}" "${mt[native]}")" "$(ratio "${mt[rift]}" "${mt[native]}")" "$(ratio "${mt[rift]}" "${mt[floor]}")"
echo "issue 13's targets: TPC-B >= 0.9 of native, pgbench -i <= 1.25x native. The floor column is"
echo "what FUSE itself costs here; rift/floor is what the store adds on top."
echo "load avg at the end: $(cut -d' ' -f1-3 /proc/loadavg) (well above $(nproc) means other load shared the machine)"
