/* fuzz_csv.c — libFuzzer target for the CSV parser. */
#include "blo/data.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    blo_dataset ds;
    char err[256];
    if (blo_csv_parse((const char *)data, size, "fuzz", NULL, &ds, err, sizeof err) == BLO_OK)
        blo_dataset_free(&ds);
    return 0;
}
