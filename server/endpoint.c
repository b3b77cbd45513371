/* endpoint.c -- which addresses may be bound; the endpoint file (endpoint.h). */
#include "endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

bool endpoint_loopback(const char *host)
{
    struct in_addr a4;
    return !strcmp(host, "localhost") || !strcmp(host, "::1") ||
           (inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127);
}

int endpoint_check_bind(const char *ep, bool open, char *err, size_t errlen)
{
    if (!strncmp(ep, "ipc://", 6) || !strncmp(ep, "inproc://", 9) || open)
        return 0;
    const char *hint = "only tcp on a loopback address (127.0.0.1, ::1, localhost) and ipc:// "
                       "are allowed without authentication: turn CURVE on (--curve-secret with "
                       "--clients-allow / --workers-allow), or add --insecure to bind it anyway";
    if (strncmp(ep, "tcp://", 6) != 0) {
        snprintf(err, errlen, "refusing to bind %s: %s", ep, hint);
        return -1;
    }
    const char *host = ep + 6, *colon = strrchr(host, ':');
    char name[256];
    size_t len = colon ? (size_t)(colon - host) : strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len < sizeof name) {
        memcpy(name, host, len);
        name[len] = '\0';
        if (endpoint_loopback(name))
            return 0;
    }
    snprintf(err, errlen, "refusing to bind %s: %s", ep, hint);
    return -1;
}

int endpoint_write_file(const char *path, const char *what, const char *const *lines, int n,
                        char *err, size_t errlen)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write the %s %s: %s", what, tmp, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++)
        fprintf(f, "%s\n", lines[i]);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write the %s %s: %s", what, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
