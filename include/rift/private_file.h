/* private_file.h — riftd's small secret files: written whole (0600) or not at all. */
#ifndef RIFT_PRIVATE_FILE_H
#define RIFT_PRIVATE_FILE_H

#include <stddef.h>

/*
 * Replaces path with len bytes of data, mode 0600: a temporary file beside it (path.tmp, never
 * following a link), fsync, rename. Readers see the old file or the new one, never a part; a
 * crash leaves at most the temporary file. path's directory must be riftd's own (root, 0700).
 * 0 or -errno.
 */
int rift_private_file_write(const char *path, const void *data, size_t len)
    __attribute__((warn_unused_result));

#endif
