/* SPDX-License-Identifier: MIT */
/* The countdown verifier's expression evaluator: a recursive-descent parser
 * over hostile text (the <answer> of a model) that evaluates while it
 * parses, with exact int64 arithmetic and the countdown rules checked as it
 * goes. rl/task_countdown.c uses it; tests call it directly for the reason
 * an answer is wrong. */
#ifndef WHALE_COUNTDOWN_EXPR_H
#define WHALE_COUNTDOWN_EXPR_H

#include <stdint.h>

typedef enum CountdownStatus {
    COUNTDOWN_OK = 0,
    COUNTDOWN_SYNTAX,    /* not expr := term {(+|-) term}, term := factor {(*|/) factor},
                            factor := NUMBER | ( expr ); includes empty text, a unary sign,
                            a stray character, unbalanced parentheses */
    COUNTDOWN_DEPTH,     /* parentheses nested deeper than COUNTDOWN_MAX_DEPTH */
    COUNTDOWN_NOT_GIVEN, /* a number that is not one of the given ones (or written with a
                            leading zero, or longer than 18 digits) */
    COUNTDOWN_REUSED,    /* a given number used more often than it was given */
    COUNTDOWN_DIV_ZERO,
    COUNTDOWN_INEXACT,   /* a division with a remainder: every / must divide exactly */
    COUNTDOWN_OVERFLOW,  /* an intermediate result outside int64 */
} CountdownStatus;

#define COUNTDOWN_MAX_DEPTH 32

/* Parse and evaluate the NUL-terminated text s, whose numbers must be drawn
 * from numbers[0..n_numbers) (n_numbers <= 64), each at most as often as it
 * appears there. Spaces, tabs and newlines may separate tokens. Evaluation
 * is left to right with the usual precedence, in exact int64 (negative
 * intermediate results are allowed). Stops at the first problem, reading
 * left to right, and returns it; on COUNTDOWN_OK *value gets the result.
 * Time is linear in the length of s; the recursion is at most
 * COUNTDOWN_MAX_DEPTH + 1 levels deep. */
CountdownStatus countdown_eval(const char *s, const int64_t *numbers, int n_numbers,
                               int64_t *value);

/* A short name for a status ("division by zero", ...), for messages. */
const char *countdown_status_str(CountdownStatus st);

#endif
