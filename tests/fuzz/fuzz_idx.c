/* fuzz_idx.c — libFuzzer target: any byte string given to the IDX parser gives a dataset or
 * a clean error, never a crash, a leak or undefined behaviour. */
#include "blo/data.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    blo_idx a;
    char err[256];
    if (blo_idx_parse(data, size, "fuzz", &a, err, sizeof err) == BLO_OK) blo_idx_free(&a);
    return 0;
}
