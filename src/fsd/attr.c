/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ops on an inode's attributes: GETATTR, SETATTR (size, times, mode
 * and owners), STATFS, READLINK, ACCESS.
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
#include <sys/statfs.h>

#include "common/util.h"
#include "fsd/server.h"

/* GETATTR, and SETATTR's answer */
ssize_t op_getattr(struct fs *fs, struct req *q)
{
        struct inode *i = q->i;
        struct stat st;
        int r = ino_stat(fs, i, &st);
        if (r < 0)
                return r;
        struct fuse_attr_out o = {0};
        set_timeout(timeout_for(fs, i), &o.attr_valid, &o.attr_valid_nsec);
        fill_attr(fs, i, &st, &o.attr);
        return reply_fit(q, &o, sizeof(o));
}

static int truncate_inode(struct fs *fs, struct inode *i, uint64_t fhid, bool have_fh, uint64_t size)
{
        if (size > (uint64_t)INT64_MAX)
                return -EINVAL;
        struct handle *h = have_fh ? fh_get(fs, fhid, false) : NULL;
        if (h)
                return ftruncate(h->fd, (off_t)size) < 0 ? -errno : 0;
        if (!S_ISREG(i->type))
                return -EINVAL;
        int fd = ino_open(fs, i, O_WRONLY);
        if (fd < 0)
                return fd;
        int r = ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
        close(fd);
        return r;
}

/*
 * Move a host symlink's ctime and nothing else, for a guest chown of it
 * where ownership is virtual: its owner lives only in our memory
 * (vstat_store), so nothing else touches the host inode.  A chown to
 * (-1, -1) of the link itself is an ownership change that changes nothing
 * (a symlink has no setuid bits or capability to drop), needs no ownership
 * or privilege (setting its times to their current values needs ownership
 * or CAP_FOWNER; UTIME_OMIT for both moves nothing), and the host kernel
 * sets ctime to now as for any chown.
 */
static int symlink_touch_ctime(int fd)
{
        if (fchownat(fd, "", (uid_t)-1, (gid_t)-1, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return 0;
}

/* SETATTR's times, on the O_PATH fd ifd of i. */
static int set_times(struct inode *i, int ifd, const struct fuse_setattr_in *in)
{
        uint32_t v = in->valid;
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
        if (v & FATTR_ATIME_NOW)
                ts[0].tv_nsec = UTIME_NOW;
        else if (v & FATTR_ATIME)
                ts[0] = (struct timespec){.tv_sec = (time_t)in->atime, .tv_nsec = in->atimensec % 1000000000};
        if (v & FATTR_MTIME_NOW)
                ts[1].tv_nsec = UTIME_NOW;
        else if (v & FATTR_MTIME)
                ts[1] = (struct timespec){.tv_sec = (time_t)in->mtime, .tv_nsec = in->mtimensec % 1000000000};
        /* on the O_PATH fd itself: a symlink's own times too (touch
         * -h, cp -a, tar x), as the guest's tmpfs allows; kernels
         * without AT_EMPTY_PATH here fall back to the fd's path */
        if (utimensat(ifd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno != EINVAL || S_ISLNK(i->type))
                        return -errno;
                char p[64];
                procpath(p, sizeof(p), ifd);
                if (utimensat(AT_FDCWD, p, ts, 0) < 0)
                        return -errno;
        }
        return 0;
}

/* SETATTR's mode and owners, on the O_PATH fd ifd of i. */
static int set_owner(struct fs *fs, struct inode *i, int ifd, const struct fuse_setattr_in *in)
{
        uint32_t v = in->valid;
        int r;
        if (virt(i)) {
                struct stat st;
                r = ino_stat(fs, i, &st);
                if (r < 0)
                        return r;
                struct fuse_attr cur;
                fill_attr(fs, i, &st, &cur);
                struct vstat nv = {.uid = cur.uid, .gid = cur.gid, .mode = cur.mode, .rdev = cur.rdev};
                if (v & FATTR_MODE)
                        nv.mode = (cur.mode & S_IFMT) | (in->mode & 07777);
                if (v & FATTR_UID)
                        nv.uid = in->uid;
                if (v & FATTR_GID)
                        nv.gid = in->gid;
                vstat_store(fs, i, &nv);
                /* best effort: the change itself is made, only
                 * the guest's ctime would be stale */
                if ((v & (FATTR_UID | FATTR_GID)) && S_ISLNK(i->type))
                        (void)symlink_touch_ctime(ifd);
        } else {
                if ((v & FATTR_MODE) && !S_ISLNK(i->type)) {
                        char p[64];
                        procpath(p, sizeof(p), ifd);
                        if (chmod(p, in->mode & 07777) < 0)
                                return -errno;
                }
                if ((v & (FATTR_UID | FATTR_GID)) &&
                    fchownat(ifd, "", (v & FATTR_UID) ? in->uid : (uid_t)-1,
                             (v & FATTR_GID) ? in->gid : (gid_t)-1, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
        }
        return 0;
}

ssize_t op_setattr(struct fs *fs, struct req *q)
{
        struct inode *i = q->i;
        struct fuse_setattr_in in;
        if (!take(&q->a, &in, sizeof(in)))
                return -EINVAL;
        uint32_t v = in.valid;
        if (v & (FATTR_MODE | FATTR_UID | FATTR_GID | FATTR_SIZE | FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW |
                 FATTR_MTIME_NOW | FATTR_KILL_SUIDGID))
                RO_CHECK(i);
        if (i->kind != K_NORMAL)
                return -EPERM; /* a made-up root */
        if (i->byname)
                byname_refresh(fs, i);
        int ifd = ino_fd(fs, i);
        if (ifd < 0)
                return ifd;
        int r;
        if (v & FATTR_SIZE) {
                r = truncate_inode(fs, i, in.fh, v & FATTR_FH, in.size);
                if (r < 0)
                        return r;
        }
        /* after a size change or ownership change; before a mode the
         * guest asks for, which is then what it asked for */
        if ((v & (FATTR_SIZE | FATTR_UID | FATTR_GID | FATTR_KILL_SUIDGID)) &&
            (r = kill_privs(fs, i, -1, v & FATTR_KILL_SUIDGID)) < 0)
                return r;
        if ((v & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)) && (r = set_times(i, ifd, &in)) < 0)
                return r;
        if ((v & (FATTR_MODE | FATTR_UID | FATTR_GID)) && (r = set_owner(fs, i, ifd, &in)) < 0)
                return r;
        return op_getattr(fs, q);
}

ssize_t op_statfs(struct fs *fs, struct req *q)
{
        struct inode *i = q->i;
        struct statfs s;
        struct share *sh = i->sh ? i->sh : &fs->shares[0];
        if (fstatfs(sh->root_fd, &s) < 0)
                return -errno;
        struct fuse_statfs_out o = {.st = {
                .blocks = s.f_blocks, .bfree = s.f_bfree, .bavail = s.f_bavail, .files = s.f_files,
                .ffree = s.f_ffree, .bsize = (uint32_t)s.f_bsize, .namelen = (uint32_t)s.f_namelen,
                .frsize = (uint32_t)s.f_frsize}};
        return reply_fit(q, &o, sizeof(o));
}

ssize_t op_readlink(struct fs *fs, struct req *q)
{
        struct inode *i = q->i;
        if (!S_ISLNK(i->type) || i->kind != K_NORMAL)
                return -EINVAL;
        int fd = ino_fd(fs, i);
        if (fd < 0)
                return fd;
        char buf[PATH_MAX];
        ssize_t n = readlinkat(fd, "", buf, sizeof(buf));
        if (n < 0)
                return -errno;
        if ((size_t)n > q->cap)
                return -ERANGE;
        memcpy(q->res, buf, (size_t)n);
        return n;
}

ssize_t op_access(struct fs *fs, struct req *q)
{
        struct fuse_access_in ai;
        if (!take(&q->a, &ai, sizeof(ai)))
                return -EINVAL;
        return (ro(q->i) && (ai.mask & W_OK)) ? -EROFS : 0;
}
