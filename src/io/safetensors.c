/* SPDX-License-Identifier: MIT */
/* safetensors reader and writer (see safetensors.h). The header is parsed with
 * jansson; every offset and size from it is checked against the file before a
 * pointer is formed, and size arithmetic goes through size_mul/size_add. F8
 * dequantisation follows weight_dequant() of DeepSeek-V3 inference/kernel.py:
 * y = float(x) * s over 128x128 blocks. */
#include "io/safetensors.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/json.h"
#include "base/mem.h"

#define ST_INDEX_NAME "model.safetensors.index.json"
#define ST_SINGLE_NAME "model.safetensors"

/* Longest tensor name or dtype string quoted in a message. */
#define ST_MSG_NAME "%.200s"

/* ---- parsing one file ---------------------------------------------------- */

/* "[2, 3]" for messages; truncated (never overflowing) for huge shapes. */
static void st_shape_str(char *buf, size_t n, int n_dims, const int64_t *shape) {
    size_t k = 0;
    buf[0] = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < n_dims && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* __metadata__ is free-form but must be {string: string}; it is not used. */
static int st_check_metadata(const json_t *meta, const char *f, Err *err) {
    if (!json_is_object(meta)) return err_set(err, "%s: __metadata__ is not a JSON object", f);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)meta, key, val) {
        if (!json_is_string(val))
            return err_set(err, "%s: __metadata__ entry '" ST_MSG_NAME "' is not a string", f,
                           key);
    }
    return 0;
}

/* Fill t (whose name is already set) from its header entry v, checking that
 * the bytes it describes lie inside the data section (data, data_size). */
static int st_parse_entry(StTensor *t, const json_t *v, const unsigned char *data,
                          size_t data_size, const char *f, Err *err) {
    const char *name = t->name;
    if (!json_is_object(v))
        return err_set(err, "%s: tensor '" ST_MSG_NAME "': entry is not a JSON object", f, name);

    json_t *jd = json_object_get(v, "dtype");
    if (!jd) return err_set(err, "%s: tensor '" ST_MSG_NAME "': missing \"dtype\"", f, name);
    if (!json_is_string(jd))
        return err_set(err, "%s: tensor '" ST_MSG_NAME "': \"dtype\" is not a string", f, name);
    if (dtype_parse(json_string_value(jd), json_string_length(jd), &t->dtype) != 0)
        return err_set(err, "%s: tensor '" ST_MSG_NAME "': unknown dtype '%.32s'", f, name,
                       json_string_value(jd));

    json_t *js = json_object_get(v, "shape");
    if (!json_is_array(js))
        return err_set(err, "%s: tensor '" ST_MSG_NAME "': \"shape\" is missing or not an array",
                       f, name);
    size_t nd = json_array_size(js);
    if (nd > ST_MAX_DIMS)
        return err_set(err, "%s: tensor '" ST_MSG_NAME "': shape has %zu dims, more than %d", f,
                       name, nd, ST_MAX_DIMS);
    t->n_dims = (int)nd;
    size_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return err_set(err,
                           "%s: tensor '" ST_MSG_NAME "': shape[%zu] is not a non-negative integer",
                           f, name, i);
        t->shape[i] = (int64_t)json_integer_value(d);
        if (size_mul(numel, (size_t)t->shape[i], &numel) != 0)
            return err_set(err, "%s: tensor '" ST_MSG_NAME "': element count overflows", f, name);
    }
    size_t n_bytes;
    if (size_mul(numel, dtype_size(t->dtype), &n_bytes) != 0)
        return err_set(err, "%s: tensor '" ST_MSG_NAME "': byte count overflows", f, name);

    json_t *jo = json_object_get(v, "data_offsets");
    if (!json_is_array(jo) || json_array_size(jo) != 2 ||
        !json_is_integer(json_array_get(jo, 0)) || !json_is_integer(json_array_get(jo, 1)))
        return err_set(err, "%s: tensor '" ST_MSG_NAME "': \"data_offsets\" must be two integers",
                       f, name);
    json_int_t begin = json_integer_value(json_array_get(jo, 0));
    json_int_t end = json_integer_value(json_array_get(jo, 1));
    if (begin < 0 || end < begin)
        return err_set(err,
                       "%s: tensor '" ST_MSG_NAME "': data_offsets [%lld, %lld] are not "
                       "0 <= begin <= end",
                       f, name, (long long)begin, (long long)end);
    if ((unsigned long long)end > data_size)
        return err_set(err,
                       "%s: tensor '" ST_MSG_NAME "': data_offsets end %lld is past the end of "
                       "the data section (%zu bytes)",
                       f, name, (long long)end, data_size);
    if ((size_t)(end - begin) != n_bytes) {
        char sh[128];
        st_shape_str(sh, sizeof sh, t->n_dims, t->shape);
        return err_set(err,
                       "%s: tensor '" ST_MSG_NAME "': data_offsets span %lld bytes but shape %s "
                       "of %s needs %zu",
                       f, name, (long long)(end - begin), sh, dtype_name(t->dtype), n_bytes);
    }
    t->data = data + begin;
    t->n_bytes = n_bytes;
    return 0;
}

/* Order by start of data, then by size, then by name (deterministic). */
static int st_cmp_offset(const void *pa, const void *pb) {
    const StTensor *a = pa, *b = pb;
    uintptr_t da = (uintptr_t)a->data, db = (uintptr_t)b->data;
    if (da != db) return da < db ? -1 : 1;
    if (a->n_bytes != b->n_bytes) return a->n_bytes < b->n_bytes ? -1 : 1;
    return strcmp(a->name, b->name);
}

static void st_tensors_free(StTensor *ts, int n) {
    for (int i = 0; ts && i < n; i++) free(ts[i].name);
    free(ts);
}

int st_parse(const unsigned char *buf, size_t size, const char *file, StTensor **out, int *n_out,
             Err *err) {
    const char *f = file ? file : "<buffer>";
    json_t *root = NULL;
    StTensor *ts = NULL;
    int n = 0;
    *out = NULL;
    *n_out = 0;

    if (size < 8) {
        err_set(err, "%s: file is %zu bytes, shorter than the 8-byte header length", f, size);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)buf[i] << (8 * i);
    if (hlen > ST_MAX_HEADER_BYTES) {
        err_set(err, "%s: header length %llu is absurd (limit %zu bytes)", f,
                (unsigned long long)hlen, ST_MAX_HEADER_BYTES);
        goto fail;
    }
    if (hlen > size - 8) {
        err_set(err, "%s: header length %llu runs past the end of the file (%zu bytes)", f,
                (unsigned long long)hlen, size);
        goto fail;
    }
    const unsigned char *data = buf + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;

    /* Without JSON_ALLOW_NUL jansson refuses \u0000, so names are C strings. */
    json_error_t je;
    root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        err_set(err, "%s: header is not valid JSON at line %d, column %d: %s", f, je.line,
                je.column, je.text);
        goto fail;
    }
    if (!json_is_object(root)) {
        err_set(err, "%s: header is not a JSON object", f);
        goto fail;
    }
    size_t cap = json_object_size(root);
    if (cap >= INT_MAX) {
        err_set(err, "%s: header lists too many tensors", f);
        goto fail;
    }
    ts = calloc(cap ? cap : 1, sizeof *ts);
    if (!ts) {
        err_set(err, "%s: out of memory for %zu tensors", f, cap);
        goto fail;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (st_check_metadata(val, f, err) != 0) goto fail;
            continue;
        }
        StTensor *t = &ts[n];
        t->name = strdup(key);
        if (!t->name) {
            err_set(err, "%s: out of memory", f);
            goto fail;
        }
        n++; /* counted now so that fail: frees the name */
        if (st_parse_entry(t, val, data, data_size, f, err) != 0) goto fail;
    }

    /* Overlap check: in offset order each tensor with bytes must start at or
     * after the furthest end seen so far. Empty tensors occupy nothing. */
    qsort(ts, (size_t)n, sizeof *ts, st_cmp_offset);
    const StTensor *far = NULL;
    for (int i = 0; i < n; i++) {
        const StTensor *t = &ts[i];
        if (t->n_bytes == 0) continue;
        if (far) {
            const unsigned char *far_end = (const unsigned char *)far->data + far->n_bytes;
            if ((const unsigned char *)t->data < far_end) {
                err_set(err,
                        "%s: tensors '" ST_MSG_NAME "' and '" ST_MSG_NAME "' overlap in the "
                        "data section",
                        f, far->name, t->name);
                goto fail;
            }
        }
        far = t;
    }
    json_decref(root);
    *out = ts;
    *n_out = n;
    return 0;
fail:
    json_decref(root);
    st_tensors_free(ts, n);
    return -1;
}

/* ---- opening files and model directories --------------------------------- */

static int st_cmp_name(const void *pa, const void *pb) {
    const StTensor *a = pa, *b = pb;
    return strcmp(a->name, b->name);
}

/* Map path as shard number st->n_files and append its tensors. */
static int st_add_file(SafeTensors *st, const char *path, Err *err) {
    StTensor *ts = NULL;
    int n = 0;
    MappedFile *files = realloc(st->files, (size_t)(st->n_files + 1) * sizeof *files);
    if (!files) return err_set(err, "%s: out of memory", path);
    st->files = files;
    MappedFile *mf = &st->files[st->n_files];
    if (mfile_open(mf, path, err) != 0) return -1;
    st->n_files++;
    if (st_parse(mf->data, mf->size, mf->path, &ts, &n, err) != 0) goto fail;
    if (n > INT_MAX - st->n_tensors) {
        err_set(err, "%s: too many tensors", path);
        goto fail;
    }
    size_t total = (size_t)st->n_tensors + (size_t)n;
    StTensor *all = realloc(st->tensors, (total ? total : 1) * sizeof *all);
    if (!all) {
        err_set(err, "%s: out of memory", path);
        goto fail;
    }
    st->tensors = all;
    for (int i = 0; i < n; i++) {
        ts[i].file_index = st->n_files - 1;
        st->tensors[st->n_tensors++] = ts[i]; /* names move over */
    }
    free(ts);
    return 0;
fail:
    st_tensors_free(ts, n);
    return -1;
}

/* A shard named by the index must be a plain file inside the model
 * directory: non-empty, no '/', no "..", no embedded NUL. */
static int st_shard_name_ok(const json_t *v) {
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    return n > 0 && strlen(s) == n && !strchr(s, '/') && !strstr(s, "..");
}

/* Open every shard that the index (loaded from index_path) names in its
 * weight_map, each once; *ids gets {shard file name: file index}. */
static int st_open_shards(SafeTensors *st, const char *dir, const char *index_path,
                          const json_t *index, json_t **ids, Err *err) {
    char path[4096];
    *ids = json_object();
    if (!*ids) return err_set(err, "%s: out of memory", index_path);
    if (!json_is_object(index)) return err_set(err, "%s: not a JSON object", index_path);
    json_t *wm = json_object_get(index, "weight_map");
    if (!json_is_object(wm))
        return err_set(err, "%s: \"weight_map\" is missing or not an object", index_path);
    const char *key;
    json_t *val;
    json_object_foreach(wm, key, val) {
        if (!json_is_string(val))
            return err_set(err, "%s: weight_map entry for tensor '" ST_MSG_NAME
                           "' is not a string", index_path, key);
        const char *shard = json_string_value(val);
        if (!st_shard_name_ok(val))
            return err_set(err,
                           "%s: tensor '" ST_MSG_NAME "': shard '" ST_MSG_NAME "' is not a plain "
                           "file name inside the model directory",
                           index_path, key, shard);
        if (json_object_get(*ids, shard)) continue;
        if (path_join(path, sizeof path, dir, shard) != 0)
            return err_set(err, "%s: shard path '" ST_MSG_NAME "' is too long", index_path,
                           shard);
        if (st_add_file(st, path, err) != 0)
            return err_prefix(err, "%s: shard of tensor '%.60s'", index_path, key);
        if (json_object_set_new(*ids, shard, json_integer(st->n_files - 1)) != 0)
            return err_set(err, "%s: out of memory", index_path);
    }
    return 0;
}

/* Every tensor the weight_map lists must be in the shard it names. Needs the
 * tensors sorted by name. */
static int st_check_index(const SafeTensors *st, const char *index_path, const json_t *index,
                          const json_t *ids, Err *err) {
    const json_t *wm = json_object_get(index, "weight_map");
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)wm, key, val) {
        int want = (int)json_integer_value(json_object_get(ids, json_string_value(val)));
        const StTensor *t = st_find(st, key);
        if (!t)
            return err_set(err,
                           "%s: tensor '" ST_MSG_NAME "' listed in %s is missing from this shard",
                           st->files[want].path, key, index_path);
        if (t->file_index != want)
            return err_set(err, "%s: tensor '" ST_MSG_NAME "' is listed in shard %s but is in %s",
                           index_path, key, st->files[want].path, st_file_name(st, t));
    }
    return 0;
}

int st_open(SafeTensors *st, const char *path, Err *err) {
    char buf[4096], dir[4096];
    const char *index_path = NULL; /* the index, when the tensors are in shards */
    json_t *index = NULL, *ids = NULL;
    memset(st, 0, sizeof *st);
    if (file_is_dir(path)) {
        if (path_join(buf, sizeof buf, path, ST_INDEX_NAME) != 0) {
            err_set(err, "%s: path too long", path);
            goto fail;
        }
        if (file_exists(buf)) {
            index_path = buf;
            snprintf(dir, sizeof dir, "%s", path);
        } else {
            if (path_join(buf, sizeof buf, path, ST_SINGLE_NAME) != 0) {
                err_set(err, "%s: path too long", path);
                goto fail;
            }
            if (!file_exists(buf)) {
                err_set(err, "%s: directory has neither %s nor %s", path, ST_INDEX_NAME,
                        ST_SINGLE_NAME);
                goto fail;
            }
            if (st_add_file(st, buf, err) != 0) goto fail;
        }
    } else if (path_has_suffix(path, ".index.json")) {
        index_path = path;
        path_dir_of(path, dir, sizeof dir);
    } else if (st_add_file(st, path, err) != 0) {
        goto fail;
    }
    if (index_path) {
        index = json_load_path(index_path, ST_MAX_HEADER_BYTES, err);
        if (!index || st_open_shards(st, dir, index_path, index, &ids, err) != 0) goto fail;
    }
    qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, st_cmp_name);
    for (int i = 1; i < st->n_tensors; i++) {
        const StTensor *a = &st->tensors[i - 1], *b = &st->tensors[i];
        if (strcmp(a->name, b->name) == 0) {
            err_set(err, "tensor '" ST_MSG_NAME "' appears in both %s and %s", a->name,
                    st_file_name(st, a), st_file_name(st, b));
            goto fail;
        }
    }
    if (index && st_check_index(st, index_path, index, ids, err) != 0) goto fail;
    json_decref(ids);
    json_decref(index);
    return 0;
fail:
    json_decref(ids);
    json_decref(index);
    st_close(st);
    return -1;
}

int st_write_index(const char *index_path, const char *const *shards, int n, Err *err) {
    char dir[4096], path[4096];
    path_dir_of(index_path, dir, sizeof dir);
    json_t *root = json_object(), *meta = json_object(), *wm = json_object();
    int rc = -1;
    uint64_t total = 0;
    if (!root || !meta || !wm || json_object_set(root, "metadata", meta) != 0 ||
        json_object_set(root, "weight_map", wm) != 0) {
        err_set(err, "%s: out of memory", index_path);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        SafeTensors st;
        json_t *v = json_string(shards[i]);
        if (!v || !st_shard_name_ok(v)) {
            json_decref(v);
            err_set(err, "%s: shard '" ST_MSG_NAME "' is not a plain file name", index_path, shards[i]);
            goto done;
        }
        json_decref(v);
        if (path_join(path, sizeof path, dir, shards[i]) != 0) {
            err_set(err, "%s: path too long", index_path);
            goto done;
        }
        if (st_open(&st, path, err) != 0) goto done;
        int bad = 0;
        for (int k = 0; k < st.n_tensors && !bad; k++) {
            total += st.tensors[k].n_bytes;
            if (json_object_get(wm, st.tensors[k].name))
                bad = err_set(err, "%s: tensor '" ST_MSG_NAME "' is in two shards", index_path,
                              st.tensors[k].name);
            else if (json_object_set_new(wm, st.tensors[k].name, json_string(shards[i])) != 0)
                bad = err_set(err, "%s: out of memory", index_path);
        }
        st_close(&st);
        if (bad) goto done;
    }
    json_object_set_new(meta, "total_size", json_integer((json_int_t)total));
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!text) {
        err_set(err, "%s: out of memory", index_path);
        goto done;
    }
    rc = file_write_atomic(index_path, text, strlen(text), err);
    free(text);
done:
    json_decref(wm);
    json_decref(meta);
    json_decref(root);
    return rc;
}

void st_close(SafeTensors *st) {
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; i < st->n_files; i++) mfile_close(&st->files[i]);
    free(st->files);
    memset(st, 0, sizeof *st);
}

const StTensor *st_find(const SafeTensors *st, const char *name) {
    size_t lo = 0, hi = (size_t)st->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->tensors[mid].name, name);
        if (c == 0) return &st->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *st_file_name(const SafeTensors *st, const StTensor *t) {
    if (t->file_index < 0 || t->file_index >= st->n_files) return "?";
    return st->files[t->file_index].path;
}

int64_t st_numel(const StTensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->n_dims; i++) n *= t->shape[i]; /* bounded by the file size */
    return n;
}

/* ---- conversion to float32 ----------------------------------------------- */

/* ceil(a / b) without the overflow of (a + b - 1) / b. */
static int64_t st_ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

/* F8_E4M3 (rows, cols) times its (ceil(rows/128), ceil(cols/128)) F32 block
 * scales. Scales are read with memcpy: the mapped file need not align them. */
static int st_f8_dequant(const SafeTensors *st, const StTensor *t, float *dst, Err *err) {
    const char *f = st_file_name(st, t);
    if (t->n_dims != 2)
        return err_set(err,
                       "%s: F8_E4M3 tensor '" ST_MSG_NAME "' has %d dims; block scales need 2", f,
                       t->name, t->n_dims);
    size_t len = strlen(t->name);
    char *sname = malloc(len + sizeof "_scale_inv");
    if (!sname) return err_set(err, "%s: out of memory", f);
    memcpy(sname, t->name, len);
    memcpy(sname + len, "_scale_inv", sizeof "_scale_inv");
    const StTensor *s = st_find(st, sname);
    int64_t rows = t->shape[0], cols = t->shape[1];
    int64_t br = st_ceil_div(rows, ST_F8_BLOCK), bc = st_ceil_div(cols, ST_F8_BLOCK);
    if (!s) {
        err_set(err, "%s: F8_E4M3 tensor '" ST_MSG_NAME "' has no scale tensor '" ST_MSG_NAME "'",
                f, t->name, sname);
        free(sname);
        return -1;
    }
    if (s->dtype != DTYPE_F32 || s->n_dims != 2 || s->shape[0] != br || s->shape[1] != bc) {
        char have[128];
        st_shape_str(have, sizeof have, s->n_dims, s->shape);
        err_set(err,
                "%s: scale tensor '" ST_MSG_NAME "' (in %s) of F8_E4M3 tensor '" ST_MSG_NAME
                "' must be F32 of shape [%lld, %lld], is %s of shape %s",
                f, sname, st_file_name(st, s), t->name, (long long)br, (long long)bc,
                dtype_name(s->dtype), have);
        free(sname);
        return -1;
    }
    free(sname);

    float lut[256];
    for (int i = 0; i < 256; i++) lut[i] = f8e4m3_to_f32((uint8_t)i);
    const uint8_t *w = t->data;                 /* (rows, cols) */
    const unsigned char *sc = s->data;          /* (br, bc) float32 */
    for (int64_t i = 0; i < rows; i++) {
        const uint8_t *wr = w + (size_t)i * (size_t)cols;
        float *dr = dst + (size_t)i * (size_t)cols;
        const unsigned char *sr = sc + (size_t)(i / ST_F8_BLOCK) * (size_t)bc * 4;
        for (int64_t jb = 0; jb < bc; jb++) {
            float scale;
            memcpy(&scale, sr + (size_t)jb * 4, 4);
            int64_t j0 = jb * ST_F8_BLOCK, j1 = j0 + ST_F8_BLOCK < cols ? j0 + ST_F8_BLOCK : cols;
            for (int64_t j = j0; j < j1; j++) dr[j] = lut[wr[j]] * scale;
        }
    }
    return 0;
}

int st_to_f32(const SafeTensors *st, const StTensor *t, float *dst, Err *err) {
    size_t n = (size_t)st_numel(t);
    switch (t->dtype) {
    case DTYPE_F32: /* dtype_to_f32 copies with memcpy, so alignment does not matter */
        dtype_to_f32(dst, t->data, t->dtype, n);
        return 0;
    case DTYPE_F16:
    case DTYPE_BF16:
        if ((uintptr_t)t->data % 2 == 0) {
            dtype_to_f32(dst, t->data, t->dtype, n);
        } else { /* an odd offset: the converters read uint16_t, so bounce */
            uint16_t tmp[1024];
            const unsigned char *src = t->data;
            for (size_t i = 0; i < n; i += 1024) {
                size_t k = n - i < 1024 ? n - i : 1024;
                memcpy(tmp, src + 2 * i, 2 * k);
                dtype_to_f32(dst + i, tmp, t->dtype, k);
            }
        }
        return 0;
    case DTYPE_F8_E4M3: return st_f8_dequant(st, t, dst, err);
    default:
        return err_set(err, "%s: tensor '" ST_MSG_NAME "' has dtype %s, not a float type",
                       st_file_name(st, t), t->name, dtype_name(t->dtype));
    }
}

/* ---- writing ------------------------------------------------------------- */

/* Bytes of a tensor to write; called after st_write_entry checked overflow. */
static size_t st_write_bytes(const StWriteTensor *t) {
    size_t n = dtype_size(t->dtype);
    for (int i = 0; i < t->n_dims; i++) n *= (size_t)t->shape[i];
    return n;
}

/* Append t's header entry {"dtype","shape","data_offsets":[*off, *off+bytes]}
 * to root, advancing *off. Validates the description. */
static int st_write_entry(json_t *root, const StWriteTensor *t, size_t *off, const char *path,
                          Err *err) {
    const char *name = t->name ? t->name : "(null)";
    if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0)
        return err_set(err, "%s: tensor name '" ST_MSG_NAME "' is empty or reserved", path, name);
    if ((unsigned)t->dtype >= DTYPE_COUNT)
        return err_set(err, "%s: tensor '" ST_MSG_NAME "': bad dtype %d", path, name,
                       (int)t->dtype);
    if (t->n_dims < 0 || t->n_dims > ST_MAX_DIMS)
        return err_set(err, "%s: tensor '" ST_MSG_NAME "': %d dims (0..%d allowed)", path, name,
                       t->n_dims, ST_MAX_DIMS);
    if (json_object_get(root, t->name))
        return err_set(err, "%s: tensor '" ST_MSG_NAME "' is given twice", path, name);
    size_t numel = 1, n_bytes, end;
    for (int i = 0; i < t->n_dims; i++)
        if (t->shape[i] < 0 || size_mul(numel, (size_t)t->shape[i], &numel) != 0)
            return err_set(err, "%s: tensor '" ST_MSG_NAME "': shape[%d] is negative or "
                           "overflows", path, name, i);
    if (size_mul(numel, dtype_size(t->dtype), &n_bytes) != 0 ||
        size_add(*off, n_bytes, &end) != 0 || end > (size_t)LLONG_MAX)
        return err_set(err, "%s: tensor '" ST_MSG_NAME "': size overflows", path, name);
    if (n_bytes && !t->data)
        return err_set(err, "%s: tensor '" ST_MSG_NAME "': data is NULL", path, name);

    json_t *shape = json_array();
    for (int i = 0; i < t->n_dims && shape; i++) {
        if (json_array_append_new(shape, json_integer(t->shape[i])) != 0) {
            json_decref(shape);
            shape = NULL;
        }
    }
    /* "o" steals shape, also when json_pack fails. */
    json_t *entry = shape ? json_pack("{s:s, s:o, s:[I, I]}", "dtype", dtype_name(t->dtype),
                                      "shape", shape, "data_offsets", (json_int_t)*off,
                                      (json_int_t)end)
                          : NULL;
    if (!entry) return err_set(err, "%s: out of memory", path);
    /* jansson refuses a key that is not valid UTF-8 (and frees entry). */
    if (json_object_set_new(root, t->name, entry) != 0)
        return err_set(err, "%s: tensor name '" ST_MSG_NAME "' is not valid UTF-8", path, name);
    *off = end;
    return 0;
}

int st_write(const char *path, const StWriteTensor *t, int n, Err *err) {
    json_t *root = json_object(), *meta = json_object();
    char *hdr = NULL;
    AtomicFile af = {0};
    int opened = 0;
    size_t off = 0;
    if (!root || !meta || json_object_set_new(meta, "format", json_string("pt")) != 0) {
        json_decref(meta);
        err_set(err, "%s: out of memory", path);
        goto fail;
    }
    if (json_object_set_new(root, "__metadata__", meta) != 0) {
        err_set(err, "%s: out of memory", path);
        goto fail;
    }
    for (int i = 0; i < n; i++)
        if (st_write_entry(root, &t[i], &off, path, err) != 0) goto fail;

    hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!hdr) {
        err_set(err, "%s: out of memory", path);
        goto fail;
    }
    size_t len = strlen(hdr), padded = (len + 7) / 8 * 8;
    if (padded > ST_MAX_HEADER_BYTES) {
        err_set(err, "%s: header of %zu bytes is over the %zu-byte limit", path, padded,
                ST_MAX_HEADER_BYTES);
        goto fail;
    }
    if (afile_open(&af, path, err) != 0) goto fail;
    opened = 1;
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    static const char spaces[8] = "        ";
    FILE *fp = af.fp;
    int bad = fwrite(lenb, 1, 8, fp) != 8 || fwrite(hdr, 1, len, fp) != len ||
              fwrite(spaces, 1, padded - len, fp) != padded - len;
    for (int i = 0; i < n && !bad; i++) {
        size_t bytes = st_write_bytes(&t[i]);
        if (bytes) bad = fwrite(t[i].data, 1, bytes, fp) != bytes;
    }
    if (bad) {
        err_set(err, "%s: write failed", path);
        goto fail;
    }
    opened = 0;
    if (afile_commit(&af, err) != 0) goto fail; /* commit cleans up after itself */
    free(hdr);
    json_decref(root);
    return 0;
fail:
    if (opened) afile_abort(&af);
    free(hdr);
    json_decref(root);
    return -1;
}
