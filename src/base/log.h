/* SPDX-License-Identifier: MIT */
/* Human-facing progress and warnings on stderr; stdout stays for the
 * machine-readable outputs of DESIGN.md. WHALE_QUIET=1 silences info. */
#ifndef WHALE_LOG_H
#define WHALE_LOG_H

/* 1 when WHALE_QUIET silences info (progress lines should follow it). */
int log_quiet(void);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Seconds since an arbitrary fixed point (monotonic clock). */
double time_now(void);

#endif
