/* SPDX-License-Identifier: MIT */
/* Recursive-descent evaluation of countdown answers (rl/countdown_expr.h):
 * one pass, evaluating as it parses, every operation checked for int64
 * overflow, every division for zero and exactness, every number against the
 * multiset of given numbers. */
#include "rl/countdown_expr.h"

#include <stddef.h>

typedef struct Parser {
    const char *s;
    const int64_t *numbers;
    int n_numbers;
    uint64_t used; /* bit i: numbers[i] consumed */
    int depth;
} Parser;

static void skip_space(Parser *p) {
    while (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r') p->s++;
}

static CountdownStatus parse_expr(Parser *p, int64_t *v);

/* A number literal: consume it and the first unused given number equal to it. */
static CountdownStatus parse_number(Parser *p, int64_t *v) {
    const char *s = p->s;
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9') n++;
    p->s += n;
    if (n > 18 || (n > 1 && s[0] == '0')) return COUNTDOWN_NOT_GIVEN;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) x = x * 10 + (s[i] - '0'); /* < 10^18 */
    int seen = 0;
    for (int i = 0; i < p->n_numbers; i++) {
        if (p->numbers[i] != x) continue;
        seen = 1;
        if (!(p->used >> i & 1)) {
            p->used |= 1ull << i;
            *v = x;
            return COUNTDOWN_OK;
        }
    }
    return seen ? COUNTDOWN_REUSED : COUNTDOWN_NOT_GIVEN;
}

static CountdownStatus parse_factor(Parser *p, int64_t *v) {
    skip_space(p);
    if (*p->s >= '0' && *p->s <= '9') return parse_number(p, v);
    if (*p->s != '(') return COUNTDOWN_SYNTAX;
    if (++p->depth > COUNTDOWN_MAX_DEPTH) return COUNTDOWN_DEPTH;
    p->s++;
    CountdownStatus st = parse_expr(p, v);
    if (st != COUNTDOWN_OK) return st;
    skip_space(p);
    if (*p->s != ')') return COUNTDOWN_SYNTAX;
    p->s++;
    p->depth--;
    return COUNTDOWN_OK;
}

static CountdownStatus parse_term(Parser *p, int64_t *v) {
    CountdownStatus st = parse_factor(p, v);
    while (st == COUNTDOWN_OK) {
        skip_space(p);
        char op = *p->s;
        if (op != '*' && op != '/') break;
        p->s++;
        int64_t r;
        if ((st = parse_factor(p, &r)) != COUNTDOWN_OK) break;
        if (op == '*') {
            if (__builtin_mul_overflow(*v, r, v)) st = COUNTDOWN_OVERFLOW;
        } else if (r == 0) {
            st = COUNTDOWN_DIV_ZERO;
        } else if (r == -1 && *v == INT64_MIN) {
            st = COUNTDOWN_OVERFLOW;
        } else if (*v % r != 0) {
            st = COUNTDOWN_INEXACT;
        } else {
            *v /= r;
        }
    }
    return st;
}

static CountdownStatus parse_expr(Parser *p, int64_t *v) {
    CountdownStatus st = parse_term(p, v);
    while (st == COUNTDOWN_OK) {
        skip_space(p);
        char op = *p->s;
        if (op != '+' && op != '-') break;
        p->s++;
        int64_t r;
        if ((st = parse_term(p, &r)) != COUNTDOWN_OK) break;
        if (op == '+' ? __builtin_add_overflow(*v, r, v) : __builtin_sub_overflow(*v, r, v))
            st = COUNTDOWN_OVERFLOW;
    }
    return st;
}

CountdownStatus countdown_eval(const char *s, const int64_t *numbers, int n_numbers,
                               int64_t *value) {
    if (n_numbers < 0 || n_numbers > 64) return COUNTDOWN_NOT_GIVEN;
    Parser p = {.s = s, .numbers = numbers, .n_numbers = n_numbers};
    int64_t v = 0;
    CountdownStatus st = parse_expr(&p, &v);
    if (st != COUNTDOWN_OK) return st;
    skip_space(&p);
    if (*p.s != 0) return COUNTDOWN_SYNTAX; /* a stray ')' or character after a whole expr */
    *value = v;
    return COUNTDOWN_OK;
}

const char *countdown_status_str(CountdownStatus st) {
    switch (st) {
    case COUNTDOWN_OK: return "ok";
    case COUNTDOWN_SYNTAX: return "syntax error";
    case COUNTDOWN_DEPTH: return "parentheses nested too deeply";
    case COUNTDOWN_NOT_GIVEN: return "a number that was not given";
    case COUNTDOWN_REUSED: return "a number used too often";
    case COUNTDOWN_DIV_ZERO: return "division by zero";
    case COUNTDOWN_INEXACT: return "division with a remainder";
    case COUNTDOWN_OVERFLOW: return "overflow";
    }
    return "unknown";
}
