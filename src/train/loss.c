/* SPDX-License-Identifier: MIT */
/* Softmax cross-entropy with its gradient in one pass over the logits (see
 * loss.h). The max is subtracted before exp; sums run in double. */
#include "train/loss.h"

#include <math.h>
#include <stddef.h>

double xent_forward_backward(float *logits, const int32_t *y, const float *weights, float scale,
                             int T, int V, float *nll) {
    double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total) if ((long)T * V >= 1 << 16)
    for (int t = 0; t < T; t++) {
        float *z = logits + (size_t)t * V;
        const float c = y[t] < 0 ? 0.0f : scale * (weights ? weights[t] : 1.0f);
        float mx = z[0];
        for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        double s = 0;
        for (int v = 0; v < V; v++) s += exp((double)(z[v] - mx));
        const double lse = mx + log(s);
        const double l = y[t] < 0 ? 0.0 : lse - z[y[t]];
        if (nll) nll[t] = (float)l;
        total += c * l;
        for (int v = 0; v < V; v++) z[v] = c * (float)exp((double)z[v] - lse);
        if (y[t] >= 0) z[y[t]] -= c;
    }
    return total;
}
