/* pg_control.c — the latest checkpoint and its redo point, read from a branch's pg_control in
 * the store, so a copy of the branch's WAL can be checked to reach back that far. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "rift/pg_control.h"

/*
 * ControlFileData's first fields, laid out alike since PostgreSQL 11 (pg_control.h):
 * system_identifier (8), pg_control_version (4), catalog_version_no (4), state (4, then 4 of
 * padding), time (8), checkPoint (8), then checkPointCopy, whose first field is redo (8).
 * Before 11 a prevCheckPoint came between, so older files are not read. The file is written in
 * the server's byte order; riftd runs on the same machine.
 */
#define PGC_VERSION_OFF    8
#define PGC_CHECKPOINT_OFF 32
#define PGC_REDO_OFF       40
#define PGC_MIN_LEN        48
/* pg_control_version of 11 (1100) up to the 1300s of 13-17 */
#define PGC_VERSION_MIN 1100
#define PGC_VERSION_MAX 9999

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

int rift_pg_checkpoint_read(struct rift_store *store, const char *name,
			    struct rift_pg_checkpoint *out)
{
	struct rift_branch *b = NULL;
	struct rift_attr global, control;
	uint8_t buf[PGC_MIN_LEN];
	uint32_t version;
	ssize_t n;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = rift_store_branch_open(store, name, &b);
	if (rc == 0)
		rc = rift_store_lookup(b, RIFT_ROOT_INO, "global", &global);
	if (rc == 0)
		rc = rift_store_lookup(b, global.ino, "pg_control", &control);
	if (rc == 0 && !S_ISREG(control.mode))
		rc = -EINVAL;
	if (rc == 0) {
		n = rift_store_read(b, control.ino, 0, sizeof(buf), buf);
		rc = n < 0 ? (int)n : n < (ssize_t)sizeof(buf) ? -EINVAL : 0;
	}
	if (rc == 0) {
		memcpy(&version, buf + PGC_VERSION_OFF, sizeof(version));
		out->checkpoint = get64(buf + PGC_CHECKPOINT_OFF);
		out->redo = get64(buf + PGC_REDO_OFF);
		/* the redo point of a checkpoint comes before its record, never after */
		if (version < PGC_VERSION_MIN || version > PGC_VERSION_MAX || out->redo == 0 ||
		    out->redo > out->checkpoint)
			rc = -EINVAL;
	}
	if (b != NULL)
		rift_store_branch_close(b);
	if (rc != 0)
		memset(out, 0, sizeof(*out));
	return rc;
}
