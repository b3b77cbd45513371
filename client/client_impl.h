/* client_impl.h -- the client's internal structs, shared by client.c
 * (connection, messages, requests) and job.c (handles and waiting).
 * Not installed: applications see only qjob.h. */
#ifndef QJ_CLIENT_IMPL_H
#define QJ_CLIENT_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "batcher.h"
#include "client_map.h"
#include "embed.h"
#include "keys.h"
#include "msg.h"
#include "qjob.h"
#include "scheduler.h"

#define CLIENT_MAX_INFLIGHT 10000   /* qj_options.max_inflight default */
#define CLIENT_HB_DEFAULT 1000      /* ms, until WELCOME says otherwise */
#define CLIENT_LIVE_DEFAULT 3
#define CLIENT_FRAME_SLACK 4096     /* bytes kept free below maxmsg for map overhead */
#define CLIENT_JOB_OVERHEAD 160     /* bytes a job map costs beyond its strings */
/* Small strings live inside the handle, so that a tiny job costs one
 * allocation (or none: handles are recycled) instead of four. */
#define CLIENT_SUB_INLINE 64        /* bytes of task, queue, key and args kept inline */
#define CLIENT_WORKER_INLINE 48     /* bytes of a worker name kept inline (with its NUL) */
#define CLIENT_VALUE_INLINE 16      /* bytes of a result value kept inline */
#define CLIENT_SPARE_MAX 4096       /* freed handles a client keeps for reuse */

/* A coroutine parked in an embedded client until something it waits for
 * happens.  Lives on that coroutine's stack for the length of the wait. */
typedef struct client_waiter {
    sched_t *sched;
    coro_t *co;
    struct client_waiter *next;     /* in qj_client.room_waiters */
} client_waiter_t;

/* What a submit carries until the broker accepts it (kept for resends). */
typedef struct job_submit {
    char *task;           /* these four point into one block: inl if they fit,
                             else one allocation (task); NULL once freed */
    char *queue;          /* NULL = default */
    char *key;            /* NULL = none */
    unsigned char *args;  /* NULL = nil */
    size_t task_len, queue_len, key_len, args_len;
    int32_t pri;
    uint32_t timeout_ms, retries, backoff_ms;
    uint64_t at_us, parent;
    bool detach, progress;
    char inl[CLIENT_SUB_INLINE];
} job_submit_t;

struct qj_job {
    /* What every step of a job's life reads or writes comes first,
     * together (a few cache lines touched per step, not one per field). */
    qj_client *client;    /* NULL once the client is destroyed */
    uint64_t ref;         /* this client's reference; 0 for attached handles */
    uint64_t id;          /* broker's id; 0 until accepted */
    qj_status status;     /* QJ_PENDING until final */
    bool owned_by_client; /* the caller freed it before acceptance: the
                             client frees it when the broker answers */
    bool in_ref;          /* in client.by_ref (submitted, not accepted) */
    bool in_id;           /* in client.by_id (waiting for the result) */
    bool sent;            /* the submit went out on the current connection */
    bool queued;          /* in the client's send queue */
    bool want;            /* the result is wanted (AWAIT sent or pushed) */
    bool cancel_wanted;   /* qj_cancel before acceptance: send on accept */
    bool cb_due;          /* in the client's due-callback list */
    qj_job *q_next;       /* send queue */
    qj_job *same_next;    /* other handles for the same id (by_id chain) */
    client_waiter_t *waiter; /* embedded: coroutine waiting on this handle */
    void (*cb)(qj_job *j, void *arg);
    void *cb_arg;
    qj_job *cb_prev, *cb_next;
    uint64_t batch;       /* SUBMIT message it went out in */
    uint64_t done_seq;    /* completion order within the client, from 1 */

    /* outcome, owned by the handle */
    unsigned char *value; size_t value_len; /* value_inl if it fits, else malloc */
    char *error;
    char *worker;         /* worker_inl if it fits, else malloc */
    uint32_t attempts;
    bool has_prog;
    qj_times times;
    uint64_t prog_done, prog_total;
    char *prog_note;

    job_submit_t sub;     /* freed once accepted */
    unsigned char value_inl[CLIENT_VALUE_INLINE];
    char worker_inl[CLIENT_WORKER_INLINE];
};

/* A growable list of job ids waiting to go out (AWAIT, CANCEL). */
typedef struct client_ids {
    uint64_t *v;
    size_t n, cap;
} client_ids_t;

/* An outstanding request (STATS, STATUS, CANCEL with a reply wanted).
 * Lives on the caller's stack for the length of the wait. */
typedef struct client_req {
    uint64_t rid;
    uint8_t cmd;          /* the request's command */
    const uint64_t *ids;  /* STATUS, CANCEL: borrowed from the caller */
    size_t nids;
    bool sent;            /* on the current connection */
    bool done;
    char *json;           /* the reply as JSON text (malloc), or NULL */
    char err[256];        /* set when the broker refused it */
    client_waiter_t *waiter;
    struct client_req *next;
} client_req_t;

struct qj_client {
    bool embedded;
    qj_embed_ops ops;             /* embedded: the host's hooks */

    /* socket mode */
    void *zctx;
    void *sock;
    char *endpoint;
    int hb_wish;                  /* HELLO.hb, 0 = broker's choice */
    uint32_t hb_ms, live, max_msg;/* from WELCOME (defaults until then) */
    bool welcomed;                /* WELCOME received on this connection */
    bool ever_welcomed;           /* a WELCOME after this one is a reconnection */
    uint64_t last_in_ms;          /* monotonic: last message from the broker */
    uint64_t last_out_ms;         /* monotonic: last message sent */
    uint64_t connected_ms;        /* monotonic: socket (re)opened */
    unsigned reconnects;
    uint8_t cid[QJ_CID_LEN];
    char name[QJ_MAX_NAME + 1];
    bool curve;                   /* CURVE on: keys below (keys.h) */
    keys_client_t keys;
    char refusal[256];            /* the broker's ERROR denied to our HELLO, or "" */

    /* jobs */
    uint64_t next_ref, next_rid, next_batch, done_seq;
    cmap_t by_ref;                /* ref -> job: submitted, not yet accepted */
    cmap_t by_id;                 /* id -> job chain: results wanted */
    qj_job *q_head, *q_tail;      /* submits not yet sent, in ref order */
    size_t nqueued;
    size_t inflight;              /* submits not yet accepted or refused */
    size_t max_inflight, batch_max; /* batch_max 0 = automatic */
    batcher_t batcher;            /* automatic: jobs per SUBMIT from live figures */
    uint64_t *batches;            /* SUBMITs sent and not yet answered, FIFO ring */
    size_t batch_head, batch_count, batch_cap;
    client_ids_t awaits;          /* ids to send in AWAIT */
    client_ids_t cancels;         /* ids to send in CANCEL (qj_cancel) */
    qj_job *cb_head, *cb_tail;    /* done handles whose callbacks are due */
    qj_job *spare;                /* freed handles kept for reuse (q_next links) */
    size_t nspare;
    client_req_t *reqs;           /* requests waiting for replies */
    client_waiter_t *room_waiters;/* embedded: submits waiting for room */

    /* scratch */
    msgpack_sbuffer out;          /* encode buffer */
    msg_reader_t *reader;
    msg_job_t *jobv;              /* QJ_MAX_BATCH job maps for one SUBMIT */
};

/* client.c */
/* One round of the socket loop (flush, wait up to timeout_ms for the
 * broker, handle, timers, callbacks); embedded: flush and callbacks. */
void client_pump(qj_client *c, long timeout_ms);
/* Run the callbacks of handles that finished (each at most once). */
void client_run_callbacks(qj_client *c);
/* Block (socket) or park (embedded coroutine) until fewer than
 * max_inflight submits are unanswered. */
void client_wait_room(qj_client *c);
/* The parent id for a new submit: the host's current job, or 0. */
uint64_t client_parent(qj_client *c);
bool client_stopping(qj_client *c);      /* embedded: the waiting task must stop */
/* Make a parked coroutine runnable; NULL is fine. */
void client_wake(client_waiter_t *w);
/* Tell the host a task starts waiting (once per wait: *blocked records
 * it) and stops waiting. */
void client_block(qj_client *c, bool *blocked);
void client_unblock(qj_client *c, bool blocked);

/* outbox.c: queues of what is to be sent; sending */
/* Send everything queued, if welcomed.  Returns 0, -1 if a send failed
 * (what was not sent stays queued). */
int outbox_flush(qj_client *c);
/* Encode and send one message now.  Returns 0 or -1 (logged). */
int outbox_send(qj_client *c, const msg_t *m);
/* Queue an id for the next AWAIT / CANCEL.  Returns 0 or -1 (memory). */
int outbox_await(qj_client *c, uint64_t id);
int outbox_cancel(qj_client *c, uint64_t id);
/* The oldest SUBMIT not yet answered (its batch number), now answered;
 * 0 if none. */
uint64_t outbox_batch_pop(qj_client *c);

/* request.c: STATS, STATUS, CANCEL requests and their replies */
/* Unlink and return the request waiting for rid, or NULL. */
client_req_t *request_take(qj_client *c, uint64_t rid);
/* A *_REP arrived: turn it into JSON for its request and wake it.
 * Returns false if no request has its rid. */
bool request_reply(qj_client *c, const msg_t *m);
/* An ERROR with a rid: fail that request.  Returns false if no request
 * has that rid. */
bool request_refused(qj_client *c, const msg_t *m);

/* job.c: what the client tells a handle */
/* The broker gave the submit an id (frees the handle if its owner let go).
 * With has_result, the job's result is in hand (it overtook the ACCEPTED):
 * the handle is not put in the id table, and the return says whether it
 * still wants that result (false: it was freed, or nobody waits for it). */
bool job_accepted(qj_job *j, uint64_t id, bool has_result);
/* The broker refused the submit: QJ_REFUSED with "code: text". */
void job_refused(qj_job *j, const char *code, const char *text, size_t len);
/* The job's final result arrived at now_us (unix µs: when the message
 * holding it was handled). */
void job_finish(qj_job *j, const msg_result_t *r, uint64_t now_us);
/* A progress report arrived. */
void job_progress(qj_job *j, const msg_t *m);
/* The client is going: free the handles it owns and those kept for
 * reuse, cut the others loose. */
void job_detach_all(qj_client *c);

#endif
