#!/usr/bin/env bash
# deb_package.sh — `cpack -G DEB` of this build: its control data and file list, that apt can
# install it here, and the README tour run with the binaries installed into a throwaway root.
source "$RIFT_TESTLIB"
build=$(cd "$RIFT_BIN/.." && pwd)
(cd "$build" && cpack -G DEB -B "$TEST_TMP/pkg" >"$TEST_TMP/cpack.log" 2>&1) ||
	{ cat "$TEST_TMP/cpack.log" >&2; fail "cpack failed"; }
deb=$(ls "$TEST_TMP"/pkg/rift_*_amd64.deb)
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")

# control: the Debian packages rift needs at run time
depends=$(dpkg-deb -f "$deb" Depends)
for p in postgresql-15 postgresql-client-15 fuse3 libfuse3-3 librocksdb libpq5 libmicrohttpd12 \
	libcurl4 libjansson4 libinih1 libevent-2.1-7 libssl3; do
	[[ "$depends" == *"$p"* ]] || fail "Depends lacks $p: $depends"
done
[ "$(dpkg-deb -f "$deb" Package)" = rift ] || fail "package name"
# files: binaries, unit, man page, completion, docs, the CI script
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$TEST_TMP/files"
for f in bin/rift bin/riftd bin/rift-fs lib/systemd/system/riftd.service share/man/man1/rift.1 \
	share/bash-completion/completions/rift share/doc/rift/README.md share/doc/rift/docs/ci.md \
	share/rift/rift-ci.sh; do
	grep -qx "$prefix/$f" "$TEST_TMP/files" || fail "the package has no $prefix/$f"
done
grep -Ev "^$prefix/|^/$|^/usr/$" "$TEST_TMP/files" && fail "files outside $prefix"
# apt resolves every dependency from Debian's packages (all present here)
apt-get install --simulate "$deb" >"$TEST_TMP/apt.log" 2>&1 || { cat "$TEST_TMP/apt.log" >&2; fail "apt cannot install it"; }
grep -q '^Inst rift ' "$TEST_TMP/apt.log" || fail "apt would not install rift: $(cat "$TEST_TMP/apt.log")"

# install into a throwaway root with dpkg itself
root=$TEST_TMP/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
: >"$root/var/lib/dpkg/status"
dpkg --root="$root" --force-depends --force-script-chrootless -i "$deb" >"$TEST_TMP/dpkg.log" 2>&1 ||
	{ cat "$TEST_TMP/dpkg.log" >&2; fail "dpkg -i into $root failed"; }
dpkg --root="$root" -s rift | grep '^Status: install ok installed' >/dev/null || fail "dpkg does not list rift as installed"
bin=$root$prefix/bin
grep -q "^ExecStart=$prefix/bin/riftd " "$root$prefix/lib/systemd/system/riftd.service" ||
	fail "riftd.service does not start $prefix/bin/riftd"
man -l "$root$prefix/share/man/man1/rift.1" 2>/dev/null | grep 'serve' >/dev/null || fail "the man page does not render"
bash -n "$root$prefix/share/bash-completion/completions/rift" || fail "the completion script"

# the README tour with the installed binaries (rift serve runs the riftd beside it)
export RIFT_STATE=$TEST_TMP/state
"$bin/rift" init -q
ROUTER_PORT=$(free_port)
sed -i -e "s/^listen = 127.0.0.1:6432$/listen = 127.0.0.1:$ROUTER_PORT/" \
	-e "s/^uid_base = 1900000000$/uid_base = $((1900065536 + (RANDOM * 32768 + RANDOM) % 900000 * 256))/" \
	-e 's/^uid_count = 65536$/uid_count = 256/' "$RIFT_STATE/rift.conf"
on_exit "'$bin/rift' serve --stop; stop_riftd_quietly none $RIFT_STATE"
"$bin/rift" serve --background
pgrep -xf "$bin/riftd --state $RIFT_STATE" >/dev/null ||
	pgrep -f "riftd --state $RIFT_STATE" | xargs -r -I{} readlink /proc/{}/exe | grep -x "$bin/riftd" >/dev/null ||
	fail "rift serve did not run the installed riftd"
"$bin/rift" create feature-auth >/dev/null
[ "$(psql -X -At "$("$bin/rift" url feature-auth)" -c 'select count(*) from products')" = 200 ] ||
	fail "the tour's psql through the router"
"$bin/rift" psql feature-auth -- -c 'create table t (x int)' >/dev/null
"$bin/rift" list | grep '^feature-auth ' >/dev/null || fail "rift list"
"$bin/rift" delete feature-auth >/dev/null
expect_status 0 "$bin/rift" serve --stop
expect_output 'riftd stopped'
