/* dash_history.h — a bounded in-memory history of storage and connections for the dashboard. */
#ifndef RIFT_DASH_HISTORY_H
#define RIFT_DASH_HISTORY_H

#include <jansson.h>

#include "rift/manager.h"

#define DASH_SAMPLE_S    10   /* one sample every this many seconds */
#define DASH_SAMPLES     360  /* kept: one hour */
#define DASH_MAX_TRACKED 4096 /* branches with a history; more are shown without one */

struct dash_history;

/* Starts the sampling thread (a first sample is taken at once). 0 or -errno. */
int dash_history_start(struct rift_manager *m, struct dash_history **out)
    __attribute__((warn_unused_result));
void dash_history_stop(struct dash_history *h);

/* {"t":[unix seconds...], "own":[bytes|null...], "conns":[n|null...]} of one branch; NULL when
 * it has no history. The caller owns the result. */
json_t *dash_history_branch(struct dash_history *h, const char *name);

/* The store's disk use now and over time: filesystem, RocksDB, bases, top branches by own bytes. */
json_t *dash_history_storage(struct dash_history *h);

/* Connections over time: the total and the branches with the most connections. */
json_t *dash_history_connections(struct dash_history *h);

#endif
