/* SPDX-License-Identifier: Apache-2.0 */
/* image/trust.c's decisions about where plain HTTP and credentials may go. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "lib/image/image.h"

static void test_loopback(void)
{
        static const char *const yes[] = {
                "localhost", "localhost:5000", "LOCALHOST", "LocalHost:1", "127.0.0.1", "127.0.0.1:5000",
                "127.1.2.3", "127.255.255.254:65535", "[::1]", "[::1]:5000", "[0:0:0:0:0:0:0:1]:80",
        };
        static const char *const no[] = {
                /* names that merely start like loopback resolve wherever their owner says */
                "localhost.attacker.example", "localhost.attacker.example:5000", "127.0.0.1.nip.io",
                "127.0.0.1.nip.io:5000", "localhostx:5000", "localhost.",
                /* not a whole dotted quad, or not in 127/8 */
                "127.0.0.1x", "1270.0.0.1", "127.1", "0x7f.0.0.1", "128.0.0.1", "10.0.0.1", "0.0.0.0",
                /* brackets, then something else */
                "[::1].evil", "[::1]x:5000", "[::2]:5000", "[::ffff:10.0.0.1]", "[localhost]", "::1",
                /* ports that are not ports */
                "localhost:", "localhost:0", "localhost:65536", "localhost:5000x", "localhost:5000:1",
                "127.0.0.1:-1", "[::1]:", "",
        };
        for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++)
                if (!reg_host_is_loopback(yes[i])) {
                        fprintf(stderr, "%s:%d: '%s' is loopback\n", __FILE__, __LINE__, yes[i]);
                        check_failures++;
                }
        for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
                if (reg_host_is_loopback(no[i])) {
                        fprintf(stderr, "%s:%d: '%s' is not loopback\n", __FILE__, __LINE__, no[i]);
                        check_failures++;
                }
        CHECK(!reg_host_is_loopback(NULL));
}

/* Plain HTTP follows the same rule: only loopback registries are contacted
 * without TLS unless marked insecure. */
static void test_upstream(void)
{
        char *u = msb_reg_upstream("localhost.attacker.example:5000", false);
        CHECK_STR(u, "https://localhost.attacker.example:5000");
        free(u);
        u = msb_reg_upstream("127.0.0.1.nip.io", false);
        CHECK_STR(u, "https://127.0.0.1.nip.io");
        free(u);
        u = msb_reg_upstream("localhost:5000", false);
        CHECK_STR(u, "http://localhost:5000");
        free(u);
        u = msb_reg_upstream("[::1]:5000", false);
        CHECK_STR(u, "http://[::1]:5000");
        free(u);
}

/* Basic credentials go to a token realm over https, or over plain HTTP
 * only to loopback or a host the config marks insecure. */
static void test_realm_credentials(void)
{
        char path[] = "/tmp/msb-test-registry.XXXXXX";
        int fd = mkstemp(path);
        const char *text = "insecure auth.lan:8080\ninsecure plain.lan\n";
        CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
        close(fd);
        setenv("MSB_CONFIG", path, 1);
        static const char *const yes[] = {
                "https://auth.docker.io/token", "HTTPS://auth.example:8443/token?x=1", "https://localhost.attacker.example/t",
                "http://127.0.0.1:5001/token", "http://localhost/token", "http://[::1]:5001/token",
                "http://127.0.0.2:9/t?service=x", "http://auth.lan:8080/token", "http://plain.lan/token",
        };
        static const char *const no[] = {
                "http://auth.example/token", "http://localhost.attacker.example/token",
                "http://127.0.0.1.nip.io:5001/token", "http://auth.lan/token", "http://auth.lan:8081/token",
                "http://plain.lan:8080/token",
                /* what the host really is hides behind userinfo */
                "http://127.0.0.1@evil.example/token", "https://user:pw@auth.example/token",
                "ftp://127.0.0.1/token", "file:///etc/passwd", "127.0.0.1/token", "", "http://",
        };
        for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++)
                if (!reg_url_may_get_credentials(yes[i])) {
                        fprintf(stderr, "%s:%d: '%s' may get credentials\n", __FILE__, __LINE__, yes[i]);
                        check_failures++;
                }
        for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
                if (reg_url_may_get_credentials(no[i])) {
                        fprintf(stderr, "%s:%d: '%s' must not get credentials\n", __FILE__, __LINE__, no[i]);
                        check_failures++;
                }
        CHECK(!reg_url_may_get_credentials(NULL));
        unlink(path);
        /* without the config file nothing is insecure */
        CHECK(!reg_url_may_get_credentials("http://auth.lan:8080/token"));
        unsetenv("MSB_CONFIG");
}

int main(void)
{
        test_loopback();
        test_upstream();
        test_realm_credentials();
        CHECK_DONE();
}
