#!/usr/bin/env bash
# security_nproc.sh — a branch superuser's fork bomb (COPY ... TO PROGRAM) stops at [instances]
# max_processes tasks of the branch's uid; the other branch and riftd keep working, and the
# processes go with the branch's stop.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
"$RIFT_BIN/rift" --state "$state" init >/dev/null || fail "rift init failed"
grep -q '^max_processes = 256$' "$state/rift.conf" || fail "rift.conf lacks max_processes = 256"
set_conf "$state" max_processes 64
start_riftd "$state"
rift() { "$RIFT_BIN/rift" --state "$state" "$@"; }
for b in bomb other; do
	rift create "$b" -q || fail "rift create $b failed"
	psql -X -Atc 'select 1' "$(rift url "$b")" >/dev/null || fail "$b does not answer"
done
uid=$(stat -c %u "$state/run/pg/bomb") # its socket directory is its server's uid's
[ "$uid" -ge 1000 ] || fail "bomb's server runs as uid $uid, not a branch uid of its own"
tasks() { ps -L -u "$1" --no-headers | wc -l; }

# 300 sleeps in the background, as the server's uid; the shell's forks fail at the limit
psql -X -q "$(rift url bomb)" -c "copy (select 1 where false) to program
	'for i in \$(seq 300); do sleep 600 & done 2>/dev/null; exit 0'" 2>"$TEST_TMP/bomb.err" || true
n=$(tasks "$uid")
echo "bomb's uid has $n tasks after forking 300 sleeps (max_processes = 64)"
[ "$n" -le 64 ] || fail "bomb's uid has $n tasks, over max_processes = 64"
[ "$n" -ge 20 ] || fail "bomb's uid has only $n tasks: the sleeps did not run at all"
grep -q 'Max processes *64 *64' "/proc/$(pgrep -u "$uid" -x sleep | head -1)/limits" ||
	fail "a sleep of bomb's does not carry the hard limit of 64"

# the other branch still takes new sessions and riftd answers
for i in 1 2 3; do
	psql -X -Atc 'select 1' "$(rift url other)" >/dev/null || fail "other does not answer under bomb's fork bomb"
done
rift list >/dev/null || fail "rift list failed under bomb's fork bomb"

# the stop ends every task of the uid
rift stop bomb >/dev/null || fail "rift stop bomb failed"
for ((i = 0; i < 100; i++)); do
	[ "$(tasks "$uid")" -eq 0 ] && break
	sleep 0.1
done
[ "$(tasks "$uid")" -eq 0 ] || fail "$(tasks "$uid") tasks of bomb's uid outlived its stop"
exit 0
