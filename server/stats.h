/* stats.h -- the broker's figures, gathered into one msg_stats_t.
 *
 * One gathering serves both ways of reading them: the body of STATS_REP
 * (command.c) and the Prometheus text of /metrics (metrics.h, started
 * here), so the two always show the same figures.  Counters run since the broker started;
 * the rest (depths, workers, slots, memory) are as of the call.
 */
#ifndef QJ_STATS_H
#define QJ_STATS_H

#include "broker.h"

/* Fill *st from b.  Its arrays are allocated (stats_release frees them)
 * or borrowed from b (valid until b changes: use *st at once).  Returns
 * 0, or -1 if out of memory (then *st holds nothing to release). */
int stats_collect(broker_t *b, msg_stats_t *st);

/* Free what stats_collect allocated; *st is zeroed. */
void stats_release(msg_stats_t *st);

/* Serve the figures over HTTP if b->cfg.metrics_bind is set (metrics.h;
 * any address if CURVE is on or --insecure, else loopback only), and
 * write the URL to b->cfg.metrics_file if set.  Call before the broker's
 * sockets are bound, so that the metrics file is there once the endpoint
 * file is.  Returns 0, or -1 with a message. */
int stats_serve(broker_t *b, char *err, size_t errlen);

#endif
