#!/usr/bin/env bash
# End-to-end: files in a running sandbox by guest path, through msb serve
# (GET/PUT .../files, stat, list, mkdir, remove, rename, watch; every
# answer checked against docs/api/openapi.yaml by api-call.py), on one
# sandbox boot: ranges, modes, parents, a cut upload that leaves the old
# file, a watch that sees a create, and the errors: a missing path, a
# relative one, a root file as nobody, a sandbox that is not running.
. "$(dirname "$0")/lib.sh"

SB=e2e-files-$$
SOCK=$WORK/api.sock
TOKEN_FILE=$WORK/token
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
CALL="/usr/bin/python3 $ROOT/tests/e2e/api-call.py"
F=/v1/sandboxes/$SB/files
trap 'stop_server; "$MSB" rm -f "$SB" "$SB-off" >/dev/null 2>&1; rm -rf "$WORK"' EXIT

# in the guest: how many routines of agentd's run (copies of /init)
routines() { "$MSB" exec "$SB" ps -o comm= | grep -c '^init$' || true; }

t_01_start() {
        start_server
        run_msb run -d --name "$SB" busybox -- sleep 100000
        assert_eq "run -d" 0 "$RC"
        run_msb exec "$SB" sh -c 'mkdir -p /t/sub/deeper && echo hello >/t/f && echo deep >/t/sub/deeper/g &&
                ln -s f /t/l && ln -s /t/sub /t/sublink && chmod 640 /t/f && touch -d @981173106 /t/f &&
                echo secret >/root/secret && chmod 600 /root/secret && echo open >/tmp/open'
        assert_eq "the tree" 0 "$RC"
}

t_02_stat() {
        api GET "$F/stat?path=/t/f"
        assert_eq status 200 "$CODE"
        assert_eq "a file" "file 6 0640 f /t/f 981173106000000000 2001-02-03T04:05:06.000000000Z None" \
                "$(jget 'j["type"], j["size"], j["permissions"], j["name"], j["path"], j["mtime_ns"], j["mtime"], j["link_target"]' |
                        tr -d "(),'")"
        api GET "$F/stat?path=/t/l"
        assert_eq "a symlink, not followed" "symlink f" "$(jget 'j["type"] + " " + j["link_target"]')"
        api GET "$F/stat?path=/"
        assert_eq "the root" "dir /" "$(jget 'j["type"] + " " + j["name"]')"
}

t_03_list_by_depth() {
        api GET "$F/list?path=/t"
        assert_eq status 200 "$CODE"
        assert_eq "depth 1" "/t/f /t/l /t/sub /t/sublink" "$(jget '" ".join(sorted(e["path"] for e in j["entries"]))')"
        api GET "$F/list?path=/t&depth=2"
        assert_eq "depth 2" "/t/f /t/l /t/sub /t/sub/deeper /t/sublink" \
                "$(jget '" ".join(sorted(e["path"] for e in j["entries"]))')"
        api GET "$F/list?path=/t&depth=64"
        assert_eq "all the way, never through the symlinks" \
                "/t/f /t/l /t/sub /t/sub/deeper /t/sub/deeper/g /t/sublink" \
                "$(jget '" ".join(sorted(e["path"] for e in j["entries"]))')"
        assert_eq "not truncated" False "$(jget 'j["truncated"]')"
        api GET "$F/list?path=/t&depth=64&max=2"
        assert_eq "cut at max" "2 True" "$(jget 'len(j["entries"]), j["truncated"]' | tr -d '(),')"
        api GET "$F/list?path=/t/sublink"
        assert_eq "a symlink to a directory is followed at the top" "/t/sublink/deeper" \
                "$(jget '" ".join(e["path"] for e in j["entries"])')"
        api GET "$F/list?path=/t/f"
        assert_eq "a file" "409 conflict" "$CODE $(jget 'j["error"]["code"]')"
        api GET "$F/list?path=/t&depth=0"
        assert_eq "depth 0" "400 depth" "$CODE $(jget 'j["error"]["field"]')"
}

t_04_mkdir_and_remove() {
        api POST "$F/mkdir" '{"path": "/m/a/b", "mode": 448, "parents": true}'
        assert_eq "mkdir -p" 204 "$CODE"
        api GET "$F/stat?path=/m/a/b"
        assert_eq "its mode, exactly" "dir 0700" "$(jget 'j["type"] + " " + j["permissions"]')"
        api GET "$F/stat?path=/m/a"
        assert_eq "a parent's" 0755 "$(jget 'j["permissions"]')"
        api POST "$F/mkdir" '{"path": "/m/a/b", "parents": true}'
        assert_eq "there already, with parents" 204 "$CODE"
        api POST "$F/mkdir" '{"path": "/m/a/b"}'
        assert_eq "there already" "409 conflict" "$CODE $(jget 'j["error"]["code"]')"
        api POST "$F/mkdir" '{"path": "/m/x/y"}'
        assert_eq "no parent" 404 "$CODE"
        api POST "$F/mkdir" '{"path": "/m/z", "mode": 4096}'
        assert_eq "a mode too big" "400 mode" "$CODE $(jget 'j["error"]["field"]')"
        api POST "$F/mkdir" '{"path": "/m/z", "colour": "red"}'
        assert_eq "an unknown field" "400 colour" "$CODE $(jget 'j["error"]["field"]')"
        api POST "$F/remove" '{"path": "/m"}'
        assert_eq "not empty" 409 "$CODE"
        assert_contains "says so" "not empty" "$(jget 'j["error"]["message"]')"
        api POST "$F/remove" '{"path": "/m", "recursive": true}'
        assert_eq "remove -r" 204 "$CODE"
        api GET "$F/stat?path=/m"
        assert_eq "gone" 404 "$CODE"
        api POST "$F/remove" '{"path": "/", "recursive": true}'
        assert_eq "the root is refused" 400 "$CODE"
}

t_05_rename() {
        api POST "$F/rename" '{"from": "/t/f", "to": "/t/f2"}'
        assert_eq rename 204 "$CODE"
        api GET "$F/stat?path=/t/f"
        assert_eq "not at the old name" 404 "$CODE"
        api POST "$F/rename" '{"from": "/t/f2", "to": "/t/f"}'
        assert_eq "back" 204 "$CODE"
        api POST "$F/rename" '{"from": "/t/f2", "to": "/t/f"}'
        assert_eq "from what is not there" 404 "$CODE"
        api POST "$F/rename" '{"from": "/t/f"}'
        assert_eq "no to" "400 to" "$CODE $(jget 'j["error"]["field"]')"
}

t_06_read_ranges() {
        API_BODY_FILE=$WORK/r1 api GET "$F?path=/t/f&offset=1&length=3"
        assert_eq status 200 "$CODE"
        assert_eq "a range" ell "$(cat "$WORK/r1")"
        API_BODY_FILE=$WORK/r2 api GET "$F?path=/t/f"
        assert_eq "to the end" hello "$(cat "$WORK/r2")"
        API_BODY_FILE=$WORK/r3 api GET "$F?path=/t/f&offset=100"
        assert_eq "past the end" "200 0" "$CODE $(stat -c %s "$WORK/r3")"
        api GET "$F?path=/t"
        assert_eq "a directory" 409 "$CODE"
        api GET "$F?path=/t/nope"
        assert_eq "missing" 404 "$CODE"
}

t_07_write_with_mode_and_parents() {
        head -c 3000000 /dev/urandom >"$WORK/big"
        api PUT "$F?path=/w/new/big.bin&mode=600&parents=true" "@$WORK/big"
        assert_eq "written" 204 "$CODE"
        run_msb exec "$SB" sh -c 'sha256sum /w/new/big.bin; stat -c "%a %s" /w/new/big.bin; stat -c %a /w/new'
        assert_eq "in the guest" "$(sha256sum <"$WORK/big" | cut -d' ' -f1)  /w/new/big.bin
600 3000000
755" "$OUT"
        API_BODY_FILE=$WORK/back api GET "$F?path=/w/new/big.bin"
        cmp -s "$WORK/big" "$WORK/back" || fail "read back differs"
        echo small >"$WORK/small"
        api PUT "$F?path=/w/new/big.bin" "@$WORK/small"
        assert_eq "replaced" 204 "$CODE"
        run_msb exec "$SB" sh -c 'cat /w/new/big.bin; stat -c %a /w/new/big.bin; ls -A /w/new | grep -c msb-write'
        assert_eq "the new one, mode 644 by default, no temporary" "small
644
0" "$OUT"
        api PUT "$F?path=/nodir/x" "@$WORK/small"
        assert_eq "no parent" 404 "$CODE"
        api PUT "$F?path=/w/new" "@$WORK/small"
        assert_eq "a directory" 409 "$CODE"
        api PUT "$F?path=/w/y&mode=999" "@$WORK/small"
        assert_eq "a bad mode" "400 mode" "$CODE $(jget 'j["error"]["field"]')"
}

# A client that goes away mid-body: the old file stays, nothing is left.
t_08_a_cut_upload_leaves_the_old_file() {
        echo old >"$WORK/old"
        api PUT "$F?path=/w/keep" "@$WORK/old"
        assert_eq "the old file" 204 "$CODE"
        python3 - "$SOCK" "$F" <<'PY' || fail "the cut client failed"
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(f"PUT {sys.argv[2]}?path=/w/keep HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
          "Content-Type: application/octet-stream\r\n\r\n".encode() + b"new" * 10000)
time.sleep(1)
s.close()
PY
        local out=""
        for _ in $(seq 50); do
                out=$("$MSB" exec "$SB" sh -c 'cat /w/keep; ls -A /w | grep -c msb-write; true')
                [ "$out" = "old
0" ] && break
                sleep 0.2
        done
        assert_eq "the old file, no temporary" "old
0" "$out"
}

t_09_watch_sees_a_create() {
        run_msb exec "$SB" mkdir -p /wt/old
        local before
        before=$(routines)
        python3 - "$SOCK" "$F" "$MSB" "$SB" "$ROOT/tests/e2e/api-call.py" <<'PY' >"$WORK/watch" || fail "watch: $(cat "$WORK/watch")"
import importlib.util, json, socket, subprocess, sys, yaml
sock, base, msb, sb, call = sys.argv[1:]
spec = importlib.util.spec_from_file_location("apicall", call)
apicall = importlib.util.module_from_spec(spec)
spec.loader.exec_module(apicall)
c = apicall.UnixConnection(sock, timeout=60)
path = base + "/watch?path=/wt&recursive=true"
c.request("GET", path)
r = c.getresponse()
assert r.status == 200, r.status
lines = []
def line():
    l = r.readline()  # the chunks' framing undone
    if not l:
        sys.exit("the stream ended: " + " ".join(lines))
    lines.append(l.decode().strip())
    return json.loads(lines[-1])
first = line()
assert first == {"type": "ready", "path": "/wt"}, first
subprocess.run([msb, "exec", sb, "sh", "-c", "mkdir /wt/d && touch /wt/d/x && rm /wt/old -r"], check=True)
want = [("create", "/wt/d", "dir"), ("create", "/wt/d/x", "file"), ("remove", "/wt/old", "dir")]
seen = []
while len([w for w in want if w in seen]) < len(want):
    e = line()
    seen.append((e["type"], e["path"], e["file_type"]))
doc = yaml.safe_load(open(apicall.DOC))
why = apicall.check(doc, "GET", path, 200, "application/x-ndjson", "\n".join(lines))
assert why is None, why
print(" ".join(l for l in lines))
c.close()
PY
        assert_contains "ready first" '{"type":"ready","path":"/wt"}' "$(cat "$WORK/watch")"
        assert_contains "the new directory" '{"type":"create","path":"/wt/d","file_type":"dir"}' "$(cat "$WORK/watch")"
        # the routine ends with its client
        local now=""
        for _ in $(seq 50); do
                now=$(routines)
                [ "$now" = "$before" ] && break
                sleep 0.2
        done
        assert_eq "no routine left in the guest" "$before" "$now"
        api GET "$F/watch?path=/t/f"
        assert_eq "watching a file" 409 "$CODE"
        api GET "$F/watch?path=/nope"
        assert_eq "watching what is not there" 404 "$CODE"
}

t_10_errors() {
        api GET "$F/stat?path=/no/such/path"
        assert_eq "missing" "404 not_found" "$CODE $(jget 'j["error"]["code"]')"
        assert_contains "names it" "/no/such/path" "$(jget 'j["error"]["message"]')"
        api GET "$F/stat?path=relative"
        assert_eq "relative" 400 "$CODE"
        assert_contains "says why" "must be absolute" "$(jget 'j["error"]["message"]')"
        api GET "$F/stat?path="
        assert_eq "empty" "400 path" "$CODE $(jget 'j["error"]["field"]')"
        api GET "$F/stat?path=/root/secret&user=nobody"
        assert_eq "a root file as nobody" "403 forbidden" "$CODE $(jget 'j["error"]["code"]')"
        api GET "$F?path=/root/secret&user=nobody"
        assert_eq "read as nobody" 403 "$CODE"
        api GET "$F?path=/tmp/open&user=65534:65534"
        assert_eq "a file of root's nobody may read" 200 "$CODE"
        api PUT "$F?path=/root/x&user=nobody" "@$WORK/small"
        assert_eq "write as nobody" 403 "$CODE"
        api GET "$F/stat?path=/root/secret&user=root"
        assert_eq "as root" 200 "$CODE"
        api GET "$F/stat?path=/&user=ghost"
        assert_eq "a user the guest does not know" 400 "$CODE"
        run_msb create --name "$SB-off" busybox -- true
        api GET "/v1/sandboxes/$SB-off/files/stat?path=/"
        assert_eq "not running" "409 not_running" "$CODE $(jget 'j["error"]["code"]')"
        assert_eq "and not booted for it" created "$("$MSB" ls -a --format json | python3 -c "
import json,sys
print([s['status'] for s in json.load(sys.stdin) if s['name'] == '$SB-off'][0])")"
        "$MSB" rm -f "$SB-off" >/dev/null
        api GET "/v1/sandboxes/no-such-$$/files/stat?path=/"
        assert_eq "no such sandbox" 404 "$CODE"
}

t_11_remove() {
        run_msb rm -f "$SB"
        assert_eq rm 0 "$RC"
        stop_server
}

run_tests
