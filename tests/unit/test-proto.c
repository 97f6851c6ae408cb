/* SPDX-License-Identifier: Apache-2.0 */
/* Control protocol: round trips of every message and malformed input. */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "common/util.h"
#include "proto/proto.h"

/* Decode the single frame held in b. */
static int decode_one(const struct msb_buf *b, struct msb_msg *m)
{
        struct msb_reader rd = {0};
        msb_reader_feed(&rd, msb_buf_head(b), msb_buf_pending(b));
        int r = msb_reader_next(&rd, m);
        /* data messages point into the reader: copy before freeing */
        static uint8_t copy[MSB_PROTO_MAX_PAYLOAD];
        if (r == 1 && (m->type == MSB_MSG_STDIN || m->type == MSB_MSG_STDOUT || m->type == MSB_MSG_STDERR)) {
                memcpy(copy, m->u.data.data, m->u.data.len);
                m->u.data.data = copy;
        }
        msb_reader_free(&rd);
        return r;
}

static void test_roundtrips(void)
{
        struct msb_buf b = {0};
        struct msb_msg m;

        CHECK_INT(msb_enc_hello(&b, MSB_PROTO_VERSION, "agentd"), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.type, MSB_MSG_HELLO);
        CHECK_INT(m.u.hello.version, MSB_PROTO_VERSION);
        CHECK_STR(m.u.hello.peer, "agentd");
        msb_msg_free(&m);
        msb_buf_free(&b);

        char *argv[] = {"sh", "-c", "echo hi", NULL};
        char *env[] = {"A=1", "PATH=/bin", NULL};
        struct msb_mount_spec mounts[] = {{"tag1", "", "/data", 0},
                                          {"tag2", "3", "/data/sub dir", MSB_MOUNT_RO | MSB_MOUNT_FILE}};
        struct msb_run_msg run = {.flags = MSB_RUN_STDIN,
                                  .rootfs_tag = "root",
                                  .hostname = "h",
                                  .workdir = "/w",
                                  .user = "1:2",
                                  .argc = 3,
                                  .argv = argv,
                                  .envc = 2,
                                  .env = env,
                                  .nmounts = 2,
                                  .mounts = mounts};
        CHECK_INT(msb_enc_run(&b, &run), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.type, MSB_MSG_RUN);
        CHECK_INT(m.u.run.flags, MSB_RUN_STDIN);
        CHECK_STR(m.u.run.rootfs_tag, "root");
        CHECK_STR(m.u.run.hostname, "h");
        CHECK_STR(m.u.run.workdir, "/w");
        CHECK_STR(m.u.run.user, "1:2");
        CHECK_INT(m.u.run.argc, 3);
        CHECK_STR(m.u.run.argv[2], "echo hi");
        CHECK(m.u.run.argv[3] == NULL);
        CHECK_INT(m.u.run.envc, 2);
        CHECK_STR(m.u.run.env[1], "PATH=/bin");
        CHECK(m.u.run.env[2] == NULL);
        CHECK_INT(m.u.run.nmounts, 2);
        CHECK_STR(m.u.run.mounts[1].path, "/data/sub dir");
        CHECK_INT(m.u.run.mounts[1].flags, MSB_MOUNT_RO | MSB_MOUNT_FILE);
        CHECK_STR(m.u.run.mounts[1].sub, "3");
        CHECK_STR(m.u.run.mounts[0].sub, "");
        msb_msg_free(&m);
        msb_buf_free(&b);

        /* a user resolved by the host */
        run.flags = MSB_RUN_IDS;
        run.uid = 1000;
        run.gid = 100;
        run.ngroups = 3;
        run.groups[0] = 100;
        run.groups[1] = 27;
        run.groups[2] = 4294967295u;
        run.home = "/home/u";
        run.exec_path = "/usr/bin/env";
        char *pf[] = {"/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6", NULL};
        run.prefetch = pf;
        run.nprefetch = 2;
        CHECK_INT(msb_enc_run(&b, &run), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_STR(m.u.run.exec_path, "/usr/bin/env");
        CHECK_INT(m.u.run.nprefetch, 2);
        CHECK_STR(m.u.run.prefetch[1], "/lib/x86_64-linux-gnu/libc.so.6");
        CHECK_INT(m.u.run.flags, MSB_RUN_IDS);
        CHECK_INT(m.u.run.uid, 1000);
        CHECK_INT(m.u.run.gid, 100);
        CHECK_INT(m.u.run.ngroups, 3);
        CHECK_INT(m.u.run.groups[1], 27);
        CHECK_INT(m.u.run.groups[2], 4294967295u);
        CHECK_STR(m.u.run.home, "/home/u");
        msb_msg_free(&m);
        msb_buf_free(&b);
        run.ngroups = MSB_PROTO_MAX_GROUPS + 1;
        CHECK_INT(msb_enc_run(&b, &run), -E2BIG);
        msb_buf_free(&b);
        run.ngroups = 3;
        run.nprefetch = MSB_PROTO_MAX_PREFETCH + 1;
        CHECK_INT(msb_enc_run(&b, &run), -E2BIG);
        msb_buf_free(&b);
        run.nprefetch = 0;
        run.prefetch = NULL;

        static const uint16_t data_types[] = {MSB_MSG_STDIN, MSB_MSG_STDOUT, MSB_MSG_STDERR};
        for (size_t i = 0; i < 3; i++) {
                uint8_t payload[MSB_PROTO_DATA_CHUNK];
                for (size_t k = 0; k < sizeof(payload); k++)
                        payload[k] = (uint8_t)(k * 7 + i);
                CHECK_INT(msb_enc_data(&b, data_types[i], payload, sizeof(payload)), 0);
                CHECK_INT(decode_one(&b, &m), 1);
                CHECK_INT(m.type, data_types[i]);
                CHECK_INT(m.u.data.len, sizeof(payload));
                CHECK(memcmp(m.u.data.data, payload, sizeof(payload)) == 0);
                msb_msg_free(&m);
                msb_buf_free(&b);
        }

        CHECK_INT(msb_enc_empty(&b, MSB_MSG_STDIN_EOF), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.type, MSB_MSG_STDIN_EOF);
        msb_msg_free(&m);
        msb_buf_free(&b);

        CHECK_INT(msb_enc_empty(&b, MSB_MSG_EXIT_ACK), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.type, MSB_MSG_EXIT_ACK);
        msb_msg_free(&m);
        msb_buf_free(&b);

        CHECK_INT(msb_enc_signal(&b, 15), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.u.signo, 15);
        msb_buf_free(&b);

        CHECK_INT(msb_enc_exit(&b, MSB_EXIT_SIGNAL, 9), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.u.exit.kind, MSB_EXIT_SIGNAL);
        CHECK_INT(m.u.exit.value, 9);
        msb_buf_free(&b);

        CHECK_INT(msb_enc_error(&b, "mount", 2, "mount x on /y"), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_STR(m.u.error.step, "mount");
        CHECK_INT(m.u.error.err, 2);
        CHECK_STR(m.u.error.message, "mount x on /y");
        msb_msg_free(&m);
        msb_buf_free(&b);
}

/* Frames arriving one byte at a time, several per buffer. */
static void test_incremental(void)
{
        struct msb_buf b = {0};
        msb_enc_hello(&b, 1, "x");
        msb_enc_data(&b, MSB_MSG_STDOUT, "abc", 3);
        msb_enc_exit(&b, MSB_EXIT_CODE, 3);
        struct msb_reader rd = {0};
        struct msb_msg m;
        int got = 0;
        for (size_t i = 0; i < msb_buf_pending(&b); i++) {
                msb_reader_feed(&rd, msb_buf_head(&b) + i, 1);
                int r;
                while ((r = msb_reader_next(&rd, &m)) == 1) {
                        got++;
                        if (got == 2)
                                CHECK(m.u.data.len == 3 && memcmp(m.u.data.data, "abc", 3) == 0);
                        if (got == 3)
                                CHECK_INT(m.u.exit.value, 3);
                        msb_msg_free(&m);
                }
                CHECK_INT(r, 0);
        }
        CHECK_INT(got, 3);
        msb_reader_free(&rd);
        msb_buf_free(&b);
}

static int decode_raw(uint16_t type, const uint8_t *p, size_t n)
{
        struct msb_msg m;
        int r = msb_msg_decode(type, p, n, &m);
        if (r == 0)
                msb_msg_free(&m);
        return r;
}

static void test_malformed(void)
{
        uint8_t h[8] = {0};
        uint16_t t;
        uint32_t l;
        /* unknown type, type 0, reserved bits, oversized payload */
        h[4] = MSB_MSG_TYPE_MAX + 1;
        CHECK_INT(msb_frame_header(h, &t, &l), -EPROTO);
        h[4] = 99;
        CHECK_INT(msb_frame_header(h, &t, &l), -EPROTO);
        h[4] = 0;
        CHECK_INT(msb_frame_header(h, &t, &l), -EPROTO);
        h[4] = MSB_MSG_EXIT;
        h[6] = 1;
        CHECK_INT(msb_frame_header(h, &t, &l), -EPROTO);
        h[6] = 0;
        uint32_t big = MSB_PROTO_MAX_PAYLOAD + 1;
        memcpy(h, &big, 4);
        CHECK_INT(msb_frame_header(h, &t, &l), -EPROTO);

        /* every truncation of a valid RUN payload is rejected */
        struct msb_buf b = {0};
        char *argv[] = {"x", NULL};
        char *env[] = {"A=1", NULL};
        struct msb_mount_spec mt[] = {{"t", "", "/m", 0}};
        struct msb_run_msg run = {.rootfs_tag = "r", .hostname = "", .workdir = "", .user = "",
                                  .argc = 1, .argv = argv, .envc = 1, .env = env, .nmounts = 1, .mounts = mt};
        msb_enc_run(&b, &run);
        const uint8_t *pl = msb_buf_head(&b) + 8;
        size_t plen = msb_buf_pending(&b) - 8;
        CHECK_INT(decode_raw(MSB_MSG_RUN, pl, plen), 0);
        for (size_t n = 0; n < plen; n++)
                CHECK_INT(decode_raw(MSB_MSG_RUN, pl, n), -EBADMSG);
        /* trailing garbage */
        uint8_t *more = malloc(plen + 1);
        memcpy(more, pl, plen);
        more[plen] = 0;
        CHECK_INT(decode_raw(MSB_MSG_RUN, more, plen + 1), -EBADMSG);
        free(more);
        msb_buf_free(&b);

        /* a mount's sub-entry is one component: no way up or across */
        const char *bad_subs[] = {"..", ".", "a/b", "/"};
        for (size_t k = 0; k < ARRAY_SIZE(bad_subs); k++) {
                struct msb_buf bb = {0};
                mt[0].sub = (char *)bad_subs[k];
                msb_enc_run(&bb, &run);
                CHECK_INT(decode_raw(MSB_MSG_RUN, msb_buf_head(&bb) + 8, msb_buf_pending(&bb) - 8), -EBADMSG);
                msb_buf_free(&bb);
        }
        mt[0].sub = "";

        /* resolved ids must be whole: groups[0] is gid, home absolute, at
         * most MSB_PROTO_MAX_GROUPS groups (patched in after encoding) */
        struct {
                uint32_t ngroups, g0;
                const char *home;
        } bad_ids[] = {{0, 7, "/h"}, {1, 8, "/h"}, {1, 7, "h"}, {1, 7, ""}};
        for (size_t k = 0; k < ARRAY_SIZE(bad_ids); k++) {
                struct msb_buf bb = {0};
                struct msb_run_msg r2 = run;
                r2.flags = MSB_RUN_IDS;
                r2.gid = 7;
                r2.ngroups = bad_ids[k].ngroups;
                r2.groups[0] = bad_ids[k].g0;
                r2.home = (char *)bad_ids[k].home;
                CHECK_INT(msb_enc_run(&bb, &r2), 0);
                CHECK_INT(decode_raw(MSB_MSG_RUN, msb_buf_head(&bb) + 8, msb_buf_pending(&bb) - 8), -EBADMSG);
                msb_buf_free(&bb);
        }
        {
                struct msb_buf bb = {0};
                struct msb_run_msg r2 = run;
                r2.home = "/h";
                msb_enc_run(&bb, &r2);
                /* ngroups sits before the home string (4 + 2 bytes), the
                 * empty exec path (4) and the prefetch count (4) */
                uint8_t *pp = (uint8_t *)msb_buf_head(&bb) + msb_buf_pending(&bb) - 4 - 4 - 4 - 2 - 4;
                CHECK_INT(pp[0], 0);
                pp[0] = MSB_PROTO_MAX_GROUPS + 1;
                CHECK_INT(decode_raw(MSB_MSG_RUN, msb_buf_head(&bb) + 8, msb_buf_pending(&bb) - 8), -EBADMSG);
                msb_buf_free(&bb);
        }

        /* prefetch paths are absolute */
        {
                struct msb_buf bb = {0};
                struct msb_run_msg r2 = run;
                char *rel[] = {"lib/libc.so.6", NULL};
                r2.prefetch = rel;
                r2.nprefetch = 1;
                CHECK_INT(msb_enc_run(&bb, &r2), 0);
                CHECK_INT(decode_raw(MSB_MSG_RUN, msb_buf_head(&bb) + 8, msb_buf_pending(&bb) - 8), -EBADMSG);
                msb_buf_free(&bb);
        }
        /* the host's exec path is absolute or empty */
        {
                struct msb_buf bb = {0};
                struct msb_run_msg r2 = run;
                r2.exec_path = "bin/sh";
                CHECK_INT(msb_enc_run(&bb, &r2), 0);
                CHECK_INT(decode_raw(MSB_MSG_RUN, msb_buf_head(&bb) + 8, msb_buf_pending(&bb) - 8), -EBADMSG);
                msb_buf_free(&bb);
        }

        /* string with embedded NUL */
        uint8_t hello[] = {1, 0, 0, 0, 3, 0, 0, 0, 'a', 0, 'b'};
        CHECK_INT(decode_raw(MSB_MSG_HELLO, hello, sizeof(hello)), -EBADMSG);
        /* string length beyond the payload */
        uint8_t hello2[] = {1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 'a'};
        CHECK_INT(decode_raw(MSB_MSG_HELLO, hello2, sizeof(hello2)), -EBADMSG);
        /* RUN with a huge argc: rejected without allocating it */
        uint8_t run_big[4 + 4 * 4 + 4] = {0};
        memset(run_big + 20, 0xff, 4);
        CHECK_INT(decode_raw(MSB_MSG_RUN, run_big, sizeof(run_big)), -EBADMSG);
        /* RUN with argc 0 */
        uint8_t run0[4 + 4 * 4 + 4 + 4 + 4] = {0};
        CHECK_INT(decode_raw(MSB_MSG_RUN, run0, sizeof(run0)), -EBADMSG);
        /* unknown RUN flag */
        run0[0] = 0x80;
        CHECK_INT(decode_raw(MSB_MSG_RUN, run0, sizeof(run0)), -EBADMSG);
        /* env without '=' */
        char *badenv[] = {"NOEQUALS", NULL};
        run.env = badenv;
        msb_enc_run(&b, &run);
        CHECK_INT(decode_raw(MSB_MSG_RUN, msb_buf_head(&b) + 8, msb_buf_pending(&b) - 8), -EBADMSG);
        msb_buf_free(&b);
        /* signal and exit ranges */
        uint8_t sig0[4] = {0}, sig65[4] = {65};
        CHECK_INT(decode_raw(MSB_MSG_SIGNAL, sig0, 4), -EBADMSG);
        CHECK_INT(decode_raw(MSB_MSG_SIGNAL, sig65, 4), -EBADMSG);
        uint8_t ex1[8] = {0, 0, 0, 0, 0, 1, 0, 0}; /* code 256 */
        CHECK_INT(decode_raw(MSB_MSG_EXIT, ex1, 8), -EBADMSG);
        uint8_t ex2[8] = {2, 0, 0, 0, 1, 0, 0, 0}; /* unknown kind */
        CHECK_INT(decode_raw(MSB_MSG_EXIT, ex2, 8), -EBADMSG);
        uint8_t eof1[1] = {0};
        CHECK_INT(decode_raw(MSB_MSG_STDIN_EOF, eof1, 1), -EBADMSG);
        CHECK_INT(decode_raw(MSB_MSG_EXIT_ACK, eof1, 1), -EBADMSG);

        /* encoders refuse what the decoder would refuse */
        char *noargs[] = {NULL};
        run.argc = 0;
        run.argv = noargs;
        run.env = env;
        CHECK_INT(msb_enc_run(&b, &run), -E2BIG);
        CHECK_INT(msb_buf_pending(&b), 0);
        static uint8_t huge[MSB_PROTO_MAX_PAYLOAD + 1];
        CHECK_INT(msb_enc_data(&b, MSB_MSG_STDOUT, huge, sizeof(huge)), -E2BIG);
        CHECK_INT(msb_buf_pending(&b), 0);
        msb_buf_free(&b);

        /* a reader poisoned by a bad header reports it */
        struct msb_reader rd = {0};
        uint8_t bad[8] = {0, 0, 0, 0, 77, 0, 0, 0};
        msb_reader_feed(&rd, bad, 8);
        struct msb_msg m;
        CHECK_INT(msb_reader_next(&rd, &m), -EPROTO);
        msb_reader_free(&rd);
}

int main(void)
{
        test_roundtrips();
        test_incremental();
        test_malformed();
        CHECK_DONE();
}
