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
 *   - Fashion-MNIST, when /usr/share/datasets/fashion-mnist is there: 40 classes, 30 / 10,
 *     5-way 1-shot episodes of 28x28 images;
 *   - blo_fewshot_maml_run on tinymnist: first-order MAML of a linear classifier, meta-test
 *     accuracy after fine-tuning far above chance; too many ways for the split refused. */
#include "blo/tasks.h"
#include "testutil.h"

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

static void test_tiny(void) {
    char err[512];
    blo_dataset ds;
    blo_status st = blo_mnist_load(BLO_SOURCE_DIR "/tests/data/tinymnist", "train", &ds, err, sizeof err);
    TU_CHECK(st == BLO_OK, "load tinymnist: %s", err);
    if (st) return;
    blo_fewshot_data fs;
    st = blo_fewshot_init(&fs, &ds, 8, 1, err, sizeof err);
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
        if (blo_fewshot_init(&g, &ds, 8, s, err, sizeof err)) break;
        differs = memcmp(g.train, fs.train, sizeof(int64_t) * 8) != 0;
        blo_fewshot_free(&g);
    }
    TU_CHECK(differs, "tiny: the split depends on the seed");
    blo_fewshot_data same;
    st = blo_fewshot_init(&same, &ds, 8, 1, err, sizeof err);
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
    TU_CHECK(blo_fewshot_init(&f2, &ds, 13, 1, err, sizeof err) == BLO_ERR_INVALID,
             "refuses 13 meta-train classes of 12");
    blo_dataset odd = ds;
    odd.d = 63;
    odd.n = 1;
    TU_CHECK(blo_fewshot_init(&f2, &odd, 1, 1, err, sizeof err) == BLO_ERR_INVALID,
             "refuses a non-square image");
    tu_check_ok(ctx, "tiny episodes");
    blo_ctx_free(ctx);
    blo_fewshot_free(&fs);
    blo_dataset_free(&ds);
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
    st = blo_fewshot_init(&fs, &ds, 30, 0, err, sizeof err);
    TU_CHECK(st == BLO_OK, "fashion init: %s", err);
    if (!st) {
        TU_CHECK(fs.side == 28 && fs.n_classes == 40 && fs.n_train == 30 && fs.n_test == 10,
                 "fashion: 28x28, 40 classes, 30 / 10");
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

/* First-order MAML of a linear classifier on tinymnist's rotation classes: after meta-training,
 * a few SGD steps on one support set classify the meta-test queries far above chance. */
static void test_maml_tiny(void) {
    blo_fewshot_maml_config c = blo_fewshot_maml_default();
    c.data_dir = BLO_SOURCE_DIR "/tests/data/tinymnist";
    c.train_classes = 8;
    c.ways = 3;
    c.shots = 2;
    c.queries = 5;
    c.meta_batch = 4;
    c.eval_episodes = 100;
    c.solver.outer_iters = 60;
    c.solver.outer = blo_opt_adam(0.01);
    c.seed = 1;
    blo_fewshot_maml_result r;
    char err[512] = "";
    blo_status st = blo_fewshot_maml_run(&c, &r, err, sizeof err);
    TU_CHECK(st == BLO_OK, "fewshot maml: %s", err);
    if (st) return;
    printf("tiny maml: acc %.3f ± %.3f after %d steps, %.3f before; F %.3f, %lld iters\n", r.acc,
           r.ci, c.solver.inner_steps, r.acc0, r.upper, (long long)r.iters);
    TU_CHECK(r.iters == 60 && r.n_classes == 12 && r.n_train == 8 && r.side == 8,
             "fewshot maml: iterations and classes");
    TU_CHECK(r.acc > 0.7 && r.acc > r.acc0 + 0.2, "fewshot maml: 3-way accuracy %.3f after "
             "fine-tuning (%.3f before)", r.acc, r.acc0);
    TU_CHECK(r.ci >= 0 && r.ci < 0.1, "fewshot maml: a 95%% interval %.3f", r.ci);
    c.ways = 5; /* 4 meta-test classes */
    TU_CHECK(blo_fewshot_maml_run(&c, &r, err, sizeof err) == BLO_ERR_INVALID,
             "fewshot maml refuses 5 ways of 4 meta-test classes");
}

int main(void) {
    test_rotation();
    test_tiny();
    test_fashion();
    test_maml_tiny();
    return tu_finish("fewshot");
}
