#!/usr/bin/env bash
# End-to-end: sandboxes that live (create/start/exec/stop/logs/rm, terminals,
# supervisors that die) against real VMs.  Tests share one running sandbox
# where they can; each cleans up what it made.
. "$(dirname "$0")/lib.sh"

PTY="python3 $ROOT/tests/e2e/pty-drive.py"
SB=e2e-live-$$
trap '"$MSB" rm -f "$SB" e2e-a-$$ e2e-b-$$ e2e-c-$$ e2e-race-$$ >/dev/null 2>&1; rm -rf "$WORK"' EXIT

sb_status() { "$MSB" ls -a --format json | python3 -c "
import json,sys
for s in json.load(sys.stdin):
    if s['name'] == sys.argv[1]: print(s['status'], s['exit_code'])" "$1"; }

t_01_run_detached_then_exec() {
        run_msb run -d --name "$SB" busybox -- sh -c 'echo started; echo to-err >&2; trap "echo bye; exit 7" TERM; while :; do sleep 1; done'
        assert_eq status 0 "$RC"
        assert_eq "run -d prints the name" "$SB" "$OUT"
        run_msb ls
        assert_contains "ls" "$SB" "$OUT"
        assert_contains "ls" running "$OUT"
        run_msb exec "$SB" sh -c 'echo "$HOSTNAME"; echo e >&2; exit 5'
        assert_eq "exec status" 5 "$RC"
        assert_eq "exec stdout" "$SB" "$OUT"
        assert_eq "exec stderr" e "$ERR"
}

t_02_exec_env_workdir_user() {
        run_msb exec -e FOO=bar -w /tmp/wd -u 1000:1000 "$SB" sh -c 'echo $FOO $(pwd) $(id -u):$(id -g)'
        assert_eq status 0 "$RC"
        assert_eq out "bar /tmp/wd 1000:1000" "$OUT"
        run_msb exec "$SB" no-such-command
        assert_eq "exec not found" 127 "$RC"
        assert_contains stderr "no-such-command" "$ERR"
}

t_03_twenty_concurrent_execs() {
        local i pids=()
        for i in $(seq 1 20); do
                (set +e; "$MSB" exec "$SB" sh -c "head -c $((i * 5000)) /dev/zero | tr '\\0' x$i | sha256sum | cut -c1-16; exit $i" \
                        >"$WORK/c$i.out" 2>"$WORK/c$i.err"; echo $? >"$WORK/c$i.rc") &
                pids+=($!)
        done
        wait "${pids[@]}" || true
        for i in $(seq 1 20); do
                want=$(head -c $((i * 5000)) /dev/zero | tr '\0' "x$i" | sha256sum | cut -c1-16)
                assert_eq "exec $i output" "$want" "$(cat "$WORK/c$i.out")"
                assert_eq "exec $i status" "$i" "$(cat "$WORK/c$i.rc")"
        done
}

t_04_exec_stdin_and_big_output() {
        head -c 3000000 /dev/urandom >"$WORK/in.bin"
        want=$(sha256sum <"$WORK/in.bin" | cut -d' ' -f1)
        got=$("$MSB" exec -i "$SB" sha256sum <"$WORK/in.bin" | cut -d' ' -f1)
        assert_eq "3 MB stdin checksum" "$want" "$got"
        got=$("$MSB" exec "$SB" sh -c 'head -c 20000000 /dev/zero' | wc -c)
        assert_eq "20 MB of output" 20000000 "$got"
}

t_05_logs_apart_and_filters() {
        run_msb logs "$SB"
        assert_eq "logs stdout" started "$OUT"
        assert_eq "logs stderr" to-err "$ERR"
        run_msb logs -t --tail 1 "$SB"
        assert_contains "logs -t" "Z " "$OUT$ERR"
        run_msb logs --since 1h "$SB"
        assert_eq "since 1h" started "$OUT"
        run_msb logs --since 2099-01-01T00:00:00Z "$SB"
        assert_eq "since the future" "" "$OUT$ERR"
}

t_06_filesystem_survives_stop_and_start() {
        run_msb exec "$SB" sh -c 'echo persist >/root/kept; mkdir -p /opt/x; echo y >/opt/x/f; rm /bin/vi; sync'
        assert_eq status 0 "$RC"
        "$MSB" logs -f "$SB" >"$WORK/follow.out" 2>&1 &
        local fpid=$!
        sleep 0.5
        run_msb stop -t 20 "$SB"
        assert_eq "stop" 0 "$RC"
        # logs -f ends by itself when the sandbox stops
        wait $fpid || true
        assert_contains "logs -f saw the goodbye" bye "$(cat "$WORK/follow.out")"
        assert_eq "status after stop" "stopped 7" "$(sb_status "$SB")"
        run_msb wait "$SB"
        assert_eq "wait prints the exit status" 7 "$OUT"
        run_msb exec "$SB" true
        assert_eq "exec into a stopped sandbox" 125 "$RC"
        assert_contains "exec into a stopped sandbox" "not running" "$ERR"
        run_msb start "$SB"
        assert_eq "start" 0 "$RC"
        run_msb exec "$SB" sh -c 'cat /root/kept /opt/x/f; ls /bin/vi 2>&1'
        assert_contains "file kept" persist "$OUT"
        assert_contains "dir kept" y "$OUT"
        assert_contains "deletion kept" "No such file" "$OUT"
        run_msb logs "$SB"
        assert_eq "logs across restarts" "started
bye
started" "$OUT"
}

t_07_kill_and_stop_without_grace() {
        run_msb kill -s USR1 "$SB"
        assert_eq "kill" 0 "$RC"
        run_msb wait "$SB"
        assert_eq "USR1 killed it (wait: rc $RC, stderr: $ERR)" 138 "$OUT"
        assert_eq "status" "stopped 138" "$(sb_status "$SB")"
        run_msb start "$SB"
        run_msb stop -t 0 "$SB"
        assert_eq "stop -t 0" "stopped 137" "$(sb_status "$SB")"
}

t_07b_restart_and_second_attach() {
        run_msb restart -t 1 "$SB"
        assert_eq "restart" 0 "$RC"
        assert_eq "running after restart" running "$(sb_status "$SB" | cut -d' ' -f1)"
        pids=$("$MSB" inspect "$SB" | python3 -c 'import json,sys; p=json.load(sys.stdin)[0]["state"]["pids"]; print(p["supervisor"], p["qemu"], len(p["fs_servers"]))')
        set -- $pids
        kill -0 "$1" && kill -0 "$2" || fail "inspect's pids are not alive: $pids"
        assert_eq "one fs server (no volumes)" 1 "$3"
        "$MSB" attach --no-stdin "$SB" >"$WORK/attach1.out" 2>&1 &
        local a=$!
        sleep 1
        run_msb attach --no-stdin "$SB"
        assert_eq "second attach" 125 "$RC"
        assert_contains "second attach" "attached already" "$ERR"
        kill -9 $a 2>/dev/null || true
        wait $a 2>/dev/null || true
}

t_08_cli_killed_during_exec_and_run_d() {
        run_msb start "$SB"
        "$MSB" exec "$SB" sh -c 'sleep 600' &
        local p=$!
        sleep 2
        kill -9 $p
        wait $p 2>/dev/null || true
        run_msb exec "$SB" echo still-here
        assert_eq "sandbox outlives a killed exec client" still-here "$OUT"
        "$MSB" run -d --name "e2e-a-$$" busybox -- sleep 600 >/dev/null &
        p=$!
        # killed while it boots the VM: the sandbox either runs or is gone
        sleep 0.5
        kill -9 $p
        wait $p 2>/dev/null || true
        sleep 3
        st=$(sb_status "e2e-a-$$")
        case "$st" in "running -1"|"running None"|"") ;; *) fail "after a killed run -d: '$st'" ;; esac
        "$MSB" rm -f "e2e-a-$$" >/dev/null 2>&1
        true
}

t_09_supervisor_killed_is_crashed() {
        pid=$("$MSB" inspect "$SB" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"]["pid"])')
        [ "$pid" -gt 0 ] || fail "no supervisor pid in inspect"
        kill -9 "$pid"
        sleep 1
        assert_eq "status" crashed "$(sb_status "$SB" | cut -d' ' -f1)"
        pgrep -f "qemu-system.*$(basename "$RUNDIR")" >/dev/null && true
        run_msb start "$SB"
        assert_eq "start after crash" 0 "$RC"
        run_msb exec "$SB" cat /root/kept
        assert_eq "disk intact after a crash" persist "$OUT"
        # a host reboot: the runtime dir is gone, the state still says running
        pid=$("$MSB" inspect "$SB" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"]["pid"])')
        rtd=$("$MSB" inspect "$SB" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["paths"]["runtime_dir"])')
        kill -9 "$pid"
        sleep 1
        rm -rf "$rtd"
        run_msb ls -a
        assert_contains "ls after reboot" crashed "$OUT"
        run_msb start "$SB"
        run_msb exec "$SB" cat /root/kept
        assert_eq "disk intact after a reboot" persist "$OUT"
}

t_10_bad_input() {
        run_msb exec no-such-sandbox true
        assert_eq "unknown sandbox" 125 "$RC"
        assert_contains "names it" "no-such-sandbox" "$ERR"
        run_msb create --name "$SB" busybox
        assert_eq "name taken" 125 "$RC"
        assert_contains "name taken" "already in use" "$ERR"
        run_msb create --name 'bad/name' busybox
        assert_eq "invalid name" 125 "$RC"
        assert_contains "invalid name" "invalid" "$ERR"
        run_msb create --name a busybox
        assert_eq "one-letter name (docker's grammar)" 125 "$RC"
        run_msb rm "$SB"
        assert_eq "rm of a running sandbox" 125 "$RC"
        assert_contains "rm of a running sandbox" "rm -f" "$ERR"
        run_msb kill -s NOPE "$SB"
        assert_eq "bad signal" 125 "$RC"
        run_msb start "$SB"
        assert_eq "start a running sandbox" 125 "$RC"
        assert_contains "already running" "already running" "$ERR"
}

t_11_create_races() {
        "$MSB" create --name "e2e-race-$$" busybox >"$WORK/r1" 2>&1 &
        local a=$!
        "$MSB" create --name "e2e-race-$$" busybox >"$WORK/r2" 2>&1 &
        local b=$!
        ra=0 rb=0
        wait $a || ra=$?
        wait $b || rb=$?
        assert_eq "one create wins" 125 "$((ra + rb))"
        assert_eq "created" "created" "$(sb_status "e2e-race-$$" | cut -d' ' -f1)"
        "$MSB" rm "e2e-race-$$" >/dev/null
        ls "$DATA/sandboxes" | grep -q "race-$$" && fail "leftover of the race"
        true
}

t_12_no_main_process_stays_up() {
        run_msb create --name "e2e-b-$$" --entrypoint '' busybox
        assert_eq create 0 "$RC"
        run_msb start "e2e-b-$$"
        assert_eq start 0 "$RC"
        run_msb exec "e2e-b-$$" sh -c 'echo up'
        assert_eq "exec into a sandbox without a main process" up "$OUT"
        run_msb stop "e2e-b-$$"
        assert_eq "stopped" "stopped" "$(sb_status "e2e-b-$$" | cut -d' ' -f1)"
        run_msb rm "e2e-b-$$"
        assert_eq rm 0 "$RC"
}

t_13_terminal_exec() {
        cat >"$WORK/pty1" <<'EOF'
size 33 101
expect # 
send stty size; echo "[$TERM]"\r
expect 33 101
size 40 120
sleep 0.5
send stty size\r
expect 40 120
send sleep 100\r
sleep 1
send \x03
expect # 
send exit 3\r
close
EOF
        out=$(TERM=xterm-256color $PTY "$WORK/pty1" -- "$MSB" exec -it "$SB" sh)
        assert_contains "initial size" "33 101" "$out"
        assert_contains "TERM passed" "[xterm-256color]" "$out"
        assert_contains "resized" "40 120" "$out"
        assert_contains "exit status, raw mode restored" "PTYDRIVE status=3 attrs=same" "$out"
}

t_13b_terminal_restored_when_the_command_or_vm_dies() {
        cat >"$WORK/pty5" <<'EOF'
expect # 
send kill -9 $$\r
close
EOF
        out=$($PTY "$WORK/pty5" -- "$MSB" exec -it "$SB" sh)
        assert_contains "SIGKILL of the command" "PTYDRIVE status=137 attrs=same" "$out"
        run_msb run -d --name "e2e-b-$$" busybox -- sleep 1000
        pid=$("$MSB" inspect "e2e-b-$$" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"]["pid"])')
        cat >"$WORK/pty6" <<EOF
expect # 
run kill -9 $pid
close
EOF
        out=$($PTY "$WORK/pty6" -- "$MSB" exec -it "e2e-b-$$" sh)
        assert_contains "the VM died under the terminal" "PTYDRIVE status=125 attrs=same" "$out"
        assert_contains "says so" "connection to its supervisor ended" "$out"
        "$MSB" rm -f "e2e-b-$$" >/dev/null
}

t_14_terminal_run_detach_attach() {
        cat >"$WORK/pty2" <<'EOF'
expect # 
send echo one\r
expect one
send \x10\x11
close
EOF
        out=$($PTY "$WORK/pty2" -- "$MSB" run -it --name "e2e-c-$$" busybox -- sh)
        assert_contains "detached" "detached from" "$out"
        assert_contains "raw mode restored" "PTYDRIVE status=0 attrs=same" "$out"
        assert_eq "still running" running "$(sb_status "e2e-c-$$" | cut -d' ' -f1)"
        cat >"$WORK/pty3" <<'EOF'
send echo two\r
expect two
send exit 4\r
close
EOF
        out=$($PTY "$WORK/pty3" -- "$MSB" attach "e2e-c-$$")
        assert_contains "attach: exit status" "PTYDRIVE status=4 attrs=same" "$out"
        assert_eq "stopped" "stopped 4" "$(sb_status "e2e-c-$$")"
        "$MSB" rm "e2e-c-$$" >/dev/null
}

t_14b_vi_and_job_control_in_a_terminal() {
        cat >"$WORK/pty4" <<'EOF'
expect # 
send busybox vi /tmp/note\r
sleep 1
send ihello from vi\x1b:wq\r
expect # 
send cat /tmp/note\r
expect hello from vi
send sleep 100\r
sleep 1
send \x1a
expect Stopped
send kill -9 %1; echo killed-$?\r
expect killed-0
sleep 0.5
send exit\r
sleep 0.5
send exit\r
close
EOF
        out=$($PTY "$WORK/pty4" -- "$MSB" exec -it "$SB" sh)
        assert_contains "vi wrote the file" "hello from vi" "$out"
        assert_contains "Ctrl-Z stopped the job" "Stopped" "$out"
        assert_contains "raw mode restored" "PTYDRIVE status=0 attrs=same" "$out"
}

t_14c_lifetimes_and_log_rotation() {
        run_msb run -d --name "e2e-b-$$" --idle-timeout 3 busybox -- sleep 1000
        run_msb run -d --name "e2e-c-$$" --max-duration 4 busybox -- sh -c 'trap "exit 9" TERM; while :; do sleep 1; done'
        # 12 MB of output: the log rotates at 10 MiB and keeps one old file
        run_msb exec "e2e-b-$$" true
        run_msb wait "e2e-b-$$"
        assert_eq "idle timeout stopped it (SIGTERM)" 143 "$OUT"
        run_msb wait "e2e-c-$$"
        assert_eq "max duration stopped it" 9 "$OUT"
        "$MSB" rm "e2e-b-$$" "e2e-c-$$" >/dev/null
        run_msb run --name "e2e-b-$$" busybox -- sh -c 'i=0; while [ $i -lt 120 ]; do head -c 100000 /dev/zero | tr "\0" a | fold -w 99; i=$((i+1)); done; echo last-line'
        assert_eq "run --name status" 0 "$RC"
        dir=$DATA/sandboxes/e2e-b-$$
        [ -f "$dir/main.log.1" ] || fail "the log did not rotate"
        total=$(cat "$dir"/main.log* | wc -c)
        [ "$total" -lt $((21 * 1024 * 1024)) ] || fail "logs take $total bytes"
        run_msb logs --tail 1 "e2e-b-$$"
        assert_eq "the newest line is kept" last-line "$OUT"
        "$MSB" rm "e2e-b-$$" >/dev/null
}

t_15_timeouts() {
        run_msb exec --timeout 2 "$SB" sleep 100
        assert_eq "exec --timeout" 124 "$RC"
        assert_contains "says so" "timed out" "$ERR"
        run_msb run --timeout 3 busybox -- sleep 100
        assert_eq "run --timeout" 124 "$RC"
}

t_16_rm_force_leaves_nothing() {
        run_msb rm -f "$SB"
        assert_eq "rm -f" 0 "$RC"
        run_msb ls -a -q
        assert_not_contains "gone" "$SB" "$OUT"
        [ ! -e "$DATA/sandboxes/$SB" ] || fail "sandbox dir left behind"
        assert_eq "nothing left behind" "$BEFORE" "$(leak_snapshot)"
}

BEFORE=$(leak_snapshot)
run_tests
