/* pg_control.h — what riftd reads of a branch's pg_control in the store: where recovery starts. */
#ifndef RIFT_PG_CONTROL_H
#define RIFT_PG_CONTROL_H

#include <stdint.h>

#include "rift/store.h"

struct rift_pg_checkpoint {
	uint64_t checkpoint; /* the latest checkpoint record's position */
	uint64_t redo;       /* where its replay starts: the WAL from here on must be there */
};

/*
 * Reads global/pg_control of branch name as the store holds it (not through a mount, so also
 * for a branch no server runs on) and takes the latest checkpoint's position and redo point.
 * 0, or -errno (-EINVAL: the file is not a pg_control these fields can be read from). A
 * branch's superuser can write that file: the values are checked for sense, never trusted.
 */
int rift_pg_checkpoint_read(struct rift_store *store, const char *name,
			    struct rift_pg_checkpoint *out) __attribute__((warn_unused_result));

#endif
