/* SPDX-License-Identifier: MIT */
/* The arith tasks (rl/task.h): d-digit addition, subtraction (a >= b, so the
 * result is never negative) and multiplication, mixed ("arith") or one
 * operation each ("arith-add", "arith-sub", "arith-mul"). The worked
 * reasoning is a right-to-left per-digit trace with the carry or borrow
 * written out ("7+5+0=12 so 2, 8+5+1=14 so 42, ..."); a multiplication is
 * its partial products and their running sum. Noise drops carries and
 * borrows, the error the R1-Zero prototype of issue 5 learned to fix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl/task_impl.h"

static int64_t pow10i(int k) {
    int64_t p = 1;
    while (k-- > 0) p *= 10;
    return p;
}

/* A d-digit operand: 0..9 for d = 1, else no leading zero. */
static int64_t draw_operand(Rng *r, int d) {
    int64_t lo = d == 1 ? 0 : pow10i(d - 1), hi = pow10i(d) - 1;
    return lo + (int64_t)rng_below(r, (uint64_t)(hi - lo + 1));
}

static void draw_op(Rng *r, int d, TaskProblem *p, char op) {
    int64_t a = draw_operand(r, d), b = draw_operand(r, d);
    if (op == '-' && a < b) {
        int64_t t = a;
        a = b;
        b = t;
    }
    p->op = op;
    p->n_numbers = 2;
    p->numbers[0] = a;
    p->numbers[1] = b;
    p->target = op == '+' ? a + b : op == '-' ? a - b : a * b;
    snprintf(p->question, sizeof p->question, "Compute %lld %c %lld", (long long)a, op,
             (long long)b);
    snprintf(p->answer, sizeof p->answer, "%lld", (long long)p->target);
}

static void draw_mixed(Rng *r, int d, TaskProblem *p) {
    static const char ops[3] = {'+', '-', '*'};
    draw_op(r, d, p, ops[rng_below(r, 3)]);
}
static void draw_add(Rng *r, int d, TaskProblem *p) { draw_op(r, d, p, '+'); }
static void draw_sub(Rng *r, int d, TaskProblem *p) { draw_op(r, d, p, '-'); }
static void draw_mul(Rng *r, int d, TaskProblem *p) { draw_op(r, d, p, '*'); }

/* "a+b" with the smaller operand first for + and *, which commute. */
static void arith_key(const TaskProblem *p, char *buf, size_t n) {
    int64_t a = p->numbers[0], b = p->numbers[1];
    if (p->op != '-' && b < a) {
        int64_t t = a;
        a = b;
        b = t;
    }
    snprintf(buf, n, "arith:%lld%c%lld", (long long)a, p->op, (long long)b);
}

static int arith_verify(const TaskProblem *p, const char *answer) {
    int64_t v;
    return task_parse_int(answer, &v) && v == p->target;
}

static void arith_guess(const TaskProblem *p, Rng *r, char *answer, size_t na) {
    task_guess_int(r, p->target, answer, na);
}

/* Decimal digits of v >= 0, least significant first; returns the count. */
static int digits_of(int64_t v, int dig[20]) {
    int n = 0;
    do {
        dig[n++] = (int)(v % 10);
        v /= 10;
    } while (v > 0);
    return n;
}

static int take(Rng *r, float rate) { return rate > 0 && rng_uniform(r) < rate; }

/* a + b column by column, right to left, every column the same width (the
 * two digits, 0 past an operand's end, the carry in, the sum as two
 * digits), each followed by the result so far: the new digit, then the
 * previous result copied; the last column puts its whole sum in front:
 *   7+5+0=12 so 2, 8+5+1=14 so 42, 4+3+1=08 so 842, result 842
 * Why this shape: every digit the model must read then sits at the same
 * distance from where it is needed in every problem of a size, and the
 * result is built by copying forward, never by reading the columns back
 * in reverse. A small RoPE transformer learns such lookups in a few hundred
 * steps; with the carry written only when there is one ("7+5=12 write 2
 * carry 1, ...") the distances vary with the carries and 1000 pretraining
 * steps did not learn them (held-out greedy pass@1 1%). A carry into the
 * next column is dropped (+0 written) with probability rate. */
static int64_t trace_add(TaskBuf *b, Rng *r, float rate, int64_t x, int64_t y, int *errors) {
    int dx[20], dy[20], nx = digits_of(x, dx), ny = digits_of(y, dy);
    int n = nx > ny ? nx : ny, carry = 0;
    char so_far[48] = ""; /* the result so far, in decimal (<= 21 digits) */
    for (int i = 0; i < n; i++) {
        int u = i < nx ? dx[i] : 0, v = i < ny ? dy[i] : 0, s = u + v + carry;
        char num[4]; /* the new digit, or the last column's whole sum, in front */
        int k = snprintf(num, sizeof num, "%d", i == n - 1 ? s : s % 10);
        memmove(so_far + k, so_far, strlen(so_far) + 1);
        memcpy(so_far, num, (size_t)k);
        tbuf_printf(b, "%s%d+%d+%d=%02d so %s", i ? ", " : "", u, v, carry, s, so_far);
        carry = s >= 10;
        if (carry && i < n - 1 && take(r, rate)) {
            carry = 0;
            (*errors)++;
        }
    }
    return strtoll(so_far, NULL, 10);
}

/* x - y (x >= y) column by column; a borrow from the next column is
 * dropped with probability rate. */
static int64_t trace_sub(TaskBuf *b, Rng *r, float rate, int64_t x, int64_t y, int *errors) {
    int dx[20], dy[20], nx = digits_of(x, dx), ny = digits_of(y, dy), borrow = 0;
    int64_t written[21];
    for (int i = 0; i < nx; i++) {
        int t = dx[i], u = i < ny ? dy[i] : 0, v = t - u - borrow, owe = v < 0;
        if (i > 0) tbuf_printf(b, ", ");
        if (i >= ny && !borrow) {
            tbuf_printf(b, "write %d", t);
        } else {
            tbuf_printf(b, "%d", owe ? t + 10 : t);
            if (i < ny) tbuf_printf(b, "-%d", u);
            if (borrow) tbuf_printf(b, "-1");
            tbuf_printf(b, "=%d write %d", owe ? v + 10 : v, owe ? v + 10 : v);
        }
        written[i] = owe ? v + 10 : v;
        borrow = owe;
        if (owe) {
            tbuf_printf(b, " borrow 1");
            if (i < nx - 1 && take(r, rate)) {
                borrow = 0;
                (*errors)++;
            }
        }
    }
    int64_t v = 0;
    for (int i = nx - 1; i >= 0; i--) v = v * 10 + written[i];
    return v;
}

/* Digit-wise operations without carries: the "forgot to carry" slip. */
static int64_t nocarry_mul1(int64_t x, int digit) {
    int dx[20], n = digits_of(x, dx);
    int64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v * 10 + (dx[i] * digit) % 10;
    return v;
}
static int64_t nocarry_add(int64_t x, int64_t y) {
    int64_t v = 0, p = 1;
    while (x > 0 || y > 0) {
        v += ((x % 10 + y % 10) % 10) * p;
        x /= 10;
        y /= 10;
        p *= 10;
    }
    return v;
}

/* x * y as partial products, one per non-zero digit of y, and their running
 * sum; each partial product and each sum is computed without its carries
 * with probability rate. */
static int64_t trace_mul(TaskBuf *b, Rng *r, float rate, int64_t x, int64_t y, int *errors) {
    int dy[20], ny = digits_of(y, dy), n_parts = 0;
    int64_t sum = 0;
    for (int k = 0; k < ny; k++) {
        if (dy[k] == 0) continue;
        int64_t scale = pow10i(k), part = x * dy[k];
        if (take(r, rate)) {
            int64_t wrong = nocarry_mul1(x, dy[k]);
            *errors += wrong != part;
            part = wrong;
        }
        part *= scale;
        tbuf_printf(b, "%s%lld*%lld=%lld", n_parts ? ", " : "", (long long)x,
                    (long long)(dy[k] * scale), (long long)part);
        if (n_parts > 0) {
            int64_t s = sum + part;
            if (take(r, rate)) {
                int64_t wrong = nocarry_add(sum, part);
                *errors += wrong != s;
                s = wrong;
            }
            tbuf_printf(b, ", %lld+%lld=%lld", (long long)sum, (long long)part, (long long)s);
            sum = s;
        } else {
            sum = part;
        }
        n_parts++;
    }
    if (n_parts == 0) tbuf_printf(b, "%lld*0=0", (long long)x);
    return sum;
}

static int arith_solve(const TaskProblem *p, Rng *r, float error_rate, char *think, size_t nt,
                       char *answer, size_t na) {
    TaskBuf b;
    tbuf_init(&b, think, nt);
    int errors = 0;
    int64_t x = p->numbers[0], y = p->numbers[1], v;
    if (p->op == '+') v = trace_add(&b, r, error_rate, x, y, &errors);
    else if (p->op == '-') v = trace_sub(&b, r, error_rate, x, y, &errors);
    else v = trace_mul(&b, r, error_rate, x, y, &errors);
    tbuf_printf(&b, ", result %lld", (long long)v);
    int k = snprintf(answer, na, "%lld", (long long)v);
    if (b.overflow || k < 0 || (size_t)k >= na) return -1;
    return v == p->target ? 0 : (errors ? errors : 1); /* two slips could cancel */
}

#define ARITH_TASK(NAME, DESC, DRAW)                                                         \
    {                                                                                       \
        .name = NAME, .description = DESC, .difficulty_min = 1, .difficulty_max = 9,        \
        .difficulty_default = 3, .draw = DRAW, .key = arith_key, .verify = arith_verify,    \
        .solve = arith_solve, .guess = arith_guess,                                         \
    }

const Task task_arith = ARITH_TASK(
    "arith", "d-digit addition, subtraction and multiplication, mixed (difficulty d = digits, "
             "1-9, default 3)", draw_mixed);
const Task task_arith_add =
    ARITH_TASK("arith-add", "d-digit addition (difficulty d = digits, 1-9, default 3)", draw_add);
const Task task_arith_sub = ARITH_TASK(
    "arith-sub", "d-digit subtraction, never negative (difficulty d = digits, 1-9, default 3)",
    draw_sub);
const Task task_arith_mul = ARITH_TASK(
    "arith-mul", "d-digit by d-digit multiplication (difficulty d = digits, 1-9, default 3)",
    draw_mul);
