/* dlist.h -- intrusive doubly linked lists, for records that carry their
 * own `next` and `prev` pointers (the broker's jobs, a worker's jobs).
 *
 * DLIST_DEFINE(name, type) defines, for that record type, name_t (head,
 * tail and count) and the static inline functions name_push_back,
 * name_push_front, name_remove and name_pop_front: each module keeps its
 * own record type, and the list code is written once.  A list starts
 * zeroed; a record is on one list at a time through its links. */
#ifndef QJ_DLIST_H
#define QJ_DLIST_H

#include <stddef.h>

#define DLIST_DEFINE(name, type)                                                 \
    typedef struct name {                                                        \
        type *head, *tail;                                                       \
        size_t n;                                                                \
    } name##_t;                                                                  \
                                                                                 \
    static inline void name##_push_back(name##_t *l, type *x)                    \
    {                                                                            \
        x->next = NULL;                                                          \
        x->prev = l->tail;                                                       \
        if (l->tail)                                                             \
            l->tail->next = x;                                                   \
        else                                                                     \
            l->head = x;                                                         \
        l->tail = x;                                                             \
        l->n++;                                                                  \
    }                                                                            \
                                                                                 \
    static inline void name##_push_front(name##_t *l, type *x)                   \
    {                                                                            \
        x->prev = NULL;                                                          \
        x->next = l->head;                                                       \
        if (l->head)                                                             \
            l->head->prev = x;                                                   \
        else                                                                     \
            l->tail = x;                                                         \
        l->head = x;                                                             \
        l->n++;                                                                  \
    }                                                                            \
                                                                                 \
    static inline void name##_remove(name##_t *l, type *x)                       \
    {                                                                            \
        if (x->prev)                                                             \
            x->prev->next = x->next;                                             \
        else                                                                     \
            l->head = x->next;                                                   \
        if (x->next)                                                             \
            x->next->prev = x->prev;                                             \
        else                                                                     \
            l->tail = x->prev;                                                   \
        x->next = x->prev = NULL;                                                \
        l->n--;                                                                  \
    }                                                                            \
                                                                                 \
    static inline type *name##_pop_front(name##_t *l)                            \
    {                                                                            \
        type *x = l->head;                                                       \
        if (x)                                                                   \
            name##_remove(l, x);                                                 \
        return x;                                                                \
    }

#endif
