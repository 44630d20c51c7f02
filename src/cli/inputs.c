/* SPDX-License-Identifier: MIT */
/* --input parsing shared by the corpus commands (see inputs.h). */
#include "cli/inputs.h"

#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "cli/args.h"

/* Append v's paths (split at commas unless v is an existing file). */
static int add_value(const char *v, char ***p, int *n, int *cap) {
    int whole = file_exists(v);
    while (*v) {
        size_t k = whole ? strlen(v) : strcspn(v, ",");
        if (k) {
            if (*n == *cap) {
                int nc = *cap ? 2 * *cap : 8;
                char **q = realloc(*p, (size_t)nc * sizeof *q);
                if (!q) return -1;
                *p = q;
                *cap = nc;
            }
            if (!((*p)[*n] = strndup(v, k))) return -1;
            (*n)++;
        }
        v += k;
        if (*v == ',') v++;
    }
    return 0;
}

int cli_take_inputs(const char *cmd, int argc, char **argv, char **rest, int *n_rest,
                    char ***paths) {
    int n = 0, cap = 0;
    char **p = NULL;
    *paths = NULL;
    *n_rest = 0;
    rest[(*n_rest)++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--input=", 8)) {
            if (!a[8]) {
                cli_fail(cmd, "--input needs at least one file");
                goto fail;
            }
            if (add_value(a + 8, &p, &n, &cap) != 0) goto oom;
            continue;
        }
        if (strcmp(a, "--input") && strcmp(a, "-i")) {
            rest[(*n_rest)++] = argv[i];
            continue;
        }
        if (i + 1 >= argc || argv[i + 1][0] == '-') {
            cli_fail(cmd, "--input needs at least one file");
            goto fail;
        }
        while (i + 1 < argc && argv[i + 1][0] != '-')
            if (add_value(argv[++i], &p, &n, &cap) != 0) goto oom;
    }
    rest[*n_rest] = NULL;
    *paths = p;
    return n;
oom:
    cli_fail(cmd, "out of memory");
fail:
    cli_inputs_free(p, n);
    return -1;
}

void cli_inputs_free(char **paths, int n) {
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
}
