/* journal.h -- the broker's append-only journal on disk: segment files,
 * group commit, replay that survives damage, compaction in a child.
 *
 * The journal lives in one directory (--data-dir), locked by one broker
 * at a time (LOCK, flock):
 *
 *   journal.000007     log segments: a header, then records (jrec.h)
 *   snapshot.000006    the live state as of the end of journal.000006
 *   snapshot.000006.tmp  a snapshot being written (removed at start)
 *
 * Replay reads the newest snapshot and every segment numbered after it
 * (jreplay.h); a damaged record is reported (file, offset, type) and
 * skipped, the records around it are kept, and a torn tail is cut.
 * Appending then goes to a fresh segment.
 *
 * Records are appended to a memory buffer while the loop turns (jbuf.h:
 * a job's JOB, DISPATCH and FINISH join the records of the jobs around
 * it) and written with one write(2) at the end of the turn
 * (journal_commit).
 * Positions in the journal are counted in bytes appended since start
 * ("lsn"): journal_appended() is the end of what has been appended,
 * journal_durable() the end of what is safe at the --fsync level:
 *   off     written (survives the broker's crash, not the machine's);
 *   always  written and fdatasync'ed by journal_commit itself (one
 *           fdatasync per turn, however many records the turn made);
 *   batch   written, then fdatasync'ed by a background thread (group
 *           commit, syncer.h); the loop polls journal_fd() to learn
 *           that durable() moved.  The thread is asked at once when
 *           someone waits (journal_wait: a submit's ACCEPTED); records
 *           nobody waits for (leases, outcomes: lost, their job only
 *           runs again) go with the next that is, or after
 *           JOURNAL_SYNC_LAG_MS (journal_maintain), so that a stream of
 *           results does not cost an fdatasync per message.
 * The broker holds back what must not be seen before it is durable (a
 * submit's ACCEPTED, a result) until durable() reaches the lsn it had.
 *
 * Compaction: once the log since the last snapshot outgrows the
 * threshold (and that snapshot), the current segment is closed and a
 * forked child writes the live state, from its copy-on-write image of
 * the broker, as a new snapshot; the loop only pays for the fork.  When
 * the child has succeeded, the snapshot is renamed into place and the
 * segments it covers are deleted.  See server/JOURNAL.md.
 */
#ifndef QJ_JOURNAL_H
#define QJ_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jrec.h"

#define JOURNAL_VERSION 2      /* of the files: see the checklist in JOURNAL.md */
#define JOURNAL_HEADER_LEN 24  /* bytes of a segment or snapshot header */
#define JOURNAL_KIND_LOG 1      /* the header's kind: a log segment, */
#define JOURNAL_KIND_SNAPSHOT 2 /* a snapshot */

typedef enum journal_sync {
    JOURNAL_SYNC_OFF,
    JOURNAL_SYNC_BATCH,
    JOURNAL_SYNC_ALWAYS,
} journal_sync_t;

typedef struct journal_config {
    const char *dir;           /* data directory, created if missing */
    journal_sync_t sync;
    uint64_t compact_bytes;    /* compact when the log since the last snapshot is this big */
} journal_config_t;

/* What a replay found. */
typedef struct journal_replay {
    uint64_t records;          /* records (items of grouped ones) handed to the caller */
    uint64_t damaged;          /* damaged stretches skipped (each reported) */
    uint64_t cut;              /* bytes of torn tails cut */
    uint32_t files;            /* snapshot and segments read */
} journal_replay_t;

typedef struct journal journal_t;

/* Called for each intact record in order (each item of a grouped one as
 * a record of its own).  Pointers in rec borrow from the file being read,
 * for the call only.  Return 0, or -1 to stop the
 * replay (the broker cannot go on: out of memory). */
typedef int (*journal_apply_fn)(void *ctx, const jrec_t *rec);

/* Called in the compaction child to write the live state with
 * journal_append (the child's own copy of j; write and sync are done
 * around it).  Return 0, or -1 if the snapshot must not be used. */
typedef int (*journal_snapshot_fn)(void *ctx, journal_t *j);

/* Create the directory if needed, lock it, and look at what it holds.
 * Returns NULL with a message in err if it cannot be created, read or
 * locked (another broker uses it). */
journal_t *journal_open(const journal_config_t *cfg, char *err, size_t errlen);

/* Replay the snapshot and the segments after it through apply, reporting
 * damage in the log and cutting torn tails; then open a new segment for
 * appending (and start the batch thread).  Call once, after journal_open.
 * Returns 0 (with figures in *out, if not NULL), or -1 with a message if
 * a file cannot be read or written, if one was written by a newer qbroker,
 * or if apply stopped the replay. */
int journal_replay(journal_t *j, journal_apply_fn apply, void *ctx, journal_replay_t *out,
                   char *err, size_t errlen);

/* Append a record to the buffer (written when the buffer is large, else
 * by journal_commit).  Returns 0, or -1 if a field is over its limit or
 * memory is short (nothing appended). */
int journal_append(journal_t *j, const jrec_t *rec);

/* Someone waits to see the records appended so far durable (batch: the
 * next commit asks the thread to sync at once). */
void journal_wait(journal_t *j);

/* batch: the longest a written record nobody waits for stays unsynced,
 * give or take the broker's tick (journal_maintain). */
#define JOURNAL_SYNC_LAG_MS 100

/* lsn at the end of what has been appended, and of what is durable at
 * the --fsync level (see the top of this file). */
uint64_t journal_appended(const journal_t *j);
uint64_t journal_durable(const journal_t *j);

/* Bytes appended and not yet written. */
size_t journal_pending(const journal_t *j);

/* End of a turn: write what was appended (one write(2)); sync it
 * (always) or ask the batch thread to.  A failed write is kept to retry
 * (journal_failing says why).  Returns 0, or -1 with a message if an
 * fdatasync failed: the broker must stop, since the kernel may have
 * dropped what it could not write (a restart replays what is on disk). */
int journal_commit(journal_t *j, char *err, size_t errlen);

/* batch: the fd the loop polls for "the thread synced"; -1 otherwise. */
int journal_fd(const journal_t *j);

/* After journal_fd polled readable: take the thread's news.  Returns 0,
 * or -1 with a message if its fdatasync failed (as journal_commit). */
int journal_poll(journal_t *j, char *err, size_t errlen);

/* Why writes are failing (disk full, I/O error), or NULL if they are not. */
const char *journal_failing(const journal_t *j);

/* Housekeeping, on the broker's tick: retry a failed write, have what
 * was written JOURNAL_SYNC_LAG_MS ago synced (batch), reap a
 * finished compaction child (renaming its snapshot into place, deleting
 * what it covers), start a compaction if one is due.  Returns 0, or -1
 * as journal_commit. */
int journal_maintain(journal_t *j, journal_snapshot_fn snap, void *ctx, char *err,
                     size_t errlen);

/* Start a compaction now, whatever the sizes (tests, and journal_maintain).
 * Returns 0 (also if one is running), or -1 with a message if the segment
 * could not be rotated or the child not forked. */
int journal_compact(journal_t *j, journal_snapshot_fn snap, void *ctx, char *err,
                    size_t errlen);

/* True while a compaction child runs. */
bool journal_compacting(const journal_t *j);

/* Bytes of journal files on disk now (snapshot and segments). */
uint64_t journal_disk_bytes(const journal_t *j);

/* Figures since start, for STATS and /metrics. */
typedef struct journal_figures {
    uint64_t written;          /* bytes of records written to the log */
    uint64_t fsyncs;           /* fdatasyncs of the log (batch: by its thread too) */
    uint64_t fsync_us;         /* and the time they took */
    uint64_t disk;             /* journal_disk_bytes */
} journal_figures_t;

/* Fill *out. */
void journal_figures(const journal_t *j, journal_figures_t *out);

/* Make everything appended durable at the --fsync level now: write it,
 * and (unless off) fdatasync it in the caller's thread, once the batch
 * thread is out of the way.  For shutdown, and for answers that cannot
 * wait for the next commit.  Returns 0, or -1 with a message. */
int journal_flush(journal_t *j, char *err, size_t errlen);

/* Stop the thread and any compaction child, close the files, unlock;
 * what was appended and not written is lost (call journal_flush first).
 * Safe on NULL, nulls the caller's pointer. */
void journal_destroy(journal_t **self_p);

#endif
