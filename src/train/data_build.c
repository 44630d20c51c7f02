/* SPDX-License-Identifier: MIT */
/* whale data's engine (see data_build.h): inputs -> documents -> ids -> shards.
 * Two passes: the first counts documents (so the val split can be spread
 * evenly), the second cuts them into batches that are tokenized in
 * parallel and appended in input order. Shards are staged in a hidden
 * folder inside the output and moved into place only when all are done. */
#include "train/data_build.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "base/threads.h"
#include "io/tokshard.h"
#include "train/data.h"

/* A batch is what the threads share between two barriers: large enough that
 * the wait for the slowest document is small against the whole. */
#define BATCH_DOCS 8192
#define BATCH_BYTES ((size_t)16 << 20)
#define MAX_PENDING 256 /* finished files whose mappings a batch still uses */

void data_build_opts_default(DataBuildOpts *o) {
    memset(o, 0, sizeof *o);
    o->shard_tokens = DATA_BUILD_SHARD_TOKENS_DEFAULT;
    o->val_fraction = DATA_BUILD_VAL_FRACTION_DEFAULT;
    o->val_docs = -1;
    o->tmpl = CHAT_DEEPSEEK_V3;
}

int64_t data_build_n_val(int64_t n_docs, double val_fraction, int64_t val_docs) {
    if (n_docs < 2) return 0;
    int64_t v;
    if (val_docs >= 0) v = val_docs;
    else if (!(val_fraction > 0)) v = 0;
    else {
        v = (int64_t)((double)n_docs * val_fraction + 0.5);
        if (v < 1) v = 1;
    }
    return v > n_docs - 1 ? n_docs - 1 : v;
}

/* Document i is val when the running count floor(i * n_val / n) steps up. */
static int is_val(uint64_t i, uint64_t n_val, uint64_t n) {
    return (i + 1) * n_val / n > i * n_val / n;
}

/* ---- inputs ------------------------------------------------------------------- */

typedef struct Sources {
    char **paths;
    int n, cap;
} Sources;

static int sources_add(Sources *s, const char *path) {
    if (s->n == s->cap) {
        int nc = s->cap ? 2 * s->cap : 16;
        char **p = realloc(s->paths, sizeof *p * (size_t)nc);
        if (!p) return -1;
        s->paths = p;
        s->cap = nc;
    }
    return (s->paths[s->n] = strdup(path)) ? (s->n++, 0) : -1;
}

static void sources_free(Sources *s) {
    for (int i = 0; i < s->n; i++) free(s->paths[i]);
    free(s->paths);
    memset(s, 0, sizeof *s);
}

static int name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Inputs with directories replaced by their regular, non-hidden files,
 * sorted by name. */
static int expand_inputs(const DataBuildOpts *o, Sources *s, Err *err) {
    memset(s, 0, sizeof *s);
    for (int i = 0; i < o->n_inputs; i++) {
        const char *in = o->inputs[i];
        if (!file_is_dir(in)) {
            if (!file_exists(in)) return err_set(err, "%s: no such file", in);
            if (sources_add(s, in) != 0) return err_set(err, "out of memory");
            continue;
        }
        DIR *d = opendir(in);
        if (!d) return err_set(err, "%s: cannot read the directory: %s", in, strerror(errno));
        int first = s->n, rc = 0;
        struct dirent *e;
        char path[4096];
        while (rc == 0 && (e = readdir(d))) {
            struct stat st;
            if (e->d_name[0] == '.') continue;
            if (path_join(path, sizeof path, in, e->d_name) != 0)
                rc = err_set(err, "%s/%s: path too long", in, e->d_name);
            else if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && sources_add(s, path) != 0)
                rc = err_set(err, "out of memory");
        }
        closedir(d);
        if (rc) return -1;
        qsort(s->paths + first, (size_t)(s->n - first), sizeof *s->paths, name_cmp);
    }
    if (s->n == 0) return err_set(err, "no input files");
    return 0;
}

int64_t data_build_input_bytes(const DataBuildOpts *o, Err *err) {
    Sources src;
    int64_t total = 0;
    if (expand_inputs(o, &src, err) != 0) total = -1;
    for (int i = 0; total >= 0 && i < src.n; i++) {
        struct stat st;
        if (stat(src.paths[i], &st) != 0)
            total = err_set(err, "%s: cannot stat: %s", src.paths[i], strerror(errno));
        else total += (int64_t)st.st_size;
    }
    sources_free(&src);
    return total;
}

static int is_jsonl(const char *path) { return path_has_suffix(path, ".jsonl"); }

static int blank(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return 0;
    return 1;
}

/* Documents in one mapped source: 1 for text, the non-blank lines of JSONL. */
static int64_t count_docs(const MappedFile *mf, int jsonl) {
    if (!jsonl) return 1;
    int64_t n = 0;
    const char *p = (const char *)mf->data, *end = p ? p + mf->size : p;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *stop = nl ? nl : end;
        n += !blank(p, (size_t)(stop - p));
        p = nl ? nl + 1 : end;
    }
    return n;
}

/* ---- one document --------------------------------------------------------------- */

typedef struct Doc {
    const char *p; /* (len) the text, or one JSON line */
    size_t len;
    int src;
    int64_t line;  /* 1-based line of a JSONL document; 0 for a text file */
    int val;
    int32_t *ids;  /* (n_ids) framed ids, owned */
    size_t n_ids;
    Err *err;      /* set (malloc'd) when the document failed */
} Doc;

/* {"messages": [{"role": ..., "content": ...}, ...]} rendered with tmpl. */
static int render_messages(json_t *arr, ChatTemplateKind tmpl, char **out, size_t *len, Err *err) {
    if (!json_is_array(arr)) return err_set(err, "\"messages\" must be an array");
    size_t n = json_array_size(arr);
    if (n > (1u << 20)) return err_set(err, "more than 2^20 messages");
    ChatMessage *m = calloc(n ? n : 1, sizeof *m);
    if (!m) return err_set(err, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *msg = json_array_get(arr, i), *role = json_object_get(msg, "role"),
               *content = json_object_get(msg, "content");
        if (!json_is_object(msg)) rc = err_set(err, "messages[%zu] must be an object", i);
        else if (!json_is_string(role))
            rc = err_set(err, "messages[%zu].role must be a string", i);
        else if (content && !json_is_string(content) && !json_is_null(content))
            rc = err_set(err, "messages[%zu].content must be a string", i);
        else {
            m[i].role = json_string_value(role);
            m[i].content = json_string_value(content); /* NULL renders as "" */
        }
    }
    if (rc == 0) rc = chat_template_render(tmpl, m, (int)n, 0, out, len, err);
    free(m);
    return rc;
}

/* Encode text and frame it [BOS] ids EOS into d->ids. */
static int encode_doc(const Tokenizer *tok, const char *text, size_t len, int add_bos, Doc *d,
                      Err *err) {
    int *ids, n;
    if (tokenizer_encode(tok, text, len, 0, &ids, &n, err) != 0) return -1;
    int bos = tokenizer_bos_id(tok), eos = tokenizer_eos_id(tok);
    int pre = add_bos && bos >= 0 && !(n > 0 && ids[0] == bos);
    int post = !(n > 0 && ids[n - 1] == eos);
    d->ids = malloc(((size_t)n + 2) * sizeof *d->ids);
    if (!d->ids) {
        free(ids);
        return err_set(err, "out of memory");
    }
    size_t k = 0;
    if (pre) d->ids[k++] = bos;
    for (int i = 0; i < n; i++) d->ids[k++] = ids[i];
    if (post) d->ids[k++] = eos;
    d->n_ids = k;
    free(ids);
    return 0;
}

/* One document to ids; errors name the file (and line). */
static int process_doc(const Tokenizer *tok, const DataBuildOpts *o, const char *path, Doc *d,
                       Err *err) {
    if (!d->line) {
        if (encode_doc(tok, d->p, d->len, !o->no_bos, d, err) != 0)
            return err_prefix(err, "%s", path);
        return 0;
    }
    json_error_t je;
    json_t *v = json_loadb(d->p, d->len, JSON_ALLOW_NUL, &je);
    int rc = 0;
    if (!v) rc = err_set(err, "invalid JSON at column %d: %s", je.column, je.text);
    else if (!json_is_object(v)) rc = err_set(err, "expected a JSON object");
    else {
        json_t *text = json_object_get(v, "text"), *msgs = json_object_get(v, "messages");
        if (text && msgs) rc = err_set(err, "has both \"text\" and \"messages\"");
        else if (text) {
            if (!json_is_string(text)) rc = err_set(err, "\"text\" must be a string");
            else rc = encode_doc(tok, json_string_value(text), json_string_length(text),
                                 !o->no_bos, d, err);
        } else if (msgs) {
            char *s = NULL;
            size_t len = 0;
            rc = render_messages(msgs, o->tmpl, &s, &len, err);
            if (rc == 0) rc = encode_doc(tok, s, len, !o->no_bos, d, err);
            free(s);
        } else rc = err_set(err, "expected {\"text\": ...} or {\"messages\": [...]}");
    }
    json_decref(v);
    if (rc) err_prefix(err, "%s:%lld", path, (long long)d->line);
    return rc;
}

/* ---- output ----------------------------------------------------------------------- */

typedef struct Split {
    const char *name; /* "train" or "val" */
    TokShardWriter w;
    int open, n_shards;
    int64_t in_shard, n_tokens;
} Split;

typedef struct Build {
    const DataBuildOpts *o;
    Tokenizer *const *toks;
    int n_toks;
    Sources src;
    char stage[4096]; /* hidden staging folder inside out_dir */
    Split split[2];   /* train, val */
    Doc *docs;        /* (BATCH_DOCS) */
    int n_docs;
    size_t batch_bytes;
    MappedFile pending[MAX_PENDING];
    int n_pending;
    int64_t docs_done, n_val, n_docs_total;
    uint64_t bytes_done;
    double t0, last_report;
} Build;

static int split_append(Build *b, Split *s, const int32_t *ids, size_t n, Err *err) {
    while (n > 0) {
        if (!s->open) {
            char name[64], path[4200];
            snprintf(name, sizeof name, "%s-%05d.bin", s->name, s->n_shards);
            if (path_join(path, sizeof path, b->stage, name) != 0)
                return err_set(err, "%s: path too long", b->stage);
            if (tokshard_writer_open(&s->w, path, b->o->vocab_size, tokenizer_bos_id(b->toks[0]),
                                     tokenizer_eos_id(b->toks[0]), err) != 0)
                return -1;
            s->open = 1;
            s->in_shard = 0;
        }
        int64_t room = b->o->shard_tokens - s->in_shard;
        size_t k = (uint64_t)room < n ? (size_t)room : n;
        if (tokshard_writer_append(&s->w, ids, k, err) != 0) return -1;
        ids += k;
        n -= k;
        s->in_shard += (int64_t)k;
        s->n_tokens += (int64_t)k;
        if (s->in_shard == b->o->shard_tokens) {
            s->open = 0;
            s->n_shards++;
            if (tokshard_writer_commit(&s->w, err) != 0) return -1;
        }
    }
    return 0;
}

static void report(Build *b) {
    double now = time_now();
    if (!b->o->progress || now - b->last_report < 1.0) return;
    b->last_report = now;
    double dt = now - b->t0 > 0 ? now - b->t0 : 1e-9;
    log_info("whale data: %lld/%lld docs, %.2fM tokens, %.1f MB, %.2f MB/s",
             (long long)b->docs_done, (long long)b->n_docs_total,
             (double)(b->split[0].n_tokens + b->split[1].n_tokens) / 1e6,
             (double)b->bytes_done / 1e6, (double)b->bytes_done / 1e6 / dt);
}

/* The error of a document whose own message could not be stored. */
static Err oom = {"out of memory"};

/* Tokenize the batch in parallel, then append it in order. */
static int flush_batch(Build *b, Err *err) {
    int n = b->n_docs, rc = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(b->n_toks)
    for (int i = 0; i < n; i++) {
        const Tokenizer *tok = b->toks[thread_id() % b->n_toks];
        Doc *d = &b->docs[i];
        Err e;
        if (process_doc(tok, b->o, b->src.paths[d->src], d, &e) != 0) {
            d->err = malloc(sizeof *d->err);
            if (d->err) *d->err = e;
            else d->err = &oom; /* read only, never freed */
        }
    }
    for (int i = 0; i < n; i++) {
        Doc *d = &b->docs[i];
        if (rc == 0 && d->err) {
            *err = *d->err;
            rc = -1;
        }
        if (d->err != &oom) free(d->err);
        d->err = NULL;
        if (rc == 0) rc = split_append(b, &b->split[d->val], d->ids, d->n_ids, err);
        if (rc == 0) {
            b->docs_done++;
            b->bytes_done += d->len;
        }
        free(d->ids);
        d->ids = NULL;
    }
    b->n_docs = 0;
    b->batch_bytes = 0;
    for (int i = 0; i < b->n_pending; i++) mfile_close(&b->pending[i]);
    b->n_pending = 0;
    if (rc == 0) report(b);
    return rc;
}

static int add_doc(Build *b, const char *p, size_t len, int src, int64_t line, Err *err) {
    if (b->docs_done + b->n_docs >= b->n_docs_total)
        return err_set(err, "%s: changed while being read (more documents than counted)",
                       b->src.paths[src]);
    Doc *d = &b->docs[b->n_docs++];
    memset(d, 0, sizeof *d);
    d->p = p;
    d->len = len;
    d->src = src;
    d->line = line;
    d->val = is_val((uint64_t)(b->docs_done + b->n_docs - 1), (uint64_t)b->n_val,
                    (uint64_t)b->n_docs_total);
    b->batch_bytes += len;
    if (b->n_docs == BATCH_DOCS || b->batch_bytes >= BATCH_BYTES) return flush_batch(b, err);
    return 0;
}

/* Cut one source into documents. Its mapping is closed here when no pending
 * document points into it, else by the flush that consumes them. */
static int read_source(Build *b, int src, Err *err) {
    MappedFile mf;
    const char *path = b->src.paths[src];
    if (mfile_open(&mf, path, err) != 0) return -1;
    int rc = 0;
    const char *p = (const char *)mf.data, *end = p ? p + mf.size : p;
    if (!is_jsonl(path)) {
        rc = add_doc(b, p ? p : "", mf.size, src, 0, err);
    } else {
        for (int64_t line = 1; rc == 0 && p < end; line++) {
            const char *nl = memchr(p, '\n', (size_t)(end - p)), *stop = nl ? nl : end;
            if (!blank(p, (size_t)(stop - p))) rc = add_doc(b, p, (size_t)(stop - p), src, line, err);
            p = nl ? nl + 1 : end;
        }
    }
    int used = 0;
    for (int i = 0; i < b->n_docs; i++) used |= b->docs[i].src == src;
    if (!used) mfile_close(&mf);
    else {
        b->pending[b->n_pending++] = mf;
        if (b->n_pending == MAX_PENDING && rc == 0) rc = flush_batch(b, err);
    }
    return rc;
}

/* Move the staged shards into out_dir, then delete shard files of earlier
 * runs that are not part of this corpus. */
static int publish(Build *b, Err *err) {
    const char *out = b->o->out_dir;
    char from[4400], to[4400], name[64];
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < b->split[s].n_shards; i++) {
            snprintf(name, sizeof name, "%s-%05d.bin", b->split[s].name, i);
            if (path_join(from, sizeof from, b->stage, name) != 0 ||
                path_join(to, sizeof to, out, name) != 0)
                return err_set(err, "%s: path too long", out);
            if (rename(from, to) != 0)
                return err_set(err, "%s: cannot move into place: %s", to, strerror(errno));
        }
    DIR *d = opendir(out);
    if (!d) return err_set(err, "%s: cannot read the directory: %s", out, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)))
        for (int s = 0; s < 2; s++) {
            long k = shards_file_number(e->d_name, b->split[s].name);
            if (k < 0) continue;
            snprintf(name, sizeof name, "%s-%05ld.bin", b->split[s].name, k);
            if ((k >= b->split[s].n_shards || strcmp(name, e->d_name)) &&
                path_join(to, sizeof to, out, e->d_name) == 0)
                unlink(to);
        }
    closedir(d);
    int fd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    return 0;
}

static int check_opts(Tokenizer *const *toks, int n_toks, const DataBuildOpts *o, Err *err) {
    if (n_toks < 1 || !toks[0]) return err_set(err, "no tokenizer");
    if (!o->out_dir || !o->out_dir[0]) return err_set(err, "no output directory");
    if (o->shard_tokens < 1) return err_set(err, "shard size %lld < 1", (long long)o->shard_tokens);
    if (o->val_docs < 0 && !(o->val_fraction >= 0 && o->val_fraction < 1))
        return err_set(err, "val fraction %g is outside [0, 1)", o->val_fraction);
    int nv = tokenizer_n_vocab(toks[0]);
    if (o->vocab_size == 0 || o->vocab_size > INT32_MAX || (uint32_t)nv > o->vocab_size)
        return err_set(err, "the tokenizer has %d ids but the vocab_size to record is %u", nv,
                       o->vocab_size);
    if (tokenizer_eos_id(toks[0]) < 0)
        return err_set(err, "the tokenizer has no EOS token (eos_token in tokenizer_config.json), "
                            "which separates documents");
    return 0;
}

int data_build(Tokenizer *const *toks, int n_toks, const DataBuildOpts *o, DataBuildStats *st,
                 Err *err) {
    memset(st, 0, sizeof *st);
    if (check_opts(toks, n_toks, o, err) != 0) return -1;
    Build b = {.o = o, .toks = toks, .n_toks = n_toks, .t0 = time_now()};
    b.last_report = b.t0;
    b.split[0].name = "train";
    b.split[1].name = "val";
    int rc = -1, staged = 0;
    /* jansson draws its hash seed when the first object is made: do that
     * here, before threads parse lines at once */
    json_decref(json_object());
    if (expand_inputs(o, &b.src, err) != 0) goto done;
    /* pass 1: count documents */
    for (int i = 0; i < b.src.n; i++) {
        MappedFile mf;
        if (mfile_open(&mf, b.src.paths[i], err) != 0) goto done;
        b.n_docs_total += count_docs(&mf, is_jsonl(b.src.paths[i]));
        st->n_bytes += mf.size;
        mfile_close(&mf);
    }
    if (b.n_docs_total == 0) {
        err_set(err, "%s: no documents in the input", b.src.paths[0]);
        goto done;
    }
    if (b.n_docs_total > ((int64_t)1 << 32)) {
        err_set(err, "more than 2^32 documents");
        goto done;
    }
    b.n_val = data_build_n_val(b.n_docs_total, o->val_fraction, o->val_docs);
    /* pass 2 */
    if (dir_create(o->out_dir, err) != 0) goto done;
    snprintf(b.stage, sizeof b.stage, "%s/.whale-data.%ld", o->out_dir, (long)getpid());
    dir_remove_flat(b.stage); /* a leftover of a killed run with the same pid */
    if (mkdir(b.stage, 0755) != 0) {
        err_set(err, "%s: cannot create: %s", b.stage, strerror(errno));
        goto done;
    }
    staged = 1;
    b.docs = calloc(BATCH_DOCS, sizeof *b.docs);
    if (!b.docs) {
        err_set(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < b.src.n; i++)
        if (read_source(&b, i, err) != 0) goto done;
    if (flush_batch(&b, err) != 0) goto done;
    if (b.docs_done != b.n_docs_total) {
        err_set(err, "the inputs changed while being read (%lld documents counted, %lld read)",
                (long long)b.n_docs_total, (long long)b.docs_done);
        goto done;
    }
    for (int s = 0; s < 2; s++)
        if (b.split[s].open) {
            b.split[s].open = 0;
            b.split[s].n_shards++;
            if (tokshard_writer_commit(&b.split[s].w, err) != 0) goto done;
        }
    if (publish(&b, err) != 0) goto done;
    st->n_docs = b.n_docs_total;
    st->n_val_docs = b.n_val;
    for (int s = 0; s < 2; s++) {
        st->n_tokens[s] = b.split[s].n_tokens;
        st->n_shards[s] = b.split[s].n_shards;
    }
    st->secs = time_now() - b.t0;
    rc = 0;
done:
    for (int s = 0; s < 2; s++)
        if (b.split[s].open) tokshard_writer_abort(&b.split[s].w);
    for (int i = 0; b.docs && i < b.n_docs; i++) {
        free(b.docs[i].ids);
        if (b.docs[i].err != &oom) free(b.docs[i].err);
    }
    for (int i = 0; i < b.n_pending; i++) mfile_close(&b.pending[i]);
    free(b.docs);
    if (staged) dir_remove_flat(b.stage);
    sources_free(&b.src);
    return rc;
}
