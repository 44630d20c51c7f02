/* SPDX-License-Identifier: MIT */
/* GGUF: the single-file model format of the llama.cpp ecosystem (ggml's
 * docs/gguf.md). Reads v2 and v3 little-endian files by mmap, treating every
 * byte as hostile: typed metadata key/values, tensor infos, tensors pointing
 * into the mapping. Writes v3 files atomically in the layout llama.cpp's own
 * reader insists on. Sits in io/, below model/ (the loader); the mapping of
 * names and metadata to whale's config lives in io/gguf_names.h.
 *
 * Layout (all little-endian): "GGUF", u32 version, u64 tensor_count,
 * u64 kv_count; kv_count of {string key, u32 type, value}; tensor_count of
 * {string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset};
 * zero padding to general.alignment (default 32); the data section, where each
 * tensor starts at its offset (a multiple of the alignment). A string is a
 * u64 byte count and the bytes, no NUL. An array is u32 element type, u64
 * count, the elements. Dimensions are in ggml order: ne[0] is the contiguous
 * one, so a row-major (rows, cols) matrix has ne = {cols, rows}. */
#ifndef WHALE_IO_GGUF_H
#define WHALE_IO_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/err.h"
#include "base/file.h"

#define GGUF_VERSION 3
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
/* llama.cpp's GGML_MAX_NAME: its reader refuses tensor names of this many
 * bytes or more, so gguf_write does too. */
#define GGUF_NAME_MAX 64
#define GGUF_KEY_ALIGNMENT "general.alignment"

/* Metadata value types (their numbers are the file's). */
typedef enum GgufType {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
} GgufType;

/* Tensor element types: ggml's enum ggml_type (ggml/include/ggml.h). Ids
 * 4, 5 and 31..33, 36..38 were removed from ggml and are unknown here. */
typedef enum GgmlType {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10,
    GGML_TYPE_Q3_K = 11,
    GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14,
    GGML_TYPE_Q8_K = 15,
    GGML_TYPE_IQ2_XXS = 16,
    GGML_TYPE_IQ2_XS = 17,
    GGML_TYPE_IQ3_XXS = 18,
    GGML_TYPE_IQ1_S = 19,
    GGML_TYPE_IQ4_NL = 20,
    GGML_TYPE_IQ3_S = 21,
    GGML_TYPE_IQ2_S = 22,
    GGML_TYPE_IQ4_XS = 23,
    GGML_TYPE_I8 = 24,
    GGML_TYPE_I16 = 25,
    GGML_TYPE_I32 = 26,
    GGML_TYPE_I64 = 27,
    GGML_TYPE_F64 = 28,
    GGML_TYPE_IQ1_M = 29,
    GGML_TYPE_BF16 = 30,
    GGML_TYPE_TQ1_0 = 34,
    GGML_TYPE_TQ2_0 = 35,
    GGML_TYPE_MXFP4 = 39,
    GGML_TYPE_NVFP4 = 40,
    GGML_TYPE_Q1_0 = 41,
    GGML_TYPE_Q2_0 = 42,
    GGML_TYPE_COUNT = 43
} GgmlType;

/* One ggml type: a row of ne[0] elements is stored as ne[0] / block_size
 * blocks of type_size bytes each (block_size 1 for the plain types). */
typedef struct GgmlTypeInfo {
    const char *name;   /* "Q4_K", as gguf-py spells it */
    int block_size;     /* elements per block */
    int type_size;      /* bytes per block */
    int whale_reads;    /* 1 for F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K */
} GgmlTypeInfo;

/* The table row of type id, or NULL when the id is not a known ggml type. */
const GgmlTypeInfo *gguf_type_info(uint32_t id);
/* Its name, or "?" when unknown. */
const char *gguf_type_name(uint32_t id);
/* Name of a metadata value type ("u32", "string", "array", ...), "?" if unknown. */
const char *gguf_value_type_name(uint32_t t);

/* A string in the file: n bytes at s, not NUL-terminated, any bytes. */
typedef struct GgufStr {
    const char *s;
    uint64_t n;
} GgufStr;

/* One metadata value. Scalars live in num: unsigned types and BOOL (0 or 1)
 * in u, signed types in i, FLOAT32 in f32, FLOAT64 in f64. An array's
 * elements are never arrays. For a parsed file every pointer points into the
 * file image (arr_str into an index owned by the GgufFile). */
typedef struct GgufValue {
    GgufType type;
    union {
        uint64_t u;
        int64_t i;
        float f32;
        double f64;
    } num;
    GgufStr str;            /* STRING */
    GgufType arr_type;      /* ARRAY: element type (a scalar type or STRING) */
    uint64_t arr_n;         /* ARRAY: element count */
    const void *arr;        /* ARRAY of scalars: arr_n packed little-endian elements, maybe unaligned */
    const GgufStr *arr_str; /* ARRAY of STRING: arr_n strings */
} GgufValue;

typedef struct GgufKV {
    const char *key;        /* NUL-terminated; parsed keys are owned by the GgufFile */
    GgufValue v;
} GgufKV;

typedef struct GgufTensor {
    const char *name;             /* owned by the GgufFile */
    int n_dims;                   /* 1..4 */
    int64_t ne[GGUF_MAX_DIMS];    /* ggml order (ne[0] contiguous); 1 past n_dims; each >= 1 */
    GgmlType type;
    uint64_t offset;              /* from the start of the data section; a multiple of alignment */
    const void *data;             /* (n_bytes) into the file image */
    size_t n_bytes;               /* ne[0]*..*ne[3] / block_size * type_size */
} GgufTensor;

typedef struct GgufFile {
    MappedFile mf;          /* the mapping (gguf_open); zeroed after a bare gguf_parse */
    char *path;             /* owned, for messages ("<buffer>" when parsed without a name) */
    uint32_t version;       /* 2 or 3 */
    size_t alignment;       /* general.alignment or 32 */
    size_t data_offset;     /* file offset of the data section */
    GgufKV *kvs;            /* (n_kv) in file order, keys unique */
    int n_kv;
    GgufTensor *tensors;    /* (n_tensors) in file order, names unique */
    int n_tensors;
    int *by_name;           /* (n_tensors) tensor indices sorted by name (strcmp) */
} GgufFile;

/* Parse the GGUF image buf (size bytes) into *out; every pointer in *out
 * points into buf, which must outlive it. `file` names the image in
 * messages (NULL: "<buffer>"). Returns 0, or -1 with *out zeroed and err
 * "FILE: ..." naming the key or tensor at fault: a file shorter than the
 * header, bad magic, a version other than 2 or 3 (big-endian files are
 * recognised and refused), kv or tensor counts the file size cannot hold,
 * a string or array running past the end, an empty or duplicate key or
 * tensor name or one with a NUL byte, an unknown value type, a nested array,
 * a bool other than 0 or 1, a general.alignment that is not an integer power
 * of two, n_dims outside 1..4, a zero or overflowing dimension, an unknown
 * ggml type, a row not a whole number of blocks, a tensor offset that is
 * misaligned or runs past the end, overlapping tensors. Unlike llama.cpp,
 * tensors need not be packed in file order. This is the fuzz entry point. */
int gguf_parse(const unsigned char *buf, size_t size, const char *file, GgufFile *out, Err *err);

/* Map path read-only and gguf_parse it. Returns 0, or -1 with err (g is then
 * zeroed). Free with gguf_close. */
int gguf_open(GgufFile *g, const char *path, Err *err);

/* Free everything and unmap; accepts a zeroed struct; leaves g zeroed. */
void gguf_close(GgufFile *g);

/* The key/value called key, or NULL. Linear in n_kv (files hold ~50). */
const GgufKV *gguf_find_kv(const GgufFile *g, const char *key);

/* The tensor called name, or NULL. O(log n_tensors). */
const GgufTensor *gguf_find_tensor(const GgufFile *g, const char *name);

/* ne[0]*ne[1]*ne[2]*ne[3] (fits: checked at parse time). */
int64_t gguf_tensor_numel(const GgufTensor *t);

/* 0 if whale reads t's type (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K); else
 * -1 with err "FILE: tensor 'NAME' has type Q5_K, which whale does not read
 * (...)". gguf_check_types does it for every tensor. */
int gguf_check_tensor_type(const GgufFile *g, const GgufTensor *t, Err *err);
int gguf_check_types(const GgufFile *g, Err *err);

/* ---- typed metadata access ------------------------------------------------
 * Conversions are lossless or refused: integer types convert to any integer
 * type that holds the value (a u8 reads as i64, a u64 of 7 as u32, an i32 of
 * -1 never as u32); FLOAT32 and FLOAT64 read as either (f32 only when the
 * double is exactly a float); BOOL reads only as bool. Errors say
 * "FILE: metadata key 'KEY' has type string, expected u32", "... = -1 does
 * not fit in u32" or "... is missing". The gguf_value_* forms take `what`
 * (the key, for messages; the file is not named). */
int gguf_value_u32(const GgufValue *v, const char *what, uint32_t *out, Err *err);
int gguf_value_i32(const GgufValue *v, const char *what, int32_t *out, Err *err);
int gguf_value_u64(const GgufValue *v, const char *what, uint64_t *out, Err *err);
int gguf_value_i64(const GgufValue *v, const char *what, int64_t *out, Err *err);
int gguf_value_f32(const GgufValue *v, const char *what, float *out, Err *err);
int gguf_value_f64(const GgufValue *v, const char *what, double *out, Err *err);
int gguf_value_bool(const GgufValue *v, const char *what, int *out, Err *err);

/* Element i (< v->arr_n) of an array as a scalar value (type arr_type). */
void gguf_value_at(const GgufValue *arr, uint64_t i, GgufValue *elem);

/* Whole-file forms: find key, then convert. A missing key is an error. */
int gguf_get_u32(const GgufFile *g, const char *key, uint32_t *out, Err *err);
int gguf_get_i32(const GgufFile *g, const char *key, int32_t *out, Err *err);
int gguf_get_u64(const GgufFile *g, const char *key, uint64_t *out, Err *err);
int gguf_get_i64(const GgufFile *g, const char *key, int64_t *out, Err *err);
int gguf_get_f32(const GgufFile *g, const char *key, float *out, Err *err);
int gguf_get_f64(const GgufFile *g, const char *key, double *out, Err *err);
int gguf_get_bool(const GgufFile *g, const char *key, int *out, Err *err);
/* A STRING copied NUL-terminated into buf (n bytes); one with a NUL byte or
 * longer than n-1 bytes is an error. */
int gguf_get_str(const GgufFile *g, const char *key, char *buf, size_t n, Err *err);
/* An ARRAY; elem_type GGUF_TYPE_COUNT accepts any element type. *out points
 * at the value inside g. */
int gguf_get_arr(const GgufFile *g, const char *key, GgufType elem_type, const GgufValue **out,
                 Err *err);

/* 1 if s holds exactly the bytes of the C string c. */
int gguf_str_eq(GgufStr s, const char *c);

/* ---- building metadata (for gguf_write) ----------------------------------- */

static inline GgufKV gguf_kv_uint(const char *key, GgufType t, uint64_t u) {
    GgufKV kv = {key, {.type = t}};
    kv.v.num.u = u;
    return kv;
}
static inline GgufKV gguf_kv_int(const char *key, GgufType t, int64_t i) {
    GgufKV kv = {key, {.type = t}};
    kv.v.num.i = i;
    return kv;
}
static inline GgufKV gguf_kv_u32(const char *key, uint32_t u) {
    return gguf_kv_uint(key, GGUF_TYPE_UINT32, u);
}
static inline GgufKV gguf_kv_i32(const char *key, int32_t i) {
    return gguf_kv_int(key, GGUF_TYPE_INT32, i);
}
static inline GgufKV gguf_kv_bool(const char *key, int b) {
    return gguf_kv_uint(key, GGUF_TYPE_BOOL, b ? 1 : 0);
}
static inline GgufKV gguf_kv_f32(const char *key, float f) {
    GgufKV kv = {key, {.type = GGUF_TYPE_FLOAT32}};
    kv.v.num.f32 = f;
    return kv;
}
static inline GgufKV gguf_kv_f64(const char *key, double f) {
    GgufKV kv = {key, {.type = GGUF_TYPE_FLOAT64}};
    kv.v.num.f64 = f;
    return kv;
}
/* s is NUL-terminated and borrowed. */
static inline GgufKV gguf_kv_str(const char *key, const char *s) {
    GgufKV kv = {key, {.type = GGUF_TYPE_STRING}};
    kv.v.str.s = s;
    kv.v.str.n = strlen(s);
    return kv;
}
/* n elements of scalar type t at data (host order, packed), borrowed. */
static inline GgufKV gguf_kv_arr(const char *key, GgufType t, uint64_t n, const void *data) {
    GgufKV kv = {key, {.type = GGUF_TYPE_ARRAY, .arr_type = t, .arr_n = n, .arr = data}};
    return kv;
}
/* n strings, borrowed. */
static inline GgufKV gguf_kv_arr_str(const char *key, uint64_t n, const GgufStr *s) {
    GgufKV kv = {key, {.type = GGUF_TYPE_ARRAY, .arr_type = GGUF_TYPE_STRING, .arr_n = n,
                       .arr_str = s}};
    return kv;
}

/* ---- writing ----------------------------------------------------------------- */

/* One tensor to write: ne in ggml order (ne[0] contiguous), data holds
 * ne[0]*..*ne[n_dims-1] / block_size * type_size bytes. */
typedef struct GgufWriteTensor {
    const char *name;
    GgmlType type;
    int n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    const void *data;
} GgufWriteTensor;

/* Write a GGUF v3 file to path atomically (temp file, fsync, rename): the
 * n_kv key/values in the given order, then general.alignment (u32) when
 * alignment is non-zero and kvs do not already hold it, then the tensor
 * infos and data in the given order, each tensor at the next multiple of the
 * alignment (0: 32) with zero padding between and after them -- the packed
 * layout llama.cpp's reader requires. Everything is validated first: keys
 * non-empty and unique, value types known, no nested arrays, bools 0 or 1, a
 * general.alignment in kvs must be a u32 equal to `alignment` when that is
 * non-zero; alignment a power of two; names non-empty, unique and shorter
 * than GGUF_NAME_MAX; n_dims 1..4; dims >= 1; a known ggml type; rows a
 * whole number of blocks; data non-NULL. Returns 0, or -1 with err naming
 * the file and the key or tensor; on failure path is untouched. */
int gguf_write(const char *path, const GgufKV *kvs, int n_kv, const GgufWriteTensor *tensors,
               int n_tensors, size_t alignment, Err *err);

#endif
