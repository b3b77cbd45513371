/* bench_table.h -- a table of benchmark figures and the three ways
 * qclient bench writes it: aligned text for a person, CSV for a
 * spreadsheet, JSON for a program.
 *
 * A table has a short name (its key in CSV and JSON: "latency"), a title
 * for the text form, columns (a key, a heading, a number format), rows of
 * cells (a number, a text, or empty), notes (lines printed under it: the
 * fit, the configuration) and meta figures (named numbers, JSON only).
 * A column can carry the min and max of two others in its text form
 * (bench_table_spread).
 */
#ifndef QJ_BENCH_TABLE_H
#define QJ_BENCH_TABLE_H

#include <jansson.h>
#include <stdio.h>

/* Column formats (the decimals argument of bench_table_column). */
#define BENCH_AUTO (-1)   /* decimals chosen from the value's size */
#define BENCH_TEXT (-2)   /* the column holds text cells */

typedef struct bench_table bench_table_t;

/* A new empty table.  name and title are copied.  NULL if out of memory. */
bench_table_t *bench_table_new(const char *name, const char *title);

/* Free a table; safe on NULL and twice. */
void bench_table_destroy(bench_table_t **self_p);

/* Add a column: key (CSV/JSON, [a-z0-9_]), head (text heading), decimals
 * (digits after the point, BENCH_AUTO or BENCH_TEXT).  Returns its index,
 * or -1 if out of memory or the table has its maximum of 16 columns. */
int bench_table_column(bench_table_t *t, const char *key, const char *head, int decimals);

/* In the text form, show col's cells as "v (lo-hi)" with the numbers of
 * columns lo and hi (the spread of repeated runs), with col's decimals,
 * and leave the lo and hi columns out there; CSV and JSON keep all three
 * as they are.  lo and hi must be number columns other than col. */
void bench_table_spread(bench_table_t *t, int col, int lo, int hi);

/* Append a row of empty cells.  Returns its index, or -1 if out of memory. */
int bench_table_row(bench_table_t *t);

/* Set a cell to a number (NAN leaves it empty) or to a text (copied). */
void bench_table_set(bench_table_t *t, int row, int col, double v);
void bench_table_set_text(bench_table_t *t, int row, int col, const char *s);

/* The number in a cell (NAN if empty or text). */
double bench_table_get(const bench_table_t *t, int row, int col);
int bench_table_rows(const bench_table_t *t);
const char *bench_table_name(const bench_table_t *t);

/* Add a line under the table (printf format). */
void bench_table_note(bench_table_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Add a named figure (JSON "meta" only; key is copied). */
void bench_table_meta(bench_table_t *t, const char *key, double v);

/* Print the table as aligned text: title, headings, rows, notes. */
void bench_table_print(const bench_table_t *t, FILE *out);

/* Write the table as CSV: a heading line whose first field is "table",
 * then one line per row whose first field is the table's name.  Several
 * tables can follow one another in one file; a line starting with
 * "table," starts a new one. */
void bench_table_csv(const bench_table_t *t, FILE *out);

/* The table as a JSON object {"name", "title", "columns": [{"key",
 * "head"}], "rows": [{key: value}], "notes": [...], "meta": {...}}; empty
 * cells are null.  Caller owns the reference; NULL if out of memory. */
json_t *bench_table_json(const bench_table_t *t);

#endif
