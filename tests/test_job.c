/* test_job.c -- job records (one allocation holding task, key and args),
 * results, and the registry: ids, the three indexes, retention by time to
 * live and by count, oldest first across the kept and dead lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "job.h"

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
