#!/usr/bin/env bash
# The whole test suite: unit tests (normal and ASan+UBSan builds), fuzz
# targets for a fixed number of runs, then the end-to-end suites against real
# VMs.  Prints one line per test and a final "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
PASS=0 FAIL=0
FAILED=()

record() { # record NAME STATUS
        if [ "$2" = 0 ]; then
                PASS=$((PASS + 1))
                echo "ok   $1"
        else
                FAIL=$((FAIL + 1))
                FAILED+=("$1")
                echo "FAIL $1"
        fi
}

unit_suite() { # unit_suite BUILDDIR LABEL
        local dir=$1 label=$2 t
        for t in "$dir"/tests/test-*; do
                [ -x "$t" ] && [ -f "$t" ] || continue
                "$t" >"$dir/$(basename "$t").log" 2>&1
                local rc=$?
                [ $rc = 0 ] || sed 's/^/    /' "$dir/$(basename "$t").log" | tail -20
                record "$label $(basename "$t")" $rc
        done
}

echo "== unit tests"
unit_suite build unit
python3 tests/layout-check.py >build/layout-check.log 2>&1
rc=$?
[ $rc = 0 ] || sed 's/^/    /' build/layout-check.log
record "layout: file and function sizes, errno text, settings, include arrows (tests/layout-check.py)" $rc

echo "== unit tests under ASan+UBSan, and fuzz targets (clang, libFuzzer)"
if [ ! -f build-fuzz/build.ninja ]; then
        CC=clang meson setup build-fuzz -Dfuzz=true -Dagent=false -Db_sanitize=address,undefined \
                -Db_lundef=false >/dev/null
fi
if ninja -C build-fuzz >build-fuzz.log 2>&1; then
        export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1
        unit_suite build-fuzz asan+ubsan
        seed=$(mktemp -d)
        mkdir -p "$seed/tar/src/d" "$seed/proto"
        echo hi >"$seed/tar/src/d/f"
        ln -s f "$seed/tar/src/d/l"
        tar -cf "$seed/tar/seed.tar" -C "$seed/tar/src" . && rm -rf "$seed/tar/src"
        # a whole SETUP and EXEC (type byte, then the payload) to mutate
        printf '\002\001\0\0\0\001\0\0\0r\001\0\0\0h\001\0\0\0\001\0\0\0t\0\0\0\0\002\0\0\0/m\001\0\0\0' \
                >"$seed/proto/setup"
        printf '\003\002\0\0\0\005\0\0\0\0\0\0\0\0\0\0\0\001\0\0\0\002\0\0\0sh\001\0\0\0\003\0\0\0A=1\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\030\0\0\0\120\0\0\0\0\0\0\0' \
                >"$seed/proto/exec"
        # a supervisor's record of a kept process that ended (PROC_INFO)
        printf '\023\002\0\0\0\007\0\0\0\022\0\0\0\0\0\0\0\003\0\0\0\173\0\0\0\0\0\0\0\0\001\0\0\0\0\0\0\001\0\0\0\002\0\0\0sh' \
                >"$seed/proto/proc-info"
        # the same with an OCI process's confinement (capabilities, a filter)
        { printf '\003\002\0\0\0\045\0\0\0\0\0\0\0\0\0\0\0\001\0\0\0\002\0\0\0sh\001\0\0\0\003\0\0\0A=1\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\030\0\0\0\120\0\0\0\0\0\0\0'
          printf '\373\005\004\200\0\0\0\0%.0s' 1 2 3 4 5
          printf '\001\0\0\0\006\0\0\0\0\0\377\177'; } >"$seed/proto/exec-confine"
        build-fuzz/tests/fuzz-proto -runs=200000 -max_len=4096 -seed=1 -artifact_prefix=build-fuzz/ "$seed/proto" >build-fuzz/fuzz-proto.log 2>&1
        rc=$?
        [ $rc = 0 ] || tail -30 build-fuzz/fuzz-proto.log
        record "fuzz proto decoder (200000 runs)" $rc
        build-fuzz/tests/fuzz-tar -runs=20000 -max_len=8192 -seed=1 -artifact_prefix=build-fuzz/ "$seed/tar" >build-fuzz/fuzz-tar.log 2>&1
        rc=$?
        [ $rc = 0 ] || tail -30 build-fuzz/fuzz-tar.log
        record "fuzz tar unpacker (20000 runs)" $rc
        # the file routines' records: an entry, a symlink, an event, a cut, a size
        python3 - "$seed/files" <<'PY'
import os, struct, sys
def rec(*f):
    body = b"".join(x.encode() + b"\0" for x in f)
    return struct.pack("<I", len(body)) + body
os.makedirs(sys.argv[1])
open(sys.argv[1] + "/info", "wb").write(rec("i", "file", "5", "33188", "1000", "100", "1700000000123456789", "/etc/hosts", ""))
open(sys.argv[1] + "/stream", "wb").write(rec("i", "symlink", "7", "41471", "0", "0", "-5", "/l", "t") +
    rec("e", "ready", "dir", "/w") + rec("e", "create", "file", "/w/x") + rec("c") + rec("s", "12") + b"raw")
PY
        build-fuzz/tests/fuzz-files -runs=200000 -max_len=16384 -seed=1 -artifact_prefix=build-fuzz/ "$seed/files" \
                >build-fuzz/fuzz-files.log 2>&1
        rc=$?
        [ $rc = 0 ] || tail -30 build-fuzz/fuzz-files.log
        record "fuzz file routines' records (200000 runs)" $rc
        mkdir -p "$seed/elf"
        cp /bin/echo "$seed/elf/dynamic"
        build-fuzz/tests/fuzz-elf -runs=100000 -max_len=65536 -seed=1 -artifact_prefix=build-fuzz/ "$seed/elf" >build-fuzz/fuzz-elf.log 2>&1
        rc=$?
        [ $rc = 0 ] || tail -30 build-fuzz/fuzz-elf.log
        record "fuzz ELF reader (100000 runs)" $rc
        mkdir -p "$seed/registry"
        printf 'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"' \
                >"$seed/registry/challenge"
        printf 'http://[::1]:5000/v2/' >"$seed/registry/url"
        build-fuzz/tests/fuzz-registry -runs=200000 -max_len=1024 -seed=1 -artifact_prefix=build-fuzz/ "$seed/registry" \
                >build-fuzz/fuzz-registry.log 2>&1
        rc=$?
        [ $rc = 0 ] || tail -30 build-fuzz/fuzz-registry.log
        record "fuzz registry hosts, URLs and challenges (200000 runs)" $rc
        mkdir -p "$seed/fsd"
        build-fuzz/tests/fuzz-fsd -runs=200000 -max_len=4096 -seed=1 -artifact_prefix=build-fuzz/ "$seed/fsd" >build-fuzz/fuzz-fsd.log 2>&1
        rc=$?
        [ $rc = 0 ] || tail -30 build-fuzz/fuzz-fsd.log
        record "fuzz virtio-fs requests and rings (200000 runs)" $rc
        # an OCI bundle's config.json (the runtime spec's default, a read-only
        # root, binds and kernel mounts) and an exec --process object
        mkdir -p "$seed/bundle/corpus"
        cat >"$seed/bundle/corpus/config.json" <<'JSON'
{"ociVersion": "1.0.2", "root": {"path": "rootfs", "readonly": true}, "hostname": "box",
 "process": {"terminal": true, "consoleSize": {"height": 24, "width": 80}, "args": ["sh"], "env": ["PATH=/bin"],
  "cwd": "/", "user": {"uid": 1000, "gid": 1000, "additionalGids": [10]},
  "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}], "noNewPrivileges": true,
  "capabilities": {"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}},
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
  {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "size=65536k"]},
  {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec"]},
  {"destination": "/data/x", "type": "bind", "source": "/tmp", "options": ["rbind", "ro"]}],
 "annotations": {"io.msb.cpus": "2", "io.msb.memory": "256M"},
 "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "mount"}, {"type": "network", "path": "/x"}],
  "maskedPaths": ["/proc/kcore", "/sys/firmware"], "readonlyPaths": ["/proc/sys"],
  "sysctl": {"net.ipv4.ping_group_range": "0 0"},
  "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
   "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
    {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]},
  "resources": {"cpu": {"quota": 150000, "period": 100000}, "memory": {"limit": 268435456}}}}
JSON
        printf '{"args": ["ls", "-l"], "env": ["A=1"], "cwd": "/tmp", "user": {"uid": 0, "gid": 0}, "terminal": false}' \
                >"$seed/bundle/corpus/process.json"
        # chrooted into $seed/bundle: the corpus is /corpus there
        FUZZ_BUNDLE_ROOT=$seed/bundle build-fuzz/tests/fuzz-bundle -runs=30000 -max_len=4096 -seed=1 \
                -artifact_prefix=/ /corpus >build-fuzz/fuzz-bundle.log 2>&1
        rc=$?
        cp "$seed"/bundle/crash-* build-fuzz/ 2>/dev/null
        [ $rc = 0 ] || tail -30 build-fuzz/fuzz-bundle.log
        record "fuzz OCI bundle and process JSON (30000 runs)" $rc
        # msb serve's create requests: every field, and a few wrong ones
        mkdir -p "$seed/api"
        printf '%s' '{"name":"a1","image":"busybox","command":["sh","-c","x"],"entrypoint":"","env":{"A":"1"},"workdir":"/w","user":"1000:1000","hostname":"h","cpus":2,"memory":"512M","volumes":[{"host":"/tmp","guest":"/data","readonly":true,"nosuid":true}],"net":"none","disk_size":"1G","max_duration":60,"idle_timeout":30,"timeout":5,"tty":false,"no_pool":true,"auto_remove":false,"pull":"never","accel":"tcg","labels":{"k":"v"},"start":false}' >"$seed/api/full"
        printf '%s' '{"image":"busybox","net_rules":["allow@1.2.3.4:tcp:80","deny@example.com"],"ports":["8080:80/tcp"],"memory":268435456}' >"$seed/api/net"
        printf '%s' '{"image":"x","volumes":[{"host":"/nonexistent","guest":"relative"}],"cpus":0,"bogus":[]}' >"$seed/api/bad"
        build-fuzz/tests/fuzz-api -runs=200000 -max_len=4096 -seed=1 -artifact_prefix=build-fuzz/ "$seed/api" \
                >build-fuzz/fuzz-api.log 2>&1
        rc=$?
        [ $rc = 0 ] || tail -30 build-fuzz/fuzz-api.log
        record "fuzz API request decoder (200000 runs)" $rc
        python3 tests/fuzz/seed-supervisor.py "$seed/supervisor"
        build-fuzz/tests/fuzz-supervisor -runs=300000 -max_len=4096 -seed=1 -artifact_prefix=build-fuzz/ "$seed/supervisor" \
                >build-fuzz/fuzz-supervisor.log 2>&1
        rc=$?
        [ $rc = 0 ] || tail -30 build-fuzz/fuzz-supervisor.log
        record "fuzz sandbox supervisor: guest and client frames (300000 runs)" $rc
        python3 tests/fuzz/seed-net.py "$seed/net"
        build-fuzz/tests/fuzz-net -runs=300000 -max_len=4096 -seed=1 -artifact_prefix=build-fuzz/ "$seed/net" \
                >build-fuzz/fuzz-net.log 2>&1
        rc=$?
        [ $rc = 0 ] || tail -30 build-fuzz/fuzz-net.log
        record "fuzz network policy engine: guest and passt frames, upstream DNS (300000 runs)" $rc
        rm -rf "$seed"
else
        tail -30 build-fuzz.log
        record "sanitizer/fuzz build" 1
fi

e2e() { # e2e LABEL SUITE: run a suite, count its lines
        local label=$1 suite=$2 rcfile fails=0 rc
        rcfile=$(mktemp)
        echo "== $label $suite"
        while IFS= read -r line; do
                case $line in
                "ok   "*) record "$label ${line#ok   }" 0 >/dev/null; echo "$line" ;;
                "FAIL "*) record "$label ${line#FAIL }" 1 >/dev/null; echo "$line"; fails=$((fails + 1)) ;;
                *) echo "$line" ;;
                esac
        done < <(bash "$suite" 2>&1; echo $? >"$rcfile")
        rc=$(cat "$rcfile")
        rm -f "$rcfile"
        # a suite that dies before its tests report must not pass silently
        [ "$rc" = 0 ] || [ "$fails" -gt 0 ] || record "$label $suite exited $rc without a FAIL line" 1
}

# the whole suite on the default kit (msb's tailored kernel)...
for suite in tests/e2e/test-*.sh; do
        e2e e2e "$suite"
done
# ...the run and volume suites again with a pool of warm VMs (msb pool):
# every run that can take one does, and everything holds the same
for suite in tests/e2e/test-run.sh tests/e2e/test-volumes.sh; do
        MSB_E2E_POOL=1 e2e e2e-pool "$suite"
done
# ...and a smoke set on Debian's cloud kernel, so the fallback keeps working
MSB_KIT=debian TEST_FILTER='t_hello|t_stdout_stderr|t_stdin_piped|t_volume|t_guest_kernel_panic|t_image_config|t_kernel_features|t_ctrl_c|t_info' \
        e2e e2e-debian-kernel tests/e2e/test-run.sh
MSB_KIT=debian TEST_FILTER='t_01_|t_05_|t_06_|t_16_' e2e e2e-debian-kernel tests/e2e/test-sandbox.sh

if [ ${#FAILED[@]} -gt 0 ]; then
        echo "failed:"
        printf '  %s\n' "${FAILED[@]}"
fi
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
