# lib.sh — what the command-line tests share: counters, check / expect_rc / json_ok, and the
# closing "N passed, M failed" line (cli_finish), and $mpi / expect_mpi for the MPI tests. Sourced by tests/cli/test_*.sh after they set
# $blo; makes a scratch folder $tmp removed on exit.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

check() { # check <description> <command...>: the command must succeed
    local what=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $what" >&2
    fi
}

# expect_rc <code> <args...>: blo exits with <code>; its stdout/stderr land in $tmp/out, $tmp/err.
expect_rc() {
    local want=$1
    shift
    "$blo" "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" -eq "$want" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: 'blo $*' exited $got, expected $want; stderr:" >&2
        sed 's/^/    /' "$tmp/err" >&2
    fi
}

# json_ok <file> <python expression over d>: the file is one JSON object and the test holds.
json_ok() {
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2])
if not ok:
    print("  the test %r does not hold for %s" % (sys.argv[2], json.dumps(d)), file=sys.stderr)
sys.exit(0 if ok else 1)' "$1" "$2"
}

# need_mpi <name>: ends the test, passing, when blo is built without MPI or mpirun is missing.
need_mpi() {
    if ! command -v mpirun >/dev/null || ! ldd "$blo" 2>/dev/null | grep libmpi >/dev/null; then
        echo "$1: blo is built without MPI or mpirun is missing: skipped"
        exit 0
    fi
}

# As root Open MPI wants --allow-run-as-root; more ranks than cores wants --oversubscribe.
# The shared-memory transport alone starts fastest on one machine. Open MPI's components leave
# allocations behind at exit: under AddressSanitizer the ranks skip the leak check (the
# 1-process runs keep it).
mpi=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    mpirun -np 2 --oversubscribe --allow-run-as-root --mca pml ob1 --mca btl self,vader)

# expect_mpi <code> <args...>: like expect_rc, with blo on 2 ranks (the MPI tests).
expect_mpi() {
    local want=$1
    shift
    "${mpi[@]}" "$blo" "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" -eq "$want" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: 'mpirun -np 2 blo $*' exited $got, expected $want; stderr:" >&2
        sed 's/^/    /' "$tmp/err" >&2
    fi
}

# cli_finish <name>: prints the tally and exits non-zero when anything failed.
cli_finish() {
    echo "$1: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
