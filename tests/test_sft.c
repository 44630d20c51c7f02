/* SPDX-License-Identifier: MIT */
/* whale sft and whale distill. The target mask: a chat example's targets
 * decode to exactly the assistant contents (as each template writes them)
 * and their end-of-turn tokens, a prompt/completion example's to the
 * completion and EOS. A tiny model fine-tuned on a few task solutions
 * memorises them (the loss falls by a large factor, greedy generation
 * gives each completion back) and, as a teacher, yields a distill.jsonl
 * whose every line verifies, repeats none and holds training problems only.
 * A run stopped and resumed ends with the bytes of an uninterrupted one.
 * Bad lines are named by file:line and field. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

#include "helpers.h"
#include "task_fixture.h"
#include "infer/chat.h"
#include "rl/reward.h"
#include "rl/sft_data.h"
#include "rl/task.h"
#include "rl/template.h"
#include "tokenizer/tokenizer_json.h"
#include "whale_cli.h"

static char g_dir[64];

static void setup(void) {
    cr_assert_eq(h_tmpdir(g_dir, sizeof g_dir, "sft"), 0, "mkdtemp failed");
    setenv("WHALE_QUIET", "1", 1);
    setenv("OMP_WAIT_POLICY", "passive", 1);
}

static void teardown(void) { h_rmtree(g_dir); }

TestSuite(sft, .init = setup, .fini = teardown);

/* A tiny model in g_dir/name (its tokenizer has DeepSeek's chat tokens). */
static const char *init_model(const char *name, int seed) {
    whale_init_tiny(h_path(g_dir, name), seed);
    return h_path(g_dir, name);
}

/* The decoded text of ex's tokens with target == want, in order. */
static char *decode_where(const Tokenizer *tok, const SftExample *ex, int want) {
    int *ids = malloc(sizeof(int) * (size_t)ex->len), n = 0;
    for (int i = 0; i < ex->len; i++)
        if (ex->target[i] == want) ids[n++] = ex->ids[i];
    char *s;
    size_t len;
    Err err;
    cr_assert_eq(tokenizer_decode(tok, ids, n, 0, &s, &len, &err), 0, "%s", err.msg);
    free(ids);
    return s;
}

static void encode_ok(const SftEncoder *e, const char *json, SftExample *ex) {
    Err err;
    cr_assert_eq(sft_encode(e, json, strlen(json), ex, &err), 0, "%s: %s", json, err.msg);
}

static const char *k_chat =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
    " {\"role\": \"user\", \"content\": \"What is 2+2?\"},"
    " {\"role\": \"assistant\", \"content\": \"<think>2+2 is 4</think>It is 4.\","
    "  \"reasoning_content\": \"dropped\"},"
    " {\"role\": \"user\", \"content\": \"And 3+3?\"},"
    " {\"role\": \"assistant\", \"content\": \"6, said the whale.\"}]}";

Test(sft, chat_targets_are_the_assistant_turns, .timeout = 60) {
    Err err;
    Tokenizer *tok = tokenizer_load(init_model("m", 1), &err);
    cr_assert(tok, "%s", err.msg);
    /* what each template writes of the two turns: R1's drop the thinking */
    const struct {
        ChatTemplateKind k;
        const char *want;
    } cases[] = {
        {CHAT_DEEPSEEK_R1, "It is 4." TOK_EOS "6, said the whale." TOK_EOS},
        {CHAT_R1_DISTILL_QWEN, "It is 4." TOK_EOS "6, said the whale." TOK_EOS},
        {CHAT_DEEPSEEK_V3, "<think>2+2 is 4</think>It is 4." TOK_EOS "6, said the whale." TOK_EOS},
        {CHAT_CHATML, "<think>2+2 is 4</think>It is 4.<|im_end|>6, said the whale.<|im_end|>"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        SftEncoder e = {tok, cases[c].k, 4096};
        SftExample ex;
        encode_ok(&e, k_chat, &ex);
        char *targets = decode_where(tok, &ex, 1);
        cr_expect_str_eq(targets, cases[c].want, "template %s", chat_template_name(cases[c].k));
        /* and the whole sequence is the template's rendering, nothing added */
        ChatMessage m[] = {{"system", "Be brief.", NULL},
                           {"user", "What is 2+2?", NULL},
                           {"assistant", "<think>2+2 is 4</think>It is 4.", NULL},
                           {"user", "And 3+3?", NULL},
                           {"assistant", "6, said the whale.", NULL}};
        char *full, *all;
        size_t n;
        cr_assert_eq(chat_template_render(cases[c].k, m, 5, 0, &full, &n, &err), 0);
        int *ids = malloc(sizeof(int) * (size_t)ex.len);
        for (int i = 0; i < ex.len; i++) ids[i] = ex.ids[i];
        cr_assert_eq(tokenizer_decode(tok, ids, ex.len, 0, &all, &n, &err), 0);
        cr_expect_str_eq(all, full, "template %s", chat_template_name(cases[c].k));
        /* two runs of targets, one per assistant turn */
        int runs = 0;
        for (int i = 1; i < ex.len; i++) runs += ex.target[i] && !ex.target[i - 1];
        cr_expect_eq(runs, 2, "template %s: %d runs of targets", chat_template_name(cases[c].k),
                     runs);
        cr_expect_eq(ex.target[0], 0);
        free(ids), free(all), free(full), free(targets);
        sft_example_free(&ex);
    }
    tokenizer_free(tok);
}

Test(sft, completion_targets_are_the_completion_and_eos, .timeout = 60) {
    Err err;
    Tokenizer *tok = tokenizer_load(init_model("m", 1), &err);
    cr_assert(tok, "%s", err.msg);
    SftEncoder e = {tok, CHAT_DEEPSEEK_R1, 4096};
    SftExample ex;
    encode_ok(&e, "{\"prompt\": \"User: Compute 3 + 5. Assistant:\", \"completion\": "
                  "\" <think> 3+5=8 </think> <answer> 8 </answer>\"}", &ex);
    char *t = decode_where(tok, &ex, 1), *p = decode_where(tok, &ex, 0);
    cr_expect_str_eq(t, " <think> 3+5=8 </think> <answer> 8 </answer>" TOK_EOS);
    cr_expect_str_eq(p, TOK_BOS "User: Compute 3 + 5. Assistant:");
    cr_expect_eq(ex.ids[0], tokenizer_bos_id(tok));
    cr_expect_eq(ex.ids[ex.len - 1], tokenizer_eos_id(tok));
    free(t), free(p);
    sft_example_free(&ex);
    tokenizer_free(tok);
}

/* sft_data_load's error for a file holding text, which must contain every needle. */
static void expect_load_error(const Tokenizer *tok, const char *text, int max_len,
                              const char *const *needles) {
    const char *path = h_path(g_dir, "bad.jsonl");
    cr_assert_eq(h_write_text(path, text), 0);
    SftEncoder e = {tok, CHAT_DEEPSEEK_R1, max_len};
    SftData d;
    Err err = {{0}};
    cr_assert_neq(sft_data_load(&d, path, &e, &err), 0, "accepted: %s", text);
    for (const char *const *n = needles; *n; n++)
        cr_expect(strstr(err.msg, *n), "for %s: \"%s\" should contain \"%s\"", text, err.msg, *n);
}
#define EXPECT_LOAD_ERROR(tok, text, max_len, ...) \
    expect_load_error(tok, text, max_len, (const char *const[]){__VA_ARGS__, NULL})

Test(sft, bad_lines_are_named, .timeout = 60) {
    Err err;
    Tokenizer *tok = tokenizer_load(init_model("m", 1), &err);
    cr_assert(tok, "%s", err.msg);
    const char *ok = "{\"prompt\": \"a\", \"completion\": \"b\"}\n";
    char buf[512];
    snprintf(buf, sizeof buf, "%s\n%s{\"prompt\": \"a\", \"completion\": \"b\"\n", ok, ok);
    EXPECT_LOAD_ERROR(tok, buf, 4096, "bad.jsonl:4:", "not JSON");
    EXPECT_LOAD_ERROR(tok, "[1, 2]\n", 4096, "bad.jsonl:1:", "object");
    EXPECT_LOAD_ERROR(tok, "{\"prompt\": \"a\"}\n", 4096, ":1:", "'completion' is missing");
    EXPECT_LOAD_ERROR(tok, "{\"prompt\": 3, \"completion\": \"b\"}\n", 4096, "'prompt'", "string");
    EXPECT_LOAD_ERROR(tok, "{\"text\": \"a\"}\n", 4096, ":1:", "messages", "prompt");
    EXPECT_LOAD_ERROR(tok, "{\"messages\": {}}\n", 4096, "'messages'", "array");
    EXPECT_LOAD_ERROR(tok, "{\"messages\": [{\"role\": \"tool\", \"content\": \"x\"}]}\n", 4096,
                      "messages[0]", "'role'", "tool");
    EXPECT_LOAD_ERROR(tok, "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}\n", 4096,
                      "messages[0]", "'content'", "string");
    EXPECT_LOAD_ERROR(tok, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n", 4096,
                      "no assistant turn");
    EXPECT_LOAD_ERROR(tok, "{\"messages\": [], \"prompt\": \"a\"}\n", 4096, "both");
    EXPECT_LOAD_ERROR(tok, "{\"prompt\": \"a long prompt here\", \"completion\": \"and more\"}\n",
                      8, ":1:", "longer than the context of 8");
    EXPECT_LOAD_ERROR(tok, "\n  \n", 4096, "bad.jsonl", "no examples");
    tokenizer_free(tok);
    /* the command says it in one line */
    HRun r;
    cr_assert_eq(h_write_text(h_path(g_dir, "bad.jsonl"), buf), 0);
    WHALE(&r, "sft", "-m", h_path(g_dir, "m"), "--data", h_path(g_dir, "bad.jsonl"), "--out",
          h_path(g_dir, "o"), "-t", "1");
    EXPECT_FAIL(&r, "bad.jsonl:4:");
    h_run_free(&r);
    WHALE(&r, "sft", "-m", h_path(g_dir, "m"), "--data", h_path(g_dir, "nosuch.jsonl"), "--out",
          h_path(g_dir, "o"));
    EXPECT_FAIL(&r, "nosuch.jsonl");
    h_run_free(&r);
    WHALE(&r, "sft", "-m", h_path(g_dir, "m"), "--data", h_path(g_dir, "bad.jsonl"), "--out",
          h_path(g_dir, "o"), "--epochs", "2", "--steps", "3");
    EXPECT_FAIL(&r, "--epochs", "--steps");
    h_run_free(&r);
}

/* ---- memorisation, and the memorised model as a teacher -------------------- */

enum { N_MEM = 6, DIFFICULTY = 1, SEED = 7 };

static void write_solutions(const char *path, char prompts[][128], char completions[][512]) {
    cr_assert_eq(h_write_task_solutions(path, "arith-add", SEED, DIFFICULTY, N_MEM, prompts, completions), 0,
                 "cannot write %s", path);
}

/* The first and last "loss" of a metrics.jsonl, with its lines checked for
 * DESIGN.md's fields. */
static void read_losses(const char *path, double *first, double *last) {
    char *m = h_read_file(path, NULL);
    cr_assert(m, "no %s", path);
    int n = 0;
    for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        cr_assert(j, "not JSON: %s", line);
        if (json_object_get(j, "loss")) {
            const char *keys[] = {"step", "loss", "lr", "grad_norm", "tok_s"};
            for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
                cr_expect(json_object_get(j, keys[i]), "no %s in %s", keys[i], line);
            *last = json_number_value(json_object_get(j, "loss"));
            if (n++ == 0) *first = *last;
        }
        json_decref(j);
    }
    free(m);
    cr_assert_gt(n, 0, "no loss lines in %s", path);
}

/* The problem of arith-add whose short prompt is prompt, among training
 * problems 0..n-1 of SEED; 0 when found. */
static int find_problem(const char *prompt, int n, TaskProblem *out) {
    const Task *t = task_find("arith-add");
    for (int i = 0; i < n; i++) {
        char buf[128];
        task_generate(t, SEED, TASK_TRAIN, (uint64_t)i, DIFFICULTY, out);
        template_prompt(RL_TEMPLATE_SHORT, out->question, buf, sizeof buf);
        if (!strcmp(buf, prompt)) return 0;
    }
    return -1;
}

Test(sft, memorises_then_teaches, .timeout = 300) {
    char prompts[N_MEM][128], completions[N_MEM][512];
    const char *data = h_path(g_dir, "mem.jsonl");
    write_solutions(data, prompts, completions);
    const char *base = init_model("m", 5);
    HRun r;
    WHALE(&r, "sft", "-m", base, "--data", data, "--out", h_path(g_dir, "s"), "--steps", "90",
          "--batch", "6", "--lr", "3e-3", "--schedule", "constant", "--weight-decay", "0", "-t",
          "1");
    expect_ok(&r);
    h_run_free(&r);
    double first = 0, last = 0;
    read_losses(h_path(h_path(g_dir, "s"), "metrics.jsonl"), &first, &last);
    cr_expect_gt(first / last, 20.0, "the loss fell from %g to %g only", first, last);
    cr_expect_gt(h_file_size(h_path(h_path(g_dir, "s"), "metrics.svg")), 0, "no plot");

    /* greedy generation gives every completion back */
    ChatSession cs;
    ChatOpts co = {.raw = 1};
    Err err;
    cr_assert_eq(chat_open(&cs, h_path(g_dir, "s"), &co, &err), 0, "%s", err.msg);
    for (int i = 0; i < N_MEM; i++) {
        GenResult res;
        gen_reset(&cs.gen);
        cr_assert_eq(gen_run(&cs.gen, prompts[i], strlen(prompts[i]), 1, 200, NULL, NULL, NULL,
                             &res, &err), 0, "%s", err.msg);
        cr_expect_str_eq(res.text, completions[i], "for %s: got \"%s\", want \"%s\"", prompts[i],
                         res.text, completions[i]);
        cr_expect_eq(res.stop, GEN_STOP_EOS, "no EOS after %s", prompts[i]);
    }
    chat_close(&cs);

    /* as a teacher: problems 0..N_MEM+1, two of them never seen */
    const char *dist = h_path(g_dir, "d");
    WHALE(&r, "distill", "-m", h_path(g_dir, "s"), "--student", base, "--task", "arith-add",
          "--template", "short", "--difficulty", "1", "--seed", "7", "--problems", "8", "--k", "4",
          "--temp", "0.7", "--max-tokens", "60", "--out", dist, "--data-only", "-t", "1");
    expect_ok(&r);
    h_run_free(&r);
    char *text = h_read_file(h_path(dist, "distill.jsonl"), NULL);
    cr_assert(text, "no distill.jsonl");
    const Task *t = task_find("arith-add");
    int lines = 0;
    char seen[64][512];
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        json_t *j = json_loads(line, 0, NULL);
        cr_assert(j, "not JSON: %s", line);
        const char *p = json_string_value(json_object_get(j, "prompt"));
        const char *c = json_string_value(json_object_get(j, "completion"));
        cr_assert(p && c, "no prompt or completion: %s", line);
        TaskProblem prob;
        cr_assert_eq(find_problem(p, 8, &prob), 0, "%s is not one of the 8 problems", p);
        cr_expect_eq(task_split_of(t, &prob), TASK_TRAIN, "%s is a test problem", p);
        RewardParts rw;
        reward_score(t, &prob, c, NULL, &rw);
        cr_expect(rw.accuracy == 1.0f && rw.format == 1.0f, "kept a wrong sample: %s", line);
        cr_assert_lt(lines, 64);
        snprintf(seen[lines], sizeof seen[lines], "%s|%s", p, c);
        for (int i = 0; i < lines; i++) cr_expect_str_neq(seen[i], seen[lines], "a repeat: %s", line);
        json_decref(j);
    }
    free(text);
    cr_expect_geq(lines, N_MEM - 1, "only %d samples kept from a teacher that knows %d", lines,
                  N_MEM);
    json_t *sum = json_load_file(h_path(dist, "distill.json"), 0, NULL);
    cr_assert(sum, "no distill.json");
    cr_expect_eq(json_integer_value(json_object_get(sum, "kept")), lines);
    cr_expect_eq(json_integer_value(json_object_get(sum, "samples")), 32);
    /* the memorised teacher repeats itself, and the two problems it never saw
     * (and sampling at 0.7) give wrong answers: both filters had work */
    const json_int_t right = json_integer_value(json_object_get(sum, "right"));
    cr_expect(right > lines && right < 32, "right %d of 32, kept %d", (int)right, lines);
    cr_expect_geq(json_integer_value(json_object_get(sum, "problems_kept")), N_MEM - 1);
    json_decref(sum);
}

/* ---- --resume ------------------------------------------------------------- */

/* SFT of g_dir/m on the worked solutions (with --batch 2: two a step), one
 * held out, eval and a checkpoint every 2 steps; the schedule does not
 * depend on --steps (warmup, then constant), so runs of other lengths share
 * their first steps. */
#define SFT_ARGS(out)                                                                           \
    "sft", "-m", h_path(g_dir, "m"), "--data", h_path(g_dir, "mem.jsonl"), "--out",             \
        h_path(g_dir, out), "--val", "1", "--eval-every", "2", "--save-every", "2", "--lr",     \
        "3e-3", "--schedule", "constant", "--warmup", "3", "-t", "1"

Test(sft, resume_equals_one_run, .timeout = 120) {
    char prompts[N_MEM][128], completions[N_MEM][512];
    write_solutions(h_path(g_dir, "mem.jsonl"), prompts, completions);
    init_model("m", 5);
    HRun r;
    WHALE(&r, SFT_ARGS("a"), "--batch", "2", "--steps", "5");
    expect_ok(&r);
    h_run_free(&r);
    /* b stops after step 3 with a checkpoint of step 2 and resumes from it:
     * step 3 is still in the warmup and starts the second epoch */
    WHALE(&r, SFT_ARGS("b"), "--batch", "2", "--steps", "3");
    expect_ok(&r);
    h_run_free(&r);
    EXPECT_RESUME_EQUALS_RUN(h_path(g_dir, "a"), h_path(g_dir, "b"), 2, 5, SFT_ARGS("b"),
                             "--batch", "2", "--steps", "5", "--resume");
    /* what cannot continue the run: nothing to resume, another batch
     * shape, another data order */
    WHALE(&r, SFT_ARGS("none"), "--batch", "2", "--steps", "5", "--resume");
    EXPECT_FAIL(&r, "no checkpoint");
    h_run_free(&r);
    WHALE(&r, SFT_ARGS("b"), "--batch", "3", "--steps", "6", "--resume");
    EXPECT_FAIL(&r, "--batch 2", "--batch 3");
    h_run_free(&r);
    WHALE(&r, SFT_ARGS("b"), "--batch", "2", "--steps", "6", "--resume", "--max-len", "200");
    EXPECT_FAIL(&r, "--max-len", "200");
    h_run_free(&r);
    WHALE(&r, SFT_ARGS("b"), "--batch", "2", "--steps", "6", "--resume", "--seed", "1");
    EXPECT_FAIL(&r, "--seed 0", "--seed 1");
    h_run_free(&r);
}

Test(sft, eval_loss_and_vocabulary_check, .timeout = 120) {
    const char *data = h_path(g_dir, "d.jsonl");
    cr_assert_eq(h_write_text(data, "{\"prompt\": \"a\", \"completion\": \"b\"}\n"
                                    "{\"prompt\": \"cd\", \"completion\": \"e\"}\n"
                                    "{\"prompt\": \"f\", \"completion\": \"gh\"}\n"),
                 0);
    const char *base = init_model("m", 1);
    HRun r;
    WHALE(&r, "sft", "-m", base, "--data", data, "--out", h_path(g_dir, "s"), "--steps", "3",
          "--batch", "2", "--val", "1", "-t", "1");
    expect_ok(&r);
    h_run_free(&r);
    char *m = h_read_file(h_path(h_path(g_dir, "s"), "metrics.jsonl"), NULL);
    cr_assert(m && strstr(m, "\"eval_loss\""), "no eval_loss in %s", m ? m : "(none)");
    free(m);
    /* more held-out examples than a step's batch (the eval's own share of them) */
    WHALE(&r, "sft", "-m", base, "--data", data, "--out", h_path(g_dir, "s1"), "--steps", "1",
          "--batch", "1", "--val", "2", "-t", "1");
    expect_ok(&r);
    h_run_free(&r);
    WHALE(&r, "sft", "-m", base, "--data", data, "--out", h_path(g_dir, "s2"), "--val", "3");
    EXPECT_FAIL(&r, "--val 3", "no training examples");
    h_run_free(&r);
    /* a student whose tokenizer numbers two tokens the other way round */
    const char *other = h_path(g_dir, "other");
    cr_assert_eq(mkdir(other, 0755), 0);
    cr_assert_gt(h_copy_dir_files(base, other), 0);
    json_t *tj = json_load_file(h_path(other, "tokenizer.json"), 0, NULL);
    json_t *vocab = json_object_get(json_object_get(tj, "model"), "vocab");
    json_t *a = json_object_get(vocab, "a"), *b = json_object_get(vocab, "b");
    cr_assert(a && b, "no 'a' and 'b' in the vocabulary");
    const json_int_t ia = json_integer_value(a);
    json_integer_set(a, json_integer_value(b));
    json_integer_set(b, ia);
    cr_assert_eq(json_dump_file(tj, h_path(other, "tokenizer.json"), 0), 0);
    json_decref(tj);
    WHALE(&r, "distill", "-m", base, "--student", other, "--task", "arith", "--out",
          h_path(g_dir, "d"), "--problems", "1", "--k", "1", "-t", "1");
    EXPECT_FAIL(&r, "vocabularies", "other");
    h_run_free(&r);
}
