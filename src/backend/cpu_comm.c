/* cpu_comm.c — the CPU backend's all-reduce kernel: tensor storage is host memory, so the sum
 * over ranks runs on it in place (comm.c holds the transport and the fixed order).
 *
 *   allreduce_sum(c, t):  t ← Σ_{ranks r of c} t_r    (t fresh, contiguous, f32 or f64) */
#include "comm.h"
#include "cpu.h"

void blo__cpu_allreduce_sum(blo_comm *c, blo_tensor *t) {
    blo__comm_sum_host(c, t->dtype, t->data, blo__numel(t->ndim, t->shape));
}
