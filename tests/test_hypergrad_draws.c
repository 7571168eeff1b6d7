/* test_hypergrad_draws.c — the contract of blo_eval.rng: every re-evaluation inside one
 * hypergradient sees the same draw. The objectives below sample (one draw per evaluation, as a
 * minibatch would) and log the draw each evaluation saw; bome's two terms of q,
 * f(x, y) and f(x, θ_T), and iaptt's F at the chosen step t* (scored in the scan, then
 * differentiated) must see the same one. */
#include "bilevel_problems.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

typedef struct seen {
    ridge *r;
    int n;
    int level[4096];
    int64_t step[4096];
    double draw[4096];
} seen;

static void log_draw(seen *s, const blo_eval *ev) {
    if (s->n < 4096) {
        s->level[s->n] = ev->level;
        s->step[s->n] = ev->inner_step;
        s->draw[s->n] = blo_rng_uniform(ev->rng);
        s->n++;
    } else {
        blo_rng_uniform(ev->rng);
    }
}

static blo_tensor *lower(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    seen *s = user;
    log_draw(s, ev);
    return ridge_lower(ctx, x, y, ev, s->r);
}

static blo_tensor *upper(blo_ctx *ctx, blo_tensor *const *x, blo_tensor *const *y,
                         const blo_eval *ev, void *user) {
    seen *s = user;
    log_draw(s, ev);
    return ridge_upper(ctx, x, y, ev, s->r);
}

static seen *run(ridge *r, blo_config c) {
    static seen s;
    memset(&s, 0, sizeof s);
    s.r = r;
    blo_problem p = ridge_problem(r);
    p.upper = upper;
    p.lower = lower;
    p.user = &s;
    char err[512];
    blo_solver *sv = blo_solver_new(&p, &c, err, sizeof err);
    TU_CHECK(sv != NULL, "%s: %s", c.method, err);
    if (sv) {
        double h[RIDGE_MAXD], *o[1] = {h};
        TU_CHECK(blo_solver_hypergrad(sv, o) == BLO_OK, "%s: %s", c.method, blo_solver_error(sv));
        blo_solver_free(sv);
    }
    return &s;
}

int main(void) {
    ridge r;
    ridge_init(&r, BLO_F64, 24, 16, 5, 0.3, 7);
    blo_config c = blo_config_default();
    c.method = "bome";
    c.inner_steps = 5;
    seen *s = run(&r, c);
    /* The last two evaluations of f: q's terms f(x, y) (step 0) and f(x, θ_T) (step T). */
    int a = -1, b = -1;
    for (int i = 0; i < s->n; i++)
        if (s->level[i] == 1) a = b, b = i;
    TU_CHECK(a >= 0 && s->step[a] == 0 && s->step[b] == c.inner_steps,
             "bome: q's two terms not found (steps %lld, %lld)",
             a >= 0 ? (long long)s->step[a] : -1LL, b >= 0 ? (long long)s->step[b] : -1LL);
    if (a >= 0)
        TU_CHECK(s->draw[a] == s->draw[b], "bome: q's two terms saw different draws (%.6f, %.6f)",
                 s->draw[a], s->draw[b]);

    c = blo_config_default();
    c.method = "iaptt";
    c.init = BLO_INIT_LEARNED;
    c.inner_steps = 8;
    s = run(&r, c);
    /* The scan scores F at steps 1..T; the last F evaluation is the chosen step's, again. */
    int last = -1;
    for (int i = 0; i < s->n; i++)
        if (s->level[i] == 0) last = i;
    int scored = -1;
    for (int i = 0; i < last; i++)
        if (s->level[i] == 0 && s->step[i] == s->step[last]) scored = i;
    TU_CHECK(scored >= 0, "iaptt: the chosen step %lld was never scored",
             last >= 0 ? (long long)s->step[last] : -1LL);
    if (scored >= 0)
        TU_CHECK(s->draw[scored] == s->draw[last],
                 "iaptt: F at the chosen step %lld saw another draw when differentiated (%.6f, "
                 "%.6f)",
                 (long long)s->step[last], s->draw[scored], s->draw[last]);
    ridge_free(&r);
    return tu_finish("test_hypergrad_draws");
}
