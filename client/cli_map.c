/* cli_map.c -- qclient map: one job per JSON line of stdin, each result
 * printed as a JSON line as it completes (or in input order).
 *
 * At most --inflight jobs are outstanding.  stdin and the client's socket
 * are polled together, so a slow producer does not hold back results and
 * a slow broker does not make us read more than we can hold.  Unordered
 * results are printed from qj_on_done callbacks; ordered results (and
 * --detach ids) from the head of a ring kept in input order.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "mpjson.h"

#define MAP_MAX_LINE (16u * 1024 * 1024)   /* longer input lines are refused */
#define MAP_READ 65536                     /* bytes read from stdin at a time */
#define MAP_TICK_MS 100                    /* poll bound: timers and the progress bar */

typedef struct map map_t;

typedef struct slot {
    map_t *m;
    qj_job *j;
    uint64_t line;        /* input line number, from 1 */
} slot_t;

struct map {
    cli_t *cli;
    const cli_submit_t *cs;
    qj_client *c;
    const char *task;
    bool ring;            /* ordered or detached: slots in input order */
    slot_t *slots;
    size_t cap;           /* --inflight */
    size_t head, count;   /* ring */
    size_t *free;         /* unordered: free slot indexes */
    size_t nfree;
    size_t outstanding;
    uint64_t submitted, done, failed;
    int rc;               /* exit code of the first job (input order) not ok */
    uint64_t rc_line;
    char *buf;            /* stdin bytes not yet used: buf[pos..len) */
    size_t pos, len, bufcap;
    bool eof, stop, bad;
    uint64_t line;
    msgpack_sbuffer args;
    bool tty;             /* draw a progress bar on stderr */
    uint64_t total;       /* lines on stdin if it is a file, else 0 */
    uint64_t start_ms, drawn_ms;
};

static void s_record(map_t *m, const qj_job *j, uint64_t line)
{
    int code = cli_exit_for(qj_job_status(j));
    m->done++;
    if (code == 0)
        return;
    m->failed++;
    if (m->rc == 0 || line < m->rc_line) {
        m->rc = code;
        m->rc_line = line;
    }
}

/* Print one finished (or, detached, accepted) job and let its slot go. */
static void s_emit(map_t *m, slot_t *s)
{
    qj_job *j = s->j;
    char what[64];
    snprintf(what, sizeof what, "line %" PRIu64, s->line);
    if (m->cs->so.detach) {
        if (qj_job_id(j)) {
            printf("%" PRIu64 "\n", qj_job_id(j));
            m->done++;
        } else {
            s_record(m, j, s->line);
            cli_report_failure(j, what);
        }
    } else {
        s_record(m, j, s->line);
        if (m->cli->json) {
            cli_print_job(stdout, j, true, "line", s->line);
        } else if (qj_job_status(j) == QJ_OK) {
            cli_print_value(stdout, j);
        } else {
            fputs("null\n", stdout);
        }
        cli_report_failure(j, what);
    }
    qj_job_free(&s->j);
    m->outstanding--;
}

static void s_on_done(qj_job *j, void *arg)
{
    slot_t *s = arg;
    (void)j;
    map_t *m = s->m;
    s_emit(m, s);
    m->free[m->nfree++] = (size_t)(s - m->slots);
}

/* Ordered and detached: print from the head while the head is ready. */
static void s_drain_ring(map_t *m)
{
    while (m->ring && m->count) {
        slot_t *s = &m->slots[m->head];
        bool ready = m->cs->so.detach ? (qj_job_id(s->j) || qj_job_done(s->j))
                                      : qj_job_done(s->j);
        if (!ready)
            break;
        s_emit(m, s);
        m->head = (m->head + 1) % m->cap;
        m->count--;
    }
}

static bool s_room(const map_t *m)
{
    return m->outstanding < m->cap;
}

/* The next whole line in the buffer (NUL-terminated in place), or NULL.
 * At end of input the last line needs no newline. */
static char *s_next_line(map_t *m)
{
    char *start = m->buf + m->pos;
    char *nl = memchr(start, '\n', m->len - m->pos);
    if (nl) {
        *nl = '\0';
        m->pos = (size_t)(nl - m->buf) + 1;
        return start;
    }
    if (m->eof && m->pos < m->len) {
        m->buf[m->len] = '\0';
        m->pos = m->len;
        return start;
    }
    return NULL;
}

/* Read once from stdin.  Returns 0, or -1 if a line is too long. */
static int s_fill(map_t *m)
{
    if (m->pos > 0) {
        memmove(m->buf, m->buf + m->pos, m->len - m->pos);
        m->len -= m->pos;
        m->pos = 0;
    }
    if (m->bufcap - m->len < MAP_READ + 1) {
        if (m->bufcap >= MAP_MAX_LINE)
            return -1;
        size_t cap = m->bufcap * 2;
        char *b = realloc(m->buf, cap);
        if (!b)
            return -1;
        m->buf = b;
        m->bufcap = cap;
    }
    ssize_t n = read(0, m->buf + m->len, MAP_READ);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
        m->eof = true;
    else if (n > 0)
        m->len += (size_t)n;
    return 0;
}

static void s_submit_line(map_t *m, char *text)
{
    char why[256], err[512];
    m->args.size = 0;
    if (mpjson_from_text(text, &m->args, why, sizeof why) < 0) {
        cli_bad_json(m->line, why);
        m->bad = m->stop = true;
        return;
    }
    qj_job *j = qj_submit(m->c, m->task, m->args.data, m->args.size, &m->cs->so, err, sizeof err);
    if (!j) {
        cli_err("line %" PRIu64 ": %s", m->line, err);
        m->bad = m->stop = true;
        return;
    }
    size_t i;
    if (m->ring) {
        i = (m->head + m->count++) % m->cap;
    } else {
        i = m->free[--m->nfree];
    }
    m->slots[i] = (slot_t){m, j, m->line};
    m->outstanding++;
    m->submitted++;
    if (!m->ring)
        qj_on_done(j, s_on_done, &m->slots[i]);
}

/* Submit lines from the buffer while there is room. */
static void s_feed(map_t *m)
{
    while (!m->stop && s_room(m)) {
        char *l = s_next_line(m);
        if (!l) {
            if (m->eof)
                m->stop = true;
            return;
        }
        m->line++;
        if (l[strspn(l, " \t\r")] == '\0')
            continue;   /* blank line */
        s_submit_line(m, l);
    }
}

static uint64_t s_count_lines(void)
{
    struct stat st;
    if (fstat(0, &st) < 0 || !S_ISREG(st.st_mode))
        return 0;
    off_t off = lseek(0, 0, SEEK_CUR);
    char b[65536];
    uint64_t n = 0;
    ssize_t r;
    bool last_nl = true;
    while ((r = pread(0, b, sizeof b, off)) > 0) {
        for (ssize_t i = 0; i < r; i++)
            n += b[i] == '\n';
        last_nl = b[r - 1] == '\n';
        off += r;
    }
    return n + !last_nl;
}

static void s_draw(map_t *m, bool final)
{
    if (!m->tty)
        return;
    uint64_t now = clock_mono_ms();
    if (final) {
        fputs("\r\033[K", stderr);
        return;
    }
    if (now - m->drawn_ms < MAP_TICK_MS)
        return;
    m->drawn_ms = now;
    double secs = (double)(now - m->start_ms) / 1000.0;
    double rate = secs > 0 ? (double)m->done / secs : 0;
    fputc('\r', stderr);
    if (m->total) {
        int width = 30, fill = (int)(m->done * (uint64_t)width / m->total);
        if (fill > width)
            fill = width;
        fprintf(stderr, "[%.*s%*s] %3d%% ", fill, "##############################",
                width - fill, "", (int)(m->done * 100 / m->total));
        fprintf(stderr, "%" PRIu64 "/%" PRIu64, m->done, m->total);
    } else {
        fprintf(stderr, "%" PRIu64 " done", m->done);
    }
    fprintf(stderr, ", %" PRIu64 " failed, %zu in flight, %.0f jobs/s\033[K", m->failed,
            m->outstanding, rate);
}

int cli_map(cli_t *cli, const char *task, const cli_submit_t *cs)
{
    map_t m = {0};
    m.cli = cli;
    m.cs = cs;
    m.task = task;
    m.cap = (size_t)cs->inflight;
    m.ring = cs->ordered || cs->so.detach;
    m.slots = calloc(m.cap, sizeof *m.slots);
    m.free = calloc(m.cap, sizeof *m.free);
    m.bufcap = 2 * MAP_READ;
    m.buf = malloc(m.bufcap);
    if (!m.slots || !m.free || !m.buf) {
        cli_err("out of memory");
        return CLI_FAILED;
    }
    for (size_t i = 0; i < m.cap; i++)
        m.free[m.nfree++] = m.cap - 1 - i;
    msgpack_sbuffer_init(&m.args);
    m.tty = isatty(2);
    m.total = m.tty ? s_count_lines() : 0;

    qj_options o;
    qj_options_init(&o);
    o.batch_max = cs->batch;
    o.max_inflight = cs->inflight;
    m.c = cli_connect(cli, &o);
    m.start_ms = clock_mono_ms();
    bool timed_out = false;
    for (;;) {
        s_feed(&m);
        qj_client_process(m.c);
        s_drain_ring(&m);
        fflush(stdout);
        s_draw(&m, false);
        if (m.stop && m.outstanding == 0)
            break;
        int left = cli_left_ms(cli);
        if (left == 0) {
            timed_out = true;
            break;
        }
        struct pollfd fds[2];
        int n = 0;
        bool want_input = !m.stop && s_room(&m);
        if (want_input)
            fds[n++] = (struct pollfd){0, POLLIN, 0};
        int fd = qj_client_fd(m.c);
        if (fd >= 0)
            fds[n++] = (struct pollfd){fd, POLLIN, 0};
        int t = left >= 0 && left < MAP_TICK_MS ? left : MAP_TICK_MS;
        if (poll(fds, (nfds_t)n, t) > 0 && want_input && fds[0].revents) {
            if (s_fill(&m) < 0) {
                cli_err("line %" PRIu64 " is longer than %u bytes", m.line + 1, MAP_MAX_LINE);
                m.bad = m.stop = true;
            }
        }
    }
    s_draw(&m, true);
    if (timed_out)
        cli_err("%zu jobs not finished after %g s (--timeout); they go on", m.outstanding,
                cli->timeout_s);
    for (size_t i = 0; i < m.cap; i++)
        qj_job_free(&m.slots[i].j);
    qj_client_destroy(&m.c);
    fflush(stdout);
    msgpack_sbuffer_destroy(&m.args);
    free(m.slots);
    free(m.free);
    free(m.buf);
    if (m.bad)
        return CLI_USAGE;
    return timed_out ? CLI_TIMEOUT : m.rc;
}
