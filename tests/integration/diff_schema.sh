#!/usr/bin/env bash
# diff_schema.sh — `rift diff`: every kind of schema change is reported, and `--sql` applied to the
# other side makes `pg_dump --schema-only` of both equal; an untouched database is not dumped, a
# renamed owner is still seen; a branch against itself, unknown names.
source "$RIFT_TESTLIB"
export RIFT_STATE=$TEST_TMP/state PATH=$RIFT_BIN:$PATH

rift init >/dev/null || fail "rift init failed"
start_riftd "$RIFT_STATE"
rift create feat >/dev/null || fail "create feat"
rift create copy >/dev/null || fail "create copy"
run_sql() { # URL FILE
	psql -X -q -v ON_ERROR_STOP=1 "$1" -f "$2" >>"$TEST_TMP/psql.out" 2>&1 ||
		fail "psql -f $2 failed: $(tail -5 "$TEST_TMP/psql.out")"
}

# one change of every kind: tables, columns (add, drop, type, default, not null), indexes,
# constraints (primary, unique, check, foreign), views, functions, types (enum, composite,
# domain), sequences, extensions, grants, comments, triggers
cat >"$TEST_TMP/migration.sql" <<'EOF'
create extension citext;
create type mood as enum ('happy', 'sad');
create type pair as (a int, b text);
create domain positive as int check (value > 0);
create sequence invoice_no start 1000 increment 5;
alter sequence orders_id_seq increment by 2;
create table invoices (
  id int primary key default nextval('invoice_no'),
  order_id int not null references orders(id),
  amount numeric(12,2) not null check (amount >= 0),
  note citext,
  feeling mood default 'happy',
  qty positive
);
create unique index invoices_order on invoices (order_id);
alter table customers add column phone text;
alter table customers drop column email;
alter table products alter column price type numeric(12,3);
alter table products alter column name drop not null;
alter table products alter column price set default 1.5;
alter table orders add constraint big_order check (quantity < 1000);
drop index orders_customer_id_idx;
create index products_name on products (name);
create view big_orders as select id, quantity from orders where quantity > 3;
create function order_total(o int) returns numeric language sql stable
  as $$ select quantity * 1.0 from orders where id = o $$;
create function touch() returns trigger language plpgsql
  as $$ begin new.note := lower(new.note); return new; end $$;
create trigger invoices_touch before insert on invoices for each row execute function touch();
comment on table invoices is 'one per order';
grant select on invoices to public;
revoke all on products from public;
grant select, update on products to public;
EOF
run_sql "$(rift url feat)" "$TEST_TMP/migration.sql"

rift --json diff feat copy >"$TEST_TMP/d.json" || fail "rift diff feat copy failed: $(cat "$TEST_TMP/d.json")"
db='.databases[] | select(.name == "demo")'
kinds() { jq -r "$db | .schema.$1[] | .kind + \" \" + .name" "$TEST_TMP/d.json" | sort; }
kinds added >"$TEST_TMP/added"
kinds changed >"$TEST_TMP/changed"
kinds removed >"$TEST_TMP/removed"
for want in "extension citext" "type mood" "type pair" "domain positive" "sequence invoice_no" \
	"table invoices" "index invoices_order" "constraint invoices invoices_pkey" \
	"fk constraint invoices invoices_order_id_fkey" "index products_name" "view big_orders" \
	"function order_total(integer)" "function touch()" "trigger invoices invoices_touch" \
	"comment TABLE invoices" "acl TABLE invoices"; do
	grep -qxF "$want" "$TEST_TMP/added" || fail "added: no \"$want\" in: $(cat "$TEST_TMP/added")"
done
for want in "table customers" "table products" "table orders" "sequence orders_id_seq"; do
	grep -qxF "$want" "$TEST_TMP/changed" || fail "changed: no \"$want\" in: $(cat "$TEST_TMP/changed")"
done
grep -qxF "index orders_customer_id_idx" "$TEST_TMP/removed" || fail "removed: $(cat "$TEST_TMP/removed")"
grep -qxF "constraint customers customers_email_key" "$TEST_TMP/removed" ||
	fail "the unique constraint that went with email is not removed: $(cat "$TEST_TMP/removed")"
grep -q "^acl TABLE products" "$TEST_TMP/added" "$TEST_TMP/changed" || fail "products' grants not reported"

# the readable summary names them too
rift diff feat copy >"$TEST_TMP/human" || fail "rift diff (text) failed"
grep -q '^database demo: schema [0-9]* added, [0-9]* removed, [0-9]* changed' "$TEST_TMP/human" ||
	fail "summary line: $(cat "$TEST_TMP/human")"
grep -q '^    + table public.invoices$' "$TEST_TMP/human" || fail "text: $(cat "$TEST_TMP/human")"

# --sql turns copy into feat: afterwards their schema dumps are equal
rift diff feat copy --sql >"$TEST_TMP/to_feat.sql" || fail "rift diff --sql failed"
run_sql "$(rift url copy)" "$TEST_TMP/to_feat.sql"
dump() { pg_dump --schema-only "$(rift url "$1")" | grep -v -e '^-- Dumped' -e '^\\restrict' -e '^\\unrestrict'; }
dump feat >"$TEST_TMP/feat.sql" || fail "pg_dump feat"
dump copy >"$TEST_TMP/copy.sql" || fail "pg_dump copy"
diff -u "$TEST_TMP/copy.sql" "$TEST_TMP/feat.sql" >"$TEST_TMP/dumps.diff" ||
	fail "schemas differ after --sql: $(head -60 "$TEST_TMP/dumps.diff"; echo ----; cat "$TEST_TMP/to_feat.sql")"
rift --json diff feat copy >"$TEST_TMP/d2.json" || fail "second diff"
jq -e "$db | .schema | (.added + .removed + .changed) | length == 0" "$TEST_TMP/d2.json" >/dev/null ||
	fail "still different: $(jq -c "$db | .schema" "$TEST_TMP/d2.json")"

# and the reverse direction undoes it on a fresh branch of main
rift create back >/dev/null || fail "create back"
run_sql "$(rift url back)" "$TEST_TMP/migration.sql"
rift diff main back --sql >"$TEST_TMP/to_main.sql" || fail "rift diff main back --sql"
run_sql "$(rift url back)" "$TEST_TMP/to_main.sql"
dump main >"$TEST_TMP/main.sql" && dump back >"$TEST_TMP/back.sql" || fail "pg_dump main/back"
diff -u "$TEST_TMP/main.sql" "$TEST_TMP/back.sql" >"$TEST_TMP/dumps2.diff" ||
	fail "reverse --sql left differences: $(head -60 "$TEST_TMP/dumps2.diff"; echo ----; cat "$TEST_TMP/to_main.sql")"

# the store stands for the schema too: a database neither side migrated is not dumped (the
# answer is still "no change"); a role renamed, which only a shared catalog holds but the dump's
# OWNER TO lines name, is still found. calm0 owns a table by another role, frozen and written
# out (so reading its catalogs in a child dirties no page), then stops for calm to be made.
rift create calm0 >/dev/null || fail "create calm0"
psql -X -q -v ON_ERROR_STOP=1 "$(rift url calm0)" >>"$TEST_TMP/psql.out" 2>&1 <<'EOF' || fail "calm0: $(tail -3 "$TEST_TMP/psql.out")"
create role owner2;
create table owned (id int);
alter table owned owner to owner2;
vacuum (freeze);
checkpoint;
EOF
rift stop calm0 >/dev/null || fail "stop calm0"
rift create calm --from calm0 >/dev/null || fail "create calm"
psql -X -q "$(rift url calm)" -c 'select count(*) from owned' >/dev/null || fail "calm does not answer"
rift --json diff calm >"$TEST_TMP/calm.json" || fail "rift diff calm: $(cat "$TEST_TMP/calm.json")"
jq -e "$db | .scan.schema_dumped == false and (.schema | (.added + .removed + .changed) | length == 0)" \
	"$TEST_TMP/calm.json" >/dev/null ||
	fail "an untouched database was dumped or differs: $(jq -c "$db | {schema, scan}" "$TEST_TMP/calm.json")"
psql -X -q -v ON_ERROR_STOP=1 "$(rift url calm)" -c "alter role owner2 rename to renamed_owner" \
	>>"$TEST_TMP/psql.out" 2>&1 || fail "rename the owner: $(tail -3 "$TEST_TMP/psql.out")"
rift --json diff calm >"$TEST_TMP/calm2.json" || fail "rift diff calm after the rename"
jq -e "$db | .scan.schema_dumped and ([.schema.changed[] | select(.name == \"owned\")] | length > 0)" \
	"$TEST_TMP/calm2.json" >/dev/null ||
	fail "the owner's new name is not seen: $(jq -c "$db | {schema, scan}" "$TEST_TMP/calm2.json")"

# without OTHER: against the fork point (feat's migration, all added); errors
rift --json diff feat >"$TEST_TMP/d3.json" || fail "rift diff feat (against its fork point)"
jq -e '.against == "main" and .fork_point' "$TEST_TMP/d3.json" >/dev/null ||
	fail "default against: $(jq -c '{against, fork_point}' "$TEST_TMP/d3.json")"
jq -e "$db | .schema.added | map(.name) | index(\"invoices\")" "$TEST_TMP/d3.json" >/dev/null ||
	fail "fork-point diff misses the new table"
expect_status 1 rift diff nope main
expect_output 'does not exist'
expect_status 1 rift diff feat nope
expect_output 'does not exist'
expect_status 2 rift diff 'Bad/Name'
