/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: layer unpacking into a scratch root, as an image layer,
 * an archive (msb load) or a copy out of a sandbox (msb cp).  Besides
 * crashes, it aborts if anything ever appears next to the root (an
 * escape), or a special or setuid file inside it. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "lib/tar/unpack.h"

static char *base;
static int basefd = -1;

/* libFuzzer leaves through exit(): take the scratch dir with us */
static void cleanup(void)
{
        if (base)
                rm_rf(base);
}

/* A device node, fifo, socket or setuid/setgid file in the unpacked tree
 * is a bug: layers may only describe them, as metadata. */
static void check_no_special(int dfd, int depth)
{
        DIR *d = fdopendir_dup(dfd);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                struct stat st;
                if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
                        abort();
                if (st.st_mode & 06000)
                        abort();
                if (S_ISDIR(st.st_mode) && depth < 64) {
                        /* a copy keeps modes: 0000 must not stop the walk
                         * or the next input's removal */
                        fchmodat(dfd, de->d_name, 0700, 0);
                        int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0) {
                                check_no_special(sub, depth + 1);
                                close(sub);
                        }
                }
        }
        closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!base) {
                static char tmpl[] = "/tmp/msb-fuzz-tar-XXXXXX";
                base = mkdtemp(tmpl);
                if (!base)
                        abort();
                basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                atexit(cleanup);
        }
        rm_rf_at(basefd, "root");
        if (mkdirat(basefd, "root", 0755) < 0)
                abort();
        int rootfd = openat(basefd, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int fd = memfd_create("layer", MFD_CLOEXEC);
        if (write_all(fd, data, size) < 0)
                abort();
        lseek(fd, 0, SEEK_SET);
        struct msb_error e;
        /* small budgets, so inputs reach the limits; the mode (image,
         * archive, or a copy out of a sandbox) from the input's length,
         * kept deterministic */
        struct tar_opts o = TAR_OPTS_DEFAULT;
        o.max_bytes = 16384;
        o.max_entries = 48;
        o.plain = size % 3 == 1;
        o.copy = size % 3 == 2;
        struct tar_stats st;
        int r = tar_unpack(fd, rootfd, &o, &st, &e);
        if (o.bytes > o.max_bytes || (o.entries > o.max_entries && r == 0))
                abort();
        /* nothing special on the host, whatever the layer said */
        check_no_special(rootfd, 0);
        close(fd);
        close(rootfd);
        /* only "root" may exist in base */
        DIR *d = opendir(base);
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "root"))
                        abort();
        closedir(d);
        return 0;
}
