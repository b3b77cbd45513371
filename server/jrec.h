/* jrec.h -- the journal's records: their bytes, their checksum, and a
 * reader that finds every intact record in a buffer, however damaged.
 *
 * server/JOURNAL.md is the format's specification; this is its one
 * implementation.  A record is a 12-byte header and a payload:
 *
 *   0  2  mark 0xF5 0x4A (0xF5 never occurs in UTF-8 text)
 *   2  1  type (jrec_type_t)
 *   3  1  flags, 0
 *   4  4  payload length, little-endian
 *   8  4  CRC-32C of bytes 0..8 and of the payload
 *
 * Records are self-delimiting, so a reader that meets a damaged one can
 * look for the next intact header (jrec_scan) instead of giving up on
 * everything after it.  The payload is a fixed layout of little-endian
 * integers and length-prefixed byte strings, one per type (JOURNAL.md §3).
 * Pure code: no I/O, no allocation; the fuzz target drives it directly.
 */
#ifndef QJ_JREC_H
#define QJ_JREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"

#define JREC_HEADER_LEN 12
#define JREC_MARK0 0xF5
#define JREC_MARK1 0x4A
/* Largest payload: a JOB with 1 MiB of arguments or a FINISH with a 1 MiB
 * value, with room to spare.  A header that claims more is damaged. */
#define JREC_MAX_PAYLOAD (2u * 1024 * 1024)

/* Record types.  On disk: never renumber, only add (JOURNAL.md §5). */
typedef enum jrec_type {
    JREC_JOB = 1,        /* a job accepted; in a snapshot, a job held */
    JREC_DISPATCH = 2,   /* leased to a worker */
    JREC_REQUEUE = 3,    /* back in its queue, now or after a delay */
    JREC_FINISH = 4,     /* final outcome, with the result */
    JREC_CANCEL = 5,     /* a client asked to cancel the running job */
    JREC_NEXT_ID = 6,    /* ids from here on are at least this */
    JREC_END = 7,        /* a snapshot ends here, complete */
} jrec_type_t;

/* JREC_JOB flags. */
enum { JREC_F_DETACH = 1, JREC_F_PROGRESS = 2 };

/* One record, decoded; only the fields of its type mean anything.  Byte
 * strings borrow from the buffer decoded (or, to encode, from the caller). */
typedef struct jrec {
    uint8_t type;            /* jrec_type_t */
    uint64_t id;             /* the job; NEXT_ID: the next id; END: records before it */
    /* JOB */
    uint64_t ref;            /* submitter's ref, 0 = none */
    uint64_t parent;
    uint64_t t_submit, t_queued, t_dispatched; /* unix µs */
    uint32_t timeout_ms, backoff_ms;
    uint16_t retries;
    int8_t pri;
    uint8_t flags;           /* JREC_F_* */
    msg_bytes_t cid;         /* submitter's cid: QJ_CID_LEN bytes, or absent */
    msg_bytes_t queue, task, key, args;
    /* JOB, DISPATCH, REQUEUE, FINISH */
    uint16_t attempt;        /* attempts dispatched so far */
    /* JOB, REQUEUE */
    uint64_t due_us;         /* held until this unix µs; 0 = ready now */
    bool front;              /* REQUEUE: to the front of its priority level */
    /* FINISH */
    uint8_t st;              /* msg_st_t, never unknown */
    uint64_t final_us;       /* when it became final, unix µs */
    uint64_t started, finished; /* the worker's stamps */
    msg_bytes_t val, err, wk;
} jrec_t;

/* CRC-32C (Castagnoli) of buf, continuing from crc (0 to start). */
uint32_t jrec_crc(uint32_t crc, const void *buf, size_t len);

/* Bytes jrec_encode writes for r (header included), or 0 if a field is
 * over its limit (JOURNAL.md §3). */
size_t jrec_size(const jrec_t *r);

/* Write r, header and payload, into out (jrec_size(r) bytes). */
void jrec_encode(const jrec_t *r, uint8_t *out);

/* Decode the payload of a record of type type into *out (zeroed first;
 * pointers borrow from payload).  Returns 0, or -1 with a message if the
 * type is unknown or the payload does not hold that type's fields within
 * their limits.  Bytes after the known fields are ignored. */
int jrec_decode(uint8_t type, const uint8_t *payload, size_t len, jrec_t *out, char *err,
                size_t errlen);

/* Name of a record type for messages ("job", "finish", ...; "?" if unknown). */
const char *jrec_type_name(int type);

/* jrec_scan calls these.  intact: a record whose checksum holds, at
 * offset off, its payload payload[0..len).  Return 0 to go on, -1 to stop.
 * damaged: bytes [off, off + len) hold no intact record; type is the type
 * byte of the header at off if it carried the mark, else -1.  why says
 * what was wrong with that header. */
typedef int (*jrec_intact_fn)(void *ctx, size_t off, uint8_t type, const uint8_t *payload,
                              size_t len);
typedef void (*jrec_damaged_fn)(void *ctx, size_t off, size_t len, int type, const char *why);

/* Walk buf[0..len): every intact record goes to intact, in order, and
 * every damaged stretch to damaged (either may be NULL).  After a damaged
 * header, the walk resumes at the next intact record: the one just past
 * the damaged record's claimed length if there is one there (a payload
 * byte went bad), else the next offset where an intact record starts.
 * Returns the offset just past the last intact record: if it is less than
 * len, the buffer ends in a torn or damaged tail. */
size_t jrec_scan(const uint8_t *buf, size_t len, jrec_intact_fn intact,
                 jrec_damaged_fn damaged, void *ctx);

#endif
