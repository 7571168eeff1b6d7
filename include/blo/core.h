/* blo/core.h — status codes, the allocator, contexts (arenas), threads and the RNG.
 *
 * Every object blo makes lives in a context. A context is an arena: tensors, tape nodes
 * and their data are allocated from it and released together by blo_ctx_free(), or in a
 * window by blo_ctx_mark()/blo_ctx_rewind(). There is no per-tensor free.
 *
 * Errors: library functions never exit or abort on bad input. Functions that build tensors
 * return NULL on failure and record the first error in the context that was asked to hold
 * the result (blo_ctx_status / blo_ctx_error). An op handed a NULL input returns NULL
 * without touching the recorded error, so a whole expression can be built and checked once.
 */
#ifndef BLO_CORE_H
#define BLO_CORE_H
#pragma GCC visibility push(default)

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum blo_status {
    BLO_OK = 0,
    BLO_ERR_NOMEM,              /* an allocation failed */
    BLO_ERR_SHAPE,              /* shapes do not fit the operation */
    BLO_ERR_DTYPE,              /* dtypes do not fit the operation */
    BLO_ERR_INVALID,            /* an argument is out of its domain, or the API was misused */
    BLO_ERR_NOT_DIFFERENTIABLE, /* create-graph reached a kernel whose backward is not recorded */
    BLO_ERR_IO,                 /* a file could not be opened, read or written */
    BLO_ERR_FORMAT,             /* a file's content is malformed */
    BLO_ERR_NUMERIC,            /* a non-finite value or divergence */
    BLO_ERR_UNSUPPORTED         /* a feature that this build or backend does not have */
} blo_status;

/* A short constant name for a status ("BLO_ERR_SHAPE"). Never NULL. */
const char *blo_status_name(blo_status s);

/* ---- Allocator ------------------------------------------------------------------------
 * All host memory that blo takes goes through these, so a test can make the n-th call fail.
 * blo_malloc returns NULL on failure (or when a failure was injected); blo_free(NULL) is a
 * no-op. Memory from blo_malloc is aligned to 64 bytes. */
void *blo_malloc(size_t size);
void *blo_calloc(size_t n, size_t size);
void blo_free(void *p);
/* Make the n-th blo_malloc/blo_calloc from now on fail (n >= 1); n = 0 disables injection.
 * Process-wide and not thread-safe: for tests. */
void blo_alloc_fail_at(long n);
/* Number of successful allocations since the process started (monotone) and those live now. */
long blo_alloc_count(void);
long blo_alloc_live(void);

/* ---- Contexts -------------------------------------------------------------------------- */
typedef struct blo_ctx blo_ctx;

/* A new, empty context. chunk_bytes is the arena's chunk size (0 = 1 MiB default); larger
 * requests get their own chunk. Returns NULL if memory is exhausted. Free with blo_ctx_free. */
blo_ctx *blo_ctx_new(size_t chunk_bytes);
/* Releases the context and everything made in it. NULL is a no-op. */
void blo_ctx_free(blo_ctx *ctx);

/* A position in the arena. Everything made after blo_ctx_mark() is released by
 * blo_ctx_rewind(); tensors made before stay valid. Marks nest like a stack: rewinding to an
 * older mark invalidates newer ones. */
typedef struct blo_mark {
    size_t chunk, used, nbig, bytes;
} blo_mark;
blo_mark blo_ctx_mark(const blo_ctx *ctx);
void blo_ctx_rewind(blo_ctx *ctx, blo_mark m);

/* Bytes held by the context now, and the most it has held since it was made. */
size_t blo_ctx_bytes(const blo_ctx *ctx);
size_t blo_ctx_peak_bytes(const blo_ctx *ctx);

/* The first error recorded in the context since the last clear, and its message
 * ("" when BLO_OK). The message stays valid until the next clear or blo_ctx_free. */
blo_status blo_ctx_status(const blo_ctx *ctx);
const char *blo_ctx_error(const blo_ctx *ctx);
void blo_ctx_clear_error(blo_ctx *ctx);
/* Record an error (printf-style message) unless one is recorded already; returns s. */
blo_status blo_ctx_set_error(blo_ctx *ctx, blo_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Whether ops whose result lives in this context record tape nodes (default 1). With 0 the
 * context computes values only (like torch.no_grad). Returns the previous setting. */
int blo_ctx_set_recording(blo_ctx *ctx, int on);
int blo_ctx_recording(const blo_ctx *ctx);

/* ---- Backends ---------------------------------------------------------------------------
 * A backend holds tensor storage and runs every loop over tensor data. This build's backends
 * are listed by index; the first ("cpu": reference loops, BLAS gemm, OpenMP) is the default a
 * context uses unless told otherwise. */
/* The number of backends in this build (at least 1). */
int blo_backend_count(void);
/* The name of backend i in [0, blo_backend_count()), a static string; NULL out of range. */
const char *blo_backend_name_at(int i);
/* Selects the backend, by name, of the tensors that ctx will hold. Returns BLO_OK, or
 * BLO_ERR_INVALID (with a message in ctx) for an unknown name, or once a tensor has been
 * made in ctx (tensors never move between backends: select before making any, even after a
 * rewind). ctx's backend is unchanged on failure. */
blo_status blo_ctx_set_backend(blo_ctx *ctx, const char *name);
/* The name of ctx's backend (a static string); NULL for a NULL ctx. */
const char *blo_ctx_backend_name(const blo_ctx *ctx);

/* ---- Threads ---------------------------------------------------------------------------
 * The number of threads for blo's own loops and for BLAS. n <= 0 means all cores.
 * For a given seed and thread count, results are identical run to run. */
void blo_set_num_threads(int n);
int blo_num_threads(void);

/* ---- RNG --------------------------------------------------------------------------------
 * A small counter-free generator (xoshiro256**), seeded with splitmix64. The whole state is
 * this struct, so it can be saved in a checkpoint and restored. */
typedef struct blo_rng {
    uint64_t s[4];
} blo_rng;
void blo_rng_seed(blo_rng *r, uint64_t seed);
uint64_t blo_rng_next(blo_rng *r);
double blo_rng_uniform(blo_rng *r); /* in [0, 1) */
double blo_rng_normal(blo_rng *r);  /* standard normal (Box–Muller, no cached pair) */
/* Uniform integer in [0, n), without modulo bias. n must be > 0. */
uint64_t blo_rng_below(blo_rng *r, uint64_t n);

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
