/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the files of msb-fsd's FUSE server share (fs.h is its interface):
 * the server's state (struct fs: shares, inodes, handles, limits), one
 * request as the opcode table hands it to an op (struct req), and the
 * functions one file of the server offers the others.  Which file holds
 * what: docs/fsd.md "Layout".
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <linux/fuse.h>

#include "fsd/fs.h"

/* ---- the server's state ---- */

/* The owner, mode and device number the guest sees of a file where
 * ownership is virtual (vstat.c). */
struct vstat {
        uint32_t uid, gid, mode, rdev;
};

/* One share and its policy. */
struct share {
        struct fs_config c;
        int root_fd;            /* the share's root, or the single file's directory */
        char *file_name;        /* single-file share: the file's name in root_fd */
        struct inode *file;     /* single-file share: its one inode, once looked up */
        bool marked;            /* root carries FS_XATTR_MARK: files may carry FS_XATTR_STAT */
};

enum ino_kind {
        K_NORMAL,   /* a host inode, reached through fd */
        K_FILEROOT, /* single mode, single-file share: the made-up root holding the file */
        K_TOP,      /* multi mode: the made-up root holding one entry per share */
};

/* A file or directory the guest holds lookups on (inode.c). */
struct inode {
        uint64_t id;
        enum ino_kind kind;
        struct share *sh; /* whose policy applies; NULL for K_TOP */
        int fd;          /* O_PATH, O_NOFOLLOW; -1 for the made-up roots, and while the
                          * fd cache has it closed (ino_fd reopens it) */
        int rfd;         /* no-open mode: O_RDONLY, opened at the first READ; else -1 */
        dev_t dev;
        ino_t ino;
        mode_t type;     /* S_IFMT bits of the host inode */
        uint64_t nlookup;
        /* where it was last seen, which is how a closed fd is reopened;
         * holds a reference on parent.  NULL for pinned inodes. */
        struct inode *parent;
        char *name;
        uint32_t nchildren; /* inodes whose parent this is */
        uint32_t nopen;     /* open handles: its fd stays open meanwhile */
        bool pinned;     /* fd never closed by the cache: roots, share roots, the single file */
        bool on_lru;     /* its fds count in fs->ncached and may be closed */
        uint8_t ncounted; /* how many of them fs->ncached counts */
        bool dead;       /* unreachable, freed at the end of the request (fs->dead) */
        bool byname;     /* single-file share's file: re-resolved by name */
        bool vloaded, vvalid;
        struct vstat v;
        struct inode *next_id, *next_key;
        struct inode *lru_prev, *lru_next; /* fs->lru_head is the most recently used */
};

/* An open file or directory (handle.c). */
struct handle {
        uint64_t id;
        int fd;          /* -1 for a made-up directory */
        bool dir;
        bool ro;         /* its share is read-only */
        struct inode *ino; /* holds a reference (nopen) */
        struct handle *next;
};

/* Initial buckets of the inode tables, which double whenever they hold as
 * many inodes as buckets, so a chain stays short for a guest walking a
 * million files; and the fixed handle table's. */
#define INO_BUCKETS_MIN 4096u
#define HBITS 12
#define HSIZE (1u << HBITS)

/* How far up a closed inode's parents are walked to reopen it: more than
 * any path (PATH_MAX / 2 components), and what keeps a loop from spinning. */
#define FS_MAX_REOPEN_DEPTH 4096

/* One server: its shares, inodes and handles (fs.h's struct fs). */
struct fs {
        struct share *shares;
        size_t nshares;
        bool multi;             /* root is K_TOP, one entry per share */
        bool noopen;            /* one read-only share: OPEN answers ENOSYS */
        struct inode *root;
        struct inode **by_id, **by_key;
        size_t nbuckets;        /* of each, a power of two */
        struct handle *handles[HSIZE];
        size_t nhandles;
        uint64_t next_ino_id, next_fh;
        size_t ninodes;         /* not counting dead ones */
        struct inode *lru_head, *lru_tail;
        size_t ncached;         /* fds held by inodes on the LRU */
        struct inode *dead;     /* dropped during this request, chained by next_id */
        struct fs_limits lim;
        bool inited;
        uint32_t minor;
};

/* ---- one request ---- */

/* A request's arguments after its header, read through take/take_name:
 * never cast to a struct.  untrusted: all of it is the guest's. */
struct args {
        const uint8_t *p;
        size_t len;
        bool bad;
};

/* One request as an op sees it. */
struct req {
        const struct fuse_in_header *h; /* untrusted */
        struct args a;                  /* what follows the header */
        struct inode *i;                /* h->nodeid's inode; NULL for OP_NO_INODE ops */
        const struct vu_elem *e;        /* a WRITE whose payload stays in guest memory, else NULL */
        uint8_t *res;                   /* the reply's payload, after its header */
        size_t cap;                     /* room there */
};

/* An op: the reply payload's length, or -errno (the reply is then the
 * error alone). */
typedef ssize_t (*fs_op)(struct fs *fs, struct req *q);

/* The reply payload o of n bytes, for which the op made sure there is
 * room; its length. */
static inline ssize_t reply_copy(struct req *q, const void *o, size_t n)
{
        memcpy(q->res, o, n);
        return (ssize_t)n;
}

/* The same, -EINVAL when there is no room for it. */
static inline ssize_t reply_fit(struct req *q, const void *o, size_t n)
{
        return q->cap < n ? -EINVAL : reply_copy(q, o, n);
}

/* dispatch.c: copy n bytes of the arguments into dst; false (and
 * a->bad) if short. */
bool take(struct args *a, void *dst, size_t n);
/* The next NUL-terminated name, or NULL (and a->bad). */
const char *take_name(struct args *a);

/* Ownership is virtual for i: kept in FS_XATTR_STAT, not on the host inode. */
static inline bool virt(const struct inode *i)
{
        return i->sh && i->sh->c.owner == FS_OWNER_VIRTUAL;
}

/* i's share is read-only (a made-up root counts as one). */
static inline bool ro(const struct inode *i)
{
        return !i->sh || i->sh->c.read_only;
}

#define RO_CHECK(i)                     \
        do {                            \
                if (ro(i))              \
                        return -EROFS;  \
        } while (0)

/* Where the guest's security.*, trusted.* and system.* xattrs live on the
 * host when ownership is virtual (xattr_host_name). */
#define GUEST_NS_PREFIX FS_XATTR_PREFIX "g."

/* ---- inode.c: the inode table, the fd cache, inode lifetime ---- */

/* The bucket of v in a table of nbuckets (a power of two). */
unsigned hash64(uint64_t v, size_t nbuckets);
/* The inode with this FUSE node id, or NULL. */
struct inode *ino_get(struct fs *fs, uint64_t id);
/* sh's inode for this host inode, or NULL. */
struct inode *ino_find(struct fs *fs, struct share *sh, dev_t dev, ino_t ino);
/* Put i into the tables, counted in fs->ninodes. */
void ino_insert(struct fs *fs, struct inode *i);
/* i now is the host inode dev:ino (a single-file share's file replaced). */
void ino_rekey(struct fs *fs, struct inode *i, dev_t dev, ino_t ino);
/* (Re)file i on the LRU by the fds it holds now; call when they change. */
void lru_update(struct fs *fs, struct inode *i);
/* Close the least recently used inodes' fds beyond fs->lim.inode_fds. */
void lru_trim(struct fs *fs);
/* Drop i if nothing refers to it any more. */
void ino_put(struct fs *fs, struct inode *i);
/* Close i's fds and free it. */
void ino_free(struct inode *i);
/* Free what this request dropped. */
void fs_reap(struct fs *fs);
/* i is known as name in parent from now on: where it is reopened. */
void ino_move(struct fs *fs, struct inode *i, struct inode *parent, const char *name);
/* i's O_PATH fd for this request, reopened if the cache closed it. */
int ino_fd(struct fs *fs, struct inode *i);
/* A new inode in sh, or NULL with *err -ENFILE (the limit) or -ENOMEM. */
struct inode *ino_new(struct fs *fs, struct share *sh, int *err);
/* Find or make the inode for fd (consumed), found as name in parent
 * (NULL: a share's root); counts one lookup. */
int ino_take(struct fs *fs, struct share *sh, struct inode *parent, const char *name, int fd,
             const struct stat *st, struct inode **ret);
/* The guest forgets n lookups of node id. */
void forget(struct fs *fs, uint64_t id, uint64_t n);
/* DESTROY and fs_free: every handle, every inode but the root. */
void fs_drop_all(struct fs *fs);

/* ---- handle.c: open files and directories ---- */

/* The open handle id (a directory's with dir), or NULL. */
struct handle *fh_get(struct fs *fs, uint64_t id, bool dir);
/* A handle for fd (consumed only on success) on inode i; -EMFILE beyond
 * fs->lim.handles. */
int fh_new(struct fs *fs, int fd, bool dir, bool read_only, struct inode *i, uint64_t *ret);
/* Close handle id; -EBADF if there is none. */
int fh_release(struct fs *fs, uint64_t id, bool dir);
/* Close every handle, without touching their inodes (fs_drop_all). */
void fh_drop_all(struct fs *fs);

/* ---- host.c: how the server reaches host files ---- */

/* One component under dirfd, never following anything: fd or -errno. */
int open_beneath(int dirfd, const char *name, int flags, mode_t mode);
/* Our own fd as a path relative to the working directory /proc/self/fd. */
void procpath(char *buf, size_t n, int fd);
/* i's O_PATH fd as such a path, for the calls that take a path (xattrs). */
int ino_path(struct fs *fs, struct inode *i, char *p, size_t n);
/* Reopen i for I/O with flags: only regular files and directories. */
int ino_open(struct fs *fs, struct inode *i, int flags);
/* 0 if n is one path component the guest may name, else -errno. */
int check_name(const char *n);
/* Single-file share: point i at whatever the file's name holds now. */
int byname_refresh(struct fs *fs, struct inode *i);
/* The host's stat of i (made up for a made-up root). */
int ino_stat(struct fs *fs, struct inode *i, struct stat *st);

/* ---- vstat.c: ownership virtualization, the attributes the guest sees ---- */

/* Record guest-visible ownership of i (FS_XATTR_STAT, or memory only). */
void vstat_store(struct fs *fs, struct inode *i, const struct vstat *v);
/* The guest's attributes of i from the host's st. */
void fill_attr(struct fs *fs, struct inode *i, const struct stat *st, struct fuse_attr *a);
/* Seconds t as FUSE's seconds and nanoseconds. */
void set_timeout(double t, uint64_t *sec, uint32_t *nsec);
/* How long the guest may cache i's entry and attributes. */
double timeout_for(struct fs *fs, struct inode *i);
/* The entry of i for a LOOKUP-like reply. */
void fill_entry(struct fs *fs, struct inode *i, const struct stat *st, struct fuse_entry_out *e);
/* Drop file capability and setuid/setgid bits as a write, truncate or
 * chown does (FUSE_HANDLE_KILLPRIV_V2); fd: i's open file, or -1. */
int kill_privs(struct fs *fs, struct inode *i, int fd, bool suidgid);
/* The host mode for something the guest creates in parent. */
mode_t host_mode(const struct inode *parent, mode_t mode, bool dir);

/* ---- lookup.c: names to inodes ---- */

/* Look name up in parent: its entry in *e, its inode in *ret (may be
 * NULL); counts one lookup. */
int do_lookup(struct fs *fs, struct inode *parent, const char *name, struct fuse_entry_out *e, struct inode **ret);

/* ---- data.c: file I/O ---- */

/* Host open flags for the guest's gflags on i; -EROFS, -EINVAL. */
int open_flags(const struct inode *i, uint32_t gflags, int *ret);
/* FOPEN_* flags of an open of i. */
uint32_t fopen_flags(struct fs *fs, struct inode *i);
/* The fd a READ, LSEEK or READDIR uses: its handle's, or in no-open mode
 * the inode's own. */
int read_fd(struct fs *fs, uint64_t nodeid, uint64_t fh, bool dir);

/* ---- the ops, each FUSE_<NAME> of the opcode table (dispatch.c) ---- */

/* dispatch.c */
ssize_t op_init(struct fs *fs, struct req *q);
ssize_t op_destroy(struct fs *fs, struct req *q);
/* lookup.c */
ssize_t op_lookup(struct fs *fs, struct req *q);
ssize_t op_forget(struct fs *fs, struct req *q);
ssize_t op_batch_forget(struct fs *fs, struct req *q);
/* attr.c */
ssize_t op_getattr(struct fs *fs, struct req *q);
ssize_t op_setattr(struct fs *fs, struct req *q);
ssize_t op_statfs(struct fs *fs, struct req *q);
ssize_t op_readlink(struct fs *fs, struct req *q);
ssize_t op_access(struct fs *fs, struct req *q);
/* entry.c; op_unlink is RMDIR too, op_rename RENAME2 */
ssize_t op_mknod(struct fs *fs, struct req *q);
ssize_t op_mkdir(struct fs *fs, struct req *q);
ssize_t op_symlink(struct fs *fs, struct req *q);
ssize_t op_link(struct fs *fs, struct req *q);
ssize_t op_unlink(struct fs *fs, struct req *q);
ssize_t op_rename(struct fs *fs, struct req *q);
ssize_t op_create(struct fs *fs, struct req *q);
/* data.c; op_open is OPENDIR too, op_release RELEASEDIR, op_fsync FSYNCDIR */
ssize_t op_open(struct fs *fs, struct req *q);
ssize_t op_read(struct fs *fs, struct req *q);
ssize_t op_write(struct fs *fs, struct req *q);
ssize_t op_lseek(struct fs *fs, struct req *q);
ssize_t op_fallocate(struct fs *fs, struct req *q);
ssize_t op_flush(struct fs *fs, struct req *q);
ssize_t op_release(struct fs *fs, struct req *q);
ssize_t op_fsync(struct fs *fs, struct req *q);
ssize_t op_syncfs(struct fs *fs, struct req *q);
/* dir.c; READDIRPLUS too */
ssize_t op_readdir(struct fs *fs, struct req *q);
/* xattr.c */
ssize_t op_getxattr(struct fs *fs, struct req *q);
ssize_t op_listxattr(struct fs *fs, struct req *q);
ssize_t op_setxattr(struct fs *fs, struct req *q);
ssize_t op_removexattr(struct fs *fs, struct req *q);
