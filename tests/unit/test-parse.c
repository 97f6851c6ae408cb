/* SPDX-License-Identifier: Apache-2.0 */
/* Flag and value parsing: sizes, accelerators, guest paths, image names. */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "lib/internal.h"

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

int main(void)
{
        test_sizes();
        test_accel();
        test_guest_paths();
        test_image_names();
        test_run_opts();
        CHECK_DONE();
}
