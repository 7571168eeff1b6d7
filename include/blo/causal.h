/* blo/causal.h — individual treatment effects from observational data (`blo causal`):
 * the data (IHDP and a user's CSV), TARNet and CFR-MMD, and their scores.
 *
 * Units i have covariates x_i, a treatment t_i ∈ {0, 1} and a factual outcome y_i = Y_i(t_i);
 * the effect τ_i = Y_i(1) − Y_i(0) is never observed. Semi-synthetic data (IHDP) also carry the
 * noiseless potential outcomes mu0, mu1, used only to score:
 *     √PEHE = sqrt(mean_i ((ŷ1_i − ŷ0_i) − (mu1_i − mu0_i))²)
 *     ε_ATE = |mean_i (ŷ1_i − ŷ0_i) − mean_i (mu1_i − mu0_i)|
 * Without mu0 / mu1 the nearest-neighbour PEHE of Shalit, Johansson, Sontag (ICML 2017)
 * imputes each unit's missing outcome by its nearest neighbour (Euclidean in x) in the other
 * arm: τ_nn_i = y_i − y_nn(i) when t_i = 1, y_nn(i) − y_i when t_i = 0. */
#ifndef BLO_CAUSAL_H
#define BLO_CAUSAL_H
#pragma GCC visibility push(default)

#include "blo/bilevel.h"
#include "blo/core.h"
#include "blo/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Data ---------------------------------------------------------------------------------- */

typedef struct blo_causal_data {
    int64_t n, d;
    float *x;         /* [n, d] covariates, row-major */
    float *t;         /* [n] treatment, 0 or 1 */
    float *y;         /* [n] factual outcome */
    float *mu0, *mu1; /* [n] noiseless potential outcomes (scoring only), or both NULL */
    int64_t treated;  /* units with t = 1 */
} blo_causal_data;

/* Which columns of a CSV with a header line hold what. covariates: names separated by '|'
 * (e.g. "age|dose"), or NULL for every column that is not named here. mu0 / mu1: both or
 * neither. */
typedef struct blo_causal_columns {
    const char *treatment, *outcome, *covariates, *mu0, *mu1;
} blo_causal_columns;

/* cols NULL reads the IHDP layout of Shalit et al. / the CEVAE distribution: no header, 30
 * columns treatment, y_factual, y_cfactual, mu0, mu1, x1 .. x25 (y_cfactual is ignored).
 * Errors (BLO_ERR_FORMAT) name the file and line: a field that is not a finite number (with
 * its column), a treatment that is not 0 or 1, a row with another field count, a missing
 * column, an empty file, a file with only one arm. */
blo_status blo_causal_parse(const char *buf, size_t len, const char *name,
                            const blo_causal_columns *cols, blo_causal_data *out, char *err,
                            size_t errlen);
blo_status blo_causal_load(const char *path, const blo_causal_columns *cols,
                           blo_causal_data *out, char *err, size_t errlen);
void blo_causal_data_free(blo_causal_data *d);

/* ---- Scores -------------------------------------------------------------------------------- */

/* √PEHE and ε_ATE of estimated effects tau[n] against the truth mu1 − mu0 (formulas above). */
double blo_causal_pehe(int64_t n, const double *tau, const float *mu0, const float *mu1);
double blo_causal_ate_error(int64_t n, const double *tau, const float *mu0, const float *mu1);
/* The nearest-neighbour imputed effects of units rows[0..k) (rows NULL: 0..k-1), neighbours
 * sought among the same rows in the other arm (ties: the lowest row). tau_nn[k] receives
 * them. BLO_ERR_INVALID when one arm is empty among the rows. */
blo_status blo_causal_nn_effects(const blo_causal_data *d, const int64_t *rows, int64_t k,
                                 double *tau_nn);

/* ---- TARNet and CFR ---------------------------------------------------------------------
 * A representation Φ: R^d → R^{rep_width} (rep_layers ELU layers) and two heads h_0, h_1
 * (head_layers ELU layers of head_width, then a linear output), ŷ_t(x) = h_t(Φ(x)). Trained
 * on the units of the training rows by Adam on
 *     L = Σ_i w_i (h_{t_i}(Φ(x_i)) − y_i)² / Σ_i w_i + α IPM(Φ_treated, Φ_control)
 *         + Σ_l λ_l ‖W_l‖²
 * with w_i = u_i r_i: u_i the unit weights (1 by default), r_i = n / (2 n_{t_i}) the arm
 * weights of the batch (reweight) or 1, outcomes standardised on the training rows, and the
 * IPM between the unit-norm representations of the batch's treated (n_t) and control (n_c)
 * units one of (Shalit et al.'s code, its p = 1/2):
 *   mmd   linear MMD²  ‖mean Φ_t − mean Φ_c‖²
 *   rbf   MMD² with k(a, b) = exp(−‖a − b‖² / σ²):  Σ_{i≠j} k(c_i, c_j) / (n_c (n_c − 1))
 *         + Σ_{i≠j} k(t_i, t_j) / (n_t (n_t − 1)) − 2 Σ_ij k(t_i, c_j) / (n_t n_c)
 *   wass  the entropic Wasserstein-1 distance 2 Σ_ij P_ij M_ij, M_ij = ‖Φ_t,i − Φ_c,j‖: P the
 *         Sinkhorn plan (wass_iters iterations, kernel exp(−λ M / mean M)) of the cost M
 *         augmented by a dummy row and column of cost max M, with marginals (1/(2 n_t) ..,
 *         1/2) and (1/(2 n_c) .., 1/2). P is computed from M's values and held constant in
 *         the gradient, as Shalit et al.'s code does (backpropT off): dIPM/dΦ = 2 Σ P_ij dM_ij.
 * TARNet is α = 0 (no normalisation); CFR is α > 0. */
typedef enum blo_causal_ipm {
    BLO_CAUSAL_IPM_MMD = 0, /* linear MMD² */
    BLO_CAUSAL_IPM_WASS,    /* entropic Wasserstein (Sinkhorn) */
    BLO_CAUSAL_IPM_RBF      /* RBF-kernel MMD² */
} blo_causal_ipm;

typedef struct blo_causal_net_config {
    int rep_layers, rep_width;   /* 3, 200 */
    int head_layers, head_width; /* 3, 100 */
    double alpha;                /* IPM weight, 0 = TARNet */
    double l2;                   /* λ for every weight matrix (biases free); 1e-4 */
    double lr;                   /* Adam's step, 1e-3 */
    int64_t steps;               /* 3000 */
    int64_t batch;               /* 100; 0 = all training rows each step */
    uint64_t seed;
    int reweight;  /* 1: each arm's units weighted 1 / (2 n_arm / n) (Shalit et al.'s w_i); 1 */
    int normalize; /* 1: Φ scaled to unit norm also for TARNet (always for α > 0); 0 */
    blo_causal_ipm ipm; /* mmd */
    double wass_lambda; /* wass: λ of the kernel exp(−λ M / mean M); 10 */
    int wass_iters;     /* wass: Sinkhorn iterations; 10 */
    double rbf_sigma;   /* rbf: σ; 0.1 */
} blo_causal_net_config;

blo_causal_net_config blo_causal_net_default(void);

/* A trained network: parameters (in its own context) and the outcome scale. */
typedef struct blo_causal_net {
    blo_ctx *ctx;
    blo_causal_net_config cfg;
    int np;                 /* number of parameter tensors */
    blo_tensor **params;    /* rep (W, b) x rep_layers, then head 0, then head 1 */
    double y_mean, y_std;   /* the training outcomes' scale */
    blo_opt_state adam;     /* the training's Adam state at its end (m, v in ctx; t its steps):
                               where a continued training (the bilevel phase) starts */
} blo_causal_net;

/* Trains a network on rows train[0..k) of d. unit_weight[k] (NULL: all 1) weights the
 * factual loss. */
blo_status blo_causal_net_train(blo_causal_net *net, const blo_causal_net_config *cfg,
                                const blo_causal_data *d, const int64_t *train, int64_t k,
                                const double *unit_weight, char *err, size_t errlen);
/* The estimated effects ŷ1 − ŷ0 (in the data's units) of rows[0..k) (NULL: 0..k-1). */
blo_status blo_causal_net_effects(const blo_causal_net *net, const blo_causal_data *d,
                                  const int64_t *rows, int64_t k, double *tau);
void blo_causal_net_free(blo_causal_net *net);


/* ---- One replication: split, train (and tune), score ----------------------------------------
 * The units are shuffled (split_seed) and cut 63 / 27 / 10 (Shalit et al.): train, validation,
 * test. Within-sample scores are over train + validation (the units the method saw, their
 * effects unobserved), out-of-sample over test.
 *
 * tune:
 *   none     the network of net, trained on the training units (validation unused).
 *   hyper    x = (log α, log λ_1 .. log λ_L), α the IPM weight and λ_l the L2 strength of
 *            weight matrix l; y the network; lower level the training loss of causal.h,
 *            upper level the criterion on the validation units; the network is first trained
 *            as for none, then the solver (solver: method, T inner steps, warm start) runs
 *            outer_iters iterations from there.
 *   alpha    as hyper with x = log α alone (the λ_l stay at net.l2): the grid's search space,
 *            searched by hypergradient.
 *   weights  x = one log-weight per training unit, u_i = exp(x_i) in the factual loss; the
 *            rest as hyper.
 *   grid     the network trained once per α of grid (net.alpha ignored); the one with the
 *            lowest criterion on the validation units is kept.
 *   grid_alpha  alpha started from the best α of a cheaper grid: each α of grid trained for
 *            grid_steps steps (0: net.steps / ngrid, so the whole grid costs one training) and
 *            scored by the criterion; the network is then trained (net.steps) at the winner
 *            and tuned as for alpha from there (net.alpha ignored; every α of grid > 0).
 * criterion (the upper level; neither reads mu0 / mu1):
 *   nn       the nearest-neighbour PEHE of the validation units: mean_i (τ̂_i − τ_nn_i)²,
 *            τ_nn imputed within the validation units. It scores the effect itself, which is
 *            what the model is for; its noise is the imputation's.
 *   factual  the factual squared error on the validation units, each arm weighted by
 *            n / (2 n_arm) so the arms count equally. It scores outcomes, not their difference. */
typedef enum blo_causal_tune {
    BLO_CAUSAL_TUNE_NONE = 0,
    BLO_CAUSAL_TUNE_HYPER,
    BLO_CAUSAL_TUNE_WEIGHTS,
    BLO_CAUSAL_TUNE_GRID, /* α from grid[0..ngrid): one training each, the lowest criterion wins */
    BLO_CAUSAL_TUNE_ALPHA, /* hyper with x = log α alone: the grid's search space */
    BLO_CAUSAL_TUNE_GRID_ALPHA /* alpha from the best α of a cheaper grid */
} blo_causal_tune;
typedef enum blo_causal_criterion { BLO_CAUSAL_NN = 0, BLO_CAUSAL_FACTUAL } blo_causal_criterion;

typedef struct blo_causal_config {
    blo_causal_net_config net;
    blo_causal_tune tune;
    blo_causal_criterion criterion;
    blo_config solver; /* tune hyper / weights: method, inner, inner_steps, outer, outer_iters;
                          with solver.inner_state carry and Adam inner steps the inner Adam
                          starts from the training's (its m, v, t: blo_causal_net.adam), so the
                          bilevel phase continues that training, not a fresh Adam */
    uint64_t split_seed;
    const double *grid; /* tune grid / grid_alpha: the α values tried */
    int ngrid;
    int64_t grid_steps; /* tune grid_alpha: training steps per α (0: net.steps / ngrid) */
    /* tune hyper / alpha / weights: the lower level on inner_batch training units drawn without
     * replacement afresh at each inner step from the solver's generator, as the training's
     * minibatches are (0: every training unit); net.batch (100) by default. */
    int64_t inner_batch;
    /* tune hyper / alpha / weights / grid_alpha: end on the network with the lowest criterion
     * seen — the trained start's, or an outer iteration's y_T — as the grid keeps its best
     * (r.alpha, r.criterion are then that network's). 0: the last iterate. Refused with tune
     * none or grid, which have no bilevel phase. */
    int keep_best;
    /* Optional outputs (NULL: not written), indexed by unit in the data's order: every unit's
     * estimated effect ŷ1 − ŷ0 [n], and its part of the split [n] (0 train, 1 validation,
     * 2 test). */
    double *out_tau;
    signed char *out_split;
} blo_causal_config;

/* Defaults: the net's defaults, tune none, criterion nn, split seed 1; solver rhg, T = 10
 * Adam steps (lr 1e-3) warm-started, on minibatches of net.batch (100), outer Adam lr 0.05,
 * 100 outer iterations. */
blo_causal_config blo_causal_config_default(void);

typedef struct blo_causal_result {
    double pehe_in, pehe_out, ate_in, ate_out; /* NAN without mu0 / mu1 */
    double criterion;                          /* the upper criterion on validation at the end */
    double alpha, l2_mean;                     /* tune hyper: the learned α and mean λ */
    int64_t n_train, n_val, n_test;
} blo_causal_result;

blo_status blo_causal_run(const blo_causal_data *d, const blo_causal_config *c,
                          blo_causal_result *r, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
