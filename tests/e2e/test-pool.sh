#!/usr/bin/env bash
# End-to-end: msb pool (docs/pool.md).  Runs take pre-booted VMs, each
# used once; what one run did is not there for the next; racing runs both
# succeed; killing the pool leaves nothing but the runs it handed VMs to,
# which carry on; only the pool's user reaches it.  (test-run.sh and
# test-volumes.sh also run whole with a pool: tests/run-all.sh.)
. "$(dirname "$0")/lib.sh"

cleanup() {
        "$MSB" pool stop >/dev/null 2>&1
        rm -rf "$WORK"
}
trap cleanup EXIT
"$MSB" pool stop >/dev/null 2>&1

handed() { pool_json | python3 -c 'import json,sys; print(sum(p["handed_out"] for p in json.load(sys.stdin)))'; }
keepers() { pgrep -c -x msb-pool-vm || true; }
start_pool() { # start_pool SIZE: a fresh pool
        "$MSB" pool stop >/dev/null 2>&1
        POOL_SIZE=$1
        run_msb pool start --size "$1"
        assert_eq "pool start" 0 "$RC" || { echo "$ERR" >&2; return 1; }
        pool_settle || fail "the pool did not fill: $(pool_json)"
}

t_01_runs_take_warm_vms_and_status_reports_them() {
        start_pool 1
        local st
        st=$(pool_json)
        assert_contains "status: ready" '"ready": 1' "$st"
        assert_contains "status: memory of an idle VM" '"rss_kib":' "$st"
        assert_contains "status: idle CPU" '"idle_cpu_percent":' "$st"
        run_msb run busybox -- sh -c 'cat /proc/cmdline; echo "hi $(id -u)"'
        assert_eq status 0 "$RC"
        assert_contains "the guest was booted for the pool" "msb.warm=1" "$OUT"
        assert_contains output "hi 0" "$OUT"
        assert_eq "handed out" 1 "$(handed)"
        # --no-pool, and a size the pool does not have, boot as before
        run_msb run --no-pool busybox -- cat /proc/cmdline
        assert_eq "--no-pool: status" 0 "$RC"
        assert_not_contains "--no-pool boots" "msb.warm" "$OUT"
        run_msb run --cpus 2 busybox -- cat /proc/cmdline
        assert_not_contains "another size boots" "msb.warm" "$OUT"
        pool_settle
        assert_eq "still one handed out" 1 "$(handed)"
        # exit status, stdin, volumes and the network through a pool's VM
        mkdir -p "$WORK/v" && echo host >"$WORK/v/f"
        echo in | "$MSB" run -i -v "$WORK/v:/v" busybox -- sh -c 'cat; cat /v/f; echo g >/v/g; ip -4 -o addr show eth0; exit 3' \
                >"$WORK/out" 2>&1 && RC=0 || RC=$?
        OUT=$(cat "$WORK/out")
        assert_eq "exit status" 3 "$RC"
        assert_contains stdin in "$OUT"
        assert_contains "volume read" host "$OUT"
        assert_eq "volume written" g "$(cat "$WORK/v/g")"
        assert_contains "the guest's address" "10.0.2.15/24" "$OUT"
        assert_eq "handed out" 2 "$(handed)"
}

t_02_a_second_user_finds_nothing_of_the_first() {
        start_pool 2
        run_msb run -e SECRET=first busybox -- sh -c '
                echo s >/tmp/secret; echo r >/root/secret; (sleep 4242 &) ; ip link set lo mtu 1300
                cat /proc/sys/kernel/random/boot_id; hostname; echo "env $SECRET"'
        assert_eq "first run" 0 "$RC"
        local boot1 host1
        boot1=$(echo "$OUT" | sed -n 1p)
        host1=$(echo "$OUT" | sed -n 2p)
        run_msb run busybox -- sh -c '
                ls /tmp/secret /root/secret 2>&1; pgrep -f "sleep 4242" || echo no-such-process
                ip -o link show lo | grep -o "mtu [0-9]*"; cat /proc/sys/kernel/random/boot_id; hostname; echo "env ${SECRET:-unset}"'
        assert_eq "second run" 0 "$RC"
        assert_eq "both from the pool" 2 "$(handed)"
        assert_contains "no file of the first run" "/tmp/secret: No such file" "$OUT"
        assert_contains "nothing in the first's writable layer" "/root/secret: No such file" "$OUT"
        assert_contains "no process of the first run" no-such-process "$OUT"
        assert_contains "no network state of the first run" "mtu 65536" "$OUT"
        assert_contains "no environment of the first run" "env unset" "$OUT"
        assert_not_contains "another kernel (boot id)" "$boot1" "$OUT"
        assert_not_contains "another hostname" "$host1" "$OUT"
}

t_03_two_runs_racing_for_the_last_warm_vm_both_succeed() {
        start_pool 1
        local before
        before=$(handed)
        "$MSB" run busybox -- echo one >"$WORK/a" 2>&1 &
        local a=$!
        "$MSB" run busybox -- echo two >"$WORK/b" 2>&1 &
        local b=$!
        wait $a && ra=0 || ra=$?
        wait $b && rb=0 || rb=$?
        assert_eq "both exit 0" "0 0" "$ra $rb"
        assert_eq "outputs" "one two" "$(cat "$WORK/a") $(cat "$WORK/b")"
        local d=$(($(handed) - before))
        [ "$d" -ge 1 ] && [ "$d" -le 2 ] || fail "handed out $d VMs to two runs"
}

t_04_killing_the_pool_leaves_nothing_but_the_runs_it_served() {
        "$MSB" pool stop >/dev/null 2>&1
        local before
        before=$(leak_snapshot_nopool)
        start_pool 2
        "$MSB" run busybox -- sh -c 'echo ready; sleep 3; echo survived' >"$WORK/bg" 2>&1 &
        local bg=$!
        for _ in $(seq 100); do grep -q ready "$WORK/bg" && break; sleep 0.1; done
        local pid
        pid=$(pool_json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["pid"])')
        kill -KILL "$pid"
        wait $bg && rc=0 || rc=$?
        assert_eq "the served run finished" 0 "$rc"
        assert_contains "its output" survived "$(cat "$WORK/bg")"
        for _ in $(seq 100); do [ "$(keepers)" = 0 ] && break; sleep 0.1; done
        assert_eq "no keeper left" 0 "$(keepers)"
        # the next run finds the dead pool's socket, removes it and boots
        run_msb run busybox -- cat /proc/cmdline
        assert_eq "a run after the pool died" 0 "$RC"
        assert_not_contains "it booted" "msb.warm" "$OUT"
        assert_eq "the dead pool's dir is gone" "" "$(ls "$RUNDIR/.pools" 2>/dev/null)"
        assert_eq "host state" "$before" "$(leak_snapshot_nopool)"
}

t_05_stop_leaves_nothing_and_bad_input_is_refused() {
        "$MSB" pool stop >/dev/null 2>&1
        local before
        before=$(leak_snapshot_nopool)
        start_pool 2
        run_msb pool start --size 2
        assert_eq "a second pool of one size" 125 "$RC"
        assert_contains "error" "already running" "$ERR"
        run_msb pool stop
        assert_eq stop 0 "$RC"
        assert_contains "stopped" "1 pool stopped" "$OUT"
        assert_eq "nothing left" "$before" "$(leak_snapshot_nopool)"
        assert_eq "no keeper left" 0 "$(keepers)"
        local args
        for args in "--size 0" "--size 65" "--memory 1M" "--cpus x" "--kernel /nonexistent" "--accel maybe" "--bogus"; do
                # shellcheck disable=SC2086
                run_msb pool start $args
                assert_eq "pool start $args" 125 "$RC"
                assert_contains "pool start $args: names the option" "${args%% *}" "$ERR"
        done
        run_msb pool stop c9-m1-tcg-0000000000000000
        assert_eq "stop of an unknown pool" 125 "$RC"
        assert_contains "says so" "no pool" "$ERR"
        assert_eq "no keeper after bad input" 0 "$(keepers)"
}

t_06_other_users_cannot_reach_a_pool() {
        start_pool 1
        local sock
        sock=$(ls "$RUNDIR"/.pools/*/sock | head -1)
        runuser -u nobody -- python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1]); s.sendall(b"TAKE\n"); print("answer", s.recv(64))
except OSError as e:
    print("refused", e.errno)' "$sock" >"$WORK/out" 2>&1
        assert_contains "nobody is refused" refused "$(cat "$WORK/out")"
        assert_eq "nothing handed out" 0 "$(handed)"
}

t_07_an_unprivileged_user_has_a_pool_of_its_own() {
        as_nobody || return 1
        local msb=$INSTALLED_MSB as=("${AS_NOBODY[@]}")
        "${as[@]}" "$msb" pool start --size 1 >"$WORK/out" 2>&1 || fail "unprivileged pool start: $(cat "$WORK/out")"
        for _ in $(seq 300); do
                "${as[@]}" "$msb" pool status 2>/dev/null | grep -q '"ready": 1' && break
                sleep 0.1
        done
        "${as[@]}" "$msb" run busybox -- sh -c 'cat /proc/cmdline; id -u' >"$WORK/out" 2>&1 && RC=0 || RC=$?
        assert_eq "unprivileged run" 0 "$RC"
        assert_contains "from its own pool" "msb.warm=1" "$(cat "$WORK/out")"
        "${as[@]}" "$msb" pool stop >/dev/null 2>&1
        # (the daemon's exit status waits for init to collect it: a zombie)
        live() { pgrep -u nobody -f 'msb-pool|qemu-system|msb-fsd|msb-netd' | xargs -r ps -o stat= -p | grep -vc Z || true; }
        for _ in $(seq 50); do [ "$(live)" = 0 ] && break; sleep 0.1; done
        assert_eq "nobody's pool left no process" 0 "$(live)"
}

t_08_an_idle_vm_that_dies_is_replaced() {
        start_pool 1
        local q
        q=$(pool_json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["vms"][0]["qemu_pid"])')
        kill -KILL "$q"
        # its keeper goes, and the pool boots another: never handed out dead
        pool_settle || fail "the pool did not replace the dead VM: $(pool_json)"
        assert_not_contains "another QEMU" "\"qemu_pid\": $q," "$(pool_json)"
        run_msb run busybox -- echo alive
        assert_eq "the next run" "0 alive" "$RC $OUT"
        assert_contains "the pool says why" "an idle VM's" "$(cat "$RUNDIR"/.pools/*/pool.log)"
}

# leak_snapshot without the pool's own VMs taken out (there must be none)
leak_snapshot_nopool() { MSB_E2E_POOL= leak_snapshot; }

run_tests
