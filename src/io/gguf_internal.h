/* SPDX-License-Identifier: MIT */
/* What the GGUF reader (gguf.c) and writer (gguf_write.c) share; not part
 * of the public interface in gguf.h. */
#ifndef WHALE_GGUF_INTERNAL_H
#define WHALE_GGUF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Longest key or tensor name quoted in a message. */
#define GG_NAME "%.200s"

/* Bytes of one scalar of value type t; 0 for STRING, ARRAY and unknown types. */
size_t gg_scalar_size(uint32_t t);
/* 1 for the signed integer value types. */
int gg_is_signed(uint32_t t);
/* qsort comparison of two const char * */
int gg_cmp_str_ptr(const void *a, const void *b);

#endif
