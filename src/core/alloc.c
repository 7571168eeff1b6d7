/* alloc.c — the one allocator. Every host allocation blo makes comes through here, so a test
 * can make the n-th one fail (blo_alloc_fail_at) and count what is still live. */
#include "blo/core.h"

#include <stdlib.h>

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
    size_t rounded = (size + 63) & ~(size_t)63;
    if (rounded < size) return NULL; /* overflow */
    void *p = aligned_alloc(64, rounded);
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
