/* jbuf.h -- the journal's records waiting to be written: encoded back to
 * back in memory, the items of a job's life grouped into few records.
 *
 * journal_append encodes each record here, and the loop writes the
 * buffer once per turn.  A JOB, DISPATCH or FINISH item joins the record
 * just before it when that record is of its type and has the same head
 * (jrec.h): the jobs of a SUBMIT, the leases of a turn, the results of a
 * worker's RESULTS each cost one header and one checksum, not one per
 * job.  That last record stays open for more items until it is sealed
 * (its length and checksum written): by a record that cannot join it,
 * by jbuf_data, or at JBUF_GROUP_MAX bytes.  Pure code: no I/O.
 */
#ifndef QJ_JBUF_H
#define QJ_JBUF_H

#include <stddef.h>
#include <stdint.h>

#include "jrec.h"

/* A record takes no more items past this many payload bytes: a damaged
 * record loses what it holds, so a group stays small next to a segment,
 * while its header and checksum are shared by hundreds of jobs. */
#define JBUF_GROUP_MAX (64u * 1024)

typedef struct jbuf jbuf_t;

/* An empty buffer, or NULL if memory is short. */
jbuf_t *jbuf_new(void);

/* Free; safe on NULL, nulls the caller's pointer. */
void jbuf_destroy(jbuf_t **self_p);

/* Append rec, as an item of the open record or in a record of its own.
 * Returns the bytes the buffer grew by, or 0 (nothing appended) if a
 * field is over its limit or memory is short. */
size_t jbuf_append(jbuf_t *self, const jrec_t *rec);

/* Bytes waiting, the open record's included. */
size_t jbuf_len(const jbuf_t *self);

/* Seal the open record, and return the bytes waiting (*len of them),
 * borrowed until the next call on self. */
const uint8_t *jbuf_data(jbuf_t *self, size_t *len);

/* Drop the first n of the bytes jbuf_data returned (they are written). */
void jbuf_consume(jbuf_t *self, size_t n);

#endif
