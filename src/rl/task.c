/* SPDX-License-Identifier: MIT */
/* The task registry, the split rule (a hash of the canonical problem) and
 * the seeded generation loop every task shares (rl/task.h), plus the helpers
 * of rl/task_impl.h. The tasks themselves live in task_arith.c,
 * task_countdown.c and task_linear.c. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rl/task.h"
#include "rl/task_impl.h"

static const Task *const tasks[] = {
    &task_arith, &task_arith_add, &task_arith_sub, &task_arith_mul, &task_countdown, &task_linear,
};
#define N_TASKS ((int)(sizeof tasks / sizeof tasks[0]))

/* Draws before task_generate gives up: with a 1-in-5 test share, 2000 draws
 * all landing in the wrong split has probability 0.8^2000, so this only
 * stops a problem space too small to have both splits (none of ours). */
#define MAX_DRAWS 2000

const Task *task_find(const char *name) {
    for (int i = 0; name && i < N_TASKS; i++)
        if (!strcmp(tasks[i]->name, name)) return tasks[i];
    return NULL;
}

const char *task_names(void) {
    return "arith, arith-add, arith-sub, arith-mul, countdown, linear";
}

int task_difficulty(const Task *t, int d) {
    if (d == 0) return t->difficulty_default;
    return d >= t->difficulty_min && d <= t->difficulty_max ? d : -1;
}

uint64_t task_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* FNV-1a over the bytes of s, then mixed (FNV alone leaves the low bits,
 * which the modulo reads, weakly mixed). */
static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return task_mix64(h);
}

TaskSplit task_split_of(const Task *t, const TaskProblem *p) {
    char key[TASK_KEY_MAX];
    t->key(p, key, sizeof key);
    return hash_str(key) % TASK_TEST_SHARE == 0 ? TASK_TEST : TASK_TRAIN;
}

int task_generate(const Task *t, uint64_t seed, TaskSplit split, uint64_t index, int d,
                  TaskProblem *p) {
    d = task_difficulty(t, d);
    if (d < 0) return -1;
    uint64_t s = task_mix64(hash_str(t->name) ^ seed);
    s = task_mix64(s ^ index);
    s = task_mix64(s ^ ((uint64_t)split << 32 | (uint64_t)d));
    Rng r;
    rng_seed(&r, s);
    TaskProblem q;
    for (int i = 0; i < MAX_DRAWS; i++) {
        memset(&q, 0, sizeof q);
        t->draw(&r, d, &q);
        q.difficulty = d;
        if (task_split_of(t, &q) == split) {
            *p = q;
            return 0;
        }
    }
    return -1;
}

/* ---- helpers for the task files ------------------------------------------- */

void tbuf_init(TaskBuf *b, char *p, size_t n) {
    b->p = p;
    b->n = n;
    b->len = 0;
    b->overflow = n == 0;
    if (n) p[0] = 0;
}

void tbuf_printf(TaskBuf *b, const char *fmt, ...) {
    if (b->overflow) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->len, b->n - b->len, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= b->n - b->len) {
        b->overflow = 1;
        b->p[b->len] = 0; /* no half-written piece */
        return;
    }
    b->len += (size_t)k;
}

int task_parse_int(const char *s, int64_t *out) {
    int neg = 0;
    if (*s == '-') {
        neg = 1;
        s++;
    }
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9') n++;
    if (n == 0 || n > 18 || s[n] != 0) return 0;
    if (s[0] == '0' && (n > 1 || neg)) return 0; /* leading zero, "-0" */
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) v = v * 10 + (s[i] - '0'); /* < 10^18: no overflow */
    *out = neg ? -v : v;
    return 1;
}

void task_guess_int(Rng *r, int64_t v, char *answer, size_t na) {
    char digits[24];
    int neg = v < 0;
    /* -v is safe: task values are far from INT64_MIN */
    snprintf(digits, sizeof digits, "%lld", (long long)(neg ? -v : v));
    if (rng_below(r, 4) != 0) {
        int n = (int)strlen(digits), i = (int)rng_below(r, (uint64_t)n);
        int lo = (i == 0 && n > 1) ? 1 : 0; /* no leading zero */
        int c = digits[i] - '0', nc;
        do nc = lo + (int)rng_below(r, (uint64_t)(10 - lo));
        while (nc == c);
        digits[i] = (char)('0' + nc);
    }
    /* a changed single digit may give "0", which takes no sign */
    snprintf(answer, na, "%s%s", neg && strcmp(digits, "0") ? "-" : "", digits);
}
