/* test_journal.c -- the journal's files: a round trip of every record type
 * at each --fsync level, lsn positions, a torn tail cut, a damaged record
 * in the middle reported (file, offset, type) and skipped, the items of a
 * job's life grouped into few records (and lost together when their
 * record is damaged), compaction keeping exactly the live state it was
 * given, a failed compaction keeping the log, the directory lock, files of
 * a newer or an older version, and leftovers of an interrupted start. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "clock.h"
#include "journal.h"
#include "log.h"

#define MAX_SEEN 256

/* ---- a private directory per test */

static char s_dir[256];

static int s_setup(void **state)
{
    (void)state;
    snprintf(s_dir, sizeof s_dir, "/tmp/qjob-test-journal-XXXXXX");
    return mkdtemp(s_dir) ? 0 : -1;
}

static int s_teardown(void **state)
{
    (void)state;
    DIR *d = opendir(s_dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", s_dir, e->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    return rmdir(s_dir);
}

static char *s_path(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    return path;
}

static bool s_exists(const char *name)
{
    struct stat st;
    return stat(s_path(name), &st) == 0;
}

static off_t s_size(const char *name)
{
    struct stat st;
    assert_int_equal(stat(s_path(name), &st), 0);
    return st.st_size;
}

/* ---- what a replay hands over */

typedef struct seen {
    int n;
    uint8_t type[MAX_SEEN];
    uint64_t id[MAX_SEEN];
    uint16_t attempt[MAX_SEEN];
    char task[MAX_SEEN][16];
} seen_t;

static int s_collect(void *ctx, const jrec_t *r)
{
    seen_t *s = ctx;
    assert_true(s->n < MAX_SEEN);
    s->type[s->n] = r->type;
    s->id[s->n] = r->id;
    s->attempt[s->n] = r->attempt;
    if (r->type == JREC_JOB)
        snprintf(s->task[s->n], sizeof s->task[0], "%.*s", (int)r->task.len, r->task.ptr);
    s->n++;
    return 0;
}

static journal_t *s_open(journal_sync_t sync, seen_t *seen, journal_replay_t *rep)
{
    journal_config_t cfg = {.dir = s_dir, .sync = sync, .compact_bytes = 1 << 20};
    char err[256];
    journal_t *j = journal_open(&cfg, err, sizeof err);
    assert_non_null(j);
    memset(seen, 0, sizeof *seen);
    assert_int_equal(journal_replay(j, s_collect, seen, rep, err, sizeof err), 0);
    return j;
}

static jrec_t s_job(uint64_t id, const char *task)
{
    return (jrec_t){.type = JREC_JOB, .id = id, .queue = {"default", 7},
                    .task = {task, (uint32_t)strlen(task)}, .args = {"\x93\x01\x02\x03", 4}};
}

/* A job in a record of its own: queued at a time of its own (the head of
 * a JOB record), so that it cannot join the job before it. */
static jrec_t s_job_alone(uint64_t id, const char *task)
{
    jrec_t r = s_job(id, task);
    r.t_queued = 1000 + id;
    return r;
}

/* One record of each type a log holds. */
static void s_append_all(journal_t *j, uint64_t id)
{
    jrec_t recs[] = {
        s_job(id, "first"),
        {.type = JREC_DISPATCH, .id = id, .attempt = 1, .t_dispatched = 5},
        {.type = JREC_REQUEUE, .id = id, .attempt = 1, .front = true},
        {.type = JREC_DISPATCH, .id = id, .attempt = 2},
        {.type = JREC_CANCEL, .id = id},
        {.type = JREC_FINISH, .id = id, .st = MSG_ST_OK, .attempt = 2, .val = {"\xc3", 1}},
        {.type = JREC_NEXT_ID, .id = id + 100},
    };
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++)
        assert_int_equal(journal_append(j, &recs[i]), 0);
}

/* Wait (bounded) until the batch thread has made everything durable. */
static void s_wait_durable(journal_t *j)
{
    char err[256];
    for (int i = 0; i < 500 && journal_durable(j) < journal_appended(j); i++) {
        struct pollfd p = {.fd = journal_fd(j), .events = POLLIN};
        poll(&p, 1, 10);
        assert_int_equal(journal_poll(j, err, sizeof err), 0);
    }
    assert_int_equal(journal_durable(j), journal_appended(j));
}

/* Run f with stderr going to a file; the text is returned (caller frees). */
static char *s_capture_stderr(void (*f)(void *), void *arg)
{
    char *path = s_path("stderr.txt");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600), saved = dup(2);
    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, 2);
    f(arg);
    dup2(saved, 2);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)n + 1);
    assert_int_equal(pread(fd, text, (size_t)n, 0), n);
    close(fd);
    unlink(path);
    return text;
}

/* ---- tests */

static void test_round_trip_every_level(void **state)
{
    (void)state;
    journal_sync_t levels[] = {JOURNAL_SYNC_OFF, JOURNAL_SYNC_BATCH, JOURNAL_SYNC_ALWAYS};
    seen_t seen;
    journal_replay_t rep;
    char err[256];
    for (int k = 0; k < 3; k++) {
        journal_t *j = s_open(levels[k], &seen, &rep);
        assert_int_equal(seen.n, 7 * k);            /* what the earlier rounds wrote */
        assert_int_equal(rep.records, 7 * k);
        assert_int_equal(rep.damaged, 0);
        assert_int_equal(journal_fd(j) >= 0, levels[k] == JOURNAL_SYNC_BATCH);
        uint64_t before = journal_appended(j);
        s_append_all(j, 10 + (uint64_t)k);
        journal_wait(j);   /* as for a submit's ACCEPTED */
        assert_true(journal_appended(j) > before);
        assert_true(journal_durable(j) < journal_appended(j)); /* buffered only */
        assert_true(journal_pending(j) > 0);
        assert_int_equal(journal_commit(j, err, sizeof err), 0);
        assert_int_equal(journal_pending(j), 0);
        if (levels[k] == JOURNAL_SYNC_BATCH)
            s_wait_durable(j);
        assert_int_equal(journal_durable(j), journal_appended(j));
        journal_destroy(&j);
        assert_null(j);
        journal_destroy(&j);
    }
    journal_t *j = s_open(JOURNAL_SYNC_OFF, &seen, &rep);
    assert_int_equal(seen.n, 21);
    uint8_t types[] = {JREC_JOB, JREC_DISPATCH, JREC_REQUEUE, JREC_DISPATCH, JREC_CANCEL,
                       JREC_FINISH, JREC_NEXT_ID};
    for (int i = 0; i < 21; i++) {
        assert_int_equal(seen.type[i], types[i % 7]);
        assert_int_equal(seen.id[i], 10 + i / 7 + (i % 7 == 6 ? 100 : 0));
    }
    assert_string_equal(seen.task[7], "first");
    assert_int_equal(seen.attempt[3], 2);
    assert_int_equal(rep.files, 3); /* a new segment at each start */
    journal_destroy(&j);
}

/* batch: what nobody waits for is synced with the next that someone
 * does, or JOURNAL_SYNC_LAG_MS after it was written, on the tick. */
static void test_batch_syncs_unwaited_records_late(void **state)
{
    (void)state;
    seen_t seen;
    journal_replay_t rep;
    char err[256];
    journal_t *j = s_open(JOURNAL_SYNC_BATCH, &seen, &rep);
    uint64_t start = journal_durable(j);
    jrec_t fin = {.type = JREC_FINISH, .id = 5, .st = MSG_ST_OK, .attempt = 1};
    assert_int_equal(journal_append(j, &fin), 0);
    assert_int_equal(journal_commit(j, err, sizeof err), 0);
    assert_int_equal(journal_pending(j), 0);   /* written */
    uint64_t t0 = clock_mono_ms();
    usleep(20000);
    assert_int_equal(journal_poll(j, err, sizeof err), 0);
    assert_int_equal(journal_maintain(j, NULL, NULL, err, sizeof err), 0);
    if (clock_mono_ms() - t0 < JOURNAL_SYNC_LAG_MS)   /* (a stalled host: not a failure) */
        assert_int_equal(journal_durable(j), start);
    /* A waited record takes the unwaited one with it. */
    assert_int_equal(journal_append(j, &fin), 0);
    journal_wait(j);
    assert_int_equal(journal_commit(j, err, sizeof err), 0);
    s_wait_durable(j);

    /* Nobody waits: the tick has it synced once the lag has passed. */
    assert_int_equal(journal_append(j, &fin), 0);
    assert_int_equal(journal_commit(j, err, sizeof err), 0);
    uint64_t written = journal_appended(j);
    usleep((JOURNAL_SYNC_LAG_MS + 10) * 1000);
    assert_int_equal(journal_maintain(j, NULL, NULL, err, sizeof err), 0);
    s_wait_durable(j);
    assert_int_equal(journal_durable(j), written);
    journal_destroy(&j);
}

static void test_torn_tail_cut(void **state)
{
    (void)state;
    seen_t seen;
    journal_replay_t rep;
    char err[256];
    journal_t *j = s_open(JOURNAL_SYNC_ALWAYS, &seen, &rep);
    s_append_all(j, 1);
    assert_int_equal(journal_flush(j, err, sizeof err), 0);
    journal_destroy(&j);
    /* The broker stopped in the middle of writing its last record. */
    off_t full = s_size("journal.000001");
    assert_int_equal(truncate(s_path("journal.000001"), full - 3), 0);
    j = s_open(JOURNAL_SYNC_ALWAYS, &seen, &rep);
    assert_int_equal(seen.n, 6);                 /* all but the torn one */
    assert_int_equal(seen.type[5], JREC_FINISH);
    assert_true(rep.cut > 0);
    assert_int_equal(rep.damaged, 0);
    assert_int_equal(s_size("journal.000001"), full - 3 - (off_t)rep.cut); /* cut */
    journal_destroy(&j);
    /* Once cut, nothing more to report. */
    j = s_open(JOURNAL_SYNC_ALWAYS, &seen, &rep);
    assert_int_equal(seen.n, 6);
    assert_int_equal(rep.cut, 0);
    assert_int_equal(rep.damaged, 0);
    journal_destroy(&j);
}

typedef struct replay_run {
    seen_t seen;
    journal_replay_t rep;
} replay_run_t;

static void s_replay_quietly(void *arg)
{
    replay_run_t *r = arg;
    journal_t *j = s_open(JOURNAL_SYNC_OFF, &r->seen, &r->rep);
    journal_destroy(&j);
}

/* XOR the byte at offset at of a file with mask. */
static void s_flip(const char *name, off_t at, uint8_t mask)
{
    int fd = open(s_path(name), O_RDWR);
    uint8_t byte;
    assert_int_equal(pread(fd, &byte, 1, at), 1);
    byte ^= mask;
    assert_int_equal(pwrite(fd, &byte, 1, at), 1);
    close(fd);
}

/* The replay's report names the damaged job record at offset at. */
static void s_reported_at(const char *text, size_t at)
{
    char where[128];
    snprintf(where, sizeof where, "journal.000001 offset %zu: damaged job record", at);
    if (!strstr(text, where))
        fail_msg("the report does not say '%s':\n%s", where, text);
}

static void test_corrupt_middle_record_reported_and_skipped(void **state)
{
    (void)state;
    seen_t seen;
    journal_replay_t rep;
    char err[256];
    journal_t *j = s_open(JOURNAL_SYNC_OFF, &seen, &rep);
    for (uint64_t id = 1; id <= 5; id++) {
        jrec_t r = s_job_alone(id, "t");
        assert_int_equal(journal_append(j, &r), 0);
    }
    assert_int_equal(journal_flush(j, err, sizeof err), 0);
    journal_destroy(&j);
    /* Flip one byte inside the third record's payload. */
    jrec_t first = s_job_alone(1, "t");
    size_t rec = jrec_size(&first);
    size_t at = JOURNAL_HEADER_LEN + 2 * rec;
    s_flip("journal.000001", (off_t)(at + JREC_HEADER_LEN + 9), 0x10);

    replay_run_t run;
    char *text = s_capture_stderr(s_replay_quietly, &run);
    assert_int_equal(run.seen.n, 4);              /* the four others */
    uint64_t want[] = {1, 2, 4, 5};
    for (int i = 0; i < 4; i++)
        assert_int_equal(run.seen.id[i], want[i]);
    assert_int_equal(run.rep.damaged, 1);
    assert_int_equal(run.rep.cut, 0);
    s_reported_at(text, at);
    assert_non_null(strstr(text, "checksum mismatch"));
    free(text);
}

/* The records of a segment file: (offset, type, payload length). */
typedef struct recs {
    int n;
    size_t off[64];
    uint8_t type[64];
    size_t len[64];
} recs_t;

static recs_t s_records(const char *name)
{
    recs_t r = {0};
    int fd = open(s_path(name), O_RDONLY);
    assert_true(fd >= 0);
    static uint8_t data[1 << 16];
    ssize_t n = read(fd, data, sizeof data);
    close(fd);
    assert_true(n >= JOURNAL_HEADER_LEN && n < (ssize_t)sizeof data);
    for (size_t off = JOURNAL_HEADER_LEN; off + JREC_HEADER_LEN <= (size_t)n && r.n < 64;) {
        size_t plen = data[off + 4] | (size_t)data[off + 5] << 8 | (size_t)data[off + 6] << 16;
        r.off[r.n] = off;
        r.type[r.n] = data[off + 2];
        r.len[r.n++] = plen;
        off += JREC_HEADER_LEN + plen;
    }
    return r;
}

static void test_items_grouped_into_few_records(void **state)
{
    (void)state;
    seen_t seen;
    journal_replay_t rep;
    char err[256];
    journal_t *j = s_open(JOURNAL_SYNC_ALWAYS, &seen, &rep);
    /* A turn: ten jobs of one submitter, then a job of another queue; ten
     * leases; ten results of one worker, one of another; a cancel; a
     * lease at another time. */
    for (uint64_t id = 1; id <= 10; id++) {
        jrec_t r = s_job(id, id % 2 ? "odd" : "even");
        assert_int_equal(journal_append(j, &r), 0);
    }
    jrec_t other = s_job(11, "t");
    other.queue = (msg_bytes_t){"other", 5};
    assert_int_equal(journal_append(j, &other), 0);
    for (uint64_t id = 1; id <= 10; id++) {
        jrec_t r = {.type = JREC_DISPATCH, .id = id, .attempt = 1, .t_dispatched = 77};
        assert_int_equal(journal_append(j, &r), 0);
    }
    for (uint64_t id = 1; id <= 11; id++) {
        jrec_t r = {.type = JREC_FINISH, .id = id, .st = MSG_ST_OK, .attempt = 1,
                    .final_us = 88, .wk = id < 11 ? (msg_bytes_t){"w1", 2}
                                                  : (msg_bytes_t){"w2", 2}};
        assert_int_equal(journal_append(j, &r), 0);
    }
    jrec_t cancel = {.type = JREC_CANCEL, .id = 3};
    jrec_t later = {.type = JREC_DISPATCH, .id = 11, .attempt = 1, .t_dispatched = 99};
    assert_int_equal(journal_append(j, &cancel), 0);
    assert_int_equal(journal_append(j, &later), 0);
    uint64_t appended = journal_appended(j);
    assert_int_equal(journal_pending(j), appended);
    assert_int_equal(journal_commit(j, err, sizeof err), 0);
    assert_int_equal(journal_durable(j), appended);
    /* The lsn counts the bytes of the file, group headers included. */
    assert_int_equal(s_size("journal.000001"), JOURNAL_HEADER_LEN + (off_t)appended);
    recs_t recs = s_records("journal.000001");
    uint8_t want[] = {JREC_JOB, JREC_JOB, JREC_DISPATCH, JREC_FINISH, JREC_FINISH, JREC_CANCEL,
                      JREC_DISPATCH};
    assert_int_equal(recs.n, 7);
    for (int i = 0; i < 7; i++)
        assert_int_equal(recs.type[i], want[i]);
    /* Ten leases: one time, then (id, attempt) each. */
    assert_int_equal(recs.len[2], 8 + 10 * (8 + 2));
    journal_destroy(&j);

    j = s_open(JOURNAL_SYNC_OFF, &seen, &rep);
    assert_int_equal(seen.n, 11 + 10 + 11 + 2);
    assert_int_equal(rep.records, 34);
    for (int i = 0; i < 11; i++) {
        assert_int_equal(seen.type[i], JREC_JOB);
        assert_int_equal(seen.id[i], (uint64_t)i + 1);
        assert_string_equal(seen.task[i], i == 10 ? "t" : i % 2 ? "even" : "odd");
    }
    assert_int_equal(seen.type[11], JREC_DISPATCH);
    assert_int_equal(seen.id[20], 10);
    assert_int_equal(seen.type[21], JREC_FINISH);
    assert_int_equal(seen.id[31], 11);
    assert_int_equal(seen.type[32], JREC_CANCEL);
    assert_int_equal(seen.type[33], JREC_DISPATCH);
    journal_destroy(&j);
}

static void test_damaged_group_loses_its_items_only(void **state)
{
    (void)state;
    seen_t seen;
    journal_replay_t rep;
    char err[256];
    journal_t *j = s_open(JOURNAL_SYNC_OFF, &seen, &rep);
    /* Three turns of four jobs each: three records. */
    for (uint64_t id = 1; id <= 12; id++) {
        jrec_t r = s_job(id, "t");
        r.t_queued = 1000 + (id - 1) / 4;
        assert_int_equal(journal_append(j, &r), 0);
        if (id % 4 == 0)
            assert_int_equal(journal_commit(j, err, sizeof err), 0);
    }
    journal_destroy(&j);
    recs_t recs = s_records("journal.000001");
    assert_int_equal(recs.n, 3);
    /* One byte of the second record's last job. */
    s_flip("journal.000001", (off_t)(recs.off[1] + JREC_HEADER_LEN + recs.len[1] - 2), 0x01);
    replay_run_t run;
    char *text = s_capture_stderr(s_replay_quietly, &run);
    assert_int_equal(run.seen.n, 8);
    uint64_t want[] = {1, 2, 3, 4, 9, 10, 11, 12};
    for (int i = 0; i < 8; i++)
        assert_int_equal(run.seen.id[i], want[i]);
    assert_int_equal(run.rep.damaged, 1);
    s_reported_at(text, recs.off[1]);
    free(text);
}

/* A live state as the broker's snapshot would write it. */
static int s_snapshot(void *ctx, journal_t *j)
{
    (void)ctx;
    jrec_t recs[] = {
        {.type = JREC_NEXT_ID, .id = 500},
        s_job(42, "live"),
        s_job(43, "kept"),
        {.type = JREC_FINISH, .id = 43, .st = MSG_ST_OK, .attempt = 1},
    };
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++)
        if (journal_append(j, &recs[i]) != 0)
            return -1;
    return 0;
}

static int s_snapshot_fails(void *ctx, journal_t *j)
{
    (void)ctx;
    (void)j;
    return -1;
}

static void s_wait_compaction(journal_t *j)
{
    char err[256];
    for (int i = 0; i < 1000 && journal_compacting(j); i++) {
        usleep(10000);
        assert_int_equal(journal_maintain(j, NULL, NULL, err, sizeof err), 0);
    }
    assert_false(journal_compacting(j));
}

static void test_compaction_keeps_exactly_the_live_state(void **state)
{
    (void)state;
    seen_t seen;
    journal_replay_t rep;
    char err[256];
    journal_t *j = s_open(JOURNAL_SYNC_BATCH, &seen, &rep);
    for (uint64_t id = 1; id <= 200; id++) {
        jrec_t r = s_job(id, "old");
        assert_int_equal(journal_append(j, &r), 0);
    }
    assert_int_equal(journal_commit(j, err, sizeof err), 0);
    uint64_t before = journal_disk_bytes(j);
    assert_int_equal(journal_compact(j, s_snapshot, NULL, err, sizeof err), 0);
    assert_true(journal_compacting(j));
    /* Records made while the child writes go to the next segment. */
    jrec_t later = s_job(600, "later");
    jrec_t done = {.type = JREC_FINISH, .id = 42, .st = MSG_ST_OK, .attempt = 1};
    assert_int_equal(journal_append(j, &later), 0);
    assert_int_equal(journal_append(j, &done), 0);
    journal_wait(j);   /* as the broker does for a JOB */
    assert_int_equal(journal_commit(j, err, sizeof err), 0);
    s_wait_durable(j);
    s_wait_compaction(j);
    assert_true(s_exists("snapshot.000001"));
    assert_false(s_exists("snapshot.000001.tmp"));
    assert_false(s_exists("journal.000001"));     /* covered: deleted */
    assert_true(s_exists("journal.000002"));
    assert_true(journal_disk_bytes(j) < before);
    journal_destroy(&j);

    j = s_open(JOURNAL_SYNC_OFF, &seen, &rep);
    uint8_t types[] = {JREC_NEXT_ID, JREC_JOB, JREC_JOB, JREC_FINISH, JREC_JOB, JREC_FINISH};
    uint64_t ids[] = {500, 42, 43, 43, 600, 42};
    assert_int_equal(seen.n, 6);                  /* no END, nothing of the old log */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(seen.type[i], types[i]);
        assert_int_equal(seen.id[i], ids[i]);
    }
    assert_string_equal(seen.task[1], "live");
    assert_int_equal(rep.damaged, 0);
    journal_destroy(&j);
}

static void test_failed_compaction_keeps_the_log(void **state)
{
    (void)state;
    seen_t seen;
    journal_replay_t rep;
    char err[256];
    journal_t *j = s_open(JOURNAL_SYNC_OFF, &seen, &rep);
    for (uint64_t id = 1; id <= 3; id++) {
        jrec_t r = s_job(id, "t");
        assert_int_equal(journal_append(j, &r), 0);
    }
    assert_int_equal(journal_compact(j, s_snapshot_fails, NULL, err, sizeof err), 0);
    s_wait_compaction(j);
    assert_false(s_exists("snapshot.000001"));
    assert_false(s_exists("snapshot.000001.tmp"));
    journal_destroy(&j);
    j = s_open(JOURNAL_SYNC_OFF, &seen, &rep);
    assert_int_equal(seen.n, 3);
    journal_destroy(&j);
}

static void test_the_directory_is_locked(void **state)
{
    (void)state;
    seen_t seen;
    journal_replay_t rep;
    journal_t *j = s_open(JOURNAL_SYNC_OFF, &seen, &rep);
    journal_config_t cfg = {.dir = s_dir, .sync = JOURNAL_SYNC_OFF};
    char err[512];
    assert_null(journal_open(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "in use by another qbroker"));
    journal_destroy(&j);
    j = journal_open(&cfg, err, sizeof err); /* free again */
    assert_non_null(j);
    journal_destroy(&j);
    /* A directory that cannot be made. */
    cfg.dir = "/proc/qjob-no/such";
    assert_null(journal_open(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "--data-dir"));
}

static void s_write_file(const char *name, const void *data, size_t len)
{
    int fd = open(s_path(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* A segment of the given version: its header, then one record. */
static void s_write_version(const char *name, int version)
{
    uint8_t f[JOURNAL_HEADER_LEN + 64] = {'Q', 'J', 'J', 'L', (uint8_t)version, 0, 1, 0, 5};
    uint32_t crc = jrec_crc(0, f, 20);
    memcpy(f + 20, &crc, 4); /* little-endian machines: the test runs on x86_64/aarch64 */
    jrec_t r = {.type = JREC_CANCEL, .id = 1};
    jrec_encode(&r, f + JOURNAL_HEADER_LEN);
    s_write_file(name, f, JOURNAL_HEADER_LEN + jrec_size(&r));
}

static void test_newer_version_refused(void **state)
{
    (void)state;
    s_write_version("journal.000005", JOURNAL_VERSION + 1);
    journal_config_t cfg = {.dir = s_dir, .sync = JOURNAL_SYNC_OFF};
    char err[512];
    journal_t *j = journal_open(&cfg, err, sizeof err);
    assert_non_null(j);
    seen_t seen = {0};
    assert_int_equal(journal_replay(j, s_collect, &seen, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "newer qbroker"));
    journal_destroy(&j);
}

static void test_older_version_refused(void **state)
{
    (void)state;
    s_write_version("journal.000005", JOURNAL_VERSION - 1);
    journal_config_t cfg = {.dir = s_dir, .sync = JOURNAL_SYNC_OFF};
    char err[512];
    journal_t *j = journal_open(&cfg, err, sizeof err);
    assert_non_null(j);
    seen_t seen = {0};
    assert_int_equal(journal_replay(j, s_collect, &seen, NULL, err, sizeof err), -1);
    assert_int_equal(seen.n, 0);
    assert_non_null(strstr(err, "journal.000005 was written by an older qbroker (journal "
                                "version 1"));
    assert_non_null(strstr(err, "move the directory aside"));
    journal_destroy(&j);
    /* Nothing was changed: the files wait for the qbroker that reads them. */
    assert_true(s_exists("journal.000005"));
    assert_false(s_exists("journal.000006"));
}

static void test_leftovers_of_an_interrupted_start(void **state)
{
    (void)state;
    seen_t seen;
    journal_replay_t rep;
    char err[256];
    journal_t *j = s_open(JOURNAL_SYNC_OFF, &seen, &rep);
    jrec_t r = s_job(1, "t");
    assert_int_equal(journal_append(j, &r), 0);
    assert_int_equal(journal_flush(j, err, sizeof err), 0);
    journal_destroy(&j);
    s_write_file("journal.000007", "", 0);               /* created, never written */
    s_write_file("snapshot.000003.tmp", "half", 4);      /* a compaction cut short */
    s_write_file("journal.000004", "QJJL and then garbage, no checksum", 34); /* damaged */
    j = s_open(JOURNAL_SYNC_OFF, &seen, &rep);
    assert_int_equal(seen.n, 1);
    assert_int_equal(rep.damaged, 1);
    assert_false(s_exists("journal.000007"));
    assert_false(s_exists("snapshot.000003.tmp"));
    assert_true(s_exists("journal.000008"));             /* after every number seen */
    journal_destroy(&j);
}

int main(void)
{
    log_init("test_journal", LOG_WARN, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_syncs_unwaited_records_late, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_every_level, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_cut, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_record_reported_and_skipped,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_items_grouped_into_few_records, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_group_loses_its_items_only, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_compaction_keeps_exactly_the_live_state, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_failed_compaction_keeps_the_log, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_the_directory_is_locked, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_newer_version_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_older_version_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_leftovers_of_an_interrupted_start, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
