/* test_graph.c — the graph loaders, the GCN against PyTorch, and LDS's hypergradient.
 *
 *   - blo_graph_load on tests/data/graph_tiny (sizes, labels, sorted edges, splits) and on
 *     malformed files in tests/data/bad: each error names the file and the line;
 *   - the GCN (logits, loss, dW1, dW2; on a dense weighted graph also dA) against
 *     tests/fixtures/gcn_fixture.txt (gen_gcn_fixture.py, torch float64): float64 to 1e-10
 *     relative, float32 to 1e-5;
 *   - LDS: the hypergradient of trhg with K = T (the registry's method through the solver,
 *     the samples drawn by the fused blo_st_gcn_adj) with respect to θ against central
 *     differences of the unrolled objective with the samples held fixed (st_base: A = M +
 *     S(θ) − S(θ₀) through the composition of ops, the function whose derivative the
 *     straight-through estimator is), float64, every pair of a 7-node graph;
 *   - the projection leaves θ in [0, 1], symmetric, with a zero diagonal; with a candidate
 *     set, θ's start and every projection are 0 off it and unchanged on it.
 */
#include "../src/internal.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TINY BLO_SOURCE_DIR "/tests/data/graph_tiny"
#define BAD BLO_SOURCE_DIR "/tests/data/bad/"

/* ---- loaders ------------------------------------------------------------------------------- */

static void test_load_tiny(void) {
    blo_graph_data g;
    char err[512];
    blo_status st = blo_graph_load(TINY, &g, err, sizeof err);
    TU_CHECK(st == BLO_OK, "graph_tiny: %s", err);
    if (st) return;
    TU_CHECK(g.n == 7 && g.d == 4 && g.classes == 3, "n %lld d %lld C %lld", (long long)g.n,
             (long long)g.d, (long long)g.classes);
    TU_CHECK(g.label[0] == 0 && g.label[4] == 2 && g.label[6] == -1, "labels");
    static const int64_t want[12] = {0, 1, 0, 2, 1, 2, 2, 3, 3, 4, 4, 5};
    TU_CHECK(g.n_edges == 6 && !memcmp(g.edges, want, sizeof want), "edges sorted as pairs i < j");
    TU_CHECK(g.split_n[0] == 3 && g.split_n[1] == 2 && g.split_n[2] == 1 && g.split[0][2] == 4,
             "splits");
    blo_graph_data_free(&g);
}

static void expect_err(blo_status st, const char *err, const char *a, const char *b) {
    TU_CHECK(st == BLO_ERR_FORMAT && strstr(err, a) && strstr(err, b),
             "status %d, message '%s', expected '%s' and '%s'", st, err, a, b);
}

static void parse_file(const char *file, int edges, const char *a, const char *b) {
    unsigned char *buf;
    size_t len;
    char err[512], path[512];
    snprintf(path, sizeof path, BAD "%s", file);
    blo_status st = blo_read_file(path, &buf, &len, err, sizeof err);
    TU_CHECK(st == BLO_OK, "%s", err);
    if (st) return;
    int64_t *ids = NULL, *lines = NULL, n = 0;
    if (edges)
        st = blo_edges_parse((const char *)buf, len, file, 5, &ids, &n, err, sizeof err);
    else
        st = blo_node_index_parse((const char *)buf, len, file, 5, &ids, &lines, &n, err, sizeof err);
    expect_err(st, err, a, b);
    TU_CHECK(!ids, "no ids on failure");
    blo_free(buf);
}

static void test_bad_files(void) {
    parse_file("graph_range_edges.txt", 1, "graph_range_edges.txt: line 2", "node id 7 out of range");
    parse_file("graph_selfloop_edges.txt", 1, "line 2", "self-loop 2 2");
    parse_file("graph_dup_edges.txt", 1, "line 3", "repeats line 2");
    parse_file("graph_token_edges.txt", 1, "line 2, column 3", "two node ids");
    parse_file("graph_range_index.txt", 0, "line 2", "node id 7 out of range");
    parse_file("graph_dup_index.txt", 0, "line 3", "node 1 repeats line 1");
    blo_graph_data g;
    char err[512];
    expect_err(blo_graph_load(BAD "graph_twosplits", &g, err, sizeof err), err,
               "graph_twosplits/test.txt: line 2", "node 1 is already in train.txt (line 2)");
    expect_err(blo_graph_load(BAD "graph_label", &g, err, sizeof err), err,
               "graph_label/features.libsvm: node 2", "label 2.5 is out of range");
    TU_CHECK(blo_graph_load(BAD "no_such_folder", &g, err, sizeof err) == BLO_ERR_IO,
             "a missing folder: %s", err);
}

/* ---- the GCN against torch --------------------------------------------------------------------- */

typedef struct section {
    char name[32];
    int64_t n;
    double *v;
} section;
static section fx[16];
static int nfx;

static int fixture_load(void) {
    const char *path = BLO_SOURCE_DIR "/tests/fixtures/gcn_fixture.txt";
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    int ok = 0;
    for (;;) {
        if (fscanf(f, " %255s", line) != 1) break;
        if (line[0] == '#') {
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n') {
            }
            continue;
        }
        if (!strcmp(line, "blo-gcn-fixture")) {
            if (fscanf(f, " %255s", line) != 1) break;
            continue;
        }
        if (!strcmp(line, "end")) {
            ok = 1;
            break;
        }
        section *s = &fx[nfx];
        if (nfx == 16 || fscanf(f, " %lld", (long long *)&s->n) != 1 || s->n < 1) break;
        snprintf(s->name, sizeof s->name, "%.31s", line);
        s->v = malloc(sizeof(double) * (size_t)s->n);
        int64_t k = 0;
        while (k < s->n && fscanf(f, " %lf", &s->v[k]) == 1) k++;
        nfx++;
        if (k != s->n) break;
    }
    fclose(f);
    TU_CHECK(ok, "%s: malformed (section %d)", path, nfx);
    return ok;
}

static const section *fx_get(const char *name) {
    for (int i = 0; i < nfx; i++)
        if (!strcmp(fx[i].name, name)) return &fx[i];
    TU_CHECK(0, "gcn_fixture.txt: no section %s", name);
    return NULL;
}

static blo_tensor *from_fx(blo_ctx *c, const char *name, blo_dtype dt, int64_t r, int64_t k) {
    const section *s = fx_get(name);
    int64_t shape[2] = {r, k};
    if (!s || s->n != r * k) return NULL;
    blo_tensor *t = blo_tensor_new(c, dt, 2, shape);
    blo_tensor_copy_from_host(t, BLO_F64, s->v);
    blo_set_requires_grad(t, 1);
    return t;
}

static void gcn_case(blo_dtype dt, double rtol) {
    blo_graph_data g;
    char err[512];
    if (blo_graph_load(TINY, &g, err, sizeof err)) return;
    blo_ctx *c = blo_ctx_new(0);
    blo_graph_tensors gt;
    TU_CHECK(blo_graph_tensors_make(c, &g, NULL, 1, dt, &gt, err, sizeof err) == BLO_OK, "%s", err);
    blo_tensor *W1 = from_fx(c, "W1", dt, g.d, 4), *W2 = from_fx(c, "W2", dt, 4, g.classes);
    blo_tensor *Aw = from_fx(c, "Aw", dt, g.n, g.n);
    const char *suffix[2] = {"", "_w"};
    for (int k = 0; k < 2 && W1 && W2 && Aw; k++) {
        blo_gcn_adj a = {k ? NULL : gt.adj, k ? NULL : gt.adj_val, k ? Aw : NULL, NULL};
        blo_tensor *z = blo_gcn_logits(c, &a, gt.x, gt.xval, W1, W2, 0.5, 0, NULL);
        blo_tensor *loss = blo_gcn_loss(c, z, gt.idx[0], gt.lab[0], W1, 5e-4);
        blo_tensor *in[3] = {W1, W2, Aw}, *gr[3];
        TU_CHECK(loss && !blo_grad(c, 1, &loss, NULL, 2 + k, in, 0, gr), "gcn: %s", blo_ctx_error(c));
        if (!loss) break;
        char name[32];
        const char *what[4] = {"logits", "dW1", "dW2", "dA"};
        blo_tensor *got[4] = {z, gr[0], gr[1], k ? gr[2] : NULL};
        for (int i = 0; i < 3 + k; i++) {
            snprintf(name, sizeof name, "%s%s", what[i], suffix[k]);
            const section *s = fx_get(name);
            if (s) tu_check_close_f64(got[i], s->v, rtol, rtol * 1e-2, name);
        }
        snprintf(name, sizeof name, "loss%s", suffix[k]);
        const section *s = fx_get(name);
        TU_CHECK(s && tu_close(blo_tensor_item(loss), s->v[0], rtol, 0), "%s: %.12g vs %.12g",
                 name, blo_tensor_item(loss), s ? s->v[0] : NAN);
    }
    blo_ctx_free(c);
    blo_graph_data_free(&g);
}

/* ---- LDS ---------------------------------------------------------------------------------------- */

typedef struct lds_fix {
    blo_graph_data g;
    blo_ctx *c;
    blo_graph_tensors gt;
    blo_lds l;
} lds_fix;

static int lds_setup(lds_fix *f, double dropout) {
    char err[512];
    memset(f, 0, sizeof *f);
    if (blo_graph_load(TINY, &f->g, err, sizeof err)) return 0;
    f->c = blo_ctx_new(0);
    blo_rng r;
    blo_rng_seed(&r, 3);
    blo_status st = blo_graph_tensors_make(f->c, &f->g, NULL, 1, BLO_F64, &f->gt, err, sizeof err);
    if (!st)
        st = blo_lds_init(&f->l, &f->gt, f->g.n, f->g.classes, 5, dropout, 5e-4, 0.3, &r, err,
                          sizeof err);
    TU_CHECK(st == BLO_OK, "lds: %s", err);
    return st == BLO_OK;
}

static void lds_teardown(lds_fix *f) {
    blo_lds_free(&f->l);
    blo_ctx_free(f->c);
    blo_graph_data_free(&f->g);
}

/* F after trhg (K = T) from θ, and (when hg) the hypergradient into hg. */
static double lds_run(lds_fix *f, blo_tensor *theta, double *hg) {
    blo_problem p = blo_lds_problem(&f->l);
    blo_tensor *xs[1] = {theta};
    p.x = xs;
    blo_config cfg = blo_config_default();
    cfg.method = "trhg";
    cfg.inner_steps = 4;
    cfg.trhg_window = 4;
    cfg.inner.lr = 0.5;
    cfg.seed = 11;
    char err[256];
    blo_solver *s = blo_solver_new(&p, &cfg, err, sizeof err);
    TU_CHECK(s, "solver: %s", err);
    if (!s) return NAN;
    double *out[1] = {hg}, F = NAN, fl;
    double scratch[49];
    if (!hg) out[0] = scratch;
    TU_CHECK(blo_solver_hypergrad(s, out) == BLO_OK, "hypergrad: %s", blo_solver_error(s));
    blo_solver_values(s, &F, &fl);
    blo_solver_free(s);
    return F;
}

static void test_lds_hypergrad(double dropout) {
    lds_fix f;
    if (!lds_setup(&f, dropout)) return;
    int64_t n = f.l.n, nn = n * n;
    double hg[49], *th = malloc(sizeof(double) * (size_t)nn);
    /* θ₀: the start (1 on edges, 0.3 elsewhere) moved into the interior, so no sample flips
     * under a small step. */
    blo_tensor *theta = blo_clone(f.c, f.l.x0[0]);
    blo_tensor_copy_to_host(theta, BLO_F64, th);
    for (int64_t i = 0; i < nn; i++) th[i] = th[i] == 1 ? 0.8 : th[i];
    blo_tensor_copy_from_host(theta, BLO_F64, th);
    lds_run(&f, theta, hg);
    f.l.st_base = blo_clone(f.c, theta);
    double eps = 1e-6, worst = 0, scale = 0;
    for (int64_t k = 0; k < nn; k++) scale = fmax(scale, fabs(hg[k]));
    for (int64_t k = 0; k < nn; k++) {
        double keep = th[k];
        th[k] = keep + eps;
        blo_tensor_copy_from_host(theta, BLO_F64, th);
        double fp = lds_run(&f, theta, NULL);
        th[k] = keep - eps;
        blo_tensor_copy_from_host(theta, BLO_F64, th);
        double fm = lds_run(&f, theta, NULL);
        th[k] = keep;
        double fd = (fp - fm) / (2 * eps);
        worst = fmax(worst, fabs(fd - hg[k]));
    }
    TU_CHECK(scale > 1e-4, "the hypergradient is not zero (max %g)", scale);
    TU_CHECK(worst <= 1e-6 * scale + 1e-9, "dropout %g: |FD - trhg| max %.3g (max |hg| %.3g)",
             dropout, worst, scale);
    /* The estimator's gradient is symmetric with a zero diagonal (it goes through S). */
    double asym = 0;
    for (int64_t i = 0; i < n; i++) {
        asym = fmax(asym, fabs(hg[i * n + i]));
        for (int64_t j = 0; j < n; j++) asym = fmax(asym, fabs(hg[i * n + j] - hg[j * n + i]));
    }
    TU_CHECK(asym < 1e-14, "hypergradient symmetric, zero diagonal (off by %g)", asym);
    free(th);
    lds_teardown(&f);
}

static void test_lds_project(void) {
    lds_fix f;
    if (!lds_setup(&f, 0)) return;
    blo_rng r;
    blo_rng_seed(&r, 5);
    int64_t n = f.l.n, nn[2] = {n, n};
    blo_tensor *t = tu_rand(f.c, &r, BLO_F64, 2, nn, -0.5, 1.5);
    blo_tensor *xs[1] = {t};
    TU_CHECK(blo_lds_project(1, xs, &f.l) == BLO_OK, "project");
    double v[49], worst = 0;
    blo_tensor_copy_to_host(t, BLO_F64, v);
    int inside = 1;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            inside &= v[i * n + j] >= 0 && v[i * n + j] <= 1;
            worst = fmax(worst, fabs(v[i * n + j] - v[j * n + i]));
            if (i == j) worst = fmax(worst, fabs(v[i * n + i]));
        }
    TU_CHECK(inside && worst == 0, "θ in [0, 1] (%d), symmetric with zero diagonal (off %g)",
             inside, worst);
    /* The start: 1 on the given edges, 0.3 elsewhere, 0 on the diagonal. */
    blo_tensor_copy_to_host(f.l.x0[0], BLO_F64, v);
    TU_CHECK(v[0 * n + 1] == 1 && v[1 * n + 0] == 1 && v[0 * n + 3] == 0.3 && v[2 * n + 2] == 0,
             "θ start");
    /* A candidate set: the given edge (0, 1) and the pairs (0, 3), (5, 6); θ's start and every
     * projection are 0 outside them, unchanged inside. */
    char err[256] = "";
    static const int64_t cand_pairs[6] = {0, 1, 3, 0, 5, 6}, bad_pair[2] = {2, 2};
    TU_CHECK(blo_lds_set_candidates(&f.l, bad_pair, 1, err, sizeof err) == BLO_ERR_INVALID &&
                 strstr(err, "candidate pair 0 (2, 2)"),
             "a self-pair must be refused: %s", err);
    TU_CHECK(blo_lds_set_candidates(&f.l, cand_pairs, 3, err, sizeof err) == BLO_OK, "%s", err);
    blo_tensor_copy_to_host(f.l.x0[0], BLO_F64, v);
    double outside = 0;
    for (int64_t q = 0; q < n * n; q++)
        if (q != 0 * n + 1 && q != 1 * n + 0 && q != 0 * n + 3 && q != 3 * n + 0 &&
            q != 5 * n + 6 && q != 6 * n + 5)
            outside = fmax(outside, fabs(v[q]));
    TU_CHECK(v[0 * n + 1] == 1 && v[3 * n + 0] == 0.3 && v[6 * n + 5] == 0.3 && outside == 0,
             "θ start on the candidates: %g %g %g, outside max %g", v[1], v[3 * n], v[6 * n + 5],
             outside);
    double want[49];
    t = tu_rand(f.c, &r, BLO_F64, 2, nn, 0, 1);
    blo_tensor_copy_to_host(t, BLO_F64, want);
    xs[0] = t;
    TU_CHECK(blo_lds_project(1, xs, &f.l) == BLO_OK, "project");
    blo_tensor_copy_to_host(t, BLO_F64, v);
    worst = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            int in = (i == 0 && j == 1) || (i == 1 && j == 0) || (i == 0 && j == 3) ||
                     (i == 3 && j == 0) || (i == 5 && j == 6) || (i == 6 && j == 5);
            double sym = 0.5 * (want[i * n + j] + want[j * n + i]);
            worst = fmax(worst, fabs(v[i * n + j] - (in ? sym : 0)));
        }
    TU_CHECK(worst < 1e-15, "projection on the candidate set: off by %g", worst);
    lds_teardown(&f);
}

/* The kNN graph against a brute force: every pair's cosine, each node's others fully sorted
 * (descending similarity, then id), the first k joined; on the committed Wine data (k = 10)
 * and on the tiny graph (k = 2). */
typedef struct {
    double s;
    int64_t j;
} cand;

static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->j < y->j ? -1 : x->j > y->j;
}

static void knn_case(const char *dir, int64_t k) {
    blo_graph_data g;
    char err[512] = "";
    blo_status st = blo_graph_load(dir, &g, err, sizeof err);
    TU_CHECK(st == BLO_OK, "%s", err);
    if (st) return;
    int64_t n = g.n, d = g.features.d;
    double *x = calloc((size_t)(n * d), sizeof(double));
    unsigned char *want = calloc((size_t)(n * n), 1);
    cand *cs = malloc(sizeof(cand) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        for (int64_t q = g.features.rowptr[i]; q < g.features.rowptr[i + 1]; q++)
            x[i * d + g.features.col[q]] = g.features.val[q];
    for (int64_t i = 0; i < n; i++) {
        int64_t m = 0;
        for (int64_t j = 0; j < n; j++) {
            if (j == i) continue;
            double ab = 0, aa = 0, bb = 0;
            for (int64_t q = 0; q < d; q++) {
                ab += x[i * d + q] * x[j * d + q];
                aa += x[i * d + q] * x[i * d + q];
                bb += x[j * d + q] * x[j * d + q];
            }
            cs[m++] = (cand){aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0, j};
        }
        qsort(cs, (size_t)m, sizeof *cs, cand_cmp);
        for (int64_t q = 0; q < k; q++) want[i * n + cs[q].j] = want[cs[q].j * n + i] = 1;
    }
    int64_t m = 0, wrong = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++) m += want[i * n + j];
    TU_CHECK(blo_graph_knn(&g, k, err, sizeof err) == BLO_OK, "knn: %s", err);
    for (int64_t e = 0; e < g.n_edges; e++) {
        int64_t a = g.edges[2 * e], b = g.edges[2 * e + 1];
        wrong += !(a < b && want[a * n + b]) || (e > 0 && (a < g.edges[2 * e - 2] ||
                                                       (a == g.edges[2 * e - 2] && b <= g.edges[2 * e - 1])));
    }
    printf("kNN graph of %s, k = %lld: %lld edges (brute force %lld), %lld not in it or out of "
           "order\n",
           dir, (long long)k, (long long)g.n_edges, (long long)m, (long long)wrong);
    TU_CHECK(g.n_edges == m && wrong == 0, "kNN graph: %lld edges against %lld, %lld wrong",
             (long long)g.n_edges, (long long)m, (long long)wrong);
    TU_CHECK(blo_graph_knn(&g, n, err, sizeof err) == BLO_ERR_INVALID && strstr(err, "k < "),
             "k = n must be refused: %s", err);
    /* Raw features stay as read; row-normalised rows sum to 1. */
    blo_ctx *c = blo_ctx_new(0);
    blo_graph_tensors raw, row;
    TU_CHECK(!blo_graph_tensors_make(c, &g, NULL, 0, BLO_F64, &raw, err, sizeof err) &&
                 !blo_graph_tensors_make(c, &g, NULL, 1, BLO_F64, &row, err, sizeof err),
             "%s", err);
    double v0 = blo_tensor_get(raw.xval, 0), s0 = 0;
    for (int64_t q = g.features.rowptr[0]; q < g.features.rowptr[1]; q++)
        s0 += blo_tensor_get(row.xval, q);
    TU_CHECK(v0 == (double)g.features.val[0] && fabs(s0 - 1) < 1e-12,
             "raw feature %g (read %g), normalised row sum %g", v0, (double)g.features.val[0], s0);
    blo_ctx_free(c);
    free(x);
    free(want);
    free(cs);
    blo_graph_data_free(&g);
}

int main(void) {
    knn_case(BLO_SOURCE_DIR "/data/uci/wine", 10);
    knn_case(TINY, 2);
    test_load_tiny();
    test_bad_files();
    if (fixture_load()) {
        gcn_case(BLO_F64, 1e-10);
        gcn_case(BLO_F32, 1e-5);
    }
    test_lds_hypergrad(0);
    test_lds_hypergrad(0.5);
    test_lds_project();
    for (int i = 0; i < nfx; i++) free(fx[i].v);
    return tu_finish("graph");
}
