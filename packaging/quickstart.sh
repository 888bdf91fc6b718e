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

state=${RIFT_STATE:-/var/lib/rift}
export RIFT_STATE=$state
[ -e "$state/base.conf" ] || rift init
rift serve --background
rift list --json | grep '"name":"first-branch"' >/dev/null || rift create first-branch -q >/dev/null
mkdir -p /usr/local/share/man/man1 /usr/share/bash-completion/completions
install -m 0644 "$src/docs/rift.1" /usr/local/share/man/man1/rift.1
install -m 0644 "$src/packaging/rift.bash" /usr/share/bash-completion/completions/rift
cat <<EOT

rift is running on $state, with the demo base and a branch "first-branch".
Connect:         psql "\$(rift url first-branch)"
Your own branch: rift create feature-x && psql "\$(rift url feature-x)"
See them all:    rift list
Stop riftd:      rift serve --stop   (or install packaging/riftd.service)
EOT
