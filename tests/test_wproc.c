/* test_wproc.c -- one worker process against a scripted broker.
 *
 * The worker process runs in a forked child (wproc_run); the test plays
 * the broker on a ROUTER socket over ipc://, with the real codec, and
 * checks the worker's side of PROTOCOL.md §4: HELLO and its credit,
 * results with credit returned, unknown tasks, CANCEL, heartbeats,
 * reconnecting after silence, HELLO again after ERROR hello, drain on
 * SIGTERM and leaving at once on a second SIGTERM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zmq.h>

#include "builtin.h"
#include "log.h"
#include "msg.h"
#include "registry.h"
#include "wproc.h"

#define WAIT_MS 10000   /* bound on every wait for the worker */

typedef struct broker {
    char dir[64];
    char endpoint[128];
    pid_t child;
    void *zctx, *router;
    msg_reader_t *reader;
    msgpack_sbuffer out;
    zmq_msg_t frame;           /* the last frame received (m points into it) */
    msg_t m;
    unsigned char rid[256];    /* routing id of the last message */
    size_t rid_len;
} broker_t;

/* Fork a worker process with coros/prefetch serving queues "a", "b"; then
 * bind the broker's socket (after the fork: a ZeroMQ context must not
 * cross one). */
static void s_start(broker_t *b, unsigned coros, unsigned prefetch)
{
    memset(b, 0, sizeof *b);
    strcpy(b->dir, "/tmp/test_wproc.XXXXXX");
    assert_non_null(mkdtemp(b->dir));
    snprintf(b->endpoint, sizeof b->endpoint, "ipc://%s/broker.sock", b->dir);
    b->child = fork();
    assert_true(b->child >= 0);
    if (b->child == 0) {
        log_init("test_wproc", LOG_ERROR, false);
        qj_registry *reg = qj_registry_new();
        builtin_register(reg);
        const char *queues[] = {"a", "b"};
        wproc_opts_t o = {b->endpoint, "t/0", queues, 2, coros, prefetch, 0, 0, 0, 10000, reg,
                          NULL, 0, NULL};
        char err[256];
        wproc_t *w = wproc_new(&o, err, sizeof err);
        int status = w ? wproc_run(w) : 99;
        wproc_destroy(&w);
        qj_registry_destroy(&reg);
        _exit(status);
    }
    b->zctx = zmq_ctx_new();
    b->router = zmq_socket(b->zctx, ZMQ_ROUTER);
    assert_int_equal(zmq_bind(b->router, b->endpoint), 0);
    b->reader = msg_reader_new();
    msgpack_sbuffer_init(&b->out);
    zmq_msg_init(&b->frame);
}

static int s_stop(broker_t *b)
{
    int st = -1;
    if (b->child > 0) {
        kill(b->child, SIGKILL);   /* no-op if it has already exited */
        assert_int_equal(waitpid(b->child, &st, 0), b->child);
    }
    zmq_msg_close(&b->frame);
    msg_reader_destroy(&b->reader);
    msgpack_sbuffer_destroy(&b->out);
    zmq_close(b->router);
    zmq_ctx_term(b->zctx);
    char sock[128];
    snprintf(sock, sizeof sock, "%s/broker.sock", b->dir);
    unlink(sock);
    rmdir(b->dir);
    return st;
}

/* Wait for the child to exit by itself; returns its exit status. */
static int s_exit_status(broker_t *b)
{
    int st;
    for (int i = 0; i < WAIT_MS / 10; i++) {
        if (waitpid(b->child, &st, WNOHANG) == b->child) {
            b->child = 0;
            assert_true(WIFEXITED(st));
            return WEXITSTATUS(st);
        }
        usleep(10000);
    }
    fail_msg("the worker process did not exit");
    return -1;
}

/* Receive the next message from the worker into b->m; returns its command. */
static int s_recv(broker_t *b)
{
    zmq_pollitem_t it = {b->router, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, WAIT_MS) != 1)
        fail_msg("nothing from the worker within %d ms", WAIT_MS);
    int n = zmq_recv(b->router, b->rid, sizeof b->rid, 0);
    assert_true(n > 0);
    b->rid_len = (size_t)n;
    assert_true(zmq_msg_recv(&b->frame, b->router, 0) >= 0);
    assert_false(zmq_msg_more(&b->frame));   /* one frame a message */
    char err[256];
    msg_err_t rc = msg_decode(b->reader, zmq_msg_data(&b->frame), zmq_msg_size(&b->frame),
                              &b->m, err, sizeof err);
    if (rc != QJ_E_OK)
        fail_msg("bad message from the worker: %s", err);
    return b->m.cmd;
}

/* Receive, skipping heartbeats, and check the command. */
static void s_expect(broker_t *b, int cmd)
{
    int got;
    while ((got = s_recv(b)) == MSG_HEARTBEAT && cmd != MSG_HEARTBEAT)
        ;
    if (got != cmd)
        fail_msg("expected %s, got %s", msg_cmd_name(cmd), msg_cmd_name(got));
}

static void s_send(broker_t *b, const msg_t *m)
{
    char err[256];
    assert_int_equal(msg_encode(&b->out, m, err, sizeof err), 0);
    assert_true(zmq_send(b->router, b->rid, b->rid_len, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(b->router, b->out.data, b->out.size, 0) >= 0);
}

static void s_welcome(broker_t *b, uint32_t hb_ms)
{
    msg_t m = {.cmd = MSG_WELCOME, .heartbeat_ms = hb_ms, .liveness = 3, .max_msg = QJ_MAX_MSG};
    s_send(b, &m);
}

/* Send one JOBS message; args are msgpack bytes (NULL = nil). */
static void s_jobs(broker_t *b, uint64_t first_id, const char *const *tasks, size_t n,
                   const char *args, size_t args_len)
{
    msg_job_t jobs[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++)
        jobs[i] = (msg_job_t){.id = first_id + i, .task = {tasks[i], (uint32_t)strlen(tasks[i])},
                              .args = {args, (uint32_t)args_len}, .queue = {"a", 1},
                              .attempt = 1};
    msg_t m = {.cmd = MSG_JOBS, .jobs = jobs, .njobs = (uint32_t)n};
    s_send(b, &m);
}

/* {"ms": N} */
static size_t s_sleep_args(char *buf, uint16_t ms)
{
    buf[0] = (char)0x81;
    buf[1] = (char)0xa2;
    buf[2] = 'm';
    buf[3] = 's';
    buf[4] = (char)0xcd;
    buf[5] = (char)(ms >> 8);
    buf[6] = (char)(ms & 0xff);
    return 7;
}

static void test_hello_jobs_results(void **state)
{
    (void)state;
    broker_t b;
    s_start(&b, 2, 3);
    s_expect(&b, MSG_HELLO);
    assert_int_equal(b.m.role, MSG_ROLE_WORKER);
    assert_int_equal(b.m.credit, 5);   /* coros + prefetch */
    assert_int_equal(b.m.name.len, 3);
    assert_memory_equal(b.m.name.ptr, "t/0", 3);
    assert_int_equal(b.m.nqueues, 2);
    assert_memory_equal(b.m.queues[1].ptr, "b", 1);
    s_welcome(&b, 1000);

    const char *tasks[] = {"echo", "noop", "nosuch"};
    s_jobs(&b, 100, tasks, 3, "\x92\x01\xa1x", 4);   /* [1, "x"] */
    uint32_t credit = 0, seen = 0;
    while (seen < 3) {
        s_expect(&b, MSG_RESULTS);
        credit += b.m.credit;
        for (uint32_t i = 0; i < b.m.nresults; i++, seen++) {
            const msg_result_t *r = &b.m.results[i];
            assert_int_equal(r->attempts, 1);
            assert_memory_equal(r->worker.ptr, "t/0", 3);
            if (r->id == 100) {
                assert_int_equal(r->st, MSG_ST_OK);
                assert_int_equal(r->value.len, 4);
                assert_memory_equal(r->value.ptr, "\x92\x01\xa1x", 4);
            } else if (r->id == 101) {
                assert_int_equal(r->st, MSG_ST_OK);
            } else {
                assert_int_equal(r->id, 102);
                assert_int_equal(r->st, MSG_ST_ERROR);
                assert_true(r->error.len > 0);
                assert_memory_equal(r->error.ptr, "unknown task 'nosuch'", 21);
            }
        }
    }
    assert_int_equal(credit, 3);

    kill(b.child, SIGTERM);
    s_expect(&b, MSG_BYE);
    assert_true(b.m.drain);
    s_expect(&b, MSG_BYE);
    assert_false(b.m.drain);
    assert_int_equal(s_exit_status(&b), WPROC_EXIT_OK);
    s_stop(&b);
}

static void test_heartbeat_and_reconnect(void **state)
{
    (void)state;
    broker_t b;
    s_start(&b, 1, 0);
    s_expect(&b, MSG_HELLO);
    unsigned char first[256];
    size_t first_len = b.rid_len;
    memcpy(first, b.rid, first_len);
    s_welcome(&b, 100);
    /* Idle: the worker sends heartbeats... */
    s_expect(&b, MSG_HEARTBEAT);
    /* ... and, hearing nothing for hb x liveness, reconnects: HELLO again
     * from a new connection. */
    s_expect(&b, MSG_HELLO);
    assert_false(b.rid_len == first_len && memcmp(b.rid, first, first_len) == 0);
    assert_int_equal(b.m.credit, 1);
    s_stop(&b);
}

static void test_hello_again_after_error(void **state)
{
    (void)state;
    broker_t b;
    s_start(&b, 1, 0);
    s_expect(&b, MSG_HELLO);
    s_welcome(&b, 1000);
    /* The broker says it does not know us (it restarted): HELLO again. */
    msg_t e = {.cmd = MSG_ERROR, .code = QJ_E_HELLO, .text = {"say hello", 9},
               .about = MSG_HEARTBEAT};
    s_send(&b, &e);
    s_send(&b, &e);   /* a second one, for something else in flight: one HELLO */
    s_expect(&b, MSG_HELLO);
    assert_int_equal(b.m.credit, 1);
    s_welcome(&b, 1000);
    const char *tasks[] = {"noop"};
    s_jobs(&b, 7, tasks, 1, NULL, 0);
    s_expect(&b, MSG_RESULTS);
    assert_int_equal(b.m.results[0].id, 7);
    s_stop(&b);
}

/* Send a sleep of sleep_ms (id) and a noop (id + 1), and wait for the
 * noop's result: from then on the sleep is surely running. */
static void s_sleep_running(broker_t *b, uint64_t id, uint16_t sleep_ms)
{
    char args[8];
    size_t n = s_sleep_args(args, sleep_ms);
    const char *sleep_task[] = {"sleep"}, *noop_task[] = {"noop"};
    s_jobs(b, id, sleep_task, 1, args, n);
    s_jobs(b, id + 1, noop_task, 1, NULL, 0);
    s_expect(b, MSG_RESULTS);
    assert_int_equal(b->m.nresults, 1);
    assert_int_equal(b->m.results[0].id, id + 1);
}

static void test_cancel_and_drain(void **state)
{
    (void)state;
    broker_t b;
    s_start(&b, 2, 0);
    s_expect(&b, MSG_HELLO);
    s_welcome(&b, 1000);
    s_sleep_running(&b, 1, 60000);
    msg_t c = {.cmd = MSG_CANCEL, .ids = (uint64_t[]){1}, .nids = 1};
    s_send(&b, &c);
    s_expect(&b, MSG_RESULTS);
    assert_int_equal(b.m.results[0].id, 1);
    assert_int_equal(b.m.results[0].st, MSG_ST_CANCELLED);

    /* SIGTERM with a job running: BYE drain, the job's result, BYE. */
    s_sleep_running(&b, 3, 200);
    kill(b.child, SIGTERM);
    s_expect(&b, MSG_BYE);
    assert_true(b.m.drain);
    s_expect(&b, MSG_RESULTS);
    assert_int_equal(b.m.results[0].id, 3);
    assert_int_equal(b.m.results[0].st, MSG_ST_OK);
    assert_int_equal(b.m.credit, 0);   /* no credit while draining */
    s_expect(&b, MSG_BYE);
    assert_false(b.m.drain);
    assert_int_equal(s_exit_status(&b), WPROC_EXIT_OK);
    s_stop(&b);
}

static void test_second_sigterm_leaves_now(void **state)
{
    (void)state;
    broker_t b;
    s_start(&b, 2, 0);
    s_expect(&b, MSG_HELLO);
    s_welcome(&b, 1000);
    s_sleep_running(&b, 1, 60000);
    kill(b.child, SIGTERM);
    s_expect(&b, MSG_BYE);
    assert_true(b.m.drain);
    kill(b.child, SIGTERM);
    s_expect(&b, MSG_BYE);   /* without a result: the broker requeues the job */
    assert_false(b.m.drain);
    assert_int_equal(s_exit_status(&b), WPROC_EXIT_OK);
    s_stop(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_jobs_results),
        cmocka_unit_test(test_heartbeat_and_reconnect),
        cmocka_unit_test(test_hello_again_after_error),
        cmocka_unit_test(test_cancel_and_drain),
        cmocka_unit_test(test_second_sigterm_leaves_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
