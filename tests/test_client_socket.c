/* test_client_socket.c -- the client library over a real ZeroMQ socket,
 * against a fake broker: a ROUTER on tcp://127.0.0.1 (ephemeral port)
 * that speaks the protocol through the real codec.
 *
 * Scripted tests drive client and fake broker from one thread (the client
 * by qj_client_process, the broker by polling its socket), so each step
 * of the conversation is checked: HELLO, batching, refusals, wait-any,
 * cancel, attach, reconnection after silence and after ERROR hello.  An
 * auto-answering broker on its own thread takes a flood of submits to
 * check max_inflight, batching and the requests; it runs in a child
 * process (our sched.h shadows the system's, which pthread.h needs). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "msg.h"
#include "qjob.h"

/* ------------------------------------------------------- fake broker */

typedef struct fb {
    void *ctx, *router;
    char endpoint[256];
    msg_reader_t *rd;
    char ident[256];          /* routing id of the last sender */
    size_t ident_len;
    zmq_msg_t frame;          /* the last frame: decoded messages borrow it */
    bool has_frame;
    msgpack_sbuffer out;
    int heartbeats;           /* HEARTBEATs seen (and skipped) */
} fb_t;

static uint64_t s_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A fake broker bound to ep, or to an ephemeral tcp port if ep is NULL. */
static fb_t *fb_new_at(const char *ep)
{
    fb_t *fb = calloc(1, sizeof *fb);
    fb->ctx = zmq_ctx_new();
    fb->router = zmq_socket(fb->ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(fb->router, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_bind(fb->router, ep ? ep : "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof fb->endpoint;
    zmq_getsockopt(fb->router, ZMQ_LAST_ENDPOINT, fb->endpoint, &len);
    fb->rd = msg_reader_new();
    msgpack_sbuffer_init(&fb->out);
    return fb;
}

static fb_t *fb_new(void)
{
    return fb_new_at(NULL);
}

static void fb_destroy(fb_t **p)
{
    fb_t *fb = *p;
    if (fb->has_frame)
        zmq_msg_close(&fb->frame);
    zmq_close(fb->router);
    zmq_ctx_term(fb->ctx);
    msg_reader_destroy(&fb->rd);
    msgpack_sbuffer_destroy(&fb->out);
    free(fb);
    *p = NULL;
}

/* Receive the next message that is not a HEARTBEAT, processing the
 * client (if given) meanwhile.  Returns 0, or -1 after timeout_ms. */
static int fb_recv(fb_t *fb, qj_client *c, msg_t *m, int timeout_ms)
{
    uint64_t deadline = s_ms() + (uint64_t)timeout_ms;
    while (s_ms() < deadline) {
        if (c)
            qj_client_process(c);
        zmq_pollitem_t it = {fb->router, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 5) <= 0)
            continue;
        int n = zmq_recv(fb->router, fb->ident, sizeof fb->ident, 0);
        assert_true(n > 0);
        fb->ident_len = (size_t)n;
        if (fb->has_frame)
            zmq_msg_close(&fb->frame);
        zmq_msg_init(&fb->frame);
        fb->has_frame = true;
        assert_true(zmq_msg_recv(&fb->frame, fb->router, 0) >= 0);
        assert_false(zmq_msg_more(&fb->frame));   /* one frame per message */
        char err[256];
        assert_int_equal(msg_decode(fb->rd, zmq_msg_data(&fb->frame), zmq_msg_size(&fb->frame),
                                    m, err, sizeof err),
                         QJ_E_OK);
        if (m->cmd == MSG_HEARTBEAT) {
            fb->heartbeats++;
            continue;
        }
        return 0;
    }
    return -1;
}

static void fb_expect(fb_t *fb, qj_client *c, msg_t *m, uint8_t cmd)
{
    assert_int_equal(fb_recv(fb, c, m, 3000), 0);
    assert_int_equal(m->cmd, cmd);
}

static void fb_send(fb_t *fb, const msg_t *m)
{
    char err[256];
    assert_int_equal(msg_encode(&fb->out, m, err, sizeof err), 0);
    zmq_send(fb->router, fb->ident, fb->ident_len, ZMQ_SNDMORE);
    zmq_send(fb->router, fb->out.data, fb->out.size, 0);
}

static void fb_welcome(fb_t *fb, uint32_t hb)
{
    msg_t w = {0};
    w.cmd = MSG_WELCOME;
    w.heartbeat_ms = hb;
    w.liveness = 3;
    w.max_msg = QJ_MAX_MSG;
    fb_send(fb, &w);
}

static void fb_acks(fb_t *fb, const uint64_t *refs, const uint64_t *ids, int n)
{
    msg_ack_t acks[16] = {{0}};
    for (int i = 0; i < n; i++) {
        acks[i].ref = refs[i];
        acks[i].id = ids[i];
        if (!ids[i]) {
            acks[i].code = QJ_E_LIMIT;
            acks[i].text = (msg_bytes_t){"too many", 8};
        }
    }
    msg_t m = {0};
    m.cmd = MSG_ACCEPTED;
    m.acks = acks;
    m.nacks = (uint32_t)n;
    fb_send(fb, &m);
}

static void fb_result(fb_t *fb, uint64_t id, uint64_t ref, uint8_t st)
{
    msg_result_t r = {0};
    r.id = id;
    r.ref = ref;
    r.st = st;
    r.value = (msg_bytes_t){"\x2a", 1};   /* 42 */
    msg_t m = {0};
    m.cmd = MSG_RESULTS;
    m.results = &r;
    m.nresults = 1;
    fb_send(fb, &m);
}

static qj_client *s_connect(fb_t *fb, int hb, msg_t *hello)
{
    qj_options o;
    qj_options_init(&o);
    o.broker = fb->endpoint;
    o.heartbeat_ms = hb;
    char err[256];
    qj_client *c = qj_client_new(&o, err, sizeof err);
    assert_non_null(c);
    fb_expect(fb, c, hello, MSG_HELLO);
    assert_int_equal(hello->role, MSG_ROLE_CLIENT);
    assert_int_equal(hello->cid.len, QJ_CID_LEN);
    assert_non_null(memchr(hello->name.ptr, ':', hello->name.len));
    fb_welcome(fb, hb ? (uint32_t)hb : 1000);
    assert_int_equal(qj_client_ready(c, 3000), 0);
    return c;
}

/* -------------------------------------------------------- scripted */

static void test_conversation(void **state)
{
    (void)state;
    fb_t *fb = fb_new();
    msg_t m;
    qj_client *c = s_connect(fb, 0, &m);
    char err[256];
    qj_job *jobs[5];
    for (int i = 0; i < 5; i++) {
        char a[32];
        snprintf(a, sizeof a, "{\"i\": %d}", i);
        jobs[i] = qj_submit_json(c, "echo", a, NULL, err, sizeof err);
        assert_non_null(jobs[i]);
        assert_int_equal(qj_job_id(jobs[i]), 0);
    }
    qj_flush(c);
    fb_expect(fb, c, &m, MSG_SUBMIT);
    assert_int_equal(m.njobs, 5);   /* packed into one message */
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(m.jobs[i].ref, i + 1);
    uint64_t refs[] = {1, 2, 3, 4, 5}, ids[] = {11, 12, 0, 14, 15};
    fb_acks(fb, refs, ids, 5);
    fb_result(fb, 14, 4, MSG_ST_OK);
    fb_result(fb, 12, 2, MSG_ST_OK);
    qj_job *some[] = {jobs[0], jobs[1], jobs[3], jobs[4]};
    assert_int_equal(qj_wait_any(some, 4, 3000), 2);   /* id 14 came first */
    assert_int_equal(qj_accepted(jobs[2], 0), -1);
    assert_int_equal(qj_job_status(jobs[2]), QJ_REFUSED);
    assert_int_equal(qj_gather(jobs, 5, 50), -1);
    assert_int_equal(errno, ETIMEDOUT);

    assert_int_equal(qj_cancel(jobs[4], err, sizeof err), 0);
    fb_expect(fb, c, &m, MSG_CANCEL);
    assert_int_equal(m.nids, 1);
    assert_int_equal(m.ids[0], 15);
    assert_true(m.rid != 0);
    msg_outcome_t oc = {15, MSG_CANCEL_REMOVED};
    msg_t rep = {0};
    rep.cmd = MSG_CANCEL_REP;
    rep.rid = m.rid;
    rep.outcomes = &oc;
    rep.noutcomes = 1;
    fb_send(fb, &rep);
    fb_result(fb, 15, 5, MSG_ST_CANCELLED);
    fb_result(fb, 11, 1, MSG_ST_OK);
    assert_int_equal(qj_gather(jobs, 5, 3000), 0);
    assert_int_equal(qj_job_status(jobs[4]), QJ_CANCELLED);
    assert_int_equal(qj_job_status(jobs[0]), QJ_OK);
    size_t len;
    const char *v = qj_job_value(jobs[0], &len);
    assert_int_equal(len, 1);
    assert_int_equal(v[0], 42);

    /* attach by id: AWAIT, unknown */
    qj_job *x = qj_attach(c, 999);
    qj_flush(c);
    fb_expect(fb, c, &m, MSG_AWAIT);
    assert_int_equal(m.ids[0], 999);
    fb_result(fb, 999, 0, MSG_ST_UNKNOWN);
    assert_int_equal(qj_await(x, 3000), 0);
    assert_int_equal(qj_job_status(x), QJ_UNKNOWN);

    /* a detached submit is AWAITed only when the application waits */
    qj_submit_opts so;
    qj_submit_opts_init(&so);
    so.detach = true;
    qj_job *d = qj_submit(c, "echo", NULL, 0, &so, err, sizeof err);
    qj_flush(c);
    fb_expect(fb, c, &m, MSG_SUBMIT);
    assert_true(m.jobs[0].detach);
    uint64_t r6[] = {6}, i6[] = {20};
    fb_acks(fb, r6, i6, 1);
    assert_int_equal(qj_accepted(d, 3000), 0);
    assert_int_equal(qj_job_id(d), 20);
    assert_int_equal(qj_await(d, 0), -1);
    fb_expect(fb, c, &m, MSG_AWAIT);
    assert_int_equal(m.ids[0], 20);
    fb_result(fb, 20, 0, MSG_ST_OK);
    assert_int_equal(qj_await(d, 3000), 0);

    for (int i = 0; i < 5; i++)
        qj_job_free(&jobs[i]);
    qj_job_free(&x);
    qj_job_free(&d);
    qj_client_destroy(&c);
    fb_destroy(&fb);
}

/* The broker goes silent: the client heartbeats, then after hb x 3
 * reconnects with the same cid, resends the unaccepted submit with its
 * ref and AWAITs what it waits for; its handles complete. */
static void test_reconnect_after_silence(void **state)
{
    (void)state;
    fb_t *fb = fb_new();
    msg_t m;
    qj_client *c = s_connect(fb, 100, &m);
    char cid[QJ_CID_LEN];
    memcpy(cid, m.cid.ptr, QJ_CID_LEN);
    assert_int_equal(m.heartbeat_ms, 100);
    char err[256];
    qj_job *a = qj_submit(c, "t", NULL, 0, NULL, err, sizeof err);
    qj_job *b = qj_submit(c, "t", NULL, 0, NULL, err, sizeof err);
    qj_job *x = qj_attach(c, 77);
    qj_flush(c);
    fb_expect(fb, c, &m, MSG_SUBMIT);
    fb_expect(fb, c, &m, MSG_AWAIT);
    uint64_t r1[] = {1}, i1[] = {101};
    fb_acks(fb, r1, i1, 1);
    /* now silence: only heartbeats, then a new HELLO */
    char old_ident[256];
    size_t old_len = fb->ident_len;
    memcpy(old_ident, fb->ident, old_len);
    fb_expect(fb, c, &m, MSG_HELLO);
    assert_true(fb->heartbeats >= 1);
    assert_memory_equal(m.cid.ptr, cid, QJ_CID_LEN);
    assert_false(fb->ident_len == old_len && memcmp(fb->ident, old_ident, old_len) == 0);
    fb_welcome(fb, 100);
    bool got_submit = false, got_await = false;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(fb_recv(fb, c, &m, 3000), 0);
        if (m.cmd == MSG_SUBMIT) {
            got_submit = true;
            assert_int_equal(m.njobs, 1);
            assert_int_equal(m.jobs[0].ref, 2);
        } else if (m.cmd == MSG_AWAIT) {
            got_await = true;
            assert_int_equal(m.nids, 2);
        }
    }
    assert_true(got_submit && got_await);
    uint64_t r2[] = {2}, i2[] = {102};
    fb_acks(fb, r2, i2, 1);
    fb_result(fb, 101, 1, MSG_ST_OK);
    fb_result(fb, 102, 2, MSG_ST_OK);
    fb_result(fb, 77, 0, MSG_ST_ERROR);
    qj_job *all[] = {a, b, x};
    assert_int_equal(qj_gather(all, 3, 3000), 0);
    assert_int_equal(qj_job_status(x), QJ_ERROR);
    qj_job_free(&a);
    qj_job_free(&b);
    qj_job_free(&x);
    qj_client_destroy(&c);
    fb_destroy(&fb);
}

/* ERROR hello (the broker forgot us) makes the client say HELLO again on
 * the same connection and resend; an ERROR about a SUBMIT refuses the
 * jobs of that SUBMIT. */
static void test_error_hello_and_submit_error(void **state)
{
    (void)state;
    fb_t *fb = fb_new();
    msg_t m;
    qj_client *c = s_connect(fb, 0, &m);
    char err[256];
    qj_job *a = qj_submit(c, "t", NULL, 0, NULL, err, sizeof err);
    qj_flush(c);
    fb_expect(fb, c, &m, MSG_SUBMIT);
    msg_t e = {0};
    e.cmd = MSG_ERROR;
    e.code = QJ_E_HELLO;
    e.about = MSG_SUBMIT;
    e.text = (msg_bytes_t){"say hello first", 15};
    fb_send(fb, &e);
    fb_expect(fb, c, &m, MSG_HELLO);
    fb_welcome(fb, 1000);
    fb_expect(fb, c, &m, MSG_SUBMIT);
    assert_int_equal(m.jobs[0].ref, 1);
    e.code = QJ_E_INTERNAL;
    e.text = (msg_bytes_t){"journal write failed", 20};
    fb_send(fb, &e);
    assert_int_equal(qj_await(a, 3000), 0);
    assert_int_equal(qj_job_status(a), QJ_REFUSED);
    assert_non_null(strstr(qj_job_error(a), "journal write failed"));
    qj_job_free(&a);
    qj_client_destroy(&c);
    fb_destroy(&fb);
}

/* Unreachable broker: ready times out; a bad endpoint fails at once. */
static void test_unreachable_and_bad_endpoint(void **state)
{
    (void)state;
    char dir[] = "/tmp/qjtestXXXXXX", ep[300], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(ep, sizeof ep, "ipc://%s/nobody", dir);
    qj_options o;
    qj_options_init(&o);
    o.broker = ep;
    qj_client *c = qj_client_new(&o, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(qj_client_ready(c, 200), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_null(qj_stats_json(c, 100, err, sizeof err));
    assert_non_null(strstr(err, ep));
    qj_client_destroy(&c);
    rmdir(dir);
    o.broker = "nonsense://x";
    assert_null(qj_client_new(&o, err, sizeof err));
    assert_non_null(strstr(err, "nonsense://x"));
}

/* --------------------------------------------------- auto broker */

typedef struct auto_fb {
    fb_t *fb;
    uint32_t max_batch;       /* most jobs seen in one SUBMIT */
    uint64_t jobs, next_id;
} auto_fb_t;

/* The parent's view: the child's pid and the endpoint it serves. */
typedef struct auto_proc {
    pid_t pid;
    char dir[64];
    char endpoint[128];
} auto_proc_t;

static void auto_submit(auto_fb_t *a, const msg_t *m)
{
    msg_ack_t *acks = calloc(m->njobs, sizeof *acks);
    msg_result_t *res = calloc(m->njobs, sizeof *res);
    uint32_t nres = 0;
    if (m->njobs > a->max_batch)
        a->max_batch = m->njobs;
    for (uint32_t i = 0; i < m->njobs; i++) {
        const msg_job_t *j = &m->jobs[i];
        acks[i].ref = j->ref;
        if (j->task.len == 6 && memcmp(j->task.ptr, "refuse", 6) == 0) {
            acks[i].code = QJ_E_QUEUE_FULL;
            acks[i].text = (msg_bytes_t){"full", 4};
            continue;
        }
        acks[i].id = ++a->next_id;
        a->jobs++;
        res[nres].id = acks[i].id;
        res[nres].ref = j->ref;
        res[nres].value = j->args;   /* echo */
        res[nres].attempts = 1;
        nres++;
    }
    msg_t out = {0};
    out.cmd = MSG_ACCEPTED;
    out.acks = acks;
    out.nacks = m->njobs;
    fb_send(a->fb, &out);
    if (nres) {
        memset(&out, 0, sizeof out);
        out.cmd = MSG_RESULTS;
        out.results = res;
        out.nresults = nres;
        fb_send(a->fb, &out);
    }
    free(acks);
    free(res);
}

/* Answer for ever: STATS_REP reports jobs accepted as "submitted" and
 * the largest SUBMIT seen as "done", for the tests to check. */
static void auto_main(auto_fb_t *a)
{
    msg_t m;
    for (;;) {
        if (fb_recv(a->fb, NULL, &m, 20) < 0)
            continue;
        msg_t out = {0};
        switch (m.cmd) {
        case MSG_HELLO: fb_welcome(a->fb, 1000); break;
        case MSG_SUBMIT: auto_submit(a, &m); break;
        case MSG_STATS:
            out.cmd = MSG_STATS_REP;
            out.rid = m.rid;
            out.stats.submitted = a->jobs;
            out.stats.done = a->max_batch;
            fb_send(a->fb, &out);
            break;
        case MSG_STATUS:
        case MSG_CANCEL: {
            msg_result_t r[8] = {{0}};
            msg_outcome_t o[8] = {{0}};
            for (uint32_t i = 0; i < m.nids && i < 8; i++) {
                bool known = m.ids[i] > 1000 && m.ids[i] <= a->next_id;
                r[i].id = o[i].id = m.ids[i];
                r[i].state = known ? MSG_STATE_DONE : MSG_STATE_UNKNOWN;
                r[i].value = (msg_bytes_t){"\x07", 1};
                o[i].outcome = known ? MSG_CANCEL_DONE : MSG_CANCEL_UNKNOWN;
            }
            out.cmd = m.cmd == MSG_STATUS ? MSG_STATUS_REP : MSG_CANCEL_REP;
            out.rid = m.rid;
            out.results = r;
            out.nresults = m.nids < 8 ? m.nids : 8;
            out.outcomes = o;
            out.noutcomes = out.nresults;
            fb_send(a->fb, &out);
            break;
        }
        default: break;
        }
    }
}

static void auto_start(auto_proc_t *p)
{
    strcpy(p->dir, "/tmp/qjtestXXXXXX");
    assert_non_null(mkdtemp(p->dir));
    snprintf(p->endpoint, sizeof p->endpoint, "ipc://%s/broker", p->dir);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        /* Never outlive the test, even one that fails half-way. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        alarm(120);
        auto_fb_t a = {0};
        a.fb = fb_new_at(p->endpoint);
        a.next_id = 1000;
        auto_main(&a);
        _exit(0);
    }
}

static void auto_stop(auto_proc_t *p)
{
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    char path[128];
    snprintf(path, sizeof path, "%s/broker", p->dir);
    unlink(path);
    rmdir(p->dir);
}

/* The auto broker's figures: jobs accepted, largest SUBMIT. */
static void auto_figures(qj_client *c, int64_t *jobs, int64_t *max_batch)
{
    char err[256];
    char *s = qj_stats_json(c, 5000, err, sizeof err);
    assert_non_null(s);
    json_t *j = json_loads(s, 0, NULL);
    *jobs = json_integer_value(json_object_get(j, "submitted"));
    *max_batch = json_integer_value(json_object_get(j, "done"));
    json_decref(j);
    free(s);
}

/* Many submits with a small max_inflight: no SUBMIT carries more than
 * max_inflight jobs, every value comes back with its own args. */
static void test_flood_with_inflight_limit(void **state)
{
    (void)state;
    enum { N = 20000 };
    auto_proc_t a;
    auto_start(&a);
    qj_options o;
    qj_options_init(&o);
    o.broker = a.endpoint;
    o.max_inflight = 64;
    char err[256];
    qj_client *c = qj_client_new(&o, err, sizeof err);
    qj_job **jobs = calloc(N, sizeof *jobs);
    msgpack_sbuffer b;
    msgpack_sbuffer_init(&b);
    for (int i = 0; i < N; i++) {
        msgpack_packer pk;
        b.size = 0;
        msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
        msgpack_pack_int(&pk, i);
        jobs[i] = qj_submit(c, "echo", b.data, b.size, NULL, err, sizeof err);
        assert_non_null(jobs[i]);
    }
    msgpack_sbuffer_destroy(&b);
    assert_int_equal(qj_gather(jobs, N, 30000), 0);
    for (int i = 0; i < N; i++) {
        size_t len;
        const unsigned char *v = qj_job_value(jobs[i], &len);
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        assert_int_equal(msgpack_unpack_next(&u, (const char *)v, len, NULL),
                         MSGPACK_UNPACK_SUCCESS);
        assert_int_equal(u.data.via.i64, i);
        msgpack_unpacked_destroy(&u);
        qj_job_free(&jobs[i]);
    }
    free(jobs);
    int64_t njobs, max_batch;
    auto_figures(c, &njobs, &max_batch);
    assert_int_equal(njobs, N);
    assert_true(max_batch <= 64);
    assert_true(max_batch > 1);
    qj_client_destroy(&c);
    auto_stop(&a);
}

/* batch_max caps SUBMIT sizes; refused jobs; requests; fd-driven loop. */
static void test_batch_requests_and_fd(void **state)
{
    (void)state;
    auto_proc_t a;
    auto_start(&a);
    qj_options o;
    qj_options_init(&o);
    o.broker = a.endpoint;
    o.batch_max = 7;
    char err[256];
    qj_client *c = qj_client_new(&o, err, sizeof err);
    qj_job *jobs[30];
    for (int i = 0; i < 30; i++)
        jobs[i] = qj_submit(c, i == 29 ? "refuse" : "echo", NULL, 0, NULL, err, sizeof err);
    /* drive it as another event loop would: poll the fd, then process */
    uint64_t deadline = s_ms() + 10000;
    while (!qj_job_done(jobs[29]) && s_ms() < deadline) {
        qj_client_process(c);
        struct pollfd p = {qj_client_fd(c), POLLIN, 0};
        poll(&p, 1, 10);
    }
    assert_int_equal(qj_gather(jobs, 30, 10000), 0);
    assert_int_equal(qj_job_status(jobs[29]), QJ_REFUSED);
    assert_int_equal(qj_job_status(jobs[0]), QJ_OK);
    for (int i = 0; i < 30; i++)
        qj_job_free(&jobs[i]);
    int64_t njobs, max_batch;
    auto_figures(c, &njobs, &max_batch);
    assert_int_equal(njobs, 29);
    assert_true(max_batch <= 7);

    uint64_t ids[] = {1001, 5};
    char *s = qj_status_json(c, ids, 2, 5000, err, sizeof err);
    assert_non_null(s);
    json_t *j = json_loads(s, 0, NULL);
    assert_int_equal(json_array_size(j), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "state")), "done");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "value")), 7);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "status")),
                        "unknown");
    json_decref(j);
    free(s);
    s = qj_cancel_json(c, ids, 2, 5000, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(s, "[{\"id\":1001,\"outcome\":\"done\"},{\"id\":5,\"outcome\":\"unknown\"}]");
    free(s);
    qj_client_destroy(&c);
    auto_stop(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conversation),
        cmocka_unit_test(test_reconnect_after_silence),
        cmocka_unit_test(test_error_hello_and_submit_error),
        cmocka_unit_test(test_unreachable_and_bad_endpoint),
        cmocka_unit_test(test_flood_with_inflight_limit),
        cmocka_unit_test(test_batch_requests_and_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
