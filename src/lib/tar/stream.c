/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading the tar stream of a layer (gzip, zstd or plain, told apart by
 * its bytes) or of a copy out of a sandbox (msb cp: plain, read as it is).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <zlib.h>
#include <zstd.h>

#include "tar.h"
#include "common/error.h"
#include "common/util.h"

static int zstd_read(struct tar_in *t, uint8_t *p, size_t len)
{
        ZSTD_outBuffer out = {.dst = p, .size = len, .pos = 0};
        while (out.pos < out.size) {
                if (t->zin.pos == t->zin.size && !t->zeof) {
                        ssize_t n;
                        do
                                n = read(t->fd, t->zbuf, ZSTD_DStreamInSize());
                        while (n < 0 && errno == EINTR);
                        if (n < 0)
                                return -EIO;
                        if (n == 0)
                                t->zeof = true;
                        t->zin = (ZSTD_inBuffer){.src = t->zbuf, .size = (size_t)n, .pos = 0};
                }
                size_t before = out.pos;
                size_t rc = ZSTD_decompressStream(t->zs, &out, &t->zin);
                if (ZSTD_isError(rc))
                        return -EIO;
                if (out.pos == before && t->zin.pos == t->zin.size && t->zeof)
                        return -ENODATA; /* truncated */
        }
        t->pos += len;
        return 0;
}

static int raw_read(struct tar_in *t, uint8_t *p, size_t len)
{
        ssize_t n = read_all(t->fd, p, len);
        if (n < 0)
                return -EIO;
        t->pos += (uint64_t)n;
        return (size_t)n < len ? -ENODATA : 0;
}

int tar_read(struct tar_in *t, void *buf, size_t len)
{
        uint8_t *p = buf;
        if (t->raw)
                return raw_read(t, p, len);
        if (t->zs)
                return zstd_read(t, p, len);
        while (len > 0) {
                unsigned chunk = len > (1u << 30) ? (1u << 30) : (unsigned)len;
                int n = gzread(t->gz, p, chunk);
                if (n < 0)
                        return -EIO;
                if (n == 0)
                        return -ENODATA; /* truncated */
                p += n;
                len -= (size_t)n;
                t->pos += (uint64_t)n;
        }
        return 0;
}

int tar_read_to(struct tar_in *t, int fd, uint64_t n)
{
        uint8_t buf[65536];
        while (n > 0) {
                size_t k = n > sizeof(buf) ? sizeof(buf) : (size_t)n;
                int r = tar_read(t, buf, k);
                if (r < 0)
                        return r;
                if (fd >= 0 && (r = write_all(fd, buf, k)) < 0)
                        return r;
                n -= k;
        }
        return 0;
}

int tar_skip(struct tar_in *t, uint64_t n)
{
        return tar_read_to(t, -1, n);
}

/* Open fd's stream: raw for a copy; else zstd by its magic number, or
 * gzread, which reads gzip (also concatenated members) and passes plain
 * data through. */
int tar_stream_open(struct tar_in *t, int fd, struct msb_error *err)
{
        t->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (t->fd < 0)
                return msb_err_errno(err, errno, "dup");
        uint8_t magic[4] = {0};
        t->raw = t->o->copy;
        if (!t->raw && pread(t->fd, magic, 4, 0) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f &&
            magic[3] == 0xfd) {
                t->zs = ZSTD_createDStream();
                t->zbuf = xmalloc(ZSTD_DStreamInSize());
                /* a layer may not make us allocate a huge window */
                if (!t->zs || ZSTD_isError(ZSTD_initDStream(t->zs)) ||
                    ZSTD_isError(ZSTD_DCtx_setParameter(t->zs, ZSTD_d_windowLogMax, 27)))
                        return msb_err(err, ENOMEM, "cannot open zstd layer stream");
        } else if (!t->raw) {
                t->gz = gzdopen(t->fd, "rb");
                if (!t->gz)
                        return msb_err(err, ENOMEM, "cannot open layer stream");
                gzbuffer(t->gz, 128 * 1024);
        }
        return 0;
}

void tar_stream_close(struct tar_in *t)
{
        if (t->gz)
                gzclose(t->gz); /* and its fd */
        else if (t->fd >= 0)
                close(t->fd);
        ZSTD_freeDStream(t->zs);
        free(t->zbuf);
}
