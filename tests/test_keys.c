/* test_keys.c -- key files and allow lists (common/keys.c), on real files
 * in a temp dir. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "keys.h"

static char s_dir[64];

static int s_setup(void **state)
{
    (void)state;
    strcpy(s_dir, "/tmp/test_keys.XXXXXX");
    return mkdtemp(s_dir) ? 0 : -1;
}

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int s_teardown(void **state)
{
    (void)state;
    return nftw(s_dir, s_rm, 8, FTW_DEPTH | FTW_PHYS);
}

static const char *s_path(const char *name)
{
    static char buf[4][256];
    static int n;
    char *p = buf[n++ % 4];
    snprintf(p, 256, "%s/%s", s_dir, name);
    return p;
}

static void s_write(const char *name, mode_t mode, const char *text)
{
    FILE *f = fopen(s_path(name), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(s_path(name), mode), 0);
}

static mode_t s_mode(const char *name)
{
    struct stat st;
    assert_int_equal(stat(s_path(name), &st), 0);
    return st.st_mode & 07777;
}

/* ---- key pairs */

static void test_generate_write_load(void **state)
{
    (void)state;
    keys_pair_t pair, back;
    char err[512], pub[KEYS_Z85 + 1];
    assert_int_equal(keys_generate(&pair, err, sizeof err), 0);
    assert_int_equal(strlen(pair.public_z85), KEYS_Z85);
    assert_int_equal(keys_write(s_path("alice"), "al\"ice", &pair, err, sizeof err), 0);
    assert_int_equal(s_mode("alice.key"), 0600);
    assert_int_equal(s_mode("alice.pub"), 0644);
    assert_int_equal(keys_load_secret(s_path("alice.key"), &back, err, sizeof err), 0);
    assert_string_equal(back.public_z85, pair.public_z85);
    assert_string_equal(back.secret_z85, pair.secret_z85);
    assert_int_equal(keys_load_public(s_path("alice.pub"), pub, err, sizeof err), 0);
    assert_string_equal(pub, pair.public_z85);
    /* a secret key file has the public key too */
    assert_int_equal(keys_load_public(s_path("alice.key"), pub, err, sizeof err), 0);
    assert_string_equal(pub, pair.public_z85);
    /* a public file is not a secret one */
    assert_int_equal(keys_load_secret(s_path("alice.pub"), &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "chmod 600"));
    assert_int_equal(chmod(s_path("alice.pub"), 0600), 0);
    assert_int_equal(keys_load_secret(s_path("alice.pub"), &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "no secret-key line"));
    /* never replaced, and nothing left behind */
    keys_pair_t other;
    assert_int_equal(keys_generate(&other, err, sizeof err), 0);
    assert_int_equal(keys_write(s_path("alice"), "alice", &other, err, sizeof err), -1);
    assert_non_null(strstr(err, "exists"));
    assert_int_equal(keys_load_secret(s_path("alice.key"), &back, err, sizeof err), 0);
    assert_string_equal(back.public_z85, pair.public_z85);
    s_write("bob.pub", 0644, "taken\n");
    assert_int_equal(keys_write(s_path("bob"), "bob", &other, err, sizeof err), -1);
    assert_int_equal(access(s_path("bob.key"), F_OK), -1);
}

static void test_secret_permissions(void **state)
{
    (void)state;
    keys_pair_t pair, back;
    char err[512];
    assert_int_equal(keys_generate(&pair, err, sizeof err), 0);
    assert_int_equal(keys_write(s_path("loose"), "loose", &pair, err, sizeof err), 0);
    static const mode_t bad[] = {0640, 0604, 0644, 0660, 0602};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(chmod(s_path("loose.key"), bad[i]), 0);
        assert_int_equal(keys_load_secret(s_path("loose.key"), &back, err, sizeof err), -1);
        assert_non_null(strstr(err, "chmod 600"));
    }
    assert_int_equal(chmod(s_path("loose.key"), 0400), 0);
    assert_int_equal(keys_load_secret(s_path("loose.key"), &back, err, sizeof err), 0);
    assert_int_equal(keys_load_secret(s_path("missing.key"), &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open"));
}

static void test_secret_content(void **state)
{
    (void)state;
    keys_pair_t a, b, back;
    char err[512], text[512];
    assert_int_equal(keys_generate(&a, err, sizeof err), 0);
    assert_int_equal(keys_generate(&b, err, sizeof err), 0);
    /* CZMQ's layout, with single quotes and no metadata */
    snprintf(text, sizeof text, "#   ZeroMQ CURVE **Secret** Certificate\n\ncurve\n"
             "    public-key = '%s'\n    secret-key = '%s'\n", a.public_z85, a.secret_z85);
    s_write("czmq_secret", 0600, text);
    assert_int_equal(keys_load_secret(s_path("czmq_secret"), &back, err, sizeof err), 0);
    assert_string_equal(back.public_z85, a.public_z85);
    /* a public key that is not the secret's */
    snprintf(text, sizeof text, "curve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n",
             b.public_z85, a.secret_z85);
    s_write("mixed.key", 0600, text);
    assert_int_equal(keys_load_secret(s_path("mixed.key"), &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "does not belong"));
    /* two secrets */
    snprintf(text, sizeof text, "secret-key = \"%s\"\nsecret-key = \"%s\"\n", a.secret_z85,
             b.secret_z85);
    s_write("two.key", 0600, text);
    assert_int_equal(keys_load_secret(s_path("two.key"), &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "more than one"));
    /* a damaged key names its line */
    s_write("bad.key", 0600, "curve\n    secret-key = \"tooshort\"\n");
    assert_int_equal(keys_load_secret(s_path("bad.key"), &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 2"));
    s_write("junk.key", 0600, "this is not a key file\n");
    assert_int_equal(keys_load_secret(s_path("junk.key"), &back, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 1"));
}

static void test_public_forms(void **state)
{
    (void)state;
    char err[512], pub[KEYS_Z85 + 1], text[256];
    /* Z85 has '=' and '#': a key may start with '=' (4 bytes of 66 * 85^4) */
    uint8_t bin[KEYS_BIN] = {0};
    uint32_t v = 66u * 85 * 85 * 85 * 85;
    bin[0] = (uint8_t)(v >> 24), bin[1] = (uint8_t)(v >> 16), bin[2] = (uint8_t)(v >> 8);
    bin[3] = (uint8_t)v;
    char z85[KEYS_Z85 + 1];
    keys_encode(bin, z85);
    assert_int_equal(z85[0], '=');
    snprintf(text, sizeof text, "# a bare key\n%s  the label\n", z85);
    s_write("bare.pub", 0644, text);
    assert_int_equal(keys_load_public(s_path("bare.pub"), pub, err, sizeof err), 0);
    assert_string_equal(pub, z85);
    uint8_t back[KEYS_BIN];
    assert_int_equal(keys_decode(pub, back), 0);
    assert_memory_equal(back, bin, KEYS_BIN);
    assert_int_equal(keys_decode("short", back), -1);
    assert_int_equal(keys_decode("\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"",
                                 back), -1);
    s_write("empty.pub", 0644, "# nothing\nmetadata\n");
    assert_int_equal(keys_load_public(s_path("empty.pub"), pub, err, sizeof err), -1);
    assert_non_null(strstr(err, "no public key"));
}

/* ---- a client's keys */

static void test_client_load(void **state)
{
    (void)state;
    keys_pair_t pair;
    keys_client_t k;
    char err[512];
    unsetenv(KEYS_ENV_SECRET);
    unsetenv(KEYS_ENV_BROKER);
    assert_int_equal(keys_client_load(NULL, NULL, &k, err, sizeof err), 0);
    assert_int_equal(keys_generate(&pair, err, sizeof err), 0);
    assert_int_equal(keys_write(s_path("me"), "me", &pair, err, sizeof err), 0);
    assert_int_equal(keys_write(s_path("broker"), "broker", &pair, err, sizeof err), 0);
    assert_int_equal(keys_client_load(s_path("me.key"), NULL, &k, err, sizeof err), -1);
    assert_non_null(strstr(err, "only the secret key"));
    assert_int_equal(keys_client_load(s_path("me.key"), s_path("broker.pub"), &k, err, sizeof err),
                     1);
    assert_string_equal(k.mine.public_z85, pair.public_z85);
    assert_string_equal(k.broker_z85, pair.public_z85);
    setenv(KEYS_ENV_SECRET, s_path("me.key"), 1);
    setenv(KEYS_ENV_BROKER, s_path("broker.pub"), 1);
    memset(&k, 0, sizeof k);
    assert_int_equal(keys_client_load(NULL, NULL, &k, err, sizeof err), 1);
    assert_string_equal(k.mine.secret_z85, pair.secret_z85);
    unsetenv(KEYS_ENV_SECRET);
    assert_int_equal(keys_client_load(NULL, NULL, &k, err, sizeof err), -1);
    assert_non_null(strstr(err, "only the broker's key"));
    unsetenv(KEYS_ENV_BROKER);
    /* applied to a socket, it talks to a CURVE server */
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    assert_int_equal(keys_client_apply(s, &k, err, sizeof err), 0);
    char got[KEYS_Z85 + 1];
    size_t len = sizeof got;
    assert_int_equal(zmq_getsockopt(s, ZMQ_CURVE_SERVERKEY, got, &len), 0);
    assert_string_equal(got, pair.public_z85);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

/* ---- allow lists */

static void test_list_file(void **state)
{
    (void)state;
    keys_pair_t a, b, c;
    char err[512], text[1024];
    assert_int_equal(keys_generate(&a, err, sizeof err), 0);
    assert_int_equal(keys_generate(&b, err, sizeof err), 0);
    assert_int_equal(keys_generate(&c, err, sizeof err), 0);
    snprintf(text, sizeof text, "# clients\n%s alice\n\n  %s\n#%s  (retired)\n%s again\n",
             a.public_z85, b.public_z85, c.public_z85, a.public_z85);
    s_write("clients", 0644, text);
    keys_list_t *l = keys_list_new();
    assert_int_equal(keys_list_load(l, s_path("clients"), err, sizeof err), 2);
    assert_int_equal(keys_list_count(l), 2);
    uint8_t bin[KEYS_BIN];
    const char *label;
    keys_decode(a.public_z85, bin);
    const char *z = keys_list_find(l, bin, &label);
    assert_non_null(z);
    assert_string_equal(z, a.public_z85);
    assert_true(!strcmp(label, "alice") || !strcmp(label, "again"));
    keys_decode(b.public_z85, bin);
    assert_non_null(keys_list_find(l, bin, &label));
    assert_string_equal(label, "clients");   /* no label: the file's name */
    keys_decode(c.public_z85, bin);
    assert_null(keys_list_find(l, bin, NULL));   /* commented out */
    /* others may not change it; a secret key has no place in it */
    assert_int_equal(chmod(s_path("clients"), 0664), 0);
    assert_int_equal(keys_list_load(l, s_path("clients"), err, sizeof err), -1);
    assert_non_null(strstr(err, "chmod go-w"));
    assert_int_equal(keys_write(s_path("sec"), "sec", &c, err, sizeof err), 0);
    assert_int_equal(keys_list_load(l, s_path("sec.key"), err, sizeof err), -1);
    assert_non_null(strstr(err, "public keys only"));
    s_write("garbage", 0644, "hello world\n");
    assert_int_equal(keys_list_load(l, s_path("garbage"), err, sizeof err), -1);
    assert_non_null(strstr(err, "line 1"));
    keys_list_destroy(&l);
    keys_list_destroy(&l);
    assert_null(l);
}

static void test_list_dir(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(mkdir(s_path("workers"), 0755), 0);
    keys_pair_t w[3];
    const char *names[3] = {"workers/w1", "workers/w2", "workers/w3"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(keys_generate(&w[i], err, sizeof err), 0);
        assert_int_equal(keys_write(s_path(names[i]), names[i] + 8, &w[i], err, sizeof err), 0);
    }
    s_write("workers/README", 0644, "not read: only *.pub files are\n");
    keys_list_t *l = keys_list_new();
    /* the .key files beside them are skipped: only NAME.pub counts */
    assert_int_equal(keys_list_load(l, s_path("workers"), err, sizeof err), 3);
    uint8_t bin[KEYS_BIN];
    const char *label;
    keys_decode(w[1].public_z85, bin);
    assert_non_null(keys_list_find(l, bin, &label));
    assert_string_equal(label, "w2");
    assert_int_equal(chmod(s_path("workers"), 0777), 0);
    assert_int_equal(keys_list_load(l, s_path("workers"), err, sizeof err), -1);
    assert_non_null(strstr(err, "can be changed by others"));
    assert_int_equal(chmod(s_path("workers"), 0755), 0);
    assert_int_equal(keys_list_load(l, s_path("nowhere"), err, sizeof err), -1);
    keys_list_destroy(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_write_load),
        cmocka_unit_test(test_secret_permissions),
        cmocka_unit_test(test_secret_content),
        cmocka_unit_test(test_public_forms),
        cmocka_unit_test(test_client_load),
        cmocka_unit_test(test_list_file),
        cmocka_unit_test(test_list_dir),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
