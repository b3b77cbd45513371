/* zap.h -- who may talk to the broker: its CURVE key, the allow lists of
 * client and worker keys, and the ZAP handler that applies them.
 *
 * With CURVE on, the broker's ROUTER is a CURVE server on ZAP domain
 * "qjob" and every handshake asks the ZAP handler (an inproc REP socket,
 * RFC 27) about the peer's public key.  A key in --clients-allow is
 * admitted as a client, one in --workers-allow as a worker, any other is
 * refused before a single message of the connection reaches the broker.
 * The handler answers with User-Id = the role and a metadata property
 * X-Key = the key in Z85, which ZeroMQ then attaches to every message of
 * the connection; the broker checks a HELLO's role against the User-Id
 * (zap_admit) and every later message's key against the key its peer said
 * HELLO with (zap_same), so a routing id cannot be borrowed by another key.
 *
 * The handler runs in the broker's own poll loop: zap_socket() is one of
 * its poll items and zap_serve() answers what has come.  Each refusal is
 * counted (STATS_REP.rejected) and logged with the key, at most one line a
 * second for the same refusal.
 */
#ifndef QJ_ZAP_H
#define QJ_ZAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

typedef struct zap zap_t;

/* Load the broker's secret key file and the allow lists (files or
 * directories; either may be NULL: that role admits no key, but not both).
 * Refuses loose permissions, a key in both lists and empty lists.
 * Returns NULL with a message saying what to fix. */
zap_t *zap_new(const char *secret_path, const char *clients_path, const char *workers_path,
               char *err, size_t errlen);

/* The broker's public key (Z85), and the number of keys allowed per role
 * (MSG_ROLE_CLIENT, MSG_ROLE_WORKER), for the start-up log. */
const char *zap_public(const zap_t *self);
size_t zap_allowed(const zap_t *self, uint8_t role);

/* Bind the ZAP handler in ctx and make router a CURVE server with the
 * broker's key.  Call before router binds anything.  Returns 0, or -1
 * with a message. */
int zap_start(zap_t *self, void *ctx, void *router, char *err, size_t errlen);

/* The handler's socket, to poll for ZMQ_POLLIN; NULL before zap_start. */
void *zap_socket(const zap_t *self);

/* Answer every ZAP request waiting.  Never blocks. */
void zap_serve(zap_t *self);

/* A HELLO in role arrived in frame: returns the connection's key (Z85,
 * owned by self, the same pointer for the same key: callers keep and
 * compare it) if the key was admitted in that role; else NULL, with the
 * refusal counted, logged and described in err for the peer. */
const char *zap_admit(zap_t *self, zmq_msg_t *frame, uint8_t role, char *err, size_t errlen);

/* Whether frame came over a connection whose key is key (from zap_admit).
 * A mismatch is counted and logged. */
bool zap_same(zap_t *self, zmq_msg_t *frame, const char *key);

/* Count and log a refusal decided elsewhere (printf-style reason). */
void zap_refuse(zap_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Refusals so far (STATS_REP.rejected). */
uint64_t zap_rejected(const zap_t *self);

/* Close the handler's socket (before its context is terminated); safe to
 * call twice. */
void zap_stop(zap_t *self);

/* Free everything (stopping first); safe on NULL, nulls the pointer. */
void zap_destroy(zap_t **self_p);

#endif
