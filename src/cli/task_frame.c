/* task_frame.c — the frame every task command runs in (see task_frame.h). */
#include "task_frame.h"

#include "blo/dist.h"

#include <math.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cli_task_init(cli_task *t, const cli_task_def *def, const cli_cmd *cmd, blo_config *solver,
                   void *user) {
    memset(t, 0, sizeof *t);
    t->def = def;
    t->cmd = cmd;
    t->solver = solver;
    t->user = user;
    t->dtype = "f32";
    t->plot_from = &t->log;
    t->plot_from_opt = "--log";
    if (solver) cli_solver_args_from(&t->sa, solver);
}

int cli_task_opts(cli_task *t, cli_opt *opts, int n) {
    const cli_opt run[6] = {CLI_RUN_OPTS(t->threads, t->dtype, t->json, t->log, t->plot, t->quiet)};
    for (int i = 0; i < 6; i++)
        opts[n++] = run[i];
    return t->solver ? cli_solver_opts(opts, n, &t->sa) : n;
}

void cli_task_output(cli_task *t, const char *opt, const char **path) {
    if (t->nout >= 4) return;
    t->out_opt[t->nout] = opt;
    t->out_path[t->nout++] = path;
}

blo_dtype cli_task_dtype(const cli_task *t) {
    return strcmp(t->dtype, "f64") ? BLO_F32 : BLO_F64;
}

const char *cli_default_data(void) {
    const char *env = getenv("BLO_DATA");
    return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

static bool has_ext(const char *path, const char *exts) {
    size_t n = strlen(path);
    const char *e = exts;
    while (*e) {
        size_t k = strcspn(e, "|");
        if (n > k + 1 && path[n - k - 1] == '.' && !strncmp(path + n - k, e, k)) return true;
        e += k + (e[k] == '|');
    }
    return false;
}

bool cli_check_output(const char *cmd, const char *opt, const char *path, const char *exts) {
    if (exts && !has_ext(path, exts)) {
        char list[128];
        size_t k = 0;
        for (const char *e = exts; *e && k + 4 < sizeof list; e++) {
            if (e == exts || e[-1] == '|') {
                if (e != exts) list[k++] = ',', list[k++] = ' ';
                list[k++] = '.';
            }
            if (*e != '|') list[k++] = *e;
        }
        list[k] = 0;
        fprintf(stderr, "blo %s: %s %s: the file must end in %s\n", cmd, opt, path, list);
        return false;
    }
    char dir[4096] = ".";
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t len = slash == path ? 1 : (size_t)(slash - path);
        if (len >= sizeof dir) len = sizeof dir - 1;
        memcpy(dir, path, len);
        dir[len] = 0;
    }
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "blo %s: %s %s: there is no folder %s\n", cmd, opt, path, dir);
        return false;
    }
    if (access(dir, W_OK)) {
        fprintf(stderr, "blo %s: %s %s: the folder %s is not writable\n", cmd, opt, path, dir);
        return false;
    }
    if (!stat(path, &st) && (S_ISDIR(st.st_mode) || access(path, W_OK))) {
        fprintf(stderr, "blo %s: %s %s: %s\n", cmd, opt, path,
                S_ISDIR(st.st_mode) ? "a folder, not a file" : "the file is not writable");
        return false;
    }
    return true;
}

/* Every output the run will write, checked before it starts. */
static bool check_outputs(cli_task *t) {
    const char *name = t->def->name;
    if (t->plot && !*t->plot_from) {
        fprintf(stderr, "blo %s: --plot draws the %s file; give %s FILE too\n", name,
                t->plot_from_opt, t->plot_from_opt);
        return false;
    }
    if (t->log && !cli_check_output(name, "--log", t->log, "csv|jsonl|json")) return false;
    if (t->plot && !cli_check_output(name, "--plot", t->plot, "svg|png")) return false;
    if (t->solver && t->sa.checkpoint &&
        !cli_check_output(name, "--checkpoint", t->sa.checkpoint, NULL))
        return false;
    for (int i = 0; i < t->nout; i++)
        if (*t->out_path[i] &&
            !cli_check_output(name, t->out_opt[i], *t->out_path[i],
                              strstr(t->out_opt[i], "-log") ? "csv|jsonl|json" : NULL))
            return false;
    return true;
}

/* After the run: ends the progress line, closes the log, and either reports the failure
 * (its message without a leading "<task>: " or "<first word of the task>: ") or draws the
 * plot. Returns the exit code to stop with, or -1 to go on to the summary. */
static int finish(cli_task *t, blo_status st, const char *err) {
    const char *name = t->def->name;
    cli_progress_end(&t->prog);
    cli_log_close(&t->logf);
    if (st) {
        size_t n = strlen(name), w = strcspn(name, " ");
        const char *msg = err;
        if (!strncmp(err, name, n) && !strncmp(err + n, ": ", 2))
            msg = err + n + 2;
        else if (!strncmp(err, name, w) && !strncmp(err + w, ": ", 2))
            msg = err + w + 2;
        fprintf(stderr, "blo %s: %s\n", name, msg);
        return st == BLO_ERR_NUMERIC || st == BLO_ERR_NOMEM ? CLI_EXIT_FAILED : CLI_EXIT_USAGE;
    }
    if (t->plot) {
        char perr[512];
        char *logs[1] = {(char *)*t->plot_from};
        int prc = cli_plot_logs(t->plot, logs, 1, NULL, perr, sizeof perr);
        if (prc) {
            fprintf(stderr, "blo %s: %s\n", name, perr);
            return prc;
        }
    }
    return -1;
}

int cli_task_main(cli_task *t, int argc, char **argv, cli_opt *opts, int n) {
    const cli_task_def *d = t->def;
    int rc;
    if (!cli_parse(t->cmd, argc, argv, opts, n, &rc)) return rc;
    /* On R ranks (mpirun) rank 0 speaks: progress, log, plot and summary; the others only
     * report their own failure. */
    blo_comm *world = blo_comm_world();
    int root = blo_comm_rank(world) == 0;
    if (!root) t->quiet = 1, t->log = NULL, t->plot = NULL;
    if (t->solver && !cli_solver_config(d->name, &t->sa, t->solver)) return CLI_EXIT_USAGE;
    if (!check_outputs(t)) return CLI_EXIT_USAGE;
    if (t->solver) t->total = t->solver->outer_iters;
    if (!d->configure(t)) return CLI_EXIT_USAGE;
    blo_set_num_threads((int)t->threads);
    if (t->log) {
        if (!cli_log_open(&t->logf, t->log, d->ncols, d->cols, t->solver && t->sa.resume))
            return CLI_EXIT_USAGE;
        t->logging = 1;
    }
    cli_progress_start(&t->prog, d->name, t->total, t->quiet);
    char err[1024] = "";
    blo_status st = d->run(t, err, sizeof err);
    rc = finish(t, st, err);
    if (rc > 0 && blo_comm_size(world) > 1) {
        /* The other ranks may be waiting in a collective: end the job. */
        char msg[1200];
        snprintf(msg, sizeof msg, "blo %s failed (exit %d); ending every rank", d->name, rc);
        blo_comm_abort(world, rc, msg);
    }
    if (rc < 0) rc = root ? d->summary(t) : CLI_EXIT_OK;
    if (!st && d->release) d->release(t);
    return rc;
}

void cli_task_iter(cli_task *t, const blo_record *rec, const char *status, const double *row) {
    if (!isnan(rec->check_cosine)) {
        char solve[96] = "";
        if (rec->solve_iters >= 0)
            snprintf(solve, sizeof solve, "; linear solve: residual %.3g after %lld iterations",
                     rec->solve_residual, (long long)rec->solve_iters);
        char rhg[96] = "";
        if (!isnan(rec->check_rhg_cosine))
            snprintf(rhg, sizeof rhg,
                     "; against long-horizon rhg: cosine %.6f, relative error %.3g",
                     rec->check_rhg_cosine, rec->check_rhg_rel_error);
        fprintf(stderr,
                "%sblo %s: iteration %lld: hypergradient check against finite "
                "differences: cosine %.6f, relative error %.3g%s%s\n",
                t->prog.tty ? "\r\033[K" : "", t->def->name, (long long)rec->iter,
                rec->check_cosine, rec->check_rel_error, rhg, solve);
    }
    cli_task_step(t, rec->iter + 1, status, row);
}

void cli_task_step(cli_task *t, int64_t done, const char *status, const double *row) {
    cli_progress_update(&t->prog, done, status);
    if (t->logging) cli_log_row(&t->logf, row);
}
