/* exectask.h -- the `exec` task: run a command line, return what it did.
 *
 *   exec  {"argv": ["cmd", "arg", ...], "timeout_ms": N, "max_output": B}
 *
 * Runs argv[0] (looked up in PATH) with those arguments -- no shell, so
 * nothing in them is interpreted -- with stdin from /dev/null, in a
 * process group of its own.  Its stdout and stderr are captured, B bytes
 * of each at most (default 64 KiB, at most 500 KiB), the rest read and
 * dropped.  After N ms (default 60000) the group is killed (SIGKILL).
 * Returns {"exit": status or nil, "signal": number or nil, "stdout": text,
 * "stderr": text, "truncated": bool, "timed_out": bool}; bytes that are
 * not UTF-8 come back as '?'.  A command that runs and fails is a
 * successful job with a non-zero "exit"; one that cannot be started fails
 * the job.  When the command exits, what is left of its process group is
 * killed too.
 *
 * The task polls the child between qj_sleep calls, so the other jobs of
 * the worker process run meanwhile; a cancel kills the group at once.
 *
 * Anyone who may submit jobs may run any command as the worker's user:
 * qworker registers it only with --allow-exec.
 */
#ifndef QJ_EXECTASK_H
#define QJ_EXECTASK_H

#include "qjob.h"

#define EXECTASK_NAME "exec"

/* Register the exec task.  Returns 0, or -1 (qj_registry_error says why). */
int exectask_register(qj_registry *reg);

#endif
