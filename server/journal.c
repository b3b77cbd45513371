/* journal.c -- segment files, group commit, replay, compaction (see journal.h). */
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "jbuf.h"
#include "jreplay.h"
#include "log.h"
#include "syncer.h"

#define WRITE_AT (4u * 1024 * 1024)  /* buffered bytes written at once, mid-turn */
#define COMPACT_RETRY_MS 10000       /* wait after a failed compaction */
#define NAME_LEN 64

struct journal {
    journal_config_t cfg;
    char *dir;                  /* cfg.dir, owned */
    int dirfd, lockfd;
    int fd;                     /* file being appended; -1 before replay */
    uint64_t seg;               /* its number */
    uint64_t snap;              /* newest snapshot's number, 0 = none */
    uint64_t snap_bytes;        /* its size */
    uint64_t log_bytes;         /* record bytes in the segments after it */
    uint64_t *segs;             /* segments found at open, ascending */
    uint32_t nsegs;
    jbuf_t *buf;                /* appended, not yet written */
    uint64_t appended, written, durable; /* lsn: see journal.h */
    uint64_t waited;            /* lsn someone waits to see durable (journal_wait) */
    uint64_t requested;         /* batch: lsn the thread was asked to sync */
    uint64_t lazy_since_ms;     /* batch: when written first passed requested with
                                   nobody waiting; 0 = it has not */
    uint64_t count;             /* records appended (a snapshot's END counts them) */
    int write_errno;            /* the last write failed; 0 = it did not */
    char failing[192];
    int sync_errno;             /* an fdatasync failed: fatal */
    syncer_t *syncer;           /* batch: the fdatasync thread */
    uint64_t fsyncs, fsync_us;  /* always: fdatasyncs of the log, their time */
    /* compaction */
    pid_t child;                /* writing a snapshot; 0 = none */
    uint64_t child_seg;         /* the last segment its snapshot covers */
    uint64_t child_log_bytes;   /* record bytes of the segments it covers */
    uint64_t compact_after_ms;  /* no compaction before this (after a failure) */
};

/* ---- little helpers */

static void s_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void s_name(char *out, const char *prefix, uint64_t n, const char *suffix)
{
    snprintf(out, NAME_LEN, "%s.%06llu%s", prefix, (unsigned long long)n, suffix);
}

/* name is prefix.DIGITS then exactly suffix: *n gets the number. */
static bool s_parse(const char *name, const char *prefix, const char *suffix, uint64_t *n)
{
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) != 0 || name[pl] != '.')
        return false;
    const char *p = name + pl + 1, *d = p;
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9' && p - d < 19)
        v = v * 10 + (uint64_t)(*p++ - '0');
    if (p == d || strcmp(p, suffix) != 0 || v == 0)
        return false;
    *n = v;
    return true;
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* mkdir -p, for the data directory. */
static int s_mkdirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* ---- headers and files */

static void s_header(uint8_t *h, int kind, uint64_t number)
{
    memcpy(h, "QJJL", 4);
    s_le(h + 4, JOURNAL_VERSION, 2);
    h[6] = (uint8_t)kind;
    h[7] = 0;
    s_le(h + 8, number, 8);
    s_le(h + 16, 0, 4);
    s_le(h + 20, jrec_crc(0, h, 20), 4);
}

/* Create a segment or snapshot file with its header; fdatasync it and
 * its directory entry if sync.  Returns the fd, or -1 with a message. */
static int s_create(journal_t *j, const char *name, int kind, uint64_t number, bool sync,
                    char *err, size_t errlen)
{
    int fd = openat(j->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    uint8_t h[JOURNAL_HEADER_LEN];
    s_header(h, kind, number);
    if (fd < 0 || write(fd, h, sizeof h) != (ssize_t)sizeof h ||
        (sync && (fdatasync(fd) != 0 || fsync(j->dirfd) != 0))) {
        snprintf(err, errlen, "cannot create %s/%s: %s", j->dir, name, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlinkat(j->dirfd, name, 0);
        }
        return -1;
    }
    return fd;
}

/* Write the buffer out.  A failure keeps what was not written for the
 * next try, and says so once in the log. */
static int s_write(journal_t *j)
{
    size_t off = 0, len;
    const uint8_t *data = jbuf_data(j->buf, &len);
    while (off < len) {
        ssize_t n = write(j->fd, data + off, len - off);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        int e = n < 0 ? errno : EIO;
        jbuf_consume(j->buf, off);
        j->written += off;
        j->log_bytes += off;
        if (!j->write_errno)
            log_error("journal: cannot write segment %06llu in %s: %s: submits are refused "
                      "until it can", (unsigned long long)j->seg, j->dir, strerror(e));
        j->write_errno = e;
        snprintf(j->failing, sizeof j->failing, "the broker cannot write its journal (%s)",
                 strerror(e));
        return -1;
    }
    jbuf_consume(j->buf, off);
    j->written += off;
    j->log_bytes += off;
    if (j->cfg.sync == JOURNAL_SYNC_OFF)
        j->durable = j->written;
    if (j->write_errno) {
        log_warn("journal: writing again");
        j->write_errno = 0;
    }
    return 0;
}

static int s_fatal(journal_t *j, int e, char *err, size_t errlen)
{
    snprintf(err, errlen, "fdatasync of the journal in %s failed: %s: stopping, since what "
             "was written may be lost; a restart replays what is on disk", j->dir, strerror(e));
    return -1;
}

/* fdatasync the current file now (with the batch thread out of the way);
 * on success everything written is durable.  Returns 0 or an errno. */
static int s_sync_now(journal_t *j)
{
    uint64_t t0 = clock_mono_us();
    int e = j->syncer ? syncer_sync_now(j->syncer, j->fd, j->written)
                      : fdatasync(j->fd) == 0 ? 0 : errno;
    if (!j->syncer) {   /* (the batch thread counts its own) */
        j->fsyncs++;
        j->fsync_us += clock_mono_us() - t0;
    }
    if (e)
        j->sync_errno = e;
    else
        j->durable = j->written;
    return e;
}

/* ---- open */

/* Read the directory: segments, the newest snapshot; remove what is of
 * no use (older snapshots, segments a snapshot covers, unfinished
 * snapshots).  Returns 0, or -1 with errno. */
static int s_list(journal_t *j)
{
    int fd = dup(j->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    rewinddir(d);
    uint32_t cap = 0;
    struct dirent *e;
    uint64_t n;
    while ((e = readdir(d))) {
        if (s_parse(e->d_name, "snapshot", ".tmp", &n)) {
            unlinkat(j->dirfd, e->d_name, 0);
        } else if (s_parse(e->d_name, "snapshot", "", &n)) {
            if (n > j->snap)
                j->snap = n;
        } else if (s_parse(e->d_name, "journal", "", &n)) {
            if (j->nsegs == cap) {
                cap = cap ? cap * 2 : 16;
                uint64_t *v = realloc(j->segs, cap * sizeof *v);
                if (!v) {
                    closedir(d);
                    errno = ENOMEM;
                    return -1;
                }
                j->segs = v;
            }
            j->segs[j->nsegs++] = n;
        }
    }
    rewinddir(d);
    while ((e = readdir(d)))
        if (s_parse(e->d_name, "snapshot", "", &n) && n < j->snap)
            unlinkat(j->dirfd, e->d_name, 0);
    closedir(d);
    if (j->nsegs)
        qsort(j->segs, j->nsegs, sizeof *j->segs, s_cmp_u64);
    uint32_t keep = 0;
    for (uint32_t i = 0; i < j->nsegs; i++) {
        if (j->segs[i] > j->snap) {
            j->segs[keep++] = j->segs[i];
        } else {
            char name[NAME_LEN];
            s_name(name, "journal", j->segs[i], "");
            unlinkat(j->dirfd, name, 0);
        }
    }
    j->nsegs = keep;
    return 0;
}

journal_t *journal_open(const journal_config_t *cfg, char *err, size_t errlen)
{
    journal_t *j = calloc(1, sizeof *j);
    if (!j || !(j->dir = strdup(cfg->dir)) || !(j->buf = jbuf_new())) {
        if (j)
            free(j->dir);
        free(j);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    j->cfg = *cfg;
    j->cfg.dir = j->dir;
    j->fd = j->lockfd = j->dirfd = -1;
    if (s_mkdirs(j->dir) != 0 ||
        (j->dirfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "cannot create or open the data directory %s: %s (choose "
                 "another with --data-dir)", j->dir, strerror(errno));
        journal_destroy(&j);
        return NULL;
    }
    j->lockfd = openat(j->dirfd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (j->lockfd < 0 || flock(j->lockfd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            snprintf(err, errlen, "the data directory %s is in use by another qbroker (it "
                     "holds %s/LOCK): give each broker its own --data-dir", j->dir, j->dir);
        else
            snprintf(err, errlen, "cannot lock %s/LOCK: %s", j->dir, strerror(errno));
        journal_destroy(&j);
        return NULL;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(j->lockfd, 0) != 0 || pwrite(j->lockfd, pid, (size_t)n, 0) != n)
        log_warn("journal: cannot write the pid into %s/LOCK: %s", j->dir, strerror(errno));
    if (s_list(j) != 0) {
        snprintf(err, errlen, "cannot read the data directory %s: %s", j->dir, strerror(errno));
        journal_destroy(&j);
        return NULL;
    }
    return j;
}

/* ---- replay */

int journal_replay(journal_t *j, journal_apply_fn apply, void *ctx, journal_replay_t *out,
                   char *err, size_t errlen)
{
    journal_replay_t rep = {0};
    jreplay_t r = {.dirfd = j->dirfd, .dir = j->dir, .apply = apply, .ctx = ctx, .rep = &rep};
    char name[NAME_LEN];
    uint64_t size, last = j->snap;
    if (j->snap) {
        s_name(name, "snapshot", j->snap, "");
        if (jreplay_file(&r, name, JOURNAL_KIND_SNAPSHOT, &size, err, errlen) != 0)
            return -1;
        j->snap_bytes = size;
    }
    for (uint32_t i = 0; i < j->nsegs; i++) {
        s_name(name, "journal", j->segs[i], "");
        if (jreplay_file(&r, name, JOURNAL_KIND_LOG, &size, err, errlen) != 0)
            return -1;
        if (size > JOURNAL_HEADER_LEN)
            j->log_bytes += size - JOURNAL_HEADER_LEN;
        last = j->segs[i];
    }
    j->seg = last + 1;
    s_name(name, "journal", j->seg, "");
    j->fd = s_create(j, name, JOURNAL_KIND_LOG, j->seg, j->cfg.sync != JOURNAL_SYNC_OFF, err,
                     errlen);
    if (j->fd < 0)
        return -1;
    if (j->cfg.sync == JOURNAL_SYNC_BATCH &&
        !(j->syncer = syncer_new(err, errlen)))
        return -1;
    if (out)
        *out = rep;
    return 0;
}

/* ---- appending */

int journal_append(journal_t *j, const jrec_t *rec)
{
    size_t n = jbuf_append(j->buf, rec);
    if (n == 0)
        return -1;
    j->appended += n;
    j->count++;
    if (jbuf_len(j->buf) >= WRITE_AT && j->fd >= 0)
        s_write(j); /* a failure is retried by the next commit */
    return 0;
}

uint64_t journal_appended(const journal_t *j)
{
    return j->appended;
}

uint64_t journal_durable(const journal_t *j)
{
    return j->durable;
}

size_t journal_pending(const journal_t *j)
{
    return jbuf_len(j->buf);
}

const char *journal_failing(const journal_t *j)
{
    return j->write_errno ? j->failing : NULL;
}

void journal_wait(journal_t *j)
{
    j->waited = j->appended;
}

/* batch: ask the thread to sync what is written, if someone waits for it
 * or it has waited JOURNAL_SYNC_LAG_MS. */
static void s_request(journal_t *j)
{
    if (j->written <= j->requested)
        return;
    uint64_t now = clock_mono_ms();
    if (j->waited > j->requested || (j->lazy_since_ms && now - j->lazy_since_ms >=
                                                             JOURNAL_SYNC_LAG_MS)) {
        syncer_request(j->syncer, j->fd, j->written);
        j->requested = j->written;
        j->lazy_since_ms = 0;
    } else if (!j->lazy_since_ms) {
        j->lazy_since_ms = now ? now : 1;
    }
}

int journal_commit(journal_t *j, char *err, size_t errlen)
{
    if (j->sync_errno)
        return s_fatal(j, j->sync_errno, err, errlen);
    if (jbuf_len(j->buf) && s_write(j) != 0)
        return 0; /* kept; journal_failing says why */
    if (j->durable >= j->written)
        return 0;
    switch (j->cfg.sync) {
    case JOURNAL_SYNC_OFF:
        break;
    case JOURNAL_SYNC_ALWAYS:
        if (s_sync_now(j) != 0)
            return s_fatal(j, j->sync_errno, err, errlen);
        break;
    case JOURNAL_SYNC_BATCH:
        s_request(j);
        break;
    }
    return 0;
}

int journal_fd(const journal_t *j)
{
    return j->syncer ? syncer_fd(j->syncer) : -1;
}

int journal_poll(journal_t *j, char *err, size_t errlen)
{
    if (!j->syncer)
        return 0;
    int e;
    uint64_t synced = syncer_synced(j->syncer, &e);
    if (e) {
        j->sync_errno = e;
        return s_fatal(j, e, err, errlen);
    }
    if (synced > j->durable)
        j->durable = synced;
    return 0;
}

int journal_flush(journal_t *j, char *err, size_t errlen)
{
    if (j->fd < 0)
        return 0;
    if (jbuf_len(j->buf) && s_write(j) != 0) {
        snprintf(err, errlen, "%s: %llu bytes of journal not written", j->failing,
                 (unsigned long long)jbuf_len(j->buf));
        return -1;
    }
    if (j->cfg.sync == JOURNAL_SYNC_OFF || j->durable >= j->written)
        return 0;
    int e = s_sync_now(j);
    return e ? s_fatal(j, e, err, errlen) : 0;
}

/* ---- compaction */

/* Close the current segment (written and, unless --fsync off, synced)
 * and go on in a new one.  Returns 0, or -1 with a message. */
static int s_rotate(journal_t *j, char *err, size_t errlen)
{
    if (jbuf_len(j->buf) && s_write(j) != 0) {
        snprintf(err, errlen, "%s", j->failing);
        return -1;
    }
    char name[NAME_LEN];
    s_name(name, "journal", j->seg + 1, "");
    bool sync = j->cfg.sync != JOURNAL_SYNC_OFF;
    int fd = s_create(j, name, JOURNAL_KIND_LOG, j->seg + 1, sync, err, errlen);
    if (fd < 0)
        return -1;
    /* The old segment is durable before the new one takes records: the
     * batch thread only ever syncs the newest file. */
    if (sync && s_sync_now(j) != 0) {
        close(fd);
        unlinkat(j->dirfd, name, 0);
        return s_fatal(j, j->sync_errno, err, errlen);
    }
    close(j->fd);
    j->fd = fd;
    j->seg++;
    return 0;
}

/* In the child: write the snapshot file.  Returns the exit status. */
static int s_child(journal_t *j, pid_t parent, uint64_t covered, journal_snapshot_fn snap,
                   void *ctx)
{
    /* It must not outlive the broker, which a restart would find still
     * holding the lock and the listening sockets. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        return 1;
    close(j->lockfd);
    char name[NAME_LEN], err[256];
    s_name(name, "snapshot", covered, ".tmp");
    int fd = s_create(j, name, JOURNAL_KIND_SNAPSHOT, covered, false, err, sizeof err);
    if (fd < 0) {
        log_error("journal: compaction: %s", err);
        return 1;
    }
    j->fd = fd; /* (the buffer is empty: s_rotate wrote it) */
    j->count = 0;
    j->write_errno = 0;
    if (snap(ctx, j) != 0)
        return 1;
    jrec_t end = {.type = JREC_END, .id = j->count};
    if (journal_append(j, &end) != 0 || s_write(j) != 0 || fdatasync(fd) != 0) {
        log_error("journal: compaction: cannot write %s/%s: %s", j->dir, name,
                  strerror(errno));
        return 1;
    }
    return close(fd) == 0 ? 0 : 1;
}

int journal_compact(journal_t *j, journal_snapshot_fn snap, void *ctx, char *err,
                    size_t errlen)
{
    if (j->child || j->fd < 0)
        return 0;
    if (s_rotate(j, err, errlen) != 0)
        return -1;
    uint64_t covered = j->seg - 1, bytes = j->log_bytes;
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "cannot fork the compaction child: %s", strerror(errno));
        return -1;
    }
    if (pid == 0)
        _exit(s_child(j, parent, covered, snap, ctx)); /* no atexit, no stdio flush */
    j->child = pid;
    j->child_seg = covered;
    j->child_log_bytes = bytes;
    log_info("journal: compacting: child %ld writes the state as of the end of journal.%06llu "
             "(%llu bytes of log)", (long)pid, (unsigned long long)covered,
             (unsigned long long)bytes);
    return 0;
}

bool journal_compacting(const journal_t *j)
{
    return j->child != 0;
}

/* Remove the files a new snapshot covers. */
static void s_remove_covered(journal_t *j, uint64_t covered)
{
    int fd = dup(j->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        log_warn("journal: cannot list %s to remove old segments: %s", j->dir, strerror(errno));
        return;
    }
    rewinddir(d);
    struct dirent *e;
    uint64_t n;
    while ((e = readdir(d)))
        if ((s_parse(e->d_name, "journal", "", &n) && n <= covered) ||
            (s_parse(e->d_name, "snapshot", "", &n) && n < covered))
            unlinkat(j->dirfd, e->d_name, 0);
    closedir(d);
    fsync(j->dirfd);
}

/* A compaction child has ended (or has it?): use its snapshot. */
static void s_reap(journal_t *j)
{
    int status;
    pid_t r = waitpid(j->child, &status, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR))
        return;
    j->child = 0;
    char tmp[NAME_LEN], name[NAME_LEN];
    s_name(tmp, "snapshot", j->child_seg, ".tmp");
    s_name(name, "snapshot", j->child_seg, "");
    bool ok = r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    struct stat st;
    if (!ok || renameat(j->dirfd, tmp, j->dirfd, name) != 0 || fsync(j->dirfd) != 0 ||
        fstatat(j->dirfd, name, &st, 0) != 0) {
        log_error("journal: compaction failed (%s): the log is kept as it is; next try in "
                  "%d s", !ok ? "its child did not finish well" : strerror(errno),
                  COMPACT_RETRY_MS / 1000);
        unlinkat(j->dirfd, tmp, 0);
        j->compact_after_ms = clock_mono_ms() + COMPACT_RETRY_MS;
        return;
    }
    s_remove_covered(j, j->child_seg);
    j->snap = j->child_seg;
    j->snap_bytes = (uint64_t)st.st_size;
    j->log_bytes -= j->child_log_bytes < j->log_bytes ? j->child_log_bytes : j->log_bytes;
    log_info("journal: compacted: %s (%llu bytes) replaces %llu bytes of log", name,
             (unsigned long long)j->snap_bytes, (unsigned long long)j->child_log_bytes);
}

int journal_maintain(journal_t *j, journal_snapshot_fn snap, void *ctx, char *err,
                     size_t errlen)
{
    if (j->write_errno && journal_commit(j, err, errlen) != 0)
        return -1;
    if (j->sync_errno)
        return s_fatal(j, j->sync_errno, err, errlen);
    if (j->syncer)
        s_request(j);
    if (j->child)
        s_reap(j);
    uint64_t due = j->cfg.compact_bytes > j->snap_bytes ? j->cfg.compact_bytes : j->snap_bytes;
    if (!j->child && snap && j->log_bytes >= due && clock_mono_ms() >= j->compact_after_ms) {
        char why[256];
        if (journal_compact(j, snap, ctx, why, sizeof why) != 0) {
            if (j->sync_errno)
                return s_fatal(j, j->sync_errno, err, errlen);
            log_error("journal: compaction not started: %s; next try in %d s", why,
                      COMPACT_RETRY_MS / 1000);
            j->compact_after_ms = clock_mono_ms() + COMPACT_RETRY_MS;
        }
    }
    return 0;
}

void journal_figures(const journal_t *j, journal_figures_t *out)
{
    *out = (journal_figures_t){.written = j->written, .disk = journal_disk_bytes(j),
                               .fsyncs = j->fsyncs, .fsync_us = j->fsync_us};
    if (j->syncer)
        syncer_figures(j->syncer, &out->fsyncs, &out->fsync_us);
}

uint64_t journal_disk_bytes(const journal_t *j)
{
    int fd = dup(j->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    rewinddir(d);
    uint64_t total = 0, n;
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d)))
        if ((s_parse(e->d_name, "journal", "", &n) || s_parse(e->d_name, "snapshot", "", &n)) &&
            fstatat(j->dirfd, e->d_name, &st, 0) == 0)
            total += (uint64_t)st.st_size;
    closedir(d);
    return total;
}

/* ---- the end */

void journal_destroy(journal_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    journal_t *j = *self_p;
    if (j->child) {
        char tmp[NAME_LEN];
        kill(j->child, SIGKILL);
        waitpid(j->child, NULL, 0);
        s_name(tmp, "snapshot", j->child_seg, ".tmp");
        unlinkat(j->dirfd, tmp, 0);
    }
    syncer_destroy(&j->syncer);
    if (j->fd >= 0)
        close(j->fd);
    if (j->lockfd >= 0)
        close(j->lockfd); /* and the lock with it */
    if (j->dirfd >= 0)
        close(j->dirfd);
    jbuf_destroy(&j->buf);
    free(j->segs);
    free(j->dir);
    free(j);
    *self_p = NULL;
}
