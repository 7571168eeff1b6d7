/* blo/nas.h — differentiable architecture search: the DARTS cell search space, the search,
 * genotypes and the training of a searched network (`blo nas search`, `blo nas train`). */
#ifndef BLO_NAS_H
#define BLO_NAS_H
#pragma GCC visibility push(default)

#include "blo/data.h"
#include "blo/task.h"

#ifdef __cplusplus
extern "C" {
#endif

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
    const char *data_dir;  /* a folder of the format's files (each plain or .gz); no default:
                              a run without one fails with BLO_ERR_INVALID */
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
    blo_nas_data_config images; /* where the images come from and how they are pooled */
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
    blo_nas_data_config images; /* where the images come from and how they are pooled */
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

#ifdef __cplusplus
}
#endif

#pragma GCC visibility pop
#endif
