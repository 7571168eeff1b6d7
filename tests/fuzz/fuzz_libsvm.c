/* fuzz_libsvm.c — libFuzzer target for the LIBSVM parser (sparse and dense). */
#include "blo/data.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    blo_dataset ds;
    char err[256];
    /* Cap the dense width so a huge index cannot ask for gigabytes. */
    int dense = size > 0 && (data[0] & 1);
    if (blo_libsvm_parse((const char *)data, size, "fuzz", 0, 0, &ds, err, sizeof err) == BLO_OK) {
        int small = ds.d <= 4096;
        blo_dataset_free(&ds);
        if (dense && small &&
            blo_libsvm_parse((const char *)data, size, "fuzz", 1, 0, &ds, err, sizeof err) == BLO_OK)
            blo_dataset_free(&ds);
    }
    return 0;
}
