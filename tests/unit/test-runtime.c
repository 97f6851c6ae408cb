/* SPDX-License-Identifier: Apache-2.0 */
/* msb-runtime without a VM: config.json mapping and refusals (each names
 * its field), ID grammar and mapping to sandbox names, sizes from
 * linux.resources, signal names. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "common/util.h"
#include "runtime/runtime.h"

static char tmp[] = "/tmp/msb-test-runtime.XXXXXX";

/* A bundle whose config.json is runc spec's default with `extra` (a
 * fragment of JSON members) merged over its top level. */
static const char *const base_default =
        "\"ociVersion\": \"1.0.2\", \"root\": {\"path\": \"rootfs\"}, \"hostname\": \"box\","
        "\"process\": {\"args\": [\"sh\"], \"env\": [\"PATH=/bin\"], \"cwd\": \"/\","
        "  \"user\": {\"uid\": 0, \"gid\": 0},"
        "  \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024}]},"
        "\"mounts\": [{\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},"
        "  {\"destination\": \"/dev/shm\", \"type\": \"bind\", \"source\": \"/dev/shm\", \"options\": [\"bind\", \"rprivate\", \"nosuid\", \"noexec\", \"nodev\"]},"
        "  {\"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": \"mqueue\", \"options\": [\"nosuid\", \"noexec\", \"nodev\"]},"
        "  {\"destination\": \"/sys/fs/cgroup\", \"type\": \"cgroup\", \"source\": \"cgroup\", \"options\": [\"rprivate\", \"nosuid\", \"noexec\", \"nodev\", \"relatime\", \"ro\"]},"
        "  {\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"/tmp\", \"options\": [\"rbind\", \"nosuid\", \"noexec\", \"ro\"]}]";

/* runc spec's namespaces; a linux_members that names its own wins (the
 * later of two keys is the one jansson keeps) */
static const char *base = NULL;

#define NAMESPACES "\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"ipc\"}, {\"type\": \"mount\"}]"

/* Load a bundle made of base plus linux (the "linux" object's members)
 * and more top-level members; the error line in the log, or "" */
static int load(const char *linux_members, const char *more, char *ret_err, size_t n)
{
        _cleanup_free_ char *dir = xasprintf("%s/b", tmp), *root = xasprintf("%s/b/rootfs", tmp);
        _cleanup_free_ char *cfg = xasprintf("%s/b/config.json", tmp), *log = xasprintf("%s/log", tmp);
        mkdir_p(root, 0755);
        _cleanup_free_ char *text =
                xasprintf("{%s, \"linux\": {" NAMESPACES "%s%s}%s%s}", base, linux_members[0] ? ", " : "",
                          linux_members, more[0] ? ", " : "", more);
        write_file_atomic_at(AT_FDCWD, cfg, text, strlen(text), 0644);
        unlink(log);
        rt_g.log = log;
        struct rt_bundle b;
        int r = rt_bundle_load(dir, &b);
        if (r == 0)
                rt_bundle_free(&b);
        _cleanup_free_ char *data = NULL;
        ret_err[0] = '\0';
        if (read_file_at(AT_FDCWD, log, 65536, &data, NULL) == 0) {
                char *e = strstr(data, "level=error msg=\"");
                if (e)
                        snprintf(ret_err, n, "%s", e + 17);
        }
        rt_g.log = NULL; /* log is freed on return */
        return r;
}

static void test_bundles(void)
{
        char err[4096];
        /* podman's defaults pass */
        CHECK_INT(load("\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"ipc\"}, {\"type\": \"network\", \"path\": \"/run/netns/x\"}],"
                       "\"resources\": {\"devices\": [{\"allow\": false, \"access\": \"rwm\"}], \"pids\": {\"limit\": 2048}},"
                       "\"sysctl\": {\"net.ipv4.ping_group_range\": \"0 0\"},"
                       "\"maskedPaths\": [\"/proc/kcore\"], \"seccomp\": {\"defaultAction\": \"SCMP_ACT_ERRNO\"}",
                       "", err, sizeof(err)),
                  0);
        CHECK_STR(err, "");
        struct {
                const char *linux_members, *more, *field;
        } bad[] = {
                {"\"devices\": [{\"path\": \"/dev/fuse\", \"type\": \"c\", \"major\": 10, \"minor\": 229}]", "",
                 "linux.devices[0]: /dev/fuse is a host device"},
                {"\"resources\": {\"devices\": [{\"allow\": true, \"access\": \"rwm\"}]}", "",
                 "linux.resources.devices[0]"},
                {"\"namespaces\": [{\"type\": \"user\"}]", "", "linux.namespaces: a user namespace"},
                {"\"namespaces\": [{\"type\": \"ipc\"}]", "", "linux.namespaces: no pid namespace"},
                {"\"namespaces\": [{\"type\": \"pid\"}]", "", "linux.namespaces: no ipc namespace"},
                {"\"namespaces\": [{\"type\": \"pid\", \"path\": \"/proc/1/ns/pid\"}, {\"type\": \"ipc\"}]", "",
                 "linux.namespaces: the pid namespace /proc/1/ns/pid is another's"},
                {"\"rootfsPropagation\": \"rshared\"", "", "linux.rootfsPropagation"},
                {"\"uidMappings\": [{\"containerID\": 0, \"hostID\": 1000, \"size\": 1}]", "", "linux.uidMappings"},
                {"\"sysctl\": {\"kernel..shmmax\": \"1\"}", "", "linux.sysctl.kernel..shmmax"},
                {"\"sysctl\": {\"kernel.shmmax\": 1}", "", "linux.sysctl.kernel.shmmax: expected a string"},
                {"\"maskedPaths\": [\"/proc/../etc\"]", "", "linux.maskedPaths[0]"},
                {"\"seccomp\": {\"defaultAction\": \"SCMP_ACT_NOTIFY\"}", "", "linux.seccomp.defaultAction"},
                {"\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": \"/x\"}", "",
                 "linux.seccomp.listenerPath"},
                {"\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], "
                 "\"action\": \"SCMP_ACT_NOTIFY\"}]}",
                 "", "linux.seccomp.syscalls[0].action"},
                {"\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], "
                 "\"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 7, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}]}]}",
                 "", "linux.seccomp.syscalls[0].args[0]"},
                /* a condition without its value would read as 0 */
                {"\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"clone\"], "
                 "\"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 0, \"op\": \"SCMP_CMP_MASKED_EQ\"}]}]}",
                 "", "linux.seccomp.syscalls[0].args[0]"},
                {"\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], "
                 "\"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": \"1\"}]}",
                 "", "linux.seccomp.syscalls[0].action"},
                {"\"readonlyPaths\": [\"/a/..\", \"/\"]", "", "linux.readonlyPaths[0]"},
                {"", "\"hooks\": {\"prestart\": [{\"path\": \"/bin/true\"}]}", "hooks.prestart"},
                {"", "\"windows\": {}", "windows"},
                {"\"resources\": {\"cpu\": {\"cpus\": \"0-x\"}}", "", "linux.resources.cpu"},
                {"\"resources\": {\"cpu\": {\"quota\": 10000000, \"period\": 100000}}", "", "linux.resources.cpu"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                CHECK(load(bad[i].linux_members, bad[i].more, err, sizeof(err)) < 0);
                if (!strstr(err, bad[i].field)) {
                        fprintf(stderr, "case %zu: '%s' does not name '%s'\n", i, err, bad[i].field);
                        check_failures++;
                }
        }
        /* a mount msb cannot make, and an unknown bind option */
        _cleanup_free_ char *saved = xstrdup(base);
        base = "\"ociVersion\": \"1.0.2\", \"root\": {\"path\": \"rootfs\"},"
               "\"process\": {\"args\": [\"sh\"], \"cwd\": \"/\", \"user\": {\"uid\": 0, \"gid\": 0}},"
               "\"mounts\": [{\"destination\": \"/x\", \"type\": \"overlay\", \"source\": \"overlay\"}]";
        CHECK(load("", "", err, sizeof(err)) < 0);
        CHECK(strstr(err, "mounts[0]") && strstr(err, "'overlay'"));
        base = "\"ociVersion\": \"1.0.2\", \"root\": {\"path\": \"rootfs\"},"
               "\"process\": {\"args\": [\"sh\"], \"cwd\": \"/\", \"user\": {\"uid\": 0, \"gid\": 0}},"
               "\"mounts\": [{\"destination\": \"/x\", \"type\": \"bind\", \"source\": \"/tmp\", \"options\": "
               "[\"bind\", \"idmap\"]}]";
        CHECK(load("", "", err, sizeof(err)) < 0);
        CHECK(strstr(err, "mounts[0]") && strstr(err, "'idmap'"));
        /* bind options that cannot be honoured, and a /dev/shm that is no tmpfs */
        static const char *const unhonoured[][2] = {
                {"\"/x\", \"type\": \"bind\", \"source\": \"/tmp\", \"options\": [\"rbind\", \"rshared\"]", "'rshared'"},
                {"\"/x\", \"type\": \"bind\", \"source\": \"/tmp\", \"options\": [\"rbind\", \"noatime\"]", "'noatime'"},
                {"\"/x\", \"type\": \"bind\", \"source\": \"/tmp\", \"options\": [\"rbind\", \"dev\"]", "'dev'"},
                {"\"/dev/shm\", \"type\": \"bind\", \"source\": \"/proc\", \"options\": [\"rbind\"]", "not a tmpfs"},
                {"\"/proc/x\", \"type\": \"mqueue\", \"source\": \"mqueue\"", "mounts[0]"},
                {"\"/x\", \"type\": \"mqueue\", \"source\": \"mqueue\", \"options\": [\"size=1m\"]", "tmpfs option"},
                {"\"/etc\", \"type\": \"tmpfs\", \"source\": \"tmpfs\", \"options\": [\"tmpcopyup\"]", "tmpcopyup: /etc has files"},
        };
        _cleanup_free_ char *etc = xasprintf("%s/b/rootfs/etc", tmp), *passwd = xasprintf("%s/passwd", etc);
        mkdir_p(etc, 0755);
        write_file_atomic_at(AT_FDCWD, passwd, "", 0, 0644);
        for (size_t i = 0; i < ARRAY_SIZE(unhonoured); i++) {
                _cleanup_free_ char *b = xasprintf(
                        "\"ociVersion\": \"1.0.2\", \"root\": {\"path\": \"rootfs\"},"
                        "\"process\": {\"args\": [\"sh\"], \"cwd\": \"/\", \"user\": {\"uid\": 0, \"gid\": 0}},"
                        "\"mounts\": [{\"destination\": %s}]",
                        unhonoured[i][0]);
                base = b;
                CHECK(load("", "", err, sizeof(err)) < 0);
                if (!strstr(err, "mounts[0]") || !strstr(err, unhonoured[i][1])) {
                        fprintf(stderr, "mount case %zu: '%s' does not name '%s'\n", i, err, unhonoured[i][1]);
                        check_failures++;
                }
        }
        base = "\"ociVersion\": \"1.0.2\", \"root\": {\"path\": \"rootfs\"},"
               "\"process\": {\"args\": [], \"cwd\": \"/\", \"user\": {\"uid\": 0, \"gid\": 0}}";
        CHECK(load("", "", err, sizeof(err)) < 0);
        CHECK(strstr(err, "process.args") != NULL);
        base = "\"ociVersion\": \"1.0.2\", \"root\": {\"path\": \"nope\"},"
               "\"process\": {\"args\": [\"sh\"], \"cwd\": \"/\", \"user\": {\"uid\": 0, \"gid\": 0}}";
        CHECK(load("", "", err, sizeof(err)) < 0);
        CHECK(strstr(err, "root.path") != NULL);
        (void)saved;
}

static void test_sizes(void)
{
        unsigned cpus, mib;
        char e[256];
        CHECK_INT(rt_size_from_resources(150000, 100000, NULL, 0, &cpus, &mib, e, sizeof(e)), 0);
        CHECK_INT(cpus, 2); /* 1.5 CPUs: rounded up */
        CHECK_INT(mib, 0);  /* no limit: msb's default */
        CHECK_INT(rt_size_from_resources(1000, 100000, NULL, 0, &cpus, &mib, e, sizeof(e)), 0);
        CHECK_INT(cpus, 1);
        CHECK_INT(rt_size_from_resources(0, 0, "0-3,6", 0, &cpus, &mib, e, sizeof(e)), 0);
        CHECK_INT(cpus, 5);
        CHECK_INT(rt_size_from_resources(0, 0, "0-", 0, &cpus, &mib, e, sizeof(e)), -22);
        CHECK_INT(rt_size_from_resources(150000, 0, NULL, 0, &cpus, &mib, e, sizeof(e)), 0);
        CHECK_INT(cpus, 2); /* no period: the kernel's 100 ms */
        /* the VM fits in the limit, QEMU and the helpers included */
        CHECK_INT(rt_size_from_resources(0, 0, NULL, 256ll << 20, &cpus, &mib, e, sizeof(e)), 0);
        CHECK_INT(mib, 256 - RT_HOST_RESERVE_MIB);
        CHECK_INT(rt_size_from_resources(0, 0, NULL, (long long)(MSB_MIN_MEMORY_MIB + RT_HOST_RESERVE_MIB) << 20, &cpus,
                                         &mib, e, sizeof(e)),
                  0);
        CHECK_INT(mib, MSB_MIN_MEMORY_MIB);
        CHECK_INT(rt_size_from_resources(0, 0, NULL, 6 << 20, &cpus, &mib, e, sizeof(e)), -ERANGE);
        CHECK(strstr(e, "6 MiB cannot hold a VM") != NULL);
        CHECK_INT(rt_size_from_resources(0, 0, NULL, (223ll << 20) + 1, &cpus, &mib, e, sizeof(e)), 0);
        CHECK_INT(mib, 128); /* rounded up to 224 */
}

static void test_cgroup_paths(void)
{
        char out[4096];
        struct msb_error why = {0};
        base = base_default;
        CHECK_INT(rt_cgroup_systemd_path("machine.slice:libpod:abc", out, sizeof(out), &why), 0);
        CHECK_STR(out, "/machine.slice/libpod-abc.scope");
        CHECK_INT(rt_cgroup_systemd_path("kubepods-besteffort-pod12.slice:cri-containerd:f00", out, sizeof(out), &why),
                  0);
        CHECK_STR(out, "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/"
                       "cri-containerd-f00.scope");
        CHECK_INT(rt_cgroup_systemd_path(":runc:x", out, sizeof(out), &why), 0);
        CHECK_STR(out, "/system.slice/runc-x.scope");
        CHECK_INT(rt_cgroup_systemd_path("-.slice::y.slice", out, sizeof(out), &why), 0);
        CHECK_STR(out, "/y.slice");
        CHECK(rt_cgroup_systemd_path("/a/b", out, sizeof(out), &why) < 0);
        CHECK(strstr(why.message, "slice:prefix:name") != NULL);
        CHECK(rt_cgroup_systemd_path("machine:p:n", out, sizeof(out), &why) < 0);
        CHECK(rt_cgroup_systemd_path("a.slice:p:", out, sizeof(out), &why) < 0);
        CHECK(rt_cgroup_systemd_path("a.slice:p:n:m", out, sizeof(out), &why) < 0);
        CHECK_INT(rt_cgroup_path_check("/libpod_parent/libpod-1", &why), 0);
        CHECK_INT(rt_cgroup_path_check("rel/x", &why), 0);
        CHECK(rt_cgroup_path_check("/a/../../etc", &why) < 0);
        CHECK(rt_cgroup_path_check("..", &why) < 0);
        CHECK(rt_cgroup_path_check("/a/./b", &why) < 0);
}

/* io.msb.cpus and io.msb.memory may lower the VM's size; raising it needs
 * msb-runtime's config */
static void test_annotations_may_only_lower(void)
{
        char err[4096];
        base = base_default;
        const char *two = "\"resources\": {\"cpu\": {\"quota\": 200000, \"period\": 100000}, "
                          "\"memory\": {\"limit\": 536870912}}";
        CHECK_INT(load(two, "\"annotations\": {\"io.msb.cpus\": \"1\", \"io.msb.memory\": \"256M\"}", err,
                       sizeof(err)),
                  0);
        CHECK_STR(err, "");
        CHECK(load(two, "\"annotations\": {\"io.msb.cpus\": \"4\"}", err, sizeof(err)) < 0);
        CHECK(strstr(err, "annotations.io.msb.cpus: 4 vCPUs is more than linux.resources.cpu gives (2)") != NULL);
        CHECK(strstr(err, "annotations-may-raise io.msb.cpus") != NULL);
        CHECK(load(two, "\"annotations\": {\"io.msb.memory\": \"1G\"}", err, sizeof(err)) < 0);
        CHECK(strstr(err, "annotations.io.msb.memory: 1024 MiB is more than linux.resources.memory.limit gives "
                          "(416 MiB)") != NULL);
        /* no limits: msb's default is the bound */
        CHECK(load("", "\"annotations\": {\"io.msb.cpus\": \"2\"}", err, sizeof(err)) < 0);
        CHECK(strstr(err, "more than msb's default gives (1)") != NULL);
        _cleanup_free_ char *conf = xasprintf("%s/runtime.conf", tmp);
        const char *text = "# the administrator's\nannotations-may-raise io.msb.cpus\n";
        write_file_atomic_at(AT_FDCWD, conf, text, strlen(text), 0644);
        setenv("MSB_RUNTIME_CONFIG", conf, 1);
        CHECK_INT(load(two, "\"annotations\": {\"io.msb.cpus\": \"4\"}", err, sizeof(err)), 0);
        CHECK(load(two, "\"annotations\": {\"io.msb.memory\": \"1G\"}", err, sizeof(err)) < 0);
        text = "annotations-may-raise io.msb.disk\n";
        write_file_atomic_at(AT_FDCWD, conf, text, strlen(text), 0644);
        CHECK(load(two, "\"annotations\": {\"io.msb.cpus\": \"4\"}", err, sizeof(err)) < 0);
        CHECK(strstr(err, "line 1: annotations-may-raise 'io.msb.disk'") != NULL);
        text = "raise-everything yes\n";
        write_file_atomic_at(AT_FDCWD, conf, text, strlen(text), 0644);
        CHECK(load(two, "\"annotations\": {\"io.msb.cpus\": \"4\"}", err, sizeof(err)) < 0);
        CHECK(strstr(err, "unknown setting 'raise-everything' (known: annotations-may-raise)") != NULL);
        unsetenv("MSB_RUNTIME_CONFIG");
}

/* limits the host's cgroup gets, each checked and named */
static void test_resource_fields(void)
{
        char err[4096];
        CHECK_INT(load("\"cgroupsPath\": \"/libpod_parent/libpod-1\", \"resources\": {\"cpu\": {\"shares\": 512, "
                       "\"quota\": -1, \"cpus\": \"0\", \"mems\": \"0\"}, \"memory\": {\"limit\": -1, \"swap\": -1}, "
                       "\"pids\": {\"limit\": -1}, \"unified\": {\"memory.high\": \"max\"}}",
                       "", err, sizeof(err)),
                  0);
        CHECK_STR(err, "");
        struct {
                const char *linux_members, *field;
        } bad[] = {
                {"\"cgroupsPath\": \"/a/../b\"", "linux.cgroupsPath: '/a/../b'"},
                {"\"cgroupsPath\": 7", "linux.cgroupsPath: expected a non-empty string"},
                {"\"resources\": {\"cpu\": {\"quota\": -5}}", "linux.resources.cpu.quota"},
                {"\"resources\": {\"cpu\": {\"shares\": \"x\"}}", "linux.resources.cpu.shares"},
                {"\"resources\": {\"cpu\": {\"mems\": \"0\\n1\"}}", "linux.resources.cpu.mems"},
                {"\"resources\": {\"memory\": {\"limit\": 104857600}}", "linux.resources.memory.limit: 100 MiB"},
                {"\"resources\": {\"pids\": {\"limit\": 10}}", "linux.resources.pids.limit: 10 is too few"},
                {"\"resources\": {\"unified\": {\"../../x\": \"1\"}}", "linux.resources.unified.../../x"},
                {"\"resources\": {\"unified\": {\"cgroup.procs\": \"1\"}}", "linux.resources.unified.cgroup.procs"},
                {"\"resources\": {\"unified\": {\"cpuset.cpus.partition\": \"isolated\"}}",
                 "linux.resources.unified.cpuset.cpus.partition: not among"},
                {"\"resources\": {\"unified\": {\"memory.max\": \"max\"}}", "linux.resources.unified.memory.max"},
                {"\"resources\": {\"cpu\": {\"quota\": 4294967296000, \"period\": 1000}}", "linux.resources.cpu"},
                {"\"resources\": {\"cpu\": {\"cpus\": \"0-4294967296\"}}", "linux.resources.cpu"},
                {"\"resources\": {\"unified\": {\"memory.high\": \"1\\n2\"}}", "linux.resources.unified.memory.high"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                CHECK(load(bad[i].linux_members, "", err, sizeof(err)) < 0);
                if (!strstr(err, bad[i].field)) {
                        fprintf(stderr, "resource case %zu: '%s' does not name '%s'\n", i, err, bad[i].field);
                        check_failures++;
                }
        }
}

static void test_ids_and_signals(void)
{
        char name[160];
        const char *hex = "4bd9b4f3a7c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6";
        rt_id_to_name(hex, name, sizeof(name));
        CHECK_STR(name, hex); /* podman's IDs are sandbox names as they are */
        rt_id_to_name("a", name, sizeof(name));
        CHECK(!strncmp(name, "oci-a-", 6) && msb_sandbox_name_check(name, NULL) == 0);
        rt_id_to_name("-x+y", name, sizeof(name));
        CHECK(msb_sandbox_name_check(name, NULL) == 0);
        char other[160];
        rt_id_to_name("-x+z", other, sizeof(other));
        CHECK(strcmp(name, other) != 0);
        CHECK_INT(rt_id_check("ok-id_1.2+3"), 0);
        CHECK(rt_id_check("../x") < 0);
        CHECK(rt_id_check(".hidden") < 0);
        CHECK(rt_id_check("") < 0);
        CHECK_INT(rt_parse_signal("KILL"), SIGKILL);
        CHECK_INT(rt_parse_signal("SIGTERM"), SIGTERM);
        CHECK_INT(rt_parse_signal("sigusr1"), SIGUSR1);
        CHECK_INT(rt_parse_signal("9"), 9);
        CHECK_INT(rt_parse_signal("RTMIN+2"), SIGRTMIN + 2);
        CHECK_INT(rt_parse_signal("65"), -1);
        CHECK_INT(rt_parse_signal("NOPE"), -1);
}

int main(void)
{
        if (!mkdtemp(tmp))
                return 1;
        rt_g.root = tmp;
        base = base_default;
        test_bundles();
        test_sizes();
        test_cgroup_paths();
        test_annotations_may_only_lower();
        test_resource_fields();
        test_ids_and_signals();
        rm_rf(tmp);
        CHECK_DONE();
}
