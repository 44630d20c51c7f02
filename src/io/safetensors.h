/* SPDX-License-Identifier: MIT */
/* safetensors: the Hugging Face weight format (8-byte little-endian header
 * length, JSON header, raw tensor bytes). Reads single files and sharded model
 * directories by mmap, treating every byte as hostile; dequantises the F8_E4M3
 * weights of the official DeepSeek-V3 release (128x128 block scales); writes
 * files atomically. Sits in io/, below model/ (the weight loader). */
#ifndef WHALE_IO_SAFETENSORS_H
#define WHALE_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/err.h"
#include "base/file.h"

#define ST_MAX_DIMS 8
/* Largest header we accept; real headers (even V3's) are well under 1 MB. */
#define ST_MAX_HEADER_BYTES ((size_t)100 * 1000 * 1000)
/* Side of the square blocks that share one F8 scale in the V3 release. */
#define ST_F8_BLOCK 128

typedef struct StTensor {
    char *name;                  /* owned */
    DType dtype;
    int n_dims;                  /* 0..8 */
    int64_t shape[ST_MAX_DIMS];  /* each >= 0 */
    const void *data;            /* (n_bytes) into the mapped file; may be unaligned */
    size_t n_bytes;              /* == st_numel * dtype_size, checked */
    int file_index;              /* which shard: index into SafeTensors.files */
} StTensor;

typedef struct SafeTensors {
    MappedFile *files; /* (n_files) one mapping per shard, each opened once */
    int n_files;
    StTensor *tensors; /* (n_tensors) sorted by name (strcmp), names unique */
    int n_tensors;
} SafeTensors;

/* Parse one safetensors file image buf (size bytes). On success *out is a
 * malloc'd array of *n_out tensors, in order of their data offsets, whose data
 * pointers point into buf and whose file_index is 0; the caller frees each
 * name and then the array. `file` names the image in messages (NULL reads as
 * "<buffer>"). Returns 0, or -1 with *out = NULL, *n_out = 0 and err
 * "FILE: ..." naming the tensor where one is at fault: a file shorter than 8
 * bytes, a header length past the end or over ST_MAX_HEADER_BYTES, a header
 * that is not a JSON object (with line:column), a duplicate name, a bad
 * dtype, shape or data_offsets, a byte count that disagrees with the shape,
 * overlapping tensors, a __metadata__ that is not an object of strings.
 * This is the fuzz entry point. */
int st_parse(const unsigned char *buf, size_t size, const char *file, StTensor **out, int *n_out,
             Err *err);

/* Open path: a .safetensors file, an index (a file named *.index.json,
 * whose "weight_map" {tensor: shard file} names the shards, each a plain
 * file name inside the index's directory), or a model directory holding
 * the index model.safetensors.index.json or else model.safetensors. Each file is mapped read-only and parsed with st_parse.
 * Every tensor the index lists must be in the shard it names, and no name may
 * appear in two shards. Returns 0, or -1 with err (st is then zeroed). Free
 * with st_close. */
int st_open(SafeTensors *st, const char *path, Err *err);

/* Unmap and free everything; accepts a zeroed struct; leaves st zeroed. */
void st_close(SafeTensors *st);

/* The tensor called name, or NULL if absent. O(log n_tensors). */
const StTensor *st_find(const SafeTensors *st, const char *name);

/* Path of the shard that holds t (for messages). */
const char *st_file_name(const SafeTensors *st, const StTensor *t);

/* Number of elements: the product of the shape (1 for a 0-dim tensor). */
int64_t st_numel(const StTensor *t);

/* Convert a float tensor (F32, F16, BF16, F8_E4M3) of st into float32 at dst
 * (st_numel(t) elements, row-major). An F8_E4M3 tensor must be 2-D (rows,
 * cols) and have a companion "<name>_scale_inv", F32 of shape
 * (ceil(rows/128), ceil(cols/128)); then
 * dst[i*cols + j] = f8(w[i][j]) * scale_inv[i/128][j/128]. An integer
 * tensor, an F8 tensor without its scale or with a scale of the wrong dtype
 * or shape, is an error naming the file and the tensor(s). Returns 0 or -1. */
int st_to_f32(const SafeTensors *st, const StTensor *t, float *dst, Err *err);

/* One tensor to write: data holds numel * dtype_size bytes (may be NULL when
 * that is 0). */
typedef struct StWriteTensor {
    const char *name;
    DType dtype;
    int n_dims;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
} StWriteTensor;

/* Write n tensors to path atomically (temp file, fsync, rename). The header
 * is {"__metadata__":{"format":"pt"}, then one entry per tensor in the given
 * order}, padded with spaces to a multiple of 8 bytes so that the data
 * section starts 8-aligned; data offsets follow the given order without gaps
 * (order tensors by falling dtype size to keep each one aligned). Names must
 * be non-empty, valid UTF-8, unique and not "__metadata__". Returns 0, or -1
 * with err naming the file and tensor; on failure path is untouched. */
int st_write(const char *path, const StWriteTensor *t, int n, Err *err);

/* Write the index of n shard files (plain names, files already written in
 * the index's directory) to index_path atomically, as Hugging Face does
 * for a sharded model: {"metadata": {"total_size": their tensor bytes},
 * "weight_map": {tensor: shard}}. A tensor in two shards is an error. 0,
 * or -1 with err. */
int st_write_index(const char *index_path, const char *const *shards, int n, Err *err);

#endif
