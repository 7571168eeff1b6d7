/* ops_util.h — small helpers shared by the op files. */
#ifndef BLO_OPS_UTIL_H
#define BLO_OPS_UTIL_H

#include "../autodiff/tape.h"
#include "../backend/backend.h"

/* g summed over its broadcast axes down to like's shape (g itself when shapes match). */
blo_tensor *blo__sum_like(blo_ctx *ctx, blo_tensor *g, const blo_tensor *like);
/* A kernel map into a fresh tensor that is never recorded (masks, constants). */
blo_tensor *blo__unary_const(blo_ctx *ctx, blo_unary_kind k, double p0, double p1,
                             blo_tensor *a);
/* Reduction into the keepdim layout, never recorded. axes_mask bit i set = reduce axis i. */
blo_tensor *blo__reduce_const(blo_ctx *ctx, blo_reduce_kind k, blo_tensor *a, unsigned axes_mask);
/* Parses (naxes, axes) into a bit mask over a's axes; records an error naming op. Returns
 * false on a bad axis. naxes == 0 means all axes. */
bool blo__axes_mask(blo_ctx *ctx, const char *op, const blo_tensor *a, int naxes, const int *axes,
                    unsigned *mask);
/* Shape of a reduced with mask: keepdim (size 1 on reduced axes) or dropped. */
int blo__reduced_shape(const blo_tensor *a, unsigned mask, int keepdim, int64_t *shape);

#endif
