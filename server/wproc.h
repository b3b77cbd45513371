/* wproc.h -- one worker process: its connection, its loop, its jobs.
 *
 * A worker process holds one DEALER connection to the broker (PROTOCOL.md
 * §4) and runs each job it is given in a coroutine of its scheduler, at
 * most `coros` at a time; a job waiting for sub-jobs does not count, and
 * lends its slot to the broker meanwhile (one extra credit), so trees of
 * jobs awaiting jobs never deadlock.  Results finished in one turn of the
 * loop leave in one RESULTS message, with the credit they free.
 *
 * The loop is zmq_poll on the socket (and a signal pipe) with the
 * scheduler's timeout.  SIGTERM starts a drain (BYE drain, finish the jobs
 * held, then leave); a second SIGTERM leaves at once (the broker requeues
 * what was held).  A worker also drains itself to be recycled after
 * max_jobs jobs or above max_rss bytes of memory.
 *
 * Create a wproc only in the process that runs it (after fork): it makes
 * its own ZeroMQ context.
 */
#ifndef QJ_WPROC_H
#define QJ_WPROC_H

#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "super.h"
#include "registry.h"

/* Exit statuses of a worker process, read by the supervisor. */
enum {
    WPROC_EXIT_OK = 0,       /* drained on request */
    WPROC_EXIT_FAIL = 1,     /* something broke: restart it (with backoff) */
    WPROC_EXIT_CONFIG = 2,   /* bad configuration: restarting will not help */
    WPROC_EXIT_RECYCLE = 3,  /* reached max_jobs or max_rss: start a fresh one */
};

typedef struct wproc_opts {
    const char *broker;             /* endpoint to connect to */
    const char *name;               /* for the broker's logs and stats (host:pid/n) */
    const char *const *queues;      /* queues served; none = "default" */
    size_t nqueues;
    unsigned coros;                 /* jobs running at once, >= 1 */
    unsigned prefetch;              /* jobs held beyond that, ready to start (adaptive: at least) */
    size_t stack_size;              /* bytes of each job's coroutine stack */
    uint64_t max_jobs;              /* recycle after this many jobs; 0 = never */
    uint64_t max_rss;               /* recycle above this many bytes; 0 = never */
    uint32_t drain_ms;              /* how long a drain may wait for jobs */
    const qj_registry *reg;         /* the tasks (borrowed, must outlive the wproc) */
    const keys_client_t *curve;     /* CURVE keys (borrowed), or NULL for none */
    unsigned prefetch_max;          /* > prefetch: adaptive prefetch up to this (wjobs.h) */
    super_watch_t *watch;           /* the supervisor's watch on this process, or NULL:
                                       running jobs are posted there, and a job the
                                       previous process was killed for is reported */
} wproc_opts_t;

typedef struct wproc wproc_t;

/* Make a worker process's state (ZeroMQ context, scheduler, embedded
 * client) without connecting yet.  Strings in o are borrowed.  Returns
 * NULL with a message on failure. */
wproc_t *wproc_new(const wproc_opts_t *o, char *err, size_t errlen);

/* Connect and serve until drained or told to leave.  Installs a SIGTERM
 * handler for the length of the call.  Returns a WPROC_EXIT_* status. */
int wproc_run(wproc_t *w);

/* Close the connection and free everything (jobs still running are
 * abandoned).  Safe on NULL; nulls the caller's pointer. */
void wproc_destroy(wproc_t **self_p);

#endif
