/* blo/learnopt.h — a learned optimizer: a coordinate-wise MLP that makes every step of an
 * optimizee's training, meta-trained by truncated reverse mode (`blo learnopt` is a thin layer
 * over it). After Andrychowicz et al., "Learning to learn by gradient descent by gradient
 * descent", NeurIPS 2016, and Metz et al., "Understanding and correcting pathologies in the
 * training of learned optimizers", ICML 2019 (coordinate-wise MLP, truncated unrolls).
 *
 * The update of one parameter θ with gradient g at step k (k = 1, 2, ...), every operation
 * elementwise, the same small network for every coordinate:
 *     m₁ ← β₁ m₁ + (1 − β₁) g,  m₂ ← β₂ m₂ + (1 − β₂) g,  v ← β₃ v + (1 − β₃) g²
 *     r  = sqrt(v / (1 − β₃ᵏ) + 1e-16) + ε                           (the scale of g)
 *     u  = ( g / r,  m₁ / ((1 − β₁ᵏ) r),  m₂ / ((1 − β₂ᵏ) r),  θ )    (4 inputs)
 *     d  = W₂ tanh(W₁ u + b₁) + b₂ + w_s u                         (MLP 4-H-1 plus a linear path)
 *     θ ← θ − e^{ℓ} d                                                (ℓ: the log step scale)
 * with β₁ = 0.9, β₂ = 0.99, β₃ = 0.999, ε = 1e-8. The weights x = (W₁ [H, 4], b₁ [H],
 * W₂ [1, H], b₂ [1], w_s [1, 4], ℓ [1]; blo_linear's [out, in]) are the hyper-variables.
 * blo_learnopt_init starts at W₂ = 0, b₂ = 0, w_s = (0, 1, 0, 0): then d = m̂₁ / r and the
 * step is Adam's with step e^{ℓ} (β 0.9 / 0.999), which meta-training then reshapes.
 *
 * The state the update carries (the lower level's y, so that blo's unrolling methods
 * differentiate through it): for n parameter tensors, y = (θ_0..θ_{n-1}, m₁ ×n, m₂ ×n, v ×n,
 * k [1], s [1]) — 4n + 2 tensors; s accumulates the optimizee's loss along a window of steps
 * (the upper level of meta-training, see blo_learnopt_update_user).
 */
#ifndef BLO_LEARNOPT_H
#define BLO_LEARNOPT_H
#pragma GCC visibility push(default)

#include "blo/task.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BLO_LEARNOPT_INPUTS 4 /* g, m̂₁, m̂₂ (each over r), θ */
#define BLO_LEARNOPT_NX 6     /* W₁, b₁, W₂, b₂, w_s, ℓ */
#define BLO_LEARNOPT_FILE_VERSION 1

/* The optimizer's weights x[0 .. BLO_LEARNOPT_NX) in ctx, dtype dt, with requires_grad set:
 * W₁ ~ N(0, 1/4), b₁ = 0, hidden ≥ 1 units, the rest as above (Adam with step `step` > 0),
 * drawn from rng. Returns BLO_OK, or BLO_ERR_INVALID / ctx's error (message in ctx). */
blo_status blo_learnopt_init(blo_ctx *ctx, blo_dtype dt, int64_t hidden, double step,
                             blo_rng *rng, blo_tensor **x);

/* The state y[0 .. 4n + 2) in ctx for parameters params[0 .. n): copies of the parameters
 * (requires_grad set) and zeroed moments, k = 0, s = 0. Returns BLO_OK or ctx's error. */
blo_status blo_learnopt_state(blo_ctx *ctx, int n, blo_tensor *const *params, blo_tensor **y);

/* The optimizee's loss at parameters theta[0 .. n), built with blo ops in ctx, on the sample
 * the lower objective drew for this step. */
typedef blo_tensor *(*blo_learnopt_loss_fn)(blo_ctx *ctx, blo_tensor *const *theta, void *user);

/* What blo_learnopt_update needs (its `user` argument): n, the parameter tensors, and
 * optionally the loss: when set, step t of a window (the inner step, 0-based) sets
 * s ← loss(θ_t) when t = 0 and s ← s + loss(θ_t) after, so that F = s / T after T steps is
 * the mean loss along the window. */
typedef struct blo_learnopt_update_user {
    int n;
    blo_learnopt_loss_fn loss; /* NULL: s is left as it is */
    void *loss_user;
} blo_learnopt_update_user;

/* The update above, a blo_inner_update_fn: set blo_config.inner_update to it and
 * inner_update_user to a blo_learnopt_update_user. x: the optimizer's weights (nx =
 * BLO_LEARNOPT_NX), y the state (ny = 4n + 2), g[i] = ∇_{θ_i} f for i < n (the rest ignored).
 * Builds y_new with blo ops in ctx, recorded when ctx records, so dy_new/dx flows through
 * the network. Also usable on its own, outside a solver, with recording off. */
blo_status blo_learnopt_update(blo_ctx *ctx, int nx, blo_tensor *const *x, int ny,
                               blo_tensor *const *y, blo_tensor *const *g, int64_t t,
                               blo_tensor **y_new, void *user);

/* ---- The optimizer file ---------------------------------------------------------------------
 * Little-endian: "BLOLOPT1" (8 bytes), u32 version (BLO_LEARNOPT_FILE_VERSION), u32 inputs
 * (4), u32 hidden H, u32 tensors (6); per tensor u32 ndim (1 or 2), u64 dims, the values as
 * IEEE float64; then u64 FNV-1a of every byte before it. Float32 and float64 weights
 * round-trip bit for bit. */

/* Writes x[0 .. BLO_LEARNOPT_NX) (shapes as blo_learnopt_init makes them) to path, atomically
 * (temporary file + rename). Errors: BLO_ERR_INVALID for x of the wrong shapes or non-finite
 * values, BLO_ERR_IO; message in err. */
blo_status blo_learnopt_save(const char *path, blo_tensor *const *x, char *err, size_t errlen);
/* Reads path into fresh tensors x[0 .. BLO_LEARNOPT_NX) in ctx of dtype dt (requires_grad
 * set), and *hidden (may be NULL). The whole file is checked first: a bad header, version,
 * shape, size, non-finite value, trailing byte or checksum is refused (BLO_ERR_FORMAT, the
 * message names the file, the byte offset and what is wrong; BLO_ERR_IO when unreadable). */
blo_status blo_learnopt_load(const char *path, blo_ctx *ctx, blo_dtype dt, blo_tensor **x,
                             int64_t *hidden, char *err, size_t errlen);
/* The same from a buffer (name: for messages). */
blo_status blo_learnopt_parse(const unsigned char *buf, size_t len, const char *name,
                              blo_ctx *ctx, blo_dtype dt, blo_tensor **x, int64_t *hidden,
                              char *err, size_t errlen);

/* ---- The task: an MLP classifier on an MNIST-layout set (Fashion-MNIST) ----------------------
 * Optimizee: Linear(784, H) → tanh → … (layers hidden layers of width H) → Linear(H, 10),
 * weights ~ N(0, 1/fan_in), biases 0; loss: mean cross-entropy on a minibatch of `batch`
 * examples drawn uniformly (with replacement across steps) from n_train training images.
 *
 * Meta-training (blo_learnopt_train): x = the optimizer's weights; y = the state above; the
 * lower level runs solver.inner_steps = K steps of blo_learnopt_update (one window), the
 * upper level is the mean minibatch training loss along the window, F = s / K; the method
 * (trhg with trhg_window = K by default) reverses through the window from its start, which is
 * the previous window's end (init warm, not differentiated: the truncated unroll). Every
 * `reset_every` windows the optimizee starts again from a fresh initialisation (its draw set
 * by seed and the trajectory's index), so a trajectory is T = K · reset_every steps. The
 * outer optimizer (Adam) steps x. */
typedef struct blo_learnopt_task {
    const char *data_dir;   /* MNIST layout; train split for training, t10k for the test */
    int64_t n_train;        /* training images used (a random subset of the train split) */
    int64_t n_test;         /* test images scored (the first of t10k) */
    int64_t batch;          /* minibatch size */
    int64_t hidden, layers; /* the optimizee: hidden width and hidden layers (≥ 1) */
    blo_dtype dtype;
    uint64_t seed;
} blo_learnopt_task;

typedef struct blo_learnopt_config {
    blo_learnopt_task task;
    int64_t opt_hidden;     /* H of the optimizer's MLP */
    double init_step;       /* e^{ℓ} at the start */
    int64_t reset_every;    /* windows per trajectory */
    blo_config solver;      /* method, window (inner_steps), outer optimizer, windows
                               (outer_iters), checkpoints; inner_update is set by the task */
    const char *resume;     /* a checkpoint of an earlier run of the same settings, or NULL */
    const char *start;      /* an optimizer file to start from instead of blo_learnopt_init */
    const char *save;       /* where to write the trained optimizer (NULL: not written) */
    blo_task_iter_fn on_iter; /* per window (test_acc, f1: NAN) */
    void *user;
} blo_learnopt_config;

/* K = 20 steps per window, 10 windows per trajectory (T = 200), 300 windows; optimizee
 * 784-32-10 (tanh), batch 128 from 10000 training images, f32; optimizer H = 16 starting as
 * Adam with step 3e-3; trhg with window K, outer Adam 1e-3, diverge limit 1e3. */
blo_learnopt_config blo_learnopt_default(void);

typedef struct blo_learnopt_train_result {
    double upper;      /* the last window's mean loss */
    double first_traj, last_traj; /* mean window loss over the first and the last trajectory
                                     (first: NAN when a resumed run starts past it) */
    double step;       /* e^{ℓ} at the end */
    int64_t iters;
    double seconds;
    size_t peak_bytes;
} blo_learnopt_train_result;

/* Meta-trains (continuing from c->resume when given) and writes c->save. Errors:
 * BLO_ERR_IO / BLO_ERR_FORMAT for the data or the start file, BLO_ERR_INVALID for settings,
 * BLO_ERR_NUMERIC for a diverged run; message in err. */
blo_status blo_learnopt_train(const blo_learnopt_config *c, blo_learnopt_train_result *r,
                              char *err, size_t errlen);

/* Training one optimizee with a given optimizer (values only). */
typedef struct blo_learnopt_apply_config {
    blo_learnopt_task task;
    const char *optimizer; /* a file from blo_learnopt_save, or NULL for `baseline` */
    blo_opt baseline;      /* used when optimizer is NULL: SGD + momentum, Adam, ... */
    int64_t steps;         /* the optimizee's training steps */
    int64_t eval_every;    /* test accuracy every k steps into on_iter (0: at the end only) */
    blo_task_iter_fn on_iter; /* rec.iter = step, rec.lower = minibatch loss; test_acc */
    void *user;
} blo_learnopt_apply_config;

typedef struct blo_learnopt_apply_result {
    double mean_loss;  /* mean minibatch training loss over the steps */
    double train_loss; /* mean training loss on all n_train images at the end */
    double test_acc;   /* on the n_test test images at the end */
    int64_t steps;
    double seconds;
} blo_learnopt_apply_result;

/* Draws a fresh optimizee (seed), trains it for c->steps steps and scores it; a step whose
 * loss is not finite stops the run with BLO_ERR_NUMERIC (the step named). The minibatches
 * are drawn from seed alone, so two optimizers on one seed see the same batches. */
blo_status blo_learnopt_apply(const blo_learnopt_apply_config *c, blo_learnopt_apply_result *r,
                              char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#pragma GCC visibility pop
#endif
