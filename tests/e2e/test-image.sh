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
