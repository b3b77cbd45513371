/* broker.h -- qbroker's event loop and the state it owns.
 *
 * One ROUTER socket, one thread, nothing blocks.  Each turn of the loop
 * reads every message that is waiting (up to a bound), handles each
 * (command.c), releases jobs whose time has come, dispatches ready jobs
 * to workers with credit (dispatch.c), and then sends what the turn
 * produced in as few messages as possible: one ACCEPTED per submitter,
 * one JOBS per worker, one RESULTS per session.  Heartbeats, liveness and
 * result expiry run on a short tick.
 *
 * The modules that make up the broker (broker.c, command.c, dispatch.c)
 * share struct broker; qbroker.c only uses broker_new, broker_run and
 * broker_destroy.
 */
#ifndef QJ_BROKER_H
#define QJ_BROKER_H

#include <msgpack.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "htab.h"
#include "job.h"
#include "journal.h"
#include "metrics.h"
#include "msg.h"
#include "peer.h"
#include "queue.h"
#include "theap.h"
#include "zap.h"

/* A --max-depth rule: a bound for one queue, or for every queue. */
typedef struct broker_depth {
    char queue[QJ_MAX_QUEUE_NAME + 1]; /* empty = every queue */
    uint64_t depth;                    /* ready + delayed jobs at most */
} broker_depth_t;

typedef struct broker_config {
    const char *const *binds;   /* endpoints to bind (at least one) */
    int nbinds;
    const char *endpoint_file;  /* write the bound endpoints here; NULL = no */
    bool insecure;              /* allow binding beyond loopback */
    zap_t *zap;                 /* CURVE and who may connect (zap.h); NULL = none.
                                   The caller's: it outlives the broker */
    const char *name;           /* broker name sent in WELCOME; NULL = none */
    uint64_t result_ttl_s;      /* keep final results this long */
    uint64_t max_results;       /* and at most this many */
    uint32_t heartbeat_ms;      /* heartbeat interval (WELCOME.hb) */
    uint32_t liveness;          /* missed intervals before a peer is dead */
    uint32_t lost_attempts;     /* attempts a job gets when its workers die */
    const broker_depth_t *depths; /* --max-depth rules */
    int ndepths;
    uint64_t max_memory;        /* bytes of jobs and results held at most; 0 = no bound */
    const char *data_dir;       /* the journal's directory */
    journal_sync_t fsync;       /* --fsync */
    uint64_t compact_bytes;     /* compact the journal past this much log */
    const char *metrics_bind;   /* serve /metrics on HOST:PORT (metrics.h); NULL = no */
    const char *metrics_file;   /* write its URL there; NULL = no */
} broker_config_t;

/* Figures for STATS, counted since start. */
typedef struct broker_counts {
    uint64_t submitted, done, failed, retried, lost, cancelled;
    uint64_t bad;               /* frames refused, all causes */
    uint64_t bad_by[16];        /* the same by msg_err_t */
} broker_counts_t;

typedef struct broker {
    broker_config_t cfg;
    void *ctx, *sock;

    msg_reader_t *reader;       /* decode state, reused for every frame */
    msg_t in;                   /* the message being handled */
    msgpack_sbuffer out;        /* encode buffer, reused for every frame */
    zmq_msg_t zrid, zbody, zextra; /* receive buffers, reused */
    char *heartbeat;            /* pre-encoded HEARTBEAT frame */
    size_t heartbeat_len;

    jobs_t *jobs;               /* every job, and finished ones kept */
    peers_t *peers;             /* connections and sessions */
    htab_t *queues;             /* queue_t by name */
    queue_t **qlist;            /* the same, in creation order (STATS) */
    queue_t *last_queue;        /* the one broker_queue found last (queues live
                                   as long as the broker): a batch's jobs
                                   mostly name one queue, looked up once */
    uint32_t nqueues, capqueues;
    uint64_t rate_sec;          /* second of the last done-rate sample */
    theap_t *timers;            /* DELAYED jobs by due time */
    uint64_t mem_bytes;         /* job_bytes of every job held (--max-memory) */

    metrics_t *metrics;         /* the /metrics endpoint, or NULL */
    journal_t *journal;         /* every change of a job's life, on disk (store.c) */
    uint64_t durable_seen;      /* journal_durable() when the held items were last looked at */
    uint64_t shown_seen;        /* and store_shown() */
    bool held;                  /* acks or results wait for the journal */

    /* work produced by this turn, done at its end */
    queue_t *dirty_queues;      /* queues with ready jobs to dispatch */
    peer_t *dirty_peers;        /* peers with acks, jobs or cancels to send */
    sess_t *dirty_sess;         /* sessions with results to push */

    /* scratch arrays for encoding (QJ_MAX_BATCH items each) */
    msg_job_t *sjobs;
    msg_result_t *sresults;

    uint64_t now_ms;            /* monotonic, this turn */
    uint64_t now_mono_us;       /* the same in µs (dispatch waits) */
    uint64_t now_us;            /* wall clock, this turn */
    uint64_t start_ms;
    uint64_t next_tick_ms;
    uint64_t npeers_seen;       /* for names of peers that gave none */
    uint64_t bad_log_ms;        /* last bad frame logged */
    uint64_t bad_quiet;         /* bad frames since then (1 = only that one) */
    broker_counts_t counts;
} broker_t;

/* Create a broker: rebuild its jobs from the journal in cfg->data_dir,
 * start the metrics endpoint and write its file, bind every endpoint
 * (refusing non-loopback tcp unless cfg->insecure or CURVE), write the
 * endpoint file.  cfg's strings must outlive the broker.
 * Returns NULL with a message in err on failure. */
broker_t *broker_new(const broker_config_t *cfg, char *err, size_t errlen);

/* Serve until *stop becomes non-zero, then make the journal durable and
 * say goodbye to every peer.  Returns 0, or -1 with a message in err on a
 * fatal socket or journal error. */
int broker_run(broker_t *self, volatile sig_atomic_t *stop, char *err, size_t errlen);

/* Close the socket and free everything; safe on NULL, nulls the pointer. */
void broker_destroy(broker_t **self_p);

/* ---- shared by the broker's modules */

/* Encode m and send it to a peer (DONTWAIT).  Returns 0, or -1 with errno
 * EAGAIN (its send queue is full) or EHOSTUNREACH (it is gone). */
int broker_send(broker_t *self, peer_t *peer, const msg_t *m);

/* broker_send for replies and acks, which are dropped when the peer's
 * send queue is full: that is logged.  Same returns. */
int broker_reply(broker_t *self, peer_t *peer, const msg_t *m);

/* Answer a message with ERROR (code, the command refused, the request id
 * if it had one, and a printf-style message), to any routing id. */
void broker_error(broker_t *self, const void *rid, size_t rid_len, uint16_t code,
                  uint8_t about, uint64_t req, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Queue work for the end of this turn. */
void broker_mark_queue(broker_t *self, queue_t *q);
void broker_mark_peer(broker_t *self, peer_t *peer);
void broker_mark_sess(broker_t *self, sess_t *sess);

/* The queue named name[0..len) (len 0 = "default"), created when create
 * is true and it does not exist.  NULL if it does not exist and create is
 * false, or (with a message in err) if the broker holds too many queues
 * or is out of memory. */
queue_t *broker_queue(broker_t *self, const char *name, size_t len, bool create,
                      char *err, size_t errlen);

/* A peer leaves: a worker's jobs go back to their queues (died: the
 * attempt counts; else not), it leaves its queues, and it is forgotten.
 * why is for the log. */
void broker_forget_peer(broker_t *self, peer_t *peer, bool died, const char *why);

#endif
