/* syncer.h -- a thread that fdatasyncs the journal, for group commit.
 *
 * With --fsync batch the loop must not wait for the disk, and one
 * fdatasync should cover every record written meanwhile.  The loop writes
 * records with write(2) and asks the syncer to make the file durable up
 * to a position (an lsn, bytes counted by the caller).  The thread runs
 * fdatasync at once if it is idle; while one runs, requests pile up and
 * the next fdatasync, started as soon as it returns, covers them all.  So
 * a record waits for two fdatasyncs at most, and under load each covers
 * the records of many turns.  After each, syncer_fd() becomes readable so
 * that the loop's zmq_poll wakes and asks how far the file is durable.
 */
#ifndef QJ_SYNCER_H
#define QJ_SYNCER_H

#include <stddef.h>
#include <stdint.h>

typedef struct syncer syncer_t;

/* Start the thread.  Returns NULL with a message in err on failure. */
syncer_t *syncer_new(char *err, size_t errlen);

/* Stop the thread (after the fdatasync it may be in) and free; safe on
 * NULL, nulls the caller's pointer. */
void syncer_destroy(syncer_t **self_p);

/* Readable after each fdatasync the thread finished (or failed). */
int syncer_fd(const syncer_t *self);

/* Ask for fd to be durable up to lsn (everything written to it so far).
 * A request for a new fd replaces the old one: the caller makes the old
 * one durable first (syncer_sync_now) before it closes it. */
void syncer_request(syncer_t *self, int fd, uint64_t lsn);

/* fdatasync fd now, in the caller's thread, once the thread is not in an
 * fdatasync of its own; on success lsn counts as synced.  Returns 0 or
 * the errno of the failure. */
int syncer_sync_now(syncer_t *self, int fd, uint64_t lsn);

/* After syncer_fd polled readable (or at any time): the lsn up to which
 * the thread has synced.  *err gets the errno of a failed fdatasync (the
 * thread then stops syncing), else 0. */
uint64_t syncer_synced(syncer_t *self, int *err);

/* fdatasyncs done so far (by the thread and syncer_sync_now), and the
 * time they took in µs. */
void syncer_figures(syncer_t *self, uint64_t *fsyncs, uint64_t *fsync_us);

#endif
