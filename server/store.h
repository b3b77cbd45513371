/* store.h -- the broker's jobs made durable through its journal.
 *
 * Three things meet here, all in terms of the broker's own structures:
 *  - each change of a job's life becomes a journal record (dispatch.c
 *    calls store_submit, store_dispatch, store_requeue, store_final and
 *    store_cancel at the one place each change happens);
 *  - at start, the journal's records rebuild the jobs: queued and delayed
 *    ones in their order, priority and time; jobs that were leased to a
 *    worker when the broker stopped are queued again at the front (their
 *    attempt counted), or finish as cancelled if a cancel was asked;
 *    results within their time to live are kept; the id counter resumes
 *    above the journal's high-water mark; (cid, ref) and keys find the
 *    same jobs as before;
 *  - compaction writes the live state, in a forked child (journal.h).
 * The rest of the broker sees the journal through lsn positions: an ack
 * or a result is sent once store_durable() has reached store_lsn() as it
 * was when the item was made.
 */
#ifndef QJ_STORE_H
#define QJ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"

/* Open the journal in b->cfg.data_dir and replay it into b (whose
 * registry, peers, queues and timers exist, sockets not yet), then make
 * the outcome of the replay durable.  Returns 0, or -1 with a message. */
int store_open(broker_t *b, char *err, size_t errlen);

/* Close the journal (call store_flush first for a clean stop); safe if
 * it was never opened. */
void store_close(broker_t *b);

/* Why submits must be refused now (the journal cannot be written), or
 * NULL. */
const char *store_refusal(const broker_t *b);

/* Record a job just accepted, ready or held until due_us (unix µs; 0 =
 * ready).  Returns 0, or -1 if it could not be recorded (the caller
 * refuses the submit). */
int store_submit(broker_t *b, const job_t *job, uint64_t due_us);

/* Record a lease (after job->attempt and t_dispatched are set). */
void store_dispatch(broker_t *b, const job_t *job);

/* Record a job going back to its queue with job->attempt: after delay_ms
 * (0 = now), at the front of its level or not. */
void store_requeue(broker_t *b, const job_t *job, uint64_t delay_ms, bool front);

/* Record a final outcome (job->st, its result and attempt are set). */
void store_final(broker_t *b, const job_t *job);

/* Record that a client asked to cancel the running job. */
void store_cancel(broker_t *b, const job_t *job);

/* The journal position after everything recorded so far, and the one up
 * to which records are durable at the --fsync level. */
uint64_t store_lsn(const broker_t *b);
uint64_t store_durable(const broker_t *b);

/* The position up to which results may be sent.  With --fsync always, the
 * durable one; otherwise the end of what is written: then a result whose
 * client has it survives the broker's crash, and need not wait for the
 * group commit, since a FINISH lost with the machine only means that its
 * job runs again (at least once, as a lost lease does), while an ACCEPTED
 * must wait, since a lost JOB record loses the job. */
uint64_t store_shown(const broker_t *b);

/* True if records wait to be written: the loop turns again at once. */
bool store_pending(const broker_t *b);

/* End of a turn: write this turn's records (see journal_commit).  Returns
 * 0, or -1 with a message on a fatal journal error. */
int store_commit(broker_t *b, char *err, size_t errlen);

/* The fd to poll for the batch thread's news (-1 if none), and what to do
 * when it is readable.  store_poll returns as store_commit. */
int store_fd(const broker_t *b);
int store_poll(broker_t *b, char *err, size_t errlen);

/* On the tick: retries, compaction.  Returns as store_commit. */
int store_tick(broker_t *b, char *err, size_t errlen);

/* Make everything recorded durable now (shutdown; an ERROR that must not
 * overtake held acks; a CANCEL_REP or REQUEUE_REP that reports a change).
 * Returns as store_commit. */
int store_flush(broker_t *b, char *err, size_t errlen);

#endif
