/* blo/dist.h — data-parallel hypergradients over MPI: communicators, rank and size, and two
 * differentiable collectives.
 *
 * A build with MPI (CMake option BLO_WITH_MPI, on when MPI is found) runs on the ranks that
 * `mpirun -np R` starts; a build without it, or a process not started by an MPI launcher, has
 * one rank and every call below is exact and local (a sum over one rank is the identity). A
 * single process never needs mpirun.
 *
 * THE RULE (where replication begins and ends). Each rank holds a shard of the data; the
 * hyper-variables x and the lower-level variables y are replicated: equal, bit for bit, on
 * every rank. Write each objective as
 *
 *     f(x, y) = allreduce_sum( Σ_{i in my shard} ℓ_i(replicate(x), replicate(y)) ) / N_total
 *               + r(x, y)
 *
 * that is: (1) a replicated tensor that enters rank-local computation (anything that touches
 * the shard) passes through blo_replicate first; (2) a rank-local value that becomes part of a
 * replicated one (the shard's loss sum) passes through blo_allreduce_sum; (3) terms that read
 * only replicated values (a regulariser r on x and y) are computed on x and y directly, on every
 * rank alike, and are not summed. Then f is the objective of the union of the shards, and so is
 * every derivative of it:
 *
 *     replicate:      forward  identity            backward  allreduce_sum of the cotangent
 *     allreduce_sum:  forward  Σ over the ranks    backward  replicate (the identity) of it
 *
 * Each op's backward is the other op, recorded, so gradients of gradients (Hessian-vector and
 * mixed products, forward mode through double reverse) cross the collective as often as needed
 * and every method of the registry computes the union's hypergradient without knowing that it
 * runs on R ranks. All ranks must run the same sequence of collectives: the methods' control
 * flow depends only on replicated values, which the rule keeps identical on every rank.
 *
 * Determinism. The sum is taken in a fixed order: the vector is cut into R chunks, rank j
 * receives every rank's chunk j (an all-to-all), adds them in rank order 0, 1, …, R−1 in double
 * precision, rounds once to the dtype, and the sums are gathered back to every rank (an
 * all-gather): the same bits on every rank, run to run, for a given rank count. Each rank sends
 * 2 (R−1)/R of the vector — what a ring all-reduce sends. Vectors of at most 4096 / R elements
 * are instead all-gathered whole and added in rank order by every rank (one message round;
 * each rank sends (R−1) copies of the vector). A collective whose peer died ends the job
 * (MPI's default error handler): mpirun names the rank that was lost.
 */
#ifndef BLO_DIST_H
#define BLO_DIST_H
#pragma GCC visibility push(default)

#include "blo/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct blo_comm blo_comm;

/* Starts MPI when this process was started by an MPI launcher (mpirun / mpiexec: Open MPI's
 * or a PMI environment) and the build has MPI; otherwise does nothing. Idempotent. argc and
 * argv may be NULL. Returns BLO_OK, or BLO_ERR_UNSUPPORTED with a message in err when a
 * launcher started this process but the build has no MPI, or BLO_ERR_IO when MPI could not
 * start. Call blo_dist_finalize before exit (it is also registered with atexit). */
blo_status blo_dist_init(int *argc, char ***argv, char *err, size_t errlen);
/* Ends MPI if blo_dist_init started it; safe to call more than once. */
void blo_dist_finalize(void);
/* 1 when this build has MPI, else 0. */
int blo_dist_built_with_mpi(void);

/* Every rank (MPI_COMM_WORLD after blo_dist_init, else one rank), and this rank alone. Static
 * objects: never free them. Never NULL. */
blo_comm *blo_comm_world(void);
blo_comm *blo_comm_self(void);
int blo_comm_rank(const blo_comm *c); /* 0 for NULL */
int blo_comm_size(const blo_comm *c); /* 1 for NULL */
/* Splits c into groups of ranks with the same color (>= 0), ordered by key then by rank in c:
 * a collective call on every rank of c. Returns the caller's group, to free with
 * blo_comm_free, or NULL when memory or MPI fails. */
blo_comm *blo_comm_split(blo_comm *c, int color, int key);
void blo_comm_free(blo_comm *c); /* NULL, world and self are no-ops */

/* Host collectives (every rank of c calls them in the same order). blo_comm_sum_f64: buf[n]
 * becomes the sum over ranks, in the fixed order above. blo_comm_bcast_bytes: rank root's
 * n bytes are copied into every rank's buf. blo_comm_barrier: waits for every rank. */
void blo_comm_sum_f64(blo_comm *c, double *buf, int64_t n);
void blo_comm_bcast_bytes(blo_comm *c, void *buf, int64_t n, int root);
void blo_comm_barrier(blo_comm *c);
/* Bytes this rank has sent in c's sums since c was made (or since the last reset), the number
 * of sums, and the wall-clock seconds spent inside them (transfer and waiting for the other
 * ranks; with cpu, the process CPU seconds spent there, in *cpu). */
uint64_t blo_comm_bytes_sent(const blo_comm *c);
uint64_t blo_comm_calls(const blo_comm *c);
double blo_comm_seconds(const blo_comm *c, double *cpu);
void blo_comm_reset_counts(blo_comm *c);
/* Ends every rank of the job with exit code code after printing message (rank-prefixed) to
 * stderr: what a program does when one rank fails while the others wait in a collective.
 * Without MPI (or with one rank) it returns and the caller exits as usual. */
void blo_comm_abort(blo_comm *c, int code, const char *message);

/* ---- The two differentiable collectives (see THE RULE above) ---------------------------------
 * Both return a new tensor in ctx (x's shape and float dtype), recorded when ctx records and x
 * requires grad; NULL on failure with the error in ctx (a NULL x or c is refused). Every rank
 * of c must call them in the same order with the same shape and dtype. */
/* Identity forward; the backward sums the cotangent over the ranks of c. */
blo_tensor *blo_replicate(blo_ctx *ctx, blo_comm *c, blo_tensor *x);
/* The elementwise sum of x over the ranks of c, on every rank; the backward is replicate. */
blo_tensor *blo_allreduce_sum(blo_ctx *ctx, blo_comm *c, blo_tensor *x);

#ifdef __cplusplus
}
#endif

#pragma GCC visibility pop
#endif
