/* request.c -- requests answered by the broker (STATS, STATUS, CANCEL)
 * and their replies turned into JSON for the application.
 *
 * A request lives on the stack of the caller that waits for it, linked
 * into the client's list until its reply (or an ERROR with its rid)
 * arrives or the caller gives up; a late reply finds no request and is
 * dropped.  Requests go out in outbox_flush, so a reconnection before
 * the reply simply sends them again.
 */
#include "client_impl.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "clock.h"
#include "mpjson.h"

client_req_t *request_take(qj_client *c, uint64_t rid)
{
    for (client_req_t **p = &c->reqs; *p; p = &(*p)->next) {
        client_req_t *r = *p;
        if (r->rid == rid) {
            *p = r->next;
            r->next = NULL;
            return r;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ to JSON */

static json_t *s_str(msg_bytes_t b)
{
    return b.ptr ? json_stringn(b.ptr, b.len) : json_null();
}

static json_t *s_uint(uint64_t v)
{
    return json_integer((json_int_t)v);
}

static json_t *s_uints(const uint64_t *v, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++)
        json_array_append_new(a, s_uint(v[i]));
    return a;
}

/* The keys are those of PROTOCOL.md §5.3. */
static json_t *s_stats(const msg_stats_t *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "uptime", s_uint(s->uptime_ms));
    json_object_set_new(o, "clients", s_uint(s->clients));
    json_object_set_new(o, "workers", s_uint(s->workers));
    json_object_set_new(o, "submitted", s_uint(s->submitted));
    json_object_set_new(o, "done", s_uint(s->done));
    json_object_set_new(o, "failed", s_uint(s->failed));
    json_object_set_new(o, "retried", s_uint(s->retried));
    json_object_set_new(o, "lost", s_uint(s->lost));
    json_object_set_new(o, "cancelled", s_uint(s->cancelled));
    json_object_set_new(o, "bad", s_uint(s->bad_frames));
    json_t *by = json_object();
    for (int i = 0; i < 16; i++)
        if (s->bad_by_code[i])
            json_object_set_new(by, msg_err_name(i), s_uint(s->bad_by_code[i]));
    json_object_set_new(o, "bad_by", by);
    json_object_set_new(o, "rejected", s_uint(s->rejected));
    json_object_set_new(o, "kept", s_uint(s->results_kept));
    json_object_set_new(o, "rss", s_uint(s->rss_bytes));
    json_t *qs = json_array();
    for (uint32_t i = 0; i < s->nqueues; i++) {
        const msg_qstat_t *q = &s->queues[i];
        json_t *x = json_object();
        json_object_set_new(x, "name", s_str(q->name));
        json_object_set_new(x, "depth", s_uint(q->depth));
        json_object_set_new(x, "delayed", s_uint(q->delayed));
        json_object_set_new(x, "running", s_uint(q->running));
        json_object_set_new(x, "workers", s_uint(q->workers));
        json_object_set_new(x, "submitted", s_uint(q->submitted));
        json_object_set_new(x, "done", s_uint(q->done));
        json_object_set_new(x, "failed", s_uint(q->failed));
        json_object_set_new(x, "retried", s_uint(q->retried));
        json_object_set_new(x, "dead", s_uint(q->dead));
        json_object_set_new(x, "comm_us", s_uint(q->comm_us));
        json_object_set_new(x, "compute_us", s_uint(q->compute_us));
        json_object_set_new(x, "dispatched", s_uint(q->dispatched));
        json_object_set_new(x, "wait_us", s_uint(q->wait_us));
        json_object_set_new(x, "done_recent", s_uint(q->done_recent));
        json_object_set_new(x, "rate_secs", s_uint(q->rate_secs));
        json_object_set_new(x, "wait", s_uints(q->wait, q->nwait));
        json_object_set_new(x, "b_jobs", s_uints(q->b_jobs, q->nb_jobs));
        json_object_set_new(x, "b_comm_us", s_uints(q->b_comm_us, q->nb_comm_us));
        json_object_set_new(x, "b_compute_us", s_uints(q->b_compute_us, q->nb_compute_us));
        json_array_append_new(qs, x);
    }
    json_object_set_new(o, "queues", qs);
    json_t *ws = json_array();
    for (uint32_t i = 0; i < s->nworkers; i++) {
        const msg_wstat_t *w = &s->workers_list[i];
        json_t *x = json_object();
        json_object_set_new(x, "name", s_str(w->name));
        json_object_set_new(x, "slots", s_uint(w->slots));
        json_object_set_new(x, "busy", s_uint(w->busy));
        json_object_set_new(x, "done", s_uint(w->done));
        json_object_set_new(x, "idle_ms", s_uint(w->idle_ms));
        json_array_append_new(ws, x);
    }
    json_object_set_new(o, "wlist", ws);
    json_object_set_new(o, "slots", s_uint(s->slots));
    json_object_set_new(o, "busy", s_uint(s->busy));
    json_object_set_new(o, "dispatched", s_uint(s->dispatched));
    json_object_set_new(o, "jbytes", s_uint(s->journal_bytes));
    json_object_set_new(o, "jdisk", s_uint(s->journal_disk));
    json_object_set_new(o, "fsyncs", s_uint(s->fsyncs));
    json_object_set_new(o, "fsync_us", s_uint(s->fsync_us));
    json_object_set_new(o, "wait_le", s_uints(s->wait_le, s->nwait_le));
    return o;
}

static json_t *s_times(const msg_times_t *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "submitted", s_uint(t->submitted));
    json_object_set_new(o, "queued", s_uint(t->queued));
    json_object_set_new(o, "dispatched", s_uint(t->dispatched));
    json_object_set_new(o, "started", s_uint(t->started));
    json_object_set_new(o, "finished", s_uint(t->finished));
    return o;
}

/* One STATUS_REP item: where the job is and, once done, how it ended. */
static json_t *s_status(const msg_result_t *r)
{
    bool done = r->state == MSG_STATE_DONE || r->state == MSG_STATE_DEAD;
    json_t *o = json_object();
    json_object_set_new(o, "id", s_uint(r->id));
    json_object_set_new(o, "state", json_string(msg_state_name(r->state)));
    if (done)
        json_object_set_new(o, "status", json_string(msg_st_name(r->st)));
    else if (r->state == MSG_STATE_UNKNOWN)
        json_object_set_new(o, "status", json_string(msg_st_name(MSG_ST_UNKNOWN)));
    else
        json_object_set_new(o, "status", json_null());
    json_object_set_new(o, "queue", s_str(r->queue));
    json_object_set_new(o, "task", s_str(r->task));
    json_t *v = NULL;
    if (r->value.ptr) {
        char err[128];
        v = mpjson_to_json(r->value.ptr, r->value.len, err, sizeof err);
    }
    json_object_set_new(o, "value", v ? v : json_null());
    json_object_set_new(o, "error", s_str(r->error));
    json_object_set_new(o, "attempts", s_uint(r->attempts));
    json_object_set_new(o, "worker", s_str(r->worker));
    if (r->prog_total || r->prog_done || r->prog_note.ptr) {
        json_t *p = json_object();
        json_object_set_new(p, "done", s_uint(r->prog_done));
        json_object_set_new(p, "total", s_uint(r->prog_total));
        json_object_set_new(p, "note", s_str(r->prog_note));
        json_object_set_new(o, "progress", p);
    } else {
        json_object_set_new(o, "progress", json_null());
    }
    json_object_set_new(o, "times", s_times(&r->t));
    return o;
}

static const char *s_outcome_name(uint8_t o)
{
    static const char *const names[] = {"removed", "requested", "done", "unknown"};
    return o < 4 ? names[o] : "?";
}

static char *s_dump(json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    return s;
}

/* Fill the waiting request with the reply to it, and wake its waiter.
 * Returns false if nobody waits for it (the answer to qj_cancel, or to a
 * request given up). */
bool request_reply(qj_client *c, const msg_t *m)
{
    client_req_t *r = request_take(c, m->rid);
    if (!r)
        return false;
    json_t *a = NULL;
    switch (m->cmd) {
    case MSG_STATS_REP:
        r->json = s_dump(s_stats(&m->stats));
        break;
    case MSG_STATUS_REP:
        a = json_array();
        for (uint32_t i = 0; i < m->nresults; i++)
            json_array_append_new(a, s_status(&m->results[i]));
        r->json = s_dump(a);
        break;
    case MSG_CANCEL_REP:
        a = json_array();
        for (uint32_t i = 0; i < m->noutcomes; i++)
            json_array_append_new(a, json_pack("{s:I,s:s}", "id", (json_int_t)m->outcomes[i].id,
                                               "outcome", s_outcome_name(m->outcomes[i].outcome)));
        r->json = s_dump(a);
        break;
    default:
        break;
    }
    if (!r->json)
        snprintf(r->err, sizeof r->err, "out of memory while reading the broker's %s",
                 msg_cmd_name(m->cmd));
    r->done = true;
    client_wake(r->waiter);
    return true;
}

/* Refuse the request rid with the broker's ERROR.  Returns true if there
 * was such a request. */
bool request_refused(qj_client *c, const msg_t *m)
{
    client_req_t *r = m->rid ? request_take(c, m->rid) : NULL;
    if (!r)
        return false;
    snprintf(r->err, sizeof r->err, "the broker refused %s: %s: %.*s", msg_cmd_name(r->cmd),
             msg_err_name(m->code), (int)m->text.len, m->text.ptr ? m->text.ptr : "");
    r->done = true;
    client_wake(r->waiter);
    return true;
}

/* Send one request and wait for its reply.  Returns 0 with req->json set,
 * or -1 with a message. */
static int s_request(qj_client *c, client_req_t *req, int timeout_ms, char *err, size_t errlen)
{
    req->rid = ++c->next_rid;
    req->next = c->reqs;
    c->reqs = req;
    client_waiter_t w = {0};
    bool blocked = false;
    uint64_t start = c->embedded ? 0 : clock_mono_ms();
    if (c->embedded) {
        assert(sched_current() && "an embedded client waits only inside a task coroutine");
        w.sched = sched_current();
        w.co = coro_current();
        req->waiter = &w;
        start = sched_now_ms(w.sched);
    }
    for (;;) {
        outbox_flush(c);
        if (req->done)
            break;
        uint64_t now = c->embedded ? sched_now_ms(w.sched) : clock_mono_ms();
        long left = timeout_ms < 0 ? -1 : (long)timeout_ms - (long)(now - start);
        if (timeout_ms >= 0 && left <= 0)
            break;
        if (c->embedded) {
            client_block(c, &blocked);
            sched_park(left);
        } else {
            client_pump(c, left);
        }
    }
    client_unblock(c, blocked);
    if (!req->done) {
        request_take(c, req->rid);
        snprintf(err, errlen,
                 "no answer from the broker at %s within %d ms: check that qbroker runs there",
                 c->endpoint ? c->endpoint : "(host)", timeout_ms);
        errno = ETIMEDOUT;
        return -1;
    }
    if (!req->json) {
        snprintf(err, errlen, "%s", req->err);
        return -1;
    }
    return 0;
}

char *qj_stats_json(qj_client *c, int timeout_ms, char *err, size_t errlen)
{
    client_req_t req = {0};
    req.cmd = MSG_STATS;
    return s_request(c, &req, timeout_ms, err, errlen) < 0 ? NULL : req.json;
}

/* STATUS and CANCEL take at most 4096 ids a message: ask in chunks and
 * join the JSON arrays. */
static char *s_ids_request(qj_client *c, uint8_t cmd, const uint64_t *ids, size_t n,
                           int timeout_ms, char *err, size_t errlen)
{
    if (n == 0) {
        snprintf(err, errlen, "no job ids given");
        return NULL;
    }
    msgpack_sbuffer all;
    msgpack_sbuffer_init(&all);
    msgpack_sbuffer_write(&all, "[", 1);
    for (size_t off = 0; off < n; off += QJ_MAX_BATCH) {
        client_req_t req = {0};
        req.cmd = cmd;
        req.ids = ids + off;
        req.nids = n - off < QJ_MAX_BATCH ? n - off : QJ_MAX_BATCH;
        if (s_request(c, &req, timeout_ms, err, errlen) < 0) {
            msgpack_sbuffer_destroy(&all);
            return NULL;
        }
        size_t len = strlen(req.json);   /* "[...]": keep what is inside */
        if (len > 2) {
            if (all.size > 1)
                msgpack_sbuffer_write(&all, ",", 1);
            msgpack_sbuffer_write(&all, req.json + 1, len - 2);
        }
        free(req.json);
    }
    msgpack_sbuffer_write(&all, "]", 2);   /* with the NUL */
    return all.data;
}

char *qj_status_json(qj_client *c, const uint64_t *ids, size_t n, int timeout_ms, char *err,
                     size_t errlen)
{
    return s_ids_request(c, MSG_STATUS, ids, n, timeout_ms, err, errlen);
}

char *qj_cancel_json(qj_client *c, const uint64_t *ids, size_t n, int timeout_ms, char *err,
                     size_t errlen)
{
    return s_ids_request(c, MSG_CANCEL, ids, n, timeout_ms, err, errlen);
}
