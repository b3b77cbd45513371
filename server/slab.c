/* slab.c -- blocks of equal-size objects, found by address (see slab.h). */
#include "slab.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

/* The tools see objects as heap blocks: AddressSanitizer through poisoned
 * memory (with the mappings scanned by its leak checker, which would not
 * see the pointers held in objects otherwise), valgrind through its
 * custom-allocator requests (which also report leaked objects). */
#include "asan.h"
#ifdef QJ_ASAN
#include <sanitizer/lsan_interface.h>
#define ASAN_ROOT(p, n) __lsan_register_root_region(p, n)
#define ASAN_UNROOT(p, n) __lsan_unregister_root_region(p, n)
#else
#define ASAN_ROOT(p, n) ((void)0)
#define ASAN_UNROOT(p, n) ((void)0)
#endif
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define SLAB_VALGRIND 1
#endif
#endif
#ifndef SLAB_VALGRIND
#define VALGRIND_MALLOCLIKE_BLOCK(p, n, rz, zeroed) ((void)0)
#define VALGRIND_FREELIKE_BLOCK(p, rz) ((void)0)
#define VALGRIND_MAKE_MEM_NOACCESS(p, n) ((void)0)
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n) ((void)0)
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)0)
#endif

#define BLOCK_BYTES ((size_t)64 << 10)  /* a block: objects of one size */
#define MAP_BYTES ((size_t)4 << 20)     /* blocks are cut from mappings this big */
#define GRAIN 16                        /* size classes step by this */
#define NCLASS (SLAB_MAX / GRAIN)
#define HEAD 64                         /* a block's header, before its objects */
#define WARM 32                         /* empty blocks kept with their pages (2 MiB) */

typedef struct block {
    struct block *next, *prev;  /* in its class's list of blocks with room */
    void *free;                 /* objects given back, linked through their first word */
    char *fresh;                /* objects never handed out start here */
    uint32_t size;              /* object bytes, a multiple of GRAIN */
    uint32_t used;              /* objects out */
    uint32_t cap;               /* objects it holds */
} block_t;

_Static_assert(sizeof(block_t) <= HEAD, "a block's header fits before its objects");

struct slab {
    block_t *room[NCLASS];      /* per class: blocks with a free object, the first used first */
    char *cut, *end;            /* the part of the newest mapping not cut into blocks */
    block_t *warm[WARM];        /* blocks without objects, keeping their pages */
    unsigned nwarm;
    block_t **spare;            /* blocks without objects, their pages given back */
    size_t nspare, capspare;
    char **maps;                /* every mapping (MAP_BYTES each), for destroy */
    size_t nmaps, capmaps;
    size_t blocks;              /* blocks holding pages: in use or warm */
};

slab_t *slab_new(void)
{
    return calloc(1, sizeof(slab_t));
}

void slab_destroy(slab_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    slab_t *self = *self_p;
    for (size_t i = 0; i < self->nmaps; i++) {
        ASAN_UNROOT(self->maps[i], MAP_BYTES);
        QJ_UNPOISON(self->maps[i], MAP_BYTES);
        munmap(self->maps[i], MAP_BYTES);
    }
    free(self->maps);
    free(self->spare);
    free(self);
    *self_p = NULL;
}

static inline unsigned s_class(size_t size)
{
    return (unsigned)((size - 1) / GRAIN);
}

static inline block_t *s_block_of(const void *obj)
{
    return (block_t *)((uintptr_t)obj & ~(uintptr_t)(BLOCK_BYTES - 1));
}

static void s_push(slab_t *self, unsigned c, block_t *b)
{
    b->prev = NULL;
    b->next = self->room[c];
    if (b->next)
        b->next->prev = b;
    self->room[c] = b;
}

static void s_unlink(slab_t *self, unsigned c, block_t *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        self->room[c] = b->next;
    if (b->next)
        b->next->prev = b->prev;
    b->next = b->prev = NULL;
}

/* Map MAP_BYTES aligned to BLOCK_BYTES (mapped one block more, then the
 * ends trimmed).  Returns 0, or -1 if out of memory. */
static int s_map(slab_t *self)
{
    if (self->nmaps == self->capmaps) {
        size_t cap = self->capmaps ? self->capmaps * 2 : 16;
        char **v = realloc(self->maps, cap * sizeof *v);
        if (!v)
            return -1;
        self->maps = v;
        self->capmaps = cap;
    }
    size_t len = MAP_BYTES + BLOCK_BYTES;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    char *base = (char *)(((uintptr_t)p + BLOCK_BYTES - 1) & ~(uintptr_t)(BLOCK_BYTES - 1));
    if (base > p)
        munmap(p, (size_t)(base - p));
    if (p + len > base + MAP_BYTES)
        munmap(base + MAP_BYTES, (size_t)(p + len - (base + MAP_BYTES)));
    self->maps[self->nmaps++] = base;
    self->cut = base;
    self->end = base + MAP_BYTES;
    ASAN_ROOT(base, MAP_BYTES);
    QJ_POISON(base, MAP_BYTES);
    VALGRIND_MAKE_MEM_NOACCESS(base, MAP_BYTES);
    return 0;
}

/* A block for objects of size bytes (a class's size), put first on its
 * class's list.  NULL if out of memory. */
static block_t *s_block_new(slab_t *self, uint32_t size)
{
    block_t *b;
    if (self->nwarm) {
        b = self->warm[--self->nwarm];
    } else if (self->nspare) {
        b = self->spare[--self->nspare];
        self->blocks++;
    } else if (self->cut < self->end || s_map(self) == 0) {
        b = (block_t *)(void *)self->cut;
        self->cut += BLOCK_BYTES;
        self->blocks++;
    } else {
        return NULL;
    }
    QJ_UNPOISON(b, HEAD);
    VALGRIND_MAKE_MEM_UNDEFINED(b, HEAD);
    b->free = NULL;
    b->fresh = (char *)b + HEAD;
    b->size = size;
    b->used = 0;
    b->cap = (uint32_t)((BLOCK_BYTES - HEAD) / size);
    s_push(self, s_class(size), b);
    return b;
}

/* Keep an empty block for any class: with its pages while there are few
 * such (a burst of frees is often followed by one of allocations), else
 * giving them back.  If there is no memory to keep it, it stays on its
 * class's list as it is. */
static void s_release(slab_t *self, unsigned c, block_t *b)
{
    if (self->nwarm < WARM) {
        s_unlink(self, c, b);
        self->warm[self->nwarm++] = b;
        QJ_POISON(b, BLOCK_BYTES);
        VALGRIND_MAKE_MEM_NOACCESS(b, BLOCK_BYTES);
        return;
    }
    if (self->nspare == self->capspare) {
        size_t cap = self->capspare ? self->capspare * 2 : 64;
        block_t **v = realloc(self->spare, cap * sizeof *v);
        if (!v)
            return;
        self->spare = v;
        self->capspare = cap;
    }
    s_unlink(self, c, b);
    self->spare[self->nspare++] = b;
    self->blocks--;
    QJ_POISON(b, BLOCK_BYTES);
    VALGRIND_MAKE_MEM_NOACCESS(b, BLOCK_BYTES);
    madvise(b, BLOCK_BYTES, MADV_DONTNEED);
}

void *slab_alloc(slab_t *self, size_t size)
{
    assert(size > 0);
    if (size > SLAB_MAX)
        return malloc(size);
    unsigned c = s_class(size);
    block_t *b = self->room[c];
    if (!b && !(b = s_block_new(self, (c + 1) * GRAIN)))
        return NULL;
    void *obj;
    if (b->free) {
        obj = b->free;
        QJ_UNPOISON(obj, sizeof(void *));
        VALGRIND_MAKE_MEM_DEFINED(obj, sizeof(void *));
        b->free = *(void **)obj;
    } else {
        obj = b->fresh;
        b->fresh += b->size;
    }
    if (++b->used == b->cap)
        s_unlink(self, c, b); /* full */
    QJ_UNPOISON(obj, size);
    VALGRIND_MALLOCLIKE_BLOCK(obj, size, 0, 0);
    return obj;
}

void slab_free(slab_t *self, void *obj, size_t size)
{
    if (!obj)
        return;
    if (size > SLAB_MAX) {
        free(obj);
        return;
    }
    unsigned c = s_class(size);
    block_t *b = s_block_of(obj);
    assert(b->size == (c + 1) * GRAIN && b->used > 0);
    VALGRIND_FREELIKE_BLOCK(obj, 0);
    VALGRIND_MAKE_MEM_UNDEFINED(obj, sizeof(void *));
    QJ_UNPOISON(obj, sizeof(void *)); /* the object may be smaller than its class */
    *(void **)obj = b->free;
    b->free = obj;
    VALGRIND_MAKE_MEM_NOACCESS(obj, sizeof(void *));
    QJ_POISON(obj, b->size);
    if (b->used-- == b->cap)
        s_push(self, c, b); /* was full: has room again */
    if (b->used == 0 && (b->prev || b->next))
        s_release(self, c, b); /* not the last of its class with room */
}

size_t slab_bytes(const slab_t *self)
{
    return self->blocks * BLOCK_BYTES;
}
