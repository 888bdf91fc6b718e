/* identity.h — the OS uids of branch servers: checking the range, and sweeping away everything a
 * uid left behind (processes, System V IPC, /dev/shm and /dev/mqueue entries) before reuse. */
#ifndef RIFT_IDENTITY_H
#define RIFT_IDENTITY_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Fails (-EEXIST, with *err naming the user or group and what to do) when a user or group known
 * to the system (getpwent/getgrent) has an id in [base, base + count): a branch server running
 * with it would own that user's files.
 */
int rift_identity_check_range(uid_t base, unsigned count, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Ends every process whose real, effective or saved uid is in [base, base + count) with SIGKILL
 * (sent as that uid, to all its processes at once, until none is left), then removes the System
 * V shared memory, semaphores and message queues and the /dev/shm and /dev/mqueue entries those
 * uids own or created. Needs root. A uid whose processes do not go within about 5 s is left
 * alone (its IPC too) and listed in stuck (up to max, *nstuck of them): it must not be given out
 * again. 0, or -EBUSY when some uid is stuck (or more than max are).
 */
int rift_identity_sweep(uid_t base, unsigned count, uid_t *stuck, size_t max, size_t *nstuck)
    __attribute__((warn_unused_result));

/* Removes dirfd/name and, for a directory, everything in it, never following a symlink. 0 also
 * when it did not exist; -errno otherwise. */
int rift_remove_tree_at(int dirfd, const char *name);

#endif
