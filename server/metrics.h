/* metrics.h -- the broker's figures over HTTP, in the Prometheus text format.
 *
 * With --metrics-bind ADDR:PORT the broker answers GET /metrics with the
 * figures of STATS_REP (stats.h) as Prometheus text exposition (format
 * 0.0.4): qjob_* families with HELP and TYPE lines, per-queue series
 * labelled queue="...", counters ending in _total, and a histogram of
 * dispatch waits per queue.  Any other path is 404, any other method 405.
 *
 * The HTTP side is libmicrohttpd, run without a thread of its own: its
 * epoll fd (metrics_fd) is one of the broker's zmq_poll items and
 * metrics_poll, called from the broker's loop, accepts, reads and answers.
 * So the figures are read in the broker's own thread, between two turns,
 * with nothing changing under them: no locks, no copies.  Every
 * connection is bounded in number, memory and idle time, and one that
 * sends garbage gets a 400 and is closed; none can stall the loop, since
 * every socket is non-blocking.
 *
 * The endpoint has no authentication of its own: like --bind, a
 * non-loopback address needs CURVE on or --insecure (endpoint.h).
 */
#ifndef QJ_METRICS_H
#define QJ_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "msg.h"

typedef struct metrics metrics_t;

/* Fill *st with the figures (0), or fail (-1: out of memory, answered
 * with a 500); release frees what collect allocated.  Called from
 * metrics_poll, in the caller's thread. */
typedef int (*metrics_collect_fn)(void *ctx, msg_stats_t *st);
typedef void (*metrics_release_fn)(void *ctx, msg_stats_t *st);

/* Listen on bind ("HOST:PORT", "[V6]:PORT"; port 0 picks a free one).
 * open: any address may be bound (CURVE is on, or --insecure); else only
 * loopback.  collect, release and ctx must outlive the server.  Returns
 * NULL with a message in err if the address is refused or malformed, or
 * cannot be bound. */
metrics_t *metrics_new(const char *bind, bool open, metrics_collect_fn collect,
                       metrics_release_fn release, void *ctx, char *err, size_t errlen);

/* The URL of the figures, with the port bound: "http://127.0.0.1:9187/metrics". */
const char *metrics_url(const metrics_t *self);

/* The fd to poll for ZMQ_POLLIN. */
int metrics_fd(const metrics_t *self);

/* The poll timeout to use, given the caller's own max_ms (>= 0): at
 * most that, less if a connection needs attention sooner. */
long metrics_timeout(metrics_t *self, long max_ms);

/* After the poll: accept, read and answer whatever is ready (readable:
 * metrics_fd polled readable), and close idle connections once due.
 * Never blocks. */
void metrics_poll(metrics_t *self, bool readable);

/* Close every connection and the listening socket; safe on NULL, nulls
 * the caller's pointer. */
void metrics_destroy(metrics_t **self_p);

/* The Prometheus text of st.  Returns a NUL-terminated buffer (caller
 * frees) with its length in *len, or NULL if out of memory. */
char *metrics_render(const msg_stats_t *st, size_t *len);

#endif
