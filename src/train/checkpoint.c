/* SPDX-License-Identifier: MIT */
/* Checkpoints (see checkpoint.h). The order of writes is the crash-safety
 * argument: files into a fresh temporary directory, each fsynced; the
 * directory renamed to its final name and the parent fsynced; its model
 * published at OUT/ itself (each file linked into place); then OUT/latest
 * replaced atomically. Until that last rename, OUT/latest names the
 * previous, complete checkpoint. */
#include "train/checkpoint.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/json.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "model/blocks.h"

/* Files a model directory carries besides the weights and config. */
static const char *const tokenizer_files[] = {"tokenizer.json", "tokenizer_config.json",
                                              "generation_config.json"};

static int fsync_dir(const char *dir, Err *err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) != 0) {
        if (fd >= 0) close(fd);
        return err_set(err, "%s: cannot sync the directory", dir);
    }
    close(fd);
    return 0;
}

/* The moments of the tensors s with keep(s) (keep NULL: all). */
static int save_optimizer(const char *path, const Weights *w, const AdamW *opt,
                          int (*keep)(const ParamSpec *s), Err *err) {
    StWriteTensor *t = calloc(2 * (size_t)w->n_specs, sizeof *t);
    char (*names)[112] = calloc(2 * (size_t)w->n_specs, sizeof *names);
    if (!t || !names) {
        free(t), free(names);
        return err_set(err, "out of memory writing %s", path);
    }
    int n = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < w->n_specs; i++) {
            const ParamSpec *s = &w->specs[i];
            if (!optim_is_trained(s) || (keep && !keep(s))) continue;
            snprintf(names[n], sizeof names[n], "%s.%s", k ? "exp_avg_sq" : "exp_avg", s->name);
            t[n] = (StWriteTensor){names[n], DTYPE_F32, s->n_dims, {s->shape[0], s->shape[1]},
                                   (k ? opt->v : opt->m) + s->offset / sizeof(float)};
            n++;
        }
    int rc = st_write(path, t, n, err);
    free(t), free(names);
    return rc;
}

static int save_state(const char *path, const TrainState *st, Err *err) {
    char text[512];
    int n = snprintf(text, sizeof text,
                     "{\n  \"step\": %" PRId64 ",\n  \"tokens\": %" PRId64 ",\n  \"seed\": %" PRIu64
                     ",\n  \"batch\": %d,\n  \"seq\": %d,\n  \"grad_accum\": %d,\n"
                     "  \"nan_skipped\": %d,\n  \"ranks\": %d\n}\n",
                     st->step, st->tokens, st->seed, st->batch, st->seq, st->grad_accum,
                     st->nan_skipped, st->ranks > 0 ? st->ranks : 1);
    return file_write_atomic(path, text, (size_t)n, err);
}

/* Make dst name the same file as src (a hard link renamed into place), or
 * an atomic copy where links are not possible. */
static int publish(const char *src, const char *dst, Err *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.link.%ld", dst, (long)getpid());
    unlink(tmp);
    if (link(src, tmp) == 0) {
        if (rename(tmp, dst) == 0) return 0;
        unlink(tmp);
    }
    return file_copy(src, dst, err);
}

/* Checkpoint directories under out, newest first (names into a malloc'd
 * array the caller frees); returns the count. */
static int list_checkpoints(const char *out, char (**names)[64]) {
    DIR *d = opendir(out);
    int n = 0, cap = 0;
    *names = NULL;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "checkpoint-", 11) || strlen(e->d_name) >= 64) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char (*nn)[64] = realloc(*names, (size_t)cap * sizeof **names);
            if (!nn) break;
            *names = nn;
        }
        memcpy((*names)[n++], e->d_name, strlen(e->d_name) + 1); /* < 64, checked above */
    }
    closedir(d);
    /* fixed-width step numbers: name order is step order */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp((*names)[i], (*names)[j]) < 0) {
                char t[64];
                memcpy(t, (*names)[i], 64), memcpy((*names)[i], (*names)[j], 64);
                memcpy((*names)[j], t, 64);
            }
    return n;
}

/* A file of a model directory: the weights (one file, an index, or a
 * shard named by an index) or what goes with them. */
static int is_model_file(const char *name) {
    return !strcmp(name, "model.safetensors") || !strcmp(name, "model.safetensors.index.json") ||
           (!strncmp(name, "model-", 6) && path_has_suffix(name, ".safetensors"));
}

/* Link the model of checkpoint fin to out itself, so that a loadable model
 * is there at every instant: the shards first, then the index or the
 * single file that names them; then the files of an older layout, the
 * index (or single file) before its shards. */
static int publish_model(const char *fin, const char *out, Err *err) {
    char p[4096], q[4096];
    DIR *d = opendir(fin);
    if (!d) return err_set(err, "%s: cannot list the checkpoint", fin);
    struct dirent *e;
    int rc = 0, sharded = 0;
    for (int pass = 0; pass < 2 && rc == 0; pass++) { /* shards, then the index or single file */
        rewinddir(d);
        while (rc == 0 && (e = readdir(d))) {
            const int shard = !strncmp(e->d_name, "model-", 6);
            if (!is_model_file(e->d_name) || shard != (pass == 0)) continue;
            sharded |= shard;
            if (path_join(p, sizeof p, fin, e->d_name) != 0 || path_join(q, sizeof q, out, e->d_name) != 0)
                rc = err_set(err, "%s: path too long", out);
            else rc = publish(p, q, err);
        }
    }
    closedir(d);
    const size_t n_tok = sizeof tokenizer_files / sizeof *tokenizer_files;
    for (size_t i = 0; rc == 0 && i <= n_tok; i++) { /* config.json, then the tokenizer's */
        const char *f = i == 0 ? "config.json" : tokenizer_files[i - 1];
        if (path_join(p, sizeof p, fin, f) != 0 || !file_exists(p)) continue;
        if (path_join(q, sizeof q, out, f) != 0) return err_set(err, "%s: path too long", out);
        rc = publish(p, q, err);
    }
    if (rc != 0) return -1;
    /* what an earlier checkpoint of the other layout left at out */
    if (path_join(q, sizeof q, out, sharded ? "model.safetensors" : "model.safetensors.index.json") == 0)
        unlink(q);
    if (!(d = opendir(out))) return 0;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "model-", 6) || !is_model_file(e->d_name)) continue;
        if (path_join(p, sizeof p, fin, e->d_name) != 0 || file_exists(p)) continue;
        if (path_join(q, sizeof q, out, e->d_name) == 0) unlink(q);
    }
    closedir(d);
    return 0;
}

/* Sharded checkpoints: the file names of shard i of n. */
static void shard_name(char *buf, size_t len, const char *stem, int i, int n) {
    snprintf(buf, len, "%s-%05d-of-%05d.safetensors", stem, i + 1, n);
}

/* keep() for shards after the first: the routed experts' tensors only. */
static int experts_only(const ParamSpec *s) { return weights_is_routed_expert(s); }

/* Every rank of the group learns whether any failed (a barrier too). 0, or
 * -1: err is this rank's own failure, or names the step for the others. */
static int agree(const Comm *g, int failed, int64_t step, Err *err) {
    int64_t n = failed;
    if (comm_allreduce_i64(g, &n, 1, failed ? NULL : err) != 0) return -1;
    if (n == 0) return 0;
    if (!failed)
        err_set(err, "checkpoint of step %" PRId64 " not written: another rank failed (its message "
                     "says why)", step);
    return -1;
}

int ckpt_save(const char *out, const Model *m, const AdamW *opt, const TrainState *st,
              const char *tok_dir, int keep, const Comm *shards, Err *err) {
    char name[64], tmp[4096], fin[4096], p[4096], q[4096];
    const int n_sh = shards ? shards->size : 1, me = shards ? shards->rank : 0;
    snprintf(name, sizeof name, "checkpoint-%08" PRId64, st->step);
    int failed = 0;
    if (snprintf(tmp, sizeof tmp, "%s/.%s.tmp", out, name) >= (int)sizeof tmp ||
        path_join(fin, sizeof fin, out, name) != 0)
        failed = err_set(err, "%s: path too long", out);
    if (!failed && me == 0) {
        if (dir_create(out, err) != 0) failed = 1;
        else {
            dir_remove_flat(tmp);
            if (mkdir(tmp, 0755) != 0) failed = err_set(err, "%s: cannot create the directory", tmp);
        }
    }
    if (n_sh > 1 && agree(shards, failed, st->step, err) != 0) return -1;
    if (failed) return -1;
#define IN(dir, f) (path_join(p, sizeof p, dir, f) == 0 ? p : "")
    if (n_sh > 1) {
        /* each rank its experts; the first shard the other tensors too */
        int (*keep_fn)(const ParamSpec *) = me == 0 ? NULL : experts_only;
        char f[64];
        shard_name(f, sizeof f, "model", me, n_sh);
        failed = weights_save_some(&m->w, IN(tmp, f), DTYPE_F32, keep_fn, err) != 0;
        shard_name(f, sizeof f, "optimizer", me, n_sh);
        if (!failed) failed = save_optimizer(IN(tmp, f), &m->w, opt, keep_fn, err) != 0;
        if (agree(shards, failed, st->step, err) != 0) {
            if (me == 0) dir_remove_flat(tmp);
            return -1;
        }
        if (me != 0) return 0; /* rank 0 finishes the directory */
        if (n_sh > EP_MAX_RANKS) {
            err_set(err, "%s: at most %d shards", out, EP_MAX_RANKS);
            goto fail;
        }
        char names[2][EP_MAX_RANKS][64];
        const char *list[2][EP_MAX_RANKS];
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < n_sh; i++) {
                shard_name(names[k][i], sizeof names[k][i], k ? "optimizer" : "model", i, n_sh);
                list[k][i] = names[k][i];
            }
        if (st_write_index(IN(tmp, "model.safetensors.index.json"), list[0], n_sh, err) != 0 ||
            st_write_index(IN(tmp, "optimizer.safetensors.index.json"), list[1], n_sh, err) != 0)
            goto fail;
    } else if (weights_save(&m->w, IN(tmp, "model.safetensors"), DTYPE_F32, err) != 0 ||
               save_optimizer(IN(tmp, "optimizer.safetensors"), &m->w, opt, NULL, err) != 0) {
        goto fail;
    }
    if (config_save(&m->cfg, IN(tmp, "config.json"), err) != 0 ||
        save_state(IN(tmp, "trainer_state.json"), st, err) != 0)
        goto fail;
    for (size_t i = 0; i < sizeof tokenizer_files / sizeof *tokenizer_files; i++) {
        if (path_join(q, sizeof q, tok_dir, tokenizer_files[i]) != 0 || !file_exists(q)) continue;
        if (file_copy(q, IN(tmp, tokenizer_files[i]), err) != 0) goto fail;
    }
    if (fsync_dir(tmp, err) != 0) goto fail;
    dir_remove_flat(fin); /* a checkpoint of the same step from an interrupted run */
    if (rename(tmp, fin) != 0) {
        err_set(err, "%s: cannot rename into place", fin);
        goto fail;
    }
    if (fsync_dir(out, err) != 0) return -1;
    /* the newest model at OUT/ itself, before `latest` names its checkpoint:
     * once `latest` exists, so does a loadable model at OUT/ */
    if (publish_model(fin, out, err) != 0) return -1;
    char line[80];
    int n = snprintf(line, sizeof line, "%s\n", name);
    if (file_write_atomic(IN(out, "latest"), line, (size_t)n, err) != 0) return -1;
#undef IN
    char(*names)[64];
    int nc = list_checkpoints(out, &names);
    for (int i = keep > 0 ? keep : 1; i < nc; i++)
        if (path_join(p, sizeof p, out, names[i]) == 0 && strcmp(names[i], name) != 0)
            dir_remove_flat(p);
    free(names);
    return 0;
fail:
    dir_remove_flat(tmp);
    return -1;
}

int ckpt_latest(const char *out, char *dir, size_t n, Err *err) {
    char p[4096], *text;
    size_t len;
    if (path_join(p, sizeof p, out, "latest") != 0) return err_set(err, "%s: path too long", out);
    if (!file_exists(p)) return err_set(err, "%s: no checkpoint to resume from (no %s)", out, p);
    if (file_read_all(p, 256, &text, &len, err) != 0) return -1;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ')) text[--len] = 0;
    int bad = strncmp(text, "checkpoint-", 11) != 0 || strchr(text, '/') != NULL;
    int rc = bad ? err_set(err, "%s: does not name a checkpoint", p)
                 : path_join(dir, n, out, text) != 0 ? err_set(err, "%s: path too long", out) : 0;
    free(text);
    if (rc == 0 && !file_is_dir(dir))
        rc = err_set(err, "%s names %s, which does not exist", p, dir);
    return rc;
}

/* The shape fields that must agree for a checkpoint to continue a model:
 * 1, or 0 with the first that differs and both values in what. */
static int same_shape(const ModelConfig *a, const ModelConfig *b, char *what, size_t n) {
#define CMP(f)                                                                  \
    if (a->f != b->f) {                                                         \
        snprintf(what, n, "%s %d vs %d", #f, (int)a->f, (int)b->f);             \
        return 0;                                                               \
    }
    CMP(arch) CMP(vocab_size) CMP(hidden_size) CMP(num_hidden_layers) CMP(num_attention_heads)
    CMP(q_lora_rank) CMP(kv_lora_rank) CMP(qk_nope_head_dim) CMP(qk_rope_head_dim)
    CMP(v_head_dim) CMP(intermediate_size) CMP(moe_intermediate_size) CMP(n_routed_experts)
    CMP(n_shared_experts) CMP(num_experts_per_tok) CMP(first_k_dense_replace)
    CMP(num_nextn_predict_layers)
#undef CMP
    return 1;
}

int ckpt_resume_dir(const char *out, const char *model, char *dir, size_t n, Err *err) {
    ModelConfig have, want;
    char what[128];
    if (ckpt_latest(out, dir, n, err) != 0 || config_load(&have, dir, err) != 0 ||
        config_load(&want, model, err) != 0)
        return -1;
    if (!same_shape(&have, &want, what, sizeof what))
        return err_set(err, "cannot resume: %s holds a model of another shape than %s (%s)", dir,
                       model, what);
    return 0;
}

int ckpt_check_flags(const char *dir, const TrainState *saved, const TrainState *want,
                     const char *const flags[3], Err *err) {
    const int had[3] = {saved->batch, saved->seq, saved->grad_accum};
    const int has[3] = {want->batch, want->seq, want->grad_accum};
    for (int i = 0; i < 3; i++)
        if (flags[i] && had[i] != has[i])
            return err_set(err, "cannot resume %s: it was run with %s %d, this run has %s %d", dir,
                           flags[i], had[i], flags[i], has[i]);
    if (saved->seed != want->seed)
        return err_set(err, "cannot resume %s: it was run with --seed %" PRIu64
                            ", this run has --seed %" PRIu64,
                       dir, saved->seed, want->seed);
    return 0;
}

/* path: optimizer.safetensors or the index of its shards. */
static int load_optimizer(const char *path, const Weights *w, AdamW *opt, Err *err) {
    SafeTensors st;
    if (st_open(&st, path, err) != 0) return -1;
    int rc = 0;
    char name[112];
    for (int k = 0; k < 2 && rc == 0; k++)
        for (int i = 0; i < w->n_specs && rc == 0; i++) {
            const ParamSpec *s = &w->specs[i];
            if (!optim_is_trained(s)) continue;
            snprintf(name, sizeof name, "%s.%s", k ? "exp_avg_sq" : "exp_avg", s->name);
            const StTensor *t = st_find(&st, name);
            if (!t) rc = err_set(err, "%s: tensor %s is missing", path, name);
            else if (st_numel(t) != s->numel)
                rc = err_set(err, "%s: tensor %s has %" PRId64 " elements, the model %" PRId64,
                             path, name, st_numel(t), s->numel);
            else rc = st_to_f32(&st, t, (k ? opt->v : opt->m) + s->offset / sizeof(float), err);
        }
    st_close(&st);
    return rc;
}

int ckpt_load_state(const char *dir, const Weights *w, AdamW *opt, TrainState *st, Err *err) {
    char p[4096];
    if (path_join(p, sizeof p, dir, "optimizer.safetensors") != 0)
        return err_set(err, "%s: path too long", dir);
    if (!file_exists(p) && path_join(p, sizeof p, dir, "optimizer.safetensors.index.json") != 0)
        return err_set(err, "%s: path too long", dir);
    if (load_optimizer(p, w, opt, err) != 0) return -1;
    if (path_join(p, sizeof p, dir, "trainer_state.json") != 0)
        return err_set(err, "%s: path too long", dir);
    json_t *j = json_load_path(p, 1 << 20, err);
    if (!j) return -1;
    memset(st, 0, sizeof *st);
    int rc = 0;
    json_t *step = json_object_get(j, "step"), *tok = json_object_get(j, "tokens");
    json_t *seed = json_object_get(j, "seed");
    if (!json_is_integer(step) || json_integer_value(step) < 0 || !json_is_integer(tok) ||
        !json_is_integer(seed))
        rc = err_set(err, "%s: step, tokens and seed must be non-negative integers", p);
    if (rc == 0) {
        st->step = json_integer_value(step);
        st->tokens = json_integer_value(tok);
        st->seed = (uint64_t)json_integer_value(seed);
        if (json_get_int(j, "batch", &st->batch, p, err) != 0 ||
            json_get_int(j, "seq", &st->seq, p, err) != 0 ||
            json_get_int(j, "grad_accum", &st->grad_accum, p, err) != 0 ||
            json_get_int(j, "nan_skipped", &st->nan_skipped, p, err) != 0)
            rc = -1;
        /* written since data-parallel training; older checkpoints had one rank */
        json_t *ranks = json_object_get(j, "ranks");
        st->ranks = ranks ? (int)json_integer_value(ranks) : 1;
        if (rc == 0 && (ranks && (!json_is_integer(ranks) || json_integer_value(ranks) < 1 ||
                                  json_integer_value(ranks) > 1 << 20)))
            rc = err_set(err, "%s: ranks must be an integer >= 1", p);
    }
    json_decref(j);
    return rc;
}
