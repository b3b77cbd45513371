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
 *
 * The records a job's life makes by the thousand (JOB, DISPATCH, FINISH)
 * are grouped: one record holds a head that its items share (the queue and
 * submitter of jobs accepted together, the time of a dispatch, the worker
 * of results) and then one item per job, so that a turn of the broker
 * costs a few headers and checksums, not three per job.  jrec_t is one
 * item with its head: the encoder writes a head and items separately
 * (jrec_head, jrec_item, jrec_seal: jbuf.h groups them), the decoder hands
 * each item over with its head's fields filled in.
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
/* Largest head of a grouped record: a FINISH's (time, worker name); a
 * JOB's (time, cid, queue name) is smaller (checked in jrec.c). */
#define JREC_HEAD_MAX (8 + 2 + QJ_MAX_NAME)

/* Record types.  On disk: never renumber, only add (JOURNAL.md §6). */
typedef enum jrec_type {
    JREC_JOB = 1,        /* grouped: jobs accepted; in a snapshot, jobs held */
    JREC_DISPATCH = 2,   /* grouped: leased to a worker */
    JREC_REQUEUE = 3,    /* back in its queue, now or after a delay */
    JREC_FINISH = 4,     /* grouped: final outcomes, with the results */
    JREC_CANCEL = 5,     /* a client asked to cancel the running job */
    JREC_NEXT_ID = 6,    /* ids from here on are at least this */
    JREC_END = 7,        /* a snapshot ends here, complete */
} jrec_type_t;

/* JREC_JOB flags. */
enum { JREC_F_DETACH = 1, JREC_F_PROGRESS = 2 };

/* One record (one item of a grouped record, with its head's fields),
 * decoded; only the fields of its type mean anything, and the encoders
 * read no others (a caller may leave them unset).  Byte strings borrow
 * from the buffer decoded (or, to encode, from the caller). */
typedef struct jrec {
    uint8_t type;            /* jrec_type_t */
    uint64_t id;             /* the job; NEXT_ID: the next id; END: records before it */
    /* JOB */
    uint64_t ref;            /* submitter's ref, 0 = none */
    uint64_t parent;
    uint64_t t_submit, t_queued, t_dispatched; /* unix µs; t_queued: head */
    uint32_t timeout_ms, backoff_ms;
    uint16_t retries;
    int8_t pri;
    uint8_t flags;           /* JREC_F_* */
    msg_bytes_t cid;         /* head: submitter's cid, QJ_CID_LEN bytes or absent */
    msg_bytes_t queue;       /* head */
    msg_bytes_t task, key, args;
    /* JOB, DISPATCH, REQUEUE, FINISH */
    uint16_t attempt;        /* attempts dispatched so far */
    /* JOB, REQUEUE */
    uint64_t due_us;         /* held until this unix µs; 0 = ready now */
    bool front;              /* REQUEUE: to the front of its priority level */
    /* FINISH */
    uint8_t st;              /* msg_st_t, never unknown */
    uint64_t final_us;       /* head: when it became final, unix µs */
    uint64_t started, finished; /* the worker's stamps */
    msg_bytes_t val, err;
    msg_bytes_t wk;          /* head: the worker */
} jrec_t;

/* CRC-32C (Castagnoli) of buf, continuing from crc (0 to start), with the
 * CPU's CRC-32C instruction where it has one (SSE4.2 on x86_64, the CRC
 * extension of ARMv8), chosen at the first call; else jrec_crc_soft. */
uint32_t jrec_crc(uint32_t crc, const void *buf, size_t len);

/* The same from a table, on any CPU (tests compare the two). */
uint32_t jrec_crc_soft(uint32_t crc, const void *buf, size_t len);

/* How jrec_crc computes: "sse4.2", "armv8-crc" or "table". */
const char *jrec_crc_engine(void);

/* True for the types whose records hold a head and items (JOB, DISPATCH,
 * FINISH); a record of any other type holds one record's fields. */
static inline bool jrec_grouped(int type)
{
    return type == JREC_JOB || type == JREC_DISPATCH || type == JREC_FINISH;
}

/* Write the head of r's record into out (at most JREC_HEAD_MAX bytes;
 * nothing for a type that is not grouped).  Returns its length.  Items
 * whose heads are the same bytes may share one record. */
size_t jrec_head(const jrec_t *r, uint8_t *out);

/* True if jrec_head would write exactly head[0..len) for r: r's item may
 * join the record of that head. */
bool jrec_head_is(const jrec_t *r, const uint8_t *head, size_t len);

/* Bytes jrec_item writes for r (for a type that is not grouped, its whole
 * payload), or 0 if a field of r, its head's included, is over its limit
 * (JOURNAL.md §3) or the type is unknown. */
size_t jrec_item_size(const jrec_t *r);

/* Write r's item (jrec_item_size(r) bytes) into out; returns the end. */
uint8_t *jrec_item(const jrec_t *r, uint8_t *out);

/* Finish the record at rec, whose payload (plen bytes) follows its
 * header's place: write the header, checksum included. */
void jrec_seal(uint8_t *rec, uint8_t type, size_t plen);

/* Bytes jrec_encode writes for r alone in a record (header included), or
 * 0 as jrec_item_size. */
size_t jrec_size(const jrec_t *r);

/* Write r as a record of its own (jrec_size(r) bytes) into out. */
void jrec_encode(const jrec_t *r, uint8_t *out);

/* Called by jrec_decode for each record or item, in order; rec borrows
 * from the payload.  Return 0 to go on, anything else to stop. */
typedef int (*jrec_item_fn)(void *ctx, const jrec_t *rec);

/* Decode the payload of a record of type type: check all of it, then hand
 * each item (or the one record) to fn, if not NULL.  Returns 0; -1 with a
 * message if the type is unknown or the payload does not hold that
 * type's fields within their limits (nothing handed over: a record is
 * used whole or not at all); 1 if fn stopped it.  A record that is not
 * grouped ignores bytes after its known fields; a grouped one holds
 * exactly its head and one or more items. */
int jrec_decode(uint8_t type, const uint8_t *payload, size_t len, jrec_item_fn fn, void *ctx,
                char *err, size_t errlen);

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
