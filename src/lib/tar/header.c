/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tar headers (untrusted): ustar blocks and their checksums, GNU long
 * names ('L', 'K') and pax extended headers ('x'), turned into a struct
 * entry.  Shared by layers and by copies (msb cp).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tar.h"
#include "common/error.h"
#include "common/util.h"

/* Numeric header field: octal text, or base-256 when the top bit is set. */
static int parse_num(const uint8_t *f, size_t n, uint64_t *ret)
{
        uint64_t v = 0;
        if (f[0] & 0x80) {
                if (f[0] & 0x40)
                        return -EINVAL; /* negative */
                v = f[0] & 0x3f;
                for (size_t i = 1; i < n; i++) {
                        if (v >> 55)
                                return -ERANGE;
                        v = (v << 8) | f[i];
                }
                *ret = v;
                return 0;
        }
        size_t i = 0;
        while (i < n && (f[i] == ' ' || f[i] == '\0'))
                i++;
        for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
                if (v >> 60)
                        return -ERANGE;
                v = v * 8 + (uint64_t)(f[i] - '0');
        }
        for (; i < n; i++)
                if (f[i] != ' ' && f[i] != '\0')
                        return -EINVAL;
        *ret = v;
        return 0;
}

bool tar_checksum_ok(const uint8_t *h)
{
        uint64_t want;
        if (parse_num(h + 148, 8, &want) < 0)
                return false;
        uint64_t s = 0;
        for (int i = 0; i < 512; i++)
                s += (i >= 148 && i < 156) ? ' ' : h[i];
        return s == want;
}

void tar_ext_clear(struct ext *x)
{
        free(x->pax_path);
        free(x->pax_link);
        free(x->longname);
        free(x->longlink);
        *x = (struct ext){.size = UINT64_MAX};
}

void tar_entry_clear(struct entry *e)
{
        free(e->path);
        free(e->link);
        memset(e, 0, sizeof(*e));
}

/* A pax mtime, "SECONDS[.FRACTION]"; false for anything else (negative
 * times included: the entry keeps its header's). */
static bool pax_time(const char *v, size_t n, struct timespec *ret)
{
        uint64_t sec = 0;
        long ns = 0;
        size_t i = 0;
        for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
                if (sec > (UINT64_C(1) << 40))
                        return false; /* past any time_t a file has */
                sec = sec * 10 + (uint64_t)(v[i] - '0');
        }
        if (i == 0 || (i < n && v[i] != '.'))
                return false;
        long scale = 100000000;
        for (i++; i < n; i++, scale /= 10) {
                if (v[i] < '0' || v[i] > '9')
                        return false;
                ns += scale * (v[i] - '0'); /* digits past nanoseconds add 0 */
        }
        *ret = (struct timespec){.tv_sec = (time_t)sec, .tv_nsec = ns};
        return true;
}

/* pax records: "%d key=value\n" */
static int parse_pax(const char *buf, size_t len, struct ext *x)
{
        size_t off = 0;
        while (off < len) {
                size_t reclen = 0, i = off;
                while (i < len && buf[i] >= '0' && buf[i] <= '9') {
                        reclen = reclen * 10 + (size_t)(buf[i] - '0');
                        if (reclen > len)
                                return -EINVAL;
                        i++;
                }
                if (i >= len || buf[i] != ' ' || reclen == 0 || off + reclen > len || buf[off + reclen - 1] != '\n')
                        return -EINVAL;
                const char *kv = buf + i + 1;
                size_t kvlen = off + reclen - 1 - (i + 1);
                const char *eq = memchr(kv, '=', kvlen);
                if (!eq)
                        return -EINVAL;
                size_t klen = (size_t)(eq - kv), vlen = kvlen - klen - 1;
                if (memchr(eq + 1, '\0', vlen) && !(klen > 13 && !strncmp(kv, "SCHILY.xattr.", 13)))
                        return -EINVAL;
                if (klen == 4 && !strncmp(kv, "path", 4)) {
                        free(x->pax_path);
                        x->pax_path = strndup(eq + 1, vlen);
                } else if (klen == 8 && !strncmp(kv, "linkpath", 8)) {
                        free(x->pax_link);
                        x->pax_link = strndup(eq + 1, vlen);
                } else if (klen == 5 && !strncmp(kv, "mtime", 5)) {
                        x->has_mtime = pax_time(eq + 1, vlen, &x->mtime);
                } else if (klen == 4 && !strncmp(kv, "size", 4)) {
                        uint64_t v = 0;
                        for (size_t k = 0; k < vlen; k++) {
                                char c = eq[1 + k];
                                if (c < '0' || c > '9' || v > UINT64_MAX / 10 - 10)
                                        return -EINVAL;
                                v = v * 10 + (uint64_t)(c - '0');
                        }
                        x->size = v;
                }
                off += reclen;
        }
        return 0;
}

static char *field_str(const uint8_t *f, size_t n)
{
        size_t k = strnlen((const char *)f, n);
        return strndup((const char *)f, k);
}

const char *tar_what(const struct tar_in *t)
{
        return t->o->copy ? "the copy" : "layer";
}

/* The next header into h: 1, or 0 at the end of the archive: two zero
 * blocks, or the end of the data (some writers omit the blocks; not in a
 * copy, where a missing end means its writer failed). */
int tar_next_header(struct tar_in *t, uint8_t h[512], const struct tar_stats *st, struct msb_error *err)
{
        for (int zeros = 0;;) {
                int r = tar_read(t, h, 512);
                if (r == -ENODATA && t->pos == 0)
                        return msb_err(err, EIO, "%s is empty", tar_what(t));
                if (r == -ENODATA)
                        return (zeros > 0 || st->entries > 0) && t->pos % 512 == 0 && !t->o->copy
                                       ? 0
                                       : msb_err(err, EIO, "%s is truncated", tar_what(t));
                if (r < 0)
                        return msb_err(err, EIO, "%s is not a valid tar or gzip stream", tar_what(t));
                bool zero = true;
                for (int i = 0; i < 512 && zero; i++)
                        zero = h[i] == 0;
                if (!zero)
                        return 1;
                if (++zeros == 2)
                        return 0;
        }
}

int tar_parse_header(const uint8_t *h, struct entry *e)
{
        e->type = (char)h[156];
        if (parse_num(h + 124, 12, &e->size) < 0 || parse_num(h + 100, 8, &e->mode) < 0 ||
            parse_num(h + 108, 8, &e->uid) < 0 || parse_num(h + 116, 8, &e->gid) < 0 ||
            parse_num(h + 136, 12, &e->mtime) < 0 || parse_num(h + 329, 8, &e->devmajor) < 0 ||
            parse_num(h + 337, 8, &e->devminor) < 0)
                return -EINVAL;
        return 0;
}

/* An extended header's body (pax 'x' or 'g', GNU 'L' or 'K') into x. */
int tar_read_ext(struct tar_in *t, const struct entry *e, struct ext *x, struct msb_error *err)
{
        if (e->size > TAR_MAX_PAX)
                return msb_err(err, E2BIG, "%s has a %llu-byte extended header (limit %u)", tar_what(t),
                               (unsigned long long)e->size, TAR_MAX_PAX);
        uint64_t padded = (e->size + 511) & ~(uint64_t)511;
        _cleanup_free_ char *buf = xmalloc((size_t)padded + 1);
        if (tar_read(t, buf, (size_t)padded) < 0)
                return msb_err(err, EIO, "%s is truncated", tar_what(t));
        buf[e->size] = '\0';
        if (e->type == 'x' && parse_pax(buf, (size_t)e->size, x) < 0)
                return msb_err(err, EINVAL, "%s has a malformed pax header", tar_what(t));
        char **slot = e->type == 'L' ? &x->longname : e->type == 'K' ? &x->longlink : NULL;
        if (slot) {
                free(*slot);
                *slot = strndup(buf, (size_t)e->size);
        }
        return 0;
}

/* e's name, link target and time: from what extended headers said (x,
 * consumed), else the header's fields (a ustar prefix joins the name). */
void tar_entry_names(struct entry *e, const uint8_t *h, struct ext *x)
{
        if (x->pax_path || x->longname)
                e->path = x->pax_path ? TAKE_PTR(x->pax_path) : TAKE_PTR(x->longname);
        else {
                _cleanup_free_ char *name = field_str(h, 100);
                _cleanup_free_ char *prefix = memcmp(h + 257, "ustar", 5) == 0 ? field_str(h + 345, 155)
                                                                                : xstrdup("");
                e->path = *prefix ? xasprintf("%s/%s", prefix, name) : TAKE_PTR(name);
        }
        if (x->pax_link || x->longlink)
                e->link = x->pax_link ? TAKE_PTR(x->pax_link) : TAKE_PTR(x->longlink);
        else
                e->link = field_str(h + 157, 100);
        if (x->size != UINT64_MAX)
                e->size = x->size;
        if (x->has_mtime) {
                e->mtime = (uint64_t)x->mtime.tv_sec;
                e->mtime_ns = x->mtime.tv_nsec;
        }
        tar_ext_clear(x);
}
