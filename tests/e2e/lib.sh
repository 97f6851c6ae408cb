# shellcheck shell=bash
# Tiny test harness for the end-to-end suite: each test is a function named
# t_*; run_tests runs them in order and prints one line per test.  Assertions
# fail the current test with a message; a test never "skips" silently.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MSB=${MSB_BIN:-$ROOT/build/msb} # MSB_BIN: test another build
. "$ROOT/scripts/lib.sh"
DATA=$(msb_data_dir)
if [ -n "${MSB_HOME:-}" ]; then RUNDIR=$MSB_HOME/run
elif [ "$(id -u)" = 0 ]; then RUNDIR=/run/msb
else RUNDIR=${XDG_RUNTIME_DIR:-$DATA}/msb; fi
WORK=$(mktemp -d /tmp/msb-e2e.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PASS=0 FAIL=0
FAILED_NAMES=()

fail() {
        echo "    FAIL: $*" >&2
        return 1
}
# assert_eq WHAT EXPECTED ACTUAL
assert_eq() {
        [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}
assert_contains() {
        case "$3" in *"$2"*) ;; *) fail "$1: expected to contain '$2', got '$3'" ;; esac
}
assert_not_contains() {
        case "$3" in *"$2"*) fail "$1: must not contain '$2', got '$3'" ;; esac
}

# run msb capturing stdout, stderr and status in OUT, ERR, RC
run_msb() {
        "$MSB" "$@" >"$WORK/out" 2>"$WORK/err" && RC=0 || RC=$?
        OUT=$(cat "$WORK/out")
        ERR=$(cat "$WORK/err")
}

# Host state that must be the same before and after a run: our children,
# runtime dirs, sockets, image-store temp files.
leak_snapshot() {
        local procs dirs tmps
        procs=$(pgrep -c -f '(qemu-system-x86_64|/usr/lib/qemu/virtiofsd|msb-fsd|msb-netd|passt).*msb' || true)
        dirs=$(find "$RUNDIR" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
        tmps=$(find "$DATA/images/tmp" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
        echo "procs=$procs rundirs=$dirs storetmp=$tmps"
}

run_tests() {
        local t
        for t in $(declare -F | awk '{print $3}' | grep '^t_'); do
                if [ -n "${TEST_FILTER:-}" ] && ! [[ $t =~ $TEST_FILTER ]]; then continue; fi
                local start=$SECONDS
                # not inside an 'if': bash ignores set -e in conditions
                (set -e; $t)
                if [ $? = 0 ]; then
                        PASS=$((PASS + 1))
                        printf 'ok   %s (%ds)\n' "$t" $((SECONDS - start))
                else
                        FAIL=$((FAIL + 1))
                        FAILED_NAMES+=("$t")
                        printf 'FAIL %s (%ds)\n' "$t" $((SECONDS - start))
                fi
        done
        echo "e2e $(basename "$0"): $PASS passed, $FAIL failed"
        [ "$FAIL" = 0 ]
}
