/* registry.c — every hypergradient method, selectable by name. */
#include "method.h"

#include <string.h>

extern const blo_method blo__method_rhg, blo__method_trhg, blo__method_cg;
extern const blo_method blo__method_rhg_ckpt, blo__method_fhg, blo__method_neumann,
    blo__method_fixed_point, blo__method_first_order, blo__method_darts;
extern const blo_method blo__method_bda, blo__method_iaptt, blo__method_bome, blo__method_soba,
    blo__method_amm;

static const blo_method *const METHODS[] = {
    &blo__method_rhg,   &blo__method_trhg,    &blo__method_cg,          &blo__method_rhg_ckpt,
    &blo__method_fhg,   &blo__method_neumann, &blo__method_fixed_point, &blo__method_first_order,
    &blo__method_darts, &blo__method_bda,     &blo__method_iaptt,       &blo__method_bome,
    &blo__method_soba,  &blo__method_amm,
};

#define N_BUILTIN ((int)(sizeof METHODS / sizeof METHODS[0]))
#define MAX_USER 64

/* Methods registered by users (blo_method_register), after the built-in ones. */
static blo_method user_methods[MAX_USER];
static int n_user;

int blo_method_count(void) {
    return N_BUILTIN + n_user;
}

static const blo_method *method_at(int i) {
    if (i < 0 || i >= N_BUILTIN + n_user) return NULL;
    return i < N_BUILTIN ? METHODS[i] : &user_methods[i - N_BUILTIN];
}

const blo_method_info *blo_method_at(int i) {
    const blo_method *m = method_at(i);
    return m ? &m->info : NULL;
}

const blo_method *blo__method_find(const char *name) {
    for (int i = 0; name && i < N_BUILTIN + n_user; i++)
        if (!strcmp(method_at(i)->info.name, name)) return method_at(i);
    return NULL;
}

const blo_method_info *blo_method_find(const char *name) {
    const blo_method *m = blo__method_find(name);
    return m ? &m->info : NULL;
}

blo_status blo_method_register(const blo_method_def *m) {
    if (!m || !m->info.name || !m->info.name[0] || !m->hypergrad || m->n_state_groups < 0 ||
        blo__method_find(m->info.name))
        return BLO_ERR_INVALID;
    if (n_user == MAX_USER) return BLO_ERR_NOMEM;
    user_methods[n_user] = *m;
    blo_method_info *info = &user_methods[n_user].info;
    if (!info->maths) info->maths = "";
    if (!info->paper) info->paper = "";
    if (!info->settings) info->settings = "";
    n_user++;
    return BLO_OK;
}
