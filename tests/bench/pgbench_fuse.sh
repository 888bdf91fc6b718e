#!/usr/bin/env bash
# pgbench_fuse.sh — pgbench on native Postgres vs Postgres on a rift branch, side by side.
#
# Runs, in one go and with identical server settings, pgbench TPC-B and select-only (-S) against
#   (1) native: a cluster initdb'ed in a plain directory on the same disk, and
#   (2) rift:   a cluster initdb'ed in a temp dir, imported as the base of a fresh store
#               (store_admin STATE import), branch "bench" created and mounted with rift-fs -f,
#               the server run with -D on the mount.
# Both get `pgbench -i -s SCALE` (timed, BENCH_INIT_ROUNDS times, alternating), then the measured
# runs alternate native/rift (and who goes first alternates per round) to spread machine noise. Reports every TPS, the medians and
# the ratios rift/native against the targets of issue 13 (TPC-B >= 0.9, select-only >= 0.95,
# pgbench -i <= 1.25x, fdatasync <= 1.3x, space <= 1.3x). Also measures pg_test_fsync on the
# mount vs the native directory, and the disk the store uses against the sum of
# pg_database_size, right after pgbench -i and at the end.
#
# usage: tests/bench/pgbench_fuse.sh [--quick] [--help]      (as root: FUSE mounts need it)
#
# environment (defaults in brackets; --quick changes the defaults shown second):
#   BENCH_SCALE [50 | 5]      pgbench -s
#   BENCH_CLIENTS [4]         pgbench -c
#   BENCH_JOBS [min(clients, cores)]  pgbench -j
#   BENCH_DURATION [60 | 10]  seconds per measured run (pgbench -T)
#   BENCH_ROUNDS [2 | 1]      measured runs per side and mode (rounds < 2 only for smoke runs)
#   BENCH_INIT_ROUNDS [3 | 1] timed pgbench -i runs per side, alternating; the median counts
#   BENCH_TMPDIR [/var/tmp]   parent of the temp dir; keep it on a real disk, not tmpfs
#   BENCH_SHARED_BUFFERS [128MB]
#   RIFT_BIN [<repo>/build/bin]  where rift-fs and store_admin are
#   PG_BIN [/usr/lib/postgresql/15/bin]
#   RIFT_FS_THREADS [rift-fs default]  passed as rift-fs --threads
#   BENCH_WAL_IN_STORE [0]    1: keep pg_wal and base/pgsql_tmp in the store instead of beside it
#                             as riftd does
#
# Exit status: 0 when all runs completed (whether or not the targets were met), 1 on error.
# Servers, mounts and the temp dir are cleaned up on any exit, including Ctrl-C.

set -euo pipefail

usage() {
	sed -n '2,/^# Servers, mounts/s/^# \{0,1\}//p' "$0"
}

here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
bench_args pgbench_fuse.sh "$@"
RIFT_BIN=${RIFT_BIN:-$here/../../build/bin}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
cores=$(nproc)
if [ "$quick" = 1 ]; then
	SCALE=${BENCH_SCALE:-5}
	DURATION=${BENCH_DURATION:-10}
	ROUNDS=${BENCH_ROUNDS:-1}
	INIT_ROUNDS=${BENCH_INIT_ROUNDS:-1}
else
	INIT_ROUNDS=${BENCH_INIT_ROUNDS:-3}
	SCALE=${BENCH_SCALE:-50}
	DURATION=${BENCH_DURATION:-60}
	ROUNDS=${BENCH_ROUNDS:-2}
fi
CLIENTS=${BENCH_CLIENTS:-4}
JOBS=${BENCH_JOBS:-$((CLIENTS < cores ? CLIENTS : cores))}
SHARED_BUFFERS=${BENCH_SHARED_BUFFERS:-128MB}
TMP_PARENT=${BENCH_TMPDIR:-/var/tmp}

die() {
	echo "pgbench_fuse.sh: $*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (rift-fs mounts need it; servers run as postgres)"
id postgres >/dev/null 2>&1 || die "no 'postgres' user"
for b in "$RIFT_BIN/rift-fs" "$RIFT_BIN/store_admin"; do
	[ -x "$b" ] || die "$b missing: build first (cmake --build build), or set RIFT_BIN"
done
for b in initdb pg_ctl pgbench psql; do
	[ -x "$PG_BIN/$b" ] || die "$PG_BIN/$b missing: set PG_BIN"
done
for v in SCALE CLIENTS JOBS DURATION ROUNDS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
RIFT_BIN=$(cd "$RIFT_BIN" && pwd)

# ---- temp dir and cleanup ----

mkdir -p "$TMP_PARENT"
TMP=$(mktemp -d "$TMP_PARENT/rift-pgbench.XXXXXX")
chmod 755 "$TMP" # the postgres user must reach the dirs below
SOCK=$TMP/sock
LOGS=$TMP/log
mkdir -p "$SOCK" "$LOGS"
chown postgres "$SOCK" "$LOGS"

NATIVE_DATA=$TMP/native/data
SEED_DATA=$TMP/seed/data
STATE=$TMP/state
MNT=$TMP/mnt
started_pg=()  # data dirs of servers we started
rift_pid=""
failed=0

as_postgres() {
	su postgres -s /bin/bash -c "$*"
}

cleanup() {
	local rc=$? d i
	set +e
	trap '' INT TERM
	if [ "$rc" -ne 0 ] || [ "$failed" = 1 ]; then
		for f in "$LOGS"/pg-*.log "$LOGS"/rift-fs.log; do
			[ -s "$f" ] || continue
			echo "---- tail of $(basename "$f") ----" >&2
			tail -15 "$f" >&2
		done
	fi
	for d in "${started_pg[@]}"; do
		[ -f "$d/postmaster.pid" ] || continue
		as_postgres "'$PG_BIN/pg_ctl' -D '$d' -m fast -w -t 30 stop" >/dev/null 2>&1 ||
			as_postgres "'$PG_BIN/pg_ctl' -D '$d' -m immediate -w -t 30 stop" >/dev/null 2>&1
	done
	if [ -n "$rift_pid" ]; then
		kill -TERM "$rift_pid" 2>/dev/null
		for ((i = 0; i < 100; i++)); do
			kill -0 "$rift_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$rift_pid" 2>/dev/null
		wait "$rift_pid" 2>/dev/null
	fi
	if mountpoint -q "$MNT" 2>/dev/null; then
		umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	fi
	if mountpoint -q "$MNT" 2>/dev/null; then
		echo "pgbench_fuse.sh: $MNT is still mounted; leaving $TMP in place" >&2
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "pgbench_fuse.sh: interrupted" >&2; exit 130' INT TERM HUP

PORT_NATIVE=$(port)
PORT_RIFT=$(port)
while [ "$PORT_RIFT" = "$PORT_NATIVE" ]; do PORT_RIFT=$(port); done

PG_OPTS="-c listen_addresses= -c unix_socket_directories=$SOCK -c shared_buffers=$SHARED_BUFFERS \
-c wal_init_zero=off -c wal_recycle=off -c fsync=on"
PGBENCH_ARGS="-h $SOCK -c $CLIENTS -j $JOBS -T $DURATION"

# ---- what is being run, up front ----

fs_of() { df -PT "$1" | awk 'NR == 2 { print $1 " (" $2 ") mounted at " $7 }'; }
echo "== rift pgbench: native Postgres vs Postgres on a rift branch =="
echo "command:    $0${*:+ $*}"
echo "date:       $(date -u +%Y-%m-%dT%H:%M:%SZ)   host: $(uname -n), $cores cores, kernel $(uname -r)"
echo "load avg:   $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before starting"
echo "git:        $(git -C "$here" describe --always --dirty 2>/dev/null || echo unknown)"
echo "postgres:   $("$PG_BIN/postgres" --version)"
echo "temp dir:   $TMP on $(fs_of "$TMP")"
echo "settings:   scale=$SCALE clients=$CLIENTS jobs=$JOBS duration=${DURATION}s rounds=$ROUNDS"
echo "server:     postgres -p PORT $PG_OPTS  (everything else default)"
echo "init:       pgbench -h $SOCK -p PORT -i -s $SCALE -q postgres"
echo "TPC-B:      pgbench $PGBENCH_ARGS -p PORT postgres"
echo "select:     pgbench $PGBENCH_ARGS -S -p PORT postgres"
echo "native:     -D $NATIVE_DATA, port $PORT_NATIVE"
echo "rift:       store_admin $STATE import $SEED_DATA; store_admin $STATE create bench;"
echo "            rift-fs -f --state $STATE${RIFT_FS_THREADS:+ --threads $RIFT_FS_THREADS} bench $MNT; -D $MNT, port $PORT_RIFT"
echo

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

pg_start() { # DATA PORT NAME
	started_pg+=("$1")
	as_postgres "'$PG_BIN/pg_ctl' -D '$1' -l '$LOGS/pg-$3.log' -w -t 300 -o '-p $2 $PG_OPTS' start" \
		>/dev/null || {
		failed=1
		die "postgres ($3) did not start on $1"
	}
}

psql_at() { # PORT SQL
	as_postgres "'$PG_BIN/psql' -X -q -h '$SOCK' -p $1 -Atc \"$2\" postgres"
}

# ---- (1) native ----

echo "-- setting up native (initdb in $NATIVE_DATA)"
mkdir -p "$(dirname "$NATIVE_DATA")"
chown postgres "$(dirname "$NATIVE_DATA")"
as_postgres "'$PG_BIN/initdb' -D '$NATIVE_DATA' -A trust -U postgres" >"$LOGS/initdb-native.log" 2>&1 ||
	die "initdb (native) failed: $(tail -3 "$LOGS/initdb-native.log")"
pg_start "$NATIVE_DATA" "$PORT_NATIVE" native

# ---- (2) rift ----

echo "-- setting up rift (initdb, import as base, create branch, mount)"
mkdir -p "$(dirname "$SEED_DATA")" "$MNT"
chown postgres "$(dirname "$SEED_DATA")"
as_postgres "'$PG_BIN/initdb' -D '$SEED_DATA' -A trust -U postgres" >"$LOGS/initdb-seed.log" 2>&1 ||
	die "initdb (seed) failed: $(tail -3 "$LOGS/initdb-seed.log")"
t0=$(now)
"$RIFT_BIN/store_admin" "$STATE" import "$SEED_DATA" >"$LOGS/store_admin.log" 2>&1 ||
	die "store_admin import failed: $(cat "$LOGS/store_admin.log")"
"$RIFT_BIN/store_admin" "$STATE" create bench >>"$LOGS/store_admin.log" 2>&1 ||
	die "store_admin create failed: $(cat "$LOGS/store_admin.log")"
t1=$(now)
echo "   import + create: $(elapsed "$t0" "$t1") s"
rift_args=(-f --state "$STATE")
[ -n "${RIFT_FS_THREADS:-}" ] && rift_args+=(--threads "$RIFT_FS_THREADS")
"$RIFT_BIN/rift-fs" "${rift_args[@]}" bench "$MNT" 2>>"$LOGS/rift-fs.log" &
rift_pid=$!
for ((i = 0; i < 100; i++)); do
	mountpoint -q "$MNT" && break
	kill -0 "$rift_pid" 2>/dev/null || {
		failed=1
		die "rift-fs exited before mounting"
	}
	sleep 0.1
done
mountpoint -q "$MNT" || {
	failed=1
	die "rift-fs did not mount bench at $MNT within 10 s"
}
# Postgres insists on owning its data dir with mode 0700; the branch root is the base's root.
[ "$(stat -c %U:%a "$MNT")" = postgres:700 ] || { chown postgres:postgres "$MNT" && chmod 700 "$MNT"; }
# riftd keeps a branch's pg_wal beside the store and links it from the view (daemon/wal_dir.c),
# so a commit is a native fdatasync; rift-fs alone does not, so the same layout is made here.
# BENCH_WAL_IN_STORE=1 keeps pg_wal in the store (what riftd did before), for comparison.
if [ "${BENCH_WAL_IN_STORE:-0}" != 1 ]; then
	# and its temporary files (sort and hash spills): wal_dir.h's t- directory
	link_out "$MNT" "$TMP/rift-wal" "$TMP/rift-temp"
	echo "   pg_wal and base/pgsql_tmp: beside the store, linked from the branch (as riftd lays them out)"
else
	echo "   pg_wal: in the store (BENCH_WAL_IN_STORE=1, not riftd's layout)"
fi
pg_start "$MNT" "$PORT_RIFT" rift

# ---- pg_test_fsync: the commit path on the mount vs native ----

fsync_us() { # DIR: median of 3 fdatasync usecs/op from pg_test_fsync on a file in DIR
	local i out vals=()
	for ((i = 0; i < 3; i++)); do
		out=$(as_postgres "'$PG_BIN/pg_test_fsync' -s 2 -f '$1/pg_test_fsync.tmp'" 2>&1) ||
			die "pg_test_fsync failed in $1: $out"
		vals+=("$(awk '$1 == "fdatasync" { print $(NF - 1); exit }' <<<"$out")")
	done
	as_postgres "rm -f '$1/pg_test_fsync.tmp'"
	printf '%s\n' "${vals[@]}" | sort -g | sed -n 2p
}
declare -A fsync_side
if [ -x "$PG_BIN/pg_test_fsync" ]; then
	echo "-- pg_test_fsync -s 2 (fdatasync, median of 3), native dir then mount"
	fsync_side[native]=$(fsync_us "$NATIVE_DATA")
	fsync_side[rift]=$(fsync_us "$MNT")
	echo "   native ${fsync_side[native]} us/op, rift ${fsync_side[rift]} us/op"
	# where a commit's fdatasync goes: the branch's pg_wal (beside the store unless
	# BENCH_WAL_IN_STORE=1)
	fsync_side[rift_wal]=$(fsync_us "$MNT/pg_wal/")
	echo "   rift's pg_wal ${fsync_side[rift_wal]} us/op"
fi

# disk used by the store (db/ and the overlay files in blocks/; not the base, the shared,
# read-only starting point) vs data
db_sizes() { # PORT: sum of pg_database_size in bytes
	psql_at "$1" "select sum(pg_database_size(datname)) from pg_database"
}
space_line() { # LABEL
	local store data
	# the branch's WAL counts too, wherever it lives
	# allocated bytes, not apparent sizes: overlay files are sparse
	store=$(du -s -B1 "$STATE/db" "$STATE/blocks" "$TMP/rift-wal" "$TMP/rift-temp" 2>/dev/null | awk '{ s += $1 } END { print s }')
	data=$(db_sizes "$PORT_RIFT")
	awk -v l="$1" -v s="$store" -v d="$data" 'BEGIN {
		printf "   space %-12s store db/+blocks/+WAL %7.1f MiB, pg_database_size sum %7.1f MiB, ratio %.2f\n",
			l, s / 1048576, d / 1048576, (d > 0) ? s / d : 0 }'
}
space_parts() { # where the store's bytes are, and the native cluster's WAL for comparison
	echo "         of which db/ $(du -sh "$STATE/db" | cut -f1), blocks/ $(du -sh "$STATE/blocks" 2>/dev/null | cut -f1), WAL $(du -sh "$TMP/rift-wal" 2>/dev/null | cut -f1), temp $(du -sh "$TMP/rift-temp" 2>/dev/null | cut -f1); native pg_wal $(du -sh "$NATIVE_DATA/pg_wal" | cut -f1)"
}

# ---- pgbench -i on both (timed) ----

# alternating rounds, who goes first alternating too, as for the measured runs; the median
# counts (each round drops and loads the tables again)
declare -A init_s init_list
for ((r = 1; r <= INIT_ROUNDS; r++)); do
	order="native rift"
	((r % 2 == 0)) && order="rift native"
	for side in $order; do
		port_var=PORT_${side^^}
		port=${!port_var}
		echo "-- round $r/$INIT_ROUNDS: pgbench -i -s $SCALE on $side"
		t0=$(now)
		as_postgres "'$PG_BIN/pgbench' -h '$SOCK' -p $port -i -s $SCALE -q postgres" \
			>"$LOGS/init-$side.log" 2>&1 || {
			failed=1
			cat "$LOGS/init-$side.log" >&2
			die "pgbench -i failed on $side"
		}
		t1=$(now)
		init_list[$side]+="$(elapsed "$t0" "$t1") "
		echo "   $(elapsed "$t0" "$t1") s wall; pgbench: $(grep -E '^done in' "$LOGS/init-$side.log" || echo '?')"
	done
done
for side in native rift; do
	# shellcheck disable=SC2086 # word splitting of the space-separated list is intended
	init_s[$side]=$(median ${init_list[$side]})
done

line=$(space_line "after -i")
echo "$line"
space_parts
space_after_init=${line##* }

# ---- measured runs ----

machine_ticks() { # busy and total jiffies across all CPUs
	awk '/^cpu / { busy = $2 + $3 + $4 + $7 + $8 + $9; total = busy + $5 + $6; print busy, total }' /proc/stat
}

declare -A tps_list
results=() # lines: round mode side tps busy% rift-fs-cpu%

run_one() { # SIDE MODE ROUND
	local side=$1 mode=$2 round=$3 port_var port flag="" out tps b0 t0 b1 t1 r0=0 r1=0 busy rcpu
	port_var=PORT_${side^^}
	port=${!port_var}
	[ "$mode" = select ] && flag="-S"
	out=$LOGS/run-$round-$mode-$side.log
	psql_at "$port" "checkpoint" >/dev/null # start each run with the same clean state
	read -r b0 t0 < <(machine_ticks)
	[ "$side" = rift ] && r0=$(cpu_ticks_of "$rift_pid")
	as_postgres "'$PG_BIN/pgbench' $PGBENCH_ARGS $flag -p $port postgres" \
		>"$out" 2>&1 || {
		failed=1
		cat "$out" >&2
		die "pgbench ($mode) failed on $side"
	}
	read -r b1 t1 < <(machine_ticks)
	[ "$side" = rift ] && r1=$(cpu_ticks_of "$rift_pid")
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$out")
	[ -n "$tps" ] || {
		failed=1
		cat "$out" >&2
		die "no tps in pgbench output ($side, $mode)"
	}
	busy=$(awk -v b="$((b1 - b0))" -v t="$((t1 - t0))" 'BEGIN { printf "%.0f", t ? 100 * b / t : 0 }')
	if [ "$side" = rift ]; then
		# rift-fs CPU as a share of one core over the run (200% = both cores of this machine)
		rcpu=$(awk -v r="$((r1 - r0))" -v hz="$CLK_TCK" -v d="$DURATION" \
			'BEGIN { printf "%.0f%%", 100 * r / hz / d }')
	else
		rcpu=-
	fi
	tps_list[$side.$mode]+="$(printf '%.1f' "$tps") "
	results+=("$round $mode $side $tps $busy $rcpu")
	printf '   round %d  %-8s %-6s  tps %10.1f   machine busy %3s%%   rift-fs cpu %s\n' \
		"$round" "$mode" "$side" "$tps" "$busy" "$rcpu"
}

echo "-- measured runs (${DURATION}s each; machine busy = all $cores cores; rift-fs cpu = % of one core)"
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then order="native rift"; else order="rift native"; fi
	for mode in tpcb select; do
		for side in $order; do
			run_one "$side" "$mode" "$r"
		done
	done
done

# ---- summary ----

echo
echo "== summary (scale $SCALE, $CLIENTS clients, $JOBS jobs, ${DURATION}s x $ROUNDS rounds) =="
printf '%-12s %12s %12s %8s %8s  %s\n' mode native rift ratio target verdict
all_met=1
for mode in tpcb select; do
	# shellcheck disable=SC2086 # word splitting of the space-separated lists is intended
	n=$(median ${tps_list[native.$mode]})
	# shellcheck disable=SC2086
	f=$(median ${tps_list[rift.$mode]})
	target=$([ "$mode" = tpcb ] && echo 0.90 || echo 0.95)
	ratio=$(awk -v a="$f" -v b="$n" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }')
	verdict=$(awk -v r="$ratio" -v t="$target" 'BEGIN { v = (r + 0 >= t + 0) ? "met" : "MISSED"; print v }')
	[ "$verdict" = met ] || all_met=0
	label=$([ "$mode" = tpcb ] && echo "TPC-B" || echo "select-only")
	printf '%-12s %12.1f %12.1f %8s %8s  %s\n' "$label" "$n" "$f" "$ratio" ">=$target" "$verdict"
	echo "   all tps: native [${tps_list[native.$mode]% }]  rift [${tps_list[rift.$mode]% }]"
	# ratio of the adjacent native/rift pair in each round: less exposed to slow drifts in load
	echo "   per-round ratios: $(printf '%s\n' "${results[@]}" | awk -v m="$mode" '
		$2 == m { t[$1 "." $3] = $4; if ($1 > n) n = $1 }
		END { for (r = 1; r <= n; r++) printf "%s%.3f", (r > 1 ? " " : ""), t[r ".rift"] / t[r ".native"] }')"
done
line=$(space_line "at the end")
echo "$line"
space_parts
space_end=${line##* }
if [ -n "${fsync_side[rift]:-}" ]; then
	printf '%-12s %11sus %11sus %8s  (target <= 1.30)\n' "fdatasync" "${fsync_side[native]}" \
		"${fsync_side[rift]}" "$(awk -v a="${fsync_side[rift]}" -v b="${fsync_side[native]}" \
		'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')"
	printf '%-12s %11sus %11sus %8s  (a file in pg_wal: the commit path)\n' "fdatasync" \
		"${fsync_side[native]}" "${fsync_side[rift_wal]}" \
		"$(awk -v a="${fsync_side[rift_wal]}" -v b="${fsync_side[native]}" \
			'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')"
fi
printf '%-12s store db/, blocks/ and WAL over pg_database_size: %s after -i, %s at the end (target <= 1.30)\n' \
	"space" "$space_after_init" "$space_end"
init_ratio=$(awk -v a="${init_s[rift]}" -v b="${init_s[native]}" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')
printf '%-12s %11ss %11ss %8s  (median time of %d, lower is better; rift/native; target <= 1.25)\n' \
	"pgbench -i" "${init_s[native]}" "${init_s[rift]}" "$init_ratio" "$INIT_ROUNDS"
echo "   all times: native [${init_list[native]% }]  rift [${init_list[rift]% }]"
echo "disk:        native data dir $(du -sh "$NATIVE_DATA" | cut -f1), rift state dir $(du -sh "$STATE" | cut -f1) (base $(du -sh "$STATE/base" 2>/dev/null | cut -f1 || echo ?))"
echo "load avg:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at the end; well above $cores means other load shared the machine"
# the lower-is-better targets count too: the commit path's fdatasync, space, bulk load
at_most() { # VALUE LIMIT: clears all_met when VALUE is over LIMIT
	awk -v v="$1" -v l="$2" 'BEGIN { exit !(v + 0 <= l + 0) }' || all_met=0
}
if [ -n "${fsync_side[rift_wal]:-}" ]; then
	at_most "$(awk -v a="${fsync_side[rift_wal]}" -v b="${fsync_side[native]}" \
		'BEGIN { printf "%.2f", (b > 0) ? a / b : 99 }')" 1.30
fi
at_most "$space_after_init" 1.30
at_most "$space_end" 1.30
at_most "$init_ratio" 1.25
if [ "$all_met" = 1 ]; then
	echo "result:      all targets met"
else
	echo "result:      target(s) missed (see ratios above)"
fi
if [ "$ROUNDS" -lt 2 ]; then
	echo "note:        1 round only: a smoke run, not a measurement"
fi
