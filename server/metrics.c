/* metrics.c -- /metrics over libmicrohttpd, driven by the broker's poll (metrics.h). */
#include "metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "endpoint.h"
#include "log.h"

#define MAX_CONNECTIONS 32       /* open at once; more wait in the listen backlog */
#define IDLE_TIMEOUT_S 10        /* a connection silent this long is closed */
#define CONNECTION_MEMORY 32768  /* bytes for one connection's request head */
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics {
    struct MHD_Daemon *d;
    metrics_collect_fn collect;
    metrics_release_fn release;
    void *ctx;
    int fd;                      /* MHD's epoll fd */
    uint64_t due_ms;             /* MHD_run by then, readable or not (monotonic) */
    char last_log[192];          /* libmicrohttpd's last message */
    char url[128];
};

/* ---- rendering */

enum { UNIT, MILLI, MICRO };   /* how a figure maps to the metric's unit */

/* A family of one figure: where it is in its struct, what it means. */
typedef struct family {
    const char *name, *type, *help;
    size_t off;
    int scale;
} family_t;

#define G(n, t, f, s, h) {n, t, h, offsetof(msg_stats_t, f), s}
static const family_t s_global[] = {
    G("qjob_uptime_seconds", "gauge", uptime_ms, MILLI, "Time since the broker started."),
    G("qjob_clients", "gauge", clients, UNIT, "Client connections."),
    G("qjob_workers", "gauge", workers, UNIT, "Worker connections."),
    G("qjob_worker_slots", "gauge", slots, UNIT,
      "Slots the connected workers grant in total: jobs they run at once."),
    G("qjob_worker_slots_busy", "gauge", busy, UNIT, "Slots in use: jobs leased to workers now."),
    G("qjob_jobs_lost_total", "counter", lost, UNIT,
      "Jobs finished as lost: their workers died under them on every attempt."),
    G("qjob_jobs_cancelled_total", "counter", cancelled, UNIT, "Jobs finished as cancelled."),
    G("qjob_results_kept", "gauge", results_kept, UNIT, "Finished jobs held for lookup."),
    G("qjob_journal_written_bytes_total", "counter", journal_bytes, UNIT,
      "Bytes of records written to the journal."),
    G("qjob_journal_disk_bytes", "gauge", journal_disk, UNIT,
      "Bytes of the journal's files on disk (segments and snapshot)."),
    G("qjob_journal_fsyncs_total", "counter", fsyncs, UNIT, "fdatasync calls on the journal."),
    G("qjob_journal_fsync_seconds_total", "counter", fsync_us, MICRO,
      "Time spent in fdatasync calls on the journal."),
    G("qjob_rejected_connections_total", "counter", rejected, UNIT,
      "Connections refused by authentication (CURVE keys not allowed, borrowed routing ids)."),
    G("qjob_resident_memory_bytes", "gauge", rss_bytes, UNIT, "The broker's resident memory."),
};
#undef G

#define Q(n, t, f, s, h) {n, t, h, offsetof(msg_qstat_t, f), s}
static const family_t s_queue[] = {
    Q("qjob_jobs_submitted_total", "counter", submitted, UNIT, "Jobs accepted, by queue."),
    Q("qjob_jobs_done_total", "counter", done, UNIT, "Jobs finished ok, by queue."),
    Q("qjob_jobs_failed_total", "counter", failed, UNIT,
      "Jobs finished failed (error, timeout or lost) after their retries, by queue."),
    Q("qjob_jobs_retried_total", "counter", retried, UNIT,
      "Failed attempts given another try, by queue."),
    Q("qjob_queue_ready", "gauge", depth, UNIT, "Jobs ready, waiting for a worker."),
    Q("qjob_queue_delayed", "gauge", delayed, UNIT,
      "Jobs held until their time (submitted with at, or waiting to retry)."),
    Q("qjob_queue_running", "gauge", running, UNIT, "Jobs leased to workers."),
    Q("qjob_queue_workers", "gauge", workers, UNIT, "Workers serving the queue."),
    Q("qjob_queue_dead", "gauge", dead, UNIT, "Jobs in the dead-letter list."),
    Q("qjob_job_compute_seconds_total", "counter", compute_us, MICRO,
      "Run time of finished jobs on their workers, by queue."),
    Q("qjob_job_overhead_seconds_total", "counter", comm_us, MICRO,
      "Life of finished jobs minus their run time (queueing, transport), by queue."),
};
#undef Q

static void s_value(FILE *f, uint64_t v, int scale)
{
    if (scale == MILLI)
        fprintf(f, "%llu.%03llu\n", (unsigned long long)(v / 1000),
                (unsigned long long)(v % 1000));
    else if (scale == MICRO)
        fprintf(f, "%llu.%06llu\n", (unsigned long long)(v / 1000000),
                (unsigned long long)(v % 1000000));
    else
        fprintf(f, "%llu\n", (unsigned long long)v);
}

/* A label value, escaped as the text format wants: \\, \" and \n. */
static void s_label(FILE *f, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\n') {
            fputs("\\n", f);
            continue;
        }
        if (p[i] == '\\' || p[i] == '"')
            fputc('\\', f);
        fputc(p[i], f);
    }
}

static void s_head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void s_series(FILE *f, const char *name, const char *suffix, const msg_qstat_t *q)
{
    fprintf(f, "%s%s{queue=\"", name, suffix);
    s_label(f, q->name.ptr, q->name.len);
    fputc('"', f);
}

/* A bound in µs as seconds, without trailing zeros ("0.0001", "2.5", "60"). */
static void s_seconds(FILE *f, uint64_t us)
{
    char frac[8];
    snprintf(frac, sizeof frac, "%06llu", (unsigned long long)(us % 1000000));
    size_t n = strlen(frac);
    while (n && frac[n - 1] == '0')
        frac[--n] = '\0';
    fprintf(f, "%llu%s%s", (unsigned long long)(us / 1000000), n ? "." : "", frac);
}

static void s_histogram(FILE *f, const msg_stats_t *st)
{
    const char *name = "qjob_dispatch_wait_seconds";
    s_head(f, name, "histogram",
           "Time jobs were ready in their queue before a worker got them, by queue.");
    for (uint32_t i = 0; i < st->nqueues; i++) {
        const msg_qstat_t *q = &st->queues[i];
        if (q->nwait != st->nwait_le + 1)
            continue;   /* (a peer's STATS_REP without a histogram) */
        uint64_t cum = 0;
        for (uint32_t k = 0; k <= st->nwait_le; k++) {
            cum += q->wait[k];
            s_series(f, name, "_bucket", q);
            fputs(",le=\"", f);
            if (k < st->nwait_le)
                s_seconds(f, st->wait_le[k]);
            else
                fputs("+Inf", f);
            fprintf(f, "\"} %llu\n", (unsigned long long)cum);
        }
        s_series(f, name, "_sum", q);
        fputs("} ", f);
        s_value(f, q->wait_us, MICRO);
        s_series(f, name, "_count", q);
        fprintf(f, "} %llu\n", (unsigned long long)cum);
    }
}

/* The queue figures by SUBMIT size (msg_qstat_t.b_jobs): a series per
 * queue and size class that has jobs. */
static void s_by_submit(FILE *f, const msg_stats_t *st)
{
    static const struct {
        const char *name, *help;
        size_t off;               /* of the array in msg_qstat_t */
        int scale;
    } fams[] = {
        {"qjob_jobs_finished_by_submit_total",
         "Finished jobs (with run times), by queue and by the size of their SUBMIT.",
         offsetof(msg_qstat_t, b_jobs), UNIT},
        {"qjob_job_compute_by_submit_seconds_total",
         "Run time of those jobs on their workers, by queue and SUBMIT size.",
         offsetof(msg_qstat_t, b_compute_us), MICRO},
        {"qjob_job_overhead_by_submit_seconds_total",
         "Life of those jobs minus their run time, by queue and SUBMIT size.",
         offsetof(msg_qstat_t, b_comm_us), MICRO},
    };
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        s_head(f, fams[i].name, "counter", fams[i].help);
        for (uint32_t k = 0; k < st->nqueues; k++) {
            const msg_qstat_t *q = &st->queues[k];
            const uint64_t *v = *(const uint64_t *const *)(const void *)((const char *)q +
                                                                       fams[i].off);
            uint32_t n = q->nb_jobs;
            if (q->nb_comm_us != n || q->nb_compute_us != n)
                continue;   /* (a peer's STATS_REP with uneven arrays) */
            for (uint32_t c = 0; c < n; c++) {
                if (!q->b_jobs[c])
                    continue;
                char size[48];
                msg_batch_range(c, n, size, sizeof size);
                s_series(f, fams[i].name, "", q);
                fprintf(f, ",submit=\"%s\"} ", size);
                s_value(f, v[c], fams[i].scale);
            }
        }
    }
}

static void s_bad_frames(FILE *f, const msg_stats_t *st)
{
    s_head(f, "qjob_bad_frames_total", "counter",
           "Frames refused by the decoder, by error code.");
    for (int i = 0; i < 16; i++) {
        /* Every code the codec names, always; index 0 counts the codes
         * past the table (broker.c), shown when it has any. */
        const char *code = i ? msg_err_name(i) : "other";
        if ((i && strcmp(code, "?") != 0) || st->bad_by_code[i])
            fprintf(f, "qjob_bad_frames_total{code=\"%s\"} %llu\n", code,
                    (unsigned long long)st->bad_by_code[i]);
    }
}

char *metrics_render(const msg_stats_t *st, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    for (size_t i = 0; i < sizeof s_global / sizeof s_global[0]; i++) {
        const family_t *fam = &s_global[i];
        s_head(f, fam->name, fam->type, fam->help);
        fprintf(f, "%s ", fam->name);
        s_value(f, *(const uint64_t *)(const void *)((const char *)st + fam->off), fam->scale);
    }
    s_bad_frames(f, st);
    for (size_t i = 0; i < sizeof s_queue / sizeof s_queue[0]; i++) {
        const family_t *fam = &s_queue[i];
        s_head(f, fam->name, fam->type, fam->help);
        for (uint32_t k = 0; k < st->nqueues; k++) {
            const msg_qstat_t *q = &st->queues[k];
            s_series(f, fam->name, "", q);
            fputs("} ", f);
            s_value(f, *(const uint64_t *)(const void *)((const char *)q + fam->off), fam->scale);
        }
    }
    s_histogram(f, st);
    s_by_submit(f, st);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---- HTTP */

static enum MHD_Result s_reply(struct MHD_Connection *conn, unsigned status, char *body,
                               size_t len, const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result s_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    char *body = strdup(text);
    return body ? s_reply(conn, status, body, strlen(body), "text/plain; charset=utf-8")
                : MHD_NO;
}

static enum MHD_Result s_answer(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version,
                                const char *upload_data, size_t *upload_data_size,
                                void **con_cls)
{
    (void)version, (void)upload_data, (void)con_cls;
    metrics_t *m = cls;
    *upload_data_size = 0;   /* a body is of no use: dropped */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return s_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD are served\n");
    if (strcmp(url, "/metrics") != 0)
        return s_text(conn, MHD_HTTP_NOT_FOUND, "not found: the figures are at /metrics\n");
    msg_stats_t st;
    if (m->collect(m->ctx, &st) != 0)
        return s_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "broker out of memory\n");
    size_t len = 0;
    char *text = metrics_render(&st, &len);
    m->release(m->ctx, &st);
    if (!text)
        return s_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "broker out of memory\n");
    return s_reply(conn, MHD_HTTP_OK, text, len, CONTENT_TYPE);
}

/* libmicrohttpd's own messages (a peer's bad request, a failed bind):
 * debug lines, and the last one kept to explain a failed start. */
static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    metrics_t *m = cls;
    vsnprintf(m->last_log, sizeof m->last_log, fmt, ap);
    m->last_log[strcspn(m->last_log, "\n")] = '\0';
    log_debug("metrics: %s", m->last_log);
}

/* Split "HOST:PORT" or "[V6]:PORT" and resolve it (numeric port, or a
 * host name).  Returns 0 with *ai (freeaddrinfo), or -1 with a message. */
static int s_resolve(const char *bind, struct addrinfo **ai, char *err, size_t errlen)
{
    const char *colon = strrchr(bind, ':'), *h = bind;
    char host[256];
    size_t hlen = colon ? (size_t)(colon - bind) : 0;
    if (hlen >= 2 && bind[0] == '[' && bind[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    size_t plen = colon ? strlen(colon + 1) : 0;
    if (!hlen || hlen >= sizeof host || !plen || plen > 5 ||
        strspn(colon + 1, "0123456789") != plen || atol(colon + 1) > 65535) {
        snprintf(err, errlen, "--metrics-bind takes HOST:PORT (as 127.0.0.1:9187, [::1]:9187 "
                 "or localhost:0 for a free port), not '%s'", bind);
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    int rc = getaddrinfo(host, colon + 1, &hints, ai);
    if (rc != 0) {
        snprintf(err, errlen, "--metrics-bind %s: cannot resolve %s: %s", bind, host,
                 gai_strerror(rc));
        return -1;
    }
    return 0;
}

metrics_t *metrics_new(const char *bind, bool open, metrics_collect_fn collect,
                       metrics_release_fn release, void *ctx, char *err, size_t errlen)
{
    struct addrinfo *ai;
    if (s_resolve(bind, &ai, err, errlen) != 0)
        return NULL;
    char host[INET6_ADDRSTRLEN];
    metrics_t *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof host, NULL, 0,
                    NI_NUMERICHOST) != 0) {
        snprintf(err, errlen, "--metrics-bind %s: not an address", bind);
        goto fail;
    }
    if (!open && !endpoint_loopback(host)) {
        snprintf(err, errlen, "refusing to serve metrics on %s (%s): the figures name your "
                 "queues and have no authentication; bind a loopback address (127.0.0.1, "
                 "::1), or turn CURVE on or add --insecure to bind it anyway", bind, host);
        goto fail;
    }
    *m = (metrics_t){.collect = collect, .release = release, .ctx = ctx, .fd = -1,
                     .due_ms = UINT64_MAX};
    bool v6 = ai->ai_family == AF_INET6;
    /* No thread (no MHD_USE_INTERNAL_POLLING_THREAD): the caller polls. */
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    /* (The port is in the address already: MHD names it in its messages.) */
    uint16_t want = ntohs(v6 ? ((struct sockaddr_in6 *)(void *)ai->ai_addr)->sin6_port
                             : ((struct sockaddr_in *)(void *)ai->ai_addr)->sin_port);
    m->d = MHD_start_daemon(flags, want, NULL, NULL, s_answer, m,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
                            MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, m,
                            MHD_OPTION_END);
    const union MHD_DaemonInfo *fd = NULL, *pi = NULL;
    if (m->d) {
        fd = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD);
        pi = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
    }
    if (!fd || !pi) {
        snprintf(err, errlen, "cannot serve metrics on %s: %s", bind,
                 m->last_log[0] ? m->last_log : "libmicrohttpd could not start");
        goto fail;
    }
    m->fd = fd->epoll_fd;
    bool brackets = strchr(host, ':') != NULL;
    snprintf(m->url, sizeof m->url, "http://%s%s%s:%u/metrics", brackets ? "[" : "", host,
             brackets ? "]" : "", (unsigned)pi->port);
    freeaddrinfo(ai);
    return m;
fail:
    freeaddrinfo(ai);
    metrics_destroy(&m);
    return NULL;
}

const char *metrics_url(const metrics_t *m)
{
    return m->url;
}

int metrics_fd(const metrics_t *m)
{
    return m->fd;
}

long metrics_timeout(metrics_t *m, long max_ms)
{
    MHD_UNSIGNED_LONG_LONG t;
    if (MHD_get_timeout(m->d, &t) != MHD_YES) {
        m->due_ms = UINT64_MAX;
        return max_ms;
    }
    m->due_ms = clock_mono_ms() + t;
    return t < (MHD_UNSIGNED_LONG_LONG)max_ms ? (long)t : max_ms;
}

void metrics_poll(metrics_t *m, bool readable)
{
    /* MHD wants MHD_run after a poll its timeout bounded, readable or not:
     * that is when it closes idle connections, and it may hold data it
     * has read and not yet handled. */
    if (readable || clock_mono_ms() >= m->due_ms)
        MHD_run(m->d);
}

void metrics_destroy(metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->d)
        MHD_stop_daemon((*self_p)->d);
    free(*self_p);
    *self_p = NULL;
}
