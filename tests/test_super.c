/* test_super.c -- the supervisor: restarts, recycling, configuration
 * errors, drain on SIGTERM, a child stuck in a job past its timeout.  Each
 * test forks a process that runs super_run over small child functions; the
 * children report their pids on a pipe, and the test signals the
 * supervisor by pid. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "super.h"
#include "wproc.h"

typedef enum { RECYCLE, CONFIG, KILLED, SERVE, STUCK } child_mode_t;

typedef struct child_cfg {
    int fd;          /* write end: children send their pid, and 0 on SIGTERM */
    child_mode_t mode;
} child_cfg_t;

static volatile sig_atomic_t g_term;

static void s_on_term(int sig)
{
    (void)sig;
    g_term = 1;
}

static int s_child(int index, void *arg)
{
    (void)index;
    const child_cfg_t *c = arg;
    pid_t me = getpid();
    sigset_t term, old;
    if (c->mode == SERVE) {   /* like a worker: drain on SIGTERM */
        struct sigaction sa = {0};
        sa.sa_handler = s_on_term;
        sigaction(SIGTERM, &sa, NULL);
        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        sigprocmask(SIG_BLOCK, &term, &old);   /* delivered only in sigsuspend */
    }
    if (write(c->fd, &me, sizeof me) != sizeof me)
        return WPROC_EXIT_FAIL;
    switch (c->mode) {
    case RECYCLE: return WPROC_EXIT_RECYCLE;
    case CONFIG: return WPROC_EXIT_CONFIG;
    case KILLED: raise(SIGKILL); return WPROC_EXIT_FAIL;
    case STUCK: {
        /* Say which job the previous child was killed for (as a pid_t),
         * then post job 42 as past its deadline and never give the
         * thread back. */
        super_watch_t *w = super_child_watch();
        pid_t killed = (pid_t)atomic_exchange(&w->killed_id, 0);
        if (write(c->fd, &killed, sizeof killed) != sizeof killed)
            return WPROC_EXIT_FAIL;
        atomic_store(&w->deadline_ms, clock_mono_ms());
        atomic_store(&w->job_id, 42);
        for (;;)
            pause();
    }
    case SERVE:
        while (!g_term)
            sigsuspend(&old);
        me = 0;
        return write(c->fd, &me, sizeof me) == sizeof me ? WPROC_EXIT_OK : WPROC_EXIT_FAIL;
    }
    return WPROC_EXIT_FAIL;
}

/* Fork a supervisor of procs children in the given mode; *rfd gets the
 * read end of the children's pipe.  Returns the supervisor's pid. */
static pid_t s_start(int procs, child_mode_t mode, int *rfd)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        log_init("test_super", LOG_ERROR, false);
        child_cfg_t cfg = {fds[1], mode};
        super_opts_t o = {procs, s_child, &cfg, 5000};
        super_t *s = super_new(&o);
        int status = s ? super_run(s) : 99;
        super_destroy(&s);
        _exit(status);
    }
    close(fds[1]);
    *rfd = fds[0];
    return pid;
}

static pid_t s_read_pid(int fd)
{
    pid_t p;
    assert_int_equal(read(fd, &p, sizeof p), sizeof p);
    return p;
}

static int s_exit_status(pid_t pid)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static bool s_seen(const pid_t *v, int n, pid_t p)
{
    for (int i = 0; i < n; i++)
        if (v[i] == p)
            return true;
    return false;
}

static void test_recycled_children_are_replaced(void **state)
{
    (void)state;
    int fd;
    pid_t sup = s_start(2, RECYCLE, &fd);
    pid_t pids[8];
    for (int i = 0; i < 8; i++) {
        pids[i] = s_read_pid(fd);
        assert_false(s_seen(pids, i, pids[i]));   /* each one a new process */
    }
    kill(sup, SIGTERM);
    assert_int_equal(s_exit_status(sup), 0);
    close(fd);
}

static void test_killed_child_is_restarted(void **state)
{
    (void)state;
    int fd;
    pid_t sup = s_start(1, KILLED, &fd);
    pid_t a = s_read_pid(fd), b = s_read_pid(fd), c = s_read_pid(fd);
    assert_true(a != b && b != c && a != c);
    kill(sup, SIGTERM);
    assert_int_equal(s_exit_status(sup), 0);
    close(fd);
}

static void test_stuck_job_gets_its_child_killed(void **state)
{
    (void)state;
    int fd;
    pid_t sup = s_start(1, STUCK, &fd);
    pid_t a = s_read_pid(fd);
    assert_int_equal(s_read_pid(fd), 0);    /* the first child: nothing to report */
    pid_t b = s_read_pid(fd);               /* its replacement ... */
    assert_true(a != b);
    assert_int_equal(s_read_pid(fd), 42);   /* ... learns which job it was */
    kill(sup, SIGTERM);
    assert_int_equal(s_exit_status(sup), 0);
    close(fd);
}

static void test_config_error_stops_all(void **state)
{
    (void)state;
    int fd;
    pid_t sup = s_start(3, CONFIG, &fd);
    assert_int_equal(s_exit_status(sup), 2);
    /* None was restarted: at most the three first children wrote (the
     * first to fail gets the others stopped, maybe before they wrote). */
    pid_t p;
    int n = 0;
    while (read(fd, &p, sizeof p) == sizeof p)
        n++;
    assert_in_range(n, 1, 3);
    close(fd);
}

static void test_sigterm_drains_children(void **state)
{
    (void)state;
    int fd;
    pid_t sup = s_start(2, SERVE, &fd);
    pid_t a = s_read_pid(fd), b = s_read_pid(fd);
    assert_true(a > 0 && b > 0 && a != b);
    kill(sup, SIGTERM);
    /* Each child was told (SIGTERM), finished, and said so; none restarted. */
    assert_int_equal(s_read_pid(fd), 0);
    assert_int_equal(s_read_pid(fd), 0);
    assert_int_equal(s_exit_status(sup), 0);
    pid_t p;
    assert_int_equal(read(fd, &p, sizeof p), 0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recycled_children_are_replaced),
        cmocka_unit_test(test_killed_child_is_restarted),
        cmocka_unit_test(test_stuck_job_gets_its_child_killed),
        cmocka_unit_test(test_config_error_stops_all),
        cmocka_unit_test(test_sigterm_drains_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
