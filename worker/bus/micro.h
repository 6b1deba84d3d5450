/* Service discovery: every worker answers the NATS micro protocol (ADR-32) as the service
 * "dm": $SRV.PING, $SRV.INFO and $SRV.STATS, plain, with the name, and with name and this
 * worker's id. One endpoint per dm.v1.* subject, queue group "dm". Stats come from the
 * worker's request counters: server errors (Status 5xx) in num_errors and last_error,
 * client mistakes (4xx) apart in the endpoint's data.
 *
 * Threads: the subscriptions' delivery thread answers; counters are atomics. */
#ifndef DM_MICRO_H
#define DM_MICRO_H

#include "bus.h"

#define DM_SERVICE_NAME "dm"
#define DM_SERVICE_VERSION "0.1.0"

typedef struct dm_micro dm_micro;

dm_micro *dm_micro_start(dm_bus *bus, dm_err *err);
void dm_micro_stop(dm_micro *m);
/* This worker's service instance id. */
const char *dm_micro_id(const dm_micro *m);

#endif
