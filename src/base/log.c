/* SPDX-License-Identifier: MIT */
/* stderr logging and a monotonic clock (see log.h). */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int g_rank;
static char g_prefix[32];

void log_set_rank(int r) {
    g_rank = r;
    snprintf(g_prefix, sizeof g_prefix, "rank %d: ", r);
}

const char *log_prefix(void) { return g_prefix; }

int log_quiet(void) {
    const char *q = getenv("WHALE_QUIET");
    return g_rank > 0 || (q && *q && *q != '0');
}

void log_info(const char *fmt, ...) {
    if (log_quiet()) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void log_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%swarning: ", g_prefix);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

double time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
