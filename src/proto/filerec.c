/* SPDX-License-Identifier: Apache-2.0 */
/* The file routines' records (filerec.h): agentd's encoders, the host's bounded decoder. */
#define _GNU_SOURCE
#include "proto/filerec.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MAX_FIELDS 9
#define MAX_DIGITS 20
#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

static const char *const types[] = {"file", "dir", "symlink", "other"};
static const char *const ops[] = {"create", "write", "remove", "rename", "chmod", "ready"};

const char *filerec_type(uint32_t mode)
{
        switch (mode & S_IFMT) {
        case S_IFREG:
                return types[0];
        case S_IFDIR:
                return types[1];
        case S_IFLNK:
                return types[2];
        default:
                return types[3];
        }
}

/* The static string of list equal to s, or NULL. */
static const char *one_of(const char *const *list, size_t n, const char *s)
{
        for (size_t i = 0; i < n; i++)
                if (!strcmp(list[i], s))
                        return list[i];
        return NULL;
}

/* ---- decoding ---- */

static bool get_u64(const char *s, uint64_t max, uint64_t *ret)
{
        size_t n = strlen(s);
        if (n == 0 || n > MAX_DIGITS || (n > 1 && s[0] == '0')) /* one way to write each */
                return false;
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                unsigned d = (unsigned)(s[i] - '0');
                if (v > (max - d) / 10)
                        return false;
                v = v * 10 + d;
        }
        *ret = v;
        return true;
}

static bool get_u32(const char *s, uint32_t *ret)
{
        uint64_t v;
        if (!get_u64(s, UINT32_MAX, &v))
                return false;
        *ret = (uint32_t)v;
        return true;
}

static bool get_i64(const char *s, int64_t *ret)
{
        bool neg = s[0] == '-';
        uint64_t v;
        if (!get_u64(s + neg, INT64_MAX, &v) || (neg && v == 0))
                return false;
        *ret = neg ? -(int64_t)v : (int64_t)v;
        return true;
}

static bool path_ok(const char *p)
{
        size_t n = strlen(p);
        return n >= 1 && n <= FILEREC_MAX_PATH && p[0] == '/';
}

/* The mode's type bits are one of Linux's and agree with type. */
static bool mode_ok(uint32_t mode, const char *type)
{
        if (mode > 0177777u)
                return false;
        switch (mode & S_IFMT) {
        case S_IFREG:
        case S_IFDIR:
        case S_IFLNK:
        case S_IFCHR:
        case S_IFBLK:
        case S_IFIFO:
        case S_IFSOCK:
                return filerec_type(mode) == type;
        default:
                return false;
        }
}

static bool decode_info(char **f, struct filerec *out)
{
        out->type = one_of(types, 4, f[1]);
        out->path = f[7];
        out->link = f[8];
        if (!out->type || !get_u64(f[2], UINT64_MAX, &out->size) || !get_u32(f[3], &out->mode) ||
            !get_u32(f[4], &out->uid) || !get_u32(f[5], &out->gid) || !get_i64(f[6], &out->mtime_ns))
                return false;
        if (!mode_ok(out->mode, out->type) || !path_ok(out->path))
                return false;
        size_t ln = strlen(out->link);
        return out->type == types[2] ? ln >= 1 && ln <= FILEREC_MAX_PATH : ln == 0;
}

/* f has nf fields (at least 1): no field past them is looked at. */
static bool decode_body(char **f, size_t nf, struct filerec *out)
{
        if (strlen(f[0]) != 1)
                return false;
        out->kind = f[0][0];
        switch (out->kind) {
        case FILEREC_INFO:
                return nf == 9 && decode_info(f, out);
        case FILEREC_EVENT:
                if (nf != 4)
                        return false;
                out->op = one_of(ops, 6, f[1]);
                out->type = one_of(types, 4, f[2]);
                out->path = f[3];
                return out->op && out->type && path_ok(out->path);
        case FILEREC_CUT:
                return nf == 1;
        case FILEREC_SIZE:
                return nf == 2 && get_u64(f[1], UINT64_MAX, &out->size);
        default:
                return false;
        }
}

long filerec_decode(const uint8_t *buf, size_t n, struct filerec *out)
{
        if (n < 4)
                return 0;
        uint32_t len = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 24;
        if (len < 2 || len > FILEREC_MAX)
                return -EBADMSG;
        if (n - 4 < len)
                return 0;
        const char *body = (const char *)buf + 4;
        if (body[len - 1] != '\0')
                return -EBADMSG;
        char *f[MAX_FIELDS];
        size_t nf = 0;
        for (size_t off = 0; off < len; nf++) {
                if (nf == MAX_FIELDS)
                        return -EBADMSG;
                f[nf] = (char *)body + off;
                off += strlen(f[nf]) + 1;
        }
        memset(out, 0, sizeof(*out));
        if (!decode_body(f, nf, out))
                return -EBADMSG;
        return (long)len + 4;
}

/* ---- encoding ---- */

/* The record's body from its fields (each a C string): appended with its
 * length in front. */
static void put_record(struct msb_buf *b, const char *const *f, size_t nf)
{
        uint32_t len = 0;
        for (size_t i = 0; i < nf; i++)
                len += (uint32_t)strlen(f[i]) + 1;
        uint8_t le[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
        msb_buf_append(b, le, 4);
        for (size_t i = 0; i < nf; i++)
                msb_buf_append(b, f[i], strlen(f[i]) + 1);
}

static int check_path(const char *p, bool may_be_relative)
{
        if (strlen(p) > FILEREC_MAX_PATH)
                return -ENAMETOOLONG;
        return p[0] == '/' || (may_be_relative && p[0]) ? 0 : -EINVAL;
}

int filerec_put_info(struct msb_buf *b, const char *path, const struct stat *st, const char *link)
{
        const char *type = filerec_type(st->st_mode);
        link = type == types[2] ? link : "";
        int r = check_path(path, false);
        if (r == 0 && type == types[2])
                r = link ? check_path(link, true) : -EINVAL;
        if (r < 0)
                return r;
        /* what a time beyond int64 nanoseconds (the year 2262) would be */
        int64_t ns = st->st_mtim.tv_sec > INT64_MAX / 1000000000 - 1    ? INT64_MAX
                     : st->st_mtim.tv_sec < INT64_MIN / 1000000000 + 1 ? -INT64_MAX
                                                                        : (int64_t)st->st_mtim.tv_sec * 1000000000 +
                                                                                  st->st_mtim.tv_nsec;
        char size[24], mode[24], uid[24], gid[24], mtime[24];
        snprintf(size, sizeof(size), "%llu", (unsigned long long)st->st_size);
        snprintf(mode, sizeof(mode), "%u", (unsigned)st->st_mode);
        snprintf(uid, sizeof(uid), "%u", (unsigned)st->st_uid);
        snprintf(gid, sizeof(gid), "%u", (unsigned)st->st_gid);
        snprintf(mtime, sizeof(mtime), "%lld", (long long)ns);
        const char *f[] = {"i", type, size, mode, uid, gid, mtime, path, link};
        put_record(b, f, NFIELDS(f));
        return 0;
}

int filerec_put_event(struct msb_buf *b, const char *op, const char *type, const char *path)
{
        if (!one_of(ops, 6, op) || !one_of(types, 4, type))
                return -EINVAL;
        int r = check_path(path, false);
        if (r < 0)
                return r;
        const char *f[] = {"e", op, type, path};
        put_record(b, f, NFIELDS(f));
        return 0;
}

void filerec_put_cut(struct msb_buf *b)
{
        const char *f[] = {"c"};
        put_record(b, f, 1);
}

void filerec_put_size(struct msb_buf *b, uint64_t size)
{
        char s[24];
        snprintf(s, sizeof(s), "%llu", (unsigned long long)size);
        const char *f[] = {"s", s};
        put_record(b, f, 2);
}
