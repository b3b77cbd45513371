/* example_gather -- submit 100 echo jobs, gather them, check each value.
 *
 *   example_gather [BROKER_ENDPOINT]     (default $QJOB_BROKER, then the
 *                                         library's default endpoint)
 *
 * Shows the basic client pattern: connect, submit a batch (the library
 * packs the submits into a few messages), wait for all with a timeout,
 * read each result.  Exits 0 only if all 100 jobs came back with their
 * own arguments ({"i": n}).
 */
#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qjob.h"

#define N_JOBS 100
#define TIMEOUT_MS 30000

/* Is the msgpack value {"i": n}? */
static int s_check(const void *data, size_t len, int n)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int ok = 0;
    if (data && msgpack_unpack_next(&u, data, len, NULL) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP && u.data.via.map.size == 1) {
        const msgpack_object_kv *kv = &u.data.via.map.ptr[0];
        ok = kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 1 &&
             kv->key.via.str.ptr[0] == 'i' && kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
             kv->val.via.u64 == (uint64_t)n;
    }
    msgpack_unpacked_destroy(&u);
    return ok;
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    qj_options o;
    qj_options_init(&o);
    o.broker = argc > 1 ? argv[1] : NULL;
    char err[256];
    qj_client *c = qj_client_new(&o, err, sizeof err);
    if (!c) {
        fprintf(stderr, "example_gather: %s\n", err);
        return 2;
    }

    double t0 = s_now();
    qj_job *jobs[N_JOBS];
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    for (int n = 0; n < N_JOBS; n++) {
        msgpack_packer pk;
        buf.size = 0;
        msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str_with_body(&pk, "i", 1);
        msgpack_pack_int(&pk, n);
        jobs[n] = qj_submit(c, "echo", buf.data, buf.size, NULL, err, sizeof err);
        if (!jobs[n]) {
            fprintf(stderr, "example_gather: submit %d: %s\n", n, err);
            return 2;
        }
    }
    msgpack_sbuffer_destroy(&buf);

    int all_done = qj_gather(jobs, N_JOBS, TIMEOUT_MS) == 0;
    int right = 0;
    for (int n = 0; n < N_JOBS; n++) {
        size_t len;
        const void *v = qj_job_value(jobs[n], &len);
        if (qj_job_status(jobs[n]) == QJ_OK && s_check(v, len, n)) {
            right++;
        } else {
            char *json = qj_job_value_json(jobs[n]);
            const char *e = qj_job_error(jobs[n]);
            fprintf(stderr, "example_gather: job %d (id %" PRIu64 "): %s%s%s, value %s\n", n,
                    qj_job_id(jobs[n]), qj_status_name(qj_job_status(jobs[n])), e ? ": " : "",
                    e ? e : "", json ? json : "(none)");
            free(json);
        }
        qj_job_free(&jobs[n]);
    }
    qj_client_destroy(&c);
    printf("example_gather: %d/%d echo jobs came back right in %.3f s%s\n", right, N_JOBS,
           s_now() - t0, all_done ? "" : " (gather timed out)");
    return right == N_JOBS ? 0 : 1;
}
