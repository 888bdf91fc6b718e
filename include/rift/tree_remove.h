/* tree_remove.h — removing a directory tree that another user may change meanwhile. */
#ifndef RIFT_TREE_REMOVE_H
#define RIFT_TREE_REMOVE_H

/*
 * Removes path and everything below it without ever following a link (unlinkat relative to
 * directory descriptors opened with O_NOFOLLOW): safe on a tree another user can change
 * meanwhile. 0, or the first -errno met (it goes on removing what it can).
 */
int rift_tree_remove(const char *path);

#endif
