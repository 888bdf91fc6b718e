/* manager.h — riftd's branch manager: the store, one mount and one Postgres per running branch. */
#ifndef RIFT_MANAGER_H
#define RIFT_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rift/base_init.h"
#include "rift/config.h"
#include "rift/instance.h"
#include "rift/store.h"

struct rift_manager;

/* A branch as the API shows it. */
struct rift_branch_view {
	struct rift_branch_info info;
	bool running;
	int port;             /* 0 when stopped */
	long long expires_at; /* unix time riftd deletes it (--ttl), 0 = never */
	char error[512];      /* why the last start failed, if it did */
	char password[32];    /* create with new_password only: the branch's new password */
	bool starting;        /* a start of its server is under way */
	int connections;      /* client connections the router holds open to it now */
	int pooled;           /* idle server sessions the router keeps for reuse */
	uint64_t starts;      /* its server started this many times since riftd began */
};

/* Errors carry an HTTP-like status, so the API can answer without guessing. */
enum rift_status {
	RIFT_OK = 200,
	RIFT_CREATED = 201,
	RIFT_BAD_REQUEST = 400,
	RIFT_NOT_FOUND = 404,
	RIFT_CONFLICT = 409,
	RIFT_FAILED = 500,
	RIFT_UNAVAILABLE = 503,
};

/*
 * Opens the store in state_dir with its rift.conf and base.conf, cleans up what a killed riftd
 * left (stale mounts, orphaned servers) and restarts the branches that were running. *err says
 * what went wrong and what to do. The caller owns *out.
 */
int rift_manager_open(const char *state_dir, struct rift_manager **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Stops every server, unmounts every branch, closes the store. NULL is fine. */
void rift_manager_close(struct rift_manager *m);

/*
 * Starts still waiting for a start slot give up ("riftd is stopping") and no new one waits:
 * called before the router waits for its start threads, which may be queued for up to
 * [instances] queue_timeout.
 */
void rift_manager_close_queue(struct rift_manager *m);

const struct rift_config *rift_manager_config(struct rift_manager *m);
const struct rift_base_meta *rift_manager_base(struct rift_manager *m);
/* The state directory riftd runs on (its log/, run/, ...). */
const char *rift_manager_state_dir(struct rift_manager *m);

/* Each returns a rift_status; on failure *err (errlen bytes) says what to do. */
/* What a new branch is made with; zero-initialise and set what applies. */
struct rift_create_opts {
	const char *from;   /* parent branch; NULL or "" = "main" */
	long ttl_s;         /* > 0: riftd deletes the branch that many seconds from now */
	bool has_max_size;  /* false: [store] default_max_size applies */
	uint64_t max_size;  /* bytes the branch may store of its own; 0 = unlimited */
	bool new_password;  /* the login role gets a fresh password in this branch only */
	const char *labels; /* "k=v,k=v" (rift_labels_add's form) or NULL: stored with it */
};

enum rift_status rift_manager_create(struct rift_manager *m, const char *name,
				     const struct rift_create_opts *opts,
				     struct rift_branch_view *out, char *err, size_t errlen);
enum rift_status rift_manager_delete(struct rift_manager *m, const char *name, char *err,
				     size_t errlen);
enum rift_status rift_manager_reset(struct rift_manager *m, const char *name, char *err,
				    size_t errlen);
/* Mounts the branch and starts its server (single flight: concurrent callers share one start). */
enum rift_status rift_manager_start(struct rift_manager *m, const char *name,
				    struct rift_branch_view *out, char *err, size_t errlen);
/*
 * Starts the branch if needed and binds its view read-only at dir (absolute, an existing empty
 * directory), for `rift mount` while riftd serves; detached when the branch stops.
 */
enum rift_status rift_manager_mount(struct rift_manager *m, const char *name, const char *dir,
				    struct rift_branch_view *out, char *err, size_t errlen);
enum rift_status rift_manager_stop(struct rift_manager *m, const char *name, char *err,
				   size_t errlen);
enum rift_status rift_manager_get(struct rift_manager *m, const char *name,
				  struct rift_branch_view *out, char *err, size_t errlen);
/* *out (caller frees) gets *count views sorted by name. */
enum rift_status rift_manager_list(struct rift_manager *m, struct rift_branch_view **out,
				   size_t *count, char *err, size_t errlen);

/*
 * Starts branch name if it is stopped and keeps it from stopping when idle until
 * rift_manager_release; *inst gets a copy of its running server (for riftd's own reports).
 */
enum rift_status rift_manager_hold(struct rift_manager *m, const char *name,
				   struct rift_instance *inst, char *err, size_t errlen);
void rift_manager_release(struct rift_manager *m, const char *name);

/*
 * Makes a temporary hidden branch over the point branch name was made from (its parent as it
 * was then; the base for a branch made from a base), and holds it as rift_manager_hold does:
 * its name goes to tmp. Undo with rift_manager_fork_drop(m, tmp, true).
 */
enum rift_status rift_manager_fork_hold(struct rift_manager *m, const char *name, char *tmp,
					size_t tmplen, struct rift_instance *inst, char *err,
					size_t errlen);
/* Stops and deletes a temporary fork-point branch (released first when held). */
void rift_manager_fork_drop(struct rift_manager *m, const char *tmp, bool held);

/* Where the Postgres binaries of the base are (pg_dump, ...). */
const char *rift_manager_bindir(struct rift_manager *m);

/* Counts a routed connection opening (+1) or closing (-1): the idle timer sees them. */
void rift_manager_touch(struct rift_manager *m, const char *name, int delta);

/*
 * Counts server sessions the router keeps open between clients (+1 kept, -1 let go): idle
 * pooled sessions do not keep a branch from stopping when idle.
 */
void rift_manager_pooled(struct rift_manager *m, const char *name, int delta);

/* The SCRAM verifier of role on a running branch's server; see rift_instance_role_secret. */
int rift_manager_role_secret(struct rift_manager *m, const char *name, const char *role, char *out,
			     size_t outlen);

/* Servers starting now, starts waiting for a slot, and the slot count ([instances] max_starting).
 */
void rift_manager_start_counts(struct rift_manager *m, int *starting, int *queued, int *slots);

/* Warm servers ready to hand out, and creates served from the pool or not since riftd began. */
void rift_manager_warm_counts(struct rift_manager *m, int *ready, unsigned long long *taken,
			      unsigned long long *missed);

/* Time from asking for a server to its being ready (start slots included), for /metrics. */
struct rift_latency;
const struct rift_latency *rift_manager_start_latency(struct rift_manager *m);
struct rift_store *rift_manager_store(struct rift_manager *m);

/* Prometheus text exposition of branches, instances, bytes and create latency into buf. */
size_t rift_manager_metrics(struct rift_manager *m, char *buf, size_t len);

#endif
