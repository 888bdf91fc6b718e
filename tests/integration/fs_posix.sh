#!/usr/bin/env bash
# fs_posix.sh — a mounted branch behaves like a local filesystem for every call Postgres makes.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
mkdir -p "$TEST_TMP/src"
echo 15 >"$TEST_TMP/src/PG_VERSION"
make_store "$state" "$TEST_TMP/src"
"$RIFT_BIN/store_admin" "$state" create a
"$RIFT_BIN/store_admin" "$state" create b

# clear errors before anything is mounted
mkdir -p "$TEST_TMP/mnt-x"
expect_status 1 "$RIFT_BIN/rift-fs" -f --state "$state" nope "$TEST_TMP/mnt-x"
expect_output 'branch "nope" does not exist'
expect_status 1 "$RIFT_BIN/rift-fs" -f --state "$TEST_TMP/none" a "$TEST_TMP/mnt-x"
expect_output 'no rift store in'
expect_status 1 "$RIFT_BIN/rift-fs" -f --state "$state" a "$TEST_TMP/missing-dir"
expect_output 'create the directory first'
expect_status 2 "$RIFT_BIN/rift-fs" --state "$state" a
expect_status 0 "$RIFT_BIN/rift-fs" --help

# the background mode reports success and leaves a mount behind that kill removes
expect_status 0 "$RIFT_BIN/rift-fs" --state "$state" a "$TEST_TMP/mnt-x"
bgpid=$(sed -n 's/.*(pid \([0-9]*\);.*/\1/p' "$TEST_TMP/out")
on_exit "kill $bgpid 2>/dev/null; umount -l $TEST_TMP/mnt-x 2>/dev/null"
mountpoint -q "$TEST_TMP/mnt-x" || fail "background rift-fs did not mount"
kill "$bgpid"
for ((i = 0; i < 50; i++)); do mountpoint -q "$TEST_TMP/mnt-x" || break; sleep 0.1; done
mountpoint -q "$TEST_TMP/mnt-x" && fail "SIGTERM did not unmount"
for ((i = 0; i < 100; i++)); do kill -0 "$bgpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$bgpid" 2>/dev/null && fail "background rift-fs did not exit after SIGTERM"

mount_branch "$state" a "$TEST_TMP/a"
pid_a=$MOUNT_PID

# one process owns a store (riftd mounts every branch itself): a second one is refused clearly
mkdir -p "$TEST_TMP/b"
expect_status 1 "$RIFT_BIN/rift-fs" -f --state "$state" b "$TEST_TMP/b"
expect_output 'in use by another process'
mountpoint -q "$TEST_TMP/b" && fail "second mount of one store should not succeed"

"$RIFT_BIN/fs_posix" "$TEST_TMP/a"

# files are created as the caller: the server runs as postgres
chown postgres:postgres "$TEST_TMP/a"
as_postgres "touch $TEST_TMP/a/owned && mkdir $TEST_TMP/a/pgdir"
[ "$(stat -c %U:%G "$TEST_TMP/a/owned")" = postgres:postgres ] || fail "file not owned by postgres"
[ "$(stat -c %U "$TEST_TMP/a/pgdir")" = postgres ] || fail "dir not owned by postgres"
as_postgres "echo nope > $TEST_TMP/a/PG_VERSION" 2>/dev/null && fail "permissions not enforced"

# busy mount point
expect_status 1 "$RIFT_BIN/rift-fs" -f --state "$state" a "$TEST_TMP/a"

root_a=$(stat -c %i "$TEST_TMP/a")
echo "only-in-a" >"$TEST_TMP/a/marker"
unmount_branch "$TEST_TMP/a" "$pid_a"

# remount: everything written is still there; branch b sees none of it; roots differ
mount_branch "$state" a "$TEST_TMP/a"
pid_a=$MOUNT_PID
[ "$(cat "$TEST_TMP/a/marker")" = only-in-a ] || fail "data lost across remount"
[ "$(stat -c %U "$TEST_TMP/a/owned")" = postgres ] || fail "owner lost across remount"
unmount_branch "$TEST_TMP/a" "$pid_a"
mount_branch "$state" b "$TEST_TMP/b"
[ -e "$TEST_TMP/b/marker" ] && fail "a write in branch a shows in branch b"
[ "$(cat "$TEST_TMP/b/PG_VERSION")" = 15 ] || fail "branch b lost the base"
[ "$(stat -c %i "$TEST_TMP/b")" != "$root_a" ] || fail "two branches share a root inode number"
