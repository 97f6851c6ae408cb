/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ops that make, link, rename and remove names in a directory:
 * MKNOD, MKDIR, SYMLINK, LINK, CREATE, UNLINK, RMDIR, RENAME, RENAME2,
 * with the parent checks they share and the owner a new entry gets.
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

/* Parent checks shared by everything that makes or removes a name;
 * returns the parent's fd. */
static int dir_op_check(struct fs *fs, struct inode *parent, const char *name)
{
        if (!name)
                return -EINVAL;
        if (parent->kind != K_NORMAL)
                return -EPERM; /* made-up roots hold their entries, no more */
        if (ro(parent))
                return -EROFS;
        if (!S_ISDIR(parent->type))
                return -ENOTDIR;
        int r = check_name(name);
        return r < 0 ? r : ino_fd(fs, parent);
}

/* Room for one more inode: checked before anything is created, so a guest
 * at the limit gets ENFILE and no host file. */
static int inode_room(struct fs *fs)
{
        return fs->ninodes < fs->lim.inodes ? 0 : -ENFILE;
}

/* The fixed part of a request that names an entry in its node (insz 0:
 * none), then the name; both checked.  Returns the parent's fd. */
static int take_entry(struct fs *fs, struct req *q, void *in, size_t insz, const char **name)
{
        if (insz && !take(&q->a, in, insz))
                return -EINVAL;
        *name = take_name(&q->a);
        return dir_op_check(fs, q->i, *name);
}

/* The opening of MKNOD and MKDIR: take_entry, then room for the inode. */
static int begin_create(struct fs *fs, struct req *q, void *in, size_t insz, const char **name)
{
        int pfd = take_entry(fs, q, in, insz, name);
        if (pfd < 0)
                return pfd;
        int r = inode_room(fs);
        return r < 0 ? r : pfd;
}

/*
 * The owner of i, just made by the guest's h in parent, in its entry e.
 * A setgid directory gives what is made in it its group, and a directory
 * its setgid bit (the guest's VFS leaves both to the file system; it has
 * already cleared a setgid bit the caller may not set).  Where ownership
 * is virtual the host directory knows nothing of it; passed through, the
 * host's own kernel did both.
 */
static int own_entry(struct fs *fs, struct inode *parent, struct inode *i, const struct fuse_in_header *h,
                     mode_t mode, uint32_t rdev, struct fuse_entry_out *e)
{
        bool owners = virt(parent) || geteuid() == 0; /* else the host's kernel decides alone */
        struct stat pst;
        struct fuse_attr pa = {0};
        if (owners && ino_stat(fs, parent, &pst) == 0)
                fill_attr(fs, parent, &pst, &pa);
        bool sgid_dir = pa.mode & S_ISGID;
        if (virt(parent)) {
                struct vstat nv = {.uid = h->uid, .gid = sgid_dir ? pa.gid : h->gid, .mode = mode, .rdev = rdev};
                if (sgid_dir && S_ISDIR(mode))
                        nv.mode |= S_ISGID;
                if (nv.uid != e->attr.uid || nv.gid != e->attr.gid || nv.mode != e->attr.mode ||
                    nv.rdev != e->attr.rdev) {
                        vstat_store(fs, i, &nv);
                        e->attr.uid = nv.uid;
                        e->attr.gid = nv.gid;
                        e->attr.mode = nv.mode;
                        e->attr.rdev = nv.rdev;
                }
        } else if (geteuid() == 0) {
                int fd = ino_fd(fs, i);
                if (fd < 0 || fchownat(fd, "", h->uid, sgid_dir ? (gid_t)-1 : h->gid,
                                       AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                        return fd < 0 ? fd : -errno;
                e->attr.uid = h->uid;
                if (!sgid_dir)
                        e->attr.gid = h->gid;
        }
        return 0;
}

/* After creating name in q's node: record who made it, answer its entry. */
static ssize_t finish_create(struct fs *fs, struct req *q, const char *name, mode_t mode, uint32_t rdev,
                             struct inode **ret)
{
        struct fuse_entry_out e;
        struct inode *i;
        int r = do_lookup(fs, q->i, name, &e, &i);
        if (r < 0)
                return r;
        /* on failure the guest never hears of the lookup do_lookup
         * counted: take it back, or the inode stays */
        ssize_t n = own_entry(fs, q->i, i, q->h, mode, rdev, &e);
        if (n == 0)
                n = reply_fit(q, &e, sizeof(e));
        if (n < 0) {
                forget(fs, i->id, 1);
                return n;
        }
        if (ret)
                *ret = i;
        return n;
}

ssize_t op_mknod(struct fs *fs, struct req *q)
{
        struct inode *p = q->i;
        struct fuse_mknod_in in;
        const char *name;
        int pfd = begin_create(fs, q, &in, sizeof(in), &name);
        if (pfd < 0)
                return pfd;
        mode_t t = in.mode & S_IFMT;
        if (!S_ISREG(t) && !S_ISCHR(t) && !S_ISBLK(t) && !S_ISFIFO(t) && !S_ISSOCK(t))
                return -EINVAL;
        if (virt(p) || S_ISREG(t)) {
                /* devices, fifos and sockets become plain host files; O_EXCL:
                 * whatever already has the name is never opened */
                int fd = open_beneath(pfd, name, O_CREAT | O_EXCL | O_WRONLY, host_mode(p, in.mode, false));
                if (fd < 0)
                        return fd;
                close(fd);
        } else if (mknodat(pfd, name, in.mode, in.rdev) < 0)
                return -errno;
        return finish_create(fs, q, name, in.mode, in.rdev, NULL);
}

ssize_t op_mkdir(struct fs *fs, struct req *q)
{
        struct inode *p = q->i;
        struct fuse_mkdir_in in;
        const char *name;
        int pfd = begin_create(fs, q, &in, sizeof(in), &name);
        if (pfd < 0)
                return pfd;
        if (mkdirat(pfd, name, host_mode(p, in.mode, true)) < 0)
                return -errno;
        return finish_create(fs, q, name, S_IFDIR | (in.mode & 07777), 0, NULL);
}

ssize_t op_symlink(struct fs *fs, struct req *q)
{
        struct inode *p = q->i;
        const char *name = take_name(&q->a);
        const char *target = take_name(&q->a);
        int pfd = dir_op_check(fs, p, name);
        if (pfd < 0)
                return pfd;
        if (!target || !*target || strlen(target) >= PATH_MAX)
                return -EINVAL;
        int r = inode_room(fs);
        if (r < 0)
                return r;
        if (symlinkat(target, pfd, name) < 0)
                return -errno;
        return finish_create(fs, q, name, S_IFLNK | 0777, 0, NULL);
}

ssize_t op_link(struct fs *fs, struct req *q)
{
        struct inode *p = q->i;
        struct fuse_link_in in;
        if (!take(&q->a, &in, sizeof(in)))
                return -EINVAL;
        const char *name = take_name(&q->a);
        struct inode *old = ino_get(fs, in.oldnodeid);
        if (!old || old->kind != K_NORMAL)
                return -EBADF;
        if (old->sh != p->sh)
                return -EXDEV;
        int pfd = dir_op_check(fs, p, name);
        if (pfd < 0)
                return pfd;
        if (S_ISDIR(old->type))
                return -EPERM;
        int ofd = ino_fd(fs, old);
        if (ofd < 0)
                return ofd;
        char pp[64];
        procpath(pp, sizeof(pp), ofd);
        if (linkat(AT_FDCWD, pp, pfd, name, AT_SYMLINK_FOLLOW) < 0)
                return -errno;
        struct fuse_entry_out e;
        int r = do_lookup(fs, p, name, &e, NULL);
        return r < 0 ? r : reply_fit(q, &e, sizeof(e));
}

/* UNLINK, RMDIR */
ssize_t op_unlink(struct fs *fs, struct req *q)
{
        bool dir = q->h->opcode == FUSE_RMDIR;
        const char *name;
        int pfd = take_entry(fs, q, NULL, 0, &name);
        if (pfd < 0)
                return pfd;
        return unlinkat(pfd, name, dir ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
}

/* After a rename: the inode now at name in dir is known there, which is
 * where it is reopened once its fd was closed. */
static void rename_track(struct fs *fs, struct inode *dir, int dfd, const char *name)
{
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return;
        struct inode *i = ino_find(fs, dir->sh, st.st_dev, st.st_ino);
        if (i)
                ino_move(fs, i, dir, name);
}

ssize_t op_rename(struct fs *fs, struct req *q)
{
        struct inode *p = q->i;
        bool v2 = q->h->opcode == FUSE_RENAME2;
        uint64_t newdir;
        uint32_t flags = 0;
        if (v2) {
                struct fuse_rename2_in in;
                if (!take(&q->a, &in, sizeof(in)))
                        return -EINVAL;
                newdir = in.newdir;
                flags = in.flags;
        } else {
                struct fuse_rename_in in;
                if (!take(&q->a, &in, sizeof(in)))
                        return -EINVAL;
                newdir = in.newdir;
        }
        const char *oldname = take_name(&q->a);
        const char *newname = take_name(&q->a);
        struct inode *np = ino_get(fs, newdir);
        if (!np)
                return -EBADF;
        if (np->sh != p->sh)
                return -EXDEV;
        int pfd = dir_op_check(fs, p, oldname);
        if (pfd < 0)
                return pfd;
        int npfd = dir_op_check(fs, np, newname);
        if (npfd < 0)
                return npfd;
        uint32_t allowed = RENAME_NOREPLACE | RENAME_EXCHANGE | (virt(p) ? 0 : RENAME_WHITEOUT);
        if (flags & ~allowed)
                return -EINVAL;
        if (renameat2(pfd, oldname, npfd, newname, flags) < 0)
                return -errno;
        rename_track(fs, np, npfd, newname);
        if (flags & RENAME_EXCHANGE)
                rename_track(fs, p, pfd, oldname);
        return 0;
}

/*
 * CREATE's open: a new regular file, or an existing regular file, never
 * anything else.  O_EXCL first, so nothing that exists is opened that way;
 * what has the name is then looked at through an O_PATH fd (which opens
 * nothing: a device's driver never hears of it, a fifo cannot block), and
 * only a regular file is reopened, through that fd: the same inode,
 * whatever the host renames meanwhile.  A device, fifo or socket: EACCES,
 * as OPEN answers.
 */
static int create_regular(int pfd, const char *name, int fl, bool excl, mode_t mode)
{
        /* twice at most: the host may remove the name between the two */
        for (int tries = 0; tries < 2; tries++) {
                int fd = open_beneath(pfd, name, fl | O_CREAT | O_EXCL | O_NOCTTY, mode);
                if (fd != -EEXIST || excl)
                        return fd;
                int pf = open_beneath(pfd, name, O_PATH, 0);
                if (pf == -ENOENT)
                        continue;
                if (pf < 0)
                        return pf;
                struct stat st;
                int r = fstat(pf, &st) < 0          ? -errno
                        : S_ISREG(st.st_mode) ? 0
                        : S_ISDIR(st.st_mode) ? -EISDIR
                        : S_ISLNK(st.st_mode) ? -ELOOP
                                              : -EACCES;
                if (r == 0) {
                        char p[64];
                        procpath(p, sizeof(p), pf);
                        r = open(p, fl | O_CLOEXEC | O_NOCTTY);
                        if (r < 0)
                                r = -errno;
                }
                close(pf);
                return r;
        }
        return -ENOENT;
}

ssize_t op_create(struct fs *fs, struct req *q)
{
        struct inode *p = q->i;
        struct fuse_create_in in;
        const char *name;
        int pfd = take_entry(fs, q, &in, sizeof(in), &name);
        if (pfd < 0)
                return pfd;
        if (q->cap < sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out))
                return -EINVAL;
        int fl;
        int r = open_flags(p, in.flags, &fl);
        if (r < 0)
                return r;
        if (fs->nhandles >= fs->lim.handles)
                return -EMFILE;
        if ((r = inode_room(fs)) < 0)
                return r;
        int fd = create_regular(pfd, name, fl, in.flags & O_EXCL, host_mode(p, in.mode, false));
        if (fd < 0)
                return fd;
        struct inode *i;
        ssize_t n = finish_create(fs, q, name, S_IFREG | (in.mode & 07777), 0, &i);
        if (n < 0) {
                close(fd);
                return n;
        }
        struct fuse_open_out o = {.open_flags = fopen_flags(fs, i)};
        if ((fl & O_TRUNC) && (r = kill_privs(fs, i, fd, in.open_flags & FUSE_OPEN_KILL_SUIDGID)) < 0) {
                close(fd);
                forget(fs, i->id, 1);
                return r;
        }
        if ((r = fh_new(fs, fd, false, ro(p), i, &o.fh)) < 0) {
                close(fd);
                forget(fs, i->id, 1); /* the guest never hears of the lookup */
                return r;
        }
        memcpy(q->res + n, &o, sizeof(o));
        return n + (ssize_t)sizeof(o);
}
