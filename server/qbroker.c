/* qbroker -- the qjob broker: options, signals, and the loop (broker.c). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "config.h"
#include "parse.h"
#include "log.h"

#define QBROKER_VERSION "0.1.0"
#define MAX_BINDS 64
#define MAX_DEPTH_RULES 256
#define DEFAULT_DATA_DIR "qjob-data"
#define DEFAULT_COMPACT_MB 64

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_usage(FILE *out)
{
    fprintf(out,
        "usage: qbroker [OPTIONS]\n"
        "\n"
        "The qjob broker: takes jobs from clients and hands them to workers over ZeroMQ.\n"
        "\n"
        "  --bind EP             endpoint to listen on (repeatable; default tcp://127.0.0.1:5555;\n"
        "                        tcp://127.0.0.1:* picks a free port)\n"
        "  --endpoint-file PATH  after binding, write the bound endpoints there, one a line\n"
        "  --insecure            allow binding addresses beyond loopback without CURVE (peers\n"
        "                        are not authenticated: anyone who reaches the port can submit jobs)\n"
        "  --curve-secret FILE   turn CURVE on: the broker's secret key file (qclient keygen;\n"
        "                        default $QJOB_CURVE_SECRET); peers are authenticated, traffic\n"
        "                        encrypted, and any address may be bound\n"
        "  --clients-allow PATH  public keys admitted as clients: a file of keys, or a directory\n"
        "                        of NAME.pub files\n"
        "  --workers-allow PATH  public keys admitted as workers (a key has one role)\n"
        "  --name NAME           broker name sent to peers in WELCOME\n"
        "  --heartbeat MS        heartbeat interval (1000)\n"
        "  --liveness N          missed heartbeats before a peer is dead (3)\n"
        "  --result-ttl SEC      keep final results this long for await/status (3600)\n"
        "  --max-results N       and at most this many, oldest dropped first (100000)\n"
        "  --max-depth [Q=]N     refuse submits to queue Q (or to any queue) holding N jobs\n"
        "                        waiting (ready or delayed); repeatable; 0 = no bound (default)\n"
        "  --lost-attempts N     attempts a job gets when its workers die under it, before it\n"
        "                        is dead as lost (3; at least 1 + its retries)\n"
        "  --max-memory MB       refuse submits (queue full) while the jobs and results held\n"
        "                        take this much memory; 0 = no bound (default)\n"
        "  --data-dir DIR        the journal's directory, created if missing\n"
        "                        (./" DEFAULT_DATA_DIR "); one broker per DIR: jobs and results\n"
        "                        in it survive a restart\n"
        "  --fsync MODE          when a submit counts as recorded: always (fdatasync by the loop\n"
        "                        before acknowledging, one per turn), batch (default: group\n"
        "                        commit, fdatasync by a thread shared by the submits meanwhile),\n"
        "                        off (written, not synced: survives a crash of the broker, not\n"
        "                        of the machine)\n"
        "  --journal-compact MB  compact the journal once its log passes MB (%d) and the\n"
        "                        size of its last snapshot\n"
        "  --metrics-bind HOST:PORT  serve the figures of qclient stats over HTTP in the\n"
        "                        Prometheus text format at http://HOST:PORT/metrics (as\n"
        "                        127.0.0.1:9187; port 0 picks a free one); off by default.\n"
        "                        No authentication: beyond loopback it needs CURVE or --insecure\n"
        "  --metrics-file PATH   after starting it, write the metrics URL there (atomically)\n"
        "  --log-level LEVEL     error, warn, info (default) or debug\n"
        "  --log-format FORMAT   text (default) or json\n"
        "  --config FILE         read options from FILE first, [qjob] and [qbroker]\n"
        "                        sections (default $QJOB_CONFIG); the command line wins\n"
        "  --help                this text\n"
        "  --version             the version\n"
        "\n"
        "SIGINT or SIGTERM: stop reading, make the journal durable, say goodbye to every\n"
        "peer and exit 0.\n"
        "Exit status: 0 after a clean shutdown, 1 if the broker could not start or failed,\n"
        "2 for a usage error.\n", DEFAULT_COMPACT_MB);
}

/* Parse an unsigned number in [min, max]; 0 or -1. */
static int s_depth_rule(const char *arg, broker_depth_t *rule)
{
    const char *eq = strrchr(arg, '=');
    const char *num = eq ? eq + 1 : arg;
    size_t qlen = eq ? (size_t)(eq - arg) : 0;
    uint64_t n;
    if ((eq && (qlen == 0 || qlen > QJ_MAX_QUEUE_NAME)) || parse_u64(num, 0, UINT64_MAX, &n))
        return -1;
    memset(rule, 0, sizeof *rule);
    memcpy(rule->queue, arg, qlen);
    rule->depth = n;
    return 0;
}

/* CURVE from curve[] (secret, clients, workers), or the warning that
 * goes with --insecure.  Returns 0, or -1 (logged: a usage error). */
static int s_security(broker_config_t *cfg, const char *const curve[3])
{
    char err[512];
    if (curve[0] && *curve[0]) {
        if (!(cfg->zap = zap_new(curve[0], curve[1], curve[2], err, sizeof err))) {
            log_error("%s", err);
            return -1;
        }
        log_info("CURVE on: broker key %s; %zu client key(s), %zu worker key(s) allowed",
                 zap_public(cfg->zap), zap_allowed(cfg->zap, MSG_ROLE_CLIENT),
                 zap_allowed(cfg->zap, MSG_ROLE_WORKER));
        return 0;
    }
    if (curve[1] || curve[2]) {
        log_error("--clients-allow and --workers-allow need --curve-secret (the broker's "
                  "secret key file; make one with qclient keygen)");
        return -1;
    }
    if (cfg->insecure)
        log_warn("*** --insecure and no CURVE: peers are NOT authenticated and traffic is NOT "
                 "encrypted. Anyone who can reach a bound address can run jobs on your "
                 "workers and read every job's arguments and results. Use --curve-secret "
                 "with --clients-allow / --workers-allow instead. ***");
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"bind", required_argument, NULL, 'b'},
        {"endpoint-file", required_argument, NULL, 'e'},
        {"insecure", no_argument, NULL, 'I'},
        {"curve-secret", required_argument, NULL, 'K'},
        {"clients-allow", required_argument, NULL, 'c'},
        {"workers-allow", required_argument, NULL, 'w'},
        {"name", required_argument, NULL, 'n'},
        {"heartbeat", required_argument, NULL, 'H'},
        {"liveness", required_argument, NULL, 'L'},
        {"result-ttl", required_argument, NULL, 't'},
        {"max-results", required_argument, NULL, 'r'},
        {"max-depth", required_argument, NULL, 'd'},
        {"lost-attempts", required_argument, NULL, 'a'},
        {"max-memory", required_argument, NULL, 'm'},
        {"data-dir", required_argument, NULL, 'D'},
        {"fsync", required_argument, NULL, 'F'},
        {"journal-compact", required_argument, NULL, 'C'},
        {"metrics-bind", required_argument, NULL, 'M'},
        {"metrics-file", required_argument, NULL, 'U'},
        {"log-level", required_argument, NULL, 'l'},
        {"log-format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    cfg_apply_or_exit("qbroker", opts, &argc, &argv);
    static const char *binds[MAX_BINDS];
    static broker_depth_t depths[MAX_DEPTH_RULES];
    broker_config_t cfg = {
        .binds = binds, .result_ttl_s = 3600, .max_results = 100000,
        .heartbeat_ms = 1000, .liveness = 3, .lost_attempts = 3, .depths = depths,
        .data_dir = DEFAULT_DATA_DIR, .fsync = JOURNAL_SYNC_BATCH,
        .compact_bytes = (uint64_t)DEFAULT_COMPACT_MB << 20,
    };
    log_level_t level = LOG_INFO;
    bool json = false;
    /* --curve-secret, --clients-allow, --workers-allow */
    const char *curve[3] = {getenv("QJOB_CURVE_SECRET"), NULL, NULL};
    uint64_t n;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char *bad = NULL;
        switch (c) {
        case 'b':
            if (cfg.nbinds == MAX_BINDS)
                bad = "too many --bind options";
            else
                binds[cfg.nbinds++] = optarg;
            break;
        case 'e': cfg.endpoint_file = optarg; break;
        case 'I': cfg.insecure = true; break;
        case 'K': curve[0] = optarg; break;
        case 'c': curve[1] = optarg; break;
        case 'w': curve[2] = optarg; break;
        case 'n':
            if (strlen(optarg) > QJ_MAX_NAME) bad = "--name takes at most 128 bytes";
            else cfg.name = optarg;
            break;
        case 'H':
            if (parse_u64(optarg, 1, 600000, &n)) bad = "--heartbeat takes milliseconds, 1..600000";
            else cfg.heartbeat_ms = (uint32_t)n;
            break;
        case 'L':
            if (parse_u64(optarg, 1, 1000, &n)) bad = "--liveness takes a count, 1..1000";
            else cfg.liveness = (uint32_t)n;
            break;
        case 't':
            if (parse_u64(optarg, 0, 100ull * 365 * 86400, &n)) bad = "--result-ttl takes seconds";
            else cfg.result_ttl_s = n;
            break;
        case 'r':
            if (parse_u64(optarg, 0, UINT64_MAX, &n)) bad = "--max-results takes a count";
            else cfg.max_results = n;
            break;
        case 'd':
            if (cfg.ndepths == MAX_DEPTH_RULES || s_depth_rule(optarg, &depths[cfg.ndepths]))
                bad = "--max-depth takes N or QUEUE=N (queue names are 1..64 bytes)";
            else
                cfg.ndepths++;
            break;
        case 'a':
            if (parse_u64(optarg, 1, 1000, &n)) bad = "--lost-attempts takes a count, 1..1000";
            else cfg.lost_attempts = (uint32_t)n;
            break;
        case 'm':
            if (parse_u64(optarg, 0, 1ull << 30, &n)) bad = "--max-memory takes megabytes";
            else cfg.max_memory = n << 20;
            break;
        case 'D':
            if (!*optarg) bad = "--data-dir takes a directory";
            else cfg.data_dir = optarg;
            break;
        case 'F':
            if (!strcmp(optarg, "always")) cfg.fsync = JOURNAL_SYNC_ALWAYS;
            else if (!strcmp(optarg, "batch")) cfg.fsync = JOURNAL_SYNC_BATCH;
            else if (!strcmp(optarg, "off")) cfg.fsync = JOURNAL_SYNC_OFF;
            else bad = "--fsync is always, batch or off";
            break;
        case 'C':
            if (parse_u64(optarg, 1, 1ull << 30, &n))
                bad = "--journal-compact takes megabytes, 1 or more";
            else cfg.compact_bytes = n << 20;
            break;
        case 'M':
            if (!*optarg) bad = "--metrics-bind takes HOST:PORT";
            else cfg.metrics_bind = optarg;
            break;
        case 'U':
            if (!*optarg) bad = "--metrics-file takes a path";
            else cfg.metrics_file = optarg;
            break;
        case 'l':
            if (log_parse_level(optarg, &level)) bad = "--log-level is error, warn, info or debug";
            break;
        case 'f':
            if (!strcmp(optarg, "json")) json = true;
            else if (!strcmp(optarg, "text")) json = false;
            else bad = "--log-format is text or json";
            break;
        case 'h': s_usage(stdout); return 0;
        case 'V': printf("qbroker %s\n", QBROKER_VERSION); return 0;
        default: s_usage(stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "qbroker: %s (got '%s'); see qbroker --help\n", bad,
                    optarg ? optarg : "");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qbroker: unexpected argument '%s'; see qbroker --help\n", argv[optind]);
        return 2;
    }
    if (cfg.metrics_file && !cfg.metrics_bind) {
        fprintf(stderr, "qbroker: --metrics-file needs --metrics-bind; see qbroker --help\n");
        return 2;
    }
    if (cfg.nbinds == 0)
        binds[cfg.nbinds++] = "tcp://127.0.0.1:5555";
    log_init("qbroker", level, json);
    if (s_security(&cfg, curve) != 0)
        return 2;

    struct sigaction sa = {.sa_handler = s_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Past a file size limit, write(2) then fails with EFBIG, which the
     * journal handles as a full disk (refuse submits, retry), instead of
     * the signal killing the broker. */
    signal(SIGXFSZ, SIG_IGN);

    char err[512];
    broker_t *b = broker_new(&cfg, err, sizeof err);
    if (!b) {
        log_error("%s", err);
        zap_destroy(&cfg.zap);
        return 1;
    }
    static const char *const fsync_names[] = {"off", "batch", "always"};
    log_info("qbroker %s ready (heartbeat %u ms x %u, results kept %llu s / %llu, journal in "
             "%s, fsync %s)", QBROKER_VERSION, cfg.heartbeat_ms, cfg.liveness,
             (unsigned long long)cfg.result_ttl_s, (unsigned long long)cfg.max_results,
             cfg.data_dir, fsync_names[cfg.fsync]);
    int rc = broker_run(b, &s_stop, err, sizeof err);
    if (rc != 0)
        log_error("%s", err);
    broker_destroy(&b);
    zap_destroy(&cfg.zap);
    return rc == 0 ? 0 : 1;
}
