/* test_msg.c -- the wire codec: round trips of every command, golden bytes
 * from PROTOCOL.md, every truncation, wrong types, every limit at and just
 * over, hostile headers, reader reuse.
 *
 * Frames handed to msg_decode are copied into heap blocks of exactly their
 * length, so ASan/valgrind catch any read past the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mpck.h"
#include "msg.h"

static msg_reader_t *R;
static char E[512];
static void *s_frame;          /* the frame of the last decode: decoded pointers borrow it */
static msgpack_sbuffer s_sb;

static int setup(void **state)
{
    (void)state;
    R = msg_reader_new();
    msgpack_sbuffer_init(&s_sb);
    return R ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    msg_reader_destroy(&R);
    msg_reader_destroy(&R); /* safe twice */
    free(s_frame);
    s_frame = NULL;
    msgpack_sbuffer_destroy(&s_sb);
    return 0;
}

/* Decode len bytes through an exact-size heap copy that stays alive until
 * the next call. */
static msg_err_t dec(const void *bytes, size_t len, msg_t *out)
{
    free(s_frame);
    s_frame = malloc(len ? len : 1);
    assert_non_null(s_frame);
    if (len) memcpy(s_frame, bytes, len);
    E[0] = '\0';
    msg_err_t rc = msg_decode(R, s_frame, len, out, E, sizeof E);
    if (rc != QJ_E_OK) assert_true(strlen(E) > 0);
    return rc;
}

static void enc_ok(const msg_t *m)
{
    int rc = msg_encode(&s_sb, m, E, sizeof E);
    if (rc != 0) fail_msg("encode of %s failed: %s", msg_cmd_name(m->cmd), E);
}

/* ---- a tiny frame builder for hand-made (and hostile) bodies -----------
 * fmt: mN map of N pairs, aN array of N items, s str(const char *), S str of n 'x'
 * (size_t), B bin of n bytes (size_t), u uint (unsigned long long),
 * i int (long long), n nil, T true, F false, d double.  Spaces ignored. */
static msgpack_sbuffer s_hand;

static void vpack(msgpack_packer *pk, const char *fmt, va_list ap)
{
    static char fill[2 * 1024 * 1024];
    if (!fill[0]) memset(fill, 'x', sizeof fill);
    for (const char *c = fmt; *c; c++) {
        switch (*c) {
        case 'm':
        case 'a': {
            char kind = *c;
            char *after;
            size_t n = strtoul(c + 1, &after, 10);
            if (kind == 'm') msgpack_pack_map(pk, n);
            else msgpack_pack_array(pk, n);
            c = after - 1;
            break;
        }
        case 's': {
            const char *s = va_arg(ap, const char *);
            msgpack_pack_str_with_body(pk, s, strlen(s));
            break;
        }
        case 'S': {
            size_t n = va_arg(ap, size_t);
            assert_true(n <= sizeof fill);
            msgpack_pack_str_with_body(pk, fill, n);
            break;
        }
        case 'B': {
            size_t n = va_arg(ap, size_t);
            assert_true(n <= sizeof fill);
            msgpack_pack_bin_with_body(pk, fill, n);
            break;
        }
        case 'u': msgpack_pack_uint64(pk, va_arg(ap, unsigned long long)); break;
        case 'i': msgpack_pack_int64(pk, va_arg(ap, long long)); break;
        case 'n': msgpack_pack_nil(pk); break;
        case 'T': msgpack_pack_true(pk); break;
        case 'F': msgpack_pack_false(pk); break;
        case 'd': msgpack_pack_double(pk, va_arg(ap, double)); break;
        case ' ': break;
        default: fail_msg("bad builder format char %c", *c);
        }
    }
}

/* Build a frame "QJ 1 cmd" + body from fmt; returns the decode result. */
static msg_err_t hand(uint8_t cmd, msg_t *out, const char *fmt, ...)
{
    msgpack_packer pk;
    s_hand.size = 0;
    const char hdr[4] = {'Q', 'J', 1, (char)cmd};
    msgpack_sbuffer_write(&s_hand, hdr, 4);
    msgpack_packer_init(&pk, &s_hand, msgpack_sbuffer_write);
    va_list ap;
    va_start(ap, fmt);
    vpack(&pk, fmt, ap);
    va_end(ap);
    return dec(s_hand.data, s_hand.size, out);
}

/* ---- equality ----------------------------------------------------------- */

static void bytes_eq(msg_bytes_t a, msg_bytes_t b, const char *what)
{
    if (!a.ptr || !b.ptr) {
        if (a.ptr != b.ptr) fail_msg("%s: one side absent", what);
        return;
    }
    if (a.len != b.len || memcmp(a.ptr, b.ptr, a.len) != 0) fail_msg("%s differs", what);
}

static void uints_eq(const uint64_t *a, uint32_t na, const uint64_t *b, uint32_t nb)
{
    assert_int_equal(na, nb);
    for (uint32_t i = 0; i < na; i++)
        assert_int_equal(a[i], b[i]);
}

static void job_eq(const msg_job_t *a, const msg_job_t *b)
{
    assert_int_equal(a->ref, b->ref);
    assert_int_equal(a->id, b->id);
    bytes_eq(a->task, b->task, "task");
    bytes_eq(a->args, b->args, "args");
    bytes_eq(a->queue, b->queue, "queue");
    bytes_eq(a->key, b->key, "key");
    assert_int_equal(a->pri, b->pri);
    assert_int_equal(a->timeout_ms, b->timeout_ms);
    assert_int_equal(a->retries, b->retries);
    assert_int_equal(a->backoff_ms, b->backoff_ms);
    assert_int_equal(a->at_us, b->at_us);
    assert_int_equal(a->parent, b->parent);
    assert_int_equal(a->attempt, b->attempt);
    assert_int_equal(a->t_submit, b->t_submit);
    assert_int_equal(a->detach, b->detach);
    assert_int_equal(a->progress, b->progress);
}

static void result_eq(const msg_result_t *a, const msg_result_t *b)
{
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->ref, b->ref);
    assert_int_equal(a->st, b->st);
    assert_int_equal(a->state, b->state);
    bytes_eq(a->value, b->value, "val");
    bytes_eq(a->error, b->error, "err");
    bytes_eq(a->worker, b->worker, "wk");
    bytes_eq(a->queue, b->queue, "q");
    bytes_eq(a->task, b->task, "task");
    assert_int_equal(a->attempts, b->attempts);
    assert_memory_equal(&a->t, &b->t, sizeof a->t);
    assert_int_equal(a->prog_done, b->prog_done);
    assert_int_equal(a->prog_total, b->prog_total);
    bytes_eq(a->prog_note, b->prog_note, "prog note");
}

static void msg_eq(const msg_t *a, const msg_t *b)
{
    assert_int_equal(a->cmd, b->cmd);
    assert_int_equal(a->rid, b->rid);
    assert_int_equal(a->role, b->role);
    bytes_eq(a->name, b->name, "name");
    bytes_eq(a->cid, b->cid, "cid");
    bytes_eq(a->replaces, b->replaces, "replaces");
    assert_int_equal(a->nqueues, b->nqueues);
    for (uint32_t i = 0; i < a->nqueues; i++) bytes_eq(a->queues[i], b->queues[i], "queues");
    assert_int_equal(a->credit, b->credit);
    assert_int_equal(a->heartbeat_ms, b->heartbeat_ms);
    assert_int_equal(a->liveness, b->liveness);
    assert_int_equal(a->max_msg, b->max_msg);
    assert_int_equal(a->drain, b->drain);
    assert_int_equal(a->code, b->code);
    bytes_eq(a->text, b->text, "text");
    assert_int_equal(a->about, b->about);
    assert_int_equal(a->njobs, b->njobs);
    for (uint32_t i = 0; i < a->njobs; i++) job_eq(&a->jobs[i], &b->jobs[i]);
    assert_int_equal(a->nacks, b->nacks);
    for (uint32_t i = 0; i < a->nacks; i++) {
        assert_int_equal(a->acks[i].ref, b->acks[i].ref);
        assert_int_equal(a->acks[i].id, b->acks[i].id);
        assert_int_equal(a->acks[i].code, b->acks[i].code);
        bytes_eq(a->acks[i].text, b->acks[i].text, "ack text");
    }
    assert_int_equal(a->nresults, b->nresults);
    for (uint32_t i = 0; i < a->nresults; i++) result_eq(&a->results[i], &b->results[i]);
    assert_int_equal(a->nids, b->nids);
    for (uint32_t i = 0; i < a->nids; i++) assert_int_equal(a->ids[i], b->ids[i]);
    assert_int_equal(a->noutcomes, b->noutcomes);
    for (uint32_t i = 0; i < a->noutcomes; i++) {
        assert_int_equal(a->outcomes[i].id, b->outcomes[i].id);
        assert_int_equal(a->outcomes[i].outcome, b->outcomes[i].outcome);
    }
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->done, b->done);
    assert_int_equal(a->total, b->total);
    bytes_eq(a->note, b->note, "note");
    bytes_eq(a->queue, b->queue, "queue");
    assert_int_equal(a->limit, b->limit);

    const msg_stats_t *s = &a->stats, *t = &b->stats;
    assert_int_equal(s->uptime_ms, t->uptime_ms);
    assert_int_equal(s->clients, t->clients);
    assert_int_equal(s->workers, t->workers);
    assert_int_equal(s->submitted, t->submitted);
    assert_int_equal(s->done, t->done);
    assert_int_equal(s->failed, t->failed);
    assert_int_equal(s->retried, t->retried);
    assert_int_equal(s->lost, t->lost);
    assert_int_equal(s->cancelled, t->cancelled);
    assert_int_equal(s->bad_frames, t->bad_frames);
    assert_memory_equal(s->bad_by_code, t->bad_by_code, sizeof s->bad_by_code);
    assert_int_equal(s->rejected, t->rejected);
    assert_int_equal(s->results_kept, t->results_kept);
    assert_int_equal(s->rss_bytes, t->rss_bytes);
    assert_int_equal(s->nqueues, t->nqueues);
    for (uint32_t i = 0; i < s->nqueues; i++) {
        const msg_qstat_t *x = &s->queues[i], *y = &t->queues[i];
        bytes_eq(x->name, y->name, "qstat name");
        assert_int_equal(x->depth, y->depth);
        assert_int_equal(x->delayed, y->delayed);
        assert_int_equal(x->running, y->running);
        assert_int_equal(x->workers, y->workers);
        assert_int_equal(x->submitted, y->submitted);
        assert_int_equal(x->done, y->done);
        assert_int_equal(x->failed, y->failed);
        assert_int_equal(x->retried, y->retried);
        assert_int_equal(x->dead, y->dead);
        assert_int_equal(x->comm_us, y->comm_us);
        assert_int_equal(x->compute_us, y->compute_us);
        uints_eq(x->b_jobs, x->nb_jobs, y->b_jobs, y->nb_jobs);
        uints_eq(x->b_comm_us, x->nb_comm_us, y->b_comm_us, y->nb_comm_us);
        uints_eq(x->b_compute_us, x->nb_compute_us, y->b_compute_us, y->nb_compute_us);
    }
    assert_int_equal(s->nworkers, t->nworkers);
    for (uint32_t i = 0; i < s->nworkers; i++) {
        const msg_wstat_t *x = &s->workers_list[i], *y = &t->workers_list[i];
        bytes_eq(x->name, y->name, "wstat name");
        assert_int_equal(x->slots, y->slots);
        assert_int_equal(x->busy, y->busy);
        assert_int_equal(x->done, y->done);
        assert_int_equal(x->idle_ms, y->idle_ms);
    }
}

/* ---- fixtures: every command, all fields and only the required ones ------ */

#define B(s) ((msg_bytes_t){s, sizeof(s) - 1})
#define BS(s) {s, sizeof(s) - 1}
static const char CID[16] = "0123456789abcdef";
static msg_bytes_t s_queues[] = {{"default", 7}, {"gpu", 3}};
static msg_job_t s_submit_jobs[] = {
    {.ref = 1, .task = BS("echo"), .args = {"\x81\xa1x\x01", 4}, .queue = BS("gpu"), .key = BS("k-1"),
     .pri = -128, .timeout_ms = 30000, .retries = 3, .backoff_ms = 250, .at_us = 1700000000000000ull,
     .parent = 77, .t_submit = 1700000000000001ull, .detach = true, .progress = true},
    {.ref = UINT64_MAX, .task = BS("t"), .pri = 127, .args = {"", 0}, .key = {"", 0}},
};
static msg_job_t s_submit_min[] = {{.ref = 0, .task = BS("x")}};
static msg_job_t s_jobs_jobs[] = {
    {.id = 1234567, .task = BS("echo"), .args = {"\x81\xa1x\x01", 4}, .queue = BS("default"),
     .attempt = 1, .timeout_ms = 5, .parent = 9, .t_submit = 123},
    {.id = UINT64_MAX, .task = BS("t"), .queue = BS("q"), .attempt = UINT32_MAX},
};
static msg_ack_t s_acks[] = {{.ref = 1, .id = 1234567},
                             {.ref = 2, .code = QJ_E_QUEUE_FULL, .text = BS("queue 'default' is full")},
                             {.ref = 3, .code = QJ_E_LIMIT, .text = {"", 0}}};
static uint64_t s_ids[] = {1, 2, UINT64_MAX, 0};
static msg_result_t s_results[] = {
    {.id = 5, .ref = 6, .st = MSG_ST_ERROR, .value = {"\xc0", 1}, .error = BS("boom"),
     .worker = BS("host:77/0"), .attempts = 2, .t = {1, 2, 3, 4, UINT64_MAX}},
    {.id = 6, .st = MSG_ST_OK},
};
static msg_result_t s_status[] = {
    {.id = 5, .ref = 6, .st = MSG_ST_OK, .state = MSG_STATE_DONE, .value = {"\x01", 1},
     .worker = BS("w"), .attempts = 1, .t = {1, 0, 0, 0, 5}, .queue = BS("default"), .task = BS("echo"),
     .prog_done = 3, .prog_total = 10, .prog_note = BS("a third")},
    {.id = 7, .state = MSG_STATE_QUEUED, .queue = BS("q"), .task = BS("t")},
    {.id = 8, .state = MSG_STATE_RUNNING, .prog_done = 1, .prog_total = 2},
    {.id = 9, .state = MSG_STATE_UNKNOWN},
};
static msg_outcome_t s_outcomes[] = {{1, MSG_CANCEL_REMOVED}, {2, MSG_CANCEL_REQUESTED}, {UINT64_MAX, 3}};
static const uint64_t s_bjobs[] = {1, 0, 3, UINT64_MAX}, s_bcomm[] = {5, 0, 7, 1},
                      s_bcompute[] = {9, 0, 0, 2};
static msg_qstat_t s_qstats[] = {
    {.name = BS("default"), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, .b_jobs = s_bjobs, .nb_jobs = 4,
     .b_comm_us = s_bcomm, .nb_comm_us = 4, .b_compute_us = s_bcompute, .nb_compute_us = 4},
    {.name = BS("q2")},
};
static msg_wstat_t s_wstats[] = {{.name = BS("host:1/0"), 4, 2, 100, 5}, {.name = BS("")}};

/* Fill *m with command cmd: every field (full) or only the required ones. */
static void fixture(uint8_t cmd, bool full, msg_t *m)
{
    memset(m, 0, sizeof *m);
    m->cmd = cmd;
    switch (cmd) {
    case MSG_HELLO:
        m->role = full ? MSG_ROLE_WORKER : MSG_ROLE_CLIENT;
        m->cid = (msg_bytes_t){CID, 16};
        if (full) {
            m->name = B("host:42/0");
            m->queues = s_queues;
            m->nqueues = 2;
            m->credit = 8;
            m->heartbeat_ms = 500;
            m->replaces = B("host:41/0");
            m->ids = s_ids;
            m->nids = 3;
        }
        break;
    case MSG_WELCOME:
        if (full) {
            m->heartbeat_ms = 1000;
            m->liveness = 3;
            m->max_msg = QJ_MAX_MSG;
            m->name = B("broker");
        }
        break;
    case MSG_BYE: m->drain = full; break;
    case MSG_ERROR:
        m->code = QJ_E_BODY;
        m->text = B("bad");
        if (full) {
            m->about = MSG_SUBMIT;
            m->rid = 99;
        }
        break;
    case MSG_SUBMIT:
        m->jobs = full ? s_submit_jobs : s_submit_min;
        m->njobs = full ? 2 : 1;
        break;
    case MSG_ACCEPTED:
        m->acks = full ? s_acks : NULL;
        m->nacks = full ? 3 : 0;
        break;
    case MSG_AWAIT:
    case MSG_TOUCH:
    case MSG_STATUS:
    case MSG_REQUEUE:
    case MSG_CANCEL:
        m->ids = s_ids;
        m->nids = full ? 4 : 1;
        if (cmd != MSG_AWAIT && cmd != MSG_TOUCH && (full || cmd != MSG_CANCEL)) m->rid = full ? 42 : 0;
        break;
    case MSG_RESULTS:
        if (full) {
            m->results = s_results;
            m->nresults = 2;
            m->credit = 2;
        }
        break;
    case MSG_STATUS_REP:
    case MSG_DEAD_REP:
        m->rid = full ? 7 : 0;
        m->results = full ? s_status : NULL;
        m->nresults = full ? 4 : 0;
        break;
    case MSG_CANCEL_REP:
    case MSG_REQUEUE_REP:
        m->rid = 3;
        m->outcomes = full ? s_outcomes : NULL;
        m->noutcomes = full ? 3 : 0;
        break;
    case MSG_PROGRESS:
        if (full) {
            m->id = 5;
            m->done = 1;
            m->total = 3;
            m->note = B("one of three");
        }
        break;
    case MSG_STATS: m->rid = full ? UINT64_MAX : 0; break;
    case MSG_STATS_REP:
        m->rid = 1;
        if (full) {
            msg_stats_t *s = &m->stats;
            uint64_t v = 1;
            uint64_t *f[] = {&s->uptime_ms, &s->clients, &s->workers, &s->submitted, &s->done,
                             &s->failed, &s->retried, &s->lost, &s->cancelled, &s->bad_frames,
                             &s->rejected, &s->results_kept, &s->rss_bytes};
            for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) *f[i] = v++;
            s->bad_by_code[QJ_E_FRAME] = 2;
            s->bad_by_code[QJ_E_BODY] = 5;
            s->bad_by_code[QJ_E_INTERNAL] = UINT64_MAX;
            s->queues = s_qstats;
            s->nqueues = 2;
            s->workers_list = s_wstats;
            s->nworkers = 2;
        }
        break;
    case MSG_DEAD:
        m->rid = 4;
        if (full) {
            m->queue = B("default");
            m->limit = 50;
        }
        break;
    case MSG_JOBS:
        m->jobs = full ? s_jobs_jobs : NULL;
        m->njobs = full ? 2 : 0;
        break;
    case MSG_CREDIT: m->credit = full ? 4 : 0; break;
    default: break;
    }
}

static const uint8_t ALL_CMDS[] = {
    MSG_HELLO, MSG_WELCOME, MSG_HEARTBEAT, MSG_BYE, MSG_ERROR, MSG_SUBMIT, MSG_ACCEPTED,
    MSG_AWAIT, MSG_RESULTS, MSG_STATUS, MSG_STATUS_REP, MSG_CANCEL, MSG_CANCEL_REP,
    MSG_PROGRESS, MSG_STATS, MSG_STATS_REP, MSG_DEAD, MSG_DEAD_REP, MSG_REQUEUE,
    MSG_REQUEUE_REP, MSG_JOBS, MSG_CREDIT, MSG_TOUCH,
};
#define NCMDS (sizeof ALL_CMDS / sizeof ALL_CMDS[0])

/* ---- round trips -------------------------------------------------------- */

static void test_round_trip_every_command(void **state)
{
    (void)state;
    msgpack_sbuffer again;
    msgpack_sbuffer_init(&again);
    for (size_t i = 0; i < NCMDS; i++) {
        for (int full = 0; full <= 1; full++) {
            msg_t m, out;
            fixture(ALL_CMDS[i], full, &m);
            enc_ok(&m);
            if (dec(s_sb.data, s_sb.size, &out) != QJ_E_OK)
                fail_msg("%s (full=%d): %s", msg_cmd_name(ALL_CMDS[i]), full, E);
            msg_eq(&m, &out);
            /* Re-encoding the decoded form gives the same bytes. */
            assert_int_equal(msg_encode(&again, &out, E, sizeof E), 0);
            assert_int_equal(again.size, s_sb.size);
            assert_memory_equal(again.data, s_sb.data, s_sb.size);
        }
    }
    msgpack_sbuffer_destroy(&again);
}

/* Only set optional fields go on the wire: the smallest frames are tiny. */
static void test_minimal_frames_are_small(void **state)
{
    (void)state;
    msg_t m;
    fixture(MSG_HEARTBEAT, false, &m);
    enc_ok(&m);
    assert_int_equal(s_sb.size, 5);
    assert_memory_equal(s_sb.data, "QJ\x01\x03\x80", 5);
    fixture(MSG_BYE, false, &m);
    enc_ok(&m);
    assert_int_equal(s_sb.size, 5);
    fixture(MSG_SUBMIT, false, &m);
    enc_ok(&m);
    /* {"jobs":[{"ref":0,"task":"x"}]} */
    const char want[] = "QJ\x01\x10\x81\xa4jobs\x91\x82\xa3ref\x00\xa4task\xa1x";
    assert_int_equal(s_sb.size, sizeof want - 1);
    assert_memory_equal(s_sb.data, want, sizeof want - 1);
}

/* The examples of PROTOCOL.md §8, byte for byte. */
static void test_golden_bytes_from_protocol(void **state)
{
    (void)state;
    msg_t m = {.cmd = MSG_WELCOME, .heartbeat_ms = 1000, .liveness = 3, .max_msg = 8388608};
    enc_ok(&m);
    const char welcome[] = "QJ\x01\x02\x83\xa2hb\xcd\x03\xe8\xa4live\x03\xa6maxmsg\xce\x00\x80\x00\x00";
    assert_int_equal(s_sb.size, sizeof welcome - 1);
    assert_memory_equal(s_sb.data, welcome, sizeof welcome - 1);

    msg_job_t job = {.ref = 1, .task = B("echo"), .args = {"\x81\xa1x\x01", 4}};
    m = (msg_t){.cmd = MSG_SUBMIT, .jobs = &job, .njobs = 1};
    enc_ok(&m);
    const char submit[] = "QJ\x01\x10\x81\xa4jobs\x91\x83\xa3ref\x01\xa4task\xa4" "echo"
                          "\xa4" "args\xc4\x04\x81\xa1x\x01";
    assert_int_equal(s_sb.size, sizeof submit - 1);
    assert_memory_equal(s_sb.data, submit, sizeof submit - 1);

    msg_ack_t ack = {.ref = 1, .id = 1234567};
    m = (msg_t){.cmd = MSG_ACCEPTED, .acks = &ack, .nacks = 1};
    enc_ok(&m);
    const char accepted[] = "QJ\x01\x11\x81\xa4" "acks\x91\x92\x01\xce\x00\x12\xd6\x87";
    assert_int_equal(s_sb.size, sizeof accepted - 1);
    assert_memory_equal(s_sb.data, accepted, sizeof accepted - 1);
}

/* ---- hostile and malformed input ----------------------------------------- */

static void test_every_truncation_is_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCMDS; i++) {
        msg_t m, out;
        fixture(ALL_CMDS[i], true, &m);
        enc_ok(&m);
        for (size_t len = 0; len < s_sb.size; len++) {
            msg_err_t rc = dec(s_sb.data, len, &out);
            assert_int_not_equal(rc, QJ_E_OK);
            assert_int_equal(rc, len < 4 ? QJ_E_FRAME : QJ_E_BODY);
        }
    }
}

static void test_header_checks(void **state)
{
    (void)state;
    msg_t out;
    uint8_t cmd = 0;
    assert_int_equal(dec("", 0, &out), QJ_E_FRAME);
    assert_int_equal(dec("QJ\x01", 3, &out), QJ_E_FRAME);
    assert_int_equal(dec("QX\x01\x03\x80", 5, &out), QJ_E_FRAME);
    assert_int_equal(dec("XJ\x01\x03\x80", 5, &out), QJ_E_FRAME);
    assert_int_equal(dec("QJ\x02\x03\x80", 5, &out), QJ_E_VERSION);
    assert_non_null(strstr(E, "version 2"));
    assert_int_equal(dec("QJ\x01\x99\x80", 5, &out), QJ_E_COMMAND);
    assert_non_null(strstr(E, "0x99"));
    assert_int_equal(dec("QJ\x01\x00\x80", 5, &out), QJ_E_COMMAND);
    assert_int_equal(dec("QJ\x01\x03", 4, &out), QJ_E_BODY);          /* no body at all */
    assert_int_equal(dec("QJ\x01\x03\x90", 5, &out), QJ_E_BODY);      /* body not a map */
    assert_int_equal(dec("QJ\x01\x03\xc0", 5, &out), QJ_E_BODY);
    assert_int_equal(dec("QJ\x01\x03\x80\x80", 6, &out), QJ_E_BODY);  /* trailing value */
    assert_int_equal(dec("QJ\x01\x03\x80", 5, &out), QJ_E_OK);
    assert_int_equal(out.cmd, MSG_HEARTBEAT);

    assert_true(msg_peek("QJ\x01\x10", 4, &cmd));
    assert_int_equal(cmd, MSG_SUBMIT);
    assert_false(msg_peek("QJ\x01", 3, &cmd));
    assert_false(msg_peek("QJ\x02\x10", 4, &cmd));
    assert_false(msg_peek("QJ\x01\x7f", 4, &cmd));
    assert_false(msg_peek("qJ\x01\x10", 4, NULL));
}

/* Five bytes of body ask msgpack-c for 22 million objects (512 MiB): the
 * pre-check refuses it, so the allocator is never asked. */
static void test_tiny_body_asking_for_512_mib(void **state)
{
    (void)state;
    msg_t out;
    const uint8_t f[] = {'Q', 'J', 1, MSG_AWAIT, 0xdd, 0x01, 0x55, 0x55, 0x55};
    assert_int_equal(dec(f, sizeof f, &out), QJ_E_BODY);
    assert_non_null(strstr(E, "array32 claims 22369621 items"));
    const uint8_t g[] = {'Q', 'J', 1, MSG_AWAIT, 0xdf, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(dec(g, sizeof g, &out), QJ_E_BODY);
    const uint8_t h[] = {'Q', 'J', 1, MSG_AWAIT, 0x81, 0xa3, 'i', 'd', 's', 0xdb, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(dec(h, sizeof h, &out), QJ_E_BODY);
}

static void test_non_minimal_encodings_accepted(void **state)
{
    (void)state;
    msg_t out;
    /* map32 body, str8 key, array32 of 2 ids, ids as uint64 and int8. */
    const uint8_t f[] = {'Q', 'J', 1, MSG_AWAIT, 0xdf, 0, 0, 0, 1, 0xd9, 3, 'i', 'd', 's',
                         0xdd, 0, 0, 0, 2, 0xcf, 0, 0, 0, 0, 0, 0, 0, 7, 0xd0, 0x05};
    assert_int_equal(dec(f, sizeof f, &out), QJ_E_OK);
    assert_int_equal(out.nids, 2);
    assert_int_equal(out.ids[0], 7);
    assert_int_equal(out.ids[1], 5);
    /* A str32 task and a bin32 args. */
    const uint8_t g[] = {'Q', 'J', 1, MSG_SUBMIT, 0x81, 0xa4, 'j', 'o', 'b', 's', 0x91, 0x83,
                         0xa3, 'r', 'e', 'f', 0xcd, 0, 9, 0xa4, 't', 'a', 's', 'k',
                         0xdb, 0, 0, 0, 2, 'h', 'i', 0xa4, 'a', 'r', 'g', 's', 0xc6, 0, 0, 0, 1, 0xc0};
    assert_int_equal(dec(g, sizeof g, &out), QJ_E_OK);
    assert_int_equal(out.jobs[0].ref, 9);
    assert_int_equal(out.jobs[0].task.len, 2);
    assert_memory_equal(out.jobs[0].task.ptr, "hi", 2);
    assert_int_equal(out.jobs[0].args.len, 1);
    /* str and bin borrow from the frame. */
    assert_true(out.jobs[0].task.ptr > (char *)s_frame && out.jobs[0].task.ptr < (char *)s_frame + sizeof g);
}

/* Both fast paths give way to the generic walk at their edges, with the
 * same result: the decoder's (a key matched as one word, common encodings
 * read in place) for keys that share a prefix or a length with a known
 * one, keys of over 7 bytes, a pair within 8 bytes of the body's end, a
 * duplicate; the encoder's (fields written into room reserved per map)
 * for strings around the size it writes in place. */
static void test_fast_path_edges(void **state)
{
    (void)state;
    msg_t out;
    /* "timedoux" differs from "timedout" past the first word; "timedou"
     * and "timedouts" only in length. */
    assert_int_equal(hand(MSG_HELLO, &out, "m4 s u s a1 u s a1 u s a1 u", "role", 1ull, "timedoux", 5ull,
                          "timedou", 6ull, "timedouts", 8ull),
                     QJ_E_OK);
    assert_int_equal(out.nids, 0);
    assert_int_equal(hand(MSG_HELLO, &out, "m3 s u s a1 u s a1 u", "role", 1ull, "timedoux", 5ull,
                          "timedout", 7ull),
                     QJ_E_OK);
    assert_int_equal(out.nids, 1);
    assert_int_equal(out.ids[0], 7);
    assert_int_equal(hand(MSG_HELLO, &out, "m2 s u s s", "role", 1ull, "replacez", "w1"), QJ_E_OK);
    assert_null(out.replaces.ptr);
    assert_int_equal(hand(MSG_HELLO, &out, "m2 s u s s", "role", 1ull, "replaces", "w1"), QJ_E_OK);
    bytes_eq(out.replaces, B("w1"), "replaces");
    /* The last pair within 8 bytes of the end: "hb" 5 is 4 bytes. */
    assert_int_equal(hand(MSG_WELCOME, &out, "m3 s u s u s u", "maxmsg", 1000ull, "live", 3ull, "hb", 5ull),
                     QJ_E_OK);
    assert_int_equal(out.heartbeat_ms, 5);
    assert_int_equal(out.liveness, 3);
    assert_int_equal(out.max_msg, 1000);
    /* A duplicate is refused whichever path read the first one. */
    assert_int_equal(hand(MSG_CREDIT, &out, "m2 s u s u", "credit", 1ull, "credit", 2ull), QJ_E_BODY);
    assert_string_equal(E, "credit: key 'credit' appears twice");
    /* A value over its width goes to the generic walk, which names it. */
    assert_int_equal(hand(MSG_CREDIT, &out, "m1 s u", "credit", 1ull << 32), QJ_E_BODY);
    assert_non_null(strstr(E, "credit"));
    assert_non_null(strstr(E, "at most 4294967295"));
    /* Task names of every length around the encoder's in-place size. */
    char name[64];
    memset(name, 't', sizeof name);
    for (uint32_t len = 30; len <= sizeof name; len++) {
        msg_job_t j = {.ref = len, .task = {name, len}, .queue = {name, len > 32 ? 32 : len},
                       .key = {name, len}};
        msg_t m = {.cmd = MSG_SUBMIT, .jobs = &j, .njobs = 1};
        enc_ok(&m);
        assert_int_equal(dec(s_sb.data, s_sb.size, &out), QJ_E_OK);
        assert_int_equal(out.jobs[0].ref, len);
        bytes_eq(out.jobs[0].task, j.task, "task");
        bytes_eq(out.jobs[0].queue, j.queue, "q");
        bytes_eq(out.jobs[0].key, j.key, "key");
    }
}

static void test_unknown_keys_ignored(void **state)
{
    (void)state;
    msg_t out;
    assert_int_equal(hand(MSG_HELLO, &out, "m5 s u s m1 s a2 n T s B s s s d", "role", 0ull, "future",
                          "deep", "cid", (size_t)16, "name", "n", "float", 1.5),
                     QJ_E_OK);
    assert_int_equal(out.role, 0);
    assert_int_equal(out.cid.len, 16);
    bytes_eq(out.name, B("n"), "name");
    /* SUBMIT does not know the broker's "id" and "attempt": ignored. */
    assert_int_equal(hand(MSG_SUBMIT, &out, "m1 s a1 m4 s u s s s u s u", "jobs", "ref", 3ull,
                          "task", "t", "id", 9ull, "attempt", 2ull),
                     QJ_E_OK);
    assert_int_equal(out.jobs[0].id, 0);
    assert_int_equal(out.jobs[0].attempt, 0);
    /* Extra tuple items are ignored too. */
    assert_int_equal(hand(MSG_CANCEL_REP, &out, "m2 s u s a1 a3 u u s", "rid", 1ull, "items", 5ull,
                          1ull, "later"),
                     QJ_E_OK);
    assert_int_equal(out.outcomes[0].id, 5);
    assert_int_equal(out.outcomes[0].outcome, 1);
}

/* The decoder checks the bytes as it walks them (no separate pre-check
 * for bodies under 1 MiB): what it skips or meets in passing is held to
 * mpck's rules all the same, a fault in the bytes is reported with mpck's
 * message, and it wins over a fault in the content met first. */
static void test_walk_checks_what_mpck_checks(void **state)
{
    (void)state;
    msg_t out;
    char want[256];
    static const struct {
        const char *what;
        uint8_t body[48];
        size_t len;
    } bad[] = {
        /* CREDIT {"x": <value>, "credit": 1}, <value> skipped as unknown */
        {"0xc1 in a skipped value", {0x82, 0xa1, 'x', 0x91, 0xc1, 0xa6, 'c', 'r', 'e', 'd', 'i', 't', 1}, 13},
        {"timestamp of 2 bytes in a skipped value",
         {0x82, 0xa1, 'x', 0xd5, 0xff, 0xff, 0xff, 0xa6, 'c', 'r', 'e', 'd', 'i', 't', 1}, 15},
        {"bad timestamp of 8 bytes",
         {0x82, 0xa1, 'x', 0xd7, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xa6, 'c', 'r', 'e', 'd', 'i', 't', 1},
         21},
        {"skipped array claiming more than is left",
         {0x82, 0xa1, 'x', 0xdc, 0x00, 0x10, 1, 0xa6, 'c', 'r', 'e', 'd', 'i', 't', 1}, 15},
        {"skipped str running past the end", {0x82, 0xa1, 'x', 0xd9, 0x20, 'a'}, 6},
        {"trailing byte", {0x81, 0xa6, 'c', 'r', 'e', 'd', 'i', 't', 1, 0xc0}, 10},
        /* a content fault (credit a string) before a byte fault (0xc1) */
        {"byte fault after a content fault",
         {0x82, 0xa6, 'c', 'r', 'e', 'd', 'i', 't', 0xa1, 'x', 0xa1, 'y', 0xc1}, 13},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t f[64] = {'Q', 'J', MSG_VERSION, MSG_CREDIT};
        memcpy(f + 4, bad[i].body, bad[i].len);
        char why[200];
        if (mpck_check(bad[i].body, bad[i].len, &mpck_default_limits, why, sizeof why) == 0)
            fail_msg("%s: mpck accepts it", bad[i].what);
        snprintf(want, sizeof want, "credit: body: %s", why);
        if (dec(f, 4 + bad[i].len, &out) != QJ_E_BODY) fail_msg("%s: not refused", bad[i].what);
        if (strcmp(E, want) != 0) fail_msg("%s: said '%s', not '%s'", bad[i].what, E, want);
    }
    /* Nesting: 32 levels in all are fine in a skipped value, 33 are not. */
    for (int depth = 31; depth <= 32; depth++) {
        uint8_t f[128] = {'Q', 'J', MSG_VERSION, MSG_CREDIT, 0x82, 0xa1, 'x'};
        size_t n = 7;
        for (int k = 0; k < depth; k++) f[n++] = 0x91;   /* the body map is level 1 */
        f[n++] = 0x00;
        memcpy(f + n, "\xa6" "credit" "\x01", 8);
        n += 8;
        assert_int_equal(dec(f, n, &out), depth == 31 ? QJ_E_OK : QJ_E_BODY);
        if (depth == 32) assert_non_null(strstr(E, "nested deeper than 32 levels"));
    }
    /* A valid timestamp (and any other ext) in a skipped value is fine. */
    const uint8_t ts[] = {'Q', 'J', MSG_VERSION, MSG_CREDIT, 0x82, 0xa1, 'x', 0xd6, 0xff, 0, 0, 0, 1,
                          0xa6, 'c', 'r', 'e', 'd', 'i', 't', 7};
    assert_int_equal(dec(ts, sizeof ts, &out), QJ_E_OK);
    assert_int_equal(out.credit, 7);
}

static void test_nil_means_absent_for_optional_keys(void **state)
{
    (void)state;
    msg_t out;
    assert_int_equal(hand(MSG_SUBMIT, &out, "m1 s a1 m4 s u s s s n s n", "jobs", "ref", 3ull, "task",
                          "t", "args", "q"),
                     QJ_E_OK);
    assert_null(out.jobs[0].args.ptr);
    assert_null(out.jobs[0].queue.ptr);
    assert_int_equal(hand(MSG_SUBMIT, &out, "m1 s a1 m2 s u s n", "jobs", "ref", 3ull, "task"),
                     QJ_E_BODY);
    assert_string_equal(E, "job 0: key 'task' must be a string of 1-128 bytes (got nil)");
}

static void test_required_keys(void **state)
{
    (void)state;
    msg_t out;
    assert_int_equal(hand(MSG_SUBMIT, &out, "m0"), QJ_E_BODY);
    assert_string_equal(E, "submit: key 'jobs' is required");
    assert_int_equal(hand(MSG_SUBMIT, &out, "m1 s a1 m1 s s", "jobs", "task", "t"), QJ_E_BODY);
    assert_string_equal(E, "job 0: key 'ref' is required");
    assert_int_equal(hand(MSG_JOBS, &out, "m1 s a1 m3 s u s s s u", "jobs", "id", 1ull, "task", "t",
                          "attempt", 1ull),
                     QJ_E_BODY);
    assert_string_equal(E, "job 0: key 'q' is required");
    assert_int_equal(hand(MSG_WELCOME, &out, "m2 s u s u", "hb", 1ull, "live", 1ull), QJ_E_BODY);
    assert_int_equal(hand(MSG_ERROR, &out, "m1 s u", "code", 4ull), QJ_E_BODY);
    assert_int_equal(hand(MSG_PROGRESS, &out, "m2 s u s u", "id", 1ull, "done", 1ull), QJ_E_BODY);
    assert_int_equal(hand(MSG_RESULTS, &out, "m1 s a1 m1 s u", "results", "id", 1ull), QJ_E_BODY);
    assert_string_equal(E, "result 0: key 'st' is required");
    assert_int_equal(hand(MSG_STATUS_REP, &out, "m2 s u s a1 m1 s u", "rid", 1ull, "jobs", "id", 1ull),
                     QJ_E_BODY);
    assert_int_equal(hand(MSG_STATUS, &out, "m1 s a0", "ids"), QJ_E_BODY);
    assert_int_equal(hand(MSG_CANCEL, &out, "m1 s a0", "ids"), QJ_E_OK);    /* broker -> worker: no rid */
    assert_int_equal(hand(MSG_CREDIT, &out, "m0"), QJ_E_BODY);
    /* HELLO: a client needs a cid, a worker does not; role is 0 or 1. */
    assert_int_equal(hand(MSG_HELLO, &out, "m1 s u", "role", 0ull), QJ_E_BODY);
    assert_string_equal(E, "hello: key 'cid' is required for a client");
    assert_int_equal(hand(MSG_HELLO, &out, "m1 s u", "role", 1ull), QJ_E_OK);
    assert_int_equal(hand(MSG_HELLO, &out, "m2 s u s B", "role", 2ull, "cid", (size_t)16), QJ_E_BODY);
    msg_t m = {.cmd = MSG_HELLO, .role = MSG_ROLE_CLIENT};
    assert_int_equal(msg_encode(&s_sb, &m, E, sizeof E), -1);
    assert_int_equal(s_sb.size, 0);
}

static void test_wrong_types(void **state)
{
    (void)state;
    msg_t out;
    struct { uint8_t cmd; const char *fmt; const char *msg; } cases[] = {
        {MSG_CREDIT, "m1 s s", "credit: key 'credit' must be an unsigned integer of at most 4294967295 (got a string of 1 bytes)"},
        {MSG_CREDIT, "m1 s i", "credit: key 'credit' must be an unsigned integer of at most 4294967295 (got -1)"},
        {MSG_CREDIT, "m1 s u", "credit: key 'credit' must be an unsigned integer of at most 4294967295 (got 4294967296)"},
        {MSG_CREDIT, "m1 s d", NULL},
        {MSG_BYE, "m1 s u", "bye: key 'drain' must be a bool (got 1)"},
        {MSG_ERROR, "m2 s u s B", NULL},          /* text as bin */
        {MSG_ERROR, "m2 s u s s", NULL},          /* code 70000 > uint16 */
        {MSG_SUBMIT, "m1 s m0", "submit: key 'jobs' must be an array of maps (got a map)"},
        {MSG_SUBMIT, "m1 s a1 u", "job 0: must be a map (got 1)"},
        {MSG_SUBMIT, "m1 s a1 m3 s u s s s s", "job 0: key 'args' must be a bin of at most 1048576 bytes (got a string of 1 bytes)"},
        {MSG_SUBMIT, "m1 s a1 m3 s u s s s d", "job 0: key 'pri' must be an integer from -128 to 127 (got a float)"},
        {MSG_AWAIT, "m1 s a2 u s", "await: key 'ids' item 1 must be an unsigned integer of at most 18446744073709551615 (got a string of 1 bytes)"},
        {MSG_HELLO, "m3 s u s B s a1 u", "hello: key 'queues' item 0 must be a string of 1-64 bytes (got 1)"},
        {MSG_ACCEPTED, "m1 s a1 a1 u", NULL},     /* [ref] alone */
        {MSG_ACCEPTED, "m1 s a1 a2 u u", "accepted: key 'acks' item 0 has neither an id nor an error code"},
        {MSG_RESULTS, "m1 s a1 m3 s u s u s a4 u u u u", NULL},   /* t of 4 */
        {MSG_STATUS_REP, "m2 s u s a1 m3 s u s u s a1 u", NULL},  /* prog of 1 */
        {MSG_STATS_REP, "m2 s u s a0", NULL},     /* bad_by not a map */
        {MSG_STATS_REP, "m2 s u s m1 u u", NULL}, /* bad_by key not a string */
        {MSG_HEARTBEAT, "m1 u u", "heartbeat: map key 0 must be a string (got 1)"},
        {MSG_CREDIT, "m2 s u s u", "credit: key 'credit' appears twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        msg_err_t rc;
        switch (i) {
        case 0: rc = hand(cases[i].cmd, &out, cases[i].fmt, "credit", "x"); break;
        case 1: rc = hand(cases[i].cmd, &out, cases[i].fmt, "credit", -1ll); break;
        case 2: rc = hand(cases[i].cmd, &out, cases[i].fmt, "credit", 4294967296ull); break;
        case 3: rc = hand(cases[i].cmd, &out, cases[i].fmt, "credit", 1.0); break;
        case 4: rc = hand(cases[i].cmd, &out, cases[i].fmt, "drain", 1ull); break;
        case 5: rc = hand(cases[i].cmd, &out, cases[i].fmt, "code", 1ull, "text", (size_t)2); break;
        case 6: rc = hand(cases[i].cmd, &out, "m2 s u s s", "code", 70000ull, "text", "t"); break;
        case 7: rc = hand(cases[i].cmd, &out, cases[i].fmt, "jobs"); break;
        case 8: rc = hand(cases[i].cmd, &out, cases[i].fmt, "jobs", 1ull); break;
        case 9: rc = hand(cases[i].cmd, &out, cases[i].fmt, "jobs", "ref", 1ull, "task", "t", "args", "a"); break;
        case 10: rc = hand(cases[i].cmd, &out, cases[i].fmt, "jobs", "ref", 1ull, "task", "t", "pri", 1.0); break;
        case 11: rc = hand(cases[i].cmd, &out, cases[i].fmt, "ids", 1ull, "x"); break;
        case 12: rc = hand(cases[i].cmd, &out, cases[i].fmt, "role", 1ull, "cid", (size_t)16, "queues", 1ull); break;
        case 13: rc = hand(cases[i].cmd, &out, cases[i].fmt, "acks", 1ull); break;
        case 14: rc = hand(cases[i].cmd, &out, cases[i].fmt, "acks", 1ull, 0ull); break;
        case 15: rc = hand(cases[i].cmd, &out, cases[i].fmt, "results", "id", 1ull, "st", 0ull, "t", 1ull, 2ull, 3ull, 4ull); break;
        case 16: rc = hand(cases[i].cmd, &out, cases[i].fmt, "rid", 1ull, "jobs", "id", 1ull, "state", 0ull, "prog", 1ull); break;
        case 17: rc = hand(cases[i].cmd, &out, cases[i].fmt, "rid", 1ull, "bad_by"); break;
        case 18: rc = hand(cases[i].cmd, &out, cases[i].fmt, "rid", 1ull, "bad_by", 1ull, 1ull); break;
        case 19: rc = hand(cases[i].cmd, &out, cases[i].fmt, 1ull, 1ull); break;
        default: rc = hand(cases[i].cmd, &out, cases[i].fmt, "credit", 1ull, "credit", 2ull); break;
        }
        if (rc != QJ_E_BODY) fail_msg("case %zu: got %s (%s)", i, msg_err_name(rc), E);
        if (cases[i].msg) assert_string_equal(E, cases[i].msg);
    }
}

/* The example of the brief, exactly. */
static void test_error_names_the_job(void **state)
{
    (void)state;
    msg_t out;
    assert_int_equal(hand(MSG_SUBMIT, &out, "m1 s a4 m2 s u s s m2 s u s s m2 s u s s m2 s u s S", "jobs",
                          "ref", 1ull, "task", "a", "ref", 2ull, "task", "b", "ref", 3ull, "task", "c",
                          "ref", 4ull, "task", (size_t)300),
                     QJ_E_LIMIT);
    assert_string_equal(E, "job 3: key 'task' must be a string of 1-128 bytes (got 300 bytes)");
}

/* Each limit of PROTOCOL.md §6: just at it decodes, just over it is
 * QJ_E_LIMIT; the encoder refuses the same values. */
static void test_limits_at_and_over(void **state)
{
    (void)state;
    msg_t out;
    struct { const char *key; size_t max; size_t min; bool bin; } job_fields[] = {
        {"task", QJ_MAX_TASK_NAME, 1, false}, {"q", QJ_MAX_QUEUE_NAME, 1, false},
        {"key", QJ_MAX_KEY, 0, false}, {"args", QJ_MAX_ARGS, 0, true},
    };
    for (size_t i = 0; i < sizeof job_fields / sizeof job_fields[0]; i++) {
        const char *fmt = job_fields[i].bin ? "m1 s a1 m3 s u s s s B" : "m1 s a1 m3 s u s s s S";
        const char *task = strcmp(job_fields[i].key, "task") ? "task" : "task_"; /* don't repeat 'task' */
        assert_int_equal(hand(MSG_SUBMIT, &out, fmt, "jobs", "ref", 1ull, task, "t", job_fields[i].key,
                              job_fields[i].max),
                         QJ_E_OK);
        assert_int_equal(hand(MSG_SUBMIT, &out, fmt, "jobs", "ref", 1ull, task, "t", job_fields[i].key,
                              job_fields[i].max + 1),
                         QJ_E_LIMIT);
        if (job_fields[i].min)
            assert_int_equal(hand(MSG_SUBMIT, &out, fmt, "jobs", "ref", 1ull, task, "t",
                                  job_fields[i].key, (size_t)0),
                             QJ_E_LIMIT);
    }
    /* Results: val, err, wk. */
    assert_int_equal(hand(MSG_RESULTS, &out, "m1 s a1 m3 s u s u s B", "results", "id", 1ull, "st", 0ull,
                          "val", (size_t)QJ_MAX_VALUE), QJ_E_OK);
    assert_int_equal(hand(MSG_RESULTS, &out, "m1 s a1 m3 s u s u s B", "results", "id", 1ull, "st", 0ull,
                          "val", (size_t)QJ_MAX_VALUE + 1), QJ_E_LIMIT);
    assert_int_equal(hand(MSG_RESULTS, &out, "m1 s a1 m3 s u s u s S", "results", "id", 1ull, "st", 1ull,
                          "err", (size_t)QJ_MAX_ERROR), QJ_E_OK);
    assert_int_equal(hand(MSG_RESULTS, &out, "m1 s a1 m3 s u s u s S", "results", "id", 1ull, "st", 1ull,
                          "err", (size_t)QJ_MAX_ERROR + 1), QJ_E_LIMIT);
    assert_int_equal(hand(MSG_RESULTS, &out, "m1 s a1 m3 s u s u s S", "results", "id", 1ull, "st", 1ull,
                          "wk", (size_t)QJ_MAX_NAME + 1), QJ_E_LIMIT);
    /* Progress note, peer name, error text. */
    assert_int_equal(hand(MSG_PROGRESS, &out, "m4 s u s u s u s S", "id", 1ull, "done", 1ull, "total", 1ull,
                          "note", (size_t)QJ_MAX_NOTE), QJ_E_OK);
    assert_int_equal(hand(MSG_PROGRESS, &out, "m4 s u s u s u s S", "id", 1ull, "done", 1ull, "total", 1ull,
                          "note", (size_t)QJ_MAX_NOTE + 1), QJ_E_LIMIT);
    assert_int_equal(hand(MSG_HELLO, &out, "m2 s u s S", "role", 1ull, "name", (size_t)QJ_MAX_NAME), QJ_E_OK);
    assert_int_equal(hand(MSG_HELLO, &out, "m2 s u s S", "role", 1ull, "name", (size_t)QJ_MAX_NAME + 1),
                     QJ_E_LIMIT);
    assert_int_equal(hand(MSG_ERROR, &out, "m2 s u s S", "code", 1ull, "text", (size_t)QJ_MAX_ERROR + 1),
                     QJ_E_LIMIT);
    /* The cid has one valid length: anything else is a shape error. */
    assert_int_equal(hand(MSG_HELLO, &out, "m2 s u s B", "role", 0ull, "cid", (size_t)15), QJ_E_BODY);
    assert_int_equal(hand(MSG_HELLO, &out, "m2 s u s B", "role", 0ull, "cid", (size_t)17), QJ_E_BODY);
    /* Priority -128..127. */
    assert_int_equal(hand(MSG_SUBMIT, &out, "m1 s a1 m3 s u s s s i", "jobs", "ref", 1ull, "task", "t",
                          "pri", -128ll), QJ_E_OK);
    assert_int_equal(out.jobs[0].pri, -128);
    assert_int_equal(hand(MSG_SUBMIT, &out, "m1 s a1 m3 s u s s s i", "jobs", "ref", 1ull, "task", "t",
                          "pri", 127ll), QJ_E_OK);
    assert_int_equal(hand(MSG_SUBMIT, &out, "m1 s a1 m3 s u s s s i", "jobs", "ref", 1ull, "task", "t",
                          "pri", -129ll), QJ_E_LIMIT);
    assert_int_equal(hand(MSG_SUBMIT, &out, "m1 s a1 m3 s u s s s i", "jobs", "ref", 1ull, "task", "t",
                          "pri", 128ll), QJ_E_LIMIT);

    /* Queues in HELLO: 64 names of at most 64 bytes. */
    msg_bytes_t names[QJ_MAX_QUEUES + 1];
    for (size_t i = 0; i <= QJ_MAX_QUEUES; i++) names[i] = B("q");
    msg_t m = {.cmd = MSG_HELLO, .role = MSG_ROLE_WORKER, .queues = names, .nqueues = QJ_MAX_QUEUES};
    enc_ok(&m);
    assert_int_equal(dec(s_sb.data, s_sb.size, &out), QJ_E_OK);
    assert_int_equal(out.nqueues, QJ_MAX_QUEUES);
    m.nqueues++;
    assert_int_equal(msg_encode(&s_sb, &m, E, sizeof E), -1);
    assert_int_equal(hand(MSG_HELLO, &out, "m2 s u s a1 S", "role", 1ull, "queues", (size_t)65), QJ_E_LIMIT);
    assert_int_equal(hand(MSG_HELLO, &out, "m2 s u s a1 S", "role", 1ull, "queues", (size_t)0), QJ_E_LIMIT);
}

static void pack(msgpack_packer *pk, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vpack(pk, fmt, ap);
    va_end(ap);
}

/* A hand-made batch of n minimal items for cmd. */
static msg_err_t hand_batch(uint8_t cmd, uint32_t n, msg_t *out)
{
    msgpack_packer pk;
    s_hand.size = 0;
    const char hdr[4] = {'Q', 'J', 1, (char)cmd};
    msgpack_sbuffer_write(&s_hand, hdr, 4);
    msgpack_packer_init(&pk, &s_hand, msgpack_sbuffer_write);
    switch (cmd) {
    case MSG_SUBMIT: case MSG_JOBS: pack(&pk, "m1 s", "jobs"); break;
    case MSG_RESULTS: pack(&pk, "m1 s", "results"); break;
    case MSG_STATUS_REP: pack(&pk, "m2 s u s", "rid", 1ull, "jobs"); break;
    case MSG_AWAIT: case MSG_TOUCH: pack(&pk, "m1 s", "ids"); break;
    case MSG_ACCEPTED: pack(&pk, "m1 s", "acks"); break;
    case MSG_CANCEL_REP: pack(&pk, "m2 s u s", "rid", 1ull, "items"); break;
    default: fail_msg("no batch for %d", cmd);
    }
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        switch (cmd) {
        case MSG_SUBMIT: pack(&pk, "m2 s u s s", "ref", 1ull, "task", "t"); break;
        case MSG_JOBS: pack(&pk, "m4 s u s s s s s u", "id", 1ull, "task", "t", "q", "q", "attempt", 1ull); break;
        case MSG_RESULTS: pack(&pk, "m2 s u s u", "id", 1ull, "st", 0ull); break;
        case MSG_STATUS_REP: pack(&pk, "m2 s u s u", "id", 1ull, "state", 0ull); break;
        case MSG_AWAIT: case MSG_TOUCH: pack(&pk, "u", 1ull); break;
        case MSG_ACCEPTED: pack(&pk, "a2 u u", 1ull, 1ull); break;
        default: pack(&pk, "a2 u u", 1ull, 0ull); break;
        }
    }
    return dec(s_hand.data, s_hand.size, out);
}

/* 4096 items per jobs/results/ids/acks/items; SUBMIT and AWAIT need one. */
static void test_batch_limits(void **state)
{
    (void)state;
    static msg_job_t sjobs[QJ_MAX_BATCH + 1], jobs[QJ_MAX_BATCH + 1];
    static msg_result_t results[QJ_MAX_BATCH + 1];
    static uint64_t ids[QJ_MAX_BATCH + 1];
    static msg_ack_t acks[QJ_MAX_BATCH + 1];
    for (size_t i = 0; i <= QJ_MAX_BATCH; i++) {
        sjobs[i] = (msg_job_t){.ref = i, .task = B("t"), .queue = B("q")};
        jobs[i] = (msg_job_t){.id = i + 1, .task = B("t"), .queue = B("q"), .attempt = 1};
        results[i] = (msg_result_t){.id = i + 1};
        ids[i] = i;
        acks[i] = (msg_ack_t){.ref = i, .id = i + 1};
    }
    msg_t ms[] = {
        {.cmd = MSG_SUBMIT, .jobs = sjobs}, {.cmd = MSG_JOBS, .jobs = jobs},
        {.cmd = MSG_RESULTS, .results = results}, {.cmd = MSG_STATUS_REP, .results = results},
        {.cmd = MSG_AWAIT, .ids = ids}, {.cmd = MSG_TOUCH, .ids = ids},
        {.cmd = MSG_ACCEPTED, .acks = acks},
    };
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        msg_t *m = &ms[i], out;
        uint32_t *n = m->jobs ? &m->njobs : m->results ? &m->nresults : m->ids ? &m->nids : &m->nacks;
        *n = QJ_MAX_BATCH;
        enc_ok(m);
        if (dec(s_sb.data, s_sb.size, &out) != QJ_E_OK) fail_msg("%s: %s", msg_cmd_name(m->cmd), E);
        msg_eq(m, &out);
        *n = QJ_MAX_BATCH + 1;
        assert_int_equal(msg_encode(&s_sb, m, E, sizeof E), -1);
        assert_non_null(strstr(E, "(got 4097 items)"));
        assert_int_equal(hand_batch(m->cmd, QJ_MAX_BATCH, &out), QJ_E_OK);
        assert_int_equal(hand_batch(m->cmd, QJ_MAX_BATCH + 1, &out), QJ_E_LIMIT);
        assert_non_null(strstr(E, "(got 4097 items)"));
    }
    msg_t out;
    assert_int_equal(hand_batch(MSG_CANCEL_REP, QJ_MAX_BATCH, &out), QJ_E_OK);
    assert_int_equal(hand_batch(MSG_CANCEL_REP, QJ_MAX_BATCH + 1, &out), QJ_E_LIMIT);
    assert_int_equal(hand(MSG_SUBMIT, &out, "m1 s a0", "jobs"), QJ_E_LIMIT);
    assert_int_equal(hand(MSG_AWAIT, &out, "m1 s a0", "ids"), QJ_E_LIMIT);
    msg_t m = {.cmd = MSG_SUBMIT};
    assert_int_equal(msg_encode(&s_sb, &m, E, sizeof E), -1);
    m = (msg_t){.cmd = MSG_AWAIT, .nids = 2};
    assert_int_equal(msg_encode(&s_sb, &m, E, sizeof E), -1);    /* count without an array */
}

/* ---- the fast paths: equivalence with the generic walk and the packer ----
 * The decoder reads the common shapes by a fast path (msgfast.c) and the
 * encoder writes them by one (s_enc_items); both must give exactly what the
 * generic code gives.  The reference here is msgpack-c's own packer. */

static void ref_key(msgpack_packer *pk, const char *k) { msgpack_pack_str_with_body(pk, k, strlen(k)); }
static void ref_u(msgpack_packer *pk, const char *k, uint64_t v) { ref_key(pk, k); msgpack_pack_uint64(pk, v); }
static void ref_s(msgpack_packer *pk, const char *k, msg_bytes_t b)
{
    ref_key(pk, k);
    msgpack_pack_str_with_body(pk, b.ptr, b.len);
}
static void ref_b(msgpack_packer *pk, const char *k, msg_bytes_t b)
{
    ref_key(pk, k);
    msgpack_pack_bin_with_body(pk, b.ptr, b.len);
}

/* A SUBMIT job, a JOBS job, a RESULTS result as PROTOCOL.md §5 and §8 say:
 * the table's keys in its order, the absent left out, minimal encodings. */
static void ref_item(msgpack_packer *pk, uint8_t cmd, const void *item)
{
    if (cmd == MSG_SUBMIT) {
        const msg_job_t *j = item;
        msgpack_pack_map(pk, 2u + !!j->args.ptr + !!j->queue.ptr + !!j->pri + !!j->timeout_ms + !!j->retries +
                                 !!j->backoff_ms + !!j->at_us + !!j->key.ptr + !!j->parent + !!j->t_submit +
                                 j->detach + j->progress);
        ref_u(pk, "ref", j->ref);
        ref_s(pk, "task", j->task);
        if (j->args.ptr) ref_b(pk, "args", j->args);
        if (j->queue.ptr) ref_s(pk, "q", j->queue);
        if (j->pri) ref_key(pk, "pri"), msgpack_pack_int32(pk, j->pri);
        if (j->timeout_ms) ref_u(pk, "timeout", j->timeout_ms);
        if (j->retries) ref_u(pk, "retries", j->retries);
        if (j->backoff_ms) ref_u(pk, "backoff", j->backoff_ms);
        if (j->at_us) ref_u(pk, "at", j->at_us);
        if (j->key.ptr) ref_s(pk, "key", j->key);
        if (j->parent) ref_u(pk, "parent", j->parent);
        if (j->t_submit) ref_u(pk, "ts", j->t_submit);
        if (j->detach) ref_key(pk, "detach"), msgpack_pack_true(pk);
        if (j->progress) ref_key(pk, "progress"), msgpack_pack_true(pk);
    } else if (cmd == MSG_JOBS) {
        const msg_job_t *j = item;
        msgpack_pack_map(pk, 4u + !!j->args.ptr + !!j->timeout_ms + !!j->parent + !!j->t_submit);
        ref_u(pk, "id", j->id);
        ref_s(pk, "task", j->task);
        if (j->args.ptr) ref_b(pk, "args", j->args);
        ref_s(pk, "q", j->queue.ptr ? j->queue : B("default"));
        ref_u(pk, "attempt", j->attempt);
        if (j->timeout_ms) ref_u(pk, "timeout", j->timeout_ms);
        if (j->parent) ref_u(pk, "parent", j->parent);
        if (j->t_submit) ref_u(pk, "ts", j->t_submit);
    } else {
        const msg_result_t *r = item;
        const msg_times_t *t = &r->t;
        bool times = t->submitted || t->queued || t->dispatched || t->started || t->finished;
        msgpack_pack_map(pk, 2u + !!r->ref + !!r->value.ptr + !!r->error.ptr + !!r->worker.ptr + !!r->attempts +
                                 times);
        ref_u(pk, "id", r->id);
        if (r->ref) ref_u(pk, "ref", r->ref);
        ref_u(pk, "st", r->st);
        if (r->value.ptr) ref_b(pk, "val", r->value);
        if (r->error.ptr) ref_s(pk, "err", r->error);
        if (r->worker.ptr) ref_s(pk, "wk", r->worker);
        if (r->attempts) ref_u(pk, "att", r->attempts);
        if (times) {
            ref_key(pk, "t");
            msgpack_pack_array(pk, 5);
            const uint64_t *v = &t->submitted;
            for (int i = 0; i < 5; i++) msgpack_pack_uint64(pk, v[i]);
        }
    }
}

/* One field of an item, for the cases below: where it is, its C type
 * ('1', '4', '8' bytes of uint, 's' str, 'b' bin, 'p' priority, 'f' bool,
 * 't' times) and its limits. */
typedef struct fcase {
    const char *name;
    size_t off;
    char type;
    uint32_t lo, hi;
} fcase_t;

#define FC(T, m, ty, lo, hi) {#m, offsetof(T, m), ty, lo, hi}
static const fcase_t s_submit_fields[] = {
    FC(msg_job_t, ref, '8', 0, 0), FC(msg_job_t, task, 's', 1, QJ_MAX_TASK_NAME),
    FC(msg_job_t, args, 'b', 0, 300), FC(msg_job_t, queue, 's', 1, QJ_MAX_QUEUE_NAME),
    FC(msg_job_t, pri, 'p', 0, 0), FC(msg_job_t, timeout_ms, '4', 0, 0), FC(msg_job_t, retries, '4', 0, 0),
    FC(msg_job_t, backoff_ms, '4', 0, 0), FC(msg_job_t, at_us, '8', 0, 0), FC(msg_job_t, key, 's', 0, QJ_MAX_KEY),
    FC(msg_job_t, parent, '8', 0, 0), FC(msg_job_t, t_submit, '8', 0, 0), FC(msg_job_t, detach, 'f', 0, 0),
    FC(msg_job_t, progress, 'f', 0, 0),
};
static const fcase_t s_jobs_fields[] = {
    FC(msg_job_t, id, '8', 0, 0), FC(msg_job_t, task, 's', 1, QJ_MAX_TASK_NAME),
    FC(msg_job_t, args, 'b', 0, 300), FC(msg_job_t, queue, 's', 1, QJ_MAX_QUEUE_NAME),
    FC(msg_job_t, attempt, '4', 0, 0), FC(msg_job_t, timeout_ms, '4', 0, 0), FC(msg_job_t, parent, '8', 0, 0),
    FC(msg_job_t, t_submit, '8', 0, 0),
};
static const fcase_t s_result_fields[] = {
    FC(msg_result_t, id, '8', 0, 0), FC(msg_result_t, ref, '8', 0, 0), FC(msg_result_t, st, '1', 0, 0),
    FC(msg_result_t, value, 'b', 0, 300), FC(msg_result_t, error, 's', 0, QJ_MAX_ERROR),
    FC(msg_result_t, worker, 's', 0, QJ_MAX_NAME), FC(msg_result_t, attempts, '4', 0, 0),
    FC(msg_result_t, t, 't', 0, 0),
};

/* Set field f of the struct at base to its variant v (the uints at every
 * edge of the msgpack encodings, the lengths around the encoder's in-place
 * size and the str/bin headers, within the field's limits).  Returns false
 * when f has no variant v. */
static bool fcase_set(const fcase_t *f, char *base, unsigned v)
{
    static const uint64_t u[] = {1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffffu, 0x100000000ull,
                                 UINT64_MAX};
    static const uint32_t len[] = {0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 40, 41, 42, 47, 48, 49, 63, 64, 65,
                                   127, 128, 255, 256, 300};
    static const int32_t pri[] = {1, -1, -32, -33, 127, -128};
    static char text[300 + 7];   /* and the offsets below */
    if (!text[0]) memset(text, 'z', sizeof text);
    void *p = base + f->off;
    switch (f->type) {
    case '1': if (v >= 5) return false; *(uint8_t *)p = (uint8_t)u[v]; return true;
    case '4': if (v >= 8) return false; *(uint32_t *)p = (uint32_t)u[v]; return true;
    case '8': if (v >= 10) return false; *(uint64_t *)p = u[v]; return true;
    case 'p': if (v >= 6) return false; *(int32_t *)p = pri[v]; return true;
    case 'f': if (v >= 1) return false; *(bool *)p = true; return true;
    case 't': {
        if (v >= 10) return false;
        msg_times_t *t = p;
        *t = (msg_times_t){u[v], 0, u[9 - v], 0, u[v / 2]};
        return true;
    }
    default:
        for (; v < sizeof len / sizeof len[0]; v += 100) {
            if (len[v] < f->lo || len[v] > f->hi) return false;
            *(msg_bytes_t *)p = (msg_bytes_t){text + v % 7, len[v]};
            return true;
        }
        return false;
    }
}

/* Every field of the hot items at each of its variants, set on every item
 * or every other one, in batches of 1, 2 and 64: the encoder writes what
 * msgpack-c's packer writes, the decoder gives the message back, and
 * encoding that again gives the same bytes. */
static void test_hot_items_field_by_field(void **state)
{
    (void)state;
    static const struct {
        uint8_t cmd;
        const fcase_t *fields;
        size_t nfields, size;
    } shapes[] = {
        {MSG_SUBMIT, s_submit_fields, sizeof s_submit_fields / sizeof s_submit_fields[0], sizeof(msg_job_t)},
        {MSG_JOBS, s_jobs_fields, sizeof s_jobs_fields / sizeof s_jobs_fields[0], sizeof(msg_job_t)},
        {MSG_RESULTS, s_result_fields, sizeof s_result_fields / sizeof s_result_fields[0], sizeof(msg_result_t)},
    };
    static msg_job_t jobs[64];
    static msg_result_t results[64];
    msgpack_sbuffer want, again;
    msgpack_sbuffer_init(&want);
    msgpack_sbuffer_init(&again);
    unsigned cases = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        uint8_t cmd = shapes[s].cmd;
        char *items = cmd == MSG_RESULTS ? (char *)results : (char *)jobs;
        for (size_t k = 0; k < shapes[s].nfields; k++) {
            const fcase_t *f = &shapes[s].fields[k];
            for (unsigned v = 0;; v++) {
                bool any = false;
                for (uint32_t n = 1; n <= 64; n = n == 2 ? 64 : n + 1) {
                    for (uint32_t i = 0; i < n; i++) {
                        char *it = items + i * shapes[s].size;
                        memset(it, 0, shapes[s].size);
                        if (cmd == MSG_RESULTS) ((msg_result_t *)it)->id = 1 + i;
                        else ((msg_job_t *)it)->task = B("noop");
                        if (cmd == MSG_JOBS) ((msg_job_t *)it)->attempt = 1;
                        if ((n < 64 || i % 2 == 0) && fcase_set(f, it, v)) any = true;
                    }
                    if (!any) break;
                    msg_t m = {.cmd = cmd, .jobs = jobs, .njobs = n, .results = results, .nresults = n}, out;
                    if (cmd == MSG_RESULTS) m.jobs = NULL, m.njobs = 0;
                    else m.results = NULL, m.nresults = 0;
                    enc_ok(&m);
                    msgpack_packer pk;
                    want.size = 0;
                    msgpack_sbuffer_write(&want, s_sb.data, MSG_HEADER_LEN);
                    msgpack_packer_init(&pk, &want, msgpack_sbuffer_write);
                    msgpack_pack_map(&pk, 1);
                    ref_key(&pk, cmd == MSG_RESULTS ? "results" : "jobs");
                    msgpack_pack_array(&pk, n);
                    for (uint32_t i = 0; i < n; i++) ref_item(&pk, cmd, items + i * shapes[s].size);
                    if (want.size != s_sb.size || memcmp(want.data, s_sb.data, want.size) != 0)
                        fail_msg("%s, %s variant %u, %u items: not the packer's bytes", msg_cmd_name(cmd),
                                 f->name, v, n);
                    if (dec(s_sb.data, s_sb.size, &out) != QJ_E_OK)
                        fail_msg("%s, %s variant %u: %s", msg_cmd_name(cmd), f->name, v, E);
                    if (cmd == MSG_JOBS)   /* absent q goes out as "default" */
                        for (uint32_t i = 0; i < n; i++)
                            if (!jobs[i].queue.ptr) jobs[i].queue = B("default");
                    msg_eq(&m, &out);
                    assert_int_equal(msg_encode(&again, &out, E, sizeof E), 0);
                    assert_int_equal(again.size, s_sb.size);
                    assert_memory_equal(again.data, s_sb.data, s_sb.size);
                    cases++;
                }
                if (!any) break;
            }
        }
    }
    assert_true(cases > 300);
    msgpack_sbuffer_destroy(&want);
    msgpack_sbuffer_destroy(&again);
}

/* 64 results, each packed by hand in its own way: keys in another order,
 * an unknown key, nil for an absent key, non-minimal encodings.  The fast
 * path meets each, leaves what it does not take to the generic walk, and
 * every item decodes to the same result. */
static void test_hot_items_in_any_form(void **state)
{
    (void)state;
    msgpack_packer pk;
    s_hand.size = 0;
    const char hdr[4] = {'Q', 'J', 1, MSG_RESULTS};
    msgpack_sbuffer_write(&s_hand, hdr, 4);
    msgpack_packer_init(&pk, &s_hand, msgpack_sbuffer_write);
    pack(&pk, "m2 s u s a64", "credit", 9ull, "results");
    for (uint32_t i = 0; i < 64; i++) {
        uint64_t id = 1000 + i;
        switch (i % 8) {
        case 0: pack(&pk, "m4 s u s u s s s u", "id", id, "st", 1ull, "wk", "w", "att", 2ull); break;
        case 1: pack(&pk, "m4 s u s s s u s u", "att", 2ull, "wk", "w", "st", 1ull, "id", id); break;
        case 2: pack(&pk, "m5 s u s a1 u s u s s s u", "id", id, "zz", 7ull, "st", 1ull, "wk", "w", "att", 2ull); break;
        case 3: pack(&pk, "m5 s u s n s u s s s u", "id", id, "err", "st", 1ull, "wk", "w", "att", 2ull); break;
        case 4: pack(&pk, "m4 s u s s s u s u", "st", 1ull, "wk", "w", "att", 2ull, "id", id); break;
        case 5: {
            pack(&pk, "m4 s", "id");
            const char wide_id[9] = {(char)0xcf, 0, 0, 0, 0, 0, 0, (char)(id >> 8), (char)id};
            msgpack_sbuffer_write(&s_hand, wide_id, sizeof wide_id);
            pack(&pk, "s u s", "st", 1ull, "wk");
            msgpack_sbuffer_write(&s_hand, "\xda\x00\x01w", 4);   /* str 16 */
            pack(&pk, "s i", "att", 2ll);   /* a signed encoding of 2 */
            break;
        }
        case 6: pack(&pk, "m4 s u s u s s s u", "id", id, "st", 1ull, "wk", "w", "att", 2ull); break;
        default: pack(&pk, "m5 s u s u s s s u s a2 u u", "id", id, "st", 1ull, "wk", "w", "att", 2ull,
                      "zzz", 1ull, 2ull); break;
        }
    }
    msg_t out;
    if (dec(s_hand.data, s_hand.size, &out) != QJ_E_OK) fail_msg("%s", E);
    assert_int_equal(out.nresults, 64);
    assert_int_equal(out.credit, 9);
    for (uint32_t i = 0; i < 64; i++) {
        msg_result_t want = {.id = 1000 + i, .st = 1, .worker = B("w"), .attempts = 2};
        result_eq(&want, &out.results[i]);
    }
}

/* Build a batch of 64 items of cmd where item 37 is packed from bad37 (a
 * hand() format and its arguments) and the others from good; returns the
 * decode's result. */
static msg_err_t batch_with_bad_item(uint8_t cmd, const char *good, const char *bad37, ...)
{
    msgpack_packer pk;
    s_hand.size = 0;
    const char hdr[4] = {'Q', 'J', 1, (char)cmd};
    msgpack_sbuffer_write(&s_hand, hdr, 4);
    msgpack_packer_init(&pk, &s_hand, msgpack_sbuffer_write);
    pack(&pk, "m1 s a64", cmd == MSG_RESULTS ? "results" : cmd == MSG_ACCEPTED ? "acks" : "jobs");
    for (uint32_t i = 0; i < 64; i++) {
        if (i != 37) {
            switch (cmd) {
            case MSG_SUBMIT: pack(&pk, good, "ref", (unsigned long long)i, "task", "t", "ts", 5ull); break;
            case MSG_JOBS: pack(&pk, good, "id", 1ull + i, "task", "t", "q", "q", "attempt", 1ull); break;
            case MSG_RESULTS: pack(&pk, good, "id", 1ull + i, "st", 0ull, "wk", "w"); break;
            default: pack(&pk, good, (unsigned long long)i, 1ull + i); break;
            }
            continue;
        }
        va_list ap;
        va_start(ap, bad37);
        vpack(&pk, bad37, ap);
        va_end(ap);
    }
    msg_t out;
    return dec(s_hand.data, s_hand.size, &out);
}

/* A fault deep in a batch, met once the fast path knows the items' keys:
 * the same code and message as anywhere else. */
static void test_hot_items_refused_the_same(void **state)
{
    (void)state;
    const char *job = "m3 s u s s s u";
    assert_int_equal(batch_with_bad_item(MSG_SUBMIT, job, "m4 s u s s s s s u", "ref", 1ull, "task", "t",
                                         "task", "u", "ts", 5ull),
                     QJ_E_BODY);
    assert_string_equal(E, "job 37: key 'task' appears twice");
    assert_int_equal(batch_with_bad_item(MSG_SUBMIT, job, "m2 s s s u", "task", "t", "ts", 5ull), QJ_E_BODY);
    assert_string_equal(E, "job 37: key 'ref' is required");
    assert_int_equal(batch_with_bad_item(MSG_SUBMIT, job, "m3 s u s S s u", "ref", 1ull, "task", (size_t)129,
                                         "ts", 5ull),
                     QJ_E_LIMIT);
    assert_string_equal(E, "job 37: key 'task' must be a string of 1-128 bytes (got 129 bytes)");
    assert_int_equal(batch_with_bad_item(MSG_SUBMIT, job, "m3 s u s s s i", "ref", 1ull, "task", "t", "ts", -1ll),
                     QJ_E_BODY);
    assert_string_equal(E, "job 37: key 'ts' must be an unsigned integer of at most 18446744073709551615 (got -1)");
    assert_int_equal(batch_with_bad_item(MSG_SUBMIT, job, "m4 s u s s s u s i", "ref", 1ull, "task", "t", "ts",
                                         5ull, "pri", 128ll),
                     QJ_E_LIMIT);
    assert_string_equal(E, "job 37: key 'pri' must be an integer from -128 to 127 (got 128)");
    const char *jobs = "m4 s u s s s s s u";
    assert_int_equal(batch_with_bad_item(MSG_JOBS, jobs, "m4 s u s s s s s s", "id", 1ull, "task", "t", "q", "q",
                                         "attempt", "1"),
                     QJ_E_BODY);
    assert_string_equal(E, "job 37: key 'attempt' must be an unsigned integer of at most 4294967295 "
                           "(got a string of 1 bytes)");
    assert_int_equal(batch_with_bad_item(MSG_JOBS, jobs, "m4 s u s s s s s u", "id", 1ull, "task", "t", "q", "",
                                         "attempt", 1ull),
                     QJ_E_LIMIT);
    assert_string_equal(E, "job 37: key 'q' must be a string of 1-64 bytes (got 0 bytes)");
    const char *res = "m3 s u s u s s";
    assert_int_equal(batch_with_bad_item(MSG_RESULTS, res, "m1 s s", "wk", "w"), QJ_E_BODY);
    assert_string_equal(E, "result 37: key 'id' is required");   /* the first of two missing */
    assert_int_equal(batch_with_bad_item(MSG_RESULTS, res, "m3 s u s u s s", "id", 1ull, "st", 256ull, "wk", "w"),
                     QJ_E_BODY);
    assert_string_equal(E, "result 37: key 'st' must be an unsigned integer of at most 255 (got 256)");
    assert_int_equal(batch_with_bad_item(MSG_RESULTS, res, "m3 s u s u s S", "id", 1ull, "st", 0ull, "wk",
                                         (size_t)129),
                     QJ_E_LIMIT);
    assert_string_equal(E, "result 37: key 'wk' must be a string of at most 128 bytes (got 129 bytes)");
    assert_int_equal(batch_with_bad_item(MSG_RESULTS, res, "m3 s u s u s a4 u u u u", "id", 1ull, "st", 0ull, "t",
                                         1ull, 2ull, 3ull, 4ull),
                     QJ_E_BODY);
    assert_string_equal(E, "result 37: key 't' must be [submitted, queued, dispatched, started, finished] "
                           "(got an array of 4)");
    assert_int_equal(batch_with_bad_item(MSG_RESULTS, res, "a0"), QJ_E_BODY);
    assert_string_equal(E, "result 37: must be a map (got an array of 0)");
    /* ACCEPTED: [ref, id] by the fast path, anything else by the generic walk. */
    const char *ack = "a2 u u";
    assert_int_equal(batch_with_bad_item(MSG_ACCEPTED, ack, "a4 u u u s", 5ull, 0ull, 10ull, "full"), QJ_E_OK);
    assert_int_equal(batch_with_bad_item(MSG_ACCEPTED, ack, "a3 u u u", 5ull, 6ull, 0ull), QJ_E_OK);
    assert_int_equal(batch_with_bad_item(MSG_ACCEPTED, ack, "a2 u u", 5ull, 0ull), QJ_E_BODY);
    assert_string_equal(E, "accepted: key 'acks' item 37 has neither an id nor an error code");
    assert_int_equal(batch_with_bad_item(MSG_ACCEPTED, ack, "a1 u", 5ull), QJ_E_BODY);
    assert_string_equal(E, "accepted: key 'acks' item 37 must be [ref, id] or [ref, 0, code, text] "
                           "(got an array of 1)");
    assert_int_equal(batch_with_bad_item(MSG_ACCEPTED, ack, "a2 u i", 5ull, -6ll), QJ_E_BODY);
    assert_string_equal(E, "accepted: key 'acks' item 37 must be an unsigned integer of at most "
                           "18446744073709551615 (got -6)");
}

/* ACCEPTED items of every form decode to what was sent; the ones taken by
 * the fast path carry no text. */
static void test_acks_every_form(void **state)
{
    (void)state;
    msg_t out;
    assert_int_equal(hand(MSG_ACCEPTED, &out, "m1 s a6 a2 u u a4 u u u s a2 u u a3 u u u a5 u u u s u a4 u u u n",
                          "acks", 1ull, 11ull, 2ull, 0ull, 10ull, "full", 3ull, UINT64_MAX, 4ull, 14ull, 0ull,
                          5ull, 0ull, 6ull, "limit", 99ull, 6ull, 16ull, 12ull),
                     QJ_E_OK);
    msg_ack_t want[] = {{1, 11, 0, {NULL, 0}}, {2, 0, 10, B("full")}, {3, UINT64_MAX, 0, {NULL, 0}},
                        {4, 14, 0, {NULL, 0}}, {5, 0, 6, B("limit")}, {6, 16, 12, {NULL, 0}}};
    assert_int_equal(out.nacks, 6);
    for (uint32_t i = 0; i < 6; i++) {
        assert_int_equal(out.acks[i].ref, want[i].ref);
        assert_int_equal(out.acks[i].id, want[i].id);
        assert_int_equal(out.acks[i].code, want[i].code);
        bytes_eq(out.acks[i].text, want[i].text, "ack text");
    }
}

static void test_encoder_refuses_bad_values(void **state)
{
    (void)state;
    char big[300];
    memset(big, 'x', sizeof big);
    msg_job_t job = {.ref = 1, .task = {big, 300}};
    msg_t m = {.cmd = MSG_SUBMIT, .jobs = &job, .njobs = 1};
    assert_int_equal(msg_encode(&s_sb, &m, E, sizeof E), -1);
    assert_string_equal(E, "job 0: key 'task' must be a string of 1-128 bytes (got 300 bytes)");
    assert_int_equal(s_sb.size, 0);
    job.task = (msg_bytes_t){NULL, 0};
    assert_int_equal(msg_encode(&s_sb, &m, E, sizeof E), -1);                 /* task missing */
    job.task = B("t");
    job.pri = 200;
    assert_int_equal(msg_encode(&s_sb, &m, E, sizeof E), -1);
    job.pri = 0;
    assert_int_equal(msg_encode(&s_sb, &m, E, sizeof E), 0);
    m.cmd = 0x7f;
    assert_int_equal(msg_encode(&s_sb, &m, E, sizeof E), -1);
    /* JOBS without a queue name says "default"; ERROR without text says "". */
    msg_job_t j2 = {.id = 1, .task = B("t"), .attempt = 1};
    m = (msg_t){.cmd = MSG_JOBS, .jobs = &j2, .njobs = 1};
    enc_ok(&m);
    msg_t out;
    assert_int_equal(dec(s_sb.data, s_sb.size, &out), QJ_E_OK);
    bytes_eq(out.jobs[0].queue, B("default"), "default queue");
    m = (msg_t){.cmd = MSG_ERROR, .code = QJ_E_HELLO};
    enc_ok(&m);
    assert_int_equal(dec(s_sb.data, s_sb.size, &out), QJ_E_OK);
    assert_int_equal(out.text.len, 0);
    assert_non_null(out.text.ptr);
}

/* STATUS_REP: st is on the wire only for finished jobs (and non-zero ones). */
static void test_status_st_only_when_done(void **state)
{
    (void)state;
    msg_result_t r = {.id = 1, .state = MSG_STATE_QUEUED};
    msg_t m = {.cmd = MSG_STATUS_REP, .rid = 1, .results = &r, .nresults = 1}, out;
    enc_ok(&m);
    assert_null(memmem(s_sb.data, s_sb.size, "\xa2st", 3));
    r.state = MSG_STATE_DONE;
    enc_ok(&m);
    assert_non_null(memmem(s_sb.data, s_sb.size, "\xa2st\x00", 4));
    assert_int_equal(dec(s_sb.data, s_sb.size, &out), QJ_E_OK);
    assert_int_equal(out.results[0].state, MSG_STATE_DONE);
}

/* One reader decodes many messages of mixed sizes; pointers stay right. */
static void test_reader_reuse(void **state)
{
    (void)state;
    static msg_job_t jobs[QJ_MAX_BATCH];
    for (size_t i = 0; i < QJ_MAX_BATCH; i++)
        jobs[i] = (msg_job_t){.ref = i + 1, .task = B("some_task"), .args = {"\x93\x01\x02\x03", 4},
                              .queue = B("default"), .timeout_ms = 1000, .retries = 2};
    for (int round = 0; round < 40; round++) {
        uint32_t n = round % 3 == 0 ? QJ_MAX_BATCH : (uint32_t)(round % 7) + 1;
        msg_t m = {.cmd = MSG_SUBMIT, .jobs = jobs, .njobs = n}, out;
        enc_ok(&m);
        assert_int_equal(dec(s_sb.data, s_sb.size, &out), QJ_E_OK);
        msg_eq(&m, &out);
    }
}

static void test_value_decode(void **state)
{
    (void)state;
    msg_t m, out;
    fixture(MSG_JOBS, true, &m);
    enc_ok(&m);
    assert_int_equal(dec(s_sb.data, s_sb.size, &out), QJ_E_OK);
    msgpack_object o;
    assert_int_equal(msg_value_decode(R, out.jobs[0].args, &o, E, sizeof E), 0);
    assert_int_equal(o.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(o.via.map.size, 1);
    assert_int_equal(o.via.map.ptr[0].val.via.u64, 1);
    /* Decoding a value leaves the message intact. */
    msg_eq(&m, &out);
    assert_int_equal(msg_value_decode(R, out.jobs[1].args, &o, E, sizeof E), 0);   /* absent = nil */
    assert_int_equal(o.type, MSGPACK_OBJECT_NIL);
    msg_bytes_t bad = {"\x92\x01", 2}, hostile = {"\xdd\xff\xff\xff\xff", 5}, two = {"\x01\x02", 2};
    assert_int_equal(msg_value_decode(R, bad, &o, E, sizeof E), -1);
    assert_true(strlen(E) > 0);
    assert_int_equal(msg_value_decode(R, hostile, &o, E, sizeof E), -1);
    assert_int_equal(msg_value_decode(R, two, &o, E, sizeof E), -1);
    assert_int_equal(msg_value_decode(R, (msg_bytes_t){"", 0}, &o, E, sizeof E), -1);
    msg_eq(&m, &out);
}

static void test_stats_bad_by(void **state)
{
    (void)state;
    msg_t out;
    /* Unknown error names (from a newer broker) are skipped. */
    assert_int_equal(hand(MSG_STATS_REP, &out, "m2 s u s m3 s u s u s u", "rid", 1ull, "bad_by", "body", 3ull,
                          "from_the_future", 4ull, "limit", 5ull),
                     QJ_E_OK);
    assert_int_equal(out.stats.bad_by_code[QJ_E_BODY], 3);
    assert_int_equal(out.stats.bad_by_code[QJ_E_LIMIT], 5);
    /* STATS_REP always carries every figure, zero or not. */
    msg_t m = {.cmd = MSG_STATS_REP, .rid = 1};
    enc_ok(&m);
    const char *keys[] = {"uptime", "clients", "workers", "submitted", "done", "failed", "retried", "lost",
                          "cancelled", "bad", "bad_by", "rejected", "kept", "rss", "queues", "wlist"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char k[16];
        k[0] = (char)(0xa0 | strlen(keys[i]));
        memcpy(k + 1, keys[i], strlen(keys[i]));
        if (!memmem(s_sb.data, s_sb.size, k, strlen(keys[i]) + 1)) fail_msg("no key %s", keys[i]);
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(msg_cmd_name(MSG_SUBMIT), "submit");
    assert_string_equal(msg_cmd_name(MSG_STATUS_REP), "status_rep");
    assert_string_equal(msg_cmd_name(MSG_TOUCH), "touch");
    assert_string_equal(msg_cmd_name(0x99), "?");
    assert_string_equal(msg_cmd_name(-1), "?");
    assert_string_equal(msg_err_name(QJ_E_QUEUE_FULL), "queue_full");
    assert_string_equal(msg_err_name(QJ_E_INTERNAL), "internal");
    assert_string_equal(msg_err_name(QJ_E_OK), "ok");
    assert_string_equal(msg_err_name(15), "?");
    assert_string_equal(msg_st_name(MSG_ST_CANCELLED), "cancelled");
    assert_string_equal(msg_st_name(6), "?");
    assert_string_equal(msg_state_name(MSG_STATE_DEAD), "dead");
    assert_string_equal(msg_state_name(-3), "?");
    for (size_t i = 0; i < NCMDS; i++) assert_string_not_equal(msg_cmd_name(ALL_CMDS[i]), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_command),
        cmocka_unit_test(test_minimal_frames_are_small),
        cmocka_unit_test(test_golden_bytes_from_protocol),
        cmocka_unit_test(test_every_truncation_is_refused),
        cmocka_unit_test(test_header_checks),
        cmocka_unit_test(test_tiny_body_asking_for_512_mib),
        cmocka_unit_test(test_non_minimal_encodings_accepted),
        cmocka_unit_test(test_fast_path_edges),
        cmocka_unit_test(test_unknown_keys_ignored),
        cmocka_unit_test(test_walk_checks_what_mpck_checks),
        cmocka_unit_test(test_nil_means_absent_for_optional_keys),
        cmocka_unit_test(test_required_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_error_names_the_job),
        cmocka_unit_test(test_limits_at_and_over),
        cmocka_unit_test(test_batch_limits),
        cmocka_unit_test(test_hot_items_field_by_field),
        cmocka_unit_test(test_hot_items_in_any_form),
        cmocka_unit_test(test_hot_items_refused_the_same),
        cmocka_unit_test(test_acks_every_form),
        cmocka_unit_test(test_encoder_refuses_bad_values),
        cmocka_unit_test(test_status_st_only_when_done),
        cmocka_unit_test(test_reader_reuse),
        cmocka_unit_test(test_value_decode),
        cmocka_unit_test(test_stats_bad_by),
        cmocka_unit_test(test_names),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    msgpack_sbuffer_destroy(&s_hand);
    return rc;
}
