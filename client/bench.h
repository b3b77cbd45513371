/* bench.h -- qclient bench: measure a qjob broker and its workers.
 *
 *   qclient [GLOBAL OPTIONS] bench MODE [OPTIONS]
 *
 * Modes: split, batch, latency, throughput, baseline (qclient bench
 * --help says what each measures).  Figures go to stdout as tables, or as
 * JSON with --json, and to --csv / --svg files; a progress line goes to
 * stderr when it is a terminal.  With --spawn the run starts its own
 * broker and workers on 127.0.0.1 and stops them at the end.
 */
#ifndef QJ_BENCH_H
#define QJ_BENCH_H

/* The whole command.  argv is qclient's own (argv[0] the program, the
 * word "bench" among the rest, global options before or after it).
 * Returns qclient's exit code (cli.h): 0 ok, 1 a run failed, 2 usage, 3 a
 * run ran out of time (--timeout), 4 the broker did not answer. */
int bench_main(int argc, char **argv);

#endif
