/* cpu_conv.c — the convolution and pooling kernels of the CPU backend.
 *
 * im2col unfolds every receptive field of x [N, C, H, W] into a column of
 * cols [N, C·KH·KW, OH·OW]:
 *
 *     cols[n][(c·KH + i)·KW + j][oy·OW + ox] = x[n][c][oy·sh − ph + i·dh][ox·sw − pw + j·dw]
 *
 * (zero where the index falls in the padding), so a convolution becomes one gemm per image
 * and group. col2im is its adjoint: every column entry is added back onto the pixel it was
 * read from (pixels read by several windows collect several terms).
 *
 * Pooling: window (oy, ox) covers rows oy·sh − ph + [0, KH) and columns ox·sw − pw + [0, KW),
 * clipped to the image. Max pooling returns the maximum and its position as a flat index
 * into the H·W plane; padding counts as −inf, so it is never chosen (the op allows at most
 * half a kernel of padding, so every window holds a real cell). Avg pooling divides the
 * window's sum by KH·KW (count_include_pad) or by the number of real cells; its adjoint
 * hands each output gradient, divided the same way, to every real cell of the window.
 *
 * Depthwise convolution (groups = C input channels, M = O/C outputs per input channel, w
 * [O, 1, KH, KW]) is done directly, without cols: output plane (n, o) reads input plane
 * (n, o/M), and for each tap (i, j) the rows of the output whose input row is inside the image
 * take w[o][i][j] times a (strided) input row — an axpy over OW elements, vectorisable. Its
 * adjoint in x adds the same products back onto the input plane (plane by plane, the M output
 * planes of one input plane by one thread); its adjoint in w is, per output channel o and tap,
 * the sum over images and pixels of g[n][o][oy][ox] · x[n][o/M][iy][ix] (one thread per o).
 *
 * Every kernel works plane by plane — one (n, c) pair, whose rows of cols and whose pixels
 * no other plane touches — and spreads planes over OpenMP threads. So col2im and the pooling
 * adjoint need no atomics, and results repeat bit for bit whatever the thread count.
 */
#include "cpu.h"

#include <math.h>
#include <string.h>

/* Work (elements touched) below this stays on one thread. */
#define PAR_MIN 32768

/* fn(env, q) for q < n, over OpenMP threads when the work is large. Small work calls the loop
 * directly: even a parallel region with a false if clause costs a libgomp team (~1 µs), which
 * matters for the small planes of a supernet. */
static void for_planes(int64_t n, int64_t work, void (*fn)(const void *env, int64_t q),
                       const void *env) {
    if (work < PAR_MIN || blo_num_threads() <= 1) {
        for (int64_t q = 0; q < n; q++)
            fn(env, q);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < n; q++)
        fn(env, q);
}

/* The outputs o in [0, n) whose input position o·s + off lies in [0, size): [*lo, *hi). */
static void valid_range(int64_t off, int64_t s, int64_t size, int64_t n, int64_t *lo, int64_t *hi) {
    int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t b = size - 1 - off < 0 ? 0 : (size - 1 - off) / s + 1;
    if (b > n) b = n;
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

/* dst[k] = src[k·s], k < n. */
static void row_gather(blo_dtype dt, char *dst, const char *src, int64_t n, int64_t s) {
    if (s == 1) {
        memcpy(dst, src, (size_t)n * blo_dtype_size(dt));
    } else if (dt == BLO_F32) {
        float *d = (float *)dst;
        const float *x = (const float *)src;
        for (int64_t k = 0; k < n; k++)
            d[k] = x[k * s];
    } else {
        double *d = (double *)dst;
        const double *x = (const double *)src;
        for (int64_t k = 0; k < n; k++)
            d[k] = x[k * s];
    }
}

/* dst[k·s] += src[k], k < n. */
static void row_scatter_add(blo_dtype dt, char *dst, const char *src, int64_t n, int64_t s) {
    if (dt == BLO_F32) {
        float *d = (float *)dst;
        const float *x = (const float *)src;
        for (int64_t k = 0; k < n; k++)
            d[k * s] += x[k];
    } else {
        double *d = (double *)dst;
        const double *x = (const double *)src;
        for (int64_t k = 0; k < n; k++)
            d[k * s] += x[k];
    }
}

/* ---- im2col / col2im ------------------------------------------------------------------------ */

/* The geometry both directions share, read once from the tensors. */
typedef struct {
    int64_t planes, h, w, kh, kw, oh, ow;
    int64_t sh, sw, ph, pw, dh, dw;
    size_t es;
} unfold;

static unfold unfold_of(const blo_tensor *x, const blo_conv2d_params *p, int kh, int kw, int oh,
                        int ow) {
    unfold u = {.planes = x->shape[0] * x->shape[1],
                .h = x->shape[2],
                .w = x->shape[3],
                .kh = kh,
                .kw = kw,
                .oh = oh,
                .ow = ow,
                .sh = p->stride_h,
                .sw = p->stride_w,
                .ph = p->pad_h,
                .pw = p->pad_w,
                .dh = p->dil_h,
                .dw = p->dil_w,
                .es = blo_dtype_size(x->dtype)};
    return u;
}

/* Plane q of x (H·W elements) and its KH·KW rows of cols (each OH·OW long). */
static void im2col_plane(blo_dtype dt, const unfold *u, const char *xp, char *cp) {
    int64_t len = u->oh * u->ow;
    for (int64_t i = 0; i < u->kh; i++) {
        int64_t y0, y1; /* output rows whose input row is inside the image */
        valid_range(i * u->dh - u->ph, u->sh, u->h, u->oh, &y0, &y1);
        for (int64_t j = 0; j < u->kw; j++) {
            int64_t xoff = j * u->dw - u->pw, x0, x1;
            valid_range(xoff, u->sw, u->w, u->ow, &x0, &x1);
            char *row = cp + (i * u->kw + j) * len * (int64_t)u->es;
            memset(row, 0, (size_t)(y0 * u->ow) * u->es);
            for (int64_t oy = y0; oy < y1; oy++) {
                char *d = row + oy * u->ow * (int64_t)u->es;
                int64_t iy = oy * u->sh - u->ph + i * u->dh;
                memset(d, 0, (size_t)x0 * u->es);
                row_gather(dt, d + x0 * (int64_t)u->es,
                           xp + (iy * u->w + x0 * u->sw + xoff) * (int64_t)u->es, x1 - x0, u->sw);
                memset(d + x1 * (int64_t)u->es, 0, (size_t)(u->ow - x1) * u->es);
            }
            memset(row + y1 * u->ow * (int64_t)u->es, 0, (size_t)((u->oh - y1) * u->ow) * u->es);
        }
    }
}

/* The adjoint on one plane: x (overwritten) = Σ of the plane's column entries per pixel. */
static void col2im_plane(blo_dtype dt, const unfold *u, const char *cp, char *xp) {
    int64_t len = u->oh * u->ow;
    memset(xp, 0, (size_t)(u->h * u->w) * u->es);
    for (int64_t i = 0; i < u->kh; i++) {
        int64_t y0, y1;
        valid_range(i * u->dh - u->ph, u->sh, u->h, u->oh, &y0, &y1);
        for (int64_t j = 0; j < u->kw; j++) {
            int64_t xoff = j * u->dw - u->pw, x0, x1;
            valid_range(xoff, u->sw, u->w, u->ow, &x0, &x1);
            const char *row = cp + (i * u->kw + j) * len * (int64_t)u->es;
            for (int64_t oy = y0; oy < y1; oy++) {
                int64_t iy = oy * u->sh - u->ph + i * u->dh;
                row_scatter_add(dt, xp + (iy * u->w + x0 * u->sw + xoff) * (int64_t)u->es,
                                row + (oy * u->ow + x0) * (int64_t)u->es, x1 - x0, u->sw);
            }
        }
    }
}

typedef struct {
    blo_dtype dt;
    unfold u;
    const char *src;
    char *dst;
    int64_t xs, cs; /* bytes per plane of x and of cols */
} unfold_job;

static void im2col_job(const void *env, int64_t q) {
    const unfold_job *j = env;
    im2col_plane(j->dt, &j->u, j->src + q * j->xs, j->dst + q * j->cs);
}

static void col2im_job(const void *env, int64_t q) {
    const unfold_job *j = env;
    col2im_plane(j->dt, &j->u, j->src + q * j->cs, j->dst + q * j->xs);
}

void blo__cpu_im2col(const blo_tensor *x, const blo_conv2d_params *p, int kh, int kw, int oh,
                     int ow, blo_tensor *cols) {
    unfold u = unfold_of(x, p, kh, kw, oh, ow);
    unfold_job j = {x->dtype, u, x->data, cols->data, u.h * u.w * (int64_t)u.es,
                    u.kh * u.kw * u.oh * u.ow * (int64_t)u.es};
    for_planes(u.planes, u.planes * j.cs / (int64_t)u.es, im2col_job, &j);
}

void blo__cpu_col2im(const blo_tensor *cols, const blo_conv2d_params *p, int kh, int kw, int oh,
                     int ow, blo_tensor *x) {
    unfold u = unfold_of(x, p, kh, kw, oh, ow);
    unfold_job j = {x->dtype, u, cols->data, x->data, u.h * u.w * (int64_t)u.es,
                    u.kh * u.kw * u.oh * u.ow * (int64_t)u.es};
    for_planes(u.planes, u.planes * j.cs / (int64_t)u.es, col2im_job, &j);
}

/* ---- Pooling ------------------------------------------------------------------------------------
 * Windows are small, so these kernels read and write through double; the per-element dtype
 * test is a well-predicted branch, and f32 sums gain double accumulation. */

static inline double ld(const void *p, int64_t i, bool f32) {
    return f32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}
static inline void st(void *p, int64_t i, double v, bool f32) {
    if (f32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

typedef struct {
    int64_t planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
    bool include_pad;
} pool_geom;

static pool_geom pool_of(const blo_tensor *x, int64_t oh, int64_t ow, const blo_pool2d_params *p) {
    pool_geom g = {.planes = x->shape[0] * x->shape[1],
                   .h = x->shape[2],
                   .w = x->shape[3],
                   .oh = oh,
                   .ow = ow,
                   .kh = p->kernel_h,
                   .kw = p->kernel_w,
                   .sh = p->stride_h,
                   .sw = p->stride_w,
                   .ph = p->pad_h,
                   .pw = p->pad_w,
                   .include_pad = p->count_include_pad != 0};
    return g;
}

/* Window of output (oy, ox) clipped to the image: rows [*y0, *y1), columns [*x0, *x1). */
static inline void window(const pool_geom *g, int64_t oy, int64_t ox, int64_t *y0, int64_t *y1,
                          int64_t *x0, int64_t *x1) {
    int64_t ys = oy * g->sh - g->ph, xs = ox * g->sw - g->pw;
    *y0 = ys < 0 ? 0 : ys;
    *y1 = ys + g->kh < g->h ? ys + g->kh : g->h;
    *x0 = xs < 0 ? 0 : xs;
    *x1 = xs + g->kw < g->w ? xs + g->kw : g->w;
}

static inline double divisor(const pool_geom *g, int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
    return g->include_pad ? (double)(g->kh * g->kw) : (double)((y1 - y0) * (x1 - x0));
}

/* One pooling call's data: x (or gout) in, out (or gx) written, argmax for max pooling. */
typedef struct {
    pool_geom g;
    bool f32;
    size_t es;
    const char *in;
    char *out;
    int64_t *arg;
} pool_job;

static void max_pool_plane(const void *env, int64_t q) {
    const pool_job *j = env;
    const pool_geom *g = &j->g;
    bool f32 = j->f32;
    int64_t plane_out = g->oh * g->ow;
    const char *xp = j->in + q * g->h * g->w * (int64_t)j->es;
    for (int64_t oy = 0; oy < g->oh; oy++) {
        for (int64_t ox = 0; ox < g->ow; ox++) {
            int64_t y0, y1, x0, x1;
            window(g, oy, ox, &y0, &y1, &x0, &x1);
            /* The first maximal cell wins; a NaN wins over numbers, as in PyTorch. */
            double best = -INFINITY;
            int64_t at = y0 * g->w + x0;
            for (int64_t iy = y0; iy < y1; iy++) {
                for (int64_t ix = x0; ix < x1; ix++) {
                    double v = ld(xp, iy * g->w + ix, f32);
                    if (v > best || (isnan(v) && !isnan(best))) {
                        best = v;
                        at = iy * g->w + ix;
                    }
                }
            }
            int64_t o = q * plane_out + oy * g->ow + ox;
            j->arg[o] = at;
            if (j->out) st(j->out, o, ld(xp, at, f32), f32);
        }
    }
}

void blo__cpu_max_pool2d(const blo_tensor *x, const blo_pool2d_params *p, blo_tensor *out,
                         blo_tensor *argmax) {
    pool_job j = {pool_of(x, argmax->shape[2], argmax->shape[3], p), x->dtype == BLO_F32,
                  blo_dtype_size(x->dtype), x->data, out ? out->data : NULL, argmax->data};
    for_planes(j.g.planes, j.g.planes * j.g.oh * j.g.ow * j.g.kh * j.g.kw, max_pool_plane, &j);
}

static void avg_pool_plane(const void *env, int64_t q) {
    const pool_job *j = env;
    const pool_geom *g = &j->g;
    bool f32 = j->f32;
    int64_t plane_out = g->oh * g->ow;
    const char *xp = j->in + q * g->h * g->w * (int64_t)j->es;
    for (int64_t oy = 0; oy < g->oh; oy++) {
        for (int64_t ox = 0; ox < g->ow; ox++) {
            int64_t y0, y1, x0, x1;
            window(g, oy, ox, &y0, &y1, &x0, &x1);
            double s = 0;
            for (int64_t iy = y0; iy < y1; iy++)
                for (int64_t ix = x0; ix < x1; ix++)
                    s += ld(xp, iy * g->w + ix, f32);
            st(j->out, q * plane_out + oy * g->ow + ox, s / divisor(g, y0, y1, x0, x1), f32);
        }
    }
}

void blo__cpu_avg_pool2d(const blo_tensor *x, const blo_pool2d_params *p, blo_tensor *out) {
    pool_job j = {pool_of(x, out->shape[2], out->shape[3], p), x->dtype == BLO_F32,
                  blo_dtype_size(x->dtype), x->data, out->data, NULL};
    for_planes(j.g.planes, j.g.planes * j.g.oh * j.g.ow * j.g.kh * j.g.kw, avg_pool_plane, &j);
}

static void avg_pool_adjoint_plane(const void *env, int64_t q) {
    const pool_job *j = env;
    const pool_geom *g = &j->g;
    bool f32 = j->f32;
    int64_t plane_in = g->h * g->w, plane_out = g->oh * g->ow;
    char *xp = j->out + q * plane_in * (int64_t)j->es;
    const char *gp = j->in + q * plane_out * (int64_t)j->es;
    memset(xp, 0, (size_t)plane_in * j->es);
    for (int64_t oy = 0; oy < g->oh; oy++) {
        for (int64_t ox = 0; ox < g->ow; ox++) {
            int64_t y0, y1, x0, x1;
            window(g, oy, ox, &y0, &y1, &x0, &x1);
            double v = ld(gp, oy * g->ow + ox, f32) / divisor(g, y0, y1, x0, x1);
            for (int64_t iy = y0; iy < y1; iy++)
                for (int64_t ix = x0; ix < x1; ix++)
                    st(xp, iy * g->w + ix, ld(xp, iy * g->w + ix, f32) + v, f32);
        }
    }
}

void blo__cpu_avg_pool2d_adjoint(const blo_tensor *gout, const blo_pool2d_params *p,
                                 blo_tensor *gx) {
    pool_job j = {pool_of(gx, gout->shape[2], gout->shape[3], p), gx->dtype == BLO_F32,
                  blo_dtype_size(gx->dtype), gout->data, gx->data, NULL};
    for_planes(j.g.planes, j.g.planes * j.g.oh * j.g.ow * j.g.kh * j.g.kw,
               avg_pool_adjoint_plane, &j);
}
