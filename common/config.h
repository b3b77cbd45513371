/* config.h -- the configuration file of qbroker and qworker.
 *
 * An INI file (read with inih) whose entries are the programs' long
 * options without their dashes:
 *
 *     [qjob]                 ; read by every program: options they share
 *     log-level = info
 *     [qbroker]
 *     bind = tcp://10.0.0.5:5555
 *     bind = ipc:///run/qjob/broker.sock   ; repeatable options repeat
 *     insecure = yes         ; a flag: yes/no, true/false, on/off, 1/0
 *     [qworker]
 *     broker = tcp://10.0.0.5:5555
 *
 * The file is turned into command-line options: cfg_apply() builds a new
 * argv with one `--key=value` per entry right after argv[0], so the
 * program's plain getopt_long loop sees the file first and the command
 * line after it.  An option the command line gives replaces every value
 * the file gives for it (for a repeatable option such as --bind, the
 * file's values are dropped, not added to); likewise an option in the
 * program's own section replaces the [qjob] section's values for it.
 * Values are checked by the program, as if typed on the command line.
 *
 * Which file: `--config FILE` on the command line (taken out of argv),
 * else $QJOB_CONFIG, else the caller's default; an empty name means none.
 * Only long options are recognised on the command line (qjob's programs
 * have no short ones). */
#ifndef QJ_CONFIG_H
#define QJ_CONFIG_H

#include <getopt.h>
#include <stddef.h>

/* Read the configuration file for the program whose section is `section`
 * ("qbroker", "qworker") and put its entries in front of the command line.
 *
 * `opts` is the program's getopt_long table (ended by a zeroed entry);
 * every key in [qjob] and [section] must be one of its names, other than
 * help, version and config.  `path` is the file read when neither
 * --config nor $QJOB_CONFIG names one; NULL for none, and it is skipped
 * if it does not exist (a file named by --config or $QJOB_CONFIG must).
 *
 * On success returns 0 and, if a file was read or --config was given,
 * points *argc and *argv at the new argument vector.  It lives until the
 * program exits (this module holds it, as the real argv is held: getopt's
 * optarg points into it); a later call releases the previous one.
 * On error returns -1, leaves *argc and *argv alone and writes into err a
 * message naming the file, the line and the key at fault. */
int cfg_apply(const char *path, const char *section, const struct option *opts,
              int *argc, char ***argv, char *err, size_t errlen);

/* For a program's main: cfg_apply(NULL, section, ...); on error prints
 * "SECTION: message" on stderr and exits 2 (a usage error). */
void cfg_apply_or_exit(const char *section, const struct option *opts,
                       int *argc, char ***argv);

#endif
