#!/usr/bin/env bash
# End-to-end: what agentd offers beyond `msb run` (terminals, many processes
# at once, flow-control windows, SHUTDOWN, the disk upper), in real VMs.
# tests/e2e/agent-proxy.py stands in for QEMU: it passes msb's main process
# through and plays its own processes on the same control channel.
. "$(dirname "$0")/lib.sh"
PROXY=$ROOT/tests/e2e/agent-proxy.py

# proxy_run SCENARIO MSB-RUN-ARGS...: msb run under the proxy; its results in LOG
proxy_run() {
        local sc=$1
        shift
        : >"$WORK/proxy.log"
        MSB_ACCEL=tcg MSB_QEMU=$PROXY MSB_PROXY_SCENARIO=$sc MSB_PROXY_LOG=$WORK/proxy.log run_msb run "$@"
        LOG=$(cat "$WORK/proxy.log")
}

# a fresh ext4 disk, as the host makes one for a named sandbox
new_disk() {
        rm -f "$WORK/disk.img"
        truncate -s 64M "$WORK/disk.img"
        mkfs.ext4 -q -F "$WORK/disk.img"
}

# disk_cat PATH: a file of the disk's upper layer, read on the host
disk_cat() {
        debugfs -R "cat /upper$1" "$WORK/disk.img" 2>/dev/null
}

t_terminals_processes_windows() {
        proxy_run procs busybox -- sh -c 'while [ ! -e /tmp/stop ]; do sleep 0.05; done; echo main-done'
        [ -z "${VERBOSE:-}" ] || echo "$LOG" >&2
        assert_eq status 0 "$RC"
        assert_eq stdout main-done "$OUT"
        assert_not_contains "proxy results" FAIL "$LOG"
        assert_contains "scenario ran to its end" done "$LOG"
        assert_eq "checks passed" 19 "$(grep -c '^ok' <<<"$LOG")"
}

t_protocol_violation_stops_the_vm() {
        proxy_run violation busybox -- sleep 100
        assert_eq status 125 "$RC"
        assert_contains stderr "step 'protocol'" "$ERR"
}

t_disk_upper_kept_across_boots() {
        new_disk
        MSB_PROXY_DISK=$WORK/disk.img proxy_run none busybox -- sh -c 'echo persisted >/root/f; cat /proc/mounts'
        assert_eq status 0 "$RC"
        assert_contains "overlay upper on the disk" "upperdir=/mnt/disk/upper" "$OUT"
        # synced before EXIT: msb kills the VM the moment it has it
        assert_eq "on the disk after the run" persisted "$(disk_cat /root/f)"
        MSB_PROXY_DISK=$WORK/disk.img proxy_run none busybox -- cat /root/f
        assert_eq "second boot status" 0 "$RC"
        assert_eq "second boot sees the file" persisted "$OUT"
        # without the disk, the same image starts clean
        run_msb run busybox -- sh -c 'cat /root/f 2>/dev/null || echo absent'
        assert_eq "tmpfs upper" absent "$OUT"
}

t_disk_not_ext4_is_a_setup_error() {
        rm -f "$WORK/disk.img"
        truncate -s 8M "$WORK/disk.img"
        MSB_PROXY_DISK=$WORK/disk.img proxy_run none busybox -- true
        assert_eq status 125 "$RC"
        assert_contains stderr "step 'disk'" "$ERR"
}

t_shutdown_syncs_and_powers_off() {
        new_disk
        local start=$SECONDS
        MSB_PROXY_DISK=$WORK/disk.img proxy_run shutdown busybox -- sleep 100
        # the guest reset itself: msb saw the VM end before its command
        assert_eq status 125 "$RC"
        assert_contains stderr "VM stopped" "$ERR"
        [ $((SECONDS - start)) -lt 30 ] || fail "the VM took $((SECONDS - start)) s to stop after SHUTDOWN"
        assert_eq "synced at SHUTDOWN" from-shutdown "$(disk_cat /root/at-shutdown)"
}

run_tests
