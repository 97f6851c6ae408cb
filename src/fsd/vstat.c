/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ownership virtualization (docs/fsd.md): where a share's owners are
 * virtual, the uid, gid, mode and device number the guest sees are kept in
 * the host file's FS_XATTR_STAT, not applied to the host inode.  Here too:
 * the attributes and entries the guest is answered with, and what a
 * write, truncate or chown drops (kill_privs).
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
#include <sys/xattr.h>

#include "common/util.h"
#include "fsd/server.h"

static void vstat_load(struct fs *fs, struct inode *i)
{
        if (i->vloaded)
                return;
        /* a share whose root was never marked has no file with our xattr:
         * no getxattr per inode (a find over 10k files pays 10k of them) */
        if (i->kind != K_NORMAL || S_ISLNK(i->type) || !i->sh || (!i->sh->marked && !i->byname)) {
                i->vloaded = true;
                return;
        }
        char p[64 + NAME_MAX + 2], buf[96];
        ssize_t n;
        if (i->fd < 0 && i->sh->c.immutable && i->parent && i->parent->fd >= 0 && i->name) {
                /* an image root's inode made without an fd (do_lookup): by
                 * its name under the parent's fd, which nothing renames,
                 * rather than opening it for this alone */
                snprintf(p, sizeof(p), "%d/%s", i->parent->fd, i->name);
                i->vloaded = true;
                n = lgetxattr(p, FS_XATTR_STAT, buf, sizeof(buf) - 1);
        } else {
                int fd = ino_fd(fs, i);
                if (fd < 0)
                        return; /* looked at next time */
                i->vloaded = true;
                /* a path call: it does not open the file, whatever its type */
                procpath(p, sizeof(p), fd);
                n = getxattr(p, FS_XATTR_STAT, buf, sizeof(buf) - 1);
        }
        if (n <= 0)
                return;
        buf[n] = 0;
        unsigned ver, uid, gid, mode, rdev;
        char tail;
        if (sscanf(buf, "%u:%u:%u:%o:%u%c", &ver, &uid, &gid, &mode, &rdev, &tail) != 5 || ver != 1)
                return;
        /* the recorded type may only differ from the host's for a device,
         * fifo or socket the guest made, kept as a regular host file */
        mode_t t = mode & S_IFMT;
        if (t != i->type && !(S_ISREG(i->type) && (S_ISCHR(t) || S_ISBLK(t) || S_ISFIFO(t) || S_ISSOCK(t))))
                return;
        i->v = (struct vstat){.uid = uid, .gid = gid, .mode = mode, .rdev = rdev};
        i->vvalid = true;
}

/* Record guest-visible ownership; in memory when the host file cannot carry
 * the xattr (symlinks, filesystems without user xattrs, files we may not
 * write). */
void vstat_store(struct fs *fs, struct inode *i, const struct vstat *v)
{
        i->v = *v;
        i->vvalid = i->vloaded = true;
        int fd = i->kind == K_NORMAL && !S_ISLNK(i->type) ? ino_fd(fs, i) : -1;
        if (fd < 0)
                return;
        char p[64], buf[MSB_VSTAT_MAX];
        /* mark the share's root first, so a later run knows to look */
        if (i->sh && !i->sh->marked && !i->byname) {
                procpath(p, sizeof(p), i->sh->root_fd);
                if (setxattr(p, FS_XATTR_MARK, "1", 1, 0) < 0)
                        return; /* cannot mark: keep the guest's view in memory only */
                i->sh->marked = true;
        }
        procpath(p, sizeof(p), fd);
        int n = msb_vstat_format(buf, v->uid, v->gid, v->mode, v->rdev);
        (void)setxattr(p, FS_XATTR_STAT, buf, (size_t)n, 0);
}

void fill_attr(struct fs *fs, struct inode *i, const struct stat *st, struct fuse_attr *a)
{
        memset(a, 0, sizeof(*a));
        a->ino = st->st_ino;
        a->size = (uint64_t)st->st_size;
        a->blocks = (uint64_t)st->st_blocks;
        a->atime = (uint64_t)st->st_atim.tv_sec;
        a->atimensec = (uint32_t)st->st_atim.tv_nsec;
        a->mtime = (uint64_t)st->st_mtim.tv_sec;
        a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
        a->ctime = (uint64_t)st->st_ctim.tv_sec;
        a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
        a->mode = st->st_mode;
        a->nlink = (uint32_t)st->st_nlink;
        a->uid = st->st_uid;
        a->gid = st->st_gid;
        a->rdev = (uint32_t)st->st_rdev;
        a->blksize = (uint32_t)st->st_blksize;
        if (virt(i)) {
                vstat_load(fs, i);
                if (i->vvalid) {
                        a->uid = i->v.uid;
                        a->gid = i->v.gid;
                        a->mode = i->v.mode;
                        a->rdev = i->v.rdev;
                        if (!S_ISCHR(i->v.mode) && !S_ISBLK(i->v.mode))
                                a->rdev = 0;
                }
        }
}

void set_timeout(double t, uint64_t *sec, uint32_t *nsec)
{
        *sec = (uint64_t)t;
        *nsec = (uint32_t)((t - (double)*sec) * 1e9);
}

double timeout_for(struct fs *fs, struct inode *i)
{
        return i->byname ? 0 : i->sh ? i->sh->c.timeout : 1;
}

void fill_entry(struct fs *fs, struct inode *i, const struct stat *st, struct fuse_entry_out *e)
{
        memset(e, 0, sizeof(*e));
        e->nodeid = i->id;
        double t = timeout_for(fs, i);
        set_timeout(t, &e->entry_valid, &e->entry_valid_nsec);
        set_timeout(t, &e->attr_valid, &e->attr_valid_nsec);
        fill_attr(fs, i, st, &e->attr);
}

/*
 * FUSE_HANDLE_KILLPRIV_V2 (linux/fuse.h) leaves to us what the guest's VFS
 * would do on write, truncate and chown of a regular file: drop its file
 * capability, and with suidgid (the caller lacks CAP_FSETID, or a chown)
 * its setuid bit and, when group-executable, its setgid bit.  The guest's
 * capability is ours to drop where ownership is virtual (a host xattr
 * under GUEST_NS_PREFIX); the host's kernel drops a real one itself when
 * we write, truncate or chown.  The bits: the guest's view where virtual,
 * else the host inode's (the server may hold CAP_FSETID).
 */
int kill_privs(struct fs *fs, struct inode *i, int fd, bool suidgid)
{
        if (!i || i->kind != K_NORMAL || !S_ISREG(i->type) || ro(i))
                return 0;
        /* the open file itself where there is one: a single-file share's
         * inode may meanwhile name what replaced the file on the host */
        if (fd < 0 && (fd = ino_fd(fs, i)) < 0)
                return fd;
        char p[64];
        procpath(p, sizeof(p), fd);
        /* look before removing: a removal needs write access to the
         * xattrs, which an append-only host file refuses even when there
         * is nothing to remove */
        const char *cap = GUEST_NS_PREFIX "security.capability";
        if (virt(i) && getxattr(p, cap, NULL, 0) >= 0 && removexattr(p, cap) < 0 && errno != ENODATA)
                return -errno;
        if (!suidgid)
                return 0;
        struct stat st;
        if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
                return -errno;
        struct fuse_attr cur;
        fill_attr(fs, i, &st, &cur);
        mode_t m = cur.mode & ~(mode_t)S_ISUID;
        if ((m & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
                m &= ~(mode_t)S_ISGID;
        if (m == cur.mode)
                return 0;
        if (virt(i)) {
                vstat_store(fs, i, &(struct vstat){.uid = cur.uid, .gid = cur.gid, .mode = m, .rdev = cur.rdev});
                return 0;
        }
        return chmod(p, m & 07777) < 0 ? -errno : 0;
}

/* Host mode for something the guest creates: with virtualization the host
 * copy never gets setuid/setgid/sticky or group/other write, and the owner
 * can always read and write it. */
mode_t host_mode(const struct inode *parent, mode_t mode, bool dir)
{
        if (!virt(parent))
                return mode & 07777;
        return (mode & 0755) | (dir ? 0700 : 0600);
}
