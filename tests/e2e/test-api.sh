#!/usr/bin/env bash
# End-to-end: msb serve, the HTTP API (docs/api.md), against real VMs: its
# routes and answers checked against docs/api/openapi.yaml (api-call.py),
# who may ask (the socket's uid, TCP's token), bad input named, sandboxes
# the CLI sees too, exec in one call and streamed, background processes
# (kept by the supervisor, read, written, signalled by id), archives, a server
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
        # the one-call form too: a client that hangs up has its command killed
        "$MSB" exec "$SB" rm -f /tmp/once.pid
        curl -s --unix-socket "$SOCK" -H 'Content-Type: application/json' \
                -d '{"command":["sh","-c","echo $$ >/tmp/once.pid; exec sleep 1000"]}' \
                "http://localhost/v1/sandboxes/$SB/exec" >/dev/null &
        cpid=$!
        pid=
        for _ in $(seq 100); do pid=$("$MSB" exec "$SB" cat /tmp/once.pid 2>/dev/null) && [ -n "$pid" ] && break; sleep 0.1; done
        [ -n "$pid" ] || fail "the one-call command did not start"
        kill "$cpid"
        wait "$cpid" 2>/dev/null || true
        for _ in $(seq 50); do
                "$MSB" exec "$SB" kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        run_msb exec "$SB" kill -0 "$pid"
        [ "$RC" != 0 ] || fail "the one-call exec still runs after its client hung up"
}

# ndjson_summary: a process's output stream (stdin) as "started out:TEXT err:TEXT exit:N" (output joined)
ndjson_summary() {
        python3 -c '
import json, sys
out, err, ev = "", "", []
for line in sys.stdin:
    e = json.loads(line)
    t = e["type"]
    if t == "stdout": out += e["data"]
    elif t == "stderr": err += e["data"]
    elif t == "exit": ev.append("exit:%d" % e["exit_code"])
    elif t == "error": ev.append("error:" + e["error"]["code"])
    else: ev.append(t)
print(" ".join(ev[:1] + ["out:" + out.replace("\n", "|"), "err:" + err.replace("\n", "|")] + ev[1:]))'
}
# proc_ended SB ID: until process ID has ended (at most 20 s)
proc_ended() {
        for _ in $(seq 100); do
                api GET "/v1/sandboxes/$1/processes/$2"
                [ "$(jget 'j["running"]')" = False ] && return 0
                sleep 0.2
        done
        fail "process $2 still runs: $BODY"
}
# stream_check FILE PATH: every line of a saved stream matches the document
stream_check() {
        /usr/bin/python3 -W ignore - "$ROOT/tests/e2e" "$1" "$2" <<'PY' || fail "a line of $2 does not match the document"
import sys, importlib.util, yaml
spec = importlib.util.spec_from_file_location("ac", sys.argv[1] + "/api-call.py"); ac = importlib.util.module_from_spec(spec); spec.loader.exec_module(ac)
why = ac.check(yaml.safe_load(open(ac.DOC)), "GET", sys.argv[3], 200, "application/x-ndjson", open(sys.argv[2]).read())
if why: print(why); sys.exit(1)
PY
}

t_07b_background_process_outlives_its_request() {
        api POST "/v1/sandboxes/$SB/processes" '{"command":["sh","-c","i=0; while [ $i -lt 40 ]; do echo $i; i=$((i + 1)); sleep 1; done"]}'
        assert_eq "started" 201 "$CODE"
        local id pid
        id=$(jget 'j["id"]')
        pid=$(jget 'j["pid"]')
        [ "$pid" -gt 0 ] || fail "no guest pid: $BODY"
        sleep 3
        api GET "/v1/sandboxes/$SB/processes"
        assert_eq "listed, kept and running" "True True False" \
                "$(jget '[(p["kept"], p["running"], p["main"]) for p in j["processes"] if p["id"] == '$id'][0]' | tr -d '(),')"
        assert_eq "the main process too" "1" "$(jget '[p["id"] for p in j["processes"] if p["main"]][0]')"
        api GET "/v1/sandboxes/$SB/processes?pid=$pid"
        assert_eq "found by its guest pid" "$id" "$(jget '",".join(str(p["id"]) for p in j["processes"])')"
        api GET "/v1/sandboxes/$SB/processes/$id"
        assert_eq "one" "$id sh" "$(jget 'j["id"], j["argv"][0]' | tr -d "(),'")"
        # a later client: what it missed first, then what comes
        curl -sN --max-time 4 --unix-socket "$SOCK" "http://localhost/v1/sandboxes/$SB/processes/$id/output" \
                >"$WORK/out1" || true
        stream_check "$WORK/out1" "/v1/sandboxes/$SB/processes/$id/output"
        assert_contains "started, with its pid" "{\"type\":\"started\",\"pid\":$pid}" "$(head -1 "$WORK/out1")"
        local s
        s=$(ndjson_summary <"$WORK/out1")
        assert_contains "the backlog from its start" "out:0|1|2|" "$s"
        [ "$(grep -c stdout "$WORK/out1")" -ge 6 ] || fail "live output after the backlog expected: $s"
        curl -sN --max-time 3 --unix-socket "$SOCK" "http://localhost/v1/sandboxes/$SB/processes/$id/output?backlog=false" \
                >"$WORK/out2" || true
        assert_not_contains "backlog=false: live only" "out:0|" "$(ndjson_summary <"$WORK/out2")"
        grep -q stdout "$WORK/out2" || fail "backlog=false got no live output"
        api POST "/v1/sandboxes/$SB/processes/$id/signal" '{"signal":"TERM"}'
        assert_eq "signalled" 204 "$CODE"
        proc_ended "$SB" "$id"
        assert_eq "its status stays" 143 "$(jget 'j["exit_code"]')"
        # an ended one replays what it kept, then its exit
        api GET "/v1/sandboxes/$SB/processes/$id/output"
        assert_contains "replayed to its end" "exit:143" "$(ndjson_summary <<<"$BODY")"
        api POST "/v1/sandboxes/$SB/processes/$id/signal" '{}'
        assert_eq "a signal to one that ended" "409 not_running" "$CODE $(jget 'j["error"]["code"]')"
        # one left running for t_09 (a server killed and restarted finds it)
        api POST "/v1/sandboxes/$SB/processes" '{"command":["sleep","3600"]}'
        jget 'j["id"]' >"$WORK/kept.id"
}

t_07c_background_stdin_and_terminal() {
        api POST "/v1/sandboxes/$SB/processes" '{"command":["sh","-c","cat; echo done"],"stdin":true}'
        local id
        id=$(jget 'j["id"]')
        printf 'hello ' >"$WORK/in1"
        api POST "/v1/sandboxes/$SB/processes/$id/stdin" "@$WORK/in1"
        assert_eq "written" "200 6 False" "$CODE $(jget 'j["written"], j["closed"]' | tr -d '(),')"
        # one writer at a time: an upload still coming holds stdin
        { printf 'x'; sleep 3; } | curl -s -T - -X POST --unix-socket "$SOCK" \
                "http://localhost/v1/sandboxes/$SB/processes/$id/stdin" >"$WORK/holder.out" &
        local holder=$!
        sleep 1.5
        api POST "/v1/sandboxes/$SB/processes/$id/stdin" "@$WORK/in1"
        assert_eq "a second writer" "409 busy" "$CODE $(jget 'j["error"]["code"]')"
        assert_contains "says why" "stdin writer already" "$BODY"
        wait "$holder"
        assert_contains "the holder's bytes went" '"written":1' "$(cat "$WORK/holder.out")"
        printf 'world\n' >"$WORK/in2"
        api POST "/v1/sandboxes/$SB/processes/$id/stdin?eof=true" "@$WORK/in2"
        assert_eq "written and closed" "200 True" "$CODE $(jget 'j["closed"]')"
        proc_ended "$SB" "$id"
        api GET "/v1/sandboxes/$SB/processes/$id/output"
        assert_eq "what cat read, from three requests" "started out:hello xworld|done| err: exit:0" \
                "$(ndjson_summary <<<"$BODY")"
        api POST "/v1/sandboxes/$SB/processes/$id/stdin" "@$WORK/in1"
        assert_eq "stdin of one that ended" "409 conflict" "$CODE $(jget 'j["error"]["code"]')"
        # a terminal: resized by id, its input from stdin writes
        api POST "/v1/sandboxes/$SB/processes" '{"command":["sh"],"tty":true,"rows":10,"cols":20}'
        id=$(jget 'j["id"]')
        api POST "/v1/sandboxes/$SB/processes/$id/resize" '{"rows":30,"cols":100}'
        assert_eq resized 204 "$CODE"
        printf 'stty size; exit 3\n' >"$WORK/in3"
        api POST "/v1/sandboxes/$SB/processes/$id/stdin" "@$WORK/in3"
        proc_ended "$SB" "$id"
        api GET "/v1/sandboxes/$SB/processes/$id/output?encoding=base64"
        assert_contains "the new size" "30 100" "$(python3 -c '
import base64, json, sys
print(b"".join(base64.b64decode(json.loads(l).get("data", "")) for l in sys.stdin).decode())' <<<"$BODY")"
        assert_eq "its exit" 3 "$(tail -1 <<<"$BODY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["exit_code"])')"
        api POST "/v1/sandboxes/$SB/processes" '{"command":["sleep","100"]}'
        id=$(jget 'j["id"]')
        api POST "/v1/sandboxes/$SB/processes/$id/resize" '{"rows":30,"cols":100}'
        assert_eq "no terminal" "409 conflict" "$CODE $(jget 'j["error"]["code"]')"
        api POST "/v1/sandboxes/$SB/processes/$id/stdin" "@$WORK/in1"
        assert_eq "started without stdin" "409 conflict" "$CODE $(jget 'j["error"]["code"]')"
        api POST "/v1/sandboxes/$SB/processes/$id/signal" '{"signal":9}'
        proc_ended "$SB" "$id"
        assert_eq "killed" 137 "$(jget 'j["exit_code"]')"
}

t_07d_background_slow_reader_and_errors() {
        api POST "/v1/sandboxes/$SB/processes" '{"command":["yes","flood"]}'
        local id
        id=$(jget 'j["id"]')
        # a client that reads nothing for a while is let go; the process and the sandbox go on
        /usr/bin/python3 - "$SOCK" "/v1/sandboxes/$SB/processes/$id/output?backlog=false" >"$WORK/stall" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"GET " + sys.argv[2].encode() + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
time.sleep(8)
data = b""
while True:
    d = s.recv(1 << 20)
    if not d: break
    data += d
print([l for l in data.decode(errors="replace").splitlines() if '"type"' in l][-1])
PY
        assert_contains "the stalled reader's stream ends with an error" '"type":"error"' "$(cat "$WORK/stall")"
        assert_contains "saying why" "fell 1 MiB behind" "$(cat "$WORK/stall")"
        api POST "/v1/sandboxes/$SB/exec" '{"command":["echo","still-here"]}'
        assert_eq "exec while it floods" "still-here" "$(jget 'j["stdout"]' | tr -d '\n')"
        api GET "/v1/sandboxes/$SB/processes/$id"
        assert_eq "it still runs" True "$(jget 'j["running"]')"
        api POST "/v1/sandboxes/$SB/processes/$id/signal" '{"signal":"KILL"}'
        proc_ended "$SB" "$id"
        # errors name what is wrong
        api GET "/v1/sandboxes/$SB/processes/9999"
        assert_eq "no such process" "404 not_found" "$CODE $(jget 'j["error"]["code"]')"
        api GET "/v1/sandboxes/$SB/processes/9999/output"
        assert_eq "no such process to read" 404 "$CODE"
        assert_contains "named" "no process 9999" "$BODY"
        api GET "/v1/sandboxes/$SB/processes/0"
        assert_eq "id 0" "400 id" "$CODE $(jget 'j["error"]["field"]')"
        api GET "/v1/sandboxes/$SB/processes/abc"
        assert_eq "not a number" "400 id" "$CODE $(jget 'j["error"]["field"]')"
        api POST "/v1/sandboxes/$SB/processes" '{"command":["no-such-command"]}'
        assert_eq "cannot be executed" "422 unprocessable" "$CODE $(jget 'j["error"]["code"]')"
        api POST "/v1/sandboxes/$SB/processes" '{"command":["true"],"bogus":1}'
        assert_eq "unknown field" "400 bogus" "$CODE $(jget 'j["error"]["field"]')"
        api POST "/v1/sandboxes/$SB/processes/1/resize" '{"rows":0,"cols":80}'
        assert_eq "rows out of range" "400 rows" "$CODE $(jget 'j["error"]["field"]')"
        api GET "/v1/sandboxes/no-such-$$/processes"
        assert_eq "no such sandbox" 404 "$CODE"
        # a process not started here is its own client's to read, but anyone's to signal
        "$MSB" exec "$SB" sleep 30 &
        local ex=$! pid_id="" rc
        for _ in $(seq 50); do
                api GET "/v1/sandboxes/$SB/processes"
                pid_id=$(jget '",".join(str(p["id"]) for p in j["processes"] if p["argv"] == ["sleep", "30"] and not p["kept"])')
                [ -n "$pid_id" ] && break
                sleep 0.2
        done
        [ -n "$pid_id" ] || fail "msb exec's process is not listed"
        api GET "/v1/sandboxes/$SB/processes/$pid_id/output"
        assert_eq "not kept: its client's" "409 busy" "$CODE $(jget 'j["error"]["code"]')"
        api POST "/v1/sandboxes/$SB/processes/$pid_id/signal" '{"signal":"KILL"}'
        assert_eq "but signalled by id" 204 "$CODE"
        wait $ex && rc=0 || rc=$?
        assert_eq "its client saw the kill" 137 "$rc"
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
        api GET "/v1/sandboxes/$SB/processes/$(cat "$WORK/kept.id")"
        assert_eq "and the background process it left" "200 True" "$CODE $(jget 'j["running"]')"
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
        # its end is seen before it goes (else: stopped and removed, no code)
        for _ in $(seq 50); do grep -q '"exited"' "$WORK/events.out" && break; sleep 0.2; done
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
        api GET "/v1/sandboxes/$SB/processes"
        assert_eq "processes of a stopped sandbox" "409 not_running" "$CODE $(jget 'j["error"]["code"]')"
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
