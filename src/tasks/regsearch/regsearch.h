/* regsearch.h — the regularization search's bilevel problem (internal: the runner and the tests). */
#ifndef BLO_TASKS_REGSEARCH_H
#define BLO_TASKS_REGSEARCH_H

#include "../common/common.h"
#include "blo/regsearch.h"

/* ---- Regularization search ----------------------------------------------------------------
 * Per-group L2 strengths of a logistic regression, chosen by validation loss. Given training
 * data X [n, d] with class labels [n] and validation data Xv [nv, d], labels_v [nv], and a
 * partition of the d features into G groups g(j):
 *     x = (x_1 .. x_G)       log-strengths, λ_g = exp(x_g) (the log keeps λ > 0 and makes
 *                            the search scale-free: a step moves λ by a factor)
 *     y = (w [d], b [1])     two classes: z = X w + b, P(class 1 | X_i) = σ(z_i)
 *       = (W [d, C], b [C])  C > 2 classes: softmax(X W + b)
 *     f(x, y) = (1/n) Σ_i CE_i + ½ Σ_j λ_{g(j)} ‖W_j‖²     (lower: penalised training loss;
 *                                                          the bias is not penalised)
 *     F(x, y) = (1/nv) Σ_i CE_i on the validation set        (upper)
 * Two-class cross-entropy with targets t ∈ {0, 1}: CE = softplus(z) − t z = −log σ((2t − 1) z).
 * With every λ_g > 0 the lower level is strongly convex in w (and convex in b), so y*(x) is
 * unique and the implicit methods apply. Bengio, "Gradient-based optimization of
 * hyperparameters", Neural Computation 2000; Pedregosa, ICML 2016 (HOAG).
 */
typedef struct blo_regsearch {
    /* Borrowed: the caller's data (X and Xv share a float dtype; labels are i64 in
     * [0, classes)); it must outlive this struct and every solver built from its problem. */
    blo_tensor *X, *labels;
    blo_tensor *Xv, *labels_v;
    int64_t n, nv, d, classes, groups;
    /* Owned (in ctx). */
    blo_ctx *ctx;
    blo_tensor *t, *tv;  /* two classes: the labels as 0/1 in X's dtype; NULL otherwise */
    blo_tensor *group;   /* i64 [d]: the group of each feature; NULL when every feature is its
                            own group (G = d) */
    blo_tensor *x0[1];   /* [G], every entry log_lambda0 */
    blo_tensor *y0[2];   /* w [d] or W [d, C], and b; zeros */
} blo_regsearch;

/* Checks the data and makes the problem's start values. group [d] (copied) assigns each
 * feature to a group in [0, groups), or is NULL for one group per feature (then groups must
 * be d). classes <= 0 takes the largest label seen plus one; it must be >= 2. On failure
 * returns BLO_ERR_SHAPE / BLO_ERR_DTYPE / BLO_ERR_INVALID / BLO_ERR_NOMEM with a message in
 * err and leaves nothing to free; on success free with blo_regsearch_free. */
blo_status blo_regsearch_init(blo_regsearch *h, blo_tensor *X, blo_tensor *labels, blo_tensor *Xv,
                              blo_tensor *labels_v, int64_t classes, int64_t groups,
                              const int64_t *group, double log_lambda0, char *err, size_t errlen);
/* Releases what blo_regsearch_init made (not the borrowed data). NULL-safe. */
void blo_regsearch_free(blo_regsearch *h);
/* The bilevel problem (nx = 1, ny = 2) whose user pointer is h; no box on x. */
blo_problem blo_regsearch_problem(blo_regsearch *h);
/* The logits of the model y on X: [m] for two classes, [m, C] otherwise (recorded). */
blo_tensor *blo_regsearch_logits(blo_ctx *ctx, const blo_regsearch *h, blo_tensor *X,
                                 blo_tensor *const *y);
/* Mean cross-entropy and accuracy of the model y on (X, labels), computed without a tape.
 * Returns BLO_OK or the error of the evaluation. */
blo_status blo_regsearch_score(const blo_regsearch *h, blo_tensor *X, blo_tensor *labels,
                               blo_tensor *const *y, double *loss, double *acc);

#endif
