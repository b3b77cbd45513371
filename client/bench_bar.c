/* bench_bar.c -- the progress line (bench_bar.h). */
#include "bench_bar.h"

#include <stdio.h>
#include <unistd.h>

#include "clock.h"

#define BAR_EVERY_US 100000   /* redraw at most this often */
#define BAR_WIDTH 30

void bench_bar_init(bench_bar_t *b, bool quiet)
{
    *b = (bench_bar_t){0};
    b->tty = !quiet && isatty(2);
}

void bench_bar_begin(bench_bar_t *b, const char *what, uint64_t total)
{
    b->what = what;
    b->total = total;
    b->start_us = clock_mono_us();
    b->drawn_us = 0;
    bench_bar_update(b, 0);
}

void bench_bar_update(bench_bar_t *b, uint64_t done)
{
    if (!b->tty)
        return;
    uint64_t now = clock_mono_us();
    if (b->drawn_us && now - b->drawn_us < BAR_EVERY_US)
        return;
    b->drawn_us = now;
    double secs = (double)(now - b->start_us) / 1e6;
    int fill = b->total ? (int)(done * BAR_WIDTH / b->total) : 0;
    if (fill > BAR_WIDTH)
        fill = BAR_WIDTH;
    fprintf(stderr, "\r%s [%.*s%*s] %llu/%llu %.1fs\033[K", b->what ? b->what : "",
            fill, "##############################", BAR_WIDTH - fill, "",
            (unsigned long long)done, (unsigned long long)b->total, secs);
    b->shown = true;
}

void bench_bar_clear(bench_bar_t *b)
{
    if (b->tty && b->shown)
        fputs("\r\033[K", stderr);
    b->shown = false;
}
