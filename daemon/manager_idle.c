/* manager_idle.c — riftd's idle thread: stops idle and dead servers, deletes expired branches,
 * and stops the branch whose WAL fills a disk that is under its reserve. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
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
 * those files' dirty pages at once. So riftd counts only while it must (idle_check). */
#define CLIENTS_CHECK_MAX_S 60

/*
 * A branch's WAL and temporary files are beside the store, outside its per-branch ENOSPC policy
 * (wal_dir.h). When the state directory's filesystem is under the reserve, the running branch
 * whose WAL and temporary files grew the most since the last tick (by at least a quarter of the
 * reserve) is stopped, before a full disk makes every server's next WAL write fail; at most one
 * every WAL_GUARD_PAUSE_S, so a disk filled some other way does not stop every busy branch in
 * turn. Its WAL stays (its temporary files go with the stop): rift reset or rift delete gives the
 * space back.
 */
#define WAL_GUARD_PAUSE_S 10
static void wal_guard(struct rift_manager *m)
{
	uint64_t reserve = (uint64_t)m->cfg.reserve_mb << 20, best_growth = 0, size, growth;
	struct bstate *best = NULL, *b;
	bool low = false;
	struct statvfs vf;
	size_t i, n;

	if (reserve == 0)
		return;
	low = statvfs(m->state, &vf) == 0 && (uint64_t)vf.f_bavail * vf.f_frsize < reserve;
	pthread_mutex_lock(&m->mu);
	n = m->n;
	pthread_mutex_unlock(&m->mu);
	for (i = 0; i < n; i++) {
		pthread_mutex_lock(&m->mu);
		b = m->v[i];
		pthread_mutex_unlock(&m->mu);
		if (b->deleted || !b->running || b->inst.walroot[0] == '\0' ||
		    b->inst.wal_id == 0 || b->inst.wal_in_store)
			continue;
		/* sizes are looked at every tick, so growth is known when the disk runs low; a
		 * directory too big or too deep to measure counts as growing the most, every tick
		 */
		size = rift_wal_size(b->inst.walroot, b->inst.wal_id);
		growth =
		    size == UINT64_MAX ? UINT64_MAX : (size > b->wal_seen ? size - b->wal_seen : 0);
		if (growth > best_growth) {
			best_growth = growth;
			best = b;
		}
		b->wal_seen = size;
	}
	if (!low || best == NULL || best_growth < reserve / 4 ||
	    time(NULL) - m->wal_stopped_at < WAL_GUARD_PAUSE_S ||
	    pthread_mutex_trylock(&best->op) != 0)
		return;
	if (best->running) {
		pthread_mutex_lock(&m->mu);
		snprintf(
		    best->error, sizeof(best->error),
		    "stopped: its WAL and temporary files (pg_wal, base/pgsql_tmp) grew by %llu "
		    "MiB in %d s while the disk under "
		    "%.200s was below [store] reserve_mb; free space (rift reset or rift delete "
		    "a branch), then connect again",
		    best_growth == UINT64_MAX ? 0ULL : (unsigned long long)(best_growth >> 20),
		    IDLE_TICK_S, m->state);
		LOG_ERROR("manager", "branch %s %s", best->name, best->error);
		pthread_mutex_unlock(&m->mu);
		manager_stop_locked(m, best);
		/* clients get this error rather than a start for the next START_RETRY_S */
		clock_gettime(CLOCK_MONOTONIC, &best->failed_at);
		m->wal_stopped_at = time(NULL);
	}
	pthread_mutex_unlock(&best->op);
}

/* Seconds between two counts of a server's clients: a tenth of idle_timeout, so a stop comes
 * at most that late, within [IDLE_TICK_S, CLIENTS_CHECK_MAX_S]. */
static time_t clients_check_interval(const struct rift_manager *m)
{
	time_t s = m->cfg.idle_timeout_s / 10;

	return s < IDLE_TICK_S ? IDLE_TICK_S : s > CLIENTS_CHECK_MAX_S ? CLIENTS_CHECK_MAX_S : s;
}

/* Stops running branch b (op held) once it has had no client for idle_timeout. The router's
 * clients and read-only views are known for free; clients that reach the server's port or
 * socket directly only by asking the server, which riftd does every interval while the router
 * has no client for b, and never while it has. Each count reads the clients connected now and
 * how many sessions the server has ever opened: a rise beyond the previous count's own session
 * means someone came (and maybe went) in between, which a look at who is connected would miss.
 * A branch whose last count saw clients is active until the first count that sees none, and a
 * stop is decided only right after a count: so it comes idle_timeout after the last client
 * left, or up to one interval later. A count that fails sees nobody, so a server that cannot
 * be asked still stops when idle (security_maint.sh). */
static void idle_check(struct rift_manager *m, struct bstate *b, time_t now)
{
	int64_t sessions;
	bool seen;
	int clients;

	if (b->routed > 0 || manager_views_in_use(b)) {
		b->last_active = now;
		return;
	}
	if (now - b->clients_checked_at < clients_check_interval(m))
		return;
	clients = rift_instance_clients(&b->inst, m->cfg.pg_user, &sessions);
	b->clients_checked_at = now;
	/* the router's kept sessions are clients of the server but keep nothing running */
	seen = clients > (b->pooled > 0 ? b->pooled : 0);
	/* the previous count's own session is one; fewer than before means its statistics were
	 * reset (by its superuser, or a crash): count that as use rather than miss any */
	if (sessions >= 0 && b->sessions >= 0 &&
	    (sessions < b->sessions || sessions - b->sessions >= 2))
		seen = true;
	b->sessions = sessions;
	if (seen) {
		b->direct_clients = true;
		b->last_active = now;
	} else if (b->direct_clients) {
		b->direct_clients = false; /* they left since the last count */
		b->last_active = now;
	} else if (now - b->last_active >= m->cfg.idle_timeout_s) {
		manager_stop_locked(m, b);
	}
}

/* Stops servers idle longer than idle_timeout, and notices servers that died. */
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
			time_t now = time(NULL);
			pthread_mutex_lock(&m->mu);
			b = m->v[i];
			pthread_mutex_unlock(&m->mu);
			if (!b->deleted && b->expires_at > 0 && now >= b->expires_at) {
				char err[512];
				LOG_INFO("manager", "branch %s expired (--ttl): deleting it",
					 b->name);
				if (rift_manager_delete(m, b->name, err, sizeof(err)) != RIFT_OK) {
					LOG_ERROR("manager", "%s; retrying in an hour", err);
					b->expires_at = now + 3600;
				}
				continue;
			}
			if (b->warm || pthread_mutex_trylock(&b->op) != 0)
				continue; /* the pool's servers are the refill thread's */
			if (b->running && !rift_instance_alive(&b->inst)) {
				snprintf(b->error, sizeof(b->error),
					 "the server exited unexpectedly (log: %.400s)",
					 b->inst.logpath);
				manager_stop_locked(m, b);
			} else if (b->running && m->cfg.idle_timeout_s > 0) {
				idle_check(m, b, now);
			}
			pthread_mutex_unlock(&b->op);
		}
		manager_save_running(m);
		pthread_mutex_lock(&m->idle_mu);
	}
	pthread_mutex_unlock(&m->idle_mu);
	return NULL;
}
