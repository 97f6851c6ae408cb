/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cpio "newc" writer for the initramfs: the format the kernel unpacks
 * (Documentation/driver-api/early-userspace/buffer-format.rst).  Each entry is
 * a 110-byte ASCII header, the name (NUL-terminated), padding to 4 bytes,
 * the data, padding to 4 bytes; the archive ends with "TRAILER!!!".
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/util.h"
#include "cpio.h"

void cpio_init(struct cpio_writer *w, int fd)
{
        w->fd = fd;
        w->off = 0;
        w->ino = 1;
        w->err = 0;
}

static void out(struct cpio_writer *w, const void *p, size_t n)
{
        if (w->err)
                return;
        int r = write_all(w->fd, p, n);
        if (r < 0)
                w->err = r;
        w->off += n;
}

static void pad4(struct cpio_writer *w)
{
        static const uint8_t z[4];
        size_t k = (4 - (w->off & 3)) & 3;
        out(w, z, k);
}

int cpio_add(struct cpio_writer *w, const char *name, mode_t mode, uint32_t rdev_major, uint32_t rdev_minor,
             const void *data, size_t len)
{
        size_t namesz = strlen(name) + 1;
        if (namesz > 4096 || len > 0xffffffffu)
                return -E2BIG;
        char hdr[111];
        snprintf(hdr, sizeof(hdr), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", w->ino++,
                 (unsigned)mode, 0u, 0u, S_ISDIR(mode) ? 2u : 1u, 0u, (unsigned)len, 0u, 0u, rdev_major,
                 rdev_minor, (unsigned)namesz, 0u);
        out(w, hdr, 110);
        out(w, name, namesz);
        pad4(w);
        if (len)
                out(w, data, len);
        pad4(w);
        return w->err;
}

int cpio_finish(struct cpio_writer *w)
{
        cpio_add(w, "TRAILER!!!", 0, 0, 0, NULL, 0);
        return w->err;
}
