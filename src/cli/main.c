/* main.c — the blo command line (placeholder until the tasks land). */
#include "blo/blo.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--version"))) {
        printf("blo %s\n", BLO_VERSION_STRING);
        return 0;
    }
    fprintf(stderr, "usage: blo --version\n");
    return 2;
}
