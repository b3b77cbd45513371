/* asan.h -- whether this build runs under AddressSanitizer, for the code
 * that hands out memory of its own (coroutine stacks, the broker's slabs,
 * the client's reused handles) and must tell ASan what is in use.
 *
 * QJ_ASAN is defined under ASan (gcc or clang).  QJ_POISON / QJ_UNPOISON
 * mark a region unusable / usable again, and do nothing in other builds. */
#ifndef QJ_ASAN_H
#define QJ_ASAN_H

#if defined(__SANITIZE_ADDRESS__)
#define QJ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QJ_ASAN 1
#endif
#endif

#ifdef QJ_ASAN
#include <sanitizer/asan_interface.h>
#define QJ_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define QJ_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define QJ_POISON(p, n) ((void)(p), (void)(n))
#define QJ_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#endif
