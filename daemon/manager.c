/* manager.c — branch lifecycle in riftd: store, mounts, servers, crash cleanup (idle stops are
 * manager_idle.c, the warm pool manager_warm.c). */
#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rift/log.h"
#include "rift/branch_name.h"
#include "rift/branch_secret.h"
#include "rift/branch_view.h"
#include "rift/identity.h"
#include "rift/latency.h"
#include "rift/instance.h"
#include "rift/manager.h"
#include "rift/mount.h"
#include "rift/pg_control.h"
#include "rift/pgproc.h"
#include "rift/verifiers.h"
#include "rift/wal_dir.h"
#include "manager_internal.h"

#define START_RETRY_S 5 /* a failed start is not retried sooner */
#define QUEUE_RETRY_S 1 /* clients behind a start that timed out queued share its answer */

static const double create_buckets_ms[] = { 5, 10, 25, 50, 100, 250, 500, 1000 };
_Static_assert(sizeof(create_buckets_ms) / sizeof(create_buckets_ms[0]) == NBUCKETS,
	       "NBUCKETS in manager_internal.h counts create_buckets_ms");

static double seconds_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* One start waiting for a slot; it waits on its own condition so it can leave the queue alone. */
struct start_waiter {
	pthread_cond_t cv;
	struct start_waiter *next;
};

/*
 * Takes one of max_starting start slots, first come first served, waiting until deadline.
 * Starts are CPU-bound (recovery, the page cache, FUSE); running them all at once makes every
 * one slow, while a bounded number finish early and free their clients. 0, -ETIMEDOUT, or
 * -ECANCELED once riftd is stopping (rift_manager_close_queue).
 */
static int start_slot_take(struct rift_manager *m, const struct timespec *deadline)
{
	struct start_waiter w = { .next = NULL };
	struct start_waiter **pp;
	int rc = 0;

	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w.cv, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_lock(&m->mu);
	*m->start_tail = &w;
	m->start_tail = &w.next;
	while (rc == 0 && !m->queue_closed &&
	       (m->start_queue != &w || m->starting >= m->max_starting))
		rc = pthread_cond_timedwait(&w.cv, &m->mu, deadline);
	if (m->start_queue == &w && m->starting < m->max_starting)
		rc = 0; /* the slot came with the timeout: take it */
	if (m->queue_closed)
		rc = ECANCELED;
	for (pp = &m->start_queue; *pp != &w; pp = &(*pp)->next)
		assert(*pp != NULL);
	*pp = w.next;
	if (m->start_tail == &w.next)
		m->start_tail = pp;
	if (rc == 0)
		m->starting++;
	assert(m->starting <= m->max_starting);
	if (m->start_queue != NULL) /* the next in line may go if a slot is left */
		pthread_cond_signal(&m->start_queue->cv);
	pthread_mutex_unlock(&m->mu);
	pthread_cond_destroy(&w.cv);
	return rc == 0 ? 0 : rc == ECANCELED ? -ECANCELED : -ETIMEDOUT;
}

void rift_manager_close_queue(struct rift_manager *m)
{
	struct start_waiter *w;

	pthread_mutex_lock(&m->mu);
	m->queue_closed = true;
	for (w = m->start_queue; w != NULL; w = w->next)
		pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&m->mu);
}

static void start_slot_give(struct rift_manager *m)
{
	pthread_mutex_lock(&m->mu);
	assert(m->starting > 0);
	m->starting--;
	if (m->start_queue != NULL)
		pthread_cond_signal(&m->start_queue->cv);
	pthread_mutex_unlock(&m->mu);
}

const struct rift_config *rift_manager_config(struct rift_manager *m)
{
	return &m->cfg;
}

const struct rift_base_meta *rift_manager_base(struct rift_manager *m)
{
	return &m->meta;
}

const char *rift_manager_state_dir(struct rift_manager *m)
{
	return m->state;
}

/* Finds (or, when the store has the branch, adds) its state. NULL if there is no such branch. */
struct bstate *manager_get_state(struct rift_manager *m, const char *name)
{
	struct rift_branch_info info;
	struct bstate *b = NULL;
	size_t i;

	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->n; i++)
		if (!m->v[i]->deleted && strcmp(m->v[i]->name, name) == 0) {
			b = m->v[i];
			goto out;
		}
	if (rift_store_branch_info(m->store, name, &info) != 0)
		goto out;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct bstate **nv = realloc(m->v, cap * sizeof(*nv));
		if (nv == NULL)
			goto out;
		m->v = nv;
		m->cap = cap;
	}
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		goto out;
	snprintf(b->name, sizeof(b->name), "%s", name);
	pthread_mutex_init(&b->op, NULL);
	m->v[m->n++] = b;
out:
	pthread_mutex_unlock(&m->mu);
	return b;
}

/* Branches of the warm pool carry WARM_PREFIX; users can neither make nor reach such names. */
bool manager_is_warm_name(const char *name)
{
	return strncmp(name, WARM_PREFIX, strlen(WARM_PREFIX)) == 0;
}

static enum rift_status check_name(const char *name, char *err, size_t errlen)
{
	enum rift_name_verdict v = rift_branch_name_check(name);

	if (v == RIFT_NAME_OK && manager_is_warm_name(name)) {
		snprintf(err, errlen,
			 "\"%.80s\" is not a valid branch name: names starting with " WARM_PREFIX
			 " are riftd's own (its warm pool); pick another",
			 name);
		return RIFT_BAD_REQUEST;
	}
	if (v == RIFT_NAME_OK)
		return RIFT_OK;
	snprintf(err, errlen, "\"%.80s\" is not a valid branch name: %s", name ? name : "",
		 rift_branch_name_explain(v));
	return RIFT_BAD_REQUEST;
}

static enum rift_status not_found(const char *name, char *err, size_t errlen)
{
	snprintf(err, errlen, "branch \"%s\" does not exist (rift list shows branches)", name);
	return RIFT_NOT_FOUND;
}

/* The names of running branches, so a restarted riftd brings them back. */
void manager_save_running(struct rift_manager *m)
{
	char path[4200], tmp[4300];
	FILE *f;
	size_t i;

	snprintf(path, sizeof(path), "%s/run/running", m->state);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (f == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->n; i++)
		if (m->v[i]->running && !m->v[i]->deleted && !m->v[i]->warm)
			fprintf(f, "%s\n", m->v[i]->name);
	pthread_mutex_unlock(&m->mu);
	if (fclose(f) == 0)
		rename(tmp, path);
}

/* Expiry times (from --ttl) survive restarts in <state>/expiry: "name epoch" lines. */
static void save_expiry(struct rift_manager *m)
{
	char path[4200], tmp[4300];
	FILE *f;
	size_t i;

	snprintf(path, sizeof(path), "%s/expiry", m->state);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (f == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->n; i++)
		if (m->v[i]->expires_at > 0 && !m->v[i]->deleted)
			fprintf(f, "%s %lld\n", m->v[i]->name, (long long)m->v[i]->expires_at);
	pthread_mutex_unlock(&m->mu);
	if (fclose(f) == 0)
		rename(tmp, path);
}

static void load_expiry(struct rift_manager *m)
{
	char path[4200], name[128];
	long long when;
	FILE *f;

	snprintf(path, sizeof(path), "%s/expiry", m->state);
	f = fopen(path, "re");
	while (f != NULL && fscanf(f, "%100s %lld", name, &when) == 2) {
		struct bstate *b = manager_get_state(m, name);
		if (b != NULL)
			b->expires_at = (time_t)when;
	}
	if (f != NULL)
		fclose(f);
}

/* m->mu held. Ports reserved by a branch count as taken even before its server binds them. */
static bool port_taken(struct rift_manager *m, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	size_t i;
	int fd, rc;

	for (i = 0; i < m->n; i++)
		if (m->v[i]->port == port)
			return true;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return true;
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return rc != 0;
}

/*
 * Reserves a free port for b's server, in the same critical section that checks it, so two
 * branches starting at once never pick the same one. A port another process binds meanwhile
 * is still possible (the caller retries); b keeps a port that failed so the retry skips it.
 */
static int pick_port(struct rift_manager *m, struct bstate *b)
{
	int span = m->cfg.port_max - m->cfg.port_min + 1, i, p, found = 0;
	unsigned int start = 0;

	/* Other riftds on the host (another store, a test) pick from the same range: starting at
	 * a random place makes two of them racing for one port (bind check, then the server's
	 * bind) rare, where lowest-first made them collide port after port. */
	if (getrandom(&start, sizeof(start), GRND_NONBLOCK) != (ssize_t)sizeof(start))
		start = (unsigned int)time(NULL);
	pthread_mutex_lock(&m->mu);
	for (i = 0; i < span && found == 0; i++) {
		p = m->cfg.port_min + (int)((start + (unsigned int)i) % (unsigned int)span);
		if (p != b->port && !port_taken(m, p))
			found = p;
	}
	b->port = found;
	b->inst.port = found;
	pthread_mutex_unlock(&m->mu);
	return found;
}

/* A uid of the range that no branch holds (m->mu held), taken in turn so that a uid comes back
 * as late as possible; 0 when every one is held. */
static uid_t pick_uid(struct rift_manager *m)
{
	unsigned i, n = (unsigned)m->cfg.uid_count;
	size_t j;

	for (i = 0; i < n; i++) {
		uid_t cand = (uid_t)m->cfg.uid_base + (m->uid_next + i) % n;
		bool held = false;
		for (j = 0; j < m->n && !held; j++)
			held = m->v[j]->uid == cand;
		for (j = 0; j < m->nstuck && !held; j++)
			held = m->stuck[j] == cand;
		if (!held) {
			m->uid_next = (m->uid_next + i + 1) % n;
			return cand;
		}
	}
	return 0;
}

/* Gives b's uid back once nothing of it is left: no process (a job may have started daemons
 * with COPY ... TO PROGRAM), no IPC object, no /dev/shm entry that the next holder could use. */
static void release_uid(struct rift_manager *m, struct bstate *b)
{
	uid_t uid = b->uid, stuck;
	size_t nstuck;

	if (uid == 0)
		return;
	if (rift_identity_sweep(uid, 1, &stuck, 1, &nstuck) != 0)
		LOG_ERROR("manager", "uid %u of branch %s is kept out of use", (unsigned)uid,
			  b->name);
	pthread_mutex_lock(&m->mu);
	if (nstuck > 0 && m->nstuck < sizeof(m->stuck) / sizeof(m->stuck[0]))
		m->stuck[m->nstuck++] = uid;
	b->uid = 0;
	pthread_mutex_unlock(&m->mu);
}

/* Stops the server and unmounts; b->op held. */
void manager_stop_locked(struct rift_manager *m, struct bstate *b)
{
	char own[4200];
	size_t i;

	/* a bind left on the view would keep the FUSE session alive past its unmount */
	for (i = 0; i < b->nviews; i++)
		rift_view_detach(b->views[i].path, b->views[i].mnt_id);
	b->nviews = 0;

	rift_instance_stop(&b->inst, m->cfg.stop_timeout_s);
	/* its uid may go to another branch next: the WAL directory must not go with it */
	if (b->inst.walroot[0] != '\0' && b->inst.wal_id != 0)
		rift_wal_close(b->inst.walroot, b->inst.wal_id);
	/* before unmounting: a process left by the job (its cwd in the mount) keeps it busy */
	release_uid(m, b);
	/* its processes are gone now: what they left in their temporary directory can go */
	if (b->inst.walroot[0] != '\0' && b->inst.wal_id != 0)
		rift_wal_temp_reap(b->inst.walroot, b->inst.wal_id);
	rift_mount_stop(b->mount);
	b->mount = NULL;
	/* written afresh at every start: none is left behind by a stopped or deleted branch, or by
	 * a warm server whose branch was renamed */
	if (b->inst.hbafile[0] != '\0' && unlink(b->inst.hbafile) != 0 && errno != ENOENT)
		LOG_WARN("manager", "cannot remove %s: %s", b->inst.hbafile, strerror(errno));
	/* pool paths go with their server: a pooled server's own, and those a branch taken from the
	 * pool ran on (its next start uses its own) */
	snprintf(own, sizeof(own), "%s/mnt/%s", m->state, b->name);
	if (b->mnt[0] != '\0' && (b->warm || strcmp(b->mnt, own) != 0)) {
		rmdir(b->mnt);
		rmdir(b->inst.sockdir);
	}
	b->mnt[0] = '\0';
	pthread_mutex_lock(&m->mu);
	b->inst.pid = 0;
	b->running = false;
	b->port = 0;
	b->routed = 0; /* pooled is not reset: the router lets each session go as its server ends */
	pthread_mutex_unlock(&m->mu);
}

/* Stops the server without its shutdown checkpoint, then as manager_stop_locked; b->op held. For
 * a branch whose data goes next (delete, reset, a dropped warm server), or that must stop at once
 * (the WAL guard: its next start recovers from its WAL). */
void manager_discard_locked(struct rift_manager *m, struct bstate *b)
{
	rift_instance_discard(&b->inst);
	manager_stop_locked(m, b);
}

/* RIFT_TEST_SLOW_START=<branch>:<seconds> delays that branch's starts (tests of isolation). */
static void test_slow_start(const char *name)
{
	const char *spec = getenv("RIFT_TEST_SLOW_START");
	size_t len = strlen(name);
	struct timespec ts = { 0, 0 };

	if (spec == NULL || strncmp(spec, name, len) != 0 || spec[len] != ':')
		return;
	ts.tv_sec = strtol(spec + len + 1, NULL, 10);
	if (ts.tv_sec > 0 && ts.tv_sec < 600) {
		LOG_WARN("manager", "RIFT_TEST_SLOW_START: delaying the start of %s by %ld s", name,
			 (long)ts.tv_sec);
		nanosleep(&ts, NULL);
	}
}

/* The uids servers run as: whose files in a WAL directory are a branch's where the filesystem
 * keeps no xattrs (wal_dir.h). */
static void server_uids(struct rift_manager *m, uid_t *lo, uid_t *hi)
{
	char err[256];
	gid_t gid;

	if (m->cfg.uid_count > 0) {
		*lo = (uid_t)m->cfg.uid_base;
		*hi = (uid_t)m->cfg.uid_base + (uid_t)m->cfg.uid_count - 1;
	} else if (rift_pg_user(m->cfg.pg_user, lo, &gid, err, sizeof(err)) == 0) {
		*hi = *lo;
	} else {
		*lo = 1; /* no such user: nothing but root's own copies is trusted */
		*hi = 0;
	}
}

/* manager_start_locked's work once it holds a start slot. */
static enum rift_status start_slotted(struct rift_manager *m, struct bstate *b, char *err,
				      size_t errlen)
{
	struct rift_mount_opts opts = { .max_threads = (unsigned)m->cfg.fs_threads };
	struct rift_branch_info info;
	char mnt[4200];
	int rc, tries;

	snprintf(mnt, sizeof(mnt), "%s/mnt/%s", m->state, b->name);
	snprintf(b->mnt, sizeof(b->mnt), "%s", mnt);
	if (mkdir(mnt, 0711) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create mount point %s: %s", mnt, strerror(errno));
		return RIFT_FAILED;
	}
	if (m->cfg.uid_count > 0) {
		/* a uid of its own: its superuser's shell reaches no other branch */
		pthread_mutex_lock(&m->mu);
		b->uid = pick_uid(m);
		pthread_mutex_unlock(&m->mu);
		if (b->uid == 0) {
			snprintf(err, errlen,
				 "every uid of [instances] uid_base..+uid_count (%d from %d) is "
				 "taken by a running branch; stop one or raise uid_count in "
				 "rift.conf",
				 m->cfg.uid_count, m->cfg.uid_base);
			return RIFT_UNAVAILABLE;
		}
		opts.set_owner = true;
		opts.uid = b->uid;
		opts.gid = (gid_t)b->uid;
	} else {
		/* one shared uid (pg_user): files earlier servers wrote under uids of their own
		 * must still be this server's */
		opts.set_owner =
		    rift_pg_user(m->cfg.pg_user, &opts.uid, &opts.gid, err, errlen) == 0;
		if (!opts.set_owner)
			return RIFT_FAILED;
	}
	rc = rift_mount_start(m->store, b->name, mnt, &opts, &b->mount, err, errlen);
	if (rc != 0) {
		release_uid(m, b);
		return rc == -ENOENT ? RIFT_NOT_FOUND : RIFT_FAILED;
	}
	pthread_mutex_lock(&m->mu);
	memset(&b->inst, 0, sizeof(b->inst));
	b->port = 0;
	b->inst.hba_closed = b->warm; /* no login over TCP until a create takes it */
	b->inst.uid = b->uid;
	b->inst.gid = (gid_t)b->uid;
	pthread_mutex_unlock(&m->mu);
	snprintf(b->inst.branch, sizeof(b->inst.branch), "%s", b->name);
	snprintf(b->inst.datadir, sizeof(b->inst.datadir), "%.4000s", mnt);
	snprintf(b->inst.sockdir, sizeof(b->inst.sockdir), "%.3000s/run/pg/%s", m->state, b->name);
	snprintf(b->inst.logpath, sizeof(b->inst.logpath), "%.3000s/log/%s.log", m->state, b->name);
	snprintf(b->inst.hbafile, sizeof(b->inst.hbafile), "%.3000s/run/hba/%s.conf", m->state,
		 b->name);
	if (rift_store_branch_info(m->store, b->name, &info) != 0) {
		/* without its id riftd cannot tell which WAL directory is the branch's */
		snprintf(err, errlen, "branch \"%s\" is no longer in the store", b->name);
		manager_stop_locked(m, b);
		return RIFT_NOT_FOUND;
	}
	if (info.id != 0 && m->walroot[0] != '\0') {
		snprintf(b->inst.walroot, sizeof(b->inst.walroot), "%s", m->walroot);
		b->inst.wal_id = info.id;
		b->inst.wal_fork = info.fork_layer;
		b->inst.wal_in_store = info.max_size != 0;
		b->inst.wal_lo = m->wal_lo;
		b->inst.wal_hi = m->wal_hi;
	} else {
		b->inst.walroot[0] = '\0'; /* a store that predates ids keeps pg_wal inside */
	}
	for (tries = 0;; tries++) {
		if (pick_port(m, b) == 0) {
			snprintf(err, errlen,
				 "no free port in [instances] port_min..port_max (%d..%d); stop a "
				 "branch or widen the range in rift.conf",
				 m->cfg.port_min, m->cfg.port_max);
			manager_stop_locked(m, b);
			return RIFT_UNAVAILABLE;
		}
		rc = rift_instance_start(&m->cfg, m->bindir, &b->inst, err, errlen);
		/* someone bound the port between our check and the server's: take another */
		if (rc != -EADDRINUSE || tries == 20)
			break;
	}
	if (rc == -EADDRINUSE)
		snprintf(err, errlen, "every port tried for branch \"%s\" was taken meanwhile",
			 b->name);
	if (rc != 0) {
		manager_stop_locked(m, b);
		pthread_mutex_lock(&m->mu);
		snprintf(b->error, sizeof(b->error), "%s", err);
		pthread_mutex_unlock(&m->mu);
		return RIFT_FAILED;
	}
	/* from now on its commits go to WAL beside the store and may leave the head unchanged:
	 * the next branch of it must freeze the head, not share the layer below (wal_dir.h) */
	if (b->inst.walroot[0] != '\0' && !b->inst.wal_in_store)
		(void)rift_store_branch_mark_changed(m->store, b->name);
	pthread_mutex_lock(&m->mu);
	b->running = true;
	b->error[0] = '\0';
	b->last_active = time(NULL);
	/* the first count comes at the next tick: it sets the baseline of sessions */
	b->clients_checked_at = 0;
	b->direct_clients = false;
	b->sessions = -1;
	b->wal_seen = 0;
	pthread_mutex_unlock(&m->mu);
	return RIFT_OK;
}

enum rift_status manager_start_locked(struct rift_manager *m, struct bstate *b, char *err,
				      size_t errlen)
{
	struct timespec queued, deadline, started, done;
	enum rift_status st;
	int rc;

	if (b->running && rift_instance_alive(&b->inst))
		return RIFT_OK;
	if (b->running)
		manager_stop_locked(m, b); /* the server died: start afresh */
	clock_gettime(CLOCK_MONOTONIC, &queued);
	/* clients queued behind a start that failed get its error, not a start each: a branch
	 * whose server cannot start (or is made to start slowly) holds a start slot once per
	 * START_RETRY_S, not once per waiting client */
	if (b->failed_at.tv_sec != 0 && seconds_between(&b->failed_at, &queued) < START_RETRY_S) {
		pthread_mutex_lock(&m->mu);
		snprintf(err, errlen, "%s (riftd tries again %d s after a failed start)", b->error,
			 START_RETRY_S);
		pthread_mutex_unlock(&m->mu);
		return RIFT_FAILED;
	}
	/* clients that waited on b->op behind a start that timed out in the queue get its answer
	 * now, rather than each joining the queue again for another queue_timeout */
	if (b->queue_failed_at.tv_sec != 0 &&
	    seconds_between(&b->queue_failed_at, &queued) < QUEUE_RETRY_S) {
		pthread_mutex_lock(&m->mu);
		snprintf(err, errlen, "%s", b->error);
		pthread_mutex_unlock(&m->mu);
		return RIFT_UNAVAILABLE;
	}
	/* the queue has a limit of its own: on a small machine a burst of a hundred jobs waits
	 * minutes for slots while every start takes seconds, and a client held is better served
	 * than one refused after start_timeout (its own connect_timeout still applies) */
	deadline = queued;
	deadline.tv_sec += m->cfg.queue_timeout_s;
	rc = start_slot_take(m, &deadline);
	if (rc == -ECANCELED) {
		snprintf(err, errlen, "riftd is stopping; branch \"%s\" was not started", b->name);
		LOG_INFO("manager", "%s (its start was queued for a slot)", err);
		return RIFT_UNAVAILABLE;
	}
	if (rc != 0) {
		snprintf(err, errlen,
			 "branch \"%s\" waited %d s for one of the %d start slots ([instances] "
			 "max_starting); too many branches are starting at once — retry, or raise "
			 "max_starting or queue_timeout in rift.conf",
			 b->name, m->cfg.queue_timeout_s, m->max_starting);
		pthread_mutex_lock(&m->mu);
		snprintf(b->error, sizeof(b->error), "%s", err);
		pthread_mutex_unlock(&m->mu);
		clock_gettime(CLOCK_MONOTONIC, &b->queue_failed_at);
		return RIFT_UNAVAILABLE;
	}
	clock_gettime(CLOCK_MONOTONIC, &started);
	pthread_mutex_lock(&m->mu);
	b->starting = true;
	pthread_mutex_unlock(&m->mu);
	test_slow_start(b->name);
	st = start_slotted(m, b, err, errlen);
	start_slot_give(m);
	clock_gettime(CLOCK_MONOTONIC, &done);
	pthread_mutex_lock(&m->mu);
	b->starting = false;
	if (st == RIFT_OK)
		b->starts++;
	pthread_mutex_unlock(&m->mu);
	if (st == RIFT_OK)
		rift_latency_since(&m->start_lat, &queued);
	if (st == RIFT_FAILED)
		b->failed_at = done;
	else
		b->failed_at.tv_sec = 0;
	if (st == RIFT_OK)
		LOG_INFO("manager",
			 "branch %s started in %.2f s (after %.2f s waiting for a start slot)",
			 b->name, seconds_between(&started, &done),
			 seconds_between(&queued, &started));
	return st;
}

/* Never waits on b->op: the router's loop calls this while other branches start or stop. */
static void fill_view(struct rift_manager *m, struct bstate *b, struct rift_branch_view *out)
{
	memset(out, 0, sizeof(*out));
	rift_store_branch_info(m->store, b->name, &out->info);
	pthread_mutex_lock(&m->mu);
	out->running = b->running;
	out->port = b->running ? b->port : 0;
	out->expires_at = (long long)b->expires_at;
	snprintf(out->error, sizeof(out->error), "%s", b->error);
	out->starting = b->starting;
	out->connections = b->routed;
	out->pooled = b->pooled;
	out->starts = b->starts;
	pthread_mutex_unlock(&m->mu);
}

enum rift_status rift_manager_start(struct rift_manager *m, const char *name,
				    struct rift_branch_view *out, char *err, size_t errlen)
{
	enum rift_status st = check_name(name, err, errlen);
	struct bstate *b;

	if (st != RIFT_OK)
		return st;
	b = manager_get_state(m, name);
	if (b == NULL)
		return not_found(name, err, errlen);
	pthread_mutex_lock(&b->op);
	st = b->deleted ? not_found(name, err, errlen) : manager_start_locked(m, b, err, errlen);
	if (st == RIFT_OK && out != NULL)
		fill_view(m, b, out);
	pthread_mutex_unlock(&b->op);
	manager_save_running(m);
	return st;
}

/* Whether a `rift mount` of the branch is still mounted: it keeps the branch from idling out. */
bool manager_views_in_use(struct bstate *b)
{
	size_t i, kept = 0;

	for (i = 0; i < b->nviews; i++)
		if (rift_view_mount_id(b->views[i].path) == b->views[i].mnt_id)
			b->views[kept++] = b->views[i];
	b->nviews = kept;
	return kept > 0;
}

enum rift_status rift_manager_mount(struct rift_manager *m, const char *name, const char *dir,
				    struct rift_branch_view *out, char *err, size_t errlen)
{
	enum rift_status st = check_name(name, err, errlen);
	struct bstate *b;
	char src[4200];
	int rc;

	if (st != RIFT_OK)
		return st;
	b = manager_get_state(m, name);
	if (b == NULL)
		return not_found(name, err, errlen);
	pthread_mutex_lock(&b->op);
	if (b->deleted) {
		st = not_found(name, err, errlen);
		goto out;
	}
	manager_views_in_use(b);
	if (b->nviews >= RIFT_MAX_VIEWS) {
		snprintf(err, errlen,
			 "branch \"%s\" is already mounted at %d places (umount one of them)", name,
			 RIFT_MAX_VIEWS);
		st = RIFT_CONFLICT;
		goto out;
	}
	/* the view riftd serves is the one the server writes; starting makes it consistent
	 * (crash recovery of a copy would change files under the reader) */
	st = manager_start_locked(m, b, err, errlen);
	if (st != RIFT_OK)
		goto out;
	pthread_mutex_lock(&m->mu);
	snprintf(src, sizeof(src), "%s", b->mnt);
	pthread_mutex_unlock(&m->mu);
	rc = rift_view_bind(src, dir, &b->views[b->nviews].mnt_id, err, errlen);
	if (rc != 0) {
		st = rc == -EPERM || rc == -EACCES ? RIFT_FAILED : RIFT_BAD_REQUEST;
		goto out;
	}
	snprintf(b->views[b->nviews].path, sizeof(b->views[b->nviews].path), "%s", dir);
	b->nviews++;
	pthread_mutex_lock(&m->mu);
	b->last_active = time(NULL);
	pthread_mutex_unlock(&m->mu);
	LOG_INFO("manager", "branch %s: its files are mounted read-only at %s", name, dir);
	if (out != NULL)
		fill_view(m, b, out);
out:
	pthread_mutex_unlock(&b->op);
	manager_save_running(m);
	return st;
}

enum rift_status rift_manager_stop(struct rift_manager *m, const char *name, char *err,
				   size_t errlen)
{
	enum rift_status st = check_name(name, err, errlen);
	struct bstate *b;

	if (st != RIFT_OK)
		return st;
	b = manager_get_state(m, name);
	if (b == NULL)
		return not_found(name, err, errlen);
	pthread_mutex_lock(&b->op);
	manager_stop_locked(m, b);
	pthread_mutex_unlock(&b->op);
	manager_save_running(m);
	return RIFT_OK;
}

static void observe_create(struct rift_manager *m, double seconds)
{
	size_t i;

	pthread_mutex_lock(&m->mu);
	for (i = 0; i < NBUCKETS && seconds * 1000.0 > create_buckets_ms[i]; i++)
		;
	m->create_hist[i]++;
	m->create_count++;
	m->create_sum_s += seconds;
	pthread_mutex_unlock(&m->mu);
}

static enum rift_status store_status(int rc, const char *name, const char *from, char *err,
				     size_t errlen)
{
	switch (rc) {
	case 0:
		return RIFT_OK;
	case -EEXIST:
		snprintf(err, errlen,
			 "branch \"%s\" already exists (pick another name, or rift delete "
			 "%s first)",
			 name, name);
		return RIFT_CONFLICT;
	case -ENOENT:
		return not_found(from ? from : name, err, errlen);
	case -ENOTEMPTY:
		snprintf(err, errlen,
			 "branch \"%s\" has branches made from it; delete those first (rift list "
			 "shows each branch's parent)",
			 name);
		return RIFT_CONFLICT;
	case -EBUSY:
		snprintf(err, errlen, "branch \"%s\" is in use; stop it first (rift stop %s)", name,
			 name);
		return RIFT_CONFLICT;
	case -ENOSPC:
		snprintf(err, errlen, "the disk under the store is full; free space and retry");
		return RIFT_FAILED;
	default:
		snprintf(err, errlen, "the store failed: %s (see riftd's log)", strerror(-rc));
		return RIFT_FAILED;
	}
}

/*
 * RIFT_TEST_SLOW_WAL_COPY=<branch>:<ms> waits that long between freezing the parent for a new
 * branch of that name and copying its WAL, the first time only (tests of a checkpoint that ends
 * in between).
 */
static void test_slow_wal_copy(const char *name)
{
	const char *spec = getenv("RIFT_TEST_SLOW_WAL_COPY");
	size_t len = strlen(name);
	long ms;

	if (spec == NULL || strncmp(spec, name, len) != 0 || spec[len] != ':')
		return;
	ms = strtol(spec + len + 1, NULL, 10);
	if (ms > 0 && ms < 60000) {
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
		LOG_WARN("manager",
			 "RIFT_TEST_SLOW_WAL_COPY: waiting %ld ms before copying %s's WAL", ms,
			 name);
		nanosleep(&ts, NULL);
	}
}

void manager_remove_log(struct rift_manager *m, const char *name, const char *logpath)
{
	char path[4200];

	snprintf(path, sizeof(path), "%.3000s/log/%s.log", m->state, name);
	if (unlink(path) != 0 && errno != ENOENT)
		LOG_WARN("manager", "cannot remove %s: %s", path, strerror(errno));
	/* a warm server taken under a new name whose log could not be renamed logs there */
	if (logpath != NULL && logpath[0] != '\0' && strcmp(logpath, path) != 0 &&
	    unlink(logpath) != 0 && errno != ENOENT)
		LOG_WARN("manager", "cannot remove %s: %s", logpath, strerror(errno));
}

/* A running parent is asked for a CHECKPOINT first, so the child's recovery is short. */
static void checkpoint_if_running(struct rift_manager *m, struct bstate *p)
{
	char err[512];

	if (p != NULL && p->running &&
	    rift_instance_exec(&p->inst, m->cfg.pg_user, "CHECKPOINT", err, sizeof(err)) != 0)
		LOG_WARN("manager", "%s (branching anyway: the child recovers from WAL)", err);
}

/* The store's delete, then the branch's WAL directory and what no layer needs any more. */
int manager_branch_delete(struct rift_manager *m, const char *name)
{
	struct rift_branch_info info;
	bool known = rift_store_branch_info(m->store, name, &info) == 0 && info.id != 0;
	int rc = rift_store_branch_delete(m->store, name);

	if (rc == 0 && known && m->walroot[0] != '\0') {
		rift_wal_remove(m->walroot, info.id);
		rift_wal_collect(m->walroot, m->store, false);
	}
	return rc;
}

/*
 * Makes branch name from branch from in the store (the parent asked for a CHECKPOINT first when
 * it runs), then gives it a copy of the parent's WAL when the parent keeps it beside the store
 * (wal_dir.h). A copy with a gap (a checkpoint ended while it was read) is taken again, at most
 * three times. Caller holds p->op. 0, a store error (-errno, for store_status), or 1 with *err
 * saying why the WAL could not be copied (the branch is gone again then).
 */
int manager_branch_create(struct rift_manager *m, struct bstate *p, const char *name,
			  const char *from, char *err, size_t errlen)
{
	struct rift_branch_info pi, ci;
	struct rift_pg_checkpoint ckpt;
	bool have_ckpt;
	int rc, tries;

	for (tries = 0;; tries++) {
		checkpoint_if_running(m, p);
		/* a running parent commits to WAL beside the store, which leaves its head unchanged
		 * until a checkpoint writes the pages: freeze it anyway, so the child gets the WAL
		 * as of now, not the copy made for the layer below */
		if (p != NULL && p->running)
			(void)rift_store_branch_mark_changed(m->store, from);
		rc = rift_store_branch_create(m->store, name, from, 0);
		if (rc != 0 || from == NULL)
			return rc;
		if (rift_store_branch_info(m->store, from, &pi) != 0 ||
		    rift_store_branch_info(m->store, name, &ci) != 0 || pi.id == 0 || ci.id == 0 ||
		    ci.fork_layer == 0 || m->walroot[0] == '\0')
			return 0; /* a store without ids: pg_wal stays inside it */
		/* the copy must reach back to where the child's recovery starts */
		have_ckpt = rift_pg_checkpoint_read(m->store, name, &ckpt) == 0;
		if (!have_ckpt)
			LOG_WARN(
			    "manager",
			    "branch %s: cannot read its pg_control, so its WAL copy is checked "
			    "for gaps only",
			    name);
		if (tries == 0)
			test_slow_wal_copy(name);
		rc = rift_wal_branched(m->walroot, pi.id, ci.fork_layer, ci.id,
				       have_ckpt ? &ckpt : NULL, m->wal_lo, m->wal_hi, err, errlen);
		if (rc == 0)
			return 0;
		LOG_WARN("manager", "branch %s of %s: %s", name, from, err);
		if (manager_branch_delete(m, name) != 0) {
			LOG_ERROR("manager",
				  "branch %s has no WAL and cannot be deleted: delete it by "
				  "hand (rift delete %s)",
				  name, name);
			return 1;
		}
		if (rc != -EAGAIN || tries == 2)
			return 1;
	}
}

/* Gives the base's login role the password in branch b only (b->op held), starting its server:
 * riftd sends a SCRAM verifier it computed, never the plaintext, so no server log can hold it. */
static enum rift_status set_password_locked(struct rift_manager *m, struct bstate *b,
					    const char *password, char *err, size_t errlen)
{
	char role[128], quoted[300], verifier[RIFT_SECRET_VERIFIER_MAX], sql[600], why[1024];
	enum rift_status st;
	size_t i, q = 0;

	if (rift_secret_login_role(&m->meta, role, sizeof(role)) != 0) {
		snprintf(err, errlen,
			 "the base names no login role (it was copied from a data directory), so "
			 "there is no role to give a password; create the branch without "
			 "--new-password and set one with ALTER ROLE");
		return RIFT_BAD_REQUEST;
	}
	for (i = 0; role[i] != '\0' && q + 3 < sizeof(quoted); i++) { /* a quoted identifier */
		if (role[i] == '"')
			quoted[q++] = '"';
		quoted[q++] = role[i];
	}
	quoted[q] = '\0';
	if (rift_secret_verifier(password, verifier, sizeof(verifier)) != 0) {
		snprintf(err, errlen,
			 "cannot compute a SCRAM verifier (is /dev/urandom readable?)");
		return RIFT_FAILED;
	}
	st = manager_start_locked(m, b, err, errlen);
	if (st != RIFT_OK)
		return st;
	snprintf(sql, sizeof(sql), "ALTER ROLE \"%s\" PASSWORD '%s'", quoted, verifier);
	if (rift_instance_exec(&b->inst, m->cfg.pg_user, sql, why, sizeof(why)) != 0) {
		/* why quotes the statement; say what failed without the verifier */
		snprintf(err, errlen,
			 "cannot set the password of role \"%s\" in branch \"%s\" (does the role "
			 "exist there? see riftd's log)",
			 role, b->name);
		LOG_ERROR("manager", "ALTER ROLE %s PASSWORD in branch %s failed", role, b->name);
		return RIFT_FAILED;
	}
	if (rift_secret_save(m->state, b->name, password) != 0) {
		snprintf(err, errlen, "cannot save the password of branch \"%s\" under %s/secrets",
			 b->name, m->state);
		return RIFT_FAILED;
	}
	return RIFT_OK;
}

enum rift_status rift_manager_create(struct rift_manager *m, const char *name,
				     const struct rift_create_opts *opts,
				     struct rift_branch_view *out, char *err, size_t errlen)
{
	enum rift_status st = check_name(name, err, errlen);
	const char *from = opts->from;
	long ttl_s = opts->ttl_s;
	uint64_t max_size;
	struct bstate *p = NULL, *b;
	struct timespec t0, t1;
	int rc;

	if (st != RIFT_OK)
		return st;
	if (from == NULL || from[0] == '\0')
		from = "main";
	if ((st = check_name(from, err, errlen)) != RIFT_OK)
		return st;
	p = manager_get_state(m, from);
	if (p == NULL)
		return not_found(from, err, errlen);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	max_size = opts->has_max_size ? opts->max_size : m->cfg.default_max_size;
	/* a size-limited branch is mounted without the writeback cache: pooled ones have it */
	b = strcmp(from, "main") == 0 && max_size == 0 ? warm_pool_claim(m) : NULL;
	rc = b != NULL ? warm_pool_take(m, b, name) : -EAGAIN;
	if (rc == -EAGAIN) { /* no warm server fits: a new branch, started on first use */
		pthread_mutex_lock(&p->op);
		rc = manager_branch_create(m, p, name, from, err, errlen);
		pthread_mutex_unlock(&p->op);
		if (rc == 1)
			return RIFT_FAILED;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (rc != 0)
		return store_status(rc, name, from, err, errlen);
	if (rc == 0 && opts->labels != NULL && opts->labels[0] != '\0')
		rc = rift_store_branch_set_labels(m->store, name, opts->labels);
	if (rc == 0 && max_size != 0)
		rc = rift_store_branch_set_max_size(m->store, name, max_size);
	if (rc != 0) {
		char derr[512];
		/* a branch without the limit or labels it was asked for must not exist (cleanup
		 * by label would miss it); a warm one taken has a server to stop first */
		if (rift_manager_delete(m, name, derr, sizeof(derr)) != RIFT_OK)
			LOG_ERROR("manager",
				  "branch %s made without its size limit or labels could not be "
				  "deleted (%s): delete it by hand (rift delete %s)",
				  name, derr, name);
		return store_status(rc, name, from, err, errlen);
	}
	observe_create(m, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	/* its pg_authid is its parent's: so are the verifiers the router checks passwords with */
	if ((rc = rift_verifiers_inherit(m->state, from, name)) != 0)
		LOG_WARN("manager", "branch %s: cannot copy %s's role verifiers: %s", name, from,
			 strerror(-rc));
	b = manager_get_state(m, name);
	if (b == NULL)
		return not_found(name, err, errlen);
	if (opts->new_password) {
		char password[RIFT_SECRET_PASSWORD_LEN + 1];
		if (rift_secret_new_password(password, sizeof(password)) != 0) {
			snprintf(err, errlen, "cannot read /dev/urandom for a password");
			st = RIFT_FAILED;
		} else {
			pthread_mutex_lock(&b->op);
			st = set_password_locked(m, b, password, err, errlen);
			pthread_mutex_unlock(&b->op);
		}
		if (st != RIFT_OK) {
			char derr[512];
			/* a branch whose URL would not work is worse than none */
			if (rift_manager_delete(m, name, derr, sizeof(derr)) != RIFT_OK)
				LOG_ERROR("manager", "%s", derr);
			return st;
		}
		if (out != NULL)
			fill_view(m, b, out);
		if (out != NULL)
			snprintf(out->password, sizeof(out->password), "%s", password);
		explicit_bzero(password, sizeof(password));
	} else {
		char password[64];
		/* the parent's own password is in the child's copy of pg_authid: keep rift url
		 * right */
		if (rift_secret_load(m->state, from, password, sizeof(password)) == 0 &&
		    rift_secret_save(m->state, name, password) != 0)
			LOG_ERROR("manager", "cannot copy the password of %s to %s", from, name);
		if (out != NULL)
			fill_view(m, b, out);
	}
	if (ttl_s > 0) {
		pthread_mutex_lock(&m->mu); /* the idle thread reads it under mu */
		b->expires_at = time(NULL) + ttl_s;
		pthread_mutex_unlock(&m->mu);
		save_expiry(m);
	}
	return RIFT_CREATED;
}

/* What riftd keeps of a branch beside the store, once the store has deleted it; b->op held. */
static void forget_deleted(struct rift_manager *m, struct bstate *b)
{
	char mnt[4200];

	rift_verifiers_forget(m->state, b->name);
	b->deleted = true;
	snprintf(mnt, sizeof(mnt), "%s/mnt/%s", m->state, b->name);
	rmdir(mnt);
	if (rift_secret_remove(m->state, b->name) != 0)
		LOG_ERROR("manager", "cannot remove %s/secrets/%s", m->state, b->name);
}

/* rift_manager_delete; when only_expired, only a branch whose --ttl has passed, checked under
 * its op (a TTL delete must not take a branch made again under the name since it was due). */
static enum rift_status delete_branch(struct rift_manager *m, const char *name, bool only_expired,
				      char *err, size_t errlen)
{
	enum rift_status st = check_name(name, err, errlen);
	struct rift_branch_info info;
	struct bstate *b;
	bool due;
	int rc;

	if (st != RIFT_OK)
		return st;
	if (strcmp(name, "main") == 0) {
		snprintf(err, errlen, "\"main\" holds the base's view and cannot be deleted");
		return RIFT_CONFLICT;
	}
	b = manager_get_state(m, name);
	if (b == NULL) /* a TTL delete of a branch deleted meanwhile has nothing to do */
		return only_expired ? RIFT_OK : not_found(name, err, errlen);
	pthread_mutex_lock(&b->op);
	pthread_mutex_lock(&m->mu);
	due = b->expires_at > 0 && time(NULL) >= b->expires_at;
	pthread_mutex_unlock(&m->mu);
	/* deleted while this waited for op: the name may belong to a new branch by now */
	if (b->deleted || (only_expired && !due)) {
		pthread_mutex_unlock(&b->op);
		return b->deleted && !only_expired ? not_found(name, err, errlen) : RIFT_OK;
	}
	if (only_expired)
		LOG_INFO("manager", "branch %s expired (--ttl): deleting it", name);
	if (rift_store_branch_info(m->store, name, &info) == 0 && info.nchildren > 0) {
		pthread_mutex_unlock(&b->op);
		return store_status(-ENOTEMPTY, name, NULL, err, errlen);
	}
	manager_discard_locked(m, b);
	/* its server log goes too (a CI runner deletes thousands of branches, and a new branch of
	 * the name would append to it), before the store lets the name go: a create of the same
	 * name may rename a warm server's log to it right after */
	manager_remove_log(m, b->name, b->inst.logpath);
	rc = manager_branch_delete(m, name);
	if (rc == 0)
		forget_deleted(m, b);
	pthread_mutex_unlock(&b->op);
	manager_save_running(m);
	if (rc == 0 && b->expires_at > 0)
		save_expiry(m);
	return store_status(rc, name, NULL, err, errlen);
}

enum rift_status rift_manager_delete(struct rift_manager *m, const char *name, char *err,
				     size_t errlen)
{
	return delete_branch(m, name, false, err, errlen);
}

enum rift_status manager_delete_expired(struct rift_manager *m, const char *name, char *err,
					size_t errlen)
{
	return delete_branch(m, name, true, err, errlen);
}

enum rift_status rift_manager_reset(struct rift_manager *m, const char *name, char *err,
				    size_t errlen)
{
	enum rift_status st = check_name(name, err, errlen);
	struct rift_branch_info info;
	struct bstate *b, *p;
	bool was_running;
	int rc;

	if (st != RIFT_OK)
		return st;
	if (rift_store_branch_info(m->store, name, &info) != 0)
		return not_found(name, err, errlen);
	if (info.parent[0] == '\0') {
		snprintf(err, errlen,
			 "branch \"%s\" was made from the base, not from a branch; "
			 "there is no parent to reset to",
			 name);
		return RIFT_CONFLICT;
	}
	if (info.nchildren > 0)
		return store_status(-ENOTEMPTY, name, NULL, err, errlen);
	b = manager_get_state(m, name);
	p = manager_get_state(m, info.parent);
	if (b == NULL || p == NULL)
		return not_found(b == NULL ? name : info.parent, err, errlen);
	pthread_mutex_lock(&b->op);
	was_running = b->running;
	manager_discard_locked(m, b); /* should the delete fail, a restart recovers from the WAL */
	rc = manager_branch_delete(m, name);
	if (rc == 0) {
		pthread_mutex_lock(&p->op);
		rc = manager_branch_create(m, p, name, info.parent, err, errlen);
		pthread_mutex_unlock(&p->op);
		if (rc == 1) { /* the branch is gone: say so, and keep nothing of it */
			forget_deleted(m, b);
			pthread_mutex_unlock(&b->op);
			manager_save_running(m);
			return RIFT_FAILED;
		}
	}
	if (rc == 0 && rift_verifiers_inherit(m->state, info.parent, name) != 0)
		rift_verifiers_forget(m->state, name); /* none beats the old branch's */
	/* a reset branch keeps its size limit and labels */
	if (rc == 0 && info.max_size != 0)
		rc = rift_store_branch_set_max_size(m->store, name, info.max_size);
	if (rc == 0 && info.labels[0] != '\0')
		rc = rift_store_branch_set_labels(m->store, name, info.labels);
	st = store_status(rc, name, info.parent, err, errlen);
	if (st == RIFT_OK) {
		char password[64];
		/* the parent's pg_authid came back with the reset: give the branch its own
		 * password again, so its URL keeps working and the parent's does not */
		if (rift_secret_load(m->state, name, password, sizeof(password)) == 0)
			st = set_password_locked(m, b, password, err, errlen);
		else if (was_running)
			st = manager_start_locked(m, b, err, errlen);
		explicit_bzero(password, sizeof(password));
	}
	pthread_mutex_unlock(&b->op);
	manager_save_running(m);
	return st;
}

enum rift_status rift_manager_get(struct rift_manager *m, const char *name,
				  struct rift_branch_view *out, char *err, size_t errlen)
{
	enum rift_status st = check_name(name, err, errlen);
	struct bstate *b;

	if (st != RIFT_OK)
		return st;
	b = manager_get_state(m, name);
	if (b == NULL || b->deleted)
		return not_found(name, err, errlen);
	fill_view(m, b, out);
	return RIFT_OK;
}

static int cmp_bstate(const void *a, const void *b)
{
	return strcmp((*(struct bstate *const *)a)->name, (*(struct bstate *const *)b)->name);
}

/* bsearch: a name against a table entry */
static int cmp_name_bstate(const void *key, const void *b)
{
	return strcmp(key, (*(struct bstate *const *)b)->name);
}

enum rift_status rift_manager_list(struct rift_manager *m, struct rift_branch_view **out,
				   size_t *count, char *err, size_t errlen)
{
	struct rift_branch_info *infos;
	struct rift_branch_view *v;
	struct bstate **sorted = NULL, **hit;
	size_t n, i, k, ns = 0;

	if (rift_store_branch_list(m->store, &infos, &n) != 0) {
		snprintf(err, errlen, "cannot list branches: the store failed (see riftd's log)");
		return RIFT_FAILED;
	}
	v = calloc(n + 1, sizeof(*v));
	pthread_mutex_lock(&m->mu);
	/* one lock and a sorted copy of the table: a lookup per branch would cost n² at 1,000 */
	sorted = calloc(m->n + 1, sizeof(*sorted));
	for (i = 0; sorted != NULL && i < m->n; i++)
		if (!m->v[i]->deleted)
			sorted[ns++] = m->v[i];
	if (v == NULL || sorted == NULL) {
		pthread_mutex_unlock(&m->mu);
		free(infos);
		free(v);
		free(sorted);
		snprintf(err, errlen, "out of memory");
		return RIFT_FAILED;
	}
	qsort(sorted, ns, sizeof(*sorted), cmp_bstate);
	for (i = 0, k = 0; i < n; i++) {
		struct bstate *b;
		if (manager_is_warm_name(infos[i].name))
			continue; /* the pool is riftd's own */
		hit = bsearch(infos[i].name, sorted, ns, sizeof(*sorted), cmp_name_bstate);
		b = hit ? *hit : NULL;
		v[k].info = infos[i];
		if (b != NULL) {
			v[k].running = b->running;
			v[k].port = b->running ? b->port : 0;
			v[k].expires_at = (long long)b->expires_at;
			snprintf(v[k].error, sizeof(v[k].error), "%s", b->error);
			v[k].starting = b->starting;
			v[k].connections = b->routed;
			v[k].pooled = b->pooled;
			v[k].starts = b->starts;
		}
		k++;
	}
	pthread_mutex_unlock(&m->mu);
	free(sorted);
	free(infos);
	*out = v;
	*count = k;
	return RIFT_OK;
}

void rift_manager_touch(struct rift_manager *m, const char *name, int delta)
{
	struct bstate *b = manager_get_state(m, name);

	if (b == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	b->routed += delta;
	b->last_active = time(NULL);
	pthread_mutex_unlock(&m->mu);
}

/* rift_manager_hold without the name check (also for riftd's own hidden branches). */
static enum rift_status hold(struct rift_manager *m, const char *name, struct rift_instance *inst,
			     char *err, size_t errlen)
{
	enum rift_status st;
	struct bstate *b;

	b = manager_get_state(m, name);
	if (b == NULL)
		return not_found(name, err, errlen);
	/* counted as a routed connection first, so the idle check cannot stop it after the start */
	rift_manager_touch(m, name, 1);
	pthread_mutex_lock(&b->op);
	st = b->deleted ? not_found(name, err, errlen) : manager_start_locked(m, b, err, errlen);
	pthread_mutex_unlock(&b->op);
	if (st != RIFT_OK) {
		rift_manager_touch(m, name, -1);
		return st;
	}
	pthread_mutex_lock(&m->mu);
	if (b != NULL && b->running && !b->deleted) {
		*inst = b->inst;
	} else {
		snprintf(err, errlen, "branch \"%s\" stopped while riftd was reading it; try again",
			 name);
		st = RIFT_UNAVAILABLE;
	}
	pthread_mutex_unlock(&m->mu);
	if (st != RIFT_OK)
		rift_manager_touch(m, name, -1);
	return st;
}

enum rift_status rift_manager_hold(struct rift_manager *m, const char *name,
				   struct rift_instance *inst, char *err, size_t errlen)
{
	enum rift_status st = check_name(name, err, errlen);

	return st != RIFT_OK ? st : hold(m, name, inst, err, errlen);
}

void rift_manager_release(struct rift_manager *m, const char *name)
{
	rift_manager_touch(m, name, -1);
}

/* The fork point's temporary branches carry the warm pool's prefix: users can neither make nor
 * reach them, rift list hides them, and a restarted riftd deletes any a killed one left. */
#define FORK_PREFIX WARM_PREFIX "fork-"

enum rift_status rift_manager_fork_hold(struct rift_manager *m, const char *name, char *tmp,
					size_t tmplen, struct rift_instance *inst, char *err,
					size_t errlen)
{
	enum rift_status st = check_name(name, err, errlen);
	unsigned char rnd[6];
	int rc;

	if (st != RIFT_OK)
		return st;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		snprintf(err, errlen, "cannot get random bytes for a temporary branch name");
		return RIFT_FAILED;
	}
	snprintf(tmp, tmplen, FORK_PREFIX "%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
		 rnd[3], rnd[4], rnd[5]);
	rc = rift_store_branch_create_at_fork(m->store, tmp, name);
	if (rc == -ESRCH) {
		snprintf(err, errlen,
			 "the point branch \"%s\" was made from is no longer in the store; "
			 "compare with a branch instead (rift diff %s OTHER)",
			 name, name);
		return RIFT_CONFLICT;
	}
	if (rc != 0)
		return store_status(rc, name, NULL, err, errlen);
	/* its pg_authid is the parent's as it was: riftd's own local trust line is all it needs */
	st = hold(m, tmp, inst, err, errlen);
	if (st != RIFT_OK)
		rift_manager_fork_drop(m, tmp, false);
	return st;
}

void rift_manager_fork_drop(struct rift_manager *m, const char *tmp, bool held)
{
	struct bstate *b;
	char mnt[4200];
	int rc;

	if (held)
		rift_manager_release(m, tmp);
	b = manager_get_state(m, tmp);
	if (b != NULL) {
		pthread_mutex_lock(&b->op);
		/* an immediate stop, as rift delete does: its files are deleted next, so the
		 * shutdown checkpoint of a fast stop (0.3 s of every diff against a fork point)
		 * bought nothing, and the parent's superuser could have made the server slow
		 * to stop */
		manager_discard_locked(m, b);
	}
	rc = manager_branch_delete(m, tmp);
	if (rc != 0 && rc != -ENOENT)
		LOG_ERROR("manager", "cannot delete temporary branch %s: %s", tmp, strerror(-rc));
	if (b != NULL) {
		if (rc == 0)
			b->deleted = true;
		pthread_mutex_unlock(&b->op);
	}
	snprintf(mnt, sizeof(mnt), "%.3000s/mnt/%s", m->state, tmp);
	rmdir(mnt);
	snprintf(mnt, sizeof(mnt), "%.3000s/run/pg/%s", m->state, tmp);
	rmdir(mnt); /* empty once its server is gone; else the next riftd start removes it */
	snprintf(mnt, sizeof(mnt), "%.3000s/log/%s.log", m->state, tmp);
	unlink(mnt);
	manager_save_running(m);
}

const char *rift_manager_bindir(struct rift_manager *m)
{
	return m->bindir;
}

void rift_manager_pooled(struct rift_manager *m, const char *name, int delta)
{
	struct bstate *b = manager_get_state(m, name);

	if (b == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	b->pooled += delta;
	pthread_mutex_unlock(&m->mu);
}

int rift_manager_role_secret(struct rift_manager *m, const char *name, const char *role, char *out,
			     size_t outlen)
{
	struct bstate *b = manager_get_state(m, name);
	struct rift_instance inst;
	bool running;

	if (b == NULL)
		return -ENOENT;
	pthread_mutex_lock(&m->mu);
	running = b->running;
	inst = b->inst; /* a copy: the query runs without holding the manager */
	pthread_mutex_unlock(&m->mu);
	if (!running)
		return -ESRCH;
	return rift_instance_role_secret(&inst, m->cfg.pg_user, role, out, outlen);
}

void rift_manager_start_counts(struct rift_manager *m, int *starting, int *queued, int *slots)
{
	const struct start_waiter *w;

	pthread_mutex_lock(&m->mu);
	*starting = m->starting;
	*queued = 0;
	for (w = m->start_queue; w != NULL; w = w->next)
		(*queued)++;
	*slots = m->max_starting;
	pthread_mutex_unlock(&m->mu);
}

/*
 * The on-disk sizes `rift list` shows, fresh to a tick. A failed or slow estimate is worth a
 * line, but not one every tick: at most one a minute (only the idle thread, or open before it,
 * comes here).
 */
void manager_refresh_disk_estimates(struct rift_manager *m)
{
	struct timespec t0, t1;
	double ms;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = rift_store_refresh_disk_estimates(m->store);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = seconds_between(&t0, &t1) * 1000.0;
	if ((rc == 0 && ms <= 50.0) ||
	    (m->sizes_logged_at != 0 && t1.tv_sec - m->sizes_logged_at < 60))
		return;
	m->sizes_logged_at = t1.tv_sec;
	if (rc != 0)
		LOG_WARN("manager",
			 "estimating the branches' on-disk sizes failed (%s); rift list "
			 "shows the last estimate",
			 strerror(-rc));
	else
		LOG_INFO("manager", "estimating the branches' on-disk sizes took %.0f ms", ms);
}

/* Gone, or a zombie nobody reaped yet: either way it holds nothing any more. */
static bool process_gone(pid_t pid)
{
	char path[64], buf[256];
	const char *close_paren;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return true;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	close_paren = strrchr(buf, ')');
	return close_paren == NULL || close_paren[1] == '\0' || close_paren[2] == 'Z';
}

/* Where branches' WAL goes and whose files may be in it (wal_dir.h), once; then, with no server
 * running yet, every WAL directory becomes root's until its branch starts, and those of branches
 * a killed riftd deleted go. */
static void wal_open(struct rift_manager *m)
{
	if (rift_wal_root(m->state, m->walroot, sizeof(m->walroot)) != 0)
		m->walroot[0] = '\0';
	server_uids(m, &m->wal_lo, &m->wal_hi);
	if (m->walroot[0] != '\0')
		rift_wal_collect(m->walroot, m->store, true);
}

/* After a crash: servers still running on dead mounts would PANIC or hang; end them, and wait
 * until they are gone so a new server on the same directory does not see a live lock. */
static void kill_orphans(struct rift_manager *m)
{
	char prefix[4200];
	struct dirent *de;
	DIR *proc = opendir("/proc");
	pid_t killed[64];
	size_t nkilled = 0, k, tries;

	snprintf(prefix, sizeof(prefix), "%s/mnt/", m->state);
	while (proc != NULL && (de = readdir(proc)) != NULL) {
		char path[64], args[8192];
		size_t n, i;
		FILE *f;
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%.32s/cmdline", de->d_name);
		f = fopen(path, "re");
		if (f == NULL)
			continue;
		n = fread(args, 1, sizeof(args) - 1, f);
		fclose(f);
		args[n] = '\0';
		for (i = 0; i + 1 < n; i++) /* NUL-separated arguments: look for "-D <prefix>" */
			if (args[i] == '\0' && strncmp(args + i + 1, prefix, strlen(prefix)) == 0 &&
			    i >= 2 && strcmp(args + i - 2, "-D") == 0) {
				pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
				LOG_WARN("manager", "stopping orphaned server %d on %s", (int)pid,
					 args + i + 1);
				kill(-pid, SIGKILL);
				kill(pid, SIGKILL);
				if (nkilled < sizeof(killed) / sizeof(killed[0]))
					killed[nkilled++] = pid;
				break;
			}
	}
	if (proc != NULL)
		closedir(proc);
	for (k = 0; k < nkilled; k++)
		for (tries = 0; tries < 250 && !process_gone(killed[k]); tries++) {
			struct timespec tick = { 0, 20 * 1000 * 1000 };
			nanosleep(&tick, NULL);
		}
}

static void unmount_stale(struct rift_manager *m)
{
	char prefix[4200], line[8192];
	FILE *f = fopen("/proc/self/mountinfo", "re");

	snprintf(prefix, sizeof(prefix), "%s/mnt/", m->state);
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		char mnt[4096];
		if (sscanf(line, "%*u %*u %*u:%*u %*s %4095s", mnt) != 1)
			continue;
		if (strncmp(mnt, prefix, strlen(prefix)) == 0) {
			LOG_WARN("manager", "removing stale mount %s", mnt);
			umount2(mnt, MNT_DETACH);
		}
	}
	if (f != NULL)
		fclose(f);
}

static int chown_to_root(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)flag;
	(void)ftw;
	if ((st->st_uid != 0 || st->st_gid != 0) && lchown(path, 0, 0) != 0)
		LOG_WARN("manager", "cannot make %s root's: %s", path, strerror(errno));
	return 0;
}

/* The modes riftd's state must have, whatever made it (an older rift init, a restore): only
 * the way to the mounts and socket directories is open to the branch servers' uids, and the
 * base is root's, so no server could write it even if it found a way in. Servers see the base
 * through their mount only; riftd reads it as root. Stores made before per-branch uids had the
 * base owned by the Postgres user. */
static void secure_state(struct rift_manager *m)
{
	static const struct {
		const char *dir;
		mode_t mode;
	} dirs[] = { { "", 0711 },       { "mnt", 0711 },  { "run", 0711 },
		     { "run/pg", 0711 }, { "base", 0700 }, { "db", 0700 },
		     { "tls", 0700 },    { "log", 0700 },  { "secrets", 0700 } };
	char path[4200];
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		int fd;
		snprintf(path, sizeof(path), "%s/%s", m->state, dirs[i].dir);
		fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue; /* made later (secrets), or not at all */
		if (fstat(fd, &st) != 0 ||
		    ((st.st_uid != 0 || st.st_gid != 0) && fchown(fd, 0, 0) != 0) ||
		    fchmod(fd, dirs[i].mode) != 0)
			LOG_WARN("manager", "cannot set %s to root, %o: %s", path,
				 (unsigned)dirs[i].mode, strerror(errno));
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/base", m->state);
	if (nftw(path, chown_to_root, 32, FTW_PHYS | FTW_MOUNT) != 0)
		LOG_WARN("manager", "cannot walk %s to make it root's", path);
}

/* Two riftds (two stores on one host) handing out the same uids would put their branches under
 * one identity, and each one's start-up sweep would kill the other's servers. */
static int lock_uid_range(struct rift_manager *m, char *err, size_t errlen)
{
	char path[128];

	if (mkdir("/run/rift", 0700) != 0 && errno != EEXIST) {
		LOG_WARN("manager", "cannot create /run/rift (%s): not guarding the uid range",
			 strerror(errno));
		return 0;
	}
	snprintf(path, sizeof(path), "/run/rift/uids-%d.lock", m->cfg.uid_base);
	m->uid_lock_fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (m->uid_lock_fd < 0) {
		LOG_WARN("manager", "cannot open %s (%s): not guarding the uid range", path,
			 strerror(errno));
		return 0;
	}
	if (flock(m->uid_lock_fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errlen,
			 "another riftd on this host gives its branch servers the uids from %d "
			 "([instances] uid_base); give each store a range of its own in rift.conf",
			 m->cfg.uid_base);
		return -EBUSY;
	}
	return 0;
}

static void restart_running(struct rift_manager *m)
{
	char path[4200], name[128], err[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/run/running", m->state);
	f = fopen(path, "re");
	while (f != NULL && fgets(name, sizeof(name), f) != NULL) {
		name[strcspn(name, "\n")] = '\0';
		if (name[0] == '\0')
			continue;
		LOG_INFO("manager", "restarting branch %s, which was running", name);
		if (rift_manager_start(m, name, NULL, err, sizeof(err)) != RIFT_OK)
			LOG_ERROR("manager", "%s", err);
	}
	if (f != NULL)
		fclose(f);
}

/* Two starts per core keep the CPU busy through each start's waits on disk and on FUSE. */
static int default_max_starting(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	return cpus > 1 ? (int)(cpus * 2) : 2;
}

int rift_manager_open(const char *state, struct rift_manager **out, char *err, size_t errlen)
{
	struct rift_manager *m = calloc(1, sizeof(*m));
	char path[4200], base_dir[4200];
	int rc;

	*out = NULL;
	if (m == NULL)
		return -ENOMEM;
	if (strlen(state) > 3000) {
		free(m);
		snprintf(err, errlen, "the state directory path is too long (over 3000 bytes)");
		return -ENAMETOOLONG;
	}
	snprintf(m->state, sizeof(m->state), "%s", state);
	m->uid_lock_fd = -1;
	pthread_mutex_init(&m->mu, NULL);
	pthread_mutex_init(&m->idle_mu, NULL);
	m->start_tail = &m->start_queue;
	pthread_cond_init(&m->idle_cv, NULL);
	pthread_cond_init(&m->warm_cv, NULL);
	pthread_cond_init(&m->idle_jobs_cv, NULL);
	rift_config_defaults(&m->cfg);
	snprintf(path, sizeof(path), "%s/rift.conf", state);
	if (rift_config_load(&m->cfg, path, err, errlen) != 0) {
		rc = -EINVAL;
		goto fail;
	}
	m->max_starting = m->cfg.max_starting > 0 ? m->cfg.max_starting : default_max_starting();
	rc = rift_base_meta_load(state, &m->meta, err, errlen);
	if (rc != 0)
		goto fail;
	if (m->cfg.uid_count > 0) {
		rc = rift_identity_check_range((uid_t)m->cfg.uid_base, (unsigned)m->cfg.uid_count,
					       err, errlen);
		if (rc == 0)
			rc = lock_uid_range(m, err, errlen);
		if (rc != 0)
			goto fail;
	}
	kill_orphans(m);
	unmount_stale(m);
	/* what the servers of a killed riftd left: processes, IPC objects, /dev/shm entries; a
	 * uid whose processes would not die stays out of use, the others serve */
	if (m->cfg.uid_count > 0 &&
	    rift_identity_sweep((uid_t)m->cfg.uid_base, (unsigned)m->cfg.uid_count, m->stuck,
				sizeof(m->stuck) / sizeof(m->stuck[0]), &m->nstuck) != 0 &&
	    m->nstuck == sizeof(m->stuck) / sizeof(m->stuck[0])) {
		snprintf(
		    err, errlen,
		    "processes of %zu or more uids of [instances] uid_base..+uid_count survive "
		    "SIGKILL; see riftd's log and end them before starting riftd",
		    m->nstuck);
		rc = -EBUSY;
		goto fail;
	}
	rc = rift_store_open(state, false, &m->store, err, errlen);
	if (rc != 0)
		goto fail;
	rc = rift_store_set_reserve(m->store, (uint64_t)m->cfg.reserve_mb << 20);
	if (rc != 0)
		goto fail;
	snprintf(base_dir, sizeof(base_dir), "%s/base/%u", state, rift_store_base_latest(m->store));
	rc = rift_pg_bindir(m->cfg.pg_bin, base_dir, m->bindir, sizeof(m->bindir), err, errlen);
	if (rc != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/run/pg", state);
	if (mkdir(path, 0711) != 0 && errno != EEXIST)
		LOG_WARN("manager", "cannot create %s: %s", path, strerror(errno));
	secure_state(m);
	load_expiry(m);
	warm_pool_clear_leftovers(m);
	wal_open(m);
	manager_refresh_disk_estimates(m);
	if (pthread_create(&m->idle, NULL, manager_idle_main, m) == 0)
		m->idle_started = true;
	restart_running(m);
	/* after the restarts: the pool never competes with branches that were running */
	if (m->cfg.warm > 0 && pthread_create(&m->warm, NULL, warm_pool_main, m) == 0)
		m->warm_started = true;
	*out = m;
	return 0;
fail:
	rift_manager_close(m);
	return rc;
}

void rift_manager_close(struct rift_manager *m)
{
	size_t i;

	if (m == NULL)
		return;
	rift_manager_close_queue(m); /* riftd_main does it earlier; not every path gets there */
	if (m->idle_started) {
		pthread_mutex_lock(&m->idle_mu);
		m->stopping = true;
		pthread_cond_signal(&m->idle_cv);
		pthread_cond_signal(&m->warm_cv);
		pthread_mutex_unlock(&m->idle_mu);
		pthread_join(m->idle, NULL);
	}
	if (m->warm_started)
		pthread_join(m->warm, NULL);
	manager_idle_drain(m); /* its jobs hold branches' states */
	for (i = 0; i < m->n; i++) {
		pthread_mutex_lock(&m->v[i]->op);
		if (m->v[i]->warm && !m->v[i]->deleted)
			warm_pool_drop_locked(m, m->v[i], "riftd is stopping");
		else
			manager_stop_locked(m, m->v[i]);
		pthread_mutex_unlock(&m->v[i]->op);
		pthread_mutex_destroy(&m->v[i]->op);
		free(m->v[i]);
	}
	free(m->v);
	if (m->uid_lock_fd >= 0)
		close(m->uid_lock_fd); /* after every server's uid was swept */
	rift_store_close(m->store);
	pthread_mutex_destroy(&m->mu);
	pthread_mutex_destroy(&m->idle_mu);
	pthread_cond_destroy(&m->idle_cv);
	pthread_cond_destroy(&m->warm_cv);
	pthread_cond_destroy(&m->idle_jobs_cv);
	free(m);
}

const struct rift_latency *rift_manager_start_latency(struct rift_manager *m)
{
	return &m->start_lat;
}

struct rift_store *rift_manager_store(struct rift_manager *m)
{
	return m->store;
}

size_t rift_manager_metrics(struct rift_manager *m, char *buf, size_t len)
{
	struct rift_branch_info *infos = NULL;
	size_t n = 0, i, used = 0, running = 0;
	uint64_t cum = 0, hist[NBUCKETS + 1], count;
	double sum;

#define EMIT(...)                                                                                  \
	do {                                                                                       \
		int k = snprintf(buf + used, len - used, __VA_ARGS__);                             \
		if (k < 0 || (size_t)k >= len - used)                                              \
			goto out;                                                                  \
		used += (size_t)k;                                                                 \
	} while (0)

	if (rift_store_branch_list(m->store, &infos, &n) != 0)
		n = 0;
	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->n; i++)
		if (m->v[i]->running && !m->v[i]->deleted)
			running++;
	pthread_mutex_unlock(&m->mu);
	EMIT("# HELP rift_branches Branches in the store.\n# TYPE rift_branches gauge\n"
	     "rift_branches %zu\n",
	     n);
	EMIT("# HELP rift_instances_running Branches whose Postgres server runs.\n"
	     "# TYPE rift_instances_running gauge\nrift_instances_running %zu\n",
	     running);
	EMIT("# HELP rift_branch_bytes Bytes stored by a branch (own: only it sees them).\n"
	     "# TYPE rift_branch_bytes gauge\n");
	for (i = 0; i < n; i++) {
		EMIT("rift_branch_bytes{branch=\"%s\",kind=\"own\"} %llu\n", infos[i].name,
		     (unsigned long long)infos[i].bytes_own);
		EMIT("rift_branch_bytes{branch=\"%s\",kind=\"shared\"} %llu\n", infos[i].name,
		     (unsigned long long)infos[i].bytes_shared);
	}
	pthread_mutex_lock(&m->mu);
	memcpy(hist, m->create_hist, sizeof(hist));
	count = m->create_count;
	sum = m->create_sum_s;
	pthread_mutex_unlock(&m->mu);
	EMIT("# HELP rift_create_seconds Time to create a branch.\n"
	     "# TYPE rift_create_seconds histogram\n");
	for (i = 0; i < NBUCKETS; i++) {
		cum += hist[i];
		EMIT("rift_create_seconds_bucket{le=\"%g\"} %llu\n", create_buckets_ms[i] / 1000.0,
		     (unsigned long long)cum);
	}
	EMIT("rift_create_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)count);
	EMIT("rift_create_seconds_sum %g\nrift_create_seconds_count %llu\n", sum,
	     (unsigned long long)count);
#undef EMIT
out:
	free(infos);
	return used;
}
