/* SPDX-License-Identifier: MIT */
/* The countdown task (rl/task.h; TinyZero's task, after the TV game): make a
 * target from d given numbers with + - * /, each number at most once. The
 * generator builds the target from a random expression over all the numbers
 * (every intermediate result a positive integer, every division exact), so
 * every problem is solvable; the verifier is countdown_eval. The worked
 * reasoning is a depth-first search written as tries, each level opening
 * with what is left and the target so that every try needs only the text
 * near it: "[4 15 10 to 70]: 4+15=19 low [19 10 to 70]: 19+10=29 low, ...;
 * 4*15=60 low [60 10 to 70]: 60+10=70 yes" (search, below). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl/countdown_expr.h"
#include "rl/task_impl.h"

#define MAX_N 6 /* difficulty_max */

/* An expression tree over the given numbers: leaves 0..n-1 are the numbers,
 * node n + k is the k-th combination. */
typedef struct Tree {
    int n;
    char op[MAX_N];
    int left[MAX_N], right[MAX_N];
    const int64_t *numbers;
} Tree;

static int prec(const Tree *t, int node) {
    if (node < t->n) return 3;
    char op = t->op[node - t->n];
    return op == '+' || op == '-' ? 1 : 2;
}

/* The expression of node with the parentheses precedence needs: a right
 * operand of - or / keeps them at equal precedence (a-(b-c), a/(b*c));
 * a*(b/c) == a*b/c because c divides b, so b/c's are dropped. With full,
 * every operand that is not a number is in parentheses, as the search
 * trace's answers are written: (4*15)+10, one rule for the model to learn. */
static void render(const Tree *t, int node, int full, TaskBuf *b) {
    if (node < t->n) {
        tbuf_printf(b, "%lld", (long long)t->numbers[node]);
        return;
    }
    int k = node - t->n, pl = prec(t, t->left[k]), pr = prec(t, t->right[k]), po = prec(t, node);
    char op = t->op[k];
    int paren_l = full ? pl < 3 : pl < po;
    int paren_r = full ? pr < 3 : pr < po || (pr == po && (op == '-' || op == '/'));
    tbuf_printf(b, paren_l ? "(" : "");
    render(t, t->left[k], full, b);
    tbuf_printf(b, paren_l ? ")%c" : "%c", op);
    tbuf_printf(b, paren_r ? "(" : "");
    render(t, t->right[k], full, b);
    tbuf_printf(b, paren_r ? ")" : "");
}

/* The value of x op y if it is a useful countdown step (a positive
 * integer, exact division, not a product or quotient by 1, which changes
 * nothing), else 0. Skipping the useless steps loses no solution: under "at
 * most once" the 1 can simply stay unused. */
static int64_t apply(int64_t x, char op, int64_t y) {
    switch (op) {
    case '+': return x + y;
    case '-': return x > y ? x - y : 0;
    case '*': return x > 1 && y > 1 ? x * y : 0;
    default: return y > 1 && x % y == 0 ? x / y : 0;
    }
}

/* Numbers 1..4d-2 (1..10 at the default 3): small enough that a tiny model
 * learns the arithmetic of every pair; with 1..10(d-1) (1..20) the
 * recipe's base had not learned it after 500 steps (3*9=48). */
static int max_number(int d) { return 4 * d - 2; }

static void countdown_draw(Rng *r, int d, TaskProblem *p) {
    static const char ops[10] = {'+', '+', '+', '-', '-', '-', '*', '*', '/', '/'};
    int maxn = max_number(d), attempts = 0;
    int64_t cap = 10 * (int64_t)maxn;
    for (;;) {
        int64_t pool[MAX_N] = {0}, given[MAX_N];
        for (int i = 0; i < d; i++) pool[i] = 1 + (int64_t)rng_below(r, (uint64_t)maxn);
        memcpy(given, pool, sizeof given);
        Tree t = {.n = d, .numbers = given};
        int node[MAX_N];
        for (int i = 0; i < d; i++) node[i] = i;
        for (int m = d, k = 0; m > 1; m--, k++) {
            int i = (int)rng_below(r, (uint64_t)m), j = (int)rng_below(r, (uint64_t)m - 1);
            j += j >= i;
            char op = '+';
            int64_t v = 0;
            for (int tries = 0; tries < 8 && v == 0; tries++) {
                op = ops[rng_below(r, 10)];
                v = apply(pool[i], op, pool[j]);
            }
            if (v == 0) v = apply(pool[i], op = '+', pool[j]);
            t.op[k] = op;
            t.left[k] = node[i];
            t.right[k] = node[j];
            pool[i] = v;
            node[i] = d + k;
            pool[j] = pool[m - 1];
            node[j] = node[m - 1];
        }
        /* Trivial: the target is a given number; or, with 3 or more, the
         * sum or the product of them all, one operator everywhere: GRPO
         * found that shortcut (answer a+b+c to every problem, right on
         * the 24% of targets that happened to be sums). */
        int64_t target = pool[0], sum = 0, product = 1;
        int trivial = 0;
        for (int i = 0; i < d; i++) {
            trivial |= given[i] == target;
            sum += given[i];
            product *= given[i];
        }
        trivial |= d >= 3 && (target == sum || target == product);
        /* Nearly every draw passes within a few attempts; the bound only
         * guarantees termination. */
        if ((trivial || target > cap) && ++attempts < 100000) continue;
        p->n_numbers = d;
        memcpy(p->numbers, given, (size_t)d * sizeof *given);
        p->target = target;
        TaskBuf q;
        tbuf_init(&q, p->question, sizeof p->question);
        tbuf_printf(&q, "Make %lld from the numbers", (long long)target);
        for (int i = 0; i < d; i++) tbuf_printf(&q, "%s %lld", i ? "," : "", (long long)given[i]);
        tbuf_printf(&q, " with + - * /, each used at most once");
        TaskBuf a;
        tbuf_init(&a, p->answer, sizeof p->answer);
        render(&t, node[0], 0, &a);
        return;
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void countdown_key(const TaskProblem *p, char *buf, size_t n) {
    int64_t v[TASK_MAX_NUMBERS];
    int k = p->n_numbers;
    memcpy(v, p->numbers, (size_t)k * sizeof *v);
    qsort(v, (size_t)k, sizeof *v, cmp_i64);
    TaskBuf b;
    tbuf_init(&b, buf, n);
    tbuf_printf(&b, "countdown:%lld=", (long long)p->target);
    for (int i = 0; i < k; i++) tbuf_printf(&b, "%s%lld", i ? "," : "", (long long)v[i]);
}

static int countdown_verify(const TaskProblem *p, const char *answer) {
    int64_t v;
    return countdown_eval(answer, p->numbers, p->n_numbers, &v) == COUNTDOWN_OK && v == p->target;
}

/* ---- the search trace ------------------------------------------------------ */

/* The trace is a search a small model can carry out one step at a time:
 * with three values left (at difficulty 2 and 3, from the start) it tries
 * every move in a fixed order, so each written try follows from the one
 * before and needs only the arithmetic of two numbers. Tries are separated
 * by ", " (the last step) or "; " (three values left); a step with values
 * left after it is followed by " " and its sub-search. A try that misses
 * says on which side of the target it landed, " low" or " high": the
 * comparison of every result with the target is then learnt from every
 * try, not only from the few hits. Without it the recipe's base model
 * told a hit from a miss by length and last digit alone, and once GRPO
 * made " yes" likelier it said it after 12-23% of the misses that shared
 * both with the target (16 for 56, 88 for 28), the commonest wrong answer
 * after RL (docs/rl.md). The first step that makes the target ends the
 * trace with " yes". With more than three values a full search would not
 * fit (thousands of tries), so the trace takes one move, at random among
 * those that keep the target reachable (checked silently), until three
 * are left: at difficulty 4 and up that choice is the step the model
 * cannot follow from the text. The slip (at error_rate per hit, with
 * three values left or fewer) passes a hit by: the try is written with
 * nothing after it, and the search goes on; one that runs out of tries
 * ends " no", its answer the path of the last try that missed the target. */

typedef struct Search {
    Tree t;
    int64_t target;
    Rng *r;
    float rate;
    TaskBuf *b;
    int errors, done;
    int final_node;
    Tree miss;     /* the path of the last try that missed the target */
    int miss_node; /* its node in miss */
} Search;

typedef struct Move {
    unsigned char i, j;
    char op;
} Move;

/* The moves of pool[0..m) in the fixed order: pairs in pool order, then
 * + * - /, the larger operand first for - and / (apply keeps only the
 * useful ones). */
static int list_moves(const int64_t *pool, int m, Move *moves) {
    static const char ops[4] = {'+', '*', '-', '/'};
    int n = 0;
    for (int i = 0; i < m; i++)
        for (int j = i + 1; j < m; j++)
            for (int o = 0; o < 4; o++) {
                int swap = (ops[o] == '-' || ops[o] == '/') && pool[j] > pool[i];
                int x = swap ? j : i, y = swap ? i : j;
                if (apply(pool[x], ops[o], pool[y]) == 0) continue;
                moves[n++] = (Move){(unsigned char)x, (unsigned char)y, ops[o]};
            }
    return n;
}

/* pool[0..m) without pool[i] and pool[j], v in front; the same for the
 * nodes (vn for v) unless node is NULL. */
static void reduce(const int64_t *pool, const int *node, int m, int i, int j, int64_t v, int vn,
                   int64_t *sub, int *sub_node) {
    int w = 1;
    sub[0] = v;
    if (node) sub_node[0] = vn;
    for (int x = 0; x < m; x++)
        if (x != i && x != j) {
            if (node) sub_node[w] = node[x];
            sub[w++] = pool[x];
        }
}

/* 1 if some sequence of moves on pool[0..m) makes target. */
static int reachable(const int64_t *pool, int m, int64_t target) {
    Move moves[MAX_N * (MAX_N - 1) * 2];
    int n_moves = list_moves(pool, m, moves);
    for (int a = 0; a < n_moves; a++) {
        int64_t v = apply(pool[moves[a].i], moves[a].op, pool[moves[a].j]), sub[MAX_N];
        if (v == target) return 1;
        if (m == 2) continue;
        reduce(pool, NULL, m, moves[a].i, moves[a].j, v, 0, sub, NULL);
        if (reachable(sub, m - 1, target)) return 1;
    }
    return 0;
}

/* Searches the m values in pool (their tree nodes in node); k is the step
 * number. Sets s->done at the solution or at a slip. The level opens with
 * "[pool to target]: ": a small model loses track of which numbers a try
 * left and of the target a few hundred tokens back (the last --full base
 * wrote "10+10" from 1, 7, 10, and "20+8=28" without "yes" for 28), so
 * both are restated where the next tries read them. */
static void search(Search *s, const int64_t *pool, const int *node, int m, int k) {
    Move moves[MAX_N * (MAX_N - 1) * 2];
    int n_moves = list_moves(pool, m, moves);
    tbuf_printf(s->b, "[");
    for (int i = 0; i < m; i++) tbuf_printf(s->b, "%lld ", (long long)pool[i]);
    tbuf_printf(s->b, "to %lld]: ", (long long)s->target);
    if (m > 3)
        for (int a = n_moves - 1; a > 0; a--) { /* Fisher-Yates */
            int b = (int)rng_below(s->r, (uint64_t)a + 1);
            Move tmp = moves[a];
            moves[a] = moves[b];
            moves[b] = tmp;
        }
    const char *sep = m == 2 ? ", " : "; ";
    int written = 0;
    for (int a = 0; a < n_moves && !s->done; a++) {
        int i = moves[a].i, j = moves[a].j;
        int64_t v = apply(pool[i], moves[a].op, pool[j]), sub[MAX_N];
        int sub_node[MAX_N];
        if (m > 2) reduce(pool, node, m, i, j, v, s->t.n + k, sub, sub_node); /* v in front */
        if (m > 3 && v != s->target && !reachable(sub, m - 1, s->target))
            continue; /* the silent choice */
        s->t.op[k] = moves[a].op;
        s->t.left[k] = node[i];
        s->t.right[k] = node[j];
        tbuf_printf(s->b, "%s%lld%c%lld=%lld", written++ ? sep : "", (long long)pool[i],
                    moves[a].op, (long long)pool[j], (long long)v);
        if (v != s->target) {
            tbuf_printf(s->b, v < s->target ? " low" : " high");
            /* the answer if nothing is found: wrong, as the trace */
            s->miss = s->t;
            s->miss_node = s->t.n + k;
        }
        /* the slip: a hit not seen, the search going on past it */
        int slip = v == s->target && m <= 3 && s->rate > 0 && rng_uniform(s->r) < s->rate;
        if (v == s->target && !slip) {
            tbuf_printf(s->b, " yes");
            s->final_node = s->t.n + k;
            s->done = 1;
            return;
        }
        s->errors += slip;
        if (m == 2 || slip) continue;
        tbuf_printf(s->b, " ");
        search(s, sub, sub_node, m - 1, k + 1);
        if (m > 3) return; /* the move was chosen to succeed */
    }
}

static int countdown_solve(const TaskProblem *p, Rng *r, float error_rate, char *think,
                           size_t nt, char *answer, size_t na) {
    TaskBuf b, a;
    tbuf_init(&b, think, nt);
    tbuf_init(&a, answer, na);
    Search s = {.t = {.n = p->n_numbers, .numbers = p->numbers},
                .target = p->target,
                .r = r,
                .rate = error_rate,
                .b = &b,
                .final_node = -1,
                .miss_node = -1};
    for (int i = 0; i < p->n_numbers; i++)
        if (p->numbers[i] == p->target) { /* never drawn, but be exact about it */
            tbuf_printf(&b, "%lld yes", (long long)p->target);
            s.final_node = i;
            s.done = 1;
            break;
        }
    if (!s.done) {
        int64_t pool[MAX_N];
        int node[MAX_N];
        for (int i = 0; i < p->n_numbers; i++) {
            pool[i] = p->numbers[i];
            node[i] = i;
        }
        search(&s, pool, node, p->n_numbers, 0);
    }
    if (!s.done && !s.errors) return -1; /* unsolvable: not a problem draw made */
    if (s.done) {
        render(&s.t, s.final_node, 1, &a);
    } else { /* every hit passed by */
        tbuf_printf(&b, " no");
        if (s.miss_node < 0) tbuf_printf(&a, "%lld", (long long)p->numbers[0]); /* only hits */
        else render(&s.miss, s.miss_node, 1, &a);
    }
    /* a slip before a hit that was seen costs nothing: the answer is right */
    return b.overflow || a.overflow ? -1 : s.done ? 0 : s.errors;
}

/* All the numbers in a random order with random operators: the shape of an
 * answer, rarely right; the generator's answer one time in four. */
static void countdown_guess(const TaskProblem *p, Rng *r, char *answer, size_t na) {
    if (rng_below(r, 4) == 0) {
        snprintf(answer, na, "%s", p->answer);
        return;
    }
    static const char ops[4] = {'+', '-', '*', '/'};
    int idx[TASK_MAX_NUMBERS], n = p->n_numbers;
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint64_t)i + 1), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    TaskBuf b;
    tbuf_init(&b, answer, na);
    for (int i = 0; i < n; i++) {
        if (i) tbuf_printf(&b, "%c", ops[rng_below(r, 4)]);
        tbuf_printf(&b, "%lld", (long long)p->numbers[idx[i]]);
    }
}

const Task task_countdown = {
    .name = "countdown",
    .description = "make a target from d numbers with + - * /, each at most once (difficulty "
                   "d = how many numbers, 2-6, default 3; numbers 1..4d-2, target up to "
                   "10(4d-2))",
    .difficulty_min = 2,
    .difficulty_max = MAX_N,
    .difficulty_default = 3,
    .draw = countdown_draw,
    .key = countdown_key,
    .verify = countdown_verify,
    .solve = countdown_solve,
    .guess = countdown_guess,
};
