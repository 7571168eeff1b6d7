/* cpu.c — the CPU backend: elementwise maps, reductions, copies and gemm.
 *
 * Every strided kernel walks its output row by row: the operands' views are coalesced into
 * as few axes as their strides allow, the last axis is the row, and rows are spread over
 * OpenMP threads with a static schedule, so a given thread count always splits the work the
 * same way and results repeat bit for bit. Reductions accumulate in double.
 */
#include "cpu.h"

#include <math.h>
#include <string.h>

#ifdef BLO_HAVE_CBLAS
#include <cblas.h>
#endif

/* Work below this many elements stays on one thread. */
#define PAR_MIN 32768

/* ---- Iteration over up to three operands with a common shape ------------------------------ */

/* Merges adjacent axes that are contiguous with each other in every operand and drops size-1
 * axes. st[k] are operand k's strides. Returns the new ndim (>= 1). */
int blo__coalesce(int nd, int64_t *shape, int nops, int64_t (*st)[BLO_MAX_DIMS]) {
    int64_t sh[BLO_MAX_DIMS], s2[3][BLO_MAX_DIMS];
    int m = 0;
    for (int i = 0; i < nd; i++) {
        if (shape[i] == 1) continue;
        if (m > 0) {
            bool merge = true;
            for (int k = 0; k < nops; k++)
                if (s2[k][m - 1] != st[k][i] * shape[i]) merge = false;
            if (merge) {
                sh[m - 1] *= shape[i];
                for (int k = 0; k < nops; k++) s2[k][m - 1] = st[k][i];
                continue;
            }
        }
        sh[m] = shape[i];
        for (int k = 0; k < nops; k++) s2[k][m] = st[k][i];
        m++;
    }
    if (m == 0) {
        sh[0] = 1;
        for (int k = 0; k < nops; k++) s2[k][0] = 1;
        m = 1;
    }
    for (int i = 0; i < m; i++) {
        shape[i] = sh[i];
        for (int k = 0; k < nops; k++) st[k][i] = s2[k][i];
    }
    return m;
}

/* Offsets of row r (rows = all axes but the last) for each operand. */
static void row_offsets(int nd, const int64_t *shape, int nops, int64_t (*st)[BLO_MAX_DIMS],
                        int64_t r, int64_t *off) {
    for (int k = 0; k < nops; k++) off[k] = 0;
    for (int i = nd - 2; i >= 0; i--) {
        int64_t idx = r % shape[i];
        r /= shape[i];
        for (int k = 0; k < nops; k++) off[k] += idx * st[k][i];
    }
}

typedef void (*row_fn)(const void *env, int64_t n, char **p, const int64_t *s);

/* Calls fn on every row of the common shape. ptrs/sizes: operand k's base pointer and element
 * size. Rows are split across threads; a single long row is split into pieces. */
void blo__for_rows(int nd, int64_t *shape, int nops, int64_t (*st)[BLO_MAX_DIMS],
                   void *const *ptrs, const size_t *esize, row_fn fn, const void *env) {
    nd = blo__coalesce(nd, shape, nops, st);
    int64_t len = shape[nd - 1];
    int64_t rows = blo__numel(nd - 1, shape);
    int64_t total = rows * len;
    int64_t last_st[3];
    for (int k = 0; k < nops; k++) last_st[k] = st[k][nd - 1];
    if (rows == 1) {
        /* One row: cut it into equal pieces, one per thread. */
        int64_t pieces = total >= PAR_MIN ? blo_num_threads() : 1;
        if (pieces < 1) pieces = 1;
        int64_t step = (len + pieces - 1) / pieces;
        if (pieces == 1) { /* even an if(0) parallel region costs a libgomp team: skip it */
            char *p[3];
            for (int k = 0; k < nops; k++) p[k] = (char *)ptrs[k];
            fn(env, len, p, last_st);
            return;
        }
#pragma omp parallel for schedule(static)
        for (int64_t q = 0; q < pieces; q++) {
            int64_t a = q * step, b = a + step < len ? a + step : len;
            if (a >= b) continue;
            char *p[3];
            for (int k = 0; k < nops; k++) p[k] = (char *)ptrs[k] + a * last_st[k] * (int64_t)esize[k];
            fn(env, b - a, p, last_st);
        }
        return;
    }
    if (total < PAR_MIN || blo_num_threads() <= 1) { /* serial without entering OpenMP */
        /* The row index as an odometer over axes 0 .. nd-2, the offsets stepped with it (no
         * divisions per row: rows are often short, [B, N, 40] and the like). */
        int64_t idx[BLO_MAX_DIMS] = {0}, off[3] = {0, 0, 0};
        for (int64_t r = 0; r < rows; r++) {
            char *p[3];
            for (int k = 0; k < nops; k++) p[k] = (char *)ptrs[k] + off[k] * (int64_t)esize[k];
            fn(env, len, p, last_st);
            for (int d = nd - 2; d >= 0; d--) {
                for (int k = 0; k < nops; k++) off[k] += st[k][d];
                if (++idx[d] < shape[d]) break;
                for (int k = 0; k < nops; k++) off[k] -= idx[d] * st[k][d];
                idx[d] = 0;
            }
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t off[3];
        row_offsets(nd, shape, nops, st, r, off);
        char *p[3];
        for (int k = 0; k < nops; k++) p[k] = (char *)ptrs[k] + off[k] * (int64_t)esize[k];
        fn(env, len, p, last_st);
    }
}

/* ---- copy / fill ------------------------------------------------------------------------------ */

static double load(blo_dtype dt, const char *p) {
    switch (dt) {
    case BLO_F32: return *(const float *)p;
    case BLO_F64: return *(const double *)p;
    case BLO_I64: return (double)*(const int64_t *)p;
    }
    return 0;
}

static void store(blo_dtype dt, char *p, double v) {
    switch (dt) {
    case BLO_F32: *(float *)p = (float)v; break;
    case BLO_F64: *(double *)p = v; break;
    case BLO_I64: *(int64_t *)p = (int64_t)v; break;
    }
}

typedef struct {
    blo_dtype src, dst;
} copy_env;

static void copy_row(const void *env, int64_t n, char **p, const int64_t *s) {
    const copy_env *e = env;
    size_t es = blo_dtype_size(e->src), ed = blo_dtype_size(e->dst);
    if (e->src == e->dst && s[0] == 1 && s[1] == 1) {
        memcpy(p[1], p[0], (size_t)n * es);
        return;
    }
    if (e->src == BLO_F32 && e->dst == BLO_F32) {
        const float *x = (const float *)p[0];
        float *y = (float *)p[1];
        for (int64_t i = 0; i < n; i++) y[i * s[1]] = x[i * s[0]];
        return;
    }
    if (e->src == BLO_F64 && e->dst == BLO_F64) {
        const double *x = (const double *)p[0];
        double *y = (double *)p[1];
        for (int64_t i = 0; i < n; i++) y[i * s[1]] = x[i * s[0]];
        return;
    }
    if (e->src == BLO_I64 && e->dst == BLO_I64) { /* not through double: all 64 bits kept */
        const int64_t *x = (const int64_t *)p[0];
        int64_t *y = (int64_t *)p[1];
        for (int64_t i = 0; i < n; i++) y[i * s[1]] = x[i * s[0]];
        return;
    }
    for (int64_t i = 0; i < n; i++)
        store(e->dst, p[1] + i * s[1] * (int64_t)ed, load(e->src, p[0] + i * s[0] * (int64_t)es));
}

static void cpu_copy(const blo_tensor *src, blo_tensor *dst) {
    int64_t shape[BLO_MAX_DIMS], st[3][BLO_MAX_DIMS];
    for (int i = 0; i < dst->ndim; i++) {
        shape[i] = dst->shape[i];
        st[0][i] = src->stride[i];
        st[1][i] = dst->stride[i];
    }
    void *ptrs[2] = {src->data, dst->data};
    size_t es[2] = {blo_dtype_size(src->dtype), blo_dtype_size(dst->dtype)};
    copy_env e = {src->dtype, dst->dtype};
    blo__for_rows(dst->ndim, shape, 2, st, ptrs, es, copy_row, &e);
}

/* Host copies are copies between t and a contiguous header over the host buffer. */
static blo_tensor host_header(const blo_tensor *t, blo_dtype dt, const void *buf) {
    blo_tensor h = *t;
    h.dtype = dt;
    h.data = (void *)buf;
    h.node = NULL;
    blo__contig_strides(t->ndim, t->shape, h.stride);
    return h;
}

static void cpu_to_host(const blo_tensor *t, blo_dtype dt, void *dst) {
    blo_tensor h = host_header(t, dt, dst);
    cpu_copy(t, &h);
}

static void cpu_from_host(blo_tensor *t, blo_dtype dt, const void *src) {
    blo_tensor h = host_header(t, dt, src);
    cpu_copy(&h, t);
}

static void fill_row(const void *env, int64_t n, char **p, const int64_t *s) {
    const double *v = env;
    blo_dtype dt = (blo_dtype)(int)v[1];
    if (dt == BLO_F32) {
        float *y = (float *)p[0], x = (float)v[0];
        for (int64_t i = 0; i < n; i++) y[i * s[0]] = x;
    } else if (dt == BLO_F64) {
        double *y = (double *)p[0];
        for (int64_t i = 0; i < n; i++) y[i * s[0]] = v[0];
    } else {
        int64_t *y = (int64_t *)p[0], x = (int64_t)v[0];
        for (int64_t i = 0; i < n; i++) y[i * s[0]] = x;
    }
}

static void cpu_fill(blo_tensor *t, double v) {
    int64_t shape[BLO_MAX_DIMS], st[3][BLO_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) {
        shape[i] = t->shape[i];
        st[0][i] = t->stride[i];
    }
    void *ptrs[1] = {t->data};
    size_t es[1] = {blo_dtype_size(t->dtype)};
    double env[2] = {v, (double)t->dtype};
    blo__for_rows(t->ndim, shape, 1, st, ptrs, es, fill_row, env);
}

/* ---- Unary maps ---------------------------------------------------------------------------------- */

typedef struct {
    blo_unary_kind k;
    double p0, p1;
} unary_env;

/* The map itself, in double for f64 and in float for f32 (so f32 stays at float speed). */
#define UNARY_CASES(T, EXP, LOG, SQRT, FABS, TANH, LOG1P)                                    \
    switch (e->k) {                                                                          \
    case BLO_U_NEG: MAP(-v); break;                                                          \
    case BLO_U_EXP: MAP(EXP(v)); break;                                                      \
    case BLO_U_LOG: MAP(LOG(v)); break;                                                      \
    case BLO_U_SQRT: MAP(SQRT(v)); break;                                                    \
    case BLO_U_ABS: MAP(FABS(v)); break;                                                     \
    case BLO_U_TANH: MAP(TANH(v)); break;                                                    \
    case BLO_U_SIGMOID:                                                                      \
        MAP(v >= 0 ? (T)1 / ((T)1 + EXP(-v)) : EXP(v) / ((T)1 + EXP(v)));                     \
        break;                                                                               \
    case BLO_U_RELU: MAP(v > 0 ? v : (T)0); break;                                           \
    case BLO_U_SOFTPLUS: MAP((v > 0 ? v : (T)0) + LOG1P(EXP(-FABS(v)))); break;              \
    case BLO_U_SIGN: MAP((T)((v > 0) - (v < 0))); break;                                     \
    case BLO_U_STEP: MAP(v > 0 ? (T)1 : (T)0); break;                                        \
    case BLO_U_POW: MAP(pow_(v, (T)e->p0)); break;                                           \
    case BLO_U_LEAKY_RELU: MAP(v > 0 ? v : (T)e->p0 * v); break;                             \
    case BLO_U_LEAKY_STEP: MAP(v > 0 ? (T)1 : (T)e->p0); break;                              \
    case BLO_U_CLAMP: MAP(v < (T)e->p0 ? (T)e->p0 : (v > (T)e->p1 ? (T)e->p1 : v)); break;   \
    case BLO_U_CLAMP_MASK: MAP(v >= (T)e->p0 && v <= (T)e->p1 ? (T)1 : (T)0); break;         \
    case BLO_U_AFFINE: MAP((T)e->p0 * v + (T)e->p1); break;                                  \
    case BLO_U_FINITE: MAP(isfinite(v) ? v : (T)0); break;                                   \
    case BLO_U_COUNT: break;                                                                 \
    }

/* tanh in float, written without branches or calls so that the unary loop around it
 * vectorises (glibc's tanhf is a scalar call; in an MLP step it cost as much as a gemm).
 * With a = |x| and the sign put back at the end (tanh is odd):
 *   a < 0.625:  tanh a = a + a s P(s), s = a², P of degree 4 fitted (weighted least squares
 *               on the relative error of tanh) to (tanh a - a) / a³; fit error 4e-9 relative.
 *   a >= 0.625: tanh a = 1 - 2 / (e^{2a} + 1), which loses no bits there: 2 / (e^{2a} + 1)
 *               <= 0.45 while tanh a >= 0.55. e^u, u = 2a, is 2^k e^r with k = round(u / ln 2)
 *               (the 1.5·2^23 trick rounds to an integer), r = u - k ln 2 in [-0.35, 0.35]
 *               (ln 2 split in two so that k · LN2_HI is exact), e^r by its Taylor polynomial
 *               of degree 7 (remainder < 6e-9 relative), and 2^k built from its exponent bits.
 *               a is clamped to 9.5 first: above 9.01, 1 - tanh a is below half an ulp of 1,
 *               the formula gives exactly 1 there, and e^{2a} stays finite (2^k normal).
 * NaN: the clamp turns it into 9.5, but the final choice takes the polynomial branch, which
 * propagates it. ±inf gives ±1, -0 gives -0, and tiny or subnormal x give x (a s P(s)
 * underflows to 0). Against double tanh over every float: at most 1.34 ulp (at x just above
 * 0.625), 1.4e-7 relative; tests/test_backend.c checks <= 2 ulp on a sweep and prints it.
 * Both clone builds compute the same bits (no FMA contraction, see BLO_ROW_CLONES). */
static inline float tanh_f32(float x) {
    const float LOG2E = 1.44269502f, LN2_HI = 0.693359375f, LN2_LO = -0.000212194442f;
    const float ROUND = 12582912.0f; /* 1.5 · 2^23 */
    /* The two choices are made on the bits of a as integers (for a >= 0 their order is that
     * of the values, and a NaN's bits lie above +inf's): a float comparison feeding a choice
     * lets gcc turn it back into a branch, and a loop with branches is not vectorised. */
    uint32_t ab;
    float a = fabsf(x);
    memcpy(&ab, &a, sizeof ab);
    float s = a * a;
    float p = a + a * s *
                      (-0.333332807f +
                       s * (0.133314446f + s * (-0.0537398681f +
                                                s * (0.0206395928f + s * -0.00570556289f))));
    uint32_t cb = ab < 0x41180000u ? ab : 0x41180000u; /* min(a, 9.5); NaN, inf -> 9.5 */
    float c;
    memcpy(&c, &cb, sizeof c);
    float u = 2.0f * c;
    float k = (u * LOG2E + ROUND) - ROUND;
    float r = (u - k * LN2_HI) - k * LN2_LO;
    float er = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666679f +
               r * (0.00833333377f + r * (0.00138888892f + r * 0.000198412701f))))));
    uint32_t eb = (uint32_t)((int32_t)k + 127) << 23;
    float two_k;
    memcpy(&two_k, &eb, sizeof two_k);
    float t = 1.0f - 2.0f / (er * two_k + 1.0f);
    /* t for 0.625 <= a <= inf, p below and for NaN; then the sign of x. */
    uint32_t tb, pb, m = -(uint32_t)(ab >= 0x3f200000u && ab <= 0x7f800000u);
    memcpy(&tb, &t, sizeof tb);
    memcpy(&pb, &p, sizeof pb);
    uint32_t yb = (tb & m) | (pb & ~m), xb;
    memcpy(&xb, &x, sizeof xb);
    yb |= xb & 0x80000000u;
    float y;
    memcpy(&y, &yb, sizeof y);
    return y;
}

static inline float powf_(float v, float p) {
    return p == 2.0f ? v * v : (p == 0.5f ? sqrtf(v) : (p == -1.0f ? 1.0f / v : powf(v, p)));
}
static inline double pow_d(double v, double p) {
    return p == 2.0 ? v * v : (p == 0.5 ? sqrt(v) : (p == -1.0 ? 1.0 / v : pow(v, p)));
}

BLO_ROW_CLONES static void unary_row_f32(const void *env, int64_t n, char **pp, const int64_t *s) {
    const unary_env *e = env;
    const float *x = (const float *)pp[0];
    float *y = (float *)pp[1];
    int64_t sx = s[0], sy = s[1];
#define pow_ powf_
    if (sx == 1 && sy == 1) {
#define MAP(expr)                                                                            \
    for (int64_t i = 0; i < n; i++) {                                                        \
        float v = x[i];                                                                      \
        y[i] = (expr);                                                                       \
    }
        UNARY_CASES(float, expf, logf, sqrtf, fabsf, tanh_f32, log1pf)
#undef MAP
    } else {
#define MAP(expr)                                                                            \
    for (int64_t i = 0; i < n; i++) {                                                        \
        float v = x[i * sx];                                                                 \
        y[i * sy] = (expr);                                                                  \
    }
        UNARY_CASES(float, expf, logf, sqrtf, fabsf, tanh_f32, log1pf)
#undef MAP
    }
#undef pow_
}

BLO_ROW_CLONES static void unary_row_f64(const void *env, int64_t n, char **pp, const int64_t *s) {
    const unary_env *e = env;
    const double *x = (const double *)pp[0];
    double *y = (double *)pp[1];
    int64_t sx = s[0], sy = s[1];
#define pow_ pow_d
    if (sx == 1 && sy == 1) {
#define MAP(expr)                                                                            \
    for (int64_t i = 0; i < n; i++) {                                                        \
        double v = x[i];                                                                     \
        y[i] = (expr);                                                                       \
    }
        UNARY_CASES(double, exp, log, sqrt, fabs, tanh, log1p)
#undef MAP
    } else {
#define MAP(expr)                                                                            \
    for (int64_t i = 0; i < n; i++) {                                                        \
        double v = x[i * sx];                                                                \
        y[i * sy] = (expr);                                                                  \
    }
        UNARY_CASES(double, exp, log, sqrt, fabs, tanh, log1p)
#undef MAP
    }
#undef pow_
}

static void cpu_unary(blo_unary_kind k, const double *p, const blo_tensor *x, blo_tensor *out) {
    int64_t shape[BLO_MAX_DIMS], st[3][BLO_MAX_DIMS];
    for (int i = 0; i < out->ndim; i++) {
        shape[i] = out->shape[i];
        st[0][i] = x->stride[i];
        st[1][i] = out->stride[i];
    }
    void *ptrs[2] = {x->data, out->data};
    size_t es[2] = {blo_dtype_size(x->dtype), blo_dtype_size(out->dtype)};
    unary_env e = {k, p ? p[0] : 0, p ? p[1] : 0};
    blo__for_rows(out->ndim, shape, 2, st, ptrs, es,
                  out->dtype == BLO_F32 ? unary_row_f32 : unary_row_f64, &e);
}

/* ---- Binary maps and where ------------------------------------------------------------------------ */

#define BIN_MAP(T, A, B, Y)                                                                  \
    switch (k) {                                                                             \
    case BLO_B_ADD:                                                                          \
        for (int64_t i = 0; i < n; i++) Y = A + B;                                           \
        break;                                                                               \
    case BLO_B_SUB:                                                                          \
        for (int64_t i = 0; i < n; i++) Y = A - B;                                           \
        break;                                                                               \
    case BLO_B_MUL:                                                                          \
        for (int64_t i = 0; i < n; i++) Y = A * B;                                           \
        break;                                                                               \
    case BLO_B_DIV:                                                                          \
        for (int64_t i = 0; i < n; i++) Y = A / B;                                           \
        break;                                                                               \
    case BLO_B_GT:                                                                           \
        for (int64_t i = 0; i < n; i++) Y = A > B ? (T)1 : (T)0;                             \
        break;                                                                               \
    case BLO_B_LT:                                                                           \
        for (int64_t i = 0; i < n; i++) Y = A < B ? (T)1 : (T)0;                             \
        break;                                                                               \
    case BLO_B_EQ:                                                                           \
        for (int64_t i = 0; i < n; i++) Y = A == B ? (T)1 : (T)0;                            \
        break;                                                                               \
    case BLO_B_COUNT: break;                                                                 \
    }

#define BIN_ROW(NAME, T)                                                                     \
    BLO_ROW_CLONES static void NAME(const void *env, int64_t n, char **pp,                  \
                                   const int64_t *s) {                                       \
        blo_binary_kind k = *(const blo_binary_kind *)env;                                   \
        const T *a = (const T *)pp[0], *b = (const T *)pp[1];                                \
        T *y = (T *)pp[2];                                                                   \
        int64_t sa = s[0], sb = s[1], sy = s[2];                                             \
        if (sa == 1 && sb == 1 && sy == 1) {                                                 \
            BIN_MAP(T, a[i], b[i], y[i])                                                     \
        } else if (sa == 1 && sb == 0 && sy == 1) {                                          \
            T bv = b[0];                                                                     \
            BIN_MAP(T, a[i], bv, y[i])                                                       \
        } else if (sa == 0 && sb == 1 && sy == 1) {                                          \
            T av = a[0];                                                                     \
            BIN_MAP(T, av, b[i], y[i])                                                       \
        } else {                                                                             \
            BIN_MAP(T, a[i * sa], b[i * sb], y[i * sy])                                      \
        }                                                                                    \
    }
BIN_ROW(binary_row_f32, float)
BIN_ROW(binary_row_f64, double)

static void cpu_binary(blo_binary_kind k, const blo_tensor *a, const blo_tensor *b,
                       blo_tensor *out) {
    int64_t shape[BLO_MAX_DIMS], st[3][BLO_MAX_DIMS];
    for (int i = 0; i < out->ndim; i++) {
        shape[i] = out->shape[i];
        st[0][i] = a->stride[i];
        st[1][i] = b->stride[i];
        st[2][i] = out->stride[i];
    }
    void *ptrs[3] = {a->data, b->data, out->data};
    size_t e = blo_dtype_size(out->dtype), es[3] = {e, e, e};
    blo__for_rows(out->ndim, shape, 3, st, ptrs, es,
                  out->dtype == BLO_F32 ? binary_row_f32 : binary_row_f64, &k);
}

/* where needs four operands; it runs as two passes over the common row iterator: out = b,
 * then out = a where mask != 0. */
#define WHERE_ROW(NAME, T)                                                                   \
    static void NAME(const void *env, int64_t n, char **pp, const int64_t *s) {              \
        (void)env;                                                                           \
        const T *m = (const T *)pp[0], *a = (const T *)pp[1];                                \
        T *y = (T *)pp[2];                                                                   \
        for (int64_t i = 0; i < n; i++)                                                      \
            if (m[i * s[0]] != 0) y[i * s[2]] = a[i * s[1]];                                 \
    }
WHERE_ROW(where_row_f32, float)
WHERE_ROW(where_row_f64, double)

static void cpu_where(const blo_tensor *mask, const blo_tensor *a, const blo_tensor *b,
                      blo_tensor *out) {
    cpu_copy(b, out);
    int64_t shape[BLO_MAX_DIMS], st[3][BLO_MAX_DIMS];
    for (int i = 0; i < out->ndim; i++) {
        shape[i] = out->shape[i];
        st[0][i] = mask->stride[i];
        st[1][i] = a->stride[i];
        st[2][i] = out->stride[i];
    }
    void *ptrs[3] = {mask->data, a->data, out->data};
    size_t e = blo_dtype_size(out->dtype), es[3] = {e, e, e};
    blo__for_rows(out->ndim, shape, 3, st, ptrs, es,
                  out->dtype == BLO_F32 ? where_row_f32 : where_row_f64, NULL);
}

/* ---- Reductions ---------------------------------------------------------------------------------- */

/* Reduces x into out (keepdim layout). The reduced axes are moved last; each output element
 * reduces a block walked with a coalesced iterator. Sums accumulate in double. When the
 * output is a single element the block is split across threads and the partial results are
 * combined in thread order (deterministic for a given thread count). */
typedef struct {
    blo_reduce_kind k;
    blo_dtype dt;
} red_env;

static double red_block(const red_env *e, const char *base, int nd, const int64_t *shape,
                        const int64_t *st, int64_t from, int64_t to) {
    /* Walk flat indices [from, to) of the block in row-major order. */
    double acc = e->k == BLO_R_SUM ? 0.0 : -INFINITY;
    int64_t idx[BLO_MAX_DIMS], off = 0, f = from;
    for (int i = nd - 1; i >= 0; i--) {
        idx[i] = f % shape[i];
        f /= shape[i];
        off += idx[i] * st[i];
    }
    size_t es = blo_dtype_size(e->dt);
    int64_t last = shape[nd - 1], sl = st[nd - 1];
    int64_t i = from;
    while (i < to) {
        int64_t run = last - idx[nd - 1];
        if (run > to - i) run = to - i;
        const char *p = base + off * (int64_t)es;
        if (e->dt == BLO_F32) {
            const float *x = (const float *)p;
            if (e->k == BLO_R_SUM)
                for (int64_t j = 0; j < run; j++) acc += x[j * sl];
            else
                for (int64_t j = 0; j < run; j++)
                    if (x[j * sl] > acc || isnan(x[j * sl])) acc = x[j * sl];
        } else {
            const double *x = (const double *)p;
            if (e->k == BLO_R_SUM)
                for (int64_t j = 0; j < run; j++) acc += x[j * sl];
            else
                for (int64_t j = 0; j < run; j++)
                    if (x[j * sl] > acc || isnan(x[j * sl])) acc = x[j * sl];
        }
        i += run;
        idx[nd - 1] += run;
        off += run * sl;
        for (int d = nd - 1; d > 0 && idx[d] == shape[d]; d--) {
            off -= idx[d] * st[d];
            idx[d] = 0;
            idx[d - 1]++;
            off += st[d - 1];
        }
    }
    return acc;
}

/* Output element o of the general path: the reduction of its block. */
static void red_one(const red_env *e, const blo_tensor *x, blo_tensor *out, int nk,
                    const int64_t *kshape, int64_t (*kst)[BLO_MAX_DIMS], int64_t o, int nr,
                    const int64_t *rshape, const int64_t *rst) {
    size_t es = blo_dtype_size(x->dtype);
    int64_t xo = 0, oo = 0, r = o;
    for (int i = nk - 1; i >= 0; i--) {
        int64_t idx = r % kshape[i];
        r /= kshape[i];
        xo += idx * kst[0][i];
        oo += idx * kst[1][i];
    }
    double v = red_block(e, (const char *)x->data + xo * (int64_t)es, nr, rshape, rst, 0,
                         blo__numel(nr, rshape));
    store(out->dtype, (char *)out->data + oo * (int64_t)es, v);
}

/* The row path's outer index o (kept axes ks[0 .. nkc-2], strides kc[0] in x and kc[1] in
 * out): out[oo + j] = Σ over the reduced index of x[xo + roff + j], j < m. */
BLO_ROW_CLONES static void sum_rows(const blo_tensor *x, blo_tensor *out, int nkc,
                                   const int64_t *ks, int64_t (*kc)[BLO_MAX_DIMS], int64_t o,
                                   int64_t m, int nr, const int64_t *rshape,
                                   const int64_t *rst) {
    enum { TILE = 512 };
    int64_t xo = 0, oo = 0, rem = o;
    for (int i = nkc - 2; i >= 0; i--) {
        int64_t idx = rem % ks[i];
        rem /= ks[i];
        xo += idx * kc[0][i];
        oo += idx * kc[1][i];
    }
    int64_t block = blo__numel(nr, rshape);
    double acc[TILE];
    for (int64_t j0 = 0; j0 < m; j0 += TILE) {
        int64_t w = m - j0 < TILE ? m - j0 : TILE;
        for (int64_t j = 0; j < w; j++) acc[j] = 0;
        int64_t idx[BLO_MAX_DIMS] = {0}, off = xo + j0;
        for (int64_t r = 0; r < block; r++) {
            if (x->dtype == BLO_F32) {
                const float *p = (const float *)x->data + off;
                for (int64_t j = 0; j < w; j++) acc[j] += p[j];
            } else {
                const double *p = (const double *)x->data + off;
                for (int64_t j = 0; j < w; j++) acc[j] += p[j];
            }
            idx[nr - 1]++;
            off += rst[nr - 1];
            for (int d = nr - 1; d > 0 && idx[d] == rshape[d]; d--) {
                off -= idx[d] * rst[d];
                idx[d] = 0;
                idx[d - 1]++;
                off += rst[d - 1];
            }
        }
        if (out->dtype == BLO_F32) {
            float *q = (float *)out->data + oo + j0;
            for (int64_t j = 0; j < w; j++) q[j] = (float)acc[j];
        } else {
            double *q = (double *)out->data + oo + j0;
            for (int64_t j = 0; j < w; j++) q[j] = acc[j];
        }
    }
}

static void cpu_reduce(blo_reduce_kind k, const blo_tensor *x, blo_tensor *out) {
    red_env e = {k, x->dtype};
    int nd = x->ndim;
    /* Split axes into kept (out size == x size) and reduced (out size 1, x size > 1). */
    int64_t kshape[BLO_MAX_DIMS] = {0}, kst[3][BLO_MAX_DIMS] = {{0}}, rshape[BLO_MAX_DIMS] = {0},
            rst[3][BLO_MAX_DIMS] = {{0}};
    int nk = 0, nr = 0;
    for (int i = 0; i < nd; i++) {
        if (out->shape[i] == x->shape[i] && x->shape[i] != 1) {
            kshape[nk] = x->shape[i];
            kst[0][nk] = x->stride[i];
            kst[1][nk] = out->stride[i];
            nk++;
        } else if (x->shape[i] != 1) {
            rshape[nr] = x->shape[i];
            rst[0][nr] = x->stride[i];
            nr++;
        }
    }
    int64_t nout = blo__numel(nk, kshape);
    if (nr == 0) { /* nothing to reduce: a copy */
        cpu_copy(x, out);
        return;
    }
    nr = blo__coalesce(nr, rshape, 1, rst);
    int64_t block = blo__numel(nr, rshape);

    /* Row path: the innermost kept axis is unit-stride in both x and out (e.g. a bias
     * gradient, [B, N, H] summed over N to [B, 1, H], or θ's broadcast summed over the tasks,
     * [B, H, H] to [1, H, H]). For each combination of the other kept axes, the rows of
     * length m that the reduced axes select are added into double accumulators, a tile of
     * columns at a time, in the order of the reduced index (as red_block would add them). */
    if (k == BLO_R_SUM && nk > 0) {
        int64_t kc[3][BLO_MAX_DIMS], ks[BLO_MAX_DIMS];
        for (int i = 0; i < nk; i++) {
            ks[i] = kshape[i];
            kc[0][i] = kst[0][i];
            kc[1][i] = kst[1][i];
        }
        int nkc = blo__coalesce(nk, ks, 2, kc);
        if (kc[0][nkc - 1] == 1 && kc[1][nkc - 1] == 1) {
            int64_t m = ks[nkc - 1], nouter = blo__numel(nkc - 1, ks);
            if (nouter > 1 && nouter * block * m >= PAR_MIN && blo_num_threads() > 1) {
#pragma omp parallel for schedule(static)
                for (int64_t o = 0; o < nouter; o++)
                    sum_rows(x, out, nkc, ks, kc, o, m, nr, rshape, rst[0]);
            } else {
                for (int64_t o = 0; o < nouter; o++)
                    sum_rows(x, out, nkc, ks, kc, o, m, nr, rshape, rst[0]);
            }
            return;
        }
    }
    if (nout == 1) {
        int nt = block >= PAR_MIN ? blo_num_threads() : 1;
        if (nt < 1) nt = 1;
        if (nt > 64) nt = 64;
        double part[64];
        int64_t step = (block + nt - 1) / nt;
        if (nt == 1) {
            part[0] = red_block(&e, x->data, nr, rshape, rst[0], 0, block);
        } else { /* (not an if clause: even an if(0) region costs a libgomp team) */
#pragma omp parallel for schedule(static)
            for (int t = 0; t < nt; t++) {
                int64_t a = t * step, b = a + step < block ? a + step : block;
                part[t] = a < b ? red_block(&e, x->data, nr, rshape, rst[0], a, b)
                                : (k == BLO_R_SUM ? 0.0 : -INFINITY);
            }
        }
        double acc = part[0];
        for (int t = 1; t < nt; t++) {
            if (k == BLO_R_SUM)
                acc += part[t];
            else if (part[t] > acc || isnan(part[t]))
                acc = part[t];
        }
        store(out->dtype, out->data, acc);
        return;
    }
    if (nout * block < PAR_MIN || blo_num_threads() <= 1) { /* serial: no OpenMP region */
        for (int64_t o = 0; o < nout; o++) red_one(&e, x, out, nk, kshape, kst, o, nr, rshape, rst[0]);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < nout; o++) red_one(&e, x, out, nk, kshape, kst, o, nr, rshape, rst[0]);
}

/* ---- gemm ------------------------------------------------------------------------------------------ */

void blo__gemm_ref(blo_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                   const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                   int64_t ldc) {
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t p = 0; p < k; p++) {
                int64_t ia = ta ? p * lda + i : i * lda + p;
                int64_t ib = tb ? j * ldb + p : p * ldb + j;
                double av = dt == BLO_F32 ? ((const float *)a)[ia] : ((const double *)a)[ia];
                double bv = dt == BLO_F32 ? ((const float *)b)[ib] : ((const double *)b)[ib];
                acc += av * bv;
            }
            if (dt == BLO_F32) {
                float *cp = (float *)c + i * ldc + j;
                *cp = (float)(alpha * acc + (beta == 0 ? 0.0 : beta * *cp));
            } else {
                double *cp = (double *)c + i * ldc + j;
                *cp = alpha * acc + (beta == 0 ? 0.0 : beta * *cp);
            }
        }
    }
}

#ifdef BLO_HAVE_CBLAS
/* A product with one output row or column (m == 1 or n == 1) is a matrix-vector product:
 * gemm would pack the whole matrix into panels first, which for a vector costs as much as
 * the product itself, while gemv streams the matrix once. With n == 1, c[:, 0] = α op(A) x
 * for x the column op(B)[:, 0]; with m == 1, c[0, :] = α op(B)ᵀ x for x the row op(A)[0, :]
 * (plus β c in both). A strided vector is a stride (inc) to BLAS, so nothing is copied. */
static void cpu_gemv(blo_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                     const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                     int64_t ldc) {
    const void *mat, *x;
    int64_t rows, cols, ld, incx, len, incy;
    int trans;
    if (n == 1) { /* op(A) [m, k] times a column */
        mat = a, ld = lda, trans = ta;
        rows = ta ? k : m, cols = ta ? m : k;
        x = b, incx = tb ? 1 : ldb;
        len = m, incy = ldc;
    } else { /* a row times op(B) [k, n], i.e. op(B)ᵀ times a column */
        mat = b, ld = ldb, trans = !tb;
        rows = tb ? n : k, cols = tb ? k : n;
        x = a, incx = ta ? lda : 1;
        len = n, incy = 1;
    }
    /* β = 0 must ignore what c held (it may be uninitialised memory, even a NaN pattern). */
    if (beta == 0)
        for (int64_t i = 0; i < len; i++) {
            if (dt == BLO_F32)
                ((float *)c)[i * incy] = 0;
            else
                ((double *)c)[i * incy] = 0;
        }
    enum CBLAS_TRANSPOSE t = trans ? CblasTrans : CblasNoTrans;
    if (dt == BLO_F32)
        cblas_sgemv(CblasRowMajor, t, (int)rows, (int)cols, (float)alpha, mat, (int)ld, x,
                    (int)incx, (float)beta, c, (int)incy);
    else
        cblas_dgemv(CblasRowMajor, t, (int)rows, (int)cols, alpha, mat, (int)ld, x, (int)incx,
                    beta, c, (int)incy);
}
#endif

void blo__cpu_gemm(blo_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                   const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                   int64_t ldc) {
    if (m == 0 || n == 0) return;
#ifdef BLO_HAVE_CBLAS
    if (k == 0) {
        blo__gemm_ref(dt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    if (n == 1 || m == 1) {
        cpu_gemv(dt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    if (dt == BLO_F32)
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    (int)m, (int)n, (int)k, (float)alpha, a, (int)lda, b, (int)ldb, (float)beta, c,
                    (int)ldc);
    else
        cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
#else
    blo__gemm_ref(dt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

/* The table's gemm: element offsets into the tensors become pointers here. */
static void cpu_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                     const blo_tensor *a, int64_t a_off, int64_t lda, const blo_tensor *b,
                     int64_t b_off, int64_t ldb, double beta, blo_tensor *c, int64_t c_off,
                     int64_t ldc) {
    int64_t es = (int64_t)blo_dtype_size(a->dtype);
    blo__cpu_gemm(a->dtype, ta, tb, m, n, k, alpha, (const char *)a->data + a_off * es, lda,
                  (const char *)b->data + b_off * es, ldb, beta, (char *)c->data + c_off * es,
                  ldc);
}

static const blo_backend cpu_backend = {
    .name = "cpu",
    .alloc = blo__ctx_alloc,
    .to_host = cpu_to_host,
    .from_host = cpu_from_host,
    .copy = cpu_copy,
    .fill = cpu_fill,
    .unary = cpu_unary,
    .binary = cpu_binary,
    .where = cpu_where,
    .reduce = cpu_reduce,
    .gemm = cpu_gemm,
    .index_outside = blo__cpu_index_outside,
    .gather = blo__cpu_gather,
    .scatter_add = blo__cpu_scatter_add,
    .index_select = blo__cpu_index_select,
    .index_add = blo__cpu_index_add,
    .im2col = blo__cpu_im2col,
    .col2im = blo__cpu_col2im,
    .dwconv = blo__cpu_dwconv,
    .max_pool2d = blo__cpu_max_pool2d,
    .avg_pool2d = blo__cpu_avg_pool2d,
    .avg_pool2d_adjoint = blo__cpu_avg_pool2d_adjoint,
    .spmm = blo__cpu_spmm,
    .csr_transpose = blo__cpu_csr_transpose,
    .xent_forward = blo__cpu_xent_forward,
    .st_adj_forward = blo__cpu_st_adj_forward,
    .st_adj_grad = blo__cpu_st_adj_grad,
    .xent_backward = blo__cpu_xent_backward,
    .dot = blo__cpu_dot,
    .axpy = blo__cpu_axpy,
    .scale = blo__cpu_scale,
    .allreduce_sum = blo__cpu_allreduce_sum,
};

const blo_backend *blo_backend_cpu(void) {
    return &cpu_backend;
}
