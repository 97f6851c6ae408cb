#!/usr/bin/env bash
# End-to-end: the Node SDK (sdk/typescript), installed from its directory
# with npm (no registry needed: it has no dependencies), its node:test suite
# (tests/sdk/test_typescript_sdk.mjs) against real VMs: with no
# configuration (the SDK starts msb serve), then over TCP with a token.
. "$(dirname "$0")/lib.sh"

trap 'serve_stop; for n in main logs life; do "$MSB" rm -f sdk-ts-$n >/dev/null 2>&1; done; rm -rf "$WORK"' EXIT

t_01_installs_from_its_directory() {
        command -v node >/dev/null || fail "node is not installed"
        [ "$(node -p 'process.versions.node.split(".")[0] >= 18')" = true ] || fail "node $(node -v) is older than 18"
        mkdir -p "$WORK/app"
        (cd "$WORK/app" && npm init -y >/dev/null && npm install --offline --no-audit --no-fund "$ROOT/sdk/typescript" \
                >"$WORK/npm.log" 2>&1) || fail "npm install: $(tail -5 "$WORK/npm.log")"
        cp "$ROOT/tests/sdk/test_typescript_sdk.mjs" "$WORK/app/"
        (cd "$WORK/app" && node -e 'import("@msb/sdk").then(m => { if (!m.Sandbox) process.exit(1) })') ||
                fail "import @msb/sdk"
}

node_phase() {
        (cd "$WORK/app" && MSB_BIN=$MSB node --test test_typescript_sdk.mjs) >"$WORK/node.log" 2>&1
        local rc=$?
        [ $rc = 0 ] || { grep -E '^not ok|Error|expected|actual' "$WORK/node.log" | head -30 >&2; fail "node --test: exit $rc"; }
        echo "    node --test: $(grep -E '^# (pass|fail)' "$WORK/node.log" | tr '\n' ' ')"
}

t_02_no_configuration_starts_the_server() {
        serve_stop
        node_phase
        [ -e "$SERVE_LOCKDIR/lock" ] || fail "the SDK did not leave its msb serve running"
        serve_stop
}

t_03_remote_over_tcp_with_the_token() {
        serve_tcp_start "$WORK/token"
        MSB_API_URL=http://127.0.0.1:$SERVE_PORT MSB_API_TOKEN=$(cat "$WORK/token") node_phase
        serve_stop
        assert_eq "nothing left behind" "$BEFORE" "$(leak_snapshot)"
}

BEFORE=$(leak_snapshot)
run_tests
