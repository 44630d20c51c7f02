/* SPDX-License-Identifier: MIT */
/* plot: metrics.jsonl -> one standalone SVG (xmlns, no scripts, no fonts but
 * the generic sans-serif): a grid of panels, each with nice-number ticks,
 * polylines in step order, a legend and, for expert load, a dashed line at
 * 1.5. Lines are parsed one by one with jansson; bad lines are counted. */
#include "train/plot.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"

enum { S_LOSS, S_EVAL, S_LR, S_GNORM, S_TOKS, S_LOAD, S_WORST, S_REWARD, S_ACC, S_FORMAT,
       S_CLEN, S_KL, N_SERIES };
/* JSON key (also the polyline's class) and legend label of each series. */
static const char *const series_key[N_SERIES] = {
    "loss", "eval_loss", "lr", "grad_norm", "tok_s", "load_max_mean", "load_worst_layer",
    "reward", "accuracy", "format", "completion_len", "kl"};
static const char *const series_label[N_SERIES] = {
    "loss", "eval_loss", "lr", "grad_norm", "tok_s", "mean of layers", "worst layer",
    "reward", "accuracy", "format", "completion_len", "kl"};

typedef struct PanelDef {
    const char *title;
    int series[3], n_series;
    int log_ok;  /* log y axis when all values > 0 and max/min > 100 */
    double ref;  /* dashed reference line, 0: none */
} PanelDef;
static const PanelDef panel_defs[] = {
    {"loss", {S_LOSS, S_EVAL}, 2, 0, 0},
    {"lr", {S_LR}, 1, 0, 0},
    {"grad_norm", {S_GNORM}, 1, 1, 0},
    {"tok_s", {S_TOKS}, 1, 0, 0},
    {"expert load max/mean", {S_LOAD, S_WORST}, 2, 0, 1.5},
    {"reward / accuracy / format", {S_REWARD, S_ACC, S_FORMAT}, 3, 0, 0},
    {"completion_len", {S_CLEN}, 1, 0, 0},
    {"kl", {S_KL}, 1, 0, 0},
};
#define N_PANELS ((int)(sizeof panel_defs / sizeof panel_defs[0]))
static const char *const colors[3] = {"#1f77b4", "#d62728", "#2ca02c"};

typedef struct Pt { double x, y; } Pt;
typedef struct Series { Pt *p; size_t n, cap; } Series;

/* Panel size and the plot area inside it, in SVG user units. */
enum { PW = 440, PH = 260, ML = 62, MR = 14, MT = 40, MB = 36, TOP = 34 };

static int series_push(Series *s, double x, double y) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        Pt *p = realloc(s->p, cap * sizeof *p);
        if (!p) return -1;
        s->p = p;
        s->cap = cap;
    }
    s->p[s->n++] = (Pt){x, y};
    return 0;
}

/* 1 with *v when j is a finite number. */
static int get_num(const json_t *j, double *v) {
    if (!json_is_number(j)) return 0;
    *v = json_number_value(j);
    return isfinite(*v);
}

/* A copy of line (len bytes) with bare NaN/Infinity tokens outside strings
 * replaced by null (Python's json and printf("%g") write them), or NULL. */
static char *nonfinite_to_null(const char *line, size_t len, size_t *out_len) {
    static const char *const words[] = {"-Infinity", "Infinity", "-NaN", "NaN", "-nan", "nan",
                                        "-inf", "inf"};
    char *o = malloc(len * 2 + 1); /* each replaced word has >= 3 bytes, "null" 4 */
    if (!o) return NULL;
    size_t k = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = line[i];
        if (in_str) {
            if (c == '\\' && i + 1 < len) o[k++] = line[i++];
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else {
            size_t w = 0;
            for (int j = 0; j < 8 && !w; j++) {
                size_t wl = strlen(words[j]);
                if (wl <= len - i && !memcmp(line + i, words[j], wl)) w = wl;
            }
            if (w) {
                memcpy(o + k, "null", 4);
                k += 4;
                i += w - 1;
                continue;
            }
        }
        o[k++] = line[i];
    }
    *out_len = k;
    return o;
}

/* Add one line's values to s. Returns 1 when the line is not a JSON object
 * (skipped), 0 otherwise, -1 when out of memory. */
static int parse_line(Series *s, const char *line, size_t len) {
    json_error_t je;
    json_t *o = json_loadb(line, len, 0, &je);
    if (!o) {
        size_t n2;
        char *fixed = nonfinite_to_null(line, len, &n2);
        if (!fixed) return -1;
        o = json_loadb(fixed, n2, 0, &je);
        free(fixed);
    }
    if (!json_is_object(o)) {
        json_decref(o);
        return 1;
    }
    double step, v;
    int rc = 0;
    if (get_num(json_object_get(o, "step"), &step)) {
        int have_load = 0;
        for (int i = 0; i < N_SERIES && !rc; i++)
            if (i != S_WORST && get_num(json_object_get(o, series_key[i]), &v)) {
                rc = series_push(&s[i], step, v);
                have_load |= i == S_LOAD;
            }
        json_t *layers = json_object_get(o, "load_max_mean_layers");
        double sum = 0, worst = -INFINITY;
        size_t n = 0, idx;
        json_t *e;
        json_array_foreach(layers, idx, e) if (get_num(e, &v)) {
            sum += v;
            n++;
            worst = v > worst ? v : worst;
        }
        if (n && !rc) rc = series_push(&s[S_WORST], step, worst);
        if (n && !have_load && !rc) rc = series_push(&s[S_LOAD], step, sum / (double)n);
    }
    json_decref(o);
    return rc;
}

static int cmp_x(const void *a, const void *b) {
    double x = ((const Pt *)a)->x, y = ((const Pt *)b)->x;
    return (x > y) - (x < y);
}

/* Indices into s of the points to draw, in order: all of them when there are
 * at most PLOT_MAX_POINTS, else the min and max of each bucket. */
static size_t downsample(const Series *s, size_t *idx) {
    size_t n = s->n, k = 0;
    if (n <= PLOT_MAX_POINTS) {
        for (size_t i = 0; i < n; i++) idx[i] = i;
        return n;
    }
    size_t nb = PLOT_MAX_POINTS / 2;
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * n / nb, hi = (b + 1) * n / nb, imin = lo, imax = lo;
        for (size_t i = lo; i < hi; i++) {
            if (s->p[i].y < s->p[imin].y) imin = i;
            if (s->p[i].y > s->p[imax].y) imax = i;
        }
        idx[k++] = imin < imax ? imin : imax;
        if (imin != imax) idx[k++] = imin < imax ? imax : imin;
    }
    return k;
}

/* XML text: escaped, control bytes as spaces. */
static void put_text(FILE *f, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '&') fputs("&amp;", f);
        else if (c == '<') fputs("&lt;", f);
        else if (c == '>') fputs("&gt;", f);
        else if (c == '"') fputs("&quot;", f);
        else fputc(c < 0x20 || c == 0x7f ? ' ' : c, f);
    }
}

/* A step of 1, 2 or 5 times a power of ten giving about n intervals. */
static double nice_step(double range, int n) {
    double raw = range / n, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}

/* [*lo, *hi] widened when empty (a single value) and padded by 4%. */
static void pad_range(double *lo, double *hi) {
    if (*hi - *lo <= 1e-12 * fmax(fabs(*lo), fabs(*hi))) {
        double d = *lo != 0 ? fabs(*lo) * 0.1 : 1;
        *lo -= d;
        *hi += d;
    }
    double d = (*hi - *lo) * 0.04;
    *lo -= d;
    *hi += d;
}

static void draw_panel(FILE *f, const PanelDef *pd, Series *s, double ox, double oy, size_t *idx) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int k = 0; k < pd->n_series; k++)
        for (size_t i = 0; i < s[pd->series[k]].n; i++) {
            Pt p = s[pd->series[k]].p[i];
            xlo = fmin(xlo, p.x), xhi = fmax(xhi, p.x), ylo = fmin(ylo, p.y), yhi = fmax(yhi, p.y);
        }
    if (pd->ref) ylo = fmin(ylo, pd->ref), yhi = fmax(yhi, pd->ref);
    int logy = pd->log_ok && ylo > 0 && yhi / ylo > 100;
    if (logy) ylo = log10(ylo), yhi = log10(yhi);
    pad_range(&xlo, &xhi);
    pad_range(&ylo, &yhi);
    const double pw = PW - ML - MR, ph = PH - MT - MB, x0 = ML, y0 = MT;
#define PX(x) (x0 + ((x) - xlo) / (xhi - xlo) * pw)
#define PY(y) (y0 + ph - ((y) - ylo) / (yhi - ylo) * ph)
    fprintf(f, "<g transform=\"translate(%g,%g)\">\n", ox, oy);
    fprintf(f, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"#fafafa\" "
               "stroke=\"#bbb\"/>\n", x0, y0, pw, ph);
    fprintf(f, "<text x=\"%g\" y=\"17\" font-size=\"13\" font-weight=\"bold\">", x0);
    put_text(f, pd->title);
    fputs(logy ? " (log)</text>\n" : "</text>\n", f);
    /* y ticks: nice numbers, or whole decades on a log axis (>= 2 decades). */
    double st = logy ? 1 : nice_step(yhi - ylo, 4), t0 = ceil(ylo / st);
    for (int i = 0; i < 50 && (t0 + i) * st <= yhi; i++) {
        double v = t0 + i == 0 ? 0 : (t0 + i) * st;
        fprintf(f, "<line x1=\"%g\" x2=\"%g\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                   "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">", x0, x0 + pw, PY(v), PY(v),
                x0 - 4, PY(v) + 4);
        if (logy) fprintf(f, "1e%d</text>\n", (int)lround(v));
        else fprintf(f, "%.6g</text>\n", v);
    }
    st = nice_step(xhi - xlo, 5), t0 = ceil(xlo / st);
    for (int i = 0; i < 50 && (t0 + i) * st <= xhi; i++) {
        double v = t0 + i == 0 ? 0 : (t0 + i) * st;
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%g\" y2=\"%g\" stroke=\"#e4e4e4\"/>"
                   "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%.6g</text>\n",
                PX(v), PX(v), y0, y0 + ph, PX(v), y0 + ph + 14, v);
    }
    fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\" fill=\"#666\">step</text>\n",
            x0 + pw / 2, y0 + ph + 29);
    if (pd->ref)
        fprintf(f, "<line x1=\"%g\" x2=\"%g\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" "
                   "stroke-dasharray=\"5 4\"/>\n", x0, x0 + pw, PY(pd->ref), PY(pd->ref));
    double lx = x0 + pw;
    for (int k = pd->n_series - 1; k >= 0; k--) {
        const Series *se = &s[pd->series[k]];
        if (!se->n) continue;
        const char *c = colors[k];
        fprintf(f, "<polyline class=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.3\" "
                   "stroke-linejoin=\"round\" points=\"", series_key[pd->series[k]], c);
        size_t n = downsample(se, idx), drawn = 0;
        Pt last = {0, 0};
        for (size_t i = 0; i < n; i++) {
            Pt p = se->p[idx[i]];
            if (logy && p.y <= 0) continue;
            last = (Pt){PX(p.x), PY(logy ? log10(p.y) : p.y)};
            fprintf(f, "%s%.1f,%.1f", drawn++ ? " " : "", last.x, last.y);
        }
        fputs("\"/>\n", f);
        if (drawn == 1)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", last.x, last.y,
                    c);
        if (pd->n_series > 1) { /* legend: a row right-aligned above the plot area */
            const char *label = series_label[pd->series[k]];
            lx -= 6.5 * (double)strlen(label) + 22;
            fprintf(f, "<rect x=\"%g\" y=\"24\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                       "<text x=\"%g\" y=\"33\">%s</text>\n", lx, c, lx + 14, label);
        }
    }
#undef PX
#undef PY
    fputs("</g>\n", f);
}

static int write_svg(const char *path, const char *title, int skipped, Series *s, Err *err) {
    int use[N_PANELS], n_use = 0;
    size_t most = 0;
    for (int p = 0; p < N_PANELS; p++) {
        size_t n = 0;
        for (int k = 0; k < panel_defs[p].n_series; k++) n += s[panel_defs[p].series[k]].n;
        if (n) use[n_use++] = p;
    }
    for (int i = 0; i < N_SERIES; i++) most = s[i].n > most ? s[i].n : most;
    size_t *idx = malloc((most ? most : 1) * sizeof *idx);
    if (!idx) return err_set(err, "%s: out of memory", path);
    int cols = n_use <= 1 ? 1 : n_use <= 4 ? 2 : 3, rows = n_use ? (n_use + cols - 1) / cols : 1;
    AtomicFile af;
    if (afile_open(&af, path, err) != 0) {
        free(idx);
        return -1;
    }
    FILE *f = af.fp;
    int w = cols * PW, h = TOP + rows * PH;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n"
               "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n"
               "<text x=\"12\" y=\"23\" font-size=\"15\">", w, h, w, h, w, h);
    put_text(f, title);
    if (skipped) fprintf(f, " (%d unreadable line%s skipped)", skipped, skipped == 1 ? "" : "s");
    fputs("</text>\n", f);
    for (int i = 0; i < n_use; i++)
        draw_panel(f, &panel_defs[use[i]], s, (double)(i % cols * PW), (double)(TOP + i / cols * PH),
                   idx);
    if (!n_use)
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"14\" "
                   "fill=\"#666\">no data</text>\n", PW / 2, TOP + PH / 2);
    fputs("</svg>\n", f);
    free(idx);
    return afile_commit(&af, err);
}

int plot_metrics_svg(const char *metrics_path, const char *svg_path, const char *title,
                     Err *err) {
    char *text;
    size_t len;
    if (file_read_all(metrics_path, PLOT_MAX_BYTES, &text, &len, err) != 0) return -1;
    Series s[N_SERIES] = {{0}};
    int skipped = 0, rc = 0;
    for (size_t a = 0; a < len && rc >= 0;) {
        const char *nl = memchr(text + a, '\n', len - a);
        size_t b = nl ? (size_t)(nl - text) : len, e = b;
        while (e > a && (text[e - 1] == '\r' || text[e - 1] == ' ' || text[e - 1] == '\t')) e--;
        size_t st = a;
        while (st < e && (text[st] == ' ' || text[st] == '\t')) st++;
        if (st < e) {
            rc = parse_line(s, text + st, e - st);
            skipped += rc == 1;
        }
        a = b + 1;
    }
    free(text);
    if (rc < 0) err_set(err, "%s: out of memory", metrics_path);
    for (int i = 0; i < N_SERIES && rc >= 0; i++) {
        int sorted = 1;
        for (size_t k = 1; k < s[i].n && sorted; k++) sorted = s[i].p[k - 1].x <= s[i].p[k].x;
        if (!sorted) qsort(s[i].p, s[i].n, sizeof *s[i].p, cmp_x);
    }
    if (rc >= 0) rc = write_svg(svg_path, title ? title : metrics_path, skipped, s, err);
    for (int i = 0; i < N_SERIES; i++) free(s[i].p);
    return rc < 0 ? -1 : skipped;
}

/* Keep the lines of path whose step is <= step (a resumed run rewrites
 * what came after its checkpoint); a missing file is left missing. */
static int metrics_truncate(const char *path, int64_t step, Err *err) {
    if (!file_exists(path)) return 0;
    char *text;
    size_t len;
    if (file_read_all(path, (size_t)1 << 30, &text, &len, err) != 0) return -1;
    char *out = malloc(len + 1);
    size_t n = 0;
    if (!out) {
        free(text);
        return err_set(err, "out of memory reading %s", path);
    }
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line) : strlen(line);
        json_t *j = json_loadb(line, ll, 0, NULL);
        json_t *s = j ? json_object_get(j, "step") : NULL;
        if (s && json_is_integer(s) && json_integer_value(s) <= step) {
            memcpy(out + n, line, ll);
            n += ll;
            out[n++] = '\n';
        }
        json_decref(j);
        line = nl ? nl + 1 : NULL;
    }
    int rc = file_write_atomic(path, out, n, err);
    free(text);
    free(out);
    return rc;
}

FILE *plot_metrics_open(const char *out, int64_t keep_to, char *metrics_path, size_t n_metrics,
                        char *plot_path, size_t n_plot, Err *err) {
    if (dir_create(out, err) != 0) return NULL;
    if (path_join(metrics_path, n_metrics, out, "metrics.jsonl") != 0 ||
        path_join(plot_path, n_plot, out, "metrics.svg") != 0)
        return err_set(err, "%s: path too long", out), NULL;
    if (keep_to >= 0 && metrics_truncate(metrics_path, keep_to, err) != 0) return NULL;
    FILE *f = fopen(metrics_path, keep_to >= 0 ? "a" : "w");
    if (!f) err_set(err, "%s: cannot open for writing", metrics_path);
    return f;
}
