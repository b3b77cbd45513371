/* bench_proc.h -- the programs qclient bench starts for a self-contained
 * run (qbroker, qworker, qfwd): found next to qclient, started with their
 * output in a log file, stopped by pid.
 *
 * A started program is in its own process group (a ^C at the terminal
 * reaches qclient only, which then stops it in order) and gets SIGTERM if
 * qclient dies without stopping it.
 */
#ifndef QJ_BENCH_PROC_H
#define QJ_BENCH_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct bench_proc bench_proc_t;

/* The program to run for name: ../server/name from the directory of the
 * running executable if it is there (the build tree), else name itself
 * (searched on PATH when started).  Writes it to out. */
void bench_proc_find(const char *name, char *out, size_t len);

/* Start argv (argv[0] as bench_proc_find gave it; NULL-terminated) with
 * stdin from /dev/null and stdout and stderr appended to logpath.  Returns
 * the process, or NULL with a message if it could not be started (fork
 * failed, the program is not there or not executable). */
bench_proc_t *bench_proc_start(char *const argv[], const char *logpath, char *err,
                               size_t errlen);

pid_t bench_proc_pid(const bench_proc_t *p);

/* CPU time it has used so far (user + system, all its threads), in
 * seconds; -1 if it cannot be read (it has exited). */
double bench_proc_cpu(const bench_proc_t *p);

/* Is it still running?  (Reaps it if it has exited.) */
bool bench_proc_alive(bench_proc_t *p);

/* Wait until the program has written a line to path (an --endpoint-file)
 * and copy that first line to out.  Returns 0, or -1 with a message if
 * the program exited first or timeout_ms ran out (see its log). */
int bench_proc_endpoint(bench_proc_t *p, const char *path, int timeout_ms, char *out,
                        size_t len, char *err, size_t errlen);

/* Stop it: SIGTERM, up to timeout_ms for it to exit, then SIGKILL; reap
 * it and free p.  Safe on NULL and twice. */
void bench_proc_stop(bench_proc_t **self_p, int timeout_ms);

/* On SIGINT or SIGTERM, send SIGTERM to every program still started, then
 * die of the signal as usual.  Call once. */
void bench_proc_stop_on_signal(void);

#endif
