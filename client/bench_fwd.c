/* bench_fwd.c -- load on the bare forwarder, qfwd (bench_fwd.h). */
#include "bench_fwd.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "clock.h"
#include "keys.h"
#include "qjlimits.h"

#define FWD_TICK_MS 20        /* poll bound, so the time limit is checked */
#define FWD_HWM 100000        /* as qfwd and qbroker */
#define FWD_RECORD_HEAD 4     /* bytes of a record's length */

struct bench_fwd {
    void *ctx;
    void *sock;
};

bench_fwd_t *bench_fwd_new(const char *endpoint, const char *key_file, char *err,
                           size_t errlen)
{
    bench_fwd_t *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->ctx = zmq_ctx_new();
    f->sock = f->ctx ? zmq_socket(f->ctx, ZMQ_DEALER) : NULL;
    int hwm = FWD_HWM, linger = 0;
    int64_t maxmsg = QJ_MAX_MSG;
    keys_client_t keys;
    /* qfwd has no allow list: any key pair will do. */
    if (f->sock && key_file &&
        (keys_load_public(key_file, keys.broker_z85, err, errlen) != 0 ||
         keys_generate(&keys.mine, err, errlen) != 0 ||
         keys_client_apply(f->sock, &keys, err, errlen) != 0)) {
        bench_fwd_destroy(&f);
        return NULL;
    }
    if (!f->sock || zmq_setsockopt(f->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        zmq_setsockopt(f->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(f->sock, ZMQ_RCVHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(f->sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_connect(f->sock, endpoint) != 0) {
        snprintf(err, errlen, "cannot connect to the forwarder at %s: %s", endpoint,
                 zmq_strerror(errno));
        bench_fwd_destroy(&f);
    }
    return f;
}

void bench_fwd_destroy(bench_fwd_t **self_p)
{
    bench_fwd_t *f = *self_p;
    if (!f)
        return;
    if (f->sock)
        zmq_close(f->sock);
    if (f->ctx)
        zmq_ctx_term(f->ctx);
    free(f);
    *self_p = NULL;
}

/* A message of k records of payload bytes each.  Caller frees. */
static unsigned char *s_message(size_t payload, uint64_t k, size_t *len)
{
    size_t rec = FWD_RECORD_HEAD + payload;
    *len = rec * (size_t)k;
    unsigned char *m = malloc(*len ? *len : 1);
    if (!m)
        return NULL;
    for (uint64_t i = 0; i < k; i++) {
        unsigned char *r = m + i * rec;
        r[0] = (unsigned char)payload;
        r[1] = (unsigned char)(payload >> 8);
        r[2] = (unsigned char)(payload >> 16);
        r[3] = (unsigned char)(payload >> 24);
        memset(r + FWD_RECORD_HEAD, 'x', payload);
    }
    return m;
}

/* Jobs in a reply: its records, or -1 if they do not add up. */
static long s_records(const unsigned char *p, size_t len)
{
    long n = 0;
    size_t off = 0;
    while (off < len) {
        if (len - off < FWD_RECORD_HEAD)
            return -1;
        size_t r = (size_t)p[off] | (size_t)p[off + 1] << 8 | (size_t)p[off + 2] << 16 |
                   (size_t)p[off + 3] << 24;
        if (r > len - off - FWD_RECORD_HEAD)
            return -1;
        off += FWD_RECORD_HEAD + r;
        n++;
    }
    return n;
}

/* Receive one reply, waiting up to wait_ms (0: only if one is there).
 * Returns the jobs it answers, 0 if none came, -1 if it was malformed. */
static long s_recv(bench_fwd_t *f, int wait_ms)
{
    if (wait_ms > 0) {
        zmq_pollitem_t it = {f->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, wait_ms) <= 0)
            return 0;
    }
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, f->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return 0;
    }
    long n = zmq_msg_more(&m) ? -1 : s_records(zmq_msg_data(&m), zmq_msg_size(&m));
    zmq_msg_close(&m);
    return n;
}

int bench_fwd_ready(bench_fwd_t *f, int timeout_ms, char *err, size_t errlen)
{
    double us;
    return bench_fwd_latency(f, 16, 1, 0, timeout_ms, NULL, &us, err, errlen);
}

int bench_fwd_stream(bench_fwd_t *f, size_t payload, uint64_t jobs, uint64_t window,
                     uint64_t k, int timeout_ms, bench_bar_t *bar, bench_run_t *out,
                     char *err, size_t errlen)
{
    if (k == 0 || window < k) {
        snprintf(err, errlen, "the window (%llu) must hold at least one message of %llu jobs",
                 (unsigned long long)window, (unsigned long long)k);
        return BENCH_FAILED;
    }
    size_t len, tail_len;
    uint64_t tail = jobs % k;
    unsigned char *msg = s_message(payload, k, &len);
    unsigned char *tail_msg = s_message(payload, tail, &tail_len);
    if (!msg || !tail_msg) {
        free(msg);
        free(tail_msg);
        snprintf(err, errlen, "out of memory");
        return BENCH_FAILED;
    }
    uint64_t sent = 0, done = 0, messages = 0;
    uint64_t deadline = clock_mono_ms() + (uint64_t)timeout_ms;
    int rc = BENCH_OK;
    double cpu0 = bench_load_cpu();
    uint64_t t0 = clock_mono_us();
    while (done < jobs) {
        /* Send while a whole message fits in the window. */
        while (sent < jobs) {
            uint64_t g = jobs - sent < k ? jobs - sent : k;
            if (sent - done + g > window)
                break;
            if (zmq_send(f->sock, g == k ? msg : tail_msg, g == k ? len : tail_len,
                         ZMQ_DONTWAIT) < 0)
                break;
            sent += g;
            messages++;
        }
        long n = s_recv(f, FWD_TICK_MS);
        while (n > 0) {
            done += (uint64_t)n;
            n = s_recv(f, 0);
        }
        if (n < 0) {
            snprintf(err, errlen, "a reply from the forwarder was malformed");
            rc = BENCH_FAILED;
            break;
        }
        if (bar)
            bench_bar_update(bar, done);
        if (done < jobs && clock_mono_ms() >= deadline) {
            snprintf(err, errlen, "%llu of %llu jobs not answered by the forwarder after %d s "
                                  "(--timeout)", (unsigned long long)(jobs - done),
                     (unsigned long long)jobs, timeout_ms / 1000);
            rc = BENCH_TIMEOUT;
            break;
        }
    }
    uint64_t t1 = clock_mono_us();
    out->secs = (double)(t1 - t0) / 1e6;
    out->cpu_secs = bench_load_cpu() - cpu0;
    out->jobs = done;
    out->messages = messages;
    free(msg);
    free(tail_msg);
    return rc;
}

int bench_fwd_latency(bench_fwd_t *f, size_t payload, size_t n, size_t warmup, int timeout_ms,
                      bench_bar_t *bar, double *us, char *err, size_t errlen)
{
    size_t len;
    unsigned char *msg = s_message(payload, 1, &len);
    if (!msg) {
        snprintf(err, errlen, "out of memory");
        return BENCH_FAILED;
    }
    uint64_t deadline = clock_mono_ms() + (uint64_t)timeout_ms;
    int rc = BENCH_OK;
    for (size_t i = 0; i < warmup + n && rc == BENCH_OK; i++) {
        uint64_t t0 = clock_mono_us();
        if (zmq_send(f->sock, msg, len, 0) < 0) {
            snprintf(err, errlen, "cannot send to the forwarder: %s", zmq_strerror(errno));
            rc = BENCH_FAILED;
            break;
        }
        long got = 0;
        /* Block in zmq_poll for the reply (no tick: a tick would add its
         * own wake-ups to what is measured), bounded by the time limit. */
        while (got == 0) {
            uint64_t now = clock_mono_ms();
            if (now >= deadline) {
                snprintf(err, errlen, "the forwarder did not answer within %d s (--timeout; "
                                      "does it have workers?)", timeout_ms / 1000);
                rc = BENCH_TIMEOUT;
                break;
            }
            got = s_recv(f, (int)(deadline - now));
        }
        if (got < 0) {
            snprintf(err, errlen, "a reply from the forwarder was malformed");
            rc = BENCH_FAILED;
        }
        if (rc != BENCH_OK)
            break;
        uint64_t t1 = clock_mono_us();
        if (i >= warmup)
            us[i - warmup] = (double)(t1 - t0);
        if (bar)
            bench_bar_update(bar, i + 1 > warmup ? i + 1 - warmup : 0);
    }
    free(msg);
    return rc;
}
