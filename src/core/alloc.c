/* alloc.c — the one allocator. Every host allocation blo makes comes through here, so a test
 * can make the n-th one fail (blo_alloc_fail_at) and count what is still live.
 *
 * Blocks of 4 MiB and more are aligned to 2 MiB and offered to the kernel for transparent huge
 * pages (madvise MADV_HUGEPAGE, Linux): their first touch then faults once per 2 MiB instead of
 * once per 4 KiB page, which on a VM where page faults are dear dominated loading large data
 * sets (a 600 MB CIFAR-10 split). Where huge pages are off or unknown, nothing changes. */
#define _DEFAULT_SOURCE /* madvise and MADV_HUGEPAGE, beside _POSIX_C_SOURCE */
#include "blo/core.h"

#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define HUGE_MIN ((size_t)4 << 20)
#define HUGE_ALIGN ((size_t)2 << 20)

static long fail_at;    /* 0: no injection; else calls left until the failing one */
static long n_allocs;   /* successful allocations, ever */
static long n_live;     /* successful allocations not yet freed */

void blo_alloc_fail_at(long n) {
    fail_at = n > 0 ? n : 0;
}

long blo_alloc_count(void) {
    return n_allocs;
}

long blo_alloc_live(void) {
    return n_live;
}

void *blo_malloc(size_t size) {
    if (fail_at > 0 && --fail_at == 0) return NULL;
    if (size == 0) size = 1;
    size_t align = size >= HUGE_MIN ? HUGE_ALIGN : 64;
    size_t rounded = (size + align - 1) & ~(align - 1);
    if (rounded < size) return NULL; /* overflow */
    void *p = aligned_alloc(align, rounded);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p && align == HUGE_ALIGN) (void)madvise(p, rounded, MADV_HUGEPAGE); /* a hint only */
#endif
    if (p) {
        n_allocs++;
        n_live++;
    }
    return p;
}

void *blo_calloc(size_t n, size_t size) {
    if (size && n > (size_t)-1 / size) return NULL;
    size_t bytes = n * size;
    unsigned char *p = blo_malloc(bytes);
    if (p)
        for (size_t i = 0; i < bytes; i++) p[i] = 0;
    return p;
}

void blo_free(void *p) {
    if (!p) return;
    n_live--;
    free(p);
}
