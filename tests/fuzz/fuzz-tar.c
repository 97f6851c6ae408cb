/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: layer unpacking into a scratch root.  Besides crashes,
 * it aborts if anything ever appears next to the root (an escape). */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/internal.h"

static char *base;
static int basefd = -1;

/* libFuzzer leaves through exit(): take the scratch dir with us */
static void cleanup(void)
{
        if (base)
                rm_rf(base);
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
        tar_unpack(fd, rootfd, NULL, NULL, &e);
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
