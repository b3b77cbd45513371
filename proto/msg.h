/* msg.h -- qjob wire messages: the one encoder and decoder every program uses.
 *
 * A message is one ZeroMQ frame: a 4-byte header ('Q', 'J', version,
 * command) followed by a msgpack map (see proto/PROTOCOL.md).  msg_t is
 * the decoded form of every command; only the fields of msg->cmd mean
 * anything.  The same struct is filled by msg_decode and read by
 * msg_encode, so a round trip is encode(m) -> decode -> m.
 *
 * Ownership: every pointer in a decoded msg_t (strings, byte strings,
 * arrays) is borrowed.  Strings and byte strings point into the frame
 * that was decoded; arrays live in the reader's zone.  Both stay valid
 * until the next msg_decode on the same reader or msg_reader_destroy,
 * and as long as the frame is not freed.  For encoding, the caller owns
 * everything it points the msg_t at; msg_encode copies it into the buffer.
 */
#ifndef QJ_MSG_H
#define QJ_MSG_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qjlimits.h"

#define MSG_MAGIC0 'Q'
#define MSG_MAGIC1 'J'
#define MSG_VERSION 1   /* wire version: see the checklist in PROTOCOL.md */
#define MSG_HEADER_LEN 4

/* Commands.  Values are on the wire: never renumber, only add. */
typedef enum msg_cmd {
    MSG_HELLO = 0x01,      /* peer -> broker: who I am */
    MSG_WELCOME = 0x02,    /* broker -> peer: accepted, here are the rules */
    MSG_HEARTBEAT = 0x03,  /* both ways, when idle */
    MSG_BYE = 0x04,        /* peer -> broker: leaving (worker: draining) */
    MSG_ERROR = 0x05,      /* broker -> peer: a request was refused */

    MSG_SUBMIT = 0x10,     /* client/worker -> broker: new jobs */
    MSG_ACCEPTED = 0x11,   /* broker -> submitter: ids, or refusals */
    MSG_AWAIT = 0x12,      /* client/worker -> broker: send me these results */
    MSG_RESULTS = 0x13,    /* worker -> broker, broker -> client: outcomes */
    MSG_STATUS = 0x14,     /* client -> broker: where are these jobs */
    MSG_STATUS_REP = 0x15, /* broker -> client */
    MSG_CANCEL = 0x16,     /* client -> broker, broker -> worker */
    MSG_CANCEL_REP = 0x17, /* broker -> client */
    MSG_PROGRESS = 0x18,   /* worker -> broker -> client */

    MSG_STATS = 0x20,      /* client -> broker: figures */
    MSG_STATS_REP = 0x21,  /* broker -> client */
    MSG_DEAD = 0x22,       /* client -> broker: list the dead-letter jobs */
    MSG_DEAD_REP = 0x23,   /* broker -> client */
    MSG_REQUEUE = 0x24,    /* client -> broker: requeue dead jobs */
    MSG_REQUEUE_REP = 0x25,/* broker -> client */

    MSG_JOBS = 0x30,       /* broker -> worker: run these */
    MSG_CREDIT = 0x31,     /* worker -> broker: I can take n more */
    MSG_TOUCH = 0x32,      /* worker -> broker: renew these leases */
} msg_cmd_t;

/* Error codes (ERROR.code, ACCEPTED refusals).  On the wire. */
typedef enum msg_err {
    QJ_E_OK = 0,
    QJ_E_FRAME = 1,        /* frame shorter than the header, or bad magic */
    QJ_E_VERSION = 2,      /* unsupported protocol version */
    QJ_E_COMMAND = 3,      /* unknown command */
    QJ_E_BODY = 4,         /* body is not valid msgpack of the right shape */
    QJ_E_TOO_BIG = 5,      /* frame over QJ_MAX_MSG */
    QJ_E_LIMIT = 6,        /* a field over its limit (qjlimits.h) */
    QJ_E_HELLO = 7,        /* HELLO must come first (or came twice) */
    QJ_E_ROLE = 8,         /* command not allowed for this peer's role */
    QJ_E_DENIED = 9,       /* authentication or authorisation refused */
    QJ_E_QUEUE_FULL = 10,  /* queue at --max-depth or broker at its memory ceiling */
    QJ_E_UNKNOWN_JOB = 11, /* no such job id (never existed or expired) */
    QJ_E_UNKNOWN_TASK = 12,/* no worker task of that name (result error) */
    QJ_E_SHUTDOWN = 13,    /* broker is shutting down */
    QJ_E_INTERNAL = 14,    /* broker fault (e.g. journal write failed) */
} msg_err_t;

/* Roles (HELLO.role). */
typedef enum msg_role { MSG_ROLE_CLIENT = 0, MSG_ROLE_WORKER = 1 } msg_role_t;

/* Final status of a job (RESULTS.st).  On the wire. */
typedef enum msg_st {
    MSG_ST_OK = 0,
    MSG_ST_ERROR = 1,      /* the task reported an error */
    MSG_ST_TIMEOUT = 2,    /* ran past its timeout */
    MSG_ST_CANCELLED = 3,
    MSG_ST_LOST = 4,       /* its worker died on every attempt */
    MSG_ST_UNKNOWN = 5,    /* broker has no such job (await/status of a bad id) */
} msg_st_t;

/* Where a job is (STATUS_REP.state).  On the wire. */
typedef enum msg_state {
    MSG_STATE_QUEUED = 0,
    MSG_STATE_DELAYED = 1,
    MSG_STATE_RUNNING = 2,
    MSG_STATE_DONE = 3,
    MSG_STATE_DEAD = 4,    /* done, failed every attempt, in the dead-letter list */
    MSG_STATE_UNKNOWN = 5,
} msg_state_t;

/* CANCEL_REP outcomes. */
typedef enum msg_cancel {
    MSG_CANCEL_REMOVED = 0,   /* was queued or delayed: removed, result is cancelled */
    MSG_CANCEL_REQUESTED = 1, /* running: its worker was asked to stop */
    MSG_CANCEL_DONE = 2,      /* had already finished: nothing done */
    MSG_CANCEL_UNKNOWN = 3,   /* no such job */
} msg_cancel_t;

/* A borrowed byte range: a msgpack str or bin.  Not NUL-terminated.
 * ptr == NULL means the field was absent. */
typedef struct msg_bytes {
    const char *ptr;
    uint32_t len;
} msg_bytes_t;

/* One job: an item of SUBMIT (client fields) or of JOBS (broker fields). */
typedef struct msg_job {
    uint64_t ref;         /* SUBMIT: submitter's reference, echoed in ACCEPTED */
    uint64_t id;          /* JOBS: broker-assigned job id */
    msg_bytes_t task;     /* required: task name */
    msg_bytes_t args;     /* msgpack-encoded argument value (bin); absent = nil */
    msg_bytes_t queue;    /* absent = "default" */
    msg_bytes_t key;      /* SUBMIT: idempotency key; absent = none */
    int32_t pri;          /* priority, -128..127, higher runs first; default 0 */
    uint32_t timeout_ms;  /* run time limit; 0 = none */
    uint32_t retries;     /* SUBMIT: extra attempts after the first */
    uint32_t backoff_ms;  /* SUBMIT: delay before a retry (doubles each time) */
    uint64_t at_us;       /* SUBMIT: run no earlier than (unix µs); 0 = now */
    uint64_t parent;      /* id of the job that submitted this one; 0 = none */
    uint32_t attempt;     /* JOBS: 1 for the first run */
    uint64_t t_submit;    /* SUBMIT: client clock when handed to the library (unix µs) */
    bool detach;          /* SUBMIT: don't push the result to me; keep it for lookup */
    bool progress;        /* SUBMIT: push PROGRESS reports to me */
} msg_job_t;

/* One ACCEPTED item: either id != 0, or code != 0 with a message. */
typedef struct msg_ack {
    uint64_t ref;
    uint64_t id;
    uint16_t code;        /* msg_err_t; 0 = accepted */
    msg_bytes_t text;     /* refusal message */
} msg_ack_t;

/* Timestamps of a job's life, unix µs, 0 = not known. */
typedef struct msg_times {
    uint64_t submitted;   /* client handed it to the library */
    uint64_t queued;      /* broker accepted it (journaled if durable) */
    uint64_t dispatched;  /* broker sent it to a worker */
    uint64_t started;     /* worker began running it */
    uint64_t finished;    /* worker finished it */
} msg_times_t;

/* One outcome: an item of RESULTS, and the body of STATUS_REP / DEAD_REP
 * items (which add state, queue, task and progress). */
typedef struct msg_result {
    uint64_t id;
    uint64_t ref;         /* broker -> submitter: the SUBMIT ref, 0 if not the submitter */
    uint8_t st;           /* msg_st_t */
    uint8_t state;        /* STATUS_REP/DEAD_REP: msg_state_t */
    msg_bytes_t value;    /* msgpack-encoded result value (bin); absent = nil */
    msg_bytes_t error;    /* error message when st != OK */
    msg_bytes_t worker;   /* name of the worker that ran it */
    msg_bytes_t queue;    /* STATUS_REP/DEAD_REP */
    msg_bytes_t task;     /* STATUS_REP/DEAD_REP */
    uint32_t attempts;
    msg_times_t t;
    uint64_t prog_done, prog_total; /* latest progress report; total 0 = none */
    msg_bytes_t prog_note;
} msg_result_t;

/* CANCEL_REP / REQUEUE_REP item. */
typedef struct msg_outcome {
    uint64_t id;
    uint8_t outcome;      /* CANCEL_REP: msg_cancel_t; REQUEUE_REP: 0 requeued, 3 unknown */
} msg_outcome_t;

/* STATS_REP: one queue. */
typedef struct msg_qstat {
    msg_bytes_t name;
    uint64_t depth;       /* ready jobs waiting */
    uint64_t delayed;
    uint64_t running;
    uint64_t workers;     /* workers serving it */
    uint64_t submitted, done, failed, retried, dead;
    uint64_t comm_us;     /* sum over done jobs: life minus compute (µs) */
    uint64_t compute_us;  /* sum over done jobs: finished - started (µs) */
    uint64_t dispatched;  /* jobs leased to workers (each attempt) */
    uint64_t done_recent; /* jobs done in about the last rate_secs seconds */
    uint64_t rate_secs;   /* the window of done_recent */
    uint64_t wait_us;     /* sum over those: time ready in the queue (µs) */
    const uint64_t *wait; /* those by that time, in the buckets of msg_stats_t.wait_le */
    uint32_t nwait;       /* nwait_le + 1 (the last: above every bound); 0 = not sent */
    /* The jobs of comm_us and compute_us by the size of the SUBMIT that
     * brought them: entry i for SUBMITs of 2^i to 2^(i+1) - 1 jobs (jobs
     * replayed from the journal are in no entry); 0 entries = not sent. */
    const uint64_t *b_jobs, *b_comm_us, *b_compute_us;
    uint32_t nb_jobs, nb_comm_us, nb_compute_us;
} msg_qstat_t;

/* STATS_REP: one worker connection. */
typedef struct msg_wstat {
    msg_bytes_t name;
    uint32_t slots;       /* credit granted in total */
    uint32_t busy;        /* jobs it holds now */
    uint64_t done;
    uint64_t idle_ms;     /* since its last message */
} msg_wstat_t;

/* STATS_REP body. */
typedef struct msg_stats {
    uint64_t uptime_ms;
    uint64_t clients, workers;
    uint64_t submitted, done, failed, retried, lost, cancelled;
    uint64_t bad_frames;  /* frames refused by the decoder, all causes */
    uint64_t bad_by_code[16]; /* the same, by msg_err_t code */
    uint64_t rejected;    /* connections refused by authentication */
    uint64_t results_kept;/* results held for lookup */
    uint64_t rss_bytes;
    msg_qstat_t *queues;
    uint32_t nqueues;
    msg_wstat_t *workers_list;
    uint32_t nworkers;
    uint64_t slots, busy; /* over workers: credit granted, jobs leased now */
    uint64_t dispatched;  /* over queues */
    uint64_t journal_bytes; /* record bytes written to the journal since start */
    uint64_t journal_disk;  /* bytes of its files on disk now */
    uint64_t fsyncs, fsync_us; /* fdatasyncs of the journal, and their time (µs) */
    const uint64_t *wait_le; /* upper bounds (µs, ascending) of the queues' wait buckets */
    uint32_t nwait_le;
} msg_stats_t;

/* The decoded form of any message. */
typedef struct msg {
    uint8_t cmd;              /* msg_cmd_t */
    uint64_t rid;             /* request id: STATUS, CANCEL, STATS, DEAD, REQUEUE
                                 and their _REP; ERROR (the request refused) */

    /* HELLO */
    uint8_t role;             /* msg_role_t */
    msg_bytes_t name;         /* peer name for logs and stats */
    msg_bytes_t cid;          /* client instance id, QJ_CID_LEN bytes */
    msg_bytes_t *queues;      /* worker: queues served; none = "default" */
    uint32_t nqueues;
    uint32_t credit;          /* HELLO(worker), CREDIT, RESULTS: slots granted */
    msg_bytes_t replaces;     /* HELLO(worker): name of the killed worker process this
                                 one replaces; its timed-out job ids are in ids */

    /* WELCOME */
    uint32_t heartbeat_ms;    /* WELCOME: interval; HELLO: the peer's wish */
    uint32_t liveness;        /* WELCOME: missed heartbeats before a peer is dead */
    uint32_t max_msg;         /* WELCOME: largest frame the broker takes */

    /* BYE */
    bool drain;               /* worker: finish what I hold, send me nothing new */

    /* ERROR (also the refusal fields of a request) */
    uint16_t code;            /* msg_err_t */
    msg_bytes_t text;
    uint8_t about;            /* ERROR: command that was refused, 0 if unknown */

    /* SUBMIT, JOBS */
    msg_job_t *jobs;
    uint32_t njobs;

    /* ACCEPTED */
    msg_ack_t *acks;
    uint32_t nacks;

    /* RESULTS, STATUS_REP, DEAD_REP */
    msg_result_t *results;
    uint32_t nresults;

    /* AWAIT, STATUS, CANCEL, TOUCH, REQUEUE; HELLO: the replaced process's
     * jobs that ran past their timeout ("timedout") */
    uint64_t *ids;
    uint32_t nids;

    /* CANCEL_REP, REQUEUE_REP */
    msg_outcome_t *outcomes;
    uint32_t noutcomes;

    /* PROGRESS */
    uint64_t id;
    uint64_t done, total;
    msg_bytes_t note;

    /* DEAD */
    msg_bytes_t queue;        /* filter; absent = all queues */
    uint32_t limit;           /* at most this many; 0 = server default */

    /* STATS_REP */
    msg_stats_t stats;
} msg_t;

/* Reusable decode state: a msgpack zone recycled between messages. */
typedef struct msg_reader msg_reader_t;

/* Create a reader.  Returns NULL on allocation failure. */
msg_reader_t *msg_reader_new(void);

/* Free a reader and everything its last decode pointed into; safe on NULL,
 * nulls the caller's pointer. */
void msg_reader_destroy(msg_reader_t **self_p);

/* Decode one frame into *out (zeroed first).  The frame passes the
 * pre-check (mpck.h) before msgpack-c sees it, then every field is checked
 * for type and against qjlimits.h.  Returns QJ_E_OK, or an error code with a
 * message for the peer in err (never a crash, never a read past len).
 * Pointers in *out borrow from frame and from the reader (see top). */
msg_err_t msg_decode(msg_reader_t *reader, const void *frame, size_t len,
                     msg_t *out, char *err, size_t errlen);

/* Encode *m (fields of m->cmd only) as one frame into buf, replacing its
 * contents.  Returns 0, or -1 if a field is over its limit (a programmer
 * error or an unchecked user value: the message says which). */
int msg_encode(msgpack_sbuffer *buf, const msg_t *m, char *err, size_t errlen);

/* Decode a msgpack value held in a bin field (job args or result value)
 * after the same pre-check.  On success *obj borrows from bytes and from
 * the reader (valid until the next decode on it).  Returns 0 or -1 with
 * a message. */
int msg_value_decode(msg_reader_t *reader, msg_bytes_t bytes,
                     msgpack_object *obj, char *err, size_t errlen);

/* Names for logs, CLI output and JSON ("submit", "queue_full", "ok" ...).
 * Never NULL: an unknown value gives "?". */
const char *msg_cmd_name(int cmd);
const char *msg_err_name(int code);
const char *msg_st_name(int st);
const char *msg_state_name(int state);

/* The SUBMIT sizes of entry i of n in msg_qstat_t.b_jobs, as text: "1",
 * "2-3" ... and the last entry's lower bound alone ("4096"). */
void msg_batch_range(uint32_t i, uint32_t n, char *buf, size_t len);

/* True if the frame starts with a valid header; *cmd gets the command.
 * Lets a router look at a frame without decoding the body. */
bool msg_peek(const void *frame, size_t len, uint8_t *cmd);

#endif
