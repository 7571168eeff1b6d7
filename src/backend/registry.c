/* registry.c — the backends this build has, by name. The first is the default that a context
 * gets when its first tensor is made (core names no backend: the tensor layer asks here). A
 * device backend is added by listing its table below (under its build option); nothing in
 * ops, autodiff or the methods changes.
 *
 * blo_ctx_set_backend and blo_ctx_backend_name are declared in core.h with the other context
 * calls but live here, so that core stays below the backends. */
#include "backend.h"

#include <string.h>

static const blo_backend *(*const builtin[])(void) = {
    blo_backend_cpu, /* the default: reference loops, BLAS gemm, OpenMP */
};

#define NBUILTIN ((int)(sizeof builtin / sizeof builtin[0]))

const blo_backend *blo__backend_default(void) {
    return builtin[0]();
}

const blo_backend *blo__backend_find(const char *name) {
    for (int i = 0; name && i < NBUILTIN; i++)
        if (!strcmp(builtin[i]()->name, name)) return builtin[i]();
    return NULL;
}

int blo_backend_count(void) {
    return NBUILTIN;
}

const char *blo_backend_name_at(int i) {
    return i >= 0 && i < NBUILTIN ? builtin[i]()->name : NULL;
}

blo_status blo_ctx_set_backend(blo_ctx *ctx, const char *name) {
    if (!ctx) return BLO_ERR_INVALID;
    const blo_backend *be = blo__backend_find(name);
    if (!be) {
        char known[256] = "";
        for (int i = 0; i < NBUILTIN; i++) {
            if (i) strncat(known, ", ", sizeof known - strlen(known) - 1);
            strncat(known, builtin[i]()->name, sizeof known - strlen(known) - 1);
        }
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                 "blo_ctx_set_backend: no backend named '%s' in this build "
                                 "(known: %s)",
                                 name ? name : "(null)", known);
    }
    if (ctx->holds_tensors)
        return blo_ctx_set_error(ctx, BLO_ERR_INVALID,
                                 "blo_ctx_set_backend: the context already holds tensors on "
                                 "backend '%s'; choose the backend of a new context before "
                                 "making tensors in it",
                                 ctx->be->name);
    ctx->be = be;
    return BLO_OK;
}

const char *blo_ctx_backend_name(const blo_ctx *ctx) {
    if (!ctx) return NULL;
    return ctx->be ? ctx->be->name : blo__backend_default()->name;
}
