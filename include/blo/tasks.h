/* blo/tasks.h — ready-to-run bilevel tasks (the CLI's `blo <task>` commands are thin layers
 * over these).
 *
 * Data hyper-cleaning (Franceschi et al. ICML 2017; protocol of Liu et al. NeurIPS 2021,
 * Table 3): a training set whose labels are partly corrupted, a clean validation set;
 *     x = one weight per training example (σ(x_i) ∈ (0, 1), start x = 0)
 *     y = the classifier: linear (W, b), or Linear(d, H) → Linear(H, C)
 *     f(x, y) = (1/n) Σ_i σ(x_i) CE(model_y(X_i), ỹ_i)     (lower: weighted training loss)
 *     F(x, y) = mean CE on the validation set              (upper)
 * The cleaner keeps the examples with x_i ≥ 0; with "clean" meaning the noisy label equals
 * the true one, precision = |kept ∧ clean| / |kept|, recall = |kept ∧ clean| / |clean|.
 */
#ifndef BLO_TASKS_H_PUBLIC
#define BLO_TASKS_H_PUBLIC
#pragma GCC visibility push(default)

#include "blo/bilevel.h"
#include "blo/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Cleaner scores of weights x[n] (kept = x_i ≥ 0) against noisy and true labels. A ratio with
 * an empty denominator is 0. */
void blo_cleaner_scores(int64_t n, const double *x, const int64_t *noisy, const int64_t *truth,
                        double *precision, double *recall, double *f1);

/* One outer iteration as a task reports it. */
typedef struct blo_task_iter {
    blo_record rec;   /* the solver's record */
    double test_acc;  /* accuracy of the current model y_T on the test set, NAN when not evaluated */
    double test_acc_start; /* accuracy of the learned start y_0, when the start is learned */
    double f1;        /* cleaner F1 of the current weights (hyper-cleaning), NAN if n/a */
} blo_task_iter;
/* Return non-zero to stop the run. */
typedef int (*blo_task_iter_fn)(const blo_task_iter *it, void *user);

typedef struct blo_hyperclean_config {
    const char *data_dir;  /* MNIST layout (train-images-idx3-ubyte[.gz], ...) */
    int64_t n_train, n_val, n_test; /* drawn without overlap from the "train" split */
    double corrupt;        /* fraction of training labels replaced by a uniform random class
                              (over all classes, so about 1/C of them keep their label) */
    int64_t hidden;        /* 0: linear model; H > 0: Linear(d, H) → Linear(H, C) */
    blo_dtype dtype;
    blo_config solver;     /* method, inner / outer optimizers, budgets, start, checkpoints */
    const char *resume;    /* a checkpoint of an earlier run of the same settings, or NULL */
    int64_t eval_every;    /* test accuracy every k outer iterations (0: at the end only) */
    int baselines;         /* also train the three reference classifiers */
    int64_t baseline_steps;
    double baseline_lr;    /* Adam, full batch */
    uint64_t seed;         /* the split, the corruption, the initial model */
    blo_task_iter_fn on_iter;
    void *user;
} blo_hyperclean_config;

/* The published protocol with a budget that runs in minutes on 2 cores: 5000 / 5000 / 10000,
 * half the labels corrupted, linear model, cg (K = 10) with a warm start, inner SGD lr 0.03
 * with T = 100, outer Adam lr 0.01, 200 outer iterations (the authors' protocol is rhg with a
 * learned start updated by SGD lr 0.03, and 3000 iterations); a run whose validation loss
 * passes 1e4 is stopped as diverged. */
blo_hyperclean_config blo_hyperclean_default(void);

typedef struct blo_hyperclean_result {
    double test_acc;       /* the model at the end of the last inner loop (y_T) */
    double test_acc_start; /* the learned start y_0 (the protocol's reported model), or NAN */
    double precision, recall, f1;
    int64_t kept, clean;   /* |kept|, |clean| */
    double base_noisy, base_val, base_oracle; /* baselines' test accuracy, NAN when not run */
    double upper, lower;   /* F and f at the end */
    int64_t iters;
    double seconds;
    size_t peak_bytes;     /* the largest per-iteration scratch peak */
} blo_hyperclean_result;

/* Loads the data, splits and corrupts it, runs the solver (continuing from c->resume when
 * given) and scores the result. Errors: BLO_ERR_IO / BLO_ERR_FORMAT for the data, BLO_ERR_INVALID
 * for settings, BLO_ERR_NUMERIC for a diverged run (the message names the iteration), with a
 * message in err. */
blo_status blo_hyperclean_run(const blo_hyperclean_config *c, blo_hyperclean_result *r, char *err,
                              size_t errlen);

/* ---- Differentiable architecture search (DARTS) ----------------------------------------------
 * Liu, Simonyan & Yang, "DARTS: differentiable architecture search", ICLR 2019. A cell is a
 * DAG of `nodes` intermediate nodes after two inputs (the outputs of the two previous cells);
 * node i is the sum of one mixed operation per earlier state j (the inputs, then nodes < i):
 *     h_i = Σ_j ō_(j,i)(h_j),    ō(h) = Σ_o softmax(α_(j,i))_o · o(h)
 * over the 8 candidate ops below. The cell's output concatenates the intermediate nodes.
 *     x = (α_normal [E, 8], α_reduce [E, 8]), E = nodes (nodes + 3) / 2 edges per cell
 *     y = the weights of the supernet (stem, every op of every edge, classifier)
 *     f(x, y) = CE on a minibatch of the first half of the search data    (lower level)
 *     F(x, y) = CE on a minibatch of the second half                      (upper level)
 * A genotype keeps, for each node, the two incoming edges whose strongest non-zero op has the
 * largest weight, each with that op; the discrete network built from it is trained anew. */
#define BLO_NAS_NUM_OPS 8
#define BLO_NAS_MAX_NODES 8
/* Op indices (the column of α), DARTS' names: none, max_pool_3x3, avg_pool_3x3, skip_connect,
 * sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5. */
enum {
    BLO_NAS_NONE = 0,
    BLO_NAS_MAX_POOL_3X3,
    BLO_NAS_AVG_POOL_3X3,
    BLO_NAS_SKIP_CONNECT,
    BLO_NAS_SEP_CONV_3X3,
    BLO_NAS_SEP_CONV_5X5,
    BLO_NAS_DIL_CONV_3X3,
    BLO_NAS_DIL_CONV_5X5
};
const char *blo_nas_op_name(int op); /* "?" outside [0, 8) */
int blo_nas_op_parse(const char *name); /* -1 if unknown */
/* Edges of a cell with n intermediate nodes: n (n + 3) / 2. Edge (j -> node i) has index
 * 2i + i(i-1)/2 + j, states j = 0, 1 being the cell's inputs and j = 2 + k node k. */
int blo_nas_num_edges(int nodes);

/* A discrete architecture: for each cell kind (0 normal, 1 reduction) and node i, two
 * (op, input state) pairs. */
typedef struct blo_nas_genotype {
    int nodes;
    int op[2][BLO_NAS_MAX_NODES][2];
    int in[2][BLO_NAS_MAX_NODES][2];
} blo_nas_genotype;
/* DARTS' rule from α_normal and α_reduce ([E, 8] row-major, any real values): for node i, the
 * weight of edge j is max over non-zero ops of softmax(α_j)_o; keep the two edges with the
 * largest weights (ties: the earlier edge), each with its argmax non-zero op. */
void blo_nas_genotype_derive(int nodes, const double *alpha_normal, const double *alpha_reduce,
                             blo_nas_genotype *g);
/* Perturbation-based selection (Wang et al., "Rethinking architecture selection in
 * differentiable NAS", ICLR 2021), without their fine-tuning between decisions: an op counts
 * by how much the supernet's loss rises when it is taken out of its edge, an edge by how much
 * it rises when the whole edge is (all its ops but `none`). For node i, each incoming edge
 * gets its most important non-zero op, and the two most important edges are kept (ties: the
 * earlier). score(an, ar, user) is the supernet's loss with op weights softmax(an), softmax(ar)
 * ([E, 8] each); a removed op has α = -1e30. It is called 1 + 2 E 8 times. Fails (BLO_ERR_NUMERIC,
 * message in err) when a score is not finite. */
typedef double (*blo_nas_score_fn)(const double *alpha_normal, const double *alpha_reduce,
                                   void *user);
blo_status blo_nas_genotype_perturb(int nodes, const double *alpha_normal,
                                    const double *alpha_reduce, blo_nas_score_fn score,
                                    void *user, blo_nas_genotype *g, char *err, size_t errlen);
/* A uniformly random genotype: two distinct inputs per node, non-zero ops. */
void blo_nas_genotype_random(int nodes, blo_rng *rng, blo_nas_genotype *g);
/* Checks nodes in [1, BLO_NAS_MAX_NODES], ops in [1, 8), inputs in [0, 2 + i). Returns 0 and
 * writes a message into err when it does not hold. */
int blo_nas_genotype_check(const blo_nas_genotype *g, char *err, size_t errlen);
/* The readable text form (always terminated), e.g.
 *     nodes 2
 *     normal 0: sep_conv_3x3 <- 0, skip_connect <- 1
 *     ...
 * plus a comment line with DARTS' Python form. Returns the length it needed. */
size_t blo_nas_genotype_format(const blo_nas_genotype *g, char *buf, size_t len);
/* Writes / reads that form. Reading ignores blank lines and '#' comments; errors name the file
 * and line (BLO_ERR_IO, BLO_ERR_FORMAT). */
blo_status blo_nas_genotype_save(const blo_nas_genotype *g, const char *path, char *err,
                                 size_t errlen);
blo_status blo_nas_genotype_load(const char *path, blo_nas_genotype *g, char *err, size_t errlen);

/* The network: a 3x3 stem conv to 3C channels, `cells` cells (reductions at cells/3 and
 * 2 cells/3, as DARTS, doubling the channels), global average pooling, a linear classifier. */
typedef enum blo_nas_data_format {
    BLO_NAS_MNIST = 0, /* MNIST layout: train-* and t10k-* IDX files, 1 channel */
    BLO_NAS_CIFAR10    /* CIFAR-10 binary: data_batch_1..5.bin, test_batch.bin; 3 x 32 x 32 */
} blo_nas_data_format;

typedef struct blo_nas_data_config {
    const char *data_dir;  /* a folder of the format's files (each plain or .gz) */
    int64_t size;          /* images average-pooled to size x size (size must divide the side) */
    uint64_t seed;         /* which examples */
    blo_nas_data_format format; /* the network's input channels follow the images' */
} blo_nas_data_config;

/* The α of a search after outer iteration iter (0-based): [edges, 8] row-major each, raw
 * values (softmax per row gives the op weights). Non-zero stops the search. */
typedef int (*blo_nas_alpha_fn)(int64_t iter, int edges, const double *alpha_normal,
                                const double *alpha_reduce, void *user);

/* Genotype selection: DARTS' rule on α's magnitudes (blo_nas_genotype_derive), or the
 * perturbation of the final supernet's loss on the F half (blo_nas_genotype_perturb). */
typedef enum blo_nas_select { BLO_NAS_SELECT_ALPHA = 0, BLO_NAS_SELECT_PERTURB } blo_nas_select;

typedef struct blo_nas_search_config {
    blo_nas_data_config data;
    int64_t n_search;      /* examples from the train split: first half f, second half F */
    int64_t n_test;        /* examples from the t10k split for the final supernet accuracy */
    int64_t batch;         /* minibatch of each objective evaluation (>= half: full half) */
    int cells, channels, nodes;
    blo_dtype dtype;
    blo_config solver;     /* method, inner / outer optimizers, budgets; init should be warm */
    const char *resume;
    int64_t eval_every;    /* supernet accuracy on the F half every k iterations (0: end only) */
    uint64_t seed;         /* the initial weights */
    blo_nas_select select; /* how the genotype is read off the searched supernet */
    int64_t warmup;        /* weights-only steps (α held at its start) before the bilevel
                              loop, with the inner optimizer's lr, momentum and weight decay
                              (skipped when resuming: the checkpoint holds the weights) */
    blo_task_iter_fn on_iter; /* test_acc carries the F-half accuracy when evaluated */
    blo_nas_alpha_fn on_alpha; /* after each outer iteration: α_normal, α_reduce [E, 8] */
    void *user;                /* for on_iter and on_alpha */
} blo_nas_search_config;

/* A budget for 2 cores: 1000 search examples pooled to 14x14, batches of 32, 3 cells of 4
 * channels with 3 nodes; first_order (DARTS-1st), warm start, T = 1 inner step of SGD with
 * momentum 0.9, lr 0.05, weight decay 3e-4; outer Adam lr 3e-3, β1 0.5; 100 iterations;
 * 1000 test images. */
blo_nas_search_config blo_nas_search_default(void);

typedef struct blo_nas_search_result {
    blo_nas_genotype genotype;
    double *alpha_normal, *alpha_reduce; /* [E, 8], blo_malloc'd: free with blo_free */
    double val_acc, test_acc;           /* supernet on the F half and on the test examples */
    double upper, lower;
    int64_t iters, params;
    double seconds;        /* warm-up and search */
    double select_seconds; /* reading the genotype off (perturbation: 1 + 2 E 8 evaluations) */
    size_t peak_bytes;
} blo_nas_search_result;

/* Loads and pools the data, runs the search, derives the genotype. Errors as hyper-cleaning
 * (BLO_ERR_IO / FORMAT / INVALID / NUMERIC) with a message in err. */
blo_status blo_nas_search_run(const blo_nas_search_config *c, blo_nas_search_result *r, char *err,
                              size_t errlen);

typedef struct blo_nas_train_config {
    blo_nas_data_config data;
    blo_nas_genotype genotype;
    int64_t n_train, n_test;
    int64_t batch, epochs;
    int cells, channels;
    double lr, momentum, weight_decay; /* SGD with momentum, cosine-annealed lr */
    blo_dtype dtype;
    uint64_t seed;
    blo_task_iter_fn on_iter; /* once per epoch: rec.iter = epoch, rec.upper = train loss */
    void *user;
} blo_nas_train_config;
/* 2000 training and 1000 test images at 14x14, 3 cells of 8 channels, 5 epochs of batches
 * of 32, SGD lr 0.05 (cosine), momentum 0.9, weight decay 3e-4. */
blo_nas_train_config blo_nas_train_default(void);

typedef struct blo_nas_train_result {
    double test_acc, train_loss;
    int64_t params, steps;
    double seconds;
} blo_nas_train_result;
/* Builds the discrete network of c->genotype, trains it from scratch on n_train examples of
 * the train split and scores it on n_test examples of t10k. */
blo_status blo_nas_train_run(const blo_nas_train_config *c, blo_nas_train_result *r, char *err,
                             size_t errlen);
/* ---- Meta-learning: sinusoid regression (Finn, Abbeel & Levine, ICML 2017, §5.1) -----------
 * Tasks y = A sin(x − φ), A ~ U[0.1, 5], φ ~ U[0, π], x ~ U[−5, 5]; the learner an MLP
 * 1-40-40-1 with ReLU. One outer iteration draws a meta-batch of B tasks with K support and
 * K query points each, adapts θ to every task by T SGD steps on the support MSE and updates θ
 * on the mean query MSE (x = θ, y = the B adapted copies, y_0 = θ broadcast: init from_x).
 * rhg: MAML; first_order: FOMAML; cg with prox > 0: iMAML; meta_sgd: Meta-SGD (α learned).
 * Evaluation: eval_tasks held-out tasks (their own generator), each fine-tuned from θ by SGD
 * on its K support points, the MSE on eval_query fresh points after 0, 1, 5 and 10 steps,
 * averaged over tasks with a 95% confidence interval (1.96 standard errors). The pretrained
 * baseline is the same problem with T = 0 (one network fitted to all tasks jointly), trained
 * for as many iterations and evaluated the same way. */
#define BLO_META_EVAL_STEPS 4 /* the MSE after 0, 1, 5, 10 test-time steps */
extern const int blo_meta_eval_steps[BLO_META_EVAL_STEPS];

typedef struct blo_meta_sinusoid_config {
    int64_t shots;       /* K support (and query) points per task at training time */
    int64_t meta_batch;  /* B tasks per outer iteration */
    int64_t width;       /* hidden width H of the MLP 1-H-H-1 */
    double prox;         /* iMAML's λ of λ/2 ‖y − θ‖² in the lower level (0: none) */
    int meta_sgd;        /* learn per-parameter inner step sizes α (start: solver.inner.lr) */
    int64_t eval_tasks;  /* held-out tasks */
    int64_t eval_query;  /* query points per held-out task */
    int baseline;        /* also train and evaluate the pretrained baseline */
    blo_dtype dtype;
    blo_config solver;   /* method, inner steps and lr, outer optimizer, budget, checkpoints */
    const char *resume;  /* a checkpoint of an earlier run of the same settings, or NULL */
    uint64_t seed;       /* θ's initialisation, the training and the held-out tasks */
    blo_task_iter_fn on_iter; /* per outer iteration (test_acc, f1: NAN) */
    void *user;
} blo_meta_sinusoid_config;

/* The published protocol: K = 10, B = 25, H = 40, rhg with one inner SGD step α = 0.01,
 * outer Adam 0.001, 70000 iterations (the CLI's default budget is smaller), 600 held-out
 * tasks with 100 query points each, baseline on, f32. */
blo_meta_sinusoid_config blo_meta_sinusoid_default(void);

typedef struct blo_meta_sinusoid_result {
    double mse[BLO_META_EVAL_STEPS], ci[BLO_META_EVAL_STEPS];   /* meta-learned θ */
    double base_mse[BLO_META_EVAL_STEPS], base_ci[BLO_META_EVAL_STEPS]; /* baseline, or NAN */
    double upper;        /* the last meta-batch's query loss after adaptation */
    int64_t iters;
    double seconds;      /* meta-training time (the solver's clock) */
    size_t peak_bytes;   /* the largest per-iteration scratch peak */
} blo_meta_sinusoid_result;

/* Meta-trains (continuing from c->resume when given), evaluates, and trains and evaluates
 * the baseline when asked. Errors: BLO_ERR_INVALID for settings, BLO_ERR_NUMERIC for a
 * diverged run (the message names the iteration), with a message in err. */
blo_status blo_meta_sinusoid_run(const blo_meta_sinusoid_config *c, blo_meta_sinusoid_result *r,
                                 char *err, size_t errlen);
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
    const char *data_dir;   /* MNIST layout */
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
/* Fashion-MNIST "train", split by base class 28 / 12, MAML, 5-way 1-shot with 15 queries,
 * meta-batch 4, the body 784-64-64 (H = 64, 2 layers), λ = 0.01; first_order with T = 5 SGD
 * steps of 0.1, outer Adam 1e-3, 300 iterations; 600 meta-test episodes adapted by T steps;
 * the baseline 2000 Adam steps of 1e-3 on minibatches of 64; f32. */
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

/* ---- Regularization search ---------------------------------------------------------------
 * Per-feature (or per-group) L2 strengths of a logistic regression chosen by validation loss
 * (Bengio, Neural Computation 2000; Pedregosa, ICML 2016):
 *     x ∈ R^G  log-strengths, λ_g = exp(x_g), start log λ0
 *     y = (w [d], b) for two classes, (W [d, C], b [C]) softmax for C > 2
 *     f(x, y) = mean CE(train) + ½ Σ_j λ_{g(j)} ‖W_j‖²     (lower; the bias is not penalised)
 *     F(x, y) = mean CE(validation)                          (upper)
 * The reference it is compared with is the best single strength of a grid: each grid value
 * is a plain fit of the lower level to convergence, the one with the lowest validation loss
 * wins. Both final models are fitted to convergence (L-BFGS), so the comparison is between
 * strengths, not between optimizers.
 */
typedef enum blo_regsearch_groups {
    BLO_REGSEARCH_FEATURE = 0, /* G = d: one strength per feature */
    BLO_REGSEARCH_SINGLE,      /* G = 1: one strength for all (what the grid searches) */
    BLO_REGSEARCH_BLOCKS       /* G = K contiguous blocks: feature j in block ⌊j K / d⌋ */
} blo_regsearch_groups;

#define BLO_REGSEARCH_MAX_GRID 64

/* One outer iteration as the regularization search reports it. */
typedef struct blo_regsearch_iter {
    blo_record rec;      /* the solver's record (rec.upper is the validation loss at y_T) */
    double test_acc;     /* accuracy of the current model (y_T, or the lower level solved at
                            the new strengths with solve_lower) on the test set, NAN when not
                            evaluated */
    double lambda_min, lambda_gmean, lambda_max; /* of the current strengths (gmean: geometric) */
} blo_regsearch_iter;
/* Return non-zero to stop the run. */
typedef int (*blo_regsearch_iter_fn)(const blo_regsearch_iter *it, void *user);
/* Called after each grid value's fit (i of n). */
typedef void (*blo_regsearch_grid_fn)(int i, int n, double lambda, double val_loss, double val_acc,
                                      void *user);

typedef struct blo_regsearch_config {
    /* The data: the three sets given in memory (borrowed, already split, the same features and
     * classes), else a file, else the built-in problem: two classes of an MNIST-layout folder. */
    const blo_dataset *train, *val, *test;
    const char *data_path;    /* LIBSVM or CSV (gzip or plain) */
    const char *format;       /* "libsvm", "csv", or NULL / "auto": CSV when the name ends in
                                 .csv or .csv.gz, LIBSVM otherwise */
    const char *label_column; /* CSV: the target column (NULL: the last) */
    const char *mnist_dir;    /* the built-in problem's folder (its "train" split) */
    int64_t class_a, class_b; /* built-in: class_a -> 0, class_b -> 1 */
    int64_t max_examples;     /* at most this many (shuffled) examples from a file or the
                                 built-in problem; 0: all */
    double train_frac, val_frac; /* of those; the rest is the test set */
    int standardize;          /* features are always centred on their training mean (the free
                                 bias absorbs it: same models, better conditioning); scaled to
                                 unit variance too: 1 yes, 0 no, -1 for files and sets in
                                 memory but not for the built-in pixels */
    blo_regsearch_groups groups;
    int64_t blocks;           /* K for BLO_REGSEARCH_BLOCKS */
    double lambda0;           /* start strength of every group (clamped into the box); 0: the
                                 grid's best */
    double lambda_lo, lambda_hi; /* the box the bilevel search keeps λ in */
    int grid_n;               /* grid values, log-spaced over [grid_lo, grid_hi]; 0: no grid */
    double grid_lo, grid_hi;
    int64_t fit_iters;        /* L-BFGS iterations of each fit to convergence */
    double fit_tol;           /* ... stopped when ‖∇_y f‖_∞ ≤ fit_tol */
    blo_dtype dtype;
    blo_config solver;        /* method, inner / outer optimizers, budgets, checkpoints;
                                 solver.inner.lr <= 0 picks the step from the data (see below) */
    int solve_lower;          /* 1: after every outer step the lower level is solved again to
                                 convergence (L-BFGS, from the last y) and the next iteration's
                                 T steps start there, as HOAG does (Pedregosa 2016); needs
                                 solver.init warm. 0: the T warm-started steps alone track y* */
    const char *resume;       /* a checkpoint of an earlier run of the same settings, or NULL */
    int64_t eval_every;       /* test accuracy every k outer iterations (0: at the end only) */
    uint64_t seed;            /* the shuffle and split */
    blo_regsearch_iter_fn on_iter;
    blo_regsearch_grid_fn on_grid;
    void *user;
} blo_regsearch_config;

/* The built-in Fashion-MNIST problem: T-shirt/top (0) against shirt (6), 4000 examples split
 * 50 / 25 / 25 %, pixels in [0, 1] centred but not scaled; one strength per feature; a
 * 13-value grid over [1e-6, 1e2]; the bilevel search starts at the grid's best, keeps λ in
 * [1e-6, 1e2], solves the lower level after every outer step (solve_lower) and runs cg
 * (K 50, tol 1e-10) after T = 10 warm-started SGD steps of step 1/L, where
 * L = 1.1 c λ_max(X̃ᵀX̃ / n) + λ_hi bounds the lower level's curvature (X̃ = [X, 1], the top
 * eigenvalue by power iteration, 10 % margin; c = 1/4 for two classes, 1/2 for softmax; an
 * Adam inner optimizer gets 0.01); outer Adam lr 0.05, 200 iterations; test accuracy every 10;
 * float64; fits by L-BFGS to ‖∇_y f‖_∞ ≤ 1e-6 or 2000 iterations. */
blo_regsearch_config blo_regsearch_default(void);

/* A model's scores at the strengths it was fitted with. */
typedef struct blo_regsearch_scores {
    double val_loss, val_acc, test_loss, test_acc;
} blo_regsearch_scores;

typedef struct blo_regsearch_result {
    int64_t n_train, n_val, n_test, features, classes, groups;
    /* The grid: its values, their validation losses, the best one and its model's scores. */
    int grid_n;
    double grid_lambda[BLO_REGSEARCH_MAX_GRID], grid_val_loss[BLO_REGSEARCH_MAX_GRID];
    double grid_best;             /* λ of the best grid value, NAN without a grid */
    blo_regsearch_scores grid;    /* NAN without a grid */
    /* The bilevel search: the lower level refitted to convergence at the learned strengths. */
    blo_regsearch_scores bilevel;
    double lambda_min, lambda_gmean, lambda_max;
    double *lambda;               /* [groups] the learned strengths; owned, released by
                                     blo_regsearch_result_free */
    int64_t fits_unconverged;     /* fits that ended on the iteration budget */
    double upper, lower;          /* F and f at the end of the outer loop (y_T) */
    int64_t iters;
    double seconds, grid_seconds; /* the outer loop's time (with a resumed run's), the grid's */
    size_t peak_bytes;
} blo_regsearch_result;

/* Loads and splits the data, runs the grid, then the bilevel search from lambda0 (continuing
 * from c->resume when given), refits and scores both models. Errors: BLO_ERR_IO /
 * BLO_ERR_FORMAT for the data (the loader's message names the file and line), BLO_ERR_INVALID
 * for settings, BLO_ERR_NUMERIC for a diverged run, with a message in err. On failure r holds
 * nothing to free. */
blo_status blo_regsearch_run(const blo_regsearch_config *c, blo_regsearch_result *r, char *err,
                             size_t errlen);
/* Releases r->lambda. NULL-safe. */
void blo_regsearch_result_free(blo_regsearch_result *r);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
