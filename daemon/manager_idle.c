/* manager_idle.c — riftd's idle thread: stops idle and dead servers, deletes expired branches,
 * and stops the branch whose WAL fills a disk that is under its reserve. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "rift/instance.h"
#include "rift/log.h"
#include "rift/manager.h"
#include "rift/wal_dir.h"
#include "manager_internal.h"

#define IDLE_TICK_S 2

/* A count of a server's clients opens a session on it, and that is dear: a new backend
 * forks, and its exit closes every file it wrote, which on a FUSE mount writes back all of
 * those files' dirty pages at once. So riftd counts only while it must (idle_count_due). */
#define CLIENTS_CHECK_MAX_S 60

#define WAL_GUARD_PAUSE_S 10 /* the WAL guard stops at most one branch in this long */
#define NO_THREAD_LOG_S   60 /* a failed pthread_create is logged at most this often */

/*
 * Work on one branch runs on a thread of its own, at most one of each kind per branch: a count
 * of its clients waits on its server (up to 5 s to connect and about as long for each query),
 * a stop waits for its shutdown (up to stop_timeout, then more), and a branch's superuser
 * controls both. Done in the idle thread's loop, a few hostile branches held up every other
 * branch's idle stop, TTL delete and the WAL guard for as long as they liked. A count holds no
 * lock while it waits, so nothing else on the branch (a WAL stop, a delete) waits behind it.
 */
enum idle_job_kind {
	IDLE_JOB_CHECK,    /* stop it if its server died, or count its clients */
	IDLE_JOB_EXPIRE,   /* delete it: its --ttl passed */
	IDLE_JOB_WAL_STOP, /* stop it: its WAL grew while the disk is under the reserve */
};

struct idle_job {
	struct rift_manager *m;
	struct bstate *b;
	enum idle_job_kind kind;
	uint64_t growth; /* IDLE_JOB_WAL_STOP: by how much, in the last tick */
	uint64_t starts; /* b->starts when the job was started: which server it is about */
};

/* Seconds between two counts of a server's clients: a tenth of idle_timeout, so a stop comes
 * at most that late, within [IDLE_TICK_S, CLIENTS_CHECK_MAX_S]. */
static time_t clients_check_interval(const struct rift_manager *m)
{
	time_t s = m->cfg.idle_timeout_s / 10;

	return s < IDLE_TICK_S ? IDLE_TICK_S : s > CLIENTS_CHECK_MAX_S ? CLIENTS_CHECK_MAX_S : s;
}

static uint64_t starts_of(struct rift_manager *m, struct bstate *b)
{
	uint64_t starts;

	pthread_mutex_lock(&m->mu);
	starts = b->starts;
	pthread_mutex_unlock(&m->mu);
	return starts;
}

/*
 * Idle stops. The router's clients and read-only views are known for free; clients that reach
 * the server's port or socket directly only by asking the server, which riftd does every
 * interval while the router has no client for b, and never while it has. Each count reads the
 * clients connected now and how many sessions the server has ever opened: a rise beyond the
 * previous count's own session means someone came (and maybe went) in between, which a look at
 * who is connected would miss. A branch whose last count saw clients is active until the first
 * count that sees none, and a stop is decided only right after a count: so it comes
 * idle_timeout after the last client left, or up to one interval later. A count that fails
 * sees nobody, so a server that cannot be asked still stops when idle (security_maint.sh).
 */

/* What the router holds of b and when b was last in use, read together under mu: the router
 * changes them from its own thread. */
struct router_use {
	int routed, pooled;
	time_t last_active;
};

static struct router_use router_use_of(struct rift_manager *m, struct bstate *b)
{
	struct router_use u;

	pthread_mutex_lock(&m->mu);
	u = (struct router_use){ b->routed, b->pooled, b->last_active };
	pthread_mutex_unlock(&m->mu);
	return u;
}

static void mark_active(struct rift_manager *m, struct bstate *b, time_t now)
{
	pthread_mutex_lock(&m->mu);
	b->last_active = now;
	pthread_mutex_unlock(&m->mu);
}

/* Is a count of running b's clients due (op held)? Marks b active while the router or a view
 * uses it. */
static bool idle_count_due(struct rift_manager *m, struct bstate *b, time_t now)
{
	if (router_use_of(m, b).routed > 0 || manager_views_in_use(b)) {
		mark_active(m, b, now);
		return false;
	}
	return now - b->clients_checked_at >= clients_check_interval(m);
}

/* Reads a count's answer and stops b if it has been idle long enough (op held; b still runs
 * the server that was counted). */
static void idle_count_apply(struct rift_manager *m, struct bstate *b, int clients,
			     int64_t sessions, time_t now)
{
	struct router_use u = router_use_of(m, b);
	/* the router's kept sessions are clients of the server but keep nothing running */
	bool seen = clients > (u.pooled > 0 ? u.pooled : 0);

	/* the previous count's own session is one; fewer than before means its statistics were
	 * reset (by its superuser, or a crash): count that as use rather than miss any */
	if (sessions >= 0 && b->sessions >= 0 &&
	    (sessions < b->sessions || sessions - b->sessions >= 2))
		seen = true;
	b->sessions = sessions;
	if (u.routed > 0 || manager_views_in_use(b)) {
		mark_active(m, b, now); /* the router took a client during the count */
	} else if (seen) {
		b->direct_clients = true;
		mark_active(m, b, now);
	} else if (b->direct_clients) {
		b->direct_clients = false; /* they left since the last count */
		mark_active(m, b, now);
	} else if (now - u.last_active >= m->cfg.idle_timeout_s) {
		manager_stop_locked(m, b);
	}
}

static void idle_job_check(struct rift_manager *m, struct bstate *b)
{
	struct rift_instance *inst;
	int64_t sessions;
	uint64_t starts;
	int clients;

	if (pthread_mutex_trylock(&b->op) != 0)
		return; /* a start, stop or delete is under way: the next tick looks again */
	if (b->running && !rift_instance_alive(&b->inst)) {
		pthread_mutex_lock(&m->mu);
		snprintf(b->error, sizeof(b->error), "the server exited unexpectedly (log: %.400s)",
			 b->inst.logpath);
		pthread_mutex_unlock(&m->mu);
		manager_stop_locked(m, b);
	}
	if (!b->running || m->cfg.idle_timeout_s <= 0 || !idle_count_due(m, b, time(NULL)) ||
	    (inst = malloc(sizeof(*inst))) == NULL) {
		pthread_mutex_unlock(&b->op);
		return;
	}
	/* the count waits on the server with no lock held: on a copy of where it listens, and
	 * its answer counts only for the server it asked (starts) */
	*inst = b->inst;
	starts = starts_of(m, b);
	b->clients_checked_at = time(NULL);
	pthread_mutex_unlock(&b->op);

	clients = rift_instance_clients(inst, m->cfg.pg_user, &sessions);
	free(inst);

	pthread_mutex_lock(&b->op);
	if (b->running && starts_of(m, b) == starts)
		idle_count_apply(m, b, clients, sessions, time(NULL));
	pthread_mutex_unlock(&b->op);
}

static void idle_job_expire(struct rift_manager *m, struct bstate *b)
{
	char err[512];

	if (manager_delete_expired(m, b->name, err, sizeof(err)) != RIFT_OK) {
		LOG_ERROR("manager", "%s; retrying in an hour", err);
		pthread_mutex_lock(&m->mu);
		b->expires_at = time(NULL) + 3600;
		pthread_mutex_unlock(&m->mu);
	}
}

/* The disk is filling: an immediate shutdown (its next start recovers from its WAL), not a
 * fast one, whose checkpoint writes more and which its superuser can drag out. */
static void idle_job_wal_stop(struct rift_manager *m, struct bstate *b, uint64_t growth,
			      uint64_t starts)
{
	bool stopped = false;

	/* waits for whatever holds op; a stop and start since leave a server not judged yet */
	pthread_mutex_lock(&b->op);
	if (b->running && starts_of(m, b) == starts) {
		pthread_mutex_lock(&m->mu);
		snprintf(
		    b->error, sizeof(b->error),
		    "stopped: its WAL and temporary files (pg_wal, base/pgsql_tmp) grew by %llu "
		    "MiB in %d s while the disk under "
		    "%.200s was below [store] reserve_mb; free space (rift reset or rift delete "
		    "a branch), then connect again",
		    growth == UINT64_MAX ? 0ULL : (unsigned long long)(growth >> 20), IDLE_TICK_S,
		    m->state);
		LOG_ERROR("manager", "branch %s %s", b->name, b->error);
		pthread_mutex_unlock(&m->mu);
		manager_discard_locked(m, b); /* SIGQUIT, then SIGKILL of its group after 5 s */
		/* clients get this error rather than a start for the next START_RETRY_S */
		clock_gettime(CLOCK_MONOTONIC, &b->failed_at);
		stopped = true;
	}
	pthread_mutex_unlock(&b->op);
	if (stopped) { /* the pause runs from the end of a stop */
		pthread_mutex_lock(&m->mu);
		m->wal_stopped_at = time(NULL);
		pthread_mutex_unlock(&m->mu);
	}
}

static void idle_job_run(struct idle_job *job)
{
	switch (job->kind) {
	case IDLE_JOB_CHECK:
		idle_job_check(job->m, job->b);
		break;
	case IDLE_JOB_EXPIRE:
		idle_job_expire(job->m, job->b);
		break;
	case IDLE_JOB_WAL_STOP:
		idle_job_wal_stop(job->m, job->b, job->growth, job->starts);
		break;
	}
}

/* Ends a job: its branch may have the next of its kind, and a closing manager may go on when
 * none is left. */
static void idle_job_done(struct idle_job *job)
{
	struct rift_manager *m = job->m;

	pthread_mutex_lock(&m->mu);
	assert((job->b->idle_jobs & (1u << job->kind)) != 0 && m->idle_jobs > 0);
	job->b->idle_jobs &= ~(1u << job->kind);
	if (--m->idle_jobs == 0)
		pthread_cond_broadcast(&m->idle_jobs_cv);
	pthread_mutex_unlock(&m->mu);
	free(job);
}

static void *idle_job_main(void *arg)
{
	struct idle_job *job = arg;

	pthread_setname_np(pthread_self(), "idle-job");
	idle_job_run(job);
	idle_job_done(job);
	return NULL;
}

/* Starts work of this kind on b on a thread of its own, unless b has a job of this kind under
 * way. With no thread or memory to be had, the next tick asks again (never in this thread,
 * which must not wait on a server). Only the idle thread starts jobs. */
static void idle_job_start(struct rift_manager *m, struct bstate *b, enum idle_job_kind kind,
			   uint64_t growth)
{
	static time_t logged_at;
	struct idle_job *job;
	pthread_attr_t attr;
	pthread_t t;
	int rc = EAGAIN;

	pthread_mutex_lock(&m->mu);
	job = (b->idle_jobs & (1u << kind)) == 0 ? malloc(sizeof(*job)) : NULL;
	if (job == NULL) {
		pthread_mutex_unlock(&m->mu);
		return;
	}
	*job = (struct idle_job){
		.m = m, .b = b, .kind = kind, .growth = growth, .starts = b->starts
	};
	b->idle_jobs |= 1u << kind;
	m->idle_jobs++;
	pthread_mutex_unlock(&m->mu);
	if (pthread_attr_init(&attr) == 0) {
		if (pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0)
			rc = pthread_create(&t, &attr, idle_job_main, job);
		pthread_attr_destroy(&attr);
	}
	if (rc == 0)
		return;
	if (time(NULL) - logged_at >= NO_THREAD_LOG_S) {
		logged_at = time(NULL);
		LOG_WARN("manager",
			 "no thread for idle work on branch %s (%s): idle stops, TTL deletes and "
			 "the WAL guard wait until threads can be had; check the host's process "
			 "limits",
			 b->name, strerror(rc));
	}
	idle_job_done(job);
}

void manager_idle_drain(struct rift_manager *m)
{
	pthread_mutex_lock(&m->mu);
	while (m->idle_jobs > 0)
		pthread_cond_wait(&m->idle_jobs_cv, &m->mu);
	pthread_mutex_unlock(&m->mu);
}

/*
 * A branch's WAL and temporary files are beside the store, outside its per-branch ENOSPC policy
 * (wal_dir.h). When the state directory's filesystem is under the reserve, the running branch
 * whose WAL and temporary files grew the most since the last tick (by at least a quarter of the
 * reserve) is stopped, before a full disk makes every server's next WAL write fail; at most one
 * every WAL_GUARD_PAUSE_S, so a disk filled some other way does not stop every busy branch in
 * turn. A branch whose stop is under way is passed over, so the next grower is not. Its WAL
 * stays (its temporary files go with the stop): rift reset or rift delete gives the space back.
 */
static void wal_guard(struct rift_manager *m)
{
	uint64_t reserve = (uint64_t)m->cfg.reserve_mb << 20, best_growth = 0, size, growth, wal_id;
	struct bstate *best = NULL, *b;
	bool low = false, stopping, measure;
	char walroot[sizeof(b->inst.walroot)];
	struct statvfs vf;
	time_t stopped_at;
	size_t i, n;

	if (reserve == 0)
		return;
	low = statvfs(m->state, &vf) == 0 && (uint64_t)vf.f_bavail * vf.f_frsize < reserve;
	pthread_mutex_lock(&m->mu);
	n = m->n;
	stopped_at = m->wal_stopped_at;
	pthread_mutex_unlock(&m->mu);
	for (i = 0; i < n; i++) {
		/* a running server's inst is read under mu: jobs stop branches on other threads */
		pthread_mutex_lock(&m->mu);
		b = m->v[i];
		stopping = (b->idle_jobs & (1u << IDLE_JOB_WAL_STOP)) != 0;
		measure = !b->deleted && b->running && b->inst.walroot[0] != '\0' &&
			  b->inst.wal_id != 0 && !b->inst.wal_in_store;
		if (measure) {
			memcpy(walroot, b->inst.walroot, sizeof(walroot));
			wal_id = b->inst.wal_id;
		}
		pthread_mutex_unlock(&m->mu);
		if (!measure)
			continue;
		/* sizes are looked at every tick, so growth is known when the disk runs low; a
		 * directory too big or too deep to measure counts as growing the most, every tick
		 */
		size = rift_wal_size(walroot, wal_id);
		growth =
		    size == UINT64_MAX ? UINT64_MAX : (size > b->wal_seen ? size - b->wal_seen : 0);
		if (growth > best_growth && !stopping) {
			best_growth = growth;
			best = b;
		}
		b->wal_seen = size;
	}
	if (low && best != NULL && best_growth >= reserve / 4 &&
	    time(NULL) - stopped_at >= WAL_GUARD_PAUSE_S)
		idle_job_start(m, best, IDLE_JOB_WAL_STOP, best_growth);
}

/* Stops servers idle longer than idle_timeout, notices servers that died, deletes expired
 * branches, guards the disk; what waits on a server is a job on a thread of its own. */
void *manager_idle_main(void *arg)
{
	struct rift_manager *m = arg;

	pthread_setname_np(pthread_self(), "idle-stopper");
	pthread_mutex_lock(&m->idle_mu);
	while (!m->stopping) {
		struct timespec until;
		size_t i, n;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += IDLE_TICK_S;
		pthread_cond_timedwait(&m->idle_cv, &m->idle_mu, &until);
		if (m->stopping)
			break;
		pthread_mutex_unlock(&m->idle_mu);
		pthread_mutex_lock(&m->mu);
		n = m->n;
		pthread_mutex_unlock(&m->mu);
		manager_refresh_disk_estimates(m);
		wal_guard(m);
		for (i = 0; i < n; i++) {
			struct bstate *b;
			time_t now = time(NULL), expires_at;
			bool due, warm;
			pthread_mutex_lock(&m->mu);
			b = m->v[i];
			expires_at = b->deleted ? 0 : b->expires_at;
			warm = b->warm;
			pthread_mutex_unlock(&m->mu);
			if (expires_at > 0 && now >= expires_at) {
				idle_job_start(m, b, IDLE_JOB_EXPIRE, 0);
				continue;
			}
			if (warm || pthread_mutex_trylock(&b->op) != 0)
				continue; /* the pool's servers are the refill thread's */
			/* what is cheap to know is looked at here; waiting on a server is a job's
			 */
			due = b->running &&
			      (!rift_instance_alive(&b->inst) ||
			       (m->cfg.idle_timeout_s > 0 && idle_count_due(m, b, now)));
			pthread_mutex_unlock(&b->op);
			if (due)
				idle_job_start(m, b, IDLE_JOB_CHECK, 0);
		}
		manager_save_running(m);
		pthread_mutex_lock(&m->idle_mu);
	}
	pthread_mutex_unlock(&m->idle_mu);
	return NULL;
}
