/* stats.c -- the broker's figures (see stats.h). */
#include "stats.h"

#include "endpoint.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t s_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void s_queues(const broker_t *b, msg_stats_t *st)
{
    for (uint32_t i = 0; i < b->nqueues; i++) {
        const queue_t *q = b->qlist[i];
        st->queues[i] = (msg_qstat_t){
            .name = {q->name, q->name_len}, .depth = q->depth, .delayed = q->delayed,
            .running = q->running, .workers = q->nworkers, .submitted = q->submitted,
            .done = q->done, .failed = q->failed, .retried = q->retried, .dead = q->dead,
            .comm_us = q->comm_us, .compute_us = q->compute_us, .dispatched = q->dispatched,
            .wait_us = q->wait_us, .wait = q->wait, .nwait = QUEUE_WAIT_BOUNDS + 1,
            .done_recent = queue_done_recent(q, b->now_ms / 1000),
            .rate_secs = QUEUE_RATE_SECS,
            .b_jobs = q->b_jobs, .nb_jobs = QUEUE_BATCHES,
            .b_comm_us = q->b_comm_us, .nb_comm_us = QUEUE_BATCHES,
            .b_compute_us = q->b_compute_us, .nb_compute_us = QUEUE_BATCHES};
        st->dispatched += q->dispatched;
    }
    st->nqueues = b->nqueues;
    st->wait_le = queue_wait_le;
    st->nwait_le = QUEUE_WAIT_BOUNDS;
}

static void s_workers(const broker_t *b, msg_stats_t *st)
{
    for (const peer_t *w = peers_first(b->peers); w; w = w->next) {
        if (w->role != MSG_ROLE_WORKER)
            continue;
        st->workers_list[st->nworkers++] = (msg_wstat_t){
            .name = {w->name, (uint32_t)strlen(w->name)}, .slots = w->slots,
            .busy = (uint32_t)w->leases.n, .done = w->done,
            .idle_ms = b->now_ms - w->last_in_ms};
        st->slots += w->slots;
        st->busy += w->leases.n;
    }
}

int stats_collect(broker_t *b, msg_stats_t *st)
{
    memset(st, 0, sizeof *st);
    for (const peer_t *p = peers_first(b->peers); p; p = p->next) {
        if (p->role == MSG_ROLE_WORKER)
            st->workers++;
        else
            st->clients++;
    }
    st->queues = calloc(b->nqueues ? b->nqueues : 1, sizeof *st->queues);
    st->workers_list = calloc(st->workers ? st->workers : 1, sizeof *st->workers_list);
    if (!st->queues || !st->workers_list) {
        stats_release(st);
        return -1;
    }
    const broker_counts_t *c = &b->counts;
    st->uptime_ms = b->now_ms - b->start_ms;
    st->submitted = c->submitted;
    st->done = c->done;
    st->failed = c->failed;
    st->retried = c->retried;
    st->lost = c->lost;
    st->cancelled = c->cancelled;
    st->bad_frames = c->bad;
    memcpy(st->bad_by_code, c->bad_by, sizeof st->bad_by_code);
    st->results_kept = jobs_kept(b->jobs);
    st->rejected = b->cfg.zap ? zap_rejected(b->cfg.zap) : 0;
    st->rss_bytes = s_rss();
    s_queues(b, st);
    s_workers(b, st);
    if (b->journal) {
        journal_figures_t jf;
        journal_figures(b->journal, &jf);
        st->journal_bytes = jf.written;
        st->journal_disk = jf.disk;
        st->fsyncs = jf.fsyncs;
        st->fsync_us = jf.fsync_us;
    }
    return 0;
}

void stats_release(msg_stats_t *st)
{
    free(st->queues);
    free(st->workers_list);
    memset(st, 0, sizeof *st);
}

static int s_metrics_collect(void *b, msg_stats_t *st)
{
    return stats_collect(b, st);
}

static void s_metrics_release(void *b, msg_stats_t *st)
{
    (void)b;
    stats_release(st);
}

int stats_serve(broker_t *b, char *err, size_t errlen)
{
    if (!b->cfg.metrics_bind)
        return 0;
    b->metrics = metrics_new(b->cfg.metrics_bind, b->cfg.insecure || b->cfg.zap,
                             s_metrics_collect, s_metrics_release, b, err, errlen);
    if (!b->metrics)
        return -1;
    const char *url = metrics_url(b->metrics);
    log_info("metrics at %s", url);
    return b->cfg.metrics_file
               ? endpoint_write_file(b->cfg.metrics_file, "metrics file", &url, 1, err, errlen)
               : 0;
}
