/* cpu_conv.c — the convolution and pooling kernels of the CPU backend.
 *
 * im2col unfolds every receptive field of x [N, C, H, W] into a column of
 * cols [C·KH·KW, N·OH·OW], the images side by side:
 *
 *     cols[(c·KH + i)·KW + j][(n·OH + oy)·OW + ox] = x[n][c][oy·sh − ph + i·dh][ox·sw − pw + j·dw]
 *
 * (zero where the index falls in the padding), so a convolution becomes one gemm per group
 * for the whole batch. col2im is its adjoint: every column entry is added back onto the pixel it
 * was read from (pixels read by several windows collect several terms).
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

#if defined(__GNUC__)
#define FORCE_INLINE inline __attribute__((always_inline))
#else
#define FORCE_INLINE inline
#endif

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

/* Runs the statements that follow with T the element type of dt (f32 or f64): each row
 * helper below is written once and compiled for both types. */
#define TYPED(dt, ...)                                                                       \
    do {                                                                                     \
        if ((dt) == BLO_F32) {                                                               \
            typedef float T;                                                                 \
            __VA_ARGS__                                                                      \
        } else {                                                                             \
            typedef double T;                                                                \
            __VA_ARGS__                                                                      \
        }                                                                                    \
    } while (0)

/* d[0, x0) = 0, d[x0, x1) = src[(k − x0)·s], d[x1, n) = 0: one row of cols, written in one
 * typed pass (rows are often a handful of elements, too short for memset and memcpy calls). */
static inline void row_fill(blo_dtype dt, char *dst, const char *src, int64_t x0, int64_t x1,
                            int64_t n, int64_t s) {
    TYPED(dt, {
        T *restrict d = (T *)dst;
        const T *restrict x = (const T *)src - x0 * s;
        for (int64_t k = 0; k < x0; k++)
            d[k] = 0;
        if (s == 1)
            for (int64_t k = x0; k < x1; k++)
                d[k] = x[k];
        else
            for (int64_t k = x0; k < x1; k++)
                d[k] = x[k * s];
        for (int64_t k = x1; k < n; k++)
            d[k] = 0;
    });
}

/* dst[k·s] += src[k], k < n. */
static inline void row_scatter_add(blo_dtype dt, char *dst, const char *src, int64_t n, int64_t s) {
    TYPED(dt, {
        T *restrict d = (T *)dst;
        const T *restrict x = (const T *)src;
        if (s == 1)
            for (int64_t k = 0; k < n; k++)
                d[k] += x[k];
        else
            for (int64_t k = 0; k < n; k++)
                d[k * s] += x[k];
    });
}

/* ---- Zero-bordered planes -------------------------------------------------------------------- */

/* Elements of a per-call plane buffer, on the stack (16 KiB: small enough for the short
 * stacks of worker threads); larger planes take the clipped-row kernels. */
#define PLANE_BUF 2048

typedef union {
    float f[PLANE_BUF];
    double d[PLANE_BUF];
} plane_buf;

/* Copies a rows × cols block between row strides ds (dst) and ss (src), in elements. */
static void copy_block(char *dst, int64_t ds, const char *src, int64_t ss, int64_t rows,
                       int64_t cols, size_t es) {
    for (int64_t r = 0; r < rows; r++)
        memcpy(dst + r * ds * (int64_t)es, src + r * ss * (int64_t)es, (size_t)cols * es);
}

/* xp = the H × W plane x inside a border of ph rows and pw columns of zeros. */
static void pad_plane(char *xp, const char *x, int64_t h, int64_t w, int64_t ph, int64_t pw,
                      size_t es) {
    int64_t wp = w + 2 * pw;
    memset(xp, 0, (size_t)((h + 2 * ph) * wp) * es);
    copy_block(xp + (ph * wp + pw) * (int64_t)es, wp, x, w, h, w, es);
}

/* ---- im2col / col2im ------------------------------------------------------------------------ */

/* The geometry both directions share, read once from the tensors. */
typedef struct {
    int64_t n, c, h, w, kh, kw, oh, ow;
    int64_t sh, sw, ph, pw, dh, dw;
    size_t es;
} unfold;

static unfold unfold_of(const blo_tensor *x, const blo_conv2d_params *p, int kh, int kw, int oh,
                        int ow) {
    unfold u = {.n = x->shape[0],
                .c = x->shape[1],
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

/* Plane (n, c) of x (H·W elements) and its part of cols: KH·KW rows, ld elements apart, each
 * OH·OW long from column n·OH·OW (cp points there). */
static void im2col_plane(blo_dtype dt, const unfold *u, const char *xp, char *cp, int64_t ld) {
    int64_t es = (int64_t)u->es;
    for (int64_t i = 0; i < u->kh; i++) {
        int64_t y0, y1; /* output rows whose input row is inside the image */
        valid_range(i * u->dh - u->ph, u->sh, u->h, u->oh, &y0, &y1);
        for (int64_t j = 0; j < u->kw; j++) {
            int64_t xoff = j * u->dw - u->pw, x0, x1;
            valid_range(xoff, u->sw, u->w, u->ow, &x0, &x1);
            char *row = cp + (i * u->kw + j) * ld * es;
            memset(row, 0, (size_t)(y0 * u->ow) * u->es);
            for (int64_t oy = y0; oy < y1; oy++) {
                int64_t iy = oy * u->sh - u->ph + i * u->dh;
                row_fill(dt, row + oy * u->ow * es, xp + (iy * u->w + x0 * u->sw + xoff) * es, x0,
                         x1, u->ow, u->sw);
            }
            memset(row + y1 * u->ow * es, 0, (size_t)((u->oh - y1) * u->ow) * u->es);
        }
    }
}

/* The adjoint on one plane: x (overwritten) = Σ of the plane's column entries per pixel. */
static void col2im_plane(blo_dtype dt, const unfold *u, const char *cp, char *xp, int64_t ld) {
    int64_t es = (int64_t)u->es;
    memset(xp, 0, (size_t)(u->h * u->w) * u->es);
    for (int64_t i = 0; i < u->kh; i++) {
        int64_t y0, y1;
        valid_range(i * u->dh - u->ph, u->sh, u->h, u->oh, &y0, &y1);
        for (int64_t j = 0; j < u->kw; j++) {
            int64_t xoff = j * u->dw - u->pw, x0, x1;
            valid_range(xoff, u->sw, u->w, u->ow, &x0, &x1);
            const char *row = cp + (i * u->kw + j) * ld * es;
            for (int64_t oy = y0; oy < y1; oy++) {
                int64_t iy = oy * u->sh - u->ph + i * u->dh;
                row_scatter_add(dt, xp + (iy * u->w + x0 * u->sw + xoff) * es,
                                row + (oy * u->ow + x0) * es, x1 - x0, u->sw);
            }
        }
    }
}

typedef struct {
    blo_dtype dt;
    unfold u;
    const char *src;
    char *dst;
} unfold_job;

/* Plane q = n·C + c of x; its rows of cols start at row c·KH·KW, column n·OH·OW. */
static int64_t cols_offset(const unfold *u, int64_t q) {
    int64_t len = u->oh * u->ow;
    return ((q % u->c) * u->kh * u->kw * u->n * len + (q / u->c) * len) * (int64_t)u->es;
}

/* With the plane inside a zero border (when it fits the buffer) every row of cols reads OW
 * cells of a bordered row, with no clipping: output row oy of tap (i, j) starts at bordered
 * cell (oy·sh + i·dh, j·dw). col2im adds the same way into a bordered plane and keeps its
 * inside. */
static bool unfold_bordered(const unfold *u) {
    return (u->h + 2 * u->ph) * (u->w + 2 * u->pw) <= PLANE_BUF;
}

static void im2col_plane_bordered(blo_dtype dt, const unfold *u, const char *x, char *cp,
                                  int64_t ld) {
    plane_buf b;
    char *xp = dt == BLO_F32 ? (char *)b.f : (char *)b.d;
    int64_t es = (int64_t)u->es, wp = u->w + 2 * u->pw;
    pad_plane(xp, x, u->h, u->w, u->ph, u->pw, u->es);
    for (int64_t i = 0; i < u->kh; i++)
        for (int64_t j = 0; j < u->kw; j++) {
            char *row = cp + (i * u->kw + j) * ld * es;
            for (int64_t oy = 0; oy < u->oh; oy++)
                row_fill(dt, row + oy * u->ow * es,
                         xp + ((oy * u->sh + i * u->dh) * wp + j * u->dw) * es, 0, u->ow, u->ow,
                         u->sw);
        }
}

static void col2im_plane_bordered(blo_dtype dt, const unfold *u, const char *cp, char *x,
                                  int64_t ld) {
    plane_buf b;
    char *xp = dt == BLO_F32 ? (char *)b.f : (char *)b.d;
    int64_t es = (int64_t)u->es, wp = u->w + 2 * u->pw;
    memset(xp, 0, (size_t)((u->h + 2 * u->ph) * wp) * u->es);
    for (int64_t i = 0; i < u->kh; i++)
        for (int64_t j = 0; j < u->kw; j++) {
            const char *row = cp + (i * u->kw + j) * ld * es;
            for (int64_t oy = 0; oy < u->oh; oy++)
                row_scatter_add(dt, xp + ((oy * u->sh + i * u->dh) * wp + j * u->dw) * es,
                                row + oy * u->ow * es, u->ow, u->sw);
        }
    copy_block(x, u->w, xp + (u->ph * wp + u->pw) * es, wp, u->h, u->w, u->es);
}

static void im2col_job(const void *env, int64_t q) {
    const unfold_job *j = env;
    const unfold *u = &j->u;
    const char *x = j->src + q * u->h * u->w * (int64_t)u->es;
    if (unfold_bordered(u))
        im2col_plane_bordered(j->dt, u, x, j->dst + cols_offset(u, q), u->n * u->oh * u->ow);
    else
        im2col_plane(j->dt, u, x, j->dst + cols_offset(u, q), u->n * u->oh * u->ow);
}

static void col2im_job(const void *env, int64_t q) {
    const unfold_job *j = env;
    const unfold *u = &j->u;
    char *x = j->dst + q * u->h * u->w * (int64_t)u->es;
    if (unfold_bordered(u))
        col2im_plane_bordered(j->dt, u, j->src + cols_offset(u, q), x, u->n * u->oh * u->ow);
    else
        col2im_plane(j->dt, u, j->src + cols_offset(u, q), x, u->n * u->oh * u->ow);
}

void blo__cpu_im2col(const blo_tensor *x, const blo_conv2d_params *p, int kh, int kw, int oh,
                     int ow, blo_tensor *cols) {
    unfold_job j = {x->dtype, unfold_of(x, p, kh, kw, oh, ow), x->data, cols->data};
    for_planes(j.u.n * j.u.c, blo__numel(cols->ndim, cols->shape), im2col_job, &j);
}

void blo__cpu_col2im(const blo_tensor *cols, const blo_conv2d_params *p, int kh, int kw, int oh,
                     int ow, blo_tensor *x) {
    unfold_job j = {x->dtype, unfold_of(x, p, kh, kw, oh, ow), cols->data, x->data};
    for_planes(j.u.n * j.u.c, blo__numel(cols->ndim, cols->shape), col2im_job, &j);
}

/* Element i of an f32 or f64 array, through double. */
static inline double ld(const void *p, int64_t i, bool f32) {
    return f32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}
static inline void st(void *p, int64_t i, double v, bool f32) {
    if (f32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

/* ---- Depthwise convolution --------------------------------------------------------------------
 * Row helpers: the stride-1 loops have restrict pointers and unit steps, so they vectorise. */

/* d[k] += a · x[k·s], k < n (a rounded to the dtype). */
static inline void axpy_row(blo_dtype dt, char *dst, const char *src, int64_t n, int64_t s,
                            double a) {
    TYPED(dt, {
        T *restrict d = (T *)dst;
        const T *restrict x = (const T *)src;
        T at = (T)a;
        if (s == 1)
            for (int64_t k = 0; k < n; k++)
                d[k] += at * x[k];
        else
            for (int64_t k = 0; k < n; k++)
                d[k] += at * x[k * s];
    });
}

/* d[k·s] += a · x[k], k < n. */
static inline void axpy_scatter_row(blo_dtype dt, char *dst, const char *src, int64_t n, int64_t s,
                                    double a) {
    if (s == 1) {
        axpy_row(dt, dst, src, n, 1, a);
        return;
    }
    TYPED(dt, {
        T *restrict d = (T *)dst;
        const T *restrict x = (const T *)src;
        T at = (T)a;
        for (int64_t k = 0; k < n; k++)
            d[k * s] += at * x[k];
    });
}

/* acc[k] += g[k] · x[k·s], k < n (acc of the dtype). */
static inline void mul_acc_row(blo_dtype dt, char *acc, const char *gsrc, const char *xsrc,
                               int64_t n, int64_t s) {
    TYPED(dt, {
        T *restrict a = (T *)acc;
        const T *restrict g = (const T *)gsrc, *restrict x = (const T *)xsrc;
        if (s == 1)
            for (int64_t k = 0; k < n; k++)
                a[k] += g[k] * x[k];
        else
            for (int64_t k = 0; k < n; k++)
                a[k] += g[k] * x[k * s];
    });
}

/* Σ_k a[k] · b[k], k < n: eight partial sums in the dtype (a fixed-width loop the compiler
 * vectorises without reassociating anything itself), added in double. */
static inline double dot_row(blo_dtype dt, const char *asrc, const char *bsrc, int64_t n) {
    double total = 0;
    int64_t k = 0;
    TYPED(dt, {
        const T *restrict a = (const T *)asrc, *restrict b = (const T *)bsrc;
        T s8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (; k + 8 <= n; k += 8)
            for (int l = 0; l < 8; l++)
                s8[l] += a[k + l] * b[k + l];
        for (int l = 0; l < 8; l++)
            total += s8[l];
        for (; k < n; k++)
            total += (double)(a[k] * b[k]);
    });
    return total;
}

typedef struct {
    blo_dtype dt;
    size_t es;
    int64_t n, c, m, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;
    int wide; /* stride 1 with the planes fitting the buffers: the padded-plane path */
    const char *a, *b;
    char *out;
} dw_job;

/* The padded-plane path (stride 1). With the input plane copied into a zero-bordered plane
 * xp of Hp × Wp = (H + 2ph) × (W + 2pw), output (oy, ox) reads xp[oy + i·dh][ox + j·dw], so on
 * a "wide" output of OH rows of Wp (the last Wp − OW columns of each row unused) tap (i, j)
 * is one axpy over L = (OH − 1)·Wp + OW contiguous elements, shifted by i·dh·Wp + j·dw:
 * a few long vectorised loops per plane instead of one short loop per row and tap. The
 * adjoint in x runs the same axpys backwards from a wide copy of g whose unused columns are
 * zero; the adjoint in w is one dot product over L per tap. */
#define DW_MAX_TAPS 64

static int dw_wide_fits(const dw_job *j) {
    int64_t hp = j->h + 2 * j->ph, wp = j->w + 2 * j->pw;
    return j->sh == 1 && j->sw == 1 && hp * wp <= PLANE_BUF && j->oh * wp <= PLANE_BUF &&
           j->kh * j->kw <= DW_MAX_TAPS;
}

/* xp = plane x (H × W) inside a zero border; returns Wp. */
static int64_t dw_pad(const dw_job *j, const char *x, char *xp) {
    pad_plane(xp, x, j->h, j->w, j->ph, j->pw, j->es);
    return j->w + 2 * j->pw;
}

static void dw_forward_wide(const dw_job *j, const char *x, const char *w, char *y) {
    plane_buf xp, yw;
    char *xpp = j->dt == BLO_F32 ? (char *)xp.f : (char *)xp.d;
    char *ywp = j->dt == BLO_F32 ? (char *)yw.f : (char *)yw.d;
    int64_t wp = dw_pad(j, x, xpp), L = (j->oh - 1) * wp + j->ow, es = (int64_t)j->es;
    memset(ywp, 0, (size_t)L * j->es);
    for (int64_t i = 0; i < j->kh; i++)
        for (int64_t t = 0; t < j->kw; t++)
            axpy_row(j->dt, ywp, xpp + (i * j->dh * wp + t * j->dw) * es, L, 1,
                     ld(w, i * j->kw + t, j->dt == BLO_F32));
    copy_block(y, j->ow, ywp, wp, j->oh, j->ow, j->es);
}

/* Output plane q = (n, o) from input plane (n, o/M): every tap adds w[o][i][j] times the
 * input rows it reads onto the output rows whose input row is inside the image. */
static void dw_forward_plane(const void *env, int64_t q) {
    const dw_job *j = env;
    int64_t O = j->c * j->m, n = q / O, o = q % O, es = (int64_t)j->es;
    const char *x = j->a + (n * j->c + o / j->m) * j->h * j->w * es;
    char *y = j->out + q * j->oh * j->ow * es;
    if (j->wide) {
        dw_forward_wide(j, x, j->b + o * j->kh * j->kw * es, y);
        return;
    }
    memset(y, 0, (size_t)(j->oh * j->ow) * j->es);
    for (int64_t i = 0; i < j->kh; i++) {
        int64_t y0, y1;
        valid_range(i * j->dh - j->ph, j->sh, j->h, j->oh, &y0, &y1);
        for (int64_t t = 0; t < j->kw; t++) {
            int64_t xoff = t * j->dw - j->pw, x0, x1;
            valid_range(xoff, j->sw, j->w, j->ow, &x0, &x1);
            double wv = ld(j->b, o * j->kh * j->kw + i * j->kw + t, j->dt == BLO_F32);
            for (int64_t oy = y0; oy < y1; oy++) {
                int64_t iy = oy * j->sh - j->ph + i * j->dh;
                axpy_row(j->dt, y + (oy * j->ow + x0) * es,
                         x + (iy * j->w + x0 * j->sw + xoff) * es, x1 - x0, j->sw, wv);
            }
        }
    }
}

static void dw_adj_x_wide(const dw_job *j, int64_t n, int64_t c, char *gx) {
    plane_buf gp, gw;
    char *gpp = j->dt == BLO_F32 ? (char *)gp.f : (char *)gp.d;
    char *gwp = j->dt == BLO_F32 ? (char *)gw.f : (char *)gw.d;
    int64_t wp = j->w + 2 * j->pw, hp = j->h + 2 * j->ph, L = (j->oh - 1) * wp + j->ow;
    int64_t O = j->c * j->m, es = (int64_t)j->es;
    memset(gpp, 0, (size_t)(hp * wp) * j->es);
    memset(gwp, 0, (size_t)(j->oh * wp) * j->es);
    for (int64_t o = c * j->m; o < (c + 1) * j->m; o++) {
        copy_block(gwp, wp, j->a + (n * O + o) * j->oh * j->ow * es, j->ow, j->oh, j->ow, j->es);
        for (int64_t i = 0; i < j->kh; i++)
            for (int64_t t = 0; t < j->kw; t++)
                axpy_row(j->dt, gpp + (i * j->dh * wp + t * j->dw) * es, gwp, L, 1,
                         ld(j->b, o * j->kh * j->kw + i * j->kw + t, j->dt == BLO_F32));
    }
    copy_block(gx, j->w, gpp + (j->ph * wp + j->pw) * es, wp, j->h, j->w, j->es);
}

/* Input plane q = (n, c) of the adjoint in x: the products of its M output planes' g and w,
 * added back onto the pixels the forward read them from. */
static void dw_adj_x_plane(const void *env, int64_t q) {
    const dw_job *j = env;
    int64_t n = q / j->c, c = q % j->c, O = j->c * j->m, es = (int64_t)j->es;
    char *gx = j->out + q * j->h * j->w * es;
    if (j->wide) {
        dw_adj_x_wide(j, n, c, gx);
        return;
    }
    memset(gx, 0, (size_t)(j->h * j->w) * j->es);
    for (int64_t o = c * j->m; o < (c + 1) * j->m; o++) {
        const char *g = j->a + (n * O + o) * j->oh * j->ow * es;
        for (int64_t i = 0; i < j->kh; i++) {
            int64_t y0, y1;
            valid_range(i * j->dh - j->ph, j->sh, j->h, j->oh, &y0, &y1);
            for (int64_t t = 0; t < j->kw; t++) {
                int64_t xoff = t * j->dw - j->pw, x0, x1;
                valid_range(xoff, j->sw, j->w, j->ow, &x0, &x1);
                double wv = ld(j->b, o * j->kh * j->kw + i * j->kw + t, j->dt == BLO_F32);
                for (int64_t oy = y0; oy < y1; oy++) {
                    int64_t iy = oy * j->sh - j->ph + i * j->dh;
                    axpy_scatter_row(j->dt, gx + (iy * j->w + x0 * j->sw + xoff) * es,
                                     g + (oy * j->ow + x0) * es, x1 - x0, j->sw, wv);
                }
            }
        }
    }
}

static void dw_adj_w_wide(const dw_job *j, int64_t o) {
    plane_buf xp, gw;
    char *xpp = j->dt == BLO_F32 ? (char *)xp.f : (char *)xp.d;
    char *gwp = j->dt == BLO_F32 ? (char *)gw.f : (char *)gw.d;
    int64_t wp = j->w + 2 * j->pw, L = (j->oh - 1) * wp + j->ow;
    int64_t O = j->c * j->m, es = (int64_t)j->es, taps = j->kh * j->kw;
    double total[DW_MAX_TAPS];
    for (int64_t k = 0; k < taps; k++)
        total[k] = 0;
    memset(gwp, 0, (size_t)(j->oh * wp) * j->es);
    for (int64_t n = 0; n < j->n; n++) {
        dw_pad(j, j->a + (n * j->c + o / j->m) * j->h * j->w * es, xpp);
        copy_block(gwp, wp, j->b + (n * O + o) * j->oh * j->ow * es, j->ow, j->oh, j->ow, j->es);
        for (int64_t i = 0; i < j->kh; i++)
            for (int64_t t = 0; t < j->kw; t++)
                total[i * j->kw + t] +=
                    dot_row(j->dt, gwp, xpp + (i * j->dh * wp + t * j->dw) * es, L);
    }
    for (int64_t k = 0; k < taps; k++)
        st(j->out, o * taps + k, total[k], j->dt == BLO_F32);
}

/* Columns summed at a time in the adjoint in w (a stack accumulator). */
#define DW_CHUNK 256

/* Output channel o of the adjoint in w: per tap, Σ over images, rows and columns of
 * g[n][o][oy][ox] · x[n][o/M][iy][ix], accumulated column-wise in the dtype (vectorisable)
 * and the columns summed in double. */
static void dw_adj_w_channel(const void *env, int64_t o) {
    const dw_job *j = env;
    if (j->wide) {
        dw_adj_w_wide(j, o);
        return;
    }
    int64_t O = j->c * j->m, es = (int64_t)j->es;
    union {
        float f[DW_CHUNK];
        double d[DW_CHUNK];
    } acc;
    bool f32 = j->dt == BLO_F32;
    char *ap = f32 ? (char *)acc.f : (char *)acc.d;
    for (int64_t i = 0; i < j->kh; i++) {
        int64_t y0, y1;
        valid_range(i * j->dh - j->ph, j->sh, j->h, j->oh, &y0, &y1);
        for (int64_t t = 0; t < j->kw; t++) {
            int64_t xoff = t * j->dw - j->pw, x0, x1;
            valid_range(xoff, j->sw, j->w, j->ow, &x0, &x1);
            double total = 0;
            for (int64_t b0 = x0; b0 < x1; b0 += DW_CHUNK) {
                int64_t len = x1 - b0 < DW_CHUNK ? x1 - b0 : DW_CHUNK;
                memset(ap, 0, (size_t)len * j->es);
                for (int64_t n = 0; n < j->n; n++) {
                    const char *g = j->b + (n * O + o) * j->oh * j->ow * es;
                    const char *x = j->a + (n * j->c + o / j->m) * j->h * j->w * es;
                    for (int64_t oy = y0; oy < y1; oy++) {
                        int64_t iy = oy * j->sh - j->ph + i * j->dh;
                        mul_acc_row(j->dt, ap, g + (oy * j->ow + b0) * es,
                                    x + (iy * j->w + b0 * j->sw + xoff) * es, len, j->sw);
                    }
                }
                for (int64_t k = 0; k < len; k++)
                    total += f32 ? (double)acc.f[k] : acc.d[k];
            }
            st(j->out, o * j->kh * j->kw + i * j->kw + t, total, f32);
        }
    }
}

void blo__cpu_dwconv(blo_dwconv_kind k, const blo_tensor *a, const blo_tensor *b,
                     const blo_conv2d_params *p, blo_tensor *out) {
    /* x, w and g by role; the sizes come from them. */
    const blo_tensor *x = k == BLO_DW_ADJ_X ? out : a;
    const blo_tensor *w = k == BLO_DW_ADJ_W ? out : b;
    const blo_tensor *g = k == BLO_DW_FORWARD ? out : k == BLO_DW_ADJ_X ? a : b;
    dw_job j = {.dt = a->dtype,
                .es = blo_dtype_size(a->dtype),
                .n = x->shape[0],
                .c = x->shape[1],
                .m = w->shape[0] / x->shape[1],
                .h = x->shape[2],
                .w = x->shape[3],
                .oh = g->shape[2],
                .ow = g->shape[3],
                .kh = w->shape[2],
                .kw = w->shape[3],
                .sh = p->stride_h,
                .sw = p->stride_w,
                .ph = p->pad_h,
                .pw = p->pad_w,
                .dh = p->dil_h,
                .dw = p->dil_w,
                .a = a->data,
                .b = b->data,
                .out = out->data};
    j.wide = dw_wide_fits(&j);
    int64_t O = j.c * j.m, work = j.n * O * j.oh * j.ow * j.kh * j.kw;
    if (k == BLO_DW_FORWARD)
        for_planes(j.n * O, work, dw_forward_plane, &j);
    else if (k == BLO_DW_ADJ_X)
        for_planes(j.n * j.c, work, dw_adj_x_plane, &j);
    else
        for_planes(O, work, dw_adj_w_channel, &j);
}

/* ---- Pooling ------------------------------------------------------------------------------------
 * Windows are small, so these kernels read and write through double; the per-element dtype
 * test is a well-predicted branch, and f32 sums gain double accumulation. */

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

/* Inlined with f32 a constant in each of the two wrappers below, so the dtype tests of ld
 * and st fold away. */
static FORCE_INLINE void max_pool_plane_t(const pool_job *j, int64_t q, bool f32) {
    const pool_geom *g = &j->g;
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

static void max_pool_plane(const void *env, int64_t q) {
    const pool_job *j = env;
    if (j->f32)
        max_pool_plane_t(j, q, true);
    else
        max_pool_plane_t(j, q, false);
}

void blo__cpu_max_pool2d(const blo_tensor *x, const blo_pool2d_params *p, blo_tensor *out,
                         blo_tensor *argmax) {
    pool_job j = {pool_of(x, argmax->shape[2], argmax->shape[3], p),
                  x->dtype == BLO_F32,
                  blo_dtype_size(x->dtype),
                  x->data,
                  out ? out->data : NULL,
                  argmax->data};
    for_planes(j.g.planes, j.g.planes * j.g.oh * j.g.ow * j.g.kh * j.g.kw, max_pool_plane, &j);
}

static FORCE_INLINE void avg_pool_plane_t(const pool_job *j, int64_t q, bool f32) {
    const pool_geom *g = &j->g;
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

static void avg_pool_plane(const void *env, int64_t q) {
    const pool_job *j = env;
    if (j->f32)
        avg_pool_plane_t(j, q, true);
    else
        avg_pool_plane_t(j, q, false);
}

void blo__cpu_avg_pool2d(const blo_tensor *x, const blo_pool2d_params *p, blo_tensor *out) {
    pool_job j = {pool_of(x, out->shape[2], out->shape[3], p),
                  x->dtype == BLO_F32,
                  blo_dtype_size(x->dtype),
                  x->data,
                  out->data,
                  NULL};
    for_planes(j.g.planes, j.g.planes * j.g.oh * j.g.ow * j.g.kh * j.g.kw, avg_pool_plane, &j);
}

static FORCE_INLINE void avg_pool_adjoint_plane_t(const pool_job *j, int64_t q, bool f32) {
    const pool_geom *g = &j->g;
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

static void avg_pool_adjoint_plane(const void *env, int64_t q) {
    const pool_job *j = env;
    if (j->f32)
        avg_pool_adjoint_plane_t(j, q, true);
    else
        avg_pool_adjoint_plane_t(j, q, false);
}

void blo__cpu_avg_pool2d_adjoint(const blo_tensor *gout, const blo_pool2d_params *p,
                                 blo_tensor *gx) {
    pool_job j = {pool_of(gx, gout->shape[2], gout->shape[3], p),
                  gx->dtype == BLO_F32,
                  blo_dtype_size(gx->dtype),
                  gout->data,
                  gx->data,
                  NULL};
    for_planes(j.g.planes, j.g.planes * j.g.oh * j.g.ow * j.g.kh * j.g.kw, avg_pool_adjoint_plane,
               &j);
}
