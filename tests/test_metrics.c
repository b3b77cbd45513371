/* test_metrics.c -- the Prometheus text of a STATS_REP (every family with
 * HELP and TYPE, label values escaped, the histogram cumulative), the
 * STATS_REP keys it reads through the codec, the addresses metrics_new
 * refuses, and the HTTP side for real: loopback sockets ask for /metrics,
 * other paths and methods, and garbage, while the test drives
 * metrics_poll as the broker's loop does. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "metrics.h"

static const uint64_t s_le[] = {100, 2500, 2500000};   /* 0.0001 s, 0.0025 s, 2.5 s */
static const uint64_t s_wait_default[] = {3, 0, 2, 1}; /* the last: past 2.5 s */
static const uint64_t s_wait_odd[] = {1, 1, 1, 1};

/* Two queues, one of them with every character a label must escape. */
static void s_sample(msg_stats_t *st, msg_qstat_t qs[2])
{
    static const char odd[] = "a\"b\\c\nd";
    memset(st, 0, sizeof *st);
    qs[0] = (msg_qstat_t){.name = {"default", 7}, .depth = 4, .submitted = 10, .done = 5,
                          .failed = 1, .retried = 2, .compute_us = 1500000, .dispatched = 6,
                          .wait_us = 1500000, .wait = s_wait_default, .nwait = 4};
    qs[1] = (msg_qstat_t){.name = {odd, sizeof odd - 1}, .submitted = 7, .done = 7,
                          .dispatched = 4, .wait_us = 12, .wait = s_wait_odd, .nwait = 4};
    st->queues = qs;
    st->nqueues = 2;
    st->uptime_ms = 12345;
    st->workers = 2;
    st->slots = 8;
    st->busy = 3;
    st->fsyncs = 4;
    st->fsync_us = 2500;
    st->journal_bytes = 4096;
    st->bad_by_code[QJ_E_BODY] = 5;
    st->bad_frames = 5;
    st->wait_le = s_le;
    st->nwait_le = 3;
}

static char *s_render(const msg_stats_t *st)
{
    size_t len = 0;
    char *text = metrics_render(st, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

static void s_has(const char *text, const char *line)
{
    if (!strstr(text, line))
        fail_msg("missing from the metrics text: %s\n---\n%s", line, text ? text : "");
}

/* Every sample's family has exactly one TYPE line and one HELP line before
 * it, and every line is a comment or "name[{labels}] value". */
static void s_check_format(const char *text)
{
    char *copy = strdup(text), *save = NULL;
    assert_non_null(copy);
    char typed[64][64];
    int ntyped = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[64];
        if (sscanf(line, "# TYPE %63s", name) == 1) {
            for (int i = 0; i < ntyped; i++)
                assert_string_not_equal(typed[i], name);
            assert_true(ntyped < 64);
            strcpy(typed[ntyped++], name);
            continue;
        }
        if (line[0] == '#') {
            assert_int_equal(strncmp(line, "# HELP qjob_", 12), 0);
            continue;
        }
        size_t n = strcspn(line, "{ ");
        assert_true(n > 0 && n < sizeof name);
        memcpy(name, line, n);
        name[n] = '\0';
        const char *value = strrchr(line, ' ');
        assert_non_null(value);
        char *end;
        strtod(value + 1, &end);
        assert_true(*end == '\0' && end > value + 1);
        bool found = false;
        for (int i = 0; i < ntyped && !found; i++) {
            size_t tl = strlen(typed[i]);
            found = strncmp(name, typed[i], tl) == 0 &&
                    (!name[tl] || !strcmp(name + tl, "_bucket") || !strcmp(name + tl, "_sum") ||
                     !strcmp(name + tl, "_count"));
        }
        if (!found)
            fail_msg("sample without a TYPE line before it: %s", line);
    }
    free(copy);
}

static void test_render(void **state)
{
    (void)state;
    msg_stats_t st;
    msg_qstat_t qs[2];
    s_sample(&st, qs);
    char *text = s_render(&st);
    s_check_format(text);
    s_has(text, "# HELP qjob_jobs_submitted_total Jobs accepted, by queue.\n"
                "# TYPE qjob_jobs_submitted_total counter\n"
                "qjob_jobs_submitted_total{queue=\"default\"} 10\n"
                "qjob_jobs_submitted_total{queue=\"a\\\"b\\\\c\\nd\"} 7\n");
    s_has(text, "qjob_jobs_done_total{queue=\"default\"} 5\n");
    s_has(text, "qjob_jobs_failed_total{queue=\"default\"} 1\n");
    s_has(text, "qjob_jobs_retried_total{queue=\"default\"} 2\n");
    s_has(text, "# TYPE qjob_queue_ready gauge\nqjob_queue_ready{queue=\"default\"} 4\n");
    s_has(text, "qjob_job_compute_seconds_total{queue=\"default\"} 1.500000\n");
    s_has(text, "\nqjob_uptime_seconds 12.345\n");
    s_has(text, "\nqjob_workers 2\n");
    s_has(text, "\nqjob_worker_slots 8\n");
    s_has(text, "\nqjob_worker_slots_busy 3\n");
    s_has(text, "\nqjob_journal_written_bytes_total 4096\n");
    s_has(text, "\nqjob_journal_fsyncs_total 4\n");
    s_has(text, "\nqjob_journal_fsync_seconds_total 0.002500\n");
    s_has(text, "qjob_bad_frames_total{code=\"body\"} 5\n");
    s_has(text, "qjob_bad_frames_total{code=\"frame\"} 0\n");
    /* The histogram: cumulative buckets, bounds in seconds, +Inf = _count. */
    s_has(text, "# TYPE qjob_dispatch_wait_seconds histogram\n"
                "qjob_dispatch_wait_seconds_bucket{queue=\"default\",le=\"0.0001\"} 3\n"
                "qjob_dispatch_wait_seconds_bucket{queue=\"default\",le=\"0.0025\"} 3\n"
                "qjob_dispatch_wait_seconds_bucket{queue=\"default\",le=\"2.5\"} 5\n"
                "qjob_dispatch_wait_seconds_bucket{queue=\"default\",le=\"+Inf\"} 6\n"
                "qjob_dispatch_wait_seconds_sum{queue=\"default\"} 1.500000\n"
                "qjob_dispatch_wait_seconds_count{queue=\"default\"} 6\n");
    s_has(text, "qjob_dispatch_wait_seconds_count{queue=\"a\\\"b\\\\c\\nd\"} 4\n");
    free(text);
}

static void test_render_without_histogram(void **state)
{
    (void)state;
    msg_stats_t st;
    msg_qstat_t qs[2];
    s_sample(&st, qs);
    qs[1].nwait = 0;    /* as from a broker that does not send it */
    st.nqueues = 2;
    char *text = s_render(&st);
    s_check_format(text);
    s_has(text, "qjob_dispatch_wait_seconds_count{queue=\"default\"} 6\n");
    assert_null(strstr(text, "qjob_dispatch_wait_seconds_count{queue=\"a"));
    s_has(text, "qjob_jobs_done_total{queue=\"a\\\"b\\\\c\\nd\"} 7\n");
    free(text);
    /* No queue at all: every family still has its HELP and TYPE. */
    st.nqueues = 0;
    text = s_render(&st);
    s_check_format(text);
    s_has(text, "# TYPE qjob_jobs_submitted_total counter\n");
    s_has(text, "# TYPE qjob_dispatch_wait_seconds histogram\n");
    free(text);
}

/* The figures the text is made of survive the wire (PROTOCOL.md §5.3). */
static void test_stats_rep_keys(void **state)
{
    (void)state;
    msg_t m = {.cmd = MSG_STATS_REP, .rid = 9};
    msg_qstat_t qs[2];
    s_sample(&m.stats, qs);
    m.stats.dispatched = 10;
    m.stats.journal_disk = 5000;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    char err[256];
    assert_int_equal(msg_encode(&buf, &m, err, sizeof err), 0);
    msg_reader_t *r = msg_reader_new();
    msg_t out;
    assert_int_equal(msg_decode(r, buf.data, buf.size, &out, err, sizeof err), QJ_E_OK);
    const msg_stats_t *s = &out.stats;
    assert_int_equal(s->slots, 8);
    assert_int_equal(s->busy, 3);
    assert_int_equal(s->dispatched, 10);
    assert_int_equal(s->journal_bytes, 4096);
    assert_int_equal(s->journal_disk, 5000);
    assert_int_equal(s->fsyncs, 4);
    assert_int_equal(s->fsync_us, 2500);
    assert_int_equal(s->nwait_le, 3);
    assert_memory_equal(s->wait_le, s_le, sizeof s_le);
    assert_int_equal(s->nqueues, 2);
    assert_int_equal(s->queues[0].dispatched, 6);
    assert_int_equal(s->queues[0].wait_us, 1500000);
    assert_int_equal(s->queues[0].nwait, 4);
    assert_memory_equal(s->queues[0].wait, s_wait_default, sizeof s_wait_default);
    /* And render the same as the original. */
    char *a = s_render(&m.stats), *b = s_render(s);
    assert_string_equal(a, b);
    free(a);
    free(b);
    msg_reader_destroy(&r);
    msgpack_sbuffer_destroy(&buf);
}

/* ---- the HTTP side */

typedef struct ctx {
    int collects, releases;
    bool fail;
} ctx_t;

static int s_collect(void *arg, msg_stats_t *st)
{
    ctx_t *c = arg;
    static msg_qstat_t qs[2];
    if (c->fail)
        return -1;
    c->collects++;
    s_sample(st, qs);
    return 0;
}

static void s_release(void *arg, msg_stats_t *st)
{
    ctx_t *c = arg;
    c->releases++;
    memset(st, 0, sizeof *st);
}

static void test_refused(void **state)
{
    (void)state;
    ctx_t c = {0};
    char err[512];
    const char *bad[] = {"10.1.2.3:9187", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999",
                         "127.0.0.1:9x", ":9187", "[::1]", "no.such.host.invalid:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        metrics_t *m = metrics_new(bad[i], false, s_collect, s_release, &c, err, sizeof err);
        if (m)
            fail_msg("metrics_new took %s", bad[i]);
        assert_true(strlen(err) > 10);
    }
    metrics_new("10.1.2.3:9187", false, s_collect, s_release, &c, err, sizeof err);
    assert_non_null(strstr(err, "refusing"));
    assert_non_null(strstr(err, "--insecure"));
}

/* Send req to port and read the answer until the server closes, driving
 * m as the broker's loop does.  Returns the answer (static buffer). */
static const char *s_ask(metrics_t *m, int port, const char *req, size_t reqlen)
{
    static char out[65536];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(send(fd, req, reqlen, 0), (ssize_t)reqlen);
    shutdown(fd, SHUT_WR);
    size_t got = 0;
    for (int turn = 0; turn < 5000; turn++) {
        struct pollfd p[2] = {{.fd = metrics_fd(m), .events = POLLIN},
                              {.fd = fd, .events = POLLIN}};
        int rc = poll(p, 2, (int)metrics_timeout(m, 10));
        assert_true(rc >= 0);
        metrics_poll(m, p[0].revents & POLLIN);
        if (!(p[1].revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t n = recv(fd, out + got, sizeof out - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    out[got] = '\0';
    close(fd);
    return out;
}

/* The status code of an HTTP answer, 0 if it is not one. */
static int s_status(const char *a)
{
    int code = 0;
    return sscanf(a, "HTTP/1.%*d %d", &code) == 1 ? code : 0;
}

static void test_http(void **state)
{
    (void)state;
    ctx_t c = {0};
    char err[512];
    metrics_t *m = metrics_new("127.0.0.1:0", false, s_collect, s_release, &c, err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    int port = 0;
    assert_int_equal(sscanf(metrics_url(m), "http://127.0.0.1:%d/metrics", &port), 1);
    assert_true(port > 0);

    static const char get[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    const char *a = s_ask(m, port, get, sizeof get - 1);
    assert_int_equal(s_status(a), 200);
    s_has(a, "text/plain; version=0.0.4");
    s_has(a, "qjob_dispatch_wait_seconds_count{queue=\"default\"} 6\n");
    assert_int_equal(c.collects, 1);
    assert_int_equal(c.releases, 1);

    static const char other[] = "GET /other HTTP/1.0\r\n\r\n";
    assert_int_equal(s_status(s_ask(m, port, other, sizeof other - 1)), 404);
    static const char post[] = "POST /metrics HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi";
    a = s_ask(m, port, post, sizeof post - 1);
    assert_int_equal(s_status(a), 405);
    s_has(a, "Allow: GET, HEAD");
    /* Garbage: refused or closed, and the next request is served. */
    static const char junk[] = "\x16\x03\x01\x02\x00garbage\r\n\r\n";
    a = s_ask(m, port, junk, sizeof junk - 1);
    assert_true(!a[0] || s_status(a) == 400);
    c.fail = true;
    assert_int_equal(s_status(s_ask(m, port, get, sizeof get - 1)), 500);
    c.fail = false;
    assert_int_equal(s_status(s_ask(m, port, get, sizeof get - 1)), 200);
    assert_int_equal(c.collects, 2);
    assert_int_equal(c.releases, 2);
    metrics_destroy(&m);
    assert_null(m);
    metrics_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_render_without_histogram),
        cmocka_unit_test(test_stats_rep_keys),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
