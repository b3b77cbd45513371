/* dispatch.h -- a job's life in the broker: accepted, delayed, queued,
 * leased to a worker, retried, finished, kept, expired.
 *
 * Every change of a job's state goes through one of these functions, and
 * each records it in the journal (store.h) where it happens: submits
 * (dispatch_accept), leases (dispatch_run), outcomes (results, cancels,
 * losses), returns to the queue (retries, dispatch_return,
 * dispatch_unsend, dispatch_revive).  They also keep b->mem_bytes, the
 * bytes of jobs held, for --max-memory.
 */
#ifndef QJ_DISPATCH_H
#define QJ_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "broker.h"

/* Accept one SUBMIT item from peer, of a SUBMIT of batch jobs (its size
 * class is kept for the queue's figures): a duplicate (same session and
 * ref, or same key) gives the existing job's id; otherwise a new job is recorded
 * in the journal and queued (or delayed until its `at`).  Refused when
 * its queue is at --max-depth or the broker at --max-memory (queue_full),
 * or the journal cannot be written (internal).  Returns QJ_E_OK with *id,
 * or an error code (role, limit, queue_full, internal) with a message in
 * err. */
msg_err_t dispatch_accept(broker_t *b, peer_t *peer, const msg_job_t *spec, uint32_t batch,
                          uint64_t *id, char *err, size_t errlen);

/* Put a job (on no list) in its queue: held for delay_ms if not 0, else
 * ready at the back of its priority level, or at the front (a job that
 * comes back goes out before later ones). */
void dispatch_place(broker_t *b, job_t *job, uint64_t delay_ms, bool front);

/* Lease ready jobs of the queues marked this turn to their least loaded
 * workers with credit; the jobs are added to each worker's out_jobs. */
void dispatch_run(broker_t *b);

/* Queue every delayed job whose time has come. */
void dispatch_due(broker_t *b);

/* A worker reports one job (RESULTS item).  Results for jobs it does not
 * hold (late, after a requeue) are ignored. */
void dispatch_result(broker_t *b, peer_t *worker, const msg_result_t *r);

/* Cancel a job: queued or delayed -> finished as cancelled; running ->
 * its worker is asked.  Returns a msg_cancel_t outcome. */
uint8_t dispatch_cancel(broker_t *b, job_t *job);

/* Take back every job a worker holds.  died: each counts as a lost
 * attempt (final `lost` once it has had its attempts); else the attempt
 * is not counted.  Returns how many went back to their queues. */
uint32_t dispatch_return(broker_t *b, peer_t *worker, bool died);

/* A JOBS message could not be sent: take back its jobs (the last n of the
 * worker's out_jobs), as if never dispatched, credit included. */
void dispatch_unsend(broker_t *b, peer_t *worker, uint32_t n);

/* Put a dead-letter job back in its queue with fresh attempts.  Returns
 * 0, or -1 if it is not in the dead-letter list. */
int dispatch_revive(broker_t *b, job_t *job);

/* Register an AWAIT: the result goes to sess when the job is final (at
 * once if it is).  Returns 0, or -1 if out of memory. */
int dispatch_await(broker_t *b, job_t *job, sess_t *sess);

/* Drop finished jobs past their time to live or over --max-results. */
void dispatch_expire(broker_t *b);

/* Free a job with the references it holds (shutdown, expiry). */
void dispatch_release(broker_t *b, job_t *job);

#endif
