/* keys.c -- CURVE key files and allow lists (keys.h). */
#include "keys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#define KEY_FILE_MAX (64 * 1024)          /* bytes of a key file at most */
#define LIST_FILE_MAX (16 * 1024 * 1024)  /* bytes of an allow-list file at most */
#define SECTION_MAX 31                    /* a bare word longer than this is a bad key */

typedef struct keys_entry {
    uint8_t bin[KEYS_BIN];
    char z85[KEYS_Z85 + 1];
    char label[KEYS_LABEL + 1];
} keys_entry_t;

struct keys_list {
    keys_entry_t *v;
    size_t n, cap;
};

/* What one file holds, as the parser finds it. */
typedef struct parsed {
    const char *path;
    char secret[KEYS_Z85 + 1];    /* the secret-key line's key, if any */
    int nsecret;
    char name[KEYS_LABEL + 1];    /* metadata name, or the file's base name */
    /* Called for each public key (public-key line or bare key). */
    int (*on_public)(struct parsed *p, const char *z85, const char *label, int line,
                     char *err, size_t errlen);
    void *arg;
    char first[KEYS_Z85 + 1];     /* the first public key seen */
    int npublic;
} parsed_t;

/* ---- Z85 */

void keys_encode(const uint8_t bin[KEYS_BIN], char out[KEYS_Z85 + 1])
{
    zmq_z85_encode(out, bin, KEYS_BIN);
}

int keys_decode(const char *text, uint8_t out[KEYS_BIN])
{
    if (strlen(text) != KEYS_Z85)
        return -1;
    return zmq_z85_decode(out, text) ? 0 : -1;
}

/* ---- reading files */

/* Read a whole file of at most max bytes (NUL-terminated, caller frees)
 * and its status.  NULL with a message on failure. */
static char *s_slurp(const char *path, size_t max, struct stat *st, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    if (fstat(fd, st) != 0) {
        snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st->st_mode)) {
        snprintf(err, errlen, "key file %s is not a regular file", path);
    } else if ((size_t)st->st_size > max) {
        snprintf(err, errlen, "key file %s is too big (%lld bytes; at most %zu)", path,
                 (long long)st->st_size, max);
    } else if (!(buf = malloc((size_t)st->st_size + 1))) {
        snprintf(err, errlen, "out of memory reading %s", path);
    } else {
        size_t got = 0;
        while (got < (size_t)st->st_size) {
            ssize_t r = read(fd, buf + got, (size_t)st->st_size - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                snprintf(err, errlen, "cannot read key file %s: %s", path,
                         r < 0 ? strerror(errno) : "it shrank while being read");
                free(buf);
                buf = NULL;
                break;
            }
            got += (size_t)r;
        }
        if (buf)
            buf[got] = '\0';
    }
    close(fd);
    return buf;
}

static char *s_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* A value as ZPL writes it: "text", 'text' or text. */
static char *s_unquote(char *v)
{
    size_t n = strlen(v);
    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
        v[n - 1] = '\0';
        return v + 1;
    }
    return v;
}

static bool s_is_word(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
              (s[n] >= '0' && s[n] <= '9') || s[n] == '-' || s[n] == '_'))
            return false;
    return n > 0 && n <= SECTION_MAX;
}

static int s_check_key(const parsed_t *p, const char *z85, int line, char *err, size_t errlen)
{
    uint8_t bin[KEYS_BIN];
    if (keys_decode(z85, bin) != 0) {
        snprintf(err, errlen, "%s, line %d: '%.60s' is not a key (40 characters of Z85)",
                 p->path, line, z85);
        return -1;
    }
    return 0;
}

/* Parse text (modified in place): comments (#), `name = value` lines of
 * which public-key, secret-key and name count, section names, and bare
 * keys with an optional label.  Returns 0, or -1 with a message. */
static int s_parse(parsed_t *p, char *text, char *err, size_t errlen)
{
    int line = 0;
    for (char *next = text; next;) {
        char *s = next;
        next = strchr(s, '\n');
        if (next)
            *next++ = '\0';
        line++;
        s = s_trim(s);
        /* Z85 has '#' and '=' among its characters: a first word of 40
         * characters is a key before it is anything else ("#KEY", 41
         * characters, is a key commented out). */
        size_t wl = strcspn(s, " \t");
        if (!*s || (*s == '#' && wl != KEYS_Z85))
            continue;
        char *eq = wl == KEYS_Z85 ? NULL : strchr(s, '=');
        if (eq) {
            *eq = '\0';
            char *key = s_trim(s), *val = s_unquote(s_trim(eq + 1));
            if (!strcmp(key, "public-key")) {
                if (s_check_key(p, val, line, err, errlen) != 0 ||
                    p->on_public(p, val, p->name, line, err, errlen) != 0)
                    return -1;
            } else if (!strcmp(key, "secret-key")) {
                if (s_check_key(p, val, line, err, errlen) != 0)
                    return -1;
                snprintf(p->secret, sizeof p->secret, "%s", val);
                p->nsecret++;
            } else if (!strcmp(key, "name") && *val) {
                snprintf(p->name, sizeof p->name, "%s", val);
            }
            continue;
        }
        char *label = s + wl;
        if (*label)
            *label++ = '\0';
        label = s_trim(label);
        if (wl == KEYS_Z85) {
            if (s_check_key(p, s, line, err, errlen) != 0 ||
                p->on_public(p, s, *label ? label : p->name, line, err, errlen) != 0)
                return -1;
        } else if (!s_is_word(s) || *label) {
            snprintf(err, errlen, "%s, line %d: expected a 40-character Z85 key, a "
                     "'name = value' line or a section name", p->path, line);
            return -1;
        }
    }
    return 0;
}

/* The file's base name without dir and .pub/.key: the default label. */
static void s_basename(const char *path, char *out, size_t len)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 4 && (!strcmp(b + n - 4, ".pub") || !strcmp(b + n - 4, ".key")))
        n -= 4;
    snprintf(out, len, "%.*s", (int)n, b);
}

static int s_first_public(parsed_t *p, const char *z85, const char *label, int line,
                          char *err, size_t errlen)
{
    (void)label;
    if (p->npublic++ == 0) {
        snprintf(p->first, sizeof p->first, "%s", z85);
    } else if (strcmp(p->first, z85) != 0) {
        snprintf(err, errlen, "%s, line %d: a second, different public key: a key file holds "
                 "one key", p->path, line);
        return -1;
    }
    return 0;
}

int keys_load_secret(const char *path, keys_pair_t *out, char *err, size_t errlen)
{
    struct stat st;
    char *text = s_slurp(path, KEY_FILE_MAX, &st, err, errlen);
    if (!text)
        return -1;
    int rc = -1;
    parsed_t p = {.path = path, .on_public = s_first_public};
    if (st.st_mode & 077) {
        snprintf(err, errlen, "secret key file %s is open to others (mode %04o): refusing to "
                 "use it; make it private with: chmod 600 %s", path,
                 (unsigned)(st.st_mode & 07777), path);
    } else if (s_parse(&p, text, err, errlen) != 0) {
        /* message set */
    } else if (p.nsecret != 1) {
        snprintf(err, errlen, "%s holds %s secret-key line: a secret key file (NAME.key from "
                 "qclient keygen) has exactly one", path, p.nsecret ? "more than one" : "no");
    } else if (zmq_curve_public(out->public_z85, p.secret) != 0) {
        snprintf(err, errlen, "cannot derive the public key of %s: %s", path,
                 zmq_strerror(errno));
    } else if (p.npublic && strcmp(p.first, out->public_z85) != 0) {
        snprintf(err, errlen, "%s: its public-key line does not belong to its secret key "
                 "(a damaged or hand-edited file: make a new pair with qclient keygen)", path);
    } else {
        snprintf(out->secret_z85, sizeof out->secret_z85, "%s", p.secret);
        rc = 0;
    }
    explicit_bzero(text, strlen(text));
    explicit_bzero(p.secret, sizeof p.secret);
    free(text);
    return rc;
}

int keys_load_public(const char *path, char out[KEYS_Z85 + 1], char *err, size_t errlen)
{
    struct stat st;
    char *text = s_slurp(path, KEY_FILE_MAX, &st, err, errlen);
    if (!text)
        return -1;
    parsed_t p = {.path = path, .on_public = s_first_public};
    int rc = s_parse(&p, text, err, errlen);
    if (rc == 0 && p.npublic == 0) {
        snprintf(err, errlen, "%s holds no public key (expected a public-key = \"...\" line, "
                 "as in NAME.pub from qclient keygen)", path);
        rc = -1;
    }
    if (rc == 0)
        snprintf(out, KEYS_Z85 + 1, "%s", p.first);
    explicit_bzero(text, strlen(text));
    explicit_bzero(p.secret, sizeof p.secret);
    free(text);
    return rc;
}

/* ---- making keys */

int keys_generate(keys_pair_t *out, char *err, size_t errlen)
{
    if (!zmq_has("curve") || zmq_curve_keypair(out->public_z85, out->secret_z85) != 0) {
        snprintf(err, errlen, "cannot make a CURVE key pair: this libzmq was built without "
                 "CURVE (libsodium)");
        return -1;
    }
    return 0;
}

static int s_write_file(const char *path, mode_t mode, const char *text, char *err,
                        size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno == EEXIST)
            snprintf(err, errlen, "%s exists: keys are never replaced (remove it first, or "
                     "choose another name)", path);
        else
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(text), done = 0;
    int rc = fchmod(fd, mode);
    while (rc == 0 && done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            rc = -1;
        else
            done += (size_t)w;
    }
    if (rc == 0)
        rc = fsync(fd);
    if (close(fd) != 0)
        rc = -1;
    if (rc != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(path);
    }
    return rc;
}

int keys_write(const char *base, const char *name, const keys_pair_t *pair, char *err,
               size_t errlen)
{
    char keyp[4096], pubp[4096], label[KEYS_LABEL + 1];
    if ((size_t)snprintf(keyp, sizeof keyp, "%s.key", base) >= sizeof keyp ||
        (size_t)snprintf(pubp, sizeof pubp, "%s.pub", base) >= sizeof pubp) {
        snprintf(err, errlen, "key file name too long: %.64s...", base);
        return -1;
    }
    /* The name goes between quotes on one line. */
    snprintf(label, sizeof label, "%s", name);
    for (char *c = label; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == '"' || *c == '\'' || *c == 0x7f)
            *c = '_';
    char text[1024];
    static const char *const head =
        "#   qjob CURVE %s key for \"%s\", made by qclient keygen\n"
        "#   %s\n"
        "metadata\n"
        "    name = \"%s\"\n"
        "curve\n"
        "    public-key = \"%s\"\n";
    snprintf(text, sizeof text, head, "secret", label,
             "KEEP IT PRIVATE: qjob refuses it unless only its owner can read it (chmod 600)",
             label, pair->public_z85);
    size_t n = strlen(text);
    snprintf(text + n, sizeof text - n, "    secret-key = \"%s\"\n", pair->secret_z85);
    int rc = s_write_file(keyp, 0600, text, err, errlen);
    explicit_bzero(text, sizeof text);
    if (rc != 0)
        return -1;
    snprintf(text, sizeof text, head, "public", label,
             "Give it to the broker's allow list (or, for a broker, to its peers)", label,
             pair->public_z85);
    if (s_write_file(pubp, 0644, text, err, errlen) != 0) {
        unlink(keyp);
        return -1;
    }
    return 0;
}

/* ---- a client's keys */

int keys_client_load(const char *secret_path, const char *broker_path, keys_client_t *out,
                     char *err, size_t errlen)
{
    const char *s = secret_path && *secret_path ? secret_path : getenv(KEYS_ENV_SECRET);
    const char *b = broker_path && *broker_path ? broker_path : getenv(KEYS_ENV_BROKER);
    bool has_s = s && *s, has_b = b && *b;
    if (!has_s && !has_b)
        return 0;
    if (!has_s || !has_b) {
        snprintf(err, errlen, "CURVE needs both our secret key file (--curve-secret or $"
                 KEYS_ENV_SECRET ") and the broker's public key file (--broker-key or $"
                 KEYS_ENV_BROKER "); only the %s was given",
                 has_s ? "secret key" : "broker's key");
        return -1;
    }
    if (keys_load_secret(s, &out->mine, err, errlen) != 0 ||
        keys_load_public(b, out->broker_z85, err, errlen) != 0)
        return -1;
    return 1;
}

int keys_client_apply(void *sock, const keys_client_t *k, char *err, size_t errlen)
{
    if (!zmq_has("curve")) {
        snprintf(err, errlen, "this libzmq has no CURVE: cannot use the key files");
        return -1;
    }
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, k->broker_z85, KEYS_Z85 + 1) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, k->mine.public_z85, KEYS_Z85 + 1) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, k->mine.secret_z85, KEYS_Z85 + 1) != 0) {
        snprintf(err, errlen, "cannot set the CURVE keys on the socket: %s",
                 zmq_strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- allow lists */

keys_list_t *keys_list_new(void)
{
    return calloc(1, sizeof(keys_list_t));
}

void keys_list_destroy(keys_list_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->v);
    free(*self_p);
    *self_p = NULL;
}

static int s_cmp_entry(const void *a, const void *b)
{
    return memcmp(((const keys_entry_t *)a)->bin, ((const keys_entry_t *)b)->bin, KEYS_BIN);
}

static int s_list_add(parsed_t *p, const char *z85, const char *label, int line, char *err,
                      size_t errlen)
{
    (void)line;
    keys_list_t *l = p->arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        keys_entry_t *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            snprintf(err, errlen, "out of memory loading %s", p->path);
            return -1;
        }
        l->v = v;
        l->cap = cap;
    }
    keys_entry_t *e = &l->v[l->n++];
    keys_decode(z85, e->bin);
    snprintf(e->z85, sizeof e->z85, "%s", z85);
    snprintf(e->label, sizeof e->label, "%s", label);
    p->npublic++;
    return 0;
}

/* Refuse a list that others may change: it decides who gets in. */
static int s_check_list_mode(const char *path, const struct stat *st, char *err, size_t errlen)
{
    if (st->st_mode & 022) {
        snprintf(err, errlen, "allow list %s can be changed by others (mode %04o): refusing "
                 "to use it; fix with: chmod go-w %s", path, (unsigned)(st->st_mode & 07777),
                 path);
        return -1;
    }
    return 0;
}

static int s_list_file(keys_list_t *l, const char *path, char *err, size_t errlen)
{
    struct stat st;
    char *text = s_slurp(path, LIST_FILE_MAX, &st, err, errlen);
    if (!text)
        return -1;
    parsed_t p = {.path = path, .on_public = s_list_add, .arg = l};
    s_basename(path, p.name, sizeof p.name);
    int rc = s_check_list_mode(path, &st, err, errlen);
    if (rc == 0)
        rc = s_parse(&p, text, err, errlen);
    if (rc == 0 && p.nsecret) {
        snprintf(err, errlen, "%s holds a secret key: an allow list takes public keys only "
                 "(the NAME.pub file, never NAME.key)", path);
        rc = -1;
    }
    explicit_bzero(text, strlen(text));
    explicit_bzero(p.secret, sizeof p.secret);
    free(text);
    return rc;
}

static int s_list_dir(keys_list_t *l, const char *path, char *err, size_t errlen)
{
    DIR *d = opendir(path);
    if (!d) {
        snprintf(err, errlen, "cannot read the allow-list directory %s: %s", path,
                 strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || n <= 4 || strcmp(e->d_name + n - 4, ".pub") != 0)
            continue;
        char file[4096];
        if ((size_t)snprintf(file, sizeof file, "%s/%s", path, e->d_name) >= sizeof file) {
            snprintf(err, errlen, "path too long in %s: %.64s", path, e->d_name);
            rc = -1;
        } else {
            rc = s_list_file(l, file, err, errlen);
        }
    }
    closedir(d);
    return rc;
}

int keys_list_load(keys_list_t *l, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "cannot read the allow list %s: %s", path, strerror(errno));
        return -1;
    }
    size_t before = l->n;
    int rc = s_check_list_mode(path, &st, err, errlen);
    if (rc == 0)
        rc = S_ISDIR(st.st_mode) ? s_list_dir(l, path, err, errlen)
                                 : s_list_file(l, path, err, errlen);
    /* Sorted for bsearch; a key listed twice is kept once. */
    if (l->n)
        qsort(l->v, l->n, sizeof *l->v, s_cmp_entry);
    size_t w = 0;
    for (size_t r = 0; r < l->n; r++)
        if (w == 0 || memcmp(l->v[w - 1].bin, l->v[r].bin, KEYS_BIN) != 0)
            l->v[w++] = l->v[r];
    size_t added = w > before ? w - before : 0;
    l->n = w;
    return rc == 0 ? (int)added : -1;
}

const char *keys_list_find(const keys_list_t *l, const uint8_t key[KEYS_BIN],
                           const char **label)
{
    keys_entry_t probe;
    memcpy(probe.bin, key, KEYS_BIN);
    const keys_entry_t *e = l->n ? bsearch(&probe, l->v, l->n, sizeof *l->v, s_cmp_entry)
                                 : NULL;
    if (!e)
        return NULL;
    if (label)
        *label = e->label;
    return e->z85;
}

size_t keys_list_count(const keys_list_t *l)
{
    return l->n;
}

const char *keys_list_at(const keys_list_t *l, size_t i)
{
    return i < l->n ? l->v[i].z85 : NULL;
}
