/* cpu.h — the CPU backend's kernels, one group per file, gathered into the table in cpu.c. */
#ifndef BLO_CPU_H
#define BLO_CPU_H

#include "backend.h"

/* The element-wise row kernels (and the solvers' dot / axpy) are also built for AVX2 on x86-64
 * and picked at load time (GCC / clang function multi-versioning). AVX2 alone, without FMA, so
 * that no product and sum are contracted: both versions compute the same bits. */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define BLO_ROW_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef BLO_ROW_CLONES
#define BLO_ROW_CLONES
#endif

/* Shared row iterator (cpu.c): see there. */
int blo__coalesce(int nd, int64_t *shape, int nops, int64_t (*st)[BLO_MAX_DIMS]);
void blo__for_rows(int nd, int64_t *shape, int nops, int64_t (*st)[BLO_MAX_DIMS],
                   void *const *ptrs, const size_t *esize,
                   void (*fn)(const void *env, int64_t n, char **p, const int64_t *s),
                   const void *env);

/* cpu_index.c */
int64_t blo__cpu_index_outside(const blo_tensor *idx, int64_t n, int64_t *value);
void blo__cpu_gather(const blo_tensor *a, int axis, const blo_tensor *idx, blo_tensor *out);
void blo__cpu_scatter_add(blo_tensor *out, int axis, const blo_tensor *idx,
                          const blo_tensor *src);
void blo__cpu_index_select(const blo_tensor *a, int axis, const blo_tensor *idx,
                           blo_tensor *out);
void blo__cpu_index_add(blo_tensor *out, int axis, const blo_tensor *idx, const blo_tensor *src);

/* cpu_conv.c */
void blo__cpu_im2col(const blo_tensor *x, const blo_conv2d_params *p, int kh, int kw, int oh,
                     int ow, blo_tensor *cols);
void blo__cpu_col2im(const blo_tensor *cols, const blo_conv2d_params *p, int kh, int kw, int oh,
                     int ow, blo_tensor *x);
void blo__cpu_dwconv(blo_dwconv_kind k, const blo_tensor *a, const blo_tensor *b,
                     const blo_conv2d_params *p, blo_tensor *out);
void blo__cpu_max_pool2d(const blo_tensor *x, const blo_pool2d_params *p, blo_tensor *out,
                         blo_tensor *argmax);
void blo__cpu_avg_pool2d(const blo_tensor *x, const blo_pool2d_params *p, blo_tensor *out);
void blo__cpu_avg_pool2d_adjoint(const blo_tensor *gout, const blo_pool2d_params *p,
                                 blo_tensor *gx);

/* cpu_sparse.c */
void blo__cpu_spmm(int64_t rows, const int64_t *rowptr, const blo_tensor *colidx,
                   const blo_tensor *values, const blo_tensor *b, blo_tensor *out);
void blo__cpu_csr_transpose(int64_t rows, int64_t cols, int64_t nnz, const int64_t *rowptr,
                            const int64_t *colidx, blo_tensor *a_col, blo_tensor *a_row,
                            blo_tensor *a_perm, int64_t *t_rowptr, blo_tensor *t_col,
                            blo_tensor *t_row, blo_tensor *t_perm);

/* cpu_loss.c */
void blo__cpu_xent_forward(const blo_tensor *logits, const blo_tensor *labels,
                           const blo_tensor *weights, blo_reduction red,
                           blo_tensor *loss_terms, blo_tensor *probs, blo_tensor *out);
void blo__cpu_xent_backward(const blo_tensor *probs, const blo_tensor *labels,
                            const blo_tensor *loss_terms, const blo_tensor *weights,
                            const blo_tensor *g, double scale, blo_tensor *glogits,
                            blo_tensor *gweights);

/* cpu_graph.c */
void blo__cpu_st_adj_forward(const blo_tensor *theta, blo_rng *rng, blo_tensor *work,
                             blo_tensor *out);
void blo__cpu_st_adj_grad(int adjoint, const blo_tensor *g, const blo_tensor *ahat,
                          blo_tensor *work, blo_tensor *out);

/* cpu_vec.c */
double blo__cpu_dot(const blo_tensor *a, const blo_tensor *b);
void blo__cpu_axpy(double a, const blo_tensor *x, blo_tensor *y);
void blo__cpu_scale(double a, blo_tensor *y);

/* cpu_comm.c */
void blo__cpu_allreduce_sum(struct blo_comm *c, blo_tensor *t);

#endif
