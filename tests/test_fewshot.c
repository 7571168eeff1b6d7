/* test_fewshot.c — rotation classes and the few-shot episode sampler (src/tasks/fewshot.c):
 *   - rotation maps: a hand-made 3x3 turned once, twice and three times; four turns of 90°
 *     are the identity, at 3x3, 8x8 and 28x28; every map is a permutation; the 28x28 map sends
 *     the corners where a counter-clockwise turn must;
 *   - the class set of tests/data/tinymnist (120 images of 8x8, 3 classes): 12 rotation
 *     classes, a split into disjoint meta-train / meta-test sets that covers them all and
 *     depends on the seed;
 *   - episodes: shapes, labels 0..N-1 by way, distinct classes from the given split only (over
 *     many episodes, every image's source row has the base class of its way, and its pixels
 *     are that row turned as the class says), examples without replacement per class, the
 *     same rng state giving the same episode, f64 images, refusals;
 *   - the split by base class (the default): all 4 rotations of a base class on one side, so
 *     over many episodes of each side no dataset row and no base class is seen by both; a
 *     meta-train count that is not a multiple of 4 refused; the minibatch sampler of the
 *     pretrained baseline draws meta-train images only, labelled by their class's position;
 *   - Fashion-MNIST, when /usr/share/datasets/fashion-mnist is there: 40 classes, 28 / 12 by
 *     base class, 5-way 1-shot episodes of 28x28 images;
 *   - meta feature learning (hyperrep) on a tiny float64 problem: the rhg hypergradient
 *     against central finite differences of the unrolled objective F(x, y_T(x)) computed here
 *     by plain SGD steps (also with features normalised before the head); cg and rhg at large T against finite differences of F(x, y*(x)) with
 *     the head problems solved to convergence (the implicit gradient); MAML's rhg likewise;
 *   - MAML's objectives against plain loops (f sums the episodes' mean support CE, so the
 *     inner step does not grow with the shots; F is the mean query CE) and first_order's
 *     hypergradient against Σ_b ∂F/∂y_b at y_T from hand-made SGD steps;
 *   - blo_fewshot_run on tinymnist: first-order MAML of a linear classifier, hyperrep and the
 *     pretrained baseline: meta-test accuracy far above chance; bad settings refused. */
#include "../src/tasks/fewshot/fewshot.h"
#include "testutil.h"

#include <math.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static void test_rotation(void) {
    /* 1 2 3 / 4 5 6 / 7 8 9 turned 90° counter-clockwise: 3 6 9 / 2 5 8 / 1 4 7. */
    const float img[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float want[4][9] = {{1, 2, 3, 4, 5, 6, 7, 8, 9},
                              {3, 6, 9, 2, 5, 8, 1, 4, 7},
                              {9, 8, 7, 6, 5, 4, 3, 2, 1},
                              {7, 4, 1, 8, 5, 2, 9, 6, 3}};
    for (int t = 0; t < 4; t++) {
        float out[9];
        int64_t map[9];
        blo_rotate_image(3, t, img, out);
        blo_rotation_map(3, t, map);
        int ok = 1, okm = 1;
        for (int k = 0; k < 9; k++) {
            ok &= out[k] == want[t][k];
            okm &= img[map[k]] == want[t][k];
        }
        TU_CHECK(ok, "3x3 rotated %d turns", t);
        TU_CHECK(okm, "3x3 map of %d turns", t);
    }
    float out5[9];
    blo_rotate_image(3, 5, img, out5); /* taken mod 4 */
    TU_CHECK(memcmp(out5, want[1], sizeof out5) == 0, "5 turns = 1 turn");
    blo_rotate_image(3, -1, img, out5);
    TU_CHECK(memcmp(out5, want[3], sizeof out5) == 0, "-1 turn = 3 turns");

    const int64_t sides[3] = {3, 8, 28};
    for (int s = 0; s < 3; s++) {
        int64_t n = sides[s] * sides[s];
        float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
        float *orig = malloc(sizeof(float) * (size_t)n);
        int64_t *map = malloc(sizeof(int64_t) * (size_t)n);
        unsigned char *hit = calloc((size_t)n, 1);
        for (int64_t k = 0; k < n; k++) orig[k] = a[k] = (float)k;
        for (int t = 0; t < 4; t++) {
            blo_rotate_image(sides[s], 1, a, b);
            memcpy(a, b, sizeof(float) * (size_t)n);
        }
        TU_CHECK(memcmp(a, orig, sizeof(float) * (size_t)n) == 0, "%lldx%lld: four turns of 90 "
                 "degrees are the identity", (long long)sides[s], (long long)sides[s]);
        for (int t = 0; t < 4; t++) {
            blo_rotation_map(sides[s], t, map);
            memset(hit, 0, (size_t)n);
            int perm = 1;
            for (int64_t k = 0; k < n; k++) {
                perm &= map[k] >= 0 && map[k] < n && !hit[map[k]];
                if (map[k] >= 0 && map[k] < n) hit[map[k]] = 1;
            }
            TU_CHECK(perm, "%lld: the map of %d turns is a permutation", (long long)sides[s], t);
        }
        free(a);
        free(b);
        free(orig);
        free(map);
        free(hit);
    }
    /* 28x28, one counter-clockwise turn: the source's top-right corner comes to the top-left,
     * top-left to bottom-left, bottom-left to bottom-right; pixel (r, c) comes from (c, 27 - r). */
    int64_t map[784];
    blo_rotation_map(28, 1, map);
    TU_CHECK(map[0] == 27, "28x28: result (0,0) from (0,27), got %lld", (long long)map[0]);
    TU_CHECK(map[27 * 28] == 0, "28x28: result (27,0) from (0,0)");
    TU_CHECK(map[27 * 28 + 27] == 27 * 28, "28x28: result (27,27) from (27,0)");
    TU_CHECK(map[5 * 28 + 11] == 11 * 28 + 22, "28x28: result (5,11) from (11,22)");
}

/* Every image of ep is row src[i] turned as its way's class says, the class is in set[], the
 * labels are the ways, the classes are distinct and the rows of a way are distinct. */
static int check_episode(const blo_fewshot_data *fs, const blo_fewshot_episode *ep,
                         const int64_t *src, const int64_t *set, int64_t nset) {
    const blo_dataset *ds = fs->ds;
    int64_t N = ep->ways, K = ep->shots, Q = ep->queries, d = ds->d;
    int ok = blo_tensor_dim(ep->xs, 0) == N * K && blo_tensor_dim(ep->xs, 1) == d &&
             blo_tensor_dim(ep->ys, 0) == N * K && blo_tensor_dim(ep->xq, 0) == N * Q &&
             blo_tensor_dim(ep->xq, 1) == d && blo_tensor_dim(ep->yq, 0) == N * Q &&
             blo_tensor_dtype(ep->ys) == BLO_I64 && blo_tensor_dtype(ep->yq) == BLO_I64;
    float *want = malloc(sizeof(float) * (size_t)d);
    for (int64_t w = 0; w < N && ok; w++) {
        int64_t c = ep->way_class[w], in = 0;
        for (int64_t i = 0; i < nset; i++) in |= set[i] == c;
        for (int64_t v = 0; v < w; v++) in &= ep->way_class[v] != c;
        ok &= (int)in;
        for (int64_t i = 0; i < K + Q && ok; i++) {
            int sup = i < K;
            int64_t at = sup ? w * K + i : w * Q + (i - K);
            int64_t row = src[sup ? at : N * K + at];
            const blo_tensor *x = sup ? ep->xs : ep->xq, *y = sup ? ep->ys : ep->yq;
            ok &= ds->label[row] == fs->base_label[c / 4];
            ok &= blo_tensor_get(y, at) == (double)w;
            blo_rotate_image(fs->side, (int)(c % 4), ds->x + row * d, want);
            for (int64_t k = 0; k < d; k++) ok &= blo_tensor_get(x, at * d + k) == (double)want[k];
            for (int64_t j = 0; j < i; j++) { /* distinct rows within the way */
                int sj = j < K;
                int64_t aj = sj ? w * K + j : w * Q + (j - K);
                ok &= src[sj ? aj : N * K + aj] != row;
            }
        }
    }
    free(want);
    return ok;
}

/* tests/data/tinymnist's "train" pair into ds; false (a failed check) when it does not load. */
static bool load_tiny(blo_dataset *ds) {
    char err[512];
    blo_status st = blo_mnist_load(BLO_SOURCE_DIR "/tests/data/tinymnist", "train", ds, err,
                                   sizeof err);
    TU_CHECK(st == BLO_OK, "load tinymnist: %s", err);
    return st == BLO_OK;
}

static void test_tiny(void) {
    char err[512];
    blo_dataset ds;
    if (!load_tiny(&ds)) return;
    blo_status st;
    blo_fewshot_data fs;
    st = blo_fewshot_init(&fs, &ds, BLO_FEWSHOT_SPLIT_CLASS, 4, 8, 1, err, sizeof err);
    TU_CHECK(st == BLO_OK, "fewshot init: %s", err);
    if (st) {
        blo_dataset_free(&ds);
        return;
    }
    TU_CHECK(fs.side == 8 && fs.n_base == 3 && fs.n_classes == 12, "tiny: side %lld, %lld base, "
             "%lld classes", (long long)fs.side, (long long)fs.n_base, (long long)fs.n_classes);
    TU_CHECK(fs.n_train == 8 && fs.n_test == 4, "tiny: 8 / 4 split");
    TU_CHECK(blo_fewshot_class_count(&fs, 0) == 40 && blo_fewshot_class_count(&fs, 11) == 40 &&
                 blo_fewshot_class_count(&fs, 12) == 0,
             "tiny: 40 examples per class");
    unsigned char cover[12] = {0};
    int disjoint = 1, sorted = 1;
    for (int64_t i = 0; i < fs.n_train; i++) cover[fs.train[i]] |= 1;
    for (int64_t i = 0; i < fs.n_test; i++) {
        disjoint &= !(cover[fs.test[i]] & 1);
        cover[fs.test[i]] |= 2;
    }
    for (int64_t i = 1; i < fs.n_train; i++) sorted &= fs.train[i - 1] < fs.train[i];
    for (int64_t i = 1; i < fs.n_test; i++) sorted &= fs.test[i - 1] < fs.test[i];
    int all = 1;
    for (int c = 0; c < 12; c++) all &= cover[c] == 1 || cover[c] == 2;
    TU_CHECK(disjoint && all && sorted, "tiny: the split is disjoint, covers all, ascending");

    /* Another seed, another split (some seed among a few differs); the same seed, the same. */
    int differs = 0;
    for (uint64_t s = 2; s < 6 && !differs; s++) {
        blo_fewshot_data g;
        if (blo_fewshot_init(&g, &ds, BLO_FEWSHOT_SPLIT_CLASS, 4, 8, s, err, sizeof err)) break;
        differs = memcmp(g.train, fs.train, sizeof(int64_t) * 8) != 0;
        blo_fewshot_free(&g);
    }
    TU_CHECK(differs, "tiny: the split depends on the seed");
    blo_fewshot_data same;
    st = blo_fewshot_init(&same, &ds, BLO_FEWSHOT_SPLIT_CLASS, 4, 8, 1, err, sizeof err);
    TU_CHECK(st == BLO_OK && memcmp(same.train, fs.train, sizeof(int64_t) * 8) == 0 &&
                 memcmp(same.test, fs.test, sizeof(int64_t) * 4) == 0,
             "tiny: the same seed gives the same split");
    if (!st) blo_fewshot_free(&same);

    /* Many episodes from each split. */
    blo_ctx *ctx = blo_ctx_new(0);
    blo_rng rng;
    blo_rng_seed(&rng, 42);
    const int64_t N = 3, K = 5, Q = 7;
    int64_t src[3 * 12];
    int ok_train = 1, ok_test = 1;
    unsigned used_train[12] = {0};
    for (int e = 0; e < 200; e++) {
        blo_mark mk = blo_ctx_mark(ctx);
        blo_fewshot_episode ep;
        int test = e % 2;
        const int64_t *set = test ? fs.test : fs.train;
        int64_t nset = test ? fs.n_test : fs.n_train;
        st = blo_fewshot_episode_sample(ctx, &fs, set, nset, N, K, Q, BLO_F32, &rng, &ep, src,
                                        err, sizeof err);
        if (st) {
            TU_CHECK(0, "episode %d: %s", e, err);
            break;
        }
        int ok = check_episode(&fs, &ep, src, set, nset);
        if (test) ok_test &= ok;
        else {
            ok_train &= ok;
            for (int64_t w = 0; w < N; w++) used_train[ep.way_class[w]]++;
        }
        blo_ctx_rewind(ctx, mk);
    }
    TU_CHECK(ok_train, "tiny: meta-train episodes draw meta-train classes only, shapes, labels, "
             "pixels and distinct rows right");
    TU_CHECK(ok_test, "tiny: meta-test episodes draw meta-test classes only, shapes, labels, "
             "pixels and distinct rows right");
    int every = 1;
    for (int64_t i = 0; i < fs.n_train; i++) every &= used_train[fs.train[i]] > 0;
    TU_CHECK(every, "tiny: 100 episodes reach every meta-train class");

    /* The same rng state gives the same episode; f64 images hold the same values. */
    blo_rng r1, r2;
    blo_rng_seed(&r1, 7);
    blo_rng_seed(&r2, 7);
    blo_fewshot_episode a, b;
    int64_t sa[2 * 11], sb[2 * 11];
    blo_status s1 = blo_fewshot_episode_sample(ctx, &fs, fs.train, fs.n_train, 2, 4, 7, BLO_F32,
                                               &r1, &a, sa, err, sizeof err);
    blo_status s2 = blo_fewshot_episode_sample(ctx, &fs, fs.train, fs.n_train, 2, 4, 7, BLO_F64,
                                               &r2, &b, sb, err, sizeof err);
    TU_CHECK(s1 == BLO_OK && s2 == BLO_OK, "two episodes: %s", err);
    if (!s1 && !s2) {
        int same_ep = memcmp(sa, sb, sizeof sa) == 0 && a.way_class[0] == b.way_class[0] &&
                      a.way_class[1] == b.way_class[1] && blo_tensor_dtype(b.xs) == BLO_F64;
        for (int64_t k = 0; k < blo_tensor_numel(a.xs); k++)
            same_ep &= blo_tensor_get(a.xs, k) == blo_tensor_get(b.xs, k);
        for (int64_t k = 0; k < blo_tensor_numel(a.xq); k++)
            same_ep &= blo_tensor_get(a.xq, k) == blo_tensor_get(b.xq, k);
        TU_CHECK(same_ep, "tiny: the same seed gives the same episode");
        blo_fewshot_episode c;
        int64_t sc[2 * 11];
        s1 = blo_fewshot_episode_sample(ctx, &fs, fs.train, fs.n_train, 2, 4, 7, BLO_F32, &r1,
                                        &c, sc, err, sizeof err);
        TU_CHECK(s1 == BLO_OK && memcmp(sa, sc, sizeof sa) != 0,
                 "tiny: the next episode of the stream differs");
    }
    /* Q = 0: an empty query set. */
    blo_fewshot_episode z;
    st = blo_fewshot_episode_sample(ctx, &fs, fs.test, fs.n_test, 4, 1, 0, BLO_F32, &rng, &z,
                                    NULL, err, sizeof err);
    TU_CHECK(st == BLO_OK && blo_tensor_dim(z.xq, 0) == 0 && blo_tensor_dim(z.xs, 0) == 4,
             "tiny: 4-way 1-shot with no queries: %s", err);

    /* Refusals. */
    int64_t bad[2] = {0, 0}, unknown[1] = {12};
    TU_CHECK(blo_fewshot_episode_sample(ctx, &fs, fs.test, fs.n_test, 5, 1, 1, BLO_F32, &rng, &z,
                                        NULL, err, sizeof err) == BLO_ERR_INVALID,
             "refuses more ways than classes");
    TU_CHECK(blo_fewshot_episode_sample(ctx, &fs, fs.test, fs.n_test, 2, 30, 11, BLO_F32, &rng,
                                        &z, NULL, err, sizeof err) == BLO_ERR_INVALID,
             "refuses more examples than a class has");
    TU_CHECK(blo_fewshot_episode_sample(ctx, &fs, bad, 2, 1, 1, 1, BLO_F32, &rng, &z, NULL, err,
                                        sizeof err) == BLO_ERR_INVALID,
             "refuses a repeated class");
    TU_CHECK(blo_fewshot_episode_sample(ctx, &fs, unknown, 1, 1, 1, 1, BLO_F32, &rng, &z, NULL,
                                        err, sizeof err) == BLO_ERR_INVALID,
             "refuses an unknown class");
    TU_CHECK(blo_fewshot_episode_sample(ctx, &fs, fs.train, fs.n_train, 2, 0, 1, BLO_F32, &rng,
                                        &z, NULL, err, sizeof err) == BLO_ERR_INVALID,
             "refuses K = 0");
    TU_CHECK(blo_fewshot_episode_sample(ctx, &fs, fs.train, fs.n_train, 2, 1, 1, BLO_I64, &rng,
                                        &z, NULL, err, sizeof err) == BLO_ERR_INVALID,
             "refuses i64 images");
    blo_fewshot_data f2;
    TU_CHECK(blo_fewshot_init(&f2, &ds, BLO_FEWSHOT_SPLIT_CLASS, 4, 13, 1, err, sizeof err) ==
                 BLO_ERR_INVALID,
             "refuses 13 meta-train classes of 12");
    blo_dataset odd = ds;
    odd.d = 63;
    odd.n = 1;
    TU_CHECK(blo_fewshot_init(&f2, &odd, BLO_FEWSHOT_SPLIT_CLASS, 4, 1, 1, err, sizeof err) ==
                 BLO_ERR_INVALID,
             "refuses a non-square image");
    tu_check_ok(ctx, "tiny episodes");
    blo_ctx_free(ctx);
    blo_fewshot_free(&fs);
    blo_dataset_free(&ds);
}

/* The split by base class: whole base classes on each side, no dataset row on both sides. */
static void test_base_split(void) {
    char err[512];
    blo_dataset ds;
    if (!load_tiny(&ds)) return;
    blo_status st;
    blo_fewshot_data fs;
    st = blo_fewshot_init(&fs, &ds, BLO_FEWSHOT_SPLIT_BASE, 4, 8, 5, err, sizeof err);
    TU_CHECK(st == BLO_OK, "base split: %s", err);
    if (st) {
        blo_dataset_free(&ds);
        return;
    }
    unsigned char side_of_base[3] = {0};
    for (int64_t i = 0; i < fs.n_train; i++) side_of_base[fs.train[i] / 4] |= 1;
    for (int64_t i = 0; i < fs.n_test; i++) side_of_base[fs.test[i] / 4] |= 2;
    int whole = fs.split == BLO_FEWSHOT_SPLIT_BASE && fs.n_train == 8 && fs.n_test == 4;
    for (int b = 0; b < 3; b++) whole &= side_of_base[b] == 1 || side_of_base[b] == 2;
    TU_CHECK(whole, "base split: every base class lies on one side only");
    /* Many episodes and minibatches of each side: the rows they use never meet. */
    unsigned char *seen = calloc((size_t)ds.n, 1);
    blo_ctx *ctx = blo_ctx_new(0);
    blo_rng rng;
    blo_rng_seed(&rng, 11);
    int64_t src[3 * 12], bsrc[64];
    int ok = 1, test_base = -1;
    for (int e = 0; e < 300 && ok; e++) {
        blo_mark mk = blo_ctx_mark(ctx);
        int test = e % 2;
        blo_fewshot_episode ep;
        st = blo_fewshot_episode_sample(ctx, &fs, test ? fs.test : fs.train,
                                        test ? fs.n_test : fs.n_train, 3, 5, 7, BLO_F32, &rng, &ep,
                                        src, err, sizeof err);
        ok = !st;
        for (int64_t i = 0; ok && i < 3 * 12; i++) seen[src[i]] |= (unsigned char)(test ? 2 : 1);
        for (int64_t w = 0; ok && w < 3; w++) {
            if (test) test_base = (int)(ep.way_class[w] / 4);
            ok &= side_of_base[ep.way_class[w] / 4] == (test ? 2 : 1);
        }
        if (!test) { /* the baseline's minibatches */
            blo_tensor *X, *lab;
            st = blo_fewshot_batch_sample(ctx, &fs, fs.train, fs.n_train, 64, BLO_F64, &rng, &X,
                                          &lab, bsrc, err, sizeof err);
            ok &= !st;
            for (int64_t i = 0; ok && i < 64; i++) {
                int64_t k = (int64_t)blo_tensor_get(lab, i), c = fs.train[k];
                seen[bsrc[i]] |= 1;
                float want[64];
                blo_rotate_image(fs.side, (int)(c % 4), ds.x + bsrc[i] * ds.d, want);
                ok &= k >= 0 && k < fs.n_train && ds.label[bsrc[i]] == fs.base_label[c / 4];
                for (int64_t j = 0; j < 64; j++) ok &= blo_tensor_get(X, i * 64 + j) == want[j];
            }
        }
        blo_ctx_rewind(ctx, mk);
    }
    int both = 0, used = 0;
    for (int64_t i = 0; i < ds.n; i++) both += seen[i] == 3, used += seen[i] != 0;
    TU_CHECK(ok, "base split: episodes and minibatches of each side draw its own base classes, "
             "minibatch images rotated and labelled right: %s", st ? err : "");
    TU_CHECK(both == 0 && used > 100, "base split: %d rows used by both sides (of %d used)", both,
             used);
    TU_CHECK(test_base >= 0 && side_of_base[test_base] == 2, "base split: meta-test episodes seen");
    blo_fewshot_data f2;
    TU_CHECK(blo_fewshot_init(&f2, &ds, BLO_FEWSHOT_SPLIT_BASE, 4, 6, 5, err, sizeof err) ==
                     BLO_ERR_INVALID && strstr(err, "multiple of 4"),
             "base split refuses 6 meta-train classes: %s", err);
    TU_CHECK(blo_fewshot_init(&f2, &ds, (blo_fewshot_split)7, 4, 8, 5, err, sizeof err) ==
                 BLO_ERR_INVALID,
             "refuses an unknown split kind");
    blo_tensor *X, *lab;
    TU_CHECK(blo_fewshot_batch_sample(ctx, &fs, fs.train, fs.n_train, 0, BLO_F32, &rng, &X, &lab,
                                      NULL, err, sizeof err) == BLO_ERR_INVALID,
             "the minibatch sampler refuses n = 0");
    TU_CHECK(blo_fewshot_split_parse("base") == BLO_FEWSHOT_SPLIT_BASE &&
                 blo_fewshot_split_parse("class") == BLO_FEWSHOT_SPLIT_CLASS &&
                 blo_fewshot_split_parse("x") == -1 &&
                 !strcmp(blo_fewshot_split_name(BLO_FEWSHOT_SPLIT_CLASS), "class"),
             "split names");
    tu_check_ok(ctx, "base split");
    blo_ctx_free(ctx);
    free(seen);
    blo_fewshot_free(&fs);
    blo_dataset_free(&ds);
}

/* A tiny float64 problem over a caller-written meta-batch: B = 2 episodes, 2-way 2-shot with
 * 3 queries, d = 5 features, a body of `layers` layers of width 3. */
static int tiny_meta(blo_fewshot_config *c, blo_fewshot_meta *m, blo_fewshot_learner learner,
                     int layers, double lambda) {
    *c = blo_fewshot_default();
    c->learner = learner;
    c->ways = 2;
    c->shots = 2;
    c->queries = 3;
    c->meta_batch = 2;
    c->hidden = 3;
    c->layers = layers;
    c->head_l2 = lambda;
    c->dtype = BLO_F64;
    c->seed = 3;
    char err[256];
    blo_status st = blo_fewshot_meta_init(m, c, NULL, 5, err, sizeof err);
    TU_CHECK(st == BLO_OK, "tiny meta init: %s", err);
    if (st) return 0;
    blo_rng g;
    blo_rng_seed(&g, 99);
    blo_init_uniform(m->xs, &g, -1, 1);
    blo_init_uniform(m->xq, &g, -1, 1);
    for (int64_t i = 0; i < 8; i++) blo_tensor_set(m->ys, i, (double)((i / 2) % 2));
    for (int64_t i = 0; i < 12; i++) blo_tensor_set(m->yq, i, (double)((i / 3) % 2));
    return 1;
}

/* F(x, y_T(x)) with y_T from T SGD steps of lr on f from the problem's start, by hand. */
static double unrolled(const blo_problem *p, blo_tensor *const *x, int T, double lr,
                       int from_x) {
    blo_ctx *ctx = blo_ctx_new(0);
    blo_tensor *y[BLO_FEWSHOT_MAXP], *g[BLO_FEWSHOT_MAXP];
    for (int i = 0; i < p->ny; i++) {
        y[i] = from_x ? blo_clone(ctx, p->init_y(ctx, i, x, p->user)) : blo_clone(ctx, p->y[i]);
        blo_set_requires_grad(y[i], 1);
    }
    blo_eval ev = {1, 0, 0, NULL};
    for (int t = 0; t < T; t++) {
        ev.inner_step = t;
        blo_tensor *f = p->lower(ctx, x, y, &ev, p->user);
        if (!f || blo_grad(ctx, 1, &f, NULL, p->ny, y, 0, g)) break;
        for (int i = 0; i < p->ny; i++) {
            y[i] = blo_clone(ctx, blo_sub(ctx, y[i], blo_scale(ctx, g[i], lr)));
            blo_set_requires_grad(y[i], 1);
        }
    }
    ev.level = 0;
    ev.inner_step = T;
    blo_tensor *F = p->upper(ctx, x, y, &ev, p->user);
    double v = F && !blo_ctx_status(ctx) ? blo_tensor_get(F, 0) : NAN;
    blo_ctx_free(ctx);
    return v;
}

/* Each of the n methods' hypergradients at the problem's start against central differences
 * (step 1e-5) of F(x, y_T(x)); err[j] gets method j's largest absolute error, *scale the
 * largest |finite difference|. */
static void fd_errors(blo_problem *p, int n, const char *const *methods, int T, double lr,
                      int from_x, double *err, double *scale) {
    int64_t tot = 0;
    for (int i = 0; i < p->nx; i++) tot += blo_tensor_numel(p->x[i]);
    double *buf = malloc(sizeof(double) * (size_t)(tot * n)), *at = buf;
    for (int j = 0; j < n; j++) {
        blo_config sc = blo_config_default();
        sc.method = methods[j];
        sc.inner = blo_opt_sgd(lr);
        sc.inner_steps = T;
        sc.init = from_x ? BLO_INIT_FROM_X : BLO_INIT_FIXED;
        sc.trhg_window = sc.neumann_terms = sc.solve_iters = 200;
        sc.tol = 1e-14;
        char msg[256];
        blo_solver *s = blo_solver_new(p, &sc, msg, sizeof msg);
        double *hg[BLO_FEWSHOT_MAXP];
        for (int i = 0; i < p->nx; i++) hg[i] = at, at += blo_tensor_numel(p->x[i]);
        blo_status st = s ? blo_solver_hypergrad(s, hg) : BLO_ERR_INVALID;
        TU_CHECK(st == BLO_OK, "%s hypergradient: %s", methods[j], s ? blo_solver_error(s) : msg);
        blo_solver_free(s);
        err[j] = st ? INFINITY : 0;
    }
    const double h = 1e-5;
    int64_t off = 0;
    *scale = 0;
    for (int i = 0; i < p->nx; i++)
        for (int64_t k = 0; k < blo_tensor_numel(p->x[i]); k++, off++) {
            double v = blo_tensor_get(p->x[i], k);
            blo_tensor_set(p->x[i], k, v + h);
            double fp = unrolled(p, p->x, T, lr, from_x);
            blo_tensor_set(p->x[i], k, v - h);
            double fm = unrolled(p, p->x, T, lr, from_x);
            blo_tensor_set(p->x[i], k, v);
            double fd = (fp - fm) / (2 * h);
            if (fabs(fd) > *scale) *scale = fabs(fd);
            for (int j = 0; j < n; j++) {
                double e = fabs(fd - buf[j * tot + off]);
                if (!(e <= err[j])) err[j] = e;
            }
        }
    free(buf);
}

static void test_hyperrep_hypergrad(void) {
    blo_fewshot_config c;
    blo_fewshot_meta m;
    double scale, e[3];
    /* rhg reverses through the T = 6 head steps exactly: finite differences of the unrolled
     * objective agree to their own truncation error. Two-layer and one-layer bodies. */
    for (int layers = 1; layers <= 2; layers++) {
        if (!tiny_meta(&c, &m, BLO_FEWSHOT_HYPERREP, layers, 0.05)) return;
        blo_problem p = blo_fewshot_meta_problem(&m);
        TU_CHECK(p.nx == 2 * layers && p.ny == 2 && !p.init_y, "hyperrep: x = the body, y = "
                 "the heads");
        fd_errors(&p, 1, (const char *[]){"rhg"}, 6, 0.5, 0, e, &scale);
        printf("hyperrep rhg (%d layers) vs fd: max error %.3g (gradient scale %.3g)\n", layers,
               e[0], scale);
        TU_CHECK(scale > 1e-3 && e[0] < 1e-7 * (1 + scale), "hyperrep rhg vs finite differences "
                 "(%d layers): %.3g", layers, e[0]);
        blo_fewshot_meta_free(&m);
    }
    /* The same with the features scaled to unit length before the head. */
    if (!tiny_meta(&c, &m, BLO_FEWSHOT_HYPERREP, 2, 0.05)) return;
    c.normalize = 1;
    {
        blo_problem pn = blo_fewshot_meta_problem(&m);
        fd_errors(&pn, 1, (const char *[]){"rhg"}, 6, 0.5, 0, e, &scale);
        printf("hyperrep rhg, normalised features, vs fd: max error %.3g (scale %.3g)\n", e[0],
               scale);
        TU_CHECK(scale > 1e-3 && e[0] < 1e-7 * (1 + scale), "hyperrep rhg with normalised "
                 "features vs finite differences: %.3g", e[0]);
    }
    blo_fewshot_meta_free(&m);
    /* With the head problems solved (T = 150 steps of 0.5 on a λ = 1 strongly convex head
     * problem: y_T = y* to rounding), rhg and the implicit cg both give the gradient of
     * F(x, y*(x)); first_order, with a start that does not depend on x, gives only ∂F/∂x and
     * must miss it (a check that this comparison can fail). */
    if (!tiny_meta(&c, &m, BLO_FEWSHOT_HYPERREP, 2, 1.0)) return;
    blo_problem p = blo_fewshot_meta_problem(&m);
    fd_errors(&p, 3, (const char *[]){"rhg", "cg", "first_order"}, 150, 0.5, 0, e, &scale);
    printf("hyperrep at y*: rhg error %.3g, cg error %.3g, first_order %.3g (scale %.3g)\n",
           e[0], e[1], e[2], scale);
    TU_CHECK(scale > 1e-3 && e[0] < 1e-7 * (1 + scale), "hyperrep rhg at large T: %.3g", e[0]);
    TU_CHECK(e[1] < 1e-6 * (1 + scale), "hyperrep cg (implicit) vs the gradient through the "
             "solved head problems: %.3g", e[1]);
    TU_CHECK(e[2] > 1e-2 * scale, "first_order differs from the true hypergradient: %.3g", e[2]);
    blo_fewshot_meta_free(&m);
    /* MAML: second order through T = 3 steps from y_0 = θ broadcast. */
    if (!tiny_meta(&c, &m, BLO_FEWSHOT_MAML, 1, 0)) return;
    p = blo_fewshot_meta_problem(&m);
    TU_CHECK(p.nx == 4 && p.ny == 4 && p.init_y, "maml: x = y's start");
    fd_errors(&p, 1, (const char *[]){"rhg"}, 3, 0.3, 1, e, &scale);
    printf("maml rhg vs fd: max error %.3g (scale %.3g)\n", e[0], scale);
    TU_CHECK(scale > 1e-3 && e[0] < 1e-7 * (1 + scale), "maml rhg vs finite differences: %.3g",
             e[0]);
    blo_fewshot_meta_free(&m);
    /* Refusals. */
    char err[256];
    c = blo_fewshot_default();
    c.learner = BLO_FEWSHOT_HYPERREP;
    c.head_l2 = 0;
    TU_CHECK(blo_fewshot_meta_init(&m, &c, NULL, 5, err, sizeof err) == BLO_ERR_INVALID,
             "hyperrep refuses λ = 0");
    c.head_l2 = 0.1;
    c.hidden = 0;
    TU_CHECK(blo_fewshot_meta_init(&m, &c, NULL, 5, err, sizeof err) == BLO_ERR_INVALID,
             "hyperrep refuses a linear network (no body)");
    c.hidden = 4;
    c.layers = BLO_FEWSHOT_MAX_LAYERS + 1;
    TU_CHECK(blo_fewshot_meta_init(&m, &c, NULL, 5, err, sizeof err) == BLO_ERR_INVALID,
             "refuses too many layers");
    TU_CHECK(blo_fewshot_learner_parse("hyperrep") == BLO_FEWSHOT_HYPERREP &&
                 blo_fewshot_learner_parse("pretrain") == BLO_FEWSHOT_PRETRAIN &&
                 blo_fewshot_learner_parse("nope") == -1,
             "learner names");
}

/* (1/M) Σ_i CE_i of episode b of X [B, M, d] with labels lab[b M ..] under the b-th copy of a
 * one-hidden-layer network w = (W1 [B, d, H], b1 [B, 1, H], W2 [B, H, N], b2 [B, 1, N]),
 * by plain loops: the per-episode mean the few-shot objectives are defined by. */
static double episode_ce(const blo_tensor *X, const blo_tensor *lab, blo_tensor *const *w,
                         int64_t b) {
    const int64_t M = blo_tensor_dim(X, 1), d = blo_tensor_dim(X, 2);
    const int64_t H = blo_tensor_dim(w[0], 2), N = blo_tensor_dim(w[2], 2);
    double sum = 0, h[16], z[16];
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < H; j++) {
            double a = blo_tensor_get(w[1], b * H + j);
            for (int64_t k = 0; k < d; k++)
                a += blo_tensor_get(X, (b * M + i) * d + k) *
                     blo_tensor_get(w[0], (b * d + k) * H + j);
            h[j] = a > 0 ? a : 0;
        }
        double zmax = -INFINITY, se = 0;
        for (int64_t n = 0; n < N; n++) {
            z[n] = blo_tensor_get(w[3], b * N + n);
            for (int64_t j = 0; j < H; j++)
                z[n] += h[j] * blo_tensor_get(w[2], (b * H + j) * N + n);
            if (z[n] > zmax) zmax = z[n];
        }
        for (int64_t n = 0; n < N; n++) se += exp(z[n] - zmax);
        sum += zmax + log(se) - z[(int64_t)blo_tensor_get(lab, b * M + i)];
    }
    return sum / (double)M;
}

/* MAML's objectives and first-order hypergradient on the tiny problem (2 episodes, 2-way
 * 2-shot): f = Σ_b (support CE averaged over the episode's N K images), so an inner SGD step
 * of lr moves each copy by lr times the gradient of its own episode's mean CE whatever K is,
 * and F = (1/B) Σ_b (query CE averaged over its N Q images), both against plain loops at
 * copies that differ by episode; first_order's hypergradient is Σ_b ∂F/∂y_b at y_T, with y_T
 * from T SGD steps by hand (first-order MAML). */
static void test_maml_objectives(void) {
    blo_fewshot_config c;
    blo_fewshot_meta m;
    if (!tiny_meta(&c, &m, BLO_FEWSHOT_MAML, 1, 0)) return;
    blo_problem p = blo_fewshot_meta_problem(&m);
    blo_ctx *ctx = blo_ctx_new(0);
    blo_tensor *y[BLO_FEWSHOT_MAXP], *g[BLO_FEWSHOT_MAXP];
    blo_rng r;
    blo_rng_seed(&r, 17);
    for (int i = 0; i < p.ny; i++) {
        y[i] = blo_clone(ctx, p.init_y(ctx, i, p.x, p.user));
        for (int64_t k = 0; k < blo_tensor_numel(y[i]); k++)
            blo_tensor_set(y[i], k, blo_tensor_get(y[i], k) + 0.3 * (blo_rng_uniform(&r) - 0.5));
    }
    blo_eval ev = {1, 0, 0, NULL};
    blo_tensor *f = p.lower(ctx, p.x, y, &ev, p.user);
    ev.level = 0;
    blo_tensor *F = p.upper(ctx, p.x, y, &ev, p.user);
    double fh = episode_ce(m.xs, m.ys, y, 0) + episode_ce(m.xs, m.ys, y, 1);
    double Fh = 0.5 * (episode_ce(m.xq, m.yq, y, 0) + episode_ce(m.xq, m.yq, y, 1));
    TU_CHECK(f && F && fabs(blo_tensor_get(f, 0) - fh) < 1e-12 * (1 + fh) &&
                 fabs(blo_tensor_get(F, 0) - Fh) < 1e-12 * (1 + Fh),
             "maml: f = Σ_b mean support CE_b (%.15g, by hand %.15g), F = mean over episodes of "
             "the mean query CE (%.15g, by hand %.15g)", f ? blo_tensor_get(f, 0) : NAN, fh,
             F ? blo_tensor_get(F, 0) : NAN, Fh);

    /* first_order against Σ_b ∂F/∂y_b after T = 3 steps of 0.3 from θ. */
    const int T = 3;
    const double lr = 0.3;
    for (int i = 0; i < p.ny; i++) {
        y[i] = blo_clone(ctx, p.init_y(ctx, i, p.x, p.user));
        blo_set_requires_grad(y[i], 1);
    }
    ev.level = 1;
    for (int t = 0; t < T; t++) {
        ev.inner_step = t;
        f = p.lower(ctx, p.x, y, &ev, p.user);
        if (!f || blo_grad(ctx, 1, &f, NULL, p.ny, y, 0, g)) break;
        for (int i = 0; i < p.ny; i++) {
            y[i] = blo_clone(ctx, blo_sub(ctx, y[i], blo_scale(ctx, g[i], lr)));
            blo_set_requires_grad(y[i], 1);
        }
    }
    ev.level = 0;
    ev.inner_step = T;
    F = p.upper(ctx, p.x, y, &ev, p.user);
    int ok = F && !blo_grad(ctx, 1, &F, NULL, p.ny, y, 0, g);
    TU_CHECK(ok, "maml: the gradient of F by hand: %s", blo_ctx_error(ctx));
    blo_config sc = blo_config_default();
    sc.method = "first_order";
    sc.inner = blo_opt_sgd(lr);
    sc.inner_steps = T;
    sc.init = BLO_INIT_FROM_X;
    char msg[256];
    blo_solver *s = blo_solver_new(&p, &sc, msg, sizeof msg);
    double buf[64], *hg[BLO_FEWSHOT_MAXP], *at = buf, err = 0, scale = 0;
    for (int i = 0; i < p.nx; i++) hg[i] = at, at += blo_tensor_numel(p.x[i]);
    TU_CHECK(at - buf <= 64, "maml: the tiny network fits the buffer");
    blo_status st = s && at - buf <= 64 ? blo_solver_hypergrad(s, hg) : BLO_ERR_INVALID;
    TU_CHECK(st == BLO_OK, "maml first_order: %s", s ? blo_solver_error(s) : msg);
    for (int i = 0; ok && !st && i < p.nx; i++) {
        int64_t n = blo_tensor_numel(p.x[i]);
        for (int64_t k = 0; k < n; k++) {
            double want = blo_tensor_get(g[i], k) + blo_tensor_get(g[i], n + k); /* b = 0, 1 */
            if (fabs(want) > scale) scale = fabs(want);
            if (fabs(want - hg[i][k]) > err) err = fabs(want - hg[i][k]);
        }
    }
    printf("maml first_order vs Σ_b dF/dy_b at y_T: max error %.3g (scale %.3g)\n", err, scale);
    TU_CHECK(!st && scale > 1e-3 && err < 1e-12 * (1 + scale),
             "maml first_order = Σ_b ∂F/∂y_b at y_T: error %.3g", err);
    blo_solver_free(s);
    blo_ctx_free(ctx);
    blo_fewshot_meta_free(&m);
}

static void test_fashion(void) {
    if (access(FASHION_DIR "/t10k-labels-idx1-ubyte.gz", R_OK) != 0) {
        printf("fashion-mnist not found under %s: skipped\n", FASHION_DIR);
        return;
    }
    char err[512];
    blo_dataset ds;
    blo_status st = blo_mnist_load(FASHION_DIR, "t10k", &ds, err, sizeof err);
    TU_CHECK(st == BLO_OK, "load fashion t10k: %s", err);
    if (st) return;
    blo_fewshot_data fs;
    st = blo_fewshot_init(&fs, &ds, BLO_FEWSHOT_SPLIT_BASE, 4, 28, 0, err, sizeof err);
    TU_CHECK(st == BLO_OK, "fashion init: %s", err);
    if (!st) {
        TU_CHECK(fs.side == 28 && fs.n_classes == 40 && fs.n_train == 28 && fs.n_test == 12,
                 "fashion: 28x28, 40 classes, 28 / 12");
        int base_is_label = 1;
        for (int64_t b = 0; b < fs.n_base; b++) base_is_label &= fs.base_label[b] == b;
        TU_CHECK(base_is_label, "fashion: base class b is label b");
        blo_ctx *ctx = blo_ctx_new(0);
        blo_rng rng;
        blo_rng_seed(&rng, 3);
        int64_t src[5 * 16];
        int ok = 1;
        for (int e = 0; e < 50 && ok; e++) {
            blo_mark mk = blo_ctx_mark(ctx);
            blo_fewshot_episode ep;
            int test = e % 2;
            const int64_t *set = test ? fs.test : fs.train;
            int64_t nset = test ? fs.n_test : fs.n_train;
            st = blo_fewshot_episode_sample(ctx, &fs, set, nset, 5, 1, 15, BLO_F32, &rng, &ep,
                                            src, err, sizeof err);
            ok = !st && check_episode(&fs, &ep, src, set, nset) &&
                 blo_tensor_dim(ep.xs, 0) == 5 && blo_tensor_dim(ep.xs, 1) == 784 &&
                 blo_tensor_dim(ep.xq, 0) == 75;
            blo_ctx_rewind(ctx, mk);
        }
        TU_CHECK(ok, "fashion: 5-way 1-shot 15-query episodes from each split: %s",
                 st ? err : "");
        blo_ctx_free(ctx);
        blo_fewshot_free(&fs);
    }
    blo_dataset_free(&ds);
}

/* The three learners on tinymnist's rotation classes (split by base class: 8 meta-train
 * classes, the 4 rotations of one garment meta-test): after training, the meta-test queries
 * are classified far above chance (1/3). */
static void test_learners_tiny(void) {
    blo_fewshot_config c = blo_fewshot_default();
    c.data_dir = BLO_SOURCE_DIR "/tests/data/tinymnist";
    c.train_classes = 8;
    c.ways = 3;
    c.shots = 2;
    c.queries = 5;
    c.meta_batch = 4;
    c.hidden = 0;
    c.eval_episodes = 100;
    c.solver.outer_iters = 60;
    c.solver.outer = blo_opt_adam(0.01);
    c.seed = 1;
    blo_fewshot_result r;
    char err[512] = "";
    blo_status st = blo_fewshot_run(&c, &r, err, sizeof err);
    TU_CHECK(st == BLO_OK, "fewshot maml: %s", err);
    if (!st) {
        printf("tiny maml: acc %.3f ± %.3f after %d steps, %.3f before; F %.3f, %lld iters\n",
               r.acc, r.ci, c.solver.inner_steps, r.acc0, r.upper, (long long)r.iters);
        TU_CHECK(r.iters == 60 && r.n_classes == 12 && r.n_train == 8 && r.side == 8,
                 "fewshot maml: iterations and classes");
        TU_CHECK(r.acc > 0.6 && r.acc > r.acc0 + 0.2, "fewshot maml: 3-way accuracy %.3f after "
                 "fine-tuning (%.3f before)", r.acc, r.acc0);
        TU_CHECK(r.ci >= 0 && r.ci < 0.1, "fewshot maml: a 95%% interval %.3f", r.ci);
    }
    c.ways = 5; /* 4 meta-test classes */
    TU_CHECK(blo_fewshot_run(&c, &r, err, sizeof err) == BLO_ERR_INVALID,
             "fewshot refuses 5 ways of 4 meta-test classes");
    c.ways = 3;
    c.train_classes = 6;
    TU_CHECK(blo_fewshot_run(&c, &r, err, sizeof err) == BLO_ERR_INVALID,
             "fewshot refuses 6 meta-train classes split by base class");
    c.train_classes = 8;

    /* Meta feature learning: a 64-32-32 body, heads fitted from zero. */
    c.learner = BLO_FEWSHOT_HYPERREP;
    c.hidden = 32;
    c.solver.method = "rhg";
    c.solver.inner = blo_opt_sgd(0.5);
    c.solver.outer_iters = 60;
    st = blo_fewshot_run(&c, &r, err, sizeof err);
    TU_CHECK(st == BLO_OK, "fewshot hyperrep: %s", err);
    if (!st) {
        printf("tiny hyperrep: acc %.3f ± %.3f; F %.3f\n", r.acc, r.ci, r.upper);
        TU_CHECK(r.iters == 60 && r.acc > 0.6 && isnan(r.acc0), "fewshot hyperrep: 3-way "
                 "accuracy %.3f", r.acc);
    }
    /* The pretrained baseline, and a body left at its random start (no steps) below it. */
    c.learner = BLO_FEWSHOT_PRETRAIN;
    c.pretrain_steps = 200;
    c.pretrain_lr = 0.01;
    c.pretrain_batch = 32;
    c.eval_steps = 20;
    st = blo_fewshot_run(&c, &r, err, sizeof err);
    TU_CHECK(st == BLO_OK, "fewshot pretrain: %s", err);
    if (!st) {
        printf("tiny pretrain: acc %.3f ± %.3f; last minibatch loss %.3f\n", r.acc, r.ci, r.upper);
        TU_CHECK(r.iters == 200 && r.acc > 0.6 && r.upper < 0.5, "fewshot pretrain: 3-way "
                 "accuracy %.3f, loss %.3f", r.acc, r.upper);
    }
    c.resume = "x.ckpt";
    TU_CHECK(blo_fewshot_run(&c, &r, err, sizeof err) == BLO_ERR_INVALID,
             "the baseline refuses to resume");
}

/* One rotation per base class: the classes are the base classes, images are not turned, and a
 * split by base class takes any count; rotations other than 1 and 4 are refused. */
static void test_one_rotation(void) {
    char err[512];
    blo_dataset ds;
    if (!load_tiny(&ds)) return;
    blo_status st;
    blo_fewshot_data fs;
    st = blo_fewshot_init(&fs, &ds, BLO_FEWSHOT_SPLIT_BASE, 1, 2, 3, err, sizeof err);
    TU_CHECK(st == BLO_OK, "one rotation: %s", err);
    if (st) {
        blo_dataset_free(&ds);
        return;
    }
    TU_CHECK(fs.rotations == 1 && fs.n_classes == fs.n_base && fs.n_train == 2 &&
                 fs.n_test == fs.n_base - 2,
             "one rotation: %lld classes = %lld base classes, 2 meta-train",
             (long long)fs.n_classes, (long long)fs.n_base);
    blo_ctx *ctx = blo_ctx_new(0);
    blo_rng rng;
    blo_rng_seed(&rng, 5);
    int64_t src[2 * 4];
    int ok = 1;
    for (int e = 0; e < 50 && ok; e++) {
        blo_mark mk = blo_ctx_mark(ctx);
        blo_fewshot_episode ep;
        st = blo_fewshot_episode_sample(ctx, &fs, fs.train, fs.n_train, 2, 1, 3, BLO_F64, &rng,
                                        &ep, src, err, sizeof err);
        ok = !st;
        for (int64_t i = 0; ok && i < 8; i++) { /* support rows 0, 1, then queries 2..7 */
            blo_tensor *t = i < 2 ? ep.xs : ep.xq;
            int64_t at = i < 2 ? i : i - 2, w = i < 2 ? i : (i - 2) / 3;
            ok &= ds.label[src[i]] == fs.base_label[ep.way_class[w]];
            for (int64_t j = 0; j < ds.d; j++)
                ok &= blo_tensor_get(t, at * ds.d + j) == ds.x[src[i] * ds.d + j];
        }
        blo_ctx_rewind(ctx, mk);
    }
    TU_CHECK(ok, "one rotation: episodes hold the base classes' images unturned: %s",
             st ? err : "");
    blo_fewshot_data f2;
    TU_CHECK(blo_fewshot_init(&f2, &ds, BLO_FEWSHOT_SPLIT_BASE, 2, 2, 3, err, sizeof err) ==
                     BLO_ERR_INVALID && strstr(err, "rotations"),
             "2 rotations refused: %s", err);
    blo_ctx_free(ctx);
    blo_fewshot_free(&fs);
    blo_dataset_free(&ds);
}

int main(void) {
    test_rotation();
    test_tiny();
    test_base_split();
    test_one_rotation();
    test_hyperrep_hypergrad();
    test_maml_objectives();
    test_fashion();
    test_learners_tiny();
    return tu_finish("fewshot");
}
