/* text.c — the text formats: LIBSVM (sparse "target index:value ...") and CSV with a header.
 * Both parse a NUL-terminated copy of the buffer line by line and report the first problem
 * with its line and column (1-based). */
#include "data_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Growable arrays on blo_malloc. */
typedef struct {
    void *p;
    size_t n, cap, elem;
} vec;

static bool vec_push(vec *v, const void *x) {
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 256;
        void *np = blo_malloc(nc * v->elem);
        if (!np) return false;
        if (v->p) memcpy(np, v->p, v->n * v->elem);
        blo_free(v->p);
        v->p = np;
        v->cap = nc;
    }
    memcpy((char *)v->p + v->n * v->elem, x, v->elem);
    v->n++;
    return true;
}

static char *nul_copy(const char *buf, size_t len) {
    char *s = blo_malloc(len + 1);
    if (!s) return NULL;
    memcpy(s, buf, len);
    s[len] = 0;
    return s;
}

/* A finite double at p, ending at whitespace, ':', ',', '#' or the end of line. */
static bool parse_num(const char *p, const char **end, double *v) {
    if (*p == 0 || isspace((unsigned char)*p)) return false;
    errno = 0;
    char *e;
    *v = strtod(p, &e);
    if (e == p || errno == ERANGE || !isfinite(*v)) return false;
    if (*e && !isspace((unsigned char)*e) && *e != ':' && *e != ',' && *e != '#') return false;
    *end = e;
    return true;
}

/* ---- LIBSVM ------------------------------------------------------------------------------- */

blo_status blo_libsvm_parse(const char *buf, size_t len, const char *name, int dense,
                            int64_t min_features, blo_dataset *ds, char *err, size_t errlen) {
    memset(ds, 0, sizeof *ds);
    if (memchr(buf, 0, len))
        return blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: a NUL byte: not a text file", name);
    char *s = nul_copy(buf, len);
    if (!s) return blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", name);
    vec rowptr = {0, 0, 0, sizeof(int64_t)}, col = {0, 0, 0, sizeof(int64_t)},
        val = {0, 0, 0, sizeof(float)}, ys = {0, 0, 0, sizeof(double)};
    blo_status st = BLO_OK;
    int64_t zero = 0, maxidx = 0;
    if (!vec_push(&rowptr, &zero)) goto nomem;
    char *line = s;
    for (int64_t ln = 1; line && *line; ln++) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        char *cr = strchr(line, '\r');
        if (cr) *cr = 0;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        const char *p = line;
        while (isspace((unsigned char)*p)) p++;
        if (*p) {
            double y;
            const char *e;
            if (!parse_num(p, &e, &y) || *e == ':') {
                st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                                    "%s: line %lld, column %d: the target is not a number",
                                    name, (long long)ln, (int)(p - line) + 1);
                goto out;
            }
            if (!vec_push(&ys, &y)) goto nomem;
            p = e;
            int64_t last = 0;
            for (;;) {
                while (isspace((unsigned char)*p)) p++;
                if (!*p) break;
                const char *tok = p;
                char *ie;
                errno = 0;
                long long idx = strtoll(p, &ie, 10);
                if (ie == p || *ie != ':' || errno == ERANGE || idx < 1 || idx > ((int64_t)1 << 40)) {
                    st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                                        "%s: line %lld, column %d: expected index:value with a "
                                        "positive integer index",
                                        name, (long long)ln, (int)(tok - line) + 1);
                    goto out;
                }
                if (idx <= last) {
                    st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                                        "%s: line %lld, column %d: index %lld after index %lld "
                                        "(indices must ascend)",
                                        name, (long long)ln, (int)(tok - line) + 1, idx,
                                        (long long)last);
                    goto out;
                }
                double v;
                p = ie + 1;
                if (!parse_num(p, &e, &v) || *e == ':' || *e == ',') {
                    st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                                        "%s: line %lld, column %d: the value of index %lld is not "
                                        "a finite number",
                                        name, (long long)ln, (int)(p - line) + 1, idx);
                    goto out;
                }
                p = e;
                last = idx;
                int64_t c0 = idx - 1;
                float fv = (float)v;
                if (!vec_push(&col, &c0) || !vec_push(&val, &fv)) goto nomem;
                if (idx > maxidx) maxidx = idx;
            }
            int64_t nz = (int64_t)col.n;
            if (!vec_push(&rowptr, &nz)) goto nomem;
        }
        line = nl ? nl + 1 : NULL;
    }
    ds->n = (int64_t)ys.n;
    ds->d = maxidx > min_features ? maxidx : min_features;
    ds->nnz = (int64_t)col.n;
    ds->rowptr = rowptr.p;
    ds->col = col.p;
    ds->val = val.p;
    ds->y = ys.p;
    rowptr.p = col.p = val.p = ys.p = NULL;
    if (!ds->col) ds->col = blo_malloc(sizeof(int64_t)); /* keep pointers valid when nnz = 0 */
    if (!ds->val) ds->val = blo_malloc(sizeof(float));
    if (!ds->y) ds->y = blo_malloc(sizeof(double));
    if (!ds->col || !ds->val || !ds->y) goto nomem;
    if (dense) {
        if (ds->n > 0 && ds->d > ((int64_t)1 << 34) / ds->n) {
            st = blo__fail(err, errlen, BLO_ERR_NOMEM,
                                "%s: %lld x %lld is too large to hold densely", name,
                                (long long)ds->n, (long long)ds->d);
            goto out;
        }
        ds->x = blo_calloc((size_t)(ds->n * ds->d + 1), sizeof(float));
        if (!ds->x) goto nomem;
        for (int64_t i = 0; i < ds->n; i++)
            for (int64_t k = ds->rowptr[i]; k < ds->rowptr[i + 1]; k++)
                ds->x[i * ds->d + ds->col[k]] = ds->val[k];
    }
    if (!blo__dataset_classes(ds)) goto nomem;
    goto out;
nomem:
    st = blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", name);
out:
    blo_free(rowptr.p);
    blo_free(col.p);
    blo_free(val.p);
    blo_free(ys.p);
    blo_free(s);
    if (st) blo_dataset_free(ds);
    return st;
}

blo_status blo_libsvm_load(const char *path, int dense, int64_t min_features, blo_dataset *ds,
                           char *err, size_t errlen) {
    unsigned char *buf;
    size_t len;
    memset(ds, 0, sizeof *ds);
    blo_status st = blo_read_file(path, &buf, &len, err, errlen);
    if (st) return st;
    st = blo_libsvm_parse((const char *)buf, len, path, dense, min_features, ds, err, errlen);
    blo_free(buf);
    return st;
}

/* ---- CSV ------------------------------------------------------------------------------------ */

/* Splits a line in place at commas; returns the number of fields (at most max) or -1 when
 * there are more. Fields keep their surrounding spaces; quotes are stripped. */
static int split_fields(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max) return -1;
        fields[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = 0;
        p = c + 1;
    }
    return n;
}

static char *trim(char *f) {
    while (isspace((unsigned char)*f)) f++;
    size_t n = strlen(f);
    while (n && isspace((unsigned char)f[n - 1])) f[--n] = 0;
    if (n >= 2 && f[0] == '"' && f[n - 1] == '"') {
        f[n - 1] = 0;
        f++;
    }
    return f;
}

#define CSV_MAX_COLS 100000

void blo__table_free(blo__table *t) {
    if (!t) return;
    blo_free(t->v);
    blo_free(t->line);
    blo_free(t->names);
    blo_free(t->text);
    memset(t, 0, sizeof *t);
}

blo_status blo__csv_table(const char *buf, size_t len, const char *name, bool header,
                          blo__table *t, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    if (memchr(buf, 0, len))
        return blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: a NUL byte: not a text file", name);
    char *s = nul_copy(buf, len);
    char **fields = NULL; /* sized from the first line: its field count + 1 (to detect extras) */
    int cap = 0;
    vec vs = {0, 0, 0, sizeof(double)}, ls = {0, 0, 0, sizeof(int64_t)};
    blo_status st = BLO_OK;
    if (!s) goto nomem;
    t->text = s;
    char *line = s;
    int64_t ln = 0;
    int ncols = 0;
    while (line && *line) {
        ln++;
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        char *cr = strchr(line, '\r');
        if (cr) *cr = 0;
        char *q0 = line;
        while (isspace((unsigned char)*q0)) q0++;
        if (!*q0) { /* blank line */
            line = nl ? nl + 1 : NULL;
            continue;
        }
        char *base = line;
        if (!fields) {
            int64_t commas = 0;
            for (char *q = line; *q; q++) commas += *q == ',';
            if (commas + 1 > CSV_MAX_COLS) {
                st = blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: line %lld: more than %d columns",
                               name, (long long)ln, CSV_MAX_COLS);
                goto out;
            }
            cap = (int)commas + 2;
            fields = blo_malloc(sizeof(char *) * (size_t)cap);
            if (!fields) goto nomem;
        }
        int nf = split_fields(line, fields, cap);
        if (nf < 0) nf = cap; /* more fields than the first line: reported below */
        if (ncols == 0) ncols = nf;
        if (header && !t->names) { /* the header */
            t->header_line = ln;
            t->names = blo_malloc(sizeof(char *) * (size_t)nf);
            if (!t->names) goto nomem;
            for (int i = 0; i < nf; i++) t->names[i] = trim(fields[i]);
            line = nl ? nl + 1 : NULL;
            continue;
        }
        if (nf != ncols) {
            st = blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: line %lld: %s%d fields, %s has %d",
                           name, (long long)ln, nf == cap ? "at least " : "", nf,
                           header ? "the header" : "the first line", ncols);
            goto out;
        }
        for (int i = 0; i < nf; i++) {
            int colno = (int)(fields[i] - base) + 1;
            char *f = trim(fields[i]);
            double v;
            const char *e;
            if (!parse_num(f, &e, &v) || *e) {
                st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                               "%s: line %lld, column %d: field '%.40s' is not a finite number",
                               name, (long long)ln, colno, f);
                goto out;
            }
            if (!vec_push(&vs, &v)) goto nomem;
        }
        if (!vec_push(&ls, &ln)) goto nomem;
        line = nl ? nl + 1 : NULL;
    }
    if (ncols == 0) {
        st = blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: empty file%s", name,
                       header ? " (no header)" : "");
        goto out;
    }
    t->cols = ncols;
    t->rows = (int64_t)ls.n;
    t->v = vs.p ? vs.p : blo_malloc(sizeof(double));
    t->line = ls.p ? ls.p : blo_malloc(sizeof(int64_t));
    vs.p = ls.p = NULL;
    if (!t->v || !t->line) goto nomem;
    goto out;
nomem:
    st = blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", name);
out:
    blo_free(fields);
    blo_free(vs.p);
    blo_free(ls.p);
    if (st) blo__table_free(t);
    return st;
}

int blo__table_column(const blo__table *t, const char *col) {
    for (int i = 0; t->names && i < t->cols; i++)
        if (!strcmp(t->names[i], col)) return i;
    return -1;
}

blo_status blo_csv_parse(const char *buf, size_t len, const char *name, const char *label_column,
                         blo_dataset *ds, char *err, size_t errlen) {
    memset(ds, 0, sizeof *ds);
    blo__table t;
    blo_status st = blo__csv_table(buf, len, name, true, &t, err, errlen);
    if (st) return st;
    int label = t.cols - 1;
    if (t.cols < 2) {
        st = blo__fail(err, errlen, BLO_ERR_FORMAT,
                       "%s: line %lld: the header needs a label and at least one feature column",
                       name, (long long)t.header_line);
        goto out;
    }
    if (label_column && (label = blo__table_column(&t, label_column)) < 0) {
        st = blo__fail(err, errlen, BLO_ERR_FORMAT, "%s: line %lld: no column named '%s' in the header",
                       name, (long long)t.header_line, label_column);
        goto out;
    }
    ds->n = t.rows;
    ds->d = t.cols - 1;
    ds->x = blo_malloc(sizeof(float) * (size_t)(ds->n * ds->d + 1));
    ds->y = blo_malloc(sizeof(double) * (size_t)(ds->n + 1));
    if (!ds->x || !ds->y) goto nomem;
    for (int64_t i = 0; i < t.rows; i++) {
        float *xr = ds->x + i * ds->d;
        for (int j = 0; j < t.cols; j++) {
            double v = t.v[i * t.cols + j];
            if (j == label) ds->y[i] = v;
            else *xr++ = (float)v;
        }
    }
    if (!blo__dataset_classes(ds)) goto nomem;
    goto out;
nomem:
    st = blo__fail(err, errlen, BLO_ERR_NOMEM, "%s: out of memory", name);
out:
    blo__table_free(&t);
    if (st) blo_dataset_free(ds);
    return st;
}

blo_status blo_csv_load(const char *path, const char *label_column, blo_dataset *ds, char *err,
                        size_t errlen) {
    unsigned char *buf;
    size_t len;
    memset(ds, 0, sizeof *ds);
    blo_status st = blo_read_file(path, &buf, &len, err, errlen);
    if (st) return st;
    st = blo_csv_parse((const char *)buf, len, path, label_column, ds, err, errlen);
    blo_free(buf);
    return st;
}
