#!/usr/bin/env bash
# End-to-end: the Python SDK, installed offline into a fresh venv with no
# package index (pip install ./sdk/python), its pytest suite
# (tests/sdk/test_python_sdk.py) against real VMs: first with no
# configuration (the SDK starts msb serve itself), then over TCP with a token.
. "$(dirname "$0")/lib.sh"

trap 'serve_stop; for n in main logs life async; do "$MSB" rm -f sdk-py-$n >/dev/null 2>&1; done; rm -rf "$WORK"' EXIT

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
        serve_stop
        [ ! -e "$SERVE_LOCKDIR/lock" ] || fail "a server still runs"
        pytest_phase
        [ -e "$SERVE_LOCKDIR/lock" ] || fail "the SDK did not leave its msb serve running"
        serve_stop
}

t_03_remote_over_tcp_with_the_token() {
        serve_tcp_start "$WORK/token"
        MSB_API_URL=http://127.0.0.1:$SERVE_PORT MSB_API_TOKEN=$(cat "$WORK/token") pytest_phase
        serve_stop
        assert_eq "nothing left behind" "$BEFORE" "$(leak_snapshot)"
}

BEFORE=$(leak_snapshot)
run_tests
