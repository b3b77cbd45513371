/* bench_fwd.h -- the same load patterns as bench_load.h, sent over a bare
 * ZeroMQ DEALER to qfwd (server/qfwd.c) and its echo workers: what the
 * transport alone costs on this machine, the baseline for qjob's figures.
 *
 * A message carries k jobs as k records (a 4-byte little-endian length,
 * then the payload); the echo worker copies each record into its reply.
 */
#ifndef QJ_BENCH_FWD_H
#define QJ_BENCH_FWD_H

#include <stddef.h>
#include <stdint.h>

#include "bench_bar.h"
#include "bench_load.h"

typedef struct bench_fwd bench_fwd_t;

/* Connect to the forwarder at endpoint; over CURVE (with a key pair made
 * for the connection) if key_file, the forwarder's public key file, is not
 * NULL.  NULL with a message if the endpoint or the key file is not valid. */
bench_fwd_t *bench_fwd_new(const char *endpoint, const char *key_file, char *err,
                           size_t errlen);

/* Close the connection; safe on NULL and twice. */
void bench_fwd_destroy(bench_fwd_t **self_p);

/* One round trip within timeout_ms: the forwarder and a worker answer.
 * Returns BENCH_OK, or BENCH_TIMEOUT / BENCH_FAILED with a message. */
int bench_fwd_ready(bench_fwd_t *f, int timeout_ms, char *err, size_t errlen);

/* jobs of payload bytes, k per message, at most window in flight.
 * Returns BENCH_OK (figures in *out), or BENCH_FAILED / BENCH_TIMEOUT with
 * a message. */
int bench_fwd_stream(bench_fwd_t *f, size_t payload, uint64_t jobs, uint64_t window,
                     uint64_t k, int timeout_ms, bench_bar_t *bar, bench_run_t *out,
                     char *err, size_t errlen);

/* warmup untimed round trips of one job, then n timed ones (µs in
 * us[0..n)).  Returns BENCH_OK, or BENCH_FAILED / BENCH_TIMEOUT. */
int bench_fwd_latency(bench_fwd_t *f, size_t payload, size_t n, size_t warmup, int timeout_ms,
                      bench_bar_t *bar, double *us, char *err, size_t errlen);

#endif
