/* job.c -- qj_job handles: submitting, waiting, callbacks, cancelling,
 * and what a finished job carries.
 *
 * A handle belongs to the caller.  The client points at it from its
 * tables while it waits for the broker: by ref until the submit is
 * accepted, by id until the result arrives.  A handle freed while its
 * submit is unanswered is handed to the client (owned_by_client), which
 * frees it when the answer comes; one freed later is simply taken out of
 * the id table, and its result is dropped when it arrives.
 */
#include "client_impl.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "asan.h"
#include "clock.h"
#include "mpck.h"
#include "mpjson.h"

/* Handles kept for reuse are poisoned under ASan, so that a use after
 * qj_job_free is still reported. */
#define SPARE_POISON(j) QJ_POISON((j), sizeof(qj_job))
#define SPARE_UNPOISON(j) QJ_UNPOISON((j), sizeof(qj_job))

void qj_submit_opts_init(qj_submit_opts *o)
{
    memset(o, 0, sizeof *o);
}

const char *qj_status_name(qj_status st)
{
    switch (st) {
    case QJ_PENDING: return "pending";
    case QJ_REFUSED: return "refused";
    default: return msg_st_name((int)st);
    }
}

/* ------------------------------------------------------------ memory */

/* A zeroed handle for client c: one kept for reuse, else a new one.
 * NULL if out of memory.  (Of a reused one, what follows sub is not
 * zeroed: nothing reads it before it is written.) */
static qj_job *s_new(qj_client *c)
{
    qj_job *j = c->spare;
    if (!j)
        return calloc(1, sizeof *j);
    SPARE_UNPOISON(j);
    c->spare = j->q_next;
    c->nspare--;
    memset(j, 0, offsetof(qj_job, sub) + offsetof(job_submit_t, inl));
    return j;
}

static void s_free_submit(qj_job *j)
{
    if (j->sub.task != j->sub.inl)
        free(j->sub.task);   /* one block: task, queue, key, args */
    memset(&j->sub, 0, offsetof(job_submit_t, inl));
}

static void s_free_value(qj_job *j)
{
    if (j->value != j->value_inl)
        free(j->value);
    j->value = NULL;
    j->value_len = 0;
}

static void s_free_worker(qj_job *j)
{
    if (j->worker != j->worker_inl)
        free(j->worker);
    j->worker = NULL;
}

/* Free what j owns, and j: kept for its client's next submit while the
 * client is there and keeps fewer than CLIENT_SPARE_MAX. */
static void s_free(qj_job *j)
{
    s_free_submit(j);
    s_free_value(j);
    s_free_worker(j);
    free(j->error);
    free(j->prog_note);
    qj_client *c = j->client;
    if (c && c->nspare < CLIENT_SPARE_MAX) {
        j->q_next = c->spare;
        c->spare = j;
        c->nspare++;
        SPARE_POISON(j);
        return;
    }
    free(j);
}

static char *s_strndup(const char *p, size_t len)
{
    return p ? strndup(p, len) : NULL;
}

/* Take j out of the id table's chain for its id. */
static void s_unlink_id(qj_client *c, qj_job *j)
{
    qj_job *head = cmap_get(&c->by_id, j->id);
    if (head == j) {
        if (j->same_next)
            cmap_put(&c->by_id, j->id, j->same_next);   /* replaces: cannot fail */
        else
            cmap_del(&c->by_id, j->id);
    } else {
        for (qj_job *p = head; p; p = p->same_next)
            if (p->same_next == j) {
                p->same_next = j->same_next;
                break;
            }
    }
    j->same_next = NULL;
    j->in_id = false;
}

static int s_link_id(qj_client *c, qj_job *j)
{
    qj_job *head = cmap_get(&c->by_id, j->id);
    if (head) {
        j->same_next = head->same_next;
        head->same_next = j;
    } else if (cmap_put(&c->by_id, j->id, j) < 0) {
        return -1;
    }
    j->in_id = true;
    return 0;
}

static void s_unlink_cb(qj_client *c, qj_job *j)
{
    if (j->cb_prev)
        j->cb_prev->cb_next = j->cb_next;
    else
        c->cb_head = j->cb_next;
    if (j->cb_next)
        j->cb_next->cb_prev = j->cb_prev;
    else
        c->cb_tail = j->cb_prev;
    j->cb_prev = j->cb_next = NULL;
    j->cb_due = false;
}

void qj_job_free(qj_job **jp)
{
    qj_job *j = *jp;
    if (!j)
        return;
    *jp = NULL;
    assert(!j->waiter && "a handle was freed while a coroutine waits on it");
    j->cb = NULL;
    if (j->cb_due)
        s_unlink_cb(j->client, j);
    if (j->in_ref) {
        j->owned_by_client = true;   /* the client frees it when answered */
        return;
    }
    if (j->in_id)
        s_unlink_id(j->client, j);
    s_free(j);
}

void job_detach_all(qj_client *c)
{
    size_t pos = 0;
    qj_job *j;
    while ((j = cmap_next(&c->by_ref, &pos, NULL))) {
        if (j->owned_by_client) {
            s_free(j);
            continue;
        }
        j->in_ref = j->queued = false;
        j->q_next = NULL;
        j->client = NULL;
    }
    pos = 0;
    while ((j = cmap_next(&c->by_id, &pos, NULL))) {
        while (j) {
            qj_job *next = j->same_next;
            j->in_id = false;
            j->same_next = NULL;
            j->client = NULL;
            j = next;
        }
    }
    while (c->cb_head) {
        j = c->cb_head;
        s_unlink_cb(c, j);
        j->cb = NULL;
        j->client = NULL;
    }
    c->q_head = c->q_tail = NULL;
    while ((j = c->spare)) {
        SPARE_UNPOISON(j);
        c->spare = j->q_next;
        free(j);
    }
    c->nspare = 0;
}

/* ------------------------------------------------------------ submit */

static int s_check(const char *task, size_t args_len, const qj_submit_opts *o, char *err,
                   size_t errlen)
{
    size_t tl = strlen(task);
    if (tl == 0 || tl > QJ_MAX_TASK_NAME) {
        snprintf(err, errlen, "task name must be 1 to %d bytes (got %zu)", QJ_MAX_TASK_NAME, tl);
        return -1;
    }
    if (o->queue && (strlen(o->queue) == 0 || strlen(o->queue) > QJ_MAX_QUEUE_NAME)) {
        snprintf(err, errlen, "queue name must be 1 to %d bytes", QJ_MAX_QUEUE_NAME);
        return -1;
    }
    if (o->key && strlen(o->key) > QJ_MAX_KEY) {
        snprintf(err, errlen, "idempotency key must be at most %d bytes", QJ_MAX_KEY);
        return -1;
    }
    if (args_len > QJ_MAX_ARGS) {
        snprintf(err, errlen, "arguments are %zu bytes; at most %u are allowed", args_len,
                 QJ_MAX_ARGS);
        return -1;
    }
    if (o->priority < -128 || o->priority > 127) {
        snprintf(err, errlen, "priority must be within -128..127 (got %d)", o->priority);
        return -1;
    }
    if (!(o->timeout_s >= 0 && o->timeout_s * 1000 <= UINT32_MAX) ||
        !(o->backoff_s >= 0 && o->backoff_s * 1000 <= UINT32_MAX) || o->retries < 0 ||
        !(o->delay_s >= 0) || !(o->at >= 0)) {
        snprintf(err, errlen, "timeout, backoff, retries, delay and at must be >= 0 "
                              "(timeout and backoff below 49 days)");
        return -1;
    }
    return 0;
}

static int s_fill_submit(qj_job *j, const char *task, const void *args, size_t args_len,
                         const qj_submit_opts *o)
{
    job_submit_t *s = &j->sub;
    s->task_len = strlen(task);
    s->queue_len = o->queue ? strlen(o->queue) : 0;
    s->key_len = o->key ? strlen(o->key) : 0;
    s->args_len = args ? args_len : 0;
    size_t size = s->task_len + 1 + s->queue_len + 1 + s->key_len + 1 + s->args_len;
    char *p = size <= sizeof s->inl ? s->inl : malloc(size);
    if (!p)
        return -1;
    s->task = p;
    memcpy(p, task, s->task_len + 1);
    p += s->task_len + 1;
    if (o->queue) {
        s->queue = p;
        memcpy(p, o->queue, s->queue_len + 1);
    }
    p += s->queue_len + 1;
    if (o->key) {
        s->key = p;
        memcpy(p, o->key, s->key_len + 1);
    }
    p += s->key_len + 1;
    if (s->args_len) {
        s->args = (unsigned char *)p;
        memcpy(p, args, s->args_len);
    }
    s->pri = o->priority;
    s->timeout_ms = o->timeout_s > 0 ? (uint32_t)llround(o->timeout_s * 1000) : 0;
    s->retries = (uint32_t)o->retries;
    s->backoff_ms = o->backoff_s > 0 ? (uint32_t)llround(o->backoff_s * 1000) : 0;
    if (o->at > 0)
        s->at_us = (uint64_t)llround(o->at * 1e6);
    else if (o->delay_s > 0)
        s->at_us = clock_wall_us() + (uint64_t)llround(o->delay_s * 1e6);
    s->detach = o->detach;
    s->progress = o->progress;
    return 0;
}

qj_job *qj_submit(qj_client *c, const char *task, const void *args, size_t args_len,
                  const qj_submit_opts *o, char *err, size_t errlen)
{
    assert(c && task);
    qj_submit_opts dflt;
    if (!o) {
        qj_submit_opts_init(&dflt);
        o = &dflt;
    }
    if (!args)
        args_len = 0;
    if (s_check(task, args_len, o, err, errlen) < 0)
        return NULL;
    if (args_len && mpck_check(args, args_len, &mpck_default_limits, err, errlen) < 0)
        return NULL;
    if (c->inflight >= c->max_inflight)
        client_wait_room(c);

    qj_job *j = s_new(c);
    if (!j)
        goto nomem;
    j->client = c;
    if (s_fill_submit(j, task, args, args_len, o) < 0) {
        s_free(j);
        goto nomem;
    }
    j->status = QJ_PENDING;
    j->ref = c->next_ref++;
    j->sub.parent = client_parent(c);
    j->want = !o->detach;
    j->times.submitted = clock_wall_us();
    if (cmap_put(&c->by_ref, j->ref, j) < 0) {
        s_free(j);
        goto nomem;
    }
    j->in_ref = j->queued = true;
    if (c->q_tail)
        c->q_tail->q_next = j;
    else
        c->q_head = j;
    c->q_tail = j;
    c->nqueued++;
    c->inflight++;
    /* A message's worth is queued: it leaves now (long jobs: each at once). */
    if (c->nqueued >= (c->batch_max ? c->batch_max : batcher_target(&c->batcher)))
        outbox_flush(c);
    return j;
nomem:
    snprintf(err, errlen, "out of memory");
    return NULL;
}

qj_job *qj_submit_json(qj_client *c, const char *task, const char *args_json,
                       const qj_submit_opts *o, char *err, size_t errlen)
{
    if (!args_json)
        return qj_submit(c, task, NULL, 0, o, err, errlen);
    msgpack_sbuffer b;
    msgpack_sbuffer_init(&b);
    char why[200];
    qj_job *j = NULL;
    if (mpjson_from_text(args_json, &b, why, sizeof why) < 0)
        snprintf(err, errlen, "bad JSON args at %s", why);
    else
        j = qj_submit(c, task, b.data, b.size, o, err, errlen);
    msgpack_sbuffer_destroy(&b);
    return j;
}

/* Complete a handle that never reached the broker's tables. */
static void s_done_now(qj_job *j, qj_status st, const char *error)
{
    j->status = st;
    j->error = error ? strdup(error) : NULL;
    j->done_seq = j->client ? ++j->client->done_seq : 0;
    j->times.delivered = clock_wall_us();
}

qj_job *qj_attach(qj_client *c, uint64_t id)
{
    assert(c);
    qj_job *j = s_new(c);
    if (!j)
        return NULL;
    j->client = c;
    j->id = id;
    j->status = QJ_PENDING;
    j->want = true;
    if (id == 0) {
        s_done_now(j, QJ_UNKNOWN, "job id 0 does not exist");
        return j;
    }
    if (s_link_id(c, j) < 0 || outbox_await(c, id) < 0) {
        if (j->in_id)
            s_unlink_id(c, j);
        s_free(j);
        return NULL;
    }
    return j;
}

/* ----------------------------------------------- what the client tells */

static void s_notify(qj_job *j)
{
    qj_client *c = j->client;
    if (j->waiter) {
        client_wake(j->waiter);
        j->waiter = NULL;
    }
    if (j->status != QJ_PENDING && j->cb && !j->cb_due) {
        j->cb_due = true;
        j->cb_prev = c->cb_tail;
        if (c->cb_tail)
            c->cb_tail->cb_next = j;
        else
            c->cb_head = j;
        c->cb_tail = j;
    }
}

/* Ask for the result of an accepted job not yet waited for (a detached
 * submit the application now awaits). */
static void s_want(qj_job *j)
{
    if (j->want || j->status != QJ_PENDING || !j->client)
        return;
    j->want = true;
    if (j->id && !j->in_ref && s_link_id(j->client, j) == 0)
        outbox_await(j->client, j->id);
}

bool job_accepted(qj_job *j, uint64_t id, bool has_result)
{
    qj_client *c = j->client;
    bool detached = j->sub.detach;
    j->id = id;
    s_free_submit(j);
    if (j->owned_by_client) {
        s_free(j);
        return false;
    }
    if (j->want && !has_result) {
        if (s_link_id(c, j) == 0 && detached)
            outbox_await(c, id);
    }
    if (j->cancel_wanted)
        outbox_cancel(c, id);
    s_notify(j);
    return j->want;
}

void job_refused(qj_job *j, const char *code, const char *text, size_t len)
{
    s_free_submit(j);
    if (j->owned_by_client) {
        s_free(j);
        return;
    }
    char msg[QJ_MAX_ERROR + 64];
    snprintf(msg, sizeof msg, "refused by the broker (%s): %.*s", code, (int)len,
             text ? text : "");
    s_done_now(j, QJ_REFUSED, msg);
    s_notify(j);
}

/* Copy a result's worker name into j (inline if it fits). */
static void s_set_worker(qj_job *j, msg_bytes_t w)
{
    s_free_worker(j);
    if (!w.ptr)
        return;
    if (w.len < sizeof j->worker_inl) {
        memcpy(j->worker_inl, w.ptr, w.len);
        j->worker_inl[w.len] = '\0';
        j->worker = j->worker_inl;
        return;
    }
    j->worker = strndup(w.ptr, w.len);
}

void job_finish(qj_job *j, const msg_result_t *r, uint64_t now_us)
{
    qj_client *c = j->client;
    j->in_id = false;
    j->same_next = NULL;
    j->status = r->st <= MSG_ST_UNKNOWN ? (qj_status)r->st : QJ_ERROR;
    s_free_value(j);
    if (r->value.ptr && r->value.len) {
        j->value = r->value.len <= sizeof j->value_inl ? j->value_inl : malloc(r->value.len);
        if (j->value) {
            memcpy(j->value, r->value.ptr, r->value.len);
            j->value_len = r->value.len;
        }
    }
    free(j->error);
    j->error = s_strndup(r->error.ptr, r->error.len);
    if (!j->error && j->status == QJ_UNKNOWN) {
        char msg[96];
        snprintf(msg, sizeof msg, "the broker has no job %" PRIu64 " (never existed, or its "
                                  "result expired)", j->id);
        j->error = strdup(msg);
    }
    s_set_worker(j, r->worker);
    j->attempts = r->attempts;
    uint64_t submitted = j->times.submitted;
    j->times.submitted = r->t.submitted ? r->t.submitted : submitted;
    j->times.queued = r->t.queued;
    j->times.dispatched = r->t.dispatched;
    j->times.started = r->t.started;
    j->times.finished = r->t.finished;
    if (r->st == MSG_ST_OK && r->t.started && r->t.finished >= r->t.started)
        batcher_job(&c->batcher, r->t.finished - r->t.started);
    j->times.delivered = now_us;
    j->done_seq = ++c->done_seq;
    s_notify(j);
}

void job_progress(qj_job *j, const msg_t *m)
{
    j->has_prog = true;
    j->prog_done = m->done;
    j->prog_total = m->total;
    free(j->prog_note);
    j->prog_note = s_strndup(m->note.ptr, m->note.len);
}

/* ------------------------------------------------------------ waiting */

typedef enum { WAIT_ACCEPTED, WAIT_ALL, WAIT_ANY } wait_mode_t;

typedef struct jobwait {
    qj_job *const *jobs;
    size_t n;
    size_t next;          /* WAIT_ALL: jobs before it are done */
    wait_mode_t mode;
    int found;            /* WAIT_ANY: index of the first finished */
} jobwait_t;

static bool s_done(const qj_job *j)
{
    return j->status != QJ_PENDING;
}

/* Is the wait over?  If not and w is given (embedded), register w on what
 * can end it. */
static bool s_ready(jobwait_t *jw, client_waiter_t *w)
{
    switch (jw->mode) {
    case WAIT_ACCEPTED: {
        qj_job *j = jw->jobs[0];
        if (j->id || s_done(j))
            return true;
        j->waiter = w;
        return false;
    }
    case WAIT_ALL:
        while (jw->next < jw->n && s_done(jw->jobs[jw->next]))
            jw->next++;
        if (jw->next == jw->n)
            return true;
        jw->jobs[jw->next]->waiter = w;
        return false;
    case WAIT_ANY: {
        uint64_t best = UINT64_MAX;
        for (size_t i = 0; i < jw->n; i++)
            if (s_done(jw->jobs[i]) && jw->jobs[i]->done_seq < best) {
                best = jw->jobs[i]->done_seq;
                jw->found = (int)i;
            }
        if (jw->found >= 0)
            return true;
        for (size_t i = 0; w && i < jw->n; i++)
            jw->jobs[i]->waiter = w;
        return false;
    }
    }
    return true;
}

static int s_wait(jobwait_t *jw, int timeout_ms)
{
    qj_client *c = NULL;
    for (size_t i = 0; i < jw->n; i++) {
        assert(jw->jobs[i]);
        if (!s_done(jw->jobs[i]) && jw->jobs[i]->client) {
            assert(!c || c == jw->jobs[i]->client);
            c = jw->jobs[i]->client;
        }
        if (jw->mode != WAIT_ACCEPTED)
            s_want(jw->jobs[i]);
    }
    if (s_ready(jw, NULL))
        return 0;
    if (!c) {   /* pending handles whose client is gone */
        errno = ENOTCONN;
        return -1;
    }
    if (!c->embedded) {
        uint64_t start = clock_mono_ms();
        for (;;) {
            outbox_flush(c);
            client_run_callbacks(c);
            if (s_ready(jw, NULL))
                return 0;
            long left = timeout_ms < 0 ? -1 : timeout_ms - (long)(clock_mono_ms() - start);
            if (timeout_ms >= 0 && left <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            client_pump(c, left);
        }
    }
    assert(sched_current() && "an embedded client waits only inside a task coroutine");
    client_waiter_t w = {sched_current(), coro_current(), NULL};
    uint64_t start = sched_now_ms(w.sched);
    bool blocked = false;
    int rc;
    for (;;) {
        outbox_flush(c);
        if (s_ready(jw, &w)) {
            rc = 0;
            break;
        }
        if (client_stopping(c)) {
            errno = ECANCELED;
            rc = -1;
            break;
        }
        long left = timeout_ms < 0 ? -1
                                   : timeout_ms - (long)(sched_now_ms(w.sched) - start);
        if (timeout_ms >= 0 && left <= 0) {
            errno = ETIMEDOUT;
            rc = -1;
            break;
        }
        client_block(c, &blocked);
        sched_park(left);
    }
    for (size_t i = 0; i < jw->n; i++)
        if (jw->jobs[i]->waiter == &w)
            jw->jobs[i]->waiter = NULL;
    client_unblock(c, blocked);
    return rc;
}

int qj_accepted(qj_job *j, int timeout_ms)
{
    jobwait_t jw = {&j, 1, 0, WAIT_ACCEPTED, -1};
    if (s_wait(&jw, timeout_ms) < 0)
        return -1;
    if (!j->id) {
        errno = ECONNREFUSED;
        return -1;
    }
    return 0;
}

int qj_await(qj_job *j, int timeout_ms)
{
    jobwait_t jw = {&j, 1, 0, WAIT_ALL, -1};
    return s_wait(&jw, timeout_ms);
}

int qj_gather(qj_job *const *jobs, size_t n, int timeout_ms)
{
    jobwait_t jw = {jobs, n, 0, WAIT_ALL, -1};
    return s_wait(&jw, timeout_ms);
}

int qj_wait_any(qj_job *const *jobs, size_t n, int timeout_ms)
{
    if (n == 0) {
        errno = EINVAL;
        return -1;
    }
    jobwait_t jw = {jobs, n, 0, WAIT_ANY, -1};
    if (s_wait(&jw, timeout_ms) < 0)
        return -1;
    return jw.found;
}

void qj_on_done(qj_job *j, void (*cb)(qj_job *j, void *arg), void *arg)
{
    assert(j && cb);
    if (s_done(j)) {
        cb(j, arg);
        return;
    }
    j->cb = cb;
    j->cb_arg = arg;
    s_want(j);
}

int qj_cancel(qj_job *j, char *err, size_t errlen)
{
    if (s_done(j)) {
        snprintf(err, errlen, "job %" PRIu64 " has already finished (%s): nothing to cancel",
                 j->id, qj_status_name(j->status));
        return -1;
    }
    if (!j->client) {
        snprintf(err, errlen, "the client of this handle was destroyed: cannot cancel");
        return -1;
    }
    if (!j->id) {
        j->cancel_wanted = true;   /* sent as soon as the broker gives an id */
        return 0;
    }
    if (outbox_cancel(j->client, j->id) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    outbox_flush(j->client);
    return 0;
}

/* ----------------------------------------------------------- accessors */

uint64_t qj_job_id(const qj_job *j) { return j->id; }
bool qj_job_done(const qj_job *j) { return s_done(j); }
qj_status qj_job_status(const qj_job *j) { return j->status; }
const char *qj_job_error(const qj_job *j) { return j->error; }
uint32_t qj_job_attempts(const qj_job *j) { return j->attempts; }
const qj_times *qj_job_times(const qj_job *j) { return &j->times; }
const char *qj_job_worker(const qj_job *j) { return j->worker; }

const void *qj_job_value(const qj_job *j, size_t *len)
{
    if (len)
        *len = j->value_len;
    return j->value;
}

char *qj_job_value_json(const qj_job *j)
{
    if (!s_done(j))
        return NULL;
    char err[128];
    json_t *v = mpjson_to_json(j->value, j->value_len, err, sizeof err);
    if (!v)
        return NULL;
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(v);
    return s;
}

bool qj_job_progress(const qj_job *j, uint64_t *done, uint64_t *total, const char **note)
{
    if (!j->has_prog)
        return false;
    if (done)
        *done = j->prog_done;
    if (total)
        *total = j->prog_total;
    if (note)
        *note = j->prog_note;
    return true;
}
