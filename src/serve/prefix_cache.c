/* SPDX-License-Identifier: MIT */
/* Context cache of the serving engine (see prefix_cache.h): a radix tree
 * over token ids. Each node holds a run of tokens (the edge into it) and
 * their KV rows for every layer, laid out (n_layers, n, width) so that one
 * memcpy per layer moves a node's rows to or from a KVCache, which is
 * (n_layers, n_ctx, width). Insert splits a node where a new sequence
 * diverges inside it. Every non-root node sits on one LRU list, oldest
 * first, in which each node comes before its parent (see touch_path), so
 * the oldest node is always a leaf: eviction trims or removes it. */
#include "serve/prefix_cache.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

typedef struct PcNode {
    struct PcNode *parent;         /* NULL for the root */
    struct PcNode **kids;          /* (n_kids) sorted by first token; cap_kids allocated */
    int n_kids, cap_kids;
    int n;                         /* tokens on the edge into this node (root: 0) */
    int *ids;                      /* (n) */
    unsigned char *rows;           /* (n_layers, n, width) of the cache's type */
    uint64_t tick;                 /* the last lookup or insert that walked through it */
    struct PcNode *older, *newer;  /* LRU list neighbours */
} PcNode;

struct PrefixCache {
    int n_layers, width;
    DType type;
    size_t row_bytes;     /* one token in one layer: width * dtype size */
    int64_t token_bytes;  /* one token in a node: its rows in all layers + its id */
    int64_t budget, bytes, tokens, leaves, hits, lookups, evicted_tokens;
    uint64_t tick;
    PcNode root;
    PcNode *oldest, *newest; /* LRU list of every node but the root */
};

/* ---- bookkeeping ----------------------------------------------------------- */

static void lru_unlink(PrefixCache *pc, PcNode *x) {
    if (x->older) x->older->newer = x->newer; else pc->oldest = x->newer;
    if (x->newer) x->newer->older = x->older; else pc->newest = x->older;
    x->older = x->newer = NULL;
}

/* Link x right after anchor (anchor NULL: as the oldest). */
static void lru_link_after(PrefixCache *pc, PcNode *anchor, PcNode *x) {
    x->older = anchor;
    x->newer = anchor ? anchor->newer : pc->oldest;
    if (x->newer) x->newer->older = x; else pc->newest = x;
    if (anchor) anchor->newer = x; else pc->oldest = x;
}

/* Mark the path from the root down to x as used now. Walking up from x and
 * moving each node to the newest end keeps every node older than its
 * parent: a node's descendants were all touched no later than it, and on a
 * tie (this walk) they were moved first. So the oldest node has no
 * children, and the least recently used leaf is simply pc->oldest. */
static void touch_path(PrefixCache *pc, PcNode *x) {
    for (; x != &pc->root; x = x->parent) {
        x->tick = pc->tick;
        lru_unlink(pc, x);
        lru_link_after(pc, pc->newest, x);
    }
}

/* Index of the kid of p whose first token is id, or where it would go. */
static int kid_index(const PcNode *p, int id, int *found) {
    int lo = 0, hi = p->n_kids;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int t = p->kids[mid]->ids[0];
        if (t == id) { *found = 1; return mid; }
        if (t < id) lo = mid + 1; else hi = mid;
    }
    *found = 0;
    return lo;
}

static PcNode *kid_find(const PcNode *p, int id) {
    int found;
    int i = kid_index(p, id, &found);
    return found ? p->kids[i] : NULL;
}

/* Room for one more kid of p. 0 or -1 out of memory (p unchanged). */
static int kids_reserve(PrefixCache *pc, PcNode *p) {
    if (p->n_kids < p->cap_kids) return 0;
    int cap = p->cap_kids ? 2 * p->cap_kids : 2;
    PcNode **k = realloc(p->kids, (size_t)cap * sizeof *k);
    if (!k) return -1;
    pc->bytes += (int64_t)(cap - p->cap_kids) * (int64_t)sizeof *k;
    p->kids = k;
    p->cap_kids = cap;
    return 0;
}

/* Make c a kid of p (room reserved, no kid of p starts with c's token). */
static void kids_add(PrefixCache *pc, PcNode *p, PcNode *c) {
    int found;
    int i = kid_index(p, c->ids[0], &found);
    assert(!found && p->n_kids < p->cap_kids);
    if (p != &pc->root && p->n_kids == 0) pc->leaves--; /* p stops being a leaf */
    memmove(p->kids + i + 1, p->kids + i, (size_t)(p->n_kids - i) * sizeof *p->kids);
    p->kids[i] = c;
    p->n_kids++;
    c->parent = p;
    pc->leaves++;
}

/* A node for the n tokens ids with room for their rows (not filled), or
 * NULL out of memory. Counted in bytes and tokens; not yet in the tree. */
static PcNode *node_new(PrefixCache *pc, const int *ids, int n) {
    assert(n >= 1);
    PcNode *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->ids = malloc((size_t)n * sizeof *x->ids);
    x->rows = malloc((size_t)n * (size_t)pc->n_layers * pc->row_bytes);
    if (!x->ids || !x->rows) {
        free(x->ids);
        free(x->rows);
        free(x);
        return NULL;
    }
    memcpy(x->ids, ids, (size_t)n * sizeof *ids);
    x->n = n;
    pc->bytes += (int64_t)sizeof *x + n * pc->token_bytes;
    pc->tokens += n;
    return x;
}

static void node_release(PrefixCache *pc, PcNode *x) {
    pc->bytes -= (int64_t)sizeof *x + x->n * pc->token_bytes +
                 (int64_t)x->cap_kids * (int64_t)sizeof *x->kids;
    pc->tokens -= x->n;
    free(x->kids);
    free(x->ids);
    free(x->rows);
    free(x);
}

/* Keep only tokens [from, to) of x, moving them to the front of its arrays
 * (layer by layer; each destination lies at or below its source, and
 * below every later layer's source, so ascending memmoves are safe), then
 * give the rest back. Does not touch the tree links. */
static void node_keep(PrefixCache *pc, PcNode *x, int from, int to) {
    assert(0 <= from && from < to && to <= x->n);
    int n = to - from;
    size_t rb = pc->row_bytes;
    for (int l = 0; l < pc->n_layers; l++)
        memmove(x->rows + (size_t)l * n * rb, x->rows + ((size_t)l * x->n + from) * rb,
                (size_t)n * rb);
    memmove(x->ids, x->ids + from, (size_t)n * sizeof *x->ids);
    /* shrinking cannot fail in practice; if it does the larger block stays */
    void *r = realloc(x->rows, (size_t)n * pc->n_layers * rb);
    if (r) x->rows = r;
    int *i = realloc(x->ids, (size_t)n * sizeof *i);
    if (i) x->ids = i;
    pc->bytes -= (int64_t)(x->n - n) * pc->token_bytes;
    pc->tokens -= x->n - n;
    x->n = n;
}

/* Remove the leaf x from the tree and free it. */
static void node_remove_leaf(PrefixCache *pc, PcNode *x) {
    assert(x != &pc->root && x->n_kids == 0);
    PcNode *p = x->parent;
    int found;
    int i = kid_index(p, x->ids[0], &found);
    assert(found && p->kids[i] == x);
    memmove(p->kids + i, p->kids + i + 1, (size_t)(p->n_kids - i - 1) * sizeof *p->kids);
    p->n_kids--;
    pc->leaves--;
    if (p->n_kids == 0) {
        pc->bytes -= (int64_t)p->cap_kids * (int64_t)sizeof *p->kids;
        free(p->kids);
        p->kids = NULL;
        p->cap_kids = 0;
        if (p != &pc->root) pc->leaves++;
    }
    lru_unlink(pc, x);
    node_release(pc, x);
}

/* Split c (a kid of p) after its first m tokens: a new node holding those
 * takes c's place under p and has c, now holding the rest, as its one kid.
 * Returns the new node, or NULL out of memory (nothing changed). */
static PcNode *node_split(PrefixCache *pc, PcNode *p, PcNode *c, int m) {
    assert(0 < m && m < c->n);
    PcNode *mid = node_new(pc, c->ids, m);
    if (!mid) return NULL;
    if (kids_reserve(pc, mid)) {
        node_release(pc, mid);
        return NULL;
    }
    size_t rb = pc->row_bytes;
    for (int l = 0; l < pc->n_layers; l++)
        memcpy(mid->rows + (size_t)l * m * rb, c->rows + (size_t)l * c->n * rb, (size_t)m * rb);
    int found;
    int i = kid_index(p, c->ids[0], &found);
    assert(found && p->kids[i] == c);
    node_keep(pc, c, m, c->n);
    p->kids[i] = mid; /* same first token: the order of p's kids holds */
    mid->parent = p;
    mid->kids[0] = c;
    mid->n_kids = 1;
    c->parent = mid;
    mid->tick = c->tick;
    lru_link_after(pc, c, mid); /* just newer than its kid, as touch_path keeps it */
    return mid;
}

/* Trim or remove the least recently used leaves until bytes <= budget.
 * The path just used is the newest part of the list, so it goes last, from
 * its deep end, only when it alone exceeds the budget. Returns the tokens
 * taken from nodes of the current tick (that path). */
static int64_t evict(PrefixCache *pc) {
    int64_t from_path = 0;
    while (pc->bytes > pc->budget && pc->oldest) {
        PcNode *x = pc->oldest;
        assert(x->n_kids == 0);
        int64_t over = pc->bytes - pc->budget;
        int64_t drop = (over + pc->token_bytes - 1) / pc->token_bytes;
        if (drop >= x->n) drop = x->n;
        if (x->tick == pc->tick) from_path += drop;
        pc->evicted_tokens += drop;
        if (drop < x->n) node_keep(pc, x, 0, x->n - (int)drop);
        else node_remove_leaf(pc, x);
    }
    return from_path;
}

/* ---- public ---------------------------------------------------------------- */

int prefix_cache_init(PrefixCache **out, int n_layers, int width, DType type,
                      int64_t budget_bytes, Err *err) {
    *out = NULL;
    if (n_layers < 1 || width < 1)
        return err_set(err, "prefix cache: bad KV geometry (%d layers of width %d)", n_layers,
                       width);
    if (type != DTYPE_F32 && type != DTYPE_BF16)
        return err_set(err, "prefix cache: KV type must be f32 or bf16, not %s",
                       dtype_name(type));
    if (budget_bytes < 0)
        return err_set(err, "prefix cache: negative budget %lld", (long long)budget_bytes);
    PrefixCache *pc = calloc(1, sizeof *pc);
    if (!pc) return err_set(err, "prefix cache: out of memory");
    pc->n_layers = n_layers;
    pc->width = width;
    pc->type = type;
    pc->row_bytes = (size_t)width * dtype_size(type);
    pc->token_bytes = (int64_t)n_layers * (int64_t)pc->row_bytes + (int64_t)sizeof(int);
    pc->budget = budget_bytes;
    pc->bytes = (int64_t)sizeof *pc;
    *out = pc;
    return 0;
}

void prefix_cache_free(PrefixCache *pc) {
    if (!pc) return;
    /* every node but the root is on the LRU list: no recursion over a deep tree */
    for (PcNode *x = pc->oldest, *next; x; x = next) {
        next = x->newer;
        free(x->kids);
        free(x->ids);
        free(x->rows);
        free(x);
    }
    free(pc->root.kids);
    free(pc);
}

static void check_geometry(const PrefixCache *pc, const KVCache *kv) {
    assert(kv->n_layers == pc->n_layers && kv->width == pc->width && kv->type == pc->type);
    (void)pc;
    (void)kv;
}

int prefix_cache_lookup(PrefixCache *pc, const int *ids, int n, int max_len, KVCache *kv) {
    check_geometry(pc, kv);
    pc->tick++;
    pc->lookups++;
    int limit = n < max_len ? n : max_len;
    if (limit > kv->n_ctx) limit = kv->n_ctx;
    size_t rb = pc->row_bytes;
    unsigned char *dst = kv->data;
    PcNode *x = &pc->root, *last = &pc->root;
    int k = 0;
    while (k < limit) {
        PcNode *c = kid_find(x, ids[k]);
        if (!c) break;
        int m = 1; /* the first token matched through kid_find */
        while (m < c->n && k + m < limit && c->ids[m] == ids[k + m]) m++;
        for (int l = 0; l < pc->n_layers; l++)
            memcpy(dst + ((size_t)l * kv->n_ctx + k) * rb, c->rows + (size_t)l * c->n * rb,
                   (size_t)m * rb);
        k += m;
        last = c;
        if (m < c->n) break;
        x = c;
    }
    touch_path(pc, last);
    kv->len = k;
    if (k > 0) pc->hits++;
    return k;
}

int prefix_cache_insert(PrefixCache *pc, const int *ids, int n, const KVCache *kv) {
    check_geometry(pc, kv);
    assert(n <= kv->len);
    if (n > kv->len) n = kv->len;
    pc->tick++;
    /* A path longer than the whole budget could ever hold is not copied
     * only to be trimmed again (each node costs at least its tokens). */
    int64_t room = pc->budget - (int64_t)sizeof *pc - (int64_t)sizeof(PcNode);
    if (room < 0) room = 0;
    if ((int64_t)n > room / pc->token_bytes) n = (int)(room / pc->token_bytes);

    size_t rb = pc->row_bytes;
    const unsigned char *src = kv->data;
    PcNode *x = &pc->root;
    int k = 0, added = 0, rc = 0;
    while (k < n) {
        PcNode *c = kid_find(x, ids[k]);
        if (!c) {
            int m = n - k;
            if (kids_reserve(pc, x)) { rc = -1; break; }
            PcNode *leaf = node_new(pc, ids + k, m);
            if (!leaf) { rc = -1; break; }
            for (int l = 0; l < pc->n_layers; l++)
                memcpy(leaf->rows + (size_t)l * m * rb, src + ((size_t)l * kv->n_ctx + k) * rb,
                       (size_t)m * rb);
            kids_add(pc, x, leaf);
            lru_link_after(pc, pc->newest, leaf);
            x = leaf;
            k = n;
            added = m;
            break;
        }
        int m = 1;
        while (m < c->n && k + m < n && c->ids[m] == ids[k + m]) m++;
        if (m < c->n) {
            PcNode *mid = node_split(pc, x, c, m);
            if (!mid) { rc = -1; x = c; break; }
            c = mid;
        }
        x = c;
        k += m;
    }
    touch_path(pc, x);
    int64_t lost = evict(pc);
    if (rc) return rc;
    return lost >= added ? 0 : added - (int)lost;
}

void prefix_cache_stats(const PrefixCache *pc, PrefixCacheStats *s) {
    s->bytes = pc->bytes;
    s->budget = pc->budget;
    s->tokens = pc->tokens;
    s->leaves = pc->leaves;
    s->hits = pc->hits;
    s->lookups = pc->lookups;
    s->evicted_tokens = pc->evicted_tokens;
}
