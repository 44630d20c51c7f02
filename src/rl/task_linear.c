/* SPDX-License-Identifier: MIT */
/* The linear task (rl/task.h): solve a*x + b = c for the integer x, with
 * |a| >= 2 and a, b, x of up to d digits (either sign). The worked reasoning
 * moves b across and divides ("3x=22-7=15, x=15/3=5"); noise flips the sign
 * of b as it moves, or the sign of the quotient, and a wrong right-hand side
 * that a no longer divides is divided with truncation, as a hurried solver
 * would. */
#include <stdio.h>

#include "rl/task_impl.h"

static int64_t draw_signed(Rng *r, int64_t max) {
    return (int64_t)rng_below(r, (uint64_t)(2 * max + 1)) - max;
}

static void linear_draw(Rng *r, int d, TaskProblem *p) {
    int64_t max = 1;
    for (int i = 0; i < d; i++) max *= 10;
    max -= 1;
    int64_t a = 2 + (int64_t)rng_below(r, (uint64_t)(max - 1)); /* 2..max */
    if (rng_below(r, 2)) a = -a;
    int64_t x = draw_signed(r, max), b = draw_signed(r, max), c = a * x + b;
    p->n_numbers = 3;
    p->numbers[0] = a;
    p->numbers[1] = b;
    p->numbers[2] = c;
    p->target = x;
    TaskBuf q;
    tbuf_init(&q, p->question, sizeof p->question);
    tbuf_printf(&q, "Solve %lldx", (long long)a);
    if (b) tbuf_printf(&q, " %c %lld", b < 0 ? '-' : '+', (long long)(b < 0 ? -b : b));
    tbuf_printf(&q, " = %lld for x", (long long)c);
    snprintf(p->answer, sizeof p->answer, "%lld", (long long)x);
}

static void linear_key(const TaskProblem *p, char *buf, size_t n) {
    snprintf(buf, n, "linear:%lld,%lld,%lld", (long long)p->numbers[0], (long long)p->numbers[1],
             (long long)p->numbers[2]);
}

static int linear_verify(const TaskProblem *p, const char *answer) {
    int64_t v;
    return task_parse_int(answer, &v) && v == p->target;
}

static void linear_guess(const TaskProblem *p, Rng *r, char *answer, size_t na) {
    task_guess_int(r, p->target, answer, na);
}

static int linear_solve(const TaskProblem *p, Rng *r, float error_rate, char *think, size_t nt,
                        char *answer, size_t na) {
    int64_t a = p->numbers[0], b = p->numbers[1], c = p->numbers[2], rhs = c;
    int errors = 0;
    TaskBuf t;
    tbuf_init(&t, think, nt);
    if (b != 0) {
        int slip = error_rate > 0 && rng_uniform(r) < error_rate;
        /* moving b across flips its sign; the slip keeps it */
        int add = (b < 0) != slip;
        int64_t m = b < 0 ? -b : b;
        rhs = add ? c + m : c - m;
        errors += slip;
        tbuf_printf(&t, "%lldx=%lld%c%lld=%lld, ", (long long)a, (long long)c, add ? '+' : '-',
                    (long long)m, (long long)rhs);
    }
    int64_t x = rhs / a; /* exact unless a slip came first: then truncated */
    if (x != 0 && error_rate > 0 && rng_uniform(r) < error_rate) {
        x = -x;
        errors++;
    }
    tbuf_printf(&t, "x=%lld/%lld=%lld, result %lld", (long long)rhs, (long long)a, (long long)x,
                (long long)x);
    int k = snprintf(answer, na, "%lld", (long long)x);
    if (t.overflow || k < 0 || (size_t)k >= na) return -1;
    return x == p->target ? 0 : (errors ? errors : 1);
}

const Task task_linear = {
    .name = "linear",
    .description = "solve a*x + b = c for the integer x (difficulty d = digits of a, b and x, "
                   "1-6, default 1)",
    .difficulty_min = 1,
    .difficulty_max = 6,
    .difficulty_default = 1,
    .draw = linear_draw,
    .key = linear_key,
    .verify = linear_verify,
    .solve = linear_solve,
    .guess = linear_guess,
};
