/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file routines' records (src/proto/filerec.c): what agentd encodes
 * decodes back the same, and the host's decoder refuses every record that
 * breaks a rule (counts, numbers, types, paths, lengths) and waits for one
 * cut short.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "proto/filerec.h"

/* A record of the given body (fields joined by NULs: nul-terminated pieces). */
static size_t raw(uint8_t *out, const char *body, size_t len)
{
        out[0] = (uint8_t)len;
        out[1] = (uint8_t)(len >> 8);
        out[2] = (uint8_t)(len >> 16);
        out[3] = (uint8_t)(len >> 24);
        memcpy(out + 4, body, len);
        return len + 4;
}

static long decode_body(const char *body, size_t len, struct filerec *rec)
{
        uint8_t *buf = malloc(len + 4);
        long r = filerec_decode(buf, raw(buf, body, len), rec);
        free(buf);
        return r;
}

#define BODY(s) decode_body((s), sizeof(s) - 1, &rec)

static void test_round_trip(void)
{
        struct msb_buf b = {0};
        struct stat st = {.st_mode = S_IFREG | 0640, .st_size = 12345, .st_uid = 1000, .st_gid = 100};
        st.st_mtim.tv_sec = 1700000000;
        st.st_mtim.tv_nsec = 123456789;
        CHECK_INT(filerec_put_info(&b, "/etc/hosts", &st, NULL), 0);
        struct stat ln = {.st_mode = S_IFLNK | 0777, .st_size = 7};
        ln.st_mtim.tv_sec = -5;
        CHECK_INT(filerec_put_info(&b, "/l", &ln, "../target"), 0);
        CHECK_INT(filerec_put_event(&b, "create", "dir", "/tmp/x"), 0);
        filerec_put_cut(&b);
        filerec_put_size(&b, UINT64_MAX);
        struct filerec rec;
        size_t off = 0, n = msb_buf_pending(&b);
        const uint8_t *p = msb_buf_head(&b);
        long k = filerec_decode(p + off, n - off, &rec);
        CHECK(k > 0);
        CHECK_INT(rec.kind, FILEREC_INFO);
        CHECK_STR(rec.type, "file");
        CHECK_INT(rec.size, 12345);
        CHECK_INT(rec.mode, S_IFREG | 0640);
        CHECK_INT(rec.uid, 1000);
        CHECK_INT(rec.gid, 100);
        CHECK_INT(rec.mtime_ns, 1700000000123456789LL);
        CHECK_STR(rec.path, "/etc/hosts");
        CHECK_STR(rec.link, "");
        off += (size_t)k;
        k = filerec_decode(p + off, n - off, &rec);
        CHECK(k > 0);
        CHECK_STR(rec.type, "symlink");
        CHECK_STR(rec.link, "../target");
        CHECK_INT(rec.mtime_ns, -5000000000LL);
        off += (size_t)k;
        k = filerec_decode(p + off, n - off, &rec);
        CHECK(k > 0);
        CHECK_INT(rec.kind, FILEREC_EVENT);
        CHECK_STR(rec.op, "create");
        CHECK_STR(rec.type, "dir");
        CHECK_STR(rec.path, "/tmp/x");
        off += (size_t)k;
        k = filerec_decode(p + off, n - off, &rec);
        CHECK_INT(rec.kind, FILEREC_CUT);
        off += (size_t)k;
        k = filerec_decode(p + off, n - off, &rec);
        CHECK_INT(rec.kind, FILEREC_SIZE);
        CHECK(rec.size == UINT64_MAX);
        off += (size_t)k;
        CHECK_INT(off, n);
        /* every prefix of a record asks for more */
        for (size_t i = 0; i < 20; i++)
                CHECK_INT(filerec_decode(p, i, &rec), 0);
        msb_buf_free(&b);
}

static void test_encoder_refuses(void)
{
        struct msb_buf b = {0};
        struct stat st = {.st_mode = S_IFREG | 0644};
        CHECK_INT(filerec_put_info(&b, "relative", &st, NULL), -EINVAL);
        char *lng = malloc(FILEREC_MAX_PATH + 2);
        memset(lng, 'a', FILEREC_MAX_PATH + 1);
        lng[0] = '/';
        lng[FILEREC_MAX_PATH + 1] = '\0';
        CHECK_INT(filerec_put_info(&b, lng, &st, NULL), -ENAMETOOLONG);
        CHECK_INT(filerec_put_event(&b, "explode", "file", "/x"), -EINVAL);
        CHECK_INT(filerec_put_event(&b, "create", "socket", "/x"), -EINVAL);
        CHECK_INT(msb_buf_pending(&b), 0);
        /* the longest path and target still make one record */
        lng[FILEREC_MAX_PATH] = '\0';
        struct stat ln = {.st_mode = S_IFLNK | 0777};
        CHECK_INT(filerec_put_info(&b, lng, &ln, lng), 0);
        struct filerec rec;
        long k = filerec_decode(msb_buf_head(&b), msb_buf_pending(&b), &rec);
        CHECK_INT(k, (long)msb_buf_pending(&b));
        CHECK_INT(strlen(rec.path), FILEREC_MAX_PATH);
        CHECK_INT(strlen(rec.link), FILEREC_MAX_PATH);
        free(lng);
        msb_buf_free(&b);
}

static void test_decoder_refuses(void)
{
        struct filerec rec;
        CHECK(BODY("i\0file\0" "1\0" "33188\0" "0\0" "0\0" "0\0/a\0\0") > 0);
        /* field counts */
        CHECK_INT(BODY("i\0file\0" "1\0" "33188\0" "0\0" "0\0" "0\0/a\0\0x\0"), -EBADMSG);
        CHECK_INT(BODY("i\0file\0" "1\0" "33188\0" "0\0" "0\0" "0\0/a\0"), -EBADMSG); /* no LINK */
        CHECK_INT(BODY("c\0x\0"), -EBADMSG);
        CHECK_INT(BODY("e\0create\0file\0"), -EBADMSG);
        CHECK_INT(BODY("e\0create\0"), -EBADMSG); /* fields past the count are never read (the fuzzer's find) */
        /* kinds, types, ops */
        CHECK_INT(BODY("z\0"), -EBADMSG);
        CHECK_INT(BODY("cc\0"), -EBADMSG);
        CHECK_INT(BODY("e\0explode\0file\0/a\0"), -EBADMSG);
        CHECK_INT(BODY("e\0create\0File\0/a\0"), -EBADMSG);
        /* numbers: digits only, in range */
        CHECK_INT(BODY("s\0\0"), -EBADMSG);
        CHECK_INT(BODY("s\0-1\0"), -EBADMSG);
        CHECK_INT(BODY("s\0+1\0"), -EBADMSG);
        CHECK_INT(BODY("s\0 1\0"), -EBADMSG);
        CHECK_INT(BODY("s\0" "18446744073709551616\0"), -EBADMSG);
        CHECK(BODY("s\0" "18446744073709551615\0") > 0);
        CHECK_INT(BODY("s\0" "000000000000000000001\0"), -EBADMSG); /* 21 digits */
        CHECK_INT(BODY("s\0" "01\0"), -EBADMSG);
        CHECK(BODY("s\0" "0\0") > 0);
        CHECK_INT(BODY("i\0file\0" "1\0" "33188\0" "0\0" "0\0" "-0\0/a\0\0"), -EBADMSG);
        CHECK_INT(BODY("i\0file\0" "1\0" "33188\0" "4294967296\0" "0\0" "0\0/a\0\0"), -EBADMSG);
        CHECK_INT(BODY("i\0file\0" "1\0" "33188\0" "0\0" "0\0" "9223372036854775808\0/a\0\0"), -EBADMSG);
        CHECK(BODY("i\0file\0" "1\0" "33188\0" "0\0" "0\0" "-9223372036854775807\0/a\0\0") > 0);
        CHECK_INT(BODY("i\0file\0" "1\0" "33188\0" "0\0" "0\0" "--1\0/a\0\0"), -EBADMSG);
        /* mode and type agree; no unknown type bits */
        CHECK_INT(BODY("i\0dir\0" "1\0" "33188\0" "0\0" "0\0" "0\0/a\0\0"), -EBADMSG);
        CHECK_INT(BODY("i\0other\0" "1\0" "33188\0" "0\0" "0\0" "0\0/a\0\0"), -EBADMSG);
        CHECK_INT(BODY("i\0other\0" "1\0" "420\0" "0\0" "0\0" "0\0/a\0\0"), -EBADMSG);
        CHECK(BODY("i\0other\0" "1\0" "4516\0" "0\0" "0\0" "0\0/a\0\0") > 0); /* a fifo */
        CHECK_INT(BODY("i\0file\0" "1\0" "65536\0" "0\0" "0\0" "0\0/a\0\0"), -EBADMSG);
        /* paths absolute; a target only for a symlink */
        CHECK_INT(BODY("i\0file\0" "1\0" "33188\0" "0\0" "0\0" "0\0a\0\0"), -EBADMSG);
        CHECK_INT(BODY("i\0file\0" "1\0" "33188\0" "0\0" "0\0" "0\0\0\0"), -EBADMSG);
        CHECK_INT(BODY("i\0file\0" "1\0" "33188\0" "0\0" "0\0" "0\0/a\0t\0"), -EBADMSG);
        CHECK_INT(BODY("i\0symlink\0" "1\0" "41471\0" "0\0" "0\0" "0\0/a\0\0"), -EBADMSG);
        CHECK(BODY("i\0symlink\0" "1\0" "41471\0" "0\0" "0\0" "0\0/a\0t\0") > 0);
        CHECK_INT(BODY("e\0create\0file\0rel\0"), -EBADMSG);
        /* the body ends in a NUL; lengths in bounds */
        CHECK_INT(BODY("c"), -EBADMSG);
        CHECK_INT(BODY("cx"), -EBADMSG);
        CHECK(BODY("c\0") > 0);
        CHECK_INT(BODY("\0"), -EBADMSG);
        uint8_t big[8] = {0xff, 0xff, 0xff, 0x7f};
        CHECK_INT(filerec_decode(big, sizeof(big), &rec), -EBADMSG);
        uint32_t over = FILEREC_MAX + 1;
        uint8_t o[4] = {(uint8_t)over, (uint8_t)(over >> 8), 0, 0};
        CHECK_INT(filerec_decode(o, 4, &rec), -EBADMSG);
        uint8_t zero[4] = {0, 0, 0, 0};
        CHECK_INT(filerec_decode(zero, 4, &rec), -EBADMSG);
        /* a path one byte too long */
        size_t n = FILEREC_MAX_PATH + 1;
        char *body = malloc(n + 40);
        size_t len = (size_t)sprintf(body, "e%ccreate%cfile%c", 0, 0, 0);
        memset(body + len, 'a', n);
        body[len] = '/';
        body[len + n] = '\0';
        CHECK_INT(decode_body(body, len + n + 1, &rec), -EBADMSG);
        body[len + n - 1] = '\0';
        CHECK(decode_body(body, len + n, &rec) > 0);
        free(body);
}

int main(void)
{
        test_round_trip();
        test_encoder_refuses();
        test_decoder_refuses();
        CHECK_DONE();
}
