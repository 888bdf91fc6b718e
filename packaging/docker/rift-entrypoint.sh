#!/usr/bin/env bash
# rift-entrypoint.sh — the container image's entrypoint (packaging/Dockerfile): on first start
# `rift init` from RIFT_UPSTREAM into the volume, then riftd with the router on 6432 and the HTTPS
# API on 8432 (token RIFT_TOKEN). riftd replaces this script, so SIGTERM (docker stop) reaches
# it directly and it stops its servers, mounts and store before exiting.
#
# Environment: RIFT_UPSTREAM (postgres:// URL; unset = the demo base), RIFT_LOGICAL=1 (pg_dump
# instead of pg_basebackup), RIFT_UPSTREAM_PASSWORD_FILE, RIFT_TOKEN (required, >= 16 chars),
# RIFT_DATA (the volume, default /var/lib/rift), RIFT_ROUTER_PORT (6432), RIFT_API_PORT (8432),
# RIFT_SET (more rift.conf settings, "section.key=value" separated by spaces, such as
# "instances.warm=4 instances.idle_timeout=300").
set -euo pipefail

die() {
	echo "rift-entrypoint: $*" >&2
	exit 1
}

data=${RIFT_DATA:-/var/lib/rift}
# the store goes below the volume's root: rift init makes its directory itself, and a mount
# point cannot be replaced
state=$data/store
router_port=${RIFT_ROUTER_PORT:-6432}
api_port=${RIFT_API_PORT:-8432}
[[ "$router_port" =~ ^[0-9]+$ && "$api_port" =~ ^[0-9]+$ ]] || die "ports must be numbers"
[ -n "${RIFT_TOKEN:-}" ] || die "set RIFT_TOKEN to a long random string (the API's bearer token; \
head -c 32 /dev/urandom | base64)"
[ "${#RIFT_TOKEN}" -ge 16 ] || die "RIFT_TOKEN must be at least 16 characters"
[ -c /dev/fuse ] || die "no /dev/fuse: run the container with --device /dev/fuse --cap-add SYS_ADMIN \
(and --security-opt apparmor=unconfined where AppArmor is on)"
# without CAP_SYS_ADMIN riftd still starts and answers its health check, but cannot mount a
# single branch (fusermount3: "Operation not permitted"): say so now instead
capeff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
[[ "$capeff" =~ ^[0-9a-f]+$ ]] && (((16#$capeff >> 21) & 1)) ||
	die "no CAP_SYS_ADMIN, which mounting a branch (FUSE) needs: run the container with \
--cap-add SYS_ADMIN"
mkdir -p "$data"

if [ ! -e "$state/base.conf" ]; then
	if [ -e "$state" ]; then
		# an init killed half-way (rift init removes what it made when it fails by itself)
		echo "rift-entrypoint: $state holds an unfinished init; starting it again" >&2
		rm -rf --one-file-system "$state"
	fi
	args=()
	if [ -n "${RIFT_UPSTREAM:-}" ]; then
		args=(--upstream "$RIFT_UPSTREAM")
		[ "${RIFT_LOGICAL:-0}" = 1 ] && args+=(--logical)
		[ -n "${RIFT_UPSTREAM_PASSWORD_FILE:-}" ] &&
			args+=(--upstream-password-file "$RIFT_UPSTREAM_PASSWORD_FILE")
		echo "rift-entrypoint: first start: copying upstream into $state" >&2
	else
		echo "rift-entrypoint: first start without RIFT_UPSTREAM: the demo base" >&2
	fi
	rift --state "$state" init "${args[@]}"
fi
unset RIFT_UPSTREAM PGPASSWORD # riftd and its servers need neither

# the settings this image owns, set again at every start from the environment
conf=$state/rift.conf
set_key() { # SECTION KEY VALUE
	awk -v s="[$1]" -v k="$2" -v v="$3" '
		/^\[/ { sec = $0 }
		sec == s && $0 ~ "^" k " *=" { print k " = " v; done = 1; next }
		{ print }
		END { if (!done) exit 3 }' "$conf" >"$conf.new" || die "rift.conf has no [$1] $2"
	cat "$conf.new" >"$conf" # keeps the file's owner and mode
	rm -f "$conf.new"
}
(umask 077 && printf '%s\n' "$RIFT_TOKEN" >"$state/api-token")
unset RIFT_TOKEN
set_key router listen "*:$router_port"
set_key api listen "*:$api_port"
set_key api token_file "$state/api-token"
set_key api tls on
for kv in ${RIFT_SET:-}; do
	[[ "$kv" =~ ^([a-z_]+)\.([a-z_]+)=([^[:space:]]*)$ ]] || die "RIFT_SET: \"$kv\" is not section.key=value"
	set_key "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}"
done
echo "rift-entrypoint: router on :$router_port, API on https://<host>:$api_port" >&2
exec riftd --state "$state"
