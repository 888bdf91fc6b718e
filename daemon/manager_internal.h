/* manager_internal.h — the branch manager's state, shared by manager.c, manager_idle.c and
 * manager_warm.c. */
#ifndef RIFT_MANAGER_INTERNAL_H
#define RIFT_MANAGER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "rift/base_meta.h"
#include "rift/config.h"
#include "rift/instance.h"
#include "rift/latency.h"
#include "rift/manager.h"
#include "rift/mount.h"
#include "rift/store.h"

#define RIFT_MAX_VIEWS 4 /* rift mount binds per running branch */
#define NBUCKETS       8 /* create latency buckets (create_buckets_ms in manager.c) */
/* names of the warm pool's branches (and diff's fork servers): users can neither make nor
 * route to them */
#define WARM_PREFIX "rift-warm-"

struct start_waiter;

/*
 * What riftd knows about one branch beyond the store. op serialises start/stop/delete of this
 * branch and is held for as long as they take; m->mu guards the fields others read (running,
 * port, error, inst while running), so a reader such as the router never waits on a start.
 */
struct bstate {
	char name[64];
	pthread_mutex_t op;
	struct rift_mount *mount;
	struct rift_instance inst;
	bool running, deleted;
	uint64_t
	    wal_seen; /* its WAL directory's size at the last look of wal_guard (idle thread) */
	int port;     /* reserved for this branch's server from pick to stop; 0 = none */
	bool warm;    /* a started server in the warm pool, not handed out yet (m->mu) */
	bool claimed; /* a create is taking this warm server (m->mu) */
	bool primed;  /* a warm server's first login is done: counted ready (m->mu) */
	struct timespec failed_at; /* CLOCK_MONOTONIC of the last failed start; 0 = none (op) */
	struct timespec queue_failed_at; /* ... of the last start that timed out queued (op) */
	char mnt[4200];     /* where it is mounted now (a taken warm branch keeps its pool path) */
	int routed;         /* connections the router holds open (m->mu) */
	int pooled;         /* idle server sessions the router keeps for reuse (m->mu) */
	bool starting;      /* manager_start_locked is under way (m->mu) */
	uint64_t starts;    /* successful starts since riftd began (m->mu) */
	time_t expires_at;  /* 0 = never (m->mu) */
	time_t last_active; /* when it was last seen in use (m->mu: the router sets it too) */
	/* the idle check's counts of clients that reach the server past the router (op) */
	time_t clients_checked_at;
	bool direct_clients; /* the last count found some, or found some had come and gone */
	int64_t sessions;    /* sessions its server had opened at that count; -1 = unknown */
	/* kinds of the idle thread's work under way on it, a bit each (m->mu; manager_idle.c) */
	unsigned idle_jobs;
	uid_t uid; /* the OS uid (= gid) its server runs as while it holds one; 0 = none */
	char error[512];
	/* read-only binds of its view made by `rift mount` (op); detached before it stops */
	struct {
		char path[4096];
		uint64_t mnt_id;
	} views[RIFT_MAX_VIEWS];
	size_t nviews;
};

struct rift_manager {
	char state[4096];
	struct rift_config cfg;
	struct rift_base_meta meta;
	struct rift_store *store;
	char bindir[4096];
	pthread_mutex_t mu; /* the table below */
	struct bstate **v;
	size_t n, cap;
	pthread_t idle;
	bool idle_started;
	/* server starts running at once (m->mu), and the clients queued for a slot, oldest first */
	int starting, max_starting;
	struct start_waiter *start_queue, **start_tail;
	bool queue_closed; /* riftd is stopping: queued starts give up (under mu) */
	/* the warm pool: servers started ahead on fresh branches of main, renamed at create */
	pthread_t warm;
	bool warm_started;
	pthread_cond_t warm_cv; /* with idle_mu: wakes the refill thread */
	uint64_t warm_taken, warm_missed;
	time_t warm_last_take;
	pthread_mutex_t idle_mu;
	pthread_cond_t idle_cv;
	bool stopping;
	int idle_jobs;               /* threads doing the idle thread's work on a branch (mu) */
	pthread_cond_t idle_jobs_cv; /* with mu: the last of them ended */
	/* create latency, for /metrics */
	uint64_t create_hist[NBUCKETS + 1];
	uint64_t create_count;
	double create_sum_s;
	struct rift_latency start_lat; /* manager_start_locked, queueing for a slot included */
	/* per-branch OS identities: where the next search for a free uid starts, and uids whose
	 * processes would not die (never handed out again by this riftd) */
	unsigned uid_next;
	uid_t stuck[64];
	size_t nstuck;
	int uid_lock_fd; /* flock on /run/rift/uids-<uid_base>.lock while this riftd uses them */
	time_t sizes_logged_at; /* CLOCK_MONOTONIC seconds of the last line about size estimates */
	time_t wal_stopped_at;  /* time() the WAL guard last stopped a branch (mu) */
	char walroot[4096];     /* <state>/wal (wal_dir.h); "" when too long: pg_wal stays inside */
	uid_t wal_lo, wal_hi;   /* the servers' uids, for filesystems without xattrs (wal_dir.h) */
};

/* ---- manager.c, for the warm pool ---- */

/* The branch's entry, made on first use if the store has the branch; NULL when it has not, or
 * when out of memory. */
struct bstate *manager_get_state(struct rift_manager *m, const char *name);
bool manager_is_warm_name(const char *name);
/* Writes the list of running branches that a restarted riftd starts again. */
void manager_save_running(struct rift_manager *m);
/* Starts b's server (b->op held), waiting for a start slot. */
enum rift_status manager_start_locked(struct rift_manager *m, struct bstate *b, char *err,
				      size_t errlen);
/* Stops b's server (fast shutdown) and unmounts its branch (b->op held). */
void manager_stop_locked(struct rift_manager *m, struct bstate *b);
/* Are some of b's `rift mount` views still mounted? Forgets those that are not (b->op held). */
bool manager_views_in_use(struct bstate *b);
/* Refreshes the compressed sizes `rift list` shows (the idle thread, or open before it). */
void manager_refresh_disk_estimates(struct rift_manager *m);
/* Stops b's server at once, with no shutdown checkpoint, then as manager_stop_locked (b->op
 * held). */
void manager_discard_locked(struct rift_manager *m, struct bstate *b);
int manager_branch_create(struct rift_manager *m, struct bstate *p, const char *name,
			  const char *from, char *err, size_t errlen);
int manager_branch_delete(struct rift_manager *m, const char *name);
/* Deletes branch name if its --ttl has passed (checked under its op); RIFT_OK when it has not. */
enum rift_status manager_delete_expired(struct rift_manager *m, const char *name, char *err,
					size_t errlen);
/* Removes a deleted branch's server log, <state>/log/NAME.log, and logpath where its server
 * logged under another name (a warm server taken under a new one; NULL: none). */
void manager_remove_log(struct rift_manager *m, const char *name, const char *logpath);

/* ---- manager_idle.c ---- */

/* The idle thread's body (arg: the manager): every IDLE_TICK_S, idle stops, TTL deletes, the
 * WAL guard. */
void *manager_idle_main(void *arg);
/* Waits until no idle work on a branch is under way; after the idle thread ended, before the
 * branches' states go. */
void manager_idle_drain(struct rift_manager *m);

/* ---- manager_warm.c: servers started ahead on fresh branches of main ---- */

/* Claims a running warm server for a create; NULL when the pool is empty. */
struct bstate *warm_pool_claim(struct rift_manager *m);
/*
 * Gives claimed warm branch b the name the user asked for. 0; -EAGAIN when b turned out stale
 * or stopped (the caller makes a branch the ordinary way); -EEXIST or a store error otherwise.
 */
int warm_pool_take(struct rift_manager *m, struct bstate *b, const char *name);
/* Stops warm server b and deletes its branch; b->op held. */
void warm_pool_drop_locked(struct rift_manager *m, struct bstate *b, const char *why);
/* The refill thread's body (arg: the manager). */
void *warm_pool_main(void *arg);
/* Deletes the pool branches, mount points and socket directories a killed riftd left. */
void warm_pool_clear_leftovers(struct rift_manager *m);

#endif
