/* grad.c — the tape and reverse-mode differentiation of any order.
 *
 * blo_grad sorts the recorded graph reachable from the outputs (iterative depth-first
 * search, so trajectories of thousands of ops do not exhaust the C stack), keeps only the
 * tensors that lie on a path to one of the inputs, and runs each node's backward rule in
 * reverse topological order. Backward rules are blo ops: with BLO_GRAD_CREATE_GRAPH the
 * context records them and the gradients carry history of their own.
 */
#include "../internal.h"

#include <stdio.h>
#include <string.h>

bool blo__any_requires_grad(int n, blo_tensor *const *in) {
    for (int i = 0; i < n; i++)
        if (in[i] && in[i]->requires_grad) return true;
    return false;
}

blo_node *blo__record(blo_ctx *ctx, blo_tensor *out, const blo_op_def *op, int n_in,
                      blo_tensor *const *in) {
    if (!ctx->recording || !blo__any_requires_grad(n_in, in)) return NULL;
    out->requires_grad = true; /* so that BLO_RECORD can tell failure from "not recorded" */
    blo_node *n = blo__ctx_alloc(ctx, sizeof *n);
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->op = op;
    if (n_in > BLO_NODE_MAX_IN) {
        n->var_in = blo__ctx_alloc(ctx, (size_t)n_in * sizeof *n->var_in);
        if (!n->var_in) return NULL;
        memcpy(n->var_in, in, (size_t)n_in * sizeof *n->var_in);
        n->nvar = n_in;
    } else {
        n->n_in = n_in;
        for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    }
    out->node = n;
    return n;
}

blo_tensor *blo_detach(blo_ctx *ctx, blo_tensor *t) {
    BLO_GUARD(ctx);
    if (!t) return NULL;
    return blo__view(ctx, t, t->ndim, t->shape, t->stride, t->data);
}

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

int blo__node_inputs(const blo_node *n, blo_tensor *const **in) {
    if (n->var_in) {
        *in = n->var_in;
        return (int)n->nvar;
    }
    *in = n->in;
    return n->n_in;
}

/* ---- blo_grad --------------------------------------------------------------------------------- */

static blo_status finish(tmap *m, int **order, blo_status s) {
    tmap_free(m);
    blo_free(*order);
    return s;
}

blo_status blo_grad(blo_ctx *ctx, int n_out, blo_tensor *const *outputs,
                    blo_tensor *const *seeds, int n_in, blo_tensor *const *inputs,
                    unsigned flags, blo_tensor **grads) {
    if (!ctx) return BLO_ERR_INVALID;
    if (grads)
        for (int i = 0; i < n_in; i++) grads[i] = NULL; /* no stale pointer on any failure */
    if (ctx->status) return ctx->status; /* an earlier op failed: its message stands */
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

    tmap m = {0};
    int *order = NULL; /* slots in DFS post-order */
    int n_order = 0;
    /* A tensor made before the oldest input cannot lie on a path from an input (a node's
     * inputs are always older than its output), so the walk stops there: an inner step's
     * gradient w.r.t. y_t then visits that step only, not the whole trajectory behind y_t. */
    uint64_t oldest = UINT64_MAX;
    for (int i = 0; i < n_in; i++)
        if (inputs[i]->seq < oldest) oldest = inputs[i]->seq;
    for (int i = 0; i < n_in; i++) {
        int s = tmap_get(&m, inputs[i], true);
        if (s < 0) goto nomem;
        m.slots[s].is_input = true;
    }

    /* Iterative DFS: stack of (slot, next child). */
    {
        int cap = 256, sp = 0;
        int *st_slot = blo_malloc((size_t)cap * sizeof(int));
        int *st_next = blo_malloc((size_t)cap * sizeof(int));
        if (!st_slot || !st_next) {
            blo_free(st_slot);
            blo_free(st_next);
            goto nomem;
        }
        bool oom = false;
        for (int k = 0; k < n_out && !oom; k++) {
            int root = tmap_get(&m, outputs[k], true);
            if (root < 0) {
                oom = true;
                break;
            }
            if (m.slots[root].state) continue;
            m.slots[root].state = 1;
            st_slot[0] = root;
            st_next[0] = 0;
            sp = 1;
            while (sp > 0 && !oom) {
                int s = st_slot[sp - 1];
                blo_tensor *t = m.slots[s].t;
                blo_tensor *const *in = NULL;
                int nin = t->node ? blo__node_inputs(t->node, &in) : 0;
                /* Do not walk above an input unless it has history that may lead to others. */
                int c = st_next[sp - 1];
                while (c < nin && (!in[c] || !in[c]->requires_grad || in[c]->seq < oldest)) c++;
                if (c < nin) {
                    st_next[sp - 1] = c + 1;
                    int cs = tmap_get(&m, in[c], true);
                    if (cs < 0) {
                        oom = true;
                        break;
                    }
                    if (m.slots[cs].state == 0) {
                        if (sp == cap) {
                            int nc = cap * 2;
                            int *a = blo_malloc((size_t)nc * sizeof(int));
                            int *b = blo_malloc((size_t)nc * sizeof(int));
                            if (!a || !b) {
                                blo_free(a);
                                blo_free(b);
                                oom = true;
                                break;
                            }
                            memcpy(a, st_slot, (size_t)sp * sizeof(int));
                            memcpy(b, st_next, (size_t)sp * sizeof(int));
                            blo_free(st_slot);
                            blo_free(st_next);
                            st_slot = a;
                            st_next = b;
                            cap = nc;
                        }
                        m.slots[cs].state = 1;
                        st_slot[sp] = cs;
                        st_next[sp] = 0;
                        sp++;
                    }
                    continue;
                }
                /* All children done: finish s. */
                bool leads = m.slots[s].is_input;
                for (int j = 0; j < nin; j++) {
                    if (!in[j] || !in[j]->requires_grad) continue;
                    int cs = tmap_get(&m, in[j], false);
                    if (cs >= 0 && m.slots[cs].leads) leads = true;
                }
                m.slots[s].leads = leads;
                m.slots[s].state = 2;
                if ((n_order & (n_order - 1)) == 0) { /* grow at powers of two */
                    int nc = n_order ? n_order * 2 : 64;
                    int *o = blo_malloc((size_t)nc * sizeof(int));
                    if (!o) {
                        oom = true;
                        break;
                    }
                    if (order) memcpy(o, order, (size_t)n_order * sizeof(int));
                    blo_free(order);
                    order = o;
                }
                order[n_order++] = s;
                sp--;
            }
        }
        blo_free(st_slot);
        blo_free(st_next);
        if (oom) goto nomem;
    }

    int old_rec = ctx->recording;
    bool create = (flags & BLO_GRAD_CREATE_GRAPH) != 0;
    ctx->recording = create ? 1 : 0;
    blo_status status = BLO_OK;

    /* Seed the outputs. */
    for (int k = 0; k < n_out && !status; k++) {
        int s = tmap_get(&m, outputs[k], false);
        if (!m.slots[s].leads) continue;
        blo_tensor *seed = seeds ? seeds[k] : NULL;
        if (!seed) seed = blo_full(ctx, outputs[k]->dtype, outputs[k]->ndim, outputs[k]->shape, 1);
        blo_tensor *g = m.slots[s].grad ? blo_add(ctx, m.slots[s].grad, seed) : seed;
        if (!g) status = ctx->status ? ctx->status : BLO_ERR_NOMEM;
        m.slots[s].grad = g;
    }

    /* Reverse topological order: outputs first. */
    for (int oi = n_order - 1; oi >= 0 && !status; oi--) {
        slot *sl = &m.slots[order[oi]];
        blo_tensor *t = sl->t;
        if (!sl->leads || !sl->grad || !t->node) continue;
        const blo_node *node = t->node;
        blo_tensor *const *in = NULL;
        int nin = blo__node_inputs(node, &in);
        if (create && !node->op->differentiable_backward) {
            status = blo_ctx_set_error(ctx, BLO_ERR_NOT_DIFFERENTIABLE,
                                       "blo_grad: create-graph reached '%s', whose backward is "
                                       "a fused first-order kernel; use its differentiable "
                                       "counterpart for higher-order derivatives",
                                       node->op->name);
            break;
        }
        bool need_small[16];
        bool *need = nin <= 16 ? need_small : blo_malloc((size_t)nin * sizeof(bool));
        blo_tensor *gin_small[16];
        blo_tensor **gin = nin <= 16 ? gin_small : blo_malloc((size_t)nin * sizeof(blo_tensor *));
        if (!need || !gin) {
            if (need != need_small) blo_free(need);
            if (gin != gin_small) blo_free(gin);
            status = blo_ctx_set_error(ctx, BLO_ERR_NOMEM, "blo_grad: out of memory");
            break;
        }
        bool any = false;
        for (int j = 0; j < nin; j++) {
            gin[j] = NULL;
            need[j] = false;
            if (!in[j] || !in[j]->requires_grad) continue;
            int cs = tmap_get(&m, in[j], false);
            need[j] = cs >= 0 && m.slots[cs].leads;
            any |= need[j];
        }
        if (any) {
            status = node->op->backward(ctx, node, t, sl->grad, need, gin);
            if (!status && ctx->status) status = ctx->status;
            if (status && !ctx->status)
                blo_ctx_set_error(ctx, status, "blo_grad: backward of '%s' failed",
                                  node->op->name);
            for (int j = 0; j < nin && !status; j++) {
                if (!need[j] || !gin[j]) continue;
                slot *cs = &m.slots[tmap_get(&m, in[j], false)];
                if (cs->grad) {
                    blo_tensor *sum = blo_add(ctx, cs->grad, gin[j]);
                    if (!sum) status = ctx->status;
                    cs->grad = sum;
                } else {
                    cs->grad = gin[j];
                }
            }
        }
        if (need != need_small) blo_free(need);
        if (gin != gin_small) blo_free(gin);
    }

    for (int i = 0; i < n_in && !status; i++) {
        int s = tmap_get(&m, inputs[i], false);
        blo_tensor *g = m.slots[s].grad;
        if (!g) {
            if (flags & BLO_GRAD_STRICT) {
                status = blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                           "blo_grad: input %d does not influence any output", i);
                break;
            }
            g = blo_zeros(ctx, inputs[i]->dtype, inputs[i]->ndim, inputs[i]->shape);
            if (!g) status = ctx->status;
        }
        grads[i] = g;
    }
    ctx->recording = old_rec;
    if (status)
        for (int i = 0; i < n_in; i++) grads[i] = NULL;
    return finish(&m, &order, status);

nomem:
    return finish(&m, &order,
                blo_ctx_set_error(ctx, BLO_ERR_NOMEM, "blo_grad: out of memory sorting the graph"));
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
