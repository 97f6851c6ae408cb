#!/usr/bin/env bash
# End-to-end: msb-runtime as the OCI runtime of real podman (with conmon)
# and containerd (ctr, runc v2 shim), against the local registry, and the
# runtime spec's state machine driven by hand.  Containers are shared
# between assertions: every boot costs a second or two under TCG.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/e2e/registry.sh"

RT=$ROOT/build/msb-runtime
PTY="python3 $ROOT/tests/e2e/pty-drive.py"
IMG=$REG/library/alpine:latest
PM_ROOT=$WORK/podman
# podman's own store and runtime dirs: the suite touches nothing of the host's
PODMAN=(podman --root "$PM_ROOT/root" --runroot "$PM_ROOT/run" --cgroup-manager cgroupfs --events-backend file
        --runtime "$RT")
# no CAP_SYS_RESOURCE here: podman's default limits cannot be raised
UL=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
RTROOT=$WORK/rt
CTD=$WORK/containerd

for t in podman conmon containerd ctr; do
        command -v $t >/dev/null || { echo "test-oci: $t is not installed (apt-get install podman containerd)" >&2; exit 1; }
done
cleanup() {
        "${PODMAN[@]}" rm -af -t 0 >/dev/null 2>&1
        # started inside a test's subshell: its pid is in a file
        [ -f "$CTD/pid" ] && kill "$(cat "$CTD/pid")" 2>/dev/null
        for d in "$RTROOT"/*/; do [ -d "$d" ] && "$RT" --root "$RTROOT" delete --force "$(basename "$d")"; done 2>/dev/null
        kill "$REGPID" 2>/dev/null
        wait "$REGPID" 2>/dev/null
        find /sys/fs/cgroup -maxdepth 3 -depth -type d -path "*/msbt$$*" -exec rmdir {} + 2>/dev/null
        ip netns del msbt$$ 2>/dev/null
        ip link del msbt$$a 2>/dev/null
        rm -rf "$WORK"
}
trap cleanup EXIT
"${PODMAN[@]}" pull -q --tls-verify=false "$IMG" >/dev/null || { echo "podman pull $IMG failed" >&2; exit 1; }

run_pm() { # podman, capturing OUT, ERR, RC
        "${PODMAN[@]}" "$@" >"$WORK/out" 2>"$WORK/err" && RC=0 || RC=$?
        OUT=$(cat "$WORK/out")
        ERR=$(cat "$WORK/err")
}
pm_status() { "${PODMAN[@]}" ps -a --filter "name=^$1\$" --format '{{.Status}}'; }

t_01_podman_run_prints_from_the_guest_kernel_and_exits_with_its_status() {
        run_pm run --rm "${UL[@]}" "$IMG" sh -c 'echo hi; uname -r; exit 7'
        assert_eq status 7 "$RC"
        assert_eq "first line" hi "$(echo "$OUT" | head -1)"
        local kr
        kr=$(echo "$OUT" | sed -n 2p)
        [ -n "$kr" ] && [ "$kr" != "$(uname -r)" ] || fail "uname -r in the container: '$kr' is the host's kernel"
}

t_02_stdin_env_workdir_user_and_volumes() {
        mkdir -p "$WORK/vol" && chmod 777 "$WORK/vol"
        echo host-file >"$WORK/ro.txt"
        echo data | "${PODMAN[@]}" run --rm -i "${UL[@]}" -e FOO=bar -w /tmp -u 1000:1000 \
                -v "$WORK/vol:/data" -v "$WORK/ro.txt:/etc/ro.txt:ro" "$IMG" \
                sh -c 'cat; echo "$FOO $(pwd) $(id -u):$(id -g)"; cat /etc/ro.txt; echo w >/data/made;
                       echo x >/etc/ro.txt && echo ro-written || echo ro-refused' >"$WORK/out" 2>"$WORK/err" && RC=0 || RC=$?
        OUT=$(cat "$WORK/out")
        assert_eq status 0 "$RC"
        assert_eq "stdin, env, workdir, user, file volume" "data
bar /tmp 1000:1000
host-file
ro-refused" "$OUT"
        assert_eq "written through the dir volume" w "$(cat "$WORK/vol/made")"
        assert_eq "the :ro file is unchanged" host-file "$(cat "$WORK/ro.txt")"
}

t_03_terminal_resize_and_ctrl_c() {
        cat >"$WORK/pty1" <<'EOF'
size 33 101
expect # 
send stty size\r
expect 33 101
size 40 120
send stty size\r
expect 40 120
send sleep 100\r
sleep 1
send \x03
expect # 
send exit 3\r
close
EOF
        out=$($PTY "$WORK/pty1" -- "${PODMAN[@]}" run --rm -it "${UL[@]}" "$IMG" sh)
        assert_contains "initial size" "33 101" "$out"
        assert_contains "resized" "40 120" "$out"
        assert_contains "Ctrl-C ended sleep, exit status" "PTYDRIVE status=3" "$out"
}

t_04_detached_exec_logs_stop() {
        # ignores SIGTERM: podman stop must fall back to SIGKILL after -t
        run_pm run -d --name oci-d "${UL[@]}" "$IMG" sh -c 'trap "" TERM; echo started; sleep 1000'
        assert_eq "run -d" 0 "$RC" || { echo "$ERR" >&2; false; }
        assert_contains "ps: up" Up "$(pm_status oci-d)"
        run_pm exec oci-d sh -c 'echo in-exec; exit 4'
        assert_eq "exec status" 4 "$RC"
        assert_eq "exec output" in-exec "$OUT"
        run_pm exec oci-d no-such-command
        assert_eq "exec of a missing command" 127 "$RC"
        run_pm logs oci-d
        assert_contains logs started "$OUT"
        local t0=$SECONDS
        run_pm stop -t 2 oci-d
        assert_eq "stop" 0 "$RC"
        [ $((SECONDS - t0)) -ge 2 ] || fail "stop did not wait for the grace period"
        assert_contains "ps: exited 137" "Exited (137)" "$(pm_status oci-d)"
        run_pm rm oci-d
        assert_eq rm 0 "$RC"
}

t_04b_publish_a_port_and_the_namespace_network() {
        # the host port is podman's (CNI's DNAT to the container's address);
        # the guest owns that address behind msb-runtime's tap redirect
        run_pm run -d --name oci-p "${UL[@]}" -p 127.0.0.1::80 "$IMG" sh -c '
                ip -4 -o addr show eth0; ip route show default; while true; do echo "hello from $(hostname)" | nc -l -p 80; done'
        assert_eq "run -d -p" 0 "$RC" || { echo "$ERR" >&2; false; }
        local port ip
        port=$("${PODMAN[@]}" port oci-p 80/tcp | sed 's/.*://')
        ip=$("${PODMAN[@]}" inspect --format '{{.NetworkSettings.IPAddress}}' oci-p)
        local got=""
        for _ in $(seq 60); do
                got=$(python3 - "$port" <<'PY' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
print(s.recv(100).decode().strip())
PY
) && [ -n "$got" ] && break
                sleep 0.5
        done
        assert_contains "-p 127.0.0.1:$port:80 reaches the guest's server" "hello from" "$got"
        run_pm logs oci-p
        assert_contains "the guest has the namespace's address" "inet $ip/" "$OUT"
        assert_contains "and its default route" "default via" "$OUT"
        run_pm rm -f -t 0 oci-p
        assert_eq "rm -f" 0 "$RC"
        run_pm run --rm "${UL[@]}" --network none "$IMG" sh -c 'ls /sys/class/net | tr "\n" " "'
        assert_eq "--network none: lo alone" "lo " "$OUT"
}

t_04c_namespace_claims_by_hand() {
        # a namespace of our own: the first VM takes its interface, a second
        # one in it (a pod's next container) gets lo alone; an interface with
        # its owner's ingress qdisc is refused and left as it was
        local ns=msbt$$ b=$WORK/nsb
        ip netns add $ns
        ip link add msbt$$a type veth peer name eth0 netns $ns
        ip -n $ns addr add 192.0.2.9/24 dev eth0
        ip -n $ns link set eth0 up
        mkdir -p "$b"
        cp -a "$(busybox_rootfs)" "$b/rootfs"
        (cd "$b" && runc spec)
        python3 - "$b/config.json" "/run/netns/$ns" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["root"]["readonly"] = False
c["process"]["args"] = ["sh", "-c", "ls /sys/class/net | tr '\\n' ' ' >/net-$(hostname); ip -4 -o addr show eth0 >>/net-$(hostname) 2>&1; sleep 1000"]
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"] + [{"type": "network", "path": sys.argv[2]}]
json.dump(c, open(sys.argv[1], "w"))
EOF
        local rc1 rc2
        "$RT" --root "$RTROOT" --log "$WORK/ns.log" create --bundle "$b" nsc1 </dev/null >/dev/null 2>&1 && rc1=0 || rc1=$?
        sed -i 's/"hostname": "[^"]*"/"hostname": "second"/' "$b/config.json"
        "$RT" --root "$RTROOT" --log "$WORK/ns.log" create --bundle "$b" nsc2 </dev/null >/dev/null 2>&1 && rc2=0 || rc2=$?
        assert_eq "two creates in one namespace" "0 0" "$rc1 $rc2"
        rt start nsc1
        rt start nsc2
        for _ in $(seq 100); do [ -s "$b/rootfs/net-second" ] && [ -s "$b/rootfs/net-runc" ] && break; sleep 0.1; done
        sleep 0.5
        assert_contains "the first VM has the interface and its address" "inet 192.0.2.9/24" "$(cat "$b/rootfs/net-runc")"
        assert_contains "the second has lo alone" "lo " "$(head -c 3 "$b/rootfs/net-second")"
        assert_not_contains "the second has no eth0" "192.0.2.9" "$(cat "$b/rootfs/net-second")"
        assert_contains "a warning names the namespace" "is another container's VM" "$(cat "$WORK/ns.log")"
        rt delete --force nsc1
        rt delete --force nsc2
        # the owner's own ingress qdisc: refused, kept
        ip -n $ns link del msb0 2>/dev/null || true
        tc -n $ns qdisc del dev eth0 ingress 2>/dev/null || true
        tc -n $ns qdisc add dev eth0 ingress
        rt create --bundle "$b" nsc3
        assert_eq "create refused" 1 "$RC"
        assert_contains "the error names the qdisc" "already has an ingress qdisc" "$ERR"
        assert_contains "the owner's qdisc is still there" "ingress" "$(tc -n $ns qdisc show dev eth0)"
        assert_eq "no tap left" "" "$(ip -n $ns -o link show msb0 2>/dev/null)"
        ip netns del $ns
        ip link del msbt$$a 2>/dev/null || true
}

t_05_kill_and_rm_force() {
        run_pm run -d --name oci-k "${UL[@]}" "$IMG" sleep 1000
        assert_eq "run -d" 0 "$RC" || { echo "$ERR" >&2; false; }
        run_pm kill oci-k
        assert_eq kill 0 "$RC"
        run_pm wait oci-k
        assert_eq "wait: killed by SIGKILL" 137 "$OUT"
        run_pm start oci-k
        assert_eq "start again" 0 "$RC"
        assert_contains "ps: up again" Up "$(pm_status oci-k)"
        run_pm rm -f oci-k
        assert_eq "rm -f" 0 "$RC"
        assert_eq "gone" "" "$(pm_status oci-k)"
        assert_eq "no shim, exec relay or sandbox left" "0 " \
                "$(($(pgrep -cx msb-shim) + $(pgrep -cx msb-exec))) $(ls /run/msb-runtime/.msb/sandboxes 2>/dev/null)"
}

t_05b_readonly_root_mqueue_cgroup_shm_size_and_noexec_volume() {
        mkdir -p "$WORK/nx" && printf '#!/bin/sh\necho ran\n' >"$WORK/nx/s" && chmod 755 "$WORK/nx/s"
        run_pm run --rm "${UL[@]}" --read-only --shm-size 32m -v "$WORK/nx:/nx:noexec,nosuid" "$IMG" sh -c '
                touch /made 2>&1 && echo root-written
                touch /tmp/ok && echo tmp-written
                awk "\$2 == \"/dev/mqueue\" || \$2 == \"/sys/fs/cgroup\" {print \$2, \$3}" /proc/mounts
                df -k /dev/shm | awk "NR == 2 {print \"shm\", \$2}"
                grep " /nx " /proc/mounts | grep -o "nosuid,nodev,noexec"
                /nx/s || echo noexec-refused'
        assert_eq status 0 "$RC" || { echo "$ERR" >&2; false; }
        assert_contains "root.readonly: a write fails with EROFS" "Read-only file system" "$OUT"
        assert_not_contains "root.readonly: nothing written" root-written "$OUT"
        assert_contains "--read-only keeps a writable /tmp" tmp-written "$OUT"
        assert_contains "/dev/mqueue" "/dev/mqueue mqueue" "$OUT"
        assert_contains "/sys/fs/cgroup" "/sys/fs/cgroup cgroup2" "$OUT"
        assert_contains "--shm-size" "shm 32768" "$OUT"
        assert_contains "volume nosuid,noexec" "nosuid,nodev,noexec" "$OUT"
        assert_contains "noexec enforced" noexec-refused "$OUT"
        ! echo "$OUT" | grep -qx ran || fail "noexec: the script ran"
}

t_05c_confinement_caps_seccomp_masks_sysctl_no_new_privs() {
        printf '%s\n' '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"],' \
                '"action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}' >"$WORK/seccomp.json"
        local probe='grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status; mount | grep -E " /sys/firmware | /proc/sys "
                cat /proc/sys/net/ipv4/ip_default_ttl; echo 1 >/proc/sys/kernel/sysrq 2>/dev/null || echo sysrq-refused'
        run_pm run --rm "${UL[@]}" --sysctl net.ipv4.ip_default_ttl=42 "$IMG" sh -c "$probe"
        assert_eq status 0 "$RC" || { echo "$ERR" >&2; false; }
        # podman's default capabilities: chown dac_override fowner fsetid kill
        # setgid setuid setpcap net_bind_service sys_chroot setfcap
        assert_contains "capabilities: podman's default set" "CapEff:	00000000800405fb" "$OUT"
        assert_contains "bounding set too" "CapBnd:	00000000800405fb" "$OUT"
        assert_contains "podman's seccomp filter is loaded" "Seccomp:	2" "$OUT"
        assert_contains "maskedPaths: /sys/firmware" "on /sys/firmware type tmpfs (ro" "$OUT"
        assert_contains "readonlyPaths: /proc/sys" "on /proc/sys type proc (ro" "$OUT"
        assert_contains "--sysctl written" 42 "$OUT"
        assert_contains "a read-only /proc/sys refuses writes" sysrq-refused "$OUT"
        assert_contains "no no_new_privs unless asked" "NoNewPrivs:	0" "$OUT"
        run_pm run --rm "${UL[@]}" --cap-drop all --security-opt no-new-privileges \
                --security-opt seccomp="$WORK/seccomp.json" "$IMG" sh -c \
                'grep -E "^(CapEff|NoNewPrivs):" /proc/self/status; mkdir /tmp/d 2>&1 || true; chown 1 /tmp 2>&1 || true'
        assert_eq status 0 "$RC" || { echo "$ERR" >&2; false; }
        assert_contains "--cap-drop all" "CapEff:	0000000000000000" "$OUT"
        assert_contains "no-new-privileges" "NoNewPrivs:	1" "$OUT"
        assert_contains "the profile's errnoRet (ENOSYS)" "not implemented" "$OUT"
        assert_contains "without CAP_CHOWN root cannot chown" "Operation not permitted" "$OUT"
        # podman exec: the container's filter and the process's capabilities
        run_pm run -d --name oci-cf "${UL[@]}" --cap-drop all --cap-add kill "$IMG" sleep 1000
        assert_eq "run -d" 0 "$RC" || { echo "$ERR" >&2; false; }
        run_pm exec oci-cf grep -E "^(CapEff|Seccomp):" /proc/self/status
        assert_contains "exec: capabilities" "CapEff:	0000000000000020" "$OUT"
        assert_contains "exec: the filter" "Seccomp:	2" "$OUT"
        run_pm rm -f -t 0 oci-cf
}

start_containerd() {
        mkdir -p "$CTD"
        cat >"$CTD/config.toml" <<EOF
version = 2
root = "$CTD/root"
state = "$CTD/state"
[grpc]
  address = "$CTD/sock"
[plugins."io.containerd.grpc.v1.cri"]
  disable = true
EOF
        containerd --config "$CTD/config.toml" >"$CTD/log" 2>&1 &
        echo $! >"$CTD/pid"
        for _ in $(seq 100); do [ -S "$CTD/sock" ] && break; sleep 0.1; done
        ctr --address "$CTD/sock" images pull -q --plain-http "$IMG" >/dev/null
}
CTR() { ctr --address "$CTD/sock" "$@"; }

t_06_containerd_runs_and_kills() {
        start_containerd
        CTR run --rm --runc-binary "$RT" "$IMG" oci-c1 sh -c 'echo from-ctr; exit 5' >"$WORK/out" 2>"$WORK/err" && RC=0 || RC=$?
        assert_eq "ctr run: status" 5 "$RC"
        assert_contains "ctr run: output" from-ctr "$(cat "$WORK/out")"
        CTR run -d --runc-binary "$RT" "$IMG" oci-c2 sleep 1000 >/dev/null
        assert_contains "running" RUNNING "$(CTR task ls)"
        CTR task kill -s SIGKILL oci-c2
        for _ in $(seq 100); do CTR task ls | grep -q 'oci-c2.*STOPPED' && break; sleep 0.2; done
        assert_contains "stopped" STOPPED "$(CTR task ls | grep oci-c2)"
        CTR task delete oci-c2 >/dev/null
        CTR container delete oci-c2
}

rt() { # the runtime by hand, capturing OUT, ERR, RC
        "$RT" --root "$RTROOT" "$@" >"$WORK/out" 2>"$WORK/err" </dev/null && RC=0 || RC=$?
        OUT=$(cat "$WORK/out")
        ERR=$(cat "$WORK/err")
}

t_07_state_machine_conformance() {
        local b=$WORK/bundle
        mkdir -p "$b"
        cp -a "$(busybox_rootfs)" "$b/rootfs"
        (cd "$b" && runc spec)
        python3 - "$b/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["root"]["readonly"] = False
c["process"]["args"] = ["sh", "-c", "read x; grep CapEff /proc/self/status >/ran; exit 9"]
json.dump(c, open(sys.argv[1], "w"))
EOF
        mkfifo "$WORK/in"
        exec 7<>"$WORK/in"
        "$RT" --root "$RTROOT" create --bundle "$b" --pid-file "$WORK/pid" sm <&7 >/dev/null 2>&1 && RC=0 || RC=$?
        assert_eq create 0 "$RC"
        rt state sm
        assert_contains "created" '"status": "created"' "$OUT"
        assert_contains "pid of the shim" "\"pid\": $(cat "$WORK/pid")" "$OUT"
        rt delete sm
        assert_eq "delete while created" 1 "$RC"
        rt start sm
        assert_eq start 0 "$RC"
        rt state sm
        assert_contains "running" '"status": "running"' "$OUT"
        rt start sm
        assert_eq "start twice" 1 "$RC"
        assert_contains "start twice: error" "already running" "$ERR"
        rt delete sm
        assert_eq "delete while running" 1 "$RC"
        assert_contains "delete while running: error" "not stopped" "$ERR"
        echo go >&7
        exec 7>&-
        for _ in $(seq 100); do rt state sm; case $OUT in *stopped*) break ;; esac; sleep 0.2; done
        assert_contains "stopped" '"status": "stopped"' "$OUT"
        # runc spec's capabilities (audit_write, kill, net_bind_service;
        # ambient ones without inheritable ones are left out, as by runc)
        assert_eq "the process ran, with its capabilities" "CapEff:	0000000020000420" "$(cat "$b/rootfs/ran" 2>&1)"
        rt kill sm KILL
        assert_eq "kill when stopped" 1 "$RC"
        assert_contains "kill when stopped: error" "not running" "$ERR"
        rt delete sm
        assert_eq delete 0 "$RC"
        rt state sm
        assert_contains "gone" "does not exist" "$ERR"
        rt create --bundle "$b" sm2
        rt kill sm2 TERM
        assert_eq "kill a created container" 0 "$RC"
        rt delete --force sm2
        assert_eq "delete --force" 0 "$RC"
        assert_eq "nothing left in --root" "" "$(ls "$RTROOT")"
}

t_08_refusals_name_the_field() {
        local b=$WORK/bundle-bad
        mkdir -p "$b/rootfs"
        (cd "$b" && runc spec)
        python3 - "$b/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["linux"]["resources"]["devices"].append({"allow": True, "type": "b", "major": 8, "minor": 0, "access": "rwm"})
json.dump(c, open(sys.argv[1], "w"))
EOF
        rt --log "$WORK/log.json" --log-format json create --bundle "$b" bad
        assert_eq status 1 "$RC"
        assert_contains "the field" "linux.resources.devices[1]" "$ERR"
        assert_contains "json log" '"level":"error"' "$(cat "$WORK/log.json")"
        assert_eq "nothing left" "" "$(ls "$RTROOT")"
}

cg_dir() { # cg_dir CONTROLLER PATH: where a cgroup's files are on this host
        if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then echo "/sys/fs/cgroup$2"; else echo "/sys/fs/cgroup/$1$2"; fi
}
cg_file() { # cg_file V1FILE V2FILE CONTROLLER PATH
        if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then cat "/sys/fs/cgroup$4/$2"; else cat "/sys/fs/cgroup/$3$4/$1"; fi
}

t_09_the_bundles_cgroup_holds_its_limits_and_the_whole_vm() {
        local b=$WORK/bundle-cg cg=/msbt$$/c1
        mkdir -p "$b"
        cp -a "$(busybox_rootfs)" "$b/rootfs"
        (cd "$b" && runc spec)
        python3 - "$b/config.json" "$cg" <<'EOF2'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["root"]["readonly"] = False
c["process"]["args"] = ["sh", "-c", "read x; echo $(nproc) $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) >/ran"]
c["linux"]["cgroupsPath"] = sys.argv[2]
c["linux"]["resources"].update({"cpu": {"quota": 150000, "period": 100000}, "memory": {"limit": 400 << 20},
                                "pids": {"limit": 300}})
json.dump(c, open(sys.argv[1], "w"))
EOF2
        mkfifo "$WORK/in-cg"
        exec 7<>"$WORK/in-cg"
        "$RT" --root "$RTROOT" create --bundle "$b" --pid-file "$WORK/pid-cg" cg1 <&7 >/dev/null 2>"$WORK/err" && RC=0 || RC=$?
        assert_eq "create: status ($(cat "$WORK/err"))" 0 "$RC"
        # what a conformance run reads: the bundle's limits, in its cgroup
        assert_eq "memory limit" $((400 << 20)) "$(cg_file memory.limit_in_bytes memory.max memory "$cg")"
        if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
                assert_eq "cpu.max" "150000 100000" "$(cg_file - cpu.max cpu "$cg")"
        else
                assert_eq "cpu quota" 150000 "$(cg_file cpu.cfs_quota_us - cpu "$cg")"
                assert_eq "cpu period" 100000 "$(cg_file cpu.cfs_period_us - cpu "$cg")"
        fi
        assert_eq "pids limit" 300 "$(cg_file pids.max pids.max pids "$cg")"
        # the shim and everything it started: QEMU and msb's helpers
        local comms
        comms=$(for p in $(cat "$(cg_dir memory "$cg")/cgroup.procs"); do cat "/proc/$p/comm"; done | sort -u | tr '\n' ' ')
        assert_contains "the shim is in it" "msb-shim" "$comms"
        assert_contains "QEMU is in it" "qemu-system" "$comms"
        assert_contains "msb-fsd is in it" "msb-fsd" "$comms"
        assert_contains "the supervisor is in it" "msb-supervisor" "$comms"
        assert_contains "the pid file's process" "$(cat "$WORK/pid-cg")" "$(cat "$(cg_dir pids "$cg")/cgroup.procs")"
        # 1.5 CPUs round up; the VM fits in the limit with QEMU's share (96 MiB)
        local q
        for q in $(cat "$(cg_dir memory "$cg")/cgroup.procs"); do
                [ "$(cat "/proc/$q/comm")" = qemu-system-x86 ] && break
        done
        assert_contains "the VM's size" "-smp 2 -m 304M" "$(tr '\0' ' ' <"/proc/$q/cmdline")"
        rt start cg1
        echo go >&7
        exec 7>&-
        for _ in $(seq 100); do rt state cg1; case $OUT in *stopped*) break ;; esac; sleep 0.2; done
        assert_eq "the guest's vCPUs" 2 "$(awk '{print $1}' "$b/rootfs/ran")"
        rt delete cg1
        assert_eq delete 0 "$RC"
        local left
        left=$(ls -d /sys/fs/cgroup/*"$cg" /sys/fs/cgroup"$cg" 2>/dev/null || true)
        assert_eq "no cgroup left" "" "$left"
        for d in /sys/fs/cgroup/*/msbt$$ /sys/fs/cgroup/msbt$$; do [ ! -d "$d" ] || rmdir "$d"; done
        # an annotation may lower the size the limits give, not raise it
        python3 - "$b/config.json" <<'EOF2'
import json, sys
c = json.load(open(sys.argv[1]))
c["annotations"] = {"io.msb.cpus": "8"}
json.dump(c, open(sys.argv[1], "w"))
EOF2
        rt create --bundle "$b" cg2
        assert_eq "raised by an annotation: status" 1 "$RC"
        assert_contains "raised: the error" "annotations.io.msb.cpus: 8 vCPUs is more than linux.resources.cpu gives (2)" "$ERR"
        assert_eq "raised: no cgroup made" "" "$(ls -d /sys/fs/cgroup/*/msbt$$ /sys/fs/cgroup/msbt$$ 2>/dev/null || true)"
        assert_eq "raised: nothing left in --root" "" "$(ls "$RTROOT")"
        # a cgroup that already holds a process (a service's) is not taken:
        # delete would kill what is in it
        python3 - "$b/config.json" "/msbt$$/busy" <<'EOF2'
import json, sys
c = json.load(open(sys.argv[1]))
c["annotations"] = {}
c["linux"]["cgroupsPath"] = sys.argv[2]
json.dump(c, open(sys.argv[1], "w"))
EOF2
        local busy
        busy=$(cg_dir pids "/msbt$$/busy")
        mkdir -p "$busy"
        sleep 600 &
        local victim=$!
        echo "$victim" >"$busy/cgroup.procs"
        rt create --bundle "$b" cg3
        assert_eq "a busy cgroup: status" 1 "$RC"
        assert_contains "a busy cgroup: the error" "already holds processes or cgroups" "$ERR"
        kill -0 "$victim" || fail "the process in the busy cgroup was killed"
        kill "$victim"
        wait "$victim" 2>/dev/null || true
        assert_eq "busy: nothing left in --root" "" "$(ls "$RTROOT")"
        for d in /sys/fs/cgroup/*/msbt$$/busy /sys/fs/cgroup/msbt$$/busy /sys/fs/cgroup/*/msbt$$ /sys/fs/cgroup/msbt$$; do
                [ ! -d "$d" ] || rmdir "$d"
        done
}

t_10_podmans_limits_reach_its_cgroup() {
        run_pm run -d "${UL[@]}" --name cg-pm -m 320m --cpus 1.5 --pids-limit 200 "$IMG" sleep 600
        assert_eq "podman run -d: status ($ERR)" 0 "$RC"
        local id cg
        id=$("${PODMAN[@]}" inspect -f '{{.Id}}' cg-pm)
        cg=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["linux"]["cgroupsPath"])' \
                "$("${PODMAN[@]}" inspect -f '{{.StaticDir}}' cg-pm)/config.json" 2>/dev/null ||
             python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["linux"]["cgroupsPath"])' \
                "$PM_ROOT/root/overlay-containers/$id/userdata/config.json")
        assert_contains "podman's cgroupsPath" "$id" "$cg"
        assert_eq "memory limit" $((320 << 20)) "$(cg_file memory.limit_in_bytes memory.max memory "$cg")"
        assert_eq "pids limit" 200 "$(cg_file pids.max pids.max pids "$cg")"
        assert_contains "QEMU is in it" "qemu-system" \
                "$(for p in $(cat "$(cg_dir memory "$cg")/cgroup.procs"); do cat "/proc/$p/comm"; done)"
        run_pm rm -f -t 0 cg-pm
        assert_eq "rm -f" 0 "$RC"
        assert_eq "no cgroup left" "" "$(ls -d "$(cg_dir memory "$cg")" 2>/dev/null || true)"
        run_pm run --rm "${UL[@]}" --cpus 1 --annotation io.msb.cpus=4 "$IMG" true
        assert_eq "an annotation above --cpus: status" 126 "$RC"
        assert_contains "an annotation above --cpus: the error" "annotations.io.msb.cpus" "$ERR"
}

run_tests
