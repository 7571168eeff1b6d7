/* optim.c — SGD, momentum, Nesterov and Adam, written once with blo ops (the update rules and
 * papers are in include/blo/optim.h). blo_opt_apply builds the step in a context, recorded
 * when the context records (the differentiable inner dynamics); blo_opt_step runs the same
 * code with recording off in a scratch context and copies the values back in place (outer
 * steps, baselines). */
#include "blo/optim.h"
#include "../internal.h"

#include <math.h>
#include <string.h>

blo_opt blo_opt_sgd(double lr) {
    blo_opt o = {BLO_OPT_SGD, lr, 0.9, 0.9, 0.999, 1e-8, 0.0};
    return o;
}

blo_opt blo_opt_adam(double lr) {
    blo_opt o = blo_opt_sgd(lr);
    o.kind = BLO_OPT_ADAM;
    return o;
}

static const char *const OPT_NAMES[] = {"sgd", "momentum", "nesterov", "adam"};

int blo_opt_kind_parse(const char *name) {
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, OPT_NAMES[i])) return i;
    return -1;
}

const char *blo_opt_kind_name(blo_opt_kind k) {
    return (unsigned)k < 4 ? OPT_NAMES[k] : "?";
}

const char *const blo__opt_field_names[BLO__OPT_FIELDS] = {
    "kind", "lr", "momentum", "beta1", "beta2", "eps", "weight_decay"};

void blo__opt_fields(const blo_opt *o, double *v) {
    const double f[BLO__OPT_FIELDS] = {o->kind, o->lr, o->momentum, o->beta1, o->beta2, o->eps,
                                       o->weight_decay};
    memcpy(v, f, sizeof f);
}

const char *blo_opt_check(const blo_opt *o) {
    if (!o) return "no optimizer given";
    if ((unsigned)o->kind > BLO_OPT_ADAM) return "unknown optimizer kind";
    if (!(o->lr > 0) || !isfinite(o->lr)) return "the learning rate must be positive and finite";
    if (o->kind == BLO_OPT_ADAM &&
        !(o->beta1 >= 0 && o->beta1 < 1 && o->beta2 >= 0 && o->beta2 < 1))
        return "Adam betas must lie in [0, 1)";
    return NULL;
}

static blo_tensor **ptr_list(blo_ctx *ctx, int n) {
    size_t bytes = sizeof(blo_tensor *) * (size_t)(n > 0 ? n : 1);
    blo_tensor **l = blo__ctx_alloc(ctx, bytes);
    if (l) memset(l, 0, bytes);
    return l;
}

blo_status blo_opt_state_init(blo_ctx *ctx, const blo_opt *o, int n, blo_tensor *const *like,
                              blo_opt_state *st) {
    if (!ctx) return BLO_ERR_INVALID;
    if (!o || !st || n < 0 || (n > 0 && !like) || blo_opt_check(o))
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_opt_state_init: %s",
                                 o && blo_opt_check(o) ? blo_opt_check(o) : "bad arguments");
    memset(st, 0, sizeof *st);
    st->n = n;
    st->m = ptr_list(ctx, n);
    st->v = ptr_list(ctx, n);
    if (!st->m || !st->v) return blo_ctx_status(ctx);
    for (int i = 0; i < n; i++) {
        const blo_tensor *t = like[i];
        if (!t)
            return blo_ctx_set_error(ctx, BLO_ERR_INVALID, "blo_opt_state_init: tensor %d is NULL",
                                     i);
        if (o->kind != BLO_OPT_SGD && !(st->m[i] = blo_zeros(ctx, t->dtype, t->ndim, t->shape)))
            return blo_ctx_status(ctx);
        if (o->kind == BLO_OPT_ADAM && !(st->v[i] = blo_zeros(ctx, t->dtype, t->ndim, t->shape)))
            return blo_ctx_status(ctx);
    }
    return BLO_OK;
}

/* lr · d: the configured step size, or the caller's step-size tensor (broadcast). */
static blo_tensor *times_lr(blo_ctx *c, const blo_opt *o, blo_tensor *lr, blo_tensor *d) {
    return lr ? blo_mul(c, d, lr) : blo_scale(c, d, o->lr);
}

/* The one implementation: y's next value for gradient g at step t (1-based); *m and *v (the
 * moments, entries as the kind needs them) are replaced by their next values. NULL on
 * failure (the error in c). */
static blo_tensor *update(blo_ctx *c, const blo_opt *o, int64_t t, blo_tensor *y, blo_tensor *g,
                          blo_tensor *lr, blo_tensor **m, blo_tensor **v) {
    if (o->weight_decay != 0) g = blo_add(c, g, blo_scale(c, y, o->weight_decay));
    switch (o->kind) {
    case BLO_OPT_SGD:
        return blo_sub(c, y, times_lr(c, o, lr, g));
    case BLO_OPT_MOMENTUM:
        *m = blo_add(c, blo_scale(c, *m, o->momentum), g);
        return blo_sub(c, y, times_lr(c, o, lr, *m));
    case BLO_OPT_NESTEROV:
        *m = blo_add(c, blo_scale(c, *m, o->momentum), g);
        return blo_sub(c, y, times_lr(c, o, lr, blo_add(c, g, blo_scale(c, *m, o->momentum))));
    case BLO_OPT_ADAM: {
        /* eps_root inside the square root keeps its derivative finite at v = 0, so the step
         * can be differentiated (the same device as differentiable Adam elsewhere). */
        const double eps_root = 1e-16;
        *m = blo_add(c, blo_scale(c, *m, o->beta1), blo_scale(c, g, 1 - o->beta1));
        *v = blo_add(c, blo_scale(c, *v, o->beta2), blo_scale(c, blo_mul(c, g, g), 1 - o->beta2));
        blo_tensor *mh = blo_scale(c, *m, 1.0 / (1 - pow(o->beta1, (double)t)));
        blo_tensor *vh = blo_scale(c, *v, 1.0 / (1 - pow(o->beta2, (double)t)));
        blo_tensor *den = blo_add_scalar(c, blo_sqrt(c, blo_add_scalar(c, vh, eps_root)), o->eps);
        return blo_sub(c, y, times_lr(c, o, lr, blo_div(c, mh, den)));
    }
    }
    blo_ctx_set_error(c, BLO_ERR_INVALID, "unknown optimizer kind %d", (int)o->kind);
    return NULL;
}

/* Arguments both entry points share; records the message in c. */
static blo_status check_args(blo_ctx *c, const char *fn, const blo_opt *o, const blo_opt_state *st,
                             int n, blo_tensor *const *y) {
    const char *why = blo_opt_check(o);
    if (why) return blo_ctx_set_error(c, BLO_ERR_INVALID, "%s: %s", fn, why);
    if (!st || n < 0 || n > st->n || (n > 0 && !y))
        return blo_ctx_set_error(c, BLO_ERR_INVALID, "%s: %d tensors for a state of %d", fn, n,
                                 st ? st->n : 0);
    for (int i = 0; i < n; i++)
        if ((o->kind != BLO_OPT_SGD && !st->m[i]) || (o->kind == BLO_OPT_ADAM && !st->v[i]))
            return blo_ctx_set_error(c, BLO_ERR_INVALID,
                                     "%s: the state has no moments for tensor %d (made for "
                                     "another optimizer kind?)",
                                     fn, i);
    return BLO_OK;
}

blo_status blo_opt_apply(blo_ctx *ctx, const blo_opt *o, blo_opt_state *st, int n,
                         blo_tensor *const *y, blo_tensor *const *g, blo_tensor *const *lr,
                         blo_tensor **y_new) {
    if (!ctx) return BLO_ERR_INVALID;
    blo_status s = check_args(ctx, "blo_opt_apply", o, st, n, y);
    if (s) return s;
    if (n > 0 && (!g || !y_new))
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                 "blo_opt_apply: gradients and outputs are required");
    int64_t t = st->t + 1;
    for (int i = 0; i < n; i++) {
        y_new[i] = update(ctx, o, t, y[i], g[i], lr ? lr[i] : NULL, &st->m[i], &st->v[i]);
        if (!y_new[i]) return blo_ctx_status(ctx) ? blo_ctx_status(ctx) : BLO_ERR_INVALID;
    }
    st->t = t;
    return BLO_OK;
}

blo_status blo_opt_step(blo_ctx *scratch, const blo_opt *o, blo_opt_state *st, int n,
                        blo_tensor *const *params, blo_tensor *const *grads) {
    if (!scratch) return BLO_ERR_INVALID;
    blo_status s = check_args(scratch, "blo_opt_step", o, st, n, params);
    if (s) return s;
    blo_mark mk = blo_ctx_mark(scratch);
    int old = blo_ctx_set_recording(scratch, 0);
    int64_t t = st->t + 1;
    for (int i = 0; i < n && !s; i++) {
        blo_tensor *p = params[i], *g = grads ? grads[i] : NULL, *m = st->m[i], *v = st->v[i];
        if (!g && !(g = blo_zeros(scratch, p->dtype, p->ndim, p->shape)))
            s = blo_ctx_status(scratch);
        blo_tensor *np = s ? NULL : update(scratch, o, t, p, g, NULL, &m, &v);
        if (!np)
            s = blo_ctx_status(scratch) ? blo_ctx_status(scratch) : BLO_ERR_INVALID;
        else if ((s = blo_copy_into(p, np)) ||
                 (m != st->m[i] && (s = blo_copy_into(st->m[i], m))) ||
                 (v != st->v[i] && (s = blo_copy_into(st->v[i], v))))
            blo_ctx_set_error(scratch, s, "blo_opt_step: writing tensor %d back failed", i);
        blo_ctx_rewind(scratch, mk);
    }
    blo_ctx_set_recording(scratch, old);
    if (!s) st->t = t;
    return s;
}
