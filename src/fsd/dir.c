/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Directory listings: READDIR and READDIRPLUS of a host directory or of a
 * made-up root.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/syscall.h>

#include "common/util.h"
#include "fsd/internal.h"

struct linux_dirent64 {
        uint64_t d_ino;
        int64_t d_off;
        unsigned short d_reclen;
        unsigned char d_type;
        char d_name[];
};

ssize_t op_readdir(struct fs *fs, struct req *q)
{
        struct inode *i = q->i;
        bool plus = q->h->opcode == FUSE_READDIRPLUS;
        struct fuse_read_in in;
        if (!take(&q->a, &in, sizeof(in)))
                return -EINVAL;
        /* an OPENDIR handle (fd -1 for the made-up roots), or in no-open
         * mode the inode's own */
        struct handle *h = fh_get(fs, in.fh, true);
        int dfd = h ? h->fd : read_fd(fs, i->id, in.fh, true);
        if (!h && dfd < 0)
                return dfd;
        size_t limit = in.size < q->cap ? in.size : q->cap;
        size_t used = 0;
        if (i->kind != K_NORMAL) {
                /* made-up roots: ".", "..", then the single file, or one
                 * entry per share named by its index */
                size_t n = i->kind == K_TOP ? fs->nshares : 1;
                for (uint64_t k = in.offset; k < 2 + n; k++) {
                        char nb[24];
                        const char *name = k == 0 ? "." : k == 1 ? ".." : nb;
                        if (k >= 2) {
                                if (i->kind == K_TOP)
                                        snprintf(nb, sizeof(nb), "%llu", (unsigned long long)(k - 2));
                                else
                                        name = i->sh->file_name;
                        }
                        bool is_dir = k < 2 || (i->kind == K_TOP && !fs->shares[k - 2].c.single_file);
                        size_t nl = strlen(name);
                        size_t need = plus ? FUSE_DIRENTPLUS_SIZE(&(struct fuse_direntplus){.dirent.namelen = (uint32_t)nl})
                                           : FUSE_DIRENT_SIZE(&(struct fuse_dirent){.namelen = (uint32_t)nl});
                        if (used + need > limit)
                                break;
                        struct fuse_dirent *d;
                        if (plus) {
                                struct fuse_direntplus *dp = (struct fuse_direntplus *)(q->res + used);
                                memset(dp, 0, need);
                                if (k >= 2 && do_lookup(fs, i, name, &dp->entry_out, NULL) < 0)
                                        memset(&dp->entry_out, 0, sizeof(dp->entry_out));
                                d = &dp->dirent;
                        } else {
                                d = (struct fuse_dirent *)(q->res + used);
                                memset(d, 0, need);
                        }
                        d->ino = k + 1;
                        d->off = k + 1;
                        d->namelen = (uint32_t)nl;
                        d->type = is_dir ? DT_DIR : DT_REG;
                        memcpy(d->name, name, nl);
                        used += need;
                }
                return (ssize_t)used;
        }
        if (in.offset > (uint64_t)INT64_MAX)
                return -EINVAL;
        if (lseek(dfd, (off_t)in.offset, SEEK_SET) < 0)
                return -errno;
        /* read about as many host entries as the reply holds: each
         * READDIRPLUS starts over from its offset, and a 64 KiB read for
         * a reply of 25 entries made a large directory cost its size
         * again per page.  An entry with attributes takes ~5 times its
         * host dirent; one without about the same; 512 holds any one. */
        static uint8_t dbuf[65536];
        size_t want = plus ? limit / 4 : limit;
        want = want < 512 ? 512 : want > sizeof(dbuf) ? sizeof(dbuf) : want;
        for (;;) {
                long n = syscall(SYS_getdents64, dfd, dbuf, want);
                if (n < 0 && errno == EINVAL && want < sizeof(dbuf)) {
                        /* an entry larger than want (a host FUSE or vfat
                         * name past 255 bytes): the whole buffer */
                        want = sizeof(dbuf);
                        continue;
                }
                if (n < 0)
                        return used ? (ssize_t)used : -errno;
                if (n == 0)
                        break;
                for (long off = 0; off < n;) {
                        struct linux_dirent64 *de = (struct linux_dirent64 *)(dbuf + off);
                        off += de->d_reclen;
                        size_t nl = strlen(de->d_name);
                        size_t need = plus ? FUSE_DIRENTPLUS_SIZE(&(struct fuse_direntplus){.dirent.namelen = (uint32_t)nl})
                                           : FUSE_DIRENT_SIZE(&(struct fuse_dirent){.namelen = (uint32_t)nl});
                        if (used + need > limit)
                                return (ssize_t)used;
                        struct fuse_dirent *d;
                        if (plus) {
                                struct fuse_direntplus *dp = (struct fuse_direntplus *)(q->res + used);
                                memset(dp, 0, need);
                                bool dot = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
                                if (!dot && do_lookup(fs, i, de->d_name, &dp->entry_out, NULL) < 0)
                                        memset(&dp->entry_out, 0, sizeof(dp->entry_out));
                                d = &dp->dirent;
                        } else {
                                d = (struct fuse_dirent *)(q->res + used);
                                memset(d, 0, need);
                        }
                        d->ino = de->d_ino;
                        d->off = (uint64_t)de->d_off;
                        d->namelen = (uint32_t)nl;
                        d->type = de->d_type;
                        memcpy(d->name, de->d_name, nl);
                        used += need;
                }
        }
        return (ssize_t)used;
}
