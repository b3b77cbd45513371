/* command.h -- what the broker does with each decoded message.
 *
 * One handler per command of PROTOCOL.md §5.  The handler checks the
 * rules of §4 that the codec cannot (HELLO first, role, leases), changes
 * the broker's state through dispatch.c, and answers: replies to requests
 * at once, ACCEPTED / JOBS / RESULTS through the end-of-turn batches.
 */
#ifndef QJ_COMMAND_H
#define QJ_COMMAND_H

#include <stddef.h>

#include "broker.h"

/* Handle one well-formed message from routing id rid (peer is its peer,
 * or NULL if it has not said HELLO).  Pointers in m borrow from the frame
 * and the reader; nothing keeps them past the call. */
void command_handle(broker_t *b, const void *rid, size_t rid_len, peer_t *peer,
                    const msg_t *m);

#endif
