/* embed.h -- hosting a qj_client inside a worker process (internal).
 *
 * A task's sub-jobs go over its worker process's own connection: the
 * worker owns the socket and the loop, and hosts a qj_client that has no
 * socket.  The client hands frames to send() and the worker feeds it the
 * messages that concern sub-jobs.  qj_await and friends, called from a
 * task coroutine, park the coroutine (sched_park) instead of polling.
 */
#ifndef QJ_EMBED_H
#define QJ_EMBED_H

#include "qjob.h"
#include "msg.h"

typedef struct qj_embed_ops {
    /* Send one encoded frame on the host's socket.  Returns 0 or -1. */
    int (*send)(void *arg, const void *frame, size_t len);
    /* Id of the job whose coroutine is running (the parent of a submit). */
    uint64_t (*current_job)(void *arg);
    /* A task coroutine is about to wait (block) / has stopped waiting
     * (unblock): the worker lends out and takes back the job's slot. */
    void (*block)(void *arg);
    void (*unblock)(void *arg);
    /* Has the running job been told to stop (cancelled, or past its
     * timeout)?  A wait then ends at once with errno ECANCELED, so that a
     * cancelled task is not held until its sub-jobs finish.  The host
     * wakes the parked coroutine when it tells the job to stop. */
    bool (*stopping)(void *arg);
    void *arg;
} qj_embed_ops;

/* A client without a socket, driven by its host.  NULL on allocation
 * failure.  Destroy with qj_client_destroy.
 *
 * Submits are batched: they go to send() when a task waits (qj_await,
 * qj_gather, qj_wait_any, qj_accepted), when a batch is full, or when the
 * host calls qj_flush / qj_client_process.  The host calls one of those
 * after each sched_run round, so that a task that submits and never
 * waits (fire and forget) still gets its jobs sent; qj_client_process
 * also runs due qj_on_done callbacks.  Waiting is only allowed inside a
 * task coroutine (an assert otherwise); each submit carries
 * parent = current_job(). */
qj_client *qj_client_new_embedded(const qj_embed_ops *ops);

/* Hand the client a decoded message for it: ACCEPTED, RESULTS (of
 * sub-jobs), PROGRESS, CANCEL_REP, STATUS_REP, STATS_REP, ERROR.  Wakes
 * the coroutines waiting on what it completes.  Feed it WELCOME too: after
 * the host's reconnection, that makes the client resend every submit not
 * yet accepted (same refs) and AWAIT every sub-job still waited for. */
void qj_client_feed(qj_client *c, const msg_t *m);

#endif
