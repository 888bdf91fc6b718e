/* store_rename.c — renames a branch that has no children: one synced batch, no data moved. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rift/branch_name.h"
#include "store_internal.h"

int rift_store_branch_rename(struct rift_store *s, const char *from, const char *to)
{
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	uint8_t k[NAME_BUF + 1];
	struct branch_rec *b, renamed;
	size_t i;
	int rc;

	if (rift_branch_name_check(to) != RIFT_NAME_OK)
		return rocksdb_writebatch_destroy(wb), -EINVAL;
	pthread_rwlock_wrlock(&s->lock);
	rc = atomic_load(&s->error);
	if (rc != 0)
		goto unlock;
	b = store_branch_find(s, from);
	if (b == NULL) {
		rc = -ENOENT;
		goto unlock;
	}
	if (store_branch_find(s, to) != NULL) {
		rc = -EEXIST;
		goto unlock;
	}
	/* children name their parent: a branch with children keeps its name */
	for (i = 0; i < s->nbranches; i++)
		if (strcmp(s->branches[i]->parent, from) == 0) {
			rc = -ENOTEMPTY;
			goto unlock;
		}
	renamed = *b;
	snprintf(renamed.name, sizeof(renamed.name), "%s", to);
	rocksdb_writebatch_delete_cf(wb, s->cf_meta, (const char *)k, key_branch(k, from));
	put_branch(s, wb, &renamed);
	rc = store_write(s, wb, true);
	if (rc == 0) /* durable: the in-memory record follows; open handles point at it */
		snprintf(b->name, sizeof(b->name), "%s", to);
unlock:
	pthread_rwlock_unlock(&s->lock);
	rocksdb_writebatch_destroy(wb);
	return rc;
}
