/* blo/blo.h — the whole public API of blo, a library for gradient-based bilevel optimization.
 *
 *   core.h      status codes, allocator, contexts (arenas), threads, RNG
 *   tensor.h    tensors: creation, views, element access, initialisation
 *   ops.h       differentiable operations
 *   autodiff.h  reverse mode of any order: grad, HVP, mixed products, JVP, detach
 *   optim.h     SGD / momentum / Nesterov / Adam (recorded or values-only), L-BFGS
 *   linalg.h    matrix-free CG, Neumann series, fixed point (+ Anderson) on tensor lists
 *   bilevel.h   bilevel problems, the hypergradient methods, the outer loop
 *   data.h      datasets and loaders: IDX (MNIST family), LIBSVM, CSV
 *   task.h      what the ready-to-run tasks share
 *   hyperclean.h, nas.h, meta.h, fewshot.h, regsearch.h   one header per task
 */
#ifndef BLO_BLO_H
#define BLO_BLO_H
#pragma GCC visibility push(default)

#include "blo/autodiff.h"
#include "blo/bilevel.h"
#include "blo/causal.h"
#include "blo/core.h"
#include "blo/data.h"
#include "blo/deq.h"
#include "blo/dist.h"
#include "blo/fewshot.h"
#include "blo/graph.h"
#include "blo/hyperclean.h"
#include "blo/learnopt.h"
#include "blo/linalg.h"
#include "blo/meta.h"
#include "blo/nas.h"
#include "blo/ops.h"
#include "blo/optim.h"
#include "blo/regsearch.h"
#include "blo/reweight.h"
#include "blo/task.h"
#include "blo/tensor.h"

#define BLO_VERSION_STRING "0.1.0"

#pragma GCC visibility pop
#endif
