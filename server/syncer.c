/* syncer.c -- the journal's fdatasync thread (see syncer.h). */
#include "syncer.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"

struct syncer {
    pthread_t thr;
    int efd;                    /* eventfd: news for the loop */
    pthread_mutex_t mu;         /* guards the fields below */
    pthread_cond_t cv;          /* requests, quit, and "no longer busy" */
    int fd;                     /* file to sync */
    uint64_t want;              /* lsn requested */
    uint64_t synced;            /* lsn made durable */
    int err;                    /* an fdatasync failed */
    bool busy;                  /* the thread is in fdatasync */
    uint64_t fsyncs, fsync_us;  /* fdatasyncs done, and their time */
    bool quit;
};

/* Count an fdatasync started at t0 (the caller holds the lock). */
static void s_count(syncer_t *s, uint64_t t0)
{
    s->fsyncs++;
    s->fsync_us += clock_mono_us() - t0;
}

static void *s_run(void *arg)
{
    syncer_t *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->quit) {
        if (s->err || s->want <= s->synced) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        /* Group commit: what is requested while this runs waits for the
         * next, which covers it all. */
        uint64_t target = s->want;
        int fd = s->fd;
        s->busy = true;
        pthread_mutex_unlock(&s->mu);
        uint64_t t0 = clock_mono_us();
        int e = fdatasync(fd) == 0 ? 0 : errno;
        pthread_mutex_lock(&s->mu);
        s_count(s, t0);
        s->busy = false;
        if (e)
            s->err = e;
        else if (target > s->synced)
            s->synced = target;
        pthread_cond_broadcast(&s->cv);
        uint64_t one = 1;
        if (write(s->efd, &one, sizeof one) < 0 && errno != EAGAIN && !s->err)
            s->err = errno;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

syncer_t *syncer_new(char *err, size_t errlen)
{
    syncer_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int e = s->efd < 0 ? errno : pthread_create(&s->thr, NULL, s_run, s);
    if (e) {
        snprintf(err, errlen, "cannot start the journal's sync thread: %s", strerror(e));
        if (s->efd >= 0)
            close(s->efd);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
        return NULL;
    }
    return s;
}

void syncer_destroy(syncer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    syncer_t *s = *self_p;
    pthread_mutex_lock(&s->mu);
    s->quit = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thr, NULL);
    close(s->efd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    *self_p = NULL;
}

int syncer_fd(const syncer_t *s)
{
    return s->efd;
}

void syncer_request(syncer_t *s, int fd, uint64_t lsn)
{
    pthread_mutex_lock(&s->mu);
    s->fd = fd;
    if (lsn > s->want) {
        s->want = lsn;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

int syncer_sync_now(syncer_t *s, int fd, uint64_t lsn)
{
    pthread_mutex_lock(&s->mu);
    while (s->busy)
        pthread_cond_wait(&s->cv, &s->mu);
    uint64_t t0 = clock_mono_us();
    int e = fdatasync(fd) == 0 ? 0 : errno;
    s_count(s, t0);
    if (e)
        s->err = e;
    else if (lsn > s->synced)
        s->synced = lsn;
    pthread_mutex_unlock(&s->mu);
    return e;
}

uint64_t syncer_synced(syncer_t *s, int *err)
{
    uint64_t n;
    if (read(s->efd, &n, sizeof n) < 0 && errno != EAGAIN && errno != EINTR) {
        *err = errno;
        return 0;
    }
    pthread_mutex_lock(&s->mu);
    uint64_t synced = s->synced;
    *err = s->err;
    pthread_mutex_unlock(&s->mu);
    return synced;
}

void syncer_figures(syncer_t *s, uint64_t *fsyncs, uint64_t *fsync_us)
{
    pthread_mutex_lock(&s->mu);
    *fsyncs = s->fsyncs;
    *fsync_us = s->fsync_us;
    pthread_mutex_unlock(&s->mu);
}
