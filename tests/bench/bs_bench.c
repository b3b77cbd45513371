/* bs_bench.c -- load generator for beanstalkd (its text protocol over
 * TCP), for tests/bench/peers.sh: the patterns qclient bench runs on qjob.
 *
 *   bs_bench -p PORT pipeline [-n JOBS] [-s BYTES] [-w WORKERS] [-b BATCH]
 *       WORKERS processes (forked here) each `reserve` then `delete` every
 *       job; the producer `put`s JOBS jobs of BYTES bytes, BATCH puts per
 *       write, then one STOP job per worker (behind the others: tubes are
 *       FIFO at one priority).  Timed from the first put until every
 *       worker has exited, so every job has been deleted.
 *       Prints: jobs=N secs=S jobs_per_s=R submit_jobs_per_s=R
 *   bs_bench -p PORT latency [-n ROUNDS] [-s BYTES] [-W WARMUP]
 *       One worker: reserve from tube lreq, delete, put the body to lrep.
 *       The client puts to lreq and reserves (and deletes) the reply from
 *       lrep, one at a time.  Prints: rounds=N p50_us= p90_us= p99_us=
 *       p999_us= max_us=
 *
 * Every socket has TCP_NODELAY; the whole run is bounded by alarm(300).
 * Exit status 0, or 1 with a message on stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BS_MAX_WORKERS 64
#define BS_LINE 256
#define BS_STOP "STOP"

/* A connection with a read buffer: the protocol is lines plus bodies. */
typedef struct conn {
    int fd;
    char buf[65536];
    size_t pos, len;
} conn_t;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bs_bench[%ld]: ", (long)getpid());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static conn_t *conn_open(int port)
{
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        die("out of memory");
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("cannot connect to beanstalkd on 127.0.0.1:%d: %s", port, strerror(errno));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
}

static void conn_write(conn_t *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(c->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write to beanstalkd: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

static void conn_fill(conn_t *c)
{
    if (c->pos > 0) {
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
    }
    if (c->len == sizeof c->buf)
        die("a reply from beanstalkd is too long");
    ssize_t r;
    do
        r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        die("beanstalkd closed the connection (%s)", r < 0 ? strerror(errno) : "EOF");
    c->len += (size_t)r;
}

/* One reply line, without its CRLF, copied to line. */
static void conn_line(conn_t *c, char *line, size_t cap)
{
    for (;;) {
        char *start = c->buf + c->pos;
        char *nl = memchr(start, '\n', c->len - c->pos);
        if (nl) {
            size_t n = (size_t)(nl - start);
            if (n > 0 && start[n - 1] == '\r')
                n--;
            if (n >= cap)
                die("a reply line from beanstalkd is too long");
            memcpy(line, start, n);
            line[n] = '\0';
            c->pos = (size_t)(nl - c->buf) + 1;
            return;
        }
        conn_fill(c);
    }
}

/* A job body of n bytes plus its CRLF, copied to body (cap >= n + 1). */
static void conn_body(conn_t *c, char *body, size_t n, size_t cap)
{
    if (n + 1 > cap)
        die("a job body of %zu bytes is larger than expected", n);
    while (c->len - c->pos < n + 2)
        conn_fill(c);
    memcpy(body, c->buf + c->pos, n);
    body[n] = '\0';
    c->pos += n + 2;
}

static void expect(conn_t *c, const char *prefix)
{
    char line[BS_LINE];
    conn_line(c, line, sizeof line);
    if (strncmp(line, prefix, strlen(prefix)) != 0)
        die("beanstalkd said '%s', expected %s", line, prefix);
}

static void command(conn_t *c, const char *cmd, const char *want)
{
    conn_write(c, cmd, strlen(cmd));
    expect(c, want);
}

/* A put command for body as one buffer (caller frees), so that it goes
 * out in one write. */
static char *put_cmd(const char *body, size_t n, size_t *len)
{
    char head[64];
    int h = snprintf(head, sizeof head, "put 0 0 60 %zu\r\n", n);
    char *cmd = malloc((size_t)h + n + 2);
    if (!cmd)
        die("out of memory");
    memcpy(cmd, head, (size_t)h);
    memcpy(cmd + h, body, n);
    memcpy(cmd + (size_t)h + n, "\r\n", 2);
    *len = (size_t)h + n + 2;
    return cmd;
}

static void put(conn_t *c, const char *body, size_t n)
{
    size_t len;
    char *cmd = put_cmd(body, n, &len);
    conn_write(c, cmd, len);
    free(cmd);
}

/* Reserve one job: its id, its body in body.  Returns the body length. */
static size_t reserve(conn_t *c, unsigned long long *id, char *body, size_t cap)
{
    char line[BS_LINE];
    size_t n;
    conn_write(c, "reserve\r\n", 9);
    conn_line(c, line, sizeof line);
    if (sscanf(line, "RESERVED %llu %zu", id, &n) != 2)
        die("beanstalkd said '%s' to reserve", line);
    conn_body(c, body, n, cap);
    return n;
}

static void delete_job(conn_t *c, unsigned long long id)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "delete %llu\r\n", id);
    command(c, cmd, "DELETED");
}

/* ------------------------------------------------------------ pipeline */

static void pipeline_worker(int port)
{
    alarm(300);   /* a fork does not inherit the parent's alarm */
    conn_t *c = conn_open(port);
    command(c, "watch bench\r\n", "WATCHING");
    command(c, "ignore default\r\n", "WATCHING");
    static char body[1 << 20];
    for (;;) {
        unsigned long long id;
        size_t n = reserve(c, &id, body, sizeof body);
        delete_job(c, id);
        if (n == strlen(BS_STOP) && !memcmp(body, BS_STOP, n))
            exit(0);
    }
}

static int pipeline(int port, long jobs, size_t size, int workers, int batch)
{
    pid_t pids[BS_MAX_WORKERS];
    for (int i = 0; i < workers; i++) {
        pids[i] = fork();
        if (pids[i] == 0)
            pipeline_worker(port);
        if (pids[i] < 0)
            die("fork: %s", strerror(errno));
    }
    conn_t *c = conn_open(port);
    command(c, "use bench\r\n", "USING");
    /* batch puts, ready to go in one write: one round trip per batch. */
    char *body = malloc(size);
    memset(body, 'x', size);
    size_t one;
    char *cmd = put_cmd(body, size, &one);
    char *many = malloc(one * (size_t)batch);
    for (int i = 0; i < batch; i++)
        memcpy(many + one * (size_t)i, cmd, one);
    double t0 = now_s();
    for (long sent = 0; sent < jobs;) {
        int b = jobs - sent < batch ? (int)(jobs - sent) : batch;
        conn_write(c, many, one * (size_t)b);
        for (int i = 0; i < b; i++)
            expect(c, "INSERTED");
        sent += b;
    }
    double t_submit = now_s();
    for (int i = 0; i < workers; i++)
        put(c, BS_STOP, strlen(BS_STOP));
    for (int i = 0; i < workers; i++)
        expect(c, "INSERTED");
    for (int i = 0; i < workers; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            die("worker %ld failed", (long)pids[i]);
    }
    double t1 = now_s();
    printf("jobs=%ld secs=%.6f jobs_per_s=%.1f submit_jobs_per_s=%.1f\n", jobs, t1 - t0,
           (double)jobs / (t1 - t0), (double)jobs / (t_submit - t0));
    free(body);
    free(cmd);
    free(many);
    return 0;
}

/* ------------------------------------------------------------ latency */

static void latency_worker(int port)
{
    alarm(300);
    conn_t *c = conn_open(port);
    command(c, "watch lreq\r\n", "WATCHING");
    command(c, "ignore default\r\n", "WATCHING");
    command(c, "use lrep\r\n", "USING");
    static char body[1 << 20];
    for (;;) {
        unsigned long long id;
        size_t n = reserve(c, &id, body, sizeof body);
        delete_job(c, id);
        if (n == strlen(BS_STOP) && !memcmp(body, BS_STOP, n))
            exit(0);
        put(c, body, n);
        expect(c, "INSERTED");
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-th percentile of sorted v[0..n), interpolated (as qclient bench). */
static double pct(const double *v, long n, double p)
{
    double h = (double)(n - 1) * p / 100.0;
    long lo = (long)h;
    if (lo >= n - 1)
        return v[n - 1];
    return v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]);
}

static int latency(int port, long rounds, size_t size, long warmup)
{
    pid_t pid = fork();
    if (pid == 0)
        latency_worker(port);
    if (pid < 0)
        die("fork: %s", strerror(errno));
    conn_t *c = conn_open(port);
    command(c, "use lreq\r\n", "USING");
    command(c, "watch lrep\r\n", "WATCHING");
    command(c, "ignore default\r\n", "WATCHING");
    char *body = malloc(size + 1), *reply = malloc(size + 1);
    memset(body, 'x', size);
    double *us = calloc((size_t)rounds, sizeof *us);
    for (long i = 0; i < warmup + rounds; i++) {
        double t0 = now_s();
        put(c, body, size);
        expect(c, "INSERTED");
        unsigned long long id;
        size_t n = reserve(c, &id, reply, size + 1);
        delete_job(c, id);
        double t1 = now_s();
        if (n != size || memcmp(reply, body, size) != 0)
            die("the reply is not the job's body");
        if (i >= warmup)
            us[i - warmup] = (t1 - t0) * 1e6;
    }
    put(c, BS_STOP, strlen(BS_STOP));
    expect(c, "INSERTED");
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("the worker failed");
    qsort(us, (size_t)rounds, sizeof *us, cmp_double);
    printf("rounds=%ld p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f\n", rounds,
           pct(us, rounds, 50), pct(us, rounds, 90), pct(us, rounds, 99), pct(us, rounds, 99.9),
           us[rounds - 1]);
    free(us);
    free(body);
    free(reply);
    return 0;
}

int main(int argc, char **argv)
{
    int port = 0, workers = 2, batch = 100, opt;
    long jobs = 100000, warmup = 500;
    size_t size = 16;
    while ((opt = getopt(argc, argv, "p:n:s:w:b:W:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'n': jobs = atol(optarg); break;
        case 's': size = (size_t)atol(optarg); break;
        case 'w': workers = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'W': warmup = atol(optarg); break;
        default: return 2;
        }
    }
    if (optind != argc - 1 || port <= 0 || jobs < 1 || workers < 1 ||
        workers > BS_MAX_WORKERS || batch < 1 || warmup < 0 || size < 1 || size > 65535) {
        fprintf(stderr, "usage: bs_bench -p PORT pipeline|latency [-n N] [-s BYTES] "
                        "[-w WORKERS] [-b BATCH] [-W WARMUP]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    alarm(300);   /* and in each worker: nothing outlives a stuck run */
    if (!strcmp(argv[optind], "pipeline"))
        return pipeline(port, jobs, size, workers, batch);
    if (!strcmp(argv[optind], "latency"))
        return latency(port, jobs, size, warmup);
    fprintf(stderr, "bs_bench: unknown mode '%s' (pipeline or latency)\n", argv[optind]);
    return 2;
}
