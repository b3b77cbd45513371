/* registry.c -- task names to functions, and plugin loading (registry.h). */
#include "registry.h"

#include <assert.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qjlimits.h"

typedef struct reg_task {
    char *name;
    size_t len;
    qj_task_fn fn;
    char *help;
    char *origin;      /* where it came from, for "already registered by" */
    unsigned gen;      /* which load registered it (0 = not a plugin) */
} reg_task_t;

struct qj_registry {
    reg_task_t *tasks;   /* sorted by name (memcmp order, shorter first on a tie) */
    size_t ntasks, cap;
    void **plugins;      /* dlopen handles, closed on destroy */
    size_t nplugins;
    char *origin;        /* origin of the tasks being registered */
    unsigned gen;        /* number of the plugin load under way */
    char err[256];       /* why the last qj_register failed */
};

qj_registry *qj_registry_new(void)
{
    qj_registry *reg = calloc(1, sizeof *reg);
    if (reg && !(reg->origin = strdup("built-in"))) {
        free(reg);
        return NULL;
    }
    return reg;
}

void qj_registry_destroy(qj_registry **self_p)
{
    if (!self_p || !*self_p)
        return;
    qj_registry *reg = *self_p;
    for (size_t i = 0; i < reg->ntasks; i++) {
        free(reg->tasks[i].name);
        free(reg->tasks[i].help);
        free(reg->tasks[i].origin);
    }
    free(reg->tasks);
    for (size_t i = 0; i < reg->nplugins; i++)
        dlclose(reg->plugins[i]);
    free(reg->plugins);
    free(reg->origin);
    free(reg);
    *self_p = NULL;
}

static int s_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* Index of name in reg->tasks, or of where it would go (*found false). */
static size_t s_search(const qj_registry *reg, const char *name, size_t len, bool *found)
{
    size_t lo = 0, hi = reg->ntasks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = s_cmp(reg->tasks[mid].name, reg->tasks[mid].len, name, len);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* A task name is 1..QJ_MAX_TASK_NAME printable ASCII bytes without
 * spaces, so it can be typed on a command line and shown in a log. */
static bool s_valid_name(const char *name, size_t len)
{
    if (len == 0 || len > QJ_MAX_TASK_NAME)
        return false;
    for (size_t i = 0; i < len; i++)
        if (name[i] <= ' ' || name[i] >= 0x7f)
            return false;
    return true;
}

int qj_register(qj_registry *reg, const char *name, qj_task_fn fn, const char *help)
{
    assert(reg);
    size_t len = name ? strlen(name) : 0;
    if (!name || !s_valid_name(name, len)) {
        snprintf(reg->err, sizeof reg->err,
                 "task name '%.*s' is invalid: use 1 to %d printable characters, no spaces",
                 (int)(len > 64 ? 64 : len), name ? name : "", QJ_MAX_TASK_NAME);
        return -1;
    }
    if (!fn) {
        snprintf(reg->err, sizeof reg->err, "task '%s' has no function", name);
        return -1;
    }
    bool found;
    size_t at = s_search(reg, name, len, &found);
    if (found) {
        snprintf(reg->err, sizeof reg->err, "task '%s' is already registered (by %s)",
                 name, reg->tasks[at].origin);
        return -1;
    }
    if (reg->ntasks == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 16;
        reg_task_t *t = realloc(reg->tasks, cap * sizeof *t);
        if (!t)
            goto oom;
        reg->tasks = t;
        reg->cap = cap;
    }
    reg_task_t t = {strdup(name), len, fn, strdup(help ? help : ""), strdup(reg->origin),
                    reg->gen};
    if (!t.name || !t.help || !t.origin) {
        free(t.name);
        free(t.help);
        free(t.origin);
        goto oom;
    }
    memmove(&reg->tasks[at + 1], &reg->tasks[at], (reg->ntasks - at) * sizeof t);
    reg->tasks[at] = t;
    reg->ntasks++;
    reg->err[0] = '\0';
    return 0;
oom:
    snprintf(reg->err, sizeof reg->err, "out of memory registering task '%s'", name);
    return -1;
}

/* Drop the tasks registered by load number gen (a plugin that failed:
 * its code is about to be unloaded). */
static void s_forget(qj_registry *reg, unsigned gen)
{
    size_t kept = 0;
    for (size_t i = 0; i < reg->ntasks; i++) {
        if (reg->tasks[i].gen == gen) {
            free(reg->tasks[i].name);
            free(reg->tasks[i].help);
            free(reg->tasks[i].origin);
        } else {
            reg->tasks[kept++] = reg->tasks[i];
        }
    }
    reg->ntasks = kept;
}

int qj_registry_load(qj_registry *reg, const char *path, char *err, size_t errlen)
{
    void **grown = realloc(reg->plugins, (reg->nplugins + 1) * sizeof *grown);
    char *origin = strdup(path);
    if (!grown || !origin) {
        if (grown)
            reg->plugins = grown;
        free(origin);
        snprintf(err, errlen, "out of memory loading plugin %s", path);
        return -1;
    }
    reg->plugins = grown;
    /* RTLD_NOW: an unresolved symbol is an error at start-up, not a crash
     * in the middle of a job; RTLD_LOCAL keeps plugins from clashing. */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen, "cannot load plugin %s: %s", path, dlerror());
        free(origin);
        return -1;
    }
    qj_plugin_init_fn init;
    *(void **)&init = dlsym(h, QJ_PLUGIN_INIT);
    if (!init) {
        snprintf(err, errlen, "%s is not a qjob plugin: it exports no %s() "
                 "(define 'int %s(qj_registry *reg)' calling qj_register)",
                 path, QJ_PLUGIN_INIT, QJ_PLUGIN_INIT);
        dlclose(h);
        free(origin);
        return -1;
    }
    char *saved = reg->origin;
    reg->origin = origin;
    reg->gen++;
    reg->err[0] = '\0';
    size_t before = reg->ntasks;
    int rc = init(reg);
    reg->origin = saved;
    free(origin);
    if (rc != 0 || reg->err[0] || reg->ntasks == before) {
        if (rc != 0 || reg->err[0])
            snprintf(err, errlen, "plugin %s: %s() failed%s%s", path, QJ_PLUGIN_INIT,
                     reg->err[0] ? ": " : "", reg->err);
        else
            snprintf(err, errlen, "plugin %s registered no task (call qj_register "
                     "from %s)", path, QJ_PLUGIN_INIT);
        s_forget(reg, reg->gen);
        dlclose(h);
        return -1;
    }
    reg->plugins[reg->nplugins++] = h;
    return 0;
}

qj_task_fn qj_registry_find(const qj_registry *reg, const char *name, size_t len)
{
    bool found;
    size_t at = s_search(reg, name, len, &found);
    return found ? reg->tasks[at].fn : NULL;
}

size_t qj_registry_count(const qj_registry *reg) { return reg->ntasks; }

const char *qj_registry_error(const qj_registry *reg) { return reg->err; }

void qj_registry_task(const qj_registry *reg, size_t i, const char **name, const char **help,
                      const char **origin)
{
    assert(i < reg->ntasks);
    *name = reg->tasks[i].name;
    *help = reg->tasks[i].help;
    *origin = reg->tasks[i].origin;
}

void qj_registry_names(const qj_registry *reg, char *buf, size_t len)
{
    assert(len >= 4);
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < reg->ntasks; i++) {
        const char *sep = i ? ", " : "";
        size_t need = strlen(sep) + reg->tasks[i].len;
        if (used + need + 4 > len) {   /* keep room for "..." and the NUL */
            snprintf(buf + used, len - used, "%s...", i ? ", " : "");
            return;
        }
        used += (size_t)snprintf(buf + used, len - used, "%s%s", sep, reg->tasks[i].name);
    }
}
