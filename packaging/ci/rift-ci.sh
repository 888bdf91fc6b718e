#!/usr/bin/env bash
# rift-ci.sh — a branch of the database per pull/merge request, for the GitHub Action (action.yml)
# and the GitLab template (packaging/gitlab/rift.gitlab-ci.yml). Talks to riftd's HTTPS API with
# curl and jq only, so a CI runner needs no rift install.
#
#   rift-ci.sh create    make (or reuse) the branch; print/publish its URL
#   rift-ci.sh cleanup   delete every branch labelled with this pull/merge request
#
# Settings (environment): RIFT_HOST (https://HOST:PORT), RIFT_TOKEN, RIFT_CACERT or RIFT_PIN
# (how riftd's certificate is trusted), RIFT_CI_BRANCH (default pr-<number>), RIFT_CI_FROM,
# RIFT_CI_TTL (90s, 30m, 2h, 7d), RIFT_CI_LABELS (k=v, comma or newline separated),
# RIFT_CI_NEW_PASSWORD (true: the branch's URL opens no other branch; default true),
# RIFT_CI_DOTENV (GitLab: where the dotenv report goes; default rift.env).
# The pull request comes from GITHUB_EVENT_PATH (GitHub) or CI_MERGE_REQUEST_IID (GitLab).
set -euo pipefail

die() {
	echo "rift-ci: $*" >&2
	exit 1
}

mode=${1:-create}
: "${RIFT_HOST:?rift-ci: set RIFT_HOST (the host input of the action) to https://HOST:PORT of riftd}"
: "${RIFT_TOKEN:?rift-ci: set RIFT_TOKEN (the token input of the action) to the API token of riftd}"
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
host=${RIFT_HOST%/}
[[ "$host" == *://* ]] || host=https://$host

# ---- which CI, which pull request ----
platform=plain pr="" project=""
if [ -n "${GITHUB_ACTIONS:-}" ] || [ -n "${GITHUB_EVENT_PATH:-}" ]; then
	platform=github
	if [ -n "${GITHUB_EVENT_PATH:-}" ] && [ -r "$GITHUB_EVENT_PATH" ]; then
		pr=$(jq -r '.pull_request.number // .number // empty' "$GITHUB_EVENT_PATH")
	fi
	project=${GITHUB_REPOSITORY_ID:-}
elif [ -n "${GITLAB_CI:-}" ] || [ -n "${CI_MERGE_REQUEST_IID:-}" ]; then
	platform=gitlab
	pr=${CI_MERGE_REQUEST_IID:-}
	project=${CI_PROJECT_ID:-}
fi
[[ -z "$pr" || "$pr" =~ ^[0-9]+$ ]] || die "pull request number \"$pr\" is not a number"

# ---- calling the API ----
tls=()
[ -n "${RIFT_CACERT:-}" ] && tls+=(--cacert "$RIFT_CACERT")
[ -n "${RIFT_PIN:-}" ] && tls+=(--pinnedpubkey "$RIFT_PIN")
[ -n "${RIFT_PIN:-}" ] && [ -z "${RIFT_CACERT:-}" ] && tls+=(--insecure) # the pin is the trust
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
# api METHOD PATH [JSON]: the body lands in $OUT, the HTTP status is printed
api() {
	local code
	# the token goes in a header read from stdin, never in curl's arguments (ps shows those)
	code=$(printf 'Authorization: Bearer %s\n' "$RIFT_TOKEN" |
		curl -sS -o "$OUT" -w '%{http_code}' "${tls[@]}" -H @- \
			-H 'Content-Type: application/json' -X "$1" ${3:+--data "$3"} \
			--connect-timeout 30 --max-time 600 "$host$2") ||
		die "cannot reach riftd at $host (curl failed; a certificate error means RIFT_CACERT or RIFT_PIN is missing or wrong)"
	[ "$code" = 401 ] && die "riftd at $host refused the token (check the token input / RIFT_TOKEN)"
	echo "$code"
}
api_error() { jq -r '.error.message // empty' "$OUT" 2>/dev/null || cat "$OUT"; }

# labels: the request's, its project's, and the user's
labels=()
[ -n "$pr" ] && labels+=("pr=$pr")
[ -n "$project" ] && labels+=("project=$project")
[ "$platform" != plain ] && labels+=("ci=$platform")
while IFS= read -r l; do
	l=${l//[[:space:]]/}
	[ -n "$l" ] && labels+=("$l")
done < <(printf '%s\n' "${RIFT_CI_LABELS:-}" | tr ',' '\n')

# ---- cleanup: every branch of this pull request (and project), nothing else ----
if [ "$mode" = cleanup ]; then
	[ -n "$pr" ] || die "cleanup needs the pull request (GITHUB_EVENT_PATH of a pull_request event, or CI_MERGE_REQUEST_IID)"
	query="?label=pr=$pr"
	[ -n "$project" ] && query+="&label=project=$project"
	[ "$platform" != plain ] && query+="&label=ci=$platform"
	code=$(api GET "/v1/branches$query")
	[ "$code" = 200 ] || die "cannot list branches: $(api_error)"
	mapfile -t names < <(jq -r '.branches[].name' "$OUT")
	left=("${names[@]}")
	# children before parents: a refused delete (409) is retried after the others
	for _ in 1 2 3 4 5 6 7 8; do
		next=()
		for n in "${left[@]}"; do
			code=$(api DELETE "/v1/branches/$n")
			case $code in
			200 | 404) echo "rift-ci: deleted branch $n" ;;
			409) next+=("$n") ;;
			*) die "cannot delete branch $n: $(api_error)" ;;
			esac
		done
		left=("${next[@]}")
		[ "${#left[@]}" -eq 0 ] && break
	done
	[ "${#left[@]}" -eq 0 ] || die "branches ${left[*]} still have children labelled otherwise"
	echo "rift-ci: ${#names[@]} branch(es) of pull request $pr deleted"
	exit 0
fi
[ "$mode" = create ] || die "unknown mode \"$mode\" (create or cleanup)"

# ---- create (or reuse) the branch ----
branch=${RIFT_CI_BRANCH:-}
if [ -z "$branch" ]; then
	[ -n "$pr" ] || die "no branch name: set the branch input (RIFT_CI_BRANCH), or run on a pull/merge request"
	branch=pr-$pr
fi
ttl_s=""
if [ -n "${RIFT_CI_TTL:-}" ]; then
	[[ "$RIFT_CI_TTL" =~ ^([0-9]+)([smhd]?)$ ]] || die "ttl \"$RIFT_CI_TTL\" is not like 90s, 30m, 2h or 7d"
	case ${BASH_REMATCH[2]} in
	m) ttl_s=$((BASH_REMATCH[1] * 60)) ;;
	h) ttl_s=$((BASH_REMATCH[1] * 3600)) ;;
	d) ttl_s=$((BASH_REMATCH[1] * 86400)) ;;
	*) ttl_s=${BASH_REMATCH[1]} ;;
	esac
fi
body=$(jq -nc --arg name "$branch" --arg from "${RIFT_CI_FROM:-}" --arg ttl "$ttl_s" \
	--argjson pw "$([ "${RIFT_CI_NEW_PASSWORD:-true}" = true ] && echo true || echo false)" \
	--args '{name: $name, new_password: $pw,
		labels: ($ARGS.positional | map(split("=") | {(.[0]): (.[1:] | join("="))}) | add // {})}
		+ (if $from != "" then {from: $from} else {} end)
		+ (if $ttl != "" then {ttl_seconds: ($ttl | tonumber)} else {} end)' "${labels[@]}")
code=$(api POST /v1/branches "$body")
if [ "$code" = 409 ] && api_error | grep 'already exists' >/dev/null; then
	echo "rift-ci: branch $branch exists (a re-run): using it as it is" >&2
elif [ "$code" != 201 ]; then
	die "cannot create branch $branch: $(api_error)"
else
	echo "rift-ci: created branch $branch" >&2
fi
code=$(api GET "/v1/branches/$branch/connection")
[ "$code" = 200 ] || die "cannot read how to connect to $branch: $(api_error)"
hostname=${host#*://}
hostname=${hostname%%/*}
if [[ "$hostname" == \[* ]]; then hostname=${hostname%%]*}]; else hostname=${hostname%%:*}; fi
url=$(jq -r --arg h "$hostname" '
	def enc: @uri;
	"postgres://"
	+ (if .user then (.user | enc) + (if .password then ":" + (.password | enc) else "" end) + "@" else "" end)
	+ $h + ":" + (.router_port | tostring) + "/" + .name' "$OUT")
password=$(jq -r '.password // empty' "$OUT")

case $platform in
github)
	# masked before it is written anywhere the log could show
	[ -n "$password" ] && echo "::add-mask::$password"
	echo "::add-mask::$url"
	if [ -n "${GITHUB_OUTPUT:-}" ]; then
		{
			echo "database-url=$url"
			echo "branch=$branch"
		} >>"$GITHUB_OUTPUT"
	fi
	;;
gitlab)
	# a dotenv report: later jobs of the pipeline get DATABASE_URL and RIFT_BRANCH
	dotenv=${RIFT_CI_DOTENV:-rift.env}
	(umask 077 && printf 'DATABASE_URL=%s\nRIFT_BRANCH=%s\n' "$url" "$branch" >"$dotenv")
	;;
*)
	printf 'DATABASE_URL=%q\nRIFT_BRANCH=%q\n' "$url" "$branch"
	;;
esac
echo "rift-ci: branch $branch ready" >&2
