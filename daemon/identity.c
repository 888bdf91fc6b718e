/* identity.c — per-branch OS uids: range checks and sweeping what a uid leaves behind. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rift/identity.h"
#include "rift/log.h"

static bool in_range(unsigned long id, uid_t base, unsigned count)
{
	return id >= base && id - base < count;
}

/* The uids a sweep works on: the range, less those whose processes would not die. */
struct sweep {
	uid_t base;
	unsigned count;
	uid_t *stuck;
	size_t nstuck, max;
};

static bool swept(const struct sweep *sw, unsigned long id)
{
	size_t i;

	if (!in_range(id, sw->base, sw->count))
		return false;
	for (i = 0; i < sw->nstuck; i++)
		if (sw->stuck[i] == id)
			return false;
	return true;
}

int rift_identity_check_range(uid_t base, unsigned count, char *err, size_t errlen)
{
	struct passwd *pw;
	struct group *gr;
	int rc = 0;

	setpwent();
	while (rc == 0 && (pw = getpwent()) != NULL)
		if (in_range(pw->pw_uid, base, count) || in_range(pw->pw_gid, base, count)) {
			snprintf(err, errlen,
				 "user \"%s\" (uid %u, gid %u) lies in the uids riftd gives branch "
				 "servers ([instances] uid_base %u, uid_count %u); set another "
				 "uid_base in rift.conf",
				 pw->pw_name, (unsigned)pw->pw_uid, (unsigned)pw->pw_gid,
				 (unsigned)base, count);
			rc = -EEXIST;
		}
	endpwent();
	setgrent();
	while (rc == 0 && (gr = getgrent()) != NULL)
		if (in_range(gr->gr_gid, base, count)) {
			snprintf(err, errlen,
				 "group \"%s\" (gid %u) lies in the ids riftd gives branch servers "
				 "([instances] uid_base %u, uid_count %u); set another uid_base in "
				 "rift.conf",
				 gr->gr_name, (unsigned)gr->gr_gid, (unsigned)base, count);
			rc = -EEXIST;
		}
	endgrent();
	return rc;
}

/* Live (not zombie) processes with any uid swept; the last such uid in *which. */
static int count_live(const struct sweep *sw, uid_t *which)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	int n = 0;

	while (proc != NULL && (de = readdir(proc)) != NULL) {
		char path[64], line[256];
		unsigned long ids[4];
		bool zombie = false, match = false;
		FILE *f;
		int i;
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%.32s/status", de->d_name);
		f = fopen(path, "re");
		if (f == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL) {
			if (strncmp(line, "State:", 6) == 0)
				zombie = strchr(line, 'Z') != NULL;
			if (sscanf(line, "Uid: %lu %lu %lu %lu", &ids[0], &ids[1], &ids[2],
				   &ids[3]) == 4) {
				for (i = 0; i < 3; i++)
					if (swept(sw, ids[i])) {
						match = true;
						*which = (uid_t)ids[i];
					}
				break;
			}
		}
		fclose(f);
		if (match && !zombie)
			n++;
	}
	if (proc != NULL)
		closedir(proc);
	return n;
}

/* kill(-1) as uid reaches exactly the processes of that uid, all in one pass, and cannot hit an
 * unrelated process that took a pid we read earlier. The child calls raw syscalls only. */
static void kill_all_of(uid_t uid)
{
	pid_t p = fork();

	if (p == 0) {
		if (syscall(SYS_setgroups, 0, NULL) != 0 ||
		    syscall(SYS_setresgid, uid, uid, uid) != 0 ||
		    syscall(SYS_setresuid, uid, uid, uid) != 0)
			_exit(1);
		kill(-1, SIGKILL);
		_exit(0);
	}
	if (p > 0)
		while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
			;
}

static void remove_ipc(const char *file, int which, const struct sweep *sw)
{
	char line[512];
	FILE *f = fopen(file, "re");

	if (f == NULL)
		return;
	if (fgets(line, sizeof(line), f) == NULL) { /* the header */
		fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long v[16];
		int n = sscanf(line, "%lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu", &v[0], &v[1],
			       &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10]);
		/* owner and creator uid: shm fields 8 and 10, sem 5 and 7, msg 8 and 10 (from 1) */
		int uid_at = which == 1 ? 4 : 7, cuid_at = which == 1 ? 6 : 9, id = (int)v[1];
		if (n < cuid_at + 1 || !(swept(sw, v[uid_at]) || swept(sw, v[cuid_at])))
			continue;
		if ((which == 0 && shmctl(id, IPC_RMID, NULL) != 0) ||
		    (which == 1 && semctl(id, 0, IPC_RMID) != 0) ||
		    (which == 2 && msgctl(id, IPC_RMID, NULL) != 0))
			LOG_WARN("identity", "cannot remove System V IPC object %d of uid %lu: %s",
				 id, v[uid_at], strerror(errno));
	}
	fclose(f);
}

/* depth bounds the recursion: whoever made the tree chose how deep it goes */
static int remove_tree(int dirfd, const char *name, int depth)
{
	struct dirent *de;
	int fd, rc = 0;
	DIR *d;

	if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
		return 0;
	if (errno == ENOTDIR)
		return unlinkat(dirfd, name, 0) == 0 || errno == ENOENT ? 0 : -errno;
	if (depth >= 32)
		return -ELOOP;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -errno;
	}
	while (rc == 0 && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			rc = remove_tree(fd, de->d_name, depth + 1);
	closedir(d);
	if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		rc = -errno;
	return rc;
}

int rift_remove_tree_at(int dirfd, const char *name)
{
	return remove_tree(dirfd, name, 0);
}

/* /dev/shm (POSIX shared memory: Postgres's dynamic segments) and /dev/mqueue are sticky and
 * world-writable: entries another uid made there are that uid's; only ours are removed. */
static void remove_entries_of(const char *dir, const struct sweep *sw)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL) {
		struct stat st;
		int rc;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !swept(sw, st.st_uid))
			continue;
		rc = rift_remove_tree_at(dirfd(d), de->d_name);
		if (rc != 0)
			LOG_WARN("identity", "cannot remove %s/%s of uid %u: %s", dir, de->d_name,
				 (unsigned)st.st_uid, strerror(-rc));
	}
	if (d != NULL)
		closedir(d);
}

int rift_identity_sweep(uid_t base, unsigned count, uid_t *stuck, size_t max, size_t *nstuck)
{
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	struct sweep sw = { .base = base, .count = count, .stuck = stuck, .max = max };
	uid_t uid = 0, last = 0;
	int tries = 0;

	*nstuck = 0;
	if (count == 0)
		return 0;
	while (count_live(&sw, &uid) > 0) {
		tries = uid == last ? tries + 1 : 0;
		last = uid;
		if (tries == 500) { /* about 5 s of SIGKILL */
			LOG_ERROR("identity",
				  "processes of uid %u survive SIGKILL (stuck in the kernel?); the "
				  "uid is not given out again until riftd restarts",
				  (unsigned)uid);
			if (sw.nstuck == sw.max)
				return -EBUSY;
			sw.stuck[sw.nstuck++] = uid;
			*nstuck = sw.nstuck;
			continue;
		}
		kill_all_of(uid);
		nanosleep(&tick, NULL);
	}
	remove_ipc("/proc/sysvipc/shm", 0, &sw);
	remove_ipc("/proc/sysvipc/sem", 1, &sw);
	remove_ipc("/proc/sysvipc/msg", 2, &sw);
	remove_entries_of("/dev/shm", &sw);
	remove_entries_of("/dev/mqueue", &sw);
	return sw.nstuck > 0 ? -EBUSY : 0;
}
