# lib.sh — what the benchmarks share: a free port, a riftd conf of their own, --quick and --help.
# Sourced (not run) by the scripts beside it.

# A TCP port free on 127.0.0.1 now.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# CPU time, in clock ticks (CLK_TCK of them per second). machine_busy_ticks: what all cores
# have spent busy since boot (user, nice, system, irq, softirq). cpu_ticks_of PID: what PID,
# all its threads, has run (user and system); 0 once it is gone.
CLK_TCK=$(getconf CLK_TCK)
machine_busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
cpu_ticks_of() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# own_riftd_conf STATE UID_BASE: the store's router on a free port (left in rport) and 4,096 uids
# from UID_BASE. Neither is a speed setting: the default port may be taken, and the default uid
# range belongs to a riftd a user or the README tour may be running on this host (two riftds
# must not share uids). Each benchmark passes a base of its own.
own_riftd_conf() {
	rport=$(port)
	sed -i -e "s/^listen = 127.0.0.1:6432$/listen = 127.0.0.1:$rport/" \
		-e "s/^uid_base = 1900000000$/uid_base = $2/" \
		-e 's/^uid_count = 65536$/uid_count = 4096/' "$1/rift.conf"
}

# bench_args NAME ARGS...: sets quick=1 for --quick, runs the caller's usage for -h/--help and
# exits; anything else is an error naming script NAME.
bench_args() {
	local name=$1 arg
	shift
	quick=0
	for arg in "$@"; do
		case $arg in
		--quick) quick=1 ;;
		-h | --help)
			usage
			exit 0
			;;
		*)
			echo "$name: unknown argument '$arg' (try --help)" >&2
			exit 2
			;;
		esac
	done
}

# median NUMBERS...: the middle one of an odd count, the mean of the middle two of an even count
# (one decimal), nan for none.
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# link_out DATADIR WALDIR TEMPDIR: DATADIR's pg_wal (its files copied) and base/pgsql_tmp become
# links to the plain directories WALDIR and TEMPDIR, postgres's and 0700, as riftd lays out a
# branch's (daemon/wal_dir.c: its b- and t- directories).
link_out() {
	install -d -o postgres -g postgres -m 700 "$2" "$3"
	cp -a "$1/pg_wal/." "$2/"
	chown -R postgres:postgres "$2"
	rm -rf "$1/pg_wal" "$1/base/pgsql_tmp"
	ln -s "$2" "$1/pg_wal"
	ln -s "$3" "$1/base/pgsql_tmp"
}

# The FUSE floor (fuse_floor.sh, fuse_floor_multi.sh): libfuse's passthrough_ll example from
# Debian's libfuse3-dev, with rift-fs's op_init settings added (1 MiB writes and readahead) and
# mounted with rift-fs's cache settings, over plain files: what any FUSE design can reach here.
FLOOR_EXAMPLES=/usr/share/doc/libfuse3-dev/examples
# floor_build DIR: builds DIR/passthrough_ll (never kept: DIR is a temp dir); 1 with the reason
# on stderr when it cannot.
floor_build() {
	[ -f "$FLOOR_EXAMPLES/passthrough_ll.c" ] || {
		echo "$FLOOR_EXAMPLES/passthrough_ll.c missing: apt-get install libfuse3-dev" >&2
		return 1
	}
	sed '/^static void lo_init(/,/^}/ s/^}$/\tconn->max_write = 1u << 20;\n\tconn->max_readahead = 1u << 20;\n}/' \
		"$FLOOR_EXAMPLES/passthrough_ll.c" >"$1/passthrough_ll.c"
	grep -q 'max_readahead = 1u << 20' "$1/passthrough_ll.c" || {
		echo "could not add rift-fs's settings to passthrough_ll.c" >&2
		return 1
	}
	cp "$FLOOR_EXAMPLES/passthrough_helpers.h" "$1/"
	# shellcheck disable=SC2046 # pkg-config's flags are words
	gcc -O2 -w -o "$1/passthrough_ll" "$1/passthrough_ll.c" $(pkg-config --cflags --libs fuse3) -lpthread || {
		echo "could not build passthrough_ll (gcc, pkg-config and libfuse3-dev are needed)" >&2
		return 1
	}
}
# floor_opts SRC: passthrough_ll's -o for a mount of the directory SRC
floor_opts() { echo "allow_other,source=$1,writeback,cache=always,timeout=86400"; }

# seed_cluster DATADIR SOCKDIR SCALE PG_BIN LOG: makes DATADIR (its parent postgres's) a stopped
# cluster holding pgbench's tables at SCALE: the one load every side of a floor benchmark starts
# from a copy of. Its server listens only on a socket in SOCKDIR and is stopped on every path;
# 1 with LOG telling why on failure.
seed_cluster() {
	local d=$1 sock=$2 scale=$3 bin=$4 log=$5 p rc=0
	p=$(port)
	su postgres -s /bin/bash -c "'$bin/initdb' -D '$d' -A trust -U postgres" >"$log" 2>&1 || return 1
	su postgres -s /bin/bash -c "'$bin/pg_ctl' -D '$d' -l '$sock/seed.log' -w -t 120 -o '-p $p -c listen_addresses= -k $sock' start" \
		>>"$log" 2>&1 || return 1
	pgbench -q -i -s "$scale" -h "$sock" -p "$p" -U postgres postgres >>"$log" 2>&1 || rc=1
	su postgres -s /bin/bash -c "'$bin/pg_ctl' -D '$d' -m fast -w -t 60 stop" >>"$log" 2>&1 || rc=1
	return "$rc"
}
