/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Names to inodes: LOOKUP in a host directory, a multi-share root or a
 * single-file share's made-up root, and the lookups the guest gives back
 * (FORGET, BATCH_FORGET).
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

#include "common/util.h"
#include "fsd/server.h"

/* A single-file share's file: one inode, re-resolved by name. */
static int lookup_file(struct fs *fs, struct share *sh, struct stat *st, struct inode **ret)
{
        struct inode *i = sh->file;
        if (!i) {
                int r;
                if (!(i = ino_new(fs, sh, &r)))
                        return r;
                i->byname = true;
                i->pinned = true;
                i->type = S_IFREG;
                ino_insert(fs, i);
                sh->file = i;
        }
        int r = byname_refresh(fs, i);
        if (r < 0 && i->fd < 0) {
                ino_put(fs, i);
                return r;
        }
        if (r < 0)
                return r;
        if (fstatat(i->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        i->nlookup++;
        *ret = i;
        return 0;
}

/* Multi mode: entry "N" of the top directory is share N's root. */
static int lookup_share(struct fs *fs, const char *name, struct stat *st, struct inode **ret)
{
        char *end;
        unsigned long k = strtoul(name, &end, 10);
        if (*end || k >= fs->nshares || (name[0] == '0' && name[1]) || name[0] == '+' || name[0] == '-')
                return -ENOENT;
        struct share *sh = &fs->shares[k];
        if (sh->c.single_file)
                return lookup_file(fs, sh, st, ret);
        int fd = fcntl(sh->root_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        if (fstat(fd, st) < 0) {
                int e = -errno;
                close(fd);
                return e;
        }
        return ino_take(fs, sh, NULL, NULL, fd, st, ret);
}

int do_lookup(struct fs *fs, struct inode *parent, const char *name, struct fuse_entry_out *e,
                     struct inode **ret)
{
        int r = check_name(name);
        if (r < 0)
                return r;
        if (!S_ISDIR(parent->type))
                return -ENOTDIR;
        struct stat st;
        struct inode *i;
        if (parent->kind == K_TOP) {
                r = lookup_share(fs, name, &st, &i);
        } else if (parent->kind == K_FILEROOT) {
                r = strcmp(name, parent->sh->file_name) ? -ENOENT : lookup_file(fs, parent->sh, &st, &i);
        } else {
                int pfd = ino_fd(fs, parent);
                if (pfd < 0)
                        return pfd;
                int fd = -1;
                if (parent->sh->c.immutable) {
                        /* nothing renames under an image root: the inode
                         * starts without an fd, opened by name when first
                         * used (ino_reopen), and a listing's entries the
                         * guest never opens cost one fstatat each */
                        if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) < 0)
                                return -errno;
                } else {
                        fd = open_beneath(pfd, name, O_PATH, 0);
                        if (fd < 0)
                                return fd == -ELOOP ? -ENOENT : fd;
                        if (fstat(fd, &st) < 0) {
                                r = -errno;
                                close(fd);
                                return r;
                        }
                }
                r = ino_take(fs, parent->sh, parent, name, fd, &st, &i);
        }
        if (r < 0)
                return r;
        fill_entry(fs, i, &st, e);
        if (ret)
                *ret = i;
        return 0;
}

ssize_t op_lookup(struct fs *fs, struct req *q)
{
        struct inode *i = q->i;
        const char *name = take_name(&q->a);
        if (!name)
                return -EINVAL;
        if (q->cap < sizeof(struct fuse_entry_out))
                return -EINVAL;
        struct fuse_entry_out e;
        struct inode *child;
        int r = do_lookup(fs, i, name, &e, &child);
        if (r == -ENOENT && fs->noopen) {
                /* the immutable root never gains a name: the guest may
                 * cache its absence as long as anything else (nodeid 0
                 * is FUSE's negative entry).  PATH and library searches,
                 * interpreters' module lookups and overlayfs's own checks
                 * of the lower layer then cost one round trip per name. */
                memset(&e, 0, sizeof(e));
                set_timeout(fs->shares[0].c.timeout, &e.entry_valid, &e.entry_valid_nsec);
                return reply_fit(q, &e, sizeof(e));
        }
        if (r < 0)
                return r;
        return reply_fit(q, &e, sizeof(e));
}

ssize_t op_forget(struct fs *fs, struct req *q)
{
        struct fuse_forget_in f;
        if (take(&q->a, &f, sizeof(f)))
                forget(fs, q->h->nodeid, f.nlookup);
        return 0;
}

ssize_t op_batch_forget(struct fs *fs, struct req *q)
{
        struct fuse_batch_forget_in b;
        if (!take(&q->a, &b, sizeof(b)))
                return 0;
        for (uint32_t k = 0; k < b.count; k++) {
                struct fuse_forget_one one;
                if (!take(&q->a, &one, sizeof(one)))
                        break;
                forget(fs, one.nodeid, one.nlookup);
        }
        return 0;
}
