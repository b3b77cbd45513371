/* bench.c -- qclient bench: options, the processes of a self-contained
 * run, and writing the figures (bench.h).  The measurements themselves
 * are in bench_mode.c.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_mode.h"
#include "bench_proc.h"
#include "cli.h"
#include "clock.h"
#include "keys.h"
#include "mpjson.h"
#include "parse.h"
#include "qjlimits.h"

#define BENCH_START_MS 10000     /* a started program must be ready by then */
#define BENCH_STOP_MS 5000       /* and must exit this long after SIGTERM */
#define BENCH_DIR 512            /* bytes of the temp dir's path */
#define BENCH_PATH 1024          /* bytes of a program's or a file's path */

static const char *const s_usage =
    "usage: qclient [--broker EP] bench MODE [OPTIONS]\n"
    "\n"
    "Measure a qjob broker and its workers.\n"
    "\n"
    "Modes:\n"
    "  split        W pi samples cut into n = 1, 2, 4 ... 4096 jobs, each configuration run\n"
    "               R times: wall time (median, min, max), speed-up against n = 1, and the\n"
    "               per-job overhead (slope of time against n, least squares, large n)\n"
    "  batch        N tiny jobs submitted k = 1, 2, 4 ... 256 per message: jobs/s, cost per job;\n"
    "               with --auto, also one at a time with the client's adaptive batching,\n"
    "               against the best fixed k\n"
    "  latency      round trips of one job at a time: p50, p90, p99, p99.9, max\n"
    "  throughput   N jobs with at most W in flight: jobs/s\n"
    "  baseline     latency, throughput and batch through qfwd, a bare ZeroMQ forwarder with\n"
    "               echo workers: the limit of the transport on this machine\n"
    "\n"
    "Where:\n"
    "  --broker EP         the broker to measure (default $QJOB_BROKER, else " QJ_DEFAULT_BROKER ")\n"
    "  --spawn             start a private broker and workers on 127.0.0.1 for this run\n"
    "  --procs N           with --spawn: worker processes; also qfwd's echo workers (2)\n"
    "  --coros M           with --spawn: coroutines per worker process (1)\n"
    "  --prefetch P        with --spawn: jobs a worker process holds beyond its slots, or\n"
    "                      auto (qworker's default: adapts to the jobs' length)\n"
    "  --fwd EP            a running qfwd for the baseline (default: start one)\n"
    "  --vs-baseline       measure qfwd in the same run and show qjob's figures against it\n"
    "  --curve             the broker, workers and qfwd this run starts talk CURVE, with keys\n"
    "                      made for the run\n"
    "  --curve-secret FILE, --broker-key FILE\n"
    "                      CURVE to the --broker measured (default $QJOB_CURVE_SECRET and\n"
    "                      $QJOB_BROKER_KEY)\n"
    "\n"
    "What:\n"
    "  --work W            split: pi samples in all (2^25; 2^K is understood)\n"
    "  --min-n N           split: fewest jobs (1)\n"
    "  --max-n N           split: most jobs (4096); n doubles from --min-n\n"
    "  --fit-from N        split: fit the overhead over n >= N (--max-n / 16)\n"
    "  --repeat R          runs of each configuration, every mode (3); the figures shown are\n"
    "                      medians.  With --vs-baseline qjob's and qfwd's runs alternate and\n"
    "                      vs qfwd is the median (min-max) of the R paired ratios\n"
    "  --jobs N            batch, throughput: jobs (100000); latency: round trips (10000)\n"
    "  --rounds N          latency round trips (in baseline too)\n"
    "  --window W          jobs in flight at most (1000; batch: at least 4k)\n"
    "  --k-min K           batch: fewest jobs per message (1); k doubles from it\n"
    "  --k-max K           batch: most jobs per message (256)\n"
    "  --auto              batch: also run the client's adaptive batching (batch_max 0)\n"
    "  --payload BYTES     size of each job's argument (16)\n"
    "  --args JSON         each job's argument instead, e.g. --task sleep --args '{\"ms\": 100}'\n"
    "  --task NAME         the task of batch, latency and throughput jobs (noop)\n"
    "  --warmup N          latency: untimed round trips first (500)\n"
    "\n"
    "Output:\n"
    "  --json              the figures as one JSON object on stdout, not tables\n"
    "  --csv FILE          the tables as CSV (a line starting \"table,\" heads each table)\n"
    "  --svg FILE          a plot: split (log-log time against n, with the ideal line),\n"
    "                      batch and baseline (jobs/s against k), latency (distribution)\n"
    "  --timeout SEC       each timed run must end within SEC seconds (300)\n"
    "  --connect-timeout SEC  the broker must answer within SEC seconds (5)\n"
    "\n"
    "Exit codes: 0 ok, 1 a job or a run failed, 2 usage, 3 --timeout ran out,\n"
    "4 the broker did not answer.\n";

enum {
    O_BROKER = 256, O_JSON, O_TIMEOUT, O_CONNECT, O_SPAWN, O_PROCS, O_COROS, O_PREFETCH, O_FWD, O_VS,
    O_WORK, O_MIN_N, O_MAX_N, O_FIT, O_REPEAT, O_JOBS, O_ROUNDS, O_WINDOW, O_KMIN, O_KMAX, O_PAYLOAD,
    O_TASK, O_ARGS, O_WARMUP, O_CSV, O_SVG, O_HELP, O_CURVE, O_CURVE_SECRET, O_BROKER_KEY, O_AUTO,
};

static const struct option s_options[] = {
    {"broker", required_argument, NULL, O_BROKER},
    {"json", no_argument, NULL, O_JSON},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"connect-timeout", required_argument, NULL, O_CONNECT},
    {"spawn", no_argument, NULL, O_SPAWN},
    {"procs", required_argument, NULL, O_PROCS},
    {"coros", required_argument, NULL, O_COROS},
    {"prefetch", required_argument, NULL, O_PREFETCH},
    {"fwd", required_argument, NULL, O_FWD},
    {"vs-baseline", no_argument, NULL, O_VS},
    {"curve", no_argument, NULL, O_CURVE},
    {"curve-secret", required_argument, NULL, O_CURVE_SECRET},
    {"broker-key", required_argument, NULL, O_BROKER_KEY},
    {"work", required_argument, NULL, O_WORK},
    {"min-n", required_argument, NULL, O_MIN_N},
    {"max-n", required_argument, NULL, O_MAX_N},
    {"fit-from", required_argument, NULL, O_FIT},
    {"repeat", required_argument, NULL, O_REPEAT},
    {"jobs", required_argument, NULL, O_JOBS},
    {"rounds", required_argument, NULL, O_ROUNDS},
    {"window", required_argument, NULL, O_WINDOW},
    {"k-min", required_argument, NULL, O_KMIN},
    {"k-max", required_argument, NULL, O_KMAX},
    {"auto", no_argument, NULL, O_AUTO},
    {"payload", required_argument, NULL, O_PAYLOAD},
    {"args", required_argument, NULL, O_ARGS},
    {"task", required_argument, NULL, O_TASK},
    {"warmup", required_argument, NULL, O_WARMUP},
    {"csv", required_argument, NULL, O_CSV},
    {"svg", required_argument, NULL, O_SVG},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

/* Everything about one invocation. */
typedef struct bench {
    bench_cfg_t cfg;
    const char *broker;       /* --broker */
    const char *fwd;          /* --fwd */
    bool spawn, json;
    bool curve;               /* --curve: keys for the programs started */
    int procs, coros, prefetch;   /* prefetch -1: auto (qworker's default) */
    const char *csv, *svg;
    bool jobs_set, rounds_set, fit_set;
    char dir[BENCH_DIR];      /* temp dir of a run that starts programs, or "" */
    char broker_ep[256], fwd_ep[256];
    bench_proc_t *qbroker, *qworker, *qfwd;
    bench_env_t env;
    msgpack_sbuffer args;     /* --args, as msgpack (cfg.args points here) */
} bench_t;

static int s_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int s_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("qclient bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n(run 'qclient bench --help' for usage)\n", stderr);
    va_end(ap);
    return CLI_USAGE;
}

/* A count: decimal, or 2^K.  Returns 0, or -1 if s is neither or the
 * value is outside [min, max]. */
static int s_count(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (!errno && end[0] == '^' && v == 2 && end[1] && end[1] != '-') {
        unsigned long long e = strtoull(end + 1, &end, 10);
        v = e < 63 ? 1ull << e : 0;
    }
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int s_seconds(const char *s, double *out)
{
    double v;
    if (parse_double(s, 0, 1e6, &v) != 0 || !(v > 0))
        return -1;
    *out = v;
    return 0;
}

static bool s_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

/* Parse argv into b.  Returns -1 to go on, or an exit code. */
static int s_parse(bench_t *b, int argc, char **argv)
{
    bench_cfg_t *c = &b->cfg;
    int opt;
    uint64_t v;
    char err[256];
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", s_options, NULL)) != -1) {
        const char *a = optarg;
        bool bad = false;
        switch (opt) {
        case 'h':
        case O_HELP: fputs(s_usage, stdout); return CLI_OK;
        case O_BROKER: b->broker = a; break;
        case O_JSON: b->json = true; break;
        case O_TIMEOUT: bad = s_seconds(a, &c->timeout_s) < 0; break;
        case O_CONNECT: bad = s_seconds(a, &c->connect_s) < 0; break;
        case O_SPAWN: b->spawn = true; break;
        case O_PROCS: bad = s_count(a, 1, 64, &v) < 0; b->procs = (int)v; break;
        case O_COROS: bad = s_count(a, 1, 4096, &v) < 0; b->coros = (int)v; break;
        case O_PREFETCH:
            if (!strcmp(a, "auto")) {
                b->prefetch = -1;
                break;
            }
            bad = s_count(a, 0, 4096, &v) < 0;
            b->prefetch = (int)v;
            break;
        case O_FWD: b->fwd = a; break;
        case O_VS: c->vs_baseline = true; break;
        case O_CURVE: b->curve = true; break;
        case O_CURVE_SECRET: b->env.curve_secret = a; break;
        case O_BROKER_KEY: b->env.broker_key = a; break;
        case O_WORK: bad = s_count(a, 1, UINT64_MAX >> 1, &c->work) < 0; break;
        case O_MIN_N: bad = s_count(a, 1, 1u << 20, &c->min_n) < 0; break;
        case O_MAX_N: bad = s_count(a, 1, 1u << 20, &c->max_n) < 0; break;
        case O_FIT: bad = s_count(a, 1, 1u << 20, &c->fit_from) < 0; b->fit_set = true; break;
        case O_REPEAT: bad = s_count(a, 1, 1000, &v) < 0; c->repeat = (int)v; break;
        case O_JOBS: bad = s_count(a, 1, 1ull << 32, &c->jobs) < 0; b->jobs_set = true; break;
        case O_ROUNDS:
            bad = s_count(a, 1, 1u << 26, &v) < 0;
            c->rounds = (size_t)v;
            b->rounds_set = true;
            break;
        case O_WINDOW: bad = s_count(a, 1, 1u << 20, &c->window) < 0; break;
        case O_KMIN: bad = s_count(a, 1, QJ_MAX_BATCH, &c->k_min) < 0; break;
        case O_KMAX: bad = s_count(a, 1, QJ_MAX_BATCH, &c->k_max) < 0; break;
        case O_AUTO: c->batch_auto = true; break;
        case O_PAYLOAD: bad = s_count(a, 0, 1u << 20, &v) < 0; c->payload = (size_t)v; break;
        case O_TASK: c->task = a; break;
        case O_ARGS:
            msgpack_sbuffer_clear(&b->args);
            if (mpjson_from_text(a, &b->args, err, sizeof err) < 0)
                return s_usage_error("--args: bad JSON %s", err);
            c->args = b->args.data;
            c->args_len = b->args.size;
            break;
        case O_WARMUP: bad = s_count(a, 0, 1u << 26, &v) < 0; c->warmup = (size_t)v; break;
        case O_CSV: b->csv = a; break;
        case O_SVG: b->svg = a; break;
        default:
            return s_usage_error("unknown option or missing value: %s", argv[optind - 1]);
        }
        if (bad)
            return s_usage_error("bad value '%s' for %s", a, argv[optind - 2]);
    }
    /* getopt_long moved the words after the options, in order: the
     * command ("bench") first, then the mode. */
    int w = optind;
    if (w < argc && !strcmp(argv[w], "bench"))
        w++;
    if (w == argc)
        return s_usage_error("no mode given: split, batch, latency, throughput or baseline");
    if (w + 1 < argc)
        return s_usage_error("unexpected argument '%s'", argv[w + 1]);
    c->mode = argv[w];
    static const char *const modes[] = {"split", "batch", "latency", "throughput", "baseline"};
    bool known = false;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        known |= !strcmp(c->mode, modes[i]);
    if (!known)
        return s_usage_error("unknown mode '%s': split, batch, latency, throughput or baseline",
                             c->mode);
    if (c->batch_auto && strcmp(c->mode, "batch"))
        return s_usage_error("--auto is for the batch mode");
    if (b->jobs_set && !b->rounds_set && (!strcmp(c->mode, "latency") ||
                                          !strcmp(c->mode, "baseline")))
        c->rounds = (size_t)c->jobs;
    if (!b->fit_set)
        c->fit_from = c->max_n / 16 > c->min_n ? c->max_n / 16 : c->min_n;
    if (!s_pow2(c->min_n) && c->min_n != 1)
        return s_usage_error("--min-n must be a power of two (n doubles from it)");
    if (c->min_n > c->max_n)
        return s_usage_error("--min-n (%llu) is above --max-n (%llu)",
                             (unsigned long long)c->min_n, (unsigned long long)c->max_n);
    if (!s_pow2(c->k_min) && c->k_min != 1)
        return s_usage_error("--k-min must be a power of two (k doubles from it)");
    if (c->k_min > c->k_max)
        return s_usage_error("--k-min (%llu) is above --k-max (%llu)",
                             (unsigned long long)c->k_min, (unsigned long long)c->k_max);
    if (b->spawn && b->broker)
        return s_usage_error("--spawn starts its own broker: leave out --broker");
    if (b->curve && (b->broker || b->fwd || b->env.curve_secret || b->env.broker_key))
        return s_usage_error("--curve makes keys for the programs the run starts; for a "
                             "running broker give --curve-secret and --broker-key instead");
    if (b->curve && !b->spawn && strcmp(c->mode, "baseline") && !c->vs_baseline)
        return s_usage_error("--curve needs --spawn (or the baseline mode)");
    if (!strcmp(c->mode, "baseline") && (b->spawn || b->broker || c->vs_baseline))
        return s_usage_error("baseline measures qfwd alone: --spawn, --broker and "
                             "--vs-baseline do not apply");
    if (b->svg && !strcmp(c->mode, "throughput"))
        return s_usage_error("throughput has no plot; --svg is for split, batch, latency and "
                             "baseline");
    if (c->payload > QJ_MAX_ARGS - 16)
        return s_usage_error("--payload is at most %u bytes", QJ_MAX_ARGS - 16);
    return -1;
}

/* ------------------------------------------------------------ processes */

static int s_tempdir(bench_t *b, char *err, size_t errlen)
{
    if (b->dir[0])
        return 0;
    const char *tmp = getenv("TMPDIR");
    if (snprintf(b->dir, sizeof b->dir, "%s/qjob-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp") >=
        (int)sizeof b->dir) {
        snprintf(err, errlen, "$TMPDIR is too long a path: set it to a shorter one");
        b->dir[0] = '\0';
        return -1;
    }
    if (!mkdtemp(b->dir)) {
        snprintf(err, errlen, "cannot make a temporary directory %s: %s", b->dir,
                 strerror(errno));
        b->dir[0] = '\0';
        return -1;
    }
    return 0;
}

static bench_proc_t *s_start(bench_t *b, const char *name, char **argv, char *err,
                             size_t errlen)
{
    char log[BENCH_DIR + 32];
    snprintf(log, sizeof log, "%s/%s.log", b->dir, name);
    return bench_proc_start(argv, log, err, errlen);
}

/* Worker slots at the broker (from STATS), or -1 if it does not answer. */
static int s_slots(const bench_t *b, int timeout_ms)
{
    qj_options o;
    qj_options_init(&o);
    o.broker = b->env.broker;
    o.curve_secret = b->env.curve_secret;
    o.broker_key = b->env.broker_key;
    char err[256];
    qj_client *c = qj_client_new(&o, err, sizeof err);
    if (!c)
        return -1;
    int slots = -1;
    char *js = qj_client_ready(c, timeout_ms) == 0 ? qj_stats_json(c, timeout_ms, err,
                                                                   sizeof err) : NULL;
    json_t *root = js ? json_loads(js, 0, NULL) : NULL;
    if (root) {
        slots = 0;
        size_t i;
        json_t *w;
        json_array_foreach(json_object_get(root, "wlist"), i, w)
            slots += (int)json_integer_value(json_object_get(w, "slots"));
    }
    json_decref(root);
    free(js);
    qj_client_destroy(&c);
    return slots;
}

/* A key pair NAME.key / NAME.pub in the run's temp dir; into path (the
 * base name) if not NULL.  Returns 0, or -1 with a message. */
static int s_keygen(bench_t *b, const char *name, char *path, size_t len, char *err,
                    size_t errlen)
{
    char base[BENCH_DIR + 32];
    keys_pair_t pair;
    snprintf(base, sizeof base, "%s/%s", b->dir, name);
    int rc = keys_generate(&pair, err, errlen) == 0 &&
             keys_write(base, name, &pair, err, errlen) == 0 ? 0 : -1;
    explicit_bzero(&pair, sizeof pair);
    if (path)
        snprintf(path, len, "%s", base);
    return rc;
}

/* CURVE for a spawned broker and workers: their options, and the keys
 * of this run's clients (b->env). */
static int s_curve_qjob(bench_t *b, char **bargv, char **wargv, char *err, size_t errlen)
{
    static char k[3][BENCH_DIR + 32], opt[7][BENCH_DIR + 96];
    static const char *const names[3] = {"broker", "client", "worker"};
    for (int i = 0; i < 3; i++)
        if (s_keygen(b, names[i], k[i], sizeof k[i], err, errlen) < 0)
            return -1;
    snprintf(opt[0], sizeof opt[0], "--curve-secret=%s.key", k[0]);
    snprintf(opt[1], sizeof opt[1], "--clients-allow=%s.pub", k[1]);
    snprintf(opt[2], sizeof opt[2], "--workers-allow=%s.pub", k[2]);
    snprintf(opt[3], sizeof opt[3], "--curve-secret=%s.key", k[2]);
    snprintf(opt[4], sizeof opt[4], "--broker-key=%s.pub", k[0]);
    snprintf(opt[5], sizeof opt[5], "%s.key", k[1]);
    snprintf(opt[6], sizeof opt[6], "%s.pub", k[0]);
    bargv[0] = opt[0], bargv[1] = opt[1], bargv[2] = opt[2];
    wargv[0] = opt[3], wargv[1] = opt[4];
    b->env.curve_secret = opt[5];
    b->env.broker_key = opt[6];
    return 0;
}

static int s_spawn_qjob(bench_t *b, char *err, size_t errlen)
{
    char prog[BENCH_PATH], epfile[BENCH_DIR + 32], datadir[BENCH_DIR + 32];
    if (s_tempdir(b, err, errlen) < 0)
        return CLI_FAILED;
    snprintf(epfile, sizeof epfile, "%s/broker.endpoint", b->dir);
    /* A private journal: never the caller's ./qjob-data, whose leftover
     * jobs would be replayed into the measurement. */
    snprintf(datadir, sizeof datadir, "%s/data", b->dir);
    bench_proc_find("qbroker", prog, sizeof prog);
    char *bargv[] = {prog, "--bind", "tcp://127.0.0.1:*", "--endpoint-file", epfile,
                     "--data-dir", datadir, "--log-level", "warn", NULL, NULL, NULL, NULL};
    char *wcurve[2] = {NULL, NULL};
    if (b->curve && s_curve_qjob(b, bargv + 9, wcurve, err, errlen) < 0)
        return CLI_FAILED;
    b->qbroker = s_start(b, "qbroker", bargv, err, errlen);
    if (!b->qbroker || bench_proc_endpoint(b->qbroker, epfile, BENCH_START_MS, b->broker_ep,
                                           sizeof b->broker_ep, err, errlen) < 0)
        return CLI_FAILED;
    b->env.broker = b->broker_ep;
    b->env.broker_proc = b->qbroker;
    char procs[16], coros[16], prefetch[16];
    snprintf(procs, sizeof procs, "%d", b->procs);
    snprintf(coros, sizeof coros, "%d", b->coros);
    if (b->prefetch < 0)
        snprintf(prefetch, sizeof prefetch, "auto");
    else
        snprintf(prefetch, sizeof prefetch, "%d", b->prefetch);
    bench_proc_find("qworker", prog, sizeof prog);
    char *wargv[] = {prog, "--broker", b->broker_ep, "--procs", procs, "--coros", coros,
                     "--prefetch", prefetch, "--drain-timeout", "2", "--log-level", "warn",
                     wcurve[0], wcurve[1], NULL};
    b->qworker = s_start(b, "qworker", wargv, err, errlen);
    if (!b->qworker)
        return CLI_FAILED;
    uint64_t deadline = clock_mono_ms() + BENCH_START_MS;
    int want = b->procs * b->coros;
    while ((b->env.slots = s_slots(b, 1000)) < want) {
        if (!bench_proc_alive(b->qworker) || clock_mono_ms() >= deadline) {
            snprintf(err, errlen, "qworker's %d slots did not all join the broker within %d s "
                     "(see %s/qworker.log)", want, BENCH_START_MS / 1000, b->dir);
            return CLI_FAILED;
        }
        usleep(20000);
    }
    return CLI_OK;
}

static int s_spawn_fwd(bench_t *b, char *err, size_t errlen)
{
    char prog[BENCH_PATH], epfile[BENCH_DIR + 32], workers[16];
    if (s_tempdir(b, err, errlen) < 0)
        return CLI_FAILED;
    snprintf(epfile, sizeof epfile, "%s/qfwd.endpoint", b->dir);
    snprintf(workers, sizeof workers, "%d", b->procs);
    bench_proc_find("qfwd", prog, sizeof prog);
    static char fwd_key[BENCH_DIR + 48], fwd_opt[BENCH_DIR + 96];
    char *argv[] = {prog, "--bind", "tcp://127.0.0.1:*", "--endpoint-file", epfile, "--workers",
                    workers, "--log-level", "warn", NULL, NULL};
    if (b->curve) {
        char base[BENCH_DIR + 32];
        if (s_keygen(b, "fwd", base, sizeof base, err, errlen) < 0)
            return CLI_FAILED;
        snprintf(fwd_opt, sizeof fwd_opt, "--curve-secret=%s.key", base);
        snprintf(fwd_key, sizeof fwd_key, "%s.pub", base);
        argv[9] = fwd_opt;
        b->env.fwd_key = fwd_key;
    }
    b->qfwd = s_start(b, "qfwd", argv, err, errlen);
    if (!b->qfwd || bench_proc_endpoint(b->qfwd, epfile, BENCH_START_MS, b->fwd_ep,
                                        sizeof b->fwd_ep, err, errlen) < 0)
        return CLI_FAILED;
    b->env.fwd = b->fwd_ep;
    b->env.fwd_proc = b->qfwd;
    b->env.fwd_workers = b->procs;
    return CLI_OK;
}

/* Set up where to measure: a broker (given or started) with workers, and
 * qfwd if the mode needs it. */
static int s_setup(bench_t *b, char *err, size_t errlen)
{
    bool qjob = strcmp(b->cfg.mode, "baseline") != 0;
    bool fwd = !qjob || b->cfg.vs_baseline;
    int rc = CLI_OK;
    if (qjob && b->spawn) {
        rc = s_spawn_qjob(b, err, errlen);
    } else if (qjob) {
        const char *ep = b->broker ? b->broker : getenv("QJOB_BROKER");
        b->env.broker = ep && *ep ? ep : QJ_DEFAULT_BROKER;
        b->env.slots = s_slots(b, (int)(b->cfg.connect_s * 1000));
        if (b->env.slots < 0) {
            snprintf(err, errlen, "cannot reach the broker at %s (no answer within %g s): "
                     "start qbroker there, point --broker at it, or use --spawn",
                     b->env.broker, b->cfg.connect_s);
            rc = CLI_UNREACHABLE;
        } else if (b->env.slots == 0) {
            snprintf(err, errlen, "the broker at %s has no workers: start qworker --broker %s, "
                     "or use --spawn", b->env.broker, b->env.broker);
            rc = CLI_FAILED;
        }
    }
    if (rc == CLI_OK && fwd && b->fwd) {
        b->env.fwd = b->fwd;
    } else if (rc == CLI_OK && fwd) {
        rc = s_spawn_fwd(b, err, errlen);
    }
    return rc;
}

/* Stop what was started; remove the temp dir unless its logs are needed. */
/* Remove the spawned broker's private journal directory (its files:
 * LOCK, journal.*, snapshot.*), which nothing else uses. */
static void s_remove_data(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[BENCH_DIR + 64 + 256];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

static void s_teardown(bench_t *b, bool keep_logs)
{
    bench_proc_stop(&b->qworker, BENCH_STOP_MS);
    bench_proc_stop(&b->qbroker, BENCH_STOP_MS);
    bench_proc_stop(&b->qfwd, BENCH_STOP_MS);
    if (!b->dir[0])
        return;
    if (keep_logs) {
        fprintf(stderr, "qclient bench: the logs of the programs it started are in %s\n",
                b->dir);
        return;
    }
    static const char *const files[] = {
        "qbroker.log", "qworker.log", "qfwd.log", "broker.endpoint", "qfwd.endpoint",
        "broker.key", "broker.pub", "client.key", "client.pub", "worker.key", "worker.pub",
        "fwd.key", "fwd.pub"};
    char path[BENCH_DIR + 32];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", b->dir, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/data", b->dir);
    s_remove_data(path);
    rmdir(b->dir);
}

/* ------------------------------------------------------------ output */

static json_t *s_config_json(const bench_t *b)
{
    const bench_cfg_t *c = &b->cfg;
    json_t *o = json_pack("{s:s, s:b, s:f, s:b, s:i}", "mode", c->mode, "spawned", b->spawn,
                          "timeout_s", c->timeout_s, "curve",
                          b->curve || b->env.curve_secret || b->env.broker_key ||
                              getenv("QJOB_CURVE_SECRET"), "repeat", c->repeat);
    if (b->env.broker) {
        json_object_set_new(o, "broker", json_string(b->env.broker));
        json_object_set_new(o, "slots", json_integer(b->env.slots));
    }
    if (b->env.fwd) {
        json_object_set_new(o, "fwd", json_string(b->env.fwd));
        if (b->qfwd)
            json_object_set_new(o, "fwd_workers", json_integer(b->env.fwd_workers));
    }
    if (b->spawn) {
        json_object_set_new(o, "procs", json_integer(b->procs));
        json_object_set_new(o, "coros", json_integer(b->coros));
        json_object_set_new(o, "prefetch", b->prefetch < 0 ? json_string("auto")
                                                          : json_integer(b->prefetch));
    }
    if (!strcmp(c->mode, "split")) {
        json_object_set_new(o, "work", json_integer((json_int_t)c->work));
        json_object_set_new(o, "min_n", json_integer((json_int_t)c->min_n));
        json_object_set_new(o, "max_n", json_integer((json_int_t)c->max_n));
        json_object_set_new(o, "fit_from", json_integer((json_int_t)c->fit_from));
        return o;
    }
    json_object_set_new(o, "task", json_string(strcmp(c->mode, "baseline") ? c->task : "echo"));
    json_object_set_new(o, "payload", json_integer((json_int_t)c->payload));
    if (strcmp(c->mode, "latency")) {
        json_object_set_new(o, "jobs", json_integer((json_int_t)c->jobs));
        json_object_set_new(o, "window", json_integer((json_int_t)c->window));
    }
    if (!strcmp(c->mode, "batch") || !strcmp(c->mode, "baseline")) {
        json_object_set_new(o, "k_min", json_integer((json_int_t)c->k_min));
        json_object_set_new(o, "k_max", json_integer((json_int_t)c->k_max));
    }
    if (!strcmp(c->mode, "batch"))
        json_object_set_new(o, "auto", json_boolean(c->batch_auto));
    if (!strcmp(c->mode, "latency") || !strcmp(c->mode, "baseline")) {
        json_object_set_new(o, "rounds", json_integer((json_int_t)c->rounds));
        json_object_set_new(o, "warmup", json_integer((json_int_t)c->warmup));
    }
    return o;
}

static int s_write(const bench_t *b, const bench_out_t *out, char *err, size_t errlen)
{
    if (b->json) {
        json_t *tables = json_array();
        for (int i = 0; i < out->ntables; i++)
            json_array_append_new(tables, bench_table_json(out->tables[i]));
        json_t *doc = json_pack("{s:s, s:o, s:o}", "mode", b->cfg.mode, "config",
                                s_config_json(b), "tables", tables);
        if (b->svg)
            json_object_set_new(doc, "svg", json_string(b->svg));
        if (b->csv)
            json_object_set_new(doc, "csv", json_string(b->csv));
        json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(doc);
    } else {
        for (int i = 0; i < out->ntables; i++) {
            if (i)
                fputc('\n', stdout);
            bench_table_print(out->tables[i], stdout);
        }
    }
    fflush(stdout);
    if (b->csv) {
        FILE *f = fopen(b->csv, "w");
        if (!f) {
            snprintf(err, errlen, "cannot write %s: %s", b->csv, strerror(errno));
            return -1;
        }
        for (int i = 0; i < out->ntables; i++)
            bench_table_csv(out->tables[i], f);
        if (fclose(f) != 0) {
            snprintf(err, errlen, "cannot write %s: %s", b->csv, strerror(errno));
            return -1;
        }
    }
    if (b->svg) {
        if (!out->plot) {
            snprintf(err, errlen, "no plot to write to %s", b->svg);
            return -1;
        }
        if (bench_plot_write(out->plot, b->svg, err, errlen) < 0)
            return -1;
    }
    return 0;
}

int bench_main(int argc, char **argv)
{
    bench_t b = {0};
    b.cfg = (bench_cfg_t){
        .timeout_s = 300, .connect_s = 5,
        .work = 1ull << 25, .min_n = 1, .max_n = 4096, .repeat = 3,
        .task = "noop", .payload = 16, .jobs = 100000, .rounds = 10000, .window = 1000,
        .k_min = 1, .k_max = 256, .warmup = 500,
    };
    b.procs = 2;
    b.coros = 1;
    b.prefetch = -1;
    int rc = s_parse(&b, argc, argv);
    if (rc >= 0)
        return rc;
    bench_bar_init(&b.env.bar, false);
    bench_proc_stop_on_signal();
    char err[2048] = "";
    rc = s_setup(&b, err, sizeof err);
    bench_out_t out = {0};
    if (rc == CLI_OK)
        rc = bench_mode_run(&b.cfg, &b.env, &out, err, sizeof err);
    if (rc == CLI_OK && s_write(&b, &out, err, sizeof err) < 0)
        rc = CLI_FAILED;
    bench_mode_out_free(&out);
    if (rc != CLI_OK)
        fprintf(stderr, "qclient bench %s: %s\n", b.cfg.mode, err);
    s_teardown(&b, rc != CLI_OK && rc != CLI_USAGE);
    msgpack_sbuffer_destroy(&b.args);
    return rc;
}
