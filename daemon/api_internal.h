/* api_internal.h — the API's read-only reports on a branch (log, diff), served beside api.c. */
#ifndef RIFT_API_INTERNAL_H
#define RIFT_API_INTERNAL_H

#include <microhttpd.h>
#include <stdbool.h>

#include "rift/manager.h"

/* Is action one of the GET reports below (log, diff)? */
bool rift_api_is_report(const char *action);

/* Answers GET /v1/branches/NAME/ACTION for a report action; errors as api.c's. */
enum MHD_Result rift_api_report(struct rift_manager *m, struct MHD_Connection *c, const char *name,
				const char *action);

#endif
