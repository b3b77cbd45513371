/* wproc.c -- one worker process (wproc.h): the connection and the loop;
 * the jobs themselves and their credit are wjobs.c's. */
#include "wproc.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "clock.h"
#include "coro.h"
#include "embed.h"
#include "log.h"
#include "msg.h"
#include "wjobs.h"

#define HB_DEFAULT_MS 1000      /* until WELCOME says otherwise */
#define LIVE_DEFAULT 3
#define RSS_CHECK_MS 100        /* max_rss is checked at most this often */
#define RECV_BURST 256          /* messages read per turn before running jobs */
#define BYE_LINGER_MS 2000      /* time the last messages get to leave */

struct wproc {
    wproc_opts_t o;
    void *zctx;
    void *sock;
    msg_reader_t *reader;
    msgpack_sbuffer out;       /* encode buffer */
    qj_client *client;         /* embedded: the tasks' sub-jobs */
    wjobs_t *jobs;
    int sig_r, sig_w;          /* signal pipe */

    uint32_t hb_ms, live;      /* from WELCOME */
    uint64_t last_in, last_out;/* mono ms of the last message each way */
    bool hello_sent;           /* HELLO sent, WELCOME not yet */
    uint64_t timedout;         /* job the previous process was killed for, told
                                  in HELLO until WELCOME; 0 = none */
    char replaces[QJ_MAX_NAME + 1]; /* that process's worker name */

    bool draining;
    bool quit;                 /* leave the loop now */
    int exit_status;
    uint64_t drain_deadline;   /* mono ms */
    uint64_t next_rss_check;   /* mono ms */
    uint64_t rss_checked_at;   /* jobs finished at the last check */
};

/* Write end of the signal pipe of the wproc running in this process. */
static int s_sig_w = -1;

/* ------------------------------------------------------------ messaging */

static int s_send_frame(void *arg, const void *frame, size_t len)
{
    wproc_t *w = arg;
    /* SNDHWM is unlimited, so this queues rather than blocks while the
     * broker is away. */
    if (zmq_send(w->sock, frame, len, 0) < 0) {
        log_warn("cannot send to %s: %s", w->o.broker, zmq_strerror(errno));
        return -1;
    }
    w->last_out = clock_mono_ms();
    return 0;
}

static int s_send(void *arg, const msg_t *m)
{
    wproc_t *w = arg;
    char err[256];
    if (msg_encode(&w->out, m, err, sizeof err) != 0) {
        log_error("cannot encode %s: %s", msg_cmd_name(m->cmd), err);
        return -1;
    }
    return s_send_frame(w, w->out.data, w->out.size);
}

/* The embedded client's hooks, called from task coroutines. */
static uint64_t s_current_job(void *arg) { return wjobs_current(((wproc_t *)arg)->jobs); }
static void s_block(void *arg) { wjobs_block(((wproc_t *)arg)->jobs); }
static void s_unblock(void *arg) { wjobs_unblock(((wproc_t *)arg)->jobs); }
static bool s_stopping(void *arg) { return wjobs_stopping(((wproc_t *)arg)->jobs); }

/* ----------------------------------------------------------- connection */

/* Introduce ourselves (again).  Jobs not started go back to the broker,
 * which requeues what a forgotten connection held; running ones go on,
 * and the credit granted leaves room for them. */
static void s_hello(wproc_t *w)
{
    uint32_t credit = wjobs_hello_credit(w->jobs);
    msg_bytes_t qs[QJ_MAX_QUEUES];
    for (size_t i = 0; i < w->o.nqueues && i < QJ_MAX_QUEUES; i++)
        qs[i] = (msg_bytes_t){w->o.queues[i], (uint32_t)strlen(w->o.queues[i])};
    msg_t m = {.cmd = MSG_HELLO, .role = MSG_ROLE_WORKER,
               .name = {w->o.name, (uint32_t)strlen(w->o.name)},
               .queues = w->o.nqueues ? qs : NULL, .nqueues = (uint32_t)w->o.nqueues,
               .credit = credit};
    if (w->timedout) {
        m.replaces = (msg_bytes_t){w->replaces, (uint32_t)strlen(w->replaces)};
        m.ids = &w->timedout;
        m.nids = 1;
    }
    s_send(w, &m);
    if (w->draining) {
        msg_t bye = {.cmd = MSG_BYE, .drain = true};
        s_send(w, &bye);
    }
    w->hello_sent = true;
    w->last_in = clock_mono_ms();
}

static int s_connect(wproc_t *w, char *err, size_t errlen)
{
    void *s = zmq_socket(w->zctx, ZMQ_DEALER);
    if (!s) {
        snprintf(err, errlen, "cannot create a socket: %s", zmq_strerror(errno));
        return -1;
    }
    int64_t maxmsg = QJ_MAX_MSG;
    int zero = 0, ivl_max = 2000;
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    /* Unlimited send queue: what we queue is bounded by the jobs we hold,
     * and a full queue would make results fail while the broker is away. */
    zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    if (w->o.curve && keys_client_apply(s, w->o.curve, err, errlen) != 0) {
        zmq_close(s);
        return -1;
    }
    if (zmq_connect(s, w->o.broker) != 0) {
        snprintf(err, errlen, "cannot connect to '%s': %s (an endpoint looks like "
                 "tcp://127.0.0.1:5555 or ipc:///path/to/socket)", w->o.broker,
                 zmq_strerror(errno));
        zmq_close(s);
        return -1;
    }
    w->sock = s;
    w->last_out = clock_mono_ms();
    s_hello(w);
    return 0;
}

static void s_reconnect(wproc_t *w, uint64_t silent_ms)
{
    log_warn("no word from the broker at %s for %" PRIu64 " ms: reconnecting%s", w->o.broker,
             silent_ms, w->o.curve ? " (with CURVE, check that the broker's --workers-allow "
             "has this worker's public key, and --broker-key is the broker's)" : "");
    zmq_close(w->sock);
    w->sock = NULL;
    char err[300];
    if (s_connect(w, err, sizeof err) != 0) {
        log_error("%s", err);
        w->quit = true;
        w->exit_status = WPROC_EXIT_FAIL;
    }
}

static void s_drain(wproc_t *w, int status, const char *why)
{
    w->exit_status = status;
    if (w->draining)
        return;
    w->draining = true;
    wjobs_set_draining(w->jobs);
    w->drain_deadline = clock_mono_ms() + w->o.drain_ms;
    log_info("%s: draining (%zu jobs held; waiting up to %" PRIu32 " ms for them)", why,
             wjobs_held(w->jobs), w->o.drain_ms);
    msg_t m = {.cmd = MSG_BYE, .drain = true};
    s_send(w, &m);
}

/* ------------------------------------------------------------- messages */

static void s_on_message(wproc_t *w, const msg_t *m)
{
    switch (m->cmd) {
    case MSG_WELCOME:
        w->hb_ms = m->heartbeat_ms ? m->heartbeat_ms : HB_DEFAULT_MS;
        w->live = m->liveness ? m->liveness : LIVE_DEFAULT;
        if (w->hello_sent)
            log_info("worker %s serving %s (heartbeat %" PRIu32 " ms, liveness %" PRIu32 ")",
                     w->o.name, w->o.broker, w->hb_ms, w->live);
        w->hello_sent = false;
        w->timedout = 0;   /* the broker has ended it */
        qj_client_feed(w->client, m);   /* it resends what a reconnect lost */
        break;
    case MSG_JOBS:
        for (uint32_t i = 0; i < m->njobs && !w->quit; i++)
            if (wjobs_take(w->jobs, &m->jobs[i]) != 0) {
                /* Holding a job we cannot run would keep it until we die;
                 * leaving now makes the broker requeue it at once. */
                log_error("out of memory for job %" PRIu64 ": leaving so that the broker "
                          "requeues it", m->jobs[i].id);
                w->quit = true;
                w->exit_status = WPROC_EXIT_FAIL;
            }
        break;
    case MSG_CANCEL:
        for (uint32_t i = 0; i < m->nids; i++)
            wjobs_cancel(w->jobs, m->ids[i]);
        break;
    case MSG_ERROR:
        if (m->code == QJ_E_DENIED && m->about == MSG_HELLO) {
            /* Our key may not work here: trying again will not help. */
            log_error("the broker at %s refused this worker: %.*s", w->o.broker,
                      (int)m->text.len, m->text.ptr ? m->text.ptr : "denied");
            w->quit = true;
            w->exit_status = WPROC_EXIT_CONFIG;
            break;
        }
        if (m->code == QJ_E_HELLO) {
            /* The broker forgot this connection (it restarted, or thought
             * us dead).  Errors for what was already in flight follow:
             * one HELLO answers them all. */
            if (!w->hello_sent) {
                log_warn("the broker at %s does not know this worker (restarted?): "
                         "saying HELLO again", w->o.broker);
                s_hello(w);
            }
            break;
        }
        log_warn("the broker refused %s: %s: %.*s", msg_cmd_name(m->about),
                 msg_err_name(m->code), (int)m->text.len, m->text.ptr ? m->text.ptr : "");
        if (m->rid || m->about == MSG_SUBMIT || m->about == MSG_AWAIT)
            qj_client_feed(w->client, m);
        break;
    case MSG_ACCEPTED:
    case MSG_RESULTS:
    case MSG_PROGRESS:
    case MSG_CANCEL_REP:
    case MSG_STATUS_REP:
    case MSG_STATS_REP:
        qj_client_feed(w->client, m);   /* about sub-jobs */
        break;
    case MSG_HEARTBEAT:
        break;
    default:
        log_debug("ignoring %s from the broker", msg_cmd_name(m->cmd));
        break;
    }
}

static void s_recv(wproc_t *w)
{
    for (int i = 0; i < RECV_BURST && !w->quit; i++) {
        zmq_msg_t f;
        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, w->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f);
            return;
        }
        bool more = zmq_msg_more(&f);
        while (more) {   /* protocol messages are one frame: drop the rest */
            zmq_msg_t x;
            zmq_msg_init(&x);
            zmq_msg_recv(&x, w->sock, 0);
            more = zmq_msg_more(&x);
            zmq_msg_close(&x);
        }
        w->last_in = clock_mono_ms();
        msg_t m;
        char err[256];
        if (msg_decode(w->reader, zmq_msg_data(&f), zmq_msg_size(&f), &m, err, sizeof err) ==
            QJ_E_OK)
            s_on_message(w, &m);
        else
            log_warn("bad message from the broker dropped: %s", err);
        zmq_msg_close(&f);
    }
}

/* ------------------------------------------------------------------ loop */

static uint64_t s_rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static long s_min_timeout(long a, long b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* Heartbeats, liveness, job deadlines, drain, recycling.  Returns the ms
 * until the next of them is due. */
static long s_timers(wproc_t *w)
{
    uint64_t now = clock_mono_ms();
    uint64_t dead_after = (uint64_t)w->hb_ms * w->live;
    if (now - w->last_in >= dead_after)
        s_reconnect(w, now - w->last_in);
    if (w->quit)
        return 0;
    if (now - w->last_out >= w->hb_ms) {
        msg_t m = {.cmd = MSG_HEARTBEAT};
        s_send(w, &m);
    }
    long t = (long)(w->last_in + dead_after - now);
    t = s_min_timeout(t, (long)(w->last_out + w->hb_ms - now));
    t = s_min_timeout(t, wjobs_timers(w->jobs, now));

    uint64_t done = wjobs_finished(w->jobs);
    if (!w->draining && w->o.max_jobs && done >= w->o.max_jobs) {
        char why[128];
        snprintf(why, sizeof why, "%" PRIu64 " jobs done (--max-jobs-per-child)", done);
        s_drain(w, WPROC_EXIT_RECYCLE, why);
    }
    /* Memory is checked after jobs finish (a job is what makes it grow),
     * so that even a process over the limit from the start does a job. */
    bool rss_due = w->o.max_rss && !w->draining && done > w->rss_checked_at;
    if (rss_due && now >= w->next_rss_check) {
        rss_due = false;
        w->rss_checked_at = done;
        uint64_t rss = s_rss_bytes();
        if (rss > w->o.max_rss) {
            char why[128];
            snprintf(why, sizeof why, "memory %" PRIu64 " MB over --max-rss %" PRIu64 " MB",
                     rss >> 20, w->o.max_rss >> 20);
            s_drain(w, WPROC_EXIT_RECYCLE, why);
        }
        w->next_rss_check = now + RSS_CHECK_MS;
    }
    if (rss_due)
        t = s_min_timeout(t, (long)(w->next_rss_check - now));
    if (w->draining) {
        if (now >= w->drain_deadline) {
            log_warn("drain timeout: leaving with %zu jobs unfinished (the broker requeues "
                     "them)", wjobs_held(w->jobs));
            w->quit = true;
            return 0;
        }
        t = s_min_timeout(t, (long)(w->drain_deadline - now));
    }
    return t;
}

static void s_on_signal(int sig)
{
    int saved = errno;
    unsigned char c = (unsigned char)sig;
    if (s_sig_w >= 0 && write(s_sig_w, &c, 1) < 0) {
        /* the pipe is full: a signal is already waiting to be read */
    }
    errno = saved;
}

static void s_signals(wproc_t *w)
{
    unsigned char buf[32];
    ssize_t n;
    while ((n = read(w->sig_r, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++) {
            if (!w->draining || w->exit_status == WPROC_EXIT_RECYCLE) {
                s_drain(w, WPROC_EXIT_OK, "SIGTERM");
            } else {
                log_warn("second SIGTERM: leaving now with %zu jobs unfinished (the broker "
                         "requeues them)", wjobs_held(w->jobs));
                w->quit = true;
            }
        }
}

int wproc_run(wproc_t *w)
{
    struct sigaction sa = {0}, old;
    s_sig_w = w->sig_w;
    sa.sa_handler = s_on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, &old);

    char err[300];
    if (s_connect(w, err, sizeof err) != 0) {
        log_error("%s", err);
        sigaction(SIGTERM, &old, NULL);
        s_sig_w = -1;
        return WPROC_EXIT_CONFIG;
    }
    if (w->o.prefetch_max > w->o.prefetch)
        log_debug("worker %s: %u coroutines + %u-%u prefetch (adaptive), stacks of %zu KiB",
                  w->o.name, w->o.coros, w->o.prefetch, w->o.prefetch_max, w->o.stack_size >> 10);
    else
        log_debug("worker %s: %u coroutines + %u prefetch, stacks of %zu KiB", w->o.name,
                  w->o.coros, w->o.prefetch, w->o.stack_size >> 10);
    while (!w->quit) {
        wjobs_run(w->jobs);
        wjobs_flush_due(w->jobs, s_send, w);
        if (w->draining && wjobs_held(w->jobs) == 0)
            break;
        long t = s_timers(w);
        if (w->quit)
            break;
        if (w->draining && wjobs_held(w->jobs) == 0)
            continue;   /* the drain that just began has nothing to wait for */
        zmq_pollitem_t items[2] = {{w->sock, 0, ZMQ_POLLIN, 0}, {NULL, w->sig_r, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, t) < 0 && errno != EINTR) {
            log_error("zmq_poll: %s", zmq_strerror(errno));
            w->exit_status = WPROC_EXIT_FAIL;
            break;
        }
        if (items[1].revents)
            s_signals(w);
        if (items[0].revents)
            s_recv(w);
    }
    wjobs_flush(w->jobs, s_send, w);
    msg_t bye = {.cmd = MSG_BYE};
    s_send(w, &bye);
    int linger = BYE_LINGER_MS;
    zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
    log_info("worker %s leaving after %" PRIu64 " jobs", w->o.name, wjobs_finished(w->jobs));
    sigaction(SIGTERM, &old, NULL);
    s_sig_w = -1;
    return w->exit_status;
}

/* ------------------------------------------------------------ lifecycle */

wproc_t *wproc_new(const wproc_opts_t *o, char *err, size_t errlen)
{
    assert(o && o->broker && o->name && o->reg && o->coros >= 1);
    wproc_t *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->o = *o;
    w->hb_ms = HB_DEFAULT_MS;
    w->live = LIVE_DEFAULT;
    w->sig_r = w->sig_w = -1;
    msgpack_sbuffer_init(&w->out);
    qj_embed_ops ops = {s_send_frame, s_current_job, s_block, s_unblock, s_stopping, w};
    w->reader = msg_reader_new();
    w->client = qj_client_new_embedded(&ops);
    if (o->watch) {
        /* Take over the report of the process this one replaces, then
         * leave our own name for the next. */
        w->timedout = atomic_exchange(&o->watch->killed_id, 0);
        if (w->timedout) {
            memcpy(w->replaces, o->watch->name, sizeof w->replaces);
            w->replaces[QJ_MAX_NAME] = '\0';
            log_warn("worker process %s replaces %s, killed for job %" PRIu64 " (past its "
                     "timeout)", o->name, w->replaces, w->timedout);
        }
        snprintf(o->watch->name, sizeof o->watch->name, "%s", o->name);
    }
    wjobs_opts_t jo = {o->coros, o->prefetch, o->stack_size, o->name, o->reg, w->client,
                       o->prefetch_max, o->max_jobs, o->watch};
    w->jobs = w->client ? wjobs_new(&jo) : NULL;
    if (!w->reader || !w->client || !w->jobs) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "cannot make a pipe: %s", strerror(errno));
        goto fail;
    }
    w->sig_r = fds[0];
    w->sig_w = fds[1];
    if (!(w->zctx = zmq_ctx_new())) {
        snprintf(err, errlen, "cannot create a ZeroMQ context: %s", zmq_strerror(errno));
        goto fail;
    }
    if (coro_install_overflow_handler() != 0)
        log_warn("cannot install the coroutine stack overflow handler: an overflow will "
                 "crash without a message");
    return w;
fail:
    wproc_destroy(&w);
    return NULL;
}

void wproc_destroy(wproc_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    wproc_t *w = *self_p;
    /* Jobs first: their abandoned coroutines may hold the client's handles. */
    wjobs_destroy(&w->jobs);
    qj_client_destroy(&w->client);
    msg_reader_destroy(&w->reader);
    msgpack_sbuffer_destroy(&w->out);
    if (w->sock)
        zmq_close(w->sock);
    if (w->zctx)
        zmq_ctx_term(w->zctx);
    if (w->sig_r >= 0) {
        close(w->sig_r);
        close(w->sig_w);
    }
    free(w);
    *self_p = NULL;
}
