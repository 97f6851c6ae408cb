/* SPDX-License-Identifier: Apache-2.0 */
/*
 * File I/O: OPEN and OPENDIR, READ, WRITE (its payload straight from guest
 * memory), LSEEK, FALLOCATE, FSYNC, FLUSH, RELEASE, SYNCFS, and the
 * no-open mode of an immutable image root (read_fd).
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
#include <sys/mman.h>
#include <sys/uio.h>

#include "common/util.h"
#include "fsd/server.h"
#include "fsd/vhost.h"

int open_flags(const struct inode *i, uint32_t gflags, int *ret)
{
        int fl = (int)gflags & (O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC | O_NOATIME);
        if (ro(i) && ((fl & O_ACCMODE) != O_RDONLY || (fl & O_TRUNC)))
                return -EROFS;
        if ((fl & O_ACCMODE) == O_ACCMODE)
                return -EINVAL;
        *ret = fl | O_LARGEFILE;
        return 0;
}

uint32_t fopen_flags(struct fs *fs, struct inode *i)
{
        if (i->byname)
                return 0;
        return ro(i) ? FOPEN_KEEP_CACHE : 0;
}

ssize_t op_open(struct fs *fs, struct req *q)
{
        struct inode *i = q->i;
        bool dir = q->h->opcode == FUSE_OPENDIR;
        struct fuse_open_in in;
        if (!take(&q->a, &in, sizeof(in)))
                return -EINVAL;
        if (q->cap < sizeof(struct fuse_open_out))
                return -EINVAL;
        int fl, fd;
        if (dir) {
                if (!S_ISDIR(i->type))
                        return -ENOTDIR;
                /* READDIR then comes with fh 0 (read_fd), no RELEASEDIR,
                 * and the kernel caches the listing (FOPEN_CACHE_DIR) */
                if (fs->noopen && i->kind == K_NORMAL)
                        return -ENOSYS;
                if (fs->nhandles >= fs->lim.handles)
                        return -EMFILE;
                /* a made-up root's listing is made up too: no fd */
                fd = i->kind != K_NORMAL ? -1 : ino_open(fs, i, O_RDONLY | O_DIRECTORY);
                if (i->kind == K_NORMAL && fd < 0)
                        return fd;
        } else {
                /* the kernel then opens files without asking, and sends
                 * READ with fh 0 (read_fd) and no RELEASE */
                if (fs->noopen)
                        return -ENOSYS;
                int r = open_flags(i, in.flags, &fl);
                if (r < 0)
                        return r;
                if (i->byname && (r = byname_refresh(fs, i)) < 0)
                        return r;
                if (S_ISDIR(i->type))
                        return -EISDIR;
                if (fs->nhandles >= fs->lim.handles)
                        return -EMFILE;
                fd = ino_open(fs, i, fl & ~O_NOATIME);
                if (fd < 0)
                        return fd;
                if ((fl & O_TRUNC) && (r = kill_privs(fs, i, fd, in.open_flags & FUSE_OPEN_KILL_SUIDGID)) < 0) {
                        close(fd);
                        return r;
                }
        }
        struct fuse_open_out o = {.open_flags = dir ? 0 : fopen_flags(fs, i)};
        int r = fh_new(fs, fd, dir, ro(i), i, &o.fh);
        if (r < 0) {
                if (fd >= 0)
                        close(fd);
                return r;
        }
        if (dir && ro(i) && i->kind == K_NORMAL)
                o.open_flags = FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR;
        return reply_copy(q, &o, sizeof(o));
}

/*
 * The fd a READ or LSEEK uses: its open handle's, or in no-open mode (fh 0:
 * the kernel opened the file without asking) the inode's own read-only fd,
 * opened at first use and kept until FORGET.  Saves OPEN, FLUSH and RELEASE
 * round trips for every file the guest opens in the image root: its
 * contents never change under the guest.
 */
int read_fd(struct fs *fs, uint64_t nodeid, uint64_t fh, bool dir)
{
        struct handle *h = fh_get(fs, fh, dir);
        if (h)
                return h->fd;
        if (!fs->noopen || fh != 0)
                return -EBADF;
        struct inode *i = ino_get(fs, nodeid);
        if (!i || i->kind != K_NORMAL || i->byname || (dir ? !S_ISDIR(i->type) : !S_ISREG(i->type)))
                return -EBADF;
        if (i->rfd < 0) {
                int fd = ino_open(fs, i, O_RDONLY | O_NONBLOCK | (dir ? O_DIRECTORY : 0));
                if (fd < 0)
                        return fd;
                i->rfd = fd;
                lru_update(fs, i);
        } else if (i->on_lru && fs->lru_head != i) {
                lru_update(fs, i);
        }
        return i->rfd;
}

ssize_t op_read(struct fs *fs, struct req *q)
{
        struct fuse_read_in in;
        if (!take(&q->a, &in, sizeof(in)))
                return -EINVAL;
        int fd = read_fd(fs, q->h->nodeid, in.fh, false);
        if (fd < 0)
                return fd;
        if (in.offset > (uint64_t)INT64_MAX)
                return -EINVAL;
        size_t n = in.size < q->cap ? in.size : q->cap;
        ssize_t r = pread(fd, q->res, n, (off_t)in.offset);
        return r < 0 ? -errno : r;
}

/* The payload of a large write, straight from the request's guest-memory
 * segments after the headers. */
static unsigned payload_iov(const struct vu_elem *e, size_t skip, size_t len, struct iovec *iov, unsigned max)
{
        unsigned n = 0;
        for (unsigned i = 0; i < e->nin && len > 0 && n < max; i++) {
                size_t l = e->in[i].iov_len;
                if (skip >= l) {
                        skip -= l;
                        continue;
                }
                size_t take_n = l - skip < len ? l - skip : len;
                iov[n++] = (struct iovec){.iov_base = (uint8_t *)e->in[i].iov_base + skip, .iov_len = take_n};
                len -= take_n;
                skip = 0;
        }
        return len ? 0 : n;
}

/*
 * Map the guest pages a write's payload lies in before pwritev copies from
 * them.  The host's page cache copies with page faults disabled: a guest
 * page this process has not touched yet ends the copy short, and ext4
 * (large folios, Linux 6.16+) then zeroes what it had prepared, faults the
 * page in and starts over.  Measured: 60% of the server's time writing
 * 256 MB into pages the guest had not used before.  MADV_POPULATE_READ
 * maps them; pages seen before are remembered (a direct-mapped table of
 * 64 Ki page addresses) so a write into pages already mapped costs no
 * system call.  A page unmapped since (swapped out, discarded) only makes
 * that write slower.  Kernels before 5.14 get no prefault.
 */
#define PF_SLOTS 65536u
static uintptr_t pf_seen[PF_SLOTS];
static bool pf_unsupported;

static void populate(uintptr_t start, uintptr_t end)
{
        if (start < end && !pf_unsupported && madvise((void *)start, end - start, MADV_POPULATE_READ) < 0 &&
            errno == EINVAL)
                pf_unsupported = true;
}

static void prefault(const struct iovec *iov, unsigned n)
{
        const uintptr_t pg = 4096;
        for (unsigned k = 0; k < n && !pf_unsupported; k++) {
                uintptr_t b = (uintptr_t)iov[k].iov_base, end = b + iov[k].iov_len;
                uintptr_t run = 0, run_end = 0; /* pages not seen, to populate in one call */
                for (uintptr_t q = b & ~(pg - 1); q < end; q += pg) {
                        uintptr_t *slot = &pf_seen[(q / pg) % PF_SLOTS];
                        if (*slot == q)
                                continue;
                        *slot = q;
                        if (run_end != q) {
                                populate(run, run_end);
                                run = q;
                        }
                        run_end = q + pg;
                }
                populate(run, run_end);
        }
}

/* The open file fh, to be written: -EBADF, or -EROFS in a read-only share. */
static int writable_fh(struct fs *fs, uint64_t fh, struct handle **ret)
{
        struct handle *h = fh_get(fs, fh, false);
        if (!h)
                return -EBADF;
        if (h->ro)
                return -EROFS;
        *ret = h;
        return 0;
}

ssize_t op_write(struct fs *fs, struct req *q)
{
        size_t arglen = q->h->len - sizeof(*q->h);
        struct fuse_write_in in;
        if (!take(&q->a, &in, sizeof(in)))
                return -EINVAL;
        struct handle *h;
        int hr = writable_fh(fs, in.fh, &h);
        if (hr < 0)
                return hr;
        size_t have = q->e ? arglen - sizeof(in) : q->a.len;
        if (in.size != have || in.size > FS_MAX_WRITE || in.offset > (uint64_t)INT64_MAX ||
            q->cap < sizeof(struct fuse_write_out))
                return -EINVAL;
        ssize_t r = kill_privs(fs, h->ino, h->fd, in.write_flags & FUSE_WRITE_KILL_SUIDGID);
        if (r < 0)
                return r;
        if (q->e) {
                static struct iovec iov[VU_MAX_SEGS];
                unsigned n = payload_iov(q->e, sizeof(struct fuse_in_header) + sizeof(in), in.size, iov, VU_MAX_SEGS);
                if (!n)
                        return -EINVAL;
                prefault(iov, n);
                r = pwritev(h->fd, iov, (int)n, (off_t)in.offset);
        } else
                r = pwrite(h->fd, q->a.p, in.size, (off_t)in.offset);
        if (r < 0)
                return -errno;
        struct fuse_write_out o = {.size = (uint32_t)r};
        return reply_copy(q, &o, sizeof(o));
}

ssize_t op_lseek(struct fs *fs, struct req *q)
{
        struct fuse_lseek_in in;
        if (!take(&q->a, &in, sizeof(in)))
                return -EINVAL;
        int fd = read_fd(fs, q->h->nodeid, in.fh, false);
        if (fd < 0)
                return fd;
        if (in.whence > SEEK_HOLE || in.offset > (uint64_t)INT64_MAX || q->cap < sizeof(struct fuse_lseek_out))
                return -EINVAL;
        off_t r = lseek(fd, (off_t)in.offset, (int)in.whence);
        if (r < 0)
                return -errno;
        struct fuse_lseek_out o = {.offset = (uint64_t)r};
        return reply_copy(q, &o, sizeof(o));
}

ssize_t op_fallocate(struct fs *fs, struct req *q)
{
        struct fuse_fallocate_in in;
        if (!take(&q->a, &in, sizeof(in)))
                return -EINVAL;
        struct handle *h;
        int hr = writable_fh(fs, in.fh, &h);
        if (hr < 0)
                return hr;
        if (in.offset > (uint64_t)INT64_MAX || in.length > (uint64_t)INT64_MAX)
                return -EINVAL;
        return fallocate(h->fd, (int)in.mode, (off_t)in.offset, (off_t)in.length) < 0 ? -errno : 0;
}

ssize_t op_fsync(struct fs *fs, struct req *q)
{
        bool dir = q->h->opcode == FUSE_FSYNCDIR;
        struct fuse_fsync_in in;
        if (!take(&q->a, &in, sizeof(in)))
                return -EINVAL;
        struct handle *h = fh_get(fs, in.fh, dir);
        if (!h)
                return -EBADF;
        if (h->ro)
                return 0;
        int r = (in.fsync_flags & 1) ? fdatasync(h->fd) : fsync(h->fd);
        return r < 0 ? -errno : 0;
}

ssize_t op_flush(struct fs *fs, struct req *q)
{
        /* writes reach the host file before they are answered, and
         * locks are the guest kernel's own: nothing to flush, and
         * ENOSYS tells the kernel to stop asking at every close */
        return -ENOSYS;
}

/* RELEASE, RELEASEDIR */
ssize_t op_release(struct fs *fs, struct req *q)
{
        struct fuse_release_in rel;
        if (!take(&q->a, &rel, sizeof(rel)))
                return -EINVAL;
        return fh_release(fs, rel.fh, q->h->opcode == FUSE_RELEASEDIR);
}

ssize_t op_syncfs(struct fs *fs, struct req *q)
{
        for (size_t k = 0; k < fs->nshares; k++) {
                if (fs->shares[k].c.read_only)
                        continue;
                char p[64];
                procpath(p, sizeof(p), fs->shares[k].root_fd);
                int rfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (rfd >= 0) {
                        syncfs(rfd);
                        close(rfd);
                }
        }
        return 0;
}
