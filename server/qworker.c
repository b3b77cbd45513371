/* qworker -- runs qjob tasks for a broker, in forked processes and coroutines.
 *
 * The supervisor (this process) parses the options, loads the task
 * plugins (so a bad one fails here, before any fork) and keeps --procs
 * worker processes running (super.c).  Each worker process has its own
 * ZeroMQ context and connection and runs its jobs in coroutines
 * (wproc.c, wjobs.c).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builtin.h"
#include "config.h"
#include "parse.h"
#include "coro.h"
#include "exectask.h"
#include "keys.h"
#include "qjlimits.h"
#include "log.h"
#include "qjob.h"
#include "registry.h"
#include "super.h"
#include "wproc.h"

#define EXIT_USAGE 2

/* Adaptive prefetch (the default): a worker process holds up to this
 * many jobs beyond its coroutines when its jobs are tiny (wjobs.h). */
#define PREFETCH_AUTO_MAX 1024

/* Everything the options say, shared with the children. */
typedef struct config {
    const char *broker;
    const char *name;         /* --name, or NULL for host:pid */
    int procs;
    unsigned coros, prefetch;
    unsigned prefetch_max;    /* > prefetch: adaptive (the default), see wjobs.h */
    char **queues;
    size_t nqueues;
    const char **plugins;
    size_t nplugins;
    uint64_t max_jobs, max_rss_mb;
    uint64_t stack_kb;
    double drain_s;
    log_level_t level;
    bool json;
    qj_registry *reg;
    const char *curve_secret, *broker_key; /* key files; NULL = $QJOB_CURVE_SECRET etc. */
    keys_client_t keys;                    /* loaded from them before any fork */
    bool curve;
    bool allow_exec;                       /* register the exec task */
} config_t;

static void s_usage(FILE *out)
{
    fprintf(out,
"Usage: qworker [OPTION]...\n"
"Run qjob tasks for a broker: --procs worker processes, each running up to\n"
"--coros jobs at once in coroutines.\n"
"\n"
"  --broker EP              broker endpoint (default $QJOB_BROKER, else " QJ_DEFAULT_BROKER ")\n"
"  --procs N                worker processes (default: number of cores)\n"
"  --coros M                jobs running at once per process (default 1: a process pool)\n"
"  --prefetch P             jobs held ready beyond those, or auto (the default):\n"
"                           as many as make about 3 ms of work, by the jobs'\n"
"                           recent length (none for jobs over 3 ms, up to 1024)\n"
"  --queues a,b             queues to serve (default: default)\n"
"  --tasks PATH.so          load a task plugin (repeatable); it exports\n"
"                           int qjob_plugin_init(qj_registry *)\n"
"  --max-jobs-per-child N   replace a worker process after N jobs\n"
"  --max-rss MB             replace a worker process above MB of memory\n"
"  --stack KB               coroutine stack size (default 64)\n"
"  --name NAME              name shown by the broker (default host:pid), /index appended\n"
"  --drain-timeout SEC      on SIGTERM, time running jobs get to finish (default 30)\n"
"  --curve-secret FILE      talk CURVE with this secret key file (qclient keygen;\n"
"                           default $QJOB_CURVE_SECRET); its public key must be in the\n"
"                           broker's --workers-allow\n"
"  --broker-key FILE        the broker's public key file (default $QJOB_BROKER_KEY)\n"
"  --allow-exec             register the exec task, which runs any command line a\n"
"                           client sends: only for brokers whose clients you trust\n"
"  --log-level LEVEL        error, warn, info (default) or debug\n"
"  --log-format FORMAT      text (default) or json\n"
"  --config FILE            read options from FILE first, [qjob] and [qworker]\n"
"                           sections (default $QJOB_CONFIG); the command line wins\n"
"  --help, --version\n"
"\n"
"SIGTERM or SIGINT drains: no new jobs, running ones finish, then exit 0; a\n"
"second one leaves at once (the broker requeues what was running).\n"
"Built-in tasks: noop, echo, sleep {\"ms\"}, pi {\"samples\"[, \"seed\"]},\n"
"fail {\"message\"}, pi_split {\"samples\", \"parts\"}; with --allow-exec, exec\n"
"{\"argv\": [...], \"timeout_ms\", \"max_output\"}.\n"
"Exit status: 0 after a drain, 2 on a usage or configuration error.\n");
}

/* Parse an integer option in [lo, hi]; exits with a usage error if not. */
static uint64_t s_uint(const char *opt, const char *v, uint64_t lo, uint64_t hi)
{
    uint64_t n;
    if (parse_u64(v, lo, hi, &n) != 0) {
        fprintf(stderr, "qworker: --%s takes a whole number from %" PRIu64 " to %" PRIu64
                ", not '%s'\n", opt, lo, hi, v);
        exit(EXIT_USAGE);
    }
    return n;
}

/* Split "a,b" into queue names, each checked against the protocol's limits. */
static void s_parse_queues(config_t *c, const char *v)
{
    char *copy = strdup(v);
    if (!copy) {
        perror("qworker");
        exit(1);
    }
    c->nqueues = 0;
    for (char *save = NULL, *q = strtok_r(copy, ",", &save); q; q = strtok_r(NULL, ",", &save)) {
        if (strlen(q) > QJ_MAX_QUEUE_NAME || c->nqueues == QJ_MAX_QUEUES) {
            fprintf(stderr, "qworker: --queues takes at most %d names of 1 to %d bytes "
                    "separated by commas\n", QJ_MAX_QUEUES, QJ_MAX_QUEUE_NAME);
            exit(EXIT_USAGE);
        }
        char **grown = realloc(c->queues, (c->nqueues + 1) * sizeof *grown);
        if (!grown || !(grown[c->nqueues] = strdup(q))) {
            perror("qworker");
            exit(1);
        }
        c->queues = grown;
        c->nqueues++;
    }
    free(copy);
    if (c->nqueues == 0) {
        fprintf(stderr, "qworker: --queues needs at least one queue name\n");
        exit(EXIT_USAGE);
    }
}

static void s_parse(config_t *c, int argc, char **argv)
{
    enum { O_BROKER = 256, O_PROCS, O_COROS, O_PREFETCH, O_QUEUES, O_TASKS, O_MAX_JOBS,
           O_MAX_RSS, O_STACK, O_NAME, O_DRAIN, O_LEVEL, O_FORMAT, O_HELP, O_VERSION,
           O_CURVE_SECRET, O_BROKER_KEY, O_ALLOW_EXEC };
    static const struct option opts[] = {
        {"broker", required_argument, NULL, O_BROKER},
        {"procs", required_argument, NULL, O_PROCS},
        {"coros", required_argument, NULL, O_COROS},
        {"prefetch", required_argument, NULL, O_PREFETCH},
        {"queues", required_argument, NULL, O_QUEUES},
        {"tasks", required_argument, NULL, O_TASKS},
        {"max-jobs-per-child", required_argument, NULL, O_MAX_JOBS},
        {"max-rss", required_argument, NULL, O_MAX_RSS},
        {"stack", required_argument, NULL, O_STACK},
        {"name", required_argument, NULL, O_NAME},
        {"drain-timeout", required_argument, NULL, O_DRAIN},
        {"log-level", required_argument, NULL, O_LEVEL},
        {"log-format", required_argument, NULL, O_FORMAT},
        {"curve-secret", required_argument, NULL, O_CURVE_SECRET},
        {"broker-key", required_argument, NULL, O_BROKER_KEY},
        {"allow-exec", no_argument, NULL, O_ALLOW_EXEC},
        {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0},
    };
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    c->procs = cores > 0 ? (int)cores : 1;
    c->coros = 1;
    c->prefetch_max = PREFETCH_AUTO_MAX;
    c->stack_kb = CORO_STACK_DEFAULT / 1024;
    c->drain_s = 30;
    c->level = LOG_INFO;
    c->broker = getenv("QJOB_BROKER");
    if (!c->broker || !*c->broker)
        c->broker = QJ_DEFAULT_BROKER;

    cfg_apply_or_exit("qworker", opts, &argc, &argv);
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_BROKER: c->broker = optarg; break;
        case O_PROCS: c->procs = (int)s_uint("procs", optarg, 1, 1024); break;
        case O_COROS: c->coros = (unsigned)s_uint("coros", optarg, 1, 100000); break;
        case O_PREFETCH:
            if (strcmp(optarg, "auto") == 0) {
                c->prefetch = 0;
                c->prefetch_max = PREFETCH_AUTO_MAX;
            } else {
                c->prefetch = (unsigned)s_uint("prefetch", optarg, 0, 100000);
                c->prefetch_max = 0;
            }
            break;
        case O_QUEUES: s_parse_queues(c, optarg); break;
        case O_TASKS: {
            const char **grown = realloc(c->plugins, (c->nplugins + 1) * sizeof *grown);
            if (!grown) {
                perror("qworker");
                exit(1);
            }
            c->plugins = grown;
            c->plugins[c->nplugins++] = optarg;
            break;
        }
        case O_MAX_JOBS: c->max_jobs = s_uint("max-jobs-per-child", optarg, 1, UINT64_MAX); break;
        case O_MAX_RSS: c->max_rss_mb = s_uint("max-rss", optarg, 1, 1u << 30); break;
        case O_STACK: c->stack_kb = s_uint("stack", optarg, 16, 1u << 20); break;
        case O_NAME:
            if (!*optarg || strlen(optarg) > QJ_MAX_NAME - 8) {
                fprintf(stderr, "qworker: --name takes 1 to %d bytes\n", QJ_MAX_NAME - 8);
                exit(EXIT_USAGE);
            }
            c->name = optarg;
            break;
        case O_DRAIN: {
            char *end;
            c->drain_s = strtod(optarg, &end);
            if (end == optarg || *end || !(c->drain_s >= 0 && c->drain_s <= 86400)) {
                fprintf(stderr, "qworker: --drain-timeout takes seconds from 0 to 86400, "
                        "not '%s'\n", optarg);
                exit(EXIT_USAGE);
            }
            break;
        }
        case O_LEVEL:
            if (log_parse_level(optarg, &c->level) != 0) {
                fprintf(stderr, "qworker: --log-level takes error, warn, info or debug\n");
                exit(EXIT_USAGE);
            }
            break;
        case O_FORMAT:
            if (strcmp(optarg, "text") != 0 && strcmp(optarg, "json") != 0) {
                fprintf(stderr, "qworker: --log-format takes text or json\n");
                exit(EXIT_USAGE);
            }
            c->json = strcmp(optarg, "json") == 0;
            break;
        case O_CURVE_SECRET: c->curve_secret = optarg; break;
        case O_BROKER_KEY: c->broker_key = optarg; break;
        case O_ALLOW_EXEC: c->allow_exec = true; break;
        case O_HELP: s_usage(stdout); exit(0);
        case O_VERSION:
            printf("qworker %s (coroutines: %s)\n", QJOB_VERSION, coro_backend());
            exit(0);
        default:
            fprintf(stderr, "Try 'qworker --help'.\n");
            exit(EXIT_USAGE);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qworker: unexpected argument '%s'; try 'qworker --help'\n", argv[optind]);
        exit(EXIT_USAGE);
    }
    if ((uint64_t)c->coros + c->prefetch > 1000000) {
        fprintf(stderr, "qworker: --coros plus --prefetch must be at most 1000000\n");
        exit(EXIT_USAGE);
    }
}

/* A worker process (after fork). */
static int s_child(int index, void *arg)
{
    const config_t *c = arg;
    log_init("qworker", c->level, c->json);   /* the pid in log lines changed */
    char name[QJ_MAX_NAME + 1];
    if (c->name) {
        snprintf(name, sizeof name, "%s/%d", c->name, index);
    } else {
        char host[64] = "localhost";
        gethostname(host, sizeof host - 1);
        snprintf(name, sizeof name, "%s:%ld/%d", host, (long)getpid(), index);
    }
    wproc_opts_t o = {
        .broker = c->broker, .name = name,
        .queues = (const char *const *)c->queues, .nqueues = c->nqueues,
        .coros = c->coros, .prefetch = c->prefetch, .prefetch_max = c->prefetch_max,
        .stack_size = (size_t)c->stack_kb * 1024,
        .max_jobs = c->max_jobs, .max_rss = c->max_rss_mb << 20,
        .drain_ms = (uint32_t)(c->drain_s * 1000), .reg = c->reg,
        .curve = c->curve ? &c->keys : NULL,
        .watch = super_child_watch(),
    };
    char err[300];
    wproc_t *w = wproc_new(&o, err, sizeof err);
    if (!w) {
        log_error("worker process %d: %s", index, err);
        return WPROC_EXIT_FAIL;
    }
    int status = wproc_run(w);
    wproc_destroy(&w);
    return status;
}

int main(int argc, char **argv)
{
    config_t c = {0};
    s_parse(&c, argc, argv);
    log_init("qworker", c.level, c.json);
    if (!strstr(c.broker, "://")) {
        log_error("--broker '%s' is not an endpoint: use tcp://HOST:PORT or ipc:///PATH",
                  c.broker);
        return EXIT_USAGE;
    }
    char kerr[600];
    int curve = keys_client_load(c.curve_secret, c.broker_key, &c.keys, kerr, sizeof kerr);
    if (curve < 0) {
        log_error("%s", kerr);
        return EXIT_USAGE;
    }
    c.curve = curve > 0;
    if (c.curve)
        log_info("CURVE on: worker key %s, broker key %s", c.keys.mine.public_z85,
                 c.keys.broker_z85);
    int status = 1;
    c.reg = qj_registry_new();
    if (!c.reg || builtin_register(c.reg) != 0 ||
        (c.allow_exec && exectask_register(c.reg) != 0)) {
        log_error("cannot register the built-in tasks: %s",
                  c.reg ? qj_registry_error(c.reg) : "out of memory");
        goto done;
    }
    for (size_t i = 0; i < c.nplugins; i++) {
        char err[1024];
        if (qj_registry_load(c.reg, c.plugins[i], err, sizeof err) != 0) {
            log_error("%s", err);
            status = EXIT_USAGE;
            goto done;
        }
    }
    char names[1024];
    qj_registry_names(c.reg, names, sizeof names);
    for (size_t i = 0; i < qj_registry_count(c.reg); i++) {
        const char *name, *help, *origin;
        qj_registry_task(c.reg, i, &name, &help, &origin);
        log_debug("task %s (%s): %s", name, origin, help);
    }
    char pf[32];
    if (c.prefetch_max > c.prefetch)
        snprintf(pf, sizeof pf, "%u-%u adaptive", c.prefetch, c.prefetch_max);
    else
        snprintf(pf, sizeof pf, "%u", c.prefetch);
    log_info("qworker %s: %d processes x %u coroutines (+%s prefetch) for %s; tasks: %s",
             QJOB_VERSION, c.procs, c.coros, pf, c.broker, names);

    super_opts_t so = {c.procs, s_child, &c, (uint32_t)(c.drain_s * 1000) + 5000};
    super_t *s = super_new(&so);
    if (!s) {
        log_error("out of memory");
        goto done;
    }
    status = super_run(s);
    super_destroy(&s);
    log_info("qworker stopped");
done:
    qj_registry_destroy(&c.reg);
    for (size_t i = 0; i < c.nqueues; i++)
        free(c.queues[i]);
    free(c.queues);
    free(c.plugins);
    explicit_bzero(&c.keys, sizeof c.keys);
    return status;
}
