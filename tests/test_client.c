/* test_client.c -- the client library driven through its embedded mode
 * (embed.h): no socket, the test is the host.  It captures the frames the
 * client sends, decodes them with the real codec, feeds back broker
 * messages, and runs task coroutines on a scheduler with an injected
 * clock, so waits, timeouts and wake-ups are checked without timing.
 * The socket mode is tested against a fake broker in test_client_socket.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "msg.h"
#include "qjob.h"
#include "scheduler.h"

/* ------------------------------------------------------------ the host */

#define MAX_FRAMES 64

typedef struct host {
    sched_t *s;
    uint64_t now;                 /* the scheduler's clock, ms */
    qj_client *c;
    msg_reader_t *rd;
    void *frames[MAX_FRAMES];
    size_t lens[MAX_FRAMES];
    int nframes;
    uint64_t current;             /* current_job() answer */
    int blocks, unblocks;
    int send_fail;                /* make send() fail */
    bool stopping;                /* stopping() answer: the job was cancelled */
} host_t;

static int h_send(void *arg, const void *frame, size_t len)
{
    host_t *h = arg;
    if (h->send_fail)
        return -1;
    assert_true(h->nframes < MAX_FRAMES);
    h->frames[h->nframes] = malloc(len);
    memcpy(h->frames[h->nframes], frame, len);
    h->lens[h->nframes++] = len;
    return 0;
}

static uint64_t h_current(void *arg) { return ((host_t *)arg)->current; }
static void h_block(void *arg) { ((host_t *)arg)->blocks++; }
static void h_unblock(void *arg) { ((host_t *)arg)->unblocks++; }
static bool h_stopping(void *arg) { return ((host_t *)arg)->stopping; }
static uint64_t h_clock(void *arg) { return ((host_t *)arg)->now; }

static int s_setup(void **state)
{
    host_t *h = calloc(1, sizeof *h);
    h->s = sched_new(0);
    h->now = 1000;
    sched_set_clock(h->s, h_clock, h);
    h->rd = msg_reader_new();
    h->current = 42;
    qj_embed_ops ops = {h_send, h_current, h_block, h_unblock, h_stopping, h};
    h->c = qj_client_new_embedded(&ops);
    assert_non_null(h->c);
    *state = h;
    return 0;
}

static int s_teardown(void **state)
{
    host_t *h = *state;
    qj_client_destroy(&h->c);
    sched_destroy(&h->s);
    msg_reader_destroy(&h->rd);
    for (int i = 0; i < h->nframes; i++)
        free(h->frames[i]);
    free(h);
    return 0;
}

/* Decode captured frame i (valid until the next decode). */
static void h_frame(host_t *h, int i, msg_t *m)
{
    char err[256];
    assert_true(i < h->nframes);
    assert_int_equal(msg_decode(h->rd, h->frames[i], h->lens[i], m, err, sizeof err), QJ_E_OK);
}

static void h_feed_acks(host_t *h, const uint64_t *refs, const uint64_t *ids, int n)
{
    msg_ack_t acks[16];
    for (int i = 0; i < n; i++) {
        memset(&acks[i], 0, sizeof acks[i]);
        acks[i].ref = refs[i];
        acks[i].id = ids[i];
        if (!ids[i]) {
            acks[i].code = QJ_E_QUEUE_FULL;
            acks[i].text = (msg_bytes_t){"queue default is full", 21};
        }
    }
    msg_t m = {0};
    m.cmd = MSG_ACCEPTED;
    m.acks = acks;
    m.nacks = (uint32_t)n;
    qj_client_feed(h->c, &m);
}

/* A RESULTS item for id with value {"v": id} (msgpack) or an error. */
static void h_feed_result(host_t *h, uint64_t id, uint64_t ref, uint8_t st)
{
    static char val[16];
    val[0] = (char)0x81;
    val[1] = (char)0xa1;
    val[2] = 'v';
    val[3] = (char)0xcf;
    for (int i = 0; i < 8; i++)
        val[4 + i] = (char)(id >> (56 - 8 * i));
    msg_result_t r = {0};
    r.id = id;
    r.ref = ref;
    r.st = st;
    if (st == MSG_ST_OK)
        r.value = (msg_bytes_t){val, 12};
    else
        r.error = (msg_bytes_t){"it broke", 8};
    r.worker = (msg_bytes_t){"host:1/0", 8};
    r.attempts = 2;
    r.t.submitted = 10;
    r.t.finished = 50;
    msg_t m = {0};
    m.cmd = MSG_RESULTS;
    m.results = &r;
    m.nresults = 1;
    qj_client_feed(h->c, &m);
}

static void s_check_value(const qj_job *j, uint64_t id)
{
    char *json = qj_job_value_json(j);
    char want[64];
    snprintf(want, sizeof want, "{\"v\":%llu}", (unsigned long long)id);
    assert_string_equal(json, want);
    free(json);
}

/* ---------------------------------------------------- task coroutines */

typedef struct task {
    host_t *h;
    qj_job *jobs[8];
    int n;
    int mode;             /* 0 gather, 1 wait_any, 2 accepted, 3 await */
    int timeout;
    int rc, err;
    bool finished;
    char *json;
} task_t;

static void t_submit_and_wait(void *arg)
{
    task_t *t = arg;
    char err[256];
    for (int i = 0; i < t->n; i++) {
        if (!t->jobs[i]) {
            char args[32];
            snprintf(args, sizeof args, "{\"i\": %d}", i);
            t->jobs[i] = qj_submit_json(t->h->c, "echo", args, NULL, err, sizeof err);
            assert_non_null(t->jobs[i]);
        }
    }
    errno = 0;
    switch (t->mode) {
    case 0: t->rc = qj_gather(t->jobs, (size_t)t->n, t->timeout); break;
    case 1: t->rc = qj_wait_any(t->jobs, (size_t)t->n, t->timeout); break;
    case 2: t->rc = qj_accepted(t->jobs[0], t->timeout); break;
    default: t->rc = qj_await(t->jobs[0], t->timeout); break;
    }
    t->err = errno;
    t->finished = true;
}

static void t_free(task_t *t)
{
    for (int i = 0; i < 8; i++)
        qj_job_free(&t->jobs[i]);
    free(t->json);
}

/* ------------------------------------------------------------- tests */

/* Submits made in a task are packed into one SUBMIT with the task's job
 * as parent; gather parks the coroutine (block once), ACCEPTED alone does
 * not end it, the last RESULTS does (unblock once). */
static void test_gather_parks_and_wakes(void **state)
{
    host_t *h = *state;
    task_t t = {.h = h, .n = 3, .mode = 0, .timeout = -1};
    sched_spawn(h->s, t_submit_and_wait, &t, NULL);
    sched_run(h->s);
    assert_false(t.finished);
    assert_int_equal(h->blocks, 1);
    assert_int_equal(h->unblocks, 0);
    assert_int_equal(h->nframes, 1);
    msg_t m;
    h_frame(h, 0, &m);
    assert_int_equal(m.cmd, MSG_SUBMIT);
    assert_int_equal(m.njobs, 3);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(m.jobs[i].ref, i + 1);
        assert_int_equal(m.jobs[i].parent, 42);
        assert_memory_equal(m.jobs[i].task.ptr, "echo", 4);
        assert_true(m.jobs[i].t_submit > 0);
    }
    uint64_t refs[] = {1, 2, 3}, ids[] = {101, 102, 103};
    h_feed_acks(h, refs, ids, 3);
    sched_run(h->s);
    assert_false(t.finished);
    assert_int_equal(qj_job_id(t.jobs[2]), 103);
    h_feed_result(h, 102, 2, MSG_ST_OK);
    h_feed_result(h, 101, 1, MSG_ST_OK);
    sched_run(h->s);
    assert_false(t.finished);
    h_feed_result(h, 103, 3, MSG_ST_ERROR);
    sched_run(h->s);
    assert_true(t.finished);
    assert_int_equal(t.rc, 0);
    assert_int_equal(h->blocks, 1);
    assert_int_equal(h->unblocks, 1);
    s_check_value(t.jobs[0], 101);
    s_check_value(t.jobs[1], 102);
    assert_int_equal(qj_job_status(t.jobs[2]), QJ_ERROR);
    assert_string_equal(qj_job_error(t.jobs[2]), "it broke");
    assert_string_equal(qj_job_worker(t.jobs[0]), "host:1/0");
    assert_int_equal(qj_job_attempts(t.jobs[0]), 2);
    assert_int_equal(qj_job_times(t.jobs[0])->finished, 50);
    assert_true(qj_job_times(t.jobs[0])->delivered > 0);
    t_free(&t);
}

/* wait_any returns the first to finish by completion order, also when
 * several are done by the time the coroutine runs again. */
static void test_wait_any_completion_order(void **state)
{
    host_t *h = *state;
    task_t t = {.h = h, .n = 3, .mode = 1, .timeout = -1};
    sched_spawn(h->s, t_submit_and_wait, &t, NULL);
    sched_run(h->s);
    uint64_t refs[] = {1, 2, 3}, ids[] = {7, 8, 9};
    h_feed_acks(h, refs, ids, 3);
    h_feed_result(h, 9, 3, MSG_ST_OK);
    h_feed_result(h, 8, 2, MSG_ST_OK);
    sched_run(h->s);
    assert_true(t.finished);
    assert_int_equal(t.rc, 2);
    assert_true(qj_job_done(t.jobs[1]));
    assert_false(qj_job_done(t.jobs[0]));
    t_free(&t);
}

/* A wait with a timeout ends when the (injected) clock passes it; the
 * handle can then be freed while its submit is still unanswered, and the
 * late ACCEPTED and RESULTS for it are dropped safely. */
static void test_timeout_then_free_pending(void **state)
{
    host_t *h = *state;
    task_t t = {.h = h, .n = 1, .mode = 3, .timeout = 50};
    sched_spawn(h->s, t_submit_and_wait, &t, NULL);
    sched_run(h->s);
    assert_false(t.finished);
    h->now += 30;
    sched_run(h->s);
    assert_false(t.finished);
    h->now += 30;
    sched_run(h->s);
    assert_true(t.finished);
    assert_int_equal(t.rc, -1);
    assert_int_equal(t.err, ETIMEDOUT);
    assert_int_equal(h->unblocks, 1);
    qj_job_free(&t.jobs[0]);
    uint64_t refs[] = {1}, ids[] = {55};
    h_feed_acks(h, refs, ids, 1);
    h_feed_result(h, 55, 1, MSG_ST_OK);
    t_free(&t);
}

/* A task told to stop (cancelled) while it waits for a sub-job: once its
 * host wakes it, the wait ends with ECANCELED and the slot is taken back,
 * although the sub-job has not finished. */
static void test_stop_ends_wait(void **state)
{
    host_t *h = *state;
    task_t t = {.h = h, .n = 1, .mode = 3, .timeout = -1};
    coro_t *co = sched_spawn(h->s, t_submit_and_wait, &t, NULL);
    sched_run(h->s);
    assert_false(t.finished);
    assert_int_equal(h->blocks, 1);
    sched_wake(h->s, co);       /* a spurious wake changes nothing */
    sched_run(h->s);
    assert_false(t.finished);
    h->stopping = true;
    sched_wake(h->s, co);
    sched_run(h->s);
    assert_true(t.finished);
    assert_int_equal(t.rc, -1);
    assert_int_equal(t.err, ECANCELED);
    assert_int_equal(h->unblocks, 1);
    assert_false(qj_job_done(t.jobs[0]));
    t_free(&t);
}

/* qj_accepted: a refusal ends the wait with -1, QJ_REFUSED and the
 * broker's words. */
static void test_accepted_refused(void **state)
{
    host_t *h = *state;
    task_t t = {.h = h, .n = 2, .mode = 2, .timeout = -1};
    sched_spawn(h->s, t_submit_and_wait, &t, NULL);
    sched_run(h->s);
    assert_false(t.finished);
    uint64_t refs[] = {1, 2}, ids[] = {0, 77};
    h_feed_acks(h, refs, ids, 2);
    sched_run(h->s);
    assert_true(t.finished);
    assert_int_equal(t.rc, -1);
    assert_int_equal(qj_job_status(t.jobs[0]), QJ_REFUSED);
    assert_true(qj_job_done(t.jobs[0]));
    assert_non_null(strstr(qj_job_error(t.jobs[0]), "queue default is full"));
    assert_non_null(strstr(qj_job_error(t.jobs[0]), "queue_full"));
    assert_int_equal(qj_accepted(t.jobs[1], 0), 0);
    assert_int_equal(qj_job_id(t.jobs[1]), 77);
    t_free(&t);
}

static void t_stats(void *arg)
{
    task_t *t = arg;
    char err[256];
    t->json = qj_stats_json(t->h->c, -1, err, sizeof err);
    t->finished = true;
}

/* STATS from a task: the reply with the same rid becomes a JSON object
 * with the PROTOCOL §5.3 keys. */
static void test_stats_request(void **state)
{
    host_t *h = *state;
    task_t t = {.h = h};
    sched_spawn(h->s, t_stats, &t, NULL);
    sched_run(h->s);
    assert_false(t.finished);
    msg_t m;
    h_frame(h, 0, &m);
    assert_int_equal(m.cmd, MSG_STATS);
    uint64_t rid = m.rid;
    msg_qstat_t q = {.name = {"default", 7}, .depth = 4, .running = 1, .done = 9};
    msg_wstat_t w = {.name = {"w1", 2}, .slots = 2, .busy = 1, .done = 9};
    msg_t r = {0};
    r.cmd = MSG_STATS_REP;
    r.rid = rid + 1;   /* someone else's answer: ignored */
    qj_client_feed(h->c, &r);
    sched_run(h->s);
    assert_false(t.finished);
    r.rid = rid;
    r.stats.uptime_ms = 5;
    r.stats.bad_frames = 3;
    r.stats.bad_by_code[QJ_E_BODY] = 3;
    r.stats.queues = &q;
    r.stats.nqueues = 1;
    r.stats.workers_list = &w;
    r.stats.nworkers = 1;
    qj_client_feed(h->c, &r);
    sched_run(h->s);
    assert_true(t.finished);
    assert_non_null(t.json);
    json_t *o = json_loads(t.json, 0, NULL);
    assert_non_null(o);
    const char *keys[] = {"uptime", "clients", "workers", "submitted", "done", "failed",
                          "retried", "lost", "cancelled", "bad", "bad_by", "rejected",
                          "kept", "rss", "queues", "wlist"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        assert_non_null(json_object_get(o, keys[i]));
    assert_int_equal(json_integer_value(json_object_get(o, "uptime")), 5);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "bad_by"), "body")), 3);
    json_t *q0 = json_array_get(json_object_get(o, "queues"), 0);
    assert_string_equal(json_string_value(json_object_get(q0, "name")), "default");
    assert_int_equal(json_integer_value(json_object_get(q0, "depth")), 4);
    json_t *w0 = json_array_get(json_object_get(o, "wlist"), 0);
    assert_int_equal(json_integer_value(json_object_get(w0, "slots")), 2);
    json_decref(o);
    t_free(&t);
}

static int s_cb_calls;
static void s_cb_free(qj_job *j, void *arg)
{
    (void)arg;
    s_cb_calls++;
    assert_true(qj_job_done(j));
    qj_job_free(&j);   /* a callback may free its handle */
}

/* Outside a coroutine: submit, flush by qj_client_process, progress
 * updates the handle, the callback runs once from feed. */
static void test_callback_and_progress(void **state)
{
    host_t *h = *state;
    char err[256];
    qj_submit_opts o;
    qj_submit_opts_init(&o);
    o.progress = true;
    o.queue = "slow";
    o.priority = -3;
    o.timeout_s = 1.5;
    o.retries = 2;
    qj_job *j = qj_submit_json(h->c, "crunch", "[1, 2]", &o, err, sizeof err);
    assert_non_null(j);
    assert_int_equal(h->nframes, 0);   /* batched, not sent yet */
    s_cb_calls = 0;
    qj_on_done(j, s_cb_free, NULL);
    qj_client_process(h->c);
    assert_int_equal(h->nframes, 1);
    msg_t m;
    h_frame(h, 0, &m);
    assert_int_equal(m.jobs[0].pri, -3);
    assert_int_equal(m.jobs[0].timeout_ms, 1500);
    assert_int_equal(m.jobs[0].retries, 2);
    assert_true(m.jobs[0].progress);
    assert_memory_equal(m.jobs[0].queue.ptr, "slow", 4);
    assert_memory_equal(m.jobs[0].args.ptr, "\x92\x01\x02", 3);
    uint64_t refs[] = {1}, ids[] = {900};
    h_feed_acks(h, refs, ids, 1);
    msg_t p = {0};
    p.cmd = MSG_PROGRESS;
    p.id = 900;
    p.done = 3;
    p.total = 10;
    p.note = (msg_bytes_t){"a third", 7};
    qj_client_feed(h->c, &p);
    uint64_t done, total;
    const char *note;
    assert_true(qj_job_progress(j, &done, &total, &note));
    assert_int_equal(done, 3);
    assert_int_equal(total, 10);
    assert_string_equal(note, "a third");
    assert_int_equal(s_cb_calls, 0);
    h_feed_result(h, 900, 1, MSG_ST_OK);
    assert_int_equal(s_cb_calls, 1);
    h_feed_result(h, 900, 1, MSG_ST_OK);   /* a duplicate: ignored */
    assert_int_equal(s_cb_calls, 1);
}

/* Bad submits are refused at once, with a message, and nothing is sent. */
static void test_submit_validation(void **state)
{
    host_t *h = *state;
    char err[256];
    qj_submit_opts o;
    qj_submit_opts_init(&o);
    assert_null(qj_submit(h->c, "", NULL, 0, NULL, err, sizeof err));
    assert_non_null(strstr(err, "task name"));
    o.priority = 200;
    assert_null(qj_submit(h->c, "t", NULL, 0, &o, err, sizeof err));
    assert_non_null(strstr(err, "priority"));
    assert_null(qj_submit(h->c, "t", "\x92\x01", 2, NULL, err, sizeof err));   /* truncated */
    assert_null(qj_submit_json(h->c, "t", "{\"a\": ", NULL, err, sizeof err));
    assert_non_null(strstr(err, "bad JSON args at line 1"));
    qj_client_process(h->c);
    assert_int_equal(h->nframes, 0);
}

/* A WELCOME fed after the host reconnected makes the client resend what
 * was not accepted (same refs) and AWAIT what it waits for. */
static void test_welcome_resends(void **state)
{
    host_t *h = *state;
    char err[256];
    qj_job *a = qj_submit(h->c, "t", NULL, 0, NULL, err, sizeof err);
    qj_job *b = qj_submit(h->c, "t", NULL, 0, NULL, err, sizeof err);
    qj_job *x = qj_attach(h->c, 31337);
    qj_flush(h->c);
    assert_int_equal(h->nframes, 2);   /* SUBMIT, AWAIT */
    uint64_t refs[] = {1}, ids[] = {500};
    h_feed_acks(h, refs, ids, 1);
    msg_t w = {0};
    w.cmd = MSG_WELCOME;
    w.heartbeat_ms = 1000;
    w.liveness = 3;
    w.max_msg = QJ_MAX_MSG;
    qj_client_feed(h->c, &w);
    qj_flush(h->c);
    assert_int_equal(h->nframes, 4);
    msg_t m;
    h_frame(h, 2, &m);
    assert_int_equal(m.cmd, MSG_SUBMIT);
    assert_int_equal(m.njobs, 1);
    assert_int_equal(m.jobs[0].ref, 2);
    h_frame(h, 3, &m);
    assert_int_equal(m.cmd, MSG_AWAIT);
    assert_int_equal(m.nids, 2);   /* 500 (pushed anyway) and 31337 */
    assert_true((m.ids[0] == 500 && m.ids[1] == 31337) || (m.ids[0] == 31337 && m.ids[1] == 500));
    qj_job_free(&a);
    qj_job_free(&b);
    qj_job_free(&x);
}

/* Two handles on one id (a submit and an attach) both get the result;
 * freeing one first leaves the other working; attach(0) is unknown. */
static void test_same_id_handles(void **state)
{
    host_t *h = *state;
    char err[256];
    qj_job *a = qj_submit(h->c, "t", NULL, 0, NULL, err, sizeof err);
    qj_flush(h->c);
    uint64_t refs[] = {1}, ids[] = {600};
    h_feed_acks(h, refs, ids, 1);
    qj_job *b = qj_attach(h->c, 600);
    qj_job *c2 = qj_attach(h->c, 600);
    qj_job_free(&b);
    h_feed_result(h, 600, 0, MSG_ST_OK);
    assert_true(qj_job_done(a));
    assert_true(qj_job_done(c2));
    s_check_value(c2, 600);
    qj_job *z = qj_attach(h->c, 0);
    assert_int_equal(qj_job_status(z), QJ_UNKNOWN);
    char emsg[128];
    assert_int_equal(qj_cancel(a, emsg, sizeof emsg), -1);
    assert_non_null(strstr(emsg, "already finished"));
    qj_job_free(&a);
    qj_job_free(&c2);
    qj_job_free(&z);
}

/* qj_cancel before acceptance is sent once the id is known; a CANCEL_REP
 * saying "unknown" ends the handle, since no result will come. */
static void test_cancel_early_and_unknown(void **state)
{
    host_t *h = *state;
    char err[256];
    qj_job *j = qj_submit(h->c, "t", NULL, 0, NULL, err, sizeof err);
    assert_int_equal(qj_cancel(j, err, sizeof err), 0);
    qj_flush(h->c);
    assert_int_equal(h->nframes, 1);   /* the SUBMIT only: no id yet */
    uint64_t refs[] = {1}, ids[] = {700};
    h_feed_acks(h, refs, ids, 1);
    qj_flush(h->c);
    assert_int_equal(h->nframes, 2);
    msg_t m;
    h_frame(h, 1, &m);
    assert_int_equal(m.cmd, MSG_CANCEL);
    assert_int_equal(m.nids, 1);
    assert_int_equal(m.ids[0], 700);
    assert_true(m.rid != 0);
    msg_outcome_t oc = {700, MSG_CANCEL_UNKNOWN};
    msg_t rep = {0};
    rep.cmd = MSG_CANCEL_REP;
    rep.rid = m.rid;
    rep.outcomes = &oc;
    rep.noutcomes = 1;
    assert_false(qj_job_done(j));
    qj_client_feed(h->c, &rep);
    assert_int_equal(qj_job_status(j), QJ_UNKNOWN);
    qj_job_free(&j);
}

/* Handles outlive their client: readable, freeable, waits fail at once. */
static void test_handles_outlive_client(void **state)
{
    host_t *h = *state;
    char err[256];
    qj_job *p = qj_submit(h->c, "t", NULL, 0, NULL, err, sizeof err);
    qj_job *orphan = qj_submit(h->c, "t", NULL, 0, NULL, err, sizeof err);
    qj_job_free(&orphan);   /* unanswered: the client frees it in destroy */
    qj_client_destroy(&h->c);
    assert_false(qj_job_done(p));
    assert_int_equal(qj_await(p, 0), -1);
    assert_int_equal(errno, ENOTCONN);
    qj_job_free(&p);
}

/* A RESULTS item for a submit (by ref) with a value and a worker name of
 * the given sizes: the value is a bin of value_len - 2 bytes, each 'v'. */
static void h_feed_sized_result(host_t *h, uint64_t id, uint64_t ref, size_t value_len,
                                size_t worker_len)
{
    static char val[64], wk[64];
    val[0] = (char)0xc4;
    val[1] = (char)(value_len - 2);
    memset(val + 2, 'v', value_len - 2);
    memset(wk, 'w', worker_len);
    msg_result_t r = {0};
    r.id = id;
    r.ref = ref;
    r.value = (msg_bytes_t){val, (uint32_t)value_len};
    r.worker = (msg_bytes_t){wk, (uint32_t)worker_len};
    r.attempts = 1;
    msg_t m = {0};
    m.cmd = MSG_RESULTS;
    m.results = &r;
    m.nresults = 1;
    qj_client_feed(h->c, &m);
}

/* Small and large submits, values and worker names (kept inside the handle
 * or allocated) all come out as they went in; a result that overtakes its
 * ACCEPTED finishes the handle and leaves nothing behind, so that a late
 * ACCEPTED, a repeated result and a handle reusing the memory are not
 * confused with it. */
static void test_field_sizes_and_overtaking_results(void **state)
{
    host_t *h = *state;
    char err[256], task[101], queue[40], key[90];
    unsigned char small[2] = {0x91, 0x01}, big[200];
    memset(task, 't', sizeof task - 1);
    task[sizeof task - 1] = '\0';
    snprintf(queue, sizeof queue, "a-queue-named-at-length");
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    big[0] = 0xc5;
    big[1] = 0;
    big[2] = (unsigned char)(sizeof big - 3);
    memset(big + 3, 'b', sizeof big - 3);
    qj_submit_opts o;
    qj_submit_opts_init(&o);
    o.queue = queue;
    o.key = key;
    qj_job *a = qj_submit(h->c, "t", small, sizeof small, NULL, err, sizeof err);
    qj_job *b = qj_submit(h->c, task, big, sizeof big, &o, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    qj_flush(h->c);
    msg_t m;
    h_frame(h, 0, &m);
    assert_int_equal(m.cmd, MSG_SUBMIT);
    assert_int_equal(m.njobs, 2);
    assert_int_equal(m.jobs[0].task.len, 1);
    assert_memory_equal(m.jobs[0].args.ptr, small, sizeof small);
    assert_null(m.jobs[0].queue.ptr);
    assert_null(m.jobs[0].key.ptr);
    assert_int_equal(m.jobs[1].task.len, sizeof task - 1);
    assert_memory_equal(m.jobs[1].task.ptr, task, sizeof task - 1);
    assert_int_equal(m.jobs[1].args.len, sizeof big);
    assert_memory_equal(m.jobs[1].args.ptr, big, sizeof big);
    assert_memory_equal(m.jobs[1].queue.ptr, queue, strlen(queue));
    assert_int_equal(m.jobs[1].key.len, sizeof key - 1);

    /* Results before the ACCEPTED: 16 bytes and a 47-byte name fit the
     * handle, 17 and 48 do not. */
    h_feed_sized_result(h, 801, 1, 16, 47);
    h_feed_sized_result(h, 802, 2, 17, 48);
    assert_int_equal(qj_job_status(a), QJ_OK);
    assert_int_equal(qj_job_status(b), QJ_OK);
    assert_int_equal(qj_job_id(a), 801);
    assert_int_equal(qj_job_id(b), 802);
    size_t len;
    const unsigned char *v = qj_job_value(a, &len);
    assert_int_equal(len, 16);
    assert_int_equal(v[0], 0xc4);
    assert_int_equal(v[15], 'v');
    v = qj_job_value(b, &len);
    assert_int_equal(len, 17);
    assert_int_equal(v[16], 'v');
    assert_int_equal(strlen(qj_job_worker(a)), 47);
    assert_int_equal(strlen(qj_job_worker(b)), 48);
    uint64_t refs[] = {1, 2}, ids[] = {801, 802};
    h_feed_acks(h, refs, ids, 2);   /* late: already taken as accepted */
    assert_int_equal(qj_job_status(a), QJ_OK);
    qj_job_free(&a);
    qj_job_free(&b);

    /* A new handle (on the memory of a freed one) starts clean, and the
     * old job's result sent again does not reach it. */
    qj_job *c = qj_submit(h->c, "t", NULL, 0, NULL, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(qj_job_status(c), QJ_PENDING);
    assert_int_equal(qj_job_id(c), 0);
    assert_null(qj_job_value(c, &len));
    assert_int_equal(len, 0);
    assert_null(qj_job_worker(c));
    assert_null(qj_job_error(c));
    h_feed_sized_result(h, 801, 0, 16, 47);
    h_feed_sized_result(h, 802, 0, 16, 47);
    assert_int_equal(qj_job_status(c), QJ_PENDING);
    qj_flush(h->c);
    h_feed_sized_result(h, 803, 3, 4, 8);
    assert_int_equal(qj_job_status(c), QJ_OK);
    assert_string_equal(qj_job_worker(c), "wwwwwwww");
    qj_job_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gather_parks_and_wakes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_wait_any_completion_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_then_free_pending, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_accepted_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_stop_ends_wait, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_stats_request, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_callback_and_progress, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_submit_validation, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_welcome_resends, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_same_id_handles, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_early_and_unknown, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_handles_outlive_client, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_field_sizes_and_overtaking_results, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
