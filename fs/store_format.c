/* store_format.c — the store's on-disk format version: checked at open, upgraded in place. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rift/log.h"
#include "store_internal.h"

/*
 * The meta key 'V' holds the format version (be32). Stores made before versions existed have no
 * such key and hold format 1; their records are those of format 2, which only adds the key.
 * Format 3 keeps block contents in overlay files instead of the data family's values.
 *
 * Opening a store:
 *   - no 'V' and no records at all: a new store; 'V' = RIFT_STORE_FORMAT is written (synced);
 *   - no 'V' but records: format 1, upgraded in place;
 *   - 'V' older than this rift's: upgraded in place, one step at a time;
 *   - 'V' newer than this rift's, or not a version: refused with what to do. Reading records
 *     whose meaning changed would misread users' data, so nothing else is read first.
 * Each upgrade step is idempotent and ends with one synced write of the version it reached, so
 * a crash in the middle of an upgrade repeats at most the step it interrupted at the next open.
 * Progress goes to the log (a step over many records logs as it goes).
 */

struct upgrade_step {
	uint32_t from;
	const char *what;
	/* Converts the records of format `from` into those of from + 1; 0 or -errno. */
	int (*run)(struct rift_store *s);
};

/* Format 1 → 2: the records are unchanged; reaching 2 only records the version. */
static int upgrade_1_to_2(struct rift_store *s)
{
	(void)s;
	return 0;
}

static void version_key_put(struct rift_store *s, rocksdb_writebatch_t *wb, uint32_t version)
{
	uint8_t k = 'V', v[4] = { (uint8_t)(version >> 24), (uint8_t)(version >> 16),
				  (uint8_t)(version >> 8), (uint8_t)version };

	rocksdb_writebatch_put_cf(wb, s->cf_meta, (const char *)&k, 1, (const char *)v, 4);
}

#define MOVE_BATCH 4096u /* blocks moved between syncs and progress lines */

/* Syncs the overlay files written so far, then commits the records that name them. */
static int move_commit(struct rift_store *s, rocksdb_writebatch_t *wb)
{
	int rc = overlay_sync_dirty(s, 0);

	if (rc == 0)
		rc = store_write(s, wb, false);
	rocksdb_writebatch_clear(wb);
	return rc;
}

/*
 * Moves every block still held as a data family value (format 2) into its layer's overlay file
 * and replaces the value with BLOCK_IN_FILE. Idempotent: a block already moved has the short
 * value, a ZERO marker (empty) means the same in both formats, and an overlay file's bytes are
 * only named by a record after they were synced.
 */
static int move_blocks_out(struct rift_store *s)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf_data);
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	const char in_file = BLOCK_IN_FILE;
	/* tests: commit every n blocks and die after the first commit, as a crash would */
	const char *kill_after = getenv("RIFT_TEST_UPGRADE_KILL_AFTER");
	uint64_t moved = 0, batch = MOVE_BATCH;
	char *err = NULL;
	int rc = 0;

	if (kill_after != NULL && strtoull(kill_after, NULL, 10) > 0)
		batch = strtoull(kill_after, NULL, 10);

	for (rocksdb_iter_seek_to_first(it); rc == 0 && rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
		const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
		if (kl != DATA_KEY_LEN || vl == 0 || (vl == 1 && v[0] == BLOCK_IN_FILE))
			continue;
		if (vl != RIFT_BLOCK_SIZE || get_be64(k) == 0 || get_be64(k + 8) == 0) {
			rc = store_fail(s, NULL, "format upgrade (damaged block record)");
			break;
		}
		rc = overlay_write(s, get_be64(k), get_be64(k + 8), get_be64(k + 16), v);
		if (rc != 0)
			break;
		rocksdb_writebatch_put_cf(wb, s->cf_data, (const char *)k, kl, &in_file, 1);
		if (++moved % batch == 0) {
			rc = move_commit(s, wb);
			LOG_INFO("store", "%s: %llu MiB of blocks moved to overlay files",
				 s->state_dir, (unsigned long long)(moved * RIFT_BLOCK_SIZE >> 20));
			if (rc == 0 && batch != MOVE_BATCH)
				raise(SIGKILL);
		}
	}
	rocksdb_iter_get_error(it, &err);
	if (err != NULL && rc == 0)
		rc = store_fail(s, err, "format upgrade scan");
	else
		free(err);
	if (rc == 0)
		rc = move_commit(s, wb);
	if (rc == 0)
		LOG_INFO("store", "%s: %llu blocks moved to overlay files", s->state_dir,
			 (unsigned long long)moved);
	rocksdb_iter_destroy(it);
	rocksdb_writebatch_destroy(wb);
	return rc;
}

/* Ends a block move: drops the marker in a synced write (which also syncs the moves' records). */
static int move_done(struct rift_store *s)
{
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	uint8_t k = 'M';
	int rc;

	rocksdb_writebatch_delete_cf(wb, s->cf_meta, (const char *)&k, 1);
	rc = store_write(s, wb, true);
	rocksdb_writebatch_destroy(wb);
	if (rc == 0) /* the records are durable: the old values can go from the table files */
		rocksdb_compact_range_cf(s->db, s->cf_data, NULL, 0, NULL, 0);
	return rc;
}

/*
 * Format 2 → 3: block contents move from the data family into overlay files. Format 3 is
 * recorded first, with the marker 'M', in one synced write: a rift that reads only format 2
 * refuses the store from then on (it would read the short values as damaged blocks), and a
 * crash in the middle resumes the move at the next open (store_format_check).
 */
static int upgrade_2_to_3(struct rift_store *s)
{
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	uint8_t k = 'M';
	int rc;

	version_key_put(s, wb, 3);
	rocksdb_writebatch_put_cf(wb, s->cf_meta, (const char *)&k, 1, "", 0);
	rc = store_write(s, wb, true);
	rocksdb_writebatch_destroy(wb);
	if (rc == 0)
		rc = move_blocks_out(s);
	return rc == 0 ? move_done(s) : rc;
}

static const struct upgrade_step steps[] = {
	{ 1, "record the format version", upgrade_1_to_2 },
	{ 2, "move block contents into overlay files", upgrade_2_to_3 },
};

static int write_version(struct rift_store *s, uint32_t version)
{
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	int rc;

	version_key_put(s, wb, version);
	rc = store_write(s, wb, true);
	rocksdb_writebatch_destroy(wb);
	return rc;
}

/* 1 if the meta column family holds any record, 0 if none, <0 on a read error. */
static int meta_has_records(struct rift_store *s)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf_meta);
	char *err = NULL;
	int rc;

	rocksdb_iter_seek_to_first(it);
	rc = rocksdb_iter_valid(it) ? 1 : 0;
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	if (err != NULL)
		return store_fail(s, err, "format check");
	return rc;
}

/* Reads the format version into *version; 0 when there is no version key. */
static int read_version(struct rift_store *s, uint32_t *version, char *err, size_t errlen)
{
	uint8_t k = 'V', v[8];
	size_t n;
	int rc = meta_get(s, &k, 1, v, sizeof(v), &n);

	*version = 0;
	if (rc == -ENOENT)
		return 0;
	if (rc == 0 && (n != 4 || (*version = ((uint32_t)v[0] << 24) | ((uint32_t)v[1] << 16) |
					      ((uint32_t)v[2] << 8) | v[3]) == 0))
		rc = -EIO;
	if (rc != 0)
		snprintf(err, errlen,
			 "the store in %s has an unreadable format version (%s); it is damaged: "
			 "restore it from a backup, or move it aside and run `rift init`",
			 s->state_dir, strerror(-rc));
	return rc;
}

int store_format_check(struct rift_store *s, char *err, size_t errlen)
{
	uint32_t version;
	size_t i;
	int rc;

	if ((rc = read_version(s, &version, err, errlen)) != 0)
		return rc;
	if (version == 0) {
		rc = meta_has_records(s);
		if (rc < 0)
			goto io_fail;
		if (rc == 0) {
			rc = write_version(s, RIFT_STORE_FORMAT);
			if (rc != 0)
				goto io_fail;
			return 0;
		}
		version = 1;
	}
	if (version == 3) {
		uint8_t k = 'M', v[1];
		size_t n;
		rc = meta_get(s, &k, 1, v, sizeof(v), &n);
		if (rc == 0) {
			LOG_INFO("store", "%s: resuming the upgrade to format 3 (%s)", s->state_dir,
				 steps[1].what);
			rc = move_blocks_out(s);
			if (rc == 0)
				rc = move_done(s);
		}
		if (rc == -ENOENT)
			rc = 0;
		if (rc != 0) {
			snprintf(err, errlen,
				 "upgrading the store in %s to format 3 failed (%s); free disk "
				 "space if it is full, then start rift again to resume the upgrade",
				 s->state_dir, strerror(-rc));
			return rc;
		}
	}
	if (version > RIFT_STORE_FORMAT) {
		snprintf(
		    err, errlen,
		    "the store in %s has on-disk format %u, newer than the format %u this rift "
		    "reads; it was written by a newer rift: run that version (or newer) of rift, "
		    "or restore a backup made for this one. Nothing was changed",
		    s->state_dir, version, RIFT_STORE_FORMAT);
		return -EPROTONOSUPPORT;
	}
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]) && version < RIFT_STORE_FORMAT; i++) {
		if (steps[i].from != version)
			continue;
		LOG_INFO("store", "%s: upgrading the store's format %u -> %u (%s)", s->state_dir,
			 version, version + 1, steps[i].what);
		rc = steps[i].run(s);
		if (rc == 0)
			rc = write_version(s, version + 1);
		if (rc != 0) {
			snprintf(err, errlen,
				 "upgrading the store in %s from format %u to %u failed (%s); the "
				 "store is unchanged from the last completed step: free disk space "
				 "if it is full, then start rift again to resume the upgrade",
				 s->state_dir, version, version + 1, strerror(-rc));
			return rc;
		}
		version++;
		LOG_INFO("store", "%s: the store is at format %u", s->state_dir, version);
	}
	assert(version == RIFT_STORE_FORMAT);
	return 0;
io_fail:
	snprintf(err, errlen,
		 "cannot check or record the format of the store in %s: %s (is the disk full or "
		 "failing?)",
		 s->state_dir, strerror(-rc));
	return rc;
}
