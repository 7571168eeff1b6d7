/* internal.h — the structures behind the public handles, shared by the library's sources.
 * Not installed. */
#ifndef BLO_INTERNAL_H
#define BLO_INTERNAL_H

#include "blo/autodiff.h"
#include "blo/core.h"
#include "blo/ops.h"
#include "blo/tensor.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct blo_backend;

/* ---- Context (arena) ----------------------------------------------------------------------
 * Small allocations are carved from chunks of chunk_bytes; a request larger than a quarter
 * of a chunk gets its own block ("big"). Rewinding keeps the chunks for reuse and frees the
 * big blocks made after the mark. */
struct blo_ctx {
    size_t chunk_bytes;
    char **chunks;
    size_t nchunks, cap_chunks;
    size_t cur;  /* index of the chunk being filled */
    size_t used; /* bytes used in chunks[cur] */
    void **big;
    size_t *big_size;
    size_t nbig, cap_big, cap_big_size;
    /* Big blocks released by rewinds, kept for reuse: an unrolled loop that rewinds every step
     * would otherwise return its large tensors to the system and fault them in again. At most
     * `high` bytes are kept (they were all live at once before). */
    void **cache;
    size_t *cache_size;
    size_t ncache, cap_cache, cap_cache_size, cache_bytes;
    size_t bytes, peak; /* bytes handed out (chunk parts + big blocks) */
    size_t high;        /* the largest peak ever: a caller may reset peak, never this */
    blo_status status;
    char msg[512];
    int recording;
    /* The kernel table of this context's tensors. NULL until the first tensor is made, when
     * the tensor layer binds the registry's default unless blo_ctx_set_backend chose one;
     * core itself names no backend. */
    const struct blo_backend *be;
    int holds_tensors; /* a tensor was made here: the backend can no longer change */
};

/* Arena allocation, 64-byte aligned. On failure records BLO_ERR_NOMEM in ctx, returns NULL. */
void *blo__ctx_alloc(blo_ctx *ctx, size_t bytes);

/* ---- Tensor ---------------------------------------------------------------------------------- */
struct blo_node;

struct blo_tensor {
    blo_dtype dtype;
    int ndim;
    int64_t shape[BLO_MAX_DIMS];
    int64_t stride[BLO_MAX_DIMS]; /* in elements; 0 on broadcast axes */
    void *data;                   /* element 0 of the view */
    blo_ctx *ctx;                 /* the context holding this header */
    struct blo_node *node;        /* the recorded op that made it; NULL for leaves */
    bool requires_grad;           /* a variable, or computed from one with recording on */
    uint64_t seq;                 /* creation order: every input of a node is older */
};

/* The next creation number (for blo_tensor.seq). */
uint64_t blo__next_seq(void);

/* A header in ctx with the given shape and fresh contiguous storage (uninitialised). */
blo_tensor *blo__alloc(blo_ctx *ctx, blo_dtype dt, int ndim, const int64_t *shape);
/* A header in ctx that views `base`'s storage with a new shape and strides, its element 0
 * `offset` elements after base's element 0 (offsets are in elements, never bytes, so views
 * need no pointer arithmetic outside the tensor layer). No history. */
blo_tensor *blo__view(blo_ctx *ctx, const blo_tensor *base, int ndim, const int64_t *shape,
                      const int64_t *stride, int64_t offset);
/* Moves a header's element 0 by `offset` elements (for windows built in a caller's header, as
 * kernels' operands). */
void blo__view_shift(blo_tensor *t, int64_t offset);
/* The context's backend, binding the registry's default when none is bound yet. */
const struct blo_backend *blo__ctx_backend(blo_ctx *ctx);
int64_t blo__numel(int ndim, const int64_t *shape);
void blo__contig_strides(int ndim, const int64_t *shape, int64_t *stride);
bool blo__is_contig(const blo_tensor *t);
/* Axis normalisation: returns the axis in [0, ndim) or -1 if out of range. */
int blo__axis(int axis, int ndim);
/* Broadcast shapes a and b into out (returns false if incompatible). */
bool blo__broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                          int64_t *out);
/* A view of t expanded to (ndim, shape): leading axes added, size-1 axes given stride 0.
 * The header lives in ctx. No checks beyond broadcast compatibility. */
blo_tensor *blo__expand_view(blo_ctx *ctx, const blo_tensor *t, int ndim, const int64_t *shape);
/* The same, written into a caller's header (no allocation; for kernels' operands). */
void blo__expand_into(blo_tensor *dst, const blo_tensor *t, int ndim, const int64_t *shape);
/* Vector algebra on values through the tensor's backend (not recorded; no checks: same shape
 * and float dtype are the caller's to ensure): Σ a_k b_k in double; y += α x; y *= α. */
double blo__vec_dot(const blo_tensor *a, const blo_tensor *b);
void blo__vec_axpy(double alpha, const blo_tensor *x, blo_tensor *y);
void blo__vec_scale(double alpha, blo_tensor *y);
/* "f32[2, 3]" */
const char *blo__desc(const blo_tensor *t, char *buf, size_t n);

/* Tensors in a state file (the solver's and the tasks' checkpoints): [dtype, ndim, shape...]
 * as int64, then the raw values in the tensor's dtype, host order. blo__tensor_write returns
 * false when writing fails. blo__tensor_read checks the next header against t and reads the
 * values into t, or with dry = 1 only skips them, checking that the file (of end bytes) holds
 * them; on failure it returns false with the reason in why ("truncated", or which of dtype,
 * rank or shape differs). */
bool blo__tensor_write(FILE *f, const blo_tensor *t);
bool blo__tensor_read(FILE *f, blo_tensor *t, int dry, long end, char *why, size_t n);

/* An optimizer's settings as BLO__OPT_FIELDS doubles, in the order of blo__opt_field_names
 * (kind, lr, momentum, ...): what a checkpoint records to refuse a resume with other ones. */
#define BLO__OPT_FIELDS 7
struct blo_opt;
void blo__opt_fields(const struct blo_opt *o, double *v);
extern const char *const blo__opt_field_names[BLO__OPT_FIELDS];

/* Writes a printf-style message into err[errlen] (when err is given) and returns st: the error
 * convention of the functions that report into a caller's buffer (loaders, tasks). */
blo_status blo__fail(char *err, size_t errlen, blo_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Argument checks that record a message naming the op; each returns false on failure. */
bool blo__check_float(blo_ctx *ctx, const char *op, const blo_tensor *t);
bool blo__check_same_dtype(blo_ctx *ctx, const char *op, const blo_tensor *a,
                           const blo_tensor *b);

/* Null-propagation guard at the top of every op. */
#define BLO_GUARD(ctx)                                                                       \
    do {                                                                                     \
        if (!(ctx)) return NULL;                                                             \
    } while (0)

#endif
