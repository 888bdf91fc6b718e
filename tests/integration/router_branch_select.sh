#!/usr/bin/env bash
# router_branch_select.sh — choosing the branch without renaming the database: startup options
# (-c rift.branch=X, stripped before the server sees them, the rest passed on intact) and the
# TLS server name's first label; psql's \dt <db>.public.t works with both; db@branch and a plain
# branch name still work; malformed and repeated rift.branch options are refused.
source "$RIFT_TESTLIB"

state=$TEST_TMP/state
expect_status 0 "$RIFT_BIN/rift" --state "$state" init
start_riftd "$state"
rift() { "$RIFT_BIN/rift" --state "$state" "$@"; }
rport=$(router_port "$state")
PGPASSWORD=$(demo_password "$state")
export PGPASSWORD
api "$state" POST /v1/branches '{"name":"feature-x"}'
[ "$API_STATUS" = 201 ] || fail "create feature-x: $(cat "$API_OUT")"
api "$state" POST /v1/branches '{"name":"other"}'
[ "$API_STATUS" = 201 ] || fail "create other: $(cat "$API_OUT")"
base="host=127.0.0.1 port=$rport user=rift"
q() { psql -X -At "$@" 2>&1 || true; }
q "$base dbname=feature-x" -c "create table t(x int); insert into t values (1)" >/dev/null
q "$base dbname=other" -c "create table only_other(x int)" >/dev/null

# --style options: the database is called by its name, the branch rides in options
url=$(rift url feature-x --style options)
case $url in *"/demo?options=-c%20rift.branch%3Dfeature-x") ;; *) fail "options URL: $url" ;; esac
out=$(q "$url" -c "select current_database(), current_setting('rift.branch', true) is null, count(*) from t")
[ "$out" = "demo|t|1" ] || fail "options URL did not reach feature-x's demo database: $out"
out=$(q "$url" -c '\dt demo.public.t')
grep -q '^public|t|table|rift$' <<<"$out" || fail "\\dt demo.public.t through options: $out"
wait_log 'routed to branch feature-x database demo (branch from options)' ||
	fail "no routed line saying the branch came from options"
# the other options reach the server intact, escapes included
out=$(q "$base dbname=demo options='-c work_mem=7MB -c rift.branch=feature-x -c myapp.x=a\\\\ b'" \
	-c "show work_mem" -c "show myapp.x")
[ "$out" = "$(printf '7MB\na b')" ] || fail "options were not passed on intact: $out"
# libpq's PGOPTIONS is the same parameter
out=$(PGOPTIONS="-c rift.branch=other" q "$base dbname=demo" -c "select count(*) from only_other")
[ "$out" = 0 ] || fail "PGOPTIONS rift.branch did not reach branch other: $out"

# refused: repeated, empty, invalid, a mention in another form; each says why, with 22023
for bad in "-c rift.branch=feature-x -c rift.branch=feature-x" "-c rift.branch=" \
	"-c rift.branch=Feature" "-c rift.branchy=x" "-c x=rift.branch"; do
	out=$(psql -X -At "$base dbname=demo sslmode=disable options='$bad'" -c "select 1" 2>&1) &&
		fail "options '$bad' were accepted: $out"
	grep -q 'FATAL:  .*rift.branch' <<<"$out" || fail "options '$bad': $out"
done
out=$(psql -X -At "$base dbname=demo sslmode=disable options='-c rift.branch=nope'" -c "select 1" 2>&1) &&
	fail "an unknown branch in options was accepted"
grep -q 'rift has no branch "nope"' <<<"$out" || fail "unknown branch in options: $out"

# --style sni: the first label of the TLS server name
url=$(rift url feature-x --style sni)
case $url in *"@feature-x.localhost:$rport/demo?hostaddr=127.0.0.1&sslmode=require") ;;
*) fail "sni URL: $url" ;; esac
out=$(q "$url" -c "select current_database(), count(*) from t")
[ "$out" = "demo|1" ] || fail "sni URL did not reach feature-x's demo database: $out"
out=$(q "$url" -c '\dt demo.public.t')
grep -q '^public|t|table|rift$' <<<"$out" || fail "\\dt demo.public.t through SNI: $out"
wait_log 'routed to branch feature-x database demo (branch from the TLS server name)' ||
	fail "no routed line saying the branch came from SNI"
# options beat SNI; db@branch beats SNI; a first label that is no branch leaves dbname to route
out=$(q "$url&options=-c%20rift.branch%3Dother" -c "select count(*) from only_other")
[ "$out" = 0 ] || fail "options did not take precedence over SNI: $out"
out=$(q "host=feature-x.localhost hostaddr=127.0.0.1 port=$rport user=rift sslmode=require dbname=demo@other" \
	-c "select count(*) from only_other")
[ "$out" = 0 ] || fail "db@branch did not take precedence over SNI: $out"
out=$(q "host=nobranch.localhost hostaddr=127.0.0.1 port=$rport user=rift sslmode=require dbname=feature-x" \
	-c "select count(*) from t")
[ "$out" = 1 ] || fail "an SNI label that is no branch broke dbname routing: $out"
# plaintext has no SNI: dbname routes as before
out=$(q "host=localhost port=$rport user=rift sslmode=disable dbname=feature-x" -c "select count(*) from t")
[ "$out" = 1 ] || fail "plain branch name: $out"

# the old forms still work, and the default URL is unchanged
out=$(q "$(rift url feature-x)" -c "select current_database(), count(*) from t")
[ "$out" = "demo|1" ] || fail "rift url (name style): $out"
[ "$(rift url feature-x)" = "$(rift url feature-x --style name)" ] || fail "--style name differs from the default"
out=$(q "$base dbname=demo@feature-x" -c "select count(*) from t")
[ "$out" = 1 ] || fail "db@branch: $out"
expect_status 2 "$RIFT_BIN/rift" --state "$state" url feature-x --style bogus
exit 0
