/* lbfgs.c — limited-memory BFGS on a flat double vector.
 *
 * Direction d = −H_k ∇f by the two-loop recursion over the last m pairs
 * s_j = x_{j+1} − x_j, u_j = ∇f_{j+1} − ∇f_j (ρ_j = 1/⟨s_j, u_j⟩), with the initial
 * Hessian guess γ I, γ = ⟨s, u⟩/⟨u, u⟩ of the newest pair; the first step is at most a unit
 * move along −∇f. Step length by Armijo backtracking (c₁ = 1e-4, halving, at most 40 tries).
 * A pair is kept only with positive curvature ⟨s, u⟩ > 1e-12 ⟨u, u⟩.
 * Nocedal, "Updating quasi-Newton matrices with limited storage", Math. Comp. 35 (1980);
 * Nocedal & Wright, Numerical Optimization (2006), algorithms 7.4 and 7.5.
 */
#include "blo/optim.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

static double dotv(int64_t n, const double *a, const double *b) {
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static double maxabs(int64_t n, const double *a) {
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fmax(m, fabs(a[i]));
    return m;
}

blo_status blo_lbfgs(int64_t n, double *x, blo_lbfgs_fn fn, void *user, const blo_lbfgs_opts *opts,
                     blo_lbfgs_result *res) {
    blo_lbfgs_result r = {0, 0, NAN, NAN, 0};
    if (res) *res = r;
    if (n < 1 || !x || !fn || !opts || opts->memory < 0 || opts->max_iter < 0 || !(opts->tol >= 0))
        return BLO_ERR_INVALID;
    int M = opts->memory ? opts->memory : 10;
    double *mem = blo_malloc(sizeof(double) * ((size_t)n * (2 * (size_t)M + 4) + 2 * (size_t)M));
    if (!mem) return BLO_ERR_NOMEM;
    double *S = mem, *U = S + (size_t)M * n, *grad = U + (size_t)M * n, *dir = grad + n,
           *xnew = dir + n, *gnew = xnew + n, *rho = gnew + n, *alpha = rho + M;
    double f, fnew = 0;
    int kept = 0, head = 0; /* pairs stored, and the slot the next one goes to */
    blo_status st = fn(x, &f, grad, user);
    r.evals = 1;
    for (; !st && r.iters < opts->max_iter; r.iters++) {
        if (maxabs(n, grad) <= opts->tol) {
            r.converged = 1;
            break;
        }
        /* Two-loop recursion, newest pair first. */
        for (int64_t i = 0; i < n; i++)
            dir[i] = -grad[i];
        for (int k = 0; k < kept; k++) {
            int s = (head - 1 - k + M) % M;
            alpha[s] = rho[s] * dotv(n, S + (size_t)s * n, dir);
            for (int64_t i = 0; i < n; i++)
                dir[i] -= alpha[s] * U[(size_t)s * n + i];
        }
        if (kept) {
            int s = (head - 1 + M) % M;
            double gamma = dotv(n, S + (size_t)s * n, U + (size_t)s * n) /
                           dotv(n, U + (size_t)s * n, U + (size_t)s * n);
            for (int64_t i = 0; i < n; i++)
                dir[i] *= gamma;
        } else {
            /* First step: a unit move along −∇f, at most. */
            double scale = 1.0 / fmax(1.0, sqrt(dotv(n, grad, grad)));
            for (int64_t i = 0; i < n; i++)
                dir[i] *= scale;
        }
        for (int k = kept - 1; k >= 0; k--) {
            int s = (head - 1 - k + M) % M;
            double beta = rho[s] * dotv(n, U + (size_t)s * n, dir);
            for (int64_t i = 0; i < n; i++)
                dir[i] += (alpha[s] - beta) * S[(size_t)s * n + i];
        }
        double slope = dotv(n, grad, dir);
        if (!(slope < 0)) { /* not a descent direction (round-off): restart from −∇f */
            kept = 0;
            for (int64_t i = 0; i < n; i++)
                dir[i] = -grad[i];
            slope = -dotv(n, grad, grad);
        }
        double a = 1;
        for (int tries = 0;; tries++) {
            for (int64_t i = 0; i < n; i++)
                xnew[i] = x[i] + a * dir[i];
            st = fn(xnew, &fnew, gnew, user);
            r.evals++;
            if (st || fnew <= f + 1e-4 * a * slope || tries == 40) break;
            a *= 0.5;
        }
        if (st) break;
        if (!(fnew <= f)) { /* no decrease left at this precision: as close as it gets */
            r.converged = 1;
            break;
        }
        double sy = 0, uu = 0;
        for (int64_t i = 0; i < n; i++) {
            double si = xnew[i] - x[i], ui = gnew[i] - grad[i];
            S[(size_t)head * n + i] = si;
            U[(size_t)head * n + i] = ui;
            sy += si * ui;
            uu += ui * ui;
        }
        if (sy > 1e-12 * uu && uu > 0) { /* keep the pair only with positive curvature */
            rho[head] = 1.0 / sy;
            head = (head + 1) % M;
            if (kept < M) kept++;
        }
        bool flat = f - fnew <= 1e-15 * fmax(1.0, fabs(f));
        memcpy(x, xnew, sizeof(double) * (size_t)n);
        memcpy(grad, gnew, sizeof(double) * (size_t)n);
        f = fnew;
        if (flat && maxabs(n, grad) <= 1e3 * opts->tol) {
            r.converged = 1;
            r.iters++;
            break;
        }
    }
    if (!st) {
        if (!r.converged && maxabs(n, grad) <= opts->tol) r.converged = 1;
        r.f = f;
        r.grad_max = maxabs(n, grad);
    }
    blo_free(mem);
    if (res) *res = r;
    return st;
}
