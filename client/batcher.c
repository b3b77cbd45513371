/* batcher.c -- jobs per SUBMIT from live figures (batcher.h). */
#include "batcher.h"

#include "qjlimits.h"

/* Weight of the newest sample in the moving averages: a few messages or
 * results are enough to follow a change of workload. */
#define WEIGHT 0.125
/* The least a job is taken to compute (µs): the clock's resolution, and
 * below that the job's own cost on the worker dominates anyway. */
#define JOB_US_FLOOR 1.0

static void s_average(double *avg, uint64_t *samples, double sample)
{
    *avg = (*samples)++ == 0 ? sample : *avg + WEIGHT * (sample - *avg);
}

/* k from the figures (batcher.h). */
static void s_retarget(batcher_t *b)
{
    if (!b->msg_samples || !b->job_samples) {
        b->k = QJ_MAX_BATCH;
        return;
    }
    double job = b->job_us > JOB_US_FLOOR ? b->job_us : JOB_US_FLOOR;
    double k = b->msg_us / (BATCHER_SHARE * job) + 0.999;   /* rounded up */
    b->k = k >= QJ_MAX_BATCH ? QJ_MAX_BATCH : k <= 1 ? 1 : (uint32_t)k;
}

void batcher_sent(batcher_t *b, uint64_t seq, uint32_t njobs, uint64_t now_us)
{
    b->messages++;
    b->jobs += njobs;
    b->ring[seq % BATCHER_RING].seq = seq;
    b->ring[seq % BATCHER_RING].sent_us = now_us;
}

void batcher_answered(batcher_t *b, uint64_t seq, uint64_t now_us)
{
    if (seq == 0 || b->ring[seq % BATCHER_RING].seq != seq)
        return;   /* its slot went to a later SUBMIT: no sample */
    b->ring[seq % BATCHER_RING].seq = 0;
    uint64_t sent = b->ring[seq % BATCHER_RING].sent_us;
    s_average(&b->msg_us, &b->msg_samples, now_us > sent ? (double)(now_us - sent) : 0);
    s_retarget(b);
}

void batcher_job(batcher_t *b, uint64_t compute_us)
{
    s_average(&b->job_us, &b->job_samples, (double)compute_us);
    s_retarget(b);
}

uint32_t batcher_target(const batcher_t *b)
{
    return b->k ? b->k : QJ_MAX_BATCH;
}
