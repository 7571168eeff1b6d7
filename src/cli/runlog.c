/* runlog.c — progress on stderr, per-iteration logs (CSV / JSON lines) and reading them back. */
#include "runlog.h"

#include "blo/core.h"
#include "cli.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- Progress --------------------------------------------------------------------------------- */

void cli_progress_start(cli_progress *p, const char *label, int64_t total, int quiet) {
    memset(p, 0, sizeof *p);
    p->label = label;
    p->total = total > 0 ? total : 1;
    p->quiet = quiet;
    p->tty = isatty(2);
    p->start = cli_seconds();
    p->last_line = -1;
}

static void fmt_secs(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    if (s < 60)
        snprintf(buf, n, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

void cli_progress_update(cli_progress *p, int64_t done, const char *status) {
    if (p->quiet) return;
    double now = cli_seconds(), el = now - p->start;
    double eta = done > 0 ? el * (double)(p->total - done) / (double)done : NAN;
    char e[32], t[32];
    fmt_secs(e, sizeof e, eta);
    fmt_secs(t, sizeof t, el);
    if (p->tty) {
        if (done < p->total && now - p->last_draw < 0.1) return;
        p->last_draw = now;
        int width = 24, fill = (int)((double)width * (double)done / (double)p->total);
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        bar[width] = 0;
        fprintf(stderr, "\r%s [%s] %lld/%lld  %s elapsed, ETA %s  %s\033[K", p->label, bar,
                (long long)done, (long long)p->total, t, done ? e : "?", status ? status : "");
        fflush(stderr);
        return;
    }
    int64_t step = p->total / 20 > 0 ? p->total / 20 : 1;
    if (done != p->total && done / step == p->last_line / step && p->last_line >= 0) return;
    p->last_line = done;
    fprintf(stderr, "%s %lld/%lld  %s elapsed, ETA %s  %s\n", p->label, (long long)done,
            (long long)p->total, t, done ? e : "?", status ? status : "");
}

void cli_progress_end(cli_progress *p) {
    if (!p->quiet && p->tty) fputc('\n', stderr);
}

/* ---- Writing logs -------------------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

bool cli_log_open(cli_log *l, const char *path, int ncols, const char *const *cols, int append) {
    memset(l, 0, sizeof *l);
    if (ncols > CLI_LOG_MAX_COLS) ncols = CLI_LOG_MAX_COLS;
    l->jsonl = ends_with(path, ".jsonl") || ends_with(path, ".json");
    l->ncols = ncols;
    for (int i = 0; i < ncols; i++) l->cols[i] = cols[i];
    FILE *probe = append ? fopen(path, "r") : NULL;
    int had = probe != NULL;
    if (probe) fclose(probe);
    l->f = fopen(path, append ? "a" : "w");
    if (!l->f) {
        fprintf(stderr, "blo: %s: cannot write the log\n", path);
        return false;
    }
    if (!l->jsonl && !had) {
        for (int i = 0; i < ncols; i++) fprintf(l->f, "%s%s", i ? "," : "", cols[i]);
        fputc('\n', l->f);
    }
    fflush(l->f);
    return true;
}

void cli_log_row(cli_log *l, const double *v) {
    if (!l->f) return;
    if (l->jsonl) fputc('{', l->f);
    for (int i = 0; i < l->ncols; i++) {
        if (l->jsonl) fprintf(l->f, "%s\"%s\":", i ? "," : "", l->cols[i]);
        else if (i) fputc(',', l->f);
        if (l->jsonl)
            cli_json_number(l->f, v[i]);
        else if (isfinite(v[i]))
            fprintf(l->f, "%.10g", v[i]);
        else
            fputs(isnan(v[i]) ? "nan" : (v[i] > 0 ? "inf" : "-inf"), l->f);
    }
    fputs(l->jsonl ? "}\n" : "\n", l->f);
    fflush(l->f); /* a killed run keeps every finished iteration */
}

void cli_log_close(cli_log *l) {
    if (l->f) fclose(l->f);
    l->f = NULL;
}

/* ---- Reading logs --------------------------------------------------------------------------------- */

void cli_table_free(cli_table *t) {
    blo_free(t->v);
    t->v = NULL;
}

int cli_table_col(const cli_table *t, const char *name) {
    for (int i = 0; i < t->ncols; i++)
        if (!strcmp(t->cols[i], name)) return i;
    return -1;
}

static bool push_row(cli_table *t, int64_t *cap, const double *row) {
    if (t->nrows == *cap) {
        int64_t nc = *cap ? *cap * 2 : 256;
        double *v = blo_malloc(sizeof(double) * (size_t)(nc * t->ncols));
        if (!v) return false;
        if (t->v) memcpy(v, t->v, sizeof(double) * (size_t)(t->nrows * t->ncols));
        blo_free(t->v);
        t->v = v;
        *cap = nc;
    }
    memcpy(t->v + t->nrows * t->ncols, row, sizeof(double) * (size_t)t->ncols);
    t->nrows++;
    return true;
}

static double parse_value(const char *s, bool *ok) {
    while (isspace((unsigned char)*s)) s++;
    if (!strncmp(s, "null", 4) || !strncmp(s, "nan", 3)) {
        *ok = true;
        return NAN;
    }
    char *e;
    double v = strtod(s, &e);
    while (isspace((unsigned char)*e)) e++;
    *ok = e != s && (*e == 0 || *e == ',' || *e == '}');
    return v;
}

/* One JSON-lines record {"a":1,"b":null,...}: the keys of the first line fix the columns. */
static bool parse_json_line(cli_table *t, char *line, double *row, bool first, char *why,
                            size_t n) {
    char *p = strchr(line, '{');
    if (!p) {
        snprintf(why, n, "not a JSON object");
        return false;
    }
    p++;
    int k = 0;
    for (int i = 0; i < t->ncols; i++) row[i] = NAN;
    while (*p) {
        while (isspace((unsigned char)*p) || *p == ',') p++;
        if (*p == '}') return true;
        if (*p != '"') {
            snprintf(why, n, "expected a quoted key");
            return false;
        }
        char *q = strchr(p + 1, '"');
        if (!q) {
            snprintf(why, n, "unterminated key");
            return false;
        }
        *q = 0;
        const char *key = p + 1;
        p = q + 1;
        while (isspace((unsigned char)*p)) p++;
        if (*p != ':') {
            snprintf(why, n, "expected ':' after \"%s\"", key);
            return false;
        }
        p++;
        bool ok;
        double v = parse_value(p, &ok);
        if (!ok) {
            snprintf(why, n, "the value of \"%s\" is not a number", key);
            return false;
        }
        int c = cli_table_col(t, key);
        if (c < 0 && first && t->ncols < CLI_LOG_MAX_COLS) {
            c = t->ncols++;
            snprintf(t->cols[c], sizeof t->cols[c], "%s", key);
            row[c] = NAN;
        }
        if (c >= 0) row[c] = v;
        k++;
        while (*p && *p != ',' && *p != '}') p++;
    }
    snprintf(why, n, "unterminated object");
    return false;
}

bool cli_table_read(const char *path, cli_table *t, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", path);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return false;
    }
    bool jsonl = ends_with(path, ".jsonl") || ends_with(path, ".json");
    char line[8192], why[128] = "";
    int64_t ln = 0, cap = 0;
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) {
        ln++;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!len) continue;
        double row[CLI_LOG_MAX_COLS];
        if (jsonl) {
            ok = parse_json_line(t, line, row, t->nrows == 0 && t->ncols == 0, why, sizeof why);
        } else if (t->ncols == 0) { /* header */
            char *tok = strtok(line, ",");
            while (tok && t->ncols < CLI_LOG_MAX_COLS) {
                snprintf(t->cols[t->ncols++], sizeof t->cols[0], "%s", tok);
                tok = strtok(NULL, ",");
            }
            continue;
        } else {
            int k = 0;
            char *s = line;
            while (ok) {
                char *c = strchr(s, ',');
                if (c) *c = 0;
                if (k >= t->ncols) {
                    snprintf(why, sizeof why, "more fields than the header's %d", t->ncols);
                    ok = false;
                    break;
                }
                bool vok;
                row[k] = parse_value(s, &vok);
                if (!vok) {
                    snprintf(why, sizeof why, "field %d is not a number", k + 1);
                    ok = false;
                }
                k++;
                if (!c) break;
                s = c + 1;
            }
            if (ok && k != t->ncols) {
                snprintf(why, sizeof why, "%d fields, the header has %d", k, t->ncols);
                ok = false;
            }
        }
        if (ok && !push_row(t, &cap, row)) {
            snprintf(why, sizeof why, "out of memory");
            ok = false;
        }
    }
    fclose(f);
    if (ok && t->ncols == 0) {
        snprintf(why, sizeof why, "no columns");
        ok = false;
    }
    if (!ok) {
        snprintf(err, errlen, "%s: line %lld: %s", path, (long long)ln, why);
        cli_table_free(t);
    }
    return ok;
}
