#!/usr/bin/env bash
# End-to-end: msb image import from OCI layouts, good and hostile.
. "$(dirname "$0")/lib.sh"

busybox_rootfs() {
        local d
        d=$(cat "$DATA/images/refs/busybox%3Alatest")
        echo "$DATA/images/rootfs/${d#sha256:}"
}

store_state() {
        echo "rootfs=$(ls "$DATA/images/rootfs" | wc -l) tmp=$(ls -A "$DATA/images/tmp" | wc -l) refs=$(ls "$DATA/images/refs" | sort | tr '\n' ' ')"
}

mini_layout() { # mini_layout OUT TAG [CONTENT] -> a one-file image
        rm -rf "$WORK/mini"
        mkdir -p "$WORK/mini"
        echo "${3:-mini}" >"$WORK/mini/hello.txt"
        "$ROOT/scripts/oci-layout.sh" "$1" "$2" '{"Cmd":["/hello.txt"]}' "$WORK/mini"
}

t_import_errors_are_clear() {
        run_msb image import /nonexistent-layout msbtest/x
        assert_eq status 125 "$RC"
        assert_contains message "/nonexistent-layout" "$ERR"
        mkdir -p "$WORK/notlayout"
        run_msb image import "$WORK/notlayout" msbtest/x
        assert_contains message "not an OCI image layout" "$ERR"
        mini_layout "$WORK/l1" one
        run_msb image import "$WORK/l1:two" msbtest/x
        assert_eq status 125 "$RC"
        assert_contains message "no manifest tagged 'two' (tags: one)" "$ERR"
        run_msb image import "$WORK/l1" "Bad/Name"
        assert_contains message "not allowed" "$ERR"
}

t_import_corrupt_blob_stores_nothing() {
        local before after blob
        # content never seen before, so the store cannot already hold it
        mini_layout "$WORK/l2" v1 "corrupt-$RANDOM-$RANDOM-$$"
        blob=$(grep -o '"layers":\[{[^]]*' "$WORK/l2/blobs/sha256/"* | grep -o 'sha256:[0-9a-f]*' | head -1)
        blob=${blob#sha256:}
        printf 'X' | dd of="$WORK/l2/blobs/sha256/$blob" bs=1 seek=20 conv=notrunc status=none
        before=$(store_state)
        run_msb image import "$WORK/l2" msbtest/corrupt
        assert_eq status 125 "$RC"
        assert_contains message "does not match its digest" "$ERR"
        after=$(store_state)
        assert_eq "store" "$before" "$after"
}

t_import_hostile_layer_rejected() {
        local before after
        mkdir -p "$WORK/h/in"
        echo pwned >"$WORK/h/escape.txt"
        # GNU tar -P keeps "../" in member names
        (cd "$WORK/h/in" && tar -P -cf "$WORK/h/layer.tar" ../escape.txt)
        rm "$WORK/h/escape.txt"
        mini_layout "$WORK/l3" v1 "hostile-$RANDOM-$$"
        # swap the layer for the hostile one, fixing digests in manifest
        local old new size mf mfnew
        old=$(grep -o '"layers":\[{[^]]*' "$WORK/l3/blobs/sha256/"* 2>/dev/null | grep -o 'sha256:[0-9a-f]*' | head -1)
        new=sha256:$(sha256sum "$WORK/h/layer.tar" | cut -d' ' -f1)
        size=$(stat -c %s "$WORK/h/layer.tar")
        cp "$WORK/h/layer.tar" "$WORK/l3/blobs/sha256/${new#sha256:}"
        mf=$(grep -o '"digest":"sha256:[0-9a-f]*"' "$WORK/l3/index.json" | grep -o 'sha256:[0-9a-f]*')
        sed -e "s/$old/$new/" -e "s/\"size\":[0-9]*}]}/\"size\":$size}]}/" "$WORK/l3/blobs/sha256/${mf#sha256:}" >"$WORK/h/mf"
        mfnew=sha256:$(sha256sum "$WORK/h/mf" | cut -d' ' -f1)
        cp "$WORK/h/mf" "$WORK/l3/blobs/sha256/${mfnew#sha256:}"
        sed -i -e "s/$mf/$mfnew/" -e "s/\"size\":[0-9]*,\"annotations\"/\"size\":$(stat -c %s "$WORK/h/mf"),\"annotations\"/" "$WORK/l3/index.json"
        before=$(store_state)
        run_msb image import "$WORK/l3" msbtest/hostile
        assert_eq status 125 "$RC"
        assert_contains message "rejected" "$ERR"
        assert_contains message "'..'" "$ERR"
        [ ! -e "$DATA/images/escape.txt" ] && [ ! -e "$DATA/images/tmp/escape.txt" ] || fail "layer wrote outside"
        after=$(store_state)
        # blobs may have been stored (they are verified content); no rootfs, no ref, no tmp
        assert_eq "store" "$before" "$after"
}

t_import_is_idempotent_and_runs() {
        mini_layout "$WORK/l4" v1
        run_msb image import "$WORK/l4:v1" msbtest/mini:v1
        assert_eq status 0 "$RC"
        local before
        before=$(store_state)
        run_msb image import "$WORK/l4:v1" msbtest/mini:v1
        assert_eq status 0 "$RC"
        assert_eq "store after re-import" "$before" "$(store_state)"
}

# An image's device nodes, fifos, setuid bits and owners never reach the
# host: the host copy is a plain file of the store's owner, the guest sees
# the image's view (served from metadata), and setuid still works inside.
t_image_special_files_are_metadata_only() {
        local l=$WORK/special rootfs d bad
        "$MSB" rmi msbtest/special:v1 >/dev/null 2>&1 || true
        mkdir -p "$WORK/spbase" && cp -a "$(busybox_rootfs)/." "$WORK/spbase/"
        "$ROOT/scripts/oci-layout.sh" "$l" v1 '{"Cmd":["/bin/sh"]}' "$WORK/spbase"
        SUID_BIN=$ROOT/build/featurecheck python3 "$ROOT/tests/e2e/oci-tool.py" hostile "$l" v1 special
        run_msb image import "$l:v1" msbtest/special:v1
        assert_eq "import status" 0 "$RC"
        d=$(cat "$DATA/images/refs/msbtest%2Fspecial%3Av1")
        rootfs=$DATA/images/rootfs/${d#sha256:}
        # host: no device, fifo or setuid/setgid file; everything ours
        bad=$(find "$rootfs" \( -type b -o -type c -o -type p -o -type s -o -perm /6000 -o ! -user "$(id -u)" \) -print)
        assert_eq "special files or foreign owners on the host" "" "$bad"
        # the store is not walkable by other users
        assert_eq "data dir mode" 700 "$(stat -c %a "$DATA")"
        assert_eq "store mode" 700 "$(stat -c %a "$DATA/images")"
        if runuser -u nobody -- cat "$rootfs/bin/plaincheck" >/dev/null 2>&1; then
                fail "nobody can read an unpacked root"
        fi
        # guest: the image's view
        run_msb run msbtest/special:v1 -- sh -c 'ls -ln /imgdev | sort; stat -c "%A %u:%g %n" /home/u /home/u/own /bin/suidcheck'
        assert_eq "guest status" 0 "$RC"
        OUT=$(echo "$OUT" | tr -s ' ')
        assert_contains "block device" "brw-rw---- 1 0 6 8, 0 Jan 1 1970 sda" "$OUT"
        assert_contains "char device" "crw-rw-rw- 1 0 0 1, 5 Jan 1 1970 zero" "$OUT"
        assert_contains "fifo" "prw-r--r--" "$OUT"
        assert_contains "owned dir" "drwx------ 1000:1000 /home/u" "$OUT"
        assert_contains "owned file" "-rw------- 1000:1000 /home/u/own" "$OUT"
        assert_contains "setuid file" "-rwsr-xr-x 0:0 /bin/suidcheck" "$OUT"
        # setuid works in the guest, and only where the image set it
        run_msb run -u 1000 msbtest/special:v1 -- sh -c '/bin/suidcheck ids; /bin/plaincheck ids'
        assert_eq "setuid run status" 0 "$RC"
        assert_eq "setuid in the guest" "uid=1000 euid=0
uid=1000 euid=1000" "$OUT"
        "$MSB" rmi msbtest/special:v1 >/dev/null
}

# msb load reads only regular files of an archive: a char device posing as
# config.json (endless zeros) or a fifo posing as a layer (a hang with the
# store locked) fail at once and leave nothing behind.
t_load_refuses_special_files() {
        local kind before
        before=$(store_state)
        for kind in chardev fifo; do
                python3 "$ROOT/tests/e2e/oci-tool.py" docker-special "$WORK/$kind.tar" "$kind"
                "$MSB" load -i "$WORK/$kind.tar" >"$WORK/out" 2>"$WORK/err" &
                local pid=$! waited=0
                while kill -0 $pid 2>/dev/null && [ $waited -lt 30 ]; do sleep 0.5; waited=$((waited + 1)); done
                if kill -0 $pid 2>/dev/null; then
                        kill -9 $pid
                        wait $pid 2>/dev/null
                        fail "$kind: msb load still running after 15 s"
                fi
                wait $pid && RC=0 || RC=$?
                assert_eq "$kind: status" 125 "$RC"
                assert_contains "$kind: message" "archive entry" "$(cat "$WORK/err")"
        done
        assert_eq "store" "$before" "$(store_state)"
}

# The unpack budget from msb's config file: exceeding it fails the import,
# names the layer and the setting, and keeps nothing.
t_unpack_budget_from_config() {
        local before
        mkdir -p "$WORK/big"
        head -c 3000000 /dev/urandom >"$WORK/big/blob"
        "$ROOT/scripts/oci-layout.sh" "$WORK/lbig" v1 '{}' "$WORK/big"
        printf 'unpack-max-bytes 2M\n' >"$WORK/budget.conf"
        before=$(store_state)
        MSB_CONFIG=$WORK/budget.conf run_msb image import "$WORK/lbig:v1" msbtest/big:v1
        assert_eq status 125 "$RC"
        assert_contains "names the layer" "layer sha256:" "$ERR"
        assert_contains "names the setting" "unpack-max-bytes" "$ERR"
        assert_eq "store" "$before" "$(store_state)"
        printf 'unpack-max-bytes lots\n' >"$WORK/budget.conf"
        MSB_CONFIG=$WORK/budget.conf run_msb image import "$WORK/lbig:v1" msbtest/big:v1
        assert_eq "bad setting status" 125 "$RC"
        assert_contains "bad setting" "line 1: unpack-max-bytes 'lots' is not a size" "$ERR"
}

# rmi never collects what another name still uses, even when that name
# cannot be read: the collection stops instead.
t_rmi_keeps_blobs_when_a_ref_is_unreadable() {
        local layer
        # a clean start, whatever an interrupted earlier run left
        rm -rf "$DATA/images/refs/msbtest%2Fgc-a%3Av1" "$DATA/images/refs/msbtest%2Fgc-b%3Av1"
        mini_layout "$WORK/lgc" v1 "gc-$RANDOM-$$"
        run_msb image import "$WORK/lgc:v1" msbtest/gc-a:v1
        assert_eq status 0 "$RC"
        run_msb image import "$WORK/lgc:v1" msbtest/gc-b:v1
        layer=$(ls "$WORK/lgc/blobs/sha256" | while read -r b; do [ -e "$DATA/images/blobs/sha256/$b" ] && echo "$b"; done | sort)
        # gc-b's name becomes unreadable (a directory where its file was)
        mv "$DATA/images/refs/msbtest%2Fgc-b%3Av1" "$WORK/ref-b"
        mkdir "$DATA/images/refs/msbtest%2Fgc-b%3Av1"
        run_msb rmi msbtest/gc-a:v1
        assert_eq "rmi status" 0 "$RC"
        for b in $layer; do
                [ -e "$DATA/images/blobs/sha256/$b" ] || fail "blob $b of msbtest/gc-b was collected"
        done
        rmdir "$DATA/images/refs/msbtest%2Fgc-b%3Av1"
        mv "$WORK/ref-b" "$DATA/images/refs/msbtest%2Fgc-b%3Av1"
        run_msb rmi msbtest/gc-b:v1
        assert_eq "rmi b status" 0 "$RC"
        for b in $layer; do
                [ ! -e "$DATA/images/blobs/sha256/$b" ] || fail "blob $b left after both names went"
        done
}

# msb finds argv[0] on the image's PATH before the VM starts; what runs must
# be what execvp in the guest would pick
t_path_search_matches_execvp() {
        local l2=$WORK/pathlayer
        rm -rf "$l2"
        mkdir -p "$l2/usr/local/bin" "$l2/usr/bin" "$l2/bin" "$l2/opt/tools"
        printf 'echo ran-by-sh\n' >"$l2/usr/local/bin/noshebang"
        printf '#!/bin/sh\necho first\n' >"$l2/usr/local/bin/dup"
        printf '#!/bin/sh\necho second\n' >"$l2/usr/bin/dup"
        printf '#!/bin/sh\necho not-me\n' >"$l2/usr/local/bin/notexec"
        printf '#!/bin/sh\necho bin-notexec\n' >"$l2/bin/notexec"
        printf '#!/bin/sh\necho tool\n' >"$l2/opt/tools/tool"
        chmod 755 "$l2/usr/local/bin/noshebang" "$l2/usr/local/bin/dup" "$l2/usr/bin/dup" "$l2/bin/notexec" \
                "$l2/opt/tools/tool"
        chmod 644 "$l2/usr/local/bin/notexec"
        "$ROOT/scripts/oci-layout.sh" "$WORK/lp" v1 '{"Cmd":["/bin/sh"]}' "$(busybox_rootfs)" "$l2" >/dev/null
        run_msb image import "$WORK/lp:v1" msbtest/path:v1
        assert_eq import 0 "$RC"
        run_msb run msbtest/path:v1 -- noshebang
        assert_eq "script without #! runs with sh" ran-by-sh "$OUT"
        run_msb run msbtest/path:v1 -- dup
        assert_eq "first PATH entry wins" first "$OUT"
        run_msb run msbtest/path:v1 -- notexec
        assert_eq "a file without x is passed over" bin-notexec "$OUT"
        run_msb run -e PATH=/opt/tools:/bin msbtest/path:v1 -- tool
        assert_eq "the command's PATH" tool "$OUT"
        run_msb run -e PATH=/opt/tools:/bin msbtest/path:v1 -- dup
        assert_eq "not on that PATH" 127 "$RC"
        # a volume reached through a symlinked PATH entry is still on PATH:
        # /usr/local/sbin -> /opt/vol in the image, a volume at /opt/vol
        local l3=$WORK/pathlayer3
        rm -rf "$l3"
        mkdir -p "$l3/usr/local" "$l3/opt/vol" "$WORK/volbin"
        ln -s ../../opt/vol "$l3/usr/local/sbin"
        printf '#!/bin/sh\necho through-the-link\n' >"$WORK/volbin/true"
        chmod 755 "$WORK/volbin/true"
        "$ROOT/scripts/oci-layout.sh" "$WORK/lp3" v1 '{"Cmd":["/bin/sh"]}' "$(busybox_rootfs)" "$l3" >/dev/null
        run_msb image import "$WORK/lp3:v1" msbtest/path3:v1
        assert_eq import 0 "$RC"
        run_msb run -v "$WORK/volbin:/opt/vol:ro" msbtest/path3:v1 -- true
        assert_eq "volume behind a symlinked PATH entry" through-the-link "$OUT"
}

# A dynamically linked program (the host's own echo, with its loader and
# libc): msb finds its interpreter and libraries and agentd reads them ahead;
# it must run as it would without that
t_dynamic_executable_runs() {
        local l=$WORK/dynlayer lib
        rm -rf "$l"
        mkdir -p "$l/usr/local/bin" "$l/lib64" "$l/lib/x86_64-linux-gnu"
        cp /bin/echo "$l/usr/local/bin/hostecho"
        cp "$(readlink -f /lib64/ld-linux-x86-64.so.2)" "$l/lib64/ld-linux-x86-64.so.2"
        for lib in $(ldd /bin/echo | awk '$3 ~ /^\// {print $3}'); do
                cp "$(readlink -f "$lib")" "$l/lib/x86_64-linux-gnu/$(basename "$lib")"
        done
        "$ROOT/scripts/oci-layout.sh" "$WORK/ldyn" v1 '{"Cmd":["/bin/sh"]}' "$(busybox_rootfs)" "$l" >/dev/null
        run_msb image import "$WORK/ldyn:v1" msbtest/dyn:v1
        assert_eq import 0 "$RC"
        run_msb run msbtest/dyn:v1 -- hostecho dynamic works
        assert_eq status 0 "$RC"
        assert_eq stdout "dynamic works" "$OUT"
        # and through a volume on its library directory, which msb then
        # leaves alone: the loader finds what the guest sees
        mkdir -p "$WORK/emptylib"
        run_msb run -v "$WORK/emptylib:/lib/x86_64-linux-gnu:ro" msbtest/dyn:v1 -- hostecho x
        assert_eq "libc hidden by a volume" 127 "$RC"
}

t_umoci_layout_imports_and_boots() {
        command -v umoci >/dev/null || fail "umoci is not installed (setup.sh test installs it)"
        local L=$WORK/umoci
        umoci init --layout "$L"
        umoci new --image "$L:u1"
        umoci unpack --image "$L:u1" "$WORK/bundle" >/dev/null
        cp -a "$(busybox_rootfs)/." "$WORK/bundle/rootfs/"
        echo from-umoci >"$WORK/bundle/rootfs/marker"
        umoci repack --image "$L:u1" "$WORK/bundle" >/dev/null
        umoci config --image "$L:u1" --config.cmd /bin/cat --config.cmd /marker --config.env GREETING=umoci
        run_msb image import "$L:u1" msbtest/umoci:u1
        assert_eq status 0 "$RC"
        run_msb run msbtest/umoci:u1
        assert_eq status 0 "$RC"
        assert_eq stdout from-umoci "$OUT"
        run_msb run msbtest/umoci:u1 sh -c 'echo $GREETING'
        assert_eq env umoci "$OUT"
}

run_tests
