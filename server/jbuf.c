/* jbuf.c -- records waiting to be written, grouped (see jbuf.h). */
#include "jbuf.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_CAP (64u * 1024)
#define NONE SIZE_MAX

struct jbuf {
    uint8_t *data;
    size_t len, cap;
    size_t open;                /* offset of the open record, or NONE */
    uint8_t open_type;          /* its type */
    size_t open_head;           /* and the length of its head */
};

jbuf_t *jbuf_new(void)
{
    jbuf_t *b = calloc(1, sizeof *b);
    if (b)
        b->open = NONE;
    return b;
}

void jbuf_destroy(jbuf_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->data);
    free(*self_p);
    *self_p = NULL;
}

/* Room for n more bytes.  Returns 0, or -1 if memory is short. */
static int s_reserve(jbuf_t *b, size_t n)
{
    if (b->len + n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap * 2 : FIRST_CAP;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *v = realloc(b->data, cap);
    if (!v)
        return -1;
    b->data = v;
    b->cap = cap;
    return 0;
}

static void s_seal(jbuf_t *b)
{
    if (b->open == NONE)
        return;
    jrec_seal(b->data + b->open, b->open_type, b->len - b->open - JREC_HEADER_LEN);
    b->open = NONE;
}

size_t jbuf_append(jbuf_t *b, const jrec_t *rec)
{
    size_t item = jrec_item_size(rec);
    if (!item || s_reserve(b, JREC_HEADER_LEN + JREC_HEAD_MAX + item) != 0)
        return 0;
    uint8_t *end = b->data + b->len;
    if (!jrec_grouped(rec->type)) {
        s_seal(b);
        jrec_item(rec, end + JREC_HEADER_LEN);
        jrec_seal(end, rec->type, item);
        b->len += JREC_HEADER_LEN + item;
        return JREC_HEADER_LEN + item;
    }
    if (b->open != NONE && b->open_type == rec->type &&
        b->len - b->open - JREC_HEADER_LEN + item <= JBUF_GROUP_MAX &&
        jrec_head_is(rec, b->data + b->open + JREC_HEADER_LEN, b->open_head)) {
        jrec_item(rec, end);
        b->len += item;
        return item;
    }
    s_seal(b);
    size_t head = jrec_head(rec, end + JREC_HEADER_LEN);
    jrec_item(rec, end + JREC_HEADER_LEN + head);
    b->open = b->len;
    b->open_type = rec->type;
    b->open_head = head;
    b->len += JREC_HEADER_LEN + head + item;
    return JREC_HEADER_LEN + head + item;
}

size_t jbuf_len(const jbuf_t *b)
{
    return b->len;
}

const uint8_t *jbuf_data(jbuf_t *b, size_t *len)
{
    s_seal(b);
    *len = b->len;
    return b->data;
}

void jbuf_consume(jbuf_t *b, size_t n)
{
    assert(n <= b->len && b->open == NONE);
    if (n < b->len)
        memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}
