# lib.sh — what the benchmark drivers (bench/run_*_bench.sh) share. Sourced after they set
# $here, $root and $build.

# bench_exe <driver name> <program>: the path of a built benchmark program; exits with a build
# hint when it is not built.
bench_exe() {
    local exe="$build/$2"
    if [ ! -x "$exe" ]; then
        echo "$1: $exe not found; build first:" >&2
        echo "  cmake -S $root -B $build -DCMAKE_BUILD_TYPE=Release && cmake --build $build -j2" >&2
        exit 2
    fi
    printf '%s\n' "$exe"
}

# bench_banner <threads> <rounds>: the header line with the machine and its load.
bench_banner() {
    echo "== $(uname -n): $(getconf _NPROCESSORS_ONLN) cores, threads=$1, rounds=$2," \
        "load average $(cut -d' ' -f1-3 /proc/loadavg) =="
}

# An awk function for the drivers' tables: med(s), the median of the numbers in the
# space-separated string s (insertion sort: a handful of rounds).
bench_median_awk='
    function med(s,    a, n, i, j, t) {
        n = split(s, a, " ")
        for (i = 2; i <= n; i++)
            for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
                t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
            }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }'
