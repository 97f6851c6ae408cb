#!/bin/bash
# End-to-end: volumes as the seed (microsandbox PR #504) describes them, files
# and directories, rw and ro, and its reviewer's three findings as regression
# tests.  The seed's runs are verbatim: `alpine` comes from a local registry
# through a docker.io mirror (tests/e2e/registry.sh).
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/e2e/registry.sh"

V=$WORK/vols
fresh() { rm -rf "$V"; mkdir -p "$V"; }
# path, type, mode, owner, size, content hash of everything under a tree
host_state() {
        (cd "$1" && find . -printf '%p %y %m %u:%g %s\n' | sort
         find . -type f -exec sha256sum {} + | sort -k2)
}

t_seed_integration_read() {
        fresh
        echo "hello" >"$V/test.txt"
        run_msb run --volume "$V/test.txt:/root/test.txt" alpine -- cat /root/test.txt
        assert_eq status 0 "$RC"
        assert_eq output hello "$OUT"
}

t_seed_integration_write_back() {
        fresh
        echo "original" >"$V/test.txt"
        run_msb run --volume "$V/test.txt:/root/test.txt" alpine -- sh -c 'echo "modified" > /root/test.txt'
        assert_eq status 0 "$RC"
        assert_eq "host file" modified "$(cat "$V/test.txt")"
}

t_seed_security_only_mounted_file_visible() {
        fresh
        echo "secret" >"$V/mount-test.txt"
        echo "adjacent-$$-marker" >"$V/adjacent-file.txt"
        run_msb run --volume "$V/mount-test.txt:/root/test.txt" alpine -- sh -c '
                cat /proc/mounts /proc/self/mountinfo
                echo ---
                find / -xdev -name "adjacent*" 2>/dev/null
                find /root /etc /tmp /mnt /run 2>/dev/null | grep -i adjacent
                # busybox is one binary under ~400 names: grep where files are small
                grep -rl "adjacent-'$$'-marker" /etc /root /tmp /home /run /var 2>/dev/null
                for m in $(awk "{print \$2}" /proc/mounts); do ls -a "$m" 2>/dev/null; done | grep -i adjacent
                true'
        assert_eq status 0 "$RC"
        assert_not_contains "guest view" "adjacent" "$OUT"
        # nothing in the mount tables names the host side
        assert_not_contains "mount tables" "$V" "$OUT"
        assert_not_contains "mount tables" "mount-test" "$OUT"
}

t_seed_security_dotdot_reaches_only_guest_files() {
        fresh
        echo "secret" >"$V/mount-test.txt"
        mkdir "$V/d"
        echo host-only >"$V/host-only.txt"
        run_msb run --volume "$V/mount-test.txt:/root/test.txt" -v "$V/d:/data" alpine -- sh -c '
                cat /root/test.txt/../../etc/hostname 2>&1 | head -1
                ls /data/../.. | tr "\n" " "; echo
                ls / | tr "\n" " "; echo
                cd /data && cd .. && cd .. && cd .. && ls | tr "\n" " "; echo
                ls /data/.. | grep -c host-only'
        assert_contains "through the file" "Not a directory" "$OUT"
        local lines
        mapfile -t lines <<<"$OUT"
        assert_eq "/data/../.. is the guest root" "${lines[2]}" "${lines[1]}"
        assert_eq "cd .. from /data is the guest root" "${lines[2]}" "${lines[3]}"
        assert_eq "host-only.txt never seen" 0 "${lines[4]}"
}

t_seed_security_guest_chmod_leaves_host_mode() {
        fresh
        echo "secret" >"$V/mount-test.txt"
        chmod 600 "$V/mount-test.txt"
        run_msb run --volume "$V/mount-test.txt:/root/test.txt" alpine -- sh -c 'chmod 777 /root/test.txt; chown 123:456 /root/test.txt; chmod u+s /root/test.txt; stat -c "%a %u:%g" /root/test.txt'
        assert_eq status 0 "$RC"
        assert_eq "guest view" "4777 123:456" "$OUT"
        assert_eq "host mode" "600 0:0" "$(stat -c '%a %u:%g' "$V/mount-test.txt")"
}

t_review_no_stale_file_from_previous_run() {
        fresh
        mkdir "$V/cfg"
        echo "v1-secret-$$" >"$V/cfg/config-v1.toml"
        echo "v2" >"$V/cfg/config-v2.toml"
        run_msb run -v "$V/cfg/config-v1.toml:/etc/app/config.toml" alpine -- cat /etc/app/config.toml
        assert_eq "first run" "v1-secret-$$" "$OUT"
        run_msb run -v "$V/cfg/config-v2.toml:/etc/app/config.toml" alpine -- sh -c '
                cat /etc/app/config.toml; ls -a /etc/app | tr "\n" " "; echo
                grep -rl "v1-secret" /etc /root /tmp /run /var /home 2>/dev/null; true'
        assert_eq status 0 "$RC"
        assert_eq "second run" "v2
. .. config.toml " "$OUT"
}

t_review_no_tag_collision() {
        fresh
        echo app >"$V/a"
        echo under >"$V/b"
        run_msb run -v "$V/a:/etc/app" -v "$V/b:/etc_app" alpine -- sh -c 'cat /etc/app /etc_app'
        assert_eq status 0 "$RC"
        assert_eq output "app
under" "$OUT"
        # the same for directories
        mkdir "$V/da" "$V/db"
        echo in-da >"$V/da/f"
        echo in-db >"$V/db/f"
        run_msb run -v "$V/da:/etc/app" -v "$V/db:/etc_app" alpine -- sh -c 'cat /etc/app/f /etc_app/f'
        assert_eq output "in-da
in-db" "$OUT"
}

t_review_no_staging_left_visible() {
        fresh
        echo x >"$V/f"
        mkdir "$V/d"
        run_msb run -v "$V/f:/etc/one.conf" -v "$V/d:/data" alpine -- sh -c '
                awk "{print \$2}" /proc/mounts | sort | tr "\n" " "; echo
                awk "{print \$4}" /proc/self/mountinfo | sort -u | tr "\n" " "; echo
                ls -a /mnt 2>&1; true'
        assert_eq status 0 "$RC"
        local lines
        mapfile -t lines <<<"$OUT"
        # exactly the guest paths asked for (plus the system mounts)
        assert_eq "mount points" "/ /data /dev /dev/pts /dev/shm /etc/one.conf /proc /run /sys /tmp " "${lines[0]}"
        # the volumes' roots are entries of one device: no host path, no staging dir
        assert_not_contains "mount roots" "$V" "${lines[1]}"
        assert_not_contains "mount roots" "volumes" "${lines[1]}"
        assert_contains "no /mnt" "No such file" "${lines[2]}"
}

t_ro_file_and_directory_host_byte_identical() {
        fresh
        mkdir -p "$V/d/sub"
        echo dir-file >"$V/d/f"
        echo sub >"$V/d/sub/g"
        echo single >"$V/single.txt"
        chmod 640 "$V/single.txt"
        local before after
        before=$(host_state "$V")
        run_msb run -v "$V/d:/data:ro" -v "$V/single.txt:/etc/single.txt:ro" alpine -- sh -c '
                n=0
                try() { if "$@" 2>/dev/null; then echo "WROTE: $*"; n=$((n+1)); fi; }
                for f in /data/f /etc/single.txt; do
                        try sh -c "echo x > $f"
                        try sh -c "echo x >> $f"
                        try truncate -s 0 $f
                        try chmod 777 $f
                        try chown 1:1 $f
                        try rm -f $f
                        try sh -c "echo y > /tmp/y && mv /tmp/y $f"
                        try touch -d 2001-01-01 $f
                done
                try mv /data/sub/g /data/moved
                try rm -r /data/sub
                try mkdir /data/new
                try ln -s x /data/link
                mount -o remount,rw /data && echo remounted-dir
                mount -o remount,rw /etc/single.txt && echo remounted-file
                try sh -c "echo x >> /data/f"
                try sh -c "echo x > /data/sub/g"
                try sh -c "echo x >> /etc/single.txt"
                try truncate -s 0 /etc/single.txt
                try touch /data/new2
                try chmod 4755 /data/f
                cat /data/f /etc/single.txt
                exit $n'
        echo "$OUT" | grep WROTE >&2 || true
        assert_eq status 0 "$RC"
        assert_contains "remount" "remounted-dir" "$OUT"
        assert_contains "remount" "remounted-file" "$OUT"
        assert_contains "still readable" "dir-file
single" "$OUT"
        after=$(host_state "$V")
        assert_eq "host tree" "$before" "$after"
}

t_32_volumes_files_and_dirs() {
        fresh
        local args=() i
        for i in $(seq 1 16); do
                mkdir "$V/d$i"; echo "dir$i" >"$V/d$i/f"
                echo "file$i" >"$V/f$i"
                args+=(-v "$V/d$i:/vol/d$i" -v "$V/f$i:/vol/f$i.txt")
        done
        run_msb run "${args[@]}" alpine -- sh -c 'for i in $(seq 1 16); do cat /vol/d$i/f /vol/f$i.txt; done | tr "\n" " "; echo x > /vol/d16/new'
        assert_eq status 0 "$RC"
        local want=""
        for i in $(seq 1 16); do want+="dir$i file$i "; done
        assert_eq "all 32 volumes" "$want" "$OUT"
        assert_eq "write reached the host" x "$(cat "$V/d16/new")"
        # one past the documented limit is refused up front
        run_msb run "${args[@]}" -v "$V/f1:/vol/extra" alpine -- true
        assert_eq "33 volumes" 125 "$RC"
        assert_contains message "at most 32 volumes" "$ERR"
}

t_file_on_another_filesystem() {
        # tmpfs (/dev/shm) against msb's runtime dir on another file system
        local f
        f=$(mktemp /dev/shm/msb-vol.XXXXXX)
        echo on-tmpfs >"$f"
        run_msb run -v "$f:/etc/t.txt" alpine -- sh -c 'cat /etc/t.txt; echo appended >> /etc/t.txt'
        local content
        content=$(cat "$f")
        rm -f "$f"
        assert_eq status 0 "$RC"
        assert_eq output on-tmpfs "$OUT"
        assert_eq "host file" "on-tmpfs
appended" "$content"
}

t_spaces_unicode_relative_and_symlinked_host_paths() {
        fresh
        mkdir -p "$V/dir with space/ünï"
        echo spaced >"$V/dir with space/ünï/fïle one.txt"
        ln -s "dir with space/ünï/fïle one.txt" "$V/link"
        (cd "$V" && "$MSB" run -v "./dir with space/ünï/fïle one.txt:/data/ö p.txt" -v "link:/etc/l.txt" alpine -- \
                sh -c 'cat "/data/ö p.txt" /etc/l.txt; echo x >> /etc/l.txt') >"$WORK/out" 2>"$WORK/err" && RC=0 || RC=$?
        assert_eq status 0 "$RC"
        assert_eq output "spaced
spaced" "$(cat "$WORK/out")"
        # the symlink was resolved at start: the write went to its target
        assert_eq "symlink target written" "spaced
x" "$(cat "$V/dir with space/ünï/fïle one.txt")"
        [ -L "$V/link" ] || fail "the host symlink itself was replaced"
}

t_readable_not_owned_file_as_user() {
        # a root-owned file the invoking user may read but not write, and a
        # root-owned 0600 file mounted by root
        local u d
        u=$(mktemp -d /tmp/msb-vol-user.XXXXXX)
        mkdir -p "$u/bin" "$u/home"
        cp "$ROOT/build/msb" "$ROOT/build/msb-fsd" "$ROOT/build/msb-netd" "$ROOT/build/agentd" "$u/bin/"
        echo root-owned >"$u/ro-by-root.txt"
        chmod 644 "$u/ro-by-root.txt"
        chown -R nobody:nogroup "$u/home"
        chmod 755 "$u"
        runuser -u nobody -- env MSB_HOME="$u/home" "$u/bin/msb" run --accel tcg \
                -v "$u/ro-by-root.txt:/etc/r.txt" busybox -- sh -c 'cat /etc/r.txt; echo x >> /etc/r.txt && echo WROTE; true' \
                >"$WORK/out" 2>"$WORK/err" && RC=0 || RC=$?
        local content
        content=$(cat "$u/ro-by-root.txt")
        rm -rf "$u"
        assert_eq status 0 "$RC"
        assert_eq output root-owned "$(cat "$WORK/out")"
        assert_eq "host file" root-owned "$content"
        fresh
        echo private >"$V/p"
        chmod 600 "$V/p"
        run_msb run -v "$V/p:/etc/p" alpine -- cat /etc/p
        assert_eq "root-owned 0600 by root" private "$OUT"
}

t_nested_parent_first() {
        fresh
        mkdir -p "$V/top"
        echo inner >"$V/inner.txt"
        # given child first on purpose: msb orders them
        run_msb run -v "$V/inner.txt:/data/sub/inner.txt" -v "$V/top:/data" alpine -- cat /data/sub/inner.txt
        assert_eq status 0 "$RC"
        assert_eq output inner "$OUT"
        # the mount point was made inside the rw parent volume, on the host
        [ -f "$V/top/sub/inner.txt" ] || fail "mount point not created in the parent volume"
}

t_host_replaces_file_by_rename() {
        fresh
        echo one >"$V/c.conf"
        ( sleep 3; echo two >"$V/c.new"; mv "$V/c.new" "$V/c.conf" ) &
        run_msb run -v "$V/c.conf:/etc/c.conf" alpine -- sh -c 'cat /etc/c.conf; sleep 6; cat /etc/c.conf'
        wait
        assert_eq status 0 "$RC"
        assert_eq output "one
two" "$OUT"
}

t_bad_volumes_clear_errors_no_leaks() {
        fresh
        echo f >"$V/f"
        mkdir "$V/d"
        python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$V/sock"
        local before after
        before=$(leak_snapshot)
        check() { # check EXPECTED_SUBSTRING ARGS...
                local want=$1
                shift
                run_msb run "$@" alpine true
                assert_eq "status of $*" 125 "$RC"
                assert_contains "message of $*" "$want" "$ERR"
        }
        check "does not exist" -v "$V/missing:/x"
        check "neither a regular file nor a directory" -v "$V/sock:/x"
        check "neither a regular file nor a directory" -v /dev/null:/x
        check "must be absolute" -v "$V/f:relative"
        check "guest path" -v "$V/d:/"
        check "must not be under /proc" -v "$V/f:/proc/x"
        check "must not be under /proc" -v "$V/d:/sys"
        check "must not be under /proc" -v "$V/f:/dev/x"
        check "must not contain '..'" -v "$V/f:/a/../b"
        check "already used" -v "$V/f:/x" -v "$V/d:/x/"
        check "unknown option 'rx'" -v "$V/f:/x:rx"
        check "host path is empty" -v ":/x"
        check "guest path is empty" -v "$V/f:"
        check "a directory cannot be mounted on it" -v "$V/d:/etc/passwd"
        check "a file cannot be mounted on it" -v "$V/f:/etc"
        check "cannot share a single file" --fs-backend virtiofsd -v "$V/f:/x"
        after=$(leak_snapshot)
        assert_eq "host state" "$before" "$after"
}

# Every host directory can be a share: msb-fsd builds its new root on a
# tmpfs over /tmp, and a share of /tmp itself once failed ("cannot reopen a
# share inside the new root"); "/" showed msb-fsd's tmpfs at /tmp; mounts
# below a share are seen through it.
t_any_host_dir_is_a_share() {
        fresh
        local m=$V/m tag=msb-share-$$
        mkdir -p "$m/sub"
        mount -t tmpfs -o size=1m msb-test "$m/sub"
        echo below >"$m/sub/f"
        echo "$tag" >"/tmp/$tag"
        echo "$tag" >"/run/$tag"
        run_msb run --no-pool -v /tmp:/t:ro -v /:/r:ro -v /run:/u:ro -v "$m:/m:ro" busybox -- sh -c \
                "cat /t/$tag /r/tmp/$tag /u/$tag /r/run/$tag /m/sub/f; cat /r/etc/hostname"
        umount "$m/sub"
        rm -f "/tmp/$tag" "/run/$tag"
        assert_eq status 0 "$RC"
        assert_eq output "$(printf '%s\n%s\n%s\n%s\nbelow\n%s' "$tag" "$tag" "$tag" "$tag" "$(cat /etc/hostname)")" "$OUT"
        # the same through a warm VM's server, where one is running
        run_msb run -v /tmp:/t busybox -- ls -d /t/.
        assert_eq "pooled status" 0 "$RC"
}

t_ctrl_c_and_sigkill_leave_nothing() {
        fresh
        echo f >"$V/f"
        mkdir "$V/d"
        local before after bg
        before=$(leak_snapshot)
        "$MSB" run -v "$V/f:/etc/f" -v "$V/d:/d" alpine -- sh -c 'echo ready; sleep 100' >"$WORK/bg.out" 2>&1 &
        bg=$!
        for _ in $(seq 300); do grep -q ready "$WORK/bg.out" && break; sleep 0.1; done
        kill -INT $bg; sleep 1; kill -INT $bg 2>/dev/null || true
        wait $bg || true
        after=$(leak_snapshot)
        assert_eq "after Ctrl-C" "$before" "$after"
        "$MSB" run -v "$V/f:/etc/f" -v "$V/d:/d" alpine -- sh -c 'echo ready; sleep 100' >"$WORK/bg.out" 2>&1 &
        bg=$!
        for _ in $(seq 300); do grep -q ready "$WORK/bg.out" && break; sleep 0.1; done
        kill -KILL $bg
        wait $bg 2>/dev/null || true
        for _ in $(seq 50); do pgrep -f "msb-fsd.*$V" >/dev/null || break; sleep 0.1; done
        ! pgrep -f "msb-fsd.*$V" >/dev/null || fail "the fs server outlived a SIGKILLed msb"
        run_msb run alpine -- true
        after=$(leak_snapshot)
        assert_eq "after SIGKILL and one more run" "$before" "$after"
}

run_tests
