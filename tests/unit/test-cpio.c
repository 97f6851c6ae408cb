/* SPDX-License-Identifier: Apache-2.0 */
/* cpio newc writer: parse what it wrote back and check every field. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "check.h"
#include "common/util.h"
#include "lib/cpio.h"

static unsigned hex8(const char *p)
{
        char b[9];
        memcpy(b, p, 8);
        b[8] = 0;
        return (unsigned)strtoul(b, NULL, 16);
}

int main(void)
{
        int fd = memfd_create("cpio", MFD_CLOEXEC);
        CHECK(fd >= 0);
        struct cpio_writer w;
        cpio_init(&w, fd);
        CHECK_INT(cpio_add(&w, "dev", S_IFDIR | 0755, 0, 0, NULL, 0), 0);
        CHECK_INT(cpio_add(&w, "dev/console", S_IFCHR | 0600, 5, 1, NULL, 0), 0);
        CHECK_INT(cpio_add(&w, "init", S_IFREG | 0755, 0, 0, "abcde", 5), 0);
        CHECK_INT(cpio_finish(&w), 0);
        off_t size = lseek(fd, 0, SEEK_END);
        CHECK_INT(size % 4, 0);
        char *buf = malloc((size_t)size);
        CHECK_INT(pread(fd, buf, (size_t)size, 0), size);

        struct {
                const char *name;
                unsigned mode, maj, min, filesize;
                const char *data;
        } want[] = {
                {"dev", S_IFDIR | 0755, 0, 0, 0, ""},
                {"dev/console", S_IFCHR | 0600, 5, 1, 0, ""},
                {"init", S_IFREG | 0755, 0, 0, 5, "abcde"},
                {"TRAILER!!!", 0, 0, 0, 0, ""},
        };
        size_t off = 0;
        for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
                const char *h = buf + off;
                CHECK(memcmp(h, "070701", 6) == 0);
                CHECK_INT(hex8(h + 14), want[i].mode);
                CHECK_INT(hex8(h + 54), want[i].filesize);
                CHECK_INT(hex8(h + 78), want[i].maj);
                CHECK_INT(hex8(h + 86), want[i].min);
                unsigned namesz = hex8(h + 94);
                CHECK_INT(namesz, strlen(want[i].name) + 1);
                CHECK_STR(h + 110, want[i].name);
                off += 110 + namesz;
                off = (off + 3) & ~(size_t)3;
                CHECK(memcmp(buf + off, want[i].data, want[i].filesize) == 0);
                off += want[i].filesize;
                off = (off + 3) & ~(size_t)3;
        }
        CHECK_INT(off, size);
        /* names longer than the kernel accepts are refused */
        char longname[5000];
        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = 0;
        CHECK_INT(cpio_add(&w, longname, S_IFREG | 0644, 0, 0, NULL, 0), -E2BIG);
        free(buf);
        close(fd);
        CHECK_DONE();
}
