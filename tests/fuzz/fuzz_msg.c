/* fuzz_msg.c -- libFuzzer target for every decoder of untrusted bytes:
 * msg_decode (frames), mpck_check (the pre-check), msg_value_decode and
 * mpjson (job args / results shown as JSON).
 *
 * Besides "no crash, no sanitizer report", it checks properties:
 *  - whatever mpck accepts, msgpack-c unpacks in full (the pre-check is
 *    never more lenient than the decoder it guards);
 *  - msg_decode, which checks the bytes as it walks them, never accepts a
 *    body mpck refuses (the walk is the pre-check: it may not be more
 *    lenient);
 *  - a frame msg_decode accepts re-encodes, and re-encoding is stable:
 *    encode(decode(encode(decode(x)))) == encode(decode(x)).
 *
 * Build: CC=clang meson setup build-fuzz -Dfuzz=true && ninja -C build-fuzz tests/fuzz/fuzz_msg
 * Run:   build-fuzz/tests/fuzz/fuzz_msg -dict=tests/fuzz/msg.dict WORKDIR tests/fuzz/corpus_msg
 * Seeds: QJ_FUZZ_EXPECT_VALID=1 build-fuzz/tests/fuzz/fuzz_msg -runs=0 tests/fuzz/corpus_msg
 *        aborts on the first seed that does not decode (they are all valid).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpck.h"
#include "mpjson.h"
#include "msg.h"

static void s_die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_msg: %s: %s\n", what, detail);
    abort();
}

/* mpck accepts => msgpack-c unpacks exactly len bytes. */
static void s_check_precheck(const uint8_t *data, size_t len)
{
    char err[256];
    if (mpck_check(data, len, &mpck_default_limits, err, sizeof err) != 0) return;
    msgpack_zone zone;
    msgpack_object o;
    size_t off = 0;
    if (!msgpack_zone_init(&zone, 4096)) return;
    if (msgpack_unpack((const char *)data, len, &off, &zone, &o) != MSGPACK_UNPACK_SUCCESS || off != len)
        s_die("mpck accepted what msgpack-c refuses", "see input");
    msgpack_zone_destroy(&zone);
}

/* Values carried in bins: decode them as a worker / client would. */
static void s_check_value(msg_reader_t *r, msg_bytes_t b)
{
    char err[256];
    msgpack_object o;
    if (msg_value_decode(r, b, &o, err, sizeof err) != 0) return;
    json_t *j = mpjson_from_object(&o);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static msg_reader_t *r1, *r2;
    static msgpack_sbuffer sb1, sb2;
    static int expect_valid = -1;
    char err[512];
    if (!r1 && (!(r1 = msg_reader_new()) || !(r2 = msg_reader_new()))) abort();
    if (expect_valid < 0) expect_valid = getenv("QJ_FUZZ_EXPECT_VALID") != NULL;

    s_check_precheck(data, size);
    json_t *j = mpjson_to_json(data, size, err, sizeof err);
    json_decref(j);
    if (size > MSG_HEADER_LEN) s_check_precheck(data + MSG_HEADER_LEN, size - MSG_HEADER_LEN);

    msg_t m, m2;
    if (msg_decode(r1, data, size, &m, err, sizeof err) != QJ_E_OK) {
        if (expect_valid && size > 0) s_die("seed does not decode", err); /* libFuzzer also runs "" */
        return 0;
    }
    if (mpck_check(data + MSG_HEADER_LEN, size - MSG_HEADER_LEN, &mpck_default_limits, err,
                   sizeof err) != 0)
        s_die("msg_decode accepted a body mpck refuses", err);
    for (uint32_t i = 0; i < m.njobs; i++) s_check_value(r1, m.jobs[i].args);
    for (uint32_t i = 0; i < m.nresults; i++) s_check_value(r1, m.results[i].value);

    if (msg_encode(&sb1, &m, err, sizeof err) != 0) s_die("decoded message does not re-encode", err);
    if (msg_decode(r2, sb1.data, sb1.size, &m2, err, sizeof err) != QJ_E_OK)
        s_die("re-encoded message does not decode", err);
    if (msg_encode(&sb2, &m2, err, sizeof err) != 0) s_die("second re-encode failed", err);
    if (sb1.size != sb2.size || memcmp(sb1.data, sb2.data, sb1.size) != 0)
        s_die("re-encoding is not stable", msg_cmd_name(m.cmd));
    return 0;
}
