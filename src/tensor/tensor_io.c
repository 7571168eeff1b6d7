/* tensor_io.c — tensors in state files: what the solver's checkpoints and the tasks' share
 * (layout in src/internal.h). */
#include "../internal.h"

#include <stdio.h>

bool blo__tensor_write(FILE *f, const blo_tensor *t) {
    int64_t hdr[2 + BLO_MAX_DIMS] = {t->dtype, t->ndim};
    for (int i = 0; i < t->ndim; i++)
        hdr[2 + i] = t->shape[i];
    size_t n = (size_t)blo_tensor_numel(t), esz = blo_dtype_size(t->dtype);
    void *buf = blo_malloc(n * esz > 0 ? n * esz : 1);
    bool ok = buf && blo_tensor_copy_to_host(t, t->dtype, buf) == BLO_OK &&
              fwrite(hdr, sizeof(int64_t), 2 + (size_t)t->ndim, f) == 2 + (size_t)t->ndim &&
              fwrite(buf, esz, n, f) == n;
    blo_free(buf);
    return ok;
}

bool blo__tensor_read(FILE *f, blo_tensor *t, int dry, long end, char *why, size_t n) {
    int64_t hdr[2 + BLO_MAX_DIMS];
    if (fread(hdr, sizeof(int64_t), 2, f) != 2) {
        snprintf(why, n, "truncated");
        return false;
    }
    if (hdr[0] != t->dtype || hdr[1] != t->ndim) {
        snprintf(why, n, "a tensor's dtype or rank differs from the run's");
        return false;
    }
    if (fread(hdr + 2, sizeof(int64_t), (size_t)t->ndim, f) != (size_t)t->ndim) {
        snprintf(why, n, "truncated");
        return false;
    }
    for (int i = 0; i < t->ndim; i++)
        if (hdr[2 + i] != t->shape[i]) {
            snprintf(why, n, "a tensor's shape differs from the run's");
            return false;
        }
    size_t cnt = (size_t)blo_tensor_numel(t), bytes = cnt * blo_dtype_size(t->dtype);
    if (dry) {
        long pos = ftell(f);
        if (pos < 0 || (size_t)(end - pos) < bytes || fseek(f, (long)bytes, SEEK_CUR)) {
            snprintf(why, n, "truncated");
            return false;
        }
        return true;
    }
    void *buf = blo_malloc(bytes > 0 ? bytes : 1);
    if (!buf) {
        snprintf(why, n, "out of memory reading a tensor of %zu bytes", bytes);
        return false;
    }
    bool ok = fread(buf, blo_dtype_size(t->dtype), cnt, f) == cnt;
    if (!ok) snprintf(why, n, "truncated");
    if (ok && blo_tensor_copy_from_host(t, t->dtype, buf) != BLO_OK) {
        snprintf(why, n, "copying a tensor's values in failed");
        ok = false;
    }
    blo_free(buf);
    return ok;
}
