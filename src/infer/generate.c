/* SPDX-License-Identifier: MIT */
/* The generation loop (see generate.h): prompt ids -> prefill (reusing the
 * cached prefix) -> sample / decode / stream, one token at a time. Nothing
 * is allocated per token: the logits, the id history and the sampler's
 * scratch are sized at init, and the text buffers grow by doubling. */
#include "infer/generate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "infer/text_stream.h"

#define DEFAULT_CTX 4096
#define DEFAULT_CHUNK 256

const char *gen_stop_name(GenStop s) {
    switch (s) {
    case GEN_STOP_EOS: return "eos";
    case GEN_STOP_LENGTH: return "length";
    case GEN_STOP_CONTEXT: return "context";
    case GEN_STOP_INTERRUPT: return "interrupt";
    }
    return "?";
}

void gen_stats_line(const GenResult *r, char *buf, size_t n) {
    int fresh = r->n_prompt - r->n_reused;
    snprintf(buf, n,
             "prompt %d tokens (%d cached), %.1f tok/s | generated %d tokens, %.1f tok/s | "
             "stop: %s",
             r->n_prompt, r->n_reused, fresh / (r->prompt_s > 0 ? r->prompt_s : 1e-9), r->n_gen,
             r->n_gen / (r->gen_s > 0 ? r->gen_s : 1e-9), gen_stop_name(r->stop));
}

int gen_init(Generator *g, Model *m, const Tokenizer *tok, const GenOpts *o, Err *err) {
    memset(g, 0, sizeof *g);
    GenOpts d = {0};
    if (!o) o = &d;
    g->model = m;
    g->tok = tok;
    g->o = *o;
    const int V = m->cfg.vocab_size;
    int max_pos = m->cfg.max_position_embeddings > 0 ? m->cfg.max_position_embeddings : DEFAULT_CTX;
    if (g->o.n_ctx <= 0) g->o.n_ctx = max_pos < DEFAULT_CTX ? max_pos : DEFAULT_CTX;
    if (g->o.n_ctx < 2) return err_set(err, "context of %d tokens is too small", g->o.n_ctx);
    if (g->o.prefill_chunk <= 0) g->o.prefill_chunk = DEFAULT_CHUNK;
    if (tokenizer_n_vocab(tok) > V)
        return err_set(err, "the tokenizer has %d ids but the model's vocab_size is %d",
                       tokenizer_n_vocab(tok), V);
    if (kvcache_init(&g->kv, &m->cfg, g->o.n_ctx, g->o.kv_type, 0, err) != 0) return -1;
    /* Sample among the ids the tokenizer can decode: a model's vocab_size is
     * often padded past the tokenizer's last id (DeepSeek-V3: 129280 rows
     * for 128815 tokens), and those rows must never be drawn. */
    if (sampler_init(&g->smp, tokenizer_n_vocab(tok), &g->o.sampling, err) != 0) goto fail;
    g->logits = malloc(sizeof(float) * (size_t)V);
    g->ids = malloc(sizeof(int) * (size_t)g->o.n_ctx);
    g->text_cap = g->answer_cap = 4096;
    g->text = malloc(g->text_cap);
    g->answer = malloc(g->answer_cap);
    if (!g->logits || !g->ids || !g->text || !g->answer) {
        err_set(err, "out of memory for generation (vocabulary %d, context %d)", V, g->o.n_ctx);
        goto fail;
    }
    g->text[0] = g->answer[0] = 0;
    gen_add_stop_id(g, tokenizer_eos_id(tok));
    return 0;
fail:
    gen_free(g);
    return -1;
}

void gen_free(Generator *g) {
    kvcache_free(&g->kv);
    sampler_free(&g->smp);
    free(g->logits);
    free(g->ids);
    free(g->text);
    free(g->answer);
    memset(g, 0, sizeof *g);
}

void gen_add_stop_id(Generator *g, int id) {
    if (id < 0 || id >= g->model->cfg.vocab_size || g->n_stop == GEN_MAX_STOP) return;
    for (int i = 0; i < g->n_stop; i++)
        if (g->stop[i] == id) return;
    g->stop[g->n_stop++] = id;
}

void gen_add_stop_token(Generator *g, const char *content) {
    gen_add_stop_id(g, tokenizer_token_id(g->tok, content));
}

int gen_load_generation_config(Generator *g, const char *model_path, Err *err) {
    char dir[4096], path[4096];
    path_dir_of(model_path, dir, sizeof dir);
    if (path_join(path, sizeof path, dir, "generation_config.json") != 0)
        return err_set(err, "%s: path too long", dir);
    if (!file_exists(path)) return 0;
    json_t *j = json_load_path(path, 1 << 20, err);
    if (!j) return -1;
    int rc = 0;
    json_t *e = json_is_object(j) ? json_object_get(j, "eos_token_id") : NULL;
    if (!json_is_object(j)) {
        rc = err_set(err, "%s: must be a JSON object", path);
    } else if (json_is_integer(e)) {
        gen_add_stop_id(g, (int)json_integer_value(e));
    } else if (json_is_array(e)) {
        size_t i;
        json_t *x;
        json_array_foreach(e, i, x) {
            if (!json_is_integer(x)) {
                rc = err_set(err, "%s: field 'eos_token_id' item %zu must be an integer", path, i);
                break;
            }
            gen_add_stop_id(g, (int)json_integer_value(x));
        }
    } else if (e && !json_is_null(e)) {
        rc = err_set(err, "%s: field 'eos_token_id' must be an integer or a list of integers",
                     path);
    }
    json_decref(j);
    return rc;
}

void gen_reset(Generator *g) {
    g->kv.len = 0;
    g->n_ids = 0;
    sampler_reset(&g->smp);
}

/* ---- text of the current run ------------------------------------------------ */

static void append(Generator *g, char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap;
        while (c < *len + n + 1) c *= 2;
        char *p = realloc(*buf, c);
        if (!p) {
            g->oom = 1;
            return;
        }
        *buf = p, *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
}

/* The splitter's output: keep the answer part for the chat history, pass
 * everything on to the caller. */
static void on_part(void *user, GenPart part, const char *s, size_t n) {
    Generator *g = user;
    if (part == GEN_ANSWER) append(g, &g->answer, &g->answer_len, &g->answer_cap, s, n);
    if (g->emit) g->emit(g->user, part, s, n);
}

/* The TextStream's output: the whole raw text, and through the splitter
 * the parts. */
typedef struct RunText {
    Generator *g;
    ThinkSplit *split;
} RunText;

static void on_text(void *user, const char *s, size_t n) {
    RunText *rt = user;
    append(rt->g, &rt->g->text, &rt->g->text_len, &rt->g->text_cap, s, n);
    think_split_feed(rt->split, s, n);
}

int gen_is_stop(const Generator *g, int id) {
    for (int i = 0; i < g->n_stop; i++)
        if (g->stop[i] == id) return 1;
    return 0;
}

static void text_reset(Generator *g, GenEmit emit, void *user) {
    g->text_len = g->answer_len = 0;
    g->text[0] = g->answer[0] = 0;
    g->oom = 0;
    g->emit = emit;
    g->user = user;
}

int gen_decode_text(Generator *g, const int *ids, int n, const char **text, size_t *len,
                    Err *err) {
    text_reset(g, NULL, NULL);
    ThinkSplit split;
    think_split_init(&split, 0, on_part, g);
    RunText rt = {g, &split};
    TextStream ts;
    text_stream_init(&ts, g->tok, on_text, &rt);
    for (int i = 0; i < n; i++)
        if (text_stream_push(&ts, ids[i], err) != 0) return -1;
    text_stream_flush(&ts);
    think_split_flush(&split);
    if (g->oom) return err_set(err, "out of memory for the generated text");
    *text = g->text;
    *len = g->text_len;
    return 0;
}

/* Prefill ids[from..n) in chunks, the logits of the last position into
 * g->logits. Returns 1 when interrupted, 0 when done, -1 on error. */
static int prefill(Generator *g, const int *ids, int from, int n, volatile sig_atomic_t *interrupt,
                   Err *err) {
    while (from < n) {
        if (interrupt && *interrupt) return 1;
        int T = n - from < g->o.prefill_chunk ? n - from : g->o.prefill_chunk;
        ForwardOpts fo = {.logits = from + T == n ? g->logits : NULL};
        if (model_forward(g->model, &g->kv, ids + from, T, &fo, err) != 0) return -1;
        memcpy(g->ids + g->n_ids, ids + from, sizeof(int) * (size_t)T);
        g->n_ids += T;
        from += T;
    }
    return 0;
}

int gen_run(Generator *g, const char *prompt, size_t len, int add_bos, int max_tokens,
            volatile sig_atomic_t *interrupt, GenEmit emit, void *user, GenResult *res, Err *err) {
    memset(res, 0, sizeof *res);
    text_reset(g, emit, user);
    int *ids = NULL, n = 0;
    if (tokenizer_encode(g->tok, prompt, len, add_bos, &ids, &n, err) != 0) return -1;
    if (n == 0) {
        free(ids);
        return err_set(err, "the prompt is empty");
    }
    if (n > g->kv.n_ctx) {
        free(ids);
        return err_set(err,
                       "the prompt (%d tokens) does not fit the context of %d tokens (raise --ctx)",
                       n, g->kv.n_ctx);
    }
    /* Reuse the cached prefix the new prompt shares; at least the last
     * prompt token runs again, since its logits are not kept. */
    int keep = 0;
    while (keep < g->n_ids && keep < n && g->ids[keep] == ids[keep]) keep++;
    if (keep == n) keep = n - 1;
    g->kv.len = g->n_ids = keep;
    res->n_prompt = n;
    res->n_reused = keep;
    sampler_reset(&g->smp);
    for (int i = 0; i < n; i++) sampler_accept(&g->smp, ids[i]);

    double t0 = time_now();
    int pr = prefill(g, ids, keep, n, interrupt, err);
    free(ids);
    double t1 = time_now();
    res->prompt_s = t1 - t0;
    if (pr < 0) {
        gen_reset(g); /* the cache may hold part of a failed chunk */
        return -1;
    }

    ThinkSplit split;
    think_split_init(&split, think_split_open_at_end(prompt, len), on_part, g);
    RunText rt = {g, &split};
    TextStream ts;
    text_stream_init(&ts, g->tok, on_text, &rt);
    res->stop = GEN_STOP_INTERRUPT;
    res->last_id = -1;
    if (pr == 0) {
        for (;;) {
            if (interrupt && *interrupt) {
                res->stop = GEN_STOP_INTERRUPT;
                break;
            }
            int id = sampler_sample(&g->smp, g->logits);
            if (gen_is_stop(g, id)) {
                res->stop = GEN_STOP_EOS;
                res->last_id = id;
                break;
            }
            res->n_gen++;
            if (text_stream_push(&ts, id, err) != 0) return -1;
            sampler_accept(&g->smp, id);
            if (max_tokens > 0 && res->n_gen >= max_tokens) {
                res->stop = GEN_STOP_LENGTH;
                res->last_id = id;
                break;
            }
            if (g->kv.len >= g->kv.n_ctx) {
                res->stop = GEN_STOP_CONTEXT;
                res->last_id = id;
                break;
            }
            ForwardOpts fo = {.logits = g->logits};
            if (model_forward(g->model, &g->kv, &id, 1, &fo, err) != 0) {
                gen_reset(g);
                return -1;
            }
            g->ids[g->n_ids++] = id;
        }
    }
    text_stream_flush(&ts);
    think_split_flush(&split);
    res->gen_s = time_now() - t1;
    if (g->oom) return err_set(err, "out of memory for the generated text");
    res->ended_in_think = split.in_think;
    res->text = g->text;
    res->text_len = g->text_len;
    res->answer = g->answer;
    res->answer_len = g->answer_len;
    return 0;
}
