/* SPDX-License-Identifier: MIT */
/* Human-facing progress and warnings on stderr; stdout stays for the
 * machine-readable outputs of DESIGN.md. WHALE_QUIET=1 silences info. */
#ifndef WHALE_LOG_H
#define WHALE_LOG_H

/* 1 when WHALE_QUIET silences info (progress lines should follow it), or
 * when this process is not the first rank of a multi-process job. */
int log_quiet(void);
/* Rank r of a multi-process job (train/comm.h): warnings and errors get a
 * "rank r: " prefix, and info is silenced on every rank but 0, so a job
 * prints one progress stream. */
void log_set_rank(int r);
/* "" or "rank r: ", for messages printed outside log_warn (cli_fail). */
const char *log_prefix(void);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Seconds since an arbitrary fixed point (monotonic clock). */
double time_now(void);

#endif
