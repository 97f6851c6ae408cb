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
#include "fsd/server.h"

struct linux_dirent64 {
        uint64_t d_ino;
        int64_t d_off;
        unsigned short d_reclen;
        unsigned char d_type;
        char d_name[];
};

/* A READDIR or READDIRPLUS reply being filled. */
struct listing {
        struct fs *fs;
        struct inode *dir;
        uint8_t *res;
        size_t used, limit; /* bytes of res filled, and at most */
        bool plus;          /* READDIRPLUS: each entry with its attributes */
};

/* Append one entry; with plus and lookup, its attributes too (zero where
 * the lookup fails).  false, and nothing added, when it does not fit. */
static bool add_entry(struct listing *l, const char *name, uint64_t ino, uint64_t off, unsigned type, bool lookup)
{
        size_t nl = strlen(name);
        size_t need = l->plus ? FUSE_DIRENTPLUS_SIZE(&(struct fuse_direntplus){.dirent.namelen = (uint32_t)nl})
                              : FUSE_DIRENT_SIZE(&(struct fuse_dirent){.namelen = (uint32_t)nl});
        if (l->used + need > l->limit)
                return false;
        struct fuse_dirent *d;
        if (l->plus) {
                struct fuse_direntplus *dp = (struct fuse_direntplus *)(l->res + l->used);
                memset(dp, 0, need);
                if (lookup && do_lookup(l->fs, l->dir, name, &dp->entry_out, NULL) < 0)
                        memset(&dp->entry_out, 0, sizeof(dp->entry_out));
                d = &dp->dirent;
        } else {
                d = (struct fuse_dirent *)(l->res + l->used);
                memset(d, 0, need);
        }
        d->ino = ino;
        d->off = off;
        d->namelen = (uint32_t)nl;
        d->type = type;
        memcpy(d->name, name, nl);
        l->used += need;
        return true;
}

/* A made-up root's listing: ".", "..", then the single file, or one entry
 * per share named by its index. */
static ssize_t list_made_up(struct listing *l, uint64_t offset)
{
        struct fs *fs = l->fs;
        struct inode *i = l->dir;
        size_t n = i->kind == K_TOP ? fs->nshares : 1;
        for (uint64_t k = offset; k < 2 + n; k++) {
                char nb[24];
                const char *name = k == 0 ? "." : k == 1 ? ".." : nb;
                if (k >= 2) {
                        if (i->kind == K_TOP)
                                snprintf(nb, sizeof(nb), "%llu", (unsigned long long)(k - 2));
                        else
                                name = i->sh->file_name;
                }
                bool is_dir = k < 2 || (i->kind == K_TOP && !fs->shares[k - 2].c.single_file);
                if (!add_entry(l, name, k + 1, k + 1, is_dir ? DT_DIR : DT_REG, k >= 2))
                        break;
        }
        return (ssize_t)l->used;
}

/* A host directory's listing from offset, through its open fd dfd. */
static ssize_t list_host(struct listing *l, int dfd, uint64_t offset)
{
        if (offset > (uint64_t)INT64_MAX)
                return -EINVAL;
        if (lseek(dfd, (off_t)offset, SEEK_SET) < 0)
                return -errno;
        /* read about as many host entries as the reply holds: each
         * READDIRPLUS starts over from its offset, and a 64 KiB read for
         * a reply of 25 entries made a large directory cost its size
         * again per page.  An entry with attributes takes ~5 times its
         * host dirent; one without about the same; 512 holds any one. */
        static uint8_t dbuf[65536];
        size_t want = l->plus ? l->limit / 4 : l->limit;
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
                        return l->used ? (ssize_t)l->used : -errno;
                if (n == 0)
                        break;
                for (long off = 0; off < n;) {
                        struct linux_dirent64 *de = (struct linux_dirent64 *)(dbuf + off);
                        off += de->d_reclen;
                        bool dot = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
                        if (!add_entry(l, de->d_name, de->d_ino, (uint64_t)de->d_off, de->d_type, !dot))
                                return (ssize_t)l->used;
                }
        }
        return (ssize_t)l->used;
}

/* READDIR, READDIRPLUS */
ssize_t op_readdir(struct fs *fs, struct req *q)
{
        struct inode *i = q->i;
        struct fuse_read_in in;
        if (!take(&q->a, &in, sizeof(in)))
                return -EINVAL;
        /* an OPENDIR handle (fd -1 for the made-up roots), or in no-open
         * mode the inode's own */
        struct handle *h = fh_get(fs, in.fh, true);
        int dfd = h ? h->fd : read_fd(fs, i->id, in.fh, true);
        if (!h && dfd < 0)
                return dfd;
        struct listing l = {.fs = fs, .dir = i, .res = q->res, .limit = in.size < q->cap ? in.size : q->cap,
                            .plus = q->h->opcode == FUSE_READDIRPLUS};
        return i->kind != K_NORMAL ? list_made_up(&l, in.offset) : list_host(&l, dfd, in.offset);
}
