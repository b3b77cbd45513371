/* task.c -- the task API of qjob.h over a qj_ctx (see ctx.h).
 *
 * A task reads its arguments through typed accessors, sets its result
 * with qj_return_* (the last call wins), fails with qj_fail, and
 * cooperates with qj_sleep / qj_yield, which suspend its coroutine on the
 * worker's scheduler.  A stop request (cancel, timeout) makes those
 * return -1 so the task can return early; the job then ends with the
 * stop's status.
 */
#include "ctx.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qjlimits.h"
#include "mpck.h"
#include "mpjson.h"
#include "msg.h"
#include "scheduler.h"

/* Room for the strings qj_arg_str hands out.  A job's strings are carved
 * from these chunks one after the other; the next job reuses the chunks
 * instead of allocating again (only oversized ones are freed). */
typedef struct ctx_chunk {
    struct ctx_chunk *next;
    size_t cap;    /* bytes in s */
    size_t used;   /* bytes given out to the current job */
    char s[];
} ctx_chunk_t;

/* A new chunk holds at least this many bytes; chunks no bigger are kept
 * from job to job. */
#define STR_CHUNK 512

/* The fields every job touches come first, so that starting a job and
 * reading its outcome touch two cache lines of a ctx that has gone cold
 * while the worker held other jobs; the rest follow. */
struct qj_ctx {
    ctx_chunk_t *strs;         /* qj_arg_str copies */
    uint64_t id;
    msgpack_sbuffer args_mp;   /* owned copy of the argument bytes (checked); empty = nil */
    msgpack_sbuffer result;    /* one msgpack value; empty means nil */
    msgpack_object args;       /* the arguments once decoded; nil if none */
    uint32_t attempt;
    qj_status stop;            /* QJ_PENDING, or why the task must stop */
    bool args_decoded;         /* args holds the decoded form of args_mp */
    bool args_failed;          /* decoding them failed (no memory): the job's error */
    bool packer_used;          /* result came from user packing: check it */
    bool failed;               /* qj_fail was called */
    bool stop_seen;            /* a call told the task to stop */
    char queue[QJ_MAX_QUEUE_NAME + 1];
    qj_ctx_host host;
    msg_reader_t *reader;      /* decoded args point into it and into args_mp */
    msgpack_packer packer;     /* writes into result */
    char *error;               /* qj_fail's message (kept across jobs), or NULL */
    char args_why[256];        /* why, when args_failed */
};

/* Room for a message one UTF-8 character longer than the limit, so
 * s_utf8_clean can cut it at a character boundary. */
#define ERROR_BUF (QJ_MAX_ERROR + 4)

/* Replace every byte that does not start a valid UTF-8 sequence with '?'
 * (peers decode str fields as UTF-8 and refuse bad ones), then cut s to
 * at most max bytes without splitting a character. */
static void s_utf8_clean(char *s, size_t max)
{
    size_t n = strlen(s), i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                   : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
        if (ok && len >= 3) {
            /* Overlong forms, UTF-16 surrogates, code points past U+10FFFF. */
            unsigned char d = (unsigned char)s[i + 1];
            if ((c == 0xe0 && d < 0xa0) || (c == 0xed && d >= 0xa0) ||
                (c == 0xf0 && d < 0x90) || (c == 0xf4 && d >= 0x90))
                ok = false;
        }
        if (!ok) {
            s[i] = '?';
            len = 1;
        }
        if (i + len > max) {
            s[i] = '\0';
            return;
        }
        i += len;
    }
}

/* Forget the strings of the previous job: keep the ordinary chunks for
 * the next one, free the oversized (all of them if all is set). */
static void s_reset_strs(qj_ctx *ctx, bool all)
{
    for (ctx_chunk_t **p = &ctx->strs; *p;) {
        ctx_chunk_t *c = *p;
        if (all || c->cap > STR_CHUNK) {
            *p = c->next;
            free(c);
        } else {
            c->used = 0;
            p = &c->next;
        }
    }
}

/* Room for n bytes in the current job's strings, or NULL (no memory). */
static char *s_str_room(qj_ctx *ctx, size_t n)
{
    for (ctx_chunk_t *c = ctx->strs; c; c = c->next)
        if (c->cap - c->used >= n) {
            c->used += n;
            return c->s + c->used - n;
        }
    size_t cap = n > STR_CHUNK ? n : STR_CHUNK;
    ctx_chunk_t *c = malloc(sizeof *c + cap);
    if (!c)
        return NULL;
    c->cap = cap;
    c->used = n;
    c->next = ctx->strs;
    ctx->strs = c;
    return c->s;
}

qj_ctx *qj_ctx_new(const qj_ctx_host *host)
{
    qj_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ctx->reader = msg_reader_new();
    if (!ctx->reader) {
        free(ctx);
        return NULL;
    }
    if (host)
        ctx->host = *host;
    msgpack_sbuffer_init(&ctx->args_mp);
    msgpack_sbuffer_init(&ctx->result);
    msgpack_packer_init(&ctx->packer, &ctx->result, msgpack_sbuffer_write);
    ctx->args.type = MSGPACK_OBJECT_NIL;
    ctx->args_decoded = true;
    ctx->stop = QJ_PENDING;
    return ctx;
}

void qj_ctx_destroy(qj_ctx **self_p)
{
    if (!self_p || !*self_p)
        return;
    qj_ctx *ctx = *self_p;
    s_reset_strs(ctx, true);
    msg_reader_destroy(&ctx->reader);
    msgpack_sbuffer_destroy(&ctx->args_mp);
    msgpack_sbuffer_destroy(&ctx->result);
    free(ctx->error);
    free(ctx);
    *self_p = NULL;
}

int qj_ctx_start(qj_ctx *ctx, uint64_t id, uint32_t attempt, const char *queue,
                 const void *args, size_t len, char *err, size_t errlen)
{
    assert(ctx);
    s_reset_strs(ctx, false);
    ctx->id = id;
    ctx->attempt = attempt;
    if (!queue)
        queue = "default";
    size_t qlen = strnlen(queue, sizeof ctx->queue - 1);
    memcpy(ctx->queue, queue, qlen);
    ctx->queue[qlen] = '\0';
    msgpack_sbuffer_clear(&ctx->args_mp);
    msgpack_sbuffer_clear(&ctx->result);
    ctx->packer_used = false;
    ctx->failed = false;
    ctx->stop = QJ_PENDING;
    ctx->stop_seen = false;
    ctx->args.type = MSGPACK_OBJECT_NIL;
    ctx->args_decoded = true;   /* nil, until there are bytes to decode */
    ctx->args_failed = false;
    if (!args || len == 0)
        return 0;
    if (len > QJ_MAX_ARGS) {
        snprintf(err, errlen, "arguments of %zu bytes are over the limit of %u bytes",
                 len, QJ_MAX_ARGS);
        return -1;
    }
    /* Only the non-allocating check now, so that malformed arguments still
     * fail the job before its task runs; the decode waits for the task's
     * first look at them (s_args), and most tasks never look. */
    char why[256];
    if (mpck_check(args, len, &mpck_default_limits, why, sizeof why) != 0) {
        snprintf(err, errlen, "arguments are not one valid msgpack value: %s", why);
        return -1;
    }
    /* A copy all the same: the job outlives the message that brought it.
     * args_mp keeps its room from job to job, so this allocates only when
     * a job's arguments are the largest yet. */
    if (msgpack_sbuffer_write(&ctx->args_mp, args, len) != 0) {
        snprintf(err, errlen, "out of memory copying %zu bytes of arguments", len);
        return -1;
    }
    ctx->args_decoded = false;
    return 0;
}

static int s_decode(struct msg_reader *reader, const void *mp, size_t len,
                    msgpack_object *obj, char *err, size_t errlen)
{
    return msg_value_decode(reader, (msg_bytes_t){mp, (uint32_t)len}, obj, err, errlen);
}

int (*qj_ctx_decode)(struct msg_reader *reader, const void *mp, size_t len,
                     msgpack_object *obj, char *err, size_t errlen) = s_decode;

/* The arguments, decoded on first use.  They passed mpck_check in
 * qj_ctx_start, so decoding fails only for want of memory: the arguments
 * then read as nil and the job ends with that error, whatever the task
 * does next. */
static const msgpack_object *s_args(qj_ctx *ctx)
{
    if (ctx->args_decoded)
        return &ctx->args;
    ctx->args_decoded = true;
    char why[160];
    if (qj_ctx_decode(ctx->reader, ctx->args_mp.data, ctx->args_mp.size, &ctx->args, why,
                      sizeof why) != 0) {
        ctx->args.type = MSGPACK_OBJECT_NIL;
        ctx->args_failed = true;
        snprintf(ctx->args_why, sizeof ctx->args_why,
                 "arguments are not one valid msgpack value: %s", why);
    }
    return &ctx->args;
}

void qj_ctx_stop(qj_ctx *ctx, qj_status why)
{
    assert(why == QJ_CANCELLED || why == QJ_TIMEOUT);
    if (ctx->stop == QJ_PENDING)
        ctx->stop = why;
}

/* True if the task must stop; from now on its outcome is the stop's. */
static bool s_stopping(qj_ctx *ctx)
{
    if (ctx->stop == QJ_PENDING)
        return false;
    ctx->stop_seen = true;
    return true;
}

/* The failure message; qj_fail may have had no memory to keep one. */
static const char *s_error(const qj_ctx *ctx)
{
    return ctx->error ? ctx->error : "the task failed (no memory for its message)";
}

qj_status qj_ctx_outcome(qj_ctx *ctx, int ret, const void **val, size_t *len,
                         const char **error)
{
    *val = NULL;
    *len = 0;
    *error = NULL;
    if (ctx->args_failed) {
        *error = ctx->args_why;
        return QJ_ERROR;
    }
    if (ctx->stop_seen) {
        *error = ctx->stop == QJ_TIMEOUT ? "stopped: the job ran past its timeout"
                                          : "stopped: the job was cancelled";
        return ctx->stop;
    }
    if (ctx->failed) {
        *error = s_error(ctx);
        return QJ_ERROR;
    }
    if (ret != 0) {
        qj_fail(ctx, "task returned %d without calling qj_fail", ret);
        *error = s_error(ctx);
        return QJ_ERROR;
    }
    if (ctx->result.size > QJ_MAX_VALUE) {
        qj_fail(ctx, "result of %zu bytes is over the limit of %u bytes: return less, "
                "or store it elsewhere and return a reference", ctx->result.size,
                QJ_MAX_VALUE);
        *error = s_error(ctx);
        return QJ_ERROR;
    }
    char why[256];
    if (ctx->packer_used && ctx->result.size > 0 &&
        mpck_check(ctx->result.data, ctx->result.size, &mpck_default_limits, why,
                   sizeof why) != 0) {
        qj_fail(ctx, "the task packed an invalid result (pack exactly one value): %s", why);
        *error = s_error(ctx);
        return QJ_ERROR;
    }
    *val = ctx->result.size ? ctx->result.data : NULL;
    *len = ctx->result.size;
    return QJ_OK;
}

const char *qj_ctx_queue(const qj_ctx *ctx) { return ctx->queue; }
uint64_t qj_ctx_job_id(const qj_ctx *ctx) { return ctx->id; }
uint32_t qj_ctx_attempt(const qj_ctx *ctx) { return ctx->attempt; }
qj_client *qj_ctx_client(qj_ctx *ctx) { return ctx->host.client; }

/* ------------------------------------------------------------- arguments */

const msgpack_object *qj_args(qj_ctx *ctx) { return s_args(ctx); }

const void *qj_args_mp(qj_ctx *ctx, size_t *len)
{
    *len = ctx->args_mp.size;
    return ctx->args_mp.size ? ctx->args_mp.data : NULL;
}

/* The value under key in a map argument, or NULL. */
static const msgpack_object *s_arg(qj_ctx *ctx, const char *key)
{
    const msgpack_object *args = s_args(ctx);
    if (args->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t klen = strlen(key);
    const msgpack_object_map *m = &args->via.map;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
            memcmp(k->via.str.ptr, key, klen) == 0)
            return &m->ptr[i].val;
    }
    return NULL;
}

int64_t qj_arg_int(qj_ctx *ctx, const char *key, int64_t dflt)
{
    const msgpack_object *v = s_arg(ctx, key);
    if (!v)
        return dflt;
    switch (v->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return v->via.u64 <= INT64_MAX ? (int64_t)v->via.u64 : dflt;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return v->via.i64;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        /* JSON writers turn 1e6 into a float: take it if it is a whole number. */
        if (v->via.f64 == floor(v->via.f64) && v->via.f64 >= -9.2e18 && v->via.f64 <= 9.2e18)
            return (int64_t)v->via.f64;
        return dflt;
    default:
        return dflt;
    }
}

double qj_arg_double(qj_ctx *ctx, const char *key, double dflt)
{
    const msgpack_object *v = s_arg(ctx, key);
    if (!v)
        return dflt;
    switch (v->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return v->via.f64;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return (double)v->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return (double)v->via.i64;
    default:
        return dflt;
    }
}

const char *qj_arg_str(qj_ctx *ctx, const char *key, const char *dflt)
{
    const msgpack_object *v = s_arg(ctx, key);
    if (!v || v->type != MSGPACK_OBJECT_STR)
        return dflt;
    char *s = s_str_room(ctx, v->via.str.size + 1);
    if (!s)
        return dflt;
    memcpy(s, v->via.str.ptr, v->via.str.size);
    s[v->via.str.size] = '\0';
    return s;
}

char *qj_args_json(qj_ctx *ctx)
{
    json_t *j = mpjson_from_object(s_args(ctx));
    if (!j)
        return NULL;
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    return text;
}

/* ---------------------------------------------------------------- result */

int qj_return_nil(qj_ctx *ctx)
{
    msgpack_sbuffer_clear(&ctx->result);
    ctx->packer_used = false;
    return 0;
}

int qj_return_int(qj_ctx *ctx, int64_t v)
{
    qj_return_nil(ctx);
    return msgpack_pack_int64(&ctx->packer, v) == 0 ? 0 : -1;
}

int qj_return_double(qj_ctx *ctx, double v)
{
    qj_return_nil(ctx);
    return msgpack_pack_double(&ctx->packer, v) == 0 ? 0 : -1;
}

int qj_return_str(qj_ctx *ctx, const char *s)
{
    qj_return_nil(ctx);
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (msgpack_pack_str(&ctx->packer, n) != 0 || msgpack_pack_str_body(&ctx->packer, s, n) != 0)
        return -1;
    return 0;
}

int qj_return_json(qj_ctx *ctx, const char *json)
{
    /* Parse after the current value and move it down only if it parsed,
     * so a bad text leaves the previous result in place. */
    size_t old = ctx->result.size;
    char err[200];
    if (!json || mpjson_from_text(json, &ctx->result, err, sizeof err) != 0) {
        ctx->result.size = old;
        return -1;
    }
    memmove(ctx->result.data, ctx->result.data + old, ctx->result.size - old);
    ctx->result.size -= old;
    ctx->packer_used = false;
    return 0;
}

int qj_return_mp(qj_ctx *ctx, const void *mp, size_t len)
{
    char err[200];
    if (!mp || len == 0 || mpck_check(mp, len, &mpck_default_limits, err, sizeof err) != 0)
        return -1;
    qj_return_nil(ctx);
    return msgpack_sbuffer_write(&ctx->result, mp, len) == 0 ? 0 : -1;
}

msgpack_packer *qj_return_packer(qj_ctx *ctx)
{
    qj_return_nil(ctx);
    ctx->packer_used = true;
    return &ctx->packer;
}

int qj_fail(qj_ctx *ctx, const char *fmt, ...)
{
    ctx->failed = true;
    if (!ctx->error && !(ctx->error = malloc(ERROR_BUF)))
        return -1;   /* the job still fails, with a generic message (s_error) */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, ERROR_BUF, fmt, ap);
    va_end(ap);
    s_utf8_clean(ctx->error, QJ_MAX_ERROR);
    return -1;
}

/* ----------------------------------------------------------- cooperation */

int qj_yield(qj_ctx *ctx)
{
    if (s_stopping(ctx))
        return -1;
    if (sched_current())
        sched_pass();
    return s_stopping(ctx) ? -1 : 0;
}

int qj_sleep(qj_ctx *ctx, long ms)
{
    if (ms <= 0)
        return qj_yield(ctx);
    if (s_stopping(ctx))
        return -1;
    sched_t *s = sched_current();
    if (!s) {
        /* Not on a scheduler (a tool or a test calling the task directly). */
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        return s_stopping(ctx) ? -1 : 0;
    }
    /* sched_sleep returns early when the coroutine is woken; only a stop
     * request ends the sleep early, any other wake-up sleeps on. */
    uint64_t deadline = sched_now_ms(s) + (uint64_t)ms;
    for (;;) {
        uint64_t now = sched_now_ms(s);
        if (now >= deadline)
            return 0;
        sched_sleep((long)(deadline - now));
        if (s_stopping(ctx))
            return -1;
    }
}

bool qj_cancelled(qj_ctx *ctx) { return s_stopping(ctx); }

int qj_progress(qj_ctx *ctx, uint64_t done, uint64_t total, const char *note)
{
    if (s_stopping(ctx))
        return -1;
    if (!ctx->host.progress)
        return 0;
    char buf[QJ_MAX_NOTE + 4];
    if (note) {
        size_t n = strnlen(note, sizeof buf - 1);
        memcpy(buf, note, n);
        buf[n] = '\0';
        s_utf8_clean(buf, QJ_MAX_NOTE);
    }
    return ctx->host.progress(ctx->host.arg, ctx, done, total, note ? buf : NULL);
}
