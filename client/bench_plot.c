/* bench_plot.c -- XY plots as hand-written SVG (bench_plot.h).
 *
 * The drawing is computed in two steps: the scales (data range rounded
 * out to whole decades, powers of two or nice steps, mapped to pixels),
 * then the document, in painting order: grid, frame, ticks and labels,
 * series clipped to the plot area, legend in the emptiest corner.
 */
#include "bench_plot.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLOT_MAX_SERIES 8
#define PLOT_W 820              /* document size, px */
#define PLOT_H 540
#define PLOT_LEFT 84            /* plot area inside the document */
#define PLOT_RIGHT 796
#define PLOT_TOP 64
#define PLOT_BOTTOM 470
#define PLOT_MAX_LABELS 12      /* labelled ticks on one axis, at most */
#define LEGEND_ROW 18           /* px per legend line */

/* Colours that stay apart for colour-blind readers (Okabe-Ito). */
static const char *const s_colours[PLOT_MAX_SERIES] = {
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999",
};

typedef struct point {
    double x, y, lo, hi;
} point_t;

typedef struct series {
    char *name;
    bench_style_t style;
    point_t *pts;
    size_t n, cap;
} series_t;

struct bench_plot {
    char *title, *subtitle, *xlabel, *ylabel;
    bench_axis_t xaxis, yaxis;
    series_t series[PLOT_MAX_SERIES];
    int nseries;
};

/* One axis: the kind, the data range rounded out, the pixel range. */
typedef struct scale {
    bench_axis_t kind;
    double lo, hi;
    double p0, p1;              /* pixels of lo and hi */
} scale_t;

bench_plot_t *bench_plot_new(const char *title, const char *subtitle,
                             const char *xlabel, bench_axis_t xaxis,
                             const char *ylabel, bench_axis_t yaxis)
{
    bench_plot_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->title = strdup(title);
    p->subtitle = subtitle ? strdup(subtitle) : NULL;
    p->xlabel = strdup(xlabel);
    p->ylabel = strdup(ylabel);
    p->xaxis = xaxis;
    p->yaxis = yaxis;
    if (!p->title || !p->xlabel || !p->ylabel || (subtitle && !p->subtitle))
        bench_plot_destroy(&p);
    return p;
}

void bench_plot_destroy(bench_plot_t **self_p)
{
    bench_plot_t *p = *self_p;
    if (!p)
        return;
    for (int i = 0; i < p->nseries; i++) {
        free(p->series[i].name);
        free(p->series[i].pts);
    }
    free(p->title);
    free(p->subtitle);
    free(p->xlabel);
    free(p->ylabel);
    free(p);
    *self_p = NULL;
}

int bench_plot_series(bench_plot_t *p, const char *name, bench_style_t style)
{
    if (p->nseries == PLOT_MAX_SERIES)
        return -1;
    series_t *s = &p->series[p->nseries];
    s->name = strdup(name);
    if (!s->name)
        return -1;
    s->style = style;
    return p->nseries++;
}

int bench_plot_point(bench_plot_t *p, int series, double x, double y, double lo, double hi)
{
    if (series < 0 || series >= p->nseries)
        return -1;
    series_t *s = &p->series[series];
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        point_t *pts = realloc(s->pts, cap * sizeof *pts);
        if (!pts)
            return -1;
        s->pts = pts;
        s->cap = cap;
    }
    s->pts[s->n++] = (point_t){x, y, lo, hi};
    return 0;
}

/* ------------------------------------------------------------ scales */

static bool s_log(bench_axis_t k)
{
    return k != BENCH_AXIS_LINEAR;
}

static double s_base(bench_axis_t k)
{
    return k == BENCH_AXIS_LOG2 ? 2.0 : 10.0;
}

static bool s_drawable(bench_axis_t k, double v)
{
    return isfinite(v) && (!s_log(k) || v > 0);
}

/* A step of 1, 2 or 5 times a power of ten near span / 5. */
static double s_nice_step(double span)
{
    double raw = span / 5.0;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/* Round [min, max] out to what the axis kind ticks at. */
static void s_range(scale_t *s, double min, double max)
{
    if (s_log(s->kind)) {
        double b = s_base(s->kind);
        double e0 = floor(log(min) / log(b) + 1e-9), e1 = ceil(log(max) / log(b) - 1e-9);
        if (e1 <= e0)
            e1 = e0 + 1;
        s->lo = pow(b, e0);
        s->hi = pow(b, e1);
        return;
    }
    double lo = min > 0 ? 0 : min, hi = max;
    if (hi <= lo)
        hi = lo + 1;
    double step = s_nice_step(hi - lo);
    s->lo = floor(lo / step) * step;
    s->hi = ceil(hi / step) * step;
}

static double s_map(const scale_t *s, double v)
{
    double t = s_log(s->kind) ? (log(v) - log(s->lo)) / (log(s->hi) - log(s->lo))
                              : (v - s->lo) / (s->hi - s->lo);
    return s->p0 + t * (s->p1 - s->p0);
}

/* A tick label: 0.01, 2.5, 4096, 45k, 1.2M. */
static void s_label(double v, char *buf, size_t len)
{
    double a = fabs(v);
    if (a >= 1e6)
        snprintf(buf, len, "%gM", v / 1e6);
    else if (a >= 1e4)
        snprintf(buf, len, "%gk", v / 1e3);
    else
        snprintf(buf, len, "%g", v);
}

/* ------------------------------------------------------------ drawing */

static void s_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

typedef struct tick {
    double v;
    bool major;                 /* grid line and a longer tick */
    bool label;
} tick_t;

/* The ticks of an axis, at most cap of them.  Returns how many. */
static size_t s_ticks(const scale_t *s, tick_t *t, size_t cap)
{
    size_t n = 0;
    if (s->kind == BENCH_AXIS_LINEAR) {
        double step = s_nice_step(s->hi - s->lo);
        for (double v = s->lo; v <= s->hi + step / 2 && n < cap; v += step)
            t[n++] = (tick_t){fabs(v) < step / 1e6 ? 0 : v, true, true};
        return n;
    }
    double b = s_base(s->kind);
    int e0 = (int)lround(log(s->lo) / log(b)), e1 = (int)lround(log(s->hi) / log(b));
    int stride = (e1 - e0 + PLOT_MAX_LABELS) / (PLOT_MAX_LABELS + 1);
    if (stride < 1)
        stride = 1;
    for (int e = e0; e <= e1 && n < cap; e++) {
        double v = pow(b, e);
        t[n++] = (tick_t){v, true, (e - e0) % stride == 0};
        if (s->kind != BENCH_AXIS_LOG10 || e == e1)
            continue;
        /* Minor ticks at 2..9 x 10^e; on a short axis 2 and 5 get labels. */
        for (int m = 2; m <= 9 && n < cap; m++)
            t[n++] = (tick_t){m * v, false, e1 - e0 <= 2 && (m == 2 || m == 5)};
    }
    return n;
}

static void s_axis(FILE *f, const scale_t *s, bool vertical)
{
    tick_t t[256];
    size_t n = s_ticks(s, t, sizeof t / sizeof t[0]);
    char buf[32];
    for (size_t i = 0; i < n; i++) {
        double px = s_map(s, t[i].v);
        const char *grid = t[i].major ? "#d0d0d0" : "#eeeeee";
        int len = t[i].major ? 6 : 3;
        if (vertical) {
            fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\"/>\n",
                    PLOT_LEFT, px, PLOT_RIGHT, px, grid);
            fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#333\"/>\n",
                    PLOT_LEFT - len, px, PLOT_LEFT, px);
        } else {
            fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\"/>\n",
                    px, PLOT_TOP, px, PLOT_BOTTOM, grid);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#333\"/>\n",
                    px, PLOT_BOTTOM, px, PLOT_BOTTOM + len);
        }
        if (!t[i].label)
            continue;
        s_label(t[i].v, buf, sizeof buf);
        if (vertical)
            fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                    PLOT_LEFT - 9, px + 4, buf);
        else
            fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                    px, PLOT_BOTTOM + 20, buf);
    }
}

static void s_series(FILE *f, const series_t *s, const char *colour, const scale_t *sx,
                     const scale_t *sy, bench_axis_t xk, bench_axis_t yk)
{
    const char *dash = s->style == BENCH_STYLE_DASHED ? " stroke-dasharray=\"7,5\"" : "";
    bool first = true;
    fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s d=\"", colour,
            s->style == BENCH_STYLE_DASHED ? "1.5" : "2", dash);
    for (size_t i = 0; i < s->n; i++) {
        const point_t *p = &s->pts[i];
        if (!s_drawable(xk, p->x) || !s_drawable(yk, p->y))
            continue;
        fprintf(f, "%s%.1f %.1f", first ? "M" : " L", s_map(sx, p->x), s_map(sy, p->y));
        first = false;
    }
    fputs("\"/>\n", f);
    if (s->style != BENCH_STYLE_MARKERS)
        return;
    for (size_t i = 0; i < s->n; i++) {
        const point_t *p = &s->pts[i];
        if (!s_drawable(xk, p->x) || !s_drawable(yk, p->y))
            continue;
        double x = s_map(sx, p->x), y = s_map(sy, p->y);
        if (s_drawable(yk, p->lo) && s_drawable(yk, p->hi)) {
            double y0 = s_map(sy, p->lo), y1 = s_map(sy, p->hi);
            fprintf(f, "<path stroke=\"%s\" d=\"M%.1f %.1f V%.1f M%.1f %.1f H%.1f M%.1f %.1f "
                       "H%.1f\"/>\n",
                    colour, x, y0, y1, x - 3, y0, x + 3, x - 3, y1, x + 3);
        }
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\" stroke=\"white\"/>\n",
                x, y, colour);
    }
}

/* The corner of the plot area (0 top-left, 1 top-right, 2 bottom-left,
 * 3 bottom-right) whose legend box would cover the fewest points. */
static int s_legend_corner(const bench_plot_t *p, const scale_t *sx, const scale_t *sy,
                           double w, double h)
{
    int best = 1;
    size_t best_n = (size_t)-1;
    for (int c = 0; c < 4; c++) {
        static const int order[4] = {1, 0, 3, 2};   /* top-right first on ties */
        int k = order[c];
        double x0 = k % 2 ? PLOT_RIGHT - w - 8 : PLOT_LEFT + 8;
        double y0 = k < 2 ? PLOT_TOP + 8 : PLOT_BOTTOM - h - 8;
        size_t n = 0;
        for (int i = 0; i < p->nseries; i++)
            for (size_t j = 0; j < p->series[i].n; j++) {
                const point_t *pt = &p->series[i].pts[j];
                if (!s_drawable(p->xaxis, pt->x) || !s_drawable(p->yaxis, pt->y))
                    continue;
                double x = s_map(sx, pt->x), y = s_map(sy, pt->y);
                n += x >= x0 - 4 && x <= x0 + w + 4 && y >= y0 - 4 && y <= y0 + h + 4;
            }
        if (n < best_n) {
            best_n = n;
            best = k;
        }
    }
    return best;
}

static void s_legend(FILE *f, const bench_plot_t *p, const scale_t *sx, const scale_t *sy)
{
    size_t longest = 0;
    for (int i = 0; i < p->nseries; i++)
        if (strlen(p->series[i].name) > longest)
            longest = strlen(p->series[i].name);
    double w = 44 + 6.8 * (double)longest, h = 10 + LEGEND_ROW * p->nseries;
    int k = s_legend_corner(p, sx, sy, w, h);
    double x0 = k % 2 ? PLOT_RIGHT - w - 8 : PLOT_LEFT + 8;
    double y0 = k < 2 ? PLOT_TOP + 8 : PLOT_BOTTOM - h - 8;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"white\" "
               "fill-opacity=\"0.9\" stroke=\"#999\"/>\n", x0, y0, w, h);
    for (int i = 0; i < p->nseries; i++) {
        const series_t *s = &p->series[i];
        double y = y0 + 14 + LEGEND_ROW * i;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                   "stroke-width=\"2\"%s/>\n",
                x0 + 8, y - 4, x0 + 34, y - 4, s_colours[i],
                s->style == BENCH_STYLE_DASHED ? " stroke-dasharray=\"7,5\"" : "");
        if (s->style == BENCH_STYLE_MARKERS)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", x0 + 21,
                    y - 4, s_colours[i]);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", x0 + 40, y);
        s_text(f, s->name);
        fputs("</text>\n", f);
    }
}

/* The range of the data an axis shows (bars included).  false if none. */
static bool s_extent(const bench_plot_t *p, bool y, double *min, double *max)
{
    bench_axis_t k = y ? p->yaxis : p->xaxis;
    *min = INFINITY;
    *max = -INFINITY;
    for (int i = 0; i < p->nseries; i++)
        for (size_t j = 0; j < p->series[i].n; j++) {
            const point_t *pt = &p->series[i].pts[j];
            if (!s_drawable(p->xaxis, pt->x) || !s_drawable(p->yaxis, pt->y))
                continue;
            double v[3] = {y ? pt->y : pt->x, y ? pt->lo : NAN, y ? pt->hi : NAN};
            for (int m = 0; m < 3; m++)
                if (s_drawable(k, v[m])) {
                    *min = fmin(*min, v[m]);
                    *max = fmax(*max, v[m]);
                }
        }
    return *min <= *max;
}

int bench_plot_write(const bench_plot_t *p, const char *path, char *err, size_t errlen)
{
    scale_t sx = {p->xaxis, 0, 1, PLOT_LEFT, PLOT_RIGHT};
    scale_t sy = {p->yaxis, 0, 1, PLOT_BOTTOM, PLOT_TOP};
    double min, max;
    if (!s_extent(p, false, &min, &max) || !s_extent(p, true, &min, &max)) {
        snprintf(err, errlen, "nothing to plot in %s: no series has a point", path);
        return -1;
    }
    s_extent(p, false, &min, &max);
    s_range(&sx, min, max);
    s_extent(p, true, &min, &max);
    s_range(&sy, min, max);

    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write the plot to %s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"Helvetica, Arial, sans-serif\" "
               "font-size=\"12\">\n",
            PLOT_W, PLOT_H, PLOT_W, PLOT_H);
    fputs("<title>", f);
    s_text(f, p->title);
    fputs("</title>\n", f);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", PLOT_W, PLOT_H);
    fprintf(f, "<defs><clipPath id=\"area\"><rect x=\"%d\" y=\"%d\" width=\"%d\" "
               "height=\"%d\"/></clipPath></defs>\n",
            PLOT_LEFT, PLOT_TOP, PLOT_RIGHT - PLOT_LEFT, PLOT_BOTTOM - PLOT_TOP);
    fprintf(f, "<text x=\"%d\" y=\"26\" text-anchor=\"middle\" font-size=\"17\" "
               "font-weight=\"bold\">", (PLOT_LEFT + PLOT_RIGHT) / 2);
    s_text(f, p->title);
    fputs("</text>\n", f);
    if (p->subtitle) {
        fprintf(f, "<text x=\"%d\" y=\"46\" text-anchor=\"middle\" font-size=\"12\" "
                   "fill=\"#555\">", (PLOT_LEFT + PLOT_RIGHT) / 2);
        s_text(f, p->subtitle);
        fputs("</text>\n", f);
    }
    s_axis(f, &sx, false);
    s_axis(f, &sy, true);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
               "stroke=\"#333\"/>\n",
            PLOT_LEFT, PLOT_TOP, PLOT_RIGHT - PLOT_LEFT, PLOT_BOTTOM - PLOT_TOP);
    fputs("<g clip-path=\"url(#area)\">\n", f);
    for (int i = 0; i < p->nseries; i++)
        s_series(f, &p->series[i], s_colours[i], &sx, &sy, p->xaxis, p->yaxis);
    fputs("</g>\n", f);
    s_legend(f, p, &sx, &sy);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\">",
            (PLOT_LEFT + PLOT_RIGHT) / 2, PLOT_BOTTOM + 46);
    s_text(f, p->xlabel);
    fputs("</text>\n", f);
    fprintf(f, "<text transform=\"translate(20 %d) rotate(-90)\" text-anchor=\"middle\" "
               "font-size=\"13\">", (PLOT_TOP + PLOT_BOTTOM) / 2);
    s_text(f, p->ylabel);
    fputs("</text>\n</svg>\n", f);
    if (ferror(f) | (fclose(f) != 0)) {
        snprintf(err, errlen, "cannot write the plot to %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
