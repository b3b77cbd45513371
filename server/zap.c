/* zap.c -- CURVE keys, allow lists and the ZAP handler (zap.h). */
#include "zap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "keys.h"
#include "log.h"
#include "msg.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"   /* fixed by RFC 27 */
#define ZAP_DOMAIN "qjob"
#define ZAP_KEY_PROP "X-Key"
#define ZAP_FRAMES 8            /* frames of a request we look at (CURVE has 7) */
#define ZAP_BURST 256           /* requests answered per call, at most */
#define LOG_SAME_MS 1000        /* the same refusal is logged at most this often */
#define LOG_PER_SEC 10          /* and refusals at all at most this many a second */

struct zap {
    keys_pair_t mine;
    keys_list_t *lists[2];      /* by role: MSG_ROLE_CLIENT, MSG_ROLE_WORKER */
    void *sock;                 /* ZAP handler (REP) */
    uint64_t rejected;
    char last[256];             /* last refusal logged */
    uint64_t last_ms;           /* when */
    uint64_t window_ms;         /* start of the second LOG_PER_SEC counts in */
    uint32_t window_lines;
    uint64_t quiet;             /* refusals not logged since the last line */
};

static const char *const s_roles[2] = {"client", "worker"};

static int s_load_list(zap_t *z, uint8_t role, const char *path, char *err, size_t errlen)
{
    if (!path)
        return 0;
    int n = keys_list_load(z->lists[role], path, err, errlen);
    if (n == 0)
        snprintf(err, errlen, "the %ss allow list %s has no key in it (a file of public keys, "
                 "or a directory of NAME.pub files)", s_roles[role], path);
    return n > 0 ? 0 : -1;
}

zap_t *zap_new(const char *secret_path, const char *clients_path, const char *workers_path,
               char *err, size_t errlen)
{
    if (!clients_path && !workers_path) {
        snprintf(err, errlen, "--curve-secret needs --clients-allow and/or --workers-allow: "
                 "without an allow list nobody could connect");
        return NULL;
    }
    zap_t *z = calloc(1, sizeof *z);
    if (!z || !(z->lists[0] = keys_list_new()) || !(z->lists[1] = keys_list_new())) {
        snprintf(err, errlen, "out of memory");
        zap_destroy(&z);
        return NULL;
    }
    if (keys_load_secret(secret_path, &z->mine, err, errlen) != 0 ||
        s_load_list(z, MSG_ROLE_CLIENT, clients_path, err, errlen) != 0 ||
        s_load_list(z, MSG_ROLE_WORKER, workers_path, err, errlen) != 0) {
        zap_destroy(&z);
        return NULL;
    }
    /* One role per key: a key in both lists would let a client act as a
     * worker, which is what the lists are there to prevent. */
    const keys_list_t *c = z->lists[MSG_ROLE_CLIENT];
    for (size_t i = 0; i < keys_list_count(c); i++) {
        uint8_t bin[KEYS_BIN];
        keys_decode(keys_list_at(c, i), bin);
        if (keys_list_find(z->lists[MSG_ROLE_WORKER], bin, NULL)) {
            snprintf(err, errlen, "key %s is in both --clients-allow and --workers-allow: a "
                     "key has one role (make another pair with qclient keygen)",
                     keys_list_at(c, i));
            zap_destroy(&z);
            return NULL;
        }
    }
    return z;
}

const char *zap_public(const zap_t *z)
{
    return z->mine.public_z85;
}

size_t zap_allowed(const zap_t *z, uint8_t role)
{
    return role < 2 ? keys_list_count(z->lists[role]) : 0;
}

int zap_start(zap_t *z, void *ctx, void *router, char *err, size_t errlen)
{
    int one = 1, linger = 0;
    if (!zmq_has("curve")) {
        snprintf(err, errlen, "this libzmq was built without CURVE: --curve-secret cannot work");
        return -1;
    }
    z->sock = zmq_socket(ctx, ZMQ_REP);
    if (!z->sock || zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(z->sock, ZAP_ENDPOINT) != 0) {
        snprintf(err, errlen, "cannot start the ZAP handler: %s", zmq_strerror(errno));
        return -1;
    }
    if (zmq_setsockopt(router, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, z->mine.secret_z85, KEYS_Z85 + 1) != 0 ||
        zmq_setsockopt(router, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) != 0) {
        snprintf(err, errlen, "cannot make the socket a CURVE server: %s", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

void *zap_socket(const zap_t *z)
{
    return z->sock;
}

/* ---- refusals */

static void s_vrefuse(zap_t *z, const char *fmt, va_list ap)
{
    char text[sizeof z->last];
    vsnprintf(text, sizeof text, fmt, ap);
    z->rejected++;
    /* A refused peer retries (ZeroMQ reconnects): say it once a second,
     * and never let refusals flood the log. */
    uint64_t now = clock_mono_ms();
    if (now - z->window_ms >= 1000) {
        z->window_ms = now;
        z->window_lines = 0;
    }
    if (z->window_lines >= LOG_PER_SEC ||
        (now - z->last_ms < LOG_SAME_MS && strcmp(text, z->last) == 0)) {
        z->quiet++;
        return;
    }
    z->window_lines++;
    if (z->quiet)
        log_warn("refused %s (and %llu more refusals since the last report)", text,
                 (unsigned long long)z->quiet);
    else
        log_warn("refused %s", text);
    snprintf(z->last, sizeof z->last, "%s", text);
    z->last_ms = now;
    z->quiet = 0;
}

void zap_refuse(zap_t *z, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vrefuse(z, fmt, ap);
    va_end(ap);
}

uint64_t zap_rejected(const zap_t *z)
{
    return z->rejected;
}

/* ---- the handler */

static void s_send(void *sock, const void *data, size_t len, bool more)
{
    zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0);
}

/* Reply to a request: status 200 with role and key, or a refusal. */
static void s_reply(zap_t *z, zmq_msg_t *req_id, const char *status, const char *text,
                    const char *user, const char *key)
{
    s_send(z->sock, "1.0", 3, true);
    s_send(z->sock, req_id ? zmq_msg_data(req_id) : "", req_id ? zmq_msg_size(req_id) : 0,
           true);
    s_send(z->sock, status, strlen(status), true);
    s_send(z->sock, text, strlen(text), true);
    s_send(z->sock, user, strlen(user), true);
    /* Metadata as ZMTP properties: name length (1 byte), name, value
     * length (4 bytes, big-endian), value. */
    uint8_t meta[1 + sizeof ZAP_KEY_PROP + 4 + KEYS_Z85];
    size_t len = 0;
    if (key) {
        size_t nl = strlen(ZAP_KEY_PROP);
        meta[len++] = (uint8_t)nl;
        memcpy(meta + len, ZAP_KEY_PROP, nl);
        len += nl;
        uint32_t vl = KEYS_Z85;
        meta[len++] = (uint8_t)(vl >> 24);
        meta[len++] = (uint8_t)(vl >> 16);
        meta[len++] = (uint8_t)(vl >> 8);
        meta[len++] = (uint8_t)vl;
        memcpy(meta + len, key, KEYS_Z85);
        len += KEYS_Z85;
    }
    s_send(z->sock, meta, len, false);
}

static bool s_is(zmq_msg_t *m, const char *text)
{
    size_t n = strlen(text);
    return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), text, n) == 0;
}

/* Decide on one request of n frames (RFC 27: version, request id, domain,
 * address, routing id, mechanism, credentials...). */
static void s_decide(zap_t *z, zmq_msg_t *f, int n)
{
    if (n < 6 || !s_is(&f[0], "1.0")) {
        s_reply(z, n > 1 ? &f[1] : NULL, "500", "malformed ZAP request", "", NULL);
        return;
    }
    char addr[64];
    snprintf(addr, sizeof addr, "%.*s", (int)zmq_msg_size(&f[3]), (const char *)zmq_msg_data(&f[3]));
    if (!s_is(&f[2], ZAP_DOMAIN) || !s_is(&f[5], "CURVE") || n != 7 ||
        zmq_msg_size(&f[6]) != KEYS_BIN) {
        zap_refuse(z, "a connection from %s: not a CURVE handshake in domain " ZAP_DOMAIN,
                   addr);
        s_reply(z, &f[1], "400", "CURVE required", "", NULL);
        return;
    }
    const uint8_t *bin = zmq_msg_data(&f[6]);
    for (uint8_t role = 0; role < 2; role++) {
        const char *label, *key = keys_list_find(z->lists[role], bin, &label);
        if (key) {
            log_debug("admitted a connection from %s as %s '%s' (key %s)", addr, s_roles[role],
                      label, key);
            s_reply(z, &f[1], "200", "OK", s_roles[role], key);
            return;
        }
    }
    char z85[KEYS_Z85 + 1];
    keys_encode(bin, z85);
    zap_refuse(z, "a connection from %s with CURVE key %s: not in --clients-allow or "
               "--workers-allow", addr, z85);
    s_reply(z, &f[1], "400", "key not allowed", "", NULL);
}

void zap_serve(zap_t *z)
{
    for (int burst = 0; z->sock && burst < ZAP_BURST; burst++) {
        zmq_msg_t f[ZAP_FRAMES];
        int n = 0, more = 1;
        while (more) {
            zmq_msg_t scratch, *m = n < ZAP_FRAMES ? &f[n] : &scratch;
            zmq_msg_init(m);
            if (zmq_msg_recv(m, z->sock, n ? 0 : ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(m);
                for (int i = 0; i < n && i < ZAP_FRAMES; i++)
                    zmq_msg_close(&f[i]);
                return;   /* nothing more waiting */
            }
            more = zmq_msg_more(m);
            if (m == &scratch)
                zmq_msg_close(m);
            n++;
        }
        s_decide(z, f, n);
        for (int i = 0; i < n && i < ZAP_FRAMES; i++)
            zmq_msg_close(&f[i]);
    }
}

/* ---- the broker's checks */

const char *zap_admit(zap_t *z, zmq_msg_t *frame, uint8_t role, char *err, size_t errlen)
{
    const char *user = zmq_msg_gets(frame, "User-Id");
    const char *key = zmq_msg_gets(frame, ZAP_KEY_PROP);
    uint8_t bin[KEYS_BIN];
    if (role > 1 || !user || !key || keys_decode(key, bin) != 0) {
        zap_refuse(z, "a HELLO that came without an authenticated key");
        snprintf(err, errlen, "not authenticated: connect with CURVE keys");
        return NULL;
    }
    const char *label, *mine = keys_list_find(z->lists[role], bin, &label);
    if (!mine || strcmp(user, s_roles[role]) != 0) {
        zap_refuse(z, "a HELLO as %s from key %s, which is allowed as a %s only", s_roles[role],
                   key, user);
        snprintf(err, errlen, "denied: this key may connect as a %s, not as a %s", user,
                 s_roles[role]);
        return NULL;
    }
    return mine;
}

bool zap_same(zap_t *z, zmq_msg_t *frame, const char *key)
{
    const char *got = zmq_msg_gets(frame, ZAP_KEY_PROP);
    if (got && key && strcmp(got, key) == 0)
        return true;
    zap_refuse(z, "a message from key %s on a connection that said HELLO with key %s",
               got ? got : "(none)", key ? key : "(none)");
    return false;
}

void zap_stop(zap_t *z)
{
    if (z && z->sock) {
        zmq_close(z->sock);
        z->sock = NULL;
    }
}

void zap_destroy(zap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zap_t *z = *self_p;
    zap_stop(z);
    keys_list_destroy(&z->lists[0]);
    keys_list_destroy(&z->lists[1]);
    explicit_bzero(&z->mine, sizeof z->mine);
    free(z);
    *self_p = NULL;
}
