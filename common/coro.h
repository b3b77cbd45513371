/* coro.h -- stackful coroutines: create, resume, yield, finish.
 *
 * Each coroutine runs on its own stack, mmap'ed with a PROT_NONE guard
 * page below it, so an overflow faults instead of corrupting a neighbour;
 * coro_install_overflow_handler() turns that fault into a clear message.
 * The context switch is hand-written for x86_64 and aarch64, with a
 * ucontext fallback chosen at build time (meson option coro_backend).
 * Switches are annotated for AddressSanitizer (fiber switch API) and each
 * stack is registered with Valgrind, so both follow them.
 *
 * Coroutines are single-threaded: create, resume and yield on one thread.
 */
#ifndef QJ_CORO_H
#define QJ_CORO_H

#include <stdbool.h>
#include <stddef.h>

#define CORO_STACK_DEFAULT (64u * 1024)

typedef struct coro coro_t;
typedef void (*coro_fn)(void *arg);

/* Create a suspended coroutine that will run fn(arg) on a stack of
 * stack_size bytes (rounded up to pages; 0 = CORO_STACK_DEFAULT).
 * Returns NULL if the stack cannot be mapped. */
coro_t *coro_new(coro_fn fn, void *arg, size_t stack_size);

/* Free a coroutine and its stack; safe on NULL, nulls the caller's
 * pointer.  Destroying a coroutine that has not finished abandons it:
 * objects on its stack are not unwound. */
void coro_destroy(coro_t **self_p);

/* Run co until it yields or returns.  Must not be called from co itself.
 * Returns true if co can be resumed again, false if it has finished. */
bool coro_resume(coro_t *co);

/* From inside a coroutine: return control to whoever resumed it. */
void coro_yield(void);

/* The running coroutine, or NULL on the thread's own stack. */
coro_t *coro_current(void);

bool coro_finished(const coro_t *co);

/* Per-coroutine user pointer (the scheduler keeps its record here). */
void coro_set_data(coro_t *co, void *data);
void *coro_data(const coro_t *co);

/* Install a SIGSEGV/SIGBUS handler on an alternate stack that recognises
 * a fault in a coroutine's guard page, writes "coroutine stack overflow
 * (stack of N KiB) ..." to stderr and aborts; other faults get the default
 * action.  Idempotent.  Returns 0 or -1. */
int coro_install_overflow_handler(void);

/* Name of the switch backend compiled in: "asm-x86_64", "asm-aarch64"
 * or "ucontext". */
const char *coro_backend(void);

#endif
