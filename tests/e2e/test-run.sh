#!/usr/bin/env bash
# End-to-end: msb run against real VMs (QEMU, virtiofsd, the guest kernel).
. "$(dirname "$0")/lib.sh"

kernel_release=$("$MSB" info | sed -n 's/^kernel release: *//p')
busybox_rootfs() {
        local d
        d=$(cat "$DATA/images/refs/busybox%3Alatest")
        echo "$DATA/images/rootfs/${d#sha256:}"
}

t_hello_exit_status_and_kernel() {
        run_msb run busybox -- sh -c 'echo hello; uname -r; exit 3'
        assert_eq status 3 "$RC"
        assert_eq stdout "hello
$kernel_release" "$OUT"
        # the guest kernel, not the host's: it really is a VM
        [ "$kernel_release" != "$(uname -r)" ] || fail "guest and host kernels are the same"
}

t_stdout_stderr_apart() {
        run_msb run busybox -- sh -c 'echo to-out; echo to-err >&2; echo more-out'
        assert_eq status 0 "$RC"
        assert_eq stdout "to-out
more-out" "$OUT"
        assert_eq stderr "to-err" "$ERR"
}

t_command_not_found_127() {
        run_msb run busybox -- no-such-command arg
        assert_eq status 127 "$RC"
        assert_contains stderr "no-such-command" "$ERR"
        assert_contains stderr "not found" "$ERR"
}

t_not_executable_126() {
        run_msb run busybox -- /etc/passwd
        assert_eq status 126 "$RC"
        assert_contains stderr "/etc/passwd" "$ERR"
}

t_killed_by_signal_128_plus_n() {
        run_msb run busybox -- sh -c 'kill -9 $$'
        assert_eq status 137 "$RC"
}

t_stdin_piped() {
        OUT=$(echo x | "$MSB" run -i busybox -- cat)
        assert_eq "echo x | msb run -i busybox -- cat" x "$OUT"
        head -c 3000000 /dev/urandom >"$WORK/in.bin"
        want=$(sha256sum <"$WORK/in.bin" | cut -d' ' -f1)
        got=$("$MSB" run -i busybox -- sha256sum <"$WORK/in.bin" | cut -d' ' -f1)
        assert_eq "3 MB stdin checksum" "$want" "$got"
}

t_stdin_not_forwarded_without_i() {
        OUT=$(echo should-not-arrive | "$MSB" run busybox -- cat)
        assert_eq "stdin without -i" "" "$OUT"
}

t_stdout_100mb_checksum() {
        # the guest prints its own checksum on stderr, the host hashes the stream
        "$MSB" run busybox -- sh -c 'head -c 104857600 /dev/urandom >/tmp/f && sha256sum /tmp/f >&2 && cat /tmp/f' \
                2>"$WORK/err" | sha256sum | cut -d' ' -f1 >"$WORK/host.sum"
        assert_eq "100 MB through stdout" "$(cut -d' ' -f1 <"$WORK/err")" "$(cat "$WORK/host.sum")"
}

t_env_workdir_user() {
        export MSB_TEST_HOSTVAR=from-host
        run_msb run -e FOO=bar -e MSB_TEST_HOSTVAR -e MSB_TEST_UNSET_VAR -w /srv/x -u nobody busybox -- \
                sh -c 'echo "$FOO $MSB_TEST_HOSTVAR ${MSB_TEST_UNSET_VAR-unset}"; pwd; id -u; id -g; echo $HOME; echo $PATH'
        assert_eq status 0 "$RC"
        assert_eq stdout "bar from-host unset
/srv/x
65534
65534
/nonexistent
/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$OUT"
}

# Each agentd or kernel change builds a new initramfs; the build prunes what
# nothing has used for two weeks, and never what may be in use
t_initramfs_cache_pruned() {
        local h=$WORK/prune-home c
        mkdir -p "$h/cache"
        ln -s "$DATA/kernels" "$h/kernels"
        ln -s "$DATA/images" "$h/images"
        c=$h/cache
        echo old >"$c/initramfs-old.cpio"
        ln -s initramfs-old.cpio "$c/initramfs-index-old"
        echo kept >"$c/initramfs-kept.cpio"
        ln -s initramfs-kept.cpio "$c/initramfs-index-kept"
        echo young >"$c/initramfs-young.cpio"
        echo dead >"$c/initramfs-dead.cpio.tmp-1234"
        touch -h -d '20 days ago' "$c/initramfs-old.cpio" "$c/initramfs-index-old" "$c/initramfs-kept.cpio"
        touch -h -d '3 days ago' "$c/initramfs-index-kept"
        touch -d '2 hours ago' "$c/initramfs-dead.cpio.tmp-1234"
        MSB_HOME=$h run_msb run busybox -- true
        assert_eq status 0 "$RC"
        local left
        left=$(cd "$c" && ls -A | grep -v -e '^initramfs-[0-9a-f]\{32\}\.cpio$' -e '^initramfs-index-[0-9a-f]\{32\}$' \
                -e '^accel$' -e '^tsc-khz$' -e '^kvm-probe.bin$' | tr '\n' ' ')
        assert_eq "cache after a build" "initramfs-index-kept initramfs-kept.cpio initramfs-young.cpio " "$left"
        assert_eq "new initramfs" 1 "$(ls "$c" | grep -c '^initramfs-[0-9a-f]\{32\}\.cpio$')"
        rm -rf "$h"
}

t_user_numeric_uid_gid() {
        run_msb run -u 1234:5678 busybox -- sh -c 'id -u; id -g; echo $HOME'
        assert_eq stdout "1234
5678
/" "$OUT"
        # an unknown name is refused before any VM starts
        local before
        before=$(leak_snapshot)
        run_msb run -u no-such-user busybox -- true
        assert_eq status 125 "$RC"
        assert_contains stderr "user 'no-such-user' not found in the image's /etc/passwd" "$ERR"
        run_msb run -u nobody:no-such-group busybox -- true
        assert_eq "group status" 125 "$RC"
        assert_contains stderr "group 'no-such-group' not found in the image's /etc/group" "$ERR"
        assert_eq "host state" "$before" "$(leak_snapshot)"
}

# A volume on a PATH directory is searched like the image's own: it wins
# when it comes first (msb leaves that search to the guest)
t_volume_on_path_shadows_image() {
        mkdir -p "$WORK/pbin"
        printf '#!/bin/sh\necho from-volume\n' >"$WORK/pbin/true"
        chmod 755 "$WORK/pbin/true"
        run_msb run -v "$WORK/pbin:/usr/local/bin:ro" busybox -- true
        assert_eq status 0 "$RC"
        assert_eq stdout from-volume "$OUT"
        run_msb run -v "$WORK/pbin/true:/usr/local/sbin/true:ro" busybox -- true
        assert_eq "file volume" from-volume "$OUT"
}

# A volume over /etc/passwd or /etc/group changes who a name is: msb leaves
# the lookup to the guest, which reads the files the command sees.
t_user_from_a_volume_passwd() {
        printf 'root:x:0:0:root:/root:/bin/sh\nalice:x:4242:4343:Alice:/home/alice:/bin/sh\n' >"$WORK/passwd"
        printf 'root:x:0:\nalices:x:4343:\nextra:x:77:alice\n' >"$WORK/group"
        run_msb run -v "$WORK/passwd:/etc/passwd:ro" -v "$WORK/group:/etc/group:ro" -u alice busybox -- \
                sh -c 'id -u; id -g; id -G; echo $HOME'
        assert_eq status 0 "$RC"
        assert_eq stdout "4242
4343
4343 77
/home/alice" "$OUT"
        mkdir -p "$WORK/etc"
        cp "$WORK/passwd" "$WORK/group" "$WORK/etc/"
        run_msb run -v "$WORK/etc:/etc:ro" -u alice busybox -- id -u
        assert_eq "etc directory volume" 4242 "$OUT"
        # and a name only the image has is then unknown, said by the guest
        run_msb run -v "$WORK/passwd:/etc/passwd:ro" -u nobody busybox -- true
        assert_eq "unknown status" 125 "$RC"
        assert_contains stderr "user 'nobody' not found in the image's /etc/passwd" "$ERR"
}

t_volume_directory_both_ways() {
        mkdir -p "$WORK/vol dir"
        echo from-host >"$WORK/vol dir/a.txt"
        (sleep 6; echo late-from-host >"$WORK/vol dir/late.txt") &
        run_msb run -v "$WORK/vol dir:/data" busybox -- sh -c '
                cat /data/a.txt
                echo from-guest >/data/b.txt
                mkdir /data/sub
                i=0; while [ ! -f /data/late.txt ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
                cat /data/late.txt'
        wait
        assert_eq status 0 "$RC"
        assert_eq stdout "from-host
late-from-host" "$OUT"
        assert_eq "host sees guest write" from-guest "$(cat "$WORK/vol dir/b.txt")"
        [ -d "$WORK/vol dir/sub" ] || fail "guest mkdir not visible on host"
}

make_config_image() {
        [ -f "$WORK/cfgimg.done" ] && return 0
        mkdir -p "$WORK/layer2/srv/app"
        echo from-layer2 >"$WORK/layer2/srv/app/marker"
        "$ROOT/scripts/oci-layout.sh" "$WORK/cfgimg" v1 \
                '{"Entrypoint":["/bin/sh","-c"],"Cmd":["echo default-cmd $FOO $(id -u) $(pwd)"],"Env":["FOO=from-image","PATH=/bin"],"WorkingDir":"/srv/app","User":"daemon"}' \
                "$(busybox_rootfs)" "$WORK/layer2"
        "$MSB" image import "$WORK/cfgimg:v1" msbtest/config:v1
        touch "$WORK/cfgimg.done"
}

t_image_config_cmd_entrypoint_env() {
        make_config_image
        run_msb run msbtest/config:v1
        assert_eq status 0 "$RC"
        assert_eq "image Entrypoint+Cmd+Env+User+WorkingDir" "default-cmd from-image 1 /srv/app" "$OUT"
        run_msb run -e FOO=override msbtest/config:v1 'echo $FOO; cat marker'
        assert_eq "user args replace Cmd, -e overrides Env" "override
from-layer2" "$OUT"
        run_msb run --entrypoint /bin/echo msbtest/config:v1 plain args
        assert_eq "--entrypoint" "plain args" "$OUT"
}

t_rootfs_dir_is_never_written() {
        local root sum_before sum_after
        root=$(busybox_rootfs)
        sum_before=$(cat "$root/etc/passwd" | sha256sum)
        run_msb run --rootfs "$root" -- sh -c 'echo rootfs-ok; echo x >/etc/passwd; touch /new-file; rm /bin/ls; cat /etc/passwd'
        assert_eq status 0 "$RC"
        assert_eq stdout "rootfs-ok
x" "$OUT"
        sum_after=$(cat "$root/etc/passwd" | sha256sum)
        assert_eq "host rootfs /etc/passwd" "$sum_before" "$sum_after"
        [ ! -e "$root/new-file" ] || fail "guest write reached the host rootfs"
        [ -L "$root/bin/ls" ] || fail "guest rm reached the host rootfs"
        # and the next run starts clean
        run_msb run busybox -- sh -c 'ls /new-file 2>/dev/null; head -1 /etc/passwd'
        assert_eq "next run is clean" "root:x:0:0:root:/root:/bin/sh" "$OUT"
}

t_ten_in_a_row_no_leaks() {
        local before after i
        before=$(leak_snapshot)
        for i in $(seq 10); do
                OUT=$("$MSB" run busybox -- echo "run-$i")
                assert_eq "run $i" "run-$i" "$OUT"
        done
        after=$(leak_snapshot)
        assert_eq "host state" "$before" "$after"
}

t_three_at_once_no_leaks() {
        local before after i
        before=$(leak_snapshot)
        for i in 1 2 3; do
                "$MSB" run busybox -- sh -c "echo par-$i" >"$WORK/par$i" 2>&1 &
        done
        wait
        for i in 1 2 3; do
                assert_eq "parallel run $i" "par-$i" "$(cat "$WORK/par$i")"
        done
        after=$(leak_snapshot)
        assert_eq "host state" "$before" "$after"
}

# start msb in the background, wait until the guest printed "ready"
start_bg() {
        "$MSB" run busybox -- "$@" >"$WORK/bg.out" 2>"$WORK/bg.err" &
        BG=$!
        local i
        for i in $(seq 600); do
                grep -q ready "$WORK/bg.out" 2>/dev/null && return 0
                sleep 0.1
        done
        fail "guest never printed ready: $(cat "$WORK/bg.err")"
}

t_ctrl_c_forwarded_then_second_kills() {
        local before after
        before=$(leak_snapshot)
        start_bg sh -c 'trap "echo got-int; exit 42" INT; echo ready; while :; do sleep 0.1; done'
        kill -INT "$BG"
        wait "$BG" && rc=0 || rc=$?
        assert_eq "status after Ctrl-C" 42 "$rc"
        assert_contains stdout got-int "$(cat "$WORK/bg.out")"
        # a command that ignores SIGINT: the second Ctrl-C stops the VM
        start_bg sh -c 'trap "" INT; echo ready; while :; do sleep 0.1; done'
        kill -INT "$BG"
        sleep 1
        kill -INT "$BG"
        wait "$BG" && rc=0 || rc=$?
        assert_eq "status after second Ctrl-C" 130 "$rc"
        after=$(leak_snapshot)
        assert_eq "host state" "$before" "$after"
}

t_sigterm_forwarded() {
        start_bg sh -c 'echo ready; exec sleep 1000'
        kill -TERM "$BG"
        wait "$BG" && rc=0 || rc=$?
        assert_eq "status after SIGTERM" 143 "$rc"
}

t_fs_server_killed_during_run() {
        local before after
        before=$(leak_snapshot)
        start_bg sh -c 'echo ready; sleep 1000'
        local fsd
        fsd=$(run_procs "$BG" 'msb-fsd|virtiofsd')
        [ -n "$fsd" ] && kill -KILL $fsd || fail "no fs server running under msb"
        # never leave the run behind if the kill missed
        ( sleep 30; kill -KILL "$BG" 2>/dev/null ) &
        wait "$BG" && rc=0 || rc=$?
        assert_eq status 125 "$rc"
        assert_contains stderr "virtio-fs server" "$(cat "$WORK/bg.err")"
        after=$(leak_snapshot)
        assert_eq "host state" "$before" "$after"
}

t_guest_kernel_panic() {
        local before after
        before=$(leak_snapshot)
        run_msb run busybox -- sh -c 'echo c >/proc/sysrq-trigger; sleep 100'
        assert_eq status 125 "$RC"
        assert_contains stderr "VM stopped" "$ERR"
        assert_contains "console tail" "Kernel panic" "$ERR"
        after=$(leak_snapshot)
        assert_eq "host state" "$before" "$after"
}

# A helper that fails at start: msb says which, in the helper's own words
# (here the real msb-fsd refusing an argument), and leaves nothing.
t_helper_failure_names_the_helper() {
        local before after
        before=$(leak_snapshot)
        printf '#!/bin/sh\nexec %s "$@" --timeout bogus\n' "$ROOT/build/msb-fsd" >"$WORK/fsd-bad"
        chmod +x "$WORK/fsd-bad"
        MSB_FSD=$WORK/fsd-bad run_msb run --no-pool busybox -- true
        assert_eq status 125 "$RC"
        assert_contains stderr "virtio-fs server for" "$ERR"
        assert_contains stderr "msb-fsd: --timeout 'bogus': not a number of seconds" "$ERR"
        assert_eq "one line" 1 "$(echo "$ERR" | wc -l)"
        after=$(leak_snapshot)
        assert_eq "host state" "$before" "$after"
}

t_sigkill_leftovers_removed_by_next_run() {
        # with a pool, a warm VM must be ready, or the run boots its own,
        # whose dir only the next run collects (the branch below)
        if [ "${MSB_E2E_POOL:-}" = 1 ]; then
                pool_settle || fail "the pool did not refill: $(pool_json)"
        fi
        start_bg sh -c 'grep -o msb.warm=1 /proc/cmdline; echo ready; sleep 1000'
        local dir warm=0
        dir=$(run_dir)
        [ -n "$dir" ] || fail "no runtime dir while running"
        grep -q msb.warm=1 "$WORK/bg.out" && warm=1
        [ "${MSB_E2E_POOL:-}" != 1 ] || [ $warm = 1 ] || fail "the run did not take a warm VM: $(pool_json)"
        kill -KILL "$BG"
        wait "$BG" 2>/dev/null || true
        # children die with msb (PDEATHSIG)
        local i
        for i in $(seq 50); do
                pgrep -f "$dir" >/dev/null || break
                sleep 0.1
        done
        ! pgrep -f "$dir" >/dev/null || fail "children of a SIGKILLed msb survived"
        if [ $warm = 1 ]; then
                # a pool's VM: its keeper saw the run go and removed it all
                for i in $(seq 50); do [ -e "$dir" ] || break; sleep 0.1; done
                [ ! -e "$dir" ] || fail "the keeper left the SIGKILLed run's dir $dir"
                ! pgrep -f 'msb-fsd --fd=3 --warm' -P "$(pgrep -d, -x msb-pool-vm)" >/dev/null ||
                        [ "$(pool_idle | wc -l)" -ge 1 ] || fail "the run's servers survived"
                return 0
        fi
        [ -d "$dir" ] || fail "expected the SIGKILLed run's dir to remain until the next run"
        run_msb run busybox -- true
        assert_eq status 0 "$RC"
        [ ! -e "$dir" ] || fail "next run did not remove $dir"
}

t_bad_input_clear_errors_no_leaks() {
        local before after
        before=$(leak_snapshot)
        touch "$WORK/afile"
        check() { # check EXPECTED_SUBSTRING ARGS...
                local want=$1
                shift
                run_msb "$@"
                assert_eq "msb $* status" 125 "$RC"
                assert_contains "msb $* message" "$want" "$ERR"
                [ "$(echo "$ERR" | wc -l)" = 1 ] || fail "msb $*: expected a one-line error, got: $ERR"
        }
        check "unknown option '--bogus'" run --bogus busybox true
        check "--memory 'lots'" run -m lots busybox true
        check "--memory '1'" run -m 1 busybox true
        check "--cpus '0'" run -c 0 busybox true
        check "--accel 'fast'" run --accel fast busybox true
        check "--workdir 'rel'" run -w rel busybox true
        check "--env '=x'" run -e =x busybox true
        check "does not exist" run -v /nonexistent/dir:/x busybox true
        check "must be absolute" run -v /tmp:relative busybox true
        check "must not be under /proc" run -v /tmp:/proc/x busybox true
        check "must not be under /proc" run -v /tmp://dev busybox true
        check "must not be /" run -v /tmp:/ busybox true
        check "'..'" run -v /tmp:/a/../b busybox true
        check "already used" run -v /tmp:/x -v /usr:/x/ busybox true
        check "unknown option 'bogus'" run -v /tmp:/x:bogus busybox true
        check "expected HOST:GUEST" run -v /tmp busybox true
        check "give one of ro or rw" run -v /tmp:/x:ro,rw busybox true
        check "unknown option 'rx'" run -v /tmp:/x:rx busybox true
        check "expected msb or virtiofsd" run --fs-backend fuse busybox true
        check "no image given" run
        check "not found in the local store" run --pull never no-such-image true
        check "not in the local store, and pulling it failed" run no-such-image true
        check "character 'B' is not allowed" run BadName true
        check "--rootfs '/nonexistent'" run --rootfs /nonexistent true
        check "unknown command 'bogus'" bogus
        after=$(leak_snapshot)
        assert_eq "host state" "$before" "$after"
}

t_help_and_version() {
        run_msb --help
        assert_eq status 0 "$RC"
        assert_contains help "run" "$OUT"
        run_msb run --help
        assert_contains "run help" "--volume" "$OUT"
        run_msb version
        assert_contains version "msb 0." "$OUT"
}

t_info_reports_kit() {
        run_msb info
        assert_eq status 0 "$RC"
        # msb's tailored kernel is the default; MSB_KIT=debian selects Debian's
        assert_contains "kernel kit" "kernel kit:     ${MSB_KIT:-msb}" "$OUT"
        assert_contains accelerator "accelerator:    tcg" "$OUT"
        assert_contains qemu "QEMU emulator version" "$OUT"
        assert_contains "fs server" "fs server:      msb (" "$OUT"
        assert_contains "fs server version" "msb-fsd $("$MSB" version | sed 's/^msb //')" "$OUT"
}

# Installed once by root (./setup.sh), msb works for any user with nothing
# set up: the installed binary, the kernel and the default image from
# <prefix>/lib/msb, the user's own store in their HOME, nothing of root's
# data dir reachable.
t_every_user_runs_the_installed_msb() {
        as_nobody || return 1
        local h=$WORK/nobody-home msb=$INSTALLED_MSB
        # the shared image serves every user's msb-fsd: its 0700 /root is
        # 0700 in the guest, and the guest's root writes there
        runuser -u nobody -- env -i HOME="$h" PATH=/usr/bin:/bin "$msb" run busybox -- \
                sh -c 'id; ls -ld /root; echo w >/root/x && cat /root/x' >"$WORK/out" 2>"$WORK/err" &&
                RC=0 || RC=$?
        OUT=$(cat "$WORK/out")
        ERR=$(cat "$WORK/err")
        assert_eq status 0 "$RC" || echo "$ERR" >&2
        assert_contains "root in the guest" "uid=0(root)" "$OUT"
        assert_contains "the image's mode in the guest" "drwx------" "$OUT"
        assert_contains "a write to /root" "w" "$(echo "$OUT" | tail -1)"
        runuser -u nobody -- env -i HOME="$h" PATH=/usr/bin:/bin "$msb" info >"$WORK/out" 2>&1 || true
        OUT=$(cat "$WORK/out")
        assert_contains "kernel from the system dir" "kernel:         /usr/local/lib/msb/kernels/" "$OUT"
        assert_contains "own store" "image store:    $h/.local/share/msb/images" "$OUT"
        assert_contains "system dir" "system dir:     /usr/local/lib/msb" "$OUT"
        OUT=$(runuser -u nobody -- env -i HOME="$h" PATH=/usr/bin:/bin "$msb" images 2>&1 | awk '$1 == "busybox"')
        assert_contains "the default image, listed as the system's" "system (read-only)" "$OUT"
        # root's store is not reachable by this user
        if runuser -u nobody -- ls "$DATA/images/rootfs" >/dev/null 2>&1; then
                fail "nobody can list root's unpacked images"
        fi
}

t_kernel_features_present() {
        if [ ! -f "$WORK/fcimg.done" ]; then
                mkdir -p "$WORK/fclayer"
                cp "$ROOT/build/featurecheck" "$WORK/fclayer/featurecheck"
                "$ROOT/scripts/oci-layout.sh" "$WORK/fcimg" v1 '{"Cmd":["/featurecheck"]}' \
                        "$(busybox_rootfs)" "$WORK/fclayer"
                "$MSB" image import "$WORK/fcimg:v1" msbtest/featurecheck:v1
                touch "$WORK/fcimg.done"
        fi
        run_msb run msbtest/featurecheck:v1
        [ "$RC" = 0 ] || fail "features missing in the guest kernel: $(echo "$OUT" | grep missing | tr '\n' ';')"
        assert_contains summary "0 missing" "$OUT"
}

run_tests
