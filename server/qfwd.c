/* qfwd -- a bare ZeroMQ forwarder: the transport's own limit, for
 * qclient bench baseline.
 *
 * One ROUTER socket, as in qbroker, with none of its bookkeeping: no
 * protocol, no queue, no job table, no credit.  Echo workers connect a
 * DEALER and announce themselves; each frame a client sends goes to the
 * next worker in turn (round robin), and each reply goes back to the
 * client it names.  What qbroker does on top of this is what its figures
 * cost above qfwd's.
 *
 * Messages (ZeroMQ frames as the ROUTER sees them, after the peer id):
 *   client -> qfwd    [payload]                  one frame
 *   qfwd -> worker    [client id][payload]
 *   worker -> qfwd    [""]["READY"]              announce (once)
 *   worker -> qfwd    [client id][reply]
 *   qfwd -> client    [reply]
 * A payload carries k jobs ("the batched comparison"): k records, each a
 * 4-byte little-endian length and that many bytes.  The echo worker walks
 * the records and copies each into its reply, so it handles k jobs, not
 * one opaque frame; a payload whose records do not add up is dropped.
 *
 *   qfwd [--bind EP]... [--endpoint-file PATH] [--workers N] [--curve-secret FILE]
 *   qfwd --echo EP [--server-key Z85]   (one echo worker; --workers forks these)
 *
 * With --curve-secret the ROUTER is a CURVE server, as qbroker's is, so
 * that the baseline shows what encryption costs the transport; there is
 * no ZAP handler (any client key is admitted: it is a benchmark tool).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zmq.h>

#include "keys.h"
#include "qjlimits.h"
#include "log.h"

#define QFWD_VERSION "0.1.0"
#define QFWD_HWM 100000        /* messages queued per peer each way, as qbroker */
#define QFWD_MAX_BINDS 8
#define QFWD_MAX_WORKERS 64
#define QFWD_MAX_ID 256        /* bytes of a ZeroMQ routing id */
#define QFWD_TICK_MS 500       /* poll bound: signals, children */
#define QFWD_READY "READY"

static volatile sig_atomic_t s_stop;

/* CURVE: the forwarder's keys (--curve-secret), or the server key an echo
 * worker talks to (--server-key); empty = plain. */
static keys_pair_t s_server;
static char s_server_key[KEYS_Z85 + 1];

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_usage(FILE *out)
{
    fprintf(out,
        "usage: qfwd [--bind EP]... [--endpoint-file PATH] [--workers N]\n"
        "       qfwd --echo EP\n"
        "\n"
        "A bare ZeroMQ ROUTER forwarder with echo workers: the limit of the transport\n"
        "that qbroker's figures are measured against (qclient bench baseline).\n"
        "\n"
        "  --bind EP             endpoint to listen on (repeatable; default\n"
        "                        tcp://127.0.0.1:5560; tcp://127.0.0.1:* picks a free port)\n"
        "  --endpoint-file PATH  write the bound endpoints there, one a line, once the\n"
        "                        --workers have announced themselves\n"
        "  --workers N           start N echo workers (0..%d; default 0: they come from\n"
        "                        elsewhere, with qfwd --echo)\n"
        "  --curve-secret FILE   be a CURVE server with this secret key file (qclient keygen);\n"
        "                        clients need its public key, any client key is admitted\n"
        "  --echo EP             be one echo worker connected to the forwarder at EP\n"
        "  --server-key Z85      (with --echo) the forwarder's CURVE public key\n"
        "  --log-level LEVEL     error, warn, info (default) or debug\n"
        "  --help, --version\n"
        "\n"
        "SIGINT or SIGTERM: stop the workers it started and exit 0.\n",
        QFWD_MAX_WORKERS);
}

static void *s_socket(void *ctx, int type)
{
    void *s = zmq_socket(ctx, type);
    int hwm = QFWD_HWM, linger = 0, one = 1;
    int64_t maxmsg = QJ_MAX_MSG;
    if (!s || zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) ||
        (type == ZMQ_ROUTER &&
         zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one)) ||
        (type == ZMQ_ROUTER && s_server.secret_z85[0] &&
         (zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one) ||
          zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, s_server.secret_z85, KEYS_Z85 + 1)))) {
        log_error("cannot create a ZeroMQ socket: %s", zmq_strerror(errno));
        if (s)
            zmq_close(s);
        return NULL;
    }
    return s;
}

/* Receive one whole message into parts[0..max); extra frames are read
 * and dropped.  Returns the number of frames, or -1 (EAGAIN, EINTR). */
static int s_recv(void *sock, zmq_msg_t *parts, int max, int flags)
{
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t scratch, *m = n < max ? &parts[n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, n ? 0 : flags) < 0) {
            zmq_msg_close(m);
            for (int i = 0; i < n && i < max; i++)
                zmq_msg_close(&parts[i]);
            return -1;
        }
        more = zmq_msg_more(m);
        if (m == &scratch)
            zmq_msg_close(m);
        n++;
    }
    return n;
}

/* Send parts[0..n) as one message; the parts are consumed either way.
 * Returns 0, or -1 (the peer is gone: the message is dropped). */
static int s_send(void *sock, zmq_msg_t *parts, int n)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (rc == 0 && zmq_msg_send(&parts[i], sock, i + 1 < n ? ZMQ_SNDMORE : 0) < 0)
            rc = -1;
        if (rc < 0)
            zmq_msg_close(&parts[i]);
    }
    return rc;
}

/* ------------------------------------------------------------ echo worker */

/* Copy the records of payload into out (same layout).  Returns the reply
 * length, or -1 if the records do not add up to the payload. */
static long s_echo_records(const unsigned char *p, size_t len, unsigned char *out)
{
    size_t off = 0;
    while (off < len) {
        if (len - off < 4)
            return -1;
        uint32_t n = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 |
                     (uint32_t)p[off + 2] << 16 | (uint32_t)p[off + 3] << 24;
        if (n > len - off - 4)
            return -1;
        memcpy(out + off, p + off, 4 + (size_t)n);
        off += 4 + (size_t)n;
    }
    return (long)off;
}

static int s_echo(const char *endpoint)
{
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? s_socket(ctx, ZMQ_DEALER) : NULL;
    keys_client_t keys;
    char err[256];
    if (sock && s_server_key[0]) {
        snprintf(keys.broker_z85, sizeof keys.broker_z85, "%s", s_server_key);
        if (keys_generate(&keys.mine, err, sizeof err) != 0 ||
            keys_client_apply(sock, &keys, err, sizeof err) != 0) {
            log_error("echo worker: %s", err);
            return 1;
        }
    }
    if (!sock || zmq_connect(sock, endpoint) != 0) {
        log_error("echo worker: cannot connect to %s: %s", endpoint, zmq_strerror(errno));
        return 1;
    }
    if (zmq_send(sock, "", 0, ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, QFWD_READY, strlen(QFWD_READY), 0) < 0) {
        log_error("echo worker: cannot announce itself: %s", zmq_strerror(errno));
        return 1;
    }
    uint64_t bad = 0;
    while (!s_stop) {
        zmq_msg_t parts[2];
        int n = s_recv(sock, parts, 2, 0);
        if (n < 0)
            continue;   /* EINTR: s_stop says whether to go on */
        if (n != 2) {
            for (int i = 0; i < n && i < 2; i++)
                zmq_msg_close(&parts[i]);
            bad++;
            continue;
        }
        size_t len = zmq_msg_size(&parts[1]);
        zmq_msg_t reply;
        zmq_msg_init_size(&reply, len);
        long rlen = s_echo_records(zmq_msg_data(&parts[1]), len, zmq_msg_data(&reply));
        zmq_msg_close(&parts[1]);
        if (rlen < 0) {
            zmq_msg_close(&reply);
            zmq_msg_close(&parts[0]);
            if (bad++ == 0)
                log_warn("echo worker: dropped a payload whose records do not add up");
            continue;
        }
        zmq_msg_t out[2] = {parts[0], reply};
        s_send(sock, out, 2);
    }
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return 0;
}

/* ------------------------------------------------------------ forwarder */

typedef struct fwd {
    void *sock;
    unsigned char ids[QFWD_MAX_WORKERS][QFWD_MAX_ID];
    size_t idlen[QFWD_MAX_WORKERS];
    int nworkers;             /* announced */
    int next;                 /* round robin */
    uint64_t dropped;         /* requests with no worker, replies to gone clients */
    pid_t children[QFWD_MAX_WORKERS];
    int nchildren;
} fwd_t;

static int s_worker_index(const fwd_t *f, zmq_msg_t *id)
{
    for (int i = 0; i < f->nworkers; i++)
        if (f->idlen[i] == zmq_msg_size(id) && !memcmp(f->ids[i], zmq_msg_data(id), f->idlen[i]))
            return i;
    return -1;
}

static void s_forget_worker(fwd_t *f, int i)
{
    f->nworkers--;
    memmove(f->ids[i], f->ids[f->nworkers], f->idlen[f->nworkers]);
    f->idlen[i] = f->idlen[f->nworkers];
    log_warn("an echo worker went away; %d left", f->nworkers);
}

/* One message from the ROUTER: route it.  parts[0] is the sender's id. */
static void s_route(fwd_t *f, zmq_msg_t *parts, int n)
{
    int w = n == 3 ? s_worker_index(f, &parts[0]) : -1;
    if (n == 2 && f->nworkers > 0) {
        /* A client's request: [client][payload] -> [worker][client][payload]. */
        int i = f->next++ % f->nworkers;
        zmq_msg_t out[3];
        zmq_msg_init_size(&out[0], f->idlen[i]);
        memcpy(zmq_msg_data(&out[0]), f->ids[i], f->idlen[i]);
        out[1] = parts[0];
        out[2] = parts[1];
        if (s_send(f->sock, out, 3) < 0) {
            f->dropped++;
            if (errno == EHOSTUNREACH)
                s_forget_worker(f, i);
        }
        return;
    }
    if (n == 3 && w >= 0) {
        /* A reply: [worker][client][reply] -> [client][reply]. */
        zmq_msg_close(&parts[0]);
        if (s_send(f->sock, parts + 1, 2) < 0)
            f->dropped++;
        return;
    }
    if (n == 3 && zmq_msg_size(&parts[1]) == 0 && zmq_msg_size(&parts[2]) == strlen(QFWD_READY) &&
        !memcmp(zmq_msg_data(&parts[2]), QFWD_READY, strlen(QFWD_READY)) &&
        f->nworkers < QFWD_MAX_WORKERS && zmq_msg_size(&parts[0]) <= QFWD_MAX_ID) {
        f->idlen[f->nworkers] = zmq_msg_size(&parts[0]);
        memcpy(f->ids[f->nworkers], zmq_msg_data(&parts[0]), f->idlen[f->nworkers]);
        f->nworkers++;
        log_info("echo worker %d announced itself", f->nworkers);
    } else {
        f->dropped++;   /* a request with no worker yet, or a stray shape */
    }
    for (int i = 0; i < n && i < 3; i++)
        zmq_msg_close(&parts[i]);
}

static int s_write_endpoints(const char *path, char (*eps)[256], int n)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        log_error("cannot write the endpoint file %s: %s", tmp, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++)
        fprintf(f, "%s\n", eps[i]);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        log_error("cannot write the endpoint file %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Start an echo worker: this same program with --echo, which dies with
 * its parent.  Returns its pid, or -1. */
static pid_t s_spawn_echo(const char *endpoint, const char *level)
{
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len < 0) {
        log_error("cannot find my own program to start workers: %s", strerror(errno));
        return -1;
    }
    self[len] = '\0';
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        if (s_server.public_z85[0])
            execl(self, "qfwd", "--echo", endpoint, "--log-level", level, "--server-key",
                  s_server.public_z85, (char *)NULL);
        else
            execl(self, "qfwd", "--echo", endpoint, "--log-level", level, (char *)NULL);
        _exit(127);
    }
    if (pid < 0)
        log_error("cannot start an echo worker: %s", strerror(errno));
    return pid;
}

static void s_reap(fwd_t *f, bool wait)
{
    for (int i = 0; i < f->nchildren; i++) {
        if (f->children[i] <= 0)
            continue;
        int st;
        if (waitpid(f->children[i], &st, wait ? 0 : WNOHANG) == f->children[i]) {
            if (!wait)
                log_warn("echo worker %ld exited (status %d)", (long)f->children[i], st);
            f->children[i] = 0;
        }
    }
}

static int s_forward(const char **binds, int nbinds, const char *epfile, int workers,
                     const char *level)
{
    fwd_t f = {0};
    void *ctx = zmq_ctx_new();
    f.sock = ctx ? s_socket(ctx, ZMQ_ROUTER) : NULL;
    if (!f.sock)
        return 1;
    char eps[QFWD_MAX_BINDS][256];
    for (int i = 0; i < nbinds; i++) {
        size_t len = sizeof eps[i];
        if (zmq_bind(f.sock, binds[i]) != 0 ||
            zmq_getsockopt(f.sock, ZMQ_LAST_ENDPOINT, eps[i], &len) != 0) {
            log_error("cannot bind %s: %s", binds[i], zmq_strerror(errno));
            return 1;
        }
        log_info("listening on %s", eps[i]);
    }
    for (int i = 0; i < workers; i++)
        if ((f.children[f.nchildren++] = s_spawn_echo(eps[0], level)) < 0)
            s_stop = 1;
    bool announced = false;
    int rc = 0;
    while (!s_stop) {
        if (!announced && f.nworkers >= workers) {
            announced = true;
            if (epfile && s_write_endpoints(epfile, eps, nbinds) < 0) {
                rc = 1;
                break;
            }
        }
        zmq_pollitem_t it = {f.sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, QFWD_TICK_MS) <= 0) {
            s_reap(&f, false);
            continue;
        }
        /* Drain what has arrived before polling again. */
        for (int burst = 0; burst < 1024 && !s_stop; burst++) {
            zmq_msg_t parts[3];
            int n = s_recv(f.sock, parts, 3, ZMQ_DONTWAIT);
            if (n < 0)
                break;
            if (n > 3) {
                for (int i = 0; i < 3; i++)
                    zmq_msg_close(&parts[i]);
                f.dropped++;
                continue;
            }
            s_route(&f, parts, n);
        }
    }
    for (int i = 0; i < f.nchildren; i++)
        if (f.children[i] > 0)
            kill(f.children[i], SIGTERM);
    s_reap(&f, true);
    if (f.dropped)
        log_info("%llu messages dropped (no worker, or the peer was gone)",
                 (unsigned long long)f.dropped);
    zmq_close(f.sock);
    zmq_ctx_term(ctx);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"bind", required_argument, NULL, 'b'},
        {"endpoint-file", required_argument, NULL, 'e'},
        {"workers", required_argument, NULL, 'w'},
        {"echo", required_argument, NULL, 'E'},
        {"curve-secret", required_argument, NULL, 'K'},
        {"server-key", required_argument, NULL, 'S'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *binds[QFWD_MAX_BINDS], *epfile = NULL, *echo = NULL, *level_name = "info";
    int nbinds = 0, workers = 0, c;
    log_level_t level = LOG_INFO;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char *bad = NULL;
        char *end;
        switch (c) {
        case 'b':
            if (nbinds == QFWD_MAX_BINDS) bad = "too many --bind options";
            else binds[nbinds++] = optarg;
            break;
        case 'e': epfile = optarg; break;
        case 'w':
            workers = (int)strtol(optarg, &end, 10);
            if (*end || end == optarg || workers < 0 || workers > QFWD_MAX_WORKERS)
                bad = "--workers takes a count, 0..64";
            break;
        case 'E': echo = optarg; break;
        case 'K': {
            char err[512];
            if (keys_load_secret(optarg, &s_server, err, sizeof err) != 0) {
                fprintf(stderr, "qfwd: %s\n", err);
                return 2;
            }
            break;
        }
        case 'S': {
            uint8_t bin[KEYS_BIN];
            if (keys_decode(optarg, bin) != 0)
                bad = "--server-key takes a public key, 40 characters of Z85";
            else
                snprintf(s_server_key, sizeof s_server_key, "%s", optarg);
            break;
        }
        case 'l':
            if (log_parse_level(optarg, &level)) bad = "--log-level is error, warn, info or debug";
            else level_name = optarg;
            break;
        case 'h': s_usage(stdout); return 0;
        case 'V': printf("qfwd %s\n", QFWD_VERSION); return 0;
        default: s_usage(stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "qfwd: %s (got '%s'); see qfwd --help\n", bad, optarg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qfwd: unexpected argument '%s'; see qfwd --help\n", argv[optind]);
        return 2;
    }
    if (nbinds == 0)
        binds[nbinds++] = "tcp://127.0.0.1:5560";
    log_init(echo ? "qfwd-echo" : "qfwd", level, false);
    struct sigaction sa = {.sa_handler = s_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (echo)
        return s_echo(echo);
    return s_forward(binds, nbinds, epfile, workers, level_name);
}
