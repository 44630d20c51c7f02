/* SPDX-License-Identifier: MIT */
/* Decoding's share of the memory read bandwidth, measured in alternation.
 * A VM's read bandwidth can swing by 2x within seconds (the Zen 4 VM of
 * bench/RESULTS.md: about 30 and about 60 GB/s, flipping every few
 * seconds), so a whole run's tok/s over a probe taken before or after it
 * mixes both. Here every burst of decoding steps sits between two read
 * probes (every thread sums its share of a 256 MiB buffer on transparent
 * huge pages, best of 3 passes: read_bw.h, which bench/probe.c runs over 2 GiB); a burst
 * counts when its two probes agree within 10%, and its share is the weight
 * bytes it read per second (weights_decode_bytes x steps / time) over their
 * mean. The counted bursts are then split into the machine's bandwidth
 * regimes (two when the fastest probe is over 1.3x the slowest: cut at
 * their geometric mean) and each regime reports its median probe and
 * median share. Every burst decodes the same positions (the cache is cut
 * back to the prompt), so they differ only in the minute they ran in.
 *
 *   decode_share MODEL [BURSTS 40] [STEPS 8] [THREADS]
 *
 * Prints one line per burst on stderr and one JSON object on stdout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/log.h"
#include "base/threads.h"
#include "model/model.h"
#include "read_bw.h"

#define PROBE_BYTES ((size_t)256 << 20)
#define PROMPT 8

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One regime's JSON: median probe and share of the n bursts with lo <=
 * probe < hi; p and s are scratch of n each. */
static void regime(const char *name, const double *probe, const double *share, int n, double lo,
                   double hi, double *p, double *s) {
    int k = 0;
    for (int i = 0; i < n; i++)
        if (probe[i] >= lo && probe[i] < hi) p[k] = probe[i], s[k++] = share[i];
    if (k)
        printf(", \"%s\": {\"bursts\": %d, \"probe_gb_s\": %.1f, \"share\": %.3f}", name, k,
               median(p, k), median(s, k));
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 5) {
        fprintf(stderr, "usage: decode_share MODEL [BURSTS 40] [STEPS 8] [THREADS]\n");
        return 2;
    }
    const int bursts = argc > 2 ? atoi(argv[2]) : 40, steps = argc > 3 ? atoi(argv[3]) : 8;
    if (bursts < 1 || bursts > 10000 || steps < 1 || steps > 10000) {
        fprintf(stderr, "decode_share: BURSTS and STEPS must be in 1..10000\n");
        return 2;
    }
    if (argc > 4) threads_set(atoi(argv[4]));
    Err err = {0};
    Model m;
    if (model_open(&m, argv[1], &err) != 0) {
        fprintf(stderr, "decode_share: %s\n", err.msg);
        return 1;
    }
    weights_prepare_inference(&m.w, &m.cfg);
    const double bytes = weights_decode_bytes(&m.w, &m.cfg);
    float *buf = aligned_alloc(2 << 20, PROBE_BYTES);
    float *logits = malloc(sizeof(float) * (size_t)m.cfg.vocab_size);
    int *ids = malloc(sizeof(int) * (PROMPT + (size_t)steps));
    /* per counted burst its probe and share, then scratch for the medians */
    double *probe = malloc(sizeof(double) * 4 * (size_t)bursts), *share = probe + bursts;
    double *p = probe + 2 * bursts, *s = probe + 3 * bursts;
    KVCache kv;
    if (!buf || !logits || !ids || !probe ||
        kvcache_init(&kv, &m.cfg, PROMPT + steps, DTYPE_F32, 0, &err) != 0) {
        fprintf(stderr, "decode_share: %s\n", err.msg[0] ? err.msg : "out of memory");
        return 1;
    }
    madvise(buf, PROBE_BYTES, MADV_HUGEPAGE);
    for (size_t i = 0; i < PROBE_BYTES / 4; i++) buf[i] = (float)(i & 1023);
    for (int i = 0; i < PROMPT + steps; i++) ids[i] = (int)((i * 7919u + 13) % (unsigned)m.cfg.vocab_size);
    ForwardOpts o = {.logits = logits};
    if (model_forward(&m, &kv, ids, PROMPT, &o, &err) != 0) {
        fprintf(stderr, "decode_share: %s\n", err.msg);
        return 1;
    }
    int kept = 0;
    double before = read_bw(buf, PROBE_BYTES / 4, 3), lo = 1e30, hi = 0;
    for (int b = 0; b < bursts; b++) {
        kv.len = PROMPT;
        const double t0 = time_now();
        for (int i = 0; i < steps; i++)
            if (model_forward(&m, &kv, ids + PROMPT + i, 1, &o, &err) != 0) {
                fprintf(stderr, "decode_share: %s\n", err.msg);
                return 1;
            }
        const double gbs = bytes * steps / (time_now() - t0) / 1e9;
        const double after = read_bw(buf, PROBE_BYTES / 4, 3), mean = 0.5 * (before + after);
        const int agree = fabs(before - after) <= 0.1 * mean;
        fprintf(stderr, "burst %3d: probe %5.1f -> %5.1f GB/s, decode %5.1f GB/s%s\n", b, before,
                after, gbs, agree ? "" : " (probes differ: not counted)");
        if (agree) {
            probe[kept] = mean, share[kept++] = gbs / mean;
            if (mean < lo) lo = mean;
            if (mean > hi) hi = mean;
        }
        before = after;
    }
    printf("{\"model\": \"%s\", \"threads\": %d, \"decode_bytes_per_token\": %.0f, \"steps\": %d, "
           "\"bursts\": %d, \"counted\": %d",
           argv[1], threads_max(), bytes, steps, bursts, kept);
    if (kept && hi > 1.3 * lo) {
        const double cut = sqrt(lo * hi);
        regime("slow", probe, share, kept, 0, cut, p, s);
        regime("fast", probe, share, kept, cut, 1e30, p, s);
    } else {
        regime("all", probe, share, kept, 0, 1e30, p, s);
    }
    printf("}\n");
    kvcache_free(&kv);
    model_free(&m);
    free(buf), free(logits), free(ids), free(probe);
    return 0;
}
