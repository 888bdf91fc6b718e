#!/usr/bin/env bash
# init_races.sh — the postgres user (any branch superuser) cannot, while `rift init` runs, make
# root write or chmod outside the new store, nor keep a descriptor that writes the base later.
source "$RIFT_TESTLIB"
rift="$RIFT_BIN/rift"
chown postgres "$TEST_TMP"
stop=$TEST_TMP/stop # the test tells the attacker loops to end by creating it

# ---- 1. swapping a directory root just made for a link to a root-only directory ----
src=$TEST_TMP/src
as_postgres "$PG_BIN/initdb -D $src -A trust -U postgres" >/dev/null
# a directory with many files keeps root busy inside it: a wide window for the swap. Fifos
# among them (which rift skips) make the swap land mostly between two files, where it does
# not just break the copy but sends the next files into the victim.
as_postgres "mkdir $src/zz && cd $src/zz && for i in \$(seq 5000); do : > f\$i; done &&
	seq -f p%g 20000 | xargs mkfifo"
victim=$TEST_TMP/victim
mkdir "$victim" && chmod 0711 "$victim" # root's; only root may create files in it

# As postgres: wait for <state>/staging/zz (or work/zz) to appear and exchange it atomically
# (renameat2 RENAME_EXCHANGE) with a link to the victim, so that root's further writes "into
# zz" land there. Both exist at every instant, as in a careful real attack.
attack_swap() {
	local state=$1
	as_postgres "perl -e '
		require \"syscall.ph\";
		my (\$v, \$stop, \$log) = (\"$victim\", \"$stop\", \"$TEST_TMP/swapped.log\");
		my @d = (\"$state/staging/zz\", \"$state/work/zz\");
		my \$end = time + 120;
		while (! -e \$stop && time < \$end) {
			for my \$d (@d) {
				next unless -d \$d && ! -l \$d;
				symlink(\$v, \"\$d.l\");
				# renameat2(AT_FDCWD, d, AT_FDCWD, d.l, RENAME_EXCHANGE)
				next if syscall(&SYS_renameat2, -100, \$d, -100, \"\$d.l\", 2) != 0;
				open(my \$f, \">>\", \$log); print \$f \"swapped \$d\\n\";
			}
		}'" &
	ATTACKER=$!
	on_exit "touch $stop; kill $ATTACKER 2>/dev/null"
}

failed_inits=0
for attempt in 1 2 3 4 5 6 7 8; do
	rm -f "$stop"
	state=$TEST_TMP/state$attempt
	attack_swap "$state"
	"$rift" --state "$state" init --pgdata "$src" >"$TEST_TMP/init$attempt.out" 2>&1 || true
	touch "$stop"
	wait "$ATTACKER" || true
	found=$(find "$victim" -mindepth 1 | wc -l)
	[ "$found" = 0 ] ||
		fail "attempt $attempt: root created $found entries in the root-only $victim through a link the postgres user swapped in"
	[ "$(stat -c %a "$victim")" = 711 ] ||
		fail "attempt $attempt: root chmodded $victim through the swapped link (now $(stat -c %a "$victim"))"
	# without the fix the swap may also just break the copy; try again to let it land
	if ! grep -q 'store ready' "$TEST_TMP/init$attempt.out"; then
		failed_inits=$((failed_inits + 1))
		continue
	fi
	[ "$(find "$state/base/1/zz" -type f | wc -l)" = 5000 ] || fail "attempt $attempt: the base lacks zz's files"
	[ "$(stat -c %U:%a "$state/base/1")" = root:700 ] || fail "the base is not root's alone on disk"
	[ -z "$(find "$state/base/1" ! -user root)" ] || fail "the base holds files that are not root's"
done
[ "$failed_inits" = 0 ] || fail "$failed_inits of 8 inits failed, the first with: $(tail -1 "$TEST_TMP/init1.out")"

# ---- 2. a descriptor opened during init must not reach the imported base ----
# hold STATE: as postgres, open postgresql.conf read-write as soon as a tool of init writes it,
# wait for init to finish, then overwrite its first line in place and put its mtime back (so
# that even the store's size/mtime/inode check cannot tell). Sets HOLDER.
hold() {
	local state=$1
	rm -f "$stop" "$TEST_TMP/held.log"
	as_postgres "
		end=\$((SECONDS + 120))
		f=
		while [ -z \"\$f\" ] && [ ! -e $stop ] && [ \$SECONDS -lt \$end ]; do
			for c in $state/work/postgresql.conf $state/staging/postgresql.conf; do
				[ -f \$c ] && exec 3<>\$c && f=\$c && break
			done
		done
		[ -n \"\$f\" ] || exit 1
		echo opened >$TEST_TMP/held.log
		while [ ! -e $state/base.conf ] && [ ! -e $stop ]; do sleep 0.05; done
		t=\$(stat -L -c %y /proc/self/fd/3)
		printf 'work_mem=77MB\n#' >&3 && touch -m -d \"\$t\" /proc/self/fd/3 &&
			echo written >>$TEST_TMP/held.log" &
	HOLDER=$!
	on_exit "touch $stop; kill $HOLDER 2>/dev/null"
}

# the holder wrote through its descriptor, and base/1 does not show it
check_held() {
	local state=$1 mode=$2
	wait "$HOLDER" || fail "$mode: the holder could not open postgresql.conf during init"
	grep -q written "$TEST_TMP/held.log" || fail "$mode: the holder could not write through its descriptor"
	grep -q 'work_mem=77MB' "$state/base/1/postgresql.conf" &&
		fail "$mode: a descriptor held from init changed base/1/postgresql.conf after init"
	return 0
}

# physical: pg_basebackup from a small upstream over its unix socket
up=$TEST_TMP/upstream
up_port=$(free_port)
as_postgres "$PG_BIN/initdb -D $up -A trust -U postgres" >/dev/null
pg_start "$up" "$up_port"
state=$TEST_TMP/physical
hold "$state"
expect_status 0 "$rift" --state "$state" init --upstream \
	"host=$TEST_TMP/sock port=$up_port user=postgres dbname=postgres"
check_held "$state" physical

state=$TEST_TMP/demo
hold "$state"
expect_status 0 "$rift" --state "$state" init
check_held "$state" demo
start_riftd "$state"
api "$state" POST /v1/branches '{"name":"fresh"}'
[ "$API_STATUS" = 201 ] || fail "create failed: $(cat "$API_OUT")"
api "$state" POST /v1/branches/fresh/start
[ "$API_STATUS" = 200 ] || fail "start failed: $(cat "$API_OUT")"
port=$(api_field .port)
[ "$(demo_psql "$state" "$port" "show work_mem")" != 77MB ] ||
	fail "a new branch sees what a descriptor held from init wrote into the base"
# the server runs as a uid of its own; its mount shows the base's files as that uid's
server_uid=$(ps -o uid= -p "$(pgrep -f -- "-D $state/mnt/fresh" | head -1)" | tr -d ' ')
[ -n "$server_uid" ] && [ "$(stat -c %u "$state/mnt/fresh/postgresql.conf")" = "$server_uid" ] ||
	fail "the branch does not show the base's files as the server user's"
echo "init_races: ok"
