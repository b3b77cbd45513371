/* test_coro.c -- coroutines: switch order, lifetime, stacks, FP state,
 * and the guard page turning an overflow into a clear abort. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fenv.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coro.h"

/* ---------------------------------------------------------------- helpers */

/* A record of events, to check the order in which host and coroutine ran. */
typedef struct {
    int ev[32];
    int n;
} trail_t;

static void s_note(trail_t *t, int e)
{
    assert_true(t->n < 32);
    t->ev[t->n++] = e;
}

/* ----------------------------------------------------------------- order */

static void s_order_body(void *arg)
{
    trail_t *t = arg;
    s_note(t, 1);
    coro_yield();
    s_note(t, 3);
    coro_yield();
    s_note(t, 5);
}

static void test_resume_yield_finish_order(void **state)
{
    (void)state;
    trail_t t = {.n = 0};
    coro_t *co = coro_new(s_order_body, &t, 0);
    assert_non_null(co);
    assert_false(coro_finished(co));
    assert_int_equal(t.n, 0);   /* created suspended: nothing ran yet */

    s_note(&t, 0);
    assert_true(coro_resume(co));
    s_note(&t, 2);
    assert_true(coro_resume(co));
    s_note(&t, 4);
    assert_false(coro_resume(co));
    s_note(&t, 6);
    assert_true(coro_finished(co));

    assert_int_equal(t.n, 7);
    for (int i = 0; i < 7; i++)
        assert_int_equal(t.ev[i], i);
    coro_destroy(&co);
    assert_null(co);
    coro_destroy(&co);  /* safe twice */
}

/* ------------------------------------------------------------ many resumes */

#define MANY 100000

static void s_counter_body(void *arg)
{
    long *count = arg;
    for (int i = 0; i < MANY; i++) {
        (*count)++;
        coro_yield();
    }
}

static void test_many_resumes(void **state)
{
    (void)state;
    long count = 0;
    long resumes = 0;
    coro_t *co = coro_new(s_counter_body, &count, 0);
    assert_non_null(co);
    while (coro_resume(co)) {
        resumes++;
        assert_int_equal(count, resumes);
    }
    assert_int_equal(resumes, MANY);
    assert_int_equal(count, MANY);
    coro_destroy(&co);
}

/* ------------------------------------------------------- 10,000 at once */

#define CROWD 10000

typedef struct {
    int id;
    int steps;
    char *stack_mark;   /* address of a local on the coroutine's stack */
} crowd_member_t;

static void s_crowd_body(void *arg)
{
    crowd_member_t *m = arg;
    volatile char local = (char)m->id;
    m->stack_mark = (char *)&local;
    m->steps++;
    coro_yield();
    /* Our stack survived 9,999 other coroutines running in between. */
    assert_int_equal(local, (char)m->id);
    m->steps++;
}

static void test_ten_thousand_alive(void **state)
{
    (void)state;
    coro_t **cos = calloc(CROWD, sizeof *cos);
    crowd_member_t *ms = calloc(CROWD, sizeof *ms);
    assert_non_null(cos);
    assert_non_null(ms);
    for (int i = 0; i < CROWD; i++) {
        ms[i].id = i;
        cos[i] = coro_new(s_crowd_body, &ms[i], 0);
        assert_non_null(cos[i]);
    }
    for (int i = 0; i < CROWD; i++)
        assert_true(coro_resume(cos[i]));
    for (int i = 0; i < CROWD; i++) {
        assert_int_equal(ms[i].steps, 1);
        if (i > 0)  /* every coroutine has its own stack */
            assert_ptr_not_equal(ms[i].stack_mark, ms[i - 1].stack_mark);
    }
    for (int i = CROWD - 1; i >= 0; i--)
        assert_false(coro_resume(cos[i]));
    for (int i = 0; i < CROWD; i++) {
        assert_int_equal(ms[i].steps, 2);
        coro_destroy(&cos[i]);
    }
    free(cos);
    free(ms);
}

/* ---------------------------------------------------- data and current */

typedef struct {
    coro_t *self;           /* what coro_current() said inside */
    coro_t *inner;          /* a coroutine this one resumes */
    coro_t *inner_saw;      /* coro_current() inside inner */
    coro_t *after_inner;    /* coro_current() back in the outer one */
    void *data_seen;
} current_probe_t;

static void s_inner_body(void *arg)
{
    current_probe_t *p = arg;
    p->inner_saw = coro_current();
    coro_yield();
}

static void s_current_body(void *arg)
{
    current_probe_t *p = arg;
    p->self = coro_current();
    p->data_seen = coro_data(p->self);
    /* Nested: this coroutine resumes another, which yields back here. */
    assert_true(coro_resume(p->inner));
    p->after_inner = coro_current();
}

static void test_current_and_data(void **state)
{
    (void)state;
    int token = 42;
    current_probe_t p = {0};
    assert_null(coro_current());

    coro_t *co = coro_new(s_current_body, &p, 0);
    p.inner = coro_new(s_inner_body, &p, 0);
    assert_non_null(co);
    assert_non_null(p.inner);
    assert_null(coro_data(co));
    coro_set_data(co, &token);
    assert_ptr_equal(coro_data(co), &token);

    assert_false(coro_resume(co));
    assert_ptr_equal(p.self, co);
    assert_ptr_equal(p.data_seen, &token);
    assert_ptr_equal(p.inner_saw, p.inner);
    assert_ptr_equal(p.after_inner, co);
    assert_null(coro_current());

    /* The inner one yielded to the outer, which has finished; resuming it
     * from the host's stack now returns here. */
    assert_false(coro_resume(p.inner));
    assert_null(coro_current());
    coro_destroy(&p.inner);
    coro_destroy(&co);
}

/* ------------------------------------------------------ floating point */

typedef struct {
    int round_inside;   /* rounding mode seen inside after the host ran */
    double sum;
} fp_probe_t;

static void s_fp_body(void *arg)
{
    fp_probe_t *p = arg;
    assert_int_equal(fesetround(FE_UPWARD), 0);
    volatile double third = 1.0 / 3.0;
    volatile double acc = 0.0;
    for (int i = 0; i < 10; i++) {
        acc += third;
        coro_yield();
    }
    p->round_inside = fegetround();
    p->sum = acc;
    fesetround(FE_TONEAREST);
}

static void test_fp_state_preserved(void **state)
{
    (void)state;
    fp_probe_t p = {0};
    assert_int_equal(fegetround(), FE_TONEAREST);
    coro_t *co = coro_new(s_fp_body, &p, 0);
    assert_non_null(co);
    volatile double host = 0.0;
    while (coro_resume(co)) {
        /* The coroutine's FE_UPWARD must not leak into the host. */
        assert_int_equal(fegetround(), FE_TONEAREST);
        host += 0.1;
    }
    assert_int_equal(p.round_inside, FE_UPWARD);
    assert_int_equal(fegetround(), FE_TONEAREST);
    assert_true(p.sum > 3.33 && p.sum < 3.34);
    assert_true(host > 0.99 && host < 1.01);
    coro_destroy(&co);
}

/* Many doubles live across each switch: on aarch64 the compiler keeps
 * them in the callee-saved d8-d15, which the switch must preserve. */
static void s_fp_regs_body(void *arg)
{
    double *io = arg;
    double a = io[0], b = a * 2, c = a * 3, d = a * 4;
    double e = a * 5, f = a * 6, g = a * 7, h = a * 8;
    for (int i = 0; i < 5; i++) {
        coro_yield();
        a += 1, b += 2, c += 3, d += 4, e += 5, f += 6, g += 7, h += 8;
    }
    io[1] = a + b + c + d + e + f + g + h;
}

static void test_fp_registers_preserved(void **state)
{
    (void)state;
    double io[2] = {0.5, 0.0};
    coro_t *co = coro_new(s_fp_regs_body, io, 0);
    assert_non_null(co);
    double a = io[0] * 3, b = a * 2, c = a * 3, d = a * 4;
    double e = a * 5, f = a * 6, g = a * 7, h = a * 8;
    while (coro_resume(co))
        a -= 1, b -= 2, c -= 3, d -= 4, e -= 5, f -= 6, g -= 7, h -= 8;
    /* coroutine: 0.5 * 36 + 5 * 36; host: 1.5 * 36 - 5 * 36 */
    assert_true(io[1] == 198.0);
    assert_true(a + b + c + d + e + f + g + h == -126.0);
    coro_destroy(&co);
}

/* ------------------------------------------------------- stack sizes */

typedef struct {
    size_t bytes;
    int done;
} stack_use_t;

static void s_use_stack_body(void *arg)
{
    stack_use_t *u = arg;
    volatile char *buf = __builtin_alloca(u->bytes);
    for (size_t i = 0; i < u->bytes; i += 512)
        buf[i] = (char)i;
    buf[u->bytes - 1] = 1;
    u->done = 1;
}

static void test_stack_size_honoured(void **state)
{
    (void)state;
    /* Most of a 256 KiB stack is usable (and not only the 64 KiB default);
     * an odd size is rounded up to whole pages. */
    stack_use_t big = {.bytes = 200 * 1024};
    coro_t *co = coro_new(s_use_stack_body, &big, 256 * 1024);
    assert_non_null(co);
    assert_false(coro_resume(co));
    assert_int_equal(big.done, 1);
    coro_destroy(&co);

    stack_use_t odd = {.bytes = 8000};
    co = coro_new(s_use_stack_body, &odd, 10001);
    assert_non_null(co);
    assert_false(coro_resume(co));
    assert_int_equal(odd.done, 1);
    coro_destroy(&co);
}

/* --------------------------------------------------------- destroying */

static void s_forever_body(void *arg)
{
    int *steps = arg;
    for (;;) {
        (*steps)++;
        coro_yield();
    }
}

static void test_destroy_unfinished(void **state)
{
    (void)state;
    int steps = 0;
    coro_t *never_run = coro_new(s_forever_body, &steps, 0);
    assert_non_null(never_run);
    coro_destroy(&never_run);
    assert_null(never_run);
    assert_int_equal(steps, 0);

    coro_t *co = coro_new(s_forever_body, &steps, 0);
    assert_non_null(co);
    for (int i = 0; i < 3; i++)
        assert_true(coro_resume(co));
    assert_int_equal(steps, 3);
    assert_false(coro_finished(co));
    coro_destroy(&co);
    assert_null(co);

    /* The memory is reusable: a new coroutine runs fine afterwards. */
    trail_t t = {.n = 0};
    co = coro_new(s_order_body, &t, 0);
    assert_non_null(co);
    while (coro_resume(co))
        ;
    assert_int_equal(t.n, 3);
    coro_destroy(&co);
}

/* ------------------------------------------------ longjmp inside a coroutine */

/* longjmp skips the frames it unwinds; ASan then clears their redzones
 * from the stack pointer to the top of the stack it believes current.
 * Without the fiber annotations it would not know the coroutine's stack,
 * and the stale redzones would be reported as a false overflow below. */
static jmp_buf s_jump;

static __attribute__((noinline)) void s_deep_then_jump(int n)
{
    volatile char frame[256];
    frame[0] = (char)n;
    if (n > 0)
        s_deep_then_jump(n - 1);
    else if (frame[0] == 0)     /* always; the compiler cannot tell */
        longjmp(s_jump, 1);
    frame[1] = frame[0];
}

static __attribute__((noinline)) void s_touch_stack(void)
{
    volatile char big[8192];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)i;
}

static void s_jump_body(void *arg)
{
    int *phase = arg;
    if (setjmp(s_jump) == 0) {
        s_deep_then_jump(8);
        return;     /* not reached */
    }
    *phase = 1;
    coro_yield();
    s_touch_stack();
    *phase = 2;
}

static void test_longjmp_inside_coroutine(void **state)
{
    (void)state;
    int phase = 0;
    coro_t *co = coro_new(s_jump_body, &phase, 0);
    assert_non_null(co);
    assert_true(coro_resume(co));
    assert_int_equal(phase, 1);
    s_touch_stack();    /* the host's stack is unharmed as well */
    assert_false(coro_resume(co));
    assert_int_equal(phase, 2);
    coro_destroy(&co);
}

static void test_backend_name(void **state)
{
    (void)state;
    const char *b = coro_backend();
    assert_non_null(b);
    assert_true(strcmp(b, "asm-x86_64") == 0 || strcmp(b, "asm-aarch64") == 0
                || strcmp(b, "ucontext") == 0);
}

/* ------------------------------------------------------ stack overflow */

typedef struct {
    int status;         /* from waitpid */
    char err[4096];     /* the child's stderr */
} child_t;

/* Run body in a forked child with stderr captured; the child exits 0 if
 * body returns. */
static void s_run_child(void (*body)(void), child_t *out)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        alarm(60);  /* a broken handler must not hang the suite */
        body();
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fds[0], out->err + n, sizeof out->err - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == sizeof out->err - 1)
            n = 0;      /* keep reading to EOF; the message is at the start */
    }
    out->err[n] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &out->status, 0), pid);
}

/* Called through a volatile pointer so the compiler can neither turn the
 * recursion into a loop nor prove it infinite. */
static void (*volatile s_recurse_fn)(volatile char *up);

static void s_recurse(volatile char *up)
{
    volatile char frame[1024];
    frame[0] = (char)(up ? up[0] + 1 : 0);
    s_recurse_fn(frame);
    frame[1] = frame[0];
}

static void s_overflow_body(void *arg)
{
    (void)arg;
    s_recurse(NULL);
}

static void s_overflow_child(void)
{
    if (coro_install_overflow_handler() != 0)
        _exit(3);
    if (coro_install_overflow_handler() != 0)     /* idempotent */
        _exit(4);
    s_recurse_fn = s_recurse;
    coro_t *co = coro_new(s_overflow_body, NULL, 32 * 1024);
    if (!co)
        _exit(5);
    coro_resume(co);
}

static void test_stack_overflow_aborts_with_message(void **state)
{
    (void)state;
    child_t c;
    s_run_child(s_overflow_child, &c);
    if (!WIFSIGNALED(c.status) || WTERMSIG(c.status) != SIGABRT)
        fail_msg("child did not die by SIGABRT (status 0x%x); stderr: %s", c.status, c.err);
    assert_non_null(strstr(c.err, "coroutine stack overflow (stack of 32 KiB)"));
    assert_non_null(strstr(c.err, "qworker --stack"));
}

static void s_wild_write_child(void)
{
    /* cmocka catches SIGSEGV itself; start from the default action. */
    signal(SIGSEGV, SIG_DFL);
    if (coro_install_overflow_handler() != 0)
        _exit(3);
    /* A fault on the host's stack, in an inaccessible page that is no
     * coroutine's guard (not NULL: UBSan would report that first). */
    volatile char *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        _exit(5);
    page[0] = 1;
}

static void test_other_fault_not_reported_as_overflow(void **state)
{
    (void)state;
    child_t c;
    s_run_child(s_wild_write_child, &c);
    /* The handler put the previous (default) action back: the fault
     * recurs and kills the child, without our message. */
    if (!WIFSIGNALED(c.status) || WTERMSIG(c.status) != SIGSEGV)
        fail_msg("child did not die by SIGSEGV (status 0x%x); stderr: %s", c.status, c.err);
    assert_null(strstr(c.err, "stack overflow"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_yield_finish_order),
        cmocka_unit_test(test_many_resumes),
        cmocka_unit_test(test_ten_thousand_alive),
        cmocka_unit_test(test_current_and_data),
        cmocka_unit_test(test_fp_state_preserved),
        cmocka_unit_test(test_fp_registers_preserved),
        cmocka_unit_test(test_stack_size_honoured),
        cmocka_unit_test(test_destroy_unfinished),
        cmocka_unit_test(test_longjmp_inside_coroutine),
        cmocka_unit_test(test_backend_name),
        cmocka_unit_test(test_stack_overflow_aborts_with_message),
        cmocka_unit_test(test_other_fault_not_reported_as_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
