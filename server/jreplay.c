/* jreplay.c -- reading one journal file back (see jreplay.h). */
#include "jreplay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static uint64_t s_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Each record, or each item of a grouped one. */
static int s_on_item(void *arg, const jrec_t *rec)
{
    jreplay_t *r = arg;
    if (rec->type == JREC_END) {
        r->saw_end = true;
        return 0;
    }
    r->rep->records++;
    if (r->apply(r->ctx, rec) != 0) {
        r->stopped = true;
        return -1;
    }
    return 0;
}

static int s_on_intact(void *arg, size_t off, uint8_t type, const uint8_t *payload, size_t len)
{
    jreplay_t *r = arg;
    char why[160];
    int rc = jrec_decode(type, payload, len, s_on_item, r, why, sizeof why);
    if (rc < 0) {
        log_warn("journal: %s offset %zu: %s record unreadable (%s): skipped, the others "
                 "are kept", r->name, JOURNAL_HEADER_LEN + off, jrec_type_name(type), why);
        r->rep->damaged++;
    }
    return rc > 0 ? -1 : 0;
}

static void s_on_damaged(void *arg, size_t off, size_t len, int type, const char *why)
{
    jreplay_t *r = arg;
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

int jreplay_file(jreplay_t *r, const char *name, int kind, uint64_t *size, char *err,
                 size_t errlen)
{
    r->name = name;
    *size = 0;
    int fd = openat(r->dirfd, name, (kind == JOURNAL_KIND_LOG ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot read %s/%s: %s", r->dir, name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t total = (size_t)st.st_size;
    if (total < JOURNAL_HEADER_LEN) {
        /* Created, not yet written when the broker stopped: nothing in it. */
        log_warn("journal: %s holds %zu bytes, not even its header: removed", name, total);
        close(fd);
        unlinkat(r->dirfd, name, 0);
        return 0;
    }
    uint8_t *buf = mmap(NULL, total, PROT_READ, MAP_PRIVATE, fd, 0);
    if (buf == MAP_FAILED) {
        snprintf(err, errlen, "cannot read %s/%s: %s", r->dir, name, strerror(errno));
        close(fd);
        return -1;
    }
    r->rep->files++;
    uint32_t version = (uint32_t)s_le(buf + 4, 2);
    int rc = 0;
    if (memcmp(buf, "QJJL", 4) != 0 || s_le(buf + 20, 4) != jrec_crc(0, buf, 20)) {
        log_warn("journal: %s has a damaged header: the file is skipped", name);
        r->rep->damaged++;
    } else if (version > JOURNAL_VERSION) {
        snprintf(err, errlen, "%s/%s was written by a newer qbroker (journal version %u; this "
                 "one reads version %u): run that version, or move the directory aside",
                 r->dir, name, version, JOURNAL_VERSION);
        rc = -1;
    } else if (version < JOURNAL_VERSION) {
        snprintf(err, errlen, "%s/%s was written by an older qbroker (journal version %u; this "
                 "one reads version %u only): let that qbroker finish the jobs it holds, then "
                 "move the directory aside (or start this one with another --data-dir)",
                 r->dir, name, version, JOURNAL_VERSION);
        rc = -1;
    } else if (buf[6] != kind) {
        log_warn("journal: %s is not a %s file: skipped", name,
                 kind == JOURNAL_KIND_LOG ? "segment" : "snapshot");
        r->rep->damaged++;
    } else if (total == JOURNAL_HEADER_LEN && kind == JOURNAL_KIND_LOG) {
        unlinkat(r->dirfd, name, 0); /* a start with no record after it: of no use */
        total = 0;
    } else {
        r->body_len = total - JOURNAL_HEADER_LEN;
        r->saw_end = false;
        r->tail_type = -2;
        size_t good = jrec_scan(buf + JOURNAL_HEADER_LEN, r->body_len, s_on_intact,
                                s_on_damaged, r);
        if (r->stopped) {
            snprintf(err, errlen, "replay of %s/%s stopped (out of memory?)", r->dir, name);
            rc = -1;
        } else if (good < r->body_len && r->tail_type != -2) {
            size_t cut = r->body_len - good;
            r->rep->cut += cut;
            if (kind == JOURNAL_KIND_LOG &&
                ftruncate(fd, (off_t)(JOURNAL_HEADER_LEN + good)) == 0) {
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
        if (kind == JOURNAL_KIND_SNAPSHOT && !r->saw_end && rc == 0)
            log_warn("journal: %s has no END record: it is incomplete; its records are kept",
                     name);
    }
    munmap(buf, (size_t)st.st_size);
    close(fd);
    *size = total;
    return rc;
}
