/* command.c -- one handler per command (see command.h). */
#include "command.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "log.h"
#include "stats.h"
#include "store.h"

#define MIN_HEARTBEAT_MS 50          /* fastest heartbeat a peer may ask for */
#define MAX_HEARTBEAT_MS (600 * 1000)
#define DEFAULT_DEAD_LIMIT 100       /* DEAD without a limit lists this many */
/* Bytes of values a STATUS_REP or DEAD_REP carries: past this, items go
 * without their value (the frame must stay under QJ_MAX_MSG). */
#define REPLY_VALUE_BUDGET (QJ_MAX_MSG / 2)

static const msg_bytes_t s_default_queue = {"default", 7};

/* ---- session */

static void s_welcome(broker_t *b, peer_t *p)
{
    msg_t m = {.cmd = MSG_WELCOME};
    m.heartbeat_ms = p->hb_ms;
    m.liveness = b->cfg.liveness;
    m.max_msg = QJ_MAX_MSG;
    if (b->cfg.name)
        m.name = (msg_bytes_t){b->cfg.name, (uint32_t)strlen(b->cfg.name)};
    broker_reply(b, p, &m);
}

/* Make a worker serve the queues of its HELLO (none = "default"). */
static int s_join(broker_t *b, peer_t *p, const msg_t *m, char *err, size_t errlen)
{
    const msg_bytes_t *names = m->nqueues ? m->queues : &s_default_queue;
    uint32_t n = m->nqueues ? m->nqueues : 1;
    p->queues = calloc(n, sizeof *p->queues);
    if (!p->queues) {
        snprintf(err, errlen, "broker out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        queue_t *q = broker_queue(b, names[i].ptr, names[i].len, true, err, errlen);
        if (!q)
            return -1;
        bool dup = false;
        for (uint32_t k = 0; k < p->nqueues; k++)
            dup |= p->queues[k] == q;
        if (dup)
            continue;
        if (queue_add_worker(q, p) != 0) {
            snprintf(err, errlen, "broker out of memory");
            return -1;
        }
        p->queues[p->nqueues++] = q;
        broker_mark_queue(b, q);
    }
    return 0;
}

/* Stop serving every queue. */
static void s_leave(peer_t *p)
{
    for (uint32_t i = 0; i < p->nqueues; i++)
        queue_remove_worker(p->queues[i], p);
    free(p->queues);
    p->queues = NULL;
    p->nqueues = 0;
}

/* Let a worker take credit more jobs (draining workers take none). */
static void s_credit(broker_t *b, peer_t *p, uint32_t credit)
{
    if (p->draining || credit == 0)
        return;
    uint64_t c = (uint64_t)p->credit + credit;
    p->credit = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
    uint64_t cap = (uint64_t)p->credit + p->leases.n;
    if (cap > p->slots)
        p->slots = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
    for (uint32_t i = 0; i < p->nqueues; i++)
        if (p->queues[i]->depth)
            broker_mark_queue(b, p->queues[i]);
}

/* A worker process that replaces one its supervisor killed (for a job that
 * ran past its timeout without yielding): end those jobs as timeout (or
 * retry them), then forget the dead connection now rather than after
 * its missed heartbeats; its other jobs go back to their queues. */
static void s_replaces(broker_t *b, peer_t *p, const msg_t *m)
{
    peer_t *old = peers_first(b->peers);
    while (old && (old == p || old->role != MSG_ROLE_WORKER ||
                   strlen(old->name) != m->replaces.len ||
                   memcmp(old->name, m->replaces.ptr, m->replaces.len) != 0))
        old = old->next;
    if (!old) {
        log_debug("worker %s replaces %.*s, gone already", p->name, (int)m->replaces.len,
                  m->replaces.ptr);
        return;
    }
    static const char why[] = "ran past its timeout without yielding: its worker process "
                              "was killed";
    for (uint32_t i = 0; i < m->nids; i++) {
        msg_result_t r = {.id = m->ids[i], .st = MSG_ST_TIMEOUT,
                          .error = {why, (uint32_t)sizeof why - 1}};
        dispatch_result(b, old, &r);
    }
    broker_forget_peer(b, old, true, "its worker process was killed and replaced");
}

/* key: the connection's CURVE key (zap_admit), or NULL without CURVE. */
static void s_hello(broker_t *b, const void *rid, size_t rid_len, peer_t *p, const msg_t *m,
                    const char *key)
{
    /* The codec has checked the role, and that a client sent a 16-byte cid. */
    bool again = p && p->role == MSG_ROLE_WORKER && m->role == MSG_ROLE_WORKER;
    if (p && !again) {
        broker_forget_peer(b, p, false, "said HELLO again");
        p = NULL;
    }
    char err[256];
    if (again) {
        /* Same worker connection: keep its leases, take the new queues
         * and credit. */
        s_leave(p);
        p->draining = false;
        p->credit = 0;
    } else {
        p = peers_add(b->peers, rid, rid_len);
        if (!p) {
            broker_error(b, rid, rid_len, QJ_E_INTERNAL, m->cmd, 0, "broker out of memory");
            return;
        }
        p->role = m->role;
        p->key = key;
        sess_t *s = m->role == MSG_ROLE_CLIENT ? peers_session(b->peers, m->cid.ptr)
                                               : peers_anon_session(b->peers);
        if (!s) {
            peers_forget(b->peers, p);
            broker_error(b, rid, rid_len, QJ_E_INTERNAL, m->cmd, 0, "broker out of memory");
            return;
        }
        if (key && s->key && s->key != key) {
            /* A cid is bound to the first key that used it: another key
             * must not take over its results. */
            zap_refuse(b->cfg.zap, "a HELLO from key %s with the cid of key %s", key, s->key);
            peers_forget(b->peers, p);
            broker_error(b, rid, rid_len, QJ_E_DENIED, m->cmd, 0,
                         "denied: this cid belongs to another key (use a new random cid)");
            return;
        }
        s->key = key;
        sess_ref(s); /* first: forgetting its old connection must not free it */
        if (s->peer)
            broker_forget_peer(b, s->peer, false, "its cid came back on a new connection");
        s->peer = p;
        p->sess = s;
        if (s->nout) /* results that waited for this client's return */
            broker_mark_sess(b, s);
    }
    peer_set_name(p, m->name, ++b->npeers_seen);
    uint32_t hb = m->heartbeat_ms ? m->heartbeat_ms : b->cfg.heartbeat_ms;
    p->hb_ms = hb < MIN_HEARTBEAT_MS ? MIN_HEARTBEAT_MS
             : hb > MAX_HEARTBEAT_MS ? MAX_HEARTBEAT_MS : hb;
    p->last_in_ms = b->now_ms;
    if (p->role == MSG_ROLE_WORKER) {
        if (s_join(b, p, m, err, sizeof err) != 0) {
            broker_forget_peer(b, p, false, err);
            broker_error(b, rid, rid_len, QJ_E_LIMIT, m->cmd, 0, "%s", err);
            return;
        }
        s_credit(b, p, m->credit);
        log_info("worker %s joined (credit %u, %u queue%s, first '%s')", p->name, m->credit,
                 p->nqueues, p->nqueues == 1 ? "" : "s", p->queues[0]->name);
        if (m->replaces.ptr)
            s_replaces(b, p, m);
    } else {
        log_info("client %s joined", p->name);
    }
    s_welcome(b, p);
}

static void s_bye(broker_t *b, peer_t *p, const msg_t *m)
{
    if (p->role == MSG_ROLE_WORKER && m->drain) {
        p->draining = true;
        p->credit = 0;
        log_info("worker %s is draining (%llu jobs to finish)", p->name,
                 (unsigned long long)p->leases.n);
        return;
    }
    broker_forget_peer(b, p, false, "said goodbye");
}

/* ---- jobs */

static void s_submit(broker_t *b, peer_t *p, const msg_t *m)
{
    uint32_t refused = 0;
    char err[256], first[256] = "";
    for (uint32_t i = 0; i < m->njobs; i++) {
        const msg_job_t *spec = &m->jobs[i];
        uint64_t id = 0;
        msg_err_t code = dispatch_accept(b, p, spec, m->njobs, &id, err, sizeof err);
        if (code != QJ_E_OK && refused++ == 0)
            snprintf(first, sizeof first, "%s", err);
        if (peer_push_ack(p, spec->ref, id, (uint16_t)code, code ? err : NULL, store_lsn(b)) != 0)
            log_error("out of memory: ACCEPTED item for ref %llu to %s lost",
                      (unsigned long long)spec->ref, p->name);
    }
    broker_mark_peer(b, p);
    if (refused)
        log_warn("refused %u of %u job(s) from %s: %s", refused, m->njobs, p->name, first);
}

static void s_await(broker_t *b, peer_t *p, const msg_t *m)
{
    for (uint32_t i = 0; i < m->nids; i++) {
        job_t *job = jobs_find(b->jobs, m->ids[i]);
        /* An unknown id is pushed as such: the flush finds no job and
         * sends st = unknown. */
        int rc = job ? dispatch_await(b, job, p->sess)
                     : sess_push_result(p->sess, m->ids[i], store_lsn(b));
        if (rc != 0)
            log_error("out of memory: AWAIT of job %llu by %s lost",
                      (unsigned long long)m->ids[i], p->name);
        else if (!job)
            broker_mark_sess(b, p->sess);
    }
}

static void s_results(broker_t *b, peer_t *p, const msg_t *m)
{
    for (uint32_t i = 0; i < m->nresults; i++)
        dispatch_result(b, p, &m->results[i]);
    s_credit(b, p, m->credit);
}

static void s_progress(broker_t *b, peer_t *p, const msg_t *m)
{
    job_t *job = jobs_find(b->jobs, m->id);
    if (!job || job->state != MSG_STATE_RUNNING || job->worker != p) {
        log_debug("%s reported progress of job %llu, which it does not hold: ignored", p->name,
                  (unsigned long long)m->id);
        return;
    }
    job_aux_t *aux = job_aux(job);
    if (!aux)
        return;
    job_prog_t *prog = &aux->prog;
    aux->has_prog = true;
    prog->done = m->done;
    prog->total = m->total;
    prog->note_len = (uint16_t)(m->note.len < QJ_MAX_NOTE ? m->note.len : QJ_MAX_NOTE);
    if (prog->note_len)
        memcpy(prog->note, m->note.ptr, prog->note_len);
    /* Progress is best effort: sent now, dropped if the submitter is away. */
    if ((job->flags & JOB_F_PROGRESS) && job->sess && job->sess->peer) {
        msg_t out = {.cmd = MSG_PROGRESS, .id = m->id, .done = m->done, .total = m->total,
                     .note = m->note};
        broker_send(b, job->sess->peer, &out);
    }
}

/* ---- queries */

/* Describe a job as a result map for STATUS_REP / DEAD_REP.  budget: bytes
 * of values still allowed in the reply (decremented). */
static void s_describe(const job_t *job, msg_result_t *r, size_t *budget)
{
    memset(r, 0, sizeof *r);
    r->id = job->id;
    r->state = job->state;
    r->queue = (msg_bytes_t){job->queue->name, job->queue->name_len};
    r->task = (msg_bytes_t){job_task(job), job->task_len};
    r->attempts = job->attempt;
    r->t.submitted = job->t_submit;
    r->t.queued = job->t_queued;
    r->t.dispatched = job->t_dispatched;
    if (job->aux && job->aux->has_prog) {
        const job_prog_t *prog = &job->aux->prog;
        r->prog_done = prog->done;
        r->prog_total = prog->total;
        if (prog->note_len)
            r->prog_note = (msg_bytes_t){prog->note, prog->note_len};
    }
    if (job->state == MSG_STATE_RUNNING && job->worker)
        r->worker = (msg_bytes_t){job->worker->name, (uint32_t)strlen(job->worker->name)};
    if (job->state != MSG_STATE_DONE && job->state != MSG_STATE_DEAD)
        return;
    r->st = job->st;
    const job_result_t *res = job->res;
    if (!res)
        return;
    r->t.started = res->started;
    r->t.finished = res->finished;
    job_result_view(res, &r->value, &r->error, &r->worker);
    if (res->val_len > *budget)
        r->value = (msg_bytes_t){0};
    else
        *budget -= res->val_len;
}

static void s_status(broker_t *b, peer_t *p, const msg_t *m)
{
    size_t budget = REPLY_VALUE_BUDGET;
    for (uint32_t i = 0; i < m->nids; i++) {
        const job_t *job = jobs_find(b->jobs, m->ids[i]);
        if (job) {
            s_describe(job, &b->sresults[i], &budget);
        } else {
            b->sresults[i] = (msg_result_t){
                .id = m->ids[i], .st = MSG_ST_UNKNOWN, .state = MSG_STATE_UNKNOWN};
        }
    }
    msg_t out = {.cmd = MSG_STATUS_REP, .rid = m->rid, .results = b->sresults,
                 .nresults = m->nids};
    broker_reply(b, p, &out);
}

static void s_dead(broker_t *b, peer_t *p, const msg_t *m)
{
    uint32_t limit = m->limit ? m->limit : DEFAULT_DEAD_LIMIT;
    if (limit > QJ_MAX_BATCH)
        limit = QJ_MAX_BATCH;
    size_t budget = REPLY_VALUE_BUDGET;
    uint32_t n = 0;
    for (const job_t *job = jobs_dead_head(b->jobs); job && n < limit; job = job->next) {
        if (m->queue.ptr && (m->queue.len != job->queue->name_len ||
                             memcmp(m->queue.ptr, job->queue->name, m->queue.len) != 0))
            continue;
        s_describe(job, &b->sresults[n++], &budget);
    }
    msg_t out = {.cmd = MSG_DEAD_REP, .rid = m->rid, .results = b->sresults, .nresults = n};
    broker_reply(b, p, &out);
}

/* CANCEL and REQUEUE: one outcome per id. */
static void s_outcomes(broker_t *b, peer_t *p, const msg_t *m)
{
    msg_outcome_t *items = calloc(m->nids ? m->nids : 1, sizeof *items);
    if (!items) {
        broker_error(b, p->rid, p->rid_len, QJ_E_INTERNAL, m->cmd, m->rid,
                     "broker out of memory: retry later");
        return;
    }
    uint32_t done = 0;
    for (uint32_t i = 0; i < m->nids; i++) {
        job_t *job = jobs_find(b->jobs, m->ids[i]);
        items[i].id = m->ids[i];
        if (m->cmd == MSG_CANCEL)
            items[i].outcome = job ? dispatch_cancel(b, job) : MSG_CANCEL_UNKNOWN;
        else
            /* REQUEUE_REP: 0 requeued, 3 not in the dead-letter list */
            items[i].outcome = job && dispatch_revive(b, job) == 0 ? 0 : MSG_CANCEL_UNKNOWN;
        done += items[i].outcome == 0;
    }
    if (done)
        log_info("%s %s %u job(s)", p->name, m->cmd == MSG_CANCEL ? "cancelled" : "requeued",
                 done);
    /* The reply reports changes (removed, requested, requeued): the
     * journal holds them first. */
    char err[256];
    if (store_lsn(b) > store_durable(b) && store_flush(b, err, sizeof err) != 0)
        log_error("%s", err);
    msg_t out = {.cmd = m->cmd == MSG_CANCEL ? MSG_CANCEL_REP : MSG_REQUEUE_REP, .rid = m->rid,
                 .outcomes = items, .noutcomes = m->nids};
    broker_reply(b, p, &out);
    free(items);
}

static void s_stats(broker_t *b, peer_t *p, const msg_t *m)
{
    msg_t out = {.cmd = MSG_STATS_REP, .rid = m->rid};
    if (stats_collect(b, &out.stats) != 0) {
        broker_error(b, p->rid, p->rid_len, QJ_E_INTERNAL, m->cmd, m->rid,
                     "broker out of memory: retry later");
        return;
    }
    broker_reply(b, p, &out);
    stats_release(&out.stats);
}

/* ---- routing */

/* Commands only a worker sends. */
static bool s_worker_only(uint8_t cmd)
{
    return cmd == MSG_RESULTS || cmd == MSG_CREDIT || cmd == MSG_TOUCH || cmd == MSG_PROGRESS;
}

void command_handle(broker_t *b, const void *rid, size_t rid_len, peer_t *p, const msg_t *m)
{
    if (m->cmd == MSG_ERROR || (!p && (m->cmd == MSG_HEARTBEAT || m->cmd == MSG_BYE))) {
        /* Never answered (PROTOCOL §5.5); an ERROR is only logged. */
        if (m->cmd == MSG_ERROR)
            log_debug("%s sent ERROR %s: %.*s", p ? p->name : "a stranger",
                      msg_err_name(m->code), (int)m->text.len, m->text.ptr ? m->text.ptr : "");
        return;
    }
    if (m->cmd == MSG_HELLO) {
        char why[128];
        const char *key = NULL;
        if (b->cfg.zap && !(key = zap_admit(b->cfg.zap, &b->zbody, m->role, why, sizeof why))) {
            broker_error(b, rid, rid_len, QJ_E_DENIED, m->cmd, 0, "%s", why);
            return;
        }
        s_hello(b, rid, rid_len, p, m, key);
        return;
    }
    if (!p) {
        broker_error(b, rid, rid_len, QJ_E_HELLO, m->cmd, m->rid,
                     "%s before HELLO: send HELLO first, then resend it", msg_cmd_name(m->cmd));
        return;
    }
    if (b->cfg.zap && !zap_same(b->cfg.zap, &b->zbody, p->key)) {
        /* Another connection took over a routing id that said HELLO. */
        broker_error(b, rid, rid_len, QJ_E_DENIED, m->cmd, m->rid,
                     "denied: not the key this connection said HELLO with");
        return;
    }
    p->last_in_ms = b->now_ms; /* any message renews the peer and its leases */
    if (s_worker_only(m->cmd) && p->role != MSG_ROLE_WORKER) {
        broker_error(b, rid, rid_len, QJ_E_ROLE, m->cmd, m->rid, "%s is for workers only",
                     msg_cmd_name(m->cmd));
        return;
    }
    switch (m->cmd) {
    case MSG_HEARTBEAT:
    case MSG_TOUCH:
        break;
    case MSG_BYE: s_bye(b, p, m); break;
    case MSG_SUBMIT: s_submit(b, p, m); break;
    case MSG_AWAIT: s_await(b, p, m); break;
    case MSG_RESULTS: s_results(b, p, m); break;
    case MSG_CREDIT: s_credit(b, p, m->credit); break;
    case MSG_PROGRESS: s_progress(b, p, m); break;
    case MSG_STATUS: s_status(b, p, m); break;
    case MSG_CANCEL:
    case MSG_REQUEUE: s_outcomes(b, p, m); break;
    case MSG_DEAD: s_dead(b, p, m); break;
    case MSG_STATS: s_stats(b, p, m); break;
    default:
        broker_error(b, rid, rid_len, QJ_E_ROLE, m->cmd, m->rid,
                     "%s is sent by the broker, never to it", msg_cmd_name(m->cmd));
        break;
    }
}
