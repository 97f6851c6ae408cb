#!/usr/bin/env bash
# End-to-end: the Node SDK (sdk/typescript), installed from its directory
# with npm (no registry needed: it has no dependencies), its node:test suite
# (tests/sdk/test_typescript_sdk.mjs) against real VMs: with no
# configuration (the SDK starts msb serve), then over TCP with a token.
. "$(dirname "$0")/lib.sh"

LOCKDIR=$(dirname "$("$MSB" serve --print-socket)")
kill_server() {
        local pid
        pid=$(cat "$LOCKDIR/lock" 2>/dev/null || true)
        [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do [ -e "$LOCKDIR/lock" ] || break; sleep 0.1; done
}
trap 'kill_server; for n in main logs life; do "$MSB" rm -f sdk-ts-$n >/dev/null 2>&1; done; rm -rf "$WORK"' EXIT

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
        kill_server
        node_phase
        [ -e "$LOCKDIR/lock" ] || fail "the SDK did not leave its msb serve running"
        kill_server
}

t_03_remote_over_tcp_with_the_token() {
        local port
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        "$MSB" serve -q --listen "127.0.0.1:$port" --token-file "$WORK/token" >/dev/null 2>&1 &
        disown
        for _ in $(seq 100); do [ -s "$WORK/token" ] && [ -e "$LOCKDIR/lock" ] && break; sleep 0.1; done
        MSB_API_URL=http://127.0.0.1:$port MSB_API_TOKEN=$(cat "$WORK/token") node_phase
        kill_server
        assert_eq "nothing left behind" "$BEFORE" "$(leak_snapshot)"
}

BEFORE=$(leak_snapshot)
run_tests
