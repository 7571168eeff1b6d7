/* optimizer.c — the learned optimizer of blo/learnopt.h: its weights, its state, its update
 * written with blo ops (so blo differentiates a trajectory in the weights), and its file. */
#include "blo/learnopt.h"

#include "blo/data.h"

#include "../common/common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { F = BLO_LEARNOPT_INPUTS };
static const double B1 = 0.9, B2 = 0.99, B3 = 0.999, EPS = 1e-8, EPS_ROOT = 1e-16;

/* The shape of weight i for hidden width H (blo_linear's [out, in]): W₁ [H, 4], b₁ [H],
 * W₂ [1, H], b₂ [1], w_s [1, 4], ℓ [1]. Returns ndim. */
static int weight_shape(int i, int64_t H, int64_t *shape) {
    static const int nd[BLO_LEARNOPT_NX] = {2, 1, 2, 1, 2, 1};
    const int64_t s[BLO_LEARNOPT_NX][2] = {{H, F}, {H, 0}, {1, H}, {1, 0}, {1, F}, {1, 0}};
    shape[0] = s[i][0], shape[1] = s[i][1];
    return nd[i];
}

blo_status blo_learnopt_init(blo_ctx *ctx, blo_dtype dt, int64_t hidden, double step,
                             blo_rng *rng, blo_tensor **x) {
    if (!ctx || !x || !rng) return BLO_ERR_INVALID;
    if (hidden < 1 || !(step > 0) || !isfinite(step) || (dt != BLO_F32 && dt != BLO_F64))
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                 "learnopt: the optimizer needs hidden >= 1 (got %lld), a step "
                                 "> 0 (got %g) and a float dtype",
                                 (long long)hidden, step);
    for (int i = 0; i < BLO_LEARNOPT_NX; i++) {
        int64_t shape[2];
        int nd = weight_shape(i, hidden, shape);
        x[i] = blo_zeros(ctx, dt, nd, shape);
        if (!x[i]) return blo_ctx_status(ctx);
    }
    for (int64_t k = 0; k < F * hidden; k++)
        blo_tensor_set(x[0], k, 0.5 * blo_rng_normal(rng)); /* N(0, 1/F) */
    blo_tensor_set(x[4], 1, 1.0);                          /* d = m̂₁ / r: Adam */
    blo_tensor_set(x[5], 0, log(step));
    for (int i = 0; i < BLO_LEARNOPT_NX; i++)
        blo_set_requires_grad(x[i], 1);
    return blo_ctx_status(ctx);
}

blo_status blo_learnopt_state(blo_ctx *ctx, int n, blo_tensor *const *params, blo_tensor **y) {
    if (!ctx || n < 1 || !params || !y) return BLO_ERR_INVALID;
    int64_t one = 1;
    for (int i = 0; i < n; i++) {
        if (!params[i]) return BLO_ERR_INVALID;
        blo_dtype dt = blo_tensor_dtype(params[i]);
        int nd = blo_tensor_ndim(params[i]);
        int64_t shape[8];
        for (int a = 0; a < nd && a < 8; a++)
            shape[a] = blo_tensor_dim(params[i], a);
        y[i] = blo_clone(ctx, params[i]);
        for (int k = 1; k <= 3; k++)
            y[k * n + i] = blo_zeros(ctx, dt, nd, shape);
    }
    blo_dtype dt = blo_tensor_dtype(params[0]);
    y[4 * n] = blo_zeros(ctx, dt, 1, &one);
    y[4 * n + 1] = blo_zeros(ctx, dt, 1, &one);
    for (int i = 0; i < 4 * n + 2; i++)
        if (!y[i] || blo_set_requires_grad(y[i], 1)) return blo_ctx_status(ctx);
    return BLO_OK;
}

/* The step of one parameter tensor: new m₁, m₂, v into mv_new[0..3), the new θ returned. */
static blo_tensor *step_one(blo_ctx *c, blo_tensor *const *x, blo_tensor *th, blo_tensor *g,
                            blo_tensor *m1, blo_tensor *m2, blo_tensor *v, double k,
                            blo_tensor **mv_new) {
    mv_new[0] = blo_add(c, blo_scale(c, m1, B1), blo_scale(c, g, 1 - B1));
    mv_new[1] = blo_add(c, blo_scale(c, m2, B2), blo_scale(c, g, 1 - B2));
    mv_new[2] = blo_add(c, blo_scale(c, v, B3), blo_scale(c, blo_mul(c, g, g), 1 - B3));
    blo_tensor *vh = blo_scale(c, mv_new[2], 1.0 / (1 - pow(B3, k)));
    blo_tensor *r = blo_add_scalar(c, blo_sqrt(c, blo_add_scalar(c, vh, EPS_ROOT)), EPS);
    int64_t P = blo_tensor_numel(th), col[2] = {P, 1};
    blo_tensor *u[F] = {blo_div(c, g, r),
                        blo_div(c, blo_scale(c, mv_new[0], 1.0 / (1 - pow(B1, k))), r),
                        blo_div(c, blo_scale(c, mv_new[1], 1.0 / (1 - pow(B2, k))), r), th};
    for (int j = 0; j < F; j++)
        u[j] = blo_reshape(c, u[j], 2, col);
    blo_tensor *U = blo_concat(c, F, u, 1); /* [P, 4] */
    blo_tensor *h = blo_tanh(c, blo_linear(c, U, x[0], x[1]));
    blo_tensor *d = blo_add(c, blo_linear(c, h, x[2], x[3]), blo_linear(c, U, x[4], NULL)); /* [P, 1] */
    int nd = blo_tensor_ndim(th);
    int64_t shape[8];
    for (int a = 0; a < nd && a < 8; a++)
        shape[a] = blo_tensor_dim(th, a);
    d = blo_reshape(c, blo_mul(c, d, blo_exp(c, x[5])), nd, shape);
    return blo_sub(c, th, d);
}

blo_status blo_learnopt_update(blo_ctx *ctx, int nx, blo_tensor *const *x, int ny,
                               blo_tensor *const *y, blo_tensor *const *g, int64_t t,
                               blo_tensor **y_new, void *user) {
    const blo_learnopt_update_user *u = user;
    if (!ctx || !x || !y || !g || !y_new || !u) return BLO_ERR_INVALID;
    int n = u->n;
    if (nx != BLO_LEARNOPT_NX || n < 1 || ny != 4 * n + 2)
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                 "learnopt: the update takes %d optimizer tensors and 4n + 2 "
                                 "state tensors (n = %d), got %d and %d",
                                 BLO_LEARNOPT_NX, n, nx, ny);
    /* k counts the steps since the optimizee's start (values only: it carries no gradient). */
    double k = blo_tensor_item(y[4 * n]) + 1;
    for (int i = 0; i < n; i++) {
        blo_tensor *mv[3];
        y_new[i] = step_one(ctx, x, y[i], g[i], y[n + i], y[2 * n + i], y[3 * n + i], k, mv);
        for (int j = 0; j < 3; j++)
            y_new[(j + 1) * n + i] = mv[j];
    }
    y_new[4 * n] = blo_add_scalar(ctx, blo_detach(ctx, y[4 * n]), 1);
    y_new[4 * n + 1] = y[4 * n + 1];
    if (u->loss) {
        int64_t one = 1;
        blo_tensor *L = blo_reshape(ctx, u->loss(ctx, y, u->loss_user), 1, &one);
        y_new[4 * n + 1] = t == 0 ? L : blo_add(ctx, y[4 * n + 1], L);
    }
    for (int i = 0; i < ny; i++)
        if (!y_new[i]) return blo_ctx_status(ctx) ? blo_ctx_status(ctx) : BLO_ERR_INVALID;
    return BLO_OK;
}

/* ---- The file ------------------------------------------------------------------------------- */

static const char MAGIC[8] = {'B', 'L', 'O', 'L', 'O', 'P', 'T', '1'};

static uint64_t fnv1a(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static void put_u(unsigned char *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The file's size for hidden width H. */
static size_t file_size(int64_t H) {
    size_t n = 8 + 4 * 4;
    for (int i = 0; i < BLO_LEARNOPT_NX; i++) {
        int64_t s[2];
        int nd = weight_shape(i, H, s);
        n += 4 + 8 * (size_t)nd + 8 * (size_t)(s[0] * (nd == 2 ? s[1] : 1));
    }
    return n + 8;
}

blo_status blo_learnopt_save(const char *path, blo_tensor *const *x, char *err, size_t errlen) {
    if (!path || !x || !x[0] || blo_tensor_ndim(x[0]) != 2)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "learnopt: no optimizer to save");
    int64_t H = blo_tensor_dim(x[0], 0);
    for (int i = 0; i < BLO_LEARNOPT_NX; i++) {
        int64_t s[2];
        int nd = weight_shape(i, H, s);
        bool ok = x[i] && blo_tensor_ndim(x[i]) == nd;
        for (int a = 0; ok && a < nd; a++)
            ok = blo_tensor_dim(x[i], a) == s[a];
        if (!ok)
            return blo__fail(err, errlen, BLO_ERR_INVALID,
                             "learnopt: optimizer tensor %d does not have the shape hidden "
                             "width %lld asks for",
                             i, (long long)H);
    }
    size_t len = file_size(H), off = 0;
    unsigned char *buf = blo_malloc(len);
    double *vals = blo_malloc(sizeof(double) * (size_t)(F * H + 1));
    if (!buf || !vals) {
        blo_free(buf);
        blo_free(vals);
        return blo__fail(err, errlen, BLO_ERR_NOMEM, "learnopt: out of memory");
    }
    memcpy(buf, MAGIC, 8), off = 8;
    const uint64_t head[4] = {BLO_LEARNOPT_FILE_VERSION, F, (uint64_t)H, BLO_LEARNOPT_NX};
    for (int i = 0; i < 4; i++, off += 4)
        put_u(buf + off, head[i], 4);
    blo_status st = BLO_OK;
    for (int i = 0; !st && i < BLO_LEARNOPT_NX; i++) {
        int64_t s[2];
        int nd = weight_shape(i, H, s);
        put_u(buf + off, (uint64_t)nd, 4), off += 4;
        for (int a = 0; a < nd; a++, off += 8)
            put_u(buf + off, (uint64_t)s[a], 8);
        int64_t cnt = blo_tensor_numel(x[i]);
        blo_tensor_to_f64(x[i], vals);
        for (int64_t k = 0; k < cnt; k++, off += 8) {
            if (!isfinite(vals[k]))
                st = blo__fail(err, errlen, BLO_ERR_INVALID,
                               "learnopt: optimizer tensor %d, value %lld is %g: not saved", i,
                               (long long)k, vals[k]);
            uint64_t bits;
            memcpy(&bits, &vals[k], 8);
            put_u(buf + off, bits, 8);
        }
    }
    put_u(buf + off, fnv1a(buf, off), 8);
    blo_free(vals);
    char tmp[4096];
    if (!st && snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        st = blo__fail(err, errlen, BLO_ERR_INVALID, "learnopt: %s: path too long", path);
    if (!st) {
        FILE *f = fopen(tmp, "wb");
        bool ok = f && fwrite(buf, 1, len, f) == len;
        ok = f && fclose(f) == 0 && ok;
        if (!ok || rename(tmp, path) != 0) {
            remove(tmp);
            st = blo__fail(err, errlen, BLO_ERR_IO, "learnopt: %s: cannot write the optimizer",
                           path);
        }
    }
    blo_free(buf);
    return st;
}

blo_status blo_learnopt_parse(const unsigned char *buf, size_t len, const char *name,
                              blo_ctx *ctx, blo_dtype dt, blo_tensor **x, int64_t *hidden,
                              char *err, size_t errlen) {
    if (!buf || !ctx || !x || (dt != BLO_F32 && dt != BLO_F64))
        return blo__fail(err, errlen, BLO_ERR_INVALID, "learnopt: bad arguments to the loader");
    if (!name) name = "optimizer";
    if (len < 8 + 16 || memcmp(buf, MAGIC, 8))
        return blo__fail(err, errlen, BLO_ERR_FORMAT,
                         "%s: not a blo learned-optimizer file (no \"BLOLOPT1\" header)", name);
    uint64_t version = get_u(buf + 8, 4), inputs = get_u(buf + 12, 4), H = get_u(buf + 16, 4),
             nt = get_u(buf + 20, 4);
    if (version != BLO_LEARNOPT_FILE_VERSION)
        return blo__fail(err, errlen, BLO_ERR_FORMAT,
                         "%s: offset 8: version %llu, this blo reads version %d", name,
                         (unsigned long long)version, BLO_LEARNOPT_FILE_VERSION);
    if (inputs != F || nt != BLO_LEARNOPT_NX || H < 1 || H > 1000000)
        return blo__fail(err, errlen, BLO_ERR_FORMAT,
                         "%s: offset 12: %llu inputs, hidden width %llu, %llu tensors; expected "
                         "%d inputs, a width in [1, 1e6] and %d tensors",
                         name, (unsigned long long)inputs, (unsigned long long)H,
                         (unsigned long long)nt, F, BLO_LEARNOPT_NX);
    size_t want = file_size((int64_t)H);
    if (len != want)
        return blo__fail(err, errlen, BLO_ERR_FORMAT,
                         "%s: %zu bytes, a file of hidden width %llu has %zu (%s)", name, len,
                         (unsigned long long)H, want, len < want ? "truncated" : "trailing bytes");
    if (get_u(buf + len - 8, 8) != fnv1a(buf, len - 8))
        return blo__fail(err, errlen, BLO_ERR_FORMAT,
                         "%s: offset %zu: checksum mismatch (the file is damaged)", name, len - 8);
    size_t off = 24;
    for (int i = 0; i < BLO_LEARNOPT_NX; i++) { /* check everything before making tensors */
        int64_t s[2];
        int nd = weight_shape(i, (int64_t)H, s);
        if (get_u(buf + off, 4) != (uint64_t)nd)
            return blo__fail(err, errlen, BLO_ERR_FORMAT,
                             "%s: offset %zu: tensor %d has %llu dimensions, expected %d", name,
                             off, i, (unsigned long long)get_u(buf + off, 4), nd);
        off += 4;
        for (int a = 0; a < nd; a++, off += 8)
            if (get_u(buf + off, 8) != (uint64_t)s[a])
                return blo__fail(err, errlen, BLO_ERR_FORMAT,
                                 "%s: offset %zu: tensor %d, dimension %d is %llu, expected %lld",
                                 name, off, i, a, (unsigned long long)get_u(buf + off, 8),
                                 (long long)s[a]);
        int64_t cnt = s[0] * (nd == 2 ? s[1] : 1);
        for (int64_t k = 0; k < cnt; k++, off += 8) {
            uint64_t bits = get_u(buf + off, 8);
            double v;
            memcpy(&v, &bits, 8);
            if (!isfinite(v))
                return blo__fail(err, errlen, BLO_ERR_FORMAT,
                                 "%s: offset %zu: tensor %d, value %lld is not finite", name, off,
                                 i, (long long)k);
        }
    }
    double *vals = blo_malloc(sizeof(double) * (size_t)(F * H + 1));
    if (!vals) return blo__fail(err, errlen, BLO_ERR_NOMEM, "learnopt: out of memory");
    off = 24;
    blo_status st = BLO_OK;
    for (int i = 0; !st && i < BLO_LEARNOPT_NX; i++) {
        int64_t s[2];
        int nd = weight_shape(i, (int64_t)H, s);
        off += 4 + 8 * (size_t)nd;
        int64_t cnt = s[0] * (nd == 2 ? s[1] : 1);
        for (int64_t k = 0; k < cnt; k++, off += 8) {
            uint64_t bits = get_u(buf + off, 8);
            memcpy(&vals[k], &bits, 8);
        }
        x[i] = blo_from_f64(ctx, dt, nd, s, vals);
        if (!x[i] || blo_set_requires_grad(x[i], 1))
            st = blo__fail(err, errlen, blo_ctx_status(ctx) ? blo_ctx_status(ctx) : BLO_ERR_NOMEM,
                           "%s: %s", name, blo_ctx_error(ctx));
    }
    blo_free(vals);
    if (!st && hidden) *hidden = (int64_t)H;
    return st;
}

blo_status blo_learnopt_load(const char *path, blo_ctx *ctx, blo_dtype dt, blo_tensor **x,
                             int64_t *hidden, char *err, size_t errlen) {
    if (!path) return blo__fail(err, errlen, BLO_ERR_INVALID, "learnopt: no optimizer file");
    unsigned char *buf = NULL;
    size_t len = 0;
    blo_status st = blo_read_file(path, &buf, &len, err, errlen);
    if (!st) st = blo_learnopt_parse(buf, len, path, ctx, dt, x, hidden, err, errlen);
    blo_free(buf);
    return st;
}
