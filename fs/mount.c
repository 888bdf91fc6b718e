/* mount.c — the lifecycle of one branch mount: checks, session, worker threads, unmount. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rift/log.h"
#include "ops_internal.h"

/* Finds mountpoint in /proc/self/mountinfo; fills major:minor of its device when asked. */
static bool find_mount(const char *mountpoint, unsigned *major, unsigned *minor)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	bool found = false;

	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned maj, min;
		char path[4096];
		/* id parent major:minor root mountpoint ... (mount points never contain blanks
		 * here: the kernel escapes them as \040, and rift's paths have none) */
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, path) != 3)
			continue;
		if (strcmp(path, mountpoint) == 0) {
			found = true;
			if (major != NULL)
				*major = maj;
			if (minor != NULL)
				*minor = min;
		}
	}
	fclose(f);
	return found;
}

/* The kernel limits a FUSE mount's dirty pages to 1% of the threshold; Postgres needs more
 * room than that for checkpoints. Best effort: the mount works without it, only slower. */
static void tune_bdi(const char *mountpoint)
{
	static const struct {
		const char *file, *value;
	} knobs[] = { { "max_ratio", "40" }, { "read_ahead_kb", "1024" } };
	unsigned maj, min;
	size_t i;

	if (!find_mount(mountpoint, &maj, &min))
		return;
	for (i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
		char path[128];
		int fd;
		snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/%s", maj, min, knobs[i].file);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (write(fd, knobs[i].value, strlen(knobs[i].value)) < 0) {
			/* not fatal: the defaults still work */
		}
		close(fd);
	}
}

static void *loop_main(void *arg)
{
	struct rift_mount *m = arg;
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();

	pthread_setname_np(pthread_self(), "rift-fs");
	if (cfg != NULL) {
		fuse_loop_cfg_set_max_threads(cfg, m->max_threads);
		fuse_loop_cfg_set_idle_threads(cfg, m->max_threads);
		fuse_session_loop_mt(m->se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	atomic_store(&m->ended, true);
	return NULL;
}

static int check_mountpoint(const char *mountpoint, char *err, size_t errlen)
{
	struct stat st;

	if (access("/dev/fuse", R_OK | W_OK) != 0) {
		snprintf(err, errlen,
			 "/dev/fuse is not available (%s): install fuse3 and load the module "
			 "(modprobe fuse); in a container, pass --device /dev/fuse and "
			 "--cap-add SYS_ADMIN",
			 strerror(errno));
		return -ENODEV;
	}
	if (stat(mountpoint, &st) != 0) {
		snprintf(err, errlen, "mount point %s: %s (create the directory first)", mountpoint,
			 strerror(errno));
		return -ENOENT;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "mount point %s is not a directory", mountpoint);
		return -ENOTDIR;
	}
	if (find_mount(mountpoint, NULL, NULL)) {
		snprintf(err, errlen,
			 "mount point %s is busy: something is already mounted there (unmount it "
			 "with `umount %s`, or pick another directory)",
			 mountpoint, mountpoint);
		return -EBUSY;
	}
	return 0;
}
/* CapEff of this process has CAP_SYS_ADMIN (bit 21), which mounting needs. */
static bool have_cap_sys_admin(void)
{
	char line[256];
	unsigned long long caps = 0;
	bool found = false;
	FILE *f = fopen("/proc/self/status", "re");

	while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
		found = sscanf(line, "CapEff: %llx", &caps) == 1;
	if (f != NULL)
		fclose(f);
	return !found || (caps & (1ull << 21)) != 0; /* unknown: do not blame it */
}

/*
 * Why a FUSE mount failed, as far as can be told from here (libfuse printed its own reason to
 * stderr): the causes seen in practice, most specific first, each with what to do. In a
 * container without SYS_ADMIN the old message sent users to /etc/fuse.conf.
 */
static void mount_failure_hint(char *buf, size_t len)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		snprintf(buf, len,
			 "/dev/fuse does not exist (load the fuse module: modprobe fuse; in a "
			 "container pass --device /dev/fuse)");
	else if (fd < 0)
		snprintf(buf, len, "cannot open /dev/fuse: %s", strerror(errno));
	else if (geteuid() != 0)
		snprintf(buf, len,
			 "not running as root (riftd and rift-fs need root, or user_allow_other "
			 "in /etc/fuse.conf for a non-root rift-fs)");
	else if (!have_cap_sys_admin())
		snprintf(buf, len,
			 "this process lacks CAP_SYS_ADMIN, which mounting needs (in a container "
			 "add --cap-add SYS_ADMIN: docs/container.md)");
	else
		snprintf(buf, len,
			 "the kernel refused the mount (see the message above and dmesg)");
	if (fd >= 0)
		close(fd);
}

int rift_mount_start(struct rift_store *store, const char *branch, const char *mountpoint,
		     const struct rift_mount_opts *opts, struct rift_mount **out, char *err,
		     size_t errlen)
{
	struct rift_mount *m = calloc(1, sizeof(*m));
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	char optstr[256];
	int rc;

	*out = NULL;
	if (m == NULL)
		return -ENOMEM;
	m->store = store;
	m->read_only = opts != NULL && opts->read_only;
	m->set_owner = opts != NULL && opts->set_owner;
	m->uid = m->set_owner ? opts->uid : 0;
	m->gid = m->set_owner ? opts->gid : 0;
	m->max_threads = opts != NULL && opts->max_threads ? opts->max_threads : 4;
	if (realpath(mountpoint, m->mountpoint) == NULL) {
		snprintf(err, errlen, "mount point %s: %s (create the directory first)", mountpoint,
			 strerror(errno));
		rc = -ENOENT;
		goto fail;
	}
	rc = check_mountpoint(m->mountpoint, err, errlen);
	if (rc != 0)
		goto fail;
	rc = rift_store_branch_open(store, branch, &m->branch);
	if (rc != 0) {
		if (rc == -ENOENT)
			snprintf(err, errlen,
				 "branch \"%s\" does not exist (rift list shows branches)", branch);
		else if (rc == -EBUSY)
			snprintf(
			    err, errlen,
			    "branch \"%s\" is already mounted by this process; unmount it first",
			    branch);
		else
			snprintf(err, errlen, "cannot open branch \"%s\": %s", branch,
				 strerror(-rc));
		goto fail;
	}
	snprintf(optstr, sizeof(optstr),
		 "allow_other,default_permissions,fsname=rift:%s,subtype=rift%s", branch,
		 m->read_only ? ",ro" : "");
	if (fuse_opt_add_arg(&args, "rift-fs") != 0 || fuse_opt_add_arg(&args, "-o") != 0 ||
	    fuse_opt_add_arg(&args, optstr) != 0 ||
	    (opts != NULL && opts->debug && fuse_opt_add_arg(&args, "-d") != 0)) {
		rc = -ENOMEM;
		goto fail;
	}
	m->se = fuse_session_new(&args, &rift_fuse_ops, sizeof(rift_fuse_ops), m);
	if (m->se == NULL) {
		snprintf(err, errlen, "cannot create the FUSE session for branch \"%s\"", branch);
		rc = -EIO;
		goto fail;
	}
	if (fuse_session_mount(m->se, m->mountpoint) != 0) {
		char why[256];
		mount_failure_hint(why, sizeof(why));
		snprintf(err, errlen, "cannot mount branch \"%s\" at %s: %s", branch, m->mountpoint,
			 why);
		rc = -EPERM;
		goto fail;
	}
	if (pthread_create(&m->loop, NULL, loop_main, m) != 0) {
		fuse_session_unmount(m->se);
		snprintf(err, errlen, "cannot start the FUSE threads: out of resources");
		rc = -EAGAIN;
		goto fail;
	}
	m->loop_started = true;
	m->have_dev = find_mount(m->mountpoint, NULL, &m->dev_minor);
	tune_bdi(m->mountpoint);
	fuse_opt_free_args(&args);
	*out = m;
	return 0;
fail:
	fuse_opt_free_args(&args);
	if (m->se != NULL)
		fuse_session_destroy(m->se);
	rift_store_branch_close(m->branch);
	free(m);
	return rc;
}

/* A detached mount lives on while some process holds a file in it; after a grace period the
 * connection is aborted through fusectl so that stopping never hangs. */
static void wait_or_abort(struct rift_mount *m)
{
	struct timespec tick = { 0, 20 * 1000 * 1000 };
	char path[96];
	int i, fd;

	for (i = 0; i < 150 && !atomic_load(&m->ended); i++)
		nanosleep(&tick, NULL);
	if (atomic_load(&m->ended) || !m->have_dev)
		return;
	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u/abort", m->dev_minor);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		LOG_WARN("fs", "%s is still in use and %s cannot be opened (%s)", m->mountpoint,
			 path, strerror(errno));
		return;
	}
	if (write(fd, "1", 1) < 0)
		LOG_ERROR("fs", "aborting the connection of %s failed: %s", m->mountpoint,
			  strerror(errno));
	close(fd);
}

bool rift_mount_ended(struct rift_mount *m)
{
	return atomic_load(&m->ended);
}

void rift_mount_stop(struct rift_mount *m)
{
	if (m == NULL)
		return;
	if (m->loop_started) {
		fuse_session_exit(m->se);
		/* Unmounting ends the connection, which wakes the workers blocked reading it.
		 * MNT_DETACH: a process that still holds a file open must not keep us waiting. */
		if (!atomic_load(&m->ended) && umount2(m->mountpoint, MNT_DETACH) != 0 &&
		    errno != EINVAL && errno != ENOENT)
			LOG_WARN("fs", "unmounting %s: %s", m->mountpoint, strerror(errno));
		wait_or_abort(m);
		pthread_join(m->loop, NULL);
		fuse_session_unmount(m->se);
	}
	if (m->se != NULL)
		fuse_session_destroy(m->se);
	if (rift_store_sync(m->store) != 0)
		LOG_ERROR("fs", "the final sync of branch at %s failed", m->mountpoint);
	rift_store_branch_close(m->branch);
	free(m);
}
