/* fit.c — training parameters by optim/'s values-only steps, the loop the tasks' baselines,
 * pretraining and warm-ups share (see common.h). */
#include "blo/optim.h"

#include "common.h"

#include <math.h>

blo_status blo__fit_run(const blo__fit *f, char *err, size_t errlen) {
    return blo__fit_run_keep(f, NULL, NULL, err, errlen);
}

blo_status blo__fit_run_keep(const blo__fit *f, blo_ctx *keep_ctx, blo_opt_state *keep, char *err,
                             size_t errlen) {
    blo_ctx *mc = blo_ctx_new(0), *sc = blo_ctx_new(0);
    blo_tensor **g = blo_malloc(sizeof *g * (size_t)(f->n > 0 ? f->n : 1));
    blo_opt_state st;
    blo_ctx *oc = keep && keep_ctx ? keep_ctx : mc;
    blo_status s = mc && sc && g ? blo_opt_state_init(oc, &f->opt, f->n, f->w, &st) : BLO_ERR_NOMEM;
    if (s)
        s = blo__fail(err, errlen, s, "%s: %s", f->what,
                      oc && blo_ctx_status(oc) ? blo_ctx_error(oc) : "out of memory");
    for (int64_t t = 1; !s && t <= f->steps; t++) {
        blo_mark mk = blo_ctx_mark(sc);
        blo_tensor *loss = f->loss(sc, f->w, t, f->user);
        if (!loss || blo_grad(sc, 1, &loss, NULL, f->n, f->w, 0, g)) {
            s = blo__fail(err, errlen, blo_ctx_status(sc) ? blo_ctx_status(sc) : BLO_ERR_NUMERIC,
                          "%s step %lld: %s", f->what, (long long)t, blo_ctx_error(sc));
            break;
        }
        double lv = blo_tensor_item(loss), grad_sq = 0;
        if (!isfinite(lv)) {
            s = blo__fail(err, errlen, BLO_ERR_NUMERIC, "%s step %lld: the loss is %g%s", f->what,
                          (long long)t, lv, f->hint ? f->hint : "");
            break;
        }
        for (int i = 0; f->report && i < f->n; i++)
            grad_sq += blo_tensor_item(blo_dot(sc, g[i], g[i]));
        if (blo_opt_step(sc, &f->opt, &st, f->n, f->w, g)) {
            s = blo__fail(err, errlen, blo_ctx_status(sc), "%s step %lld: %s", f->what,
                          (long long)t, blo_ctx_error(sc));
            break;
        }
        size_t peak = blo_ctx_peak_bytes(sc);
        blo_ctx_rewind(sc, mk);
        if (f->report && f->report(t, lv, grad_sq, peak, f->user)) break;
    }
    if (!s && keep && keep_ctx) *keep = st;
    blo_free(g);
    blo_ctx_free(sc);
    blo_ctx_free(mc);
    return s;
}
