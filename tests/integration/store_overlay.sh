#!/usr/bin/env bash
# store_overlay.sh — overlay files (store format 3) as the host sees them: a block a power loss
# took from a file reads as it was before, space of truncated and zeroed blocks comes back, and
# bytes left behind are never read again.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
src=$TEST_TMP/src
mnt=$TEST_TMP/mnt
mkdir -p "$src"
head -c $((64 * 8192)) /dev/urandom >"$src/rel"
make_store "$state" "$src"
expect_status 0 "$RIFT_BIN/store_admin" "$state" create main
head_dir() { # the one layer directory under blocks/ (main's head)
	local d
	d=$(ls "$state/blocks")
	[ "$(wc -w <<<"$d")" = 1 ] || fail "expected one layer under blocks/, got: $d"
	echo "$state/blocks/$d"
}
alloc_kib() { du -k "$1" | cut -f1; }

# 1. A block copied up into the head (block 3 of a base file), then lost as by a power loss
#    before its file was synced (its record survived, its bytes did not: a hole): it reads as
#    the base has it, never as zeros.
mount_branch "$state" main "$mnt"
head -c 8192 /dev/urandom >"$TEST_TMP/new3"
dd if="$TEST_TMP/new3" of="$mnt/rel" bs=8192 seek=3 conv=notrunc status=none
sync "$mnt/rel"
cmp -s <(dd if="$mnt/rel" bs=8192 skip=3 count=1 status=none) "$TEST_TMP/new3" ||
	fail "the written block does not read back"
unmount_branch "$mnt" "$MOUNT_PID"
files=$(ls "$(head_dir)")
[ "$(wc -w <<<"$files")" = 1 ] || fail "expected one overlay file, got: $files"
ovl=$(head_dir)/$files
fallocate --punch-hole --keep-size --offset $((3 * 8192)) --length 8192 "$ovl"
mount_branch "$state" main "$mnt"
cmp -s <(dd if="$mnt/rel" bs=8192 skip=3 count=1 status=none) \
	<(dd if="$src/rel" bs=8192 skip=3 count=1 status=none) ||
	fail "a lost block did not read as the base's"
# a partial write over the lost block merges with the base's bytes, not with zeros
printf 'patch' | dd of="$mnt/rel" bs=1 seek=$((3 * 8192 + 100)) conv=notrunc status=none
sync "$mnt/rel"
want=$(dd if="$src/rel" bs=8192 skip=3 count=1 status=none | { head -c 100; printf 'patch'; tail -c $((8192 - 105)); } | sha256sum)
got=$(dd if="$mnt/rel" bs=8192 skip=3 count=1 status=none | sha256sum)
[ "$got" = "$want" ] || fail "a partial write over a lost block did not merge with the base"

# 2. 4 MiB written to a new file, then truncated to 1 block: the file's space goes.
head -c $((4 << 20)) /dev/urandom >"$mnt/big"
sync "$mnt/big"
ls "$(head_dir)" >"$TEST_TMP/before.ls"
big_ovl=
for f in "$(head_dir)"/*; do
	[ "$(alloc_kib "$f")" -ge 4000 ] && big_ovl=$f
done
[ -n "$big_ovl" ] || fail "no overlay file holds the 4 MiB: $(du -k "$(head_dir)"/*)"
truncate -s 8000 "$mnt/big"
sync "$mnt/big"
[ "$(alloc_kib "$big_ovl")" -le 16 ] || fail "truncate kept $(alloc_kib "$big_ovl") KiB of the file"
# extended again, the cut range reads zeros, never the old bytes left in the file
truncate -s $((4 << 20)) "$mnt/big"
[ "$(tail -c $(((4 << 20) - 8192)) "$mnt/big" | tr -d '\0' | wc -c)" = 0 ] ||
	fail "bytes cut by a truncate came back"

# 3. Zeros written over blocks the head holds: their space goes, they read as zeros.
head -c $((1 << 20)) /dev/urandom >"$mnt/z"
sync "$mnt/z"
z_ovl=
for f in "$(head_dir)"/*; do
	[ "$f" != "$big_ovl" ] && [ "$(alloc_kib "$f")" -ge 1000 ] && z_ovl=$f
done
[ -n "$z_ovl" ] || fail "no overlay file holds z"
dd if=/dev/zero of="$mnt/z" bs=65536 count=8 conv=notrunc status=none
sync "$mnt/z"
[ "$(alloc_kib "$z_ovl")" -le 600 ] || fail "zeroed blocks kept their space: $(alloc_kib "$z_ovl") KiB"
[ "$(head -c $((512 << 10)) "$mnt/z" | tr -d '\0' | wc -c)" = 0 ] || fail "zeroed blocks do not read as zeros"

# 4. Unlinked: the file goes from blocks/ while the branch runs.
rm "$mnt/z"
for ((i = 0; i < 50; i++)); do
	[ -e "$z_ovl" ] || break
	sleep 0.1
done
[ ! -e "$z_ovl" ] || fail "an unlinked file's overlay file is still there"
unmount_branch "$mnt" "$MOUNT_PID"

# 5. A stray file (a crash between the file and its records) goes at the next open.
echo stray >"$(head_dir)/999999"
expect_status 0 "$RIFT_BIN/store_admin" "$state" info main
[ ! -e "$(head_dir)/999999" ] || fail "the sweep at open left a file no record names"
