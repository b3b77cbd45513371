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
    void *arg;
} qj_embed_ops;

/* A client without a socket, driven by its host.  NULL on allocation
 * failure.  Destroy with qj_client_destroy. */
qj_client *qj_client_new_embedded(const qj_embed_ops *ops);

/* Hand the client a decoded message for it: ACCEPTED, RESULTS (of
 * sub-jobs), PROGRESS, CANCEL_REP, STATUS_REP, STATS_REP, ERROR.  Wakes
 * the coroutines waiting on what it completes. */
void qj_client_feed(qj_client *c, const msg_t *m);

#endif
