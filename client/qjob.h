/* qjob.h -- the qjob client library and task API.
 *
 * Two halves:
 *   - the client: connect to a broker, submit jobs, and get awaitable
 *     handles (futures) back at once: await, gather, wait-any, callbacks,
 *     cancel, attach by id.  Link with `pkg-config --libs qjob`.
 *   - the task API: what a task function running inside qworker sees
 *     (its arguments, its result, sleep/yield/progress, sub-jobs).  A
 *     plugin (.so) exports qjob_plugin_init() and registers its tasks.
 *
 * Threads: a qj_client and its handles belong to one thread.
 * Errors: functions that can fail take (char *err, size_t errlen) and
 * write a message there that says what was wrong and what to do.
 */
#ifndef QJOB_H
#define QJOB_H

#include <msgpack.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QJOB_VERSION "0.1.0"
#define QJ_DEFAULT_BROKER "tcp://127.0.0.1:5555"

/* ---------------------------------------------------------------- client */

typedef struct qj_client qj_client;
typedef struct qj_job qj_job;

/* Final status of a job.  Values match the wire (PROTOCOL.md, "st"). */
typedef enum qj_status {
    QJ_PENDING = -1,   /* not finished yet (not a final status) */
    QJ_OK = 0,
    QJ_ERROR = 1,      /* the task failed; qj_job_error() says why */
    QJ_TIMEOUT = 2,    /* the job ran past its own timeout */
    QJ_CANCELLED = 3,
    QJ_LOST = 4,       /* its worker died on every attempt */
    QJ_UNKNOWN = 5,    /* the broker has no such job (attach to a bad id) */
    QJ_REFUSED = 6,    /* the broker refused the submit (queue full, limits) */
} qj_status;

typedef struct qj_options {
    const char *broker;        /* endpoint; NULL = $QJOB_BROKER or QJ_DEFAULT_BROKER */
    int max_inflight;          /* submits not yet accepted, at most; 0 = 10000 */
    int batch_max;             /* jobs packed per SUBMIT at most; 0 = automatic */
    int heartbeat_ms;          /* 0 = broker's choice */
    const char *curve_secret;  /* CURVE secret key file, or NULL ($QJOB_CURVE_SECRET) */
    const char *broker_key;    /* broker's public key file, or NULL ($QJOB_BROKER_KEY) */
    const char *name;          /* shown in broker logs and stats; NULL = host:pid */
} qj_options;

typedef struct qj_submit_opts {
    const char *queue;         /* NULL = "default" */
    int priority;              /* -128..127, higher first; default 0 */
    double timeout_s;          /* run time limit, 0 = none */
    int retries;               /* extra attempts after the first */
    double backoff_s;          /* before a retry, doubling; 0 = broker default */
    double delay_s;            /* hold this long before running */
    double at;                 /* or: run no earlier than this unix time */
    const char *key;           /* idempotency key: resubmitting returns the same job */
    bool detach;               /* don't push the result; await by id later */
    bool progress;             /* push progress reports to this handle */
} qj_submit_opts;

/* Timestamps of a job's life, unix µs, 0 = not known. */
typedef struct qj_times {
    uint64_t submitted, queued, dispatched, started, finished, delivered;
} qj_times;

/* Fill o with defaults (all zero / NULL). */
void qj_options_init(qj_options *o);
void qj_submit_opts_init(qj_submit_opts *o);

/* Connect to the broker (asynchronously, like every ZeroMQ connect: a
 * broker that is not there yet is waited for by the calls that need it).
 * Returns NULL with a message on a bad endpoint or key file. */
qj_client *qj_client_new(const qj_options *o, char *err, size_t errlen);

/* Wait until the broker has answered HELLO (WELCOME).  Returns 0, or -1
 * with errno ETIMEDOUT if timeout_ms (< 0: forever) ran out first: the
 * broker is not reachable (with CURVE, also what a broker that does not
 * know our key looks like), or with errno EACCES if the broker refused
 * this client (qj_client_refusal says why). */
int qj_client_ready(qj_client *c, int timeout_ms);

/* Why the broker refused this client's HELLO (its CURVE key may not
 * connect as a client), or NULL if it has not. */
const char *qj_client_refusal(const qj_client *c);

/* Close the connection and free every handle still owned by the client
 * (those the caller freed while their submit was unanswered).  Queued
 * submits are sent and given a second to leave.  Handles the caller still
 * holds stay readable and must still be freed with qj_job_free; waiting
 * on one that had not finished fails at once.  Safe on NULL. */
void qj_client_destroy(qj_client **self_p);

/* Submit a job; returns a handle at once (the job is batched and sent in
 * the background), or NULL with a message if the arguments are invalid.
 * args is one msgpack-encoded value (NULL/0 = nil); it is copied. */
qj_job *qj_submit(qj_client *c, const char *task, const void *args, size_t args_len,
                  const qj_submit_opts *o, char *err, size_t errlen);

/* The same, with the arguments as JSON text ("{\"samples\": 1000}"). */
qj_job *qj_submit_json(qj_client *c, const char *task, const char *args_json,
                       const qj_submit_opts *o, char *err, size_t errlen);

/* A handle for a job submitted elsewhere (by id); its result is fetched
 * from the broker, which keeps results for a while (qbroker --result-ttl). */
qj_job *qj_attach(qj_client *c, uint64_t id);

/* Wait until the broker has accepted (or refused) the submit.  Returns 0
 * if accepted, -1 if refused (status QJ_REFUSED, qj_job_error says why) or
 * if timeout_ms ran out (errno ETIMEDOUT).  timeout_ms < 0 waits forever. */
int qj_accepted(qj_job *j, int timeout_ms);

/* Wait for the job to finish.  Inside a qjob task this yields the task's
 * coroutine (and lends its worker slot out) instead of blocking.
 * Returns 0 when done (see qj_job_status), -1 if timeout_ms ran out
 * (errno ETIMEDOUT) or, inside a task, if that task was cancelled or hit
 * its own timeout meanwhile (errno ECANCELED: return promptly). */
int qj_await(qj_job *j, int timeout_ms);

/* Wait for all of jobs[0..n).  Returns 0 when all are done, -1 on timeout
 * (some may be done). */
int qj_gather(qj_job *const *jobs, size_t n, int timeout_ms);

/* Wait until one of jobs[0..n) is done.  Returns the index of the one
 * that finished first (by completion order), or -1 on timeout.  For
 * as-completed iteration, drop the returned job from the set and call
 * again. */
int qj_wait_any(qj_job *const *jobs, size_t n, int timeout_ms);

/* Call cb(j, arg) when j finishes (at once if it already has), from
 * within qj_client_process / qj_await on this thread. */
void qj_on_done(qj_job *j, void (*cb)(qj_job *j, void *arg), void *arg);

/* Ask the broker to cancel the job.  A queued job is removed (status
 * QJ_CANCELLED); a running one is stopped at its next yield (coroutine
 * jobs) or only flagged (process jobs).  Returns 0 if the request was
 * sent, -1 with a message otherwise. */
int qj_cancel(qj_job *j, char *err, size_t errlen);

/* Free a handle (the job itself goes on).  Safe on NULL. */
void qj_job_free(qj_job **j);

/* Handle accessors.  Strings are owned by the handle. */
uint64_t qj_job_id(const qj_job *j);             /* 0 until accepted */
bool qj_job_done(const qj_job *j);
qj_status qj_job_status(const qj_job *j);        /* QJ_PENDING until done */
const void *qj_job_value(const qj_job *j, size_t *len); /* msgpack bytes, or NULL */
char *qj_job_value_json(const qj_job *j);        /* JSON text; caller frees */
const char *qj_job_error(const qj_job *j);       /* NULL if none */
uint32_t qj_job_attempts(const qj_job *j);
const qj_times *qj_job_times(const qj_job *j);
const char *qj_job_worker(const qj_job *j);      /* NULL if not known */
/* Latest progress report; returns false if there was none. */
bool qj_job_progress(const qj_job *j, uint64_t *done, uint64_t *total, const char **note);
const char *qj_status_name(qj_status st);        /* "ok", "error", ... */

/* Driving the client from another event loop: poll qj_client_fd() for
 * POLLIN (it is edge-triggered, as ZMQ_FD is: call qj_client_process
 * until it returns 0), and call qj_client_process() to handle what has
 * arrived and send what is queued, without blocking.  Returns the number
 * of events handled, or -1 if the connection failed.  The client opens a
 * new socket when it reconnects, so the fd can change: ask for it again
 * after each qj_client_process. */
int qj_client_fd(qj_client *c);
int qj_client_process(qj_client *c);

/* Flush batched submits now (normally done by await and process). */
int qj_flush(qj_client *c);

/* Adaptive batching (batch_max 0): a SUBMIT leaves as soon as `batch`
 * jobs are queued, or when the application waits or polls; `batch` keeps
 * communication under a tenth of compute, from these live figures. */
typedef struct qj_batch_info {
    double msg_us;             /* a SUBMIT's round trip to ACCEPTED, moving average (0: not yet known) */
    double job_us;             /* a job's compute time, finished - started, moving average (0: not yet known) */
    unsigned batch;            /* jobs per SUBMIT aimed at now (batch_max if set) */
    double share;              /* communication aimed at, as a share of compute */
    uint64_t messages;         /* SUBMIT messages sent so far */
    uint64_t jobs;             /* jobs sent in them (resends count again) */
} qj_batch_info;
void qj_client_batch_info(const qj_client *c, qj_batch_info *out);

/* Broker figures as a JSON object (STATS): caller frees.  NULL with a
 * message on timeout. */
char *qj_stats_json(qj_client *c, int timeout_ms, char *err, size_t errlen);

/* Status of jobs by id as a JSON array (STATUS): caller frees. */
char *qj_status_json(qj_client *c, const uint64_t *ids, size_t n, int timeout_ms,
                     char *err, size_t errlen);

/* Cancel jobs by id and wait for the broker's answer: a JSON array of
 * {"id": N, "outcome": "removed"|"requested"|"done"|"unknown"}, one per
 * id in order.  Caller frees.  NULL with a message on timeout. */
char *qj_cancel_json(qj_client *c, const uint64_t *ids, size_t n, int timeout_ms,
                     char *err, size_t errlen);

/* ------------------------------------------------------------------ tasks */

typedef struct qj_ctx qj_ctx;
typedef struct qj_registry qj_registry;

/* A task: read the arguments, set the result, return 0; or call qj_fail
 * and return its value.  Runs in a coroutine inside a worker process. */
typedef int (*qj_task_fn)(qj_ctx *ctx);

/* What a plugin exports: register its tasks, return 0 (or -1). */
#define QJ_PLUGIN_INIT "qjob_plugin_init"
typedef int (*qj_plugin_init_fn)(qj_registry *reg);

/* Register a task under name (copied).  Returns 0, or -1 if the name is
 * invalid or taken. */
int qj_register(qj_registry *reg, const char *name, qj_task_fn fn, const char *help);

/* Arguments.  The accessors look up a key in a map argument and return
 * dflt if the arguments are not a map, the key is missing, or of another
 * type. */
const msgpack_object *qj_args(qj_ctx *ctx);          /* nil if none */
int64_t qj_arg_int(qj_ctx *ctx, const char *key, int64_t dflt);
double qj_arg_double(qj_ctx *ctx, const char *key, double dflt);
const char *qj_arg_str(qj_ctx *ctx, const char *key, const char *dflt); /* NUL-terminated copy owned by ctx */
char *qj_args_json(qj_ctx *ctx);                     /* caller frees */
/* The arguments as the msgpack bytes they came in (one value, checked),
 * without decoding them: NULL and *len 0 if none.  Owned by ctx, valid
 * until the task returns. */
const void *qj_args_mp(qj_ctx *ctx, size_t *len);

/* Result.  The last call wins; no call means nil. */
int qj_return_nil(qj_ctx *ctx);
int qj_return_int(qj_ctx *ctx, int64_t v);
int qj_return_double(qj_ctx *ctx, double v);
int qj_return_str(qj_ctx *ctx, const char *s);
int qj_return_json(qj_ctx *ctx, const char *json);   /* -1 if not valid JSON */
int qj_return_mp(qj_ctx *ctx, const void *mp, size_t len); /* one msgpack value */
/* A packer whose output becomes the result (replacing earlier ones). */
msgpack_packer *qj_return_packer(qj_ctx *ctx);

/* Fail the job with a message; returns the value the task should return. */
int qj_fail(qj_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Cooperation.  Each returns 0, or -1 if the job has been cancelled (the
 * task should then return promptly). */
int qj_sleep(qj_ctx *ctx, long ms);
int qj_yield(qj_ctx *ctx);
bool qj_cancelled(qj_ctx *ctx);
int qj_progress(qj_ctx *ctx, uint64_t done, uint64_t total, const char *note);

/* The client for sub-jobs: qj_submit on it submits with this job as the
 * parent, and qj_await/qj_gather on its handles yield this coroutine and
 * lend its slot to other jobs while it waits. */
qj_client *qj_ctx_client(qj_ctx *ctx);

uint64_t qj_ctx_job_id(const qj_ctx *ctx);
uint32_t qj_ctx_attempt(const qj_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif
