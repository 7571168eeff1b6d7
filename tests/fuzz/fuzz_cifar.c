/* fuzz_cifar.c — libFuzzer target: any byte string given to the CIFAR-10 batch parser gives a
 * dataset or a clean error, never a crash, a leak or undefined behaviour. */
#include "blo/data.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    blo_dataset ds;
    char err[256];
    if (blo_cifar10_parse(data, size, "fuzz", &ds, err, sizeof err) == BLO_OK)
        blo_dataset_free(&ds);
    return 0;
}
