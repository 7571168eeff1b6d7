/* blo/meta.h — meta-learning on sinusoid regression (`blo meta sinusoid`). */
#ifndef BLO_META_H
#define BLO_META_H
#pragma GCC visibility push(default)

#include "blo/task.h"

#ifdef __cplusplus
extern "C" {
#endif

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

#pragma GCC visibility pop
#endif
