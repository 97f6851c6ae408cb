#!/usr/bin/env bash
# End-to-end: msb serve, the HTTP API (docs/api.md), against real VMs: its
# routes and answers checked against docs/api/openapi.yaml (api-call.py),
# who may ask (the socket's uid, TCP's token), bad input named, sandboxes
# the CLI sees too, exec in one call and streamed, archives, a server
# killed and restarted that finds every sandbox, and nothing left behind.
. "$(dirname "$0")/lib.sh"

SB=e2e-api-$$
SOCK=$WORK/api.sock
TOKEN_FILE=$WORK/token
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
CALL="/usr/bin/python3 $ROOT/tests/e2e/api-call.py"
trap 'stop_server; "$MSB" rm -f "$SB" "$SB-b" "$SB-e" "$SB-n" >/dev/null 2>&1; rm -rf "$WORK"' EXIT

t_01_routes_are_the_documents() {
        "$MSB" serve --routes | sort >"$WORK/routes"
        /usr/bin/python3 - "$ROOT/docs/api/openapi.yaml" <<'PY' | sort >"$WORK/documented"
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
for path, item in d["paths"].items():
    for m in item:
        if m in ("get", "post", "put", "delete", "patch"):
            print(m.upper(), path)
PY
        assert_eq "every route documented, every documented route served" "$(cat "$WORK/documented")" \
                "$(cat "$WORK/routes")"
        "$MSB" serve --help >"$WORK/help"
        for flag in --socket --listen --token-file --tls-cert --tls-key --insecure --quiet --print-socket --routes; do
                assert_contains "--help documents $flag" "$flag" "$(cat "$WORK/help")"
        done
}

t_02_socket_is_its_owners_only() {
        assert_eq "socket mode" "srw-------" "$(stat -c %A "$SOCK")"
        assert_eq "token file made 0600" "-rw-------" "$(stat -c %A "$TOKEN_FILE")"
        # with the socket opened to all, another uid still gets nothing but 401
        chmod 755 "$WORK"
        chmod 666 "$SOCK"
        local out
        out=$(runuser -u nobody -- /usr/bin/python3 "$ROOT/tests/e2e/api-call.py" --unix "$SOCK" GET /v1/sandboxes 2>&1)
        chmod 700 "$WORK"
        chmod 600 "$SOCK"
        assert_eq "another uid" 401 "$(head -1 <<<"$out")"
        assert_contains "says why" "only its owner" "$out"
        # a second server for the same user is refused
        run_msb serve --socket "$WORK/second.sock"
        assert_eq "second server" 125 "$RC"
        assert_contains "names the first" "already runs" "$ERR"
}

t_03_tcp_needs_the_token() {
        local tok out
        tok=$(cat "$TOKEN_FILE")
        [ "${#tok}" -ge 32 ] || fail "token too short: ${#tok}"
        out=$($CALL --tcp "127.0.0.1:$PORT" GET /v1/sandboxes 2>&1)
        assert_eq "no token" 401 "$(head -1 <<<"$out")"
        out=$($CALL --tcp "127.0.0.1:$PORT" --token "${tok}x" GET /v1/sandboxes 2>&1)
        assert_eq "wrong token" 401 "$(head -1 <<<"$out")"
        out=$($CALL --tcp "127.0.0.1:$PORT" --token "${tok:0:10}" POST /v1/sandboxes '{"image":"busybox","name":"'$SB-n'"}' 2>&1)
        assert_eq "a prefix of the token, on a create" 401 "$(head -1 <<<"$out")"
        run_msb ls -a -q
        assert_not_contains "nothing was created" "$SB-n" "$OUT"
        out=$($CALL --tcp "127.0.0.1:$PORT" --token "$tok" GET /v1/version 2>&1)
        assert_eq "right token" 200 "$(head -1 <<<"$out")"
        # off loopback: TLS or --insecure
        run_msb serve --socket "$WORK/x.sock" --listen 0.0.0.0:1
        assert_eq "non-loopback without TLS" 125 "$RC"
        assert_contains "says what to give" "--tls-cert" "$ERR"
        run_msb serve --listen 127.0.0.1:notaport --socket "$WORK/x.sock"
        assert_contains "a bad --listen is named" "--listen '127.0.0.1:notaport'" "$ERR"
}

t_04_bad_input_names_the_field() {
        api POST /v1/sandboxes '{"image":"busybox","bogus":1}'
        assert_eq "unknown field" "400 bogus" "$CODE $(jget 'j["error"]["field"]')"
        api POST /v1/sandboxes '{"image":"busybox","cpus":"two"}'
        assert_eq "wrong type" "400 cpus" "$CODE $(jget 'j["error"]["field"]')"
        api POST /v1/sandboxes '{"image":"busybox","memory":"1M"}'
        assert_eq "out of range" "400 memory" "$CODE $(jget 'j["error"]["field"]')"
        api POST /v1/sandboxes '{"image":"busybox","volumes":[{"host":"/","guest":"/x"},{"host":"/nonexistent-'$$'","guest":"/y"}]}'
        assert_eq "the volume at fault" "400 volumes[1]" "$CODE $(jget 'j["error"]["field"]')"
        api POST /v1/sandboxes '{"command":["true"]}'
        assert_eq "image required" "400 image" "$CODE $(jget 'j["error"]["field"]')"
        api POST /v1/sandboxes '{"image":'
        assert_eq "not JSON" 400 "$CODE"
        api POST /v1/sandboxes '[1]'
        assert_eq "not an object" 400 "$CODE"
        head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$WORK/big"
        printf '{"image":"busybox"}' >>"$WORK/big"
        out=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -H 'Content-Type: application/json' \
                --data-binary @"$WORK/big" http://localhost/v1/sandboxes)
        assert_eq "body too large" 413 "$out"
        api GET /v1/sandboxes/no-such-$$
        assert_eq "no such sandbox" "404 not_found" "$CODE $(jget 'j["error"]["code"]')"
        assert_contains "the CLI's message" "no sandbox named 'no-such-$$'" "$BODY"
        api GET '/v1/sandboxes?status=sleeping'
        assert_eq "bad status filter" "400 status" "$CODE $(jget 'j["error"]["field"]')"
        out=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X PATCH http://localhost/v1/sandboxes)
        assert_eq "method not allowed" 405 "$out"
        run_msb ls -a -q
        assert_not_contains "no sandbox was made" "msb-" "$OUT"
}

t_05_create_and_exec() {
        api POST /v1/sandboxes '{"name":"'$SB'","image":"busybox","command":["sleep","3600"],"env":{"GREETING":"hi"},"labels":{"team":"a","tier":"x"},"disk_size":0}'
        assert_eq "created" "201 running" "$CODE $(jget 'j["status"]')"
        assert_eq "labels kept" "a" "$(jget 'j["labels"]["team"]')"
        api POST /v1/sandboxes '{"name":"'$SB'","image":"busybox"}'
        assert_eq "name taken" "409 conflict" "$CODE $(jget 'j["error"]["code"]')"
        # the CLI sees it, and the API sees what the CLI does
        run_msb exec "$SB" sh -c 'echo $GREETING'
        assert_eq "msb exec on an API sandbox" "hi" "$OUT"
        api GET "/v1/sandboxes?label=team=a&status=running"
        assert_eq "filtered list" "$SB" "$(jget '",".join(s["name"] for s in j["sandboxes"])')"
        api GET "/v1/sandboxes?label=team=b"
        assert_eq "a label that does not match" 0 "$(jget 'len(j["sandboxes"])')"
        api POST "/v1/sandboxes/$SB/exec" '{"command":["sh","-c","echo out; echo err >&2; cat; exit 3"],"stdin":"from stdin\n"}'
        assert_eq "exec" "200|out
from stdin|err|3" "$CODE|$(jget 'j["stdout"]')|$(jget 'j["stderr"]')|$(jget 'j["exit_code"]')"
        api POST "/v1/sandboxes/$SB/exec" '{"command":["no-such-command"]}'
        assert_eq "not found" "127" "$(jget 'j["exit_code"]')"
        assert_contains "says why" "not found" "$(jget 'j["stderr"]')"
        api POST "/v1/sandboxes/$SB/exec" '{"command":["sleep","30"],"timeout_ms":1000}'
        assert_eq "timeout" "124 True" "$(jget 'j["exit_code"], j["timed_out"]' | tr -d '(),')"
        api POST "/v1/sandboxes/$SB/exec" '{"command":["sh","-c","head -c 300000 /dev/zero | tr \"\\0\" a"],"max_output":1000}'
        assert_eq "capped, and says so" "1000 True" "$(jget 'len(j["stdout"]), j["stdout_truncated"]' | tr -d '(),')"
        api POST "/v1/sandboxes/$SB/exec" '{"command":["printf","\\377A"],"encoding":"base64"}'
        assert_eq "base64" "/0E=" "$(jget 'j["stdout"]')"
        api POST "/v1/sandboxes/$SB/exec" '{"command":["printf","\\377A"]}'
        assert_eq "invalid UTF-8 replaced" "$(printf '\xef\xbf\xbdA')" "$(jget 'j["stdout"]')"
}

t_06_exec_streamed() {
        api POST "/v1/sandboxes/$SB/exec/stream" '{"command":["sh","-c","echo one; sleep 0.5; echo two >&2; sleep 0.5; echo three; exit 7"]}'
        assert_eq "status" 200 "$CODE"
        assert_eq "events in order" "started stdout:one stderr:two stdout:three exit:7" "$(python3 -c '
import json, sys
out = []
for line in sys.stdin:
    e = json.loads(line)
    t = e["type"]
    out.append(t if t == "started" else "exit:%d" % e["exit_code"] if t == "exit" else t + ":" + e["data"].strip())
print(" ".join(out))' <<<"$BODY")"
        api POST "/v1/sandboxes/no-such-$$/exec/stream" '{"command":["true"]}'
        assert_eq "no such sandbox, before the stream" 404 "$CODE"
}

t_07_a_stream_whose_client_goes_kills_its_command() {
        curl -sN --unix-socket "$SOCK" -H 'Content-Type: application/json' \
                -d '{"command":["sh","-c","echo $$ >/tmp/streamed.pid; exec sleep 1000"]}' \
                "http://localhost/v1/sandboxes/$SB/exec/stream" >"$WORK/stream.out" &
        local cpid=$! pid
        for _ in $(seq 100); do grep -q stdout "$WORK/stream.out" 2>/dev/null || [ -n "$(
                "$MSB" exec "$SB" cat /tmp/streamed.pid 2>/dev/null)" ] && break; sleep 0.1; done
        pid=$("$MSB" exec "$SB" cat /tmp/streamed.pid)
        [ -n "$pid" ] || fail "the streamed command did not start"
        kill "$cpid"
        wait "$cpid" 2>/dev/null || true
        for _ in $(seq 50); do
                "$MSB" exec "$SB" kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        run_msb exec "$SB" kill -0 "$pid"
        [ "$RC" != 0 ] || fail "the command still runs after its client went away"
}

t_08_archive_in_and_out() {
        mkdir -p "$WORK/tree/sub"
        echo alpha >"$WORK/tree/a.txt"
        head -c 200000 /dev/urandom >"$WORK/tree/sub/blob"
        tar -C "$WORK/tree" -cf "$WORK/in.tar" .
        api PUT "/v1/sandboxes/$SB/archive?path=/tmp/up" "@$WORK/in.tar"
        assert_eq "uploaded" 204 "$CODE"
        run_msb exec "$SB" cat /tmp/up/a.txt
        assert_eq "landed" alpha "$OUT"
        API_BODY_FILE=$WORK/out.tar api GET "/v1/sandboxes/$SB/archive?path=/tmp/up"
        assert_eq "downloaded" 200 "$CODE"
        mkdir -p "$WORK/back"
        tar -C "$WORK/back" -xf "$WORK/out.tar"
        cmp "$WORK/tree/sub/blob" "$WORK/back/up/sub/blob" || fail "the blob differs after the round trip"
        api GET "/v1/sandboxes/$SB/archive?path=/no/such/path"
        assert_eq "missing guest path" 404 "$CODE"
        api GET "/v1/sandboxes/$SB/archive?path=relative"
        assert_eq "relative path" "400 path" "$CODE $(jget 'j["error"]["field"]')"
}

t_09_a_killed_server_stops_nothing() {
        local pid
        pid=$(server_pid)
        kill -9 "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        [ -S "$SOCK" ] || fail "expected the killed server's socket to be there (a stale one for the next)"
        run_msb exec "$SB" echo still
        assert_eq "the sandbox runs on" still "$OUT"
        start_server
        api GET "/v1/sandboxes/$SB"
        assert_eq "a new server finds it" "200 running" "$CODE $(jget 'j["status"]')"
}

t_09b_logs() {
        api POST /v1/sandboxes '{"name":"'$SB-b'","image":"busybox","disk_size":0,"command":["sh","-c","echo o1; echo e1 >&2; echo o2; sleep 3; echo o3; exec sleep 3600"]}'
        assert_eq "created" 201 "$CODE"
        sleep 1
        api GET "/v1/sandboxes/$SB-b/logs?stream=stdout"
        assert_eq "stdout apart" "o1 o2" "$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["data"] for l in sys.stdin))' <<<"$BODY")"
        api GET "/v1/sandboxes/$SB-b/logs?stream=stderr"
        assert_eq "stderr apart" "e1 stderr" "$(python3 -c 'import json,sys; print(" ".join(json.loads(l)[k] for l in sys.stdin for k in ("data","stream")))' <<<"$BODY")"
        api GET "/v1/sandboxes/$SB-b/logs?tail=1&stream=stdout"
        assert_eq "tail" 1 "$(grep -c . <<<"$BODY")"
        api GET "/v1/sandboxes/$SB-b/logs?since=2h"
        assert_eq "since" 3 "$(grep -c . <<<"$BODY")"
        api GET "/v1/sandboxes/$SB-b/logs?since=yesterday"
        assert_eq "bad since" "400 since" "$CODE $(jget 'j["error"]["field"]')"
        # follow: what comes later arrives; the client leaving ends it
        curl -sN --max-time 6 --unix-socket "$SOCK" "http://localhost/v1/sandboxes/$SB-b/logs?follow=true&stream=stdout" \
                >"$WORK/follow.out" || true
        assert_contains "followed" '"data":"o3"' "$(cat "$WORK/follow.out")"
        api GET "/v1/sandboxes/$SB-b/metrics"
        assert_eq "metrics of a running sandbox" "True" "$(jget 'j["running"] and j["cpu_seconds"] > 0 and j["memory_bytes"] > 16*2**20 and j["disk_size_bytes"] == 0')"
        api DELETE "/v1/sandboxes/$SB-b?force=true"
        assert_eq "removed" 204 "$CODE"
        api GET "/v1/sandboxes/$SB-b/logs"
        assert_eq "no such sandbox" 404 "$CODE"
}

t_09c_events() {
        curl -sN --max-time 30 --unix-socket "$SOCK" http://localhost/v1/events >"$WORK/events.out" &
        local cpid=$!
        sleep 1.5
        # the CLI's sandboxes are seen too
        run_msb run -d --name "$SB-e" busybox -- sh -c 'exit 5'
        run_msb wait "$SB-e"
        run_msb rm "$SB-e"
        for _ in $(seq 50); do grep -q '"removed"' "$WORK/events.out" && break; sleep 0.2; done
        kill "$cpid" 2>/dev/null
        wait "$cpid" 2>/dev/null || true
        assert_eq "events in order" "created started exited:5 stopped removed" "$(python3 -c '
import json, sys
out = []
for line in sys.stdin:
    e = json.loads(line)
    if e["name"] == sys.argv[1]:
        out.append(e["type"] + (":%d" % e["exit_code"] if e["type"] == "exited" else ""))
print(" ".join(out))' "$SB-e" <"$WORK/events.out")"
        BODY=$(cat "$WORK/events.out")
        /usr/bin/python3 - "$ROOT/tests/e2e" "$WORK/events.out" <<'PY' || fail "an event does not match the document"
import sys; sys.path.insert(0, sys.argv[1])
import importlib.util, yaml
spec = importlib.util.spec_from_file_location("ac", sys.argv[1] + "/api-call.py"); ac = importlib.util.module_from_spec(spec); spec.loader.exec_module(ac)
doc = yaml.safe_load(open(ac.DOC))
why = ac.check(doc, "GET", "/v1/events", 200, "application/x-ndjson", open(sys.argv[2]).read())
if why: print(why); sys.exit(1)
PY
}

t_10_lifecycle() {
        api POST "/v1/sandboxes/$SB/stop" '{"grace_ms":2000}'
        assert_eq "stopped" "200 stopped" "$CODE $(jget 'j["status"]')"
        api GET "/v1/sandboxes/$SB/metrics"
        assert_eq "metrics of a stopped sandbox" "False 0" "$(jget 'j["running"], j["memory_bytes"]' | tr -d '(),')"
        api POST "/v1/sandboxes/$SB/exec" '{"command":["true"]}'
        assert_eq "exec on a stopped sandbox" "409 not_running" "$CODE $(jget 'j["error"]["code"]')"
        api POST "/v1/sandboxes/$SB/start"
        assert_eq "started again" "200 running" "$CODE $(jget 'j["status"]')"
        api POST "/v1/sandboxes/$SB/exec" '{"command":["cat","/tmp/up/a.txt"]}'
        assert_eq "no disk: the upload is gone with the stop" 1 "$(jget 'j["exit_code"]')"
        api POST "/v1/sandboxes/$SB/restart" '{"grace_ms":1000}'
        assert_eq "restarted" "200 running" "$CODE $(jget 'j["status"]')"
        api POST "/v1/sandboxes/$SB/kill" '{"signal":"bogus"}'
        assert_eq "bad signal" "400 signal" "$CODE $(jget 'j["error"]["field"]')"
        api DELETE "/v1/sandboxes/$SB"
        assert_eq "a running sandbox needs force" "409" "$CODE"
        api POST "/v1/sandboxes/$SB/kill" '{"signal":"TERM"}'
        assert_eq "killed" 200 "$CODE"
        api POST "/v1/sandboxes/$SB/wait"
        assert_eq "waited" "200 143" "$CODE $(jget 'j["exit_code"]')"
        api DELETE "/v1/sandboxes/$SB"
        assert_eq "removed" 204 "$CODE"
        api GET "/v1/sandboxes/$SB"
        assert_eq "gone" 404 "$CODE"
        # created without starting, then started: a generated name
        api POST /v1/sandboxes '{"image":"busybox","start":false}'
        assert_eq "created only" "201 created" "$CODE $(jget 'j["status"]')"
        local gen
        gen=$(jget 'j["name"]')
        assert_contains "a generated name" "msb-" "$gen"
        api DELETE "/v1/sandboxes/$gen"
        assert_eq "removed" 204 "$CODE"
}

t_11_images_pool_metrics() {
        api GET /v1/images
        assert_contains "busybox listed" '"busybox:latest"' "$BODY"
        api POST /v1/images/pull '{"ref":"127.0.0.1:1/nothing:here"}'
        assert_eq "a pull that fails ends its stream with an error" error "$(tail -1 <<<"$BODY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["type"])')"
        api DELETE '/v1/images?ref=no-such-image-'$$
        assert_eq "no such image" 404 "$CODE"
        api GET /v1/pool
        assert_eq "pool" 200 "$CODE"
        api GET /metrics
        assert_contains "prometheus counters" "msb_api_requests_total" "$BODY"
        assert_contains "401s counted" "msb_api_unauthorized_total" "$BODY"
}

t_12_sigterm_leaves_nothing() {
        local lockdir
        lockdir=$(dirname "$("$MSB" serve --print-socket)")
        stop_server
        [ ! -e "$SOCK" ] || fail "socket left behind"
        [ ! -e "$lockdir" ] || fail "$lockdir left behind"
        assert_eq "nothing left behind" "$BEFORE" "$(leak_snapshot)"
}

BEFORE=$(leak_snapshot)
start_server
run_tests
