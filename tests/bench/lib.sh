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
