/* qclient -- submit jobs to a qjob broker and look at them from the shell.
 *
 *   qclient [--broker EP] [--json] [--timeout SEC] [--connect-timeout SEC] COMMAND ...
 *
 * Commands: submit, await, status, stats, cancel, map (cli_map.c), bench
 * (bench.c).  The
 * options, the output and the exit codes (cli.h) are a contract that
 * scripts and the integration tests rely on.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "clock.h"
#include "keys.h"
#include "log.h"
#include "mpjson.h"
#include "msg.h"
#include "parse.h"

static const char *const s_usage =
    "usage: qclient [OPTIONS] COMMAND [ARGS...]\n"
    "\n"
    "Submit jobs to a qjob broker and look at them.\n"
    "\n"
    "Commands:\n"
    "  submit TASK [ARGS_JSON]   submit one job and print its result\n"
    "  await ID...               wait for jobs by id, one JSON line each\n"
    "  status ID...              where jobs are, one JSON line each\n"
    "  stats                     broker figures (a table; --json: the raw object)\n"
    "  cancel ID...              cancel jobs by id\n"
    "  map TASK                  one job per JSON line on stdin, results on stdout\n"
    "  keygen NAME               make a CURVE key pair: NAME.key (secret) and NAME.pub\n"    "  bench MODE                measure the broker and its workers\n"
    "Run 'qclient COMMAND --help' for a command's options.\n"
    "\n"
    "Options (before or after the command):\n"
    "  --broker EP              broker endpoint (default $QJOB_BROKER, else " QJ_DEFAULT_BROKER ")\n"
    "  --json                   full JSON output\n"
    "  --timeout SEC            give up waiting after SEC seconds (default: wait)\n"
    "  --connect-timeout SEC    the broker must answer within SEC seconds (default 5)\n"
    "  --curve-secret FILE      talk CURVE with this secret key file (default\n"
    "                           $QJOB_CURVE_SECRET; made by qclient keygen, mode 0600)\n"
    "  --broker-key FILE        the broker's public key file (default $QJOB_BROKER_KEY)\n"
    "  -h, --help               this help\n"
    "  --version                print the version\n";

static const char *const s_exit_codes =
    "\n"
    "Exit codes (with several jobs: that of the first, in argument order, not ok):\n"
    "  0 ok                     5 refused by the broker (queue full, limit, denied)\n"
    "  1 job failed (error/lost) 6 job cancelled\n"
    "  2 usage error, bad JSON  7 job hit its own timeout\n"
    "  3 timed out waiting      8 unknown job id\n"
    "  4 broker unreachable\n";

static const char *const s_submit_usage =
    "usage: qclient submit TASK [ARGS_JSON] [OPTIONS]\n"
    "\n"
    "Submit one job and wait for it; print its value as JSON (with --json an\n"
    "object with id, status, value, error, attempts, worker and times).\n"
    "ARGS_JSON is one JSON value (default null); put -- before one that\n"
    "starts with '-' (qclient submit neg -- -1).\n"
    "\n"
    "  --queue Q           queue (default \"default\")\n"
    "  --priority P        -128..127, higher runs first (default 0)\n"
    "  --job-timeout SEC   the job's own run time limit (default none)\n"
    "  --retries N         extra attempts after a failure (default 0)\n"
    "  --backoff SEC       before the first retry, doubling (default 1)\n"
    "  --delay SEC         do not run before SEC seconds from now\n"
    "  --key KEY           idempotency key: resubmitting gives the same job\n"
    "  --detach            do not wait: print the job id once accepted\n";

static const char *const s_await_usage =
    "usage: qclient await ID... [--json] [--timeout SEC]\n"
    "\n"
    "Wait for jobs by id (submitted by anyone) and print one JSON line per\n"
    "job, in argument order: {\"id\",\"status\",\"value\",\"error\"} (with --json\n"
    "also attempts, worker and times).  A job still running at --timeout\n"
    "prints status \"pending\".\n";

static const char *const s_status_usage =
    "usage: qclient status ID...\n"
    "\n"
    "Print where each job is, one JSON line per id: id, state (queued,\n"
    "delayed, running, done, dead, unknown), status once done, queue, task,\n"
    "value, error, attempts, worker, progress, times.\n";

static const char *const s_stats_usage =
    "usage: qclient stats [--json]\n"
    "\n"
    "Print the broker's figures: queues (depth, running, done, failed);\n"
    "where the life of the jobs that finished went, by the number of jobs\n"
    "their SUBMIT carried: communication (all but the task's run: messages,\n"
    "queueing, bookkeeping) against compute (the task's run), per job;\n"
    "workers (slots, busy, done) and refused frames.  With --json, the raw\n"
    "object (PROTOCOL.md 5.3 keys: uptime, clients, workers, queues, wlist,\n"
    "bad, bad_by, ...).\n";

static const char *const s_cancel_usage =
    "usage: qclient cancel ID...\n"
    "\n"
    "Cancel jobs.  Prints one JSON line per id with the outcome: removed (it\n"
    "was waiting), requested (it is running: its worker was asked to stop),\n"
    "done (it had finished) or unknown.\n";

static const char *const s_keygen_usage =
    "usage: qclient keygen NAME\n"
    "\n"
    "Make a CURVE key pair for a client, a worker or a broker: NAME.key holds\n"
    "the secret key (mode 0600: keep it private) and NAME.pub the public key\n"
    "(give it to the broker's --clients-allow or --workers-allow, or, for a\n"
    "broker, to its peers' --broker-key).  Existing files are never replaced.\n"
    "Prints the public key (with --json: {\"secret\", \"public\", \"key\"}).\n"
    "The format is described in PROTOCOL.md, section 1.1.\n";

static const char *const s_map_usage =
    "usage: qclient map TASK [OPTIONS]\n"
    "\n"
    "Read one JSON args value per line on stdin (blank lines are skipped),\n"
    "submit a TASK job for each, and print each result as one JSON line as it\n"
    "completes (with --json an object with the input line number, id, status,\n"
    "value, error...; a failed job prints null and a message on stderr).\n"
    "A line that is not JSON stops the reading: jobs already submitted are\n"
    "finished and printed, then qclient exits 2.\n"
    "\n"
    "  --ordered           print results in input order\n"
    "  --batch K           jobs per SUBMIT message (default: automatic)\n"
    "  --inflight N        jobs outstanding at most (default 1000)\n"
    "  --detach            print job ids (input order) instead of results\n"
    "  --queue, --priority, --job-timeout, --retries, --backoff: as for submit\n"
    "\n"
    "On a terminal, a progress bar is drawn on stderr.\n";

void cli_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("qclient: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int s_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int s_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("qclient: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(run 'qclient %s--help' for usage)\n", cmd ? cmd : "");
    va_end(ap);
    return CLI_USAGE;
}

/* ------------------------------------------------------------ helpers */

int cli_exit_for(qj_status st)
{
    switch (st) {
    case QJ_OK: return CLI_OK;
    case QJ_ERROR:
    case QJ_LOST: return CLI_FAILED;
    case QJ_TIMEOUT: return CLI_JOB_TIMEOUT;
    case QJ_CANCELLED: return CLI_CANCELLED;
    case QJ_UNKNOWN: return CLI_UNKNOWN;
    case QJ_REFUSED: return CLI_REFUSED;
    case QJ_PENDING: return CLI_TIMEOUT;
    }
    return CLI_FAILED;
}

int cli_left_ms(const cli_t *cli)
{
    if (!cli->deadline_ms)
        return -1;
    uint64_t now = clock_mono_ms();
    return now >= cli->deadline_ms ? 0 : (int)(cli->deadline_ms - now);
}

qj_client *cli_connect(cli_t *cli, qj_options *o)
{
    qj_options dflt;
    if (!o) {
        qj_options_init(&dflt);
        o = &dflt;
    }
    o->broker = cli->broker;
    if (cli->curve_secret)
        o->curve_secret = cli->curve_secret;
    if (cli->broker_key)
        o->broker_key = cli->broker_key;
    char err[512];
    qj_client *c = qj_client_new(o, err, sizeof err);
    if (!c) {
        cli_err("%s", err);
        exit(CLI_USAGE);
    }
    const char *ep = cli->broker ? cli->broker : getenv("QJOB_BROKER");
    if (!ep || !*ep)
        ep = QJ_DEFAULT_BROKER;
    if (qj_client_ready(c, (int)(cli->connect_s * 1000)) < 0) {
        const char *why = qj_client_refusal(c);
        if (why) {
            cli_err("the broker at %s refused this client: %s", ep, why);
            qj_client_destroy(&c);
            exit(CLI_REFUSED);
        }
        const char *curve = o->curve_secret ? o->curve_secret : getenv("QJOB_CURVE_SECRET");
        cli_err("cannot reach the broker at %s (no answer within %g s): check that qbroker "
                "runs there, or point --broker / $QJOB_BROKER at it%s",
                ep, cli->connect_s, curve && *curve ? "; with CURVE, also that the broker "
                "allows our public key and that --broker-key is the broker's public key" : "");
        qj_client_destroy(&c);
        exit(CLI_UNREACHABLE);
    }
    if (cli->timeout_s >= 0)
        cli->deadline_ms = clock_mono_ms() + (uint64_t)llround(cli->timeout_s * 1000);
    return c;
}

static json_t *s_value(const qj_job *j)
{
    size_t len;
    const void *v = qj_job_value(j, &len);
    char err[128];
    json_t *x = v ? mpjson_to_json(v, len, err, sizeof err) : NULL;
    return x ? x : json_null();
}

void cli_print_value(FILE *out, const qj_job *j)
{
    json_t *v = s_value(j);
    json_dumpf(v, out, JSON_ENCODE_ANY | JSON_COMPACT);
    fputc('\n', out);
    json_decref(v);
}

void cli_print_job(FILE *out, const qj_job *j, bool full, const char *extra_key,
                   uint64_t extra_val)
{
    json_t *o = json_object();
    if (extra_key)
        json_object_set_new(o, extra_key, json_integer((json_int_t)extra_val));
    json_object_set_new(o, "id", json_integer((json_int_t)qj_job_id(j)));
    json_object_set_new(o, "status", json_string(qj_status_name(qj_job_status(j))));
    json_object_set_new(o, "value", s_value(j));
    const char *e = qj_job_error(j);
    json_object_set_new(o, "error", e ? json_string(e) : json_null());
    if (full) {
        const char *w = qj_job_worker(j);
        const qj_times *t = qj_job_times(j);
        json_object_set_new(o, "attempts", json_integer(qj_job_attempts(j)));
        json_object_set_new(o, "worker", w ? json_string(w) : json_null());
        json_object_set_new(o, "times",
                            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "submitted",
                                      (json_int_t)t->submitted, "queued", (json_int_t)t->queued,
                                      "dispatched", (json_int_t)t->dispatched, "started",
                                      (json_int_t)t->started, "finished",
                                      (json_int_t)t->finished, "delivered",
                                      (json_int_t)t->delivered));
    }
    json_dumpf(o, out, JSON_COMPACT);
    fputc('\n', out);
    json_decref(o);
}

void cli_report_failure(const qj_job *j, const char *what)
{
    const char *e = qj_job_error(j);
    switch (qj_job_status(j)) {
    case QJ_OK: return;
    case QJ_REFUSED:
        cli_err("%s: %s", what, e ? e : "refused by the broker");
        return;
    case QJ_UNKNOWN:
        cli_err("%s: job %" PRIu64 " is unknown to the broker (wrong id, or its result "
                "expired: see qbroker --result-ttl)", what, qj_job_id(j));
        return;
    default:
        cli_err("%s: job %" PRIu64 " %s%s%s", what, qj_job_id(j),
                qj_job_status(j) == QJ_TIMEOUT ? "ran past its --job-timeout"
                                                : qj_status_name(qj_job_status(j)),
                e ? ": " : "", e ? e : "");
    }
}

void cli_bad_json(uint64_t line, const char *why)
{
    /* mpjson counts lines within the text it was given (one input line). */
    if (strncmp(why, "line 1, ", 8) == 0)
        why += 8;
    cli_err("bad JSON args at line %" PRIu64 ", %s", line, why);
}

/* ------------------------------------------------------------ parsing */

static int s_parse_double(const char *s, double lo, double *out)
{
    return parse_double(s, lo, HUGE_VAL, out);
}

static int s_parse_int(const char *s, int lo, int hi, int *out)
{
    int64_t v;
    if (parse_i64(s, lo, hi, &v) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

static int s_parse_ids(char **argv, int argc, uint64_t *ids, const char *cmd)
{
    for (int i = 0; i < argc; i++) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(argv[i], &end, 10);
        if (errno || end == argv[i] || *end || argv[i][0] == '-')
            return s_usage_error(cmd, "'%s' is not a job id (a decimal number)", argv[i]);
        ids[i] = v;
    }
    return 0;
}

/* ----------------------------------------------------------- commands */

static int s_cmd_submit(cli_t *cli, char **argv, int argc, cli_submit_t *cs)
{
    if (argc < 1 || argc > 2)
        return s_usage_error("submit ", "submit takes TASK and optionally ARGS_JSON");
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    char why[256];
    if (argc == 2 && mpjson_from_text(argv[1], &args, why, sizeof why) < 0) {
        cli_err("bad JSON args at %s", why);
        msgpack_sbuffer_destroy(&args);
        return CLI_USAGE;
    }
    qj_client *c = cli_connect(cli, NULL);
    char err[512];
    qj_job *j = qj_submit(c, argv[0], args.data, args.size, &cs->so, err, sizeof err);
    msgpack_sbuffer_destroy(&args);
    if (!j) {
        cli_err("%s", err);
        qj_client_destroy(&c);
        return CLI_USAGE;
    }
    int rc;
    if (cs->so.detach) {
        if (qj_accepted(j, cli_left_ms(cli)) == 0) {
            printf("%" PRIu64 "\n", qj_job_id(j));
            rc = CLI_OK;
        } else if (qj_job_done(j)) {
            cli_report_failure(j, "submit");
            rc = cli_exit_for(qj_job_status(j));
        } else {
            cli_err("the broker did not accept the job within %g s (--timeout)", cli->timeout_s);
            rc = CLI_TIMEOUT;
        }
    } else if (qj_await(j, cli_left_ms(cli)) < 0) {
        cli_err("job %" PRIu64 " not finished after %g s (--timeout); it goes on: "
                "'qclient await %" PRIu64 "' waits for it", qj_job_id(j), cli->timeout_s,
                qj_job_id(j));
        rc = CLI_TIMEOUT;
    } else {
        rc = cli_exit_for(qj_job_status(j));
        if (cli->json)
            cli_print_job(stdout, j, true, NULL, 0);
        else if (rc == CLI_OK)
            cli_print_value(stdout, j);
        cli_report_failure(j, "submit");
    }
    qj_job_free(&j);
    qj_client_destroy(&c);
    return rc;
}

static int s_cmd_await(cli_t *cli, char **argv, int argc)
{
    if (argc < 1)
        return s_usage_error("await ", "await needs at least one job id");
    uint64_t *ids = calloc((size_t)argc, sizeof *ids);
    qj_job **jobs = calloc((size_t)argc, sizeof *jobs);
    int rc = ids && jobs ? s_parse_ids(argv, argc, ids, "await ") : CLI_FAILED;
    if (rc) {
        free(ids);
        free(jobs);
        return rc;
    }
    qj_client *c = cli_connect(cli, NULL);
    for (int i = 0; i < argc; i++)
        if (!(jobs[i] = qj_attach(c, ids[i]))) {
            cli_err("out of memory");
            exit(CLI_FAILED);
        }
    qj_gather(jobs, (size_t)argc, cli_left_ms(cli));
    bool timed_out = false;
    for (int i = 0; i < argc; i++) {
        int code = cli_exit_for(qj_job_status(jobs[i]));
        if (code != CLI_OK && rc == CLI_OK)
            rc = code;
        timed_out |= !qj_job_done(jobs[i]);
        cli_print_job(stdout, jobs[i], cli->json, NULL, 0);
        qj_job_free(&jobs[i]);
    }
    if (timed_out)
        cli_err("some jobs had not finished after %g s (--timeout)", cli->timeout_s);
    qj_client_destroy(&c);
    free(ids);
    free(jobs);
    return rc;
}

/* status and cancel: one request, one JSON line per item; an unknown id
 * makes the exit code 8. */
static int s_cmd_ids(cli_t *cli, char **argv, int argc, bool cancel)
{
    const char *cmd = cancel ? "cancel " : "status ";
    if (argc < 1)
        return s_usage_error(cmd, "%sneeds at least one job id", cmd);
    uint64_t *ids = calloc((size_t)argc, sizeof *ids);
    int rc = ids ? s_parse_ids(argv, argc, ids, cmd) : CLI_FAILED;
    if (rc) {
        free(ids);
        return rc;
    }
    qj_client *c = cli_connect(cli, NULL);
    char err[512];
    char *text = cancel ? qj_cancel_json(c, ids, (size_t)argc, cli_left_ms(cli), err, sizeof err)
                        : qj_status_json(c, ids, (size_t)argc, cli_left_ms(cli), err, sizeof err);
    if (!text) {
        cli_err("%s", err);
        rc = errno == ETIMEDOUT ? CLI_TIMEOUT : CLI_REFUSED;
    } else {
        json_t *a = json_loads(text, 0, NULL);
        size_t i;
        json_t *x;
        json_array_foreach(a, i, x) {
            json_dumpf(x, stdout, JSON_COMPACT);
            fputc('\n', stdout);
            const char *k = json_string_value(json_object_get(x, cancel ? "outcome" : "state"));
            if (k && strcmp(k, "unknown") == 0 && rc == CLI_OK)
                rc = CLI_UNKNOWN;
        }
        json_decref(a);
        free(text);
    }
    qj_client_destroy(&c);
    free(ids);
    return rc;
}

/* -------------------------------------------------------------- stats */

static json_int_t s_int(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* Element i of the array o[key] (0 if there is none). */
static json_int_t s_at(json_t *o, const char *key, size_t i)
{
    return json_integer_value(json_array_get(json_object_get(o, key), i));
}

/* Where a finished job's life went, by the size of the SUBMIT that
 * brought it (PROTOCOL.md 5.3 b_jobs): a row per queue and size class. */
static void s_print_batches(json_t *s)
{
    printf("\n%-20s %13s %10s %12s %15s %7s\n", "QUEUE", "JOBS/SUBMIT", "JOBS",
           "COMM us/job", "COMPUTE us/job", "COMM %");
    size_t i;
    json_t *q;
    json_array_foreach(json_object_get(s, "queues"), i, q) {
        size_t n = json_array_size(json_object_get(q, "b_jobs"));
        for (size_t c = 0; c < n; c++) {
            double jobs = (double)s_at(q, "b_jobs", c);
            if (jobs <= 0)
                continue;
            double comm = (double)s_at(q, "b_comm_us", c);
            double compute = (double)s_at(q, "b_compute_us", c);
            char size[48];
            msg_batch_range((uint32_t)c, (uint32_t)n, size, sizeof size);
            printf("%-20s %13s %10.0f %12.1f %15.1f %7.1f\n",
                   json_string_value(json_object_get(q, "name")), size, jobs, comm / jobs,
                   compute / jobs, comm + compute > 0 ? 100.0 * comm / (comm + compute) : 0.0);
        }
    }
}

static void s_print_stats(json_t *s)
{
    json_int_t up = s_int(s, "uptime") / 1000;
    printf("broker: up %lldh%02lldm%02llds, %lld clients, %lld workers, rss %.1f MiB, "
           "%lld results kept\n",
           (long long)(up / 3600), (long long)(up / 60 % 60), (long long)(up % 60),
           (long long)s_int(s, "clients"), (long long)s_int(s, "workers"),
           (double)s_int(s, "rss") / (1024.0 * 1024.0), (long long)s_int(s, "kept"));
    printf("jobs: %lld submitted, %lld done, %lld failed, %lld retried, %lld lost, "
           "%lld cancelled\n\n",
           (long long)s_int(s, "submitted"), (long long)s_int(s, "done"),
           (long long)s_int(s, "failed"), (long long)s_int(s, "retried"),
           (long long)s_int(s, "lost"), (long long)s_int(s, "cancelled"));
    printf("%-20s %8s %8s %8s %8s %10s %10s %8s %8s %10s\n", "QUEUE", "DEPTH", "DELAYED",
           "RUNNING", "WORKERS", "SUBMITTED", "DONE", "FAILED", "DEAD", "DONE/S");
    size_t i;
    json_t *q;
    json_array_foreach(json_object_get(s, "queues"), i, q) {
        json_int_t secs = s_int(q, "rate_secs");
        printf("%-20s %8lld %8lld %8lld %8lld %10lld %10lld %8lld %8lld %10.1f\n",
               json_string_value(json_object_get(q, "name")), (long long)s_int(q, "depth"),
               (long long)s_int(q, "delayed"), (long long)s_int(q, "running"),
               (long long)s_int(q, "workers"), (long long)s_int(q, "submitted"),
               (long long)s_int(q, "done"), (long long)s_int(q, "failed"),
               (long long)s_int(q, "dead"),
               secs > 0 ? (double)s_int(q, "done_recent") / (double)secs : 0.0);
    }
    s_print_batches(s);
    printf("\n%-32s %6s %6s %10s %10s\n", "WORKER", "SLOTS", "BUSY", "DONE", "IDLE_MS");
    json_array_foreach(json_object_get(s, "wlist"), i, q) {
        printf("%-32s %6lld %6lld %10lld %10lld\n", json_string_value(json_object_get(q, "name")),
               (long long)s_int(q, "slots"), (long long)s_int(q, "busy"),
               (long long)s_int(q, "done"), (long long)s_int(q, "idle_ms"));
    }
    printf("\nbad frames: %lld", (long long)s_int(s, "bad"));
    const char *k;
    json_t *v;
    const char *sep = " (";
    json_object_foreach(json_object_get(s, "bad_by"), k, v) {
        printf("%s%s %lld", sep, k, (long long)json_integer_value(v));
        sep = ", ";
    }
    printf("%s; connections refused: %lld\n", *sep == ',' ? ")" : "",
           (long long)s_int(s, "rejected"));
}

static int s_cmd_stats(cli_t *cli, int argc)
{
    if (argc != 0)
        return s_usage_error("stats ", "stats takes no arguments");
    qj_client *c = cli_connect(cli, NULL);
    char err[512];
    char *text = qj_stats_json(c, cli_left_ms(cli), err, sizeof err);
    int rc = CLI_OK;
    if (!text) {
        cli_err("%s", err);
        rc = errno == ETIMEDOUT ? CLI_TIMEOUT : CLI_REFUSED;
    } else if (cli->json) {
        printf("%s\n", text);
    } else {
        json_t *s = json_loads(text, 0, NULL);
        s_print_stats(s);
        json_decref(s);
    }
    free(text);
    qj_client_destroy(&c);
    return rc;
}

/* ------------------------------------------------------------- keygen */

static int s_cmd_keygen(cli_t *cli, char **argv, int argc)
{
    if (argc != 1 || !argv[0][0])
        return s_usage_error("keygen ", "keygen takes one NAME (files NAME.key and NAME.pub)");
    const char *slash = strrchr(argv[0], '/');
    const char *name = slash ? slash + 1 : argv[0];
    keys_pair_t pair;
    char err[512];
    if (!*name)
        return s_usage_error("keygen ", "keygen NAME must not end with '/'");
    if (keys_generate(&pair, err, sizeof err) != 0 ||
        keys_write(argv[0], name, &pair, err, sizeof err) != 0) {
        explicit_bzero(&pair, sizeof pair);
        cli_err("%s", err);
        return CLI_FAILED;
    }
    explicit_bzero(pair.secret_z85, sizeof pair.secret_z85);
    if (cli->json)
        printf("{\"secret\":\"%s.key\",\"public\":\"%s.pub\",\"key\":\"%s\"}\n", argv[0],
               argv[0], pair.public_z85);
    else
        printf("%s\n", pair.public_z85);
    fprintf(stderr, "qclient: wrote %s.key (secret: keep it private) and %s.pub (public)\n",
            argv[0], argv[0]);
    return CLI_OK;
}

/* --------------------------------------------------------------- main */

enum {
    O_BROKER = 256, O_JSON, O_TIMEOUT, O_CONNECT_TIMEOUT, O_VERSION, O_QUEUE, O_PRIORITY,
    O_JOB_TIMEOUT, O_RETRIES, O_BACKOFF, O_DELAY, O_KEY, O_DETACH, O_BATCH, O_INFLIGHT,
    O_ORDERED, O_CURVE_SECRET, O_BROKER_KEY,
};

static const struct option s_options[] = {
    {"broker", required_argument, NULL, O_BROKER},
    {"json", no_argument, NULL, O_JSON},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"connect-timeout", required_argument, NULL, O_CONNECT_TIMEOUT},
    {"curve-secret", required_argument, NULL, O_CURVE_SECRET},
    {"broker-key", required_argument, NULL, O_BROKER_KEY},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, O_VERSION},
    {"queue", required_argument, NULL, O_QUEUE},
    {"priority", required_argument, NULL, O_PRIORITY},
    {"job-timeout", required_argument, NULL, O_JOB_TIMEOUT},
    {"retries", required_argument, NULL, O_RETRIES},
    {"backoff", required_argument, NULL, O_BACKOFF},
    {"delay", required_argument, NULL, O_DELAY},
    {"key", required_argument, NULL, O_KEY},
    {"detach", no_argument, NULL, O_DETACH},
    {"batch", required_argument, NULL, O_BATCH},
    {"inflight", required_argument, NULL, O_INFLIGHT},
    {"ordered", no_argument, NULL, O_ORDERED},
    {NULL, 0, NULL, 0},
};

/* Which command-specific options each command takes. */
static bool s_allowed(const char *cmd, int opt)
{
    bool submit_opt = opt == O_QUEUE || opt == O_PRIORITY || opt == O_JOB_TIMEOUT ||
                      opt == O_RETRIES || opt == O_BACKOFF || opt == O_DETACH;
    if (opt < O_QUEUE || opt == O_CURVE_SECRET || opt == O_BROKER_KEY)
        return true;
    if (strcmp(cmd, "submit") == 0)
        return submit_opt || opt == O_DELAY || opt == O_KEY;
    if (strcmp(cmd, "map") == 0)
        return submit_opt || opt == O_BATCH || opt == O_INFLIGHT || opt == O_ORDERED;
    return false;
}

static const char *s_command_usage(const char *cmd)
{
    if (!cmd) return NULL;
    if (strcmp(cmd, "submit") == 0) return s_submit_usage;
    if (strcmp(cmd, "await") == 0) return s_await_usage;
    if (strcmp(cmd, "status") == 0) return s_status_usage;
    if (strcmp(cmd, "stats") == 0) return s_stats_usage;
    if (strcmp(cmd, "cancel") == 0) return s_cancel_usage;
    if (strcmp(cmd, "map") == 0) return s_map_usage;
    if (strcmp(cmd, "keygen") == 0) return s_keygen_usage;
    return NULL;
}

int main(int argc, char **argv)
{
    log_init("qclient", LOG_WARN, false);
    cli_t cli = {.timeout_s = -1, .connect_s = 5};
    cli_submit_t cs = {0};
    qj_submit_opts_init(&cs.so);
    cs.inflight = 1000;
    bool help = false;
    /* The command is the first non-option word; find it first so that
     * options can be checked against it wherever they stand. */
    const char *cmd = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (argv[i][0] != '-') {
            /* skip values of options that take one */
            const char *prev = argv[i - 1];
            bool is_value = false;
            for (const struct option *o = s_options; o->name && i > 1; o++)
                if (o->has_arg == required_argument && prev[0] == '-' && prev[1] == '-' &&
                    strcmp(prev + 2, o->name) == 0)
                    is_value = true;
            if (!is_value) {
                cmd = argv[i];
                break;
            }
        }
    }
    if (cmd && strcmp(cmd, "bench") == 0)
        return bench_main(argc, argv);   /* parses its own options (bench.c) */
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", s_options, NULL)) != -1) {
        const char *a = optarg;
        if (opt == '?')
            return s_usage_error(NULL, "unknown option or missing value: %s", argv[optind - 1]);
        if (cmd && s_command_usage(cmd) && !s_allowed(cmd, opt))
            return s_usage_error(NULL, "%s does not take %s", cmd, argv[optind - (a ? 2 : 1)]);
        int bad = 0;
        switch (opt) {
        case 'h': help = true; break;
        case O_VERSION: printf("qclient %s\n", QJOB_VERSION); return CLI_OK;
        case O_BROKER: cli.broker = a; break;
        case O_JSON: cli.json = true; break;
        case O_TIMEOUT: bad = s_parse_double(a, 0, &cli.timeout_s); break;
        case O_CONNECT_TIMEOUT: bad = s_parse_double(a, 0, &cli.connect_s); break;
        case O_CURVE_SECRET: cli.curve_secret = a; break;
        case O_BROKER_KEY: cli.broker_key = a; break;
        case O_QUEUE: cs.so.queue = a; break;
        case O_PRIORITY: bad = s_parse_int(a, -128, 127, &cs.so.priority); break;
        case O_JOB_TIMEOUT: bad = s_parse_double(a, 0, &cs.so.timeout_s); break;
        case O_RETRIES: bad = s_parse_int(a, 0, 1000000, &cs.so.retries); break;
        case O_BACKOFF: bad = s_parse_double(a, 0, &cs.so.backoff_s); break;
        case O_DELAY: bad = s_parse_double(a, 0, &cs.so.delay_s); break;
        case O_KEY: cs.so.key = a; break;
        case O_DETACH: cs.so.detach = true; break;
        case O_BATCH: bad = s_parse_int(a, 1, 4096, &cs.batch); break;
        case O_INFLIGHT: bad = s_parse_int(a, 1, 1000000, &cs.inflight); break;
        case O_ORDERED: cs.ordered = true; break;
        }
        if (bad)
            return s_usage_error(NULL, "bad value '%s' for %s", a, argv[optind - 2]);
    }
    /* getopt_long moved the words after the options, in order: the
     * command comes first. */
    char **rest = argv + optind;
    int nrest = argc - optind;
    if (nrest > 0) {
        cmd = rest[0];
        rest++;
        nrest--;
    }
    const char *usage = s_command_usage(cmd);
    if (help) {
        fputs(usage ? usage : s_usage, stdout);
        fputs(s_exit_codes, stdout);
        return CLI_OK;
    }
    if (!cmd)
        return s_usage_error(NULL, "no command given");
    if (!usage)
        return s_usage_error(NULL, "unknown command '%s'", cmd);
    if (strcmp(cmd, "submit") == 0)
        return s_cmd_submit(&cli, rest, nrest, &cs);
    if (strcmp(cmd, "await") == 0)
        return s_cmd_await(&cli, rest, nrest);
    if (strcmp(cmd, "status") == 0)
        return s_cmd_ids(&cli, rest, nrest, false);
    if (strcmp(cmd, "cancel") == 0)
        return s_cmd_ids(&cli, rest, nrest, true);
    if (strcmp(cmd, "stats") == 0)
        return s_cmd_stats(&cli, nrest);
    if (strcmp(cmd, "keygen") == 0)
        return s_cmd_keygen(&cli, rest, nrest);
    if (nrest != 1)
        return s_usage_error("map ", "map takes one TASK (its args come on stdin)");
    return cli_map(&cli, rest[0], &cs);
}
