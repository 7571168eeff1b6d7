/* rng.c — xoshiro256** (Blackman & Vigna 2018), seeded through splitmix64. */
#include "blo/core.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void blo_rng_seed(blo_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t blo_rng_next(blo_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double blo_rng_uniform(blo_rng *r) {
    return (double)(blo_rng_next(r) >> 11) * 0x1.0p-53;
}

double blo_rng_normal(blo_rng *r) {
    double u1 = 1.0 - blo_rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = blo_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t blo_rng_below(blo_rng *r, uint64_t n) {
    /* Lemire's rejection: unbiased. */
    uint64_t limit = (uint64_t)(-n) % n;
    for (;;) {
        uint64_t x = blo_rng_next(r);
        if (x >= limit) return x % n;
    }
}
