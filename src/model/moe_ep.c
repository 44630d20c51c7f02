/* SPDX-License-Identifier: MIT */
/* Expert parallelism's moves of rows (see blocks.h). A rank's dispatch
 * slots are sorted by expert (sv->count, sv->order), and the experts of a
 * rank are a contiguous range, so the rows for rank q are one run of the
 * dispatch order: they go out as they are. A rank receives them source
 * after source ("source-major"); its experts want them expert after expert
 * with every source's rows together ("expert-major"), so each expert runs
 * one product over all the tokens routed to it. permute() turns one
 * layout into the other. */
#include <string.h>

#include "model/blocks.h"

/* Rows for rank q from this rank: dispatch slots count[q per] .. count[(q + 1) per]. */
static void send_rows(const MoeSaved *sv, int E, int *out) {
    const int N = sv->ep->size, per = E / N;
    for (int q = 0; q < N; q++) out[q] = sv->count[(q + 1) * per] - sv->count[q * per];
}

/* Rows from rank s for this rank's experts. */
static void recv_rows(const MoeSaved *sv, int E, int *out) {
    const int N = sv->ep->size, per = E / N;
    for (int s = 0; s < N; s++) {
        out[s] = 0;
        for (int j = 0; j < per; j++) out[s] += sv->ep_cnt[s * per + j];
    }
}

/* src -> dst between source-major and expert-major (to_expert) layouts
 * of the ep_rows rows of width floats. */
static void permute(const MoeSaved *sv, int E, const float *src, float *dst, int width,
                    int to_expert) {
    const int N = sv->ep->size, per = E / N;
    const size_t w = (size_t)width;
    size_t sm[EP_MAX_RANKS], at = 0; /* source-major position of each source's next rows */
    for (int s = 0; s < N; s++) {
        sm[s] = at;
        for (int j = 0; j < per; j++) at += (size_t)sv->ep_cnt[s * per + j];
    }
    size_t em = 0; /* expert-major position */
    for (int j = 0; j < per; j++)
        for (int s = 0; s < N; s++) {
            const size_t n = (size_t)sv->ep_cnt[s * per + j];
            if (to_expert) memcpy(dst + em * w, src + sm[s] * w, n * w * sizeof(float));
            else memcpy(dst + sm[s] * w, src + em * w, n * w * sizeof(float));
            sm[s] += n, em += n;
        }
}

int moe_ep_counts(MoeSaved *sv, int E, Arena *a) {
    const int N = sv->ep->size, per = E / N;
    int *send = arena_take(a, sizeof(int) * (size_t)E);
    sv->ep_cnt = arena_take(a, sizeof(int) * (size_t)E);
    if (!send || !sv->ep_cnt) return -1;
    /* this rank's rows per expert; rank q gets the block of its experts [q per, (q + 1) per) */
    for (int e = 0; e < E; e++) send[e] = sv->count[e + 1] - sv->count[e];
    if (sv->ep->ints(sv->ep->ctx, send, sv->ep_cnt, per) != 0) return -1;
    sv->ep_rows = 0;
    for (int i = 0; i < E; i++) sv->ep_rows += sv->ep_cnt[i];
    return 0;
}

void moe_ep_expert_rows(const MoeSaved *sv, int E, int j, int *first, int *n) {
    const int N = sv->ep->size, per = E / N;
    int at = 0;
    for (int j2 = 0; j2 < j; j2++)
        for (int s = 0; s < N; s++) at += sv->ep_cnt[s * per + j2];
    *first = at;
    *n = 0;
    for (int s = 0; s < N; s++) *n += sv->ep_cnt[s * per + j];
}

/* The row counts of both directions (sn: to each rank, rn: from each) and
 * a source-major buffer of the ep_rows rows. 0 or -1. */
static int plan(const MoeSaved *sv, int E, int width, int **sn, int **rn, float **tmp, Arena *a) {
    const int N = sv->ep->size;
    *sn = arena_take(a, sizeof(int) * 2 * (size_t)N);
    *tmp = arena_floats(a, (size_t)sv->ep_rows * width + 1);
    if (!*sn || !*tmp) return -1;
    *rn = *sn + N;
    send_rows(sv, E, *sn);
    recv_rows(sv, E, *rn);
    return 0;
}

int moe_ep_dispatch(const MoeSaved *sv, int E, const float *rows, int width, float *own, Arena *a) {
    int *sn, *rn;
    float *tmp;
    if (plan(sv, E, width, &sn, &rn, &tmp, a) != 0 ||
        sv->ep->rows(sv->ep->ctx, rows, sn, tmp, rn, width) != 0)
        return -1;
    permute(sv, E, tmp, own, width, 1);
    return 0;
}

int moe_ep_combine(const MoeSaved *sv, int E, const float *own, int width, float *rows, Arena *a) {
    int *sn, *rn;
    float *tmp;
    if (plan(sv, E, width, &sn, &rn, &tmp, a) != 0) return -1;
    permute(sv, E, own, tmp, width, 0);
    /* the way back: what came from rank s returns to it */
    return sv->ep->rows(sv->ep->ctx, tmp, rn, rows, sn, width);
}
