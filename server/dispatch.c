/* dispatch.c -- a job's life in the broker (see dispatch.h). */
#include "dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store.h"

#define DEFAULT_BACKOFF_MS 1000
#define MAX_BACKOFF_MS (24u * 3600 * 1000) /* a retry waits a day at most */

/* ---- becoming ready */

static void s_ready(broker_t *b, job_t *job)
{
    job->state = MSG_STATE_QUEUED;
    job->ready_us = b->now_mono_us;
    queue_push(job->queue, job);
    broker_mark_queue(b, job->queue);
}

static void s_ready_front(broker_t *b, job_t *job)
{
    job->state = MSG_STATE_QUEUED;
    job->ready_us = b->now_mono_us;
    queue_push_front(job->queue, job);
    broker_mark_queue(b, job->queue);
}

/* Hold a job for delay_ms.  A heap that cannot grow (out of memory) is
 * no reason to lose the job: it is queued at once instead. */
static void s_delay(broker_t *b, job_t *job, uint64_t delay_ms)
{
    job->state = MSG_STATE_DELAYED;
    job->timer.key = b->now_ms + delay_ms;
    if (theap_push(b->timers, &job->timer) != 0) {
        log_error("out of memory holding job %llu for %llu ms: queued at once",
                  (unsigned long long)job->id, (unsigned long long)delay_ms);
        s_ready(b, job);
        return;
    }
    job->queue->delayed++;
}

void dispatch_place(broker_t *b, job_t *job, uint64_t delay_ms, bool front)
{
    if (delay_ms)
        s_delay(b, job, delay_ms);
    else if (front)
        s_ready_front(b, job);
    else
        s_ready(b, job);
}

msg_err_t dispatch_accept(broker_t *b, peer_t *peer, const msg_job_t *spec, uint32_t batch,
                          uint64_t *id, char *err, size_t errlen)
{
    sess_t *sess = peer->sess;
    job_t *job = spec->ref ? jobs_find_ref(b->jobs, sess, spec->ref) : NULL;
    bool resent = job != NULL;
    if (!job && spec->key.len)
        job = jobs_find_key(b->jobs, spec->key.ptr, spec->key.len);
    if (job) {
        log_debug("%s: submit ref %llu is job %llu already", peer->name,
                  (unsigned long long)spec->ref, (unsigned long long)job->id);
        /* A resend: its ACCEPTED was lost (a reconnect, a broker restart),
         * and so may be the result of a job that finished meanwhile, which
         * the submitter could not match: it follows the ACCEPTED again. */
        bool final = job->state == MSG_STATE_DONE || job->state == MSG_STATE_DEAD;
        if (resent && final && !(job->flags & JOB_F_DETACH) && dispatch_await(b, job, sess) != 0)
            log_error("out of memory: the result of job %llu for %s is lost",
                      (unsigned long long)job->id, peer->name);
        *id = job->id;
        return QJ_E_OK;
    }
    if (peer->role == MSG_ROLE_WORKER) {
        job_t *parent = spec->parent ? jobs_find(b->jobs, spec->parent) : NULL;
        if (!parent || parent->state != MSG_STATE_RUNNING || parent->worker != peer) {
            snprintf(err, errlen, "a worker may only submit sub-jobs of a job it is running "
                     "(parent %llu is not leased to %s)",
                     (unsigned long long)spec->parent, peer->name);
            return QJ_E_ROLE;
        }
    }
    const char *refusal = store_refusal(b);
    if (refusal) {
        snprintf(err, errlen, "%s: retry later", refusal);
        return QJ_E_INTERNAL;
    }
    if (b->cfg.max_memory && b->mem_bytes >= b->cfg.max_memory) {
        snprintf(err, errlen, "queue full: the broker holds %llu MB of jobs and results, its "
                 "ceiling (--max-memory %llu MB): retry once workers have drained its queues, "
                 "or raise the limit", (unsigned long long)(b->mem_bytes >> 20),
                 (unsigned long long)(b->cfg.max_memory >> 20));
        return QJ_E_QUEUE_FULL;
    }
    queue_t *q = broker_queue(b, spec->queue.ptr, spec->queue.len, true, err, errlen);
    if (!q)
        return QJ_E_LIMIT;
    if (q->max_depth && q->depth + q->delayed >= q->max_depth) {
        snprintf(err, errlen, "queue '%s' is full (--max-depth %llu): retry once workers "
                 "have drained it, or raise the limit", q->name,
                 (unsigned long long)q->max_depth);
        return QJ_E_QUEUE_FULL;
    }
    job = job_new(spec, jobs_next_id(b->jobs));
    if (!job || (job->queue = q, job->sess = sess, jobs_add(b->jobs, job) != 0)) {
        job_free(&job);
        snprintf(err, errlen, "broker out of memory: retry later");
        return QJ_E_INTERNAL;
    }
    if (!job->backoff_ms)
        job->backoff_ms = DEFAULT_BACKOFF_MS;
    job->t_queued = b->now_us;
    job->batch = queue_batch_class(batch);
    /* Recorded before it is acknowledged: the ACCEPTED waits for this
     * record to be durable (broker.c). */
    uint64_t due_us = spec->at_us > b->now_us ? spec->at_us : 0;
    if (store_submit(b, job, due_us) != 0) {
        jobs_remove(b->jobs, job);
        job_free(&job);
        snprintf(err, errlen, "the broker cannot record the job in its journal (out of "
                 "memory): retry later");
        return QJ_E_INTERNAL;
    }
    sess_ref(sess);
    b->mem_bytes += job_bytes(job);
    q->submitted++;
    b->counts.submitted++;
    dispatch_place(b, job, due_us ? (due_us - b->now_us + 999) / 1000 : 0, false);
    log_debug("job %llu %.*s accepted on '%s' from %s", (unsigned long long)job->id,
              (int)job->task_len, job_task(job), q->name, peer->name);
    *id = job->id;
    return QJ_E_OK;
}

void dispatch_due(broker_t *b)
{
    theap_node_t *node;
    while ((node = theap_peek(b->timers)) && node->key <= b->now_ms) {
        theap_pop(b->timers);
        job_t *job = job_of_timer(node);
        job->queue->delayed--;
        s_ready(b, job);
    }
}

/* ---- dispatch */

static inline uint64_t s_slots(const peer_t *w)
{
    return w->slots ? w->slots : 1;
}

/* The worker of q, among those with credit, that holds the fewest jobs
 * for its slots; among equals the first from the round-robin point.  So
 * an idle slot anywhere gets a job before any worker's prefetch does: a
 * worker granting much prefetch (tiny jobs so far) must not take work a
 * free slot elsewhere could start.  NULL if none has credit. */
static peer_t *s_pick(queue_t *q)
{
    peer_t *best = NULL;
    uint32_t besti = 0;
    for (uint32_t k = 0; k < q->nworkers; k++) {
        uint32_t i = (q->rr + k) % q->nworkers;
        peer_t *w = q->workers[i];
        if (!w->credit)
            continue;
        if (!best || (uint64_t)w->leases.n * s_slots(best) <
                         (uint64_t)best->leases.n * s_slots(w)) {
            best = w;
            besti = i;
        }
    }
    if (best)
        q->rr = (besti + 1) % q->nworkers;
    return best;
}

static void s_lease(broker_t *b, peer_t *w, job_t *job)
{
    job->state = MSG_STATE_RUNNING;
    job->worker = w;
    job->attempt++;
    job->t_dispatched = b->now_us;
    jlist_push_back(&w->leases, job);
    job->queue->running++;
    w->credit--;
    store_dispatch(b, job);
    log_debug("job %llu attempt %u to %s", (unsigned long long)job->id, job->attempt, w->name);
}

static void s_unlease(peer_t *w, job_t *job)
{
    jlist_remove(&w->leases, job);
    job->queue->running--;
    job->worker = NULL;
}

void dispatch_run(broker_t *b)
{
    queue_t *q;
    while ((q = b->dirty_queues)) {
        b->dirty_queues = q->dirty_next;
        q->dirty = false;
        q->dirty_next = NULL;
        while (q->depth) {
            peer_t *w = s_pick(q);
            if (!w)
                break;
            job_t *job = queue_pop(q);
            uint64_t ready_us = job->ready_us; /* s_lease sets the union's worker */
            s_lease(b, w, job);
            if (peer_push_job(w, job) != 0) {
                log_error("out of memory dispatching job %llu: left queued",
                          (unsigned long long)job->id);
                s_unlease(w, job);
                job->attempt--;
                w->credit++;
                /* Not marked again (this loop would spin): the next submit
                 * or credit on the queue tries again. */
                job->state = MSG_STATE_QUEUED;
                job->ready_us = ready_us;
                queue_push_front(q, job);
                store_requeue(b, job, 0, true);
                break;
            }
            queue_note_wait(q, b->now_mono_us > ready_us ? b->now_mono_us - ready_us : 0);
            broker_mark_peer(b, w);
        }
    }
}

void dispatch_unsend(broker_t *b, peer_t *w, uint32_t n)
{
    /* From the last: each goes to the front of its level, so the jobs
     * end up in their original order. */
    for (uint32_t k = 0; k < n; k++) {
        job_t *job = w->out_jobs[--w->nout_jobs];
        s_unlease(w, job);
        job->attempt--;
        w->credit++;
        s_ready_front(b, job);
        store_requeue(b, job, 0, true);
    }
}

/* ---- outcomes */

/* Send a final result to whoever waits for it: the submitter (unless
 * detached) and every session that AWAITed it, each once. */
static void s_notify(broker_t *b, job_t *job)
{
    bool to_submitter = !(job->flags & JOB_F_DETACH) && job->sess;
    uint64_t lsn = store_lsn(b); /* after the FINISH record */
    if (to_submitter && sess_push_result(job->sess, job->id, lsn) == 0) {
        job->flags |= JOB_F_OWED;
        broker_mark_sess(b, job->sess);
    }
    while (job_waiters(job)) {
        job_wait_t *w = job->aux->waiters;
        job->aux->waiters = w->next;
        if (!(to_submitter && w->sess == job->sess) &&
            sess_push_result(w->sess, job->id, lsn) == 0)
            broker_mark_sess(b, w->sess);
        peers_unref(b->peers, w->sess);
        free(w);
    }
}

/* A job's outcome is final: record it, count it, keep it, tell.  why is
 * the error text when the worker gave none, wname the worker that ran it
 * (either may be NULL). */
static void s_final(broker_t *b, job_t *job, uint8_t st, const msg_result_t *r,
                    const char *why, const char *wname)
{
    queue_t *q = job->queue;
    msg_bytes_t val = {0}, err = {0}, wk = {0};
    uint64_t started = 0, finished = 0;
    if (r) {
        val = r->value;
        err = r->error;
        wk = r->worker;
        started = r->t.started;
        finished = r->t.finished;
    }
    if (!err.len && why)
        err = (msg_bytes_t){why, (uint32_t)strlen(why)};
    if (!wk.len && wname)
        wk = (msg_bytes_t){wname, (uint32_t)strlen(wname)};
    b->mem_bytes -= job_bytes(job);
    if (job_set_result(job, val, err, wk, started, finished) != 0)
        log_error("out of memory keeping the result of job %llu: kept without value",
                  (unsigned long long)job->id);
    b->mem_bytes += job_bytes(job);

    if (started && finished >= started) {
        uint64_t since = job->t_submit ? job->t_submit : job->t_queued;
        queue_note_life(q, job->batch, b->now_us > since ? b->now_us - since : 0,
                        finished - started);
    }
    switch (st) {
    case MSG_ST_OK: b->counts.done++; q->done++; break;
    case MSG_ST_CANCELLED: b->counts.cancelled++; break;
    case MSG_ST_LOST: b->counts.lost++; q->failed++; break;
    default: b->counts.failed++; q->failed++; break;
    }
    job->st = st;
    job->state = (st == MSG_ST_ERROR || st == MSG_ST_LOST) ? MSG_STATE_DEAD : MSG_STATE_DONE;
    if (job->state == MSG_STATE_DEAD)
        q->dead++;
    job->final_ms = b->now_ms;
    store_final(b, job);
    jobs_keep(b->jobs, job);
    log_debug("job %llu %.*s finished %s after %u attempt(s)%s", (unsigned long long)job->id,
              (int)job->task_len, job_task(job), msg_st_name(st), job->attempt,
              job->state == MSG_STATE_DEAD ? ": dead-letter list" : "");
    s_notify(b, job);
}

/* A failed attempt: retry after its backoff if it has attempts left. */
static bool s_retry(broker_t *b, job_t *job)
{
    if (job->flags & JOB_F_CANCEL || job->attempt >= 1 + (uint32_t)job->retries)
        return false;
    uint32_t shift = job->attempt > 1 ? job->attempt - 1 : 0;
    uint64_t delay = shift >= 32 ? MAX_BACKOFF_MS : (uint64_t)job->backoff_ms << shift;
    if (delay > MAX_BACKOFF_MS)
        delay = MAX_BACKOFF_MS;
    job->queue->retried++;
    b->counts.retried++;
    log_debug("job %llu retried in %llu ms (attempt %u failed)", (unsigned long long)job->id,
              (unsigned long long)delay, job->attempt);
    s_delay(b, job, delay);
    store_requeue(b, job, delay, false);
    return true;
}

void dispatch_result(broker_t *b, peer_t *w, const msg_result_t *r)
{
    job_t *job = jobs_find(b->jobs, r->id);
    if (!job || job->state != MSG_STATE_RUNNING || job->worker != w) {
        log_debug("%s reported job %llu, which it does not hold: ignored", w->name,
                  (unsigned long long)r->id);
        return;
    }
    w->done++;
    s_unlease(w, job);
    uint8_t st = r->st;
    if (st > MSG_ST_LOST) /* a worker cannot report "unknown": count it as a failure */
        st = MSG_ST_ERROR;
    bool failed = st == MSG_ST_ERROR || st == MSG_ST_TIMEOUT || st == MSG_ST_LOST;
    if (failed && s_retry(b, job))
        return;
    s_final(b, job, st, r, NULL, w->name);
}

uint8_t dispatch_cancel(broker_t *b, job_t *job)
{
    switch (job->state) {
    case MSG_STATE_QUEUED:
        queue_remove(job->queue, job);
        break;
    case MSG_STATE_DELAYED:
        theap_remove(b->timers, &job->timer);
        job->queue->delayed--;
        break;
    case MSG_STATE_RUNNING:
        if (!(job->flags & JOB_F_CANCEL)) {
            if (peer_push_cancel(job->worker, job->id) != 0) {
                log_error("out of memory forwarding the cancel of job %llu",
                          (unsigned long long)job->id);
                return MSG_CANCEL_REQUESTED;
            }
            job->flags |= JOB_F_CANCEL;
            store_cancel(b, job);
            broker_mark_peer(b, job->worker);
        }
        return MSG_CANCEL_REQUESTED;
    default:
        return MSG_CANCEL_DONE;
    }
    s_final(b, job, MSG_ST_CANCELLED, NULL, "cancelled before it ran", NULL);
    return MSG_CANCEL_REMOVED;
}

uint32_t dispatch_return(broker_t *b, peer_t *w, bool died)
{
    uint32_t back = 0;
    char why[QJ_MAX_NAME + 64];
    snprintf(why, sizeof why, "its worker %s died", w->name);
    /* From the last: each goes to the front of its level, so they leave
     * again in the order they were dispatched. */
    job_t *job;
    while ((job = w->leases.tail)) {
        s_unlease(w, job);
        if (job->flags & JOB_F_CANCEL) {
            s_final(b, job, MSG_ST_CANCELLED, NULL, "cancelled", w->name);
            continue;
        }
        if (!died) {
            job->attempt--;
        } else if (job->attempt >= b->cfg.lost_attempts &&
                   job->attempt >= 1 + (uint32_t)job->retries) {
            s_final(b, job, MSG_ST_LOST, NULL, why, w->name);
            continue;
        } else {
            job->queue->retried++;
            b->counts.retried++;
        }
        s_ready_front(b, job);
        store_requeue(b, job, 0, true);
        back++;
    }
    return back;
}

int dispatch_revive(broker_t *b, job_t *job)
{
    if (job->state != MSG_STATE_DEAD)
        return -1;
    jobs_unkeep(b->jobs, job);
    job->queue->dead--;
    b->mem_bytes -= job_bytes(job);
    job_set_result(job, (msg_bytes_t){0}, (msg_bytes_t){0}, (msg_bytes_t){0}, 0, 0);
    b->mem_bytes += job_bytes(job);
    job->st = 0;
    job->attempt = 0;
    job->worker = NULL;
    job->flags &= (uint8_t)~(JOB_F_CANCEL | JOB_F_OWED);
    s_ready(b, job);
    store_requeue(b, job, 0, false);
    log_debug("job %llu %.*s requeued from the dead-letter list", (unsigned long long)job->id,
             (int)job->task_len, job_task(job));
    return 0;
}

int dispatch_await(broker_t *b, job_t *job, sess_t *sess)
{
    if (job->state == MSG_STATE_DONE || job->state == MSG_STATE_DEAD) {
        /* Its submitter awaits a result it is about to get: once is enough
         * (a client awaits again what it lacks after a reconnect). */
        if (sess == job->sess && (job->flags & JOB_F_OWED))
            return 0;
        if (sess_push_result(sess, job->id, store_lsn(b)) != 0)
            return -1;
        broker_mark_sess(b, sess);
        return 0;
    }
    for (job_wait_t *w = job_waiters(job); w; w = w->next)
        if (w->sess == sess)
            return 0;
    job_aux_t *aux = job_aux(job);
    job_wait_t *w = aux ? malloc(sizeof *w) : NULL;
    if (!w)
        return -1;
    w->sess = sess;
    sess_ref(sess);
    w->next = aux->waiters;
    aux->waiters = w;
    return 0;
}

void dispatch_expire(broker_t *b)
{
    job_t *job;
    while ((job = jobs_expired(b->jobs, b->now_ms))) {
        if (job->state == MSG_STATE_DEAD)
            job->queue->dead--;
        log_debug("job %llu expired", (unsigned long long)job->id);
        dispatch_release(b, job);
    }
}

void dispatch_release(broker_t *b, job_t *job)
{
    while (job_waiters(job)) {
        job_wait_t *w = job->aux->waiters;
        job->aux->waiters = w->next;
        peers_unref(b->peers, w->sess);
        free(w);
    }
    if (job->sess)
        peers_unref(b->peers, job->sess);
    b->mem_bytes -= job_bytes(job);
    job_free(&job);
}
