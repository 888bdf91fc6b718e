#!/usr/bin/env bash
# store_format.sh — stores of older formats (no version; format 2, blocks inside RocksDB) are
# upgraded in place, also after a crash in the middle, and read the same; a newer or damaged
# version is refused with what to do, untouched.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
src=$TEST_TMP/src
mnt=$TEST_TMP/mnt
mkdir -p "$src/sub"
head -c 300000 /dev/urandom >"$src/sub/base-file"
make_store "$state" "$src"
expect_status 0 "$RIFT_BIN/store_admin" "$state" create main
expect_status 0 "$RIFT_BIN/store_admin" "$state" format get
expect_output "^format=3$"

# Data in the branch's own layer, written through the mount like a server would: new blocks,
# a base block changed, zeros that must hide base data; then a child over a frozen layer.
mount_branch "$state" main "$mnt"
head -c 1000000 /dev/urandom >"$TEST_TMP/own"
cp "$TEST_TMP/own" "$mnt/own"
printf 'changed' | dd of="$mnt/sub/base-file" bs=1 seek=8000 conv=notrunc status=none
dd if=/dev/zero of="$mnt/sub/base-file" bs=8192 seek=10 count=3 conv=notrunc status=none
sync "$mnt/own" "$mnt/sub/base-file"
sum_before=$(cat "$mnt/own" "$mnt/sub/base-file" | sha256sum)
unmount_branch "$mnt" "$MOUNT_PID"
expect_status 0 "$RIFT_BIN/store_admin" "$state" create child main
mount_branch "$state" child "$mnt"
head -c 200000 /dev/urandom | dd of="$mnt/own" bs=8192 seek=20 conv=notrunc status=none
sync "$mnt/own"
sum_child=$(cat "$mnt/own" "$mnt/sub/base-file" | sha256sum)
unmount_branch "$mnt" "$MOUNT_PID"
[ -n "$(ls "$state/blocks")" ] || fail "no overlay files were written"
info_before=$("$RIFT_BIN/store_admin" "$state" info main)

sums() { # branch -> the checksum of its two files, read through a mount
	mount_branch "$state" "$1" "$mnt"
	cat "$mnt/own" "$mnt/sub/base-file" | sha256sum
	unmount_branch "$mnt" "$MOUNT_PID"
}
check_same() { # what -> the contents and branch info are as before
	local info
	info=$("$RIFT_BIN/store_admin" "$state" info main 2>"$TEST_TMP/open.log") ||
		fail "$1: the store did not open: $(cat "$TEST_TMP/open.log")"
	[ "$info" = "$info_before" ] || fail "$1: branch info changed: $info"
	expect_status 0 "$RIFT_BIN/store_admin" "$state" format get
	expect_output "^format=3$"
	[ "$(sums main)" = "$sum_before" ] || fail "$1: main's contents differ"
	[ "$(sums child)" = "$sum_child" ] || fail "$1: child's contents differ"
}

opens_saying() { # LOG WHAT PATTERN...: the store opens, and its log says every PATTERN
	local log=$TEST_TMP/$1 what=$2 p
	shift 2
	"$RIFT_BIN/store_admin" "$state" info main >/dev/null 2>"$log" ||
		fail "$what: the store did not open: $(cat "$log")"
	for p in "$@"; do
		grep -q "$p" "$log" || fail "$what: the log does not say \"$p\": $(cat "$log")"
	done
}

# Format 2: the blocks as the code before overlay files kept them, inside RocksDB.
out=$("$RIFT_BIN/store_admin" "$state" format inline) || fail "inline: $out"
grep -q "blocks inlined" <<<"$out" || fail "inline: $out"
[ ! -e "$state/blocks" ] || fail "blocks/ left after inlining"
expect_status 0 "$RIFT_BIN/store_admin" "$state" format get
expect_output "^format=2$"
opens_saying upgrade.log "format 2" "upgrading the store's format 2 -> 3" \
	"blocks moved to overlay files"
check_same "format 2 -> 3"

# A crash in the middle of the move (killed after its first committed batch): the next open
# finishes it. In between, a format-2 rift refuses the store (its version says 3).
expect_status 0 "$RIFT_BIN/store_admin" "$state" format inline
status=0
RIFT_TEST_UPGRADE_KILL_AFTER=7 "$RIFT_BIN/store_admin" "$state" info main \
	>/dev/null 2>"$TEST_TMP/killed.log" || status=$?
[ "$status" -eq 137 ] || fail "the upgrade was not killed midway ($status): $(cat "$TEST_TMP/killed.log")"
expect_status 0 "$RIFT_BIN/store_admin" "$state" format get
expect_output "^format=3$"
opens_saying resume.log "interrupted upgrade" "resuming the upgrade to format 3"
check_same "resumed upgrade"

# Format 1 (no version key, the records of format 2): two steps.
expect_status 0 "$RIFT_BIN/store_admin" "$state" format inline
expect_status 0 "$RIFT_BIN/store_admin" "$state" format none
expect_status 0 "$RIFT_BIN/store_admin" "$state" format get
expect_output "^format=none$"
opens_saying upgrade1.log "format 1" "upgrading the store's format 1 -> 2" \
	"upgrading the store's format 2 -> 3"
check_same "format 1 -> 3"

# A store from a newer rift: refused, with what to do, and left as it was.
expect_status 0 "$RIFT_BIN/store_admin" "$state" format 4
out=$("$RIFT_BIN/store_admin" "$state" info main 2>&1) && fail "a format-4 store opened: $out"
grep -q "format 4, newer than the format 3 this rift reads" <<<"$out" ||
	fail "unhelpful refusal: $out"
grep -q "run that version (or newer) of rift" <<<"$out" || fail "refusal says no remedy: $out"
mkdir -p "$mnt"
"$RIFT_BIN/rift-fs" -f --state "$state" main "$mnt" >"$TEST_TMP/refused.out" 2>&1 &&
	fail "rift-fs mounted a format-4 store"
grep -q "newer than the format 3" "$TEST_TMP/refused.out" ||
	fail "rift-fs did not say why: $(cat "$TEST_TMP/refused.out")"
expect_status 0 "$RIFT_BIN/store_admin" "$state" format get
expect_output "^format=4$"

# A version key that is not a version: refused as damaged, never read as some format.
expect_status 0 "$RIFT_BIN/store_admin" "$state" format garbage
out=$("$RIFT_BIN/store_admin" "$state" info main 2>&1) && fail "a damaged version opened: $out"
grep -q "unreadable format version" <<<"$out" || fail "unhelpful refusal: $out"

# Back at the current format, everything is there.
expect_status 0 "$RIFT_BIN/store_admin" "$state" format 3
[ "$(sums main)" = "$sum_before" ] || fail "contents differ after the refusals"
