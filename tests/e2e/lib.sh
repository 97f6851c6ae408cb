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
trap '[ "${MSB_E2E_POOL:-}" = 1 ] && "$MSB" pool stop >/dev/null 2>&1; rm -rf "$WORK"' EXIT
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

# The installed msb run as nobody with a HOME under WORK (removed however
# the test ends): sets AS_NOBODY (the command prefix) and INSTALLED_MSB, or
# fails the test.
as_nobody() {
        INSTALLED_MSB=/usr/local/bin/msb
        [ -x "$INSTALLED_MSB" ] || { fail "$INSTALLED_MSB is not installed (./setup.sh as root installs it)"; return 1; }
        chmod 711 "$WORK"
        mkdir -p "$WORK/nobody-home"
        chown nobody:nogroup "$WORK/nobody-home"
        AS_NOBODY=(runuser -u nobody -- env -i HOME="$WORK/nobody-home" PATH=/usr/bin:/bin)
}

# MSB_E2E_POOL=1: the suite runs with a pool of warm VMs (msb pool), so
# that every run that can take one does (docs/pool.md)
POOL_SIZE=2
pool_json() { "$MSB" pool status 2>/dev/null; }
# wait until the pool has all its VMs ready (refills after runs)
pool_settle() {
        for _ in $(seq 600); do
                [ "$(pool_json | python3 -c 'import json,sys; p=json.load(sys.stdin); print(sum(x["ready"] for x in p), sum(len(x["vms"]) for x in p))' 2>/dev/null)" = "$POOL_SIZE $POOL_SIZE" ] && return 0
                sleep 0.1
        done
        return 1
}
# the idle VMs' keepers and runtime dirs: the pool's, not a run's leftovers
pool_idle() {
        pool_json | python3 -c 'import json,sys
for p in json.load(sys.stdin):
    for v in p["vms"]:
        print(v["pid"], v.get("id", "-"))' 2>/dev/null
}
# The VM processes of the run with pid $1 matching pattern $2: its children,
# or with a pool those of the keeper that handed it its VM (the one keeper
# not idle)
run_procs() {
        local pid=$1 pat=$2 idle="" k
        if [ "${MSB_E2E_POOL:-}" = 1 ]; then
                idle=" $(pool_idle | awk '{print $1}' | tr '\n' ' ') "
                for k in $(pgrep -x msb-pool-vm); do
                        case $idle in *" $k "*) continue ;; esac
                        pgrep -P "$k" -f "$pat" || true
                done
        fi
        pgrep -P "$pid" -f "$pat" || true
}
# The runtime dir of the one run going on: the one that names its image
# root (a pool's idle or booting VMs have none yet)
run_dir() {
        local d
        # the newest: a killed run's may still be there
        for d in $(ls -td "$RUNDIR"/*/ 2>/dev/null); do
                d=${d%/}
                if [ -e "$d/rootfs" ]; then
                        echo "$d"
                        return 0
                fi
        done
        return 0
}
# started by run_tests, once a suite has set up its environment (MSB_HOME:
# the pool lives in the runtime dir the runs use), stopped at its end
pool_up() {
        "$MSB" pool start --size $POOL_SIZE || { echo "msb pool start failed" >&2; exit 1; }
        pool_settle || { echo "the pool did not fill" >&2; exit 1; }
}

# Host state that must be the same before and after a run: our children,
# runtime dirs, sockets, image-store temp files.  With a pool, its idle VMs
# are not counted (once it has refilled).
leak_snapshot() {
        local procs dirs tmps keepers="" ids=""
        if [ "${MSB_E2E_POOL:-}" = 1 ]; then
                pool_settle
                while read -r k id; do keepers="$keepers $k"; ids="$ids $id"; done < <(pool_idle)
        fi
        procs=0
        for p in $(pgrep -f '(qemu-system-x86_64|/usr/lib/qemu/virtiofsd|msb-fsd|msb-netd|passt).*msb'); do
                case " $keepers " in *" $(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ') "*) continue ;; esac
                procs=$((procs + 1))
        done
        dirs=0
        for d in $(find "$RUNDIR" -mindepth 1 -maxdepth 1 2>/dev/null); do
                case " $ids " in *" $(basename "$d") "*) continue ;; esac
                dirs=$((dirs + 1))
        done
        tmps=$(find "$DATA/images/tmp" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
        echo "procs=$procs rundirs=$dirs storetmp=$tmps"
}

run_tests() {
        local t
        [ "${MSB_E2E_POOL:-}" = 1 ] && pool_up
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
        if [ "${MSB_E2E_POOL:-}" = 1 ]; then
                # the suite must have gone through the pool, not around it
                local n
                n=$(pool_json | python3 -c 'import json,sys; print(sum(p["handed_out"] for p in json.load(sys.stdin)))')
                if [ "${n:-0}" -gt 0 ]; then
                        PASS=$((PASS + 1))
                        printf 'ok   pool_was_used (%s runs took a warm VM)\n' "$n"
                else
                        FAIL=$((FAIL + 1))
                        printf 'FAIL pool_was_used (no run took a warm VM)\n'
                fi
                "$MSB" pool stop >/dev/null 2>&1
        fi
        echo "e2e $(basename "$0"): $PASS passed, $FAIL failed"
        [ "$FAIL" = 0 ]
}

# msb serve for the API, SDK and MCP suites: the user's one server (its lock
# in SERVE_LOCKDIR names its pid).  serve_stop stops whichever runs;
# serve_tcp_start TOKEN_FILE starts one on a free loopback port and sets
# SERVE_PORT once it listens.
SERVE_LOCKDIR=$(dirname "$("$MSB" serve --print-socket 2>/dev/null || echo /nonexistent/x)")
serve_stop() {
        local pid
        pid=$(cat "$SERVE_LOCKDIR/lock" 2>/dev/null || true)
        [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do [ -e "$SERVE_LOCKDIR/lock" ] || break; sleep 0.1; done
}
serve_tcp_start() {
        SERVE_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        "$MSB" serve -q --listen "127.0.0.1:$SERVE_PORT" --token-file "$1" >/dev/null 2>&1 &
        disown
        for _ in $(seq 100); do [ -s "$1" ] && [ -e "$SERVE_LOCKDIR/lock" ] && return 0; sleep 0.1; done
        fail "msb serve --listen did not start"
}

# A suite's own msb serve on $SOCK (and TCP on 127.0.0.1:$PORT with
# $TOKEN_FILE), the suite setting those and CALL (api-call.py); start_server
# takes serve's further flags.
# tests run in subshells: the server's pid lives in a file
server_pid() { cat "$WORK/server.pid" 2>/dev/null; }
stop_server() {
        local pid
        pid=$(server_pid)
        [ -n "$pid" ] && kill "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$WORK/server.pid"
}
start_server() {
        "$MSB" serve --socket "$SOCK" --listen "127.0.0.1:$PORT" --token-file "$TOKEN_FILE" "$@" \
                >/dev/null 2>>"$WORK/serve.log" &
        echo $! >"$WORK/server.pid"
        disown
        for _ in $(seq 100); do
                [ -S "$SOCK" ] && return 0
                sleep 0.1
        done
        fail "msb serve did not listen: $(tail -5 "$WORK/serve.log")"
}

# api METHOD PATH [BODY]: CODE and BODY; the answer must match the document
api() {
        local rc=0
        $CALL --unix "$SOCK" "$@" >"$WORK/api.out" 2>"$WORK/api.err" || rc=$?
        CODE=$(head -1 "$WORK/api.out")
        BODY=$(tail -n +2 "$WORK/api.out")
        [ $rc = 0 ] || fail "$1 $2: $(cat "$WORK/api.err")"
}
# jget EXPR: a Python expression over the last JSON body (j)
jget() { python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$BODY"; }
