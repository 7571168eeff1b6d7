/* bench_images.c — time of the image loaders on folders made by bench/run_images_bench.sh:
 *
 *   folder DIR SIDE CH   blo_image_folder_load: every PNG of a class-per-folder tree decoded
 *                        (libpng), converted to CH channels and box-filtered to SIDE x SIDE
 *   cifar DIR SPLIT      blo_cifar10_load: the split's batches read, checked, scaled to [0, 1]
 *
 * Prints one row: the median wall time (CLOCK_MONOTONIC) of `repeats` loads after one untimed
 * load, and the images per second at that median. The same work in Pillow / NumPy is
 * bench/bench_images_pil.py; the driver runs the two alternately.
 *
 * Usage: bench_images folder DIR SIDE CH REPEATS | bench_images cifar DIR SPLIT REPEATS
 */
#include "blo/blo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

int main(int argc, char **argv) {
    int folder = argc == 6 && !strcmp(argv[1], "folder"),
        cifar = argc == 5 && !strcmp(argv[1], "cifar");
    if (!folder && !cifar) {
        fprintf(stderr, "usage: bench_images folder DIR SIDE CH REPEATS | bench_images cifar DIR "
                        "SPLIT REPEATS\n");
        return 2;
    }
    int repeats = atoi(argv[argc - 1]);
    if (repeats < 1 || repeats > 1000) repeats = 5;
    double t[1000];
    int64_t n = 0;
    for (int r = -1; r < repeats; r++) {
        blo_dataset ds;
        char err[1024];
        double t0 = bench_wall_s();
        blo_status st = folder ? blo_image_folder_load(argv[2], atoll(argv[3]), atoi(argv[4]), &ds,
                                                       err, sizeof err)
                               : blo_cifar10_load(argv[2], argv[3], &ds, err, sizeof err);
        double dt = bench_wall_s() - t0;
        if (st) {
            fprintf(stderr, "bench_images: %s\n", err);
            return 1;
        }
        n = ds.n;
        blo_dataset_free(&ds);
        if (r >= 0) t[r] = dt;
    }
    double med = bench_median(t, repeats);
    printf("%-8s %8lld images  median %9.4f s  %10.0f images/s  (%d repeats)\n", argv[1],
           (long long)n, med, (double)n / med, repeats);
    return 0;
}
