/* blo/reweight.h — learning to weight training examples with noisy or imbalanced labels
 * (`blo reweight` is a thin layer over it).
 *
 * Meta-Weight-Net (Shu et al., NeurIPS 2019): a small network V(ℓ; φ) (1 → hidden → 1, ReLU
 * then sigmoid, PyTorch's Linear start) maps an example's training loss to its weight.
 *     x = φ, the weighting network;  y = w, the classifier: the MLP Linear(d, H) → ReLU →
 *         Linear(H, C), or the small convolutional network (classifier = conv, square images
 *         of side s = √d, one channel): conv 3×3 (pad 1) 1 → K, ReLU, max-pool 2, conv 3×3
 *         K → 2K, ReLU, max-pool 2, Linear(2K ⌊⌊s/2⌋/2⌋², C)
 *     f(φ, w) = Σ_i V(ℓ_i; φ) ℓ_i / Σ_i V(ℓ_i; φ)  on a training minibatch of B, ℓ_i = CE_i(w)
 *               (norm = sum, the default, as the authors' WRN-28-10 script; norm = batch
 *               divides by B instead, as the paper's equations and its MW-Net.py — there V can
 *               also scale the whole step, and on Fashion-MNIST it learns that instead of a
 *               weighting: V → 1 everywhere, RESULTS.md). V reads ℓ_i as a value: its input
 *               is not differentiated.
 *     F(φ, w) = mean CE on a minibatch of a small clean meta set
 * The online one-step scheme, per training minibatch:
 *     virtual step  ŵ(φ) = w − α ∇_w f(φ, w)          (recorded; α: the classifier's step
 *                                                       of this epoch, after its decays)
 *     φ step        φ ← φ − Adam(∇_φ F(φ, ŵ(φ)))       (reverse through the virtual step)
 *     real step     w ← w − SGD-momentum(∇_w f(φ_new, w))
 * or any registry method through the solver (T inner steps on T minibatches from a warm start,
 * then dF/dφ). weights = per-example is learning to reweight (Ren et al., ICML 2018): per
 * batch, ε = 0, f = Σ ε_i ℓ_i, the virtual step, weights max(−∂F/∂ε_i, 0) normalised to sum 1,
 * the real step with them; weights = none is plain cross-entropy (the real step alone, mean CE).
 */
#ifndef BLO_REWEIGHT_H
#define BLO_REWEIGHT_H
#pragma GCC visibility push(default)

#include "blo/data.h"
#include "blo/dist.h"
#include "blo/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the weighting network's weights are normalised over a minibatch of B examples. */
typedef enum blo_reweight_norm {
    BLO_REWEIGHT_NORM_BATCH = 0, /* f = Σ V ℓ / B (the paper's equations) */
    BLO_REWEIGHT_NORM_SUM        /* f = Σ V ℓ / Σ V (the default) */
} blo_reweight_norm;

typedef enum blo_reweight_classifier {
    BLO_REWEIGHT_MLP = 0, /* Linear(d, hidden) → ReLU → Linear(hidden, C) */
    BLO_REWEIGHT_CONV     /* two 3×3 conv layers (channels, 2 channels) with max pooling */
} blo_reweight_classifier;

typedef enum blo_reweight_weights {
    BLO_REWEIGHT_NETWORK = 0, /* Meta-Weight-Net */
    BLO_REWEIGHT_PER_EXAMPLE, /* learning to reweight */
    BLO_REWEIGHT_NONE         /* plain cross-entropy */
} blo_reweight_weights;

/* Long-tailed class sizes (Cui et al., CVPR 2019): counts[c] = floor(n_max · factor^(−c/(C−1)))
 * for c = 0 .. C−1, so class 0 keeps n_max and class C−1 n_max / factor. Returns the total, or
 * -1 for classes < 2, n_max < 1 or factor < 1. */
int64_t blo_long_tail_counts(int64_t classes, int64_t n_max, double factor, int64_t *counts);

typedef struct blo_reweight_config {
    const char *data_dir;   /* MNIST layout; no default (the CLI's --data has one) */
    const char *test_split; /* "t10k" (default): the test set; "train": n_test rows held out of
                               the training split (for data without a test split) */
    int64_t n_meta;         /* clean meta examples taken out of the training split (1000) */
    int64_t n_train;        /* training examples (0: all that remain) */
    int64_t n_test;         /* test examples (0: the whole test split) */
    double noise;           /* label noise rate in [0, 1] on the training examples */
    blo_noise_kind noise_kind;
    double imbalance;       /* 1: none; > 1: long-tailed training classes with this factor */
    blo_reweight_weights weights;
    int online;             /* 1: the one-step scheme; 0: solver.method (weights = network) */
    blo_reweight_norm norm; /* BLO_REWEIGHT_NORM_SUM */
    blo_reweight_classifier classifier; /* BLO_REWEIGHT_MLP */
    int64_t hidden;         /* MLP classifier width H (300) */
    int64_t channels;       /* conv classifier: K channels, then 2K (8) */
    int64_t vnet_hidden;    /* weighting network width (100) */
    int64_t batch, meta_batch; /* 100, 100 */
    int64_t epochs;         /* passes over the training examples */
    blo_opt opt;            /* the classifier's real step: SGD momentum 0.9, lr 0.02, wd 5e-4;
                               its lr is also the virtual step's α */
    int64_t lr_decay[2];    /* online scheme: after epoch lr_decay[k] (k = 0, 1; 0: none) the
                               classifier's step, and with it α, is divided by 10 (0, 0) */
    int meta_wd_follows;    /* 1 (the default): φ's weight decay is divided by 10 with the step
                               too, so that it keeps its size against the meta gradient, which
                               is ∝ α; 0: a constant decay, which after two decays of the step
                               is 100 times stronger against it and lets the classifier fit the
                               noise again (RESULTS.md) */
    int meta_lr_follows;    /* 1: φ's step is divided by 10 with the classifier's too, so that
                               φ keeps its pace against w's (Adam's step does not shrink with
                               the meta gradient); 0 (the default): a constant step, as the
                               authors' scripts — follow loses 0.68 points on held-out
                               examples: V stops sharpening after the decays (RESULTS.md) */
    blo_opt meta_opt;       /* φ: Adam lr 1e-3, wd 1e-4 (the authors' script with norm = sum:
                               SGD-Nesterov lr 1e-3, wd 5e-4 — worse here, RESULTS.md) */
    blo_config solver;      /* online = 0: method, T (inner_steps), warm start; the inner and
                               outer optimizers are opt (as SGD) and meta_opt */
    blo_dtype dtype;
    uint64_t seed;          /* split, noise, minibatches, initial networks */
    const char *checkpoint; /* NULL, or a file that holds the run's whole state after every
                               epoch (online scheme: w, φ, both optimizers' moments, the
                               generator, the training order, the best accuracy; written to
                               FILE.tmp, then renamed) or every solver.checkpoint_every outer
                               iterations (solver scheme: the solver's checkpoint, every
                               epoch's iterations when that is 0) */
    const char *resume;     /* NULL, or such a file: the run continues after its last epoch
                               (iteration) to `epochs`. Every other setting must be the one
                               that wrote it (the online scheme names the first that differs);
                               the solver scheme's best_test_acc counts the epochs run since */
    blo_task_iter_fn on_iter; /* after every epoch (rec.iter = epoch − 1, test_acc set; online
                                 scheme: rec.hypergrad_norm = the epoch's mean ‖dF/dx‖) */
    void *user;
    /* NULL or one rank: one process. R ranks (blo/dist.h): every training and meta minibatch
     * is cut into R contiguous blocks of positions, one per rank, the classifier and φ (ε)
     * replicated (the rule of blo/dist.h), so every rank follows the 1-process run; the batch
     * and the meta batch need at least R examples each. Only rank 0 evaluates the classifier
     * and calls on_iter (its stop is sent to every rank); the other ranks' test accuracies
     * are NAN. Every rank of comm must call blo_reweight_run with the same configuration. */
    blo_comm *comm;
} blo_reweight_config;

/* Meta-Weight-Net on 40 % uniform noise over the whole training split minus 1000 meta
 * examples, the online scheme, 15 epochs. */
blo_reweight_config blo_reweight_default(void);

#define BLO_REWEIGHT_CURVE 101 /* points of the learned weight curve */

typedef struct blo_reweight_result {
    double test_acc;        /* the classifier after the last epoch */
    double best_test_acc;   /* the best epoch's */
    int64_t n_train, n_meta, n_test, noisy; /* sizes; noisy: training labels changed */
    double loss_grid[BLO_REWEIGHT_CURVE]; /* ℓ from 0 to loss_max */
    double weight_curve[BLO_REWEIGHT_CURVE]; /* V(ℓ; φ) (network), NAN otherwise */
    double clean_weight, noisy_weight; /* mean weight of the last epoch's clean / noisy
                                          examples (network and per-example) */
    int64_t epochs, steps;
    double seconds, seconds_per_epoch; /* wall clock */
    double cpu_seconds_per_epoch;      /* CPU time of the process (all threads) */
} blo_reweight_result;

/* Loads the data, takes the meta set, injects the noise or imbalance into the training
 * examples, trains and scores. Errors: BLO_ERR_IO / BLO_ERR_FORMAT for the data,
 * BLO_ERR_INVALID for settings, BLO_ERR_NUMERIC for a loss that is not finite, with a message
 * in err. */
blo_status blo_reweight_run(const blo_reweight_config *c, blo_reweight_result *r, char *err,
                            size_t errlen);

#ifdef __cplusplus
}
#endif

#pragma GCC visibility pop
#endif
