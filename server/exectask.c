/* exectask.c -- the exec task (exectask.h). */
#include "exectask.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXEC_MAX_ARGV 1024                 /* words of a command line */
#define EXEC_TIMEOUT_MS 60000              /* default run time */
#define EXEC_MAX_TIMEOUT_MS 86400000       /* a day */
#define EXEC_OUTPUT (64 * 1024)            /* default bytes kept of stdout, of stderr */
/* Both outputs and the map around them must fit in a result (1 MiB). */
#define EXEC_MAX_OUTPUT (500 * 1024)
#define EXEC_READ_TURN (1024 * 1024)       /* bytes read per pipe before yielding */
#define EXEC_NAP_MAX_MS 20                 /* longest sleep between looks at the child */
#define EXEC_LINGER_MS 1000                /* reading after exit, if the pipes stay open */

extern char **environ;

/* One running command. */
typedef struct run {
    pid_t pid;
    int fd[2];             /* read ends of stdout, stderr; -1 at EOF */
    char *buf[2];          /* what was kept of each */
    size_t len[2], cap;    /* cap: --max_output */
    bool truncated, timed_out, reaped;
    int status;            /* from waitpid, once reaped */
} run_t;

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const msgpack_object *s_get(const msgpack_object *args, const char *key)
{
    if (args->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < args->via.map.size; i++) {
        const msgpack_object_kv *kv = &args->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == n &&
            memcmp(kv->key.via.str.ptr, key, n) == 0)
            return &kv->val;
    }
    return NULL;
}

static void s_free_argv(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

/* argv from the arguments (NULL-terminated, caller frees), or NULL with
 * a message. */
static char **s_argv(const msgpack_object *args, char *err, size_t errlen)
{
    const msgpack_object *a = s_get(args, "argv");
    if (!a || a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size == 0 ||
        a->via.array.size > EXEC_MAX_ARGV) {
        snprintf(err, errlen, "exec takes {\"argv\": [\"command\", \"arg\", ...]} with 1 to %d "
                 "strings (and optionally \"timeout_ms\", \"max_output\")", EXEC_MAX_ARGV);
        return NULL;
    }
    uint32_t n = a->via.array.size;
    char **argv = calloc(n + 1, sizeof *argv);
    for (uint32_t i = 0; argv && i < n; i++) {
        const msgpack_object *w = &a->via.array.ptr[i];
        if (w->type != MSGPACK_OBJECT_STR || memchr(w->via.str.ptr, 0, w->via.str.size) ||
            (i == 0 && w->via.str.size == 0)) {
            snprintf(err, errlen, "exec: argv[%u] is not a string (or holds a NUL byte)", i);
            s_free_argv(argv);
            return NULL;
        }
        if (!(argv[i] = strndup(w->via.str.ptr, w->via.str.size))) {
            s_free_argv(argv);
            argv = NULL;
        }
    }
    if (!argv)
        snprintf(err, errlen, "exec: out of memory");
    return argv;
}

/* An unsigned argument in [1, max], else dflt; -1 if present but bad. */
static int64_t s_uint_arg(const msgpack_object *args, const char *key, int64_t dflt,
                          int64_t max)
{
    const msgpack_object *v = s_get(args, key);
    if (!v || v->type == MSGPACK_OBJECT_NIL)
        return dflt;
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 < 1 || v->via.u64 > (uint64_t)max)
        return -1;
    return (int64_t)v->via.u64;
}

/* Start argv in a process group of its own, stdout and stderr into
 * pipes.  Returns 0, or -1 with a message. */
static int s_spawn(run_t *r, char **argv, char *err, size_t errlen)
{
    int out[2] = {-1, -1}, errp[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "exec: cannot make pipes: %s", strerror(errno));
        for (int i = 0; i < 2; i++)
            if (out[i] >= 0)
                close(out[i]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    posix_spawnattr_init(&at);
    /* Its own group (so that a timeout kills what it started too), and
     * none of the worker's signal settings. */
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                  POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    int rc = posix_spawnp(&r->pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(out[1]);
    close(errp[1]);
    r->fd[0] = out[0];
    r->fd[1] = errp[0];
    if (rc != 0) {
        snprintf(err, errlen, "exec: cannot run '%s': %s", argv[0], strerror(rc));
        return -1;
    }
    fcntl(r->fd[0], F_SETFL, O_NONBLOCK);
    fcntl(r->fd[1], F_SETFL, O_NONBLOCK);
    return 0;
}

/* Read what pipe i has (up to EXEC_READ_TURN bytes), keeping up to cap.
 * Returns true if anything happened (bytes or end of file). */
static bool s_drain(run_t *r, int i)
{
    char chunk[16384];
    size_t turn = 0;
    bool moved = false;
    while (r->fd[i] >= 0 && turn < EXEC_READ_TURN) {
        ssize_t n = read(r->fd[i], chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        moved = true;
        if (n <= 0) {   /* end of file, or an error that ends it */
            close(r->fd[i]);
            r->fd[i] = -1;
            break;
        }
        turn += (size_t)n;
        size_t keep = r->cap - r->len[i] < (size_t)n ? r->cap - r->len[i] : (size_t)n;
        memcpy(r->buf[i] + r->len[i], chunk, keep);
        r->len[i] += keep;
        r->truncated |= keep < (size_t)n;
    }
    return moved;
}

static void s_kill(run_t *r)
{
    kill(-r->pid, SIGKILL);
}

static void s_close(run_t *r)
{
    for (int i = 0; i < 2; i++)
        if (r->fd[i] >= 0) {
            close(r->fd[i]);
            r->fd[i] = -1;
        }
    if (r->pid > 0 && !r->reaped) {
        s_kill(r);
        while (waitpid(r->pid, &r->status, 0) < 0 && errno == EINTR)
            ;
        r->reaped = true;
    }
    free(r->buf[0]);
    free(r->buf[1]);
}

/* Turn bytes that are not UTF-8 into '?', in place (same length). */
static void s_utf8(char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = (u[i + k] & 0xc0) == 0x80;
        if (ok && len > 1) {
            uint32_t cp = c & (0xff >> (len + 1));
            for (size_t k = 1; k < len; k++)
                cp = cp << 6 | (u[i + k] & 0x3f);
            static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
            ok = cp >= least[len] && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
        }
        if (!ok) {
            s[i++] = '?';
            continue;
        }
        i += len;
    }
}

static int s_result(qj_ctx *ctx, run_t *r)
{
    msgpack_packer *pk = qj_return_packer(ctx);
    msgpack_pack_map(pk, 6);
    msgpack_pack_str_with_body(pk, "exit", 4);
    if (WIFEXITED(r->status))
        msgpack_pack_int(pk, WEXITSTATUS(r->status));
    else
        msgpack_pack_nil(pk);
    msgpack_pack_str_with_body(pk, "signal", 6);
    if (WIFSIGNALED(r->status))
        msgpack_pack_int(pk, WTERMSIG(r->status));
    else
        msgpack_pack_nil(pk);
    static const char *const names[2] = {"stdout", "stderr"};
    for (int i = 0; i < 2; i++) {
        s_utf8(r->buf[i], r->len[i]);
        msgpack_pack_str_with_body(pk, names[i], 6);
        msgpack_pack_str_with_body(pk, r->buf[i], r->len[i]);
    }
    msgpack_pack_str_with_body(pk, "truncated", 9);
    r->truncated ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    msgpack_pack_str_with_body(pk, "timed_out", 9);
    r->timed_out ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    return 0;
}

static int s_exec(qj_ctx *ctx)
{
    const msgpack_object *args = qj_args(ctx);
    int64_t timeout = s_uint_arg(args, "timeout_ms", EXEC_TIMEOUT_MS, EXEC_MAX_TIMEOUT_MS);
    int64_t cap = s_uint_arg(args, "max_output", EXEC_OUTPUT, EXEC_MAX_OUTPUT);
    if (timeout < 0 || cap < 0)
        return qj_fail(ctx, "exec: timeout_ms is 1..%d ms and max_output 1..%d bytes",
                       EXEC_MAX_TIMEOUT_MS, EXEC_MAX_OUTPUT);
    char err[512];
    char **argv = s_argv(args, err, sizeof err);
    if (!argv)
        return qj_fail(ctx, "%s", err);
    run_t r = {.pid = -1, .fd = {-1, -1}, .cap = (size_t)cap};
    r.buf[0] = malloc(r.cap);
    r.buf[1] = malloc(r.cap);
    int rc = !r.buf[0] || !r.buf[1] ? (snprintf(err, sizeof err, "exec: out of memory"), -1)
                                    : s_spawn(&r, argv, err, sizeof err);
    s_free_argv(argv);
    if (rc != 0) {
        s_close(&r);
        return qj_fail(ctx, "%s", err);
    }
    uint64_t deadline = s_now_ms() + (uint64_t)timeout, linger = 0;
    long nap = 1;
    for (;;) {
        bool moved = s_drain(&r, 0);
        moved |= s_drain(&r, 1);
        uint64_t now = s_now_ms();
        if (!r.reaped && waitpid(r.pid, &r.status, WNOHANG) == r.pid) {
            r.reaped = true;
            s_kill(&r);   /* what it left running in its group */
            linger = now + EXEC_LINGER_MS;
        }
        if (r.reaped && ((r.fd[0] < 0 && r.fd[1] < 0) || now >= linger))
            break;
        if (!r.reaped && !r.timed_out && now >= deadline) {
            r.timed_out = true;
            s_kill(&r);
        }
        if (qj_sleep(ctx, moved ? 0 : nap) != 0) {   /* cancelled, or the job timed out */
            s_close(&r);
            return -1;
        }
        nap = moved ? 1 : (nap * 2 > EXEC_NAP_MAX_MS ? EXEC_NAP_MAX_MS : nap * 2);
    }
    rc = s_result(ctx, &r);
    s_close(&r);
    return rc;
}

int exectask_register(qj_registry *reg)
{
    return qj_register(reg, EXECTASK_NAME, s_exec,
                       "{\"argv\": [...], \"timeout_ms\": N, \"max_output\": B}: runs a "
                       "command (no shell), returns exit, signal, stdout, stderr");
}
