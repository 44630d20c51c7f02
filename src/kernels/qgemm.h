/* SPDX-License-Identifier: MIT */
/* Integer GEMM on Q8_0, Q4_0, Q4_K and Q6_K weights, for many-token products
 * (prefill) and, on weights stored as panels, for any number of tokens: y (T, N) = x (T, K) W^T with x quantised to Q8_0 as the dot
 * kernels multiply it (same integer block sums, per-block scales applied
 * in float), on AVX-512 VNNI byte dot products. qgemm_available() says
 * whether a weight type can run here. */
#ifndef WHALE_QGEMM_H
#define WHALE_QGEMM_H

#include <stddef.h>

#include "kernels/matmul.h"

/* 1 if this CPU has AVX-512 VNNI (F, BW, VL, VNNI) and t is Q8_0, Q4_0,
 * Q4_K or Q6_K. */
int qgemm_available(QType t);

/* y (T, n_rows) = x (T, K) W[row0 : row0+n_rows]^T, K = W->cols, with x
 * quantised to Q8_0 first exactly as quantize_row does it. Per output:
 * sum over 32-element blocks of (exact integer block sum) x d_w x d_x
 * (Q4_K: minus its min x d_x x the block's activation code sum; Q6_K: per
 * 16-element sub-block with its int8 scale), in a float
 * order of its own (differs from the dot kernels by float rounding only).
 * Threads split the tokens for the quantisation and the output rows for
 * the products (OpenMP; inside a parallel region all runs on the calling
 * thread). y must not alias x. Returns 0, or -1 when the type cannot run
 * here or scratch memory cannot be had (y untouched; the caller falls back).
 * Scratch: gemm_scratch (gemm.h). */
int qgemm_nt(float *y, const float *x, int T, const Mat *W, int row0, int n_rows);

/* n (1..32) products of the same x in one pass: y[i] (T, W[i]->rows) =
 * x W[i]^T, every W[i] of one type, K and layout. One parallel region and
 * one quantisation of x for all of them, the panels of the list split
 * over the threads as one run (a decoding step's q/k/v or gate/up: fewer
 * barriers, longer streams). Same numbers as qgemm_nt on each. Returns 0,
 * or -1 as qgemm_nt (and for a mixed list); nothing is written then. */
int qgemm_nt_multi(float *const *y, const float *x, int T, const Mat *const *W, int n);

/* n (1..32) products each of its own input in one pass: y[i] (T,
 * W[i]->rows) = x[i] (T, W[i]->cols) W[i]^T, every W[i] of one type and
 * layout, K free (a decoding token's expert down products). Same numbers
 * as qgemm_nt on each; returns as qgemm_nt_multi. */
int qgemm_nt_each(float *const *y, const float *const *x, int T, const Mat *const *W, int n);

/* Store W (Q8_0, Q4_0, Q4_K or Q6_K, rows a multiple of 16) as 16-row panels, in
 * place and at the same size, and set W->panels: qgemm_nt then reads the
 * panels as they are instead of repacking them for every product, which
 * makes it the fastest product for one token too. Row ranges of a packed
 * W must start at a multiple of 16 for qgemm_nt (others fall back, see
 * matmul.c). Returns 0, or -1 with W unchanged (another type or shape, no
 * AVX-512 VNNI here, out of memory). Runs on the calling thread. */
int qgemm_pack(Mat *W);

/* Row r of a packed W back in its type's row layout (qtype_row_bytes(
 * W->type, W->cols) bytes at row): the bytes it had before packing. */
void qgemm_panel_row(const Mat *W, int r, void *row);

#endif
