#!/usr/bin/env bash
# store_format.sh — a store without a format version (as made before versions) is upgraded in
# place and reads the same; a newer or damaged version is refused with what to do, untouched.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
src=$TEST_TMP/src
mnt=$TEST_TMP/mnt
mkdir -p "$src/sub"
head -c 300000 /dev/urandom >"$src/sub/base-file"
make_store "$state" "$src"
expect_status 0 "$RIFT_BIN/store_admin" "$state" create main
expect_status 0 "$RIFT_BIN/store_admin" "$state" format get
expect_output "^format=2$"

# Data in the branch's own layer, written through the mount like a server would.
mount_branch "$state" main "$mnt"
head -c 1000000 /dev/urandom >"$TEST_TMP/own"
cp "$TEST_TMP/own" "$mnt/own"
printf 'changed' | dd of="$mnt/sub/base-file" bs=1 seek=8000 conv=notrunc status=none
sync "$mnt/own" "$mnt/sub/base-file"
sum_before=$(cat "$mnt/own" "$mnt/sub/base-file" | sha256sum)
unmount_branch "$mnt" "$MOUNT_PID"
info_before=$("$RIFT_BIN/store_admin" "$state" info main)

# The store as the code before format versions left it: no version key.
expect_status 0 "$RIFT_BIN/store_admin" "$state" format none
expect_status 0 "$RIFT_BIN/store_admin" "$state" format get
expect_output "^format=none$"
info_after=$("$RIFT_BIN/store_admin" "$state" info main 2>"$TEST_TMP/upgrade.log") ||
	fail "the old-format store did not open: $(cat "$TEST_TMP/upgrade.log")"
grep -q "upgrading the store's format 1 -> 2" "$TEST_TMP/upgrade.log" ||
	fail "the upgrade did not report its progress: $(cat "$TEST_TMP/upgrade.log")"
[ "$info_after" = "$info_before" ] || fail "branch info changed by the upgrade: $info_after"
expect_status 0 "$RIFT_BIN/store_admin" "$state" format get
expect_output "^format=2$"
mount_branch "$state" main "$mnt"
[ "$(cat "$mnt/own" "$mnt/sub/base-file" | sha256sum)" = "$sum_before" ] ||
	fail "contents differ after the upgrade"
unmount_branch "$mnt" "$MOUNT_PID"

# A store from a newer rift: refused, with what to do, and left as it was.
expect_status 0 "$RIFT_BIN/store_admin" "$state" format 3
out=$("$RIFT_BIN/store_admin" "$state" info main 2>&1) && fail "a format-3 store opened: $out"
grep -q "format 3, newer than the format 2 this rift reads" <<<"$out" ||
	fail "unhelpful refusal: $out"
grep -q "run that version (or newer) of rift" <<<"$out" || fail "refusal says no remedy: $out"
mkdir -p "$mnt"
"$RIFT_BIN/rift-fs" -f --state "$state" main "$mnt" >"$TEST_TMP/refused.out" 2>&1 &&
	fail "rift-fs mounted a format-3 store"
grep -q "newer than the format 2" "$TEST_TMP/refused.out" ||
	fail "rift-fs did not say why: $(cat "$TEST_TMP/refused.out")"
expect_status 0 "$RIFT_BIN/store_admin" "$state" format get
expect_output "^format=3$"

# A version key that is not a version: refused as damaged, never read as some format.
expect_status 0 "$RIFT_BIN/store_admin" "$state" format garbage
out=$("$RIFT_BIN/store_admin" "$state" info main 2>&1) && fail "a damaged version opened: $out"
grep -q "unreadable format version" <<<"$out" || fail "unhelpful refusal: $out"

# Back at the current format, everything is there.
expect_status 0 "$RIFT_BIN/store_admin" "$state" format 2
mount_branch "$state" main "$mnt"
[ "$(cat "$mnt/own" "$mnt/sub/base-file" | sha256sum)" = "$sum_before" ] ||
	fail "contents differ after the refusals"
unmount_branch "$mnt" "$MOUNT_PID"
