/* SPDX-License-Identifier: MIT */
/* whale tokenize / whale detokenize: text to token ids and back with a
 * model's tokenizer.json. tokenize prints one JSON array of ids per input
 * (--jsonl: one per input line, for batch use in one process); detokenize
 * prints the exact bytes of the text, without an added newline. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "tokenizer/tokenizer.h"

/* Append "[1,2,3]\n" to buf (grown as needed). */
static int ids_line(char **buf, size_t *cap, const int *ids, int n) {
    size_t need = (size_t)n * 12 + 4;
    if (need > *cap) {
        char *b = realloc(*buf, need);
        if (!b) return -1;
        *buf = b;
        *cap = need;
    }
    char *p = *buf;
    *p++ = '[';
    for (int i = 0; i < n; i++) {
        if (i) *p++ = ',';
        char tmp[12];
        int k = 0;
        unsigned v = (unsigned)ids[i];
        do tmp[k++] = (char)('0' + v % 10);
        while (v /= 10);
        while (k) *p++ = tmp[--k];
    }
    *p++ = ']';
    *p++ = '\n';
    return (int)(p - *buf);
}

/* Encode and print one text; adds the bytes and seconds spent encoding. */
static int tokenize_one(const Tokenizer *tok, const char *text, size_t len, int bos, char **buf,
                        size_t *cap, double *secs, Err *err) {
    int *ids, n;
    double t0 = time_now();
    if (tokenizer_encode(tok, text, len, bos, &ids, &n, err) != 0) return -1;
    *secs += time_now() - t0;
    int k = ids_line(buf, cap, ids, n);
    free(ids);
    if (k < 0) return err_set(err, "out of memory");
    if (fwrite(*buf, 1, (size_t)k, stdout) != (size_t)k)
        return err_set(err, "cannot write to stdout: %s", strerror(errno));
    return 0;
}

/* --jsonl: each line of the file one JSON string. */
static int tokenize_jsonl(const Tokenizer *tok, const char *path, int bos, char **buf, size_t *cap,
                          double *secs, size_t *bytes, Err *err) {
    MappedFile mf;
    if (mfile_open(&mf, path, err) != 0) return -1;
    if (mf.size == 0) { /* no lines, and no pointer arithmetic on NULL */
        mfile_close(&mf);
        return 0;
    }
    const char *p = (const char *)mf.data, *end = p + mf.size;
    int rc = 0;
    for (size_t line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *stop = nl ? nl : end;
        json_error_t je;
        json_t *v = json_loadb(p, (size_t)(stop - p), JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!v || !json_is_string(v)) {
            rc = err_set(err, "%s:%zu: %s", path, line,
                         v ? "expected a JSON string" : je.text);
            json_decref(v);
            break;
        }
        *bytes += json_string_length(v);
        rc = tokenize_one(tok, json_string_value(v), json_string_length(v), bos, buf, cap, secs, err);
        json_decref(v);
        if (rc != 0) break;
        p = nl ? nl + 1 : end;
    }
    mfile_close(&mf);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *file = NULL, *jsonl = NULL;
    int bos = 0, threads = 0, seed = 0;
    ArgSpec specs[] = {
        {"model", 'm', ARG_STR, &model, "PATH: model directory (tokenizer.json) or tokenizer.json"},
        {"text", 0, ARG_STR, &text, "S: the text to encode"},
        {"file", 'f', ARG_STR, &file, "F: encode the whole file as one text"},
        {"jsonl", 0, ARG_STR, &jsonl, "F: each line a JSON string; one array of ids per line"},
        {"bos", 0, ARG_FLAG, &bos, "put the BOS token first (from tokenizer_config.json)"},
        {"threads", 't', ARG_INT, &threads, "N: unused (encoding is single-threaded)"},
        {"seed", 0, ARG_INT, &seed, "N: unused (encoding is deterministic)"},
    };
    int r = args_parse("tokenize", "-m PATH (--text S | --file F | --jsonl F) [--bos]", specs,
                       (int)(sizeof specs / sizeof specs[0]), argc, argv);
    if (r) return r > 0 ? 0 : 2;
    if (!model) return cli_fail("tokenize", "-m PATH is required"), 2;
    if (!!text + !!file + !!jsonl != 1)
        return cli_fail("tokenize", "give exactly one of --text, --file, --jsonl"), 2;
    if (cli_threads("tokenize", threads) != 0) return 2;

    Err err = {{0}};
    char *buf = NULL, *data = NULL;
    size_t cap = 0, bytes = 0;
    double secs = 0;
    int rc = 1;
    Tokenizer *tok = tokenizer_load(model, &err);
    if (!tok) goto done;
    if (text) {
        bytes = strlen(text);
        if (tokenize_one(tok, text, bytes, bos, &buf, &cap, &secs, &err) != 0) goto done;
    } else if (file) {
        if (file_read_all(file, (size_t)1 << 32, &data, &bytes, &err) != 0 ||
            tokenize_one(tok, data, bytes, bos, &buf, &cap, &secs, &err) != 0)
            goto done;
    } else if (tokenize_jsonl(tok, jsonl, bos, &buf, &cap, &secs, &bytes, &err) != 0) {
        goto done;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        err_set(&err, "cannot write to stdout: %s", strerror(errno));
        goto done;
    }
    log_info("whale tokenize: encoded %zu bytes in %.4f s (%.2f MB/s)", bytes, secs,
             secs > 0 ? (double)bytes / secs / 1e6 : 0.0);
    rc = 0;
done:
    if (rc) cli_fail("tokenize", "%s", err.msg);
    free(buf);
    free(data);
    tokenizer_free(tok);
    return rc;
}

/* "1,2,3" or "[1, 2, 3]" (what tokenize prints) -> ids. Returns the count,
 * or -1 with err. Caller frees *out. */
static int parse_ids(const char *s, int **out, Err *err) {
    while (*s == ' ' || *s == '[') s++;
    size_t len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == ']' || s[len - 1] == '\n')) len--;
    int n = len ? 1 : 0;
    for (size_t i = 0; i < len; i++) n += s[i] == ',';
    int *ids = malloc(((size_t)n + 1) * sizeof *ids);
    if (!ids) return err_set(err, "out of memory");
    const char *p = s;
    for (int i = 0; i < n; i++) {
        char *e;
        errno = 0;
        long v = strtol(p, &e, 10);
        while (*e == ' ') e++;
        if (e == p || errno || v < 0 || v > INT_MAX || (*e != ',' && e != s + len)) {
            free(ids);
            return err_set(err, "--ids: item %d is not a non-negative integer", i + 1);
        }
        ids[i] = (int)v;
        p = e + 1;
    }
    *out = ids;
    return n;
}

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL, *ids_s = NULL;
    int skip = 0, threads = 0, seed = 0;
    ArgSpec specs[] = {
        {"model", 'm', ARG_STR, &model, "PATH: model directory (tokenizer.json) or tokenizer.json"},
        {"ids", 0, ARG_STR, &ids_s, "LIST: comma-separated token ids (or a JSON array)"},
        {"skip-special", 0, ARG_FLAG, &skip, "leave out special tokens"},
        {"threads", 't', ARG_INT, &threads, "N: unused"},
        {"seed", 0, ARG_INT, &seed, "N: unused"},
    };
    int r = args_parse("detokenize", "-m PATH --ids 1,2,3 [--skip-special]  (prints the exact text, "
                       "no newline added)", specs, (int)(sizeof specs / sizeof specs[0]), argc, argv);
    if (r) return r > 0 ? 0 : 2;
    if (!model || !ids_s) return cli_fail("detokenize", "-m PATH and --ids LIST are required"), 2;
    if (cli_threads("detokenize", threads) != 0) return 2;
    Err err = {{0}};
    int *ids = NULL;
    int n = parse_ids(ids_s, &ids, &err);
    if (n < 0) return cli_fail("detokenize", "%s", err.msg), 2;
    char *text = NULL;
    size_t len = 0;
    int rc = 1;
    Tokenizer *tok = tokenizer_load(model, &err);
    if (!tok || tokenizer_decode(tok, ids, n, skip, &text, &len, &err) != 0) goto done;
    if ((len && fwrite(text, 1, len, stdout) != len) || fflush(stdout) != 0) {
        err_set(&err, "cannot write to stdout: %s", strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (rc) cli_fail("detokenize", "%s", err.msg);
    free(ids);
    free(text);
    tokenizer_free(tok);
    return rc;
}
