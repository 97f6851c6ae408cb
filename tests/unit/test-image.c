/* SPDX-License-Identifier: Apache-2.0 */
/* Image config parsing and the SHA-256 used for content addresses. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "common/util.h"
#include "msb.h"
#include "lib/sha256.h"
#include "lib/image/image.h"

static void hex_of(const void *d, size_t n, char out[65])
{
        struct sha256 s;
        sha256_init(&s);
        sha256_update(&s, d, n);
        sha256_hex(&s, out);
}

static void test_sha256(void)
{
        char h[65];
        hex_of("", 0, h);
        CHECK_STR(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        hex_of("abc", 3, h);
        CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        hex_of(two, strlen(two), h);
        CHECK_STR(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        /* a million 'a's fed in odd-sized pieces: exercises partial blocks */
        struct sha256 s;
        sha256_init(&s);
        char a[997];
        memset(a, 'a', sizeof(a));
        size_t left = 1000000, step = 1;
        while (left) {
                size_t k = step < left ? step : left;
                if (k > sizeof(a))
                        k = sizeof(a);
                sha256_update(&s, a, k);
                left -= k;
                step = step * 3 % 1000 + 1;
        }
        sha256_hex(&s, h);
        CHECK_STR(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static int parse(const char *json, struct msb_image_config *c, struct msb_error *e)
{
        return msb_image_config_parse(json, strlen(json), c, e);
}

static void test_config(void)
{
        struct msb_image_config c;
        struct msb_error e = {0};
        CHECK_INT(parse("{\"config\":{\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],"
                        "\"Env\":[\"A=1\",\"B=x=y\"],\"WorkingDir\":\"/w\",\"User\":\"daemon\"}}",
                        &c, &e),
                  0);
        CHECK_STR(c.entrypoint[1], "-c");
        CHECK(c.entrypoint[2] == NULL);
        CHECK_STR(c.cmd[0], "echo hi");
        CHECK_STR(c.env[1], "B=x=y");
        CHECK_STR(c.workdir, "/w");
        CHECK_STR(c.user, "daemon");
        msb_image_config_free(&c);
        /* everything optional */
        CHECK_INT(parse("{}", &c, &e), 0);
        CHECK(c.cmd == NULL && c.entrypoint == NULL && c.workdir == NULL);
        msb_image_config_free(&c);
        CHECK_INT(parse("{\"config\":null}", &c, &e), 0);
        msb_image_config_free(&c);
        /* malformed: each a clear error */
        CHECK_INT(parse("[]", &c, &e), -EINVAL);
        CHECK_INT(parse("{\"config\":{\"Cmd\":\"sh\"}}", &c, &e), -EINVAL);
        CHECK(strstr(e.message, "Cmd") != NULL);
        CHECK_INT(parse("{\"config\":{\"Cmd\":[1]}}", &c, &e), -EINVAL);
        CHECK_INT(parse("{\"config\":{\"Env\":[\"NOEQ\"]}}", &c, &e), -EINVAL);
        CHECK(strstr(e.message, "NOEQ") != NULL);
        CHECK_INT(parse("{\"config\":{\"WorkingDir\":\"rel\"}}", &c, &e), -EINVAL);
        CHECK_INT(parse("{\"config\":{\"Cmd\":[\"a\\u0000b\"]}}", &c, &e), -EINVAL);
        CHECK_INT(parse("{\"config\":5}", &c, &e), -EINVAL);
        CHECK_INT(parse("not json", &c, &e), -EINVAL);
}

/* Every public function takes a NULL error: a failed pull from a port
 * where nothing listens (loopback only) returns, it does not crash. */
static void test_null_error(void)
{
        char home[] = "/tmp/msb-test-image-XXXXXX";
        if (!mkdtemp(home)) {
                CHECK(0);
                return;
        }
        setenv("MSB_HOME", home, 1);
        setenv("MSB_CONFIG", "/nonexistent/msb-test-config", 1);
        struct msb_ctx *ctx = NULL;
        CHECK_INT(msb_ctx_new(&ctx, NULL), 0);
        char *name = NULL;
        CHECK(msb_image_pull(ctx, "127.0.0.1:1/msbtest/none:v1", &name, NULL) < 0);
        CHECK(msb_image_remove(ctx, "msbtest/none:v1", NULL) == -ENOENT);
        msb_ctx_free(ctx);
        free(name);
        char *cmd = xasprintf("rm -rf %s", home);
        CHECK_INT(system(cmd), 0);
        free(cmd);
        unsetenv("MSB_HOME");
        unsetenv("MSB_CONFIG");
}

int main(void)
{
        /* our portable code, then libcrypto's: the same digests */
        test_sha256();
        if (!sha256_fast())
                fprintf(stderr, "libcrypto.so.3 not loadable: only the portable SHA-256 was checked\n");
        else
                test_sha256();
        test_config();
        test_null_error();
        CHECK_DONE();
}
