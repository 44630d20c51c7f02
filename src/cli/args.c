/* SPDX-License-Identifier: MIT */
/* Table-driven flag parsing (see args.h). */
#include "cli/args.h"

#include "base/log.h"
#include "base/threads.h"
#include "kernels/gemm.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_fail(const char *cmd, const char *fmt, ...) {
    fprintf(stderr, "%swhale %s: ", log_prefix(), cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

static void print_help(const char *cmd, const char *usage, const ArgSpec *s, int n) {
    printf("usage: whale %s %s\n\n", cmd, usage);
    for (int i = 0; i < n; i++) {
        char left[64];
        const char *val = s[i].type == ARG_FLAG ? "" : s[i].type == ARG_INT ? " N"
                          : s[i].type == ARG_FLOAT ? " X" : " S";
        if (s[i].short_name)
            snprintf(left, sizeof left, "-%c, --%s%s", s[i].short_name, s[i].name, val);
        else snprintf(left, sizeof left, "    --%s%s", s[i].name, val);
        printf("  %-26s %s\n", left, s[i].help);
    }
    printf("  %-26s %s\n", "-h, --help", "print this help");
}

static int parse_value(const char *cmd, const ArgSpec *s, const char *v) {
    char *end;
    errno = 0;
    switch (s->type) {
    case ARG_INT: {
        long x = strtol(v, &end, 10);
        if (!*v || *end || errno || x < INT_MIN || x > INT_MAX)
            return cli_fail(cmd, "--%s expects an integer, got '%s'", s->name, v), -1;
        *(int *)s->dst = (int)x;
        return 0;
    }
    case ARG_FLOAT: {
        float x = strtof(v, &end);
        if (!*v || *end || errno || !isfinite(x))
            return cli_fail(cmd, "--%s expects a number, got '%s'", s->name, v), -1;
        *(float *)s->dst = x;
        return 0;
    }
    case ARG_STR: *(const char **)s->dst = v; return 0;
    case ARG_FLAG: *(int *)s->dst = 1; return 0;
    }
    return -1;
}

int args_parse(const char *cmd, const char *usage, const ArgSpec *specs, int n, int argc,
               char **argv) {
    unsigned char seen[64] = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            print_help(cmd, usage, specs, n);
            return 1;
        }
        const ArgSpec *s = NULL;
        const char *inline_val = NULL;
        int k = -1;
        if (a[0] == '-' && a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            for (int j = 0; j < n; j++)
                if (strlen(specs[j].name) == len && !strncmp(specs[j].name, name, len)) k = j;
            if (eq) inline_val = eq + 1;
        } else if (a[0] == '-' && a[1] && !a[2]) {
            for (int j = 0; j < n; j++)
                if (specs[j].short_name == a[1]) k = j;
        }
        if (k < 0) {
            cli_fail(cmd, "unknown %s '%s' (see whale %s --help)",
                     a[0] == '-' ? "flag" : "argument", a, cmd);
            return -1;
        }
        s = &specs[k];
        if (k < 64 && seen[k]++) {
            cli_fail(cmd, "--%s given twice", s->name);
            return -1;
        }
        if (s->type == ARG_FLAG) {
            if (inline_val) {
                cli_fail(cmd, "--%s takes no value", s->name);
                return -1;
            }
            *(int *)s->dst = 1;
            continue;
        }
        const char *v = inline_val;
        if (!v) {
            if (i + 1 >= argc) {
                cli_fail(cmd, "--%s needs a value", s->name);
                return -1;
            }
            v = argv[++i];
        }
        if (parse_value(cmd, s, v) != 0) return -1;
    }
    return 0;
}

void cli_bf16(const char *cmd, int on) {
    if (on && !gemm_bf16_available())
        fprintf(stderr, "whale %s: --bf16: this CPU has no AVX512-BF16; running in float32\n", cmd);
    gemm_bf16 = on;
}

int cli_threads(const char *cmd, int threads) {
    if (threads < 0 || threads > 1024) {
        cli_fail(cmd, "--threads must be between 1 and 1024 (0: all cores), not %d", threads);
        return -1;
    }
    threads_set(threads);
    return 0;
}
