#!/usr/bin/env bash
# fs_fsx.sh — random writes, truncates, extends, fsyncs and remounts match a plain file exactly.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
mkdir -p "$TEST_TMP/empty" "$TEST_TMP/mnt" "$TEST_TMP/ref"
make_store "$state" "$TEST_TMP/empty"
"$RIFT_BIN/store_admin" "$state" create fsx
on_exit "umount -l $TEST_TMP/mnt 2>/dev/null"
"$RIFT_BIN/fs_fsx" "$state" fsx "$TEST_TMP/mnt" "$TEST_TMP/ref"
