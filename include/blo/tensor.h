/* blo/tensor.h — N-d tensors: creation, views, element access.
 *
 * A tensor is a view (shape, strides in elements, a data pointer) over storage that a
 * context owns. Storage is row-major when fresh; reshape / transpose / permute / slice /
 * expand return views without copying where the layout allows it (reshape of a
 * non-contiguous view copies). Every function that returns a tensor returns NULL on failure
 * and records the error in the context that holds the result (see core.h).
 *
 * dtypes: BLO_F32 and BLO_F64 for values; BLO_I64 for index tensors (labels, gather
 * indices), which only creation, copy and the ops that take indices accept.
 */
#ifndef BLO_TENSOR_H
#define BLO_TENSOR_H

#include "blo/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BLO_MAX_DIMS 6

typedef enum blo_dtype { BLO_F32 = 0, BLO_F64 = 1, BLO_I64 = 2 } blo_dtype;
const char *blo_dtype_name(blo_dtype d); /* "f32", "f64", "i64" */
size_t blo_dtype_size(blo_dtype d);

typedef struct blo_tensor blo_tensor;

/* ---- Creation (result lives in ctx) ---------------------------------------------------- */
/* Uninitialised storage. ndim in [0, BLO_MAX_DIMS]; ndim 0 is a scalar. */
blo_tensor *blo_tensor_new(blo_ctx *ctx, blo_dtype dt, int ndim, const int64_t *shape);
blo_tensor *blo_zeros(blo_ctx *ctx, blo_dtype dt, int ndim, const int64_t *shape);
blo_tensor *blo_full(blo_ctx *ctx, blo_dtype dt, int ndim, const int64_t *shape, double v);
blo_tensor *blo_scalar(blo_ctx *ctx, blo_dtype dt, double v);
/* A tensor holding a copy of n = prod(shape) values given as double (converted to dt). */
blo_tensor *blo_from_f64(blo_ctx *ctx, blo_dtype dt, int ndim, const int64_t *shape,
                         const double *values);
/* Index tensor from int64 values (copied). */
blo_tensor *blo_from_i64(blo_ctx *ctx, int ndim, const int64_t *shape, const int64_t *values);
/* Wraps a caller's contiguous row-major buffer without copying. Ownership: the buffer stays
 * the caller's; it must outlive every use of the tensor and of tensors viewing it, and blo
 * never frees it. Writes through blo_tensor_data() reach the caller's buffer. */
blo_tensor *blo_wrap(blo_ctx *ctx, blo_dtype dt, int ndim, const int64_t *shape, void *data);
/* A contiguous copy in ctx, with no tape history (a new leaf; requires_grad off). */
blo_tensor *blo_clone(blo_ctx *ctx, const blo_tensor *t);
/* Copies values of src into dst (same shape; dtypes may differ, f32<->f64). In place, not
 * recorded. Returns BLO_OK or an error (also recorded in dst's context). */
blo_status blo_copy_into(blo_tensor *dst, const blo_tensor *src);
/* The same values converted to dtype dt (a differentiable op; a no-op view when equal). */
blo_tensor *blo_cast(blo_ctx *ctx, blo_tensor *t, blo_dtype dt);
blo_status blo_fill(blo_tensor *t, double v);

/* ---- Random initialisation (in place, not recorded) ------------------------------------ */
blo_status blo_init_uniform(blo_tensor *t, blo_rng *r, double lo, double hi);
blo_status blo_init_normal(blo_tensor *t, blo_rng *r, double mean, double std);
/* fan_in / fan_out are read from the shape: [out, in] for a matrix, [out, in/groups, kh, kw]
 * for a conv weight. Kaiming (He) normal for ReLU: std = gain / sqrt(fan_in), gain = sqrt(2).
 * Xavier (Glorot) uniform: bound = sqrt(6 / (fan_in + fan_out)). */
blo_status blo_init_kaiming_normal(blo_tensor *t, blo_rng *r);
blo_status blo_init_kaiming_uniform(blo_tensor *t, blo_rng *r);
blo_status blo_init_xavier_uniform(blo_tensor *t, blo_rng *r);
blo_status blo_init_xavier_normal(blo_tensor *t, blo_rng *r);

/* ---- Metadata ---------------------------------------------------------------------------- */
int blo_tensor_ndim(const blo_tensor *t);
int64_t blo_tensor_dim(const blo_tensor *t, int axis); /* negative axis counts from the end */
const int64_t *blo_tensor_shape(const blo_tensor *t);
const int64_t *blo_tensor_strides(const blo_tensor *t); /* in elements */
int64_t blo_tensor_numel(const blo_tensor *t);
blo_dtype blo_tensor_dtype(const blo_tensor *t);
blo_ctx *blo_tensor_ctx(const blo_tensor *t);
int blo_tensor_is_contiguous(const blo_tensor *t);
/* Pointer to element 0 of the view. Valid while the owning context (or the caller's wrapped
 * buffer) lives. Index with the strides unless blo_tensor_is_contiguous(). */
void *blo_tensor_data(const blo_tensor *t);
/* Value at a flat row-major index of the view (any layout), as double. */
double blo_tensor_get(const blo_tensor *t, int64_t flat);
blo_status blo_tensor_set(blo_tensor *t, int64_t flat, double v);
/* The value of a one-element tensor. */
double blo_tensor_item(const blo_tensor *t);
/* Copies all values (row-major order of the view) into out[numel] as double. */
blo_status blo_tensor_to_f64(const blo_tensor *t, double *out);
/* Copies all values of t (row-major order of the view, any strides) into dst, numel elements
 * of dtype dt, converting as blo_tensor_get / blo_tensor_set do (i64 to i64 exactly). The
 * caller owns dst. Returns BLO_ERR_INVALID for a NULL argument or an unknown dt. */
blo_status blo_tensor_copy_to_host(const blo_tensor *t, blo_dtype dt, void *dst);
/* The reverse: writes numel elements of dtype dt from src into t (row-major order of the
 * view), converting to t's dtype. src is only read. Errors as blo_tensor_copy_to_host. */
blo_status blo_tensor_copy_from_host(blo_tensor *t, blo_dtype dt, const void *src);
/* "f32[2, 3]" into buf (always terminated); returns buf. */
const char *blo_tensor_describe(const blo_tensor *t, char *buf, size_t n);

/* ---- Autodiff flags on a tensor ---------------------------------------------------------- */
/* Marks a leaf as a variable to differentiate with respect to (parameters, hyper-variables).
 * Ops on it record tape nodes (when their context records). */
blo_status blo_set_requires_grad(blo_tensor *t, int on);
int blo_requires_grad(const blo_tensor *t);
/* Whether t was made by a recorded op (has a tape node). */
int blo_has_history(const blo_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
