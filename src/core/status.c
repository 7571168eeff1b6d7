/* status.c — names of status codes, and writing a message into a caller's buffer. */
#include "../internal.h"

#include <stdarg.h>
#include <stdio.h>

const char *blo_status_name(blo_status s) {
    switch (s) {
    case BLO_OK: return "BLO_OK";
    case BLO_ERR_NOMEM: return "BLO_ERR_NOMEM";
    case BLO_ERR_SHAPE: return "BLO_ERR_SHAPE";
    case BLO_ERR_DTYPE: return "BLO_ERR_DTYPE";
    case BLO_ERR_INVALID: return "BLO_ERR_INVALID";
    case BLO_ERR_NOT_DIFFERENTIABLE: return "BLO_ERR_NOT_DIFFERENTIABLE";
    case BLO_ERR_IO: return "BLO_ERR_IO";
    case BLO_ERR_FORMAT: return "BLO_ERR_FORMAT";
    case BLO_ERR_NUMERIC: return "BLO_ERR_NUMERIC";
    case BLO_ERR_UNSUPPORTED: return "BLO_ERR_UNSUPPORTED";
    }
    return "BLO_ERR_UNKNOWN";
}

blo_status blo__fail(char *err, size_t errlen, blo_status st, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}
