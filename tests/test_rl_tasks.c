/* SPDX-License-Identifier: MIT */
/* rl tasks, rewards, template and corpus (src/rl/task*.c, countdown_expr.c,
 * reward.c, template.c, corpus.c; `whale task-data`): generators reproducible
 * per seed, train and test splits disjoint (20k of each per task, by
 * canonical key and by question), every problem solvable and verified with
 * its canonical answer and the noise-free solution, noisy solutions wrong
 * exactly when they say so and consistently (dropped carries recomputed
 * independently), the countdown parser and the reward parser on hostile
 * input, the corpus deterministic with the asked rates and no test problem,
 * and the command's bad flags. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "helpers.h"
#include "rl/corpus.h"
#include "rl/countdown_expr.h"
#include "rl/reward.h"
#include "rl/task.h"
#include "rl/template.h"
#include "whale_cli.h"

static char g_dir[64];

static void setup(void) {
    cr_assert_eq(h_tmpdir(g_dir, sizeof g_dir, "rl"), 0, "mkdtemp failed");
    setenv("WHALE_QUIET", "1", 1);
}
static void teardown(void) { h_rmtree(g_dir); }
TestSuite(rl_tasks, .init = setup, .fini = teardown);

static const char *const ALL[] = {"arith",     "arith-add", "arith-sub",
                                  "arith-mul", "countdown", "linear"};
#define N_ALL 6

static const Task *find(const char *name) {
    const Task *t = task_find(name);
    cr_assert_not_null(t, "task %s is not registered", name);
    return t;
}

static void gen(const Task *t, uint64_t seed, TaskSplit split, uint64_t i, int d, TaskProblem *p) {
    cr_assert_eq(task_generate(t, seed, split, i, d, p), 0, "%s: no problem %llu of split %d at %d",
                 t->name, (unsigned long long)i, (int)split, d);
}

/* ---- registry and generators ---------------------------------------------- */

Test(rl_tasks, registry) {
    for (int i = 0; i < N_ALL; i++) {
        const Task *t = find(ALL[i]);
        cr_assert_str_eq(t->name, ALL[i]);
        cr_assert(strstr(task_names(), ALL[i]), "task_names() lacks %s", ALL[i]);
        cr_assert(t->difficulty_min >= 1 && t->difficulty_min <= t->difficulty_default &&
                  t->difficulty_default <= t->difficulty_max);
        cr_assert_eq(task_difficulty(t, 0), t->difficulty_default);
        cr_assert_eq(task_difficulty(t, t->difficulty_max + 1), -1);
        cr_assert_eq(task_difficulty(t, -1), -1);
        TaskProblem p;
        memset(&p, 0x5a, sizeof p);
        TaskProblem before = p;
        cr_assert_eq(task_generate(t, 1, TASK_TRAIN, 0, t->difficulty_max + 1, &p), -1);
        cr_assert(!memcmp(&p, &before, sizeof p), "a refused call must leave p untouched");
    }
    cr_assert_null(task_find("arithmetic"));
    cr_assert_null(task_find(""));
    cr_assert_null(task_find(NULL));
}

Test(rl_tasks, generators_are_reproducible) {
    for (int k = 0; k < N_ALL; k++) {
        const Task *t = find(ALL[k]);
        int n_diff_seed = 0, n_same_q = 0;
        for (uint64_t i = 0; i < 300; i++) {
            TaskSplit s = i % 2 ? TASK_TEST : TASK_TRAIN;
            TaskProblem a, b, c;
            gen(t, 42, s, i, 0, &a);
            gen(t, 42, s, i, 0, &b);
            cr_assert(!memcmp(&a, &b, sizeof a), "%s: problem %llu differs between two calls",
                      t->name, (unsigned long long)i);
            cr_assert_eq(a.difficulty, t->difficulty_default);
            gen(t, 43, s, i, 0, &c);
            n_diff_seed += strcmp(a.question, c.question) != 0;
            gen(t, 42, s, i + 1, 0, &c);
            n_same_q += strcmp(a.question, c.question) == 0;
        }
        /* pinned: the same problem on every machine and in every version */
        cr_assert_gt(n_diff_seed, 270, "%s: another seed should give other problems", t->name);
        cr_assert_lt(n_same_q, 30, "%s: consecutive indices should differ", t->name);
    }
    TaskProblem p;
    gen(find("arith-add"), 1, TASK_TRAIN, 0, 3, &p);
    char pinned[400];
    snprintf(pinned, sizeof pinned, "%s = %s", p.question, p.answer);
    cr_assert_str_eq(pinned, "Compute 418 + 788 = 1206", "the generator's stream changed: %s",
                     pinned);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

/* The sorted questions of n problems of one split in a malloc'd array of
 * TASK_QUESTION_MAX-byte strings; with keys non-NULL, also their sorted
 * canonical keys in another. */
static char *collect_both(const Task *t, TaskSplit s, int n, int d, char **keys) {
    size_t bytes = (size_t)n * TASK_QUESTION_MAX;
    char *q = malloc(bytes), *k = keys ? malloc(bytes) : NULL;
    cr_assert(q && (!keys || k));
    for (int i = 0; i < n; i++) {
        TaskProblem p;
        gen(t, (uint64_t)i % 7, s, (uint64_t)i, d, &p);
        cr_assert_eq(task_split_of(t, &p), s, "%s: %s came out in the wrong split", t->name,
                     p.question);
        snprintf(q + (size_t)i * TASK_QUESTION_MAX, TASK_QUESTION_MAX, "%s", p.question);
        if (k) t->key(&p, k + (size_t)i * TASK_QUESTION_MAX, TASK_QUESTION_MAX);
    }
    qsort(q, (size_t)n, TASK_QUESTION_MAX, cmp_str);
    if (k) qsort(k, (size_t)n, TASK_QUESTION_MAX, cmp_str);
    if (keys) *keys = k;
    return q;
}

static char *collect(const Task *t, TaskSplit s, int n, int d, int questions) {
    char *k = NULL, *q = collect_both(t, s, n, d, questions ? NULL : &k);
    if (questions) return q;
    free(q);
    return k;
}

/* Count of the strings in both sorted arrays; prints the first. */
static int n_common(const char *a, const char *b, int n) {
    int i = 0, j = 0, common = 0;
    while (i < n && j < n) {
        int c = strcmp(a + (size_t)i * TASK_QUESTION_MAX, b + (size_t)j * TASK_QUESTION_MAX);
        if (c == 0 && common++ == 0)
            cr_log_error("in both splits: %s", a + (size_t)i * TASK_QUESTION_MAX);
        if (c <= 0) i++;
        if (c >= 0) j++;
    }
    return common;
}

Test(rl_tasks, train_and_test_are_disjoint) {
    const char *names[] = {"arith", "countdown", "linear"};
    for (int k = 0; k < 3; k++) {
        const Task *t = find(names[k]);
        char *tr_keys, *te_keys;
        char *tr = collect_both(t, TASK_TRAIN, 20000, 0, &tr_keys);
        char *te = collect_both(t, TASK_TEST, 20000, 0, &te_keys);
        cr_assert_eq(n_common(tr, te, 20000), 0, "%s: questions shared by train and test",
                     t->name);
        cr_assert_eq(n_common(tr_keys, te_keys, 20000), 0, "%s: canonical problems shared by "
                     "train and test", t->name);
        free(tr);
        free(te);
        free(tr_keys);
        free(te_keys);
    }
    /* small spaces too: 1-digit sums, countdown with 2 numbers */
    const Task *small[] = {find("arith-add"), find("countdown")};
    for (int k = 0; k < 2; k++) {
        char *tr = collect(small[k], TASK_TRAIN, 2000, small[k]->difficulty_min, 0);
        char *te = collect(small[k], TASK_TEST, 2000, small[k]->difficulty_min, 0);
        cr_assert_eq(n_common(tr, te, 2000), 0, "%s at its smallest difficulty", small[k]->name);
        free(tr);
        free(te);
    }
}

Test(rl_tasks, split_follows_the_canonical_problem) {
    /* commuted operands and reordered numbers are one problem, so one split */
    const Task *add = find("arith-add"), *mix = find("arith"), *cd = find("countdown");
    int n_test = 0;
    for (uint64_t i = 0; i < 2000; i++) {
        TaskProblem p, q;
        gen(add, 5, i % 3 ? TASK_TRAIN : TASK_TEST, i, 3, &p);
        q = p;
        q.numbers[0] = p.numbers[1];
        q.numbers[1] = p.numbers[0];
        cr_assert_eq(task_split_of(add, &q), task_split_of(add, &p), "%s commuted", p.question);
        cr_assert_eq(task_split_of(mix, &p), task_split_of(add, &p),
                     "arith and arith-add disagree on %s", p.question);
        gen(cd, 5, i % 3 ? TASK_TRAIN : TASK_TEST, i, 4, &p);
        q = p;
        for (int j = 0; j < p.n_numbers; j++) q.numbers[j] = p.numbers[p.n_numbers - 1 - j];
        cr_assert_eq(task_split_of(cd, &q), task_split_of(cd, &p), "%s reordered", p.question);
    }
    /* about one raw draw in TASK_TEST_SHARE is test */
    Rng r;
    rng_seed(&r, 9);
    for (int i = 0; i < 10000; i++) {
        TaskProblem p;
        memset(&p, 0, sizeof p);
        mix->draw(&r, 4, &p);
        n_test += task_split_of(mix, &p) == TASK_TEST;
    }
    cr_assert(n_test > 1800 && n_test < 2200, "test share %d / 10000, expected ~2000", n_test);
}

/* ---- verifiers and solutions ------------------------------------------------ */

/* The integer after the last "result " of a trace. */
static long long trace_result(const char *think) {
    const char *r = NULL;
    for (const char *p = strstr(think, "result "); p; p = strstr(p + 1, "result ")) r = p;
    cr_assert_not_null(r, "no result in: %s", think);
    return atoll(r + 7);
}

Test(rl_tasks, every_problem_verifies_and_solves) {
    for (int k = 0; k < N_ALL; k++) {
        const Task *t = find(ALL[k]);
        for (int d = t->difficulty_min; d <= t->difficulty_max; d++) {
            int n = d >= 5 && !strcmp(t->name, "countdown") ? 60 : 300;
            for (int i = 0; i < n; i++) {
                TaskProblem p;
                gen(t, 3, i % 2 ? TASK_TEST : TASK_TRAIN, (uint64_t)i, d, &p);
                cr_assert_eq(p.difficulty, d);
                cr_assert(p.question[0] && p.answer[0]);
                cr_assert(t->verify(&p, p.answer), "%s d=%d: canonical answer %s of %s rejected",
                          t->name, d, p.answer, p.question);
                char think[TASK_THINK_MAX], ans[TASK_ANSWER_MAX];
                Rng r;
                rng_seed(&r, (uint64_t)i);
                int e = t->solve(&p, &r, 0.0f, think, sizeof think, ans, sizeof ans);
                cr_assert_eq(e, 0, "%s d=%d: noise-free solve of %s returned %d", t->name, d,
                              p.question, e);
                cr_assert(t->verify(&p, ans), "%s d=%d: %s -> %s (%s) rejected", t->name, d,
                          p.question, ans, think);
                cr_assert(strlen(think) > 0);
                if (!strcmp(t->name, "countdown")) {
                    cr_assert(p.n_numbers == d);
                    long long sum = 0, product = 1;
                    for (int j = 0; j < d; j++) {
                        cr_assert(p.numbers[j] != p.target, "%s: trivial", p.question);
                        sum += p.numbers[j];
                        product *= p.numbers[j];
                    }
                    /* no one-operator shortcut from 3 numbers up */
                    cr_assert(d < 3 || (p.target != sum && p.target != product), "%s: the %s",
                              p.question, p.target == sum ? "sum" : "product");
                    cr_assert(p.target >= 1 && p.target <= 10 * (4 * d - 2), "%s", p.question);
                    for (int j = 0; j < d; j++)
                        cr_assert(p.numbers[j] >= 1 && p.numbers[j] <= 4 * d - 2, "%s",
                                  p.question);
                } else {
                    cr_assert_eq(trace_result(think), p.target, "%s: %s", p.question, think);
                }
                /* with noise: wrong exactly when solve says so */
                e = t->solve(&p, &r, 0.6f, think, sizeof think, ans, sizeof ans);
                cr_assert_geq(e, 0);
                cr_assert_eq(e == 0, t->verify(&p, ans), "%s: solve said %d errors for %s -> %s",
                             t->name, e, p.question, ans);
                if (strcmp(t->name, "countdown"))
                    cr_assert_eq(trace_result(think), atoll(ans), "%s: the answer is not what "
                                 "the trace concluded: %s / %s", t->name, think, ans);
                char g[TASK_ANSWER_MAX];
                t->guess(&p, &r, g, sizeof g);
                cr_assert(g[0], "%s: empty guess", t->name);
            }
        }
    }
}

Test(rl_tasks, small_buffers_are_refused) {
    for (int k = 0; k < N_ALL; k++) {
        const Task *t = find(ALL[k]);
        TaskProblem p;
        gen(t, 1, TASK_TRAIN, 0, 0, &p);
        char think[8], ans[TASK_ANSWER_MAX];
        Rng r;
        rng_seed(&r, 1);
        cr_assert_eq(t->solve(&p, &r, 0, think, sizeof think, ans, sizeof ans), -1, "%s",
                     t->name);
        cr_assert_lt(strlen(think), sizeof think);
    }
}

/* Every carry dropped: the trace's columns without carries, the last column
 * whole; every borrow dropped likewise. Computed here from the digits. */
Test(rl_tasks, dropped_carries_are_carried_into_the_answer) {
    const Task *add = find("arith-add"), *sub = find("arith-sub");
    int n_carries = 0, n_dropped = 0;
    for (int i = 0; i < 500; i++) {
        TaskProblem p;
        char think[TASK_THINK_MAX], ans[TASK_ANSWER_MAX];
        Rng r;
        rng_seed(&r, (uint64_t)i);
        gen(add, 8, TASK_TRAIN, (uint64_t)i, 4, &p);
        long long a = p.numbers[0], b = p.numbers[1], want = 0, scale = 1;
        for (int c = 0; c < 4; c++, a /= 10, b /= 10, scale *= 10)
            want += (c < 3 ? (a % 10 + b % 10) % 10 : a + b) * scale;
        int e = add->solve(&p, &r, 1.0f, think, sizeof think, ans, sizeof ans);
        cr_assert_eq(atoll(ans), want, "%s with every carry dropped: %s, want %lld (%s)",
                     p.question, ans, want, think);
        cr_assert_eq(e == 0, want == p.target);

        gen(sub, 8, TASK_TRAIN, (uint64_t)i, 4, &p);
        a = p.numbers[0], b = p.numbers[1], want = 0, scale = 1;
        for (int c = 0; c < 4; c++, a /= 10, b /= 10, scale *= 10)
            want += (c < 3 ? (a % 10 - b % 10 + 10) % 10 : a - b) * scale;
        e = sub->solve(&p, &r, 1.0f, think, sizeof think, ans, sizeof ans);
        cr_assert_eq(atoll(ans), want, "%s with every borrow dropped: %s, want %lld (%s)",
                     p.question, ans, want, think);

        /* at 0.6 each carry is dropped 60% of the time: count them */
        gen(add, 9, TASK_TRAIN, (uint64_t)i, 6, &p);
        e = add->solve(&p, &r, 0.6f, think, sizeof think, ans, sizeof ans);
        /* a carry is a column sum of 10 or more, the last column's aside */
        const char *last = strrchr(think, '=');
        for (const char *q = strchr(think, '='); q && q != last; q = strchr(q + 1, '='))
            n_carries += q[1] == '1';
        n_dropped += e;
    }
    double rate = (double)n_dropped / n_carries;
    cr_assert(rate > 0.56 && rate < 0.64, "drop rate %.3f over %d carries, want 0.6", rate,
              n_carries);
}

Test(rl_tasks, traces_read_as_documented) {
    TaskProblem p = {.op = '+', .n_numbers = 2, .numbers = {487, 355}, .target = 842};
    char think[TASK_THINK_MAX], ans[TASK_ANSWER_MAX];
    Rng r;
    rng_seed(&r, 1);
    find("arith-add")->solve(&p, &r, 0, think, sizeof think, ans, sizeof ans);
    cr_assert_str_eq(think, "7+5+0=12 so 2, 8+5+1=14 so 42, 4+3+1=08 so 842, result 842");
    p = (TaskProblem){.op = '+', .n_numbers = 2, .numbers = {96, 7}, .target = 103};
    find("arith-add")->solve(&p, &r, 0, think, sizeof think, ans, sizeof ans);
    cr_assert_str_eq(think, "6+7+0=13 so 3, 9+0+1=10 so 103, result 103");
    cr_assert_str_eq(ans, "103");
    p = (TaskProblem){.op = '-', .n_numbers = 2, .numbers = {842, 355}, .target = 487};
    find("arith-sub")->solve(&p, &r, 0, think, sizeof think, ans, sizeof ans);
    cr_assert_str_eq(think, "12-5=7 write 7 borrow 1, 14-5-1=8 write 8 borrow 1, 8-3-1=4 write 4, "
                            "result 487");
    p = (TaskProblem){.op = '*', .n_numbers = 2, .numbers = {487, 305}, .target = 148535};
    find("arith-mul")->solve(&p, &r, 0, think, sizeof think, ans, sizeof ans);
    cr_assert_str_eq(think, "487*5=2435, 487*300=146100, 2435+146100=148535, result 148535");
    p = (TaskProblem){.n_numbers = 3, .numbers = {3, -7, 8}, .target = 5};
    find("linear")->solve(&p, &r, 0, think, sizeof think, ans, sizeof ans);
    cr_assert_str_eq(think, "3x=8+7=15, x=15/3=5, result 5");
    cr_assert_str_eq(ans, "5");
    /* countdown: each level restates what is left and the target, then
     * tries every move in order, the larger first for - and /, the new
     * value in front of what is left; a try that misses says on which side */
    p = (TaskProblem){.n_numbers = 3, .numbers = {4, 15, 10}, .target = 70};
    find("countdown")->solve(&p, &r, 0, think, sizeof think, ans, sizeof ans);
    cr_assert_str_eq(think, "[4 15 10 to 70]: 4+15=19 low [19 10 to 70]: 19+10=29 low, "
                            "19*10=190 high, 19-10=9 low; 4*15=60 low [60 10 to 70]: 60+10=70 "
                            "yes");
    cr_assert_str_eq(ans, "(4*15)+10");
    p = (TaskProblem){.n_numbers = 2, .numbers = {3, 12}, .target = 4};
    find("countdown")->solve(&p, &r, 0, think, sizeof think, ans, sizeof ans);
    cr_assert_str_eq(think, "[3 12 to 4]: 3+12=15 high, 3*12=36 high, 12-3=9 high, 12/3=4 yes");
    cr_assert_str_eq(ans, "12/3");
}

/* The countdown trace's grammar, checked against the problem: a level is
 * "[values to target]: " and its tries, ", " apart with two values, "; "
 * with more; a try is "x op y=v" over two of the level's values, computed
 * right; a try that misses the target says " low" or " high" after it; a
 * try that makes the target ends the trace with " yes", or is a slip
 * (nothing after it, the search goes on with the next try); with three
 * values or more any other try goes on with " " and the level below, which
 * restates v first and then the values the try left, in any order. */
typedef struct TraceCheck {
    const char *q, *think;
    const TaskProblem *p;
    long long last_v;
    int tries, slips;
    long long last_miss; /* the value of the last try that missed the target */
} TraceCheck;

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Reads the level at c->q: its values must be want[0..m) (first fixed, the
 * rest in any order when loose). Returns 1 at " yes", 0 at the level's end. */
static int check_level(TraceCheck *c, const long long *want, int m, int loose) {
    long long vals[8], sorted_want[8], target = -1;
    int n = 0, used;
    cr_assert_eq(*c->q, '[', "%s: no level at \"%s\" in %s", c->p->question, c->q, c->think);
    c->q++;
    while (n < 8 && sscanf(c->q, "%lld %n", &vals[n], &used) == 1) {
        c->q += used;
        n++;
    }
    cr_assert(sscanf(c->q, "to %lld]: %n", &target, &used) == 1 && used > 0, "%s", c->think);
    c->q += used;
    cr_assert(n == m && target == c->p->target, "%s: a level of %d values, target %lld in %s",
              c->p->question, n, target, c->think);
    memcpy(sorted_want, want, (size_t)m * sizeof *want);
    if (loose) {
        qsort(vals + 1, (size_t)m - 1, sizeof *vals, cmp_ll);
        qsort(sorted_want + 1, (size_t)m - 1, sizeof *vals, cmp_ll);
    }
    cr_assert(!memcmp(vals, sorted_want, (size_t)m * sizeof *vals), "%s: a level restates the "
              "wrong values in %s", c->p->question, c->think);
    memcpy(vals, want, (size_t)m * sizeof *want);
    for (int k = 0;; k++) {
        if (k && strncmp(c->q, m == 2 ? ", " : "; ", 2)) return 0;
        c->q += k ? 2 : 0;
        long long x, y, v;
        char op;
        cr_assert(sscanf(c->q, "%lld%c%lld=%lld%n", &x, &op, &y, &v, &used) == 4, "%s: no try at "
                  "\"%s\" in %s", c->p->question, c->q, c->think);
        c->q += used;
        int i = -1, j = -1;
        for (int a = 0; a < m && i < 0; a++) i = vals[a] == x ? a : -1;
        for (int a = 0; a < m && j < 0; a++) j = a != i && vals[a] == y ? a : -1;
        cr_assert(i >= 0 && j >= 0, "%s: %lld%c%lld takes values the level has not in %s",
                  c->p->question, x, op, y, c->think);
        long long r = op == '+' ? x + y : op == '-' ? x - y : op == '*' ? x * y
                    : y && x % y == 0 ? x / y : -1;
        cr_assert(r > 0, "%s: a useless try %lld%c%lld in %s", c->p->question, x, op, y,
                  c->think);
        c->tries++;
        c->last_v = v;
        cr_assert_eq(v, r, "%s: %lld%c%lld=%lld in %s", c->p->question, x, op, y, v, c->think);
        if (v == c->p->target && !strncmp(c->q, " yes", 4)) {
            c->q += 4;
            return 1;
        }
        c->slips += v == c->p->target;
        if (v != c->p->target) {
            const char *side = v < c->p->target ? " low" : " high";
            cr_assert(!strncmp(c->q, side, strlen(side)), "%s: %lld%c%lld=%lld not followed by "
                      "\"%s\" in %s", c->p->question, x, op, y, v, side, c->think);
            c->q += strlen(side);
            c->last_miss = v;
        }
        if (m == 2 || v == c->p->target) continue;
        cr_assert_eq(*c->q, ' ', "%s", c->think);
        c->q++;
        long long sub[8] = {v};
        for (int a = 0, w = 1; a < m; a++)
            if (a != i && a != j) sub[w++] = vals[a];
        if (check_level(c, sub, m - 1, 1)) return 1;
    }
}

/* Every try a countdown trace writes is computed right and the levels
 * follow the grammar above. A trace that says " yes" at a hit answers with
 * its path, right; one whose every hit was a slip ends " no" and answers
 * with the path of its last try that missed, wrong; solve counts its
 * slips. */
Test(rl_tasks, countdown_tries_are_computed) {
    const Task *t = find("countdown");
    int n_slips = 0, n_no = 0;
    for (int i = 0; i < 400; i++) {
        TaskProblem p;
        gen(t, 5, TASK_TRAIN, (uint64_t)i, 2 + i % 3, &p);
        char think[TASK_THINK_MAX], ans[TASK_ANSWER_MAX];
        Rng r;
        rng_seed(&r, (uint64_t)i);
        int e = t->solve(&p, &r, 0.6f, think, sizeof think, ans, sizeof ans);
        cr_assert_geq(e, 0);
        TraceCheck c = {.q = think, .think = think, .p = &p, .last_miss = -1};
        long long given[8];
        for (int k = 0; k < p.n_numbers; k++) given[k] = p.numbers[k];
        int yes = check_level(&c, given, p.n_numbers, 0);
        if (!yes) {
            cr_assert_str_eq(c.q, " no", "%s: the trace ends in neither yes nor no: %s",
                             p.question, think);
            c.q += 3;
        }
        cr_assert(!*c.q, "%s: text after the end: %s", p.question, think);
        cr_assert_eq(e, yes ? 0 : c.slips, "%s: solve said %d errors, %d slips in %s", p.question,
                     e, c.slips, think);
        int64_t got;
        cr_assert_eq(countdown_eval(ans, p.numbers, p.n_numbers, &got), COUNTDOWN_OK, "%s", ans);
        if (yes) {
            cr_assert_eq(got, p.target, "%s: answer %s after yes in %s", p.question, ans, think);
        } else {
            /* (a trace of hits alone answers with the first number) */
            long long want = c.last_miss >= 0 ? c.last_miss : p.numbers[0];
            cr_assert(e > 0 && got == want, "%s: answer %s is not the last miss of %s",
                      p.question, ans, think);
            n_no++;
        }
        n_slips += c.slips > 0;
    }
    cr_assert(n_slips > 100 && n_no > 50, "only %d traces with slips, %d ending no, of 400",
              n_slips, n_no);
}

Test(rl_tasks, integer_answers_are_exact) {
    TaskProblem p = {.op = '+', .n_numbers = 2, .numbers = {487, 355}, .target = 842};
    const Task *t = find("arith");
    cr_assert(t->verify(&p, "842"));
    const char *bad[] = {"",      " 842", "842 ", "0842", "+842", "842.0", "8 42", "84 2", "843",
                         "-842",  "842\n", "8,42", "0x34a", "99999999999999999999999", "842842",
                         "\xff", "-"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert(!t->verify(&p, bad[i]), "\"%s\" accepted", bad[i]);
    TaskProblem z = {.op = '-', .n_numbers = 2, .numbers = {5, 5}, .target = 0};
    cr_assert(t->verify(&z, "0"));
    cr_assert(!t->verify(&z, "-0"));
    cr_assert(!t->verify(&z, "00"));
    TaskProblem l = {.n_numbers = 3, .numbers = {3, 7, -8}, .target = -5};
    cr_assert(find("linear")->verify(&l, "-5"));
    cr_assert(!find("linear")->verify(&l, "5"));
    cr_assert(!find("linear")->verify(&l, "x=-5"));
}

/* ---- the countdown parser ------------------------------------------------- */

static CountdownStatus ev(const char *s, const int64_t *nums, int n, int64_t *v) {
    *v = -12345;
    return countdown_eval(s, nums, n, v);
}

Test(rl_tasks, countdown_parser) {
    const int64_t n3[] = {3, 7, 25}, dup[] = {3, 3, 7}, five[] = {5, 5, 2};
    int64_t v;
    struct {
        const char *s;
        CountdownStatus st;
        int64_t v;
    } cases[] = {
        {"(25-7)*3", COUNTDOWN_OK, 54},
        {" ( 25 - 7 ) * 3 \n", COUNTDOWN_OK, 54},
        {"25-7*3", COUNTDOWN_OK, 4},
        {"25-7-3", COUNTDOWN_OK, 15},
        {"25-(7-3)", COUNTDOWN_OK, 21},
        {"3-25", COUNTDOWN_OK, -22},
        {"((((25))))", COUNTDOWN_OK, 25},
        {"7", COUNTDOWN_OK, 7},
        {"(25-7)/3", COUNTDOWN_OK, 6},
        {"7/3", COUNTDOWN_INEXACT, 0},
        {"25/7*3", COUNTDOWN_INEXACT, 0},
        {"3+3", COUNTDOWN_REUSED, 0},
        {"3+4", COUNTDOWN_NOT_GIVEN, 0},
        {"03+7", COUNTDOWN_NOT_GIVEN, 0},
        {"0", COUNTDOWN_NOT_GIVEN, 0},
        {"99999999999999999999999999", COUNTDOWN_NOT_GIVEN, 0},
        {"", COUNTDOWN_SYNTAX, 0},
        {"   ", COUNTDOWN_SYNTAX, 0},
        {"(3+7", COUNTDOWN_SYNTAX, 0},
        {"3+7)", COUNTDOWN_SYNTAX, 0},
        {")3(", COUNTDOWN_SYNTAX, 0},
        {"()", COUNTDOWN_SYNTAX, 0},
        {"3 7", COUNTDOWN_SYNTAX, 0},
        {"-3+7", COUNTDOWN_SYNTAX, 0},
        {"+3", COUNTDOWN_SYNTAX, 0},
        {"3+-7", COUNTDOWN_SYNTAX, 0},
        {"3**7", COUNTDOWN_SYNTAX, 0},
        {"3x7", COUNTDOWN_SYNTAX, 0},
        {"3+7=10", COUNTDOWN_SYNTAX, 0},
        {"3+", COUNTDOWN_SYNTAX, 0},
        {"abc", COUNTDOWN_SYNTAX, 0},
        {"3.0+7", COUNTDOWN_SYNTAX, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CountdownStatus st = ev(cases[i].s, n3, 3, &v);
        cr_assert_eq(st, cases[i].st, "\"%s\": %s, want %s", cases[i].s, countdown_status_str(st),
                     countdown_status_str(cases[i].st));
        if (st == COUNTDOWN_OK)
            cr_assert_eq(v, cases[i].v, "\"%s\" = %lld", cases[i].s, (long long)v);
    }
    cr_assert_eq(ev("7/(3-3)", dup, 3, &v), COUNTDOWN_DIV_ZERO);
    cr_assert_eq(ev("3*3-7", dup, 3, &v), COUNTDOWN_OK);
    cr_assert_eq(v, 2);
    cr_assert_eq(ev("3*3*3", dup, 3, &v), COUNTDOWN_REUSED);
    cr_assert_eq(ev("5*5-2", five, 3, &v), COUNTDOWN_OK);
    cr_assert_eq(v, 23);
    cr_assert_eq(ev("5*5*5", five, 3, &v), COUNTDOWN_REUSED);
    const int64_t big[] = {999999999999999999, 999999999999999999, 2};
    cr_assert_eq(ev("999999999999999999*999999999999999999", big, 3, &v), COUNTDOWN_OVERFLOW);
    cr_assert_eq(ev("999999999999999999*2", big, 3, &v), COUNTDOWN_OK);
    cr_assert_eq(ev("2-999999999999999999*999999999999999999", big, 3, &v), COUNTDOWN_OVERFLOW);
    cr_assert_eq(ev("7", n3, 0, &v), COUNTDOWN_NOT_GIVEN);

    /* nesting: the limit exactly, one past it, and far past it without
     * running out of stack */
    size_t deep = 1000000;
    char *s = malloc(2 * deep + 2);
    cr_assert_not_null(s);
    for (int depth = COUNTDOWN_MAX_DEPTH; depth <= COUNTDOWN_MAX_DEPTH + 1; depth++) {
        memset(s, '(', (size_t)depth);
        s[depth] = '7';
        memset(s + depth + 1, ')', (size_t)depth);
        s[2 * depth + 1] = 0;
        CountdownStatus want = depth == COUNTDOWN_MAX_DEPTH ? COUNTDOWN_OK : COUNTDOWN_DEPTH;
        cr_assert_eq(ev(s, n3, 3, &v), want, "depth %d", depth);
    }
    memset(s, '(', deep);
    s[deep] = 0;
    cr_assert_eq(ev(s, n3, 3, &v), COUNTDOWN_DEPTH);
    free(s);

    /* the verifier: right expression, wrong target */
    TaskProblem p = {.n_numbers = 3, .numbers = {3, 7, 25}, .target = 54};
    cr_assert(find("countdown")->verify(&p, "(25-7)*3"));
    cr_assert(!find("countdown")->verify(&p, "(25-7)+3"));
    cr_assert(!find("countdown")->verify(&p, "54"));
}

/* Random strings over the parser's alphabet: no crash (the ASan build runs
 * this too), and every accepted string uses only given numbers, each at
 * most once, by an independent count of its literals. */
Test(rl_tasks, countdown_parser_random_input) {
    const char alpha[] = "0123456789()+-*/ x\t";
    const int64_t nums[] = {2, 3, 3, 10, 25};
    Rng r;
    rng_seed(&r, 77);
    int n_ok = 0;
    char s[48];
    for (int i = 0; i < 200000; i++) {
        int len = (int)rng_below(&r, sizeof s);
        for (int j = 0; j < len; j++) {
            /* mostly the given numbers and operators, to reach deep states */
            int k = (int)rng_below(&r, 10);
            if (k < 4) {
                char num[8];
                snprintf(num, sizeof num, "%lld", (long long)nums[rng_below(&r, 5)]);
                for (int c = 0; num[c] && j < len; c++) s[j++] = num[c];
                j--;
            } else {
                s[j] = alpha[rng_below(&r, sizeof alpha - 1)];
            }
        }
        s[len] = 0;
        int64_t v;
        CountdownStatus st = countdown_eval(s, nums, 5, &v);
        cr_assert(st >= COUNTDOWN_OK && st <= COUNTDOWN_OVERFLOW);
        if (st != COUNTDOWN_OK) continue;
        n_ok++;
        int count[5] = {0};
        for (const char *q = s; *q;) {
            if (*q < '0' || *q > '9') {
                q++;
                continue;
            }
            long long x = strtoll(q, (char **)&q, 10);
            int found = 0;
            for (int m = 0; m < 5 && !found; m++)
                if (nums[m] == x && count[m] < 1) count[m] = 1, found = 1;
            cr_assert(found, "\"%s\" accepted with %lld not given or reused", s, x);
        }
    }
    cr_assert_gt(n_ok, 1000, "the random strings should reach valid expressions, got %d", n_ok);
}

/* ---- rewards ------------------------------------------------------------ */

static TaskProblem arith_842(void) {
    return (TaskProblem){.op = '+', .n_numbers = 2, .numbers = {487, 355}, .target = 842,
                         .answer = "842"};
}

static void score(const char *c, const RewardOpts *o, RewardParts *out) {
    TaskProblem p = arith_842();
    reward_score(find("arith"), &p, c, o, out);
}

Test(rl_tasks, reward_layouts) {
    struct {
        const char *c;
        int format, acc, has;
    } cases[] = {
        {" <think> 7+5=12 </think> <answer> 842 </answer>", 1, 1, 1},
        {"<think>x</think><answer>842</answer>", 1, 1, 1},
        {"\n\t<think>\r\nx\n</think>\r\n\n<answer>\n842\n</answer>\n\n", 1, 1, 1},
        {"<think></think> <answer>842</answer>", 1, 1, 1},
        {"<think> x </think> <answer> 843 </answer>", 1, 0, 1},
        {"<think> x </think> <answer></answer>", 1, 0, 1},
        {"<think> x </think> <answer>   </answer>", 1, 0, 1},
        {"<answer>842</answer>", 0, 1, 1},                                /* no thinking */
        {"<think> x </think>", 0, 0, 0},                                  /* no answer */
        {"<think> x </think> 842", 0, 0, 0},
        {"<think> a <think> b </think> c </think> <answer>842</answer>", 0, 1, 1}, /* nested */
        {"<think> a </think> <think> b </think> <answer>842</answer>", 0, 1, 1},   /* twice */
        {"<think>x</think> <answer>1</answer> <answer>842</answer>", 0, 1, 1},     /* last counts */
        {"<think>x</think> <answer>842</answer> <answer>1</answer>", 0, 0, 1},
        {"<answer>842</answer> <think>x</think>", 0, 1, 1},               /* wrong order */
        {"<think>x</think> <answer>842</answer> thanks", 0, 1, 1},        /* text after */
        {"Sure! <think>x</think> <answer>842</answer>", 0, 1, 1},         /* text before */
        {"<think>x</think> so <answer>842</answer>", 0, 1, 1},            /* text between */
        {"<think>x</think> <answer>842", 0, 0, 0},                        /* unclosed */
        {"<think>x</think> <answer>8<think>42</answer>", 0, 0, 1},        /* tag inside */
        {"<think>x <answer>1</answer></think> <answer>842</answer>", 0, 1, 1},
        {"<think>x</think> </answer>842<answer>", 0, 0, 0},
        {"<THINK>x</THINK> <ANSWER>842</ANSWER>", 0, 0, 0},
        {"<think>x</think> <answer>842</answer></answer>", 0, 0, 1}, /* "842</answer>" */
        {"<think>x</think> <answer><answer>842</answer>", 0, 1, 1},
        {"", 0, 0, 0},
        {"842", 0, 0, 0},
        {"<think", 0, 0, 0},
        {"<answer>", 0, 0, 0},
        {"</answer>", 0, 0, 0},
        {"<think>x</think> <answer>\xff\xfe 842</answer>", 1, 0, 1},
    };
    RewardOpts strict;
    reward_opts_default(&strict);
    strict.require_format = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        RewardParts r;
        score(cases[i].c, NULL, &r);
        cr_assert(r.format == (float)cases[i].format && r.accuracy == (float)cases[i].acc &&
                      r.has_answer == cases[i].has,
                  "\"%s\": format %g accuracy %g has_answer %d, want %d %d %d", cases[i].c,
                  (double)r.format, (double)r.accuracy, r.has_answer, cases[i].format,
                  cases[i].acc, cases[i].has);
        cr_assert_float_eq(r.total, r.accuracy + 0.1f * r.format, 1e-6, "\"%s\"", cases[i].c);
        score(cases[i].c, &strict, &r);
        cr_assert_eq(r.accuracy, (float)(cases[i].acc && cases[i].format),
                     "\"%s\" with require_format", cases[i].c);
    }
    RewardParse rp;
    reward_parse(" <think>\n 7+5=12 \n</think> <answer> 842 </answer>", &rp);
    cr_assert(rp.format_ok);
    cr_assert(rp.think_len == 6 && !strncmp(rp.think, "7+5=12", 6));
    cr_assert(rp.answer_len == 3 && !strncmp(rp.answer, "842", 3));
    reward_parse("no tags", &rp);
    cr_assert(!rp.format_ok && !rp.think && !rp.answer);
}

Test(rl_tasks, reward_weights_and_language) {
    RewardOpts o;
    reward_opts_default(&o);
    cr_assert(o.w_accuracy == 1.0f && o.w_format == 0.1f && o.w_language == 0.0f &&
              !o.require_format);
    o.w_accuracy = 2;
    o.w_format = 0.5f;
    o.w_language = 0.25f;
    RewardParts r;
    score("<think> add the digits </think> <answer> 842 </answer>", &o, &r);
    cr_assert_float_eq(r.language, 1.0f, 1e-6);
    cr_assert_float_eq(r.total, 2 + 0.5f + 0.25f, 1e-6);
    score("<think> add \xe6\x95\xb0\xe5\xad\x97 the digits </think> <answer> 841 </answer>", &o,
          &r);
    cr_assert_float_eq(r.language, 0.75f, 1e-6, "3 of 4 words ASCII, got %g", (double)r.language);
    cr_assert_float_eq(r.total, 0.5f + 0.25f * 0.75f, 1e-6);
    score("<think> </think> <answer> 842 </answer>", &o, &r);
    cr_assert_eq(r.language, 0.0f, "no words, no language reward");
    score("<answer> 842 </answer>", &o, &r);
    cr_assert_eq(r.language, 0.0f);
    cr_assert_float_eq(r.total, 2.0f, 1e-6);
}

Test(rl_tasks, reward_hostile_sizes) {
    size_t n = 4u << 20;
    char *s = malloc(n + 64);
    cr_assert_not_null(s);
    RewardParts r;
    /* a huge number in the answer block */
    int k = sprintf(s, "<think>x</think> <answer>");
    memset(s + k, '9', n);
    strcpy(s + k + n, "</answer>");
    score(s, NULL, &r);
    cr_assert(r.format == 1 && r.accuracy == 0 && r.has_answer);
    /* an answer just over REWARD_ANSWER_MAX of spaces around the right one */
    k = sprintf(s, "<think>x</think> <answer>842");
    memset(s + k, ' ', REWARD_ANSWER_MAX);
    strcpy(s + k + REWARD_ANSWER_MAX, "</answer>");
    score(s, NULL, &r);
    cr_assert_eq(r.accuracy, 1.0f, "trailing white space is trimmed before the size limit");
    k = sprintf(s, "<think>x</think> <answer>842");
    memset(s + k, '0', REWARD_ANSWER_MAX);
    strcpy(s + k + REWARD_ANSWER_MAX, "</answer>");
    score(s, NULL, &r);
    cr_assert_eq(r.accuracy, 0.0f);
    /* many tags: linear time (this would take minutes if quadratic) */
    for (size_t i = 0; i + 8 <= n; i += 8) memcpy(s + i, "<answer>", 8);
    s[n] = 0;
    double t0 = time_now();
    score(s, NULL, &r);
    cr_assert(!r.has_answer && r.format == 0);
    for (size_t i = 0; i + 9 <= n; i += 9) memcpy(s + i, "</answer>", 9);
    s[n - n % 9] = 0;
    score(s, NULL, &r);
    cr_assert(!r.has_answer);
    for (size_t i = 0; i + 17 <= n; i += 17) memcpy(s + i, "<answer></answer>", 17);
    s[n - n % 17] = 0;
    score(s, NULL, &r);
    cr_assert(r.has_answer && r.accuracy == 0);
    /* arbitrary bytes, no NUL */
    Rng g;
    rng_seed(&g, 5);
    for (size_t i = 0; i < n; i++) s[i] = (char)(1 + rng_below(&g, 255));
    s[n] = 0;
    score(s, NULL, &r);
    cr_assert_lt(time_now() - t0, 5.0, "hostile completions took %.1f s", time_now() - t0);
    free(s);
}

Test(rl_tasks, reward_countdown) {
    TaskProblem p = {.n_numbers = 3, .numbers = {3, 7, 25}, .target = 54};
    const Task *t = find("countdown");
    RewardParts r;
    reward_score(t, &p, " <think> 25-7=18, 18*3=54, yes </think> <answer> (25-7)*3 </answer>", NULL,
                 &r);
    cr_assert(r.accuracy == 1 && r.format == 1);
    const char *wrong[] = {"<think>x</think> <answer> (25-7)*3=54 </answer>",
                           "<think>x</think> <answer> 25/0 </answer>",
                           "<think>x</think> <answer> 7/(25-25) </answer>",
                           "<think>x</think> <answer> 54 </answer>",
                           "<think>x</think> <answer> ((((((((((((((((((((((((((((((((((3"
                           ")))))))))))))))))))))))))))))))))) </answer>"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        reward_score(t, &p, wrong[i], NULL, &r);
        cr_assert_eq(r.accuracy, 0.0f, "%s", wrong[i]);
    }
}

/* ---- template ------------------------------------------------------------ */

Test(rl_tasks, templates) {
    char buf[1024];
    int n = template_prompt(RL_TEMPLATE_R1ZERO, "Compute 1 + 2", buf, sizeof buf);
    const char *want =
        "A conversation between User and Assistant. The user asks a question, and the Assistant "
        "solves it. The assistant first thinks about the reasoning process in the mind and then "
        "provides the user with the answer. The reasoning process and answer are enclosed within "
        "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning "
        "process here </think> <answer> answer here </answer>. User: Compute 1 + 2. Assistant:";
    cr_assert_str_eq(buf, want);
    cr_assert_eq(n, (int)strlen(want));
    n = template_prompt(RL_TEMPLATE_SHORT, "Compute 1 + 2", buf, sizeof buf);
    cr_assert_str_eq(buf, "User: Compute 1 + 2. Assistant:");
    cr_assert_eq(template_prompt(RL_TEMPLATE_SHORT, "Compute 1 + 2", buf, 31), -1);
    cr_assert_eq(template_prompt(RL_TEMPLATE_SHORT, "Compute 1 + 2", buf, 32), 31);
    template_completion("1+2=3", "3", buf, sizeof buf);
    cr_assert_str_eq(buf, " <think> 1+2=3 </think> <answer> 3 </answer>");
    template_completion("", "3", buf, sizeof buf);
    cr_assert_str_eq(buf, " <think> </think> <answer> 3 </answer>");
    cr_assert_eq(template_completion("1+2=3", "3", buf, 10), -1);
    RlTemplate t;
    cr_assert(template_parse("r1zero", &t) == 0 && t == RL_TEMPLATE_R1ZERO);
    cr_assert(template_parse("short", &t) == 0 && t == RL_TEMPLATE_SHORT);
    cr_assert_eq(template_parse("R1Zero", &t), -1);
    cr_assert_eq(template_parse(NULL, &t), -1);
    cr_assert_str_eq(template_name(RL_TEMPLATE_SHORT), "short");
    cr_assert_str_eq(template_name(RL_TEMPLATE_R1ZERO), "r1zero");
}

/* ---- corpus -------------------------------------------------------------- */

Test(rl_tasks, corpus_is_deterministic_and_scored_as_written) {
    static CorpusExample a, b;
    Err err = {{0}};
    for (int k = 0; k < N_ALL; k++) {
        CorpusOpts o;
        corpus_opts_default(&o);
        o.task = find(ALL[k]);
        o.seed = 11;
        o.tmpl = k % 2 ? RL_TEMPLATE_SHORT : RL_TEMPLATE_R1ZERO;
        int n_diff = 0;
        for (uint64_t i = 0; i < 200; i++) {
            cr_assert_eq(corpus_example(&o, i, &a, &err), 0, "%s", err.msg);
            cr_assert_eq(corpus_example(&o, i, &b, &err), 0, "%s", err.msg);
            cr_assert_str_eq(a.text, b.text);
            /* the completion, scored by the reward, is what the corpus says it is */
            const char *c = strstr(a.text, "Assistant:");
            cr_assert_not_null(c);
            char prompt[CORPUS_TEXT_MAX];
            template_prompt(o.tmpl, a.problem.question, prompt, sizeof prompt);
            cr_assert(!strncmp(a.text, prompt, strlen(prompt)), "%s", a.text);
            RewardParts r;
            reward_score(o.task, &a.problem, a.text + strlen(prompt), NULL, &r);
            cr_assert_eq(r.format, 1.0f, "%s", a.text);
            cr_assert_eq(r.accuracy, (float)a.correct, "%s", a.text);
            cr_assert_eq(a.correct, !a.skipped ? a.errors == 0 : a.correct);
            cr_assert_eq(task_split_of(o.task, &a.problem), TASK_TRAIN);
            o.seed = 12;
            cr_assert_eq(corpus_example(&o, i, &b, &err), 0);
            o.seed = 11;
            n_diff += strcmp(a.text, b.text) != 0;
        }
        cr_assert_gt(n_diff, 150, "%s: another seed should give another corpus", ALL[k]);
    }
}

Test(rl_tasks, corpus_rates_and_no_test_problem) {
    const Task *t = find("arith-add");
    CorpusOpts o;
    corpus_opts_default(&o);
    o.task = t;
    o.seed = 3;
    const char *path = h_path(g_dir, "c.jsonl");
    CorpusStats st;
    Err err = {{0}};
    cr_assert_eq(corpus_write_jsonl(&o, 5000, path, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(st.n, 5000);
    cr_assert(st.n_skipped > 1350 && st.n_skipped < 1650, "skipped %lld of 5000, want ~1500",
              (long long)st.n_skipped);
    /* 3-digit sums write 0-2 carries (the last column is written whole), each
       about half the time: 1 - E[0.4^carries] ~ 0.47 of the worked examples go wrong */
    double werr = (double)st.n_with_errors / (double)(st.n - st.n_skipped);
    cr_assert(werr > 0.42 && werr < 0.52, "%.3f of worked examples with errors", werr);
    cr_assert(st.n_correct > 0.25 * 5000 && st.n_correct < 0.55 * 5000, "%lld right",
              (long long)st.n_correct);

    /* the file: 5000 JSON lines, none a test problem */
    size_t len;
    char *text = h_read_file(path, &len);
    cr_assert_not_null(text);
    cr_assert_eq(h_count_lines(text), 5000);
    char *test_q = collect(t, TASK_TEST, 20000, 3, 1);
    int n_lines = 0, n_skip_guess_right = 0, n_skip = 0;
    for (char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        cr_assert_not_null(nl);
        *nl = 0;
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        cr_assert_not_null(j, "line %d is not JSON: %s", n_lines + 1, je.text);
        const char *s = json_string_value(json_object_get(j, "text"));
        cr_assert_not_null(s);
        const char *u = strstr(s, "User: "), *e = strstr(s, ". Assistant:");
        cr_assert(u && e && e > u);
        char q[TASK_QUESTION_MAX];
        snprintf(q, sizeof q, "%.*s", (int)(e - u - 6), u + 6);
        cr_assert_null(bsearch(q, test_q, 20000, TASK_QUESTION_MAX, cmp_str),
                       "test problem in the corpus: %s", q);
        if (strstr(s, "Assistant: <think> </think>")) {
            n_skip++;
            CorpusExample ex;
            cr_assert_eq(corpus_example(&o, (uint64_t)n_lines, &ex, &err), 0);
            cr_assert_str_eq(ex.text, s, "line %d differs from corpus_example", n_lines + 1);
            n_skip_guess_right += ex.correct;
        }
        json_decref(j);
        n_lines++;
    }
    cr_assert_eq(n_skip, st.n_skipped);
    double right = (double)n_skip_guess_right / n_skip;
    cr_assert(right > 0.19 && right < 0.31, "guesses right %.3f, want ~0.25", right);
    free(test_q);
    free(text);

    /* the same options write the same bytes */
    const char *path2 = h_path(g_dir, "c2.jsonl");
    cr_assert_eq(corpus_write_jsonl(&o, 5000, path2, NULL, &err), 0);
    char *a = h_read_file(path, NULL), *b = h_read_file(path2, NULL);
    cr_assert(a && b && !strcmp(a, b), "two runs differ");
    free(a);
    free(b);
}

Test(rl_tasks, corpus_options) {
    CorpusOpts o;
    corpus_opts_default(&o);
    cr_assert(o.skip_think == 0.3f && o.error_rate == 0.6f && o.tmpl == RL_TEMPLATE_R1ZERO);
    CorpusExample *ex = malloc(sizeof *ex);
    Err err = {{0}};
    cr_assert_eq(corpus_example(&o, 0, ex, &err), -1, "no task");
    o.task = find("countdown");
    o.difficulty = 2;
    o.difficulty_max = 4;
    int seen[8] = {0};
    for (uint64_t i = 0; i < 300; i++) {
        cr_assert_eq(corpus_example(&o, i, ex, &err), 0, "%s", err.msg);
        cr_assert(ex->problem.difficulty >= 2 && ex->problem.difficulty <= 4);
        seen[ex->problem.difficulty]++;
    }
    cr_assert(seen[2] > 60 && seen[3] > 60 && seen[4] > 60, "%d %d %d", seen[2], seen[3], seen[4]);
    /* a weighted mix: 2,2,3 is two thirds 2 */
    o.n_mix = 3;
    o.mix[0] = o.mix[1] = 2;
    o.mix[2] = 3;
    memset(seen, 0, sizeof seen);
    for (uint64_t i = 0; i < 600; i++) {
        cr_assert_eq(corpus_example(&o, i, ex, &err), 0, "%s", err.msg);
        seen[ex->problem.difficulty]++;
    }
    cr_assert(seen[2] > 360 && seen[2] < 440 && seen[2] + seen[3] == 600, "%d %d", seen[2],
              seen[3]);
    o.mix[1] = 7;
    cr_assert_eq(corpus_example(&o, 0, ex, &err), -1);
    cr_assert(strstr(err.msg, "not 7"), "%s", err.msg);
    o.n_mix = 0;
    o.difficulty_max = 7;
    cr_assert_eq(corpus_example(&o, 0, ex, &err), -1);
    cr_assert(strstr(err.msg, "difficulty"), "%s", err.msg);
    o.difficulty_max = 0;
    o.difficulty = 1;
    cr_assert_eq(corpus_example(&o, 0, ex, &err), -1);
    o.difficulty = 0;
    o.skip_think = 1.5f;
    cr_assert_eq(corpus_example(&o, 0, ex, &err), -1);
    cr_assert(strstr(err.msg, "skip_think"), "%s", err.msg);
    o.skip_think = 0;
    o.error_rate = -0.1f;
    cr_assert_eq(corpus_example(&o, 0, ex, &err), -1);
    o.error_rate = 0;
    cr_assert_eq(corpus_write_jsonl(&o, -1, h_path(g_dir, "x"), NULL, &err), -1);
    cr_assert_eq(corpus_write_jsonl(&o, 1, h_path(g_dir, "no/such/dir/x"), NULL, &err), -1);
    /* without noise every example is right */
    for (uint64_t i = 0; i < 100; i++) {
        cr_assert_eq(corpus_example(&o, i, ex, &err), 0);
        cr_assert(ex->correct && !ex->skipped && ex->errors == 0);
    }
    o.skip_think = 1;
    cr_assert_eq(corpus_example(&o, 0, ex, &err), 0);
    cr_assert(ex->skipped && strstr(ex->text, "<think> </think> <answer> "));
    free(ex);
}

/* ---- whale task-data --------------------------------------------------------- */

Test(rl_tasks, cli_task_data) {
    const char *out = h_path(g_dir, "t.jsonl"), *out2 = h_path(g_dir, "t2.jsonl");
    HRun r;
    WHALE(&r, "task-data", "--task", "countdown", "--n", "50", "--out", out, "--seed", "4",
          "--difficulty", "3-4", "--template", "short", "--skip-think", "0", "--error-rate", "0");
    expect_ok(&r);
    h_run_free(&r);
    char *text = h_read_file(out, NULL);
    cr_assert_not_null(text);
    cr_assert_eq(h_count_lines(text), 50);
    cr_assert(!strncmp(text, "{\"text\":\"User: Make ", 20), "%.60s", text);
    cr_assert_null(strstr(text, "A conversation"));
    WHALE(&r, "task-data", "--task", "countdown", "--n", "50", "--out", out2, "--seed", "4",
          "--difficulty", "3-4", "--template", "short", "--skip-think", "0", "--error-rate", "0");
    expect_ok(&r);
    h_run_free(&r);
    char *text2 = h_read_file(out2, NULL);
    cr_assert(text2 && !strcmp(text, text2), "the same flags should write the same file");
    free(text);
    free(text2);
    WHALE(&r, "task-data", "--task", "arith", "--n", "0", "--out", out);
    expect_ok(&r);
    h_run_free(&r);
    cr_assert_eq(h_file_size(out), 0);

    struct {
        const char *flag, *value, *needle;
    } bad[] = {
        {"--task", "nope", "unknown task"},   {"--difficulty", "0", "--difficulty"},
        {"--difficulty", "4-3", "--difficulty"}, {"--difficulty", "x", "--difficulty"},
        {"--difficulty", "9", "1..6"},        {"--difficulty", "3-", "--difficulty"},
        {"--difficulty", "2,9", "1..6"},      {"--difficulty", "2,,3", "--difficulty"},
        {"--difficulty", "2,3,", "--difficulty"},
        {"--skip-think", "1.5", "--skip-think"}, {"--error-rate", "-0.1", "--error-rate"},
        {"--template", "long", "--template"}, {"--n", "-3", "--n"},
        {"--n", "ten", "--n"},                {"--bogus", "1", "bogus"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *task = strcmp(bad[i].flag, "--task") ? "linear" : bad[i].value;
        if (!strcmp(bad[i].flag, "--task") || !strcmp(bad[i].flag, "--n"))
            WHALE(&r, "task-data", "--task", task, "--out", out,
                  !strcmp(bad[i].flag, "--n") ? "--n" : "--seed",
                  !strcmp(bad[i].flag, "--n") ? bad[i].value : "1",
                  !strcmp(bad[i].flag, "--n") ? "--seed" : "--n", "1");
        else
            WHALE(&r, "task-data", "--task", task, "--n", "1", "--out", out, bad[i].flag,
                  bad[i].value);
        EXPECT_FAIL(&r, bad[i].needle);
        cr_assert_eq(r.code, 2, "%s %s: exit %d, want 2", bad[i].flag, bad[i].value, r.code);
        h_run_free(&r);
    }
    WHALE(&r, "task-data", "--n", "1", "--out", out);
    EXPECT_FAIL(&r, "--task");
    h_run_free(&r);
    WHALE(&r, "task-data", "--task", "linear", "--n", "1", "--out", h_path(g_dir, "no/dir/x"));
    EXPECT_FAIL(&r, "no/dir/x");
    cr_assert_eq(r.code, 1);
    h_run_free(&r);
    WHALE(&r, "task-data", "--help");
    expect_ok(&r);
    cr_assert(strstr(r.out, "--skip-think"));
    h_run_free(&r);
}
