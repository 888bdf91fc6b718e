#!/usr/bin/env bash
# cli_serve_mount.sh — on a --pgdata base: `rift url` names the bootstrap superuser and connects as
# printed; `rift mount` while riftd serves shows the branch's live files read-only to root alone;
# `rift serve --stop` stops riftd and leaves no process, mount or socket behind.
source "$RIFT_TESTLIB"
export PATH=$RIFT_BIN:$PATH
state=$TEST_TMP/state src=$TEST_TMP/src

# a cluster whose bootstrap superuser is "boot"; "postgres" exists too, so only reading oid 10
# (not guessing the usual name) gives "boot"
chown postgres "$TEST_TMP"
as_postgres "$PG_BIN/initdb -D $src -A trust -U boot" >/dev/null
mkdir -p "$TEST_TMP/sock" && chown postgres "$TEST_TMP/sock"
port=$(free_port)
as_postgres "$PG_BIN/pg_ctl -D $src -l $TEST_TMP/src.log -w -o '-p $port -k $TEST_TMP/sock \
	-c listen_addresses=' start" >/dev/null
on_exit "as_postgres '$PG_BIN/pg_ctl -D $src -m immediate -w stop'"
as_postgres "psql -X -q -h $TEST_TMP/sock -p $port -U boot -d postgres -c \
	'create role postgres superuser login; create table marker (x int); insert into marker values (42)'"
as_postgres "$PG_BIN/pg_ctl -D $src -w stop" >/dev/null

expect_status 0 rift --state "$state" init --pgdata "$src"
expect_output 'branch URLs name the bootstrap superuser "boot"'
grep -q '^login_role=boot$' "$state/base.conf" || fail "base.conf: $(cat "$state/base.conf")"

# riftd through `rift serve --background`, on ports and uids of this test's own
ROUTER_PORT=$(free_port)
sed -i -e "s/^listen = 127.0.0.1:6432$/listen = 127.0.0.1:$ROUTER_PORT/" \
	-e "s/^uid_base = 1900000000$/uid_base = $((1900065536 + (RANDOM * 32768 + RANDOM) % 900000 * 256))/" \
	-e 's/^uid_count = 65536$/uid_count = 256/' "$state/rift.conf"
on_exit "stop_riftd_quietly \$(pgrep -xf 'riftd --state $state' || echo none) $state"
expect_status 0 rift --state "$state" serve --background
expect_status 0 rift --state "$state" create feat
url=$(rift --state "$state" url feat)
[ "$url" = "postgres://boot@localhost:$ROUTER_PORT/feat" ] || fail "rift url printed $url"
[ "$(psql -X -At "$url" -c 'select current_user, x from marker')" = "boot|42" ] ||
	fail "the printed URL does not connect as boot"

# mount while serving: only where no other user can change the path (riftd, root, mounts a
# hostile branch's files there: a path another user could redirect would put them anywhere)
safe=$(mktemp -d /mnt/rift-view.XXXXXX) # /mnt and / are root's, 0755
on_exit "umount -l $safe/* 2>/dev/null; rm -rf $safe"
open=$TEST_TMP/open # under /tmp: writable by other users (sticky or not)
mkdir -p "$open/view" && chmod 1777 "$open"
expect_status 1 rift --state "$state" mount feat "$open/view"
expect_output "mount point $open/view: $open is writable by other users; use a directory only root can change"
expect_status 1 rift --state "$state" mount feat /tmp
expect_output 'mount point /tmp: it is writable by other users'
mountpoint -q "$open/view" && fail "mounted under a directory others can write"
mkdir "$safe/theirs" && chown nobody "$safe/theirs" && mkdir "$safe/theirs/view"
expect_status 1 rift --state "$state" mount feat "$safe/theirs/view"
expect_output "$safe/theirs is not owned by root"
mkdir "$safe/real" && ln -s real "$safe/link" && ln -s "$safe/real" "$safe/dirlink" &&
	ln -s "$safe" "$safe/up"
expect_status 1 rift --state "$state" mount feat "$safe/link"
expect_output 'symbolic link'
expect_status 1 rift --state "$state" mount feat "$safe/up/real"
expect_output 'symbolic link'
mountpoint -q "$safe/real" && fail "mounted through a link"
# riftd itself refuses what the CLI would never send: ".." and links (API callers are root too)
mount_api() { curl -s -o "$TEST_TMP/api.json" -w '%{http_code}' --unix-socket "$state/run/riftd.sock" \
	-X POST -H 'Content-Type: application/json' --data "$1" http://rift/v1/branches/feat/mount; }
[ "$(mount_api "{\"path\":\"$safe/real/../real\"}")" = 400 ] || fail "a path with .. was taken"
[ "$(mount_api "{\"path\":\"$safe/dirlink\"}")" = 400 ] || fail "a link was taken: $(cat "$TEST_TMP/api.json")"
mountpoint -q "$safe/real" && fail "mounted through a link"

mnt=$safe/view
mkdir "$mnt"
expect_status 0 rift --state "$state" mount feat "$mnt"
expect_output "mounted read-only at $mnt"
[ "$(cat "$mnt/PG_VERSION")" = 15 ] || fail "the mount does not show the branch's files"
[ -d "$mnt/base" ] || fail "no base/ in the mount"
touch "$mnt/newfile" 2>/dev/null && fail "the mount is writable"
su nobody -s /bin/bash -c "ls $mnt" >/dev/null 2>&1 && fail "user nobody can list the mount"
su nobody -s /bin/bash -c "cat $mnt/PG_VERSION" >/dev/null 2>&1 && fail "nobody reads a file"
grep -E " $mnt .*ro,nosuid,nodev,noexec" /proc/self/mountinfo >/dev/null ||
	fail "mount flags: $(grep " $mnt " /proc/self/mountinfo)"
# a second mount over a busy or non-empty directory is refused with a reason
expect_status 1 rift --state "$state" mount feat "$mnt"
expect_output 'not empty|already a mount point'
# the branch keeps serving while mounted, and stopping it unmounts the view
psql -X -At "$url" -c 'insert into marker values (43)' >/dev/null
# a relative DIR works; unmounted by hand and replaced by another mount, the view's detach
# leaves that other mount alone (it checks the mount's id, and unmounts through it)
mkdir "$safe/other"
(cd "$safe" && expect_status 0 rift --state "$state" mount feat ./other/../other)
mountpoint -q "$safe/other" || fail "the relative mount is not there"
umount "$safe/other" && mount -t tmpfs -o size=1m rift-test "$safe/other"
expect_status 0 rift --state "$state" stop feat
mountpoint -q "$mnt" && fail "stopping the branch left its view mounted at $mnt"
grep -q " $safe/other .* - tmpfs rift-test" /proc/self/mountinfo ||
	fail "stopping the branch unmounted another mount at $safe/other"
umount "$safe/other"
expect_status 0 rift --state "$state" mount feat "$mnt"
mountpoint -q "$mnt" || fail "not mounted again"

# serve --stop: says when done, leaves nothing behind (the view included)
expect_status 0 rift --state "$state" serve --stop
expect_output 'riftd stopped'
pgrep -xf "riftd --state $state" >/dev/null && fail "riftd still runs"
pgrep -f -- "-D $state/mnt/" >/dev/null && fail "a branch server still runs"
grep -q " $state/mnt/" /proc/self/mountinfo && fail "mounts remain: $(grep " $state/" /proc/self/mountinfo)"
mountpoint -q "$mnt" && fail "the rift mount view remains at $mnt"
[ -e "$state/run/riftd.sock" ] && fail "the API socket remains"
expect_status 0 rift --state "$state" serve --stop
expect_output 'not running'

# offline, rift mount still mounts the branch itself (writable), as before
rmdir "$mnt" && mkdir "$mnt"
rift --state "$state" mount feat "$mnt" &
mpid=$!
on_exit "umount -l $mnt; kill $mpid"
for ((i = 0; i < 100; i++)); do mountpoint -q "$mnt" && break; sleep 0.1; done
[ "$(cat "$mnt/PG_VERSION")" = 15 ] || fail "the offline mount does not show the files"
umount "$mnt"
wait "$mpid" || true
