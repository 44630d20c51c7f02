/* SPDX-License-Identifier: MIT */
/* Softmax cross-entropy with its gradient in one pass over the logits (see
 * loss.h): kernels/ops.h softmax_lse gives the probabilities and the
 * log-partition (max subtracted before exp, sums in double). */
#include "train/loss.h"

#include <math.h>
#include <stddef.h>

#include "base/threads.h"
#include "kernels/ops.h"

/* Per-thread partial sums, added in thread order afterwards: a reduction
 * clause would combine them in finishing order, and the loss a resumed run
 * logs must match the uninterrupted run's to the last bit. */
#define XENT_MAX_THREADS 1024

double xent_forward_backward(float *logits, const int32_t *y, const float *weights, float scale,
                             int T, int V, float *nll) {
    double part[XENT_MAX_THREADS] = {0};
    int n_threads = 1;
#pragma omp parallel if ((long)T * V >= 1 << 16)
    {
        const int nt = threads_in_team() < XENT_MAX_THREADS ? threads_in_team() : XENT_MAX_THREADS;
        const int id = thread_id();
        if (id == 0) n_threads = nt;
        /* rows split into contiguous ranges by thread number */
        const int t0 = (int)((long)T * id / nt), t1 = (int)((long)T * (id + 1) / nt);
        for (int t = t0; id < nt && t < t1; t++) {
            float *z = logits + (size_t)t * V;
            const float c = y[t] < 0 ? 0.0f : scale * (weights ? weights[t] : 1.0f);
            const float zy = y[t] < 0 ? 0.0f : z[y[t]];
            /* the probabilities in place, and the log-partition */
            const double lse = softmax_lse(z, V);
            const double l = y[t] < 0 ? 0.0 : lse - zy;
            if (nll) nll[t] = (float)l;
            part[id] += c * l;
            for (int v = 0; v < V; v++) z[v] *= c;
            if (y[t] >= 0) z[y[t]] -= c;
        }
    }
    double total = 0;
    for (int i = 0; i < n_threads; i++) total += part[i];
    return total;
}

void xent_logprobs(const float *logits, const int32_t *y, int T, int V, float *logp,
                   float *entropy) {
#pragma omp parallel for schedule(static) if ((long)T * V >= 1 << 16)
    for (int t = 0; t < T; t++) {
        const float *z = logits + (size_t)t * V;
        float mx = z[0];
        for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        double s = 0, sz = 0;
        for (int v = 0; v < V; v++) {
            const double e = expf(z[v] - mx);
            s += e;
            sz += e * (z[v] - mx);
        }
        const double lse = log(s); /* relative to mx */
        logp[t] = (float)(z[y[t]] - mx - lse);
        /* H = lse - E[z - mx] */
        if (entropy) entropy[t] = (float)(lse - sz / s);
    }
}
