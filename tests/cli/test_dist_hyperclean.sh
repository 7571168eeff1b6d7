#!/usr/bin/env bash
# test_dist_hyperclean.sh — `mpirun -np 2 blo hyperclean` on tests/data/tinymnist: the 2-rank
# run follows the 1-process run (f64, 1e-9 relative), prints one summary (rank 0), a resumed
# 2-rank run ends exactly where an uninterrupted one does, its checkpoint (written by rank 0)
# resumes on 1 rank too, and a rank killed mid-run ends the job with a message and --resume
# finishes it; --trials over two groups of ranks gives the 1-process table. Skipped (passing)
# when blo or this machine has no MPI.
# Usage: test_dist_hyperclean.sh <blo binary> <source dir>.
set -uo pipefail
blo=${1:?usage: test_dist_hyperclean.sh <blo binary> <source dir>}
src=${2:?usage: test_dist_hyperclean.sh <blo binary> <source dir>}
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1

need_mpi test_dist_hyperclean
# same <a.json> <b.json> <rtol>: upper, lower and the cleaner's scores agree.
same() {
    python3 -c '
import json, sys
a, b, rtol = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), float(sys.argv[3])
ok = all(abs(a[k] - b[k]) <= rtol * abs(b[k]) for k in ("upper", "lower", "test_acc", "precision", "recall"))
ok = ok and all(a[k] == b[k] for k in ("kept", "iters"))
if not ok: print("  %s\n  %s" % (json.dumps(a), json.dumps(b)), file=sys.stderr)
sys.exit(0 if ok else 1)' "$@"
}

tiny=(--data "$src/tests/data/tinymnist" --n-train 60 --n-val 30 --n-test 30 --inner 8
    --inner-lr 0.5 --threads 1 -q --no-baselines --json --dtype f64)

# 2 ranks against 1 process (the default method, cg; every method's hypergradient on sharded
# data is checked by test_dist).
expect_rc 0 hyperclean "${tiny[@]}" --outer 6
cp "$tmp/out" "$tmp/one.json"
expect_mpi 0 hyperclean "${tiny[@]}" --outer 6
cp "$tmp/out" "$tmp/two.json"
check "one summary, printed by rank 0" test "$(wc -l <"$tmp/two.json")" -eq 1
check "2 ranks follow 1 process (f64, 1e-9)" same "$tmp/two.json" "$tmp/one.json" 1e-9

# Resume on 2 ranks: 6 iterations in one go (the cg run above) == 3, stopped, resumed to 6.
expect_mpi 0 hyperclean "${tiny[@]}" --outer 3 --checkpoint "$tmp/ck.bin"
check "rank 0 wrote one checkpoint" test -s "$tmp/ck.bin"
cp "$tmp/ck.bin" "$tmp/ck1.bin"
expect_mpi 0 hyperclean "${tiny[@]}" --outer 6 --resume "$tmp/ck.bin"
check "a resumed 2-rank run ends where the uninterrupted one does" \
    same "$tmp/out" "$tmp/two.json" 0
# The checkpoint holds replicated state only: one process continues it.
expect_rc 0 hyperclean "${tiny[@]}" --outer 6 --resume "$tmp/ck1.bin"
check "1 process resumes a 2-rank checkpoint" same "$tmp/out" "$tmp/two.json" 1e-9

# --trials 3 on 2 ranks: 2 groups of one rank, trials 0 and 2 on the first, 1 on the second;
# the table equals the 1-process one row for row.
expect_rc 0 hyperclean "${tiny[@]}" --outer 4 --trials 3
cp "$tmp/out" "$tmp/trials1.json"
expect_mpi 0 hyperclean "${tiny[@]}" --outer 4 --trials 3
check "--trials: one table from rank 0" test "$(wc -l <"$tmp/out")" -eq 1
check "--trials on 2 groups: the same table as one process" python3 -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
keys = ("seed", "test_acc", "f1", "upper", "iters")
ok = a["groups"] == 2 and len(a["runs"]) == 3 and all(
    x[k] == y[k] for x, y in zip(a["runs"], b["runs"]) for k in keys)
ok = ok and len({r["upper"] for r in a["runs"]}) == 3
sys.exit(0 if ok else 1)' "$tmp/out" "$tmp/trials1.json"
expect_rc 2 hyperclean "${tiny[@]}" --trials 2 --log "$tmp/t.csv"
check "--trials refuses --log with a reason" grep -q "one table" "$tmp/err"

# A rank killed mid-run: the job ends with a message naming it, and --resume finishes.
"${mpi[@]}" "$blo" hyperclean "${tiny[@]}" --outer 100000 --checkpoint "$tmp/kill.bin" \
    --checkpoint-every 5 >"$tmp/out" 2>"$tmp/err" &
job=$!
for _ in $(seq 200); do [ -s "$tmp/kill.bin" ] && break; sleep 0.05; done
victim=""
for pid in $(pgrep -P "$job"); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then
        victim=$pid
    fi
done
check "found rank 1 to kill" test -n "$victim"
[ -n "$victim" ] && kill -KILL "$victim"
wait "$job"
rc=$?
check "the job ends non-zero when a rank dies (exit $rc)" test "$rc" -ne 0
check "mpirun names the lost rank" grep -qi "rank 1.*\(killed\|signal\)\|signal 9\|killed" "$tmp/err"
# The checkpoint's iteration k (a resume asked for fewer iterations runs none), then k + 5.
expect_rc 0 hyperclean "${tiny[@]}" --outer 1 --resume "$tmp/kill.bin"
k=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["iters"])' "$tmp/out")
check "the killed job left a checkpoint (iteration $k)" test "$k" -ge 5
expect_mpi 0 hyperclean "${tiny[@]}" --outer $((k + 5)) --resume "$tmp/kill.bin"
check "--resume continues the killed job" json_ok "$tmp/out" "d['iters'] == $((k + 5))"

cli_finish test_dist_hyperclean
