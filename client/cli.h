/* cli.h -- what qclient's commands share: the global options, the exit
 * codes (the CLI contract: qclient --help lists them), and helpers to
 * connect and to print jobs. */
#ifndef QJ_CLI_H
#define QJ_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "qjob.h"

/* Exit codes.  Part of the CLI contract: scripts and tests rely on them. */
enum {
    CLI_OK = 0,
    CLI_FAILED = 1,        /* the job failed (error or lost) */
    CLI_USAGE = 2,         /* bad option, bad JSON */
    CLI_TIMEOUT = 3,       /* --timeout ran out while waiting */
    CLI_UNREACHABLE = 4,   /* no WELCOME within --connect-timeout */
    CLI_REFUSED = 5,       /* the broker refused (queue full, limit, denied) */
    CLI_CANCELLED = 6,
    CLI_JOB_TIMEOUT = 7,   /* the job ran past its own timeout */
    CLI_UNKNOWN = 8,       /* no such job id */
};

/* Global options (they may come before or after the command). */
typedef struct cli {
    const char *broker;    /* NULL = $QJOB_BROKER or the default */
    bool json;             /* full JSON output */
    double timeout_s;      /* < 0: wait for ever */
    double connect_s;      /* WELCOME must come within this */
    uint64_t deadline_ms;  /* monotonic; 0 = none (set by cli_connect) */
    const char *curve_secret; /* --curve-secret; NULL = $QJOB_CURVE_SECRET or no CURVE */
    const char *broker_key;   /* --broker-key; NULL = $QJOB_BROKER_KEY */
} cli_t;

/* How a command's submits are shaped (submit and map). */
typedef struct cli_submit {
    qj_submit_opts so;
    int batch;             /* map --batch */
    int inflight;          /* map --inflight */
    bool ordered;          /* map --ordered */
} cli_submit_t;

/* Connect with these client options (NULL = defaults) and wait for the
 * broker's WELCOME.  On failure prints why and exits 2 (bad endpoint) or
 * 4 (unreachable).  Starts the --timeout clock. */
qj_client *cli_connect(cli_t *cli, qj_options *o);

/* Milliseconds left before --timeout, -1 if there is no timeout. */
int cli_left_ms(const cli_t *cli);

/* The exit code a job's final status stands for. */
int cli_exit_for(qj_status st);

/* Print "qclient: " + message on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A finished job as one JSON object line on out: id, status, value,
 * error; with full, attempts, worker and times too; extra (or NULL) is
 * added first ("line" in map). */
void cli_print_job(FILE *out, const qj_job *j, bool full, const char *extra_key,
                   uint64_t extra_val);

/* A job's value as one JSON line ("null" if it has none). */
void cli_print_value(FILE *out, const qj_job *j);

/* Say on stderr why a job did not end ok. */
void cli_report_failure(const qj_job *j, const char *what);

/* Turn mpjson's "line L, column C: what" for one line of input into a
 * message naming the input line. */
void cli_bad_json(uint64_t line, const char *why);

/* map TASK: argv holds what follows the command name. */
int cli_map(cli_t *cli, const char *task, const cli_submit_t *cs);

#endif
