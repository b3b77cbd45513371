/* store.c -- the broker's jobs in its journal: records, replay, snapshot
 * (see store.h). */
#include "store.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "dispatch.h"
#include "log.h"

/* ---- records from jobs
 *
 * A record's encoder reads only the fields of its type (jrec.h): those of
 * the records each job makes are set one by one, and the rest of the
 * jrec_t is left unset, since zeroing all of it cost more than encoding
 * the record. */

static void s_job_rec(const job_t *job, uint64_t due_us, jrec_t *r)
{
    r->type = JREC_JOB;
    r->id = job->id;
    const sess_t *s = job->sess;
    bool cid = s && s->has_cid;
    r->cid = cid ? (msg_bytes_t){(const char *)s->cid, QJ_CID_LEN} : (msg_bytes_t){0};
    r->ref = cid ? job->ref : 0;
    r->parent = job->parent;
    r->t_submit = job->t_submit;
    r->t_queued = job->t_queued;
    r->t_dispatched = job->t_dispatched;
    r->due_us = due_us;
    r->timeout_ms = job->timeout_ms;
    r->backoff_ms = job->backoff_ms;
    r->retries = job->retries;
    r->attempt = job->attempt;
    r->pri = job->pri;
    r->flags = (job->flags & JOB_F_DETACH ? JREC_F_DETACH : 0) |
               (job->flags & JOB_F_PROGRESS ? JREC_F_PROGRESS : 0);
    r->queue = (msg_bytes_t){job->queue->name, job->queue->name_len};
    r->task = (msg_bytes_t){job_task(job), job->task_len};
    r->key = job->key_len ? (msg_bytes_t){job_key(job), job->key_len} : (msg_bytes_t){0};
    r->args = job->args_len ? (msg_bytes_t){job_args(job), job->args_len} : (msg_bytes_t){0};
}

static void s_final_rec(const job_t *job, uint64_t final_us, jrec_t *r)
{
    r->type = JREC_FINISH;
    r->id = job->id;
    r->st = job->st;
    r->attempt = job->attempt;
    r->final_us = final_us;
    if (job->res) {
        job_result_view(job->res, &r->val, &r->err, &r->wk);
        r->started = job->res->started;
        r->finished = job->res->finished;
    } else {
        r->val = r->err = r->wk = (msg_bytes_t){0};
        r->started = r->finished = 0;
    }
}

/* Append a record of the job's life.  A failure (out of memory) leaves
 * the journal one change behind: after a restart the job is where it was
 * before that change, which at worst runs it again. */
static void s_append(broker_t *b, const jrec_t *r)
{
    if (journal_append(b->journal, r) != 0)
        log_error("journal: cannot record the %s of job %llu (out of memory?): after a "
                  "restart it may run again", jrec_type_name(r->type),
                  (unsigned long long)r->id);
}

int store_submit(broker_t *b, const job_t *job, uint64_t due_us)
{
    jrec_t r;
    s_job_rec(job, due_us, &r);
    if (journal_append(b->journal, &r) != 0)
        return -1;
    journal_wait(b->journal);   /* its ACCEPTED waits for it */
    return 0;
}

void store_dispatch(broker_t *b, const job_t *job)
{
    jrec_t r; /* (its other fields unset: see above) */
    r.type = JREC_DISPATCH;
    r.id = job->id;
    r.attempt = job->attempt;
    r.t_dispatched = job->t_dispatched;
    s_append(b, &r);
}

void store_requeue(broker_t *b, const job_t *job, uint64_t delay_ms, bool front)
{
    jrec_t r = {.type = JREC_REQUEUE, .id = job->id, .attempt = job->attempt,
                .due_us = delay_ms ? b->now_us + delay_ms * 1000 : 0, .front = front};
    s_append(b, &r);
}

void store_final(broker_t *b, const job_t *job)
{
    jrec_t r;
    s_final_rec(job, b->now_us, &r);
    s_append(b, &r);
}

void store_cancel(broker_t *b, const job_t *job)
{
    jrec_t r = {.type = JREC_CANCEL, .id = job->id};
    s_append(b, &r);
}

/* ---- replay */

typedef struct replay {
    broker_t *b;
    jlist_t orphans;            /* leased when the broker stopped, in lease order */
    uint64_t unknown;           /* records about jobs the journal no longer holds */
    uint64_t odd;               /* records that do not fit the job's state */
} replay_t;

static uint64_t s_delay_ms(const broker_t *b, uint64_t due_us)
{
    return due_us > b->now_us ? (due_us - b->now_us + 999) / 1000 : 0;
}

static int s_replay_job(replay_t *rp, const jrec_t *r)
{
    broker_t *b = rp->b;
    char err[256];
    jobs_reserve(b->jobs, r->id);
    if (jobs_find(b->jobs, r->id)) {
        rp->odd++;
        return 0;
    }
    queue_t *q = broker_queue(b, r->queue.ptr, r->queue.len, true, err, sizeof err);
    if (!q) {
        log_error("journal: job %llu cannot be restored: %s", (unsigned long long)r->id, err);
        rp->odd++;
        return 0;
    }
    sess_t *sess = NULL;
    if (r->cid.len && !(sess = peers_session(b->peers, r->cid.ptr)))
        return -1;
    msg_job_t spec = {
        .ref = sess ? r->ref : 0, .task = r->task, .args = r->args, .queue = r->queue,
        .key = r->key, .pri = r->pri, .timeout_ms = r->timeout_ms, .retries = r->retries,
        .backoff_ms = r->backoff_ms, .parent = r->parent, .t_submit = r->t_submit,
        .detach = r->flags & JREC_F_DETACH, .progress = r->flags & JREC_F_PROGRESS};
    job_t *job = job_new(&spec, r->id);
    if (!job)
        return -1;
    job->queue = q;
    job->sess = sess;
    job->t_queued = r->t_queued;
    job->t_dispatched = r->t_dispatched;
    job->batch = QUEUE_BATCH_UNKNOWN;   /* a figure of the run that took it */
    job->attempt = r->attempt;
    if (jobs_add(b->jobs, job) != 0) {
        job_free(&job);
        return -1;
    }
    if (sess)
        sess_ref(sess);
    b->mem_bytes += job_bytes(job);
    dispatch_place(b, job, s_delay_ms(b, r->due_us), false);
    return 0;
}

/* Take a job out of wherever it is for a record that moves it.  False if
 * the record cannot apply to a job in its state. */
static bool s_unplace(replay_t *rp, job_t *job)
{
    broker_t *b = rp->b;
    switch (job->state) {
    case MSG_STATE_QUEUED:
        queue_remove(job->queue, job);
        return true;
    case MSG_STATE_DELAYED:
        theap_remove(b->timers, &job->timer);
        job->queue->delayed--;
        return true;
    case MSG_STATE_RUNNING:
        jlist_remove(&rp->orphans, job);
        job->queue->running--;
        return true;
    case MSG_STATE_DEAD: /* only a REQUEUE (revive) moves a dead job */
        jobs_unkeep(b->jobs, job);
        job->queue->dead--;
        b->mem_bytes -= job_bytes(job);
        job_set_result(job, (msg_bytes_t){0}, (msg_bytes_t){0}, (msg_bytes_t){0}, 0, 0);
        b->mem_bytes += job_bytes(job);
        job->st = 0;
        return true;
    default:
        return false;
    }
}

/* A job's final outcome, as the live broker left it (dispatch.c s_final),
 * without counting it again or telling anyone: its submitter asks. */
static void s_replay_final(replay_t *rp, job_t *job, const jrec_t *r)
{
    broker_t *b = rp->b;
    b->mem_bytes -= job_bytes(job);
    if (job_set_result(job, r->val, r->err, r->wk, r->started, r->finished) != 0)
        log_error("journal: out of memory restoring the result of job %llu: kept without",
                  (unsigned long long)job->id);
    b->mem_bytes += job_bytes(job);
    job->attempt = r->attempt;
    job->st = r->st;
    job->flags &= (uint8_t)~JOB_F_CANCEL;
    bool dead = r->st == MSG_ST_ERROR || r->st == MSG_ST_LOST;
    job->state = dead ? MSG_STATE_DEAD : MSG_STATE_DONE;
    if (dead)
        job->queue->dead++;
    uint64_t age_ms = b->now_us > r->final_us ? (b->now_us - r->final_us) / 1000 : 0;
    job->final_ms = age_ms < b->now_ms ? b->now_ms - age_ms : 0;
    jobs_keep(b->jobs, job);
    if (age_ms >= b->cfg.result_ttl_s * 1000) { /* expired while the broker was away */
        jobs_remove(b->jobs, job);
        if (dead)
            job->queue->dead--;
        dispatch_release(b, job);
    }
}

static int s_apply(void *arg, const jrec_t *r)
{
    replay_t *rp = arg;
    broker_t *b = rp->b;
    if (r->type == JREC_NEXT_ID) {
        jobs_reserve(b->jobs, r->id - 1);
        return 0;
    }
    if (r->type == JREC_JOB)
        return s_replay_job(rp, r);
    job_t *job = jobs_find(b->jobs, r->id);
    if (!job) { /* its JOB record was damaged, or it expired before a compaction */
        rp->unknown++;
        return 0;
    }
    switch (r->type) {
    case JREC_DISPATCH:
        if (job->state != MSG_STATE_QUEUED && job->state != MSG_STATE_DELAYED)
            break;
        s_unplace(rp, job);
        job->state = MSG_STATE_RUNNING;
        job->attempt = r->attempt;
        job->t_dispatched = r->t_dispatched;
        job->queue->running++;
        jlist_push_back(&rp->orphans, job);
        return 0;
    case JREC_REQUEUE:
        if (!s_unplace(rp, job))
            break;
        job->attempt = r->attempt;
        job->flags &= (uint8_t)~JOB_F_CANCEL;
        dispatch_place(b, job, s_delay_ms(b, r->due_us), r->front);
        return 0;
    case JREC_FINISH:
        if (!s_unplace(rp, job))
            break;
        s_replay_final(rp, job, r);
        return 0;
    case JREC_CANCEL:
        if (job->state != MSG_STATE_RUNNING)
            break;
        job->flags |= JOB_F_CANCEL;
        return 0;
    default:
        break;
    }
    rp->odd++;
    return 0;
}

/* Jobs leased when the broker stopped: no worker will report them.  They
 * go back to the front of their queues, last leased first so that they
 * leave again in lease order; the attempt they were on counts.  One a
 * client asked to cancel finishes as cancelled instead. */
static uint64_t s_orphans(replay_t *rp)
{
    broker_t *b = rp->b;
    uint64_t n = 0;
    job_t *job;
    while ((job = rp->orphans.tail)) {
        jlist_remove(&rp->orphans, job);
        job->queue->running--;
        if (job->flags & JOB_F_CANCEL) {
            static const char why[] = "cancelled (the broker restarted while it ran)";
            jrec_t r = {.type = JREC_FINISH, .id = job->id, .st = MSG_ST_CANCELLED,
                        .attempt = job->attempt, .final_us = b->now_us,
                        .err = {why, sizeof why - 1}};
            s_replay_final(rp, job, &r);
            store_final(b, job);
            continue;
        }
        dispatch_place(b, job, 0, true);
        store_requeue(b, job, 0, true);
        n++;
    }
    return n;
}

int store_open(broker_t *b, char *err, size_t errlen)
{
    journal_config_t jc = {.dir = b->cfg.data_dir, .sync = b->cfg.fsync,
                           .compact_bytes = b->cfg.compact_bytes};
    b->journal = journal_open(&jc, err, errlen);
    if (!b->journal)
        return -1;
    replay_t rp = {.b = b};
    journal_replay_t rep;
    if (journal_replay(b->journal, s_apply, &rp, &rep, err, errlen) != 0)
        return -1;
    uint64_t requeued = s_orphans(&rp);
    if (store_flush(b, err, errlen) != 0)
        return -1;
    uint64_t queued = 0, delayed = 0;
    for (uint32_t i = 0; i < b->nqueues; i++) {
        queued += b->qlist[i]->depth;
        delayed += b->qlist[i]->delayed;
    }
    if (rep.files == 0) {
        log_info("journal: %s holds no journal yet: starting empty", b->cfg.data_dir);
        return 0;
    }
    log_info("journal: %s: %llu record(s) replayed from %u file(s): %llu job(s) queued (%llu "
             "of them requeued: their worker was lost with the broker), %llu delayed, %llu "
             "result(s) kept; next id %llu",
             b->cfg.data_dir, (unsigned long long)rep.records, rep.files,
             (unsigned long long)queued, (unsigned long long)requeued,
             (unsigned long long)delayed, (unsigned long long)jobs_kept(b->jobs),
             (unsigned long long)jobs_peek_id(b->jobs));
    if (rep.damaged || rep.cut || rp.unknown || rp.odd)
        log_warn("journal: %llu damaged stretch(es) skipped, %llu byte(s) of torn tail cut, "
                 "%llu record(s) about jobs it no longer holds, %llu out of order (each "
                 "reported above where it was found)",
                 (unsigned long long)rep.damaged, (unsigned long long)rep.cut,
                 (unsigned long long)rp.unknown, (unsigned long long)rp.odd);
    return 0;
}

void store_close(broker_t *b)
{
    journal_destroy(&b->journal);
}

/* ---- the snapshot, written in the compaction child */

static int s_put(journal_t *j, const jrec_t *r)
{
    if (journal_append(j, r) == 0)
        return 0;
    log_error("journal: compaction: cannot write job %llu", (unsigned long long)r->id);
    return -1;
}

/* The live state as records that rebuild it: the id mark; queued jobs
 * level by level in queue order; delayed jobs; leased jobs (and their
 * cancel requests); finished jobs in the order they finished. */
static int s_snapshot(void *arg, journal_t *j)
{
    broker_t *b = arg;
    uint64_t now_ms = clock_mono_ms(), now_us = clock_wall_us();
    jrec_t r = {.type = JREC_NEXT_ID, .id = jobs_peek_id(b->jobs)};
    if (s_put(j, &r) != 0)
        return -1;
    for (uint32_t i = 0; i < b->nqueues; i++)
        for (int lv = 255; lv >= 0; lv--)
            for (const job_t *job = b->qlist[i]->level[lv].head; job; job = job->next) {
                s_job_rec(job, 0, &r);
                if (s_put(j, &r) != 0)
                    return -1;
            }
    size_t cursor = 0;
    const job_t *job;
    while ((job = jobs_next(b->jobs, &cursor)))
        if (job->state == MSG_STATE_DELAYED) {
            uint64_t key = job->timer.key;
            s_job_rec(job, now_us + (key > now_ms ? (key - now_ms) * 1000 : 0), &r);
            if (s_put(j, &r) != 0)
                return -1;
        }
    for (const peer_t *p = peers_first(b->peers); p; p = p->next)
        for (job = p->leases.head; job; job = job->next) {
            s_job_rec(job, 0, &r);
            jrec_t d = {.type = JREC_DISPATCH, .id = job->id, .attempt = job->attempt,
                        .t_dispatched = job->t_dispatched};
            jrec_t c = {.type = JREC_CANCEL, .id = job->id};
            if (s_put(j, &r) != 0 || s_put(j, &d) != 0 ||
                ((job->flags & JOB_F_CANCEL) && s_put(j, &c) != 0))
                return -1;
        }
    for (int dead = 0; dead < 2; dead++)
        for (job = dead ? jobs_dead_head(b->jobs) : jobs_kept_head(b->jobs); job;
             job = job->next) {
            uint64_t age_us = (now_ms - job->final_ms) * 1000;
            jrec_t f;
            s_job_rec(job, 0, &r);
            s_final_rec(job, now_us > age_us ? now_us - age_us : 0, &f);
            if (s_put(j, &r) != 0 || s_put(j, &f) != 0)
                return -1;
        }
    return 0;
}

/* ---- the loop's side */

const char *store_refusal(const broker_t *b)
{
    return journal_failing(b->journal);
}

uint64_t store_lsn(const broker_t *b)
{
    return journal_appended(b->journal);
}

uint64_t store_durable(const broker_t *b)
{
    return journal_durable(b->journal);
}

uint64_t store_shown(const broker_t *b)
{
    if (b->cfg.fsync == JOURNAL_SYNC_ALWAYS)
        return journal_durable(b->journal);
    return journal_appended(b->journal) - journal_pending(b->journal);
}

bool store_pending(const broker_t *b)
{
    return journal_pending(b->journal) > 0 && !journal_failing(b->journal);
}

int store_commit(broker_t *b, char *err, size_t errlen)
{
    return journal_commit(b->journal, err, errlen);
}

int store_fd(const broker_t *b)
{
    return journal_fd(b->journal);
}

int store_poll(broker_t *b, char *err, size_t errlen)
{
    return journal_poll(b->journal, err, errlen);
}

int store_tick(broker_t *b, char *err, size_t errlen)
{
    return journal_maintain(b->journal, s_snapshot, b, err, errlen);
}

int store_flush(broker_t *b, char *err, size_t errlen)
{
    return journal_flush(b->journal, err, errlen);
}
