/* super.c -- the supervisor (super.h). */
#include "super.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "wproc.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 30000
/* A child that ran this long before dying was not crash-looping: the
 * next restart is quick again. */
#define BACKOFF_RESET_MS 30000
/* After a second stop request, children get this long before SIGKILL. */
#define QUIT_GRACE_MS 3000
/* A job this far past its timeout without yielding gets its process
 * killed; the child's own timer stops jobs that do yield. */
#define WATCH_GRACE_MS 500
/* How often the supervisor looks at the watches. */
#define WATCH_EVERY_MS 100

typedef struct slot {
    pid_t pid;                /* 0 when not running */
    uint64_t started;         /* mono ms */
    uint64_t restart_at;      /* mono ms when to start it again; 0 = not waiting */
    uint32_t backoff_ms;      /* next delay after a quick death */
    bool timed_out;           /* killed for a job past its timeout */
} slot_t;

struct super {
    super_opts_t o;
    slot_t *slots;
    super_watch_t *watches;   /* one per slot, shared with the children */
    int alive;                /* children running */
    bool stopping;
    bool killed;              /* SIGKILL sent after the grace time */
    uint64_t kill_at;         /* mono ms */
    int status;               /* what super_run returns */
    pid_t self;
    int sig_r, sig_w;
};

/* Write end of the signal pipe while super_run runs. */
static int s_sig_w = -1;
/* In a child: its watch. */
static super_watch_t *s_watch;

static void s_on_signal(int sig)
{
    int saved = errno;
    unsigned char c = (unsigned char)sig;
    if (s_sig_w >= 0 && write(s_sig_w, &c, 1) < 0) {
        /* the pipe is full: enough signals are waiting to be read */
    }
    errno = saved;
}

super_t *super_new(const super_opts_t *o)
{
    assert(o && o->procs >= 1 && o->child);
    super_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->o = *o;
    s->slots = calloc((size_t)o->procs, sizeof *s->slots);
    if (!s->slots) {
        free(s);
        return NULL;
    }
    /* Before any fork, so that every child shares it; zero-filled. */
    s->watches = mmap(NULL, (size_t)o->procs * sizeof *s->watches, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s->watches == MAP_FAILED) {
        free(s->slots);
        free(s);
        return NULL;
    }
    for (int i = 0; i < o->procs; i++)
        s->slots[i].backoff_ms = BACKOFF_FIRST_MS;
    s->sig_r = s->sig_w = -1;
    return s;
}

void super_destroy(super_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    super_t *s = *self_p;
    munmap(s->watches, (size_t)s->o.procs * sizeof *s->watches);
    free(s->slots);
    free(s);
    *self_p = NULL;
}

super_watch_t *super_child_watch(void)
{
    return s_watch;
}

/* In the child, between fork and the child function. */
static void s_child_setup(super_t *s, int i, const sigset_t *mask)
{
    s_watch = &s->watches[i];
    signal(SIGTERM, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGINT, SIG_IGN);
    close(s->sig_r);
    close(s->sig_w);
    s_sig_w = -1;
    /* Drain if the supervisor dies; it may have died before this line. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != s->self)
        raise(SIGTERM);
    sigprocmask(SIG_SETMASK, mask, NULL);
}

/* The delay before the next restart of a slot, doubling each time. */
static uint32_t s_backoff(slot_t *sl)
{
    uint32_t delay = sl->backoff_ms;
    sl->backoff_ms = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
    return delay;
}

static void s_spawn(super_t *s, int i)
{
    slot_t *sl = &s->slots[i];
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGCHLD);
    /* Blocked across fork, so the child cannot run our handlers (they
     * write to our pipe) before it has set up its own. */
    sigprocmask(SIG_BLOCK, &block, &old);
    /* What a killed child had posted must not get its successor killed
     * (killed_id stays, for the successor to report). */
    atomic_store(&s->watches[i].job_id, 0);
    atomic_store(&s->watches[i].deadline_ms, 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        s_child_setup(s, i, &old);
        exit(s->o.child(i, s->o.arg));
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    uint64_t now = clock_mono_ms();
    sl->restart_at = 0;
    if (pid < 0) {
        uint32_t delay = s_backoff(sl);
        log_error("cannot fork worker process %d: %s; trying again in %.1f s", i,
                  strerror(errno), delay / 1000.0);
        sl->restart_at = now + delay;
        return;
    }
    sl->pid = pid;
    sl->started = now;
    sl->timed_out = false;
    s->alive++;
    log_info("worker process %d started (pid %ld)", i, (long)pid);
}

/* Ask every child to stop (why: for the log): the first time to drain,
 * then to leave now. */
static void s_stop(super_t *s, const char *why)
{
    uint64_t now = clock_mono_ms();
    if (!s->stopping) {
        s->stopping = true;
        s->kill_at = now + s->o.grace_ms;
        log_info("%s: asking %d worker processes to finish their jobs and leave (a second "
                 "signal makes them leave at once)", why, s->alive);
    } else {
        if (now + QUIT_GRACE_MS < s->kill_at)
            s->kill_at = now + QUIT_GRACE_MS;
        log_warn("%s again: asking %d worker processes to leave now", why, s->alive);
    }
    for (int i = 0; i < s->o.procs; i++) {
        s->slots[i].restart_at = 0;
        if (s->slots[i].pid > 0)
            kill(s->slots[i].pid, SIGTERM);
    }
}

/* A child is gone: log how, and decide when it comes back. */
static void s_exited(super_t *s, int i, int wstatus)
{
    slot_t *sl = &s->slots[i];
    uint64_t now = clock_mono_ms();
    uint64_t lived = now - sl->started;
    long pid = (long)sl->pid;
    sl->pid = 0;
    s->alive--;
    if (s->stopping) {
        if (WIFEXITED(wstatus) && (WEXITSTATUS(wstatus) == WPROC_EXIT_OK ||
                                   WEXITSTATUS(wstatus) == WPROC_EXIT_RECYCLE))
            log_info("worker process %d (pid %ld) finished", i, pid);
        else if (WIFSIGNALED(wstatus))
            log_warn("worker process %d (pid %ld) ended by signal %d (%s)", i, pid,
                     WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
        else
            log_warn("worker process %d (pid %ld) exited with status %d", i, pid,
                     WEXITSTATUS(wstatus));
        return;
    }
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == WPROC_EXIT_CONFIG) {
        log_error("worker process %d (pid %ld) cannot work with this configuration (see its "
                  "message above): stopping", i, pid);
        s->status = 2;
        s_stop(s, "configuration error");
        return;
    }
    /* A child killed for a job past its timeout was not crashing. */
    bool clean = sl->timed_out ||
                 (WIFEXITED(wstatus) && (WEXITSTATUS(wstatus) == WPROC_EXIT_RECYCLE ||
                                         WEXITSTATUS(wstatus) == WPROC_EXIT_OK));
    /* A clean exit was asked for (recycling, or a SIGTERM sent to the
     * child itself): replace it at once. */
    if (clean || lived >= BACKOFF_RESET_MS)
        sl->backoff_ms = BACKOFF_FIRST_MS;
    uint32_t delay = clean ? 0 : s_backoff(sl);
    char how[96];
    if (sl->timed_out)
        snprintf(how, sizeof how, "was killed for a job past its timeout");
    else if (WIFSIGNALED(wstatus))
        snprintf(how, sizeof how, "was killed by signal %d (%s)", WTERMSIG(wstatus),
                 strsignal(WTERMSIG(wstatus)));
    else if (WEXITSTATUS(wstatus) == WPROC_EXIT_RECYCLE)
        snprintf(how, sizeof how, "was recycled");
    else
        snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(wstatus));
    if (clean)
        log_info("worker process %d (pid %ld) %s after %.1f s: starting a fresh one", i, pid,
                 how, lived / 1000.0);
    else
        log_warn("worker process %d (pid %ld) %s after %.1f s: restarting it in %.1f s", i,
                 pid, how, lived / 1000.0, delay / 1000.0);
    sl->restart_at = now + delay;
}

static void s_reap(super_t *s)
{
    int wstatus;
    pid_t pid;
    while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0)
        for (int i = 0; i < s->o.procs; i++)
            if (s->slots[i].pid == pid) {
                s_exited(s, i, wstatus);
                break;
            }
}

/* Kill the children stuck in a job WATCH_GRACE_MS past its timeout.
 * Children post jobs without telling us: we look every WATCH_EVERY_MS. */
static void s_watch_jobs(super_t *s, uint64_t now)
{
    for (int i = 0; i < s->o.procs && !s->stopping; i++) {
        slot_t *sl = &s->slots[i];
        super_watch_t *w = &s->watches[i];
        uint64_t id = atomic_load(&w->job_id);
        uint64_t deadline = atomic_load(&w->deadline_ms);
        if (sl->pid <= 0 || sl->timed_out || !id || !deadline)
            continue;
        if (now < deadline + WATCH_GRACE_MS)
            continue;
        /* The child may have moved on between the two loads. */
        if (atomic_load(&w->job_id) != id)
            continue;
        log_warn("job %" PRIu64 " ran past its timeout by %" PRIu64 " ms without yielding: "
                 "killing worker process %d (pid %ld)", id, now - deadline, i, (long)sl->pid);
        atomic_store(&w->killed_id, id);
        sl->timed_out = true;
        kill(sl->pid, SIGKILL);
    }
}

/* Start the children whose time has come; returns ms until the next one
 * is due, or -1. */
static long s_restarts(super_t *s, uint64_t now)
{
    long next = -1;
    for (int i = 0; i < s->o.procs && !s->stopping; i++) {
        slot_t *sl = &s->slots[i];
        if (!sl->restart_at)
            continue;
        if (now >= sl->restart_at)
            s_spawn(s, i);
        if (sl->restart_at && (next < 0 || (long)(sl->restart_at - now) < next))
            next = sl->restart_at > now ? (long)(sl->restart_at - now) : 0;
    }
    return next;
}

int super_run(super_t *s)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        log_error("cannot make a pipe: %s", strerror(errno));
        return 1;
    }
    s->sig_r = fds[0];
    s->sig_w = s_sig_w = fds[1];
    s->self = getpid();
    struct sigaction sa = {0}, old_term, old_int, old_chld;
    sa.sa_handler = s_on_signal;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGCHLD, &sa, &old_chld);

    for (int i = 0; i < s->o.procs; i++)
        s_spawn(s, i);
    for (;;) {
        s_reap(s);
        if (s->stopping && s->alive == 0)
            break;
        uint64_t now = clock_mono_ms();
        long timeout = s_restarts(s, now);
        s_watch_jobs(s, now);
        if (!s->stopping && (timeout < 0 || timeout > WATCH_EVERY_MS))
            timeout = WATCH_EVERY_MS;
        if (s->stopping && !s->killed) {
            if (now >= s->kill_at) {
                log_warn("%d worker processes still running after the grace time: killing "
                         "them", s->alive);
                for (int i = 0; i < s->o.procs; i++)
                    if (s->slots[i].pid > 0)
                        kill(s->slots[i].pid, SIGKILL);
                s->killed = true;
            } else {
                long left = (long)(s->kill_at - now);
                timeout = timeout < 0 || left < timeout ? left : timeout;
            }
        }
        struct pollfd p = {s->sig_r, POLLIN, 0};
        if (timeout > 3600000)
            timeout = 3600000;
        if (poll(&p, 1, (int)timeout) < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            s->status = 1;
            s_stop(s, "poll failed");
        }
        unsigned char buf[32];
        ssize_t n;
        while ((n = read(s->sig_r, buf, sizeof buf)) > 0)
            for (ssize_t i = 0; i < n; i++)
                if (buf[i] == SIGTERM || buf[i] == SIGINT)
                    s_stop(s, buf[i] == SIGTERM ? "SIGTERM" : "SIGINT");
    }

    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGCHLD, &old_chld, NULL);
    s_sig_w = -1;
    close(s->sig_r);
    close(s->sig_w);
    s->sig_r = s->sig_w = -1;
    return s->status;
}
