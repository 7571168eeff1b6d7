/* data.c — the causal data: IHDP's headerless layout or a user's CSV with named columns, read
 * by the data layer's numeric CSV table and checked (treatment 0/1, both arms present). */
#include "../../data/data_internal.h"
#include "blo/causal.h"

#include <string.h>

void blo_causal_data_free(blo_causal_data *d) {
    if (!d) return;
    blo_free(d->x);
    blo_free(d->t);
    blo_free(d->y);
    blo_free(d->mu0);
    blo_free(d->mu1);
    memset(d, 0, sizeof *d);
}

#define IHDP_COLS 30

/* The column named col, or a positioned error naming what it was for. */
static int need_column(const blo__table *tb, const char *col, const char *what, const char *name,
                       blo_status *st, char *err, size_t errlen) {
    int c = blo__table_column(tb, col);
    if (c < 0 && !*st)
        *st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                        "%s: line %lld: no column named '%s' (the %s) in the header", name,
                        (long long)tb->header_line, col, what);
    return c;
}

blo_status blo_causal_parse(const char *buf, size_t len, const char *name,
                            const blo_causal_columns *cols, blo_causal_data *out, char *err,
                            size_t errlen) {
    if (err && errlen) err[0] = 0;
    memset(out, 0, sizeof *out);
    if (cols && (!cols->treatment || !cols->outcome || !cols->mu0 != !cols->mu1))
        return blo__fail(err, errlen, BLO_ERR_INVALID,
                         "%s: name the treatment and outcome columns, and mu0 with mu1 or "
                         "neither",
                         name);
    blo__table tb;
    blo_status st = blo__csv_table(buf, len, name, cols != NULL, &tb, err, errlen);
    if (st) return st;
    int ct = 0, cy = 1, c0 = 3, c1 = 4, nc = 0;
    int *cov = blo_malloc(sizeof(int) * (size_t)(tb.cols + 1));
    if (!cov) goto nomem;
    if (!cols) {
        if (tb.cols != IHDP_COLS) {
            st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                           "%s: line %lld: %d columns; the IHDP layout has %d (treatment, "
                           "y_factual, y_cfactual, mu0, mu1, x1 .. x25)",
                           name, (long long)tb.line[0], tb.cols, IHDP_COLS);
            goto out;
        }
        for (int j = 5; j < IHDP_COLS; j++) cov[nc++] = j;
    } else {
        ct = need_column(&tb, cols->treatment, "treatment", name, &st, err, errlen);
        cy = need_column(&tb, cols->outcome, "outcome", name, &st, err, errlen);
        c0 = c1 = -1;
        if (cols->mu0) {
            c0 = need_column(&tb, cols->mu0, "mu0", name, &st, err, errlen);
            c1 = need_column(&tb, cols->mu1, "mu1", name, &st, err, errlen);
        }
        if (st) goto out;
        if (cols->covariates) {
            size_t cl = strlen(cols->covariates);
            char *names = blo_malloc(cl + 1);
            if (!names) goto nomem;
            memcpy(names, cols->covariates, cl + 1);
            for (char *p = names, *bar; p && !st; p = bar ? bar + 1 : NULL) {
                bar = strchr(p, '|');
                if (bar) *bar = 0;
                int c = need_column(&tb, p, "covariate", name, &st, err, errlen);
                if (c >= 0 && nc < tb.cols) cov[nc++] = c;
            }
            blo_free(names);
            if (st) goto out;
        } else {
            for (int j = 0; j < tb.cols; j++)
                if (j != ct && j != cy && j != c0 && j != c1) cov[nc++] = j;
        }
        if (nc == 0) {
            st = blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: line %lld: no covariate column",
                           name, (long long)tb.header_line);
            goto out;
        }
    }
    if (tb.rows == 0) {
        st = blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: no data rows", name);
        goto out;
    }
    int64_t n = tb.rows;
    out->n = n;
    out->d = nc;
    out->x = blo_malloc(sizeof(float) * (size_t)(n * nc));
    out->t = blo_malloc(sizeof(float) * (size_t)n);
    out->y = blo_malloc(sizeof(float) * (size_t)n);
    if (c0 >= 0) {
        out->mu0 = blo_malloc(sizeof(float) * (size_t)n);
        out->mu1 = blo_malloc(sizeof(float) * (size_t)n);
    }
    if (!out->x || !out->t || !out->y || (c0 >= 0 && (!out->mu0 || !out->mu1))) goto nomem;
    for (int64_t i = 0; i < n; i++) {
        const double *r = tb.v + i * tb.cols;
        if (r[ct] != 0 && r[ct] != 1) {
            st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                           "%s: line %lld, field %d: the treatment is %g, not 0 or 1", name,
                           (long long)tb.line[i], ct + 1, r[ct]);
            goto out;
        }
        out->t[i] = (float)r[ct];
        out->treated += r[ct] == 1;
        out->y[i] = (float)r[cy];
        if (c0 >= 0) {
            out->mu0[i] = (float)r[c0];
            out->mu1[i] = (float)r[c1];
        }
        for (int j = 0; j < nc; j++) out->x[i * nc + j] = (float)r[cov[j]];
    }
    if (out->treated == 0 || out->treated == n) {
        st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                       "%s: every one of the %lld units is %s: effects need both arms", name,
                       (long long)n, out->treated ? "treated" : "a control");
        goto out;
    }
    goto out;
nomem:
    st = blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", name);
out:
    blo_free(cov);
    blo__table_free(&tb);
    if (st) blo_causal_data_free(out);
    return st;
}

blo_status blo_causal_load(const char *path, const blo_causal_columns *cols,
                           blo_causal_data *out, char *err, size_t errlen) {
    unsigned char *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    blo_status st = blo_read_file(path, &buf, &len, err, errlen);
    if (st) return st;
    st = blo_causal_parse((const char *)buf, len, path, cols, out, err, errlen);
    blo_free(buf);
    return st;
}
