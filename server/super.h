/* super.h -- the supervisor: forks the worker processes and keeps them up.
 *
 * super_run forks `procs` children, each running child(index, arg) and
 * exiting with its return value, and then watches them:
 *   - a child that dies is restarted after a delay that doubles with each
 *     quick death (100 ms up to 30 s; a child that ran a while starts the
 *     count again), logged with its exit status or signal;
 *   - a child that exits cleanly (WPROC_EXIT_RECYCLE after --max-jobs-per-child
 *     or --max-rss, or WPROC_EXIT_OK after a SIGTERM of its own) is replaced
 *     at once;
 *   - a child that exits with WPROC_EXIT_CONFIG (a bad endpoint: starting
 *     another would fail the same way) stops the whole worker, status 2.
 * SIGTERM or SIGINT asks every child to drain (SIGTERM to each pid); the
 * supervisor returns 0 once they are gone, and SIGKILLs those still there
 * after grace_ms.  A second SIGTERM/SIGINT is passed on: children then
 * leave at once.  Children get SIGTERM too if the supervisor dies
 * (PR_SET_PDEATHSIG), and ignore SIGINT (a terminal's Ctrl-C reaches the
 * whole process group; the supervisor alone decides).
 *
 * A job that runs past its timeout without yielding blocks its whole
 * process: each child has a watch (super_child_watch) in memory shared
 * with the supervisor, where it posts the job it is resuming and that
 * job's deadline.  When a deadline is WATCH_GRACE_MS past and the same job
 * is still there, the supervisor SIGKILLs the child, leaves the job's id in
 * killed_id for the replacement (which tells the broker: the job then ends
 * as timeout, not lost) and replaces it at once (not a crash: no backoff).
 *
 * Signals only ever go to the supervisor's own children, by pid.
 */
#ifndef QJ_SUPER_H
#define QJ_SUPER_H

#include <stdatomic.h>
#include <stdint.h>

#include "qjlimits.h"

/* One child's watch, shared with the supervisor (MAP_SHARED). */
typedef struct super_watch {
    _Atomic uint64_t job_id;      /* job being resumed; 0 = none */
    _Atomic uint64_t deadline_ms; /* mono ms its timeout ends; 0 = none */
    _Atomic uint64_t killed_id;   /* job the previous child was killed for; 0 = none */
    char name[QJ_MAX_NAME + 1];   /* the child's worker name, for its replacement */
} super_watch_t;

typedef struct super super_t;

/* Runs in a forked child; returns its exit status (a WPROC_EXIT_*). */
typedef int (*super_child_fn)(int index, void *arg);

typedef struct super_opts {
    int procs;                /* children to keep running, >= 1 */
    super_child_fn child;
    void *arg;                /* handed to child */
    uint32_t grace_ms;        /* after a stop request, SIGKILL children still alive */
} super_opts_t;

/* Make a supervisor (no child yet).  NULL on allocation failure. */
super_t *super_new(const super_opts_t *o);

/* Free it.  Safe on NULL; nulls the caller's pointer. */
void super_destroy(super_t **self_p);

/* Fork the children and supervise them until a stop request has been
 * carried out.  Installs handlers for SIGTERM, SIGINT and SIGCHLD for the
 * length of the call.  Returns the program's exit status: 0 after a
 * stop, 2 if a child reported a configuration error, 1 on a system error. */
int super_run(super_t *s);

/* In a child: its watch; NULL outside super_run's children. */
super_watch_t *super_child_watch(void);

#endif
