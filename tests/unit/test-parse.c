/* SPDX-License-Identifier: Apache-2.0 */
/* Flag and value parsing: sizes, accelerators, guest paths, image names. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/users.h"
#include "common/util.h"
#include "msb.h"
#include "lib/config.h"
#include "lib/elf.h"
#include "lib/guest_path.h"
#include "lib/image/image.h"

static void test_sizes(void)
{
        uint64_t v;
        CHECK_INT(msb_parse_size("512M", &v), 0);
        CHECK_INT(v, 512ull << 20);
        CHECK_INT(msb_parse_size("1G", &v), 0);
        CHECK_INT(v, 1ull << 30);
        CHECK_INT(msb_parse_size("2g", &v), 0);
        CHECK_INT(v, 2ull << 30);
        CHECK_INT(msb_parse_size("1048576", &v), 0);
        CHECK_INT(v, 1048576);
        CHECK_INT(msb_parse_size("64KiB", &v), 0);
        CHECK_INT(v, 64ull << 10);
        CHECK_INT(msb_parse_size("1MB", &v), 0);
        CHECK_INT(v, 1ull << 20);
        CHECK_INT(msb_parse_size("", &v), -EINVAL);
        CHECK_INT(msb_parse_size("M", &v), -EINVAL);
        CHECK_INT(msb_parse_size("-1M", &v), -EINVAL);
        CHECK_INT(msb_parse_size("1.5G", &v), -EINVAL);
        CHECK_INT(msb_parse_size("12X", &v), -EINVAL);
        CHECK_INT(msb_parse_size("1Gx", &v), -EINVAL);
        CHECK_INT(msb_parse_size("99999999999999999999", &v), -ERANGE);
        CHECK_INT(msb_parse_size("99999999999999T", &v), -ERANGE);
}

static void test_accel(void)
{
        enum msb_accel a;
        CHECK_INT(msb_accel_parse("auto", &a), 0);
        CHECK_INT(a, MSB_ACCEL_AUTO);
        CHECK_INT(msb_accel_parse("kvm", &a), 0);
        CHECK_INT(a, MSB_ACCEL_KVM);
        CHECK_INT(msb_accel_parse("tcg", &a), 0);
        CHECK_INT(a, MSB_ACCEL_TCG);
        CHECK_INT(msb_accel_parse("KVM", &a), -EINVAL);
        CHECK_INT(msb_accel_parse("", &a), -EINVAL);
}

static void norm_is(const char *in, const char *want)
{
        char *n = guest_path_normalize(in);
        CHECK_STR(n, want);
        free(n);
}

static void test_guest_paths(void)
{
        norm_is("/a//b/./c/", "/a/b/c");
        norm_is("//", "/");
        norm_is("/", "/");
        norm_is("rel/x", "rel/x");
        norm_is("/a/../b", "/a/../b");
        const char *why;
        CHECK_INT(guest_path_check("/data", &why), 0);
        CHECK_INT(guest_path_check("/data/sub dir/é", &why), 0);
        CHECK_INT(guest_path_check("/process", &why), 0);
        CHECK_INT(guest_path_check("", &why), -EINVAL);
        CHECK_INT(guest_path_check("rel", &why), -EINVAL);
        CHECK_STR(why, "must be absolute");
        CHECK_INT(guest_path_check("/", &why), -EINVAL);
        CHECK_INT(guest_path_check("/a/../b", &why), -EINVAL);
        CHECK_STR(why, "must not contain '..'");
        CHECK_INT(guest_path_check("/proc", &why), -EINVAL);
        CHECK_INT(guest_path_check("/sys/x", &why), -EINVAL);
        CHECK_INT(guest_path_check("/dev/shm", &why), -EINVAL);
        CHECK_STR(why, "must not be under /proc, /sys or /dev");
}

static void test_image_names(void)
{
        char *n;
        CHECK_INT(msb_image_name_normalize("busybox", &n, NULL), 0);
        CHECK_STR(n, "busybox:latest");
        free(n);
        CHECK_INT(msb_image_name_normalize("msbtest/config:v1", &n, NULL), 0);
        CHECK_STR(n, "msbtest/config:v1");
        free(n);
        CHECK_INT(msb_image_name_normalize("host:5000/ns/name", &n, NULL), 0);
        CHECK_STR(n, "host:5000/ns/name:latest");
        free(n);
        struct msb_error e = {0};
        CHECK_INT(msb_image_name_normalize("Busybox", &n, &e), -EINVAL);
        CHECK(strstr(e.message, "'B'") != NULL);
        CHECK_INT(msb_image_name_normalize("", &n, &e), -EINVAL);
        CHECK_INT(msb_image_name_normalize("../etc", &n, &e), -EINVAL);
        CHECK_INT(msb_image_name_normalize("/abs", &n, &e), -EINVAL);
        CHECK_INT(msb_image_name_normalize("a//b", &n, &e), -EINVAL);
        CHECK_INT(msb_image_name_normalize("name:", &n, &e), -EINVAL);
}

static void test_run_opts(void)
{
        struct msb_run_opts *o;
        msb_run_opts_new(&o);
        CHECK_INT(msb_run_opts_set_cpus(o, 0), -ERANGE);
        CHECK_INT(msb_run_opts_set_cpus(o, 65), -ERANGE);
        CHECK_INT(msb_run_opts_set_cpus(o, 2), 0);
        CHECK_INT(msb_run_opts_set_memory_mib(o, 64), -ERANGE);
        CHECK_INT(msb_run_opts_set_memory_mib(o, 1024), 0);
        CHECK_INT(msb_run_opts_add_env(o, "NOEQ"), -EINVAL);
        CHECK_INT(msb_run_opts_add_env(o, "=v"), -EINVAL);
        CHECK_INT(msb_run_opts_add_env(o, "K="), 0);
        CHECK_INT(msb_run_opts_set_workdir(o, "rel"), -EINVAL);
        CHECK_INT(msb_run_opts_set_hostname(o, "bad_name"), -EINVAL);
        CHECK_INT(msb_run_opts_set_hostname(o, "good-name.1"), 0);
        struct msb_error e = {0};
        CHECK_INT(msb_run_opts_add_volume(o, "/nonexistent-msb", "/x", 0, &e), -ENOENT);
        CHECK(strstr(e.message, "does not exist") != NULL);
        CHECK_INT(msb_run_opts_add_volume(o, "/tmp", "/x", 1u << 7, &e), -EINVAL);
        CHECK_INT(msb_run_opts_add_volume(o, "/dev/null", "/x", 0, &e), -EINVAL);
        CHECK_INT(msb_run_opts_add_volume(o, "/tmp", "/x", MSB_VOLUME_RO | MSB_VOLUME_OWNER_PASSTHROUGH, &e), 0);
        CHECK_INT(msb_run_opts_add_volume(o, "/usr", "//x/", 0, &e), -EINVAL);
        CHECK(strstr(e.message, "already used") != NULL);
        int n = 1;
        for (; n < 40; n++) {
                char g[32];
                snprintf(g, sizeof(g), "/v%d", n);
                if (msb_run_opts_add_volume(o, "/tmp", g, 0, &e) < 0)
                        break;
        }
        CHECK_INT(n, 32);
        CHECK(strstr(e.message, "at most 32") != NULL);
        msb_run_opts_free(o);
}

static void ref_ok(const char *in, const char *want)
{
        struct msb_ref r;
        struct msb_error e = {0};
        int rc = msb_ref_parse(in, &r, &e);
        CHECK_INT(rc, 0);
        if (rc < 0) {
                fprintf(stderr, "  %s: %s\n", in, e.message);
                return;
        }
        char *s = msb_ref_string(&r);
        CHECK_STR(s, want);
        free(s);
        msb_ref_free(&r);
}

static void ref_bad(const char *in, const char *why)
{
        struct msb_ref r;
        struct msb_error e = {0};
        CHECK_INT(msb_ref_parse(in, &r, &e), -EINVAL);
        if (!strstr(e.message, why))
                fprintf(stderr, "  %s: message '%s' lacks '%s'\n", in, e.message, why);
        CHECK(strstr(e.message, why) != NULL);
}

static void test_refs(void)
{
        const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        char buf[256];
        ref_ok("alpine", "docker.io/library/alpine:latest");
        ref_ok("library/alpine:3.20", "docker.io/library/alpine:3.20");
        ref_ok("docker.io/library/alpine", "docker.io/library/alpine:latest");
        ref_ok("index.docker.io/library/alpine", "docker.io/library/alpine:latest");
        ref_ok("docker.io/alpine", "docker.io/library/alpine:latest");
        ref_ok("user/app", "docker.io/user/app:latest");
        ref_ok("host:5000/ns/name:tag", "host:5000/ns/name:tag");
        ref_ok("localhost/x", "localhost/x:latest");
        ref_ok("127.0.0.1:5000/a/b/c:v1.2_3-x", "127.0.0.1:5000/a/b/c:v1.2_3-x");
        ref_ok("ghcr.io/o/a__b.c-d---e", "ghcr.io/o/a__b.c-d---e:latest");
        snprintf(buf, sizeof(buf), "name@%s", d);
        char want[256];
        snprintf(want, sizeof(want), "docker.io/library/name@%s", d);
        ref_ok(buf, want);
        snprintf(buf, sizeof(buf), "h.io/n:t@%s", d);
        snprintf(want, sizeof(want), "h.io/n:t@%s", d);
        ref_ok(buf, want);
        ref_bad("", "empty");
        ref_bad("Alpine", "lowercase");
        ref_bad("alpine:", "tag ''");
        ref_bad("alpine:-x", "tag '-x'");
        ref_bad("alpine@sha256:abc", "digest");
        ref_bad("alpine@md5:0123", "digest");
        ref_bad("a//b", "empty path component");
        ref_bad("a/-b", "start and end");
        ref_bad("a/b_", "start and end");
        ref_bad("a/b___c", "separators");
        ref_bad("a/b..c", "separators");
        ref_bad("host:99999999/x", "registry");
        ref_bad("host:5000/", "no repository");
        ref_bad("a b", "character");
}

static void test_registry_config(void)
{
        char path[] = "/tmp/msb-test-config.XXXXXX";
        int fd = mkstemp(path);
        const char *text = "# mirrors\n"
                           "mirror docker.io http://127.0.0.1:5000/   # trailing slash goes\n"
                           "mirror docker.io https://mirror.example\n"
                           "mirror ghcr.io https://other\n"
                           "\n"
                           "insecure registry.lan:5000\n";
        CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
        close(fd);
        setenv("MSB_CONFIG", path, 1);
        char **m = NULL;
        bool insecure = true;
        struct msb_error e = {0};
        CHECK_INT(msb_registry_config("docker.io", &m, &insecure, &e), 0);
        CHECK(m && m[0] && m[1] && !m[2]);
        if (m && m[0] && m[1]) {
                CHECK_STR(m[0], "http://127.0.0.1:5000");
                CHECK_STR(m[1], "https://mirror.example");
        }
        CHECK(!insecure);
        strv_free(m);
        CHECK_INT(msb_registry_config("registry.lan:5000", &m, &insecure, &e), 0);
        CHECK(!m && insecure);
        FILE *f = fopen(path, "a");
        fputs("mirror docker.io ftp://nope\n", f);
        fclose(f);
        CHECK_INT(msb_registry_config("docker.io", &m, &insecure, &e), -EINVAL);
        CHECK(strstr(e.message, "line 7") != NULL);
        f = fopen(path, "w");
        fputs("mirrors docker.io http://x\n", f);
        fclose(f);
        CHECK_INT(msb_registry_config("docker.io", &m, &insecure, &e), -EINVAL);
        CHECK(strstr(e.message, "unknown setting 'mirrors'") != NULL);
        /* one file for every reader: registry settings beside the unpack
         * budget, each reader taking its own */
        f = fopen(path, "w");
        fputs("unpack-max-bytes 1G\nunpack-max-entries 5\ninsecure docker.io\n", f);
        fclose(f);
        CHECK_INT(msb_registry_config("docker.io", &m, &insecure, &e), 0);
        CHECK(insecure);
        uint64_t bytes = 0, entries = 0;
        CHECK_INT(msb_config_unpack_limits(&bytes, &entries, &e), 0);
        CHECK(bytes == (1ULL << 30) && entries == 5);
        f = fopen(path, "w");
        fputs("mirror docker.io\n", f);
        fclose(f);
        CHECK_INT(msb_registry_config("docker.io", &m, &insecure, &e), -EINVAL);
        CHECK(strstr(e.message, "line 1: expected 'mirror DOMAIN URL'") != NULL);
        unlink(path);
        unsetenv("MSB_CONFIG");
        char *u = msb_reg_upstream("docker.io", false);
        CHECK_STR(u, "https://registry-1.docker.io");
        free(u);
        u = msb_reg_upstream("127.0.0.1:5000", false);
        CHECK_STR(u, "http://127.0.0.1:5000");
        free(u);
        u = msb_reg_upstream("quay.io", false);
        CHECK_STR(u, "https://quay.io");
        free(u);
        u = msb_reg_upstream("quay.io", true);
        CHECK_STR(u, "http://quay.io");
        free(u);
}

static void test_users(void)
{
        const char *pw = "root:x:0:0:root:/root:/bin/sh\n"
                         "broken line\n"
                         "bad:x:notanumber:1::/:/bin/sh\n"
                         "alice:x:1000:100:Alice:/home/alice:/bin/sh\n"
                         "nobody:x:65534:65534::/nonexistent:/bin/false"; /* no final newline */
        const char *gr = "root:x:0:\nusers:x:100:\nwheel:x:10:root,alice\ndocker:x:999:bob,alice\nstaff:x:50:";
        struct ids u;
        struct msb_error why = {0};
        CHECK_INT(ids_resolve("", pw, gr, &u, &why), 0);
        CHECK_INT(u.uid, 0);
        CHECK_INT(u.gid, 0);
        CHECK_STR(u.home, "/root");
        CHECK_INT(u.ngroups, 2); /* 0, and wheel by membership */
        CHECK_INT(u.groups[1], 10);
        CHECK_INT(ids_resolve("alice", pw, gr, &u, &why), 0);
        CHECK_INT(u.uid, 1000);
        CHECK_INT(u.gid, 100);
        CHECK_STR(u.home, "/home/alice");
        CHECK_INT(u.ngroups, 3);
        CHECK_INT(u.groups[0], 100);
        CHECK_INT(u.groups[1], 10);
        CHECK_INT(u.groups[2], 999);
        /* a numeric uid in passwd gets its name's groups too */
        CHECK_INT(ids_resolve("1000", pw, gr, &u, &why), 0);
        CHECK_INT(u.ngroups, 3);
        /* an explicit group replaces both the primary and the member groups */
        CHECK_INT(ids_resolve("alice:staff", pw, gr, &u, &why), 0);
        CHECK_INT(u.gid, 50);
        CHECK_INT(u.ngroups, 1);
        CHECK_INT(ids_resolve("nobody", pw, gr, &u, &why), 0);
        CHECK_STR(u.home, "/nonexistent");
        /* docker: unknown numeric uid -> gid 0, HOME=/ */
        CHECK_INT(ids_resolve("1234:5678", pw, gr, &u, &why), 0);
        CHECK_INT(u.uid, 1234);
        CHECK_INT(u.gid, 5678);
        CHECK_STR(u.home, "/");
        CHECK_INT(ids_resolve("4321", NULL, NULL, &u, &why), 0);
        CHECK_INT(u.gid, 0);
        CHECK_INT(ids_resolve("0", NULL, NULL, &u, &why), 0);
        CHECK_STR(u.home, "/root");
        /* names that are not there */
        CHECK_INT(ids_resolve("mallory", pw, gr, &u, &why), -ENOENT);
        CHECK_STR(why.message, "user 'mallory' not found in the image's /etc/passwd");
        CHECK_INT(ids_resolve("alice:nogroup", pw, gr, &u, &why), -ENOENT);
        CHECK_STR(why.message, "group 'nogroup' not found in the image's /etc/group");
        CHECK_INT(ids_resolve("alice", NULL, NULL, &u, &why), -ENOENT);
        /* a name is matched whole, and "bad" has no usable uid */
        CHECK_INT(ids_resolve("alic", pw, gr, &u, &why), -ENOENT);
        CHECK_INT(ids_resolve("bad", pw, gr, &u, &why), -ENOENT);
        /* uids beyond 2^31-1 are not numbers here (docker refuses them too) */
        CHECK_INT(ids_resolve("4294967296", pw, gr, &u, &why), -ENOENT);
        /* at most IDS_MAX_GROUPS groups, however many lines name the user */
        char *many = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&many, &len);
        for (int i = 0; i < 200; i++)
                fprintf(f, "g%d:x:%d:alice\n", i, 2000 + i);
        fclose(f);
        CHECK_INT(ids_resolve("alice", pw, many, &u, &why), 0);
        CHECK_INT(u.ngroups, IDS_MAX_GROUPS);
        free(many);
}

static void elf_of(const uint8_t *p, size_t n, char **interp, char ***needed)
{
        elf_deps_mem(p, n, n, 15, interp, needed);
}

static void test_elf(void)
{
        /* a dynamic executable of the host (coreutils is essential) */
        char *data = NULL;
        size_t len = 0;
        CHECK_INT(read_file_at(AT_FDCWD, "/bin/echo", 16 << 20, &data, &len), 0);
        char *interp, **needed;
        elf_of((uint8_t *)data, len, &interp, &needed);
        CHECK(interp && strstr(interp, "ld-linux-x86-64.so.2") && interp[0] == '/');
        CHECK(strv_contains(needed, "libc.so.6"));
        free(interp);
        strv_free(needed);
        /* every truncation, and every single corrupted byte of the headers,
         * is read without going out of bounds (ASan watches this build) */
        for (size_t n = 0; n < len; n += n < 4096 ? 1 : 997) {
                elf_of((uint8_t *)data, n, &interp, &needed);
                free(interp);
                strv_free(needed);
        }
        uint8_t *copy = xmalloc(len);
        for (size_t i = 0; i < 512 && i < len; i++) {
                memcpy(copy, data, len);
                copy[i] ^= 0xff;
                elf_of(copy, len, &interp, &needed);
                free(interp);
                strv_free(needed);
        }
        free(copy);
        free(data);
        /* a static executable has neither */
        if (read_file_at(AT_FDCWD, "/bin/busybox", 16 << 20, &data, &len) == 0) {
                elf_of((uint8_t *)data, len, &interp, &needed);
                CHECK(interp == NULL);
                CHECK(needed == NULL);
                free(data);
        }
        /* not ELF at all */
        const char *txt = "#!/bin/sh\necho hi\n";
        elf_of((const uint8_t *)txt, strlen(txt), &interp, &needed);
        CHECK(interp == NULL && needed == NULL);
}

int main(void)
{
        test_users();
        test_elf();
        test_refs();
        test_registry_config();
        test_sizes();
        test_accel();
        test_guest_paths();
        test_image_names();
        test_run_opts();
        CHECK_DONE();
}
