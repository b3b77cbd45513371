/* test_peer.c -- peers by routing id, sessions by cid with their reference
 * counts, a forgotten peer that is still on a flush list, outgoing arrays,
 * and names made safe for one-line logs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "peer.h"

static const uint8_t RID_A[5] = {0, 0, 0, 0, 1}, RID_B[5] = {0, 0, 0, 0, 2};

static void test_find_add_forget(void **state)
{
    (void)state;
    peers_t *ps = peers_new();
    assert_non_null(ps);
    assert_null(peers_find(ps, RID_A, 5));
    peer_t *a = peers_add(ps, RID_A, 5);
    peer_t *b = peers_add(ps, RID_B, 5);
    assert_non_null(a);
    assert_ptr_equal(peers_find(ps, RID_A, 5), a);
    assert_ptr_equal(peers_find(ps, RID_B, 5), b);
    assert_null(peers_find(ps, RID_A, 4));
    int n = 0;
    for (peer_t *p = peers_first(ps); p; p = p->next)
        n++;
    assert_int_equal(n, 2);
    peers_forget(ps, a);
    assert_null(peers_find(ps, RID_A, 5));
    assert_ptr_equal(peers_first(ps), b);
    assert_null(b->next);
    peers_destroy(&ps);
    assert_null(ps);
    peers_destroy(&ps);
}

static void test_sessions(void **state)
{
    (void)state;
    peers_t *ps = peers_new();
    uint8_t cid[QJ_CID_LEN];
    memset(cid, 7, sizeof cid);
    sess_t *s = peers_session(ps, cid);
    assert_non_null(s);
    assert_true(s->has_cid);
    assert_ptr_equal(peers_session(ps, cid), s); /* the same cid, the same session */
    peer_t *p = peers_add(ps, RID_A, 5);
    sess_ref(s);
    s->peer = p;
    p->sess = s;
    sess_ref(s); /* a job it submitted */
    assert_int_equal(sess_push_result(s, 42, 7), 0);
    assert_int_equal(s->out_lsn[0], 7);
    /* The connection goes: the session stays for its job, unbound. */
    peers_forget(ps, p);
    assert_null(s->peer);
    assert_int_equal(s->refs, 1);
    assert_ptr_equal(peers_session(ps, cid), s);
    assert_int_equal(s->nout, 1);
    /* The last reference frees it: the cid then names a new session. */
    peers_unref(ps, s);
    sess_t *again = peers_session(ps, cid);
    assert_non_null(again);
    assert_int_equal(again->refs, 0);
    assert_int_equal(again->nout, 0);
    sess_t *anon = peers_anon_session(ps);
    assert_false(anon->has_cid);
    sess_ref(anon);
    peers_unref(ps, anon);
    peers_destroy(&ps); /* frees `again`, which nobody held */
}

static void test_forget_dirty(void **state)
{
    (void)state;
    peers_t *ps = peers_new();
    peer_t *p = peers_add(ps, RID_A, 5);
    p->dirty = true; /* on the broker's flush list */
    peers_forget(ps, p);
    assert_true(p->gone);      /* still allocated: the flush reaps it */
    assert_null(peers_find(ps, RID_A, 5));
    peers_reap(p);
    peers_destroy(&ps);
}

static void test_outgoing(void **state)
{
    (void)state;
    peers_t *ps = peers_new();
    peer_t *p = peers_add(ps, RID_A, 5);
    char text[] = "queue 'q' is full";
    for (int i = 0; i < 100; i++)
        assert_int_equal(peer_push_ack(p, (uint64_t)i, i % 2 ? 0 : (uint64_t)i + 1000,
                                       i % 2 ? QJ_E_QUEUE_FULL : 0, i % 2 ? text : NULL,
                                       (uint64_t)i * 3), 0);
    text[0] = 'X'; /* the ack holds its own copy */
    assert_int_equal(p->nacks, 100);
    assert_memory_equal(p->acks[1].text.ptr, "queue", 5);
    assert_null(p->acks[0].text.ptr);
    peer_clear_acks(p, 10);
    assert_int_equal(p->nacks, 90);
    assert_int_equal(p->acks[0].ref, 10);
    assert_int_equal(p->ack_lsn[0], 30); /* the positions move with their acks */
    assert_int_equal(p->ack_lsn[89], 99 * 3);
    assert_int_equal(peer_push_cancel(p, 5), 0);
    assert_int_equal(p->ncancels, 1);
    peers_destroy(&ps); /* frees the 90 pending acks and their texts */
}

static void test_hoist_refusals(void **state)
{
    (void)state;
    peers_t *ps = peers_new();
    peer_t *p = peers_add(ps, RID_A, 5);
    /* refs 1..9: every third one refused */
    for (uint64_t r = 1; r < 10; r++)
        assert_int_equal(peer_push_ack(p, r, r % 3 ? r + 100 : 0, r % 3 ? 0 : QJ_E_INTERNAL,
                                       r % 3 ? NULL : "no journal", r * 10), 0);
    assert_int_equal(peer_hoist_refusals(p), 3);
    const uint64_t order[] = {3, 6, 9, 1, 2, 4, 5, 7, 8};
    for (int i = 0; i < 9; i++) {
        assert_int_equal(p->acks[i].ref, order[i]);
        assert_int_equal(p->ack_lsn[i], order[i] * 10); /* each keeps its position */
    }
    assert_string_equal(p->acks[0].text.ptr, "no journal");
    peer_clear_acks(p, 3);
    assert_int_equal(p->nacks, 6);
    for (uint32_t i = 1; i < p->nacks; i++)
        assert_true(p->ack_lsn[i - 1] <= p->ack_lsn[i]);
    assert_int_equal(peer_hoist_refusals(p), 0); /* none left: nothing moves */
    assert_int_equal(p->acks[0].ref, 1);
    peers_destroy(&ps);
}

static void test_names(void **state)
{
    (void)state;
    peers_t *ps = peers_new();
    peer_t *p = peers_add(ps, RID_A, 5);
    p->role = MSG_ROLE_WORKER;
    peer_set_name(p, (msg_bytes_t){"host\n:1", 7}, 3);
    assert_string_equal(p->name, "host?:1");
    peer_set_name(p, (msg_bytes_t){0}, 3);
    assert_string_equal(p->name, "worker#3");
    char longname[300];
    memset(longname, 'a', sizeof longname);
    peer_set_name(p, (msg_bytes_t){longname, sizeof longname}, 1);
    assert_int_equal(strlen(p->name), QJ_MAX_NAME);
    peers_destroy(&ps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_add_forget),
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_forget_dirty),
        cmocka_unit_test(test_outgoing),
        cmocka_unit_test(test_hoist_refusals),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
