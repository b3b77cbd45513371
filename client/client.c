/* client.c -- a qj_client: its connection to the broker, what goes over
 * it and what comes back (PROTOCOL.md §4), and the requests answered on it.
 *
 * Two modes share everything above the transport.  A socket client owns a
 * DEALER socket: it says HELLO, heartbeats, and when the broker has been
 * silent for hb x liveness it opens a new socket, says HELLO again and,
 * once welcomed, resends every submit not yet accepted (same cid and ref,
 * so the broker drops duplicates) and AWAITs every job it still waits
 * for.  An embedded client (embed.h) has no socket: frames go to the
 * host's send() and the host feeds it decoded messages.
 *
 * Nothing is sent before WELCOME: submits, awaits, cancels and requests
 * wait in queues and go out in outbox_flush, so that a reconnect can
 * simply rebuild those queues.
 */
#include "client_impl.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "clock.h"
#include "log.h"

void qj_options_init(qj_options *o)
{
    memset(o, 0, sizeof *o);
}

static void s_send_hello(qj_client *c)
{
    msg_t m = {0};
    m.cmd = MSG_HELLO;
    m.role = MSG_ROLE_CLIENT;
    m.name.ptr = c->name;
    m.name.len = (uint32_t)strlen(c->name);
    m.cid.ptr = (const char *)c->cid;
    m.cid.len = QJ_CID_LEN;
    m.heartbeat_ms = (uint32_t)c->hb_wish;
    outbox_send(c, &m);
}


/* ------------------------------------------------------------- waiting */

void client_wake(client_waiter_t *w)
{
    if (w)
        sched_wake(w->sched, w->co);
}

static void s_wake_room(qj_client *c)
{
    while (c->room_waiters) {
        client_waiter_t *w = c->room_waiters;
        c->room_waiters = w->next;
        w->next = NULL;
        client_wake(w);
    }
}

void client_block(qj_client *c, bool *blocked)
{
    if (!*blocked && c->embedded && c->ops.block)
        c->ops.block(c->ops.arg);
    *blocked = true;
}

void client_unblock(qj_client *c, bool blocked)
{
    if (blocked && c->embedded && c->ops.unblock)
        c->ops.unblock(c->ops.arg);
}

bool client_stopping(qj_client *c)
{
    return c->embedded && c->ops.stopping && c->ops.stopping(c->ops.arg);
}

uint64_t client_parent(qj_client *c)
{
    return c->embedded && c->ops.current_job ? c->ops.current_job(c->ops.arg) : 0;
}

/* Submit blocks here while max_inflight submits are unanswered.  An
 * embedded client outside a coroutine cannot wait and lets the queue
 * grow (the host flushes it). */
void client_wait_room(qj_client *c)
{
    if (!c->embedded) {
        while (c->inflight >= c->max_inflight)
            client_pump(c, 1000);
        return;
    }
    if (!sched_current())
        return;
    bool blocked = false;
    while (c->inflight >= c->max_inflight) {
        client_waiter_t w = {sched_current(), coro_current(), c->room_waiters};
        c->room_waiters = &w;
        outbox_flush(c);
        client_block(c, &blocked);
        sched_park(-1);
    }
    client_unblock(c, blocked);
}

void client_run_callbacks(qj_client *c)
{
    qj_job *j;
    while ((j = c->cb_head)) {
        c->cb_head = j->cb_next;
        if (c->cb_head)
            c->cb_head->cb_prev = NULL;
        else
            c->cb_tail = NULL;
        j->cb_next = j->cb_prev = NULL;
        j->cb_due = false;
        void (*cb)(qj_job *, void *) = j->cb;
        j->cb = NULL;   /* cleared first: the callback may free j */
        if (cb)
            cb(j, j->cb_arg);
    }
}

/* ------------------------------------------------------------ incoming */

/* After a (re)connection is welcomed: every submit not yet accepted goes
 * out again in ref order, every job still waited for is AWAITed, and
 * requests not yet answered are sent again. */
static int s_ref_cmp(const void *a, const void *b)
{
    uint64_t x = (*(qj_job *const *)a)->ref, y = (*(qj_job *const *)b)->ref;
    return x < y ? -1 : x > y;
}

static void s_resync(qj_client *c)
{
    c->batch_count = 0;
    if (c->by_ref.count) {
        qj_job **v = malloc(c->by_ref.count * sizeof *v);
        if (v) {
            size_t n = 0, pos = 0;
            qj_job *j;
            while ((j = cmap_next(&c->by_ref, &pos, NULL)))
                v[n++] = j;
            qsort(v, n, sizeof *v, s_ref_cmp);
            c->q_head = c->q_tail = NULL;
            for (size_t i = 0; i < n; i++) {
                v[i]->q_next = NULL;
                v[i]->queued = true;
                v[i]->sent = false;
                if (c->q_tail)
                    c->q_tail->q_next = v[i];
                else
                    c->q_head = v[i];
                c->q_tail = v[i];
            }
            c->nqueued = n;
            free(v);
        }
    }
    c->awaits.n = 0;
    size_t pos = 0;
    uint64_t id;
    while (cmap_next(&c->by_id, &pos, &id))
        outbox_await(c, id);
    for (client_req_t *r = c->reqs; r; r = r->next)
        r->sent = false;
}

static void s_welcome(qj_client *c, const msg_t *m)
{
    c->hb_ms = m->heartbeat_ms ? m->heartbeat_ms : CLIENT_HB_DEFAULT;
    c->live = m->liveness ? m->liveness : CLIENT_LIVE_DEFAULT;
    c->max_msg = m->max_msg && m->max_msg < QJ_MAX_MSG ? m->max_msg : QJ_MAX_MSG;
    if (c->max_msg < 2 * CLIENT_FRAME_SLACK)
        c->max_msg = 2 * CLIENT_FRAME_SLACK;
    bool again = c->ever_welcomed;
    c->welcomed = c->ever_welcomed = true;
    if (again || c->embedded)
        s_resync(c);
    log_debug("client: welcomed by %s (hb %u ms, liveness %u)", c->endpoint ? c->endpoint : "host",
              c->hb_ms, c->live);
}

static void s_unqueue(qj_client *c, qj_job *j)
{
    qj_job **p = &c->q_head, *prev = NULL;
    while (*p && *p != j) {
        prev = *p;
        p = &(*p)->q_next;
    }
    if (!*p)
        return;
    *p = j->q_next;
    if (c->q_tail == j)
        c->q_tail = prev;
    j->q_next = NULL;
    j->queued = false;
    c->nqueued--;
}

/* Handles are looked up one item ahead of their turn and prefetched: a
 * window of them is bigger than the cache nearest the core, and their
 * first touch is most of what an item costs.  (Handling an item changes
 * neither table a later item is looked up in.) */
static qj_job *s_prefetched(qj_job *j)
{
    if (j) {
        __builtin_prefetch(j);
        __builtin_prefetch((char *)j + 64);
    }
    return j;
}

static void s_accepted(qj_client *c, const msg_t *m)
{
    outbox_batch_pop(c);
    qj_job *next = m->nacks ? s_prefetched(cmap_del(&c->by_ref, m->acks[0].ref)) : NULL;
    for (uint32_t i = 0; i < m->nacks; i++) {
        const msg_ack_t *a = &m->acks[i];
        qj_job *j = next;
        if (i + 1 < m->nacks)
            next = s_prefetched(cmap_del(&c->by_ref, m->acks[i + 1].ref));
        if (!j)
            continue;   /* a duplicate answer, e.g. to a resend */
        j->in_ref = false;
        c->inflight--;
        if (j->queued)
            s_unqueue(c, j);   /* answered while queued for a resend */
        if (a->id)
            job_accepted(j, a->id, false);
        else
            job_refused(j, msg_err_name(a->code), a->text.ptr, a->text.len);
    }
    s_wake_room(c);
}

static void s_results(qj_client *c, const msg_t *m)
{
    uint64_t now = clock_wall_us();   /* delivered: one reading per message */
    qj_job *next = m->nresults ? s_prefetched(cmap_del(&c->by_id, m->results[0].id)) : NULL;
    for (uint32_t i = 0; i < m->nresults; i++) {
        const msg_result_t *r = &m->results[i];
        qj_job *j = next;
        if (i + 1 < m->nresults)
            next = s_prefetched(cmap_del(&c->by_id, m->results[i + 1].id));
        if (!j && r->ref) {
            /* The result overtook its ACCEPTED (the broker sends a job to
             * a worker before its record is durable, or the ACCEPTED was
             * lost in a reconnect): the result accepts the submit too. */
            qj_job *s = cmap_get(&c->by_ref, r->ref);
            if (!s || !s->sent || r->id == 0)
                continue;
            cmap_del(&c->by_ref, r->ref);
            s->in_ref = false;
            c->inflight--;
            s_wake_room(c);
            if (job_accepted(s, r->id, true))   /* may free s, if its owner let go */
                j = s;
        }
        while (j) {
            qj_job *next = j->same_next;
            job_finish(j, r, now);
            j = next;
        }
    }
}

static void s_progress(qj_client *c, const msg_t *m)
{
    for (qj_job *j = cmap_get(&c->by_id, m->id); j; j = j->same_next)
        job_progress(j, m);
}

/* The answer to qj_cancel.  The outcome of a job the broker cancelled
 * (or that had finished) arrives as its result; but a job the broker does
 * not know will have no result: its handles end as QJ_UNKNOWN now. */
static void s_cancel_outcomes(qj_client *c, const msg_t *m)
{
    for (uint32_t i = 0; i < m->noutcomes; i++) {
        if (m->outcomes[i].outcome != MSG_CANCEL_UNKNOWN)
            continue;
        msg_result_t r = {0};
        r.id = m->outcomes[i].id;
        r.st = MSG_ST_UNKNOWN;
        qj_job *j = cmap_del(&c->by_id, r.id);
        while (j) {
            qj_job *next = j->same_next;
            job_finish(j, &r, clock_wall_us());
            j = next;
        }
    }
}

static void s_error(qj_client *c, const msg_t *m)
{
    if (m->code == QJ_E_DENIED && m->about == MSG_HELLO) {
        /* Our key may not connect as a client: no WELCOME will come. */
        snprintf(c->refusal, sizeof c->refusal, "%.*s", (int)m->text.len,
                 m->text.ptr ? m->text.ptr : "denied");
        log_info("client: the broker at %s refused this client: %s", c->endpoint, c->refusal);
        return;
    }
    if (m->code == QJ_E_HELLO) {
        /* The broker does not know this connection (it restarted, or
         * declared us dead): introduce ourselves again; the WELCOME
         * resends what was refused.  Further ERROR hello answers to what
         * was already in flight are ignored until then. */
        if (!c->embedded && c->welcomed) {
            log_info("client: broker at %s does not know us (restarted?): saying HELLO again",
                     c->endpoint);
            c->welcomed = false;
            s_send_hello(c);
        }
        return;
    }
    if (request_refused(c, m))
        return;
    if (m->about == MSG_SUBMIT) {
        uint64_t seq = outbox_batch_pop(c);
        size_t pos = 0;
        qj_job *j;
        size_t n = 0;
        qj_job **v = seq ? malloc(c->by_ref.count * sizeof *v) : NULL;
        while (v && (j = cmap_next(&c->by_ref, &pos, NULL)))
            if (j->sent && j->batch == seq)
                v[n++] = j;
        for (size_t i = 0; i < n; i++) {
            cmap_del(&c->by_ref, v[i]->ref);
            v[i]->in_ref = false;
            c->inflight--;
            job_refused(v[i], msg_err_name(m->code), m->text.ptr, m->text.len);
        }
        free(v);
        s_wake_room(c);
    }
    log_warn("client: broker error %s about %s: %.*s", msg_err_name(m->code),
             msg_cmd_name(m->about), (int)m->text.len, m->text.ptr ? m->text.ptr : "");
}

static void s_handle(qj_client *c, const msg_t *m)
{
    switch (m->cmd) {
    case MSG_WELCOME: s_welcome(c, m); break;
    case MSG_ACCEPTED: s_accepted(c, m); break;
    case MSG_RESULTS: s_results(c, m); break;
    case MSG_PROGRESS: s_progress(c, m); break;
    case MSG_STATUS_REP:
    case MSG_STATS_REP: request_reply(c, m); break;
    case MSG_CANCEL_REP:
        if (!request_reply(c, m))
            s_cancel_outcomes(c, m);
        break;
    case MSG_ERROR: s_error(c, m); break;
    case MSG_HEARTBEAT: break;
    default:
        log_debug("client: ignoring %s from the broker", msg_cmd_name(m->cmd));
        break;
    }
}

void qj_client_feed(qj_client *c, const msg_t *m)
{
    assert(c->embedded);
    s_handle(c, m);
    client_run_callbacks(c);
}

/* Receive and handle everything waiting on the socket.  Returns the
 * number of messages handled. */
static int s_drain(qj_client *c)
{
    int n = 0;
    for (;;) {
        zmq_msg_t f;
        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, c->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f);
            break;
        }
        bool more = zmq_msg_more(&f);
        while (more) {   /* protocol frames are single: drop the rest */
            zmq_msg_t x;
            zmq_msg_init(&x);
            zmq_msg_recv(&x, c->sock, 0);
            more = zmq_msg_more(&x);
            zmq_msg_close(&x);
        }
        c->last_in_ms = clock_mono_ms();
        msg_t m;
        char err[256];
        if (msg_decode(c->reader, zmq_msg_data(&f), zmq_msg_size(&f), &m, err, sizeof err) ==
            QJ_E_OK) {
            s_handle(c, &m);
            n++;
        } else {
            log_warn("client: bad message from %s dropped: %s", c->endpoint, err);
        }
        zmq_msg_close(&f);
    }
    return n;
}

/* ---------------------------------------------------------- connection */

static int s_open(qj_client *c, char *err, size_t errlen)
{
    void *s = zmq_socket(c->zctx, ZMQ_DEALER);
    if (!s) {
        snprintf(err, errlen, "cannot create a socket: %s", zmq_strerror(errno));
        return -1;
    }
    int64_t maxmsg = QJ_MAX_MSG;
    int zero = 0;
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    /* Unlimited send queue: what we queue is bounded by max_inflight and
     * by what the application waits for, and a full queue would make
     * sends fail while the broker is away. */
    zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero);
    if (c->curve && keys_client_apply(s, &c->keys, err, errlen) != 0) {
        zmq_close(s);
        return -1;
    }
    if (zmq_connect(s, c->endpoint) != 0) {
        snprintf(err, errlen,
                 "cannot connect to '%s': %s (an endpoint looks like tcp://127.0.0.1:5555 or "
                 "ipc:///path/to/socket)",
                 c->endpoint, zmq_strerror(errno));
        zmq_close(s);
        return -1;
    }
    c->sock = s;
    c->welcomed = false;
    c->connected_ms = c->last_in_ms = c->last_out_ms = clock_mono_ms();
    s_send_hello(c);
    return 0;
}

static void s_reconnect(qj_client *c, const char *why)
{
    char err[256];
    c->reconnects++;
    log_info("client: %s: reconnecting to %s (reconnection %u)", why, c->endpoint,
             c->reconnects);
    zmq_close(c->sock);
    c->sock = NULL;
    if (s_open(c, err, sizeof err) < 0)
        log_error("client: %s", err);
}

/* Milliseconds until the next heartbeat or liveness deadline. */
static long s_next_timer(const qj_client *c, uint64_t now)
{
    uint64_t due = c->last_in_ms + (uint64_t)c->hb_ms * c->live;
    if (c->welcomed && c->last_out_ms + c->hb_ms < due)
        due = c->last_out_ms + c->hb_ms;
    return due > now ? (long)(due - now) : 0;
}

static void s_tick(qj_client *c)
{
    uint64_t now = clock_mono_ms();
    if (now - c->last_in_ms >= (uint64_t)c->hb_ms * c->live) {
        char why[128];
        snprintf(why, sizeof why, "no word from the broker for %" PRIu64 " ms",
                 now - c->last_in_ms);
        s_reconnect(c, why);
        return;
    }
    if (c->welcomed && now - c->last_out_ms >= c->hb_ms) {
        msg_t m = {0};
        m.cmd = MSG_HEARTBEAT;
        outbox_send(c, &m);
    }
}

/* One round of the socket loop: send what is queued, wait up to
 * timeout_ms (bounded by the next timer) for the broker, handle what
 * came, fire timers, run due callbacks. */
void client_pump(qj_client *c, long timeout_ms)
{
    if (c->embedded) {
        outbox_flush(c);
        client_run_callbacks(c);
        return;
    }
    outbox_flush(c);
    long t = s_next_timer(c, clock_mono_ms());
    if (timeout_ms >= 0 && timeout_ms < t)
        t = timeout_ms;
    zmq_pollitem_t it = {c->sock, 0, ZMQ_POLLIN, 0};
    if (c->sock && zmq_poll(&it, 1, t) > 0)
        s_drain(c);
    else if (!c->sock)
        usleep((useconds_t)(t > 0 ? t : 1) * 1000);
    if (c->sock)
        s_tick(c);
    else if (clock_mono_ms() - c->connected_ms >= c->hb_ms)
        s_reconnect(c, "no socket");
    outbox_flush(c);
    client_run_callbacks(c);
}

int qj_client_process(qj_client *c)
{
    if (c->embedded) {
        outbox_flush(c);
        client_run_callbacks(c);
        return 0;
    }
    int n = 0;
    for (int round = 0; round < 64; round++) {
        if (!c->sock)
            return -1;
        n += s_drain(c);
        s_tick(c);
        outbox_flush(c);
        /* ZMQ_FD is edge-triggered and a send may consume the edge:
         * keep going while ZMQ_EVENTS still says there is input. */
        int ev = 0;
        size_t len = sizeof ev;
        if (!c->sock || zmq_getsockopt(c->sock, ZMQ_EVENTS, &ev, &len) < 0 ||
            !(ev & ZMQ_POLLIN))
            break;
    }
    client_run_callbacks(c);
    return n;
}

int qj_client_fd(qj_client *c)
{
    if (c->embedded || !c->sock)
        return -1;
    int fd = -1;
    size_t len = sizeof fd;
    if (zmq_getsockopt(c->sock, ZMQ_FD, &fd, &len) < 0)
        return -1;
    return fd;
}

const char *qj_client_refusal(const qj_client *c)
{
    return c->refusal[0] ? c->refusal : NULL;
}

int qj_client_ready(qj_client *c, int timeout_ms)
{
    uint64_t deadline = clock_mono_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
    while (!c->welcomed) {
        uint64_t now = clock_mono_ms();
        if (c->refusal[0]) {
            errno = EACCES;
            return -1;
        }
        if (timeout_ms >= 0 && now >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        client_pump(c, timeout_ms < 0 ? 1000 : (long)(deadline - now));
    }
    return 0;
}

/* ------------------------------------------------------------ lifetime */

static qj_client *s_alloc(void)
{
    qj_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->reader = msg_reader_new();
    c->jobv = malloc(QJ_MAX_BATCH * sizeof *c->jobv);
    if (!c->reader || !c->jobv) {
        msg_reader_destroy(&c->reader);
        free(c->jobv);
        free(c);
        return NULL;
    }
    msgpack_sbuffer_init(&c->out);
    cmap_init(&c->by_ref);
    cmap_init(&c->by_id);
    c->next_ref = 1;
    c->hb_ms = CLIENT_HB_DEFAULT;
    c->live = CLIENT_LIVE_DEFAULT;
    c->max_msg = QJ_MAX_MSG;
    c->max_inflight = CLIENT_MAX_INFLIGHT;
    return c;
}

static void s_free(qj_client *c)
{
    job_detach_all(c);
    cmap_clear(&c->by_ref);
    cmap_clear(&c->by_id);
    free(c->batches);
    free(c->awaits.v);
    free(c->cancels.v);
    msgpack_sbuffer_destroy(&c->out);
    msg_reader_destroy(&c->reader);
    free(c->jobv);
    free(c->endpoint);
    explicit_bzero(&c->keys, sizeof c->keys);
    free(c);
}

qj_client *qj_client_new(const qj_options *o, char *err, size_t errlen)
{
    qj_options dflt;
    if (!o) {
        qj_options_init(&dflt);
        o = &dflt;
    }
    const char *ep = o->broker;
    if (!ep || !*ep)
        ep = getenv("QJOB_BROKER");
    if (!ep || !*ep)
        ep = QJ_DEFAULT_BROKER;
    if (o->max_inflight < 0 || o->batch_max < 0 || o->batch_max > QJ_MAX_BATCH ||
        o->heartbeat_ms < 0) {
        snprintf(err, errlen, "bad client options: max_inflight, heartbeat_ms must be >= 0 "
                              "and batch_max within 0..%d", QJ_MAX_BATCH);
        return NULL;
    }
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return NULL;
    }
    keys_client_t keys;
    int curve = keys_client_load(o->curve_secret, o->broker_key, &keys, err, errlen);
    if (curve < 0)
        return NULL;
    qj_client *c = s_alloc();
    if (!c || !(c->endpoint = strdup(ep)) || !(c->zctx = zmq_ctx_new())) {
        snprintf(err, errlen, "out of memory");
        if (c)
            s_free(c);
        return NULL;
    }
    if (o->max_inflight)
        c->max_inflight = (size_t)o->max_inflight;
    c->batch_max = (size_t)o->batch_max;
    c->hb_wish = o->heartbeat_ms;
    if (o->heartbeat_ms)
        c->hb_ms = (uint32_t)o->heartbeat_ms;
    randombytes_buf(c->cid, sizeof c->cid);
    c->curve = curve > 0;
    if (c->curve)
        c->keys = keys;
    explicit_bzero(&keys, sizeof keys);
    if (o->name && *o->name) {
        snprintf(c->name, sizeof c->name, "%s", o->name);
    } else {
        char host[64] = "localhost";
        gethostname(host, sizeof host - 1);
        snprintf(c->name, sizeof c->name, "%s:%ld", host, (long)getpid());
    }
    if (s_open(c, err, errlen) < 0) {
        zmq_ctx_term(c->zctx);
        s_free(c);
        return NULL;
    }
    return c;
}

qj_client *qj_client_new_embedded(const qj_embed_ops *ops)
{
    assert(ops && ops->send);
    qj_client *c = s_alloc();
    if (!c)
        return NULL;
    c->embedded = true;
    c->ops = *ops;
    c->welcomed = c->ever_welcomed = true;
    return c;
}

void qj_client_destroy(qj_client **self_p)
{
    qj_client *c = *self_p;
    if (!c)
        return;
    *self_p = NULL;
    if (!c->embedded) {
        if (c->sock && c->welcomed) {
            /* Give queued submits a chance to leave; the broker does the
             * rest.  BYE lets it forget us now rather than after
             * hb x liveness. */
            outbox_flush(c);
            msg_t m = {0};
            m.cmd = MSG_BYE;
            outbox_send(c, &m);
            int linger = 1000;
            zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
        }
        if (c->sock)
            zmq_close(c->sock);
        zmq_ctx_term(c->zctx);
    }
    s_free(c);
}

