/* queue.h -- a named queue: ready jobs by priority, FIFO within a level.
 *
 * 256 levels (priority -128..127), each an intrusive list of jobs in the
 * order they were queued, and a bitmap of the non-empty levels, so that
 * push, pop and removal are O(1) (pop finds the top level with four
 * count-leading-zeros).  The queue also lists the workers that serve it
 * and carries its figures for STATS.  Delayed and running jobs are not on
 * the queue; it only counts them.
 *
 * Among the figures is a histogram of dispatch waits: how long each job
 * given to a worker had been ready in the queue, counted in buckets with
 * the upper bounds of queue_wait_le (the last bucket takes the rest); and
 * how much of the life of the jobs that finished was communication and
 * how much compute, by the size of the SUBMIT that brought them, the
 * figure by which a client sees what packing jobs saves.
 */
#ifndef QJ_QUEUE_H
#define QJ_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "job.h"
#include "qjlimits.h"

struct peer;

/* The recent rate is jobs done over this many seconds. */
#define QUEUE_RATE_SECS 10

/* Buckets of the dispatch wait histogram, besides the last (unbounded). */
#define QUEUE_WAIT_BOUNDS 19

/* Their upper bounds in µs, ascending: 100 µs to 5 minutes. */
extern const uint64_t queue_wait_le[QUEUE_WAIT_BOUNDS];

/* Classes of jobs by the size of their SUBMIT: class i holds the jobs of
 * SUBMITs of 2^i to 2^(i+1) - 1 jobs, the last QJ_MAX_BATCH itself. */
#define QUEUE_BATCHES 13
#define QUEUE_BATCH_UNKNOWN 0xff   /* a job replayed from the journal */

typedef struct queue {
    char name[QJ_MAX_QUEUE_NAME + 1]; /* NUL-terminated */
    uint8_t name_len;
    jlist_t level[256];         /* index = priority + 128 */
    uint64_t bits[4];           /* bit i set = level i not empty */
    uint64_t depth;             /* ready jobs (sum of the levels) */
    uint64_t delayed;           /* jobs waiting for their time (at, backoff) */
    uint64_t running;           /* jobs leased to workers */
    uint64_t max_depth;         /* ready + delayed at most; 0 = no bound */
    /* figures (STATS), counted since start */
    uint64_t submitted, done, failed, retried;
    uint64_t dead;              /* jobs in the dead-letter list now */
    uint64_t comm_us;           /* over finished jobs: life minus compute */
    uint64_t compute_us;        /* over finished jobs: finished - started */
    uint64_t b_jobs[QUEUE_BATCHES]; /* those jobs by batch class (queue_note_life) */
    uint64_t b_comm_us[QUEUE_BATCHES], b_compute_us[QUEUE_BATCHES];
    uint64_t dispatched;        /* jobs leased to a worker (the sum of wait[]) */
    uint64_t wait[QUEUE_WAIT_BOUNDS + 1]; /* those by dispatch wait (queue_note_wait) */
    uint64_t wait_us;           /* the sum of their waits */
    uint64_t done_at[QUEUE_RATE_SECS]; /* `done` at each of the last seconds (ring) */
    /* workers serving it, for dispatch */
    struct peer **workers;
    uint32_t nworkers, capworkers;
    uint32_t rr;                /* round-robin start for ties */
    /* dispatch bookkeeping (broker) */
    bool dirty;                 /* on the broker's list of queues to dispatch */
    struct queue *dirty_next;
} queue_t;

/* Create an empty queue named name[0..len) (1..QJ_MAX_QUEUE_NAME bytes).
 * Returns NULL if out of memory. */
queue_t *queue_new(const char *name, size_t len);

/* Free the queue (not its jobs: the registry owns them); safe on NULL,
 * nulls the caller's pointer. */
void queue_destroy(queue_t **self_p);

/* Append a ready job at the back of its priority level (job->pri). */
void queue_push(queue_t *self, job_t *job);

/* Put a ready job at the front of its level: a job that comes back (its
 * worker died or left) goes out again before later ones. */
void queue_push_front(queue_t *self, job_t *job);

/* The oldest job of the highest non-empty level, or NULL. */
job_t *queue_peek(const queue_t *self);

/* Remove and return queue_peek's job, or NULL. */
job_t *queue_pop(queue_t *self);

/* Remove a job that is on this queue (cancel). */
void queue_remove(queue_t *self, job_t *job);

/* Count a job leased to a worker after us µs ready in the queue. */
void queue_note_wait(queue_t *self, uint64_t us);

/* The batch class of a job whose SUBMIT carried n jobs (1..QJ_MAX_BATCH). */
uint8_t queue_batch_class(uint32_t n);

/* Count a finished job's life (since its submit, µs) and the part of it
 * its task ran, under its batch class (or QUEUE_BATCH_UNKNOWN). */
void queue_note_life(queue_t *self, uint8_t batch, uint64_t life_us, uint64_t compute_us);

/* Once a second (sec = seconds since some epoch): remember `done`, so that
 * queue_done_recent can tell how many jobs were done in about the last
 * QUEUE_RATE_SECS seconds. */
void queue_sample_done(queue_t *self, uint64_t sec);
uint64_t queue_done_recent(const queue_t *self, uint64_t sec);

/* Add a worker to the queue's list.  Returns 0, or -1 if out of memory. */
int queue_add_worker(queue_t *self, struct peer *worker);

/* Remove a worker from the list (nothing happens if it is not there). */
void queue_remove_worker(queue_t *self, struct peer *worker);

#endif
