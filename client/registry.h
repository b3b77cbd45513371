/* registry.h -- the tasks a worker can run, by name.
 *
 * qworker fills one registry before it forks: the built-in tasks, then
 * each plugin given with --tasks (a shared object exporting
 * qjob_plugin_init, which calls qj_register for each of its tasks).  The
 * children inherit it and only read it.  Names are kept sorted, so a
 * lookup is a binary search and listings come out in a stable order.
 */
#ifndef QJ_REGISTRY_H
#define QJ_REGISTRY_H

#include <stddef.h>

#include "qjob.h"

/* Create an empty registry.  Returns NULL on allocation failure. */
qj_registry *qj_registry_new(void);

/* Free the registry and unload its plugins (their task functions must no
 * longer run).  Safe on NULL; nulls the caller's pointer. */
void qj_registry_destroy(qj_registry **self_p);

/* Load a plugin: dlopen path (resolving every symbol now, so a missing
 * one fails here and not in the middle of a job) and call its
 * qjob_plugin_init.  Returns 0, or -1 with a message naming the plugin and
 * the fault (cannot open, no init function, init failed and why). */
int qj_registry_load(qj_registry *reg, const char *path, char *err, size_t errlen);

/* The task registered under name[0..len), or NULL. */
qj_task_fn qj_registry_find(const qj_registry *reg, const char *name, size_t len);

/* How many tasks are registered. */
size_t qj_registry_count(const qj_registry *reg);

/* The i-th task in name order (i < qj_registry_count): its name, help
 * text and origin ("built-in" or the plugin's path), owned by reg. */
void qj_registry_task(const qj_registry *reg, size_t i, const char **name, const char **help,
                      const char **origin);

/* Write the task names, sorted and separated by ", ", into buf (always
 * NUL-terminated; a list that does not fit ends with "..."). */
void qj_registry_names(const qj_registry *reg, char *buf, size_t len);

/* Why the last qj_register on reg failed ("" if none did). */
const char *qj_registry_error(const qj_registry *reg);

#endif
