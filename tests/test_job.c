/* test_job.c -- job records (one allocation holding task, key and args),
 * results, and the registry: ids, the three indexes, retention by time to
 * live and by count, oldest first across the kept and dead lists; ids far
 * apart, a restart's replay in any order of id then new ids, refs of many
 * submitters interleaved, refs out of sequence and held twice, removal
 * out of order, records and results of every size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "job.h"
#include "shuffle.h"

static job_t *s_job(jobs_t *reg, const char *key, uint64_t ref, const void *sess)
{
    msg_job_t spec = {.task = {"echo", 4}, .args = {"\x81\xa1x\x01", 4}, .ref = ref,
                      .pri = -7, .retries = 2, .timeout_ms = 50};
    if (key)
        spec.key = (msg_bytes_t){key, (uint32_t)strlen(key)};
    job_t *j = job_new(&spec, jobs_next_id(reg));
    assert_non_null(j);
    j->sess = (struct sess *)(uintptr_t)sess;
    assert_int_equal(jobs_add(reg, j), 0);
    return j;
}

static void test_record(void **state)
{
    (void)state;
    msg_job_t spec = {.task = {"resize", 6}, .key = {"k1", 2}, .args = {"\x93\x01\x02\x03", 4},
                      .pri = 100, .retries = 3, .backoff_ms = 250, .detach = true};
    job_t *j = job_new(&spec, 77);
    assert_non_null(j);
    assert_int_equal(j->id, 77);
    assert_int_equal(j->pri, 100);
    assert_int_equal(j->retries, 3);
    assert_int_equal(j->backoff_ms, 250);
    assert_true(j->flags & JOB_F_DETACH);
    assert_false(j->flags & JOB_F_PROGRESS);
    assert_memory_equal(job_task(j), "resize", 6);
    assert_memory_equal(job_key(j), "k1", 2);
    assert_memory_equal(job_args(j), "\x93\x01\x02\x03", 4);

    assert_int_equal(job_set_result(j, (msg_bytes_t){"\xc3", 1}, (msg_bytes_t){0},
                                    (msg_bytes_t){"w", 1}, 10, 20), 0);
    msg_bytes_t val, err, wk;
    job_result_view(j->res, &val, &err, &wk);
    assert_int_equal(val.len, 1);
    assert_memory_equal(val.ptr, "\xc3", 1);
    assert_null(err.ptr); /* empty parts stay absent for the codec */
    assert_memory_equal(wk.ptr, "w", 1);
    assert_int_equal(j->res->finished, 20);
    /* Nothing to hold: no payload at all. */
    msg_bytes_t none = {0};
    assert_int_equal(job_set_result(j, none, none, none, 0, 0), 0);
    assert_null(j->res);
    /* Waiters and progress live apart, made on first use. */
    assert_null(j->aux);
    assert_null(job_waiters(j));
    job_aux_t *aux = job_aux(j);
    assert_non_null(aux);
    assert_ptr_equal(job_aux(j), aux);
    job_free(&j);
    assert_null(j);
    job_free(&j);
    /* A record stays small: retries beyond its 16 bits are clamped. */
    spec.retries = 1000000;
    j = job_new(&spec, 78);
    assert_int_equal(j->retries, JOB_MAX_RETRIES);
    job_free(&j);
}

static void test_indexes(void **state)
{
    (void)state;
    jobs_t *reg = jobs_new(1000, 60000, 100);
    int s1, s2; /* two distinct session addresses */
    job_t *a = s_job(reg, NULL, 1, &s1);
    job_t *b = s_job(reg, "unique", 2, &s1);
    job_t *c = s_job(reg, NULL, 1, &s2); /* same ref, other session */
    job_t *d = s_job(reg, NULL, 0, &s1); /* ref 0: not indexed by ref */
    assert_int_equal(a->id, 1000);
    assert_true(b->id > a->id && c->id > b->id && d->id > c->id);
    assert_int_equal(jobs_count(reg), 4);
    assert_ptr_equal(jobs_find(reg, b->id), b);
    assert_null(jobs_find(reg, 5));
    assert_ptr_equal(jobs_find_ref(reg, (void *)&s1, 1), a);
    assert_ptr_equal(jobs_find_ref(reg, (void *)&s2, 1), c);
    assert_ptr_equal(jobs_find_ref(reg, (void *)&s1, 2), b);
    assert_null(jobs_find_ref(reg, (void *)&s1, 0));
    assert_ptr_equal(jobs_find_key(reg, "unique", 6), b);
    assert_null(jobs_find_key(reg, "uniqu", 5));
    jobs_remove(reg, b);
    assert_null(jobs_find(reg, b->id));
    assert_null(jobs_find_key(reg, "unique", 6));
    assert_null(jobs_find_ref(reg, (void *)&s1, 2));
    assert_int_equal(jobs_count(reg), 3);
    job_free(&b);
    jobs_remove(reg, a);
    jobs_remove(reg, c);
    jobs_remove(reg, d);
    job_free(&a);
    job_free(&c);
    job_free(&d);
    jobs_destroy(&reg, NULL, NULL);
    assert_null(reg);
}

static void s_release(job_t *job, void *ctx);

/* A job with an explicit id (as the journal's replay makes them). */
static job_t *s_job_id(jobs_t *reg, uint64_t id, uint64_t ref, const void *sess, const char *key)
{
    msg_job_t spec = {.task = {"t", 1}, .ref = ref};
    if (key)
        spec.key = (msg_bytes_t){key, (uint32_t)strlen(key)};
    jobs_reserve(reg, id);
    job_t *j = job_new(&spec, id);
    assert_non_null(j);
    j->sess = (struct sess *)(uintptr_t)sess;
    assert_int_equal(jobs_add(reg, j), 0);
    return j;
}

/* Every job iteration yields, once each. */
static size_t s_count_iterated(const jobs_t *reg)
{
    size_t cursor = 0, n = 0;
    while (jobs_next(reg, &cursor))
        n++;
    return n;
}

static void test_ids_far_apart(void **state)
{
    (void)state;
    jobs_t *reg = jobs_new(1, 60000, 100);
    const uint64_t ids[] = {1, 2, 300, (uint64_t)1 << 40, ((uint64_t)1 << 40) + 1,
                            (uint64_t)1 << 62, UINT64_MAX - 5};
    enum { K = sizeof ids / sizeof ids[0] };
    job_t *j[K];
    for (size_t i = 0; i < K; i++)
        j[i] = s_job_id(reg, ids[i], 0, NULL, NULL);
    assert_int_equal(jobs_peek_id(reg), UINT64_MAX - 4);
    for (size_t i = 0; i < K; i++) {
        assert_ptr_equal(jobs_find(reg, ids[i]), j[i]);
        assert_null(jobs_find(reg, ids[i] + 2));
    }
    assert_null(jobs_find(reg, 3));
    assert_int_equal(s_count_iterated(reg), K);
    for (size_t i = 0; i < K; i += 2) {
        jobs_remove(reg, j[i]);
        job_free(&j[i]);
    }
    for (size_t i = 0; i < K; i++)
        assert_ptr_equal(jobs_find(reg, ids[i]), i % 2 ? j[i] : NULL);
    assert_int_equal(jobs_count(reg), K / 2);
    int released = 0;
    jobs_destroy(&reg, s_release, &released);
    assert_int_equal(released, K / 2);
}

/* A restart: the journal replays the jobs it holds in no order of id,
 * with the sessions and refs they had; new ids follow above them. */
static void test_replay_then_new(void **state)
{
    (void)state;
    uint64_t base = ((uint64_t)1700000000000 << 16) + 1;
    jobs_t *reg = jobs_new(base + ((uint64_t)60000 << 16), 60000, 100000);
    enum { N = 3000, NSESS = 5 };
    int sess[NSESS];
    job_t **old = calloc(N, sizeof *old), **young = calloc(N, sizeof *young);
    size_t *order = test_shuffle(N, 99);
    char key[32];
    for (size_t i = 0; i < N; i++) {
        size_t k = order[i];
        snprintf(key, sizeof key, "old-%zu", k);
        old[k] = s_job_id(reg, base + 2 * k, k / NSESS + 1, &sess[k % NSESS],
                          k % 7 ? NULL : key);
    }
    assert_true(jobs_peek_id(reg) >= base + ((uint64_t)60000 << 16));
    for (size_t i = 0; i < N; i++) {
        young[i] = s_job(reg, NULL, N + i + 1, &sess[i % NSESS]);
        assert_true(young[i]->id >= base + ((uint64_t)60000 << 16));
    }
    for (size_t k = 0; k < N; k++) {
        assert_ptr_equal(jobs_find(reg, base + 2 * k), old[k]);
        assert_null(jobs_find(reg, base + 2 * k + 1));
        assert_ptr_equal(jobs_find_ref(reg, (void *)&sess[k % NSESS], k / NSESS + 1), old[k]);
        assert_ptr_equal(jobs_find(reg, young[k]->id), young[k]);
        assert_ptr_equal(jobs_find_ref(reg, (void *)&sess[k % NSESS], N + k + 1), young[k]);
        if (k % 7 == 0) {
            snprintf(key, sizeof key, "old-%zu", k);
            assert_ptr_equal(jobs_find_key(reg, key, strlen(key)), old[k]);
        }
    }
    assert_int_equal(s_count_iterated(reg), 2 * N);
    /* The replayed jobs leave in any order; the others stay findable. */
    for (size_t i = 0; i < N; i++) {
        size_t k = order[(i * 7919) % N];
        jobs_remove(reg, old[k]);
        assert_null(jobs_find(reg, base + 2 * k));
        assert_null(jobs_find_ref(reg, (void *)&sess[k % NSESS], k / NSESS + 1));
        job_free(&old[k]);
    }
    for (size_t i = 0; i < N; i++) {
        assert_ptr_equal(jobs_find(reg, young[i]->id), young[i]);
        assert_ptr_equal(jobs_find_ref(reg, (void *)&sess[i % NSESS], N + i + 1), young[i]);
    }
    assert_null(jobs_find_key(reg, "old-0", 5));
    assert_int_equal(jobs_count(reg), N);
    int released = 0;
    jobs_destroy(&reg, s_release, &released);
    assert_int_equal(released, N);
    free(order);
    free(old);
    free(young);
}

/* Submitters interleaved, each counting its refs from 1; removal in any
 * order; a session whose jobs are all gone leaves no trace for the next. */
static void test_refs_many_sessions(void **state)
{
    (void)state;
    jobs_t *reg = jobs_new(1, 60000, 100000);
    enum { NSESS = 40, PER = 300, N = NSESS * PER };
    int sess[NSESS + 1];
    job_t **j = calloc(N, sizeof *j);
    uint64_t next_ref[NSESS] = {0};
    size_t made = 0;
    uint64_t seed = 5;
    while (made < N) { /* bursts of 1..20 submits from one session at a time */
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t s = (size_t)(seed >> 40) % NSESS;
        for (size_t b = 1 + (size_t)(seed >> 20) % 20; b && next_ref[s] < PER; b--, made++) {
            uint64_t ref = ++next_ref[s];
            assert_null(jobs_find_ref(reg, (void *)&sess[s], ref));
            j[s * PER + ref - 1] = s_job(reg, NULL, ref, &sess[s]);
        }
    }
    for (size_t s = 0; s < NSESS; s++)
        for (uint64_t r = 1; r <= PER; r++)
            assert_ptr_equal(jobs_find_ref(reg, (void *)&sess[s], r), j[s * PER + r - 1]);
    assert_null(jobs_find_ref(reg, (void *)&sess[0], PER + 1));
    assert_null(jobs_find_ref(reg, (void *)&sess[NSESS], 1));
    size_t *order = test_shuffle(N, 11);
    for (size_t i = 0; i < N; i++) {
        size_t k = order[i];
        jobs_remove(reg, j[k]);
        job_free(&j[k]);
        if (i % 997 == 0)
            for (size_t m = 0; m < N; m++)
                assert_ptr_equal(jobs_find_ref(reg, (void *)&sess[m / PER], m % PER + 1), j[m]);
    }
    assert_int_equal(jobs_count(reg), 0);
    /* A new session takes a number a gone one had: its refs are its own. */
    job_t *n = s_job(reg, NULL, 1, &sess[NSESS]);
    assert_ptr_equal(jobs_find_ref(reg, (void *)&sess[NSESS], 1), n);
    for (size_t s = 0; s < NSESS; s++)
        assert_null(jobs_find_ref(reg, (void *)&sess[s], 1));
    jobs_remove(reg, n);
    job_free(&n);
    free(order);
    free(j);
    jobs_destroy(&reg, NULL, NULL);
}

/* Refs a client numbers its own way (large, far apart), and a pair held
 * twice (a journal replays a resubmit made after the first job was
 * forgotten by count): the older is found first, then the other. */
static void test_refs_far_and_twice(void **state)
{
    (void)state;
    jobs_t *reg = jobs_new(1, 60000, 100);
    int s1, s2;
    job_t *a = s_job(reg, NULL, (uint64_t)1 << 40, &s1);
    job_t *b = s_job(reg, NULL, UINT64_MAX, &s1);
    job_t *c = s_job(reg, NULL, UINT64_MAX, &s2);
    job_t *d = s_job(reg, NULL, ((uint64_t)1 << 40) - 1, &s1);
    assert_ptr_equal(jobs_find_ref(reg, (void *)&s1, (uint64_t)1 << 40), a);
    assert_ptr_equal(jobs_find_ref(reg, (void *)&s1, UINT64_MAX), b);
    assert_ptr_equal(jobs_find_ref(reg, (void *)&s2, UINT64_MAX), c);
    assert_ptr_equal(jobs_find_ref(reg, (void *)&s1, ((uint64_t)1 << 40) - 1), d);
    assert_null(jobs_find_ref(reg, (void *)&s2, (uint64_t)1 << 40));

    job_t *first = s_job(reg, NULL, 9, &s1), *second = s_job(reg, NULL, 9, &s1);
    job_t *third = s_job(reg, NULL, 9, &s1);
    assert_ptr_equal(jobs_find_ref(reg, (void *)&s1, 9), first);
    jobs_remove(reg, second); /* a later one leaves first: the first stays */
    assert_ptr_equal(jobs_find_ref(reg, (void *)&s1, 9), first);
    jobs_remove(reg, first);
    assert_ptr_equal(jobs_find_ref(reg, (void *)&s1, 9), third);
    jobs_remove(reg, third);
    assert_null(jobs_find_ref(reg, (void *)&s1, 9));
    job_free(&first);
    job_free(&second);
    job_free(&third);
    int released = 0;
    jobs_destroy(&reg, s_release, &released);
    assert_int_equal(released, 4);
}

/* Records and results of every size, small ones from the slab and large
 * ones from malloc, freed by the size they have. */
static void test_record_sizes(void **state)
{
    (void)state;
    enum { BIG = 3000 };
    char *buf = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        buf[i] = (char)(i * 31);
    for (uint32_t len = 0; len < BIG; len += len < 600 ? 1 : 97) {
        msg_job_t spec = {.task = {"t", 1}, .args = {buf, len}};
        job_t *j = job_new(&spec, 1 + len);
        assert_non_null(j);
        assert_memory_equal(job_args(j), buf, len);
        size_t bytes = job_bytes(j);
        assert_int_equal(job_set_result(j, (msg_bytes_t){buf, len}, (msg_bytes_t){0},
                                        (msg_bytes_t){"w", 1}, 1, 2), 0);
        assert_true(job_bytes(j) > bytes + len);
        msg_bytes_t val, err, wk;
        job_result_view(j->res, &val, &err, &wk);
        assert_int_equal(val.len, len);
        if (len)
            assert_memory_equal(val.ptr, buf, len);
        assert_int_equal(job_set_result(j, (msg_bytes_t){0}, (msg_bytes_t){"e", 1},
                                        (msg_bytes_t){0}, 0, 0), 0);
        assert_int_equal(j->res->err_len, 1);
        job_free(&j);
    }
    free(buf);
}

static void s_release(job_t *job, void *ctx)
{
    (*(int *)ctx)++;
    job_free(&job);
}

static void s_finish(jobs_t *reg, job_t *j, uint8_t state, uint64_t at_ms)
{
    j->state = state;
    j->final_ms = at_ms;
    jobs_keep(reg, j);
}

static void test_retention_ttl(void **state)
{
    (void)state;
    jobs_t *reg = jobs_new(1, 1000 /* ttl ms */, 100);
    job_t *a = s_job(reg, NULL, 0, NULL), *b = s_job(reg, NULL, 0, NULL);
    job_t *c = s_job(reg, NULL, 0, NULL);
    s_finish(reg, a, MSG_STATE_DONE, 100);
    s_finish(reg, b, MSG_STATE_DEAD, 200);
    s_finish(reg, c, MSG_STATE_DONE, 300);
    assert_int_equal(jobs_kept(reg), 3);
    assert_ptr_equal(jobs_dead_head(reg), b);
    assert_null(jobs_expired(reg, 1099)); /* a is 999 ms old */
    assert_ptr_equal(jobs_expired(reg, 1250), a);
    assert_ptr_equal(jobs_expired(reg, 1250), b); /* the dead list expires too, in order */
    assert_null(jobs_expired(reg, 1250));
    assert_null(jobs_find(reg, a->id)); /* expired jobs leave the indexes */
    assert_ptr_equal(jobs_find(reg, c->id), c);
    assert_int_equal(jobs_kept(reg), 1);
    assert_ptr_equal(jobs_expired(reg, 5000), c);
    assert_int_equal(jobs_count(reg), 0);
    job_free(&a);
    job_free(&b);
    job_free(&c);
    jobs_destroy(&reg, NULL, NULL);
}

static void test_retention_count(void **state)
{
    (void)state;
    jobs_t *reg = jobs_new(1, 3600 * 1000, 3);
    job_t *j[5];
    for (int i = 0; i < 5; i++) {
        j[i] = s_job(reg, NULL, 0, NULL);
        /* alternate kept and dead: the bound counts both, oldest first */
        s_finish(reg, j[i], i % 2 ? MSG_STATE_DEAD : MSG_STATE_DONE, 10 + (uint64_t)i);
    }
    assert_ptr_equal(jobs_expired(reg, 20), j[0]);
    assert_ptr_equal(jobs_expired(reg, 20), j[1]);
    assert_null(jobs_expired(reg, 20)); /* 3 left: at the bound, all young */
    assert_int_equal(jobs_kept(reg), 3);
    /* A dead job taken back (REQUEUE) leaves the dead list. */
    jobs_unkeep(reg, j[3]);
    assert_int_equal(jobs_kept(reg), 2);
    assert_null(jobs_dead_head(reg));
    job_free(&j[0]);
    job_free(&j[1]);
    j[3]->state = MSG_STATE_QUEUED;
    int released = 0;
    jobs_destroy(&reg, s_release, &released);
    assert_int_equal(released, 3);
}

static void test_destroy_releases(void **state)
{
    (void)state;
    jobs_t *reg = jobs_new(1, 1000, 10);
    for (int i = 0; i < 20; i++)
        s_job(reg, NULL, (uint64_t)i + 1, NULL);
    int released = 0;
    jobs_destroy(&reg, s_release, &released);
    assert_int_equal(released, 20);
}

static void test_lists(void **state)
{
    (void)state;
    jlist_t l = {0};
    jobs_t *reg = jobs_new(1, 1, 1);
    job_t *a = s_job(reg, NULL, 0, NULL), *b = s_job(reg, NULL, 0, NULL);
    job_t *c = s_job(reg, NULL, 0, NULL);
    jlist_push_back(&l, b);
    jlist_push_front(&l, a);
    jlist_push_back(&l, c);
    assert_int_equal(l.n, 3);
    jlist_remove(&l, b);
    assert_ptr_equal(l.head->next, c);
    assert_ptr_equal(l.tail->prev, a);
    assert_ptr_equal(jlist_pop_front(&l), a);
    assert_ptr_equal(jlist_pop_front(&l), c);
    assert_null(jlist_pop_front(&l));
    assert_int_equal(l.n, 0);
    int released = 0;
    jobs_destroy(&reg, s_release, &released);
    assert_int_equal(released, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_indexes),
        cmocka_unit_test(test_retention_ttl),
        cmocka_unit_test(test_retention_count),
        cmocka_unit_test(test_destroy_releases),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_ids_far_apart),
        cmocka_unit_test(test_replay_then_new),
        cmocka_unit_test(test_refs_many_sessions),
        cmocka_unit_test(test_refs_far_and_twice),
        cmocka_unit_test(test_record_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
