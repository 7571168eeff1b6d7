/* fuzz_causal.c — libFuzzer target for the causal loader: the IHDP layout and, by the first
 * byte, a CSV with named columns. */
#include "blo/causal.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    blo_causal_data d;
    char err[256];
    blo_causal_columns cols = {"t", "y", NULL, "mu0", "mu1"};
    blo_causal_columns *c = size && (data[0] & 1) ? &cols : NULL;
    if (size && (data[0] & 2)) cols.covariates = "a|b";
    if (size && (data[0] & 4)) cols.mu0 = cols.mu1 = NULL;
    if (blo_causal_parse((const char *)data, size, "fuzz", c, &d, err, sizeof err) == BLO_OK)
        blo_causal_data_free(&d);
    return 0;
}
