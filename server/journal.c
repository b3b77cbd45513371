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
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "syncer.h"

#define WRITE_AT (4u * 1024 * 1024)  /* buffered bytes written at once, mid-turn */
#define COMPACT_RETRY_MS 10000       /* wait after a failed compaction */
#define KIND_LOG 1
#define KIND_SNAPSHOT 2
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
    uint8_t *buf;               /* appended, not yet written */
    size_t len, cap;
    uint64_t appended, written, durable; /* lsn: see journal.h */
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

static uint64_t s_get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
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
    size_t off = 0;
    while (off < j->len) {
        ssize_t n = write(j->fd, j->buf + off, j->len - off);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        int e = n < 0 ? errno : EIO;
        memmove(j->buf, j->buf + off, j->len - off);
        j->len -= off;
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
    j->len = 0;
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
    if (!j || !(j->dir = strdup(cfg->dir))) {
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

typedef struct replay {
    journal_t *j;
    journal_apply_fn apply;
    void *ctx;
    journal_replay_t *rep;
    const char *name;           /* file being read */
    size_t body_len;            /* its bytes after the header */
    bool stopped;               /* apply returned -1 */
    bool saw_end;               /* a snapshot's END */
    int tail_type;              /* a damaged tail: its header's type, or -1 */
    const char *tail_why;
} replay_t;

static int s_on_intact(void *arg, size_t off, uint8_t type, const uint8_t *payload, size_t len)
{
    replay_t *r = arg;
    jrec_t rec;
    char why[160];
    if (jrec_decode(type, payload, len, &rec, why, sizeof why) != 0) {
        log_warn("journal: %s offset %zu: %s record unreadable (%s): skipped, the others "
                 "are kept", r->name, JOURNAL_HEADER_LEN + off, jrec_type_name(type), why);
        r->rep->damaged++;
        return 0;
    }
    if (type == JREC_END) {
        r->saw_end = true;
        return 0;
    }
    r->rep->records++;
    if (r->apply(r->ctx, &rec) != 0) {
        r->stopped = true;
        return -1;
    }
    return 0;
}

static void s_on_damaged(void *arg, size_t off, size_t len, int type, const char *why)
{
    replay_t *r = arg;
    if (off + len == r->body_len) {   /* the tail: cut afterwards, reported then */
        r->tail_type = type;
        r->tail_why = why;
        return;
    }
    r->rep->damaged++;
    log_warn("journal: %s offset %zu: damaged %s record (%s): %zu bytes skipped, the records "
             "after them are kept", r->name, JOURNAL_HEADER_LEN + off,
             type < 0 ? "unknown" : jrec_type_name(type), why, len);
}

/* Replay one file; *size gets its size afterwards (tail cut), 0 if it
 * was removed or skipped. */
static int s_replay_file(replay_t *r, int kind, uint64_t number, uint64_t *size, char *err,
                         size_t errlen)
{
    journal_t *j = r->j;
    char name[NAME_LEN];
    s_name(name, kind == KIND_LOG ? "journal" : "snapshot", number, "");
    r->name = name;
    *size = 0;
    int fd = openat(j->dirfd, name, (kind == KIND_LOG ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot read %s/%s: %s", j->dir, name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t total = (size_t)st.st_size;
    if (total < JOURNAL_HEADER_LEN) {
        /* Created, not yet written when the broker stopped: nothing in it. */
        log_warn("journal: %s holds %zu bytes, not even its header: removed", name, total);
        close(fd);
        unlinkat(j->dirfd, name, 0);
        return 0;
    }
    uint8_t *buf = mmap(NULL, total, PROT_READ, MAP_PRIVATE, fd, 0);
    if (buf == MAP_FAILED) {
        snprintf(err, errlen, "cannot read %s/%s: %s", j->dir, name, strerror(errno));
        close(fd);
        return -1;
    }
    r->rep->files++;
    uint32_t version = (uint32_t)s_get_le(buf + 4, 2);
    int rc = 0;
    if (memcmp(buf, "QJJL", 4) != 0 || s_get_le(buf + 20, 4) != jrec_crc(0, buf, 20)) {
        log_warn("journal: %s has a damaged header: the file is skipped", name);
        r->rep->damaged++;
    } else if (version > JOURNAL_VERSION) {
        snprintf(err, errlen, "%s/%s was written by a newer qbroker (journal version %u; this "
                 "one reads version %u): run that version, or move the directory aside",
                 j->dir, name, version, JOURNAL_VERSION);
        rc = -1;
    } else if (buf[6] != kind) {
        log_warn("journal: %s is not a %s file: skipped", name,
                 kind == KIND_LOG ? "segment" : "snapshot");
        r->rep->damaged++;
    } else if (total == JOURNAL_HEADER_LEN && kind == KIND_LOG) {
        unlinkat(j->dirfd, name, 0); /* a start with no record after it: of no use */
        total = 0;
    } else {
        r->body_len = total - JOURNAL_HEADER_LEN;
        r->saw_end = false;
        r->tail_type = -2;
        size_t good = jrec_scan(buf + JOURNAL_HEADER_LEN, r->body_len, s_on_intact,
                                s_on_damaged, r);
        if (r->stopped) {
            snprintf(err, errlen, "replay of %s/%s stopped (out of memory?)", j->dir, name);
            rc = -1;
        } else if (good < r->body_len && r->tail_type != -2) {
            size_t cut = r->body_len - good;
            r->rep->cut += cut;
            if (kind == KIND_LOG && ftruncate(fd, (off_t)(JOURNAL_HEADER_LEN + good)) == 0) {
                log_warn("journal: %s offset %zu: torn tail of %zu bytes (%s record: %s) cut",
                         name, JOURNAL_HEADER_LEN + good, cut,
                         r->tail_type < 0 ? "unknown" : jrec_type_name(r->tail_type),
                         r->tail_why);
                total = JOURNAL_HEADER_LEN + good;
            } else {
                r->rep->damaged++;
                log_warn("journal: %s offset %zu: %zu damaged bytes at the end (%s) skipped",
                         name, JOURNAL_HEADER_LEN + good, cut, r->tail_why);
            }
        }
        if (kind == KIND_SNAPSHOT && !r->saw_end && rc == 0)
            log_warn("journal: %s has no END record: it is incomplete; its records are kept",
                     name);
    }
    munmap(buf, (size_t)st.st_size);
    close(fd);
    *size = total;
    return rc;
}

int journal_replay(journal_t *j, journal_apply_fn apply, void *ctx, journal_replay_t *out,
                   char *err, size_t errlen)
{
    journal_replay_t rep = {0};
    replay_t r = {.j = j, .apply = apply, .ctx = ctx, .rep = &rep};
    uint64_t size, last = j->snap;
    if (j->snap) {
        if (s_replay_file(&r, KIND_SNAPSHOT, j->snap, &size, err, errlen) != 0)
            return -1;
        j->snap_bytes = size;
    }
    for (uint32_t i = 0; i < j->nsegs; i++) {
        if (s_replay_file(&r, KIND_LOG, j->segs[i], &size, err, errlen) != 0)
            return -1;
        if (size > JOURNAL_HEADER_LEN)
            j->log_bytes += size - JOURNAL_HEADER_LEN;
        last = j->segs[i];
    }
    j->seg = last + 1;
    char name[NAME_LEN];
    s_name(name, "journal", j->seg, "");
    j->fd = s_create(j, name, KIND_LOG, j->seg, j->cfg.sync != JOURNAL_SYNC_OFF, err, errlen);
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
    size_t n = jrec_size(rec);
    if (n == 0)
        return -1;
    if (j->len + n > j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 64 * 1024;
        while (cap < j->len + n)
            cap *= 2;
        uint8_t *v = realloc(j->buf, cap);
        if (!v)
            return -1;
        j->buf = v;
        j->cap = cap;
    }
    jrec_encode(rec, j->buf + j->len);
    j->len += n;
    j->appended += n;
    j->count++;
    if (j->len >= WRITE_AT && j->fd >= 0)
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
    return j->len;
}

const char *journal_failing(const journal_t *j)
{
    return j->write_errno ? j->failing : NULL;
}

int journal_commit(journal_t *j, char *err, size_t errlen)
{
    if (j->sync_errno)
        return s_fatal(j, j->sync_errno, err, errlen);
    if (j->len && s_write(j) != 0)
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
        syncer_request(j->syncer, j->fd, j->written);
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
    if (j->len && s_write(j) != 0) {
        snprintf(err, errlen, "%s: %llu bytes of journal not written", j->failing,
                 (unsigned long long)j->len);
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
    if (j->len && s_write(j) != 0) {
        snprintf(err, errlen, "%s", j->failing);
        return -1;
    }
    char name[NAME_LEN];
    s_name(name, "journal", j->seg + 1, "");
    bool sync = j->cfg.sync != JOURNAL_SYNC_OFF;
    int fd = s_create(j, name, KIND_LOG, j->seg + 1, sync, err, errlen);
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
    int fd = s_create(j, name, KIND_SNAPSHOT, covered, false, err, sizeof err);
    if (fd < 0) {
        log_error("journal: compaction: %s", err);
        return 1;
    }
    j->fd = fd;
    j->len = 0;
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
    free(j->buf);
    free(j->segs);
    free(j->dir);
    free(j);
    *self_p = NULL;
}
