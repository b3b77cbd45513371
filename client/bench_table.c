/* bench_table.c -- benchmark tables as text, CSV and JSON (bench_table.h). */
#include "bench_table.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_MAX_COLS 16
#define TABLE_MAX_NOTES 16
#define TABLE_MAX_META 32
#define TABLE_CELL_CHARS 32   /* a formatted number or a short text */
#define TABLE_SPREAD_CHARS (3 * TABLE_CELL_CHARS + 8)   /* "v (lo-hi)" */

typedef struct cell {
    double v;                 /* NAN = empty (or text) */
    char *text;               /* text cell, or NULL */
} cell_t;

typedef struct column {
    char *key;
    char *head;
    int decimals;             /* >= 0, BENCH_AUTO or BENCH_TEXT */
    int lo, hi;               /* text form: "v (lo-hi)" from these columns, or -1 */
    bool folded;              /* text form: shown inside another column's cells */
} column_t;

typedef struct meta {
    char *key;
    double v;
} meta_t;

struct bench_table {
    char *name;
    char *title;
    column_t cols[TABLE_MAX_COLS];
    int ncols;
    cell_t *cells;            /* rows * TABLE_MAX_COLS, row-major */
    int nrows, caprows;
    char *notes[TABLE_MAX_NOTES];
    int nnotes;
    meta_t meta[TABLE_MAX_META];
    int nmeta;
};

bench_table_t *bench_table_new(const char *name, const char *title)
{
    bench_table_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->name = strdup(name);
    t->title = strdup(title);
    if (!t->name || !t->title)
        bench_table_destroy(&t);
    return t;
}

void bench_table_destroy(bench_table_t **self_p)
{
    bench_table_t *t = *self_p;
    if (!t)
        return;
    for (int i = 0; i < t->ncols; i++) {
        free(t->cols[i].key);
        free(t->cols[i].head);
    }
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++)
            free(t->cells[r * TABLE_MAX_COLS + c].text);
    for (int i = 0; i < t->nnotes; i++)
        free(t->notes[i]);
    for (int i = 0; i < t->nmeta; i++)
        free(t->meta[i].key);
    free(t->cells);
    free(t->name);
    free(t->title);
    free(t);
    *self_p = NULL;
}

int bench_table_column(bench_table_t *t, const char *key, const char *head, int decimals)
{
    if (t->ncols == TABLE_MAX_COLS)
        return -1;
    column_t *c = &t->cols[t->ncols];
    c->key = strdup(key);
    c->head = strdup(head);
    c->decimals = decimals;
    c->lo = c->hi = -1;
    c->folded = false;
    if (!c->key || !c->head) {
        free(c->key);
        free(c->head);
        return -1;
    }
    return t->ncols++;
}

void bench_table_spread(bench_table_t *t, int col, int lo, int hi)
{
    assert(col >= 0 && col < t->ncols && lo >= 0 && lo < t->ncols && hi >= 0 &&
           hi < t->ncols && lo != col && hi != col);
    assert(t->cols[lo].decimals != BENCH_TEXT && t->cols[hi].decimals != BENCH_TEXT);
    t->cols[col].lo = lo;
    t->cols[col].hi = hi;
    t->cols[lo].folded = t->cols[hi].folded = true;
}

int bench_table_row(bench_table_t *t)
{
    if (t->nrows == t->caprows) {
        int cap = t->caprows ? t->caprows * 2 : 16;
        cell_t *p = realloc(t->cells, (size_t)cap * TABLE_MAX_COLS * sizeof *p);
        if (!p)
            return -1;
        t->cells = p;
        t->caprows = cap;
    }
    cell_t *row = &t->cells[t->nrows * TABLE_MAX_COLS];
    for (int c = 0; c < TABLE_MAX_COLS; c++)
        row[c] = (cell_t){NAN, NULL};
    return t->nrows++;
}

static cell_t *s_cell(const bench_table_t *t, int row, int col)
{
    assert(row >= 0 && row < t->nrows && col >= 0 && col < t->ncols);
    return &t->cells[row * TABLE_MAX_COLS + col];
}

void bench_table_set(bench_table_t *t, int row, int col, double v)
{
    s_cell(t, row, col)->v = v;
}

void bench_table_set_text(bench_table_t *t, int row, int col, const char *s)
{
    cell_t *c = s_cell(t, row, col);
    free(c->text);
    c->text = strdup(s);
}

double bench_table_get(const bench_table_t *t, int row, int col)
{
    return s_cell(t, row, col)->v;
}

int bench_table_rows(const bench_table_t *t)
{
    return t->nrows;
}

const char *bench_table_name(const bench_table_t *t)
{
    return t->name;
}

void bench_table_note(bench_table_t *t, const char *fmt, ...)
{
    if (t->nnotes == TABLE_MAX_NOTES)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) >= 0)
        t->notes[t->nnotes++] = s;
    va_end(ap);
}

void bench_table_meta(bench_table_t *t, const char *key, double v)
{
    if (t->nmeta == TABLE_MAX_META)
        return;
    t->meta[t->nmeta].key = strdup(key);
    t->meta[t->nmeta++].v = v;
}

/* A cell as a person reads it: with the column's decimals, or with about
 * three significant digits when automatic (12345, 123.4, 1.23, 0.0123). */
static void s_format_one(const column_t *col, const cell_t *c, char *buf, size_t len)
{
    if (c->text) {
        snprintf(buf, len, "%s", c->text);
        return;
    }
    if (isnan(c->v)) {
        snprintf(buf, len, "-");
        return;
    }
    int d = col->decimals;
    if (d == BENCH_AUTO) {
        double a = fabs(c->v);
        d = a >= 100 || a == 0 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
        if (a > 0 && a < 0.01) {
            snprintf(buf, len, "%.3g", c->v);
            return;
        }
    }
    snprintf(buf, len, "%.*f", d < 0 ? 0 : d, c->v);
}

/* Cell (row, col) for the text form, with its spread if it has one. */
static void s_format(const bench_table_t *t, int row, int col, char *buf, size_t len)
{
    const column_t *c = &t->cols[col];
    const cell_t *cell = s_cell(t, row, col);
    s_format_one(c, cell, buf, len);
    if (c->lo < 0 || isnan(cell->v))
        return;
    char lo[TABLE_CELL_CHARS], hi[TABLE_CELL_CHARS];
    s_format_one(c, s_cell(t, row, c->lo), lo, sizeof lo);
    s_format_one(c, s_cell(t, row, c->hi), hi, sizeof hi);
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, " (%s-%s)", lo, hi);
}

void bench_table_print(const bench_table_t *t, FILE *out)
{
    int width[TABLE_MAX_COLS];
    char buf[TABLE_SPREAD_CHARS];
    for (int c = 0; c < t->ncols; c++) {
        width[c] = (int)strlen(t->cols[c].head);
        for (int r = 0; r < t->nrows; r++) {
            s_format(t, r, c, buf, sizeof buf);
            if ((int)strlen(buf) > width[c])
                width[c] = (int)strlen(buf);
        }
    }
    fprintf(out, "%s\n", t->title);
    int total = 0;
    /* Numbers align right, texts left; folded columns are shown inside
     * another's cells. */
    const char *sep = "";
    for (int c = 0; c < t->ncols; c++) {
        if (t->cols[c].folded)
            continue;
        int w = t->cols[c].decimals == BENCH_TEXT ? -width[c] : width[c];
        fprintf(out, "%s%*s", sep, w, t->cols[c].head);
        total += width[c] + (int)strlen(sep);
        sep = "  ";
    }
    fputc('\n', out);
    for (int i = 0; i < total; i++)
        fputc('-', out);
    fputc('\n', out);
    for (int r = 0; r < t->nrows; r++) {
        sep = "";
        for (int c = 0; c < t->ncols; c++) {
            if (t->cols[c].folded)
                continue;
            s_format(t, r, c, buf, sizeof buf);
            int w = t->cols[c].decimals == BENCH_TEXT ? -width[c] : width[c];
            fprintf(out, "%s%*s", sep, w, buf);
            sep = "  ";
        }
        fputc('\n', out);
    }
    for (int i = 0; i < t->nnotes; i++)
        fprintf(out, "%s\n", t->notes[i]);
}

/* A text cell quoted as CSV wants it when it holds a separator or quote. */
static void s_csv_text(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

void bench_table_csv(const bench_table_t *t, FILE *out)
{
    fputs("table", out);
    for (int c = 0; c < t->ncols; c++)
        fprintf(out, ",%s", t->cols[c].key);
    fputc('\n', out);
    for (int r = 0; r < t->nrows; r++) {
        s_csv_text(out, t->name);
        for (int c = 0; c < t->ncols; c++) {
            const cell_t *cell = s_cell(t, r, c);
            fputc(',', out);
            if (cell->text)
                s_csv_text(out, cell->text);
            else if (!isnan(cell->v))
                fprintf(out, "%.9g", cell->v);
        }
        fputc('\n', out);
    }
}

/* A number as JSON: integers stay integers, NAN and infinities are null
 * (JSON has no such numbers). */
static json_t *s_json_number(double v)
{
    if (!isfinite(v))
        return json_null();
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return json_integer((json_int_t)v);
    return json_real(v);
}

json_t *bench_table_json(const bench_table_t *t)
{
    json_t *cols = json_array(), *rows = json_array(), *notes = json_array();
    json_t *meta = json_object();
    for (int c = 0; c < t->ncols; c++)
        json_array_append_new(cols, json_pack("{s:s, s:s}", "key", t->cols[c].key, "head",
                                              t->cols[c].head));
    for (int r = 0; r < t->nrows; r++) {
        json_t *row = json_object();
        for (int c = 0; c < t->ncols; c++) {
            const cell_t *cell = s_cell(t, r, c);
            json_object_set_new(row, t->cols[c].key,
                                cell->text ? json_string(cell->text) : s_json_number(cell->v));
        }
        json_array_append_new(rows, row);
    }
    for (int i = 0; i < t->nnotes; i++)
        json_array_append_new(notes, json_string(t->notes[i]));
    for (int i = 0; i < t->nmeta; i++)
        json_object_set_new(meta, t->meta[i].key, s_json_number(t->meta[i].v));
    return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "name", t->name, "title", t->title,
                     "columns", cols, "rows", rows, "notes", notes, "meta", meta);
}
