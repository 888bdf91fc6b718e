#!/usr/bin/env bash
# security_fds.sh — a branch's server inherits nothing of riftd's: with live routed sessions on
# branch a (one spliced in the kernel, one over TLS, one idle), branch b's postmaster and every
# process under it hold no descriptor riftd holds (sockets of a's sessions, /dev/fuse, the
# store's RocksDB files, BPF maps); and every socket riftd holds is close-on-exec.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
# riftd may inherit descriptors from whoever starts it; a server must not get them
exec 9>"$TEST_TMP/inherited"
start_riftd "$state"
exec 9>&-
R() { "$RIFT_BIN/rift" --state "$state" "$@"; }
expect_status 0 R create a
expect_status 0 R create b
url_a=$(R -q url a) || fail "rift url a failed"
url_b=$(R -q url b) || fail "rift url b failed"
pids=()
on_exit 'kill ${pids[*]} 2>/dev/null'

# three sessions on a that stay open: spliced after its first query (older than a second), TLS,
# and one idle with psql waiting on its input
psql -X -At "$url_a?sslmode=disable" -c "select pg_sleep(1.2)" -c "select pg_sleep(300)" \
	>/dev/null 2>&1 &
pids+=($!)
psql -X -At "$url_a?sslmode=require" -c "select pg_sleep(300)" >/dev/null 2>&1 &
pids+=($!)
mkfifo "$TEST_TMP/idle_a" "$TEST_TMP/idle_b"
psql -X -At "$url_a?sslmode=disable" <"$TEST_TMP/idle_a" >/dev/null 2>&1 &
pids+=($!)
exec 7>"$TEST_TMP/idle_a" # psql waits on its input until the test ends
for _ in $(seq 100); do
	n=$(psql -X -At "$url_a?sslmode=disable" -c "select count(*) from pg_stat_activity where
		backend_type = 'client backend' and pid <> pg_backend_pid()")
	[ "$n" -ge 3 ] && break
	sleep 0.1
done
[ "$n" -ge 3 ] || fail "only $n sessions open on a"

# b starts now, while riftd holds a's sessions; one session on b keeps a backend alive
expect_status 0 R start b
psql -X -At "$url_b?sslmode=disable" <"$TEST_TMP/idle_b" >/dev/null 2>&1 &
pids+=($!)
exec 8>"$TEST_TMP/idle_b"
pm=$(pgrep -f -- "-D $state/mnt/b -p" || true)
[ -n "$pm" ] && [ "$(echo "$pm" | wc -l)" = 1 ] || fail "no single postmaster for b: $pm"
for _ in $(seq 100); do
	[ "$(pgrep -P "$pm" -f 'rift-b: rift' | wc -l)" -ge 1 ] && break
	sleep 0.1
done

descendants() {
	local p
	echo "$1"
	for p in $(pgrep -P "$1"); do descendants "$p"; done
}
links_of() { # fds come and go while this reads them
	find "/proc/$1/fd" -mindepth 1 -printf '%l\n' 2>/dev/null || true
}

# what names one object: socket:[inode], pipe:[inode], a path; anon_inode:[eventpoll] and the
# like share one inode for everybody, so they are looked for by kind below (BPF)
links_of "$RIFTD_PID" | grep -vx -e /dev/null -e 'anon_inode:.*' | sort -u >"$TEST_TMP/riftd.fds"
# the comparison means something only if riftd holds what could leak
[ "$(grep -c '^socket:' "$TEST_TMP/riftd.fds")" -ge 6 ] || fail "riftd holds too few sockets"
grep -qx /dev/fuse "$TEST_TMP/riftd.fds" || fail "riftd holds no /dev/fuse"
grep -q "^$state/db/" "$TEST_TMP/riftd.fds" || fail "riftd holds no RocksDB file"
grep -qx "$TEST_TMP/inherited" "$TEST_TMP/riftd.fds" || fail "riftd did not inherit fd 9"

nproc=0
for p in $(descendants "$pm"); do
	links_of "$p" | sort -u >"$TEST_TMP/b.fds" || continue
	# a backend may exit between the listing and here: a missing cmdline is not a failure
	cmd=$( (tr '\0' ' ' <"/proc/$p/cmdline") 2>/dev/null | cut -c1-60) || cmd="exited"
	what="process $p of b ($cmd)"
	shared=$(comm -12 "$TEST_TMP/riftd.fds" "$TEST_TMP/b.fds")
	[ -z "$shared" ] || fail "$what holds riftd's descriptors: $shared"
	! grep -qx /dev/fuse "$TEST_TMP/b.fds" || fail "$what holds /dev/fuse"
	! grep -q -e "^$state/db/" -e '^anon_inode:bpf' "$TEST_TMP/b.fds" ||
		fail "$what holds the store's files or BPF objects"
	nproc=$((nproc + 1))
done
[ "$nproc" -ge 5 ] || fail "only $nproc processes found under b's postmaster"

# every socket riftd holds is close-on-exec (fdinfo flags, octal; O_CLOEXEC is 02000000)
for f in /proc/"$RIFTD_PID"/fd/*; do
	link=$(readlink "$f" 2>/dev/null) || continue
	case $link in socket:*) ;; *) continue ;; esac
	flags=$(awk '/^flags:/ {print $2; exit}' "/proc/$RIFTD_PID/fdinfo/${f##*/}" 2>/dev/null) ||
		continue
	[ -n "$flags" ] || continue
	(((8#$flags & 8#2000000) != 0)) || fail "riftd's fd ${f##*/} ($link) is not close-on-exec"
done

# the first session on a was the spliced kind (its close line says so): it is handed to the
# kernel at the ReadyForQuery of its 1.2 s query, so wait for its second query (and the TLS
# session's) to run; the steps above can take less than that
for _ in $(seq 100); do
	n=$(psql -X -At "$url_a?sslmode=disable" -c "select count(*) from pg_stat_activity where
		query = 'select pg_sleep(300)' and state = 'active'")
	[ "$n" -ge 2 ] && break
	sleep 0.1
done
[ "$n" -ge 2 ] || fail "the first session on a never got to its second query"
kill "${pids[0]}"
wait_log 'kernel-spliced' || fail "the plaintext session on a was not spliced"
exit 0
