/* diff_narrow.c — narrows a row diff to the heap blocks the store saw either side write. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diff_internal.h"
#include "rift/log.h"
#include "rift/store.h"

/*
 * Why reading only the changed blocks finds every difference: both sides start from the same
 * shared layer and replay the same WAL from it, so a block neither side wrote since holds the
 * same tuples on both, and (with no transaction left in flight at that point, see
 * rift_diff_narrow_begin) their xmin/xmax have the same fate on both: such a block shows the
 * same rows on both sides. Every insert, update or delete writes the block its tuple version
 * lives in (a new tuple; xmax on the old one), so a row that differs is in a changed block on
 * at least one side, and the same block is read on the other side too. A key seen on one side
 * only is then really added or removed: a visible version elsewhere would sit in an unchanged
 * block, visible on both sides, i.e. twice under one primary key. Without a key the multiset
 * difference over the changed blocks equals the whole table's, as the rest is equal.
 */

#define SEG_BLOCKS   131072u /* RELSEG_SIZE: 1 GiB segments of 8 KiB blocks */
#define MAX_SEGMENTS 32768u  /* a relation's 32 TiB limit */

static uint64_t oid_of(const char *s);
#define MAX_CHANGED  (1u << 20) /* changed blocks collected per relation (8 MiB) */
#define MAX_RANGES   200u       /* TID ranges in one query; closer runs are merged past it */
#define MAX_LISTED   1000       /* tables listed by name in the report */
#define SMALL_BLOCKS 128u       /* 1 MiB: below it a table is read by its changed blocks always */

/* syncfs(2) of the filesystem mounted at mnt: its dirty pages go through FUSE to the store. */
static int sync_mount(const char *mnt)
{
	int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc, saved;

	if (fd < 0)
		return -1;
	rc = syncfs(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int rift_diff_narrow_begin(PGconn *b, PGconn *o, const struct rift_diff_opts *opts,
			   struct rift_diff_narrowing *n, char *err, size_t errlen)
{
	static const char *const setup =
	    "select d.oid::pg_catalog.text, pg_catalog.current_setting('block_size'), "
	    "pg_catalog.current_setting('segment_size'), (select pg_catalog.count(*) from "
	    "pg_catalog.pg_prepared_xacts), pg_catalog.pg_is_in_recovery(), "
	    "pg_catalog.current_setting('max_prepared_transactions') from pg_catalog.pg_database d "
	    "where d.datname = pg_catalog.current_database()";
	PGresult *r[2] = { NULL, NULL };
	PGconn *c[2] = { b, o };
	int i, rc = 0;

	memset(n, 0, sizeof(*n));
	n->narrow_list = json_array();
	n->full_list = json_array();
	if (n->narrow_list == NULL || n->full_list == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (opts->narrow == NULL) {
		snprintf(n->why_not, sizeof(n->why_not), "the store was not asked");
		return 0;
	}
	if (opts->narrow->off != NULL) {
		snprintf(n->why_not, sizeof(n->why_not), "%s", opts->narrow->off);
		return 0;
	}
	/* after the snapshot was taken (the caller's first query): every change it sees is in a
	 * buffer then, and CHECKPOINT writes it through the mount into the store (CHECKPOINT may
	 * run in a read-only transaction block) */
	for (i = 0; i < 2; i++) {
		r[i] = rift_diff_query(c[i], "checkpoint", 0, NULL, opts, 0, "rows", err, errlen);
		if (r[i] == NULL) {
			rc = -EIO;
			goto out;
		}
		PQclear(r[i]);
		r[i] = rift_diff_query(c[i], setup, 0, NULL, opts, 1, "rows", err, errlen);
		if (r[i] == NULL) {
			rc = -EIO;
			goto out;
		}
	}
	if (PQntuples(r[0]) != 1 || PQntuples(r[1]) != 1 || PQnfields(r[0]) != 6 ||
	    PQnfields(r[1]) != 6) {
		snprintf(n->why_not, sizeof(n->why_not), "the servers did not name their database");
		goto out;
	}
	for (i = 0; i < 2; i++) {
		if (strcmp(PQgetvalue(r[i], 0, 1), "8192") != 0 ||
		    strcmp(PQgetvalue(r[i], 0, 2), "1GB") != 0) {
			snprintf(n->why_not, sizeof(n->why_not),
				 "a server built with another block or segment size");
			goto out;
		}
		/* a prepared transaction from before the shared point can commit on one side
		 * with only a pg_xact change: its rows' blocks would look unchanged */
		if (strcmp(PQgetvalue(r[i], 0, 3), "0") != 0) {
			snprintf(n->why_not, sizeof(n->why_not),
				 "prepared transactions are pending (pg_prepared_xacts)");
			goto out;
		}
		/* nor one that was pending when the chains parted and ended differently on each
		 * side since (committed on one, rolled back on the other): none can have been
		 * while neither server allows them (max_prepared_transactions = 0, the default;
		 * a server recovering one with 0 refuses to start) */
		if (strcmp(PQgetvalue(r[i], 0, 5), "0") != 0) {
			snprintf(
			    n->why_not, sizeof(n->why_not),
			    "prepared transactions are enabled (max_prepared_transactions > 0): "
			    "one pending when the branches parted may have ended differently on "
			    "each side");
			goto out;
		}
		/* in recovery, CHECKPOINT is a restartpoint that may write nothing */
		if (strcmp(PQgetvalue(r[i], 0, 4), "f") != 0) {
			snprintf(n->why_not, sizeof(n->why_not), "a server is in recovery");
			goto out;
		}
	}
	if (strcmp(PQgetvalue(r[0], 0, 0), PQgetvalue(r[1], 0, 0)) != 0 ||
	    oid_of(PQgetvalue(r[0], 0, 0)) == 0 ||
	    strspn(PQgetvalue(r[0], 0, 0), "0123456789") != strlen(PQgetvalue(r[0], 0, 0)) ||
	    strlen(PQgetvalue(r[0], 0, 0)) >= sizeof(n->dboid)) {
		snprintf(n->why_not, sizeof(n->why_not),
			 "the database was made again on one side (its oid differs)");
		goto out;
	}
	/* with fsync = off (common in CI) CHECKPOINT leaves its writes in the kernel's page
	 * cache, which holds a mount's writes back from the store: riftd syncs each mount */
	for (i = 0; i < 2; i++) {
		const char *mnt = i == 0 ? opts->narrow->mnt_a : opts->narrow->mnt_b;
		if (mnt != NULL && sync_mount(mnt) != 0) {
			snprintf(n->why_not, sizeof(n->why_not),
				 "a branch's mount could not be synced (%s)", strerror(errno));
			goto out;
		}
	}
	snprintf(n->dboid, sizeof(n->dboid), "%s", PQgetvalue(r[0], 0, 0));
	n->on = true;
out:
	PQclear(r[0]);
	PQclear(r[1]);
	return rc;
}

/* A decimal oid that fits, or 0. */
static uint64_t oid_of(const char *s)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0' && v <= 0xffffffffull ? v : 0;
}

/*
 * The files of every system catalog of the database (and the shared ones, global/...), as
 * pg_dump --schema-only reads them. Left out: the planner's statistics (pg_statistic,
 * pg_statistic_ext_data and their TOAST tables), which ANALYZE rewrites and no dump prints.
 * Catalogs and their TOAST tables have oids below FirstNormalObjectId (16384).
 */
#define CATALOGS_SQL                                                                               \
	"select p from (select pg_catalog.pg_relation_filepath(c.oid) p from pg_catalog.pg_class " \
	"c where c.oid < 16384 and c.relkind in ('r', 't') and c.oid not in (2619, 3429) and "     \
	"c.oid not in (select s.reltoastrelid from pg_catalog.pg_class s where s.oid in (2619, "   \
	"3429))) f order by p collate \"C\""
#define MAX_CATALOGS 2000 /* catalog files a server may list (PostgreSQL 15 has about 120) */

/* A catalog file's path as the server names it: "global/N" or "base/<this database>/N". */
static bool catalog_path_ok(const struct rift_diff_narrowing *n, const char *path)
{
	size_t dl = strlen(n->dboid);
	const char *file;

	if (strncmp(path, "global/", 7) == 0)
		file = path + 7;
	else if (strncmp(path, "base/", 5) == 0 && strncmp(path + 5, n->dboid, dl) == 0 &&
		 path[5 + dl] == '/')
		file = path + 6 + dl;
	else
		return false;
	return file[0] != '\0' && strlen(file) < 12 && strspn(file, "0123456789") == strlen(file);
}

/*
 * Whether neither side wrote a block of the catalog file at path since the chains parted;
 * false too when the store cannot say. A catalog of a full 1 GiB segment or more counts as
 * changed (the dumps run): no real one is that large, and walking the segments of sparse
 * files a branch grew on purpose would cost every later diff of its descendants.
 */
static bool file_unchanged(const struct rift_diff_narrow *nw, const char *path)
{
	struct rift_file_changes fc;
	bool same;

	/* max 0: the store's counts alone answer, no key is read */
	if (rift_store_file_changes(nw->store, nw->a, nw->b, path, 0, &fc) != 0)
		return false;
	same = fc.in_a && fc.in_b && fc.same_file && !fc.overflow && fc.nchanged == 0 &&
	       fc.blocks_a == fc.blocks_b && fc.tail >= fc.blocks_a && fc.blocks_a < SEG_BLOCKS;
	free(fc.changed);
	return same;
}

int rift_diff_narrow_catalogs(const struct rift_diff_narrowing *n, PGconn *b, PGconn *o,
			      const struct rift_diff_opts *opts, bool *same, char *err,
			      size_t errlen)
{
	PGresult *r[2] = { NULL, NULL };
	int i, rc = 0;

	*same = false;
	if (!n->on)
		return 0;
	r[0] =
	    rift_diff_query(b, CATALOGS_SQL, 0, NULL, opts, MAX_CATALOGS, "catalogs", err, errlen);
	r[1] = r[0] ? rift_diff_query(o, CATALOGS_SQL, 0, NULL, opts, MAX_CATALOGS, "catalogs", err,
				      errlen)
		    : NULL;
	if (r[0] == NULL || r[1] == NULL) {
		rc = -EIO;
		goto out;
	}
	if (PQnfields(r[0]) != 1 || PQnfields(r[1]) != 1 || PQntuples(r[0]) != PQntuples(r[1]) ||
	    PQntuples(r[0]) == 0)
		goto out;
	for (i = 0; i < PQntuples(r[0]); i++) {
		const char *path = PQgetvalue(r[0], i, 0);
		/* in strictly increasing order: a server repeating a path makes riftd ask the
		 * store again for nothing */
		if (strcmp(path, PQgetvalue(r[1], i, 0)) != 0 || !catalog_path_ok(n, path) ||
		    (i > 0 && strcmp(PQgetvalue(r[0], i - 1, 0), path) >= 0) ||
		    !file_unchanged(opts->narrow, path))
			goto out;
	}
	*same = true;
out:
	PQclear(r[0]);
	PQclear(r[1]);
	return rc;
}

/* Adds the changes of one segment file to the relation's: blocks shifted by the segment. */
static int add_segment(struct rift_diff_plan *p, const struct rift_file_changes *fc, uint64_t seg,
		       size_t max)
{
	uint64_t first = seg * SEG_BLOCKS, *nv;
	size_t i;

	if (!fc->same_file) {
		/* made, removed or replaced since: all of it, and what follows */
		if (first < p->tail)
			p->tail = first;
		return 0;
	}
	if (fc->tail < (fc->blocks_a > fc->blocks_b ? fc->blocks_a : fc->blocks_b) &&
	    first + fc->tail < p->tail)
		p->tail = first + fc->tail;
	if (fc->nchanged == 0)
		return 0;
	if (p->nblocks + fc->nchanged > max)
		return -E2BIG;
	nv = realloc(p->blocks, (p->nblocks + fc->nchanged) * sizeof(*nv));
	if (nv == NULL)
		return -ENOMEM;
	p->blocks = nv;
	for (i = 0; i < fc->nchanged; i++)
		p->blocks[p->nblocks++] = first + fc->changed[i];
	return 0;
}

/* Collects the changed blocks of relation file node rel, over all its segments; -E2BIG past
 * max of them. */
static int collect(const struct rift_diff_narrowing *n, const struct rift_diff_opts *opts,
		   uint64_t rel, size_t max, uint64_t max_seg, struct rift_diff_plan *p)
{
	const struct rift_diff_narrow *nw = opts->narrow;
	struct rift_file_changes fc;
	char path[96];
	uint64_t seg, size_a = 0, size_b = 0;
	int rc = 0;

	for (seg = 0; seg < max_seg; seg++) {
		if (seg == 0)
			snprintf(path, sizeof(path), "base/%s/%" PRIu64, n->dboid, rel);
		else
			snprintf(path, sizeof(path), "base/%s/%" PRIu64 ".%" PRIu64, n->dboid, rel,
				 seg);
		rc = rift_store_file_changes(nw->store, nw->a, nw->b, path, max, &fc);
		if (rc != 0)
			return rc;
		if (!fc.in_a && !fc.in_b) {
			free(fc.changed);
			break;
		}
		if (fc.overflow)
			rc = -E2BIG;
		else
			rc = add_segment(p, &fc, seg, max);
		if (fc.in_a)
			size_a = seg * SEG_BLOCKS + fc.blocks_a;
		if (fc.in_b)
			size_b = seg * SEG_BLOCKS + fc.blocks_b;
		free(fc.changed);
		if (rc != 0)
			return rc;
		/* Postgres starts segment N + 1 only once segment N is full (a truncation may
		 * leave later ones empty): files past that are no relation's, and a branch must
		 * not make riftd walk thousands of them */
		if (fc.blocks_a < SEG_BLOCKS && fc.blocks_b < SEG_BLOCKS) {
			seg++;
			break;
		}
	}
	if (seg == 0)
		return -ENOENT; /* no main fork file on either side */
	p->size_blocks = size_a > size_b ? size_a : size_b;
	if (p->tail > p->size_blocks)
		p->tail = p->size_blocks;
	return 0;
}

/* One "ctid in [from, to)" term (to 0: no end) as a TID range scan can use. */
static void range_sql(struct dbuf *q, const char *rel, uint64_t from, uint64_t to)
{
	char t[160];

	dbuf_puts(q, "select * from only ");
	dbuf_puts(q, rel);
	snprintf(t, sizeof(t),
		 " where ctid operator(pg_catalog.>=) '(%" PRIu64 ",0)'::pg_catalog.tid", from);
	dbuf_puts(q, t);
	if (to != 0) {
		snprintf(t, sizeof(t),
			 " and ctid operator(pg_catalog.<) '(%" PRIu64 ",0)'::pg_catalog.tid", to);
		dbuf_puts(q, t);
	}
}

/* Runs of changed blocks merged across gaps of up to gap blocks: how many there are. */
static size_t runs(const uint64_t *v, size_t n, uint64_t gap)
{
	size_t i, k = n ? 1 : 0;

	for (i = 1; i < n; i++)
		if (v[i] - v[i - 1] > gap + 1)
			k++;
	return k;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* The FROM item reading only the planned blocks: a UNION ALL of TID range scans. */
static int build_from(struct rift_diff_plan *p, const char *schema, const char *name)
{
	struct dbuf rel = { 0 }, *q = &p->from;
	uint64_t gap = 0, start;
	size_t i, k = 0;

	rift_diff_ident(&rel, schema);
	dbuf_puts(&rel, ".");
	rift_diff_ident(&rel, name);
	/* merge runs across small gaps until few enough ranges remain: a few extra blocks
	 * read cost less than a query planned over thousands of subqueries */
	while (runs(p->blocks, p->nblocks, gap) > MAX_RANGES)
		gap = gap ? gap * 2 : 1;
	dbuf_puts(q, "(");
	for (i = 0; i < p->nblocks; i++) {
		start = p->blocks[i];
		while (i + 1 < p->nblocks && p->blocks[i + 1] - p->blocks[i] <= gap + 1)
			i++;
		if (k++)
			dbuf_puts(q, " union all ");
		range_sql(q, rel.p ? rel.p : "", start, p->blocks[i] + 1);
		p->read_blocks += p->blocks[i] + 1 - start;
	}
	if (p->tail < p->size_blocks) {
		if (k++)
			dbuf_puts(q, " union all ");
		range_sql(q, rel.p ? rel.p : "", p->tail, 0);
		p->read_blocks += p->size_blocks - p->tail;
	}
	dbuf_puts(q, ")");
	free(rel.p);
	return q->oom || rel.oom ? -ENOMEM : 0;
}

/* Blocks in a relation of bytes (server text), 0 when that is no number. */
static uint64_t size_of(const char *bytes)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(bytes, &end, 10);
	return errno == 0 && end != bytes && *end == '\0' && bytes[0] != '-' ? v / RIFT_BLOCK_SIZE
									     : 0;
}

int rift_diff_narrow_plan(struct rift_diff_narrowing *n, const struct rift_diff_opts *opts,
			  const char *schema, const char *name, const char *brel, const char *orel,
			  const char *btsp, const char *otsp, const char *bpersist,
			  const char *opersist, const char *bbytes, const char *obytes,
			  struct rift_diff_plan *p)
{
	uint64_t rel = oid_of(brel), size;
	bool half;
	size_t i, j;
	int rc;

	memset(p, 0, sizeof(*p));
	p->kind = RIFT_DIFF_FULL;
	p->tail = UINT64_MAX;
	if (!n->on)
		return 0;
	if (rel == 0 || oid_of(orel) == 0) {
		p->why = "no relfilenode";
		return 0;
	}
	if (rel != oid_of(orel)) {
		/* a new relfilenode on one side: TRUNCATE, VACUUM FULL, ALTER TABLE ... TYPE */
		p->why = "rewritten";
		return 0;
	}
	if (strcmp(btsp, "0") != 0 || strcmp(otsp, "0") != 0) {
		p->why = "tablespace";
		return 0;
	}
	/* CHECKPOINT writes only permanent relations' pages: an unlogged table's changes may
	 * live in the server's buffers alone, where the store cannot see them */
	if (strcmp(bpersist, "p") != 0 || strcmp(opersist, "p") != 0) {
		p->why = "unlogged";
		return 0;
	}
	/* only a lying server sends a name over NAMEDATALEN - 1 bytes; it would be pasted into
	 * every range of the query (up to MAX_RANGES + 1 times), past what the budget charged */
	if (strlen(schema) > 63 || strlen(name) > 63) {
		p->why = "a name longer than Postgres allows";
		return 0;
	}
	/* past half of a table over 1 MiB, one sequential scan beats many range scans: the
	 * store's counts tell that before any block number is read (the sizes are the servers'
	 * word: a lie only makes its own diff read more) */
	size = size_of(bbytes) > size_of(obytes) ? size_of(bbytes) : size_of(obytes);
	half = size > SMALL_BLOCKS && size / 2 + 1 < MAX_CHANGED;
	/* no more segment files than the larger side's size needs, plus one being started: a
	 * branch can plant thousands of empty 1 GiB sparse files; a side that understates its
	 * size hides only its own rows, which its server could hide anyway */
	rc =
	    collect(n, opts, rel, half ? (size_t)(size / 2 + 1) : MAX_CHANGED,
		    size / SEG_BLOCKS + 2 < MAX_SEGMENTS ? size / SEG_BLOCKS + 2 : MAX_SEGMENTS, p);
	if (rc == -E2BIG || rc == -ENOENT) {
		p->why = rc == -ENOENT ? "no file"
			 : half        ? "more than half its blocks changed"
				       : "too many changed blocks";
		return 0;
	}
	if (rc != 0)
		return rc;
	if (p->nblocks > 0) /* qsort takes no NULL, even for no elements */
		qsort(p->blocks, p->nblocks, sizeof(*p->blocks), cmp_u64);
	for (i = 0, j = 0; i < p->nblocks; i++)
		if (p->blocks[i] < p->tail && (j == 0 || p->blocks[j - 1] != p->blocks[i]))
			p->blocks[j++] = p->blocks[i];
	p->nblocks = j;
	if (p->nblocks == 0 && p->tail >= p->size_blocks) {
		p->kind = RIFT_DIFF_SKIP;
		return 0;
	}
	/* past half the table, one sequential scan beats many range scans (a small table costs
	 * little either way: it is read by its blocks, the path every change takes) */
	if (p->size_blocks > SMALL_BLOCKS &&
	    p->nblocks + (p->size_blocks - p->tail) > p->size_blocks / 2) {
		p->why = "more than half its blocks changed";
		return 0;
	}
	rc = build_from(p, schema, name);
	if (rc == 0)
		p->kind = RIFT_DIFF_NARROW;
	return rc;
}

void rift_diff_plan_free(struct rift_diff_plan *p)
{
	free(p->blocks);
	free(p->from.p);
	memset(p, 0, sizeof(*p));
}

int rift_diff_narrow_note(struct rift_diff_narrowing *n, const struct rift_diff_plan *p,
			  const char *schema, const char *name, const char *bytes)
{
	json_t *t;

	n->compared++;
	if (p->kind == RIFT_DIFF_SKIP) {
		n->skipped++;
		return 0;
	}
	if (p->kind == RIFT_DIFF_NARROW) {
		n->narrowed++;
		n->blocks_read += p->read_blocks;
		if (n->narrowed > MAX_LISTED)
			return 0;
		t = json_pack("{s:s,s:s,s:I,s:I}", "schema", schema, "table", name, "blocks",
			      (json_int_t)p->read_blocks, "of", (json_int_t)p->size_blocks);
		if (t == NULL || json_array_append_new(n->narrow_list, t) != 0)
			return -ENOMEM;
		return 0;
	}
	n->full++;
	if (n->on && p->why != NULL && strcmp(p->why, "rewritten") == 0)
		n->rewritten++;
	if (!n->on || n->full > MAX_LISTED)
		return 0;
	t = json_pack("{s:s,s:s,s:s,s:I}", "schema", schema, "table", name, "why",
		      p->why ? p->why : "full", "bytes", (json_int_t)strtoll(bytes, NULL, 10));
	if (t == NULL || json_array_append_new(n->full_list, t) != 0)
		return -ENOMEM;
	return 0;
}

json_t *rift_diff_narrow_report(struct rift_diff_narrowing *n)
{
	json_t *r =
	    json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:O,s:O}", "narrowed", n->on, "tables_compared",
		      (json_int_t)n->compared, "tables_skipped", (json_int_t)n->skipped,
		      "tables_narrowed", (json_int_t)n->narrowed, "tables_full",
		      (json_int_t)n->full, "blocks_read", (json_int_t)n->blocks_read,
		      "narrowed_tables", n->narrow_list, "full_tables", n->full_list);

	if (r != NULL && !n->on)
		json_object_set_new(r, "why_not", json_string(n->why_not));
	return r;
}

void rift_diff_narrow_end(struct rift_diff_narrowing *n)
{
	json_decref(n->narrow_list);
	json_decref(n->full_list);
	n->narrow_list = n->full_list = NULL;
}
