/* threads.c — one thread setting for blo's OpenMP loops and for BLAS. */
#include "blo/core.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef BLO_HAVE_OPENBLAS
void openblas_set_num_threads(int n);
#endif

static int n_threads; /* 0 until set: the OpenMP default then */

void blo_set_num_threads(int n) {
#ifdef _OPENMP
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
#else
    if (n <= 0) n = 1;
#endif
#ifdef BLO_HAVE_OPENBLAS
    openblas_set_num_threads(n);
#endif
    n_threads = n;
}

int blo_num_threads(void) {
    if (n_threads > 0) return n_threads;
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
