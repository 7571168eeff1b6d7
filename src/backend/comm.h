/* comm.h — what the backends need of a communicator (comm.c): the host sum in a fixed order
 * and its receive buffer. Internal; blo/dist.h is the public side. */
#ifndef BLO_BACKEND_COMM_H
#define BLO_BACKEND_COMM_H

#include "../internal.h"
#include "blo/dist.h"

/* Bytes of receive buffer blo__comm_sum_host needs for n elements of esize bytes on c. */
size_t blo__comm_scratch_bytes(const blo_comm *c, int64_t n, size_t esize);
/* Grows c's receive buffer to at least bytes; BLO_ERR_NOMEM when memory fails. */
blo_status blo__comm_reserve(blo_comm *c, size_t bytes);
/* buf[n] (f32 or f64, host memory) becomes the sum over c's ranks, added in rank order in
 * double and rounded once: the same bits on every rank. The buffer must be reserved first. */
void blo__comm_sum_host(blo_comm *c, blo_dtype dt, void *buf, int64_t n);

#endif
