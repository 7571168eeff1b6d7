/* cli.c — option parsing from a table, with messages that name the option and the bad value,
 * the help printer, and output helpers shared by the subcommands. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "solver_opts.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool cli_parse_int(const char *cmd, const char *opt, const char *text, long long lo, long long hi,
                   long long *out) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (!*text || *end || errno == ERANGE) {
        fprintf(stderr, "blo %s: bad value '%s' for %s: expected an integer\n", cmd, text, opt);
        return false;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "blo %s: bad value '%s' for %s: expected an integer in [%lld, %lld]\n", cmd,
                text, opt, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_double(const char *cmd, const char *opt, const char *text, double lo, double hi,
                      double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (!*text || *end || errno == ERANGE || !isfinite(v)) {
        fprintf(stderr, "blo %s: bad value '%s' for %s: expected a finite number\n", cmd, text,
                opt);
        return false;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "blo %s: bad value '%s' for %s: expected a number in [%g, %g]\n", cmd, text,
                opt, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_choice(const char *cmd, const char *opt, const char *text, const char *choices,
                      const char **out) {
    size_t n = strlen(text);
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && !strncmp(c, text, n)) {
            *out = text;
            return true;
        }
        c += len + (bar ? 1 : 0);
    }
    fprintf(stderr, "blo %s: bad value '%s' for %s: expected one of %s\n", cmd, text, opt, choices);
    return false;
}

/* The option named by arg ("--seed" or "--seed=3"); *value gets the text after '='. */
static const cli_opt *find_opt(const char *arg, const cli_opt *opts, int n, const char **value) {
    const char *eq = strchr(arg, '=');
    size_t len = eq && arg[1] == '-' ? (size_t)(eq - arg) : strlen(arg);
    for (int i = 0; i < n; i++) {
        const char *names[2] = {opts[i].name, opts[i].alias};
        for (int k = 0; k < 2; k++) {
            if (names[k] && strlen(names[k]) == len && !strncmp(names[k], arg, len)) {
                *value = len < strlen(arg) ? arg + len + 1 : NULL;
                return &opts[i];
            }
        }
    }
    return NULL;
}

bool cli_parse(const cli_cmd *cmd, int argc, char **argv, const cli_opt *opts, int n, int *rc) {
    return cli_parse_args(cmd, argc, argv, opts, n, rc, NULL, NULL);
}

bool cli_parse_args(const cli_cmd *cmd, int argc, char **argv, const cli_opt *opts, int n,
                    int *rc, char **pos, int *npos) {
    if (npos) *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            cli_print_help(stdout, cmd, opts, n);
            *rc = CLI_EXIT_OK;
            return false;
        }
        const char *value = NULL;
        if (pos && arg[0] != '-') { /* argv has room for every argument */
            pos[(*npos)++] = argv[i];
            continue;
        }
        const cli_opt *o = arg[0] == '-' ? find_opt(arg, opts, n, &value) : NULL;
        if (!o) {
            fprintf(stderr, "blo %s: %s '%s' (see 'blo %s --help')\n", cmd->name,
                    arg[0] == '-' ? "unknown option" : "unexpected argument", arg, cmd->name);
            *rc = CLI_EXIT_USAGE;
            return false;
        }
        if (o->kind == CLI_FLAG) {
            if (value) {
                fprintf(stderr, "blo %s: %s takes no value\n", cmd->name, o->name);
                *rc = CLI_EXIT_USAGE;
                return false;
            }
            *(int *)o->dest = 1;
            continue;
        }
        if (!value) {
            if (i + 1 >= argc) {
                fprintf(stderr, "blo %s: %s needs a value (%s)\n", cmd->name, o->name,
                        o->metavar ? o->metavar : "VALUE");
                *rc = CLI_EXIT_USAGE;
                return false;
            }
            value = argv[++i];
        }
        bool ok = true;
        switch (o->kind) {
        case CLI_INT:
            ok = cli_parse_int(cmd->name, o->name, value, (long long)o->lo, (long long)o->hi,
                               (long long *)o->dest);
            break;
        case CLI_DOUBLE:
            ok = cli_parse_double(cmd->name, o->name, value, o->lo, o->hi, (double *)o->dest);
            break;
        case CLI_CHOICE:
            ok = cli_parse_choice(cmd->name, o->name, value, o->choices, (const char **)o->dest);
            break;
        case CLI_STRING:
            *(const char **)o->dest = value;
            break;
        case CLI_FLAG:
            break;
        }
        if (!ok) {
            *rc = CLI_EXIT_USAGE;
            return false;
        }
    }
    return true;
}

void cli_print_help(FILE *f, const cli_cmd *cmd, const cli_opt *opts, int n) {
    fprintf(f, "usage: blo %s [options]\n\n%s\n\noptions:\n", cmd->name, cmd->help);
    for (int i = 0; i < n; i++) {
        const cli_opt *o = &opts[i];
        char left[64];
        const char *mv = o->kind == CLI_CHOICE ? o->choices : o->metavar ? o->metavar : "VALUE";
        if (o->kind == CLI_FLAG)
            snprintf(left, sizeof left, "%s%s%s", o->name, o->alias ? ", " : "",
                     o->alias ? o->alias : "");
        else
            snprintf(left, sizeof left, "%s %s", o->name, mv);
        fprintf(f, "  %-22s %s", left, o->help);
        switch (o->kind) {
        case CLI_INT:
            fprintf(f, " (default %lld)", *(const long long *)o->dest);
            break;
        case CLI_DOUBLE:
            fprintf(f, " (default %g)", *(const double *)o->dest);
            break;
        case CLI_STRING:
        case CLI_CHOICE: {
            const char *s = *(const char *const *)o->dest;
            if (s) fprintf(f, " (default %s)", s);
            break;
        }
        case CLI_FLAG:
            break;
        }
        fputc('\n', f);
    }
    fprintf(f, "  %-22s %s\n", "-h, --help", "this help");
    for (int i = 0; i < n; i++)
        if (!strcmp(opts[i].name, "--method")) cli_print_methods(f);
}

bool cli_parse_doubles(const char *s, double lo, int max, double *out, int *n) {
    *n = 0;
    for (const char *p = s; *p;) {
        char *e;
        double v = strtod(p, &e);
        if (e == p || !(v >= lo) || !isfinite(v) || (*e && *e != ',') || *n == max) return false;
        out[(*n)++] = v;
        p = *e ? e + 1 : e;
    }
    return true;
}

void cli_json_number(FILE *f, double v) {
    if (!isfinite(v)) {
        fputs("null", f);
        return;
    }
    /* The shortest of %.15g..%.17g that reads back as the same double. */
    char buf[32];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    fputs(buf, f);
}

double cli_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}
