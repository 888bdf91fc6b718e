/* manager_warm.c — the warm pool: servers started ahead on fresh branches of main. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "rift/log.h"
#include "manager_internal.h"

#define WARM_QUIET_S 3 /* the pool refills once no server was taken for this long */

/* Wakes the refill thread (a server was taken, or the pool should be looked at). */
static void warm_pool_kick(struct rift_manager *m)
{
	pthread_mutex_lock(&m->idle_mu);
	pthread_cond_signal(&m->warm_cv);
	pthread_mutex_unlock(&m->idle_mu);
}

/*
 * Whether warm branch w is still what a new branch of main would be: main's head has had no
 * write since, and both hang off the same frozen layer. A write to main (or a branch taken from
 * a changed main) makes every pooled server stale; they are dropped, never handed out.
 */
static bool warm_fresh(struct rift_manager *m, const char *w)
{
	struct rift_branch_info mi, wi;

	if (rift_store_branch_info(m->store, "main", &mi) != 0 ||
	    rift_store_branch_info(m->store, w, &wi) != 0)
		return false;
	return !mi.head_changed && mi.fork_layer != 0 && mi.fork_layer == wi.fork_layer;
}

/* Claims a running warm server for a create; NULL when the pool is empty. */
struct bstate *warm_pool_claim(struct rift_manager *m)
{
	struct bstate *b = NULL;
	size_t i;

	if (m->cfg.warm <= 0)
		return NULL;
	pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->n && b == NULL; i++)
		if (m->v[i]->warm && m->v[i]->running && !m->v[i]->claimed && !m->v[i]->deleted)
			b = m->v[i];
	if (b != NULL)
		b->claimed = true;
	else
		m->warm_missed++;
	pthread_mutex_unlock(&m->mu);
	return b;
}

/*
 * Gives claimed warm branch b the name the user asked for: one synced rename in the store; its
 * server, mount and socket keep running where they are (the server never learns its branch's
 * name: clients are routed by the manager's table). 0; -EAGAIN when b turned out stale or
 * stopped (the caller makes a branch the ordinary way); a store error otherwise.
 */
int warm_pool_take(struct rift_manager *m, struct bstate *b, const char *name)
{
	char log[4096], old[64], why[512];
	int rc = -EAGAIN;

	pthread_mutex_lock(&b->op);
	if (b->running && rift_instance_alive(&b->inst) && warm_fresh(m, b->name)) {
		/* it ran with riftd's local line only, so nobody could log in before its owner
		 * (another job could otherwise plant a role with main's shared password) */
		if (rift_instance_open_hba(&b->inst, why, sizeof(why)) != 0)
			LOG_WARN("manager", "warm server %s: %s", b->name, why);
		else
			rc = rift_store_branch_rename(m->store, b->name, name);
	}
	if (rc == 0) {
		snprintf(old, sizeof(old), "%s", b->name);
		snprintf(log, sizeof(log), "%.3000s/log/%.63s.log", m->state, name);
		if (rename(b->inst.logpath, log) != 0)
			snprintf(log, sizeof(log), "%s", b->inst.logpath);
		pthread_mutex_lock(&m->mu);
		assert(b->warm && b->claimed);
		snprintf(b->name, sizeof(b->name), "%s", name);
		snprintf(b->inst.branch, sizeof(b->inst.branch), "%s", name);
		snprintf(b->inst.logpath, sizeof(b->inst.logpath), "%s", log);
		b->warm = false;
		b->claimed = false;
		b->last_active = time(NULL);
		m->warm_taken++;
		m->warm_last_take = time(NULL);
		pthread_mutex_unlock(&m->mu);
		LOG_INFO("manager", "branch %s is warm server %s, already running on port %d", name,
			 old, b->port);
	} else {
		pthread_mutex_lock(&m->mu);
		b->claimed = false;
		if (rc == -EAGAIN)
			b->warm = b->warm && b->running; /* the refill thread drops stale ones */
		pthread_mutex_unlock(&m->mu);
	}
	pthread_mutex_unlock(&b->op);
	if (rc == -EEXIST) /* the name was taken: say so as any create would */
		return rc;
	manager_save_running(m);
	warm_pool_kick(m);
	return rc == 0 || rc == -EAGAIN ? rc : -EAGAIN;
}

/* Stops a warm server and deletes its branch; b->op held. */
void warm_pool_drop_locked(struct rift_manager *m, struct bstate *b, const char *why)
{
	int rc;

	LOG_INFO("manager", "dropping warm server %s: %s", b->name, why);
	manager_discard_locked(m, b); /* removes its mount point and socket directory too */
	rc = manager_branch_delete(m, b->name);
	if (rc != 0 && rc != -ENOENT)
		LOG_ERROR("manager", "cannot delete warm branch %s: %s", b->name, strerror(-rc));
	else
		manager_remove_log(m, b->name, b->inst.logpath);
	pthread_mutex_lock(&m->mu);
	b->warm = false;
	b->deleted = true;
	pthread_mutex_unlock(&m->mu);
}

/* Drops stale or dead warm servers; returns how many are left ready. */
static int warm_prune(struct rift_manager *m)
{
	size_t i, n;
	int ready = 0;

	pthread_mutex_lock(&m->mu);
	n = m->n;
	pthread_mutex_unlock(&m->mu);
	for (i = 0; i < n; i++) {
		struct bstate *b;
		bool warm;
		pthread_mutex_lock(&m->mu);
		b = m->v[i];
		warm = b->warm && !b->claimed && !b->deleted;
		pthread_mutex_unlock(&m->mu);
		if (!warm || pthread_mutex_trylock(&b->op) != 0)
			continue;
		if (b->warm && !b->claimed && !b->deleted) {
			if (!b->running || !rift_instance_alive(&b->inst))
				warm_pool_drop_locked(m, b, "its server is not running");
			else if (!warm_fresh(m, b->name))
				warm_pool_drop_locked(m, b, "main changed since it was made");
			else
				ready++;
		}
		pthread_mutex_unlock(&b->op);
	}
	return ready;
}

/* Makes one warm server: a fresh branch of main, started. 0 or -errno. */
static int warm_add(struct rift_manager *m)
{
	char name[64], err[1024];
	unsigned char rnd[6];
	struct bstate *b, *p;
	int rc;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	/* random, so a path of a pool server from before a crash is never this one's */
	snprintf(name, sizeof(name), WARM_PREFIX "%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
		 rnd[3], rnd[4], rnd[5]);
	p = manager_get_state(m, "main");
	if (p == NULL)
		return -ENOENT;
	pthread_mutex_lock(&p->op);
	rc = manager_branch_create(m, p, name, "main", err, sizeof(err));
	pthread_mutex_unlock(&p->op);
	if (rc == 1) {
		LOG_WARN("manager", "cannot make a warm server: %s", err);
		return -EIO;
	}
	if (rc != 0)
		return rc;
	b = manager_get_state(m, name);
	if (b == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&b->op);
	pthread_mutex_lock(&m->mu);
	b->warm = true;
	pthread_mutex_unlock(&m->mu);
	if (manager_start_locked(m, b, err, sizeof(err)) != RIFT_OK) {
		LOG_WARN("manager", "cannot start a warm server: %s", err);
		warm_pool_drop_locked(m, b, "its start failed");
		rc = -EIO;
	} else if (m->meta.default_db[0] != '\0' &&
		   rift_instance_prewarm(&b->inst, m->cfg.pg_user, m->meta.default_db, err,
					 sizeof(err)) != 0) {
		/* still a running server: the first client only logs in slower */
		LOG_WARN("manager", "warm server %s: %s", b->name, err);
	}
	pthread_mutex_lock(&m->mu);
	b->primed = rc == 0;
	pthread_mutex_unlock(&m->mu);
	pthread_mutex_unlock(&b->op);
	return rc;
}

/*
 * Keeps [instances] warm servers ready. Refills only while main is stopped (a running main
 * changes all the time, so its pooled copies would be stale at once) and while no client's
 * start waits for a slot (the pool never delays a real start).
 */
void *warm_pool_main(void *arg)
{
	struct rift_manager *m = arg;
	int backoff_s = 0;
	bool again = false;

	pthread_setname_np(pthread_self(), "warm-pool");
	pthread_mutex_lock(&m->idle_mu);
	while (!m->stopping) {
		struct timespec until;
		struct bstate *main_b;
		bool busy;
		int ready;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += backoff_s > 0 ? backoff_s : 1;
		if (!again)
			pthread_cond_timedwait(&m->warm_cv, &m->idle_mu, &until);
		again = false;
		if (m->stopping)
			break;
		pthread_mutex_unlock(&m->idle_mu);
		backoff_s = 0;
		ready = warm_prune(m);
		main_b = manager_get_state(m, "main");
		pthread_mutex_lock(&m->mu);
		/* a burst of creates is under way while servers are being taken: refilling now
		 * would take the CPU their first queries need */
		busy = m->start_queue != NULL || (main_b != NULL && main_b->running) ||
		       time(NULL) - m->warm_last_take < WARM_QUIET_S;
		pthread_mutex_unlock(&m->mu);
		if (!busy && ready < m->cfg.warm && warm_add(m) != 0)
			backoff_s = 10;
		pthread_mutex_lock(&m->idle_mu);
		again = !busy && backoff_s == 0 && ready + 1 < m->cfg.warm; /* more to make now */
	}
	pthread_mutex_unlock(&m->idle_mu);
	return NULL;
}

/* Branches of a pool from before (riftd was killed) go: their servers were ended already. */
void warm_pool_clear_leftovers(struct rift_manager *m)
{
	struct rift_branch_info *infos = NULL;
	char path[4200];
	size_t n = 0, i;
	int rc;

	if (rift_store_branch_list(m->store, &infos, &n) != 0)
		return;
	for (i = 0; i < n; i++) {
		if (!manager_is_warm_name(infos[i].name))
			continue;
		rc = manager_branch_delete(m, infos[i].name);
		if (rc == 0)
			LOG_INFO("manager", "deleted warm branch %s left by the previous riftd",
				 infos[i].name);
		else
			LOG_WARN("manager",
				 "cannot delete warm branch %s left by the previous riftd: %s; the "
				 "next start of riftd tries again",
				 infos[i].name, strerror(rc < 0 ? -rc : EIO));
		manager_remove_log(m, infos[i].name, NULL);
	}
	free(infos);
	/* mount points, socket directories and hba files of pool servers, taken or not (a taken
	 * branch runs on its pool paths until it stops; its next start uses its own); no server
	 * runs yet, and no other branch's name starts like a pool server's */
	for (i = 0; i < 3; i++) {
		static const char *const dirs[3] = { "mnt", "run/pg", "run/hba" };
		struct dirent *de;
		DIR *d;
		snprintf(path, sizeof(path), "%.3000s/%s", m->state, dirs[i]);
		d = opendir(path);
		while (d != NULL && (de = readdir(d)) != NULL) {
			char sub[4400];
			if (!manager_is_warm_name(de->d_name))
				continue;
			snprintf(sub, sizeof(sub), "%s/%.63s", path, de->d_name);
			if ((i < 2 ? rmdir(sub) : unlink(sub)) != 0 && errno != ENOENT)
				LOG_WARN("manager", "cannot remove %s, left by a pool server: %s",
					 sub, strerror(errno));
		}
		if (d != NULL)
			closedir(d);
	}
}

void rift_manager_warm_counts(struct rift_manager *m, int *ready, unsigned long long *taken,
			      unsigned long long *missed)
{
	size_t i;

	pthread_mutex_lock(&m->mu);
	*ready = 0;
	for (i = 0; i < m->n; i++)
		*ready += m->v[i]->warm && m->v[i]->running && m->v[i]->primed && !m->v[i]->claimed;
	*taken = m->warm_taken;
	*missed = m->warm_missed;
	pthread_mutex_unlock(&m->mu);
}
