/* bench_proc.c -- starting and stopping helper programs (bench_proc.h). */
#include "bench_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define PROC_MAX 16           /* programs started at once, at most */
#define PROC_POLL_MS 10       /* while waiting for a file or an exit */

struct bench_proc {
    pid_t pid;
    bool reaped;
    int status;               /* from waitpid, once reaped */
    char name[64];            /* basename, for messages */
};

/* Pids the signal handler stops: a plain array of sig_atomic_t-sized
 * slots, written only outside the handler. */
static volatile pid_t s_pids[PROC_MAX];

static void s_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void bench_proc_find(const char *name, char *out, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char cand[PATH_MAX + 64];
        snprintf(cand, sizeof cand, "%s/../server/%s", dirname(self), name);
        if (access(cand, X_OK) == 0) {
            snprintf(out, len, "%s", cand);
            return;
        }
    }
    snprintf(out, len, "%s", name);
}

static void s_track(pid_t pid, bool on)
{
    for (int i = 0; i < PROC_MAX; i++)
        if (on ? s_pids[i] == 0 : s_pids[i] == pid) {
            s_pids[i] = on ? pid : 0;
            return;
        }
}

/* In the child: become a group of its own, die with the parent, wire up
 * stdio, exec.  On failure, errno goes back through the CLOEXEC pipe. */
static void s_child(char *const argv[], const char *logpath, int report, pid_t parent)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)   /* the parent died before prctl */
        _exit(127);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    int in = open("/dev/null", O_RDONLY);
    int log = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (in < 0 || log < 0 || dup2(in, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
        goto fail;
    execvp(argv[0], argv);
fail:;
    int e = errno;
    ssize_t w = write(report, &e, sizeof e);
    (void)w;
    _exit(127);
}

bench_proc_t *bench_proc_start(char *const argv[], const char *logpath, char *err,
                               size_t errlen)
{
    bench_proc_t *p = calloc(1, sizeof *p);
    int pipefd[2];
    if (!p || pipe2(pipefd, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot start %s: %s", argv[0], strerror(errno));
        free(p);
        return NULL;
    }
    const char *slash = strrchr(argv[0], '/');
    snprintf(p->name, sizeof p->name, "%s", slash ? slash + 1 : argv[0]);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        s_child(argv, logpath, pipefd[1], parent);
    close(pipefd[1]);
    if (pid < 0) {
        snprintf(err, errlen, "cannot start %s: fork: %s", argv[0], strerror(errno));
        close(pipefd[0]);
        free(p);
        return NULL;
    }
    /* EOF on the pipe: exec succeeded.  An int: the child's errno. */
    int e = 0;
    ssize_t r;
    do
        r = read(pipefd[0], &e, sizeof e);
    while (r < 0 && errno == EINTR);
    close(pipefd[0]);
    p->pid = pid;
    if (r == (ssize_t)sizeof e) {
        waitpid(pid, NULL, 0);
        snprintf(err, errlen,
                 "cannot run %s: %s (build it, or put it on PATH next to qclient)", argv[0],
                 strerror(e));
        free(p);
        return NULL;
    }
    s_track(pid, true);
    return p;
}

pid_t bench_proc_pid(const bench_proc_t *p)
{
    return p->pid;
}

double bench_proc_cpu(const bench_proc_t *p)
{
    /* The process's CPU-time clock (all its threads), to the nanosecond;
     * /proc/PID/stat counts in 10 ms ticks, too coarse for a short run. */
    clockid_t id;
    struct timespec ts;
    if (p->reaped || clock_getcpuclockid(p->pid, &id) != 0 || clock_gettime(id, &ts) != 0)
        return -1;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool bench_proc_alive(bench_proc_t *p)
{
    if (p->reaped)
        return false;
    pid_t r = waitpid(p->pid, &p->status, WNOHANG);
    if (r == p->pid || (r < 0 && errno == ECHILD)) {
        p->reaped = true;
        s_track(p->pid, false);
        return false;
    }
    return true;
}

static void s_describe_exit(const bench_proc_t *p, char *buf, size_t len)
{
    if (WIFEXITED(p->status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(p->status));
    else if (WIFSIGNALED(p->status))
        snprintf(buf, len, "was killed by signal %d", WTERMSIG(p->status));
    else
        snprintf(buf, len, "stopped");
}

int bench_proc_endpoint(bench_proc_t *p, const char *path, int timeout_ms, char *out,
                        size_t len, char *err, size_t errlen)
{
    uint64_t deadline = clock_mono_ms() + (uint64_t)timeout_ms;
    for (;;) {
        /* The writer renames a complete file into place, so a file that
         * exists holds its whole content. */
        FILE *f = fopen(path, "r");
        if (f) {
            char *line = fgets(out, (int)len, f);
            fclose(f);
            if (line) {
                out[strcspn(out, "\r\n")] = '\0';
                if (*out)
                    return 0;
            }
        }
        if (!bench_proc_alive(p)) {
            char how[64];
            s_describe_exit(p, how, sizeof how);
            snprintf(err, errlen, "%s %s before writing %s (see its log)", p->name, how, path);
            return -1;
        }
        if (clock_mono_ms() >= deadline) {
            snprintf(err, errlen, "%s wrote nothing to %s within %d ms (see its log)", p->name,
                     path, timeout_ms);
            return -1;
        }
        s_sleep_ms(PROC_POLL_MS);
    }
}

void bench_proc_stop(bench_proc_t **self_p, int timeout_ms)
{
    bench_proc_t *p = *self_p;
    if (!p)
        return;
    if (bench_proc_alive(p)) {
        kill(p->pid, SIGTERM);
        uint64_t deadline = clock_mono_ms() + (uint64_t)timeout_ms;
        while (bench_proc_alive(p) && clock_mono_ms() < deadline)
            s_sleep_ms(PROC_POLL_MS);
        if (bench_proc_alive(p)) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &p->status, 0);
            s_track(p->pid, false);
        }
    }
    free(p);
    *self_p = NULL;
}

static void s_on_signal(int sig)
{
    for (int i = 0; i < PROC_MAX; i++)
        if (s_pids[i] > 0)
            kill(s_pids[i], SIGTERM);
    signal(sig, SIG_DFL);
    raise(sig);
}

void bench_proc_stop_on_signal(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}
