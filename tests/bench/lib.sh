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
