/* blo/fewshot.h — few-shot classification: episodes with rotation classes and three learners
 * over them (`blo meta fewshot`). */
#ifndef BLO_FEWSHOT_H
#define BLO_FEWSHOT_H
#pragma GCC visibility push(default)

#include "blo/data.h"
#include "blo/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Few-shot episodes with rotation classes ------------------------------------------------
 * A class set for few-shot classification built from a labelled dataset of square side x side
 * one-channel images (an MNIST-layout folder, or a class-per-folder PNG tree read by
 * blo_image_folder_load): with R = 4 rotations, every base class that has examples, seen at
 * 0, 90, 180 and 270 degrees, is a class of its own (the rotation augmentation of
 * Omniglot-style benchmarks), so the 10 classes of Fashion-MNIST give 40; with R = 1 the
 * classes are the base classes. Class c is base class c / R (the base classes in order of
 * their labels) turned c % R quarter turns counter-clockwise; with every label present (as in
 * Fashion-MNIST) base class b is label b, so c = R label + turns. Rotations move pixels by an
 * exact index permutation. The classes are split into disjoint meta-train and meta-test sets;
 * an episode draws N classes of one set and K + Q examples of each. */

/* How the classes are split. By base class (the default), all R rotations of a base class
 * fall on the same side, so meta-train and meta-test share no image (10 base classes: e.g.
 * 7 x 4 = 28 meta-train, 12 meta-test). By class, the rotation classes are split one by one,
 * so a meta-test class such as "shirt at 90°" may rotate images meta-train sees upright. */
typedef enum blo_fewshot_split {
    BLO_FEWSHOT_SPLIT_BASE = 0,
    BLO_FEWSHOT_SPLIT_CLASS
} blo_fewshot_split;
const char *blo_fewshot_split_name(blo_fewshot_split k); /* "base", "class"; "?" otherwise */
int blo_fewshot_split_parse(const char *name);           /* -1 if unknown */

/* The index map of a rotation by `turns` quarter turns counter-clockwise (any integer, taken
 * mod 4) of a side x side row-major image: rotated[k] = image[map[k]] for k < side². One turn
 * sends pixel (row i, column j) of the result to image (j, side - 1 - i), as numpy's rot90. */
void blo_rotation_map(int64_t side, int turns, int64_t *map);
/* out[k] = in[map[k]] for the map above; out must not alias in. */
void blo_rotate_image(int64_t side, int turns, const float *in, float *out);

typedef struct blo_fewshot_data {
    const blo_dataset *ds;  /* borrowed: dense, labelled, d = side² */
    int64_t side;
    int64_t n_base;         /* base classes with at least one example */
    int64_t n_classes;      /* rotations n_base */
    int rotations;          /* R: 1 or 4 */
    int64_t *base_label;    /* [n_base] the dataset label of each base class, ascending */
    int64_t *start, *count; /* [n_base] the base class's rows are rows[start .. start + count) */
    int64_t *rows;          /* [ds->n] example indices grouped by base class, ascending within */
    int64_t *map[4];        /* the rotation maps of 0..3 quarter turns, [side²] each */
    blo_fewshot_split split;
    int64_t n_train, n_test;
    int64_t *train, *test;  /* the meta-train and meta-test class ids, ascending, disjoint */
} blo_fewshot_data;

/* Builds the class set of ds (borrowed; it must outlive fs) with R = rotations (1 or 4) and
 * splits the classes: n_train of them are meta-train, the rest meta-test, drawn by a
 * permutation from seed of the base classes (split by base: n_train / R of them, so n_train
 * must be a multiple of R) or of the classes (split by class). n_train in [0, n_classes].
 * Errors: BLO_ERR_INVALID for a sparse or unlabelled set, a d that is not a square, a bad
 * rotations, n_train or split; BLO_ERR_NOMEM. On failure fs holds nothing to free. */
blo_status blo_fewshot_init(blo_fewshot_data *fs, const blo_dataset *ds, blo_fewshot_split split,
                            int rotations, int64_t n_train, uint64_t seed, char *err,
                            size_t errlen);
void blo_fewshot_free(blo_fewshot_data *fs); /* NULL-safe; fs->ds is not freed */
/* Examples of class c (those of its base class). */
int64_t blo_fewshot_class_count(const blo_fewshot_data *fs, int64_t c);

#define BLO_FEWSHOT_MAX_WAYS 256

/* One N-way K-shot episode, its tensors in the caller's context: support xs [N K, side²] and
 * ys [N K] (i64), query xq [N Q, side²] and yq [N Q] (i64); rows are grouped by way (row
 * w K + k of the support, w Q + q of the query, both labelled w). */
typedef struct blo_fewshot_episode {
    blo_tensor *xs, *ys, *xq, *yq;
    int64_t ways, shots, queries;
    int64_t way_class[BLO_FEWSHOT_MAX_WAYS]; /* the class id behind label w */
} blo_fewshot_episode;

/* Draws an episode from rng: N distinct classes out of classes[0 .. n_classes) (normally
 * fs->train or fs->test), uniformly, in random order (way w is relabelled w), then K + Q
 * distinct examples of each class uniformly without replacement, the first K its support,
 * the rest its query, each image rotated as its class says. The same rng state gives the same
 * episode. src_rows, when not NULL, receives the dataset row of each image: N K support rows,
 * then N Q query rows, in tensor order. dt is BLO_F32 or BLO_F64. Errors (BLO_ERR_INVALID,
 * message in err): N outside [1, min(n_classes, BLO_FEWSHOT_MAX_WAYS)], K < 1, Q < 0, an
 * unknown or repeated class id, a class with fewer than K + Q examples; BLO_ERR_NOMEM, or the
 * context's error. */
blo_status blo_fewshot_episode_sample(blo_ctx *ctx, const blo_fewshot_data *fs,
                                      const int64_t *classes, int64_t n_classes, int64_t N,
                                      int64_t K, int64_t Q, blo_dtype dt, blo_rng *rng,
                                      blo_fewshot_episode *ep, int64_t *src_rows, char *err,
                                      size_t errlen);
/* A plain classification minibatch from the classes classes[0 .. n_classes): n examples, each
 * of a uniformly drawn class and a uniformly drawn example of it (with replacement), rotated
 * as its class says, labelled with the class's position in classes[]: *x [n, side²] (dt) and
 * *labels [n] (i64) in ctx. src_rows as above. Errors as the episode sampler's (n >= 1, no
 * class without examples). */
blo_status blo_fewshot_batch_sample(blo_ctx *ctx, const blo_fewshot_data *fs,
                                    const int64_t *classes, int64_t n_classes, int64_t n,
                                    blo_dtype dt, blo_rng *rng, blo_tensor **x,
                                    blo_tensor **labels, int64_t *src_rows, char *err,
                                    size_t errlen);

/* ---- Few-shot learners over these episodes ---------------------------------------------------
 * One network for all learners: a body of `layers` hidden layers of width H with ReLU after
 * each (784-H-H by default), then a linear head H-N (N ways); params p = (W1 [d, H], b1 [1, H],
 * ..., W_head [H, N], b_head [1, N]); with H = 0 (MAML only) the network is one linear map.
 * One outer iteration draws B meta-train episodes (a stream seeded by (seed, iteration) alone,
 * so a resumed run sees the same episodes); with every episode's support CE_b and query QE_b
 * (mean cross-entropies):
 *   MAML (Finn et al. 2017): x = θ = every param, y = B copies stacked [B, ...] from
 *       y_0 = θ (init from_x); f = Σ_b CE_b, F = (1/B) Σ_b QE_b. rhg: MAML; first_order:
 *       FOMAML; the other registry methods apply as to any bilevel problem.
 *   meta feature learning (hyper-representation, Franceschi et al., ICML 2018): x = the
 *       body, y = B heads [B, H, N] and [B, 1, N] from zero (fixed init);
 *       f = Σ_b (CE_b + ½λ‖(W_b, b_b)‖²), F = (1/B) Σ_b QE_b. Every head problem is strongly
 *       convex (λ > 0), so the implicit methods (cg) apply as well as rhg and first_order
 *       (which, with a start that does not depend on x, sees only ∂F/∂x: the query loss of
 *       the heads fitted on the support set).
 *   pretrained baseline: the body and one head over all meta-train classes, trained by Adam
 *       on minibatches of meta-train images (plain supervised learning); no bilevel problem.
 * Evaluation on eval_episodes meta-test episodes (their own stream): MAML fine-tunes θ on the
 * support set by eval_steps SGD steps of solver.inner.lr; the two others keep the body and fit
 * a fresh head from zero on the support features by the same steps on CE + ½λ‖head‖²; the
 * score is the query accuracy, mean over episodes with a 95% interval (1.96 standard errors).
 */
typedef enum blo_fewshot_learner {
    BLO_FEWSHOT_MAML = 0,
    BLO_FEWSHOT_HYPERREP,
    BLO_FEWSHOT_PRETRAIN
} blo_fewshot_learner;
const char *blo_fewshot_learner_name(blo_fewshot_learner k); /* "maml", "hyperrep", "pretrain" */
int blo_fewshot_learner_parse(const char *name);             /* -1 if unknown */

#define BLO_FEWSHOT_MAX_LAYERS 4

typedef struct blo_fewshot_config {
    const char *data_dir;   /* MNIST layout; no default (NULL: an error unless images_dir) */
    const char *split;      /* which file pair: "train" or "t10k" */
    const char *images_dir; /* a class-per-folder PNG tree (blo_image_folder_load, gray) read
                               instead of data_dir when not NULL */
    int64_t image_side;     /* ... its images resized to this side (0: as they are; they must
                               then all be square and of one size) */
    int rotations;          /* R: 4 (each base class at 4 quarter turns) or 1 */
    blo_fewshot_split class_split;
    int64_t train_classes;  /* meta-train classes; the rest are meta-test */
    blo_fewshot_learner learner;
    int64_t ways, shots, queries, meta_batch;
    int64_t hidden;         /* H; 0: a linear network (MAML only) */
    int layers;             /* hidden layers of the body, 1 .. BLO_FEWSHOT_MAX_LAYERS */
    double head_l2;         /* λ of the head problems (hyperrep and the fitted heads), > 0 */
    int normalize;          /* feed the head φ / sqrt(‖φ‖² + 1e-6), the body's features scaled
                               to unit length per image: bounds the head problem's curvature
                               (≤ ½ + λ), so a fixed head step stays stable however the body
                               scales its features */
    int64_t eval_episodes;
    int eval_steps;         /* < 0: solver.inner_steps */
    int64_t pretrain_steps, pretrain_batch; /* the baseline's Adam steps and minibatch */
    double pretrain_lr;
    blo_dtype dtype;
    blo_config solver;      /* method, inner steps and lr, outer optimizer, budget, checkpoints */
    const char *resume;     /* a checkpoint of an earlier run of the same settings (MAML,
                               hyperrep), or NULL */
    uint64_t seed;          /* the class split, the initial weights, the episodes */
    blo_task_iter_fn on_iter; /* per outer iteration (pretrain: per Adam step, rec.upper the
                                 minibatch loss) */
    void *user;
} blo_fewshot_config;
/* The "train" split of data_dir (no default: set it), split by base class 28 / 12 (as for
 * Fashion-MNIST's 10 classes), MAML, 5-way 1-shot with 15 queries, meta-batch 4, the body
 * 784-64-64 (H = 64, 2 layers), λ = 0.01; first_order with T = 5 SGD steps of 0.1, outer Adam
 * 1e-3, 300 iterations; 600 meta-test episodes adapted by T steps; the baseline 2000 Adam
 * steps of 1e-3 on minibatches of 64; f32. */
blo_fewshot_config blo_fewshot_default(void);

typedef struct blo_fewshot_result {
    double acc, ci;           /* meta-test query accuracy after eval_steps steps */
    double acc0, ci0;         /* MAML: before fine-tuning (chance: the ways are relabelled);
                                 NAN for the learners that start a head from zero */
    int64_t n_classes, n_train, n_test, side;
    double upper;             /* the last meta-batch's query loss (pretrain: minibatch loss) */
    int64_t iters;            /* outer iterations (pretrain: Adam steps) */
    double seconds;           /* training time */
    size_t peak_bytes;
} blo_fewshot_result;
/* Loads the data, trains the learner (continuing from c->resume when given) and evaluates it.
 * Errors: BLO_ERR_IO / BLO_ERR_FORMAT for the data, BLO_ERR_INVALID for settings (among them
 * an episode shape a side of the split cannot give), BLO_ERR_NUMERIC for a diverged run, with
 * a message in err. */
blo_status blo_fewshot_run(const blo_fewshot_config *c, blo_fewshot_result *r, char *err,
                           size_t errlen);

#ifdef __cplusplus
}
#endif

#pragma GCC visibility pop
#endif
