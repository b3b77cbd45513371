/* outbox.c -- what a client has to send, and sending it.
 *
 * Nothing goes to the broker before WELCOME: submits, AWAIT and CANCEL
 * ids and requests wait here and leave in outbox_flush, packed as the
 * protocol allows (§5.4).  A reconnection rebuilds these queues
 * (client.c, s_resync), so nothing here needs to know about it.
 */
#include "client_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "clock.h"
#include "log.h"

static int s_ids_push(client_ids_t *v, uint64_t id)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        uint64_t *p = realloc(v->v, cap * sizeof *p);
        if (!p)
            return -1;
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = id;
    return 0;
}

int outbox_await(qj_client *c, uint64_t id)
{
    return s_ids_push(&c->awaits, id);
}

int outbox_cancel(qj_client *c, uint64_t id)
{
    return s_ids_push(&c->cancels, id);
}

static int s_send_frame(qj_client *c, const void *frame, size_t len)
{
    if (c->embedded)
        return c->ops.send(c->ops.arg, frame, len);
    if (!c->sock)
        return -1;
    if (zmq_send(c->sock, frame, len, ZMQ_DONTWAIT) < 0) {
        log_debug("client: send to %s failed: %s", c->endpoint, zmq_strerror(errno));
        return -1;
    }
    c->last_out_ms = clock_mono_ms();
    return 0;
}

int outbox_send(qj_client *c, const msg_t *m)
{
    char err[256];
    if (msg_encode(&c->out, m, err, sizeof err) < 0) {
        log_error("client: cannot encode %s: %s", msg_cmd_name(m->cmd), err);
        return -1;
    }
    return s_send_frame(c, c->out.data, c->out.size);
}

/* Ring of SUBMIT batches sent and not yet answered: the broker answers
 * each SUBMIT with one ACCEPTED or one ERROR, in order, so an ERROR about
 * a SUBMIT refers to the oldest batch still here. */
static void s_batch_push(qj_client *c, uint64_t seq)
{
    if (c->batch_count == c->batch_cap) {
        size_t cap = c->batch_cap ? c->batch_cap * 2 : 64;
        uint64_t *p = malloc(cap * sizeof *p);
        if (!p)
            return;   /* only costs precision in s_error's refusal */
        for (size_t i = 0; i < c->batch_count; i++)
            p[i] = c->batches[(c->batch_head + i) % c->batch_cap];
        free(c->batches);
        c->batches = p;
        c->batch_cap = cap;
        c->batch_head = 0;
    }
    c->batches[(c->batch_head + c->batch_count++) % c->batch_cap] = seq;
}

uint64_t outbox_batch_pop(qj_client *c)
{
    if (c->batch_count == 0)
        return 0;
    uint64_t seq = c->batches[c->batch_head];
    c->batch_head = (c->batch_head + 1) % c->batch_cap;
    c->batch_count--;
    batcher_answered(&c->batcher, seq, clock_mono_us());
    return seq;
}

/* Send queued submits in SUBMIT messages of at most batch_max jobs (when
 * automatic, the batcher's figure) and at most maxmsg bytes.  A job leaves
 * the queue only once its message is sent. */
static int s_flush_submits(qj_client *c)
{
    size_t per = c->batch_max ? c->batch_max : batcher_target(&c->batcher);
    size_t room = c->max_msg - CLIENT_FRAME_SLACK;
    while (c->q_head) {
        size_t n = 0, bytes = 0;
        for (qj_job *j = c->q_head; j && n < per; j = j->q_next) {
            const job_submit_t *s = &j->sub;
            size_t cost = s->task_len + s->queue_len + s->key_len + s->args_len +
                          CLIENT_JOB_OVERHEAD;
            if (n > 0 && bytes + cost > room)
                break;
            bytes += cost;
            msg_job_t *mj = &c->jobv[n++];
            memset(mj, 0, sizeof *mj);
            mj->ref = j->ref;
            mj->task = (msg_bytes_t){s->task, (uint32_t)s->task_len};
            if (s->args)
                mj->args = (msg_bytes_t){(const char *)s->args, (uint32_t)s->args_len};
            if (s->queue)
                mj->queue = (msg_bytes_t){s->queue, (uint32_t)s->queue_len};
            if (s->key)
                mj->key = (msg_bytes_t){s->key, (uint32_t)s->key_len};
            mj->pri = s->pri;
            mj->timeout_ms = s->timeout_ms;
            mj->retries = s->retries;
            mj->backoff_ms = s->backoff_ms;
            mj->at_us = s->at_us;
            mj->parent = s->parent;
            mj->t_submit = j->times.submitted;
            mj->detach = s->detach;
            mj->progress = s->progress;
        }
        msg_t m = {0};
        m.cmd = MSG_SUBMIT;
        m.jobs = c->jobv;
        m.njobs = (uint32_t)n;
        if (outbox_send(c, &m) < 0)
            return -1;
        uint64_t seq = ++c->next_batch;
        s_batch_push(c, seq);
        batcher_sent(&c->batcher, seq, (uint32_t)n, clock_mono_us());
        for (size_t i = 0; i < n; i++) {
            qj_job *j = c->q_head;
            c->q_head = j->q_next;
            j->q_next = NULL;
            j->queued = false;
            j->sent = true;
            j->batch = seq;
        }
        if (!c->q_head)
            c->q_tail = NULL;
        c->nqueued -= n;
    }
    return 0;
}

/* Send queued ids as AWAIT or CANCEL messages of at most 4096 ids. */
static int s_flush_ids(qj_client *c, client_ids_t *v, uint8_t cmd)
{
    size_t sent = 0;
    while (sent < v->n) {
        size_t n = v->n - sent < QJ_MAX_BATCH ? v->n - sent : QJ_MAX_BATCH;
        msg_t m = {0};
        m.cmd = cmd;
        m.ids = v->v + sent;
        m.nids = (uint32_t)n;
        if (cmd == MSG_CANCEL)
            m.rid = ++c->next_rid;
        if (outbox_send(c, &m) < 0)
            break;
        sent += n;
    }
    if (sent && sent < v->n)
        memmove(v->v, v->v + sent, (v->n - sent) * sizeof *v->v);
    v->n -= sent;
    return v->n ? -1 : 0;
}

static int s_flush_reqs(qj_client *c)
{
    for (client_req_t *r = c->reqs; r; r = r->next) {
        if (r->sent)
            continue;
        msg_t m = {0};
        m.cmd = r->cmd;
        m.rid = r->rid;
        m.ids = (uint64_t *)r->ids;
        m.nids = (uint32_t)r->nids;
        if (outbox_send(c, &m) < 0)
            return -1;
        r->sent = true;
    }
    return 0;
}

int outbox_flush(qj_client *c)
{
    if (!c->welcomed)
        return 0;
    int rc = 0;
    rc |= s_flush_submits(c);
    rc |= s_flush_ids(c, &c->awaits, MSG_AWAIT);
    rc |= s_flush_ids(c, &c->cancels, MSG_CANCEL);
    rc |= s_flush_reqs(c);
    return rc ? -1 : 0;
}


int qj_flush(qj_client *c)
{
    return outbox_flush(c);
}

void qj_client_batch_info(const qj_client *c, qj_batch_info *out)
{
    const batcher_t *b = &c->batcher;
    out->msg_us = b->msg_samples ? b->msg_us : 0;
    out->job_us = b->job_samples ? b->job_us : 0;
    out->batch = c->batch_max ? (unsigned)c->batch_max : batcher_target(b);
    out->share = BATCHER_SHARE;
    out->messages = b->messages;
    out->jobs = b->jobs;
}
