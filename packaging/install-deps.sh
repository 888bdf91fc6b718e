#!/usr/bin/env bash
# install-deps.sh — installs every Debian 12 package rift needs to build, test and run; idempotent.
set -euo pipefail

PACKAGES=(
	build-essential cmake pkg-config git ca-certificates
	clang clang-format libclang-rt-14-dev llvm
	libfuse3-dev fuse3
	librocksdb-dev
	libpq-dev postgresql-15 postgresql-contrib postgresql-client-15
	libssl-dev libcmocka-dev
	libmicrohttpd-dev libjansson-dev libinih-dev libevent-dev libsystemd-dev libcurl4-openssl-dev
	libbpf-dev bpftool
	pgbouncer procps psmisc util-linux curl jq python3 bc
	chromium nodejs python3-prometheus-client
)
# the dashboard's browser test installs playwright-core with npm; a nodejs from elsewhere
# (NodeSource) brings its own npm, which Debian's npm package would conflict with
if ! command -v npm >/dev/null 2>&1; then
	PACKAGES+=(npm)
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: must run as root (it installs Debian packages); try: sudo $0" >&2
	exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'install ok installed' >/dev/null; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps: all ${#PACKAGES[@]} packages already installed"
	exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Debian's postgresql package would start a cluster on 5432; rift runs its own servers.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
echo "install-deps: done"
