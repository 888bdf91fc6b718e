#!/usr/bin/env bash
# test.sh — from a clean clone on Debian 12 (as root): install dependencies, build, run every test.
# Usage: packaging/test.sh [BUILD_DIR]   (env RIFT_SANITIZE=address,undefined for a sanitizer build)
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
jobs=$(nproc)

if [ "$(id -u)" -ne 0 ]; then
	echo "test.sh: run as root: it installs packages, mounts FUSE filesystems and runs Postgres as" \
		"user postgres (try: sudo $0)" >&2
	exit 1
fi

"$src/packaging/install-deps.sh"
echo "test.sh: dependencies ready after ${SECONDS}s"

cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRIFT_WERROR=ON \
	-DRIFT_SANITIZE="${RIFT_SANITIZE:-}" -DBUILD_TESTING=ON
cmake --build "$build" -j "$jobs"
echo "test.sh: built after ${SECONDS}s"

# ASan's leak checker needs ptrace-free mode under some sandboxes; keep reports fatal.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

cd "$build"
ctest --output-on-failure --timeout 1200 -j "$jobs" </dev/null
