/* coro.c -- stackful coroutines on mmap'ed stacks with a guard page.
 *
 * Life of a coroutine: coro_new maps [guard page | stack] and prepares the
 * stack so that the first switch into it lands in s_main, which runs
 * fn(arg), marks the coroutine finished and switches back to its resumer
 * for the last time.  A finished coroutine is never switched into again,
 * so s_main never returns.
 *
 * Two switch backends, chosen at build time:
 *  - CORO_ASM: qj_coro_switch below saves the callee-saved registers on
 *    the old stack, stores the stack pointer, loads the new one and pops
 *    the same registers from it.  No syscall, a few nanoseconds.
 *  - CORO_UCONTEXT: swapcontext, portable but it saves and restores the
 *    signal mask (two syscalls per switch).
 *
 * Sanitizers: ASan keeps a model of the current stack; every switch is
 * bracketed by __sanitizer_start_switch_fiber (before, naming the stack we
 * go to) and __sanitizer_finish_switch_fiber (after, on the new stack).
 * Valgrind learns each stack through VALGRIND_STACK_REGISTER so it does not
 * mistake a switch for a huge stack-pointer move.
 */
#include "coro.h"

#include <assert.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(CORO_UCONTEXT) && CORO_UCONTEXT
#include <ucontext.h>
#define CORO_BACKEND_NAME "ucontext"
#elif defined(CORO_ASM) && CORO_ASM && defined(__x86_64__)
#define CORO_BACKEND_NAME "asm-x86_64"
#elif defined(CORO_ASM) && CORO_ASM && defined(__aarch64__)
#define CORO_BACKEND_NAME "asm-aarch64"
#else
#error "coro.c: build with -DCORO_ASM=1 (x86_64, aarch64 only) or -DCORO_UCONTEXT=1 (meson -Dcoro_backend)"
#endif

#include "asan.h"
#ifdef QJ_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(HAVE_VALGRIND) && HAVE_VALGRIND
#include <valgrind/valgrind.h>
#endif

struct coro {
#if defined(CORO_UCONTEXT) && CORO_UCONTEXT
    ucontext_t ctx;             /* the coroutine's registers while switched out */
    ucontext_t caller_ctx;      /* the resumer's registers while the coroutine runs */
#else
    void *sp;                   /* the coroutine's stack pointer while switched out */
    void *caller_sp;            /* the resumer's stack pointer while the coroutine runs */
#endif
    coro_fn fn;                 /* body, run once */
    void *arg;                  /* fn's argument */
    void *data;                 /* user pointer (coro_set_data) */
    char *map;                  /* the whole mapping: guard page, then the stack */
    size_t map_len;             /* bytes mapped */
    size_t guard_len;           /* PROT_NONE bytes at the low end of map */
    bool started;               /* has run at least once */
    bool running;               /* between coro_resume and its return */
    bool finished;              /* fn has returned */
#if defined(HAVE_VALGRIND) && HAVE_VALGRIND
    unsigned vg_stack_id;       /* VALGRIND_STACK_REGISTER handle */
#endif
    /* Used only under ASan: */
    void *asan_fake_stack;      /* ASan's fake-stack handle while switched out */
    const void *caller_bottom;  /* resumer's stack, announced when yielding */
    size_t caller_size;
};

/* The running coroutine of this thread; NULL on the thread's own stack.
 * The overflow handler reads it to find the guard page. */
static __thread coro_t *s_current;

static size_t s_page_size(void)
{
    static size_t page;
    if (page == 0) {
        long n = sysconf(_SC_PAGESIZE);
        page = n > 0 ? (size_t)n : 4096;
    }
    return page;
}

static char *s_stack_lo(const coro_t *co) { return co->map + co->guard_len; }
static size_t s_stack_len(const coro_t *co) { return co->map_len - co->guard_len; }

/* ASan fiber annotations; no-ops without ASan.  fake_save NULL on the
 * final switch out of a finished coroutine tells ASan to free its fake
 * stack instead of keeping it for a resume that never comes. */
static void s_asan_start(void **fake_save, const void *bottom, size_t size)
{
#ifdef QJ_ASAN
    __sanitizer_start_switch_fiber(fake_save, bottom, size);
#else
    (void)fake_save, (void)bottom, (void)size;
#endif
}

static void s_asan_finish(void *fake, const void **old_bottom, size_t *old_size)
{
#ifdef QJ_ASAN
    __sanitizer_finish_switch_fiber(fake, old_bottom, old_size);
#else
    (void)fake, (void)old_bottom, (void)old_size;
#endif
}

static __attribute__((noreturn)) void s_main(coro_t *co);

#if defined(CORO_UCONTEXT) && CORO_UCONTEXT
/* ---------------------------------------------------------------- ucontext */

/* makecontext can only pass ints; coro_resume has already made the new
 * coroutine current, so the entry point reads it from there. */
static void s_uc_boot(void)
{
    s_main(s_current);
}

static int s_prepare(coro_t *co)
{
    if (getcontext(&co->ctx) != 0)
        return -1;
    co->ctx.uc_stack.ss_sp = s_stack_lo(co);
    co->ctx.uc_stack.ss_size = s_stack_len(co);
    co->ctx.uc_link = NULL;     /* s_main never returns */
    makecontext(&co->ctx, s_uc_boot, 0);
    return 0;
}

static void s_switch_in(coro_t *co)
{
    int rc = swapcontext(&co->caller_ctx, &co->ctx);
    assert(rc == 0);
    (void)rc;
}

static void s_switch_out(coro_t *co)
{
    int rc = swapcontext(&co->ctx, &co->caller_ctx);
    assert(rc == 0);
    (void)rc;
}

#else
/* --------------------------------------------------------------------- asm */

/* qj_coro_switch(save, to): push the callee-saved state, *save = sp,
 * sp = to, pop the same state from there and return on the new stack.
 * qj_coro_boot: first return address of a new stack; calls s_main(co)
 * with co and s_main taken from the callee-saved registers s_prepare set. */
__attribute__((visibility("hidden"))) void qj_coro_switch(void **save, void *to);
__attribute__((visibility("hidden"))) extern const char qj_coro_boot[];

#if defined(__x86_64__)
/* Frame, from the saved sp upwards: MXCSR (4 bytes) and x87 control word
 * (2 bytes) in one 8-byte slot, r15, r14, r13, r12, rbx, rbp, return
 * address.  Both FP control registers are callee-saved in the SysV ABI:
 * a coroutine that changes the rounding mode must not change its host's. */
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".globl qj_coro_switch\n"
    ".hidden qj_coro_switch\n"
    ".type qj_coro_switch,@function\n"
    "qj_coro_switch:\n"
    ".cfi_startproc\n"
    "    pushq %rbp\n"
    ".cfi_adjust_cfa_offset 8\n"
    "    pushq %rbx\n"
    ".cfi_adjust_cfa_offset 8\n"
    "    pushq %r12\n"
    ".cfi_adjust_cfa_offset 8\n"
    "    pushq %r13\n"
    ".cfi_adjust_cfa_offset 8\n"
    "    pushq %r14\n"
    ".cfi_adjust_cfa_offset 8\n"
    "    pushq %r15\n"
    ".cfi_adjust_cfa_offset 8\n"
    "    subq $8, %rsp\n"
    ".cfi_adjust_cfa_offset 8\n"
    "    stmxcsr (%rsp)\n"
    "    fnstcw 4(%rsp)\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    ldmxcsr (%rsp)\n"
    "    fldcw 4(%rsp)\n"
    "    addq $8, %rsp\n"
    ".cfi_adjust_cfa_offset -8\n"
    "    popq %r15\n"
    ".cfi_adjust_cfa_offset -8\n"
    "    popq %r14\n"
    ".cfi_adjust_cfa_offset -8\n"
    "    popq %r13\n"
    ".cfi_adjust_cfa_offset -8\n"
    "    popq %r12\n"
    ".cfi_adjust_cfa_offset -8\n"
    "    popq %rbx\n"
    ".cfi_adjust_cfa_offset -8\n"
    "    popq %rbp\n"
    ".cfi_adjust_cfa_offset -8\n"
    "    ret\n"
    ".cfi_endproc\n"
    ".size qj_coro_switch, .-qj_coro_switch\n"
    "\n"
    ".p2align 4\n"
    ".globl qj_coro_boot\n"
    ".hidden qj_coro_boot\n"
    ".type qj_coro_boot,@function\n"
    "qj_coro_boot:\n"
    ".cfi_startproc\n"
    ".cfi_undefined rip\n"      /* the outermost frame: unwinders stop here */
    "    movq %r12, %rdi\n"
    "    callq *%r13\n"
    "    ud2\n"
    ".cfi_endproc\n"
    ".size qj_coro_boot, .-qj_coro_boot\n");

static int s_prepare(coro_t *co)
{
    uint32_t mxcsr;
    uint16_t fpucw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));

    /* The top is page-aligned.  After qj_coro_switch pops 8 slots and
     * returns (slot 7), sp is top - 16: 16-byte aligned, as qj_coro_boot's
     * call needs.  The two top slots stay zero (an end marker). */
    uint64_t *sp = (uint64_t *)(void *)(co->map + co->map_len) - 10;
    memset(sp, 0, 10 * sizeof *sp);
    sp[0] = (uint64_t)mxcsr | (uint64_t)fpucw << 32;
    sp[4] = (uint64_t)(uintptr_t)co;            /* r12 */
    sp[3] = (uint64_t)(uintptr_t)s_main;        /* r13 */
    sp[7] = (uint64_t)(uintptr_t)qj_coro_boot;  /* return address */
    co->sp = sp;
    return 0;
}

#elif defined(__aarch64__)
/* Frame (176 bytes, keeps sp 16-byte aligned): x19..x28, x29 (fp), x30
 * (lr, the return address), d8..d15, FPCR.  FPCR holds the rounding mode,
 * kept per coroutine for the same reason as MXCSR on x86_64. */
__asm__(
    ".text\n"
    ".p2align 2\n"
    ".globl qj_coro_switch\n"
    ".hidden qj_coro_switch\n"
    ".type qj_coro_switch,%function\n"
    "qj_coro_switch:\n"
    "    sub sp, sp, #176\n"
    "    stp x19, x20, [sp, #0]\n"
    "    stp x21, x22, [sp, #16]\n"
    "    stp x23, x24, [sp, #32]\n"
    "    stp x25, x26, [sp, #48]\n"
    "    stp x27, x28, [sp, #64]\n"
    "    stp x29, x30, [sp, #80]\n"
    "    stp d8, d9, [sp, #96]\n"
    "    stp d10, d11, [sp, #112]\n"
    "    stp d12, d13, [sp, #128]\n"
    "    stp d14, d15, [sp, #144]\n"
    "    mrs x9, fpcr\n"
    "    str x9, [sp, #160]\n"
    "    mov x9, sp\n"
    "    str x9, [x0]\n"
    "    mov sp, x1\n"
    "    ldr x9, [sp, #160]\n"
    "    msr fpcr, x9\n"
    "    ldp x19, x20, [sp, #0]\n"
    "    ldp x21, x22, [sp, #16]\n"
    "    ldp x23, x24, [sp, #32]\n"
    "    ldp x25, x26, [sp, #48]\n"
    "    ldp x27, x28, [sp, #64]\n"
    "    ldp x29, x30, [sp, #80]\n"
    "    ldp d8, d9, [sp, #96]\n"
    "    ldp d10, d11, [sp, #112]\n"
    "    ldp d12, d13, [sp, #128]\n"
    "    ldp d14, d15, [sp, #144]\n"
    "    add sp, sp, #176\n"
    "    ret\n"
    ".size qj_coro_switch, .-qj_coro_switch\n"
    "\n"
    ".p2align 2\n"
    ".globl qj_coro_boot\n"
    ".hidden qj_coro_boot\n"
    ".type qj_coro_boot,%function\n"
    "qj_coro_boot:\n"
    ".cfi_startproc\n"
    ".cfi_undefined x30\n"      /* the outermost frame: unwinders stop here */
    "    mov x0, x19\n"
    "    blr x20\n"
    "    brk #0\n"
    ".cfi_endproc\n"
    ".size qj_coro_boot, .-qj_coro_boot\n");

static int s_prepare(coro_t *co)
{
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));

    uint64_t *sp = (uint64_t *)(void *)(co->map + co->map_len) - 22;
    memset(sp, 0, 22 * sizeof *sp);
    sp[0] = (uint64_t)(uintptr_t)co;            /* x19 */
    sp[1] = (uint64_t)(uintptr_t)s_main;        /* x20 */
    sp[11] = (uint64_t)(uintptr_t)qj_coro_boot; /* x30: return address */
    sp[20] = fpcr;
    co->sp = sp;
    return 0;
}
#endif

static void s_switch_in(coro_t *co) { qj_coro_switch(&co->caller_sp, co->sp); }
static void s_switch_out(coro_t *co) { qj_coro_switch(&co->sp, co->caller_sp); }
#endif

/* ----------------------------------------------------------------- common */

/* First frame of every coroutine. */
static void s_main(coro_t *co)
{
    s_asan_finish(NULL, &co->caller_bottom, &co->caller_size);
    co->fn(co->arg);
    co->finished = true;
    s_asan_start(NULL, co->caller_bottom, co->caller_size);
    s_switch_out(co);
    abort();    /* unreachable: coro_resume refuses a finished coroutine */
}

coro_t *coro_new(coro_fn fn, void *arg, size_t stack_size)
{
    assert(fn);
    size_t page = s_page_size();
    if (stack_size == 0)
        stack_size = CORO_STACK_DEFAULT;
    if (stack_size > SIZE_MAX / 2)
        return NULL;
    stack_size = (stack_size + page - 1) / page * page;

    coro_t *co = calloc(1, sizeof *co);
    if (!co)
        return NULL;
    co->fn = fn;
    co->arg = arg;
    co->guard_len = page;
    co->map_len = stack_size + page;
    co->map = mmap(NULL, co->map_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (co->map == MAP_FAILED) {
        free(co);
        return NULL;
    }
    /* Stacks grow down: the guard goes below, where an overflow lands. */
    if (mprotect(co->map, co->guard_len, PROT_NONE) != 0 || s_prepare(co) != 0) {
        munmap(co->map, co->map_len);
        free(co);
        return NULL;
    }
#if defined(HAVE_VALGRIND) && HAVE_VALGRIND
    co->vg_stack_id = VALGRIND_STACK_REGISTER(s_stack_lo(co), co->map + co->map_len);
#endif
    return co;
}

void coro_destroy(coro_t **self_p)
{
    assert(self_p);
    coro_t *co = *self_p;
    if (!co)
        return;
    assert(!co->running);
#if defined(HAVE_VALGRIND) && HAVE_VALGRIND
    VALGRIND_STACK_DEREGISTER(co->vg_stack_id);
#endif
#ifdef QJ_ASAN
    /* An abandoned coroutine's frames never returned, so their redzones
     * are still poisoned; a later mapping at this address would inherit
     * them. */
    if (co->started && !co->finished)
        ASAN_UNPOISON_MEMORY_REGION(s_stack_lo(co), s_stack_len(co));
#endif
    munmap(co->map, co->map_len);
    free(co);
    *self_p = NULL;
}

bool coro_resume(coro_t *co)
{
    assert(co);
    assert(!co->finished);
    assert(!co->running);   /* also catches a coroutine resuming itself */
    coro_t *prev = s_current;
    co->started = true;
    co->running = true;
    s_current = co;
    void *fake = NULL;
    s_asan_start(&fake, s_stack_lo(co), s_stack_len(co));
    s_switch_in(co);
    s_asan_finish(fake, NULL, NULL);
    s_current = prev;
    co->running = false;
    return !co->finished;
}

void coro_yield(void)
{
    coro_t *co = s_current;
    assert(co);
    s_asan_start(&co->asan_fake_stack, co->caller_bottom, co->caller_size);
    s_switch_out(co);
    /* The next resumer may be another stack than the last one. */
    s_asan_finish(co->asan_fake_stack, &co->caller_bottom, &co->caller_size);
}

coro_t *coro_current(void)
{
    return s_current;
}

bool coro_finished(const coro_t *co)
{
    assert(co);
    return co->finished;
}

void coro_set_data(coro_t *co, void *data)
{
    assert(co);
    co->data = data;
}

void *coro_data(const coro_t *co)
{
    assert(co);
    return co->data;
}

const char *coro_backend(void)
{
    return CORO_BACKEND_NAME;
}

/* -------------------------------------------------------- overflow handler */

static struct sigaction s_prev_segv;    /* actions in place before ours */
static struct sigaction s_prev_bus;

/* Append the decimal form of n at p; returns the end.  (snprintf is not
 * async-signal-safe.) */
static char *s_put_uint(char *p, size_t n)
{
    char digits[24];
    int i = 0;
    do {
        digits[i++] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    while (i > 0)
        *p++ = digits[--i];
    return p;
}

static char *s_put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

static void s_on_fault(int sig, siginfo_t *info, void *uctx)
{
    (void)uctx;
    const coro_t *co = s_current;
    const char *addr = info->si_addr;
    if (co && addr >= co->map && addr < co->map + co->guard_len) {
        char msg[160];
        char *p = s_put_str(msg, "coroutine stack overflow (stack of ");
        p = s_put_uint(p, s_stack_len(co) / 1024);
        p = s_put_str(p, " KiB): raise the stack size (qworker --stack)\n");
        ssize_t n = write(STDERR_FILENO, msg, (size_t)(p - msg));
        (void)n;
        abort();
    }
    /* Not ours: put the previous action back.  Returning re-executes the
     * faulting instruction, which now gets that action (the default, or
     * a sanitizer's report).  A signal sent with kill() would not recur,
     * so send it again; it stays blocked until we return. */
    sigaction(sig, sig == SIGBUS ? &s_prev_bus : &s_prev_segv, NULL);
    if (info->si_code <= 0)
        raise(sig);
}

int coro_install_overflow_handler(void)
{
    static bool installed;
    if (installed)
        return 0;

    /* The handler cannot run on the stack that just overflowed. */
    size_t size = 64 * 1024;
    long min = sysconf(_SC_SIGSTKSZ);
    if (min > 0 && (size_t)min > size)
        size = (size_t)min;
    void *alt = mmap(NULL, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (alt == MAP_FAILED)
        return -1;
    stack_t ss = {.ss_sp = alt, .ss_size = size, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(alt, size);
        return -1;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = s_on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &s_prev_segv) != 0)
        return -1;
    if (sigaction(SIGBUS, &sa, &s_prev_bus) != 0) {
        sigaction(SIGSEGV, &s_prev_segv, NULL);
        return -1;
    }
    installed = true;
    return 0;
}
