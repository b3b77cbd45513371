/* broker.c -- the socket, the loop, the end-of-turn batches (see broker.h). */
#include "broker.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "command.h"
#include "dispatch.h"
#include "endpoint.h"
#include "log.h"
#include "stats.h"
#include "store.h"

#define READ_BATCH 4096      /* messages read in one turn before its work is done */
#define TICK_MS 20           /* heartbeats, liveness, expiry, retries of full peers */
#define MAX_QUEUES 1024      /* queues one broker holds (each costs ~4 KiB) */
#define PEER_HWM 100000      /* messages queued per peer each way */
#define GOODBYE_LINGER_MS 500
/* Bytes of items per batched message: under QJ_MAX_MSG with room for the
 * envelope, and so that one item (at most 1 MiB of value) always fits. */
#define BATCH_BYTES (QJ_MAX_MSG - 256 * 1024)
#define ITEM_OVERHEAD 160    /* encoded fields of one item besides its bytes */

/* ---- sending */

static int s_send_raw(broker_t *b, const void *rid, size_t rid_len, const void *data,
                      size_t len)
{
    if (zmq_send(b->sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    /* Once the routing frame is taken, the body always is (one message). */
    if (zmq_send(b->sock, data, len, ZMQ_DONTWAIT) < 0)
        return -1;
    return 0;
}

static int s_encode(broker_t *b, const msg_t *m)
{
    char err[256];
    if (msg_encode(&b->out, m, err, sizeof err) != 0) {
        log_error("cannot encode %s: %s", msg_cmd_name(m->cmd), err);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int broker_send(broker_t *b, peer_t *peer, const msg_t *m)
{
    if (s_encode(b, m) != 0)
        return -1;
    if (s_send_raw(b, peer->rid, peer->rid_len, b->out.data, b->out.size) != 0)
        return -1;
    peer->last_out_ms = b->now_ms;
    return 0;
}

int broker_reply(broker_t *b, peer_t *peer, const msg_t *m)
{
    if (broker_send(b, peer, m) == 0)
        return 0;
    if (errno == EAGAIN)
        log_warn("%s to %s dropped: it is not reading (its send queue is full)",
                 msg_cmd_name(m->cmd), peer->name);
    return -1;
}

void broker_error(broker_t *b, const void *rid, size_t rid_len, uint16_t code, uint8_t about,
                  uint64_t req, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    msg_t m = {.cmd = MSG_ERROR, .code = code, .about = about, .rid = req};
    m.text = (msg_bytes_t){text, (uint32_t)strlen(text)};
    if (s_encode(b, &m) == 0)
        s_send_raw(b, rid, rid_len, b->out.data, b->out.size);
}

/* ---- end-of-turn work lists */

void broker_mark_queue(broker_t *b, queue_t *q)
{
    if (q->dirty)
        return;
    q->dirty = true;
    q->dirty_next = b->dirty_queues;
    b->dirty_queues = q;
}

void broker_mark_peer(broker_t *b, peer_t *peer)
{
    if (peer->dirty || peer->gone)
        return;
    peer->dirty = true;
    peer->dirty_next = b->dirty_peers;
    b->dirty_peers = peer;
}

void broker_mark_sess(broker_t *b, sess_t *sess)
{
    if (sess->dirty)
        return;
    sess->dirty = true;
    sess_ref(sess); /* the list's own reference, dropped by the flush */
    sess->dirty_next = b->dirty_sess;
    b->dirty_sess = sess;
}

/* ---- queues */

static bool s_eq_queue(const void *item, const void *key)
{
    const queue_t *q = item;
    const msg_bytes_t *k = key;
    return q->name_len == k->len && memcmp(q->name, k->ptr, k->len) == 0;
}

static uint64_t s_depth_for(const broker_t *b, const queue_t *q)
{
    uint64_t depth = 0;
    for (int i = 0; i < b->cfg.ndepths; i++) {
        const broker_depth_t *d = &b->cfg.depths[i];
        if (strcmp(d->queue, q->name) == 0)
            return d->depth;
        if (!d->queue[0])
            depth = d->depth;
    }
    return depth;
}

queue_t *broker_queue(broker_t *b, const char *name, size_t len, bool create, char *err,
                      size_t errlen)
{
    msg_bytes_t key = len ? (msg_bytes_t){name, (uint32_t)len} : (msg_bytes_t){"default", 7};
    if (b->last_queue && s_eq_queue(b->last_queue, &key))
        return b->last_queue;
    uint64_t h = htab_hash_bytes(key.ptr, key.len);
    queue_t *q = htab_find(b->queues, h, s_eq_queue, &key);
    if (q)
        b->last_queue = q;
    if (q || !create)
        return q;
    if (b->nqueues >= MAX_QUEUES) {
        snprintf(err, errlen, "too many queues (the broker holds at most %d): use fewer names",
                 MAX_QUEUES);
        return NULL;
    }
    if (b->nqueues == b->capqueues) {
        uint32_t cap = b->capqueues ? b->capqueues * 2 : 16;
        queue_t **v = realloc(b->qlist, cap * sizeof *v);
        if (!v)
            goto oom;
        b->qlist = v;
        b->capqueues = cap;
    }
    q = queue_new(key.ptr, key.len);
    if (!q)
        goto oom;
    if (htab_insert(b->queues, h, q) != 0) {
        queue_destroy(&q);
        goto oom;
    }
    q->max_depth = s_depth_for(b, q);
    b->qlist[b->nqueues++] = q;
    log_info("queue '%s' created%s", q->name, q->max_depth ? " (bounded)" : "");
    return q;
oom:
    snprintf(err, errlen, "broker out of memory");
    return NULL;
}

/* ---- peers */

void broker_forget_peer(broker_t *b, peer_t *p, bool died, const char *why)
{
    if (p->role == MSG_ROLE_WORKER) {
        uint64_t held = p->leases.n;
        uint32_t back = dispatch_return(b, p, died);
        for (uint32_t i = 0; i < p->nqueues; i++)
            queue_remove_worker(p->queues[i], p);
        if (died)
            log_warn("worker %s died (%s): %llu job(s) held, %u requeued", p->name, why,
                     (unsigned long long)held, back);
        else
            log_info("worker %s left (%s): %u job(s) requeued", p->name, why, back);
    } else if (died) {
        log_warn("client %s died (%s)", p->name, why);
    } else {
        log_info("client %s left (%s)", p->name, why);
    }
    peers_forget(b->peers, p);
}

/* ---- flushing the turn's batches */

/* How many of the first n items (lsn non-decreasing) the journal covers
 * up to position upto. */
static uint32_t s_covered_prefix(uint64_t upto, const uint64_t *lsn, uint32_t n)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (lsn[mid] <= upto)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Send the first n pending ACCEPTED items and drop them. */
static void s_send_acks(broker_t *b, peer_t *p, uint32_t n)
{
    while (n) {
        uint32_t k = n < QJ_MAX_BATCH ? n : QJ_MAX_BATCH;
        msg_t m = {.cmd = MSG_ACCEPTED, .acks = p->acks, .nacks = k};
        if (broker_reply(b, p, &m) != 0) {
            /* The client resends what it did not see accepted; (cid, ref)
             * makes the resend find the same jobs. */
            peer_clear_acks(p, n);
            return;
        }
        peer_clear_acks(p, k);
        n -= k;
    }
}

/* Send a peer its ACCEPTED items whose jobs the journal holds at the
 * --fsync level; the others wait for it (b->held).  While the journal
 * cannot be written, refusals overtake the held acceptances (a submitter
 * matches items by ref): the client learns at once that the broker cannot
 * take its jobs, rather than hearing nothing until the disk has room. */
static void s_flush_acks(broker_t *b, peer_t *p)
{
    s_send_acks(b, p, s_covered_prefix(store_durable(b), p->ack_lsn, p->nacks));
    if (!p->nacks)
        return;
    b->held = true;
    if (store_refusal(b))
        s_send_acks(b, p, peer_hoist_refusals(p));
}

static void s_fill_job(const job_t *job, msg_job_t *mj)
{
    memset(mj, 0, sizeof *mj);
    mj->id = job->id;
    mj->task = (msg_bytes_t){job_task(job), job->task_len};
    if (job->args_len)
        mj->args = (msg_bytes_t){job_args(job), job->args_len};
    mj->queue = (msg_bytes_t){job->queue->name, job->queue->name_len};
    mj->attempt = job->attempt;
    mj->timeout_ms = job->timeout_ms;
    mj->parent = job->parent;
    mj->t_submit = job->t_submit ? job->t_submit : job->t_queued;
}

/* Send a worker its jobs of this turn.  Returns 0, or -1 if it is gone. */
static int s_flush_jobs(broker_t *b, peer_t *p)
{
    uint32_t i = 0;
    while (i < p->nout_jobs) {
        uint32_t n = 0;
        size_t bytes = 0;
        while (i + n < p->nout_jobs && n < QJ_MAX_BATCH) {
            const job_t *job = p->out_jobs[i + n];
            size_t sz = ITEM_OVERHEAD + job->task_len + job->args_len;
            if (n && bytes + sz > BATCH_BYTES)
                break;
            s_fill_job(job, &b->sjobs[n++]);
            bytes += sz;
        }
        msg_t m = {.cmd = MSG_JOBS, .jobs = b->sjobs, .njobs = n};
        if (broker_send(b, p, &m) != 0) {
            int e = errno;
            log_debug("JOBS to %s not sent (%s): %u job(s) back in their queues", p->name,
                      zmq_strerror(e), p->nout_jobs - i);
            dispatch_unsend(b, p, p->nout_jobs - i);
            return e == EHOSTUNREACH ? -1 : 0;
        }
        i += n;
    }
    p->nout_jobs = 0;
    return 0;
}

static int s_flush_cancels(broker_t *b, peer_t *p)
{
    int rc = 0;
    for (uint32_t i = 0; i < p->ncancels && rc == 0; i += QJ_MAX_BATCH) {
        uint32_t n = p->ncancels - i < QJ_MAX_BATCH ? p->ncancels - i : QJ_MAX_BATCH;
        msg_t m = {.cmd = MSG_CANCEL, .ids = p->cancels + i, .nids = n};
        if (broker_send(b, p, &m) != 0 && errno == EHOSTUNREACH)
            rc = -1;
    }
    p->ncancels = 0;
    return rc;
}

/* One RESULTS item for a session; false if there is nothing to send (the
 * job went back to a queue since). */
static bool s_fill_result(const broker_t *b, const sess_t *s, uint64_t id, msg_result_t *r,
                          size_t *bytes)
{
    memset(r, 0, sizeof *r);
    r->id = id;
    job_t *job = jobs_find(b->jobs, id);
    if (!job) {
        r->st = MSG_ST_UNKNOWN;
        *bytes = ITEM_OVERHEAD;
        return true;
    }
    if (job->state != MSG_STATE_DONE && job->state != MSG_STATE_DEAD)
        return false;
    if (job->sess == s)
        job->flags &= (uint8_t)~JOB_F_OWED; /* on its way (or dropped: awaits push again) */
    r->ref = job->sess == s ? job->ref : 0;
    r->st = job->st;
    r->attempts = job->attempt;
    r->t.submitted = job->t_submit;
    r->t.queued = job->t_queued;
    r->t.dispatched = job->t_dispatched;
    *bytes = ITEM_OVERHEAD;
    const job_result_t *res = job->res;
    if (res) {
        job_result_view(res, &r->value, &r->error, &r->worker);
        r->t.started = res->started;
        r->t.finished = res->finished;
        *bytes += (size_t)res->val_len + res->err_len + res->wk_len;
    }
    return true;
}

/* Push a session's results.  Those that cannot go now stay in its list
 * (retried on the tick, or sent when the client comes back), and so do
 * those whose outcome the journal does not show yet (store_shown: b->held).
 * Returns 0, or -1 if its peer is gone. */
static int s_flush_results(broker_t *b, sess_t *s)
{
    uint32_t i = 0, ready = s_covered_prefix(store_shown(b), s->out_lsn, s->nout);
    int rc = 0;
    if (ready < s->nout)
        b->held = true;
    while (i < ready) {
        uint32_t n = 0, used = 0;
        size_t bytes = 0;
        while (i + used < ready && n < QJ_MAX_BATCH) {
            size_t sz;
            if (!s_fill_result(b, s, s->out[i + used], &b->sresults[n], &sz)) {
                used++;
                continue;
            }
            if (n && bytes + sz > BATCH_BYTES)
                break;
            n++;
            used++;
            bytes += sz;
        }
        msg_t m = {.cmd = MSG_RESULTS, .results = b->sresults, .nresults = n};
        /* (An item the codec refuses cannot get better by waiting: that
         * batch is dropped, and s_encode has said why.) */
        if (n && s_encode(b, &m) == 0) {
            if (s_send_raw(b, s->peer->rid, s->peer->rid_len, b->out.data, b->out.size) != 0) {
                rc = errno == EHOSTUNREACH ? -1 : 0;
                break;
            }
            s->peer->last_out_ms = b->now_ms;
        }
        i += used;
    }
    memmove(s->out, s->out + i, (s->nout - i) * sizeof *s->out);
    memmove(s->out_lsn, s->out_lsn + i, (s->nout - i) * sizeof *s->out_lsn);
    s->nout -= i;
    return rc;
}

/* Before the turn's journal write: JOBS and CANCELs wait for no record,
 * so the write(2) and the sync thread's wake-up stay off a job's way to
 * its worker.  The peers stay on the flush list for what does wait. */
static void s_flush_leases(broker_t *b)
{
    for (peer_t *p = b->dirty_peers; p; p = p->dirty_next)
        if (!p->gone && (s_flush_jobs(b, p) != 0 || s_flush_cancels(b, p) != 0))
            broker_forget_peer(b, p, true, "disconnected");
}

/* The journal has become durable or been written further: what waited
 * for it may go. */
static void s_release_held(broker_t *b)
{
    uint64_t durable = store_durable(b), shown = store_shown(b);
    if (!b->held || (durable == b->durable_seen && shown == b->shown_seen))
        return;
    b->durable_seen = durable;
    b->shown_seen = shown;
    b->held = false;
    for (peer_t *p = peers_first(b->peers); p; p = p->next) {
        if (p->nacks)
            broker_mark_peer(b, p);
        if (p->sess && p->sess->peer == p && p->sess->nout)
            broker_mark_sess(b, p->sess);
    }
}

static void s_flush(broker_t *b)
{
    s_release_held(b);
    peer_t *p;
    while ((p = b->dirty_peers)) {
        b->dirty_peers = p->dirty_next;
        p->dirty = false;
        p->dirty_next = NULL;
        if (p->gone) {
            peers_reap(p);
            continue;
        }
        s_flush_acks(b, p);
        if (s_flush_jobs(b, p) != 0 || s_flush_cancels(b, p) != 0)
            broker_forget_peer(b, p, true, "disconnected");
    }
    sess_t *s;
    while ((s = b->dirty_sess)) {
        b->dirty_sess = s->dirty_next;
        s->dirty = false;
        s->dirty_next = NULL;
        if (s->peer && s->nout && s_flush_results(b, s) != 0)
            broker_forget_peer(b, s->peer, true, "disconnected");
        peers_unref(b->peers, s);
    }
}

/* ---- the tick: liveness, heartbeats, retries */

static void s_tick(broker_t *b)
{
    uint64_t sec = b->now_ms / 1000;
    if (sec != b->rate_sec) {
        b->rate_sec = sec;
        for (uint32_t i = 0; i < b->nqueues; i++)
            queue_sample_done(b->qlist[i], sec);
    }
    peer_t *next;
    for (peer_t *p = peers_first(b->peers); p; p = next) {
        next = p->next;
        uint64_t silent = b->now_ms - p->last_in_ms;
        if (silent > (uint64_t)p->hb_ms * b->cfg.liveness) {
            char why[64];
            snprintf(why, sizeof why, "silent for %llu ms", (unsigned long long)silent);
            broker_forget_peer(b, p, true, why);
            continue;
        }
        if (b->now_ms - p->last_out_ms >= p->hb_ms) {
            if (s_send_raw(b, p->rid, p->rid_len, b->heartbeat, b->heartbeat_len) == 0)
                p->last_out_ms = b->now_ms;
            else if (errno == EHOSTUNREACH) {
                broker_forget_peer(b, p, true, "disconnected");
                continue;
            }
        }
        /* Results held back by a full send queue: try again. */
        if (p->sess && p->sess->peer == p && p->sess->nout)
            broker_mark_sess(b, p->sess);
    }
}

/* ---- receiving */

static void s_bad(broker_t *b, const void *rid, size_t rid_len, peer_t *p, msg_err_t code,
                  uint8_t cmd, const char *text)
{
    b->counts.bad++;
    b->counts.bad_by[code < 16 ? code : 0]++;
    /* One line a second at most: a peer sending garbage must not flood the log. */
    if (b->bad_quiet == 0 || b->now_ms - b->bad_log_ms >= 1000) {
        char who[32] = "";
        if (!p) {
            int n = snprintf(who, sizeof who, "routing id ");
            for (size_t i = 0; i < rid_len && i < 8; i++)
                n += snprintf(who + n, sizeof who - (size_t)n, "%02x", ((const uint8_t *)rid)[i]);
        }
        log_warn("bad frame from %s (%s): %s%s", p ? p->name : who, msg_err_name(code), text,
                 b->bad_quiet > 1 ? " (more bad frames since the last report)" : "");
        b->bad_log_ms = b->now_ms;
        b->bad_quiet = 1;
    } else {
        b->bad_quiet++;
    }
    if (cmd == MSG_SUBMIT && p && p->nacks) {
        /* ACCEPTED items answering earlier SUBMITs go before this ERROR
         * (PROTOCOL.md §4.3), so they cannot wait for the journal. */
        char err[256];
        if (store_flush(b, err, sizeof err) != 0)
            log_error("%s", err);
        s_flush_acks(b, p);
    }
    if (cmd != MSG_ERROR && cmd != MSG_HEARTBEAT)
        broker_error(b, rid, rid_len, (uint16_t)code, cmd, 0, "%s", text);
}

static void s_handle(broker_t *b, int frames)
{
    const void *rid = zmq_msg_data(&b->zrid);
    size_t rid_len = zmq_msg_size(&b->zrid);
    const void *data = zmq_msg_data(&b->zbody);
    size_t len = zmq_msg_size(&b->zbody);
    uint8_t cmd = 0;
    if (!msg_peek(data, len, &cmd))
        cmd = 0;
    peer_t *p = peers_find(b->peers, rid, rid_len);
    char err[256];
    if (frames > 1) {
        snprintf(err, sizeof err, "message of %d frames: a qjob message is exactly one frame",
                 frames);
        s_bad(b, rid, rid_len, p, QJ_E_FRAME, cmd, err);
        return;
    }
    msg_err_t e = msg_decode(b->reader, data, len, &b->in, err, sizeof err);
    if (e != QJ_E_OK) {
        s_bad(b, rid, rid_len, p, e, cmd, err);
        return;
    }
    command_handle(b, rid, rid_len, p, &b->in);
}

static void s_read(broker_t *b)
{
    for (int n = 0; n < READ_BATCH; n++) {
        if (zmq_msg_recv(&b->zrid, b->sock, ZMQ_DONTWAIT) < 0) {
            if (errno != EAGAIN && errno != EINTR)
                log_error("receive failed: %s", zmq_strerror(errno));
            return;
        }
        if (!zmq_msg_more(&b->zrid))
            continue; /* a ROUTER always gives the routing id first */
        if (zmq_msg_recv(&b->zbody, b->sock, 0) < 0)
            return;
        int frames = 1;
        for (zmq_msg_t *last = &b->zbody; zmq_msg_more(last); last = &b->zextra) {
            if (zmq_msg_recv(&b->zextra, b->sock, 0) < 0)
                return;
            frames++;
        }
        s_handle(b, frames);
    }
}

/* ---- the loop */

static void s_clock(broker_t *b)
{
    b->now_mono_us = clock_mono_us();
    b->now_ms = b->now_mono_us / 1000;
    b->now_us = clock_wall_us();
}

static long s_timeout(const broker_t *b)
{
    if (store_pending(b))
        return 0;
    uint64_t until = b->next_tick_ms;
    theap_node_t *t = theap_peek(b->timers);
    if (t && t->key < until)
        until = t->key;
    return until > b->now_ms ? (long)(until - b->now_ms) : 0;
}

/* One turn's work after reading.  JOBS go to workers at once, RESULTS
 * once the turn's records are written (with --fsync always, synced),
 * ACCEPTED once the journal holds the jobs they announce at the --fsync
 * level (s_flush_acks, s_flush_results).  Returns 0, or -1 with a message
 * on a fatal journal error. */
static int s_turn(broker_t *b, char *err, size_t errlen)
{
    dispatch_due(b);
    if (b->now_ms >= b->next_tick_ms) {
        s_tick(b);
        if (store_tick(b, err, errlen) != 0)
            return -1;
        b->next_tick_ms = b->now_ms + TICK_MS;
    }
    dispatch_run(b);
    s_flush_leases(b);
    if (store_commit(b, err, errlen) != 0)
        return -1;
    s_flush(b);
    /* After the flush: a result is dropped for --max-results only once it
     * has been pushed. */
    dispatch_expire(b);
    return 0;
}

/* Stop: nothing more is read; the journal is made durable, so that every
 * held ACCEPTED and RESULTS can go; then goodbye to every peer. */
static void s_goodbye(broker_t *b)
{
    char err[256];
    if (store_flush(b, err, sizeof err) != 0)
        log_error("%s", err);
    b->held = true;
    s_flush(b);
    uint64_t held = jobs_count(b->jobs), peers = 0;
    msg_t m = {.cmd = MSG_BYE};
    if (s_encode(b, &m) == 0)
        for (peer_t *p = peers_first(b->peers); p; p = p->next, peers++)
            s_send_raw(b, p->rid, p->rid_len, b->out.data, b->out.size);
    log_info("shutting down: said goodbye to %llu peer(s); %llu job(s) held are kept in the "
             "journal in %s", (unsigned long long)peers, (unsigned long long)held,
             b->cfg.data_dir);
    int linger = GOODBYE_LINGER_MS;
    zmq_setsockopt(b->sock, ZMQ_LINGER, &linger, sizeof linger);
}

static bool s_in(const zmq_pollitem_t *items, int i)
{
    return i >= 0 && (items[i].revents & ZMQ_POLLIN);
}

int broker_run(broker_t *b, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    s_clock(b);
    b->next_tick_ms = b->now_ms + TICK_MS;
    zmq_pollitem_t items[4] = {{.socket = b->sock, .events = ZMQ_POLLIN}};
    int nitems = 1, istore = -1, izap = -1, imet = -1;
    if (store_fd(b) >= 0) {
        istore = nitems++;
        items[istore] = (zmq_pollitem_t){.fd = store_fd(b), .events = ZMQ_POLLIN};
    }
    if (b->cfg.zap) {   /* CURVE handshakes wait for the ZAP handler (zap.h) */
        izap = nitems++;
        items[izap] = (zmq_pollitem_t){.socket = zap_socket(b->cfg.zap), .events = ZMQ_POLLIN};
    }
    if (b->metrics) {
        imet = nitems++;
        items[imet] = (zmq_pollitem_t){.fd = metrics_fd(b->metrics), .events = ZMQ_POLLIN};
    }
    while (!*stop) {
        long timeout = s_timeout(b);
        int rc = zmq_poll(items, nitems, b->metrics ? metrics_timeout(b->metrics, timeout)
                                                    : timeout);
        if (rc < 0 && errno != EINTR) {
            snprintf(err, errlen, "poll failed: %s", zmq_strerror(errno));
            return -1;
        }
        if (rc < 0)
            for (int i = 0; i < nitems; i++)
                items[i].revents = 0;
        s_clock(b);
        if (s_in(items, istore) && store_poll(b, err, errlen) != 0)
            return -1;
        if (s_in(items, izap))
            zap_serve(b->cfg.zap);
        if (s_in(items, 0))
            s_read(b);
        if (s_turn(b, err, errlen) != 0)
            return -1;
        /* After the turn: a scrape sees its figures whole. */
        if (b->metrics)
            metrics_poll(b->metrics, s_in(items, imet));
    }
    s_goodbye(b);
    return 0;
}

/* ---- set-up */

static int s_socket(broker_t *b, char *err, size_t errlen)
{
    b->ctx = zmq_ctx_new();
    b->sock = b->ctx ? zmq_socket(b->ctx, ZMQ_ROUTER) : NULL;
    if (!b->sock) {
        snprintf(err, errlen, "cannot create the ZeroMQ socket: %s", zmq_strerror(errno));
        return -1;
    }
    int one = 1, hwm = PEER_HWM, linger = 0;
    int64_t maxmsg = QJ_MAX_MSG;
    if (zmq_setsockopt(b->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one) ||
        zmq_setsockopt(b->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        zmq_setsockopt(b->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(b->sock, ZMQ_RCVHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(b->sock, ZMQ_LINGER, &linger, sizeof linger)) {
        snprintf(err, errlen, "cannot set socket options: %s", zmq_strerror(errno));
        return -1;
    }
    /* IPv6 only when asked for: with it on, IPv4 endpoints read back as
     * [::ffff:127.0.0.1], which is correct but surprises every reader. */
    for (int i = 0; i < b->cfg.nbinds; i++)
        if (strchr(b->cfg.binds[i], '[') &&
            zmq_setsockopt(b->sock, ZMQ_IPV6, &one, sizeof one) != 0) {
            snprintf(err, errlen, "cannot enable IPv6: %s", zmq_strerror(errno));
            return -1;
        }
    /* The ZAP handler must be there before the first handshake. */
    if (b->cfg.zap && zap_start(b->cfg.zap, b->ctx, b->sock, err, errlen) != 0)
        return -1;
    char (*eps)[256] = calloc((size_t)b->cfg.nbinds, sizeof *eps);
    const char **lines = calloc((size_t)b->cfg.nbinds, sizeof *lines);
    int rc = eps && lines ? 0 : -1;
    if (rc != 0)
        snprintf(err, errlen, "out of memory");
    for (int i = 0; i < b->cfg.nbinds && rc == 0; i++) {
        const char *ep = b->cfg.binds[i];
        size_t len = sizeof eps[i];
        if (zmq_bind(b->sock, ep) != 0) {
            snprintf(err, errlen, "cannot bind %s: %s", ep, zmq_strerror(errno));
            rc = -1;
        } else if (zmq_getsockopt(b->sock, ZMQ_LAST_ENDPOINT, eps[i], &len) != 0) {
            snprintf(err, errlen, "cannot read the endpoint bound for %s: %s", ep,
                     zmq_strerror(errno));
            rc = -1;
        } else {
            log_info("listening on %s", eps[i]);
            lines[i] = eps[i];
        }
    }
    if (rc == 0 && b->cfg.endpoint_file)
        rc = endpoint_write_file(b->cfg.endpoint_file, "endpoint file", lines, b->cfg.nbinds,
                                 err, errlen);
    free(lines);
    free(eps);
    return rc;
}

broker_t *broker_new(const broker_config_t *cfg, char *err, size_t errlen)
{
    for (int i = 0; i < cfg->nbinds; i++)
        if (endpoint_check_bind(cfg->binds[i], cfg->insecure || cfg->zap, err, errlen) != 0)
            return NULL;
    broker_t *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->cfg = *cfg;
    msgpack_sbuffer_init(&b->out);
    zmq_msg_init(&b->zrid);
    zmq_msg_init(&b->zbody);
    zmq_msg_init(&b->zextra);
    s_clock(b);
    b->start_ms = b->now_ms;
    /* Ids start above unix_ms << 16, so that a restarted broker (without
     * a journal) does not hand out an id an old client still holds. */
    b->jobs = jobs_new(((b->now_us / 1000) << 16) + 1, cfg->result_ttl_s * 1000,
                       cfg->max_results);
    b->reader = msg_reader_new();
    b->peers = peers_new();
    b->queues = htab_new();
    b->timers = theap_new();
    b->sjobs = calloc(QJ_MAX_BATCH, sizeof *b->sjobs);
    b->sresults = calloc(QJ_MAX_BATCH, sizeof *b->sresults);
    if (!b->jobs || !b->reader || !b->peers || !b->queues || !b->timers || !b->sjobs ||
        !b->sresults) {
        snprintf(err, errlen, "out of memory");
        broker_destroy(&b);
        return NULL;
    }
    msg_t hb = {.cmd = MSG_HEARTBEAT};
    if (s_encode(b, &hb) != 0 || !(b->heartbeat = malloc(b->out.size))) {
        snprintf(err, errlen, "cannot encode HEARTBEAT (codec fault)");
        broker_destroy(&b);
        return NULL;
    }
    memcpy(b->heartbeat, b->out.data, b->out.size);
    b->heartbeat_len = b->out.size;
    if (store_open(b, err, errlen) != 0 || stats_serve(b, err, errlen) != 0 ||
        s_socket(b, err, errlen) != 0) {
        broker_destroy(&b);
        return NULL;
    }
    return b;
}

static void s_release(job_t *job, void *ctx)
{
    dispatch_release(ctx, job);
}

void broker_destroy(broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_t *b = *self_p;
    if (b->sock)
        zmq_close(b->sock);
    if (b->cfg.zap)
        zap_stop(b->cfg.zap);   /* its socket too, or the context would wait for it */
    if (b->ctx)
        zmq_ctx_term(b->ctx);
    metrics_destroy(&b->metrics);
    store_close(b);
    /* Jobs first: releasing them drops their session references. */
    jobs_destroy(&b->jobs, s_release, b);
    peers_destroy(&b->peers);
    for (uint32_t i = 0; i < b->nqueues; i++)
        queue_destroy(&b->qlist[i]);
    free(b->qlist);
    htab_destroy(&b->queues);
    theap_destroy(&b->timers);
    msg_reader_destroy(&b->reader);
    msgpack_sbuffer_destroy(&b->out);
    zmq_msg_close(&b->zrid);
    zmq_msg_close(&b->zbody);
    zmq_msg_close(&b->zextra);
    free(b->sjobs);
    free(b->sresults);
    free(b->heartbeat);
    free(b);
    *self_p = NULL;
}
