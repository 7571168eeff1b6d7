/* cmd_methods.c — `blo methods`: the hypergradient registry, one line of maths each. */
#include "cli.h"

#include "blo/blo.h"

#include <string.h>

int cli_methods_run(const cli_cmd *cmd, int argc, char **argv) {
    int json = 0, verbose = 0;
    const cli_opt opts[] = {
        {"--json", NULL, CLI_FLAG, &json, 0, 0, NULL, NULL, "print the registry as JSON"},
        {"--verbose", "-v", CLI_FLAG, &verbose, 0, 0, NULL, NULL,
         "add each method's paper and the settings it reads"},
    };
    int rc;
    if (!cli_parse(cmd, argc, argv, opts, 2, &rc)) return rc;
    int n = blo_method_count();
    if (json) {
        printf("[");
        for (int i = 0; i < n; i++) {
            const blo_method_info *m = blo_method_at(i);
            printf("%s{\"name\":\"%s\",\"maths\":", i ? "," : "", m->name);
            cli_json_string(stdout, m->maths);
            printf(",\"paper\":");
            cli_json_string(stdout, m->paper);
            printf(",\"settings\":");
            cli_json_string(stdout, m->settings);
            printf("}");
        }
        printf("]\n");
        return CLI_EXIT_OK;
    }
    for (int i = 0; i < n; i++) {
        const blo_method_info *m = blo_method_at(i);
        printf("  %-12s %s\n", m->name, m->maths);
        if (verbose) printf("  %-12s paper: %s\n  %-12s reads: %s\n", "", m->paper, "", m->settings);
    }
    return CLI_EXIT_OK;
}
