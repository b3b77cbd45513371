/* jreplay.h -- reading one file of the journal back, however damaged.
 *
 * journal_replay reads the newest snapshot and the segments after it
 * with jreplay_file, one file at a time: the header is checked (its
 * checksum, its version: a file of another version stops the broker
 * with a message saying what to do), every intact record goes to the
 * caller's apply (each item of a grouped record as a record of its own),
 * a damaged record is reported (file, offset, type, what was wrong) and
 * skipped, and a torn tail is reported and cut off a segment
 * (server/JOURNAL.md §1-2).
 */
#ifndef QJ_JREPLAY_H
#define QJ_JREPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "journal.h"

/* A replay in progress, over the files of one directory. */
typedef struct jreplay {
    int dirfd;                  /* the data directory (borrowed) */
    const char *dir;            /* its name, for messages */
    journal_apply_fn apply;     /* takes each record */
    void *ctx;
    journal_replay_t *rep;      /* what was found, added up over the files */
    /* the file being read */
    const char *name;
    size_t body_len;            /* its bytes after the header */
    bool stopped;               /* apply returned -1 */
    bool saw_end;               /* a snapshot's END */
    int tail_type;              /* a damaged tail: its header's type, or -1 */
    const char *tail_why;
} jreplay_t;

/* Replay the file name in r->dirfd, a segment or a snapshot (kind: a
 * JOURNAL_KIND_*).  A file shorter than its header, or a segment with
 * nothing after it, is removed; one whose header is damaged or of the
 * wrong kind is reported and skipped.  *size gets the file's size
 * afterwards (a torn tail cut), 0 if it was removed or skipped.  Returns
 * 0, or -1 with a message if the file cannot be read, was written by
 * another version, or apply stopped the replay. */
int jreplay_file(jreplay_t *r, const char *name, int kind, uint64_t *size, char *err,
                 size_t errlen);

#endif
