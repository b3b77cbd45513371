/* msgschema.c -- every map of the wire format as a table (PROTOCOL.md §5).
 *
 * To add an optional key: add a line to the right table (and the field to
 * msg.h).  The decoder and the encoder both pick it up.  Order in a table
 * is the order on the wire.
 */
#include "msgschema.h"

#include <stddef.h>

#include "msg.h"

/* Byte i of key k, placed as byte i + 1 of kword (0 past the key's end). */
#define KBYTE(k, i) \
    (sizeof(k) > (i) + 1 ? (uint64_t)(uint8_t)(k)[(i) < sizeof(k) ? (i) : 0] << (8 * ((i) + 1)) : 0)
/* 1, or a compile error for a key of more than 15 bytes: the codec reads
 * and writes a key with its header as 16 bytes (kword, then kraw from 7). */
#define KEY_FITS(k) (sizeof(k) <= 16 ? 1 : -1)
#define KEY(k)                                                                                \
    .key = k, .kraw = k, .klen = sizeof(k) - 1 + 0 * sizeof(char[KEY_FITS(k)]),               \
    .kword = (uint64_t)(0xa0u | (sizeof(k) - 1)) | KBYTE(k, 0) | KBYTE(k, 1) | KBYTE(k, 2) |  \
             KBYTE(k, 3) | KBYTE(k, 4) | KBYTE(k, 5) | KBYTE(k, 6),                           \
    .kmask = sizeof(k) >= 8 ? UINT64_MAX : (UINT64_C(1) << (sizeof(k) >= 8 ? 0 : 8 * sizeof(k))) - 1
#define AT(T, m) .off = offsetof(T, m)
#define WIDTH_KIND(w) ((w) == 1 ? MK_U8 : (w) == 2 ? MK_U16 : (w) == 4 ? MK_U32 : MK_U64)
#define FU(k, T, m, fl) \
    {KEY(k), .type = MS_UINT, .flags = fl, AT(T, m), .width = sizeof(((T *)0)->m), \
     .kind = WIDTH_KIND(sizeof(((T *)0)->m))}
#define FS(k, T, m, fl, lo, hi) \
    {KEY(k), .type = MS_STR, .kind = MK_STR, .flags = fl, AT(T, m), .min = lo, .max = hi}
#define FB(k, T, m, fl, lo, hi) \
    {KEY(k), .type = MS_BIN, .kind = MK_BIN, .flags = fl, AT(T, m), .min = lo, .max = hi}
#define FBOOL(k, T, m) {KEY(k), .type = MS_BOOL, .kind = MK_BOOL, AT(T, m)}
#define FX(k, ty, T, m, fl) \
    {KEY(k), .type = ty, .kind = (ty) == MS_PRI ? MK_PRI : (ty) == MS_TIMES ? MK_TIMES : MK_OTHER, \
     .flags = fl, AT(T, m)}
#define FL(k, ty, T, m, n, fl, lo, hi, sh) \
    {KEY(k), .type = ty, .flags = fl, AT(T, m), .noff = offsetof(T, n), .min = lo, .max = hi, .sub = sh}
/* req is left 0 here: s_fill_req sets it when the program loads. */
#define SCHEMA(nm, T, arr) {nm, arr, sizeof(arr) / sizeof(arr[0]), sizeof(T), 0}

/* Job map, SUBMIT (the submitter's fields). */
static const msgschema_field_t s_submit_job_f[] = {
    FU("ref", msg_job_t, ref, MS_REQ),
    FS("task", msg_job_t, task, MS_REQ, 1, QJ_MAX_TASK_NAME),
    FB("args", msg_job_t, args, 0, 0, QJ_MAX_ARGS),
    FS("q", msg_job_t, queue, 0, 1, QJ_MAX_QUEUE_NAME),
    FX("pri", MS_PRI, msg_job_t, pri, 0),
    FU("timeout", msg_job_t, timeout_ms, 0),
    FU("retries", msg_job_t, retries, 0),
    FU("backoff", msg_job_t, backoff_ms, 0),
    FU("at", msg_job_t, at_us, 0),
    FS("key", msg_job_t, key, 0, 0, QJ_MAX_KEY),
    FU("parent", msg_job_t, parent, 0),
    FU("ts", msg_job_t, t_submit, 0),
    FBOOL("detach", msg_job_t, detach),
    FBOOL("progress", msg_job_t, progress),
};
static msgschema_t s_submit_job = SCHEMA("job", msg_job_t, s_submit_job_f);

/* Job map, JOBS (the broker's fields). */
static const msgschema_field_t s_jobs_job_f[] = {
    FU("id", msg_job_t, id, MS_REQ),
    FS("task", msg_job_t, task, MS_REQ, 1, QJ_MAX_TASK_NAME),
    FB("args", msg_job_t, args, 0, 0, QJ_MAX_ARGS),
    {KEY("q"), .type = MS_STR, .kind = MK_STR, .flags = MS_REQ, AT(msg_job_t, queue), .min = 1,
     .max = QJ_MAX_QUEUE_NAME, .dflt = "default"},
    FU("attempt", msg_job_t, attempt, MS_REQ),
    FU("timeout", msg_job_t, timeout_ms, 0),
    FU("parent", msg_job_t, parent, 0),
    FU("ts", msg_job_t, t_submit, 0),
};
static msgschema_t s_jobs_job = SCHEMA("job", msg_job_t, s_jobs_job_f);

/* Result map, RESULTS. */
static const msgschema_field_t s_result_f[] = {
    FU("id", msg_result_t, id, MS_REQ),
    FU("ref", msg_result_t, ref, 0),
    FU("st", msg_result_t, st, MS_REQ),
    FB("val", msg_result_t, value, 0, 0, QJ_MAX_VALUE),
    FS("err", msg_result_t, error, 0, 0, QJ_MAX_ERROR),
    FS("wk", msg_result_t, worker, 0, 0, QJ_MAX_NAME),
    FU("att", msg_result_t, attempts, 0),
    FX("t", MS_TIMES, msg_result_t, t, 0),
};
static msgschema_t s_result = SCHEMA("result", msg_result_t, s_result_f);

/* Result map with state, STATUS_REP and DEAD_REP. */
static const msgschema_field_t s_status_f[] = {
    FU("id", msg_result_t, id, MS_REQ),
    FU("ref", msg_result_t, ref, 0),
    FU("state", msg_result_t, state, MS_REQ),
    FU("st", msg_result_t, st, MS_DONE),
    FB("val", msg_result_t, value, 0, 0, QJ_MAX_VALUE),
    FS("err", msg_result_t, error, 0, 0, QJ_MAX_ERROR),
    FS("wk", msg_result_t, worker, 0, 0, QJ_MAX_NAME),
    FU("att", msg_result_t, attempts, 0),
    FX("t", MS_TIMES, msg_result_t, t, 0),
    FS("q", msg_result_t, queue, 0, 1, QJ_MAX_QUEUE_NAME),
    FS("task", msg_result_t, task, 0, 1, QJ_MAX_TASK_NAME),
    FX("prog", MS_PROG, msg_result_t, prog_done, 0),
};
static msgschema_t s_status = SCHEMA("job", msg_result_t, s_status_f);

static const msgschema_field_t s_qstat_f[] = {
    FS("name", msg_qstat_t, name, MS_REQ, 1, QJ_MAX_QUEUE_NAME),
    FU("depth", msg_qstat_t, depth, MS_ALL),
    FU("delayed", msg_qstat_t, delayed, MS_ALL),
    FU("running", msg_qstat_t, running, MS_ALL),
    FU("workers", msg_qstat_t, workers, MS_ALL),
    FU("submitted", msg_qstat_t, submitted, MS_ALL),
    FU("done", msg_qstat_t, done, MS_ALL),
    FU("failed", msg_qstat_t, failed, MS_ALL),
    FU("retried", msg_qstat_t, retried, MS_ALL),
    FU("dead", msg_qstat_t, dead, MS_ALL),
    FU("comm_us", msg_qstat_t, comm_us, MS_ALL),
    FU("compute_us", msg_qstat_t, compute_us, MS_ALL),
    FU("dispatched", msg_qstat_t, dispatched, 0),
    FU("wait_us", msg_qstat_t, wait_us, 0),
    FU("done_recent", msg_qstat_t, done_recent, 0),
    FU("rate_secs", msg_qstat_t, rate_secs, 0),
    FL("wait", MS_IDS, msg_qstat_t, wait, nwait, 0, 0, QJ_MAX_BUCKETS + 1, NULL),
    FL("b_jobs", MS_IDS, msg_qstat_t, b_jobs, nb_jobs, 0, 0, QJ_MAX_BUCKETS, NULL),
    FL("b_comm_us", MS_IDS, msg_qstat_t, b_comm_us, nb_comm_us, 0, 0, QJ_MAX_BUCKETS, NULL),
    FL("b_compute_us", MS_IDS, msg_qstat_t, b_compute_us, nb_compute_us, 0, 0, QJ_MAX_BUCKETS,
       NULL),
};
static msgschema_t s_qstat = SCHEMA("queue", msg_qstat_t, s_qstat_f);

static const msgschema_field_t s_wstat_f[] = {
    FS("name", msg_wstat_t, name, MS_REQ, 0, QJ_MAX_NAME),
    FU("slots", msg_wstat_t, slots, MS_ALL),
    FU("busy", msg_wstat_t, busy, MS_ALL),
    FU("done", msg_wstat_t, done, MS_ALL),
    FU("idle_ms", msg_wstat_t, idle_ms, MS_ALL),
};
static msgschema_t s_wstat = SCHEMA("worker", msg_wstat_t, s_wstat_f);

/* Message bodies. */
#define RID_REQ FU("rid", msg_t, rid, MS_REQ)
#define IDS(lo) FL("ids", MS_IDS, msg_t, ids, nids, MS_REQ, lo, QJ_MAX_BATCH, NULL)
#define ITEMS FL("items", MS_OUTCOMES, msg_t, outcomes, noutcomes, MS_REQ, 0, QJ_MAX_BATCH, NULL)
#define STATUS_JOBS FL("jobs", MS_MAPS, msg_t, results, nresults, MS_REQ, 0, QJ_MAX_BATCH, &s_status)
#define STAT(k, m) FU(k, msg_t, stats.m, MS_ALL)

static const msgschema_field_t s_hello_f[] = {
    FU("role", msg_t, role, MS_REQ),
    FS("name", msg_t, name, 0, 0, QJ_MAX_NAME),
    FB("cid", msg_t, cid, MS_EXACT, QJ_CID_LEN, QJ_CID_LEN),
    FL("queues", MS_NAMES, msg_t, queues, nqueues, 0, 0, QJ_MAX_QUEUES, NULL),
    FU("credit", msg_t, credit, 0),
    FU("hb", msg_t, heartbeat_ms, 0),
    FS("replaces", msg_t, replaces, 0, 1, QJ_MAX_NAME),
    FL("timedout", MS_IDS, msg_t, ids, nids, 0, 0, QJ_MAX_BATCH, NULL),
};
static const msgschema_field_t s_welcome_f[] = {
    FU("hb", msg_t, heartbeat_ms, MS_REQ),
    FU("live", msg_t, liveness, MS_REQ),
    FU("maxmsg", msg_t, max_msg, MS_REQ),
    FS("name", msg_t, name, 0, 0, QJ_MAX_NAME),
};
static const msgschema_field_t s_bye_f[] = {FBOOL("drain", msg_t, drain)};
static const msgschema_field_t s_error_f[] = {
    FU("code", msg_t, code, MS_REQ),
    {KEY("text"), .type = MS_STR, .kind = MK_STR, .flags = MS_REQ, AT(msg_t, text), .max = QJ_MAX_ERROR, .dflt = ""},
    FU("about", msg_t, about, 0),
    FU("rid", msg_t, rid, 0),
};
static const msgschema_field_t s_submit_f[] = {
    FL("jobs", MS_MAPS, msg_t, jobs, njobs, MS_REQ, 1, QJ_MAX_BATCH, &s_submit_job)};
static const msgschema_field_t s_accepted_f[] = {
    FL("acks", MS_ACKS, msg_t, acks, nacks, MS_REQ, 0, QJ_MAX_BATCH, NULL)};
static const msgschema_field_t s_await_f[] = {IDS(1)};
static const msgschema_field_t s_results_f[] = {
    FL("results", MS_MAPS, msg_t, results, nresults, MS_REQ, 0, QJ_MAX_BATCH, &s_result),
    FU("credit", msg_t, credit, 0),
};
static const msgschema_field_t s_status_req_f[] = {RID_REQ, IDS(0)};
static const msgschema_field_t s_status_rep_f[] = {RID_REQ, STATUS_JOBS};
static const msgschema_field_t s_cancel_f[] = {FU("rid", msg_t, rid, 0), IDS(0)};
static const msgschema_field_t s_outcomes_f[] = {RID_REQ, ITEMS};
static const msgschema_field_t s_progress_f[] = {
    FU("id", msg_t, id, MS_REQ),
    FU("done", msg_t, done, MS_REQ),
    FU("total", msg_t, total, MS_REQ),
    FS("note", msg_t, note, 0, 0, QJ_MAX_NOTE),
};
static const msgschema_field_t s_stats_f[] = {RID_REQ};
static const msgschema_field_t s_stats_rep_f[] = {
    RID_REQ,
    STAT("uptime", uptime_ms), STAT("clients", clients), STAT("workers", workers),
    STAT("submitted", submitted), STAT("done", done), STAT("failed", failed),
    STAT("retried", retried), STAT("lost", lost), STAT("cancelled", cancelled),
    STAT("bad", bad_frames), FX("bad_by", MS_BADBY, msg_t, stats, MS_ALL),
    STAT("rejected", rejected), STAT("kept", results_kept), STAT("rss", rss_bytes),
    FL("queues", MS_MAPS, msg_t, stats.queues, stats.nqueues, MS_ALL, 0, QJ_MAX_BATCH, &s_qstat),
    FL("wlist", MS_MAPS, msg_t, stats.workers_list, stats.nworkers, MS_ALL, 0, QJ_MAX_BATCH,
       &s_wstat),
    STAT("slots", slots), STAT("busy", busy), STAT("dispatched", dispatched),
    STAT("jbytes", journal_bytes), STAT("jdisk", journal_disk),
    STAT("fsyncs", fsyncs), STAT("fsync_us", fsync_us),
    FL("wait_le", MS_IDS, msg_t, stats.wait_le, stats.nwait_le, 0, 0, QJ_MAX_BUCKETS, NULL),
};
static const msgschema_field_t s_dead_f[] = {
    RID_REQ,
    FS("q", msg_t, queue, 0, 1, QJ_MAX_QUEUE_NAME),
    FU("limit", msg_t, limit, 0),
};
static const msgschema_field_t s_jobs_f[] = {
    FL("jobs", MS_MAPS, msg_t, jobs, njobs, MS_REQ, 0, QJ_MAX_BATCH, &s_jobs_job)};
static const msgschema_field_t s_credit_f[] = {FU("credit", msg_t, credit, MS_REQ)};
static const msgschema_field_t s_touch_f[] = {IDS(0)};

_Static_assert(sizeof s_stats_rep_f / sizeof s_stats_rep_f[0] <= 32, "the biggest body fits the 32-bit key mask");

#define CMD_MAX 0x33
#define BODY(c, nm, arr) [c] = SCHEMA(nm, msg_t, arr)

/* Indexed by command; name NULL = unknown command. */
static msgschema_t s_bodies[CMD_MAX] = {
    BODY(MSG_HELLO, "hello", s_hello_f),
    BODY(MSG_WELCOME, "welcome", s_welcome_f),
    [MSG_HEARTBEAT] = {"heartbeat", NULL, 0, sizeof(msg_t), 0},
    BODY(MSG_BYE, "bye", s_bye_f),
    BODY(MSG_ERROR, "error", s_error_f),
    BODY(MSG_SUBMIT, "submit", s_submit_f),
    BODY(MSG_ACCEPTED, "accepted", s_accepted_f),
    BODY(MSG_AWAIT, "await", s_await_f),
    BODY(MSG_RESULTS, "results", s_results_f),
    BODY(MSG_STATUS, "status", s_status_req_f),
    BODY(MSG_STATUS_REP, "status_rep", s_status_rep_f),
    BODY(MSG_CANCEL, "cancel", s_cancel_f),
    BODY(MSG_CANCEL_REP, "cancel_rep", s_outcomes_f),
    BODY(MSG_PROGRESS, "progress", s_progress_f),
    BODY(MSG_STATS, "stats", s_stats_f),
    BODY(MSG_STATS_REP, "stats_rep", s_stats_rep_f),
    BODY(MSG_DEAD, "dead", s_dead_f),
    BODY(MSG_DEAD_REP, "dead_rep", s_status_rep_f),
    BODY(MSG_REQUEUE, "requeue", s_status_req_f),
    BODY(MSG_REQUEUE_REP, "requeue_rep", s_outcomes_f),
    BODY(MSG_JOBS, "jobs", s_jobs_f),
    BODY(MSG_CREDIT, "credit", s_credit_f),
    BODY(MSG_TOUCH, "touch", s_touch_f),
};

/* Set sh->req, and that of the maps nested in it, from the fields' flags.
 * Every shape is reached from s_bodies, so none is left without its mask;
 * the shapes are defined writable for this one fill, and only read after. */
static void s_fill_req(msgschema_t *sh)
{
    sh->req = 0;
    for (uint32_t j = 0; j < sh->nfields; j++) {
        const msgschema_field_t *f = &sh->fields[j];
        if (f->flags & MS_REQ) sh->req |= 1u << j;
        if (f->sub) s_fill_req((msgschema_t *)f->sub);
    }
}

/* Before main, as server/jrec.c's CRC table: the masks are there before any
 * thread can decode. */
__attribute__((constructor)) static void s_fill_all(void)
{
    for (int c = 0; c < CMD_MAX; c++)
        if (s_bodies[c].name) s_fill_req(&s_bodies[c]);
}

const msgschema_t *msgschema_body(int cmd)
{
    return cmd >= 0 && cmd < CMD_MAX && s_bodies[cmd].name ? &s_bodies[cmd] : NULL;
}
