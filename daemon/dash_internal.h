/* dash_internal.h — the dashboard's state, shared by its endpoints (api_dashboard.c) and /metrics.
 */
#ifndef RIFT_DASH_INTERNAL_H
#define RIFT_DASH_INTERNAL_H

#include <stdatomic.h>

#include "dash_history.h"
#include "dash_session.h"
#include "rift/dashboard.h"

struct rift_dash {
	struct rift_manager *m;
	char token[256]; /* "" = no token login */
	struct dash_sessions sessions;
	struct dash_history *history;
	_Atomic(struct rift_router *) router;
};

#endif
