/* store_fork.c — a new branch over the point where another branch left its parent (rift diff). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rift/branch_name.h"
#include "store_internal.h"

/* The newest layer of b's chain (its head excluded) that p's chain holds too: where b forked. */
static uint64_t fork_layer(const struct branch_rec *b, const struct branch_rec *p)
{
	uint32_t i, j;

	for (i = 1; i < b->depth; i++)
		for (j = 0; j < p->depth; j++)
			if (b->chain[i] == p->chain[j])
				return b->chain[i];
	return 0;
}

int rift_store_branch_create_at_fork(struct rift_store *s, const char *name, const char *of)
{
	struct branch_rec *c = calloc(1, sizeof(*c)), *b, *p;
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	uint8_t k[KEY_MAX], v[DENTRY_LEN] = { 0 };
	struct layer frozen, head, *l;
	uint64_t at;
	int rc;

	if (c == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (rift_branch_name_check(name) != RIFT_NAME_OK) {
		rc = -EINVAL;
		goto out;
	}
	pthread_rwlock_wrlock(&s->lock);
	rc = atomic_load(&s->error);
	if (rc != 0)
		goto unlock;
	b = store_branch_find(s, of);
	if (b == NULL) {
		rc = -ENOENT;
		goto unlock;
	}
	if (store_branch_find(s, name) != NULL) {
		rc = -EEXIST;
		goto unlock;
	}
	/* Made from a branch: the layer both chains share, which nobody writes again (frozen) and
	 * which stays while b and its parent both exist (two children: no squash; a parent with
	 * children cannot be deleted). Made from a base: the base layer. */
	if (b->parent[0] != '\0') {
		p = store_branch_find(s, b->parent);
		at = p != NULL ? fork_layer(b, p) : 0;
	} else {
		at = b->chain[b->depth - 1];
	}
	l = at != 0 ? store_layer(s, at) : NULL;
	if (l == NULL || (l->parent != 0 && !l->frozen)) {
		rc = -ESRCH;
		goto unlock;
	}
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->created_ns = now_ns();
	c->root_st_ino = store_alloc_id(s, wb);
	c->gen = b->gen;
	frozen = *l;
	frozen.nchildren++;
	memset(&head, 0, sizeof(head));
	head.id = store_alloc_id(s, wb);
	head.parent = frozen.id;
	head.gen = frozen.gen;
	put_layer(s, wb, &frozen);
	put_layer(s, wb, &head);
	c->head = head.id;
	put_branch(s, wb, c);
	rocksdb_writebatch_put_cf(wb, s->cf_meta, (const char *)k,
				  key_dentry(k, head.id, RIFT_ROOT_INO, POSTMASTER_PID),
				  (const char *)v, sizeof(v));
	rc = store_write(s, wb, true);
	if (rc != 0)
		goto unlock;
	*store_layer(s, frozen.id) = frozen;
	if (store_layer_add(s, &head) == NULL || store_branch_add(s, c) != 0) {
		rc = store_fail(s, NULL, "branch create at fork (out of memory)");
		goto unlock;
	}
	rc = store_chain_build(s, c);
	c = NULL;
unlock:
	pthread_rwlock_unlock(&s->lock);
out:
	rocksdb_writebatch_destroy(wb);
	free(c);
	return rc;
}
