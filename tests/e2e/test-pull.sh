#!/bin/bash
# End-to-end: pulling images from a real OCI registry (Debian's
# docker-registry) on a free loopback port, with images this suite builds
# (busybox layers, scripts/oci-layout.sh) and pushes with skopeo.  A mirror
# maps docker.io to it, which is how `alpine` resolves here.
. "$(dirname "$0")/lib.sh"

. "$ROOT/tests/e2e/registry.sh"

t_run_alpine_through_mirror() {
        run_msb run alpine -- cat /etc/os-release
        assert_eq status 0 "$RC"
        assert_contains os-release 'NAME="msb test alpine"' "$OUT"
        assert_contains store "docker.io%2Flibrary%2Falpine%3Alatest" "$(store_state)"
        # the second run uses the stored image: it works with the registry gone too
        run_msb run --pull never alpine -- true
        assert_eq "second run" 0 "$RC"
}

t_pull_by_tag_and_digest() {
        run_msb pull -q "$REG/library/alpine:latest"
        assert_eq status 0 "$RC"
        assert_eq name "$REG/library/alpine:latest" "$OUT"
        local digest
        digest=$(curl -sI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
                "http://$REG/v2/library/alpine/manifests/latest" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
        [ -n "$digest" ] || fail "registry gave no digest"
        run_msb pull -q "$REG/library/alpine@$digest"
        assert_eq "by digest" 0 "$RC"
        run_msb run --pull never "$REG/library/alpine@$digest" -- cat /etc/os-release
        assert_contains "run by digest" "msb test alpine" "$OUT"
        # a digest that is not the tag's content
        run_msb pull "$REG/library/alpine@sha256:$(printf '0%.0s' $(seq 64))"
        assert_eq "unknown digest" 125 "$RC"
        assert_contains message "404" "$ERR"
}

t_layers_whiteouts_and_opaque_dirs() {
        mkdir -p "$WORK/w1/data/keep" "$WORK/w1/data/gone" "$WORK/w1/opq" "$WORK/w2/data" "$WORK/w2/opq"
        echo a >"$WORK/w1/data/file-a"; echo k >"$WORK/w1/data/keep/k"; echo g >"$WORK/w1/data/gone/g"
        echo old >"$WORK/w1/opq/old"
        : >"$WORK/w2/data/.wh.file-a"; : >"$WORK/w2/data/.wh.gone"
        : >"$WORK/w2/opq/.wh..wh..opq"; echo new >"$WORK/w2/opq/new"
        "$ROOT/scripts/oci-layout.sh" "$WORK/wh" v1 '{"Cmd":["/bin/sh"]}' "$(busybox_rootfs)" "$WORK/w1" "$WORK/w2" >/dev/null
        push "$WORK/wh" v1 test/whiteouts:v1
        run_msb run "$REG/test/whiteouts:v1" -- sh -c 'ls /data /opq | tr "\n" " "'
        assert_eq status 0 "$RC"
        assert_eq listing "/data: keep  /opq: new " "$OUT"
}

t_multi_arch_index_and_foreign_arch() {
        cp -a "$WORK/base" "$WORK/multi"
        python3 "$ROOT/tests/e2e/oci-tool.py" index "$WORK/multi" v1 arm64 amd64 s390x
        push "$WORK/multi" v1 test/multi:v1 --all
        run_msb run "$REG/test/multi:v1" -- cat /etc/os-release
        assert_eq "index picks amd64" 0 "$RC"
        assert_contains os-release "msb test alpine" "$OUT"
        cp -a "$WORK/base" "$WORK/arm"
        python3 "$ROOT/tests/e2e/oci-tool.py" index "$WORK/arm" v1 arm64 ppc64le
        push "$WORK/arm" v1 test/arm:v1 --all
        local before
        before=$(store_state)
        run_msb pull "$REG/test/arm:v1"
        assert_eq "index without amd64" 125 "$RC"
        assert_contains message "no linux/amd64 variant (available: linux/arm64, linux/ppc64le)" "$ERR"
        assert_eq "store untouched" "$before" "$(store_state)"
}

t_zstd_layers() {
        cp -a "$WORK/base" "$WORK/zst"
        python3 "$ROOT/tests/e2e/oci-tool.py" zstd "$WORK/zst" v1
        push "$WORK/zst" v1 test/zstd:v1
        run_msb run "$REG/test/zstd:v1" -- cat /etc/os-release
        assert_eq status 0 "$RC"
        assert_contains os-release "msb test alpine" "$OUT"
}

t_images_rmi_then_pull_again() {
        mkdir -p "$WORK/r1"; echo r >"$WORK/r1/r"
        "$ROOT/scripts/oci-layout.sh" "$WORK/rmi" v1 '{"Cmd":["/bin/sh"],"Env":["PATH=/bin"]}' "$(busybox_rootfs)" "$WORK/r1" >/dev/null
        push "$WORK/rmi" v1 test/rmi:v1
        run_msb pull -q "$REG/test/rmi:v1"
        assert_eq pull 0 "$RC"
        run_msb images
        assert_contains listing "$REG/test/rmi" "$OUT"
        assert_contains header "NAME" "$OUT"
        local id rootfs
        id=$(echo "$OUT" | awk -v n="$REG/test/rmi" '$1 == n {print $3}')
        [ ${#id} = 12 ] || fail "no 12-digit id in: $OUT"
        rootfs=$(ls -d "$STORE/rootfs/$id"*)
        # in use by a running sandbox: refused
        "$MSB" run --pull never "$REG/test/rmi:v1" -- sh -c 'echo ready; sleep 100' >"$WORK/bg.out" 2>&1 &
        local bg=$!
        for _ in $(seq 300); do grep -q ready "$WORK/bg.out" && break; sleep 0.1; done
        run_msb rmi "$REG/test/rmi:v1"
        assert_eq "rmi while running" 125 "$RC"
        assert_contains message "used by a running sandbox" "$ERR"
        kill -TERM $bg; wait $bg 2>/dev/null || true
        run_msb rmi "$REG/test/rmi:v1"
        assert_eq "rmi" 0 "$RC"
        [ ! -e "$rootfs" ] || fail "rootfs $rootfs left behind"
        run_msb images
        assert_not_contains listing "$REG/test/rmi" "$OUT"
        run_msb rmi "$REG/test/rmi:v1"
        assert_contains "second rmi" "not in the local store" "$ERR"
        run_msb run "$REG/test/rmi:v1" -- cat /r
        assert_eq "pulled again on run" r "$OUT"
}

t_load_docker_and_oci_archives() {
        skopeo copy -q "oci:$WORK/base:v1" "docker-archive:$WORK/d.tar:test/loaded:d1" >/dev/null
        run_msb load -i "$WORK/d.tar"
        assert_eq "docker archive" 0 "$RC"
        assert_eq output "loaded docker.io/test/loaded:d1" "$OUT"
        run_msb run --pull never test/loaded:d1 -- cat /etc/os-release
        assert_contains "run the loaded image" "msb test alpine" "$OUT"
        gzip -c "$WORK/d.tar" >"$WORK/d.tar.gz"
        run_msb load -i "$WORK/d.tar.gz" test/gz:1
        assert_eq "gzip archive, named" "loaded docker.io/test/gz:1" "$OUT"
        skopeo copy -q "oci:$WORK/base:v1" "oci-archive:$WORK/o.tar:v9" >/dev/null
        run_msb load -i "$WORK/o.tar"
        assert_eq "OCI archive without a name" 125 "$RC"
        assert_contains message "give one: msb load -i FILE NAME" "$ERR"
        run_msb load -i "$WORK/o.tar" myapp:oci
        assert_eq "OCI archive" "loaded docker.io/library/myapp:oci" "$OUT"
        run_msb run --pull never myapp:oci -- cat /etc/os-release
        assert_contains "run the OCI archive" "msb test alpine" "$OUT"
        echo "not an archive" >"$WORK/junk"
        run_msb load -i "$WORK/junk"
        assert_eq "junk" 125 "$RC"
        assert_contains message "junk" "$ERR"
        assert_eq "nothing left in tmp" 0 "$(ls -A "$STORE/tmp" | wc -l)"
}

t_interrupted_pull_resumes_or_restarts() {
        mkdir -p "$WORK/big"
        head -c $((24 << 20)) /dev/urandom >"$WORK/big/blob"
        "$ROOT/scripts/oci-layout.sh" "$WORK/bigl" v1 '{"Cmd":["/bin/sh"]}' "$(busybox_rootfs)" "$WORK/big" >/dev/null
        push "$WORK/bigl" v1 test/big:v1
        local m digest f want
        m=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/test/big/manifests/v1")
        digest=$(echo "$m" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][-1]["digest"])')
        f=$WORK/registry/docker/registry/v2/blobs/sha256/${digest:7:2}/${digest#sha256:}/data
        want=$(sha256sum "$WORK/big/blob" | cut -d' ' -f1)
        # what a killed pull leaves: the first 5 MB of the layer; the next
        # pull goes on from there with a range request
        mkdir -p "$STORE/tmp"
        head -c $((5 << 20)) "$f" >"$STORE/tmp/partial-${digest#sha256:}"
        run_msb pull -q "$REG/test/big:v1"
        assert_eq "resumed pull" 0 "$RC"
        assert_eq "tmp after" 0 "$(ls -A "$STORE/tmp" | wc -l)"
        run_msb run --pull never "$REG/test/big:v1" -- sha256sum /blob
        assert_eq "content" "$want  /blob" "$OUT"
        # a partial that does not match is found out and thrown away; the
        # pull after that starts over
        run_msb rmi "$REG/test/big:v1"
        head -c $((5 << 20)) /dev/zero >"$STORE/tmp/partial-${digest#sha256:}"
        run_msb pull -q "$REG/test/big:v1"
        assert_eq "bad partial" 125 "$RC"
        assert_contains message "does not match its digest" "$ERR"
        run_msb pull -q "$REG/test/big:v1"
        assert_eq "after a bad partial" 0 "$RC"
        # SIGKILL in the middle, then again
        run_msb rmi "$REG/test/big:v1"
        "$MSB" pull -q "$REG/test/big:v1" >/dev/null 2>&1 &
        local bg=$!
        sleep 0.15
        kill -KILL $bg 2>/dev/null || true
        wait $bg 2>/dev/null || true
        # whatever moment the kill hit: a name exists only with its whole rootfs
        local ref d
        for ref in "$STORE"/refs/*; do
                [ -e "$ref" ] || continue
                d=$(cat "$ref")
                [ -d "$STORE/rootfs/${d#sha256:}" ] || fail "name $(basename "$ref") without its rootfs after a kill"
        done
        run_msb run "$REG/test/big:v1" -- sha256sum /blob
        assert_eq "after SIGKILL" "$want  /blob" "$OUT"
        # what dead writers leave in tmp/ goes with the next pull that has
        # the store to itself; a young partial download stays, to resume
        mkdir -p "$STORE/tmp/rootfs-deadbeef/bin" "$STORE/tmp/load-deadbeef"
        echo x >"$STORE/tmp/blob-deadbeef"
        echo x >"$STORE/tmp/partial-0000000000000000000000000000000000000000000000000000000000000000"
        echo x >"$STORE/tmp/partial-1111111111111111111111111111111111111111111111111111111111111111"
        touch -d '8 days ago' "$STORE/tmp/partial-1111111111111111111111111111111111111111111111111111111111111111"
        run_msb pull -q "$REG/test/big:v1"
        assert_eq "pull" 0 "$RC"
        assert_eq "tmp swept" "partial-0000000000000000000000000000000000000000000000000000000000000000" \
                "$(ls -A "$STORE/tmp")"
        rm -f "$STORE/tmp/partial-0000000000000000000000000000000000000000000000000000000000000000"
}

t_docker_schema2_pulls_schema1_refused() {
        cp -a "$WORK/base" "$WORK/hist"
        python3 "$ROOT/tests/e2e/oci-tool.py" history "$WORK/hist" v1
        skopeo copy -q --format v2s2 --dest-tls-verify=false "oci:$WORK/hist:v1" "docker://$REG/test/v2s2:v1" >/dev/null
        skopeo copy -q --format v2s1 --dest-tls-verify=false "oci:$WORK/hist:v1" "docker://$REG/test/v2s1:v1" >/dev/null
        run_msb pull -q "$REG/test/v2s2:v1"
        assert_eq "Docker schema 2" 0 "$RC"
        local before
        before=$(store_state)
        run_msb pull "$REG/test/v2s1:v1"
        assert_eq "schema 1" 125 "$RC"
        assert_contains message "schema 1 manifest, which msb does not support" "$ERR"
        assert_eq "nothing stored" "$before" "$(store_state)"
}

corrupt_layer() { # corrupt_layer REPO:TAG how -> changes the stored layer blob in the registry
        local m digest f
        m=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/${1%:*}/manifests/${1#*:}")
        digest=$(echo "$m" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][-1]["digest"])')
        f=$WORK/registry/docker/registry/v2/blobs/sha256/${digest:7:2}/${digest#sha256:}/data
        [ -f "$f" ] || fail "no blob file $f"
        case $2 in
        flip) printf 'X' | dd of="$f" bs=1 seek=100 conv=notrunc status=none ;;
        truncate) truncate -s 50 "$f" ;;
        esac
        echo "$digest"
}

t_corrupt_blob_stores_nothing() {
        mkdir -p "$WORK/c1"; echo c >"$WORK/c1/c"
        "$ROOT/scripts/oci-layout.sh" "$WORK/cor" v1 '{"Cmd":["/bin/sh"]}' "$(busybox_rootfs)" "$WORK/c1" >/dev/null
        push "$WORK/cor" v1 test/corrupt:v1
        local digest before
        digest=$(corrupt_layer test/corrupt:v1 flip)
        before=$(store_state)
        run_msb pull "$REG/test/corrupt:v1"
        assert_eq status 125 "$RC"
        assert_contains message "content does not match its digest: expected $digest, got sha256:" "$ERR"
        assert_eq "store" "$before" "$(store_state)"
        [ ! -e "$STORE/blobs/sha256/${digest#sha256:}" ] || fail "the corrupt blob was kept"
}

t_truncated_download_stores_nothing() {
        mkdir -p "$WORK/t1"; echo t >"$WORK/t1/t"
        "$ROOT/scripts/oci-layout.sh" "$WORK/tr" v1 '{"Cmd":["/bin/sh"]}' "$(busybox_rootfs)" "$WORK/t1" >/dev/null
        push "$WORK/tr" v1 test/trunc:v1
        local before
        corrupt_layer test/trunc:v1 truncate >/dev/null
        before=$(store_state)
        run_msb pull "$REG/test/trunc:v1"
        assert_eq status 125 "$RC"
        assert_contains message "truncated download" "$ERR"
        assert_eq "store" "$before" "$(store_state)"
}

t_missing_manifest_is_clear() {
        run_msb pull "$REG/library/alpine:no-such-tag"
        assert_eq status 125 "$RC"
        assert_contains message "no such manifest" "$ERR"
        assert_contains message "404" "$ERR"
        run_msb run --pull never nothing-here -- true
        assert_eq "--pull never" 125 "$RC"
        assert_contains message "not found in the local store" "$ERR"
}

# libcurl is loaded only when a registry is contacted; a broken one is named
# and runs of stored images never notice it
t_libcurl_loaded_on_demand() {
        mkdir -p "$WORK/fakecurl"
        echo 'int not_curl;' >"$WORK/fakecurl/c.c"
        gcc -shared -fPIC -o "$WORK/fakecurl/libcurl.so.4" "$WORK/fakecurl/c.c"
        local before
        before=$(store_state)
        LD_LIBRARY_PATH=$WORK/fakecurl run_msb pull "$REG/library/alpine:latest"
        assert_eq status 125 "$RC"
        assert_contains message "libcurl" "$ERR"
        assert_eq "store" "$before" "$(store_state)"
        run_msb pull -q "$REG/library/alpine:latest"
        assert_eq "pull with the real libcurl" 0 "$RC"
        LD_LIBRARY_PATH=$WORK/fakecurl run_msb run --pull never "$REG/library/alpine:latest" -- echo fine
        assert_eq "run status" 0 "$RC"
        assert_eq "run output" fine "$OUT"
}

t_bad_references_are_clear() {
        local r
        for r in "Alpine" "alpine:" "a//b" "host:99999999/x" "alpine@sha256:abc"; do
                run_msb pull "$r"
                assert_eq "status of $r" 125 "$RC"
                assert_contains "message of $r" "image reference" "$ERR"
        done
        run_msb run --pull sometimes alpine -- true
        assert_contains "--pull" "expected always, missing or never" "$ERR"
}

t_auth_401_then_credentials() {
        # a second registry that wants a password (htpasswd, bcrypt)
        local port2 pid2 before
        port2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        python3 -W ignore -c 'import crypt; print("tester:" + crypt.crypt("secret", crypt.mksalt(crypt.METHOD_BLOWFISH)))' >"$WORK/htpasswd"
        mkdir -p "$WORK/registry2"
        sed -e "s|$WORK/registry\$|$WORK/registry2|" -e "s|addr: $REG|addr: 127.0.0.1:$port2|" "$WORK/registry.yml" >"$WORK/registry2.yml"
        printf 'auth:\n  htpasswd:\n    realm: msb-test\n    path: %s\n' "$WORK/htpasswd" >>"$WORK/registry2.yml"
        docker-registry serve "$WORK/registry2.yml" >"$WORK/registry2.log" 2>&1 &
        pid2=$!
        for _ in $(seq 100); do curl -s "http://127.0.0.1:$port2/v2/" >/dev/null && break; sleep 0.1; done
        skopeo copy -q --dest-tls-verify=false --dest-creds tester:secret "oci:$WORK/base:v1" \
                "docker://127.0.0.1:$port2/private/app:v1" >/dev/null
        before=$(store_state)
        run_msb pull "127.0.0.1:$port2/private/app:v1"
        local rc1=$RC err1=$ERR after401
        after401=$(store_state)
        export DOCKER_CONFIG=$WORK/docker
        local bad good pulled out_rc logout_rc after_logout
        echo wrong | "$MSB" login -u tester --password-stdin "127.0.0.1:$port2" >/dev/null 2>"$WORK/err" && bad=0 || bad=$?
        echo secret | "$MSB" login -u tester --password-stdin "127.0.0.1:$port2" >/dev/null 2>&1 && good=0 || good=$?
        "$MSB" pull -q "127.0.0.1:$port2/private/app:v1" >"$WORK/out" 2>"$WORK/err2" && RC=0 || RC=$?
        "$MSB" logout "127.0.0.1:$port2" >/dev/null && logout_rc=0 || logout_rc=$?
        "$MSB" rmi "127.0.0.1:$port2/private/app:v1" >/dev/null
        "$MSB" pull -q "127.0.0.1:$port2/private/app:v1" >/dev/null 2>&1 && after_logout=0 || after_logout=$?
        unset DOCKER_CONFIG
        kill $pid2; wait $pid2 2>/dev/null || true
        assert_eq "login with a wrong password" 125 "$bad"
        assert_contains "its message" "refused the credentials" "$(cat "$WORK/err")"
        assert_eq "login" 0 "$good"
        assert_eq "logout" 0 "$logout_rc"
        assert_eq "pull after logout" 125 "$after_logout"
        assert_eq "without credentials" 125 "$rc1"
        assert_contains "401 message" "user name and password" "$err1"
        assert_eq "nothing stored on 401" "$before" "$after401"
        assert_eq "with credentials" 0 "$RC"
}

t_hostile_layers_rejected_before_landing() {
        local kind before
        for kind in dotdot absolute symlink hardlink; do
                rm -rf "$WORK/h-$kind" /tmp/msb-pull-escape
                cp -a "$WORK/base" "$WORK/h-$kind"
                python3 "$ROOT/tests/e2e/oci-tool.py" hostile "$WORK/h-$kind" v1 "$kind"
                push "$WORK/h-$kind" v1 "test/hostile-$kind:v1"
                before=$(store_state)
                run_msb pull "$REG/test/hostile-$kind:v1"
                assert_eq "status ($kind)" 125 "$RC"
                assert_contains "message ($kind)" "rejected" "$ERR"
                [ ! -e /tmp/msb-pull-escape ] || fail "a $kind layer wrote outside the rootfs"
                assert_eq "store ($kind)" "$before" "$(store_state)"
        done
}

t_concurrent_pulls_of_one_image() {
        mkdir -p "$WORK/p1"; echo p >"$WORK/p1/p"
        "$ROOT/scripts/oci-layout.sh" "$WORK/par" v1 '{"Cmd":["/bin/sh"]}' "$(busybox_rootfs)" "$WORK/p1" >/dev/null
        push "$WORK/par" v1 test/parallel:v1
        local a b ra rb
        "$MSB" pull -q "$REG/test/parallel:v1" >"$WORK/a.out" 2>&1 & a=$!
        "$MSB" pull -q "$REG/test/parallel:v1" >"$WORK/b.out" 2>&1 & b=$!
        wait $a && ra=0 || ra=$?
        wait $b && rb=0 || rb=$?
        assert_eq "first pull" 0 "$ra"
        assert_eq "second pull" 0 "$rb"
        assert_eq "no work left over" 0 "$(ls -A "$STORE/tmp" | wc -l)"
        run_msb run --pull never "$REG/test/parallel:v1" -- cat /p
        assert_eq "runs" p "$OUT"
}

# ---- where credentials go: a registry front with bearer tokens
# (tests/e2e/auth-registry.py) before the suite's registry, a token server
# that logs every Authorization header, and a storage host on 127.0.0.2

b64() { printf %s "$1" | base64 -w0; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# auth_rig [--redirect-blobs] [--storage-asks]: (re)start the front; sets
# FRONT (its host:port) and RIGLOG.  Stopped when the test ends.
auth_rig() {
        [ -z "${RIGPID:-}" ] || { kill "$RIGPID"; wait "$RIGPID" 2>/dev/null || true; }
        RIGLOG=$WORK/rig.log
        rm -f "$WORK/rig.ports" "$RIGLOG"
        python3 "$ROOT/tests/e2e/auth-registry.py" "http://$REG" "$RIGLOG" "$WORK/rig.ports" tester:secret "$@" \
                >"$WORK/rig.err" 2>&1 &
        RIGPID=$!
        trap 'kill $RIGPID 2>/dev/null; wait $RIGPID 2>/dev/null || true' EXIT
        for _ in $(seq 100); do [ -e "$WORK/rig.ports" ] && break; sleep 0.1; done
        [ -e "$WORK/rig.ports" ] || fail "auth-registry.py did not start: $(cat "$WORK/rig.err")"
        local port
        read -r port _ <"$WORK/rig.ports"
        FRONT=127.0.0.1:$port
}
# docker_auths HOST USER:PASSWORD...: a docker config.json with these logins
docker_auths() {
        export DOCKER_CONFIG=$WORK/docker-auths
        mkdir -p "$DOCKER_CONFIG"
        local sep="" json='{"auths":{'
        while [ $# -gt 0 ]; do
                json+="$sep\"$1\":{\"auth\":\"$(b64 "$2")\"}"
                sep=,
                shift 2
        done
        echo "$json}}" >"$DOCKER_CONFIG/config.json"
}
# auth_image NAME: an image with a layer of its own (so a pull fetches
# blobs whatever ran before), pushed to the registry as test/NAME:v1
auth_image() {
        mkdir -p "$WORK/$1-layer"
        echo "$1" >"$WORK/$1-layer/$1"
        "$ROOT/scripts/oci-layout.sh" "$WORK/$1" v1 '{"Cmd":["/bin/sh"]}' "$(busybox_rootfs)" "$WORK/$1-layer" >/dev/null
        push "$WORK/$1" v1 "test/$1:v1"
}

t_bearer_token_with_credentials() {
        auth_image auth-bearer
        auth_rig
        docker_auths
        run_msb pull "$FRONT/test/auth-bearer:v1"
        assert_eq "without credentials" 125 "$RC"
        assert_contains "its message" "answered 401" "$ERR"
        echo secret | "$MSB" login -u tester --password-stdin "$FRONT" >/dev/null 2>"$WORK/err" ||
                fail "login through the token server: $(cat "$WORK/err")"
        run_msb pull -q "$FRONT/test/auth-bearer:v1"
        assert_eq "with credentials" 0 "$RC"
        local log
        log=$(cat "$RIGLOG")
        assert_contains "token request" \
                "token /token?scope=repository%3Atest%2Fauth-bearer%3Apull&service=msb-test Basic $(b64 tester:secret)" "$log"
        assert_contains "manifest with the token" "front /v2/test/auth-bearer/manifests/v1 Bearer " "$log"
        assert_contains "blob with the token" "front /v2/test/auth-bearer/blobs/sha256:" "$log"
}

# A mirror is another party: it gets the credentials stored for its own
# host, never the registry's.  The registry here is a loopback port nothing
# listens on, so only the mirror can answer.
t_mirror_gets_its_own_credentials() {
        auth_image auth-mirror
        auth_rig
        local upstream
        upstream=127.0.0.1:$(free_port)
        export MSB_CONFIG=$WORK/msb-config-mirror
        echo "mirror $upstream http://$FRONT" >"$MSB_CONFIG"
        docker_auths "$upstream" upstream:hunter2
        run_msb pull "$upstream/test/auth-mirror:v1"
        assert_eq "mirror with no credentials of its own" 125 "$RC"
        assert_not_contains "what the mirror and its realm saw" "Basic" "$(cat "$RIGLOG")"
        docker_auths "$upstream" upstream:hunter2 "$FRONT" tester:secret
        run_msb pull -q "$upstream/test/auth-mirror:v1"
        assert_eq "mirror with its own credentials" 0 "$RC"
        assert_contains "the mirror's credentials" "Basic $(b64 tester:secret)" "$(cat "$RIGLOG")"
        assert_not_contains "the registry's credentials" "$(b64 upstream:hunter2)" "$(cat "$RIGLOG")"
}

# Registries redirect blob GETs to storage: the token goes along to the
# registry's own origin, never to another host, and a 401 from that host
# does not make msb send its password to the realm the host names.
t_redirected_blob_gets_no_credentials() {
        auth_image auth-redirect
        auth_rig --redirect-blobs
        docker_auths "$FRONT" tester:secret
        run_msb pull -q "$FRONT/test/auth-redirect:v1"
        assert_eq "pull through redirects" 0 "$RC"
        local log
        log=$(cat "$RIGLOG")
        assert_contains "same-origin hop" "front /same/v2/test/auth-redirect/blobs/sha256:" "$log"
        assert_eq "same-origin hops without the token" "" "$(grep '^front /same/' "$RIGLOG" | grep -v ' Bearer ' || true)"
        assert_contains "storage host reached" "blobs /v2/test/auth-redirect/blobs/sha256:" "$log"
        assert_eq "storage requests with credentials" "" "$(grep '^blobs ' "$RIGLOG" | grep -v ' -$' || true)"
        auth_image auth-storage
        auth_rig --redirect-blobs --storage-asks
        docker_auths "$FRONT" tester:secret
        run_msb pull "$FRONT/test/auth-storage:v1"
        assert_eq "storage that wants a login" 125 "$RC"
        assert_contains "its message" "401" "$ERR"
        assert_eq "what the storage host and its realm got" "" "$(grep '^blobs ' "$RIGLOG" | grep -v ' -$' || true)"
}

run_tests
