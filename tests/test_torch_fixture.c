/* test_torch_fixture.c — blo's engine against values frozen from PyTorch.
 *
 * tests/fixtures/engine_fixture.txt is written by tests/fixtures/gen_engine_fixture.py (torch,
 * float64 arithmetic). It holds two small networks — an MLP (linear, tanh, relu) and a conv
 * net (conv2d, relu, max-pool, grouped strided conv2d, avg-pool, batch norm in training mode,
 * linear) — each with inputs, parameters, logits, mean cross-entropy loss, the gradient of the
 * loss with respect to every parameter, a direction v and the Hessian-vector product H v of the
 * loss with respect to all parameters. This test rebuilds both networks with blo ops and checks
 * logits, loss, every gradient and every block of H v:
 *
 *   float64: |got - want| <= 1e-9 |want| + 1e-12 S
 *   float32: |got - want| <= 1e-5 |want| + 1e-6 S   (1e-6 S is about 8 float32 ulps of S)
 *
 * where S is the largest magnitude in the same family of blocks of that network: all its
 * gradients, all its H v blocks, its logits, its loss. The absolute floor is for elements near
 * zero: an entry that is a sum of terms cancelling to ~0 carries the rounding error of the
 * terms (of size ~S), not of the sum. It matters in the conv net, where the second conv's bias
 * has gradient and H v exactly 0 in exact arithmetic (batch norm subtracts any per-channel
 * constant), so torch's values there are rounding noise of ~1e-16. The fixture's inputs are
 * float32-representable, so the float32 run starts from exactly torch's inputs and only its
 * own arithmetic differs.
 *
 * The MLP is also run through blo_cross_entropy_fast (the fused, first-order loss): the same
 * loss and gradients, and a Hessian-vector product through it must fail with
 * BLO_ERR_NOT_DIFFERENTIABLE.
 *
 * A missing or malformed fixture is a test failure with a message naming the file and line;
 * the parser is itself checked on a few malformed inputs.
 *
 * Fixture format, version 1 (text; '#' to the end of the line is a comment):
 *     blo-engine-fixture 1
 *     <name> <ndim> <d0> ... <d(ndim-1)>    then prod(d) values, row-major
 *     ...
 *     end <number of blocks>
 */
#include "testutil.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef BLO_SOURCE_DIR
#error "BLO_SOURCE_DIR must name the source tree (CMake defines it)"
#endif

#define FIXTURE_PATH BLO_SOURCE_DIR "/tests/fixtures/engine_fixture.txt"
#define FIXTURE_MAGIC "blo-engine-fixture"
#define FIXTURE_VERSION 1

/* ---- The fixture file ------------------------------------------------------------------------ */
typedef struct {
    char name[64];
    int ndim;
    int64_t shape[BLO_MAX_DIMS];
    int64_t numel;
    double *v;
} fx_block;

typedef struct {
    fx_block *b;
    int n, cap;
} fixture;

static void fx_free(fixture *fx) {
    for (int i = 0; i < fx->n; i++)
        free(fx->b[i].v);
    free(fx->b);
    memset(fx, 0, sizeof *fx);
}

/* A whitespace-separated token reader that counts lines and skips '#' comments. */
typedef struct {
    FILE *f;
    const char *path;
    int line;
    char tok[128];
    char *err;
    size_t errlen;
} fx_reader;

static int fx_fail(fx_reader *r, const char *fmt, const char *what) {
    char msg[256];
    snprintf(msg, sizeof msg, fmt, what);
    snprintf(r->err, r->errlen, "%s:%d: %s", r->path, r->line, msg);
    return -1;
}

/* Next token into r->tok: 1 if one was read, 0 at end of file, -1 on error. */
static int fx_next(fx_reader *r) {
    int c;
    for (;;) {
        c = fgetc(r->f);
        if (c == EOF) return ferror(r->f) ? fx_fail(r, "%s", "read error") : 0;
        if (c == '\n') {
            r->line++;
        } else if (c == '#') {
            while ((c = fgetc(r->f)) != EOF && c != '\n') {
            }
            if (c == '\n') r->line++;
        } else if (!isspace(c)) {
            break;
        }
    }
    size_t n = 0;
    while (c != EOF && !isspace(c)) {
        if (n + 1 >= sizeof r->tok) return fx_fail(r, "%s", "token too long");
        r->tok[n++] = (char)c;
        c = fgetc(r->f);
    }
    r->tok[n] = '\0';
    if (c != EOF) ungetc(c, r->f);
    return 1;
}

/* Next token as a whole number in [lo, hi]. */
static int fx_int(fx_reader *r, const char *what, long long lo, long long hi, long long *out) {
    int s = fx_next(r);
    if (s < 0) return s;
    if (s == 0) return fx_fail(r, "unexpected end of file: expected %s", what);
    char *end;
    errno = 0;
    long long v = strtoll(r->tok, &end, 10);
    if (*end || errno || v < lo || v > hi) return fx_fail(r, "bad %s", what);
    *out = v;
    return 0;
}

static const fx_block *fx_find(const fixture *fx, const char *name) {
    for (int i = 0; i < fx->n; i++)
        if (!strcmp(fx->b[i].name, name)) return &fx->b[i];
    return NULL;
}

/* Parses a whole fixture. Returns 0, or -1 with a message "path:line: ..." in err. */
static int fx_parse(FILE *f, const char *path, fixture *fx, char *err, size_t errlen) {
    fx_reader r = {f, path, 1, {0}, err, errlen};
    memset(fx, 0, sizeof *fx);
    int s = fx_next(&r);
    if (s <= 0 || strcmp(r.tok, FIXTURE_MAGIC)) {
        fx_fail(&r, "%s", "not a blo engine fixture (expected \"" FIXTURE_MAGIC " 1\")");
        return -1;
    }
    long long ver;
    if (fx_int(&r, "format version", 0, 1000000, &ver)) return -1;
    if (ver != FIXTURE_VERSION) {
        fx_fail(&r, "%s", "unsupported format version (this reader knows version 1)");
        return -1;
    }
    for (;;) {
        if ((s = fx_next(&r)) < 0) goto fail;
        if (s == 0) {
            fx_fail(&r, "%s", "truncated: end of file before the \"end\" line");
            goto fail;
        }
        if (!strcmp(r.tok, "end")) {
            long long count;
            if (fx_int(&r, "block count after \"end\"", 0, 1000000, &count)) goto fail;
            if (count != fx->n) {
                char what[64];
                snprintf(what, sizeof what, "%lld blocks announced, %d read", count, fx->n);
                fx_fail(&r, "%s", what);
                goto fail;
            }
            if ((s = fx_next(&r)) != 0) {
                if (s > 0) fx_fail(&r, "trailing text after the \"end\" line: '%s'", r.tok);
                goto fail;
            }
            return 0;
        }
        if (strlen(r.tok) >= sizeof fx->b[0].name) {
            fx_fail(&r, "block name too long: '%s'", r.tok);
            goto fail;
        }
        if (fx_find(fx, r.tok)) {
            fx_fail(&r, "duplicate block '%s'", r.tok);
            goto fail;
        }
        if (fx->n == fx->cap) {
            int cap = fx->cap ? 2 * fx->cap : 32;
            fx_block *nb = realloc(fx->b, sizeof *nb * (size_t)cap);
            if (!nb) {
                fx_fail(&r, "%s", "out of memory");
                goto fail;
            }
            fx->b = nb;
            fx->cap = cap;
        }
        fx_block *b = &fx->b[fx->n];
        memset(b, 0, sizeof *b);
        strcpy(b->name, r.tok);
        long long nd, d;
        if (fx_int(&r, "ndim", 0, BLO_MAX_DIMS, &nd)) goto fail;
        b->ndim = (int)nd;
        b->numel = 1;
        for (int i = 0; i < b->ndim; i++) {
            if (fx_int(&r, "dimension", 0, 1 << 24, &d)) goto fail;
            b->shape[i] = d;
            b->numel *= d;
            if (b->numel > (1 << 24)) {
                fx_fail(&r, "block '%s' is implausibly large", b->name);
                goto fail;
            }
        }
        b->v = malloc(sizeof(double) * (size_t)(b->numel ? b->numel : 1));
        if (!b->v) {
            fx_fail(&r, "%s", "out of memory");
            goto fail;
        }
        fx->n++; /* owned by fx from here on, so fx_free releases it */
        for (int64_t i = 0; i < b->numel; i++) {
            if ((s = fx_next(&r)) <= 0) {
                if (s == 0) fx_fail(&r, "truncated: block '%s' ends early", b->name);
                goto fail;
            }
            char *end;
            b->v[i] = strtod(r.tok, &end);
            if (*end || !isfinite(b->v[i])) {
                fx_fail(&r, "not a finite number: '%s'", r.tok);
                goto fail;
            }
        }
    }
fail:
    fx_free(fx);
    return -1;
}

static int fx_load(const char *path, fixture *fx, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen,
                 "%s: cannot open: %s (regenerate it with "
                 "/usr/bin/python3 tests/fixtures/gen_engine_fixture.py)",
                 path, strerror(errno));
        memset(fx, 0, sizeof *fx);
        return -1;
    }
    int s = fx_parse(f, path, fx, err, errlen);
    fclose(f);
    return s;
}

/* The parser on text given in memory (through a temporary file). */
static int fx_parse_text(const char *text, char *err, size_t errlen) {
    FILE *f = tmpfile();
    if (!f) {
        snprintf(err, errlen, "tmpfile failed");
        return -2;
    }
    fputs(text, f);
    rewind(f);
    fixture fx;
    int s = fx_parse(f, "<text>", &fx, err, errlen);
    fclose(f);
    fx_free(&fx);
    return s;
}

/* Malformed inputs must be rejected, each with a message. */
static void check_parser(void) {
    static const char *const bad[] = {
        "",
        "not-a-fixture 1\nend 0\n",
        "blo-engine-fixture 2\nend 0\n",
        "blo-engine-fixture 1\na 1 3\n1 2\n",            /* block ends early */
        "blo-engine-fixture 1\na 1 2\n1 2\n",            /* no end line */
        "blo-engine-fixture 1\na 1 2\n1 x\nend 1\n",     /* not a number */
        "blo-engine-fixture 1\na 1 2\n1 nan\nend 1\n",   /* not finite */
        "blo-engine-fixture 1\na 9 2\n1 2\nend 1\n",     /* ndim out of range */
        "blo-engine-fixture 1\na 1 -2\nend 1\n",         /* negative dimension */
        "blo-engine-fixture 1\na 0\n1\na 0\n2\nend 2\n", /* duplicate name */
        "blo-engine-fixture 1\na 0\n1\nend 2\n",         /* wrong block count */
        "blo-engine-fixture 1\na 0\n1\nend 1\nextra\n",  /* trailing text */
    };
    char err[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        int s = fx_parse_text(bad[i], err, sizeof err);
        TU_CHECK(s == -1 && err[0], "parser accepted malformed fixture #%zu", i);
    }
    const char *good = "# comment\nblo-engine-fixture 1\ns 0\n2.5\nm 2 2 1 # trailing\n"
                       "1e-3 -4\nend 2\n";
    int s = fx_parse_text(good, err, sizeof err);
    TU_CHECK(s == 0, "parser rejected a well-formed fixture: %s", err);
}

/* ---- Tensors from blocks -------------------------------------------------------------------- */
/* The block `name` as a tensor of dtype dt in ctx, or NULL after a failed check. */
static blo_tensor *fx_tensor(blo_ctx *ctx, const fixture *fx, const char *name, blo_dtype dt) {
    const fx_block *b = fx_find(fx, name);
    TU_CHECK(b != NULL, "%s: block '%s' is missing", FIXTURE_PATH, name);
    if (!b) return NULL;
    if (dt == BLO_I64) {
        int64_t *iv = malloc(sizeof(int64_t) * (size_t)(b->numel ? b->numel : 1));
        int ok = iv != NULL;
        for (int64_t i = 0; ok && i < b->numel; i++) {
            ok = b->v[i] == floor(b->v[i]) && fabs(b->v[i]) < 1e15;
            if (ok) iv[i] = (int64_t)b->v[i];
        }
        TU_CHECK(ok, "%s: block '%s' should hold whole numbers", FIXTURE_PATH, name);
        blo_tensor *t = ok ? blo_from_i64(ctx, b->ndim, b->shape, iv) : NULL;
        free(iv);
        return t;
    }
    return blo_from_f64(ctx, dt, b->ndim, b->shape, b->v);
}

/* The largest magnitude over all blocks whose name starts with prefix. */
static double fx_scale(const fixture *fx, const char *prefix) {
    double m = 0;
    size_t n = strlen(prefix);
    for (int i = 0; i < fx->n; i++)
        if (!strncmp(fx->b[i].name, prefix, n))
            for (int64_t j = 0; j < fx->b[i].numel; j++)
                m = fmax(m, fabs(fx->b[i].v[j]));
    return m;
}

/* got against block `name`: shape first, then values (see the tolerances at the top). */
static void fx_check(const fixture *fx, const blo_tensor *got, const char *name, double rtol,
                     double atol, const char *tag, double *worst) {
    char what[160];
    snprintf(what, sizeof what, "%s %s", tag, name);
    const fx_block *b = fx_find(fx, name);
    TU_CHECK(b != NULL, "%s: block '%s' is missing", FIXTURE_PATH, name);
    if (!b) return;
    if (!got) {
        TU_CHECK(0, "%s: no tensor to compare", what);
        return;
    }
    int same = blo_tensor_ndim(got) == b->ndim;
    for (int i = 0; same && i < b->ndim; i++)
        same = blo_tensor_dim(got, i) == b->shape[i];
    char d[64], want[96] = "[";
    for (int i = 0; i < b->ndim; i++) {
        size_t len = strlen(want);
        snprintf(want + len, sizeof want - len, "%s%lld", i ? ", " : "", (long long)b->shape[i]);
    }
    strncat(want, "]", sizeof want - strlen(want) - 1);
    TU_CHECK(same, "%s: shape %s, the fixture has %s", what, blo_tensor_describe(got, d, sizeof d),
             want);
    if (!same) return;
    tu_check_close_f64(got, b->v, rtol, atol, what);
    /* How much of the tolerance the worst element used (1 = at the limit). */
    for (int64_t i = 0; i < b->numel; i++) {
        double e = fabs(blo_tensor_get(got, i) - b->v[i]) / (atol + rtol * fabs(b->v[i]));
        if (e > *worst || isnan(e)) *worst = isnan(e) ? INFINITY : e;
    }
}

/* ---- The networks --------------------------------------------------------------------------- */
#define MAX_PARAMS 8

typedef blo_tensor *(*logits_fn)(blo_ctx *ctx, blo_tensor *x, blo_tensor *const *p);

typedef struct {
    const char *net; /* block name prefix */
    int np;
    const char *params[MAX_PARAMS];
    logits_fn logits;
} net_def;

/* tanh(x W1ᵀ + b1) -> relu(· W2ᵀ + b2) -> · W3ᵀ + b3 */
static blo_tensor *mlp_logits(blo_ctx *c, blo_tensor *x, blo_tensor *const *p) {
    blo_tensor *h1 = blo_tanh(c, blo_linear(c, x, p[0], p[1]));
    blo_tensor *h2 = blo_relu(c, blo_linear(c, h1, p[2], p[3]));
    return blo_linear(c, h2, p[4], p[5]);
}

/* conv 3x3 pad 1 -> relu -> max-pool 2 -> conv 3x3 stride 2 pad 1 groups 2 -> avg-pool 2
 * -> batch norm (training, affine, eps 1e-5) -> flatten -> linear. Written against the
 * declared API of the conv, pool and batch-norm ops. */
static blo_tensor *conv_logits(blo_ctx *c, blo_tensor *x, blo_tensor *const *p) {
    blo_conv2d_params c1 = blo_conv2d_default();
    c1.pad_h = c1.pad_w = 1;
    blo_conv2d_params c2 = blo_conv2d_default();
    c2.stride_h = c2.stride_w = 2;
    c2.pad_h = c2.pad_w = 1;
    c2.groups = 2;
    blo_pool2d_params pool = {2, 2, 0, 0, 0, 0, 1};
    blo_tensor *h = blo_relu(c, blo_conv2d(c, x, p[0], p[1], &c1));
    h = blo_max_pool2d(c, h, &pool);
    h = blo_avg_pool2d(c, blo_conv2d(c, h, p[2], p[3], &c2), &pool);
    h = blo_batch_norm(c, h, p[4], p[5], NULL, NULL, 1, 0.1, 1e-5);
    return blo_linear(c, blo_flatten(c, h), p[6], p[7]);
}

typedef blo_tensor *(*loss_fn)(blo_ctx *, blo_tensor *, blo_tensor *, blo_tensor *, blo_reduction);

/* Rebuilds `net` in dtype dt and checks logits, loss, gradients and H v against the fixture.
 * With the fused loss (fast != 0) it checks logits, loss and gradients, and that the HVP is
 * refused. */
static void check_net(const fixture *fx, const net_def *net, blo_dtype dt, int fast) {
    const double rtol = dt == BLO_F32 ? 1e-5 : 1e-9;
    const double floor_rel = dt == BLO_F32 ? 1e-6 : 1e-12;
    char tag[64], name[96];
    snprintf(tag, sizeof tag, "%s/%s%s", net->net, blo_dtype_name(dt), fast ? "/fast" : "");
    blo_ctx *ctx = blo_ctx_new(0);
    TU_CHECK(ctx != NULL, "%s: blo_ctx_new failed", tag);
    if (!ctx) return;

    snprintf(name, sizeof name, "%s.x", net->net);
    blo_tensor *x = fx_tensor(ctx, fx, name, dt);
    snprintf(name, sizeof name, "%s.labels", net->net);
    blo_tensor *labels = fx_tensor(ctx, fx, name, BLO_I64);
    blo_tensor *p[MAX_PARAMS], *v[MAX_PARAMS];
    int have = x && labels;
    for (int i = 0; i < net->np; i++) {
        snprintf(name, sizeof name, "%s.%s", net->net, net->params[i]);
        p[i] = fx_tensor(ctx, fx, name, dt);
        if (p[i]) blo_set_requires_grad(p[i], 1);
        snprintf(name, sizeof name, "%s.v.%s", net->net, net->params[i]);
        v[i] = fx_tensor(ctx, fx, name, dt);
        have = have && p[i] && v[i];
    }
    if (!have) {
        TU_CHECK(0, "%s: inputs not loaded%s%s", tag, blo_ctx_status(ctx) ? ": " : "",
                 blo_ctx_error(ctx));
        blo_ctx_free(ctx);
        return;
    }

    double worst = 0;
    loss_fn lf = fast ? blo_cross_entropy_fast : blo_cross_entropy;
    blo_tensor *logits = net->logits(ctx, x, p);
    blo_tensor *loss = lf(ctx, logits, labels, NULL, BLO_REDUCE_MEAN);
    if (!loss) {
        TU_CHECK(0, "%s: forward failed: %s: %s", tag, blo_status_name(blo_ctx_status(ctx)),
                 blo_ctx_error(ctx));
        blo_ctx_free(ctx);
        return;
    }
    snprintf(name, sizeof name, "%s.logits", net->net);
    fx_check(fx, logits, name, rtol, floor_rel * fx_scale(fx, name), tag, &worst);
    snprintf(name, sizeof name, "%s.loss", net->net);
    fx_check(fx, loss, name, rtol, floor_rel * fx_scale(fx, name), tag, &worst);

    blo_tensor *g[MAX_PARAMS];
    blo_status s = blo_grad(ctx, 1, &loss, NULL, net->np, p, 0, g);
    TU_CHECK(s == BLO_OK, "%s: blo_grad: %s: %s", tag, blo_status_name(s), blo_ctx_error(ctx));
    snprintf(name, sizeof name, "%s.grad.", net->net);
    double atol = floor_rel * fx_scale(fx, name);
    for (int i = 0; s == BLO_OK && i < net->np; i++) {
        snprintf(name, sizeof name, "%s.grad.%s", net->net, net->params[i]);
        fx_check(fx, g[i], name, rtol, atol, tag, &worst);
    }

    blo_tensor *hv[MAX_PARAMS];
    blo_ctx_clear_error(ctx);
    s = blo_hvp(ctx, loss, net->np, p, v, 0, hv);
    if (fast) {
        TU_CHECK(s == BLO_ERR_NOT_DIFFERENTIABLE,
                 "%s: HVP through the fused loss returned %s, expected BLO_ERR_NOT_DIFFERENTIABLE",
                 tag, blo_status_name(s));
        blo_ctx_clear_error(ctx);
    } else {
        TU_CHECK(s == BLO_OK, "%s: blo_hvp: %s: %s", tag, blo_status_name(s), blo_ctx_error(ctx));
        snprintf(name, sizeof name, "%s.hvp.", net->net);
        atol = floor_rel * fx_scale(fx, name);
        for (int i = 0; s == BLO_OK && i < net->np; i++) {
            snprintf(name, sizeof name, "%s.hvp.%s", net->net, net->params[i]);
            fx_check(fx, hv[i], name, rtol, atol, tag, &worst);
        }
    }
    tu_check_ok(ctx, tag);
    printf("%-14s worst element used %.3g of its tolerance (rtol %g, floor %g x family max)\n", tag,
           worst, rtol, floor_rel);
    blo_ctx_free(ctx);
}

static const net_def MLP = {"mlp", 6, {"W1", "b1", "W2", "b2", "W3", "b3"}, mlp_logits};
static const net_def CONV = {
    "conv", 8, {"w1", "b1", "w2", "b2", "gamma", "beta", "W3", "b3"}, conv_logits};

static void check_mlp(const fixture *fx) {
    check_net(fx, &MLP, BLO_F64, 0);
    check_net(fx, &MLP, BLO_F32, 0);
    check_net(fx, &MLP, BLO_F64, 1);
    check_net(fx, &MLP, BLO_F32, 1);
}

/* Kept apart from the MLP: it needs blo_conv2d, the pools and batch norm. */
static void check_conv(const fixture *fx) {
    check_net(fx, &CONV, BLO_F64, 0);
    check_net(fx, &CONV, BLO_F32, 0);
}

int main(void) {
    check_parser();
    fixture fx;
    char err[512];
    if (fx_load(FIXTURE_PATH, &fx, err, sizeof err)) {
        TU_CHECK(0, "%s", err);
        return tu_finish("torch_fixture");
    }
    check_mlp(&fx);
    check_conv(&fx);
    fx_free(&fx);
    return tu_finish("torch_fixture");
}
