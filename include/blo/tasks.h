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
 * half the labels corrupted, linear model, rhg, inner SGD lr 0.03 with T = 100, learned start
 * (updated by SGD lr 0.03), outer Adam lr 0.01, 300 outer iterations; a run whose validation
 * loss passes 1e4 is stopped as diverged. */
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
typedef struct blo_nas_data_config {
    const char *data_dir;  /* MNIST layout: train-* and t10k-* files */
    int64_t size;          /* images average-pooled to size x size (size must divide the side) */
    uint64_t seed;         /* which examples */
} blo_nas_data_config;

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
    blo_task_iter_fn on_iter; /* test_acc carries the F-half accuracy when evaluated */
    void *user;
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
    double seconds;
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

#ifdef __cplusplus
}
#endif
#endif
