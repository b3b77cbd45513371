/* endpoint.h -- the broker's listening addresses: which may be bound, and
 * the file that tells others what was bound.
 *
 * Until peers are authenticated (CURVE, zap.h), an address that anyone
 * on the network could reach must not be bound by default: only loopback
 * tcp and ipc are.  The same rule covers the HTTP metrics endpoint
 * (metrics.h), whose queue names are nobody else's business either.
 */
#ifndef QJ_ENDPOINT_H
#define QJ_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>

/* True if host (a name or a literal address, without brackets or port)
 * is a loopback address: localhost, ::1, 127.0.0.0/8. */
bool endpoint_loopback(const char *host);

/* May the ZeroMQ endpoint ep be bound?  open: CURVE is on, or the
 * operator said --insecure: any address may.  Else only ipc://,
 * inproc:// and tcp on a loopback address.  Returns 0, or -1 with a
 * message saying how to allow it. */
int endpoint_check_bind(const char *ep, bool open, char *err, size_t errlen);

/* Write lines[0..n) to path, one a line, atomically (a temporary file
 * renamed into place), so that a reader never sees half of it.  what
 * names the file in messages ("endpoint file").  Returns 0, or -1 with a
 * message. */
int endpoint_write_file(const char *path, const char *what, const char *const *lines, int n,
                        char *err, size_t errlen);

#endif
