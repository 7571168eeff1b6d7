/* grad.c — reverse-mode differentiation of any order, above the ops (the tape it reads is
 * recorded by tape.c, below them).
 *
 * blo_grad sorts the recorded graph reachable from the outputs (iterative depth-first
 * search, so trajectories of thousands of ops do not exhaust the C stack), keeps only the
 * tensors that lie on a path to one of the inputs, and runs each node's backward rule in
 * reverse topological order. Backward rules are blo ops: with BLO_GRAD_CREATE_GRAPH the
 * context records them and the gradients carry history of their own.
 */
#include "tape.h"

#include <stdio.h>
#include <string.h>

/* ---- Pointer map: tensor -> slot ------------------------------------------------------------- */

typedef struct {
    blo_tensor *t;
    blo_tensor *grad;
    int state; /* 0 new, 1 on the DFS stack, 2 finished */
    bool leads; /* on a path to an input */
    bool is_input;
} slot;

typedef struct {
    const blo_tensor **keys;
    int *vals;
    size_t cap;
    slot *slots;
    int n, cap_slots;
} tmap;

static size_t hash_ptr(const void *p) {
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static void tmap_free(tmap *m) {
    blo_free(m->keys);
    blo_free(m->vals);
    blo_free(m->slots);
}

static bool tmap_grow(tmap *m) {
    size_t nc = m->cap ? m->cap * 2 : 256;
    const blo_tensor **k = blo_calloc(nc, sizeof *k);
    int *v = blo_malloc(nc * sizeof *v);
    if (!k || !v) {
        blo_free(k);
        blo_free(v);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t h = hash_ptr(m->keys[i]) & (nc - 1);
        while (k[h]) h = (h + 1) & (nc - 1);
        k[h] = m->keys[i];
        v[h] = m->vals[i];
    }
    blo_free(m->keys);
    blo_free(m->vals);
    m->keys = k;
    m->vals = v;
    m->cap = nc;
    return true;
}

/* Returns the slot index of t, adding it when absent; -1 on allocation failure. */
static int tmap_get(tmap *m, blo_tensor *t, bool add) {
    if (m->cap) {
        size_t h = hash_ptr(t) & (m->cap - 1);
        while (m->keys[h]) {
            if (m->keys[h] == t) return m->vals[h];
            h = (h + 1) & (m->cap - 1);
        }
    }
    if (!add) return -1;
    if ((size_t)(m->n + 1) * 2 > m->cap && !tmap_grow(m)) return -1;
    if (m->n == m->cap_slots) {
        int nc = m->cap_slots ? m->cap_slots * 2 : 128;
        slot *s = blo_malloc((size_t)nc * sizeof *s);
        if (!s) return -1;
        if (m->slots) memcpy(s, m->slots, (size_t)m->n * sizeof *s);
        blo_free(m->slots);
        m->slots = s;
        m->cap_slots = nc;
    }
    size_t h = hash_ptr(t) & (m->cap - 1);
    while (m->keys[h]) h = (h + 1) & (m->cap - 1);
    m->keys[h] = t;
    m->vals[h] = m->n;
    slot *s = &m->slots[m->n];
    memset(s, 0, sizeof *s);
    s->t = t;
    return m->n++;
}

/* ---- blo_grad, in four phases -------------------------------------------------------------------
 *   1. check_args: outputs, seeds and inputs are well formed;
 *   2. collect:    the tensors reachable from the outputs, in DFS post-order (inputs before the
 *                  tensors made from them), each marked with whether it leads to an input;
 *   3. seed + walk_back: the outputs' gradients are the seeds; in reverse order each node's
 *                  backward rule adds its inputs' gradients;
 *   4. hand_out:   the inputs' gradients (zeros for an input no output depends on). */

/* The state of one blo_grad call: the slots of the tensors it reaches and their order. */
typedef struct {
    tmap m;
    int *order; /* slots in DFS post-order */
    int n_order;
} walk;

static void walk_free(walk *w) {
    tmap_free(&w->m);
    blo_free(w->order);
}

/* Phase 1. Records a message and returns an error when an argument is malformed. */
static blo_status check_args(blo_ctx *ctx, int n_out, blo_tensor *const *outputs,
                             blo_tensor *const *seeds, int n_in, blo_tensor *const *inputs,
                             blo_tensor **grads) {
    if (n_out < 1 || !outputs || n_in < 1 || !inputs || !grads)
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                 "blo_grad: needs at least one output and one input");
    for (int k = 0; k < n_out; k++) {
        if (!outputs[k])
            return blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_grad: output %d is NULL", k);
        blo_tensor *s = seeds ? seeds[k] : NULL;
        char a[64], b[64];
        if (!s && blo_tensor_numel(outputs[k]) != 1)
            return blo_ctx_set_error(ctx, BLO_ERR_SHAPE,
                                     "blo_grad: output %d is %s; a seed is needed for an "
                                     "output with more than one element",
                                     k, blo__desc(outputs[k], a, sizeof a));
        if (s && (s->ndim != outputs[k]->ndim || s->dtype != outputs[k]->dtype ||
                  memcmp(s->shape, outputs[k]->shape, sizeof(int64_t) * (size_t)s->ndim)))
            return blo_ctx_set_error(ctx, BLO_ERR_SHAPE,
                                     "blo_grad: seed %d is %s but output %d is %s", k,
                                     blo__desc(s, a, sizeof a), k,
                                     blo__desc(outputs[k], b, sizeof b));
    }
    for (int i = 0; i < n_in; i++) {
        if (!inputs[i])
            return blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_grad: input %d is NULL", i);
        if (!inputs[i]->requires_grad)
            return blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                     "blo_grad: input %d neither requires grad nor has "
                                     "history (blo_set_requires_grad marks a variable)",
                                     i);
    }
    return BLO_OK;
}

/* Grows an int array held by blo_malloc to nc entries, keeping its first n. */
static bool grow_ints(int **a, int n, int nc) {
    int *p = blo_malloc((size_t)nc * sizeof(int));
    if (!p) return false;
    if (*a) memcpy(p, *a, (size_t)n * sizeof(int));
    blo_free(*a);
    *a = p;
    return true;
}

/* Phase 2, for one finished tensor: it leads to an input when it is one or when one of its
 * recorded inputs does; it is appended to the post-order. */
static bool finish_slot(walk *w, int s, int nin, blo_tensor *const *in) {
    bool leads = w->m.slots[s].is_input;
    for (int j = 0; j < nin; j++) {
        if (!in[j] || !in[j]->requires_grad) continue;
        int cs = tmap_get(&w->m, in[j], false);
        if (cs >= 0 && w->m.slots[cs].leads) leads = true;
    }
    w->m.slots[s].leads = leads;
    w->m.slots[s].state = 2;
    int n = w->n_order;
    if ((n & (n - 1)) == 0 && !grow_ints(&w->order, n, n ? n * 2 : 64)) /* powers of two */
        return false;
    w->order[w->n_order++] = s;
    return true;
}

/* Phase 2: iterative DFS from each output over the recorded inputs (a stack of (slot, next
 * child), so deep trajectories do not exhaust the C stack). A tensor made before the oldest
 * input cannot lie on a path from an input (a node's inputs are always older than its output),
 * so the walk stops there: an inner step's gradient w.r.t. y_t then visits that step only, not
 * the whole trajectory behind y_t. Returns false when memory runs out. */
static bool collect(walk *w, int n_out, blo_tensor *const *outputs, int n_in,
                    blo_tensor *const *inputs) {
    uint64_t oldest = UINT64_MAX;
    for (int i = 0; i < n_in; i++)
        if (inputs[i]->seq < oldest) oldest = inputs[i]->seq;
    for (int i = 0; i < n_in; i++) {
        int s = tmap_get(&w->m, inputs[i], true);
        if (s < 0) return false;
        w->m.slots[s].is_input = true;
    }
    int cap = 256, sp = 0;
    int *st_slot = NULL, *st_next = NULL;
    bool ok = grow_ints(&st_slot, 0, cap) && grow_ints(&st_next, 0, cap);
    for (int k = 0; k < n_out && ok; k++) {
        int root = tmap_get(&w->m, outputs[k], true);
        if (root < 0) {
            ok = false;
            break;
        }
        if (w->m.slots[root].state) continue;
        w->m.slots[root].state = 1;
        st_slot[0] = root;
        st_next[0] = 0;
        sp = 1;
        while (sp > 0 && ok) {
            int s = st_slot[sp - 1];
            blo_tensor *t = w->m.slots[s].t;
            blo_tensor *const *in = NULL;
            int nin = t->node ? blo__node_inputs(t->node, &in) : 0;
            /* Do not walk above an input unless it has history that may lead to others. */
            int c = st_next[sp - 1];
            while (c < nin && (!in[c] || !in[c]->requires_grad || in[c]->seq < oldest)) c++;
            if (c == nin) { /* all children done */
                ok = finish_slot(w, s, nin, in);
                sp--;
                continue;
            }
            st_next[sp - 1] = c + 1;
            int cs = tmap_get(&w->m, in[c], true);
            if (cs < 0) {
                ok = false;
                break;
            }
            if (w->m.slots[cs].state != 0) continue;
            if (sp == cap) {
                ok = grow_ints(&st_slot, sp, cap * 2) && grow_ints(&st_next, sp, cap * 2);
                if (!ok) break;
                cap *= 2;
            }
            w->m.slots[cs].state = 1;
            st_slot[sp] = cs;
            st_next[sp] = 0;
            sp++;
        }
    }
    blo_free(st_slot);
    blo_free(st_next);
    return ok;
}

/* Adds g to the gradient held in slot s (or sets it); returns the status. */
static blo_status accumulate(blo_ctx *ctx, slot *s, blo_tensor *g) {
    if (!s->grad) {
        s->grad = g;
        return BLO_OK;
    }
    s->grad = blo_add(ctx, s->grad, g);
    return s->grad ? BLO_OK : ctx->status;
}

/* Phase 3a: each output that leads to an input receives its seed (1 when none is given). */
static blo_status seed(blo_ctx *ctx, walk *w, int n_out, blo_tensor *const *outputs,
                       blo_tensor *const *seeds) {
    for (int k = 0; k < n_out; k++) {
        slot *s = &w->m.slots[tmap_get(&w->m, outputs[k], false)];
        if (!s->leads) continue;
        blo_tensor *sd = seeds ? seeds[k] : NULL;
        if (!sd) sd = blo_full(ctx, outputs[k]->dtype, outputs[k]->ndim, outputs[k]->shape, 1);
        blo_tensor *g = s->grad ? blo_add(ctx, s->grad, sd) : sd;
        s->grad = g;
        if (!g) return ctx->status ? ctx->status : BLO_ERR_NOMEM;
    }
    return BLO_OK;
}

/* Phase 3b, one node: runs the backward rule of the node that made sl->t for the inputs that
 * lead to an input of blo_grad, and adds what it returns to their gradients. */
static blo_status back_one(blo_ctx *ctx, walk *w, slot *sl, bool create) {
    const blo_node *node = sl->t->node;
    blo_tensor *const *in = NULL;
    int nin = blo__node_inputs(node, &in);
    if (create && !node->op->differentiable_backward)
        return blo_ctx_set_error(ctx, BLO_ERR_NOT_DIFFERENTIABLE,
                                 "blo_grad: create-graph reached '%s', whose backward is "
                                 "a fused first-order kernel; use its differentiable "
                                 "counterpart for higher-order derivatives",
                                 node->op->name);
    bool need_small[16];
    bool *need = nin <= 16 ? need_small : blo_malloc((size_t)nin * sizeof(bool));
    blo_tensor *gin_small[16];
    blo_tensor **gin = nin <= 16 ? gin_small : blo_malloc((size_t)nin * sizeof(blo_tensor *));
    blo_status status = BLO_OK;
    if (!need || !gin) {
        status = blo_ctx_set_error(ctx, BLO_ERR_NOMEM, "blo_grad: out of memory");
        goto done;
    }
    bool any = false;
    for (int j = 0; j < nin; j++) {
        gin[j] = NULL;
        need[j] = false;
        if (!in[j] || !in[j]->requires_grad) continue;
        int cs = tmap_get(&w->m, in[j], false);
        need[j] = cs >= 0 && w->m.slots[cs].leads;
        any |= need[j];
    }
    if (!any) goto done;
    status = node->op->backward(ctx, node, sl->t, sl->grad, need, gin);
    if (!status && ctx->status) status = ctx->status;
    if (status && !ctx->status)
        blo_ctx_set_error(ctx, status, "blo_grad: backward of '%s' failed", node->op->name);
    for (int j = 0; j < nin && !status; j++)
        if (need[j] && gin[j])
            status = accumulate(ctx, &w->m.slots[tmap_get(&w->m, in[j], false)], gin[j]);
done:
    if (need != need_small) blo_free(need);
    if (gin != gin_small) blo_free(gin);
    return status;
}

/* Phase 3b: the nodes in reverse post-order (outputs first), so a tensor's gradient is
 * complete before its own node runs. */
static blo_status walk_back(blo_ctx *ctx, walk *w, bool create) {
    for (int oi = w->n_order - 1; oi >= 0; oi--) {
        slot *sl = &w->m.slots[w->order[oi]];
        if (!sl->leads || !sl->grad || !sl->t->node) continue;
        blo_status s = back_one(ctx, w, sl, create);
        if (s) return s;
    }
    return BLO_OK;
}

/* Phase 4: grads[i] is inputs[i]'s gradient, or zeros (an error with BLO_GRAD_STRICT). */
static blo_status hand_out(blo_ctx *ctx, walk *w, int n_in, blo_tensor *const *inputs,
                           unsigned flags, blo_tensor **grads) {
    for (int i = 0; i < n_in; i++) {
        blo_tensor *g = w->m.slots[tmap_get(&w->m, inputs[i], false)].grad;
        if (!g) {
            if (flags & BLO_GRAD_STRICT)
                return blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                         "blo_grad: input %d does not influence any output", i);
            g = blo_zeros(ctx, inputs[i]->dtype, inputs[i]->ndim, inputs[i]->shape);
            if (!g) return ctx->status;
        }
        grads[i] = g;
    }
    return BLO_OK;
}

blo_status blo_grad(blo_ctx *ctx, int n_out, blo_tensor *const *outputs,
                    blo_tensor *const *seeds, int n_in, blo_tensor *const *inputs,
                    unsigned flags, blo_tensor **grads) {
    if (!ctx) return BLO_ERR_INVALID;
    if (grads)
        for (int i = 0; i < n_in; i++) grads[i] = NULL; /* no stale pointer on any failure */
    if (ctx->status) return ctx->status; /* an earlier op failed: its message stands */
    blo_status status = check_args(ctx, n_out, outputs, seeds, n_in, inputs, grads);
    if (status) return status;

    walk w = {0};
    if (!collect(&w, n_out, outputs, n_in, inputs)) {
        walk_free(&w);
        return blo_ctx_set_error(ctx, BLO_ERR_NOMEM, "blo_grad: out of memory sorting the graph");
    }
    /* The backward pass is recorded only with create-graph. */
    int old_rec = ctx->recording;
    bool create = (flags & BLO_GRAD_CREATE_GRAPH) != 0;
    ctx->recording = create ? 1 : 0;
    status = seed(ctx, &w, n_out, outputs, seeds);
    if (!status) status = walk_back(ctx, &w, create);
    if (!status) status = hand_out(ctx, &w, n_in, inputs, flags, grads);
    ctx->recording = old_rec;
    if (status)
        for (int i = 0; i < n_in; i++) grads[i] = NULL;
    walk_free(&w);
    return status;
}

/* ---- Helpers built on blo_grad ------------------------------------------------------------------ */

/* Σ_i ⟨a_i, b_i⟩ as a scalar tensor with history. */
static blo_tensor *sum_dots(blo_ctx *ctx, int n, blo_tensor *const *a, blo_tensor *const *b) {
    blo_tensor *acc = NULL;
    for (int i = 0; i < n; i++) {
        if (!a[i] || !b[i]) return NULL;
        blo_tensor *d = blo_dot(ctx, a[i], b[i]);
        acc = acc ? blo_add(ctx, acc, d) : d;
        if (!acc) return NULL;
    }
    return acc;
}

blo_status blo_mixed_vp(blo_ctx *ctx, blo_tensor *f, int ny, blo_tensor *const *y,
                        blo_tensor *const *v, int nx, blo_tensor *const *x, unsigned flags,
                        blo_tensor **out) {
    if (!ctx) return BLO_ERR_INVALID;
    if (ny < 1 || !y || !v || nx < 1 || !x || !out)
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_mixed_vp: missing arguments");
    for (int i = 0; i < nx; i++) out[i] = NULL; /* as blo_grad: no stale pointer on failure */
    if (ctx->status) return ctx->status;         /* an earlier op failed: its message stands */
    for (int i = 0; i < ny || i < nx; i++)
        if ((i < ny && !v[i]) || (i < nx && !x[i]))
            return blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_mixed_vp: %s %d is NULL",
                                     i < ny && !v[i] ? "direction" : "x", i);
    blo_tensor *small[8];
    blo_tensor **g = ny <= 8 ? small : blo_malloc((size_t)ny * sizeof *g);
    if (!g) return blo_ctx_set_error(ctx, BLO_ERR_NOMEM, "blo_mixed_vp: out of memory");
    int old = blo_ctx_set_recording(ctx, 1);
    blo_status s = blo_grad(ctx, 1, &f, NULL, ny, y, BLO_GRAD_CREATE_GRAPH, g);
    blo_tensor *dot = s ? NULL : sum_dots(ctx, ny, g, v);
    blo_ctx_set_recording(ctx, old);
    if (!s && !dot) s = ctx->status ? ctx->status : BLO_ERR_NOMEM;
    if (g != small) blo_free(g);
    if (s) return s;
    if (!dot->requires_grad) { /* ∇_y f does not depend on x: the product is zero */
        for (int i = 0; i < nx; i++) {
            out[i] = blo_zeros(ctx, x[i]->dtype, x[i]->ndim, x[i]->shape);
            if (!out[i]) {
                for (int j = 0; j < i; j++) out[j] = NULL;
                return ctx->status;
            }
        }
        return BLO_OK;
    }
    return blo_grad(ctx, 1, &dot, NULL, nx, x, flags, out);
}

blo_status blo_hvp(blo_ctx *ctx, blo_tensor *f, int n, blo_tensor *const *w,
                   blo_tensor *const *v, unsigned flags, blo_tensor **hv) {
    return blo_mixed_vp(ctx, f, n, w, v, n, w, flags, hv);
}

blo_status blo_jvp(blo_ctx *ctx, int n_out, blo_tensor *const *outputs, int n_in,
                   blo_tensor *const *inputs, blo_tensor *const *tangents, unsigned flags,
                   blo_tensor **jv) {
    if (!ctx) return BLO_ERR_INVALID;
    if (n_out < 1 || !outputs || n_in < 1 || !inputs || !tangents || !jv)
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_jvp: missing arguments");
    for (int k = 0; k < n_out; k++) jv[k] = NULL;
    if (ctx->status) return ctx->status; /* an earlier op failed: its message stands */
    for (int i = 0; i < n_in; i++)
        if (!tangents[i])
            return blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_jvp: tangent %d is NULL", i);
    blo_tensor **u = blo_malloc((size_t)(n_out + n_in) * sizeof *u);
    if (!u) return blo_ctx_set_error(ctx, BLO_ERR_NOMEM, "blo_jvp: out of memory");
    blo_tensor **g = u + n_out;
    blo_status s = BLO_OK;
    for (int k = 0; k < n_out && !s; k++) {
        if (!outputs[k]) {
            s = blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_jvp: output %d is NULL", k);
            break;
        }
        u[k] = blo_zeros(ctx, outputs[k]->dtype, outputs[k]->ndim, outputs[k]->shape);
        if (!u[k]) s = ctx->status;
        else u[k]->requires_grad = true;
    }
    int old = blo_ctx_set_recording(ctx, 1);
    if (!s) s = blo_grad(ctx, n_out, outputs, u, n_in, inputs, BLO_GRAD_CREATE_GRAPH, g);
    blo_tensor *dot = s ? NULL : sum_dots(ctx, n_in, g, tangents);
    blo_ctx_set_recording(ctx, old);
    if (!s && !dot) s = ctx->status ? ctx->status : BLO_ERR_NOMEM;
    if (!s) {
        if (!dot->requires_grad) {
            for (int k = 0; k < n_out && !s; k++) {
                jv[k] = blo_zeros(ctx, outputs[k]->dtype, outputs[k]->ndim, outputs[k]->shape);
                if (!jv[k]) s = ctx->status;
            }
        } else {
            s = blo_grad(ctx, 1, &dot, NULL, n_out, u, flags, jv);
        }
    }
    blo_free(u);
    if (s)
        for (int k = 0; k < n_out; k++) jv[k] = NULL;
    return s;
}
