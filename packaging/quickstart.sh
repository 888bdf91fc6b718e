#!/usr/bin/env bash
# quickstart.sh — from a clean clone on Debian 12 (as root): install, build, and start a demo rift.
# Usage: packaging/quickstart.sh    (env RIFT_STATE picks the state directory, default /var/lib/rift)
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$src/build

if [ "$(id -u)" -ne 0 ]; then
	echo "quickstart.sh: run as root: it installs packages and binaries (try: sudo $0)" >&2
	exit 1
fi

"$src/packaging/install-deps.sh"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF
cmake --build "$build" -j "$(nproc)"
cmake --install "$build"
echo "quickstart: installed $(command -v rift) ($(rift --version))"

# Each step below runs only once the command it needs exists in this build.
if rift init --help >/dev/null 2>&1; then
	state=${RIFT_STATE:-/var/lib/rift}
	[ -e "$state/rift.conf" ] || rift --state "$state" init
	rift --state "$state" serve --background
	rift --state "$state" create demo
	echo "quickstart: connect with: psql \"$(rift --state "$state" url demo)\""
else
	echo "quickstart: this build has no 'rift init' yet: the store, riftd, the router and the" \
		"branch commands are still being built (see docs/architecture.md for what exists)."
	echo "quickstart: what works now: rift --help, rift version, rift check-name NAME"
fi
