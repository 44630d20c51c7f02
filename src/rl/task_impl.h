/* SPDX-License-Identifier: MIT */
/* What the task files share and nobody else needs: the Task objects the
 * registry lists, a bounded text appender for traces, and the integer
 * helpers the integer-answer tasks verify and guess with (all in task.c). */
#ifndef WHALE_TASK_IMPL_H
#define WHALE_TASK_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "base/rng.h"
#include "rl/task.h"

extern const Task task_arith, task_arith_add, task_arith_sub, task_arith_mul;
extern const Task task_countdown;
extern const Task task_linear;

/* Appends to a caller's buffer; past the end it only sets `overflow`, and the
 * buffer stays NUL-terminated. */
typedef struct TaskBuf {
    char *p;
    size_t n, len;
    int overflow;
} TaskBuf;

void tbuf_init(TaskBuf *b, char *p, size_t n);
void tbuf_printf(TaskBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 1 if s is exactly an integer in canonical decimal form ("0", "842",
 * "-17": an optional '-', no '+', no leading zeros, no "-0", no spaces, at
 * most 18 digits) and stores it in *out; else 0. */
int task_parse_int(const char *s, int64_t *out);

/* A guessed integer answer for the true value v: v itself one time in four,
 * else v with one digit changed (the leading digit never to 0), into answer. */
void task_guess_int(Rng *r, int64_t v, char *answer, size_t na);

/* A 64-bit mixing function (splitmix64's finaliser). */
uint64_t task_mix64(uint64_t x);

#endif
