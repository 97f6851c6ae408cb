#!/usr/bin/env bash
# End-to-end: msb's MCP server checked with the official MCP client SDK
# (@modelcontextprotocol/sdk, pinned in tests/mcp/package-lock.json,
# installed with npm ci), over both transports: msb mcp on stdio, and
# POST /mcp on msb serve over TCP with the bearer token.  Each initializes,
# lists the tools and calls every one against real VMs (tests/mcp/mcp-check.mjs).
. "$(dirname "$0")/lib.sh"

trap 'serve_stop; "$MSB" rm -f mcp-s-mcp mcp-h-mcp >/dev/null 2>&1; rm -rf "$WORK"' EXIT

t_01_client_sdk_installs_from_the_lockfile() {
        cp "$ROOT/tests/mcp/package.json" "$ROOT/tests/mcp/package-lock.json" "$ROOT/tests/mcp/mcp-check.mjs" "$WORK/"
        (cd "$WORK" && npm ci --no-audit --no-fund >"$WORK/npm.log" 2>&1) || fail "npm ci: $(tail -5 "$WORK/npm.log")"
}

check() {
        (cd "$WORK" && node mcp-check.mjs "$@") >"$WORK/check.out" 2>&1
        local rc=$?
        sed 's/^/    /' "$WORK/check.out"
        [ $rc = 0 ] || fail "mcp-check $1"
}

t_02_stdio() {
        check stdio "$MSB" mcp-s
}

t_03_streamable_http() {
        serve_stop
        serve_tcp_start "$WORK/token"
        check http "http://127.0.0.1:$SERVE_PORT/mcp" "$(cat "$WORK/token")" mcp-h
        local code
        code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' \
                "http://127.0.0.1:$SERVE_PORT/mcp")
        assert_eq "no token, no tools" 401 "$code"
        serve_stop
        assert_eq "nothing left behind" "$BEFORE" "$(leak_snapshot)"
}

BEFORE=$(leak_snapshot)
run_tests
