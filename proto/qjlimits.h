/* qjlimits.h -- every bound qjob puts on what arrives from the network.
 *
 * One place for them, so that a reviewer can check each against the
 * pre-check (mpck.c), the codec (msg.c) and the sockets (ZMQ_MAXMSGSIZE).
 * Changing a limit that a peer can observe is a protocol change: see the
 * checklist at the end of proto/PROTOCOL.md.
 */
#ifndef QJ_LIMITS_H
#define QJ_LIMITS_H

/* Largest frame any qjob socket accepts (ZMQ_MAXMSGSIZE).  Big enough for
 * a batch of 4096 small jobs or one 1 MiB argument with room to spare;
 * small enough that one hostile peer cannot make a process allocate much. */
#define QJ_MAX_MSG (8u * 1024 * 1024)

/* Per-field bounds, checked by the decoder; a violation is QJ_E_LIMIT. */
#define QJ_MAX_TASK_NAME 128        /* bytes of a task name */
#define QJ_MAX_QUEUE_NAME 64        /* bytes of a queue name */
#define QJ_MAX_KEY 128              /* bytes of an idempotency key */
#define QJ_MAX_NAME 128             /* bytes of a peer name (host:pid/n) */
#define QJ_MAX_ARGS (1024u * 1024)  /* bytes of one job's msgpack args */
#define QJ_MAX_VALUE (1024u * 1024) /* bytes of one job's msgpack result */
#define QJ_MAX_ERROR 4096           /* bytes of an error message */
#define QJ_MAX_NOTE 256             /* bytes of a progress note */
#define QJ_MAX_BATCH 4096           /* items (jobs, results, ids) per message */
#define QJ_MAX_QUEUES 64            /* queues one worker may serve */
#define QJ_CID_LEN 16               /* bytes of a client instance id */
#define QJ_MAX_BUCKETS 64           /* bounds of a histogram (STATS_REP wait_le) */

/* Pre-check bounds (mpck.c): nesting depth and total values in one frame.
 * A msgpack value costs at least one byte, so the value count is also
 * bounded by the frame size; this bound stops deep work on big frames. */
#define QJ_MAX_DEPTH 32
#define QJ_MAX_VALUES (1u << 20)

#endif
