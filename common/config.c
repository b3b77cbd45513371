/* config.c -- the configuration file, read with inih and turned into
 * command-line options (see config.h for the rules). */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#define CFG_COMMON "qjob"         /* the section every program reads */
#define CFG_MAX_ENTRIES 4096      /* entries in one file: a bound, not a need */

/* Sections that belong to some qjob program: a reader skips the others'
 * and refuses any other name, which is most likely a typo. */
static const char *const s_sections[] = {CFG_COMMON, "qbroker", "qworker", "qclient", NULL};

/* The argv built by the last call: kept here because getopt's optarg
 * points into it for as long as the program runs. */
static char **s_argv;

typedef struct entry {
    int opt;          /* index in the option table */
    int level;        /* 0: [qjob], 1: the program's own section */
    char *arg;        /* "--key=value" or "--key"; NULL for a flag set to no */
} entry_t;

typedef struct parse {
    const char *path;           /* the file, for messages */
    const char *section;        /* the program's section */
    const struct option *opts;
    FILE *f;
    char *line;                 /* getline's buffer */
    size_t linecap;
    int lineno;                 /* lines read so far: inih counts the same */
    entry_t *e;
    size_t n, cap;
    int fail_line;              /* line of our first error, 0 if none */
    char *err;
    size_t errlen;
} parse_t;

static void s_fail(parse_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record the first error, prefixed with file:line. */
static void s_fail(parse_t *p, const char *fmt, ...)
{
    if (p->fail_line)
        return;
    p->fail_line = p->lineno;
    int n = snprintf(p->err, p->errlen, "%s:%d: ", p->path, p->lineno);
    if (n < 0 || (size_t)n >= p->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* inih's reader, given fgets's contract: one line a call.  Counting lines
 * here gives the handler its line number (Debian's inih is built without
 * INI_HANDLER_LINENO).  It also refuses what inih would misread: a line
 * longer than its buffer (the rest would be parsed as a line of its own)
 * and an indented entry (inih takes it as the continuation of the value
 * above).  Returning NULL ends the parse. */
static char *s_reader(char *str, int num, void *stream)
{
    parse_t *p = stream;
    if (p->fail_line)
        return NULL;
    errno = 0;
    ssize_t len = getline(&p->line, &p->linecap, p->f);
    if (len < 0) {
        if (errno && errno != EINVAL) {
            p->lineno++;
            s_fail(p, "cannot read: %s", strerror(errno));
        }
        return NULL;
    }
    p->lineno++;
    if (len > num - 3) {
        s_fail(p, "line longer than %d bytes", num - 3);
        return NULL;
    }
    const char *s = p->line;
    if (*s == ' ' || *s == '\t') {
        s += strspn(s, " \t\r\n");
        if (*s && *s != ';' && *s != '#') {
            s_fail(p, "indented line: write 'key = value' at the start of the line");
            return NULL;
        }
    }
    memcpy(str, p->line, (size_t)len + 1);
    return str;
}

static bool s_known_section(const char *name)
{
    for (size_t i = 0; s_sections[i]; i++)
        if (strcmp(name, s_sections[i]) == 0)
            return true;
    return false;
}

/* yes/no and friends; 0 or -1. */
static int s_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Index of the option called exactly `name`, or -1. */
static int s_find(const struct option *opts, const char *name, size_t len)
{
    for (int i = 0; opts[i].name; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return i;
    return -1;
}

/* As getopt_long finds a long option: the one named exactly, else the
 * only one that the name abbreviates; -1 if none or several. */
static int s_lookup(const struct option *opts, const char *name, size_t len)
{
    int opt = s_find(opts, name, len);
    if (opt >= 0)
        return opt;
    for (int i = 0; opts[i].name; i++) {
        if (strncmp(opts[i].name, name, len) != 0)
            continue;
        if (opt >= 0)
            return -1;
        opt = i;
    }
    return opt;
}

/* inih's handler: one `key = value`.  Returns 1 to go on, 0 on error. */
static int s_entry(void *user, const char *section, const char *name, const char *value)
{
    parse_t *p = user;
    int level;
    if (strcmp(section, CFG_COMMON) == 0) {
        level = 0;
    } else if (strcmp(section, p->section) == 0) {
        level = 1;
    } else if (s_known_section(section)) {
        return 1;   /* another program's */
    } else if (!*section) {
        s_fail(p, "'%s' is outside any section: put it under [%s] or [%s]", name,
               p->section, CFG_COMMON);
        return 0;
    } else {
        s_fail(p, "'%s' is in an unknown section [%s] (qjob's sections are [qjob], "
               "[qbroker], [qworker])", name, section);
        return 0;
    }
    if (!strcmp(name, "help") || !strcmp(name, "version") || !strcmp(name, "config")) {
        s_fail(p, "'%s' cannot be set in a configuration file", name);
        return 0;
    }
    int opt = s_find(p->opts, name, strlen(name));
    if (opt < 0) {
        s_fail(p, "unknown key '%s' in [%s]: %s has no option --%s (see %s --help)",
               name, section, p->section, name, p->section);
        return 0;
    }
    char *arg = NULL;
    if (p->opts[opt].has_arg == no_argument) {
        bool on;
        if (s_bool(value, &on) != 0) {
            s_fail(p, "'%s' is a flag: write %s = yes or %s = no, not '%s'", name, name,
                   name, value);
            return 0;
        }
        if (on && asprintf(&arg, "--%s", name) < 0) {
            s_fail(p, "out of memory");
            return 0;
        }
    } else {
        if (!*value && p->opts[opt].has_arg == required_argument) {
            s_fail(p, "'%s' needs a value: write %s = VALUE", name, name);
            return 0;
        }
        int rc = *value ? asprintf(&arg, "--%s=%s", name, value) : asprintf(&arg, "--%s", name);
        if (rc < 0) {
            s_fail(p, "out of memory");
            return 0;
        }
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        entry_t *grown = p->n < CFG_MAX_ENTRIES ? realloc(p->e, cap * sizeof *grown) : NULL;
        if (!grown) {
            free(arg);
            s_fail(p, p->n < CFG_MAX_ENTRIES ? "out of memory"
                                             : "more than %d entries", CFG_MAX_ENTRIES);
            return 0;
        }
        p->e = grown;
        p->cap = cap;
    }
    p->e[p->n++] = (entry_t){opt, level, arg};
    return 1;
}

/* Read the file into p->e.  Returns 0, 1 if an `optional` file does not
 * exist, or -1 with p->err set. */
static int s_read(parse_t *p, bool optional)
{
    p->f = fopen(p->path, "r");
    if (!p->f && optional && errno == ENOENT)
        return 1;
    if (!p->f) {
        snprintf(p->err, p->errlen, "cannot open configuration file %s: %s", p->path,
                 strerror(errno));
        return -1;
    }
    int rc = ini_parse_stream(s_reader, p, s_entry, p);
    fclose(p->f);
    p->f = NULL;
    if (rc > 0 && (!p->fail_line || rc < p->fail_line)) {
        snprintf(p->err, p->errlen, "%s:%d: neither 'key = value' nor '[section]'",
                 p->path, rc);
        return -1;
    }
    if (p->fail_line)
        return -1;
    if (rc != 0) {
        snprintf(p->err, p->errlen, "cannot read configuration file %s", p->path);
        return -1;
    }
    return 0;
}

/* What the command line says: which options it gives (given[i]), and the
 * --config FILE it names (*config, NULL if none; its elements are marked
 * in drop[]).  Follows getopt_long: "--" ends the options, an option may
 * be abbreviated to a unique prefix, and a required argument may be the
 * next element. */
static int s_scan(int argc, char **argv, const struct option *opts, bool *given, bool *drop,
                  const char **config, char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if (strncmp(a, "--", 2) != 0)
            continue;
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (len == 6 && strncmp(name, "config", 6) == 0 && s_find(opts, name, len) < 0) {
            drop[i] = true;
            if (eq) {
                *config = eq + 1;
            } else if (i + 1 < argc) {
                drop[++i] = true;
                *config = argv[i];
            } else {
                snprintf(err, errlen, "--config needs a FILE");
                return -1;
            }
            continue;
        }
        int opt = s_lookup(opts, name, len);
        if (opt < 0)
            continue;   /* getopt_long will say what is wrong with it */
        given[opt] = true;
        if (opts[opt].has_arg == required_argument && !eq)
            i++;
    }
    return 0;
}

/* The new argv: argv[0], the file's entries that stand ([qjob]'s, then the
 * program's own section's, each in file order), then the rest of
 * the command line less --config; one block, every string copied. */
static char **s_build(int argc, char **argv, const bool *drop, const entry_t *e, size_t n,
                      const bool *keep, int *newargc)
{
    size_t count = 0, bytes = 0;
    for (int i = 0; i < argc; i++)
        if (!drop[i])
            count++, bytes += strlen(argv[i]) + 1;
    for (size_t k = 0; k < n; k++)
        if (keep[k])
            count++, bytes += strlen(e[k].arg) + 1;
    char **out = malloc((count + 1) * sizeof *out + bytes);
    if (!out)
        return NULL;
    char *s = (char *)(out + count + 1);
    size_t j = 0;
#define PUT(str) do { size_t l_ = strlen(str) + 1; memcpy(s, (str), l_); out[j++] = s; s += l_; } while (0)
    PUT(argv[0]);
    for (int level = 0; level <= 1; level++)
        for (size_t k = 0; k < n; k++)
            if (keep[k] && e[k].level == level)
                PUT(e[k].arg);
    for (int i = 1; i < argc; i++)
        if (!drop[i])
            PUT(argv[i]);
#undef PUT
    out[j] = NULL;
    *newargc = (int)j;
    return out;
}

int cfg_apply(const char *path, const char *section, const struct option *opts,
              int *argc, char ***argv, char *err, size_t errlen)
{
    assert(section && opts && argc && argv && *argc >= 1 && err && errlen > 0);
    int nopts = 0;
    while (opts[nopts].name)
        nopts++;
    int rc = -1;
    parse_t p = {.section = section, .opts = opts, .err = err, .errlen = errlen};
    bool *given = calloc((size_t)nopts + 1, sizeof *given);
    bool *drop = calloc((size_t)*argc, sizeof *drop);
    int *top = calloc((size_t)nopts + 1, sizeof *top);
    bool *keep = NULL;
    if (!given || !drop || !top) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    const char *config = NULL;
    if (s_scan(*argc, *argv, opts, given, drop, &config, err, errlen) != 0)
        goto done;
    bool named = config != NULL;
    if (!config && (config = getenv("QJOB_CONFIG")) != NULL)
        named = true;
    if (!config)
        config = path;
    bool read = false;
    if (config && *config) {
        p.path = config;
        int r = s_read(&p, !named);   /* the caller's default may be absent */
        if (r < 0)
            goto done;
        read = r == 0;
    }
    if (!read && !named) {
        rc = 0;   /* no file, no --config: argv untouched */
        goto done;
    }
    /* Each option takes its values from the highest level that gives it:
     * the command line (given[]), then the program's section, then [qjob]. */
    for (int i = 0; i < nopts; i++)
        top[i] = -1;
    for (size_t k = 0; k < p.n; k++)
        if (p.e[k].level > top[p.e[k].opt])
            top[p.e[k].opt] = p.e[k].level;
    keep = calloc(p.n + 1, sizeof *keep);
    if (!keep) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < p.n; k++)
        keep[k] = p.e[k].arg && !given[p.e[k].opt] && p.e[k].level == top[p.e[k].opt];
    int newargc;
    char **built = s_build(*argc, *argv, drop, p.e, p.n, keep, &newargc);
    if (!built) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    free(s_argv);   /* after the copy: *argv may be the previous one */
    s_argv = built;
    *argc = newargc;
    *argv = built;
    rc = 0;
done:
    for (size_t k = 0; k < p.n; k++)
        free(p.e[k].arg);
    free(p.e);
    free(p.line);
    free(given);
    free(drop);
    free(top);
    free(keep);
    return rc;
}

void cfg_apply_or_exit(const char *section, const struct option *opts, int *argc, char ***argv)
{
    char err[512];
    if (cfg_apply(NULL, section, opts, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", section, err);
        exit(2);
    }
}
