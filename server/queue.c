/* queue.c -- priority levels with FIFO order inside each (see queue.h). */
#include "queue.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

const uint64_t queue_wait_le[QUEUE_WAIT_BOUNDS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000, 30000000, 60000000, 300000000,
};

queue_t *queue_new(const char *name, size_t len)
{
    assert(len >= 1 && len <= QJ_MAX_QUEUE_NAME);
    queue_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    memcpy(self->name, name, len);
    self->name_len = (uint8_t)len;
    return self;
}

void queue_destroy(queue_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->workers);
    free(*self_p);
    *self_p = NULL;
}

static inline unsigned s_level(const job_t *job)
{
    return (unsigned)(job->pri + 128);
}

static inline void s_mark(queue_t *self, unsigned lv)
{
    self->bits[lv >> 6] |= 1ull << (lv & 63);
}

static inline void s_unmark_if_empty(queue_t *self, unsigned lv)
{
    if (!self->level[lv].head)
        self->bits[lv >> 6] &= ~(1ull << (lv & 63));
}

void queue_push(queue_t *self, job_t *job)
{
    unsigned lv = s_level(job);
    jlist_push_back(&self->level[lv], job);
    s_mark(self, lv);
    self->depth++;
}

void queue_push_front(queue_t *self, job_t *job)
{
    unsigned lv = s_level(job);
    jlist_push_front(&self->level[lv], job);
    s_mark(self, lv);
    self->depth++;
}

void queue_note_wait(queue_t *self, uint64_t us)
{
    unsigned i = 0;
    while (i < QUEUE_WAIT_BOUNDS && us > queue_wait_le[i])
        i++;
    self->wait[i]++;
    self->wait_us += us;
    self->dispatched++;
}

_Static_assert(1u << (QUEUE_BATCHES - 1) == QJ_MAX_BATCH, "one batch class per power of two");

uint8_t queue_batch_class(uint32_t n)
{
    assert(n >= 1);
    unsigned c = 31u - (unsigned)__builtin_clz(n);
    return (uint8_t)(c < QUEUE_BATCHES ? c : QUEUE_BATCHES - 1);
}

void queue_note_life(queue_t *self, uint8_t batch, uint64_t life_us, uint64_t compute_us)
{
    uint64_t comm_us = life_us > compute_us ? life_us - compute_us : 0;
    self->compute_us += compute_us;
    self->comm_us += comm_us;
    if (batch >= QUEUE_BATCHES)
        return;
    self->b_jobs[batch]++;
    self->b_comm_us[batch] += comm_us;
    self->b_compute_us[batch] += compute_us;
}

void queue_sample_done(queue_t *self, uint64_t sec)
{
    self->done_at[sec % QUEUE_RATE_SECS] = self->done;
}

uint64_t queue_done_recent(const queue_t *self, uint64_t sec)
{
    /* The oldest sample in the ring; a queue younger than the ring has
     * zeros there, which is what `done` was when it was created. */
    return self->done - self->done_at[(sec + 1) % QUEUE_RATE_SECS];
}

job_t *queue_peek(const queue_t *self)
{
    for (int w = 3; w >= 0; w--)
        if (self->bits[w]) {
            unsigned lv = (unsigned)w * 64 + 63 - (unsigned)__builtin_clzll(self->bits[w]);
            return self->level[lv].head;
        }
    return NULL;
}

void queue_remove(queue_t *self, job_t *job)
{
    unsigned lv = s_level(job);
    jlist_remove(&self->level[lv], job);
    s_unmark_if_empty(self, lv);
    self->depth--;
}

job_t *queue_pop(queue_t *self)
{
    job_t *job = queue_peek(self);
    if (job)
        queue_remove(self, job);
    return job;
}

int queue_add_worker(queue_t *self, struct peer *worker)
{
    if (self->nworkers == self->capworkers) {
        uint32_t cap = self->capworkers ? self->capworkers * 2 : 4;
        struct peer **v = realloc(self->workers, cap * sizeof *v);
        if (!v)
            return -1;
        self->workers = v;
        self->capworkers = cap;
    }
    self->workers[self->nworkers++] = worker;
    return 0;
}

void queue_remove_worker(queue_t *self, struct peer *worker)
{
    for (uint32_t i = 0; i < self->nworkers; i++)
        if (self->workers[i] == worker) {
            memmove(&self->workers[i], &self->workers[i + 1],
                    (self->nworkers - i - 1) * sizeof *self->workers);
            self->nworkers--;
            if (self->rr > i)
                self->rr--;
            return;
        }
}
