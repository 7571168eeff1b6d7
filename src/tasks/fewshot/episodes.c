/* episodes.c — few-shot classification episodes over rotation classes: each base class of an
 * MNIST-layout dataset at 0 / 90 / 180 / 270 degrees is a class of its own, the classes are
 * split into disjoint meta-train and meta-test sets (by default whole base classes, so no
 * image is seen on both sides), and an N-way K-shot episode draws N classes of one set and
 * K support plus Q query examples of each, relabelled 0..N-1. */
#include "fewshot.h"

#include <stdlib.h>
#include <string.h>

void blo_rotation_map(int64_t side, int turns, int64_t *map) {
    int t = ((turns % 4) + 4) % 4;
    for (int64_t i = 0; i < side; i++)
        for (int64_t j = 0; j < side; j++) {
            int64_t si, sj; /* the source pixel of result (i, j) */
            switch (t) {
            case 0: si = i, sj = j; break;
            case 1: si = j, sj = side - 1 - i; break;
            case 2: si = side - 1 - i, sj = side - 1 - j; break;
            default: si = side - 1 - j, sj = i; break;
            }
            map[i * side + j] = si * side + sj;
        }
}

void blo_rotate_image(int64_t side, int turns, const float *in, float *out) {
    int t = ((turns % 4) + 4) % 4;
    for (int64_t i = 0; i < side; i++)
        for (int64_t j = 0; j < side; j++) {
            int64_t si, sj;
            switch (t) {
            case 0: si = i, sj = j; break;
            case 1: si = j, sj = side - 1 - i; break;
            case 2: si = side - 1 - i, sj = side - 1 - j; break;
            default: si = side - 1 - j, sj = i; break;
            }
            out[i * side + j] = in[si * side + sj];
        }
}

void blo_fewshot_free(blo_fewshot_data *fs) {
    if (!fs) return;
    blo_free(fs->base_label);
    blo_free(fs->start);
    blo_free(fs->count);
    blo_free(fs->rows);
    for (int r = 0; r < 4; r++) blo_free(fs->map[r]);
    blo_free(fs->train);
    blo_free(fs->test);
    memset(fs, 0, sizeof *fs);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

const char *blo_fewshot_split_name(blo_fewshot_split k) {
    return k == BLO_FEWSHOT_SPLIT_BASE ? "base" : k == BLO_FEWSHOT_SPLIT_CLASS ? "class" : "?";
}

int blo_fewshot_split_parse(const char *name) {
    if (name && !strcmp(name, "base")) return BLO_FEWSHOT_SPLIT_BASE;
    if (name && !strcmp(name, "class")) return BLO_FEWSHOT_SPLIT_CLASS;
    return -1;
}

blo_status blo_fewshot_init(blo_fewshot_data *fs, const blo_dataset *ds, blo_fewshot_split split,
                            int rotations, int64_t n_train, uint64_t seed, char *err,
                            size_t errlen) {
    memset(fs, 0, sizeof *fs);
    if (rotations != 1 && rotations != 4)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "fewshot: %d rotations per base class (1 or 4)", rotations);
    const int R = rotations;
    if (!ds || !ds->x || !ds->label || ds->num_classes < 1 || ds->n < 1)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "fewshot: the dataset must be dense, labelled and non-empty");
    int64_t side = 0;
    while ((side + 1) * (side + 1) <= ds->d) side++;
    if (side < 1 || side * side != ds->d)
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "fewshot: %lld features are not a square image", (long long)ds->d);
    fs->ds = ds;
    fs->side = side;
    const int64_t L = ds->num_classes;
    int64_t *per = blo_calloc((size_t)L, sizeof(int64_t));
    if (!per) return blo__fail(err, errlen, BLO_ERR_NOMEM, "fewshot: out of memory");
    for (int64_t i = 0; i < ds->n; i++) {
        if (ds->label[i] < 0 || ds->label[i] >= L) {
            blo_free(per);
            return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot: example %lld has label %lld "
                             "outside [0, %lld)", (long long)i, (long long)ds->label[i], (long long)L);
        }
        per[ds->label[i]]++;
    }
    for (int64_t l = 0; l < L; l++) fs->n_base += per[l] > 0;
    fs->n_classes = R * fs->n_base;
    if (n_train < 0 || n_train > fs->n_classes ||
        (split != BLO_FEWSHOT_SPLIT_BASE && split != BLO_FEWSHOT_SPLIT_CLASS) ||
        (split == BLO_FEWSHOT_SPLIT_BASE && n_train % R)) {
        blo_free(per);
        int64_t nc = fs->n_classes;
        memset(fs, 0, sizeof *fs);
        if (split != BLO_FEWSHOT_SPLIT_BASE && split != BLO_FEWSHOT_SPLIT_CLASS)
            return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot: unknown split kind %d",
                             (int)split);
        if (n_train % R == 0 || n_train < 0 || n_train > nc)
            return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot: %lld meta-train classes out "
                             "of %lld", (long long)n_train, (long long)nc);
        return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot: a split by base class puts all "
                         "%d rotations of a base class on one side, so the %lld meta-train classes "
                         "must be a multiple of %d", R, (long long)n_train, R);
    }
    fs->split = split;
    fs->rotations = R;
    fs->n_train = n_train;
    fs->n_test = fs->n_classes - n_train;
    size_t nb = (size_t)fs->n_base, nc = (size_t)fs->n_classes;
    fs->base_label = blo_malloc(sizeof(int64_t) * nb);
    fs->start = blo_malloc(sizeof(int64_t) * nb);
    fs->count = blo_malloc(sizeof(int64_t) * nb);
    fs->rows = blo_malloc(sizeof(int64_t) * (size_t)ds->n);
    for (int r = 0; r < 4; r++) fs->map[r] = blo_malloc(sizeof(int64_t) * (size_t)ds->d);
    fs->train = blo_malloc(sizeof(int64_t) * (nc ? nc : 1));
    fs->test = blo_malloc(sizeof(int64_t) * (nc ? nc : 1));
    int64_t *perm = blo_malloc(sizeof(int64_t) * (nc ? nc : 1));
    int64_t *base_of = blo_malloc(sizeof(int64_t) * (size_t)L); /* label -> base index */
    int ok = fs->base_label && fs->start && fs->count && fs->rows && fs->train && fs->test &&
             perm && base_of;
    for (int r = 0; r < 4; r++) ok = ok && fs->map[r];
    if (!ok) {
        blo_free(per);
        blo_free(perm);
        blo_free(base_of);
        blo_fewshot_free(fs);
        return blo__fail(err, errlen, BLO_ERR_NOMEM, "fewshot: out of memory");
    }
    for (int64_t l = 0, b = 0, at = 0; l < L; l++) {
        base_of[l] = per[l] > 0 ? b : -1;
        if (per[l] > 0) {
            fs->base_label[b] = l;
            fs->start[b] = at;
            fs->count[b] = 0;
            at += per[l];
            b++;
        }
    }
    for (int64_t i = 0; i < ds->n; i++) { /* ascending rows within each base class */
        int64_t b = base_of[ds->label[i]];
        fs->rows[fs->start[b] + fs->count[b]++] = i;
    }
    for (int r = 0; r < 4; r++) blo_rotation_map(side, r, fs->map[r]);
    /* The split: a uniform permutation of the class ids (split by class) or of the base
     * classes, each followed by its R rotations (split by base class); its first n_train
     * entries are meta-train. */
    blo_rng g;
    blo_rng_seed(&g, seed);
    int64_t units = split == BLO_FEWSHOT_SPLIT_BASE ? fs->n_base : fs->n_classes;
    for (int64_t c = 0; c < units; c++) perm[c] = c;
    blo__shuffle(&g, perm, units);
    if (split == BLO_FEWSHOT_SPLIT_BASE)
        for (int64_t b = units - 1; b >= 0; b--) /* in place, from the back */
            for (int r = R - 1; r >= 0; r--) perm[R * b + r] = R * perm[b] + r;
    memcpy(fs->train, perm, sizeof(int64_t) * (size_t)fs->n_train);
    memcpy(fs->test, perm + fs->n_train, sizeof(int64_t) * (size_t)fs->n_test);
    qsort(fs->train, (size_t)fs->n_train, sizeof(int64_t), cmp_i64);
    qsort(fs->test, (size_t)fs->n_test, sizeof(int64_t), cmp_i64);
    blo_free(per);
    blo_free(perm);
    blo_free(base_of);
    return BLO_OK;
}

int64_t blo_fewshot_class_count(const blo_fewshot_data *fs, int64_t c) {
    if (!fs || c < 0 || c >= fs->n_classes) return 0;
    return fs->count[c / fs->rotations];
}

/* Writes example `row` turned by map into dst[d] (the host rows the tensors are filled from). */
static void put_image(float *dst, const blo_dataset *ds, int64_t row, const int64_t *map) {
    const float *src = ds->x + row * ds->d;
    for (int64_t k = 0; k < ds->d; k++) dst[k] = src[map[k]];
}

blo_status blo_fewshot_episode_sample(blo_ctx *ctx, const blo_fewshot_data *fs,
                                      const int64_t *classes, int64_t n_classes, int64_t N,
                                      int64_t K, int64_t Q, blo_dtype dt, blo_rng *rng,
                                      blo_fewshot_episode *ep, int64_t *src_rows, char *err,
                                      size_t errlen) {
    memset(ep, 0, sizeof *ep);
    if (!ctx || !fs || !fs->ds || !rng || (n_classes > 0 && !classes) || n_classes < 0)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot episode: bad arguments");
    if (dt != BLO_F32 && dt != BLO_F64)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot episode: images must be f32 or f64");
    int64_t maxN = n_classes < BLO_FEWSHOT_MAX_WAYS ? n_classes : BLO_FEWSHOT_MAX_WAYS;
    if (N < 1 || N > maxN)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot episode: %lld ways, but 1 to %lld "
                         "possible with %lld classes", (long long)N, (long long)maxN,
                         (long long)n_classes);
    if (K < 1 || Q < 0)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot episode: shots %lld (>= 1) and "
                         "queries %lld (>= 0)", (long long)K, (long long)Q);
    unsigned char *seen = blo_calloc((size_t)(fs->n_classes ? fs->n_classes : 1), 1);
    if (!seen) return blo__fail(err, errlen, BLO_ERR_NOMEM, "fewshot episode: out of memory");
    int64_t maxcount = 0;
    for (int64_t i = 0; i < n_classes; i++) {
        int64_t c = classes[i];
        if (c < 0 || c >= fs->n_classes || seen[c]) {
            blo_free(seen);
            return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot episode: class id %lld is %s",
                             (long long)c, c < 0 || c >= fs->n_classes ? "unknown" : "repeated");
        }
        seen[c] = 1;
        if (fs->count[c / fs->rotations] < K + Q) {
            blo_free(seen);
            return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot episode: class %lld has %lld "
                             "examples, fewer than %lld shots + %lld queries", (long long)c,
                             (long long)fs->count[c / fs->rotations], (long long)K, (long long)Q);
        }
        if (fs->count[c / fs->rotations] > maxcount) maxcount = fs->count[c / fs->rotations];
    }
    blo_free(seen);
    const int64_t d = fs->ds->d, m = N * (K + Q);
    int64_t *pick = blo_malloc(sizeof(int64_t) * (size_t)n_classes);
    int64_t *pool = blo_malloc(sizeof(int64_t) * (size_t)maxcount);
    /* The episode is drawn into host rows (support first, then query) and copied in at once. */
    float *hx = blo_malloc(sizeof(float) * (size_t)(m * d));
    int64_t *hy = blo_malloc(sizeof(int64_t) * (size_t)m);
    if (!pick || !pool || !hx || !hy) {
        blo_free(pick);
        blo_free(pool);
        blo_free(hx);
        blo_free(hy);
        return blo__fail(err, errlen, BLO_ERR_NOMEM, "fewshot episode: out of memory");
    }
    blo_tensor *xs = blo_tensor_new(ctx, dt, 2, (int64_t[]){N * K, d});
    blo_tensor *ys = blo_tensor_new(ctx, BLO_I64, 1, (int64_t[]){N * K});
    blo_tensor *xq = blo_tensor_new(ctx, dt, 2, (int64_t[]){N * Q, d});
    blo_tensor *yq = blo_tensor_new(ctx, BLO_I64, 1, (int64_t[]){N * Q});
    if (!xs || !ys || !xq || !yq) {
        blo_free(pick);
        blo_free(pool);
        blo_free(hx);
        blo_free(hy);
        blo_status st = blo_ctx_status(ctx) ? blo_ctx_status(ctx) : BLO_ERR_NOMEM;
        return blo__fail(err, errlen, st, "fewshot episode: %s",
                         blo_ctx_status(ctx) ? blo_ctx_error(ctx) : "out of memory");
    }
    /* N classes: the first N of a partial Fisher–Yates shuffle. */
    memcpy(pick, classes, sizeof(int64_t) * (size_t)n_classes);
    blo__draw_first(rng, pick, n_classes, N);
    int64_t *lys = hy, *lyq = hy + N * K;
    float *hxs = hx, *hxq = hx + N * K * d;
    for (int64_t w = 0; w < N; w++) {
        int64_t c = pick[w], b = c / fs->rotations, n = fs->count[b];
        ep->way_class[w] = c;
        memcpy(pool, fs->rows + fs->start[b], sizeof(int64_t) * (size_t)n);
        blo__draw_first(rng, pool, n, K + Q); /* K + Q distinct examples */
        for (int64_t k = 0; k < K; k++) {
            put_image(hxs + (w * K + k) * d, fs->ds, pool[k], fs->map[c % fs->rotations]);
            lys[w * K + k] = w;
            if (src_rows) src_rows[w * K + k] = pool[k];
        }
        for (int64_t q = 0; q < Q; q++) {
            put_image(hxq + (w * Q + q) * d, fs->ds, pool[K + q], fs->map[c % fs->rotations]);
            lyq[w * Q + q] = w;
            if (src_rows) src_rows[N * K + w * Q + q] = pool[K + q];
        }
    }
    blo_tensor_copy_from_host(xs, BLO_F32, hxs);
    blo_tensor_copy_from_host(xq, BLO_F32, hxq);
    blo_tensor_copy_from_host(ys, BLO_I64, lys);
    blo_tensor_copy_from_host(yq, BLO_I64, lyq);
    blo_free(pick);
    blo_free(pool);
    blo_free(hx);
    blo_free(hy);
    ep->xs = xs, ep->ys = ys, ep->xq = xq, ep->yq = yq;
    ep->ways = N, ep->shots = K, ep->queries = Q;
    return BLO_OK;
}

blo_status blo_fewshot_batch_sample(blo_ctx *ctx, const blo_fewshot_data *fs,
                                    const int64_t *classes, int64_t n_classes, int64_t n,
                                    blo_dtype dt, blo_rng *rng, blo_tensor **x,
                                    blo_tensor **labels, int64_t *src_rows, char *err,
                                    size_t errlen) {
    if (!ctx || !fs || !fs->ds || !rng || !x || !labels || !classes || n_classes < 1 || n < 1)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot batch: bad arguments (n >= 1 "
                         "examples of >= 1 classes)");
    if (dt != BLO_F32 && dt != BLO_F64)
        return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot batch: images must be f32 or f64");
    for (int64_t i = 0; i < n_classes; i++)
        if (classes[i] < 0 || classes[i] >= fs->n_classes || fs->count[classes[i] / fs->rotations] < 1)
            return blo__fail(err, errlen, BLO_ERR_INVALID, "fewshot batch: class id %lld is %s",
                             (long long)classes[i],
                             classes[i] < 0 || classes[i] >= fs->n_classes ? "unknown" : "empty");
    blo_tensor *xb = blo_tensor_new(ctx, dt, 2, (int64_t[]){n, fs->ds->d});
    blo_tensor *yb = blo_tensor_new(ctx, BLO_I64, 1, (int64_t[]){n});
    if (!xb || !yb) {
        blo_status st = blo_ctx_status(ctx) ? blo_ctx_status(ctx) : BLO_ERR_NOMEM;
        return blo__fail(err, errlen, st, "fewshot batch: %s",
                         blo_ctx_status(ctx) ? blo_ctx_error(ctx) : "out of memory");
    }
    const int64_t d = fs->ds->d;
    float *hx = blo_malloc(sizeof(float) * (size_t)(n * d));
    int64_t *ly = blo_malloc(sizeof(int64_t) * (size_t)n);
    if (!hx || !ly) {
        blo_free(hx);
        blo_free(ly);
        return blo__fail(err, errlen, BLO_ERR_NOMEM, "fewshot batch: out of memory");
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t k = (int64_t)blo_rng_below(rng, (uint64_t)n_classes), c = classes[k];
        int64_t b = c / fs->rotations;
        int64_t row = fs->rows[fs->start[b] + (int64_t)blo_rng_below(rng, (uint64_t)fs->count[b])];
        put_image(hx + i * d, fs->ds, row, fs->map[c % fs->rotations]);
        ly[i] = k;
        if (src_rows) src_rows[i] = row;
    }
    blo_tensor_copy_from_host(xb, BLO_F32, hx);
    blo_tensor_copy_from_host(yb, BLO_I64, ly);
    blo_free(hx);
    blo_free(ly);
    *x = xb;
    *labels = yb;
    return BLO_OK;
}
