/* peer.h -- the broker's connections (peers) and result sessions.
 *
 * A peer is one ZeroMQ connection that has said HELLO, known by its
 * routing id.  A session is where results go: a client's session is
 * keyed by its cid and outlives the connection, so that results follow
 * the client to a new connection after a reconnect; a worker's session
 * (for the sub-jobs it submits) lives with its connection.  Jobs refer to
 * their submitter's session, so a session is reference counted: its
 * peer, the jobs it submitted, the AWAITs it placed and the broker's
 * flush list each hold one reference.
 */
#ifndef QJ_PEER_H
#define QJ_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "msg.h"
#include "queue.h"

typedef struct peer peer_t;

typedef struct sess {
    uint8_t cid[QJ_CID_LEN];
    bool has_cid;               /* a client's; a worker's session has none */
    const char *key;            /* CURVE: the key that first used the cid (zap.h) */
    peer_t *peer;               /* connection its results go to, or NULL */
    uint32_t refs;              /* see the top of this file */
    uint64_t *out;              /* ids of results to push, oldest first */
    uint64_t *out_lsn;          /* for each, the journal position it waits for */
    uint32_t nout, capout;
    bool dirty;                 /* on the broker's flush list */
    struct sess *dirty_next;
} sess_t;

struct peer {
    peer_t *next, *prev;        /* every peer, for sweeps and STATS */
    uint8_t role;               /* msg_role_t */
    bool gone;                  /* forgotten; the broker's flush frees it */
    char name[QJ_MAX_NAME + 1]; /* NUL-terminated, for logs and STATS */
    sess_t *sess;               /* holds a reference */
    const char *key;            /* CURVE: its key, from zap_admit; NULL without */
    uint64_t last_in_ms;        /* monotonic: last message from it */
    uint64_t last_out_ms;       /* monotonic: last message to it */
    uint32_t hb_ms;             /* heartbeat interval agreed in WELCOME */
    msg_ack_t *acks;            /* ACCEPTED items not yet sent */
    uint64_t *ack_lsn;          /* for each, the journal position it waits for */
    uint32_t nacks, capacks;
    bool dirty;                 /* on the broker's flush list */
    peer_t *dirty_next;
    /* worker only */
    uint32_t credit;            /* jobs the broker may still send it */
    uint32_t slots;             /* capacity: highest credit + busy seen */
    uint64_t done;              /* results it reported */
    bool draining;              /* said BYE {drain}: gets nothing new */
    queue_t **queues;           /* queues it serves */
    uint32_t nqueues;
    jlist_t leases;             /* jobs it holds, in dispatch order */
    job_t **out_jobs;           /* leased this cycle, JOBS not yet sent */
    uint32_t nout_jobs, capout_jobs;
    uint64_t *cancels;          /* ids whose CANCEL is not yet sent */
    uint32_t ncancels, capcancels;
    uint8_t rid_len;
    uint8_t rid[];              /* ZeroMQ routing id */
};

typedef struct peers peers_t;

/* Create an empty set of peers and sessions.  NULL if out of memory. */
peers_t *peers_new(void);

/* Free every peer and session, whatever their references (shutdown);
 * safe on NULL, nulls the caller's pointer. */
void peers_destroy(peers_t **self_p);

/* The peer with this routing id, or NULL. */
peer_t *peers_find(const peers_t *self, const void *rid, size_t len);

/* Add a peer for a routing id (1..255 bytes) that is not there yet; the
 * caller sets its role and session.  Returns NULL if out of memory. */
peer_t *peers_add(peers_t *self, const void *rid, size_t len);

/* Forget a peer: out of the index and the list, its session reference
 * dropped (and the session's link to it).  The caller has already taken
 * back its jobs and queue memberships.  The peer is freed now, or by
 * peers_reap when it is on the broker's flush list. */
void peers_forget(peers_t *self, peer_t *peer);

/* Free a forgotten peer taken off the flush list. */
void peers_reap(peer_t *peer);

/* The first peer (walk with ->next); NULL if none. */
peer_t *peers_first(const peers_t *self);

/* The session of a client cid (QJ_CID_LEN bytes), created if needed
 * (with no reference: the caller takes one).  NULL if out of memory. */
sess_t *peers_session(peers_t *self, const void *cid);

/* A new session without cid (a worker connection's), no reference taken.
 * NULL if out of memory. */
sess_t *peers_anon_session(peers_t *self);

/* Take and drop a session reference; the last one frees the session. */
void sess_ref(sess_t *sess);
void peers_unref(peers_t *self, sess_t *sess);

/* Append to the outgoing arrays.  Each returns 0, or -1 if out of memory
 * (nothing appended).  A result or an ack goes out once the journal is
 * durable up to lsn (journal.h): the caller passes the journal's end as
 * the item was made, which covers the records it depends on. */
int sess_push_result(sess_t *sess, uint64_t id, uint64_t lsn);
int peer_push_ack(peer_t *peer, uint64_t ref, uint64_t id, uint16_t code, const char *text,
                  uint64_t lsn);
/* (peer_push_ack copies text, a refusal message, or takes NULL.) */
int peer_push_job(peer_t *peer, job_t *job);
int peer_push_cancel(peer_t *peer, uint64_t id);

/* Drop the first n pending acks (sent), freeing their refusal texts. */
void peer_clear_acks(peer_t *peer, uint32_t n);

/* Move the pending refusals (acks with id 0, which wait for no journal
 * record) ahead of the acceptances, each kind in its order, and return
 * how many there are: the first ones now.  The acceptances' lsn stay
 * non-decreasing. */
uint32_t peer_hoist_refusals(peer_t *peer);

/* Set the peer's name from a HELLO (cut to QJ_MAX_NAME bytes, control
 * characters replaced so that logs stay one line per event); an empty
 * name becomes "role#n" with a counter. */
void peer_set_name(peer_t *peer, msg_bytes_t name, uint64_t n);

#endif
