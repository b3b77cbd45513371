/* job.c -- job records, job lists and the job registry (see job.h). */
#include "job.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "htab.h"
#include "idmap.h"
#include "slab.h"

/* Records and results come from one slab allocator: the broker's loop is
 * the only thread that makes and frees jobs (slab.h says why). */
static slab_t *s_slab;

static void *s_alloc(size_t size)
{
    if (!s_slab && !(s_slab = slab_new()))
        return NULL;
    return slab_alloc(s_slab, size);
}

static size_t s_record_size(const job_t *j)
{
    return sizeof *j + j->task_len + j->key_len + j->args_len;
}

static size_t s_result_size(const job_result_t *r)
{
    return sizeof *r + r->val_len + r->err_len + r->wk_len;
}

job_t *job_new(const msg_job_t *spec, uint64_t id)
{
    assert(spec->task.len <= QJ_MAX_TASK_NAME && spec->key.len <= QJ_MAX_KEY);
    size_t extra = (size_t)spec->task.len + spec->key.len + spec->args.len;
    job_t *j = s_alloc(sizeof *j + extra);
    if (!j)
        return NULL;
    memset(j, 0, sizeof *j);
    j->id = id;
    j->ref = spec->ref;
    j->parent = spec->parent;
    j->t_submit = spec->t_submit;
    j->timeout_ms = spec->timeout_ms;
    j->retries = (uint16_t)(spec->retries < JOB_MAX_RETRIES ? spec->retries : JOB_MAX_RETRIES);
    j->backoff_ms = spec->backoff_ms;
    j->pri = (int8_t)spec->pri;
    j->task_len = (uint8_t)spec->task.len;
    j->key_len = (uint8_t)spec->key.len;
    j->args_len = spec->args.len;
    j->flags = (spec->detach ? JOB_F_DETACH : 0) | (spec->progress ? JOB_F_PROGRESS : 0);
    char *p = j->data;
    if (spec->task.len)
        memcpy(p, spec->task.ptr, spec->task.len);
    p += spec->task.len;
    if (spec->key.len)
        memcpy(p, spec->key.ptr, spec->key.len);
    p += spec->key.len;
    if (spec->args.len)
        memcpy(p, spec->args.ptr, spec->args.len);
    return j;
}

size_t job_bytes(const job_t *self)
{
    return s_record_size(self) + JOB_INDEX_BYTES + (self->res ? s_result_size(self->res) : 0);
}

void job_free(job_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    job_t *j = *self_p;
    assert(!job_waiters(j));
    if (j->res)
        slab_free(s_slab, j->res, s_result_size(j->res));
    free(j->aux);
    slab_free(s_slab, j, s_record_size(j));
    *self_p = NULL;
}

job_aux_t *job_aux(job_t *self)
{
    if (!self->aux)
        self->aux = calloc(1, sizeof *self->aux);
    return self->aux;
}

int job_set_result(job_t *self, msg_bytes_t val, msg_bytes_t err, msg_bytes_t wk,
                   uint64_t started, uint64_t finished)
{
    if (self->res)
        slab_free(s_slab, self->res, s_result_size(self->res));
    self->res = NULL;
    if (wk.len > UINT16_MAX)
        wk.len = UINT16_MAX;
    size_t extra = (size_t)val.len + err.len + wk.len;
    if (extra == 0 && started == 0 && finished == 0)
        return 0;
    job_result_t *r = s_alloc(sizeof *r + extra);
    if (!r)
        return -1;
    r->started = started;
    r->finished = finished;
    r->val_len = val.len;
    r->err_len = err.len;
    r->wk_len = (uint16_t)wk.len;
    if (val.len)
        memcpy(r->data, val.ptr, val.len);
    if (err.len)
        memcpy(r->data + val.len, err.ptr, err.len);
    if (wk.len)
        memcpy(r->data + val.len + err.len, wk.ptr, wk.len);
    self->res = r;
    return 0;
}

static msg_bytes_t s_part(const char *ptr, uint32_t len)
{
    return len ? (msg_bytes_t){ptr, len} : (msg_bytes_t){0};
}

void job_result_view(const job_result_t *res, msg_bytes_t *val, msg_bytes_t *err,
                     msg_bytes_t *wk)
{
    *val = s_part(res->data, res->val_len);
    *err = s_part(res->data + res->val_len, res->err_len);
    *wk = s_part(res->data + res->val_len + res->err_len, res->wk_len);
}

/* ---- lists */

/* ---- registry */

/* Refs under 2^JOBS_REF_BITS (a submitter counting from 1) are indexed in
 * sequence, in by_ref under (the submitter's slot, ref); larger ones, in a
 * hash table under (session, ref). */
#define JOBS_REF_BITS 40
#define JOBS_MAX_SLOTS ((uint64_t)1 << (64 - JOBS_REF_BITS))

/* A submitter session with jobs in by_ref, and the number its refs go under. */
typedef struct sub {
    const struct sess *sess;
    uint32_t slot;       /* top bits of its by_ref keys */
    uint32_t jobs;       /* its jobs in by_ref */
} sub_t;

struct jobs {
    idmap_t *by_id;
    idmap_t *by_ref;     /* (slot, ref): resent submits */
    htab_t *far_refs;    /* (session, ref) of the other jobs with a ref: refs too
                            large for by_ref, a pair another job holds there */
    htab_t *subs;        /* sub_t by session */
    sub_t *last_sub;     /* the one last used, or NULL */
    uint32_t *free_slots; /* slots of freed subs, for reuse */
    uint32_t nfree, capfree;
    uint64_t next_slot;  /* the next never used */
    htab_t *by_key;      /* idempotency keys */
    jlist_t kept;        /* DONE, oldest first */
    jlist_t dead;        /* DEAD (dead-letter list), oldest first */
    uint64_t next_id;
    uint64_t ttl_ms;
    uint64_t max_kept;
};

typedef struct ref_key {
    const struct sess *sess;
    uint64_t ref;
} ref_key_t;

typedef struct str_key {
    const char *ptr;
    size_t len;
} str_key_t;

static uint64_t s_ref_hash(const struct sess *sess, uint64_t ref)
{
    return htab_hash_seq((uint64_t)(uintptr_t)sess, ref);
}

static uint64_t s_sess_hash(const struct sess *sess)
{
    return htab_hash_pair(1, (uint64_t)(uintptr_t)sess);
}

static bool s_eq_sess(const void *item, const void *key)
{
    return ((const sub_t *)item)->sess == key;
}

static bool s_eq_ref(const void *item, const void *key)
{
    const job_t *j = item;
    const ref_key_t *k = key;
    return j->sess == k->sess && j->ref == k->ref;
}

static bool s_eq_key(const void *item, const void *key)
{
    const job_t *j = item;
    const str_key_t *k = key;
    return j->key_len == k->len && memcmp(job_key(j), k->ptr, k->len) == 0;
}

static int s_by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(job_t *const *)a, y = (uintptr_t)*(job_t *const *)b;
    return x < y ? -1 : x > y;
}

jobs_t *jobs_new(uint64_t first_id, uint64_t ttl_ms, uint64_t max_kept)
{
    jobs_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->by_id = idmap_new();
    self->by_ref = idmap_new();
    self->subs = htab_new();
    self->by_key = htab_new();
    if (!self->by_id || !self->by_ref || !self->subs || !self->by_key) {
        jobs_destroy(&self, NULL, NULL);
        return NULL;
    }
    self->next_id = first_id ? first_id : 1;
    self->ttl_ms = ttl_ms;
    self->max_kept = max_kept;
    return self;
}

void jobs_destroy(jobs_t **self_p, void (*release)(job_t *job, void *ctx), void *ctx)
{
    if (!self_p || !*self_p)
        return;
    jobs_t *self = *self_p;
    if (self->by_id && release) {
        /* Index order is not memory order: freeing a million jobs in it
         * costs seconds of cache misses.  Unfinished jobs are freed in
         * address order (near enough allocation order), finished ones in
         * the order they finished. */
        size_t n = 0, cursor = 0;
        job_t *j, **v = malloc(idmap_count(self->by_id) * sizeof *v + 1);
        while ((j = idmap_next(self->by_id, &cursor)))
            if (j->state != MSG_STATE_DONE && j->state != MSG_STATE_DEAD) {
                if (v)
                    v[n++] = j;
                else
                    release(j, ctx); /* no memory to sort: index order then */
            }
        if (v) {
            qsort(v, n, sizeof *v, s_by_address);
            for (size_t i = 0; i < n; i++)
                release(v[i], ctx);
            free(v);
        }
        for (jlist_t *l = &self->kept; l; l = l == &self->kept ? &self->dead : NULL)
            while ((j = jlist_pop_front(l)))
                release(j, ctx);
    }
    if (self->subs) {
        size_t cursor = 0;
        sub_t *s;
        while ((s = htab_next(self->subs, &cursor)))
            free(s);
    }
    idmap_destroy(&self->by_id);
    idmap_destroy(&self->by_ref);
    htab_destroy(&self->far_refs);
    htab_destroy(&self->subs);
    free(self->free_slots);
    htab_destroy(&self->by_key);
    free(self);
    *self_p = NULL;
}

uint64_t jobs_next_id(jobs_t *self)
{
    return self->next_id++;
}

uint64_t jobs_peek_id(const jobs_t *self)
{
    return self->next_id;
}

void jobs_reserve(jobs_t *self, uint64_t id)
{
    if (id >= self->next_id)
        self->next_id = id + 1;
}

/* ---- the ref index */

/* The sub of a session, or NULL if it has no job in by_ref. */
static sub_t *s_sub(const jobs_t *self, const struct sess *sess)
{
    if (self->last_sub && self->last_sub->sess == sess)
        return self->last_sub;
    return htab_find(self->subs, s_sess_hash(sess), s_eq_sess, sess);
}

/* The sub of a session, made (with no job) if it has none.  NULL if out of
 * memory or of slots. */
static sub_t *s_sub_get(jobs_t *self, const struct sess *sess)
{
    sub_t *s = s_sub(self, sess);
    if (s)
        return self->last_sub = s;
    if (!self->nfree && self->next_slot == JOBS_MAX_SLOTS)
        return NULL;
    if (!(s = malloc(sizeof *s)))
        return NULL;
    if (htab_insert(self->subs, s_sess_hash(sess), s) != 0) {
        free(s);
        return NULL;
    }
    s->sess = sess;
    s->slot = self->nfree ? self->free_slots[--self->nfree] : (uint32_t)self->next_slot++;
    s->jobs = 0;
    return self->last_sub = s;
}

/* Free a sub that has no job left; its slot is used again (no key of it
 * is left in by_ref). */
static void s_sub_drop(jobs_t *self, sub_t *s)
{
    assert(s->jobs == 0);
    htab_remove(self->subs, s_sess_hash(s->sess), s);
    if (self->last_sub == s)
        self->last_sub = NULL;
    if (self->nfree == self->capfree) {
        uint32_t cap = self->capfree ? self->capfree * 2 : 16;
        uint32_t *v = realloc(self->free_slots, cap * sizeof *v);
        if (v) {
            self->free_slots = v;
            self->capfree = cap;
        }
    }
    if (self->nfree < self->capfree) /* else the slot is never used again */
        self->free_slots[self->nfree++] = s->slot;
    free(s);
}

static uint64_t s_ref_key(const sub_t *s, uint64_t ref)
{
    return (uint64_t)s->slot << JOBS_REF_BITS | ref;
}

/* Index a job by (session, ref).  A pair that another job holds already
 * (a journal may replay one after the first was forgotten by count) goes
 * to far_refs, where it is found once the first is gone, as it would be
 * in one hash table.  Returns 0, or -1 if out of memory. */
static int s_ref_add(jobs_t *self, job_t *job)
{
    sub_t *s = job->ref >> JOBS_REF_BITS ? NULL : s_sub_get(self, job->sess);
    if (s) {
        uint64_t key = s_ref_key(s, job->ref);
        if (!idmap_get(self->by_ref, key) && idmap_put(self->by_ref, key, job) == 0) {
            s->jobs++;
            return 0;
        }
        if (s->jobs == 0)
            s_sub_drop(self, s);
    }
    if (!self->far_refs && !(self->far_refs = htab_new()))
        return -1;
    return htab_insert(self->far_refs, s_ref_hash(job->sess, job->ref), job);
}

static void s_ref_remove(jobs_t *self, job_t *job)
{
    sub_t *s = job->ref >> JOBS_REF_BITS ? NULL : s_sub(self, job->sess);
    if (s && idmap_remove(self->by_ref, s_ref_key(s, job->ref), job) == 0) {
        if (--s->jobs == 0)
            s_sub_drop(self, s);
        return;
    }
    if (self->far_refs)
        htab_remove(self->far_refs, s_ref_hash(job->sess, job->ref), job);
}

job_t *jobs_find_ref(const jobs_t *self, const struct sess *sess, uint64_t ref)
{
    const sub_t *s = ref >> JOBS_REF_BITS ? NULL : s_sub(self, sess);
    job_t *job = s ? idmap_get(self->by_ref, s_ref_key(s, ref)) : NULL;
    if (job || !self->far_refs || htab_count(self->far_refs) == 0)
        return job;
    ref_key_t k = {sess, ref};
    return htab_find(self->far_refs, s_ref_hash(sess, ref), s_eq_ref, &k);
}

/* ---- every index */

int jobs_add(jobs_t *self, job_t *job)
{
    if (idmap_put(self->by_id, job->id, job) != 0)
        return -1;
    if (job->ref && s_ref_add(self, job) != 0) {
        idmap_remove(self->by_id, job->id, job);
        return -1;
    }
    if (job->key_len &&
        htab_insert(self->by_key, htab_hash_bytes(job_key(job), job->key_len), job) != 0) {
        idmap_remove(self->by_id, job->id, job);
        if (job->ref)
            s_ref_remove(self, job);
        return -1;
    }
    return 0;
}

static void s_unindex(jobs_t *self, job_t *job)
{
    idmap_remove(self->by_id, job->id, job);
    if (job->ref)
        s_ref_remove(self, job);
    if (job->key_len)
        htab_remove(self->by_key, htab_hash_bytes(job_key(job), job->key_len), job);
}

void jobs_remove(jobs_t *self, job_t *job)
{
    if (job->state == MSG_STATE_DONE)
        jlist_remove(&self->kept, job);
    else if (job->state == MSG_STATE_DEAD)
        jlist_remove(&self->dead, job);
    s_unindex(self, job);
}

job_t *jobs_find(const jobs_t *self, uint64_t id)
{
    return idmap_get(self->by_id, id);
}

job_t *jobs_find_key(const jobs_t *self, const char *key, size_t len)
{
    str_key_t k = {key, len};
    return htab_find(self->by_key, htab_hash_bytes(key, len), s_eq_key, &k);
}

void jobs_keep(jobs_t *self, job_t *job)
{
    assert(job->state == MSG_STATE_DONE || job->state == MSG_STATE_DEAD);
    jlist_push_back(job->state == MSG_STATE_DONE ? &self->kept : &self->dead, job);
}

void jobs_unkeep(jobs_t *self, job_t *job)
{
    assert(job->state == MSG_STATE_DEAD);
    jlist_remove(&self->dead, job);
}

job_t *jobs_expired(jobs_t *self, uint64_t now_ms)
{
    /* Both lists are in order of final_ms, so the oldest finished job is
     * one of the two heads. */
    job_t *k = self->kept.head, *d = self->dead.head;
    job_t *oldest = !k ? d : !d ? k : (d->final_ms < k->final_ms ? d : k);
    if (!oldest)
        return NULL;
    bool over = self->kept.n + self->dead.n > self->max_kept;
    if (!over && now_ms - oldest->final_ms < self->ttl_ms)
        return NULL;
    jobs_remove(self, oldest);
    return oldest;
}

job_t *jobs_dead_head(const jobs_t *self)
{
    return self->dead.head;
}

job_t *jobs_kept_head(const jobs_t *self)
{
    return self->kept.head;
}

job_t *jobs_next(const jobs_t *self, size_t *cursor)
{
    return idmap_next(self->by_id, cursor);
}

uint64_t jobs_count(const jobs_t *self)
{
    return idmap_count(self->by_id);
}

uint64_t jobs_kept(const jobs_t *self)
{
    return self->kept.n + self->dead.n;
}
