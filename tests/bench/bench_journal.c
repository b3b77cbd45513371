/* bench_journal.c -- the journal's cost per job in the broker's loop.
 *
 * Appends what a small job's life records (its JOB, DISPATCH and FINISH,
 * filled as store.c fills them for `qclient bench`'s 16-byte noop jobs),
 * K jobs per turn of the loop as a broker under load makes them (the
 * jobs of a SUBMIT of K, then their leases, then their results), ends
 * each turn with journal_commit, and takes the sync thread's news as the
 * loop does.  Prints the process's CPU time per job (the loop and the
 * sync thread: write(2), fdatasync and all) and the journal's bytes per
 * job.  Usage: bench_journal [JOBS [K [always|batch|off]]]
 * (default 1000000 64 batch); the journal goes to a scratch directory
 * under $TMPDIR, removed afterwards.
 */
#include <dirent.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"

static const char s_args[] = "\xc4\x10xxxxxxxxxxxxxxxx"; /* bin of 16 bytes */
static const char s_worker[] = "bench-host:123456/0";
static const char s_cid[QJ_CID_LEN] = "0123456789abcdef";
static const uint64_t T0 = 1700000000000000ull;      /* a unix µs timestamp */

static double s_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int s_nothing(void *ctx, const jrec_t *rec)
{
    (void)ctx;
    (void)rec;
    return 0;
}

static void s_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    long jobs = argc > 1 ? atol(argv[1]) : 1000000;
    long k = argc > 2 ? atol(argv[2]) : 64;
    const char *mode = argc > 3 ? argv[3] : "batch";
    journal_sync_t sync = !strcmp(mode, "always") ? JOURNAL_SYNC_ALWAYS
                          : !strcmp(mode, "off")  ? JOURNAL_SYNC_OFF
                                                  : JOURNAL_SYNC_BATCH;
    if (jobs < 1 || k < 1) {
        fprintf(stderr, "usage: bench_journal [JOBS [K [always|batch|off]]]\n");
        return 2;
    }
    log_init("bench_journal", LOG_WARN, false);
    const char *tmp = getenv("TMPDIR");
    char dir[256], err[256];
    snprintf(dir, sizeof dir, "%s/qjob-bench-journal-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    journal_config_t cfg = {.dir = dir, .sync = sync, .compact_bytes = UINT64_MAX};
    journal_t *j = journal_open(&cfg, err, sizeof err);
    if (!j || journal_replay(j, s_nothing, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "bench_journal: %s\n", err);
        return 1;
    }
    double cpu0 = s_clock(CLOCK_PROCESS_CPUTIME_ID), wall0 = s_clock(CLOCK_MONOTONIC);
    uint64_t id = 1, turn = 0;
    for (long done = 0; done < jobs; turn++) {
        uint64_t now = T0 + turn * 50, first = id;
        long n = jobs - done < k ? jobs - done : k;
        for (long i = 0; i < n; i++, id++) {
            jrec_t r = {.type = JREC_JOB, .id = id, .cid = {s_cid, QJ_CID_LEN}, .ref = id,
                        .t_submit = now - 20, .t_queued = now, .timeout_ms = 0,
                        .backoff_ms = 1000, .queue = {"default", 7}, .task = {"noop", 4},
                        .args = {s_args, sizeof s_args - 1}};
            journal_append(j, &r);
        }
        for (uint64_t i = first; i < id; i++) {
            jrec_t r = {.type = JREC_DISPATCH, .id = i, .attempt = 1, .t_dispatched = now};
            journal_append(j, &r);
        }
        for (uint64_t i = first; i < id; i++) {
            jrec_t r = {.type = JREC_FINISH, .id = i, .st = 0, .attempt = 1, .final_us = now,
                        .started = now - 10, .finished = now - 5, .val = {"\xc0", 1},
                        .wk = {s_worker, sizeof s_worker - 1}};
            journal_append(j, &r);
        }
        done += n;
        if (journal_commit(j, err, sizeof err) != 0) {
            fprintf(stderr, "bench_journal: %s\n", err);
            return 1;
        }
        struct pollfd p = {.fd = journal_fd(j), .events = POLLIN};
        if (p.fd >= 0 && poll(&p, 1, 0) > 0 && journal_poll(j, err, sizeof err) != 0) {
            fprintf(stderr, "bench_journal: %s\n", err);
            return 1;
        }
    }
    if (journal_flush(j, err, sizeof err) != 0) {
        fprintf(stderr, "bench_journal: %s\n", err);
        return 1;
    }
    double cpu = s_clock(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    double wall = s_clock(CLOCK_MONOTONIC) - wall0;
    journal_figures_t f;
    journal_figures(j, &f);
    printf("journal --fsync %s, %ld jobs, %ld per turn: %.1f ns cpu/job, %.1f ns wall/job, "
           "%.1f bytes/job, %llu fdatasyncs\n", mode, jobs, k, cpu * 1e9 / (double)jobs,
           wall * 1e9 / (double)jobs, (double)journal_appended(j) / (double)jobs,
           (unsigned long long)f.fsyncs);
    journal_destroy(&j);
    s_rmdir(dir);
    return 0;
}
