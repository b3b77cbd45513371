/* batcher.h -- how many jobs a client packs into one SUBMIT (batch_max 0).
 *
 * A message costs about the same however many jobs it carries, so packing
 * jobs spreads that cost; but a job held back to fill a message starts
 * later.  The batcher picks k, the jobs per message, from two live
 * figures so that communication stays under BATCHER_SHARE of compute:
 *
 *   msg_us  what a message costs: the round trip of a SUBMIT to its
 *           ACCEPTED (moving average), which holds the transport, the
 *           broker's work on it and the wait in its queue;
 *   job_us  what a job computes: finished - started of the results that
 *           come back (moving average);
 *
 *   k = msg_us / (BATCHER_SHARE x job_us), rounded up, within 1..QJ_MAX_BATCH.
 *
 * Jobs of a few ms go one per message, the moment they are submitted;
 * tiny ones in messages of thousands.  Nothing waits for a message to
 * fill: a SUBMIT leaves when k jobs are queued, or when the application
 * waits or polls (qj_await, qj_client_process ...), whichever is first.
 * Until both figures are known, k is QJ_MAX_BATCH (jobs leave when the
 * application waits or polls, as before there were figures).
 */
#ifndef QJ_BATCHER_H
#define QJ_BATCHER_H

#include <stdint.h>

/* Communication at most this share of compute. */
#define BATCHER_SHARE 0.1
/* SUBMITs in flight whose send time is kept (a round trip is measured on
 * those only; more in flight just means fewer samples). */
#define BATCHER_RING 16

/* All zero (calloc) is the initial state: nothing known. */
typedef struct batcher {
    double msg_us;        /* moving average of msg_samples round trips */
    double job_us;        /* moving average of job_samples results */
    uint64_t msg_samples, job_samples;
    uint32_t k;           /* jobs per message aimed at now; 0 = QJ_MAX_BATCH */
    uint64_t messages;    /* SUBMITs sent */
    uint64_t jobs;        /* jobs sent in them */
    struct {
        uint64_t seq;     /* SUBMIT number (0 = free) */
        uint64_t sent_us; /* monotonic µs it left */
    } ring[BATCHER_RING];
} batcher_t;

/* SUBMIT number seq left with njobs jobs at now_us (monotonic). */
void batcher_sent(batcher_t *b, uint64_t seq, uint32_t njobs, uint64_t now_us);

/* SUBMIT number seq was answered (ACCEPTED or ERROR) at now_us. */
void batcher_answered(batcher_t *b, uint64_t seq, uint64_t now_us);

/* A result came back: its job computed compute_us. */
void batcher_job(batcher_t *b, uint64_t compute_us);

/* Jobs per SUBMIT to aim for: 1..QJ_MAX_BATCH. */
uint32_t batcher_target(const batcher_t *b);

#endif
