/* shuffle.h -- a fixed permutation for unit tests that remove or replay
 * items out of order: the same every run (a small LCG shuffle), so that a
 * failure reproduces.  Include after cmocka.h. */
#ifndef QJ_TEST_SHUFFLE_H
#define QJ_TEST_SHUFFLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* 0..n-1 in an order given by seed; the caller frees it. */
static inline size_t *test_shuffle(size_t n, uint64_t seed)
{
    size_t *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = i;
    for (size_t i = n; i > 1; i--) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t j = (size_t)(seed >> 33) % i;
        size_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
    return v;
}

#endif
