#!/usr/bin/env bash
# End-to-end: the Python SDK, installed offline into a fresh venv with no
# package index (pip install ./sdk/python), its pytest suite
# (tests/sdk/test_python_sdk.py) against real VMs: first with no
# configuration (the SDK starts msb serve itself), then over TCP with a token.
. "$(dirname "$0")/lib.sh"

LOCKDIR=$(dirname "$("$MSB" serve --print-socket)")
kill_server() { # whatever msb serve holds the user's lock
        local pid
        pid=$(cat "$LOCKDIR/lock" 2>/dev/null || true)
        [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do [ -e "$LOCKDIR/lock" ] || break; sleep 0.1; done
}
trap 'kill_server; for n in main logs life async; do "$MSB" rm -f sdk-py-$n >/dev/null 2>&1; done; rm -rf "$WORK"' EXIT

t_01_installs_offline_in_a_fresh_venv() {
        /usr/bin/python3 -m venv --system-site-packages "$WORK/venv"
        env -u PIP_FIND_LINKS PIP_NO_INDEX=1 "$WORK/venv/bin/pip" install -q "$ROOT/sdk/python" >"$WORK/pip.log" 2>&1 ||
                fail "pip install ./sdk/python: $(tail -5 "$WORK/pip.log")"
        "$WORK/venv/bin/python" -c 'import msb; assert msb.Sandbox and msb.AsyncSandbox' || fail "import msb"
}

pytest_phase() {
        (cd "$WORK" && MSB_BIN=$MSB "$WORK/venv/bin/python" -m pytest -q -p no:cacheprovider \
                "$ROOT/tests/sdk/test_python_sdk.py" "$@") >"$WORK/pytest.log" 2>&1
        local rc=$?
        [ $rc = 0 ] || { tail -30 "$WORK/pytest.log" >&2; fail "pytest: exit $rc"; }
        echo "    pytest: $(tail -1 "$WORK/pytest.log")"
}

t_02_no_configuration_starts_the_server() {
        kill_server
        [ ! -e "$LOCKDIR/lock" ] || fail "a server still runs"
        pytest_phase
        [ -e "$LOCKDIR/lock" ] || fail "the SDK did not leave its msb serve running"
        kill_server
}

t_03_remote_over_tcp_with_the_token() {
        local port
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        "$MSB" serve -q --listen "127.0.0.1:$port" --token-file "$WORK/token" >/dev/null 2>&1 &
        disown
        for _ in $(seq 100); do [ -s "$WORK/token" ] && [ -e "$LOCKDIR/lock" ] && break; sleep 0.1; done
        MSB_API_URL=http://127.0.0.1:$port MSB_API_TOKEN=$(cat "$WORK/token") pytest_phase
        kill_server
        assert_eq "nothing left behind" "$BEFORE" "$(leak_snapshot)"
}

BEFORE=$(leak_snapshot)
run_tests
