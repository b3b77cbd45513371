/* peer.c -- connections by routing id, sessions by cid (see peer.h). */
#include "peer.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "htab.h"

struct peers {
    htab_t *by_rid;
    htab_t *by_cid;     /* client sessions */
    peer_t *head;       /* all peers */
    sess_t **anon;      /* worker sessions, for destroy */
    uint32_t nanon, capanon;
};

typedef struct bytes_key {
    const void *ptr;
    size_t len;
} bytes_key_t;

static bool s_eq_rid(const void *item, const void *key)
{
    const peer_t *p = item;
    const bytes_key_t *k = key;
    return p->rid_len == k->len && memcmp(p->rid, k->ptr, k->len) == 0;
}

static bool s_eq_cid(const void *item, const void *key)
{
    return memcmp(((const sess_t *)item)->cid, key, QJ_CID_LEN) == 0;
}

/* Make room for one more element in a growing array. */
static int s_reserve(void **v, uint32_t *cap, uint32_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    uint32_t ncap = *cap ? *cap * 2 : 16;
    void *nv = realloc(*v, (size_t)ncap * elem);
    if (!nv)
        return -1;
    *v = nv;
    *cap = ncap;
    return 0;
}

/* The same for an array and its parallel array of journal positions.
 * (If the second cannot grow, the first keeps its larger size unused.) */
static int s_reserve_lsn(void **v, uint64_t **lsn, uint32_t *cap, uint32_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    uint32_t ncap = *cap ? *cap * 2 : 16;
    void *nv = realloc(*v, (size_t)ncap * elem);
    if (!nv)
        return -1;
    *v = nv;
    uint64_t *nl = realloc(*lsn, (size_t)ncap * sizeof *nl);
    if (!nl)
        return -1;
    *lsn = nl;
    *cap = ncap;
    return 0;
}

peers_t *peers_new(void)
{
    peers_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->by_rid = htab_new();
    self->by_cid = htab_new();
    if (!self->by_rid || !self->by_cid) {
        peers_destroy(&self);
        return NULL;
    }
    return self;
}

static void s_sess_free(sess_t *sess)
{
    free(sess->out);
    free(sess->out_lsn);
    free(sess);
}

static void s_peer_free(peer_t *p)
{
    peer_clear_acks(p, p->nacks);
    free(p->acks);
    free(p->ack_lsn);
    free(p->queues);
    free(p->out_jobs);
    free(p->cancels);
    free(p);
}

void peers_destroy(peers_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    peers_t *self = *self_p;
    while (self->head) {
        peer_t *p = self->head;
        self->head = p->next;
        s_peer_free(p);
    }
    if (self->by_cid) {
        size_t cursor = 0;
        sess_t *s;
        while ((s = htab_next(self->by_cid, &cursor)))
            s_sess_free(s);
    }
    for (uint32_t i = 0; i < self->nanon; i++)
        s_sess_free(self->anon[i]);
    free(self->anon);
    htab_destroy(&self->by_rid);
    htab_destroy(&self->by_cid);
    free(self);
    *self_p = NULL;
}

peer_t *peers_find(const peers_t *self, const void *rid, size_t len)
{
    bytes_key_t k = {rid, len};
    return htab_find(self->by_rid, htab_hash_bytes(rid, len), s_eq_rid, &k);
}

peer_t *peers_add(peers_t *self, const void *rid, size_t len)
{
    assert(len >= 1 && len <= 255);
    peer_t *p = calloc(1, sizeof *p + len);
    if (!p)
        return NULL;
    memcpy(p->rid, rid, len);
    p->rid_len = (uint8_t)len;
    if (htab_insert(self->by_rid, htab_hash_bytes(rid, len), p) != 0) {
        free(p);
        return NULL;
    }
    p->next = self->head;
    if (self->head)
        self->head->prev = p;
    self->head = p;
    return p;
}

void peers_forget(peers_t *self, peer_t *peer)
{
    assert(!peer->gone && peer->leases.n == 0 && peer->nout_jobs == 0);
    htab_remove(self->by_rid, htab_hash_bytes(peer->rid, peer->rid_len), peer);
    if (peer->prev)
        peer->prev->next = peer->next;
    else
        self->head = peer->next;
    if (peer->next)
        peer->next->prev = peer->prev;
    peer->next = peer->prev = NULL;
    if (peer->sess) {
        if (peer->sess->peer == peer)
            peer->sess->peer = NULL;
        peers_unref(self, peer->sess);
        peer->sess = NULL;
    }
    peer->gone = true;
    if (!peer->dirty)
        s_peer_free(peer);
}

void peers_reap(peer_t *peer)
{
    assert(peer->gone);
    s_peer_free(peer);
}

peer_t *peers_first(const peers_t *self)
{
    return self->head;
}

sess_t *peers_session(peers_t *self, const void *cid)
{
    uint64_t h = htab_hash_bytes(cid, QJ_CID_LEN);
    sess_t *s = htab_find(self->by_cid, h, s_eq_cid, cid);
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    memcpy(s->cid, cid, QJ_CID_LEN);
    s->has_cid = true;
    if (htab_insert(self->by_cid, h, s) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

sess_t *peers_anon_session(peers_t *self)
{
    if (s_reserve((void **)&self->anon, &self->capanon, self->nanon, sizeof *self->anon) != 0)
        return NULL;
    sess_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    self->anon[self->nanon++] = s;
    return s;
}

void sess_ref(sess_t *sess)
{
    sess->refs++;
}

void peers_unref(peers_t *self, sess_t *sess)
{
    assert(sess->refs > 0);
    if (--sess->refs > 0)
        return;
    if (sess->has_cid) {
        htab_remove(self->by_cid, htab_hash_bytes(sess->cid, QJ_CID_LEN), sess);
    } else {
        /* Worker sessions are few and short-lived: a linear search. */
        for (uint32_t i = 0; i < self->nanon; i++)
            if (self->anon[i] == sess) {
                self->anon[i] = self->anon[--self->nanon];
                break;
            }
    }
    s_sess_free(sess);
}

int sess_push_result(sess_t *sess, uint64_t id, uint64_t lsn)
{
    if (s_reserve_lsn((void **)&sess->out, &sess->out_lsn, &sess->capout, sess->nout,
                      sizeof *sess->out) != 0)
        return -1;
    sess->out_lsn[sess->nout] = lsn;
    sess->out[sess->nout++] = id;
    return 0;
}

int peer_push_ack(peer_t *peer, uint64_t ref, uint64_t id, uint16_t code, const char *text,
                  uint64_t lsn)
{
    if (s_reserve_lsn((void **)&peer->acks, &peer->ack_lsn, &peer->capacks, peer->nacks,
                      sizeof *peer->acks) != 0)
        return -1;
    /* Refusals are rare: each carries its own copy of its message. */
    char *copy = NULL;
    if (text && !(copy = strdup(text)))
        return -1;
    peer->ack_lsn[peer->nacks] = lsn;
    peer->acks[peer->nacks++] = (msg_ack_t){
        .ref = ref, .id = id, .code = code,
        .text = {copy, copy ? (uint32_t)strlen(copy) : 0},
    };
    return 0;
}

uint32_t peer_hoist_refusals(peer_t *peer)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < peer->nacks; i++) {
        if (peer->acks[i].id != 0)
            continue;
        /* Rotate the refusal at i down to k: the acceptances between
         * shift up by one, in order, with their lsn. */
        msg_ack_t ack = peer->acks[i];
        uint64_t lsn = peer->ack_lsn[i];
        memmove(peer->acks + k + 1, peer->acks + k, (i - k) * sizeof *peer->acks);
        memmove(peer->ack_lsn + k + 1, peer->ack_lsn + k, (i - k) * sizeof *peer->ack_lsn);
        peer->acks[k] = ack;
        peer->ack_lsn[k++] = lsn;
    }
    return k;
}

void peer_clear_acks(peer_t *peer, uint32_t n)
{
    assert(n <= peer->nacks);
    if (n == 0)
        return;
    for (uint32_t i = 0; i < n; i++)
        free((char *)peer->acks[i].text.ptr);
    memmove(peer->acks, peer->acks + n, (peer->nacks - n) * sizeof *peer->acks);
    memmove(peer->ack_lsn, peer->ack_lsn + n, (peer->nacks - n) * sizeof *peer->ack_lsn);
    peer->nacks -= n;
}

int peer_push_job(peer_t *peer, job_t *job)
{
    if (s_reserve((void **)&peer->out_jobs, &peer->capout_jobs, peer->nout_jobs,
                  sizeof *peer->out_jobs) != 0)
        return -1;
    peer->out_jobs[peer->nout_jobs++] = job;
    return 0;
}

int peer_push_cancel(peer_t *peer, uint64_t id)
{
    if (s_reserve((void **)&peer->cancels, &peer->capcancels, peer->ncancels,
                  sizeof *peer->cancels) != 0)
        return -1;
    peer->cancels[peer->ncancels++] = id;
    return 0;
}

void peer_set_name(peer_t *peer, msg_bytes_t name, uint64_t n)
{
    if (!name.ptr || name.len == 0) {
        snprintf(peer->name, sizeof peer->name, "%s#%llu",
                 peer->role == MSG_ROLE_WORKER ? "worker" : "client", (unsigned long long)n);
        return;
    }
    size_t len = name.len < QJ_MAX_NAME ? name.len : QJ_MAX_NAME;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name.ptr[i];
        peer->name[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    peer->name[len] = '\0';
}
