#!/usr/bin/env bash
# End-to-end: processes by id in a running sandbox (kept processes that
# outlive their client, backlogs, several readers, one stdin writer,
# signals, resizes, the listing, records after the end), through the
# library (tests/e2e/procs-drive.c).  One sandbox for every test.
. "$(dirname "$0")/lib.sh"

DRIVE=$ROOT/build/tests/procs-drive
SB=e2e-procs-$$
trap '"$MSB" rm -f "$SB" >/dev/null 2>&1; rm -rf "$WORK"' EXIT

# drive VERB ARGS...: the driver, its stdout in OUT, stderr in ERR, status in RC
drive() {
        "$DRIVE" "$SB" "$@" >"$WORK/dout" 2>"$WORK/derr" && RC=0 || RC=$?
        OUT=$(cat "$WORK/dout")
        ERR=$(cat "$WORK/derr")
}
# the line of process $1 in the listing
proc_line() { "$DRIVE" "$SB" list | awk -v id="$1" '$1 == id'; }
# kept ID: start a kept process, its id in KID
kept() {
        drive exec "$@"
        [ "$RC" = 0 ] || { fail "exec $*: $ERR"; return 1; }
        KID=${OUT%% *}
}
# until process $1's line contains $2 (at most 30 s)
wait_line() {
        for _ in $(seq 150); do
                case $(proc_line "$1") in *"$2"*) return 0 ;; esac
                sleep 0.2
        done
        fail "process $1 never showed '$2': $(proc_line "$1")"
}

t_01_start() {
        [ -x "$DRIVE" ] || { fail "$DRIVE is not built (ninja -C build)"; return 1; }
        run_msb run -d --name "$SB" busybox -- sh -c 'while :; do sleep 1; done'
        assert_eq "run -d" 0 "$RC"
        drive list
        assert_eq list 0 "$RC"
        assert_contains "the main process is listed" "1 " "$OUT"
        assert_contains "as main" " - main running" "$OUT"
}

t_02_counter_outlives_its_client_backlog_then_live() {
        kept -- sh -c 'i=0; while [ $i -lt 60 ]; do echo $i; i=$((i + 1)); sleep 1; done'
        [ "${OUT#* }" -gt 0 ] || fail "pid not known after exec: $OUT"
        sleep 3
        local line
        line=$(proc_line "$KID")
        assert_contains "listed kept and running" "kept - running" "$line"
        assert_contains "with its command" "sh -c i=0;" "$line"
        # a later client: what it missed, then what comes
        drive attach -w 2500 "$KID"
        assert_eq attach 0 "$RC"
        assert_contains "the STARTED event, its pid" "#started $(echo "$line" | cut -d' ' -f2)" "$ERR"
        case $OUT in 0$'\n'1$'\n'2$'\n'*) ;; *) fail "backlog from the start expected, got '$OUT'" ;; esac
        local n
        n=$(echo "$OUT" | wc -l)
        [ "$n" -ge 5 ] || fail "live output after the backlog expected (5+ lines), got $n: '$OUT'"
        # two readers at once, one without the backlog
        "$DRIVE" "$SB" attach -n -w 2500 "$KID" >"$WORK/r1" 2>/dev/null &
        local bg=$!
        drive attach -w 2500 "$KID"
        wait $bg
        case $(cat "$WORK/r1") in 0$'\n'*) fail "-n got the backlog: $(head -3 "$WORK/r1")" ;; esac
        [ -s "$WORK/r1" ] || fail "the second reader got nothing"
        assert_contains "the first reader still has the backlog" "0" "$(echo "$OUT" | head -1)"
        drive signal "$KID" 9
}

t_03_stdin_from_two_connections_then_closed() {
        kept -i -- sh -c 'cat; echo done'
        drive write "$KID" "hello "
        assert_eq "first write" 0 "$RC"
        # one writer at a time: a reader holding stdin makes a writer wait
        "$DRIVE" "$SB" attach -i -w 3000 "$KID" >/dev/null 2>&1 &
        local holder=$!
        sleep 1
        drive write "$KID" "nope"
        assert_eq "a second writer" 1 "$RC"
        assert_contains "is refused, busy" "error $(python3 -c 'import errno; print(errno.EBUSY)')" "$ERR"
        assert_contains "and says so" "has a stdin writer already" "$ERR"
        wait $holder
        # the holder went: stdin is still open
        drive write "$KID" "world" eof
        assert_eq "second write with eof" 0 "$RC"
        drive attach "$KID"
        assert_eq "cat's output" "hello worlddone" "$(echo "$OUT" | tr -d '\n')"
        assert_contains "its exit" "#exit 0" "$ERR"
        drive write "$KID" "late"
        assert_eq "writing to one that ended" 1 "$RC"
        assert_contains "EPIPE" "error $(python3 -c 'import errno; print(errno.EPIPE)')" "$ERR"
}

t_04_signal_by_id_and_status_kept() {
        kept -- sh -c 'echo up; exec sleep 1000'
        sleep 1
        drive signal "$KID" 15
        assert_eq signal 0 "$RC"
        wait_line "$KID" "exit=143"
        drive attach "$KID"
        assert_eq "its output after the end" "up" "$OUT"
        assert_contains "then its exit" "#exit 143" "$ERR"
        drive signal "$KID" 15
        assert_eq "signal to one that ended" 1 "$RC"
        assert_contains ESRCH "has exited" "$ERR"
        # relay works on an attached kept process too
        drive attach -r "$KID"
        assert_eq "relay" "up" "$OUT"
        assert_contains "relay's status" "#exit 143" "$ERR"
}

t_05_reader_that_stalls_is_dropped_sandbox_answers() {
        kept -- yes flood
        drive stall "$KID" 6
        assert_eq stall 0 "$RC"
        assert_contains "the stalled reader was let go" "reset" "$OUT"
        run_msb exec "$SB" echo still-here
        assert_eq "exec while it floods" "still-here" "$OUT"
        drive attach -n -w 1000 "$KID"
        # live output only: its first line may be cut, the next is whole
        assert_eq "it still runs and prints" "flood" "$(echo "$OUT" | sed -n 2p)"
        drive signal "$KID" 9
        wait_line "$KID" "exit=137"
}

t_06_exit_status_after_the_end() {
        kept -- sh -c 'echo bye; exit 7'
        wait_line "$KID" "exit=7"
        drive attach "$KID"
        assert_eq output bye "$OUT"
        assert_contains status "#exit 7" "$ERR"
}

t_07_terminal_resize_and_pid_lookup() {
        kept -t -i -- sh
        local pid=${OUT#* }
        drive pid "$pid"
        assert_eq "found by pid" "$KID" "$OUT"
        drive resize "$KID" 30 100
        assert_eq resize 0 "$RC"
        drive write "$KID" $'stty size; exit 3\n'
        wait_line "$KID" "exit=3"
        drive attach "$KID"
        assert_contains "the new size" "30 100" "$OUT"
        # a process without a terminal
        kept -- sleep 100
        drive resize "$KID" 30 100
        assert_contains "no terminal" "has no terminal" "$ERR"
        drive signal "$KID" 9
}

t_08_errors_name_the_process() {
        drive attach 9999
        assert_eq status 1 "$RC"
        assert_contains "ENOENT" "no process 9999" "$ERR"
        assert_contains "names the sandbox" "$SB" "$ERR"
        "$DRIVE" no-such-sandbox-$$ list >/dev/null 2>"$WORK/e" && fail "listing a missing sandbox worked"
        run_msb create --name "$SB-stopped" busybox -- true
        "$DRIVE" "$SB-stopped" list >/dev/null 2>"$WORK/e" || true
        assert_contains "not running: ESRCH" "error $(python3 -c 'import errno; print(errno.ESRCH)')" "$(cat "$WORK/e")"
        "$MSB" rm -f "$SB-stopped" >/dev/null 2>&1
        # a process that is not kept is its client's alone
        "$MSB" exec "$SB" sleep 30 &
        local ex=$!
        sleep 2
        local id
        id=$("$DRIVE" "$SB" list | awk '$3 == "-" && $4 == "-" && $NF == "30" {print $1}' | tail -1)
        [ -n "$id" ] || fail "the plain exec is not listed"
        drive attach "$id"
        assert_contains "not kept: busy" "is not kept" "$ERR"
        drive signal "$id" 9
        assert_eq "but it can be signalled" 0 "$RC"
        local rc
        wait $ex && rc=0 || rc=$?
        assert_eq "its client saw the kill" 137 "$rc"
}

t_99_remove() {
        run_msb rm -f "$SB"
        assert_eq rm 0 "$RC"
}

run_tests
