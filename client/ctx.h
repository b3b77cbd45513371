/* ctx.h -- a job as its task sees it: the worker's half of the task API.
 *
 * qworker keeps one qj_ctx per job it holds.  The ctx owns a copy of the
 * job's arguments (checked at start, decoded with msg_value_decode only
 * when the task first asks for the decoded form), the result the task
 * sets, its failure message and its stop flag (cancel or timeout).
 * task.c implements the accessors of qjob.h over it; this header adds
 * what the host needs: start a job in a ctx, flag a stop, read the
 * outcome.  A ctx is reused from job to job, so its buffers are kept:
 * starting a job and reading its arguments allocate nothing once the ctx
 * has seen arguments (and strings) as large.
 *
 * A ctx is not tied to a scheduler: outside a coroutine, qj_sleep sleeps
 * the thread and qj_yield returns at once (unit tests and tools use that).
 */
#ifndef QJ_CTX_H
#define QJ_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qjob.h"

/* What a ctx needs from the worker that hosts it.  Copied by qj_ctx_new. */
typedef struct qj_ctx_host {
    /* Report ctx's progress (the host may coalesce reports).  note is
     * NULL or at most QJ_MAX_NOTE bytes.  Returns 0 or -1. */
    int (*progress)(void *arg, qj_ctx *ctx, uint64_t done, uint64_t total, const char *note);
    qj_client *client;   /* the process's embedded client for sub-jobs, or NULL */
    void *arg;           /* handed to progress */
} qj_ctx_host;

/* Create an idle ctx.  host may be NULL (no progress, no sub-jobs).
 * Returns NULL on allocation failure. */
qj_ctx *qj_ctx_new(const qj_ctx_host *host);

/* Free a ctx and everything it owns; safe on NULL, nulls the pointer. */
void qj_ctx_destroy(qj_ctx **self_p);

/* Make ctx describe a new job, forgetting the previous one: copy args
 * (one msgpack value, NULL/0 = nil) and check them without allocating;
 * the task's first qj_args / qj_arg_* / qj_args_json decodes them (if that
 * runs out of memory the job's outcome is QJ_ERROR saying so).  queue may be NULL
 * ("default").  Returns 0, or -1 with a message for the job's error if
 * args are not one well-formed msgpack value or are over QJ_MAX_ARGS (the
 * ctx is then ready with nil arguments, so the caller can fail the job). */
int qj_ctx_start(qj_ctx *ctx, uint64_t id, uint32_t attempt, const char *queue,
                 const void *args, size_t len, char *err, size_t errlen);

/* Ask the task to stop: why is QJ_CANCELLED or QJ_TIMEOUT.  From then on
 * qj_sleep, qj_yield and qj_progress return -1 and qj_cancelled is true.
 * The host wakes the job's coroutine itself.  The first reason sticks. */
void qj_ctx_stop(qj_ctx *ctx, qj_status why);

/* The job's outcome once its task returned ret.  A task that noticed a
 * stop request ends with the stop's status; one that called qj_fail, or
 * returned non-zero, ends QJ_ERROR (*error says why); else QJ_OK with the
 * value it set (*val, *len: msgpack bytes, NULL/0 = nil).  Pointers are
 * owned by ctx and valid until the next qj_ctx_start. */
qj_status qj_ctx_outcome(qj_ctx *ctx, int ret, const void **val, size_t *len,
                         const char **error);

/* The queue the job came from (sub-jobs default to it). */
const char *qj_ctx_queue(const qj_ctx *ctx);

/* Failure seam: how a ctx decodes its checked arguments, msg_value_decode
 * unless a test swaps in one that fails (the lazy decode can otherwise
 * fail only for want of memory). */
struct msg_reader;
extern int (*qj_ctx_decode)(struct msg_reader *reader, const void *mp, size_t len,
                            msgpack_object *obj, char *err, size_t errlen);

#endif
