/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One FUSE request in, one reply out (fs_handle): the header checked, the
 * opcode looked up in a table that says what the op needs (INIT done, an
 * inode) and whether it is answered at all, the op run, the reply's
 * header written.  Also the session's own ops, INIT and DESTROY, and the
 * cursor every op reads its arguments through.
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
#include "fsd/vhost.h"

bool take(struct args *a, void *dst, size_t n)
{
        if (a->bad || a->len < n) {
                a->bad = true;
                return false;
        }
        memcpy(dst, a->p, n);
        a->p += n;
        a->len -= n;
        return true;
}

const char *take_name(struct args *a)
{
        if (a->bad)
                return NULL;
        const uint8_t *z = memchr(a->p, 0, a->len);
        if (!z) {
                a->bad = true;
                return NULL;
        }
        const char *s = (const char *)a->p;
        size_t n = (size_t)(z - a->p) + 1;
        a->p += n;
        a->len -= n;
        return s;
}

ssize_t op_init(struct fs *fs, struct req *q)
{
        struct fuse_init_in in = {0};
        /* 7.36+ kernels send flags2 and reserved words after these four */
        if (!take(&q->a, &in, offsetof(struct fuse_init_in, flags2)))
                return -EINVAL;
        if (in.major != FUSE_KERNEL_VERSION || in.minor < 31)
                return -EPROTO;
        if (q->cap < sizeof(struct fuse_init_out))
                return -EINVAL;
        uint32_t want = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS |
                        FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES;
        /* one read-only share (the image root) may be cached hard */
        want |= !fs->multi && fs->shares[0].c.read_only ? FUSE_CACHE_SYMLINKS : FUSE_AUTO_INVAL_DATA;
        /* the guest kernel otherwise asks for security.capability before
         * every write(): one round trip each.  We drop privileges on
         * write, truncate and chown instead (kill_privs). */
        for (size_t k = 0; k < fs->nshares; k++)
                if (!fs->shares[k].c.read_only)
                        want |= FUSE_HANDLE_KILLPRIV_V2;
        struct fuse_init_out o = {
                .major = FUSE_KERNEL_VERSION,
                .minor = in.minor < FUSE_KERNEL_MINOR_VERSION ? in.minor : FUSE_KERNEL_MINOR_VERSION,
                .max_readahead = in.max_readahead,
                .flags = in.flags & want,
                .max_background = 64,
                .congestion_threshold = 48,
                .max_write = FS_MAX_WRITE,
                .time_gran = 1,
                .max_pages = FS_MAX_WRITE / 4096,
        };
        fs->inited = true;
        fs->minor = o.minor;
        return reply_copy(q, &o, sizeof(o));
}

ssize_t op_destroy(struct fs *fs, struct req *q)
{
        fs_drop_all(fs);
        fs->inited = false;
        return 0;
}

/* What an op needs before it runs, and whether it is answered.  No flags
 * (an opcode the table does not name, too) is the common case: after
 * INIT, on an inode the guest names. */
enum {
        OP_BEFORE_INIT = 1u,   /* runs whether or not INIT came first */
        OP_NO_INODE = 2u,      /* nodeid need not name an inode (the op looks, or takes a handle) */
        OP_NO_REPLY = 4u,      /* the guest expects no reply and leaves no room for one */
        OP_GUEST_PAYLOAD = 8u, /* its payload may stay in guest memory (see vu_handler) */
};

struct op_entry {
        fs_op fn; /* NULL: ENOSYS, or for an OP_NO_REPLY op nothing */
        unsigned flags;
};

static const struct op_entry ops[] = {
        [FUSE_INIT] = {op_init, OP_BEFORE_INIT | OP_NO_INODE},
        [FUSE_DESTROY] = {op_destroy, OP_NO_INODE},
        [FUSE_FORGET] = {op_forget, OP_NO_REPLY},
        [FUSE_BATCH_FORGET] = {op_batch_forget, OP_NO_REPLY},
        [FUSE_INTERRUPT] = {NULL, OP_NO_REPLY},
        [FUSE_LOOKUP] = {op_lookup, 0},
        [FUSE_GETATTR] = {op_getattr, 0},
        [FUSE_SETATTR] = {op_setattr, 0},
        [FUSE_STATFS] = {op_statfs, 0},
        [FUSE_READLINK] = {op_readlink, 0},
        [FUSE_ACCESS] = {op_access, 0},
        [FUSE_SYMLINK] = {op_symlink, 0},
        [FUSE_MKNOD] = {op_mknod, 0},
        [FUSE_MKDIR] = {op_mkdir, 0},
        [FUSE_LINK] = {op_link, 0},
        [FUSE_CREATE] = {op_create, 0},
        [FUSE_UNLINK] = {op_unlink, 0},
        [FUSE_RMDIR] = {op_unlink, 0},
        [FUSE_RENAME] = {op_rename, 0},
        [FUSE_RENAME2] = {op_rename, 0},
        [FUSE_OPEN] = {op_open, 0},
        [FUSE_OPENDIR] = {op_open, 0},
        [FUSE_READ] = {op_read, OP_NO_INODE},
        [FUSE_WRITE] = {op_write, OP_NO_INODE | OP_GUEST_PAYLOAD},
        [FUSE_LSEEK] = {op_lseek, OP_NO_INODE},
        [FUSE_FALLOCATE] = {op_fallocate, OP_NO_INODE},
        [FUSE_FLUSH] = {op_flush, OP_NO_INODE},
        [FUSE_RELEASE] = {op_release, OP_NO_INODE},
        [FUSE_RELEASEDIR] = {op_release, OP_NO_INODE},
        [FUSE_FSYNC] = {op_fsync, OP_NO_INODE},
        [FUSE_FSYNCDIR] = {op_fsync, OP_NO_INODE},
        [FUSE_SYNCFS] = {op_syncfs, OP_NO_INODE},
        [FUSE_READDIR] = {op_readdir, 0},
        [FUSE_READDIRPLUS] = {op_readdir, 0},
        [FUSE_GETXATTR] = {op_getxattr, 0},
        [FUSE_LISTXATTR] = {op_listxattr, 0},
        [FUSE_SETXATTR] = {op_setxattr, 0},
        [FUSE_REMOVEXATTR] = {op_removexattr, 0},
};

/* Check q against what op needs, then run it. */
static ssize_t run_op(struct fs *fs, const struct op_entry *op, struct req *q, size_t inlen, const struct vu_elem *e)
{
        const struct fuse_in_header *h = q->h;
        /* only a write's payload may stay in guest memory (see vu_handler) */
        bool tail = e && (op->flags & OP_GUEST_PAYLOAD) && h->len == e->in_len && h->len > inlen &&
                    inlen >= sizeof(*h) + sizeof(struct fuse_write_in);
        if (h->len < sizeof(*h) || (h->len > inlen && !tail))
                return -EINVAL;
        if (tail) {
                q->a.len = inlen - sizeof(*h);
                q->e = e;
        }
        if (!(op->flags & OP_BEFORE_INIT) && !fs->inited)
                return -EIO;
        if (!(op->flags & OP_NO_INODE) && !(q->i = ino_get(fs, h->nodeid)))
                return -EBADF;
        return op->fn ? op->fn(fs, q) : -ENOSYS;
}

static size_t handle_one(struct fs *fs, const uint8_t *in, size_t inlen, const struct vu_elem *e, uint8_t *out,
                         size_t outcap)
{
        struct fuse_in_header h;
        if (inlen < sizeof(h))
                return 0; /* nothing to answer to: the guest's own malformed request */
        memcpy(&h, in, sizeof(h));
        struct req q = {
                .h = &h,
                .a = {.p = in + sizeof(h), .len = h.len >= sizeof(h) && h.len <= inlen ? h.len - sizeof(h) : 0},
        };
        static const struct op_entry unknown = {NULL, 0};
        const struct op_entry *op = h.opcode < ARRAY_SIZE(ops) ? &ops[h.opcode] : &unknown;
        /* requests that get no reply come without room for one */
        if (op->flags & OP_NO_REPLY) {
                if (op->fn)
                        op->fn(fs, &q);
                return 0;
        }
        if (outcap < sizeof(struct fuse_out_header))
                return 0; /* no room to answer: the guest's own malformed request */
        q.res = out + sizeof(struct fuse_out_header);
        q.cap = outcap - sizeof(struct fuse_out_header);
        ssize_t r = run_op(fs, op, &q, inlen, e);
        struct fuse_out_header oh = {.unique = h.unique};
        if (r < 0) {
                oh.error = (int32_t)r;
                oh.len = sizeof(oh);
        } else {
                oh.len = (uint32_t)(sizeof(oh) + (size_t)r);
        }
        memcpy(out, &oh, sizeof(oh));
        return oh.len;
}

size_t fs_handle(void *v, const uint8_t *in, size_t inlen, const struct vu_elem *e, uint8_t *out, size_t outcap)
{
        struct fs *fs = v;
        lru_trim(fs);
        size_t n = handle_one(fs, in, inlen, e, out, outcap);
        fs_reap(fs);
        return n;
}
