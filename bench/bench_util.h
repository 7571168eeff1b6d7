/* bench_util.h — what the benchmark programs share: their clocks and the median they report.
 * Header-only (static functions): each bench_*.c is one program. */
#ifndef BLO_BENCH_UTIL_H
#define BLO_BENCH_UTIL_H

#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

/* Seconds on the given clock. */
static inline double bench_clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The process's peak resident set so far (ru_maxrss), MiB. */
static inline double bench_maxrss_mib(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_maxrss / 1024.0; /* Linux: KiB */
}

/* Wall-clock seconds (monotonic). */
static inline double bench_wall_s(void) {
    return bench_clock_s(CLOCK_MONOTONIC);
}

/* CPU seconds of the calling thread: on a loaded machine it counts only the time the thread
 * ran. */
static inline double bench_cpu_s(void) {
    return bench_clock_s(CLOCK_THREAD_CPUTIME_ID);
}

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0 .. n), n >= 1; sorts v. */
static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#endif
