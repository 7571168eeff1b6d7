/* blo/task.h — what the ready-to-run tasks share: the per-iteration report a task hands to
 * its caller's callback. The tasks themselves have one header each: blo/hyperclean.h,
 * blo/nas.h, blo/meta.h, blo/fewshot.h, blo/regsearch.h. */
#ifndef BLO_TASK_H
#define BLO_TASK_H
#pragma GCC visibility push(default)

#include "blo/bilevel.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One outer iteration as a task reports it. */
typedef struct blo_task_iter {
    blo_record rec;   /* the solver's record */
    double test_acc;  /* accuracy of the current model y_T on the test set, NAN when not evaluated */
    double test_acc_start; /* accuracy of the learned start y_0, when the start is learned */
    double f1;        /* cleaner F1 of the current weights (hyper-cleaning), NAN if n/a */
} blo_task_iter;
/* Return non-zero to stop the run. */
typedef int (*blo_task_iter_fn)(const blo_task_iter *it, void *user);

/* The accuracy of a classifier: the fraction of rows of logits [..., C] (the last axis holds
 * the C class scores, the others are flattened to M rows) whose largest score (the first on a
 * tie) is at the index labels[i] (M labels of any dtype, read as integers). Reads the values
 * without recording anything. Returns NAN for NULL arguments, no rows, a label count other
 * than M, or an allocation failure. */
double blo_accuracy(const blo_tensor *logits, const blo_tensor *labels);

/* Label noise. The caller shuffles the rows first, so that the first k are a random subset. */
typedef enum blo_noise_kind {
    BLO_NOISE_UNIFORM = 0, /* a class drawn uniformly from all C (about 1/C keep their label) */
    BLO_NOISE_PAIR         /* pair flip: class c becomes (c + 1) mod C */
} blo_noise_kind;
/* Corrupts labels[0 .. k), k = round(rate · n), by kind, with C = classes; uniform draws one
 * blo_rng_below(g, C) per row in order (pair flip draws nothing). Returns k, or -1 (nothing
 * changed) for rate outside [0, 1], classes < 2 or n < 0. */
int64_t blo_label_noise(blo_rng *g, int64_t *labels, int64_t n, int64_t classes, double rate,
                        blo_noise_kind kind);

#ifdef __cplusplus
}
#endif

#pragma GCC visibility pop
#endif
