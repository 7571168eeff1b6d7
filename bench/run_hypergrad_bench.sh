#!/usr/bin/env bash
# run_hypergrad_bench.sh — one hypergradient of data hyper-cleaning (linear softmax model,
# synthetic 5000 x 784 data, 10 classes, inner SGD, float32) by every method blo registers,
# side by side with PyTorch: median time per hypergradient and peak memory, each
# (method, library) in its own process. See BENCHMARKS.md for figures.
#
#   bench/run_hypergrad_bench.sh [--threads 1] [--repeats 5] [--T 100] [--K 10] [--lr 0.03]
#                                [--n 5000] [--d 784] [--build build] [--python /usr/bin/python3]
#
# Needs a built tree (cmake --build build) and a python with torch and numpy. Methods blo
# refuses, or that have no PyTorch version here, are shown as such.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
threads=1 repeats=5 T=100 K=10 lr=0.03 n=5000 d=784
build="$here/../build" py=/usr/bin/python3
while [ $# -gt 0 ]; do
    case "$1" in
    --threads) threads=$2 ;; --repeats) repeats=$2 ;; --T) T=$2 ;; --K) K=$2 ;; --lr) lr=$2 ;;
    --n) n=$2 ;; --d) d=$2 ;; --build) build=$2 ;; --python) py=$2 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "run_hypergrad_bench.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift 2
done
bench="$build/bench_hypergrad"
[ -x "$bench" ] || { echo "run_hypergrad_bench.sh: $bench not built" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
"$bench" --write-data "$work/data.bin" --n "$n" --nv "$n" --d "$d" --classes 10

cores=$(getconf _NPROCESSORS_ONLN)
echo "# $(date -u +%FT%TZ) $(uname -n), $cores cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# n=$n nv=$n d=$d C=10 T=$T K=$K lr=$lr threads=$threads repeats=$repeats float32"
common=(--data "$work/data.bin" --T "$T" --K "$K" --lr "$lr" --threads "$threads"
        --repeats "$repeats")
for m in $("$bench" --method list); do
    for lib in blo torch; do
        out="$work/$lib.$m.txt"
        if [ $lib = blo ]; then
            cmd=("$bench")
        else
            cmd=("$py" "$here/bench_hypergrad_torch.py")
        fi
        cmd+=(--method "$m" "${common[@]}" --hg-out "$work/hg.$lib.$m")
        rc=0
        "${cmd[@]}" >"$out" 2>"$work/$lib.$m.err" || rc=$?
        if [ $rc -eq 0 ]; then
            grep '^RESULT' "$out"
        elif [ $rc -eq 3 ]; then
            echo "SKIP lib=$lib method=$m: $(tail -n1 "$work/$lib.$m.err")" | tee "$out"
        else
            echo "ERROR lib=$lib method=$m (exit $rc): $(tail -n1 "$work/$lib.$m.err")" | tee "$out"
        fi
    done
done

# The table: ratios, and how far blo's hypergradient is from torch's (same data, same maths).
"$py" - "$work" $("$bench" --method list) <<'PYEOF'
import os, sys
import numpy as np

work, methods = sys.argv[1], sys.argv[2:]

def result(lib, m):
    with open(os.path.join(work, f"{lib}.{m}.txt")) as f:
        for line in f:
            if line.startswith("RESULT"):
                return dict(kv.split("=", 1) for kv in line.split()[1:])
    return None

print()
head = ("method", "blo s", "torch s", "torch/blo", "blo cpu s", "torch cpu s", "torch/blo cpu",
        "blo RSS MiB", "blo arena MiB", "torch RSS MiB", "blo/torch mem", "max rel diff")
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for m in methods:
    b, t = result("blo", m), result("torch", m)
    row = [m]
    row += [b["median_s"] if b else "skip", t["median_s"] if t else "n/a"]
    row.append(f"{float(t['median_s']) / float(b['median_s']):.2f}" if b and t else "")
    row += [b["cpu_median_s"] if b else "", t["cpu_median_s"] if t else ""]
    row.append(f"{float(t['cpu_median_s']) / float(b['cpu_median_s']):.2f}" if b and t else "")
    row += [b["rss_delta_mib"] if b else "", b["arena_peak_mib"] if b else "",
            t["rss_delta_mib"] if t else ""]
    row.append(f"{float(b['rss_delta_mib']) / float(t['rss_delta_mib']):.2f}" if b and t else "")
    if b and t:
        hb = np.fromfile(os.path.join(work, f"hg.blo.{m}"))
        ht = np.fromfile(os.path.join(work, f"hg.torch.{m}"))
        row.append(f"{np.abs(hb - ht).max() / np.abs(ht).max():.1e}")
    else:
        row.append("")
    print("| " + " | ".join(row) + " |")
print()
print("s: median wall seconds per hypergradient; cpu s: median process CPU seconds (all threads);")
print("RSS MiB: ru_maxrss after the run minus ru_maxrss after loading the data (own process);")
print("arena MiB: blo's scratch-context peak (blo_record.peak_bytes); max rel diff: "
      "max|blo - torch| / max|torch| of dF/dx.")
PYEOF
