/* registry.c — every hypergradient method, selectable by name. */
#include "method.h"

#include <string.h>

extern const blo_method blo__method_rhg, blo__method_trhg, blo__method_cg;
extern const blo_method blo__method_rhg_ckpt, blo__method_fhg, blo__method_neumann,
    blo__method_fixed_point, blo__method_first_order, blo__method_darts;
extern const blo_method blo__method_bda, blo__method_iaptt, blo__method_bome, blo__method_soba;

static const blo_method *const METHODS[] = {
    &blo__method_rhg,   &blo__method_trhg,    &blo__method_cg,          &blo__method_rhg_ckpt,
    &blo__method_fhg,   &blo__method_neumann, &blo__method_fixed_point, &blo__method_first_order,
    &blo__method_darts, &blo__method_bda,     &blo__method_iaptt,       &blo__method_bome,
    &blo__method_soba,
};

#define N_METHODS ((int)(sizeof METHODS / sizeof METHODS[0]))

int blo_method_count(void) {
    return N_METHODS;
}

const blo_method_info *blo_method_at(int i) {
    return i >= 0 && i < N_METHODS ? &METHODS[i]->info : NULL;
}

const blo_method *blo__method_find(const char *name) {
    for (int i = 0; name && i < N_METHODS; i++)
        if (!strcmp(METHODS[i]->info.name, name)) return METHODS[i];
    return NULL;
}

const blo_method_info *blo_method_find(const char *name) {
    const blo_method *m = blo__method_find(name);
    return m ? &m->info : NULL;
}
