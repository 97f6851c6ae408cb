#!/bin/bash
# End-to-end: msb-fsd, our virtio-fs server, seen from a real guest and
# checked on the host: POSIX behaviour, read-only enforced on the host,
# guest ownership kept off host inodes, no way out of a share.
. "$(dirname "$0")/lib.sh"

# fscheck (tests/guest/fscheck.c) goes in through a read-only volume
mkdir -p "$WORK/bin"
cp "$ROOT/build/fscheck" "$WORK/bin/fscheck"

# host view of a tree: path, type, mode, owner, size, content hash
host_state() {
        (cd "$1" && find . -printf '%p %y %m %u:%g %s\n' | sort
         find . -type f -exec sha256sum {} + | sort -k2)
}

t_posix_suite_on_volume() {
        local v=$WORK/posix before after
        rm -rf "$v"; mkdir -p "$v"
        before=$(leak_snapshot)
        run_msb run -v "$v:/vol" -v "$WORK/bin:/t:ro" busybox -- /t/fscheck /vol
        echo "$OUT" | grep -v -e '^ok' -e ' passed, ' >&2 || true
        assert_eq status 0 "$RC"
        assert_contains summary "0 failed" "$OUT"
        # guest chown/chmod 4777, mknod and mkfifo: nothing of it on the host
        [ "$(stat -c '%a %u:%g' "$v/owned")" = "644 0:0" ] ||
                fail "host inode took the guest's mode/owner: $(stat -c '%a %u:%g' "$v/owned")"
        [ -z "$(find "$v" -perm /7000)" ] || fail "setuid/setgid/sticky bits on the host: $(find "$v" -perm /7000)"
        [ -z "$(find "$v" -type c -o -type b -o -type p -o -type s)" ] || fail "special files on the host"
        [ -f "$v/chardev" ] && [ -f "$v/fifo" ] || fail "guest device/fifo should be plain host files"
        # files a non-root guest user created are owned by msb's user on the host
        [ "$(stat -c '%u' "$v/open/mine")" = "$(id -u)" ] || fail "open/mine has a foreign owner on the host"
        # a guest symlink to / was followed in the guest only
        [ ! -e /tmp/msb-escape-marker ] || { rm -f /tmp/msb-escape-marker; fail "escape marker landed on the host"; }
        [ "$(readlink "$v/toroot")" = / ] || fail "the guest's symlink was not stored as written"
        [ ! -e /tmp/leaving ] && [ ! -e /tmp/leaving2 ] || fail "rename/link out of the share reached the host"
        # ownership lives in our xattr, which the guest never saw
        python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.msb.stat").decode())' "$v/owned" |
                grep -q '^1:1234:5678:104777:0$' || fail "user.msb.stat does not record the guest's view"
        after=$(leak_snapshot)
        assert_eq "host state" "$before" "$after"
}

t_ro_volume_unchanged_on_host() {
        local v=$WORK/ro before after
        rm -rf "$v"; mkdir -p "$v/sub"
        echo original >"$v/f"
        echo keep >"$v/sub/g"
        chmod 600 "$v/f"
        before=$(host_state "$v")
        # every write path, each expected to fail; then remount rw and try again
        run_msb run -v "$v:/vol:ro" busybox -- sh -c '
                cd /vol
                n=0
                try() { if "$@" 2>/dev/null; then echo "WROTE: $*"; n=$((n+1)); fi; }
                try sh -c "echo x >> f"
                try sh -c "echo x > f"
                try truncate -s 0 f
                try chmod 777 f
                try chown 1:1 f
                try rm f
                try mv sub/g f
                try touch new
                try mkdir newdir
                try ln -s f link
                try ln f hard
                try rmdir sub
                try setfattr -n user.x -v 1 f
                mount -o remount,rw /vol 2>/dev/null && echo remounted
                try sh -c "echo x >> f"
                try sh -c "echo x > sub/g"
                try rm sub/g
                try touch new2
                try chmod 4755 f
                cat f
                exit $n'
        echo "$OUT" | grep WROTE >&2 || true
        assert_eq status 0 "$RC"
        assert_contains "guest still reads the file" original "$OUT"
        # the guest did get a writable mount: only the server stood in the way
        assert_contains "remount in the guest" remounted "$OUT"
        after=$(host_state "$v")
        assert_eq "host tree" "$before" "$after"
}

t_ownership_virtual_by_default_passthrough_on_request() {
        local v=$WORK/own
        rm -rf "$v"; mkdir -p "$v"
        echo data >"$v/f"
        chmod 600 "$v/f"
        run_msb run -v "$v:/vol" busybox -- sh -c 'chmod 777 /vol/f && chown 99:99 /vol/f && stat -c "%a %u:%g" /vol/f'
        assert_eq status 0 "$RC"
        assert_eq "guest view" "777 99:99" "$OUT"
        assert_eq "host mode" "600 0:0" "$(stat -c '%a %u:%g' "$v/f")"
        # the guest's view survives into the next run
        run_msb run -v "$v:/vol" busybox -- stat -c "%a %u:%g" /vol/f
        assert_eq "next run's view" "777 99:99" "$OUT"
        # pass-through: the guest changes the host inode, as virtiofsd would
        echo data >"$v/p"
        chmod 600 "$v/p"
        run_msb run -v "$v:/vol:rw,passthrough" busybox -- chmod 640 /vol/p
        assert_eq status 0 "$RC"
        assert_eq "host mode with passthrough" 640 "$(stat -c %a "$v/p")"
}

t_guest_sees_host_changes() {
        local v=$WORK/live
        rm -rf "$v"; mkdir -p "$v"
        echo one >"$v/f"
        # the host rewrites the file and adds one while the guest waits
        ( sleep 3; echo two >"$v/f"; echo new >"$v/added" ) &
        run_msb run -v "$v:/vol" busybox -- sh -c 'cat /vol/f; sleep 6; cat /vol/f /vol/added'
        wait
        assert_eq status 0 "$RC"
        assert_eq output "one
two
new" "$OUT"
}

t_virtiofsd_backend_still_works() {
        local v=$WORK/vfs
        rm -rf "$v"; mkdir -p "$v"
        run_msb run --fs-backend virtiofsd -v "$v:/vol" busybox -- sh -c 'echo via-virtiofsd > /vol/f; cat /etc/hostname >/dev/null'
        assert_eq status 0 "$RC"
        assert_eq "file written through virtiofsd" via-virtiofsd "$(cat "$v/f")"
        # virtiofsd forks a sandboxed half: msb returns only when both are gone
        local i left
        for i in 1 2 3; do
                run_msb run --fs-backend virtiofsd busybox -- true
                assert_eq "status of run $i" 0 "$RC"
                left=$(pgrep -f '^/usr/lib/qemu/virtiofsd --fd=' || true)
                assert_eq "virtiofsd processes right after run $i" "" "$left"
        done
}

t_unprivileged_user() {
        # msb and msb-fsd as 'nobody': its own data dir, the kernel and the
        # image installed for every user, no root anywhere; ro and ownership
        # virtualization still hold
        local u
        u=$(mktemp -d /tmp/msb-unpriv.XXXXXX)
        mkdir -p "$u/bin" "$u/home" "$u/vol" "$u/rovol"
        cp "$ROOT/build/msb" "$ROOT/build/msb-fsd" "$ROOT/build/msb-netd" "$ROOT/build/agentd" "$u/bin/"
        echo keep >"$u/rovol/f"
        chown -R nobody:nogroup "$u/home" "$u/vol"
        chmod 755 "$u"
        runuser -u nobody -- env MSB_HOME="$u/home" "$u/bin/msb" run --accel tcg \
                -v "$u/vol:/vol" -v "$u/rovol:/ro:ro" busybox -- sh -c '
                echo written >/vol/f && chmod 4755 /vol/f && stat -c "%a" /vol/f
                mount -o remount,rw /ro
                if echo x >>/ro/f 2>/dev/null; then echo WROTE; fi' >"$WORK/out" 2>"$WORK/err" && RC=0 || RC=$?
        OUT=$(cat "$WORK/out")
        ERR=$(cat "$WORK/err")
        local host_owner host_mode ro_content leftover
        host_owner=$(stat -c %U "$u/vol/f" 2>/dev/null)
        host_mode=$(stat -c %a "$u/vol/f" 2>/dev/null)
        ro_content=$(cat "$u/rovol/f")
        leftover=$(pgrep -u nobody -f msb-fsd || true)
        rm -rf "$u"
        [ "$RC" = 0 ] || echo "$ERR" >&2
        assert_eq status 0 "$RC"
        assert_eq "guest view" 4755 "$OUT"
        assert_eq "host owner" nobody "$host_owner"
        assert_eq "host mode" 644 "$host_mode"
        assert_eq "ro volume" keep "$ro_content"
        assert_eq "servers left" "" "$leftover"
}

run_tests
