/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How the server reaches host files (the confinement in fs.h): one checked
 * component at a time under an fd, never through a symlink; its own fds as
 * paths under /proc/self/fd; only regular files and directories reopened
 * for I/O.
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
#include <linux/openat2.h>
#include <sys/syscall.h>

#include "common/util.h"
#include "fsd/server.h"

/* One component under dirfd, never following anything. */
int open_beneath(int dirfd, const char *name, int flags, mode_t mode)
{
        struct open_how how = {
                .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
                .mode = (flags & O_CREAT) ? mode : 0,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
        if (fd < 0 && errno == ENOSYS)
                fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
        return fd < 0 ? -errno : fd;
}

/* Our own fd as a path, relative to the working directory /proc/self/fd
 * (see fs.h): the one way to reopen an O_PATH fd or reach its xattrs. */
void procpath(char *buf, size_t n, int fd)
{
        snprintf(buf, n, "%d", fd);
}

/* i's O_PATH fd as a path, for the calls that take one (xattrs): they
 * act on the inode without opening it. */
int ino_path(struct fs *fs, struct inode *i, char *p, size_t n)
{
        int fd = ino_fd(fs, i);
        if (fd < 0)
                return fd;
        procpath(p, n, fd);
        return 0;
}

/*
 * Reopen an inode for I/O: only regular files and directories, ever.  The
 * type is the host inode's as its O_PATH fd found it, and reopening through
 * that fd opens that very inode, so no rename on the host can slip a
 * device, fifo or socket in between.  (A device the guest made in a
 * virtualized share is a regular host file; the sandbox mounts shares
 * nodev besides.)
 */
int ino_open(struct fs *fs, struct inode *i, int flags)
{
        if (!S_ISREG(i->type) && !S_ISDIR(i->type))
                return -EACCES;
        int ifd = ino_fd(fs, i);
        if (ifd < 0)
                return ifd;
        char p[64];
        procpath(p, sizeof(p), ifd);
        int fd = open(p, flags | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? -errno : fd;
}

int check_name(const char *n)
{
        size_t l = strlen(n);
        if (l == 0 || strchr(n, '/') || strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
                return -EINVAL;
        if (l > NAME_MAX)
                return -ENAMETOOLONG;
        return 0;
}

/* Single-file share: point the file's inode at whatever the name holds now,
 * so a file the host replaced by rename is what new opens see. */
int byname_refresh(struct fs *fs, struct inode *i)
{
        int fd = open_beneath(i->sh->root_fd, i->sh->file_name, O_PATH, 0);
        if (fd < 0)
                return fd;
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -ENOENT;
        }
        if (st.st_dev != i->dev || st.st_ino != i->ino) {
                if (i->fd >= 0)
                        close(i->fd);
                i->fd = fd;
                ino_rekey(fs, i, st.st_dev, st.st_ino);
                i->vloaded = i->vvalid = false;
        } else
                close(fd);
        return 0;
}

int ino_stat(struct fs *fs, struct inode *i, struct stat *st)
{
        if (i->kind != K_NORMAL) { /* a made-up root */
                memset(st, 0, sizeof(*st));
                st->st_ino = 1;
                st->st_mode = S_IFDIR | 0755;
                st->st_nlink = 2;
                st->st_blksize = 4096;
                return 0;
        }
        if (i->byname)
                byname_refresh(fs, i); /* vanished: keep answering for the old one */
        int fd = ino_fd(fs, i);
        if (fd < 0)
                return fd;
        if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return 0;
}
