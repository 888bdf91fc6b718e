#!/usr/bin/env bash
# security_symlinks.sh — a branch superuser (a shell as the server's OS user through COPY ... TO
# PROGRAM) plants links where riftd (root) works before the next start: pg_hba.conf.rift,
# pg_hba.conf, postmaster.pid, standby.signal, recovery.signal, pg_replslot and a slot directory.
# Root-owned files outside the store stay byte-identical, none of their content reaches the
# branch, and the branch still starts and answers through the router.
source "$RIFT_TESTLIB"

riftd_with_branch s
mnt=$state/mnt/s

# the victims: root's files outside the store (v600 stands for /etc/shadow)
victim=$TEST_TMP/victim
mkdir -p "$victim/dir/sub" "$victim/slotdir"
echo "victim-644-$RANDOM$RANDOM" >"$victim/v644"
echo "victim-600-$RANDOM$RANDOM" >"$victim/v600"
echo "victim-state-$RANDOM" >"$victim/dir/sub/state"
echo "victim-slot-state-$RANDOM" >"$victim/slotdir/state"
chmod 644 "$victim/v644" "$victim/dir/sub/state" "$victim/slotdir/state"
chmod 600 "$victim/v600"
mkfifo -m 644 "$victim/fifo"
chown -R root:root "$victim"
# a reader stuck on the FIFO (the bug this guards against) is let go at exit
on_exit "timeout 5 bash -c 'exec 3<>$victim/fifo' 2>/dev/null"
snapshot() {
	(cd "$victim" && find . -printf '%p %y %m %U:%G\n' | sort &&
		find . -type f -print0 | sort -z | xargs -0 sha256sum)
}
snapshot >"$TEST_TMP/victim.before"
check_victims() {
	snapshot >"$TEST_TMP/victim.after"
	diff "$TEST_TMP/victim.before" "$TEST_TMP/victim.after" >&2 ||
		fail "after $1: a root-owned file outside the store changed"
}

restart() {
	R stop s >/dev/null || fail "rift stop s failed"
	[ "$(q "select not pg_is_in_recovery()")" = t ] ||
		fail "after $1: the branch did not come back as a primary"
	check_victims "$1"
}

[ "$(q "select rolsuper from pg_roles where rolname = current_user")" = t ] ||
	fail "the demo role is not a superuser; this test needs one"
branch_sh "cp pg_hba.conf hba.saved"

# pg_hba.conf.rift: an older riftd wrote through it (as root) when rift's line was missing
branch_sh "grep -v '^# rift: local trust' pg_hba.conf >h && cat h >pg_hba.conf && rm h &&
	ln -sf $victim/v644 pg_hba.conf.rift"
restart pg_hba.conf.rift

# pg_hba.conf itself: root would read /etc/shadow and write it back into the branch
branch_sh "rm pg_hba.conf && ln -s $victim/v600 pg_hba.conf"
restart pg_hba.conf
wait_log "branch s: its pg_hba.conf is a symbolic link" ||
	fail "no warning naming the branch and its symlinked pg_hba.conf"
[ "$(q "select count(*) from pg_hba_file_rules where auth_method = 'scram-sha-256'")" = 2 ] ||
	fail "a symlinked pg_hba.conf did not give the strict default"
branch_sh "rm pg_hba.conf && cp hba.saved pg_hba.conf"

# standby.signal and recovery.signal: the server would come up read-only (or not at all)
branch_sh "ln -s $victim/v644 standby.signal && ln -s $victim/v600 recovery.signal"
restart standby.signal

# pg_replslot as a link to a root directory (root would delete <dir>/<entry>/state), and one
# slot directory as a link (root would delete <link>/state); a real slot is still dropped
q "select pg_create_physical_replication_slot('inherited', true)" >/dev/null
branch_sh "mv pg_replslot slots.orig && ln -s $victim/dir pg_replslot"
restart "pg_replslot link"
branch_sh "ln -s $victim/slotdir pg_replslot/evil"
restart "slot directory link"
[ "$(q "select count(*) from pg_replication_slots")" = 0 ] || fail "a slot survived a restart"

# postmaster.pid left by a server that died, pointing at a FIFO: riftd never opens it (a read
# would hang the start). The link is planted before the kill: once the postmaster is gone riftd
# may end its orphaned backends, this one included, so the COPY may lose its connection.
q "copy (select 1 where false) to program \$\$pid=\$(head -1 postmaster.pid) && rm -f postmaster.pid &&
	ln -s $victim/fifo postmaster.pid && kill -9 \$pid\$\$" >/dev/null 2>&1 || true
[ "$(readlink "$mnt/postmaster.pid")" = "$victim/fifo" ] ||
	fail "could not plant the postmaster.pid link (readlink: $(readlink "$mnt/postmaster.pid"))"
restart postmaster.pid

# riftd's hba file is outside the branch, and neither ALTER SYSTEM nor postgresql.conf moves it
q "alter system set hba_file = '$victim/v644'" >/dev/null
branch_sh "echo \"hba_file = '$victim/v600'\" >>postgresql.conf"
restart "ALTER SYSTEM hba_file"
[ "$(q "show hba_file")" = "$state/run/hba/s.conf" ] || fail "hba_file is $(q "show hba_file")"
q "alter system reset hba_file" >/dev/null
[ "$(stat -c '%U %a' "$state/run/hba/s.conf")" = "root 640" ] || fail "hba file not root 0640"
[ "$(stat -c '%U %a' "$state/run/hba")" = "root 711" ] || fail "run/hba is not root 0711"

# an edit of the branch's pg_hba.conf takes effect at its next start
branch_sh "sed -i '1i host all nobody 127.0.0.1/32 reject' pg_hba.conf"
restart "pg_hba.conf edit"
[ "$(q "select count(*) from pg_hba_file_rules where user_name = '{nobody}'")" = 1 ] ||
	fail "the branch's own pg_hba.conf was not used"

# nothing of the victims' content reached the branch or riftd's files
for f in v644 v600 dir/sub/state slotdir/state; do
	marker=$(cat "$victim/$f")
	grep -rqF -- "$marker" "$mnt" "$state/run" "$state/log" 2>/dev/null &&
		fail "content of $f shows up in the branch"
done
exit 0
