/* job.h -- job records, intrusive job lists, and the registry of jobs.
 *
 * A job is one allocation: the record followed by its task name, its
 * idempotency key and its msgpack arguments; records and results come
 * from a slab allocator (slab.h), so that a job costs no malloc in steady
 * state.  It sits on exactly one list
 * (or in the timer heap) at a time, through its own links:
 *
 *   state     where                          links used
 *   QUEUED    a priority level of its queue  next/prev
 *   DELAYED   the broker's timer heap        timer
 *   RUNNING   its worker's lease list        next/prev
 *   DONE      the registry's kept list       next/prev
 *   DEAD      the registry's dead list       next/prev
 *
 * The registry (jobs_t) owns every record: it indexes them by id, by
 * (submitter session, ref) for resent submits, and by idempotency key,
 * and keeps finished jobs for a time-to-live and up to a count, oldest
 * first, so that any client can still ask for a result by id.  Ids and a
 * submitter's refs come in sequence, so those two indexes are idmaps
 * (idmap.h), which cost a pointer per job and no cache miss for recent
 * ones; a submitter's refs go under a number of its own in the top bits.
 */
#ifndef QJ_JOB_H
#define QJ_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dlist.h"
#include "msg.h"
#include "theap.h"

typedef struct job job_t;
struct queue;
struct peer;
struct sess;

/* The payload of a finished job's outcome, one allocation (only when
 * there is something to hold: a value, an error text or a worker name). */
typedef struct job_result {
    uint64_t started, finished; /* the worker's stamps, unix µs */
    uint32_t val_len;           /* msgpack result value */
    uint32_t err_len;           /* error message */
    uint16_t wk_len;            /* worker name */
    char data[];                /* val, then err, then wk */
} job_result_t;

/* One connection (session) waiting for a job's result (AWAIT). */
typedef struct job_wait {
    struct job_wait *next;
    struct sess *sess;          /* holds a reference, released by the broker */
} job_wait_t;

/* The latest progress report of a running job. */
typedef struct job_prog {
    uint64_t done, total;
    uint16_t note_len;
    char note[QJ_MAX_NOTE];
} job_prog_t;

/* What few jobs have, kept out of the record so that a queued job stays
 * small: sessions awaiting it, and its latest progress report. */
typedef struct job_aux {
    job_wait_t *waiters;        /* sessions that AWAIT it */
    bool has_prog;
    job_prog_t prog;
} job_aux_t;

/* More retries than this are taken as this many: the record keeps the
 * count in 16 bits (a queued job is ~128 bytes, see job.c). */
#define JOB_MAX_RETRIES 65534

enum {
    JOB_F_DETACH = 1,       /* do not push the result to the submitter */
    JOB_F_PROGRESS = 2,     /* push progress reports to the submitter */
    JOB_F_CANCEL = 4,       /* a cancel was forwarded to its worker */
    JOB_F_OWED = 8,         /* its result waits in its submitter's session, unsent */
};

struct job {
    uint64_t id;
    union {
        struct {
            job_t *next, *prev; /* see the table at the top */
        };
        theap_node_t timer;     /* DELAYED: due time, monotonic ms */
    };
    struct queue *queue;        /* the queue it was submitted to */
    struct sess *sess;          /* submitter; the job holds a reference */
    uint64_t ref;               /* submitter's ref; 0 = none (not indexed) */
    uint64_t parent;            /* job that submitted it; 0 = none */
    uint64_t t_submit;          /* submitter's stamp, unix µs */
    uint64_t t_queued;          /* accepted by the broker, unix µs */
    uint64_t t_dispatched;      /* last sent to a worker, unix µs */
    union {
        uint64_t ready_us;      /* QUEUED: when it became ready, monotonic µs */
        struct peer *worker;    /* RUNNING: the worker holding the lease */
        uint64_t final_ms;      /* DONE/DEAD: when it became final, monotonic ms */
    };
    job_result_t *res;          /* DONE/DEAD: outcome payload, or NULL */
    job_aux_t *aux;             /* waiters and progress, or NULL */
    uint32_t timeout_ms;        /* run time limit sent to the worker */
    uint32_t backoff_ms;        /* delay before the first retry, doubling */
    uint32_t args_len;
    uint16_t retries;           /* extra attempts after the first (JOB_MAX_RETRIES) */
    uint16_t attempt;           /* attempts dispatched so far (1 = first run) */
    int8_t pri;                 /* -128..127, higher first */
    uint8_t state;              /* msg_state_t */
    uint8_t st;                 /* DONE/DEAD: msg_st_t */
    uint8_t task_len;
    uint8_t key_len;
    uint8_t flags;              /* JOB_F_* */
    uint8_t batch;              /* class of its SUBMIT's size (queue.h QUEUE_BATCHES) */
    char data[];                /* task, key, args */
};

static inline const char *job_task(const job_t *j) { return j->data; }
static inline const char *job_key(const job_t *j) { return j->data + j->task_len; }
static inline const char *job_args(const job_t *j) { return j->data + j->task_len + j->key_len; }

/* The job that embeds a timer node. */
static inline job_t *job_of_timer(theap_node_t *node)
{
    return (job_t *)(void *)((char *)node - offsetof(job_t, timer));
}

/* Allocate a job from a SUBMIT item: task, key and args are copied into
 * the same allocation, the submitter's options into the record; id, queue,
 * session and times are left for the caller.  Limits are the codec's
 * (task and key at most 128 bytes).  Returns NULL if out of memory. */
job_t *job_new(const msg_job_t *spec, uint64_t id);

/* Bytes a job costs the broker: its record, task, key, arguments and
 * result, and its share of the registry's indexes (JOB_INDEX_BYTES): the
 * measure of --max-memory. */
#define JOB_INDEX_BYTES 64
size_t job_bytes(const job_t *self);

/* Free a job and its result and aux; safe on NULL, nulls the caller's
 * pointer.  The job must be on no list and have no waiters (the broker
 * releases those, with their session references, first). */
void job_free(job_t **self_p);

/* The job's aux, created empty if it has none.  NULL if out of memory. */
job_aux_t *job_aux(job_t *self);

/* The first session awaiting the job, or NULL. */
static inline job_wait_t *job_waiters(const job_t *j) { return j->aux ? j->aux->waiters : NULL; }

/* Give a finished job its outcome payload: copies val, err and worker
 * name into one allocation (none if all three are empty).  Replaces any
 * payload it had.  Returns 0, or -1 if out of memory (then the job keeps
 * no payload). */
int job_set_result(job_t *self, msg_bytes_t val, msg_bytes_t err, msg_bytes_t wk,
                   uint64_t started, uint64_t finished);

/* Point val, err and wk at a result's parts; an empty part is left absent
 * (ptr NULL), as the codec expects. */
void job_result_view(const job_result_t *res, msg_bytes_t *val, msg_bytes_t *err,
                     msg_bytes_t *wk);

/* A doubly linked list of jobs through their next/prev links. */
DLIST_DEFINE(jlist, job_t)

/* ---- the registry */

typedef struct jobs jobs_t;

/* Create a registry.  Ids start at first_id; finished jobs are kept for
 * ttl_ms and at most max_kept of them.  Returns NULL if out of memory. */
jobs_t *jobs_new(uint64_t first_id, uint64_t ttl_ms, uint64_t max_kept);

/* Free the registry, handing every job it still holds to release (which
 * must free it, and must not call back into the registry); safe on NULL,
 * nulls the caller's pointer. */
void jobs_destroy(jobs_t **self_p, void (*release)(job_t *job, void *ctx), void *ctx);

/* Hand out the next job id (strictly increasing, never reused). */
uint64_t jobs_next_id(jobs_t *self);

/* The id jobs_next_id would hand out now, without taking it. */
uint64_t jobs_peek_id(const jobs_t *self);

/* Make sure ids handed out from now on are above id (a journal's high-
 * water mark); never lowers the next id. */
void jobs_reserve(jobs_t *self, uint64_t id);

/* Index a new job by id, by (sess, ref) if ref is non-zero, and by key if
 * it has one.  Returns 0, or -1 if out of memory (nothing indexed). */
int jobs_add(jobs_t *self, job_t *job);

/* Remove a job from every index (and from the kept or dead list if it is
 * there).  The caller then owns it. */
void jobs_remove(jobs_t *self, job_t *job);

job_t *jobs_find(const jobs_t *self, uint64_t id);
job_t *jobs_find_ref(const jobs_t *self, const struct sess *sess, uint64_t ref);
job_t *jobs_find_key(const jobs_t *self, const char *key, size_t len);

/* Keep a job that just became final (state DONE or DEAD, final_ms set):
 * append it to the kept or the dead list. */
void jobs_keep(jobs_t *self, job_t *job);

/* Take a DEAD job off the dead list (for REQUEUE). */
void jobs_unkeep(jobs_t *self, job_t *job);

/* The oldest finished job that is past its time to live at now_ms, or
 * any finished job while more than the count bound are kept; it is taken
 * out of the registry (lists and indexes) and the caller owns it.  NULL
 * if none. */
job_t *jobs_expired(jobs_t *self, uint64_t now_ms);

/* The dead-letter list, oldest first (walk with ->next). */
job_t *jobs_dead_head(const jobs_t *self);

/* The kept list (DONE), oldest first (walk with ->next). */
job_t *jobs_kept_head(const jobs_t *self);

/* Iterate over every job held, in no order: start with *cursor = 0; NULL
 * at the end.  The registry must not change during an iteration. */
job_t *jobs_next(const jobs_t *self, size_t *cursor);

uint64_t jobs_count(const jobs_t *self);   /* every job held */
uint64_t jobs_kept(const jobs_t *self);    /* finished jobs held (done + dead) */

#endif
