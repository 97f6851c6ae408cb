/* SPDX-License-Identifier: Apache-2.0 */
/* Control protocol (v4): round trips of every message and malformed input. */
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

/* Decode a raw payload; 0 or -EBADMSG. */
static int decode_raw(uint16_t type, const void *p, size_t n)
{
        struct msb_msg m;
        int r = msb_msg_decode(type, p, n, &m);
        if (r == 0)
                msb_msg_free(&m);
        return r;
}

/* The payload of the single frame in b, decoded as its own type. */
static int decode_payload(const struct msb_buf *b)
{
        uint16_t type = (uint16_t)(msb_buf_head(b)[4] | msb_buf_head(b)[5] << 8);
        return decode_raw(type, msb_buf_head(b) + MSB_PROTO_HDR_SIZE, msb_buf_pending(b) - MSB_PROTO_HDR_SIZE);
}

static void put32(uint8_t *p, uint32_t v)
{
        p[0] = v & 0xff;
        p[1] = (v >> 8) & 0xff;
        p[2] = (v >> 16) & 0xff;
        p[3] = (v >> 24) & 0xff;
}

static char *argv3[] = {"sh", "-c", "echo hi", NULL};
static char *env2[] = {"A=1", "PATH=/bin", NULL};

static struct msb_exec_msg sample_exec(void)
{
        return (struct msb_exec_msg){.id = 7, .flags = MSB_EXEC_STDIN, .workdir = "/w", .user = "1:2",
                                     .argc = 3, .argv = argv3, .envc = 2, .env = env2};
}

static void test_hello(void)
{
        struct msb_buf b = {0};
        struct msb_msg m;
        CHECK_INT(msb_enc_hello(&b, MSB_PROTO_VERSION, "agentd"), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.type, MSB_MSG_HELLO);
        CHECK_INT(m.id, 0);
        CHECK_INT(m.u.hello.version, MSB_PROTO_VERSION);
        CHECK_STR(m.u.hello.peer, "agentd");
        msb_msg_free(&m);
        msb_buf_free(&b);
}

static void test_setup(void)
{
        struct msb_buf b = {0};
        struct msb_msg m;
        struct msb_mount_spec mounts[] = {{"tag1", "", "/data", 0},
                                          {"tag2", "3", "/data/sub dir", MSB_MOUNT_RO | MSB_MOUNT_FILE}};
        struct msb_setup_msg su = {.flags = MSB_SETUP_DISK, .rootfs_tag = "root", .hostname = "h",
                                   .nmounts = 2, .mounts = mounts};
        CHECK_INT(msb_enc_setup(&b, &su), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.type, MSB_MSG_SETUP);
        CHECK_INT(m.u.setup.flags, MSB_SETUP_DISK);
        CHECK_STR(m.u.setup.rootfs_tag, "root");
        CHECK_STR(m.u.setup.hostname, "h");
        CHECK_INT(m.u.setup.nmounts, 2);
        CHECK_STR(m.u.setup.mounts[0].tag, "tag1");
        CHECK_STR(m.u.setup.mounts[0].sub, "");
        CHECK_STR(m.u.setup.mounts[1].path, "/data/sub dir");
        CHECK_STR(m.u.setup.mounts[1].sub, "3");
        CHECK_INT(m.u.setup.mounts[1].flags, MSB_MOUNT_RO | MSB_MOUNT_FILE);
        msb_msg_free(&m);
        msb_buf_free(&b);

        /* no mounts, no flags */
        su = (struct msb_setup_msg){.rootfs_tag = "r", .hostname = ""};
        CHECK_INT(msb_enc_setup(&b, &su), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.u.setup.flags, 0);
        CHECK_INT(m.u.setup.nmounts, 0);
        msb_msg_free(&m);
        msb_buf_free(&b);

        /* the network's configuration round-trips; out-of-range values are
         * refused by the encoder and the decoder */
        su = (struct msb_setup_msg){.flags = MSB_SETUP_NET, .rootfs_tag = "r", .hostname = "h",
                                    .net = {.addr4 = {10, 0, 2, 15}, .gw4 = {10, 0, 2, 2}, .prefix4 = 24,
                                            .addr6 = {0xfd, 0, 0x6d, 0x73, [15] = 0x15},
                                            .gw6 = {0xfd, 0, 0x6d, 0x73, [15] = 2}, .prefix6 = 64, .mtu = 65520}};
        CHECK_INT(msb_enc_setup(&b, &su), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.u.setup.flags, MSB_SETUP_NET);
        CHECK_INT(memcmp(&m.u.setup.net, &su.net, sizeof(su.net)), 0);
        msb_msg_free(&m);
        msb_buf_free(&b);
        su.net.mtu = 65521;
        CHECK_INT(msb_enc_setup(&b, &su), -EINVAL);
        CHECK_INT(msb_buf_pending(&b), 0);
        su.net.mtu = 1000; /* IPv6 needs 1280 */
        CHECK_INT(msb_enc_setup(&b, &su), -EINVAL);
        su.net.prefix6 = 0;
        CHECK_INT(msb_enc_setup(&b, &su), 0);
        msb_buf_free(&b);

        su.flags = 0;
        su.nmounts = MSB_PROTO_MAX_MOUNTS + 1;
        su.mounts = mounts;
        CHECK_INT(msb_enc_setup(&b, &su), -E2BIG);
        CHECK_INT(msb_buf_pending(&b), 0);
        msb_buf_free(&b);
}

static void test_exec_plain(void)
{
        struct msb_buf b = {0};
        struct msb_msg m;
        struct msb_exec_msg ex = sample_exec();
        ex.flags |= MSB_EXEC_MAIN;
        CHECK_INT(msb_enc_exec(&b, &ex), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.type, MSB_MSG_EXEC);
        CHECK_INT(m.id, 7);
        CHECK_INT(m.u.exec.id, 7);
        CHECK_INT(m.u.exec.flags, MSB_EXEC_STDIN | MSB_EXEC_MAIN);
        CHECK_STR(m.u.exec.workdir, "/w");
        CHECK_STR(m.u.exec.user, "1:2");
        CHECK_INT(m.u.exec.argc, 3);
        CHECK_STR(m.u.exec.argv[2], "echo hi");
        CHECK(m.u.exec.argv[3] == NULL);
        CHECK_INT(m.u.exec.envc, 2);
        CHECK_STR(m.u.exec.env[1], "PATH=/bin");
        CHECK(m.u.exec.env[2] == NULL);
        CHECK_STR(m.u.exec.home, "");
        CHECK_STR(m.u.exec.exec_path, "");
        CHECK_INT(m.u.exec.nprefetch, 0);
        CHECK_INT(m.u.exec.rows, 0);
        CHECK_INT(m.u.exec.cols, 0);
        msb_msg_free(&m);
        msb_buf_free(&b);
}

/* an OCI process's capabilities and filter round-trip; a filter without
 * CONFINE, or longer than the kernel takes, never goes out */
static void test_exec_confine(void)
{
        struct msb_buf b = {0};
        struct msb_msg m;
        struct msb_exec_msg ex = sample_exec();
        uint8_t bpf[16] = {6, 0, 0, 0, 0, 0, 0xff, 0x7f, 6, 0, 0, 0, 0, 0, 0, 0};
        ex.flags |= MSB_EXEC_CONFINE | MSB_EXEC_NO_NEW_PRIVS;
        for (int i = 0; i < MSB_CAP_SETS; i++)
                ex.caps[i] = 0x800405fbull << i;
        ex.nseccomp = 2;
        ex.seccomp = bpf;
        CHECK_INT(msb_enc_exec(&b, &ex), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.u.exec.flags, MSB_EXEC_STDIN | MSB_EXEC_CONFINE | MSB_EXEC_NO_NEW_PRIVS);
        CHECK(m.u.exec.caps[MSB_CAP_AMBIENT] == 0x800405fbull << 4);
        CHECK_INT(m.u.exec.nseccomp, 2);
        CHECK(m.u.exec.seccomp && !memcmp(m.u.exec.seccomp, bpf, 16));
        msb_msg_free(&m);
        msb_buf_free(&b);
        b = (struct msb_buf){0};
        ex.flags &= ~MSB_EXEC_CONFINE;
        CHECK_INT(msb_enc_exec(&b, &ex), -E2BIG);
        ex.flags |= MSB_EXEC_CONFINE;
        ex.nseccomp = MSB_PROTO_MAX_SECCOMP + 1;
        CHECK_INT(msb_enc_exec(&b, &ex), -E2BIG);
        CHECK_INT(msb_buf_pending(&b), 0);
        msb_buf_free(&b);
}

/* a user resolved by the host, a path found by it, files to read ahead */
/* a built-in routine (msb cp) round-trips with stdin */
static void test_exec_internal(void)
{
        struct msb_buf b = {0};
        struct msb_msg m;
        struct msb_exec_msg ex = sample_exec();
        ex.flags = MSB_EXEC_INTERNAL | MSB_EXEC_STDIN;
        CHECK_INT(msb_enc_exec(&b, &ex), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.u.exec.flags, MSB_EXEC_INTERNAL | MSB_EXEC_STDIN);
        msb_msg_free(&m);
        /* a file routine, as the user asked for */
        msb_buf_free(&b);
        ex.flags = MSB_EXEC_INTERNAL | MSB_EXEC_AS_USER;
        CHECK_INT(msb_enc_exec(&b, &ex), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.u.exec.flags, MSB_EXEC_INTERNAL | MSB_EXEC_AS_USER);
        msb_msg_free(&m);
        msb_buf_free(&b);
}

static void test_exec_ids(void)
{
        struct msb_buf b = {0};
        struct msb_msg m;
        struct msb_exec_msg ex = sample_exec();
        ex.id = 0xffffffffu;
        ex.flags = MSB_EXEC_IDS;
        ex.uid = 1000;
        ex.gid = 100;
        ex.ngroups = 3;
        ex.groups[0] = 100;
        ex.groups[1] = 27;
        ex.groups[2] = 4294967295u;
        ex.home = "/home/u";
        ex.exec_path = "/usr/bin/env";
        char *pf[] = {"/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6", NULL};
        ex.prefetch = pf;
        ex.nprefetch = 2;
        CHECK_INT(msb_enc_exec(&b, &ex), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.id, 0xffffffffu);
        CHECK_INT(m.u.exec.flags, MSB_EXEC_IDS);
        CHECK_INT(m.u.exec.uid, 1000);
        CHECK_INT(m.u.exec.gid, 100);
        CHECK_INT(m.u.exec.ngroups, 3);
        CHECK_INT(m.u.exec.groups[1], 27);
        CHECK_INT(m.u.exec.groups[2], 4294967295u);
        CHECK_STR(m.u.exec.home, "/home/u");
        CHECK_STR(m.u.exec.exec_path, "/usr/bin/env");
        CHECK_INT(m.u.exec.nprefetch, 2);
        CHECK_STR(m.u.exec.prefetch[1], "/lib/x86_64-linux-gnu/libc.so.6");
        CHECK(m.u.exec.prefetch[2] == NULL);
        msb_msg_free(&m);
        msb_buf_free(&b);

        ex.ngroups = MSB_PROTO_MAX_GROUPS + 1;
        CHECK_INT(msb_enc_exec(&b, &ex), -E2BIG);
        ex.ngroups = 3;
        ex.nprefetch = MSB_PROTO_MAX_PREFETCH + 1;
        CHECK_INT(msb_enc_exec(&b, &ex), -E2BIG);
        CHECK_INT(msb_buf_pending(&b), 0);
        msb_buf_free(&b);
}

static void test_exec_tty(void)
{
        struct msb_buf b = {0};
        struct msb_msg m;
        struct msb_exec_msg ex = sample_exec();
        ex.flags = MSB_EXEC_TTY | MSB_EXEC_STDIN;
        ex.rows = 1;
        ex.cols = 65535;
        CHECK_INT(msb_enc_exec(&b, &ex), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.u.exec.flags, MSB_EXEC_TTY | MSB_EXEC_STDIN);
        CHECK_INT(m.u.exec.rows, 1);
        CHECK_INT(m.u.exec.cols, 65535);
        msb_msg_free(&m);
        msb_buf_free(&b);
}

static void test_data(void)
{
        static const uint16_t types[] = {MSB_MSG_STDIN, MSB_MSG_STDOUT, MSB_MSG_STDERR};
        static uint8_t payload[MSB_PROTO_DATA_CHUNK];
        struct msb_buf b = {0};
        struct msb_msg m;
        for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
                for (size_t k = 0; k < sizeof(payload); k++)
                        payload[k] = (uint8_t)(k * 7 + i);
                CHECK_INT(msb_enc_data(&b, types[i], (uint32_t)(i + 1), payload, sizeof(payload)), 0);
                CHECK_INT(decode_one(&b, &m), 1);
                CHECK_INT(m.type, types[i]);
                CHECK_INT(m.id, i + 1);
                CHECK_INT(m.u.data.len, sizeof(payload));
                CHECK(memcmp(m.u.data.data, payload, sizeof(payload)) == 0);
                msb_msg_free(&m);
                msb_buf_free(&b);
        }
        /* an empty chunk is still a frame */
        CHECK_INT(msb_enc_data(&b, MSB_MSG_STDOUT, 3, "", 0), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.u.data.len, 0);
        msb_msg_free(&m);
        msb_buf_free(&b);
}

/* The small messages: one encoder call and what must come back. */
static void test_small(void)
{
        struct msb_buf b = {0};
        struct msb_msg m;

        CHECK_INT(msb_enc_id(&b, MSB_MSG_STDIN_EOF, 4), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.type, MSB_MSG_STDIN_EOF);
        CHECK_INT(m.id, 4);
        msb_buf_free(&b);

        static const uint16_t empties[] = {MSB_MSG_SHUTDOWN, MSB_MSG_WAIT, MSB_MSG_PROCS};
        for (size_t i = 0; i < ARRAY_SIZE(empties); i++) {
                CHECK_INT(msb_enc_empty(&b, empties[i]), 0);
                CHECK_INT(msb_buf_pending(&b), MSB_PROTO_HDR_SIZE);
                CHECK_INT(decode_one(&b, &m), 1);
                CHECK_INT(m.type, empties[i]);
                msb_buf_free(&b);
        }

        struct {
                uint16_t type;
                uint32_t id, v;
        } u32s[] = {
                {MSB_MSG_SIGNAL, 2, 15},  {MSB_MSG_SIGNAL, 2, 64},           {MSB_MSG_ACK, 3, 1},
                {MSB_MSG_ACK, 3, MSB_PROTO_WINDOW}, {MSB_MSG_STARTED, 5, 4194304}, {MSB_MSG_ATTACH, 1, MSB_ATTACH_STDIN},
                {MSB_MSG_STOP, 1, 10000}, {MSB_MSG_STOP, 1, 0},
        };
        for (size_t i = 0; i < ARRAY_SIZE(u32s); i++) {
                CHECK_INT(msb_enc_u32(&b, u32s[i].type, u32s[i].id, u32s[i].v), 0);
                CHECK_INT(decode_one(&b, &m), 1);
                CHECK_INT(m.type, u32s[i].type);
                CHECK_INT(m.id, u32s[i].id);
                uint32_t got = m.type == MSB_MSG_SIGNAL    ? m.u.signo
                               : m.type == MSB_MSG_ACK     ? m.u.ack
                               : m.type == MSB_MSG_STARTED ? m.u.pid
                               : m.type == MSB_MSG_ATTACH  ? m.u.flags
                                                           : m.u.grace_ms;
                CHECK_INT(got, u32s[i].v);
                msb_buf_free(&b);
        }

        CHECK_INT(msb_enc_resize(&b, 9, 24, 80), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.id, 9);
        CHECK_INT(m.u.resize.rows, 24);
        CHECK_INT(m.u.resize.cols, 80);
        msb_buf_free(&b);

        CHECK_INT(msb_enc_exit(&b, 6, MSB_EXIT_SIGNAL, 9), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.id, 6);
        CHECK_INT(m.u.exit.kind, MSB_EXIT_SIGNAL);
        CHECK_INT(m.u.exit.value, 9);
        msb_buf_free(&b);
        CHECK_INT(msb_enc_exit(&b, 6, MSB_EXIT_CODE, 255), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.u.exit.value, 255);
        msb_buf_free(&b);

        /* ERROR names a process, or with id 0 the sandbox */
        for (uint32_t id = 0; id < 2; id++) {
                CHECK_INT(msb_enc_error(&b, id, "mount", 2, "mount x on /y"), 0);
                CHECK_INT(decode_one(&b, &m), 1);
                CHECK_INT(m.id, id);
                CHECK_STR(m.u.error.step, "mount");
                CHECK_INT(m.u.error.err, 2);
                CHECK_STR(m.u.error.message, "mount x on /y");
                msb_msg_free(&m);
                msb_buf_free(&b);
        }

        for (uint16_t t = 1; t <= MSB_MSG_TYPE_MAX; t++)
                CHECK(strcmp(msb_msg_type_name(t), "UNKNOWN") != 0);
        CHECK_STR(msb_msg_type_name(0), "UNKNOWN");
        CHECK_STR(msb_msg_type_name(MSB_MSG_TYPE_MAX + 1), "UNKNOWN");
}

/* Frames arriving one byte at a time, several per buffer. */
static void test_incremental(void)
{
        struct msb_buf b = {0};
        msb_enc_hello(&b, 1, "x");
        msb_enc_data(&b, MSB_MSG_STDOUT, 2, "abc", 3);
        msb_enc_exit(&b, 2, MSB_EXIT_CODE, 3);
        struct msb_reader rd = {0};
        struct msb_msg m;
        int got = 0;
        for (size_t i = 0; i < msb_buf_pending(&b); i++) {
                msb_reader_feed(&rd, msb_buf_head(&b) + i, 1);
                int r;
                while ((r = msb_reader_next(&rd, &m)) == 1) {
                        got++;
                        if (got == 2)
                                CHECK(m.id == 2 && m.u.data.len == 3 && memcmp(m.u.data.data, "abc", 3) == 0);
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

static void test_bad_headers(void)
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
        put32(h, MSB_PROTO_MAX_PAYLOAD + 1);
        CHECK_INT(msb_frame_header(h, &t, &l), -EPROTO);
        put32(h, MSB_PROTO_MAX_PAYLOAD);
        CHECK_INT(msb_frame_header(h, &t, &l), 0);
        CHECK_INT(t, MSB_MSG_EXIT);
        CHECK_INT(l, MSB_PROTO_MAX_PAYLOAD);

        /* a reader poisoned by a bad header reports it */
        struct msb_reader rd = {0};
        uint8_t bad[8] = {0, 0, 0, 0, 77, 0, 0, 0};
        msb_reader_feed(&rd, bad, 8);
        struct msb_msg m;
        CHECK_INT(msb_reader_next(&rd, &m), -EPROTO);
        msb_reader_free(&rd);
}

/* Every message whose layout is fixed: each proper prefix and the whole
 * with one byte more are rejected; the whole is accepted. */
static void check_exact(const struct msb_buf *b)
{
        uint16_t type = (uint16_t)(msb_buf_head(b)[4] | msb_buf_head(b)[5] << 8);
        const uint8_t *pl = msb_buf_head(b) + MSB_PROTO_HDR_SIZE;
        size_t plen = msb_buf_pending(b) - MSB_PROTO_HDR_SIZE;
        CHECK_INT(decode_raw(type, pl, plen), 0);
        for (size_t n = 0; n < plen; n++)
                if (decode_raw(type, pl, n) != -EBADMSG) {
                        fprintf(stderr, "%s: a %zu-byte prefix of %zu decoded\n", msb_msg_type_name(type), n, plen);
                        check_failures++;
                }
        uint8_t *more = malloc(plen + 1);
        memcpy(more, pl, plen);
        more[plen] = 0;
        CHECK_INT(decode_raw(type, more, plen + 1), -EBADMSG);
        free(more);
}

static void test_truncations(void)
{
        struct msb_buf b = {0};
        struct msb_mount_spec mt[] = {{"t", "s", "/m", MSB_MOUNT_RO}};
        struct msb_setup_msg su = {.flags = MSB_SETUP_DISK, .rootfs_tag = "r", .hostname = "h", .nmounts = 1,
                                   .mounts = mt};
        struct msb_exec_msg ex = sample_exec(), tty = sample_exec();
        tty.flags = MSB_EXEC_TTY | MSB_EXEC_IDS;
        tty.rows = 24;
        tty.cols = 80;
        tty.ngroups = 1;
        tty.home = "/root";
        tty.exec_path = "/bin/sh";
        char *pf[] = {"/lib/ld.so", NULL};
        tty.prefetch = pf;
        tty.nprefetch = 1;

        msb_enc_hello(&b, MSB_PROTO_VERSION, "msb");
        check_exact(&b);
        msb_buf_free(&b);
        msb_enc_setup(&b, &su);
        check_exact(&b);
        msb_buf_free(&b);
        msb_enc_exec(&b, &ex);
        check_exact(&b);
        msb_buf_free(&b);
        CHECK_INT(msb_enc_exec(&b, &tty), 0);
        check_exact(&b);
        msb_buf_free(&b);
        msb_enc_id(&b, MSB_MSG_STDIN_EOF, 1);
        check_exact(&b);
        msb_buf_free(&b);
        static const uint16_t u32types[] = {MSB_MSG_SIGNAL, MSB_MSG_ACK, MSB_MSG_STARTED, MSB_MSG_ATTACH,
                                            MSB_MSG_STOP};
        for (size_t i = 0; i < ARRAY_SIZE(u32types); i++) {
                msb_enc_u32(&b, u32types[i], 1, 1);
                check_exact(&b);
                msb_buf_free(&b);
        }
        msb_enc_resize(&b, 1, 2, 3);
        check_exact(&b);
        msb_buf_free(&b);
        msb_enc_exit(&b, 1, MSB_EXIT_CODE, 0);
        check_exact(&b);
        msb_buf_free(&b);
        msb_enc_error(&b, 0, "s", 1, "m");
        check_exact(&b);
        msb_buf_free(&b);
        msb_enc_empty(&b, MSB_MSG_SHUTDOWN);
        check_exact(&b);
        msb_buf_free(&b);
        msb_enc_empty(&b, MSB_MSG_WAIT);
        check_exact(&b);
        msb_buf_free(&b);

        /* a data message needs at least its id */
        for (size_t n = 0; n < 4; n++)
                CHECK_INT(decode_raw(MSB_MSG_STDOUT, "\1\0\0\0", n), -EBADMSG);
}

/* id 0 means "no process": only ERROR (the sandbox itself) may carry it. */
static void check_bad_exec(const struct msb_exec_msg *ex, const char *what);

static void test_id_zero(void)
{
        uint8_t p[12] = {0};
        p[4] = 1; /* a value that is valid for every type below */
        p[8] = 1;
        struct {
                uint16_t type;
                size_t len;
        } types[] = {{MSB_MSG_STDIN, 4},  {MSB_MSG_STDIN_EOF, 4}, {MSB_MSG_STDOUT, 4},  {MSB_MSG_STDERR, 4},
                     {MSB_MSG_SIGNAL, 8}, {MSB_MSG_RESIZE, 12},   {MSB_MSG_ACK, 8},     {MSB_MSG_STARTED, 8},
                     {MSB_MSG_EXIT, 12},  {MSB_MSG_ATTACH, 8},    {MSB_MSG_STOP, 8}};
        for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
                CHECK_INT(decode_raw(types[i].type, p, types[i].len), -EBADMSG);
                p[0] = 1;
                /* EXIT {1, 1}: a signal */
                CHECK_INT(decode_raw(types[i].type, p, types[i].len), 0);
                p[0] = 0;
        }
        struct msb_buf b = {0};
        struct msb_exec_msg ex = sample_exec();
        ex.id = 0;
        CHECK_INT(msb_enc_exec(&b, &ex), -EINVAL);
        CHECK_INT(msb_buf_pending(&b), 0);
        check_bad_exec(&ex, "id 0");
}

/* Values out of their range in otherwise whole messages. */
static void test_ranges(void)
{
        struct {
                uint16_t type;
                uint32_t a, b, c;
                size_t len;
        } bad[] = {
                {MSB_MSG_SIGNAL, 1, 0, 0, 8},      {MSB_MSG_SIGNAL, 1, 65, 0, 8},
                {MSB_MSG_ACK, 1, 0, 0, 8},         {MSB_MSG_ACK, 1, MSB_PROTO_WINDOW + 1, 0, 8},
                {MSB_MSG_RESIZE, 1, 0, 80, 12},    {MSB_MSG_RESIZE, 1, 24, 0, 12},
                {MSB_MSG_RESIZE, 1, 65536, 80, 12}, {MSB_MSG_RESIZE, 1, 24, 65536, 12},
                {MSB_MSG_STARTED, 1, 0, 0, 8},     {MSB_MSG_STARTED, 1, (1u << 22) + 1, 0, 8},
                {MSB_MSG_ATTACH, 1, 16, 0, 8},     {MSB_MSG_EXIT, 1, MSB_EXIT_CODE, 256, 12},
                {MSB_MSG_EXIT, 1, MSB_EXIT_SIGNAL, 0, 12}, {MSB_MSG_EXIT, 1, MSB_EXIT_SIGNAL, 65, 12},
                {MSB_MSG_EXIT, 1, 2, 1, 12},
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                uint8_t p[12];
                put32(p, bad[i].a);
                put32(p + 4, bad[i].b);
                put32(p + 8, bad[i].c);
                if (decode_raw(bad[i].type, p, bad[i].len) != -EBADMSG) {
                        fprintf(stderr, "%s {%u, %u, %u} decoded\n", msb_msg_type_name(bad[i].type), bad[i].a,
                                bad[i].b, bad[i].c);
                        check_failures++;
                }
        }
        /* the edges that are fine */
        uint8_t ok[12];
        put32(ok, 1);
        put32(ok + 4, 65535);
        put32(ok + 8, 65535);
        CHECK_INT(decode_raw(MSB_MSG_RESIZE, ok, 12), 0);
        put32(ok + 4, 1);
        put32(ok + 8, 1);
        CHECK_INT(decode_raw(MSB_MSG_RESIZE, ok, 12), 0);
}

/* EXEC variants the decoder must refuse.  What the encoder refuses too
 * (-EINVAL: id, flags, terminal size) is encoded valid and then patched to
 * the bad values, so the decoder is tested either way. */
static void check_bad_exec(const struct msb_exec_msg *ex, const char *what)
{
        struct msb_buf b = {0};
        int r = msb_enc_exec(&b, ex);
        if (r == -EINVAL) {
                struct msb_exec_msg ok = *ex;
                ok.id = 1;
                ok.flags &= MSB_EXEC_KNOWN_FLAGS & ~MSB_EXEC_TTY;
                ok.rows = ok.cols = 0;
                CHECK_INT(msb_enc_exec(&b, &ok), 0);
                uint8_t *pl = (uint8_t *)msb_buf_head(&b) + MSB_PROTO_HDR_SIZE;
                uint8_t *end = (uint8_t *)msb_buf_head(&b) + msb_buf_pending(&b);
                put32(pl, ex->id);
                put32(pl + 4, ex->flags);
                put32(end - 8, ex->rows);
                put32(end - 4, ex->cols);
        } else
                CHECK_INT(r, 0);
        if (decode_payload(&b) != -EBADMSG) {
                fprintf(stderr, "EXEC with %s decoded\n", what);
                check_failures++;
        }
        msb_buf_free(&b);
}

static void test_bad_exec(void)
{
        struct msb_exec_msg ex = sample_exec();
        ex.flags = 1u << 9;
        check_bad_exec(&ex, "an unknown flag");
        ex.flags = MSB_EXEC_INTERNAL | MSB_EXEC_MAIN;
        check_bad_exec(&ex, "a built-in routine as the main process");
        ex.flags = MSB_EXEC_AS_USER;
        check_bad_exec(&ex, "a program with a routine's user flag");
        ex.flags = MSB_EXEC_INTERNAL | MSB_EXEC_TTY;
        ex.rows = ex.cols = 24;
        check_bad_exec(&ex, "a built-in routine on a terminal");
        ex.rows = ex.cols = 0;
        ex.flags = MSB_EXEC_TTY;
        check_bad_exec(&ex, "a terminal without a size");
        ex.rows = 24;
        check_bad_exec(&ex, "a terminal without columns");
        ex.rows = 65536;
        ex.cols = 80;
        check_bad_exec(&ex, "65536 rows");
        ex.flags = 0;
        ex.rows = 24;
        check_bad_exec(&ex, "a size but no terminal");
        ex.rows = ex.cols = 0;

        /* resolved ids must be whole: groups[0] is gid, home absolute */
        struct {
                uint32_t ngroups, g0;
                const char *home;
        } ids[] = {{0, 7, "/h"}, {1, 8, "/h"}, {1, 7, "h"}, {1, 7, ""}};
        for (size_t k = 0; k < ARRAY_SIZE(ids); k++) {
                struct msb_exec_msg e2 = sample_exec();
                e2.flags = MSB_EXEC_IDS;
                e2.gid = 7;
                e2.ngroups = ids[k].ngroups;
                e2.groups[0] = ids[k].g0;
                e2.home = (char *)ids[k].home;
                check_bad_exec(&e2, "incomplete ids");
        }
        char *rel[] = {"lib/libc.so.6", NULL};
        ex.prefetch = rel;
        ex.nprefetch = 1;
        check_bad_exec(&ex, "a relative prefetch path");
        ex.prefetch = NULL;
        ex.nprefetch = 0;
        ex.exec_path = "bin/sh";
        check_bad_exec(&ex, "a relative exec path");
        ex.exec_path = NULL;
        char *noeq[] = {"NOEQUALS", NULL}, *noname[] = {"=x", NULL};
        ex.env = noeq;
        ex.envc = 1;
        check_bad_exec(&ex, "env without '='");
        ex.env = noname;
        check_bad_exec(&ex, "env without a name");

        /* ngroups beyond the limit, patched in after encoding: it sits
         * before home (4 + 0), exec path (4), prefetch count (4), rows and
         * cols (8) */
        struct msb_buf b = {0};
        ex = sample_exec();
        msb_enc_exec(&b, &ex);
        uint8_t *pp = (uint8_t *)msb_buf_head(&b) + msb_buf_pending(&b) - 8 - 4 - 4 - 4 - 4;
        CHECK_INT(pp[0], 0);
        pp[0] = MSB_PROTO_MAX_GROUPS + 1;
        CHECK_INT(decode_payload(&b), -EBADMSG);
        msb_buf_free(&b);

        /* argc 0 and a huge argc (rejected without allocating it) */
        uint8_t hdr[4 + 4 + 4 + 4 + 4] = {1}; /* id 1, flags, workdir "", user "", argc */
        CHECK_INT(decode_raw(MSB_MSG_EXEC, hdr, sizeof(hdr)), -EBADMSG);
        memset(hdr + 16, 0xff, 4);
        CHECK_INT(decode_raw(MSB_MSG_EXEC, hdr, sizeof(hdr)), -EBADMSG);

        /* encoders refuse what the decoder would refuse for size */
        ex.argc = 0;
        CHECK_INT(msb_enc_exec(&b, &ex), -E2BIG);
        CHECK_INT(msb_buf_pending(&b), 0);
        static uint8_t huge[MSB_PROTO_MAX_PAYLOAD];
        CHECK_INT(msb_enc_data(&b, MSB_MSG_STDOUT, 1, huge, sizeof(huge)), -E2BIG);
        CHECK_INT(msb_buf_pending(&b), 0);
        msb_buf_free(&b);
}

/* rlimits travel with EXEC; bad ones are refused at both ends */
static void test_exec_rlimits(void)
{
        char *argv[] = {"sh", NULL};
        struct msb_exec_msg ex = {.id = 2, .workdir = "", .user = "", .argc = 1, .argv = argv, .nrlimits = 2,
                                  .rlimits = {{7, 1024, 4096}, {6, UINT64_MAX, UINT64_MAX}}};
        struct msb_buf b = {0};
        struct msb_msg m;
        CHECK_INT(msb_enc_exec(&b, &ex), 0);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.u.exec.nrlimits, 2);
        CHECK_INT(m.u.exec.rlimits[0].resource, 7);
        CHECK_INT(m.u.exec.rlimits[0].soft, 1024);
        CHECK_INT(m.u.exec.rlimits[1].hard == UINT64_MAX, 1);
        msb_msg_free(&m);
        msb_buf_free(&b);
        ex.rlimits[0].soft = 5000; /* above hard */
        CHECK_INT(msb_enc_exec(&b, &ex), -EINVAL);
        ex.rlimits[0] = (struct msb_rlimit){MSB_PROTO_RLIMIT_NR, 1, 1};
        CHECK_INT(msb_enc_exec(&b, &ex), -EINVAL);
        ex.nrlimits = MSB_PROTO_MAX_RLIMITS + 1;
        CHECK_INT(msb_enc_exec(&b, &ex), -E2BIG);
        CHECK_INT(msb_buf_pending(&b), 0);
        msb_buf_free(&b);
}

static void check_bad_setup(const struct msb_setup_msg *su, const char *what)
{
        struct msb_buf b = {0};
        CHECK_INT(msb_enc_setup(&b, su), 0);
        if (decode_payload(&b) != -EBADMSG) {
                fprintf(stderr, "SETUP with %s decoded\n", what);
                check_failures++;
        }
        msb_buf_free(&b);
}

static void test_bad_setup(void)
{
        struct msb_mount_spec mt[] = {{"t", "", "/m", 0}};
        struct msb_setup_msg su = {.flags = 1u << 4, .rootfs_tag = "r", .hostname = "", .nmounts = 1, .mounts = mt};
        check_bad_setup(&su, "an unknown flag");
        su.flags = 0;
        mt[0].flags = 1u << 9;
        check_bad_setup(&su, "an unknown mount flag");
        /* root steps: one kind, nothing of a mount's, sysctls in /proc/sys */
        struct msb_buf b = {0};
        static const struct msb_mount_spec steps_bad[] = {
                {"t", "", "/proc/kcore", MSB_MOUNT_MASK},
                {"", "x", "/proc/kcore", MSB_MOUNT_MASK},
                {"", "", "/proc/kcore", MSB_MOUNT_MASK | MSB_MOUNT_ROPATH},
                {"", "", "/proc/kcore", MSB_MOUNT_MASK | MSB_MOUNT_RO},
                {"1", "", "/etc/passwd", MSB_MOUNT_SYSCTL},
                {"1", "", "/proc/sys/../../etc/passwd", MSB_MOUNT_SYSCTL},
                {"1", "", "/proc/sys/", MSB_MOUNT_SYSCTL},
                {"1\n2", "", "/proc/sys/kernel/x", MSB_MOUNT_SYSCTL},
        };
        for (size_t i = 0; i < ARRAY_SIZE(steps_bad); i++) {
                mt[0] = steps_bad[i];
                CHECK_INT(msb_enc_setup(&b, &su), -EINVAL);
        }
        CHECK_INT(msb_buf_pending(&b), 0);
        mt[0] = (struct msb_mount_spec){"0 2147483647", "", "/proc/sys/net/ipv4/ping_group_range", MSB_MOUNT_SYSCTL};
        CHECK_INT(msb_enc_setup(&b, &su), 0);
        struct msb_msg m;
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.u.setup.mounts[0].flags, MSB_MOUNT_SYSCTL);
        CHECK_STR(m.u.setup.mounts[0].tag, "0 2147483647");
        msb_msg_free(&m);
        msb_buf_free(&b);
        mt[0] = (struct msb_mount_spec){"t", "", "/m", 0};
        mt[0].flags = MSB_MOUNT_KERNFS | MSB_MOUNT_FILE;
        mt[0].sub = "tmpfs";
        check_bad_setup(&su, "a tmpfs that is a file");
        mt[0].flags = MSB_MOUNT_KERNFS;
        mt[0].sub = "ext4";
        check_bad_setup(&su, "a kernel file system of another type");
        mt[0].sub = "";
        mt[0].flags = 0;
        /* a mount's sub-entry is one component: no way up or across */
        const char *subs[] = {"..", ".", "a/b", "/"};
        for (size_t k = 0; k < ARRAY_SIZE(subs); k++) {
                mt[0].sub = (char *)subs[k];
                check_bad_setup(&su, subs[k]);
        }
        /* a mount count beyond what the bytes could hold */
        uint8_t p[4 + 4 + 4 + 4] = {0};
        memset(p + 12, 0xff, 4);
        CHECK_INT(decode_raw(MSB_MSG_SETUP, p, sizeof(p)), -EBADMSG);
        p[12] = 1;
        memset(p + 13, 0, 3);
        CHECK_INT(decode_raw(MSB_MSG_SETUP, p, sizeof(p)), -EBADMSG);
        p[12] = 0;
        CHECK_INT(decode_raw(MSB_MSG_SETUP, p, sizeof(p)), 0);
}

static void test_bad_strings(void)
{
        /* string with embedded NUL */
        uint8_t hello[] = {1, 0, 0, 0, 3, 0, 0, 0, 'a', 0, 'b'};
        CHECK_INT(decode_raw(MSB_MSG_HELLO, hello, sizeof(hello)), -EBADMSG);
        /* string length beyond the payload */
        uint8_t hello2[] = {1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 'a'};
        CHECK_INT(decode_raw(MSB_MSG_HELLO, hello2, sizeof(hello2)), -EBADMSG);
        /* the same in ERROR's message */
        uint8_t err[] = {0, 0, 0, 0, 1, 0, 0, 0, 's', 0, 0, 0, 0, 2, 0, 0, 0, 'x', 0};
        CHECK_INT(decode_raw(MSB_MSG_ERROR, err, sizeof(err)), -EBADMSG);
        err[18] = 'y';
        CHECK_INT(decode_raw(MSB_MSG_ERROR, err, sizeof(err)), 0);
}

/* PROC_INFO: the supervisor's record of a process, both ways and broken. */
static void test_proc_info(void)
{
        char *argv[] = {"sh", "-c", "echo é", NULL};
        struct msb_proc_info_msg pi = {.pid = 42, .flags = MSB_PROC_KEPT | MSB_PROC_STDIN | MSB_PROC_EXITED,
                                       .exit_kind = MSB_EXIT_SIGNAL, .exit_value = 9,
                                       .started_ms = 1700000000123ull, .dropped = 1ull << 33, .argc = 3,
                                       .argv = argv};
        struct msb_buf b = {0};
        struct msb_msg m;
        CHECK_INT(msb_enc_proc_info(&b, 7, &pi), 0);
        check_exact(&b);
        CHECK_INT(decode_one(&b, &m), 1);
        CHECK_INT(m.type, MSB_MSG_PROC_INFO);
        CHECK_INT(m.id, 7);
        CHECK_INT(m.u.proc_info.pid, 42);
        CHECK_INT(m.u.proc_info.flags, pi.flags);
        CHECK_INT(m.u.proc_info.exit_kind, MSB_EXIT_SIGNAL);
        CHECK_INT(m.u.proc_info.exit_value, 9);
        CHECK(m.u.proc_info.started_ms == pi.started_ms);
        CHECK(m.u.proc_info.dropped == pi.dropped);
        CHECK_INT(m.u.proc_info.argc, 3);
        CHECK_STR(m.u.proc_info.argv[2], "echo é");
        CHECK(m.u.proc_info.argv[3] == NULL);
        msb_msg_free(&m);
        msb_buf_free(&b);
        /* running, no argv, pid not known yet */
        struct msb_proc_info_msg run = {.flags = MSB_PROC_MAIN | MSB_PROC_TTY};
        CHECK_INT(msb_enc_proc_info(&b, 1, &run), 0);
        check_exact(&b);
        msb_buf_free(&b);
        /* what the encoder refuses */
        struct msb_proc_info_msg bad[] = {
                {.pid = (1u << 22) + 1},
                {.flags = 1u << 5},
                {.exit_kind = MSB_EXIT_CODE, .exit_value = 3}, /* an exit without EXITED */
                {.flags = MSB_PROC_EXITED, .exit_kind = MSB_EXIT_CODE, .exit_value = 256},
                {.flags = MSB_PROC_EXITED, .exit_kind = MSB_EXIT_SIGNAL, .exit_value = 0},
                {.flags = MSB_PROC_EXITED, .exit_kind = 2, .exit_value = 1},
        };
        CHECK_INT(msb_enc_proc_info(&b, 0, &run), -EINVAL);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                CHECK_INT(msb_enc_proc_info(&b, 3, &bad[i]), -EINVAL);
                CHECK_INT(msb_buf_pending(&b), 0);
                /* and the decoder: a good record patched to the bad values */
                CHECK_INT(msb_enc_proc_info(&b, 3, &run), 0);
                uint8_t *pl = (uint8_t *)msb_buf_head(&b) + MSB_PROTO_HDR_SIZE;
                put32(pl + 4, bad[i].pid);
                put32(pl + 8, bad[i].flags);
                put32(pl + 12, bad[i].exit_kind);
                put32(pl + 16, bad[i].exit_value);
                CHECK_INT(decode_payload(&b), -EBADMSG);
                msb_buf_free(&b);
        }
        /* id 0 */
        CHECK_INT(msb_enc_proc_info(&b, 3, &run), 0);
        put32((uint8_t *)msb_buf_head(&b) + MSB_PROTO_HDR_SIZE, 0);
        CHECK_INT(decode_payload(&b), -EBADMSG);
        msb_buf_free(&b);
        /* an argv count its bytes cannot hold */
        CHECK_INT(msb_enc_proc_info(&b, 3, &run), 0);
        put32((uint8_t *)msb_buf_head(&b) + msb_buf_pending(&b) - 4, 1000);
        CHECK_INT(decode_payload(&b), -EBADMSG);
        msb_buf_free(&b);
}

int main(void)
{
        test_proc_info();
        test_exec_rlimits();
        test_hello();
        test_setup();
        test_exec_plain();
        test_exec_internal();
        test_exec_confine();
        test_exec_ids();
        test_exec_tty();
        test_data();
        test_small();
        test_incremental();
        test_bad_headers();
        test_truncations();
        test_id_zero();
        test_ranges();
        test_bad_exec();
        test_bad_setup();
        test_bad_strings();
        CHECK_DONE();
}
