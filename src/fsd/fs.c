/* SPDX-License-Identifier: Apache-2.0 */
/* FUSE request handling for one share or a set of them; see fs.h. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/util.h"
#include "fsd/fs.h"
#include "common/jail.h"
#include "fsd/vhost.h"

struct vstat {
        uint32_t uid, gid, mode, rdev;
};

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

static unsigned hash64(uint64_t v, size_t nbuckets)
{
        v ^= v >> 33;
        v *= 0xff51afd7ed558ccdULL;
        v ^= v >> 33;
        return (unsigned)(v & (nbuckets - 1));
}
static unsigned hkey(dev_t dev, ino_t ino, size_t nbuckets)
{
        return hash64((uint64_t)ino * 31 + (uint64_t)dev, nbuckets);
}

static struct inode *ino_get(struct fs *fs, uint64_t id)
{
        for (struct inode *i = fs->by_id[hash64(id, fs->nbuckets)]; i; i = i->next_id)
                if (i->id == id)
                        return i;
        return NULL;
}

/* The same host inode in two shares is two inodes: each has its policy. */
static struct inode *ino_find(struct fs *fs, struct share *sh, dev_t dev, ino_t ino)
{
        for (struct inode *i = fs->by_key[hkey(dev, ino, fs->nbuckets)]; i; i = i->next_key)
                if (i->dev == dev && i->ino == ino && i->sh == sh && i->kind == K_NORMAL && !i->byname)
                        return i;
        return NULL;
}

static void ino_link(struct fs *fs, struct inode *i)
{
        unsigned a = hash64(i->id, fs->nbuckets), b = hkey(i->dev, i->ino, fs->nbuckets);
        i->next_id = fs->by_id[a];
        fs->by_id[a] = i;
        i->next_key = fs->by_key[b];
        fs->by_key[b] = i;
}

/* Twice the buckets; on allocation failure the chains just get longer. */
static void ino_grow(struct fs *fs)
{
        size_t n = fs->nbuckets * 2;
        struct inode **a = calloc(n, sizeof(*a)), **b = calloc(n, sizeof(*b));
        if (!a || !b) {
                free(a);
                free(b);
                return;
        }
        struct inode **oa = fs->by_id, **ob = fs->by_key;
        size_t on = fs->nbuckets;
        fs->by_id = a;
        fs->by_key = b;
        fs->nbuckets = n;
        for (size_t k = 0; k < on; k++)
                for (struct inode *i = oa[k], *next; i; i = next) {
                        next = i->next_id;
                        ino_link(fs, i);
                }
        free(oa);
        free(ob);
}

static void ino_insert(struct fs *fs, struct inode *i)
{
        if (fs->ninodes >= fs->nbuckets)
                ino_grow(fs);
        ino_link(fs, i);
        fs->ninodes++;
}

static void ino_unlink_key(struct fs *fs, struct inode *i)
{
        for (struct inode **p = &fs->by_key[hkey(i->dev, i->ino, fs->nbuckets)]; *p; p = &(*p)->next_key)
                if (*p == i) {
                        *p = i->next_key;
                        return;
                }
}

static void ino_rekey(struct fs *fs, struct inode *i, dev_t dev, ino_t ino)
{
        ino_unlink_key(fs, i);
        i->dev = dev;
        i->ino = ino;
        unsigned b = hkey(dev, ino, fs->nbuckets);
        i->next_key = fs->by_key[b];
        fs->by_key[b] = i;
}

/* One component under dirfd, never following anything. */
static int open_beneath(int dirfd, const char *name, int flags, mode_t mode)
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

/* ---- the fd cache: O_PATH and read fds of inodes, least recently used
 * closed beyond fs->lim.inode_fds (docs/fsd.md "Limits") ---- */

static size_t ino_nfds(const struct inode *i)
{
        return (size_t)(i->fd >= 0) + (size_t)(i->rfd >= 0);
}

static void lru_remove(struct fs *fs, struct inode *i)
{
        if (!i->on_lru)
                return;
        *(i->lru_prev ? &i->lru_prev->lru_next : &fs->lru_head) = i->lru_next;
        *(i->lru_next ? &i->lru_next->lru_prev : &fs->lru_tail) = i->lru_prev;
        i->lru_prev = i->lru_next = NULL;
        i->on_lru = false;
        fs->ncached -= i->ncounted;
        i->ncounted = 0;
}

/* (Re)file i by what it holds now: on the LRU, most recently used, when it
 * has an fd the cache may close.  Called whenever its fds change. */
static void lru_update(struct fs *fs, struct inode *i)
{
        lru_remove(fs, i);
        if (i->pinned || i->dead || i->nopen || !ino_nfds(i))
                return;
        i->lru_prev = NULL;
        i->lru_next = fs->lru_head;
        *(fs->lru_head ? &fs->lru_head->lru_prev : &fs->lru_tail) = i;
        fs->lru_head = i;
        i->on_lru = true;
        i->ncounted = (uint8_t)ino_nfds(i);
        fs->ncached += i->ncounted;
}

static void ino_close_fds(struct inode *i)
{
        if (i->fd >= 0)
                close(i->fd);
        if (i->rfd >= 0)
                close(i->rfd);
        i->fd = i->rfd = -1;
}

/* At the start of a request, so no fd the request is using is closed under
 * it: a request may exceed the limit by what it opens itself (a
 * READDIRPLUS by one per entry), which RLIMIT_NOFILE leaves room for. */
static void lru_trim(struct fs *fs)
{
        while (fs->ncached > fs->lim.inode_fds && fs->lru_tail) {
                struct inode *i = fs->lru_tail;
                lru_remove(fs, i);
                ino_close_fds(i);
        }
}

/* ---- inode lifetime ---- */

/* Unreachable from now on; its memory and fds go at the end of the request
 * (fs_reap), so a pointer or fd the request holds stays valid until then.
 * Its parent loses a reference, which may drop it too. */
static void ino_kill(struct fs *fs, struct inode *i)
{
        for (;;) {
                for (struct inode **p = &fs->by_id[hash64(i->id, fs->nbuckets)]; *p; p = &(*p)->next_id)
                        if (*p == i) {
                                *p = i->next_id;
                                break;
                        }
                ino_unlink_key(fs, i);
                lru_remove(fs, i);
                if (i->sh && i->sh->file == i)
                        i->sh->file = NULL;
                i->dead = true;
                i->next_id = fs->dead;
                fs->dead = i;
                fs->ninodes--;
                struct inode *p = i->parent;
                i->parent = NULL;
                if (!p || --p->nchildren || p->nlookup || p->nopen || p == fs->root)
                        return;
                i = p;
        }
}

/* Drop i if nothing refers to it any more: no lookup the guest holds, no
 * open handle, no child that may need it to be reopened. */
static void ino_put(struct fs *fs, struct inode *i)
{
        if (i != fs->root && !i->dead && !i->nlookup && !i->nopen && !i->nchildren)
                ino_kill(fs, i);
}

static void ino_free(struct inode *i)
{
        ino_close_fds(i);
        free(i->name);
        free(i);
}

/* Free what the request dropped. */
static void fs_reap(struct fs *fs)
{
        while (fs->dead) {
                struct inode *i = fs->dead;
                fs->dead = i->next_id;
                ino_free(i);
        }
}

/* i is known as name in parent from now on (a rename, or found under
 * another name): that is where it is reopened.  A directory is never put
 * below itself (a host bind mount can show one inside itself), so the
 * parent chain has no loop. */
static void ino_move(struct fs *fs, struct inode *i, struct inode *parent, const char *name)
{
        /* a parent already on the dead list (its last reference went
         * earlier in this request, e.g. the first half of an exchange) is
         * freed at the end of it: never adopt one */
        if (i->pinned || !parent || parent->dead || parent->kind != K_NORMAL ||
            (i->parent == parent && !strcmp(i->name, name)))
                return;
        int depth = 0;
        for (struct inode *a = parent; a; a = a->parent)
                if (a == i || ++depth > FS_MAX_REOPEN_DEPTH)
                        return;
        char *n = strdup(name);
        if (!n)
                return; /* keeps the old name: at worst ESTALE once its fd was closed */
        parent->nchildren++;
        struct inode *old = i->parent;
        free(i->name);
        i->name = n;
        i->parent = parent;
        if (old) {
                old->nchildren--;
                ino_put(fs, old);
        }
}

/* Reopen i's O_PATH fd by its name in its parent, the closest closed
 * ancestor first.  It must still be the same inode: a host that renamed
 * or removed it meanwhile gets the guest ESTALE (it looks it up again). */
static int ino_reopen(struct fs *fs, struct inode *i)
{
        while (i->fd < 0) {
                struct inode *a = i;
                for (int depth = 0; a->parent && a->parent->fd < 0; a = a->parent)
                        if (++depth > FS_MAX_REOPEN_DEPTH)
                                return -ESTALE;
                /* a pinned inode, the top of every chain, is never closed */
                if (!a->parent || !a->name)
                        return -ESTALE;
                int fd = open_beneath(a->parent->fd, a->name, O_PATH, 0);
                if (fd < 0)
                        return fd == -ENOENT || fd == -ELOOP || fd == -ENOTDIR ? -ESTALE : fd;
                struct stat st;
                if (fstat(fd, &st) < 0 || st.st_dev != a->dev || st.st_ino != a->ino ||
                    (st.st_mode & S_IFMT) != a->type) {
                        close(fd);
                        return -ESTALE;
                }
                a->fd = fd;
                lru_update(fs, a);
        }
        return 0;
}

/* i's O_PATH fd for this request, reopened if the cache closed it. */
static int ino_fd(struct fs *fs, struct inode *i)
{
        if (i->fd < 0) {
                if (i->kind != K_NORMAL)
                        return -EBADF; /* a made-up root has none */
                int r = ino_reopen(fs, i);
                if (r < 0)
                        return r;
        } else if (i->on_lru && fs->lru_head != i) {
                lru_update(fs, i);
        }
        return i->fd;
}

static struct handle *fh_get(struct fs *fs, uint64_t id, bool dir)
{
        for (struct handle *h = fs->handles[hash64(id, HSIZE)]; h; h = h->next)
                if (h->id == id)
                        return h->dir == dir ? h : NULL;
        return NULL;
}

/* A handle for fd (consumed only on success) on inode i. */
static int fh_new(struct fs *fs, int fd, bool dir, bool read_only, struct inode *i, uint64_t *ret)
{
        if (fs->nhandles >= fs->lim.handles)
                return -EMFILE;
        struct handle *h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->id = fs->next_fh++;
        h->fd = fd;
        h->dir = dir;
        h->ro = read_only;
        h->ino = i;
        i->nopen++;
        lru_update(fs, i); /* an open inode keeps its fd */
        unsigned b = hash64(h->id, HSIZE);
        h->next = fs->handles[b];
        fs->handles[b] = h;
        fs->nhandles++;
        *ret = h->id;
        return 0;
}

static int fh_release(struct fs *fs, uint64_t id, bool dir)
{
        for (struct handle **p = &fs->handles[hash64(id, HSIZE)]; *p; p = &(*p)->next)
                if ((*p)->id == id && (*p)->dir == dir) {
                        struct handle *h = *p;
                        *p = h->next;
                        if (h->fd >= 0)
                                close(h->fd);
                        fs->nhandles--;
                        h->ino->nopen--;
                        lru_update(fs, h->ino);
                        ino_put(fs, h->ino);
                        free(h);
                        return 0;
                }
        return -EBADF;
}

/* ---- host access helpers ---- */

/* Our own fd as a path, relative to the working directory /proc/self/fd
 * (see fs.h): the one way to reopen an O_PATH fd or reach its xattrs. */
static void procpath(char *buf, size_t n, int fd)
{
        snprintf(buf, n, "%d", fd);
}

/* i's O_PATH fd as a path, for the calls that take one (xattrs): they
 * act on the inode without opening it. */
static int ino_path(struct fs *fs, struct inode *i, char *p, size_t n)
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
static int ino_open(struct fs *fs, struct inode *i, int flags)
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

static int check_name(const char *n)
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
static int byname_refresh(struct fs *fs, struct inode *i)
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

static int ino_stat(struct fs *fs, struct inode *i, struct stat *st)
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

/* ---- ownership virtualization ---- */

static bool virt(const struct inode *i)
{
        return i->sh && i->sh->c.owner == FS_OWNER_VIRTUAL;
}

static bool ro(const struct inode *i)
{
        return !i->sh || i->sh->c.read_only;
}

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
static void vstat_store(struct fs *fs, struct inode *i, const struct vstat *v)
{
        i->v = *v;
        i->vvalid = i->vloaded = true;
        int fd = i->kind == K_NORMAL && !S_ISLNK(i->type) ? ino_fd(fs, i) : -1;
        if (fd < 0)
                return;
        char p[64], buf[96];
        /* mark the share's root first, so a later run knows to look */
        if (i->sh && !i->sh->marked && !i->byname) {
                procpath(p, sizeof(p), i->sh->root_fd);
                if (setxattr(p, FS_XATTR_MARK, "1", 1, 0) < 0)
                        return; /* cannot mark: keep the guest's view in memory only */
                i->sh->marked = true;
        }
        procpath(p, sizeof(p), fd);
        int n = snprintf(buf, sizeof(buf), "1:%u:%u:%o:%u", v->uid, v->gid, v->mode, v->rdev);
        (void)setxattr(p, FS_XATTR_STAT, buf, (size_t)n, 0);
}

static void fill_attr(struct fs *fs, struct inode *i, const struct stat *st, struct fuse_attr *a)
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

static void set_timeout(double t, uint64_t *sec, uint32_t *nsec)
{
        *sec = (uint64_t)t;
        *nsec = (uint32_t)((t - (double)*sec) * 1e9);
}

static double timeout_for(struct fs *fs, struct inode *i)
{
        return i->byname ? 0 : i->sh ? i->sh->c.timeout : 1;
}

static void fill_entry(struct fs *fs, struct inode *i, const struct stat *st, struct fuse_entry_out *e)
{
        memset(e, 0, sizeof(*e));
        e->nodeid = i->id;
        double t = timeout_for(fs, i);
        set_timeout(t, &e->entry_valid, &e->entry_valid_nsec);
        set_timeout(t, &e->attr_valid, &e->attr_valid_nsec);
        fill_attr(fs, i, st, &e->attr);
}

/* A new inode, counted against fs->lim.inodes; NULL when it is full (ENFILE)
 * or memory is short. */
static struct inode *ino_new(struct fs *fs, struct share *sh, int *err)
{
        if (fs->ninodes >= fs->lim.inodes) {
                *err = -ENFILE;
                return NULL;
        }
        struct inode *i = calloc(1, sizeof(*i));
        if (!i) {
                *err = -ENOMEM;
                return NULL;
        }
        i->id = fs->next_ino_id++;
        i->kind = K_NORMAL;
        i->sh = sh;
        i->fd = i->rfd = -1;
        return i;
}

/* Find or make the inode for fd (consumed), found as name in parent (NULL:
 * a share's root, whose fd is never closed); counts one lookup. */
static int ino_take(struct fs *fs, struct share *sh, struct inode *parent, const char *name, int fd,
                    const struct stat *st, struct inode **ret)
{
        struct inode *i = ino_find(fs, sh, st->st_dev, st->st_ino);
        if (i) {
                if (i->fd < 0) /* closed by the cache: here is a fresh one */
                        i->fd = fd;
                else if (fd >= 0)
                        close(fd);
                lru_update(fs, i); /* just used */
                if (parent)
                        ino_move(fs, i, parent, name);
                i->nlookup++;
                *ret = i;
                return 0;
        }
        int r;
        i = ino_new(fs, sh, &r);
        char *n = i && parent ? strdup(name) : NULL;
        if (!i || (parent && !n)) {
                free(i);
                if (fd >= 0)
                        close(fd);
                return i ? -ENOMEM : r;
        }
        i->fd = fd;
        i->dev = st->st_dev;
        i->ino = st->st_ino;
        i->type = st->st_mode & S_IFMT;
        i->nlookup = 1;
        i->pinned = !parent;
        i->parent = parent;
        i->name = n;
        if (parent)
                parent->nchildren++;
        ino_insert(fs, i);
        lru_update(fs, i);
        *ret = i;
        return 0;
}

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

static int do_lookup(struct fs *fs, struct inode *parent, const char *name, struct fuse_entry_out *e,
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

static void forget(struct fs *fs, uint64_t id, uint64_t n)
{
        struct inode *i = ino_get(fs, id);
        if (!i || i == fs->root)
                return;
        i->nlookup = n >= i->nlookup ? 0 : i->nlookup - n;
        ino_put(fs, i);
}

/* ---- request parsing ---- */

struct args {
        const uint8_t *p;
        size_t len;
        bool bad;
};

static bool take(struct args *a, void *dst, size_t n)
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

static const char *take_name(struct args *a)
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

/* ---- operations: each returns reply payload length or -errno ---- */

#define RO_CHECK(i)                     \
        do {                            \
                if (ro(i))              \
                        return -EROFS;  \
        } while (0)

static ssize_t op_init(struct fs *fs, struct args *a, uint8_t *res, size_t cap)
{
        struct fuse_init_in in = {0};
        /* 7.36+ kernels send flags2 and reserved words after these four */
        if (!take(a, &in, offsetof(struct fuse_init_in, flags2)))
                return -EINVAL;
        if (in.major != FUSE_KERNEL_VERSION || in.minor < 31)
                return -EPROTO;
        if (cap < sizeof(struct fuse_init_out))
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
        memcpy(res, &o, sizeof(o));
        return sizeof(o);
}

static ssize_t reply_attr(struct fs *fs, struct inode *i, uint8_t *res, size_t cap)
{
        struct stat st;
        int r = ino_stat(fs, i, &st);
        if (r < 0)
                return r;
        struct fuse_attr_out o = {0};
        set_timeout(timeout_for(fs, i), &o.attr_valid, &o.attr_valid_nsec);
        fill_attr(fs, i, &st, &o.attr);
        if (cap < sizeof(o))
                return -EINVAL;
        memcpy(res, &o, sizeof(o));
        return sizeof(o);
}

static ssize_t reply_entry(struct fuse_entry_out *e, uint8_t *res, size_t cap)
{
        if (cap < sizeof(*e))
                return -EINVAL;
        memcpy(res, e, sizeof(*e));
        return sizeof(*e);
}

static ssize_t op_lookup(struct fs *fs, struct inode *i, struct args *a, uint8_t *res, size_t cap)
{
        const char *name = take_name(a);
        if (!name)
                return -EINVAL;
        if (cap < sizeof(struct fuse_entry_out))
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
                return reply_entry(&e, res, cap);
        }
        if (r < 0)
                return r;
        return reply_entry(&e, res, cap);
}

/* Where the guest's security.*, trusted.* and system.* xattrs live on the
 * host when ownership is virtual (xattr_host_name). */
#define GUEST_NS_PREFIX FS_XATTR_PREFIX "g."

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
static int kill_privs(struct fs *fs, struct inode *i, int fd, bool suidgid)
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

static ssize_t op_setattr(struct fs *fs, struct inode *i, struct args *a, uint8_t *res, size_t cap)
{
        struct fuse_setattr_in in;
        if (!take(a, &in, sizeof(in)))
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
        if (v & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)) {
                struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
                if (v & FATTR_ATIME_NOW)
                        ts[0].tv_nsec = UTIME_NOW;
                else if (v & FATTR_ATIME)
                        ts[0] = (struct timespec){.tv_sec = (time_t)in.atime, .tv_nsec = in.atimensec % 1000000000};
                if (v & FATTR_MTIME_NOW)
                        ts[1].tv_nsec = UTIME_NOW;
                else if (v & FATTR_MTIME)
                        ts[1] = (struct timespec){.tv_sec = (time_t)in.mtime, .tv_nsec = in.mtimensec % 1000000000};
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
        }
        if (v & (FATTR_MODE | FATTR_UID | FATTR_GID)) {
                if (virt(i)) {
                        struct stat st;
                        r = ino_stat(fs, i, &st);
                        if (r < 0)
                                return r;
                        struct fuse_attr cur;
                        fill_attr(fs, i, &st, &cur);
                        struct vstat nv = {.uid = cur.uid, .gid = cur.gid, .mode = cur.mode, .rdev = cur.rdev};
                        if (v & FATTR_MODE)
                                nv.mode = (cur.mode & S_IFMT) | (in.mode & 07777);
                        if (v & FATTR_UID)
                                nv.uid = in.uid;
                        if (v & FATTR_GID)
                                nv.gid = in.gid;
                        vstat_store(fs, i, &nv);
                        /* best effort: the change itself is made, only
                         * the guest's ctime would be stale */
                        if ((v & (FATTR_UID | FATTR_GID)) && S_ISLNK(i->type))
                                (void)symlink_touch_ctime(ifd);
                } else {
                        if ((v & FATTR_MODE) && !S_ISLNK(i->type)) {
                                char p[64];
                                procpath(p, sizeof(p), ifd);
                                if (chmod(p, in.mode & 07777) < 0)
                                        return -errno;
                        }
                        if ((v & (FATTR_UID | FATTR_GID)) &&
                            fchownat(ifd, "", (v & FATTR_UID) ? in.uid : (uid_t)-1,
                                     (v & FATTR_GID) ? in.gid : (gid_t)-1, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                                return -errno;
                }
        }
        return reply_attr(fs, i, res, cap);
}

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

/* The fixed part of a request that names an entry in parent p (insz 0:
 * none), then the name; both checked.  Returns the parent's fd. */
static int take_entry(struct fs *fs, struct inode *p, struct args *a, void *in, size_t insz, const char **name)
{
        if (insz && !take(a, in, insz))
                return -EINVAL;
        *name = take_name(a);
        return dir_op_check(fs, p, *name);
}

/* After creating name in parent: record who made it, answer its entry. */
static ssize_t finish_create(struct fs *fs, struct inode *parent, const char *name, const struct fuse_in_header *h,
                             mode_t mode, uint32_t rdev, uint8_t *res, size_t cap, struct inode **ret)
{
        struct fuse_entry_out e;
        struct inode *i;
        int r = do_lookup(fs, parent, name, &e, &i);
        if (r < 0)
                return r;
        /* a setgid directory gives what is made in it its group, and a
         * directory its setgid bit (the guest's VFS leaves both to the
         * file system; it has already cleared a setgid bit the caller may
         * not set).  Where ownership is virtual the host directory knows
         * nothing of it; passed through, the host's own kernel did both. */
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
                if (nv.uid != e.attr.uid || nv.gid != e.attr.gid || nv.mode != e.attr.mode || nv.rdev != e.attr.rdev) {
                        vstat_store(fs, i, &nv);
                        e.attr.uid = nv.uid;
                        e.attr.gid = nv.gid;
                        e.attr.mode = nv.mode;
                        e.attr.rdev = nv.rdev;
                }
        } else if (geteuid() == 0) {
                /* on failure the guest never hears of the lookup
                 * do_lookup counted: take it back, or the inode stays */
                int fd = ino_fd(fs, i);
                if (fd < 0 || fchownat(fd, "", h->uid, sgid_dir ? (gid_t)-1 : h->gid,
                                       AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
                        int e2 = fd < 0 ? fd : -errno;
                        forget(fs, i->id, 1);
                        return e2;
                }
                e.attr.uid = h->uid;
                if (!sgid_dir)
                        e.attr.gid = h->gid;
        }
        ssize_t n = reply_entry(&e, res, cap);
        if (n < 0) {
                forget(fs, i->id, 1);
                return n;
        }
        if (ret)
                *ret = i;
        return n;
}

/* Host mode for something the guest creates: with virtualization the host
 * copy never gets setuid/setgid/sticky or group/other write, and the owner
 * can always read and write it. */
static mode_t host_mode(const struct inode *parent, mode_t mode, bool dir)
{
        if (!virt(parent))
                return mode & 07777;
        return (mode & 0755) | (dir ? 0700 : 0600);
}

static ssize_t op_mknod(struct fs *fs, struct inode *p, const struct fuse_in_header *h, struct args *a, uint8_t *res,
                        size_t cap)
{
        struct fuse_mknod_in in;
        const char *name;
        int pfd = take_entry(fs, p, a, &in, sizeof(in), &name);
        if (pfd < 0)
                return pfd;
        int r = inode_room(fs);
        if (r < 0)
                return r;
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
        return finish_create(fs, p, name, h, in.mode, in.rdev, res, cap, NULL);
}

static ssize_t op_mkdir(struct fs *fs, struct inode *p, const struct fuse_in_header *h, struct args *a, uint8_t *res,
                        size_t cap)
{
        struct fuse_mkdir_in in;
        const char *name;
        int pfd = take_entry(fs, p, a, &in, sizeof(in), &name);
        if (pfd < 0)
                return pfd;
        int r = inode_room(fs);
        if (r < 0)
                return r;
        if (mkdirat(pfd, name, host_mode(p, in.mode, true)) < 0)
                return -errno;
        return finish_create(fs, p, name, h, S_IFDIR | (in.mode & 07777), 0, res, cap, NULL);
}

static ssize_t op_symlink(struct fs *fs, struct inode *p, const struct fuse_in_header *h, struct args *a,
                          uint8_t *res, size_t cap)
{
        const char *name = take_name(a);
        const char *target = take_name(a);
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
        return finish_create(fs, p, name, h, S_IFLNK | 0777, 0, res, cap, NULL);
}

static ssize_t op_link(struct fs *fs, struct inode *p, const struct fuse_in_header *h, struct args *a, uint8_t *res,
                       size_t cap)
{
        struct fuse_link_in in;
        if (!take(a, &in, sizeof(in)))
                return -EINVAL;
        const char *name = take_name(a);
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
        return r < 0 ? r : reply_entry(&e, res, cap);
}

static ssize_t op_unlink(struct fs *fs, struct inode *p, struct args *a, bool dir)
{
        const char *name;
        int pfd = take_entry(fs, p, a, NULL, 0, &name);
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

static ssize_t op_rename(struct fs *fs, struct inode *p, struct args *a, bool v2)
{
        uint64_t newdir;
        uint32_t flags = 0;
        if (v2) {
                struct fuse_rename2_in in;
                if (!take(a, &in, sizeof(in)))
                        return -EINVAL;
                newdir = in.newdir;
                flags = in.flags;
        } else {
                struct fuse_rename_in in;
                if (!take(a, &in, sizeof(in)))
                        return -EINVAL;
                newdir = in.newdir;
        }
        const char *oldname = take_name(a);
        const char *newname = take_name(a);
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

static int open_flags(const struct inode *i, uint32_t gflags, int *ret)
{
        int fl = (int)gflags & (O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC | O_NOATIME);
        if (ro(i) && ((fl & O_ACCMODE) != O_RDONLY || (fl & O_TRUNC)))
                return -EROFS;
        if ((fl & O_ACCMODE) == O_ACCMODE)
                return -EINVAL;
        *ret = fl | O_LARGEFILE;
        return 0;
}

static uint32_t fopen_flags(struct fs *fs, struct inode *i)
{
        if (i->byname)
                return 0;
        return ro(i) ? FOPEN_KEEP_CACHE : 0;
}

static ssize_t op_open(struct fs *fs, struct inode *i, struct args *a, uint8_t *res, size_t cap, bool dir)
{
        struct fuse_open_in in;
        if (!take(a, &in, sizeof(in)))
                return -EINVAL;
        if (cap < sizeof(struct fuse_open_out))
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
        memcpy(res, &o, sizeof(o));
        return sizeof(o);
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

static ssize_t op_create(struct fs *fs, struct inode *p, const struct fuse_in_header *h, struct args *a, uint8_t *res,
                         size_t cap)
{
        struct fuse_create_in in;
        const char *name;
        int pfd = take_entry(fs, p, a, &in, sizeof(in), &name);
        if (pfd < 0)
                return pfd;
        if (cap < sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out))
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
        ssize_t n = finish_create(fs, p, name, h, S_IFREG | (in.mode & 07777), 0, res, cap, &i);
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
        memcpy(res + n, &o, sizeof(o));
        return n + (ssize_t)sizeof(o);
}

/*
 * The fd a READ or LSEEK uses: its open handle's, or in no-open mode (fh 0:
 * the kernel opened the file without asking) the inode's own read-only fd,
 * opened at first use and kept until FORGET.  Saves OPEN, FLUSH and RELEASE
 * round trips for every file the guest opens in the image root: its
 * contents never change under the guest.
 */
static int read_fd(struct fs *fs, uint64_t nodeid, uint64_t fh, bool dir)
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

static ssize_t op_read(struct fs *fs, uint64_t nodeid, struct args *a, uint8_t *res, size_t cap)
{
        struct fuse_read_in in;
        if (!take(a, &in, sizeof(in)))
                return -EINVAL;
        int fd = read_fd(fs, nodeid, in.fh, false);
        if (fd < 0)
                return fd;
        if (in.offset > (uint64_t)INT64_MAX)
                return -EINVAL;
        size_t n = in.size < cap ? in.size : cap;
        ssize_t r = pread(fd, res, n, (off_t)in.offset);
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

static ssize_t op_write(struct fs *fs, struct args *a, const struct vu_elem *e, size_t arglen, uint8_t *res,
                        size_t cap)
{
        struct fuse_write_in in;
        if (!take(a, &in, sizeof(in)))
                return -EINVAL;
        struct handle *h = fh_get(fs, in.fh, false);
        if (!h)
                return -EBADF;
        if (h->ro)
                return -EROFS;
        size_t have = e ? arglen - sizeof(in) : a->len;
        if (in.size != have || in.size > FS_MAX_WRITE || in.offset > (uint64_t)INT64_MAX ||
            cap < sizeof(struct fuse_write_out))
                return -EINVAL;
        ssize_t r = kill_privs(fs, h->ino, h->fd, in.write_flags & FUSE_WRITE_KILL_SUIDGID);
        if (r < 0)
                return r;
        if (e) {
                static struct iovec iov[VU_MAX_SEGS];
                unsigned n = payload_iov(e, sizeof(struct fuse_in_header) + sizeof(in), in.size, iov, VU_MAX_SEGS);
                if (!n)
                        return -EINVAL;
                prefault(iov, n);
                r = pwritev(h->fd, iov, (int)n, (off_t)in.offset);
        } else
                r = pwrite(h->fd, a->p, in.size, (off_t)in.offset);
        if (r < 0)
                return -errno;
        struct fuse_write_out o = {.size = (uint32_t)r};
        memcpy(res, &o, sizeof(o));
        return sizeof(o);
}

static ssize_t op_statfs(struct fs *fs, struct inode *i, uint8_t *res, size_t cap)
{
        struct statfs s;
        struct share *sh = i->sh ? i->sh : &fs->shares[0];
        if (fstatfs(sh->root_fd, &s) < 0)
                return -errno;
        struct fuse_statfs_out o = {.st = {
                .blocks = s.f_blocks, .bfree = s.f_bfree, .bavail = s.f_bavail, .files = s.f_files,
                .ffree = s.f_ffree, .bsize = (uint32_t)s.f_bsize, .namelen = (uint32_t)s.f_namelen,
                .frsize = (uint32_t)s.f_frsize}};
        if (cap < sizeof(o))
                return -EINVAL;
        memcpy(res, &o, sizeof(o));
        return sizeof(o);
}

static ssize_t op_fsync(struct fs *fs, struct args *a, bool dir)
{
        struct fuse_fsync_in in;
        if (!take(a, &in, sizeof(in)))
                return -EINVAL;
        struct handle *h = fh_get(fs, in.fh, dir);
        if (!h)
                return -EBADF;
        if (h->ro)
                return 0;
        int r = (in.fsync_flags & 1) ? fdatasync(h->fd) : fsync(h->fd);
        return r < 0 ? -errno : 0;
}

/* ---- directories ---- */

struct linux_dirent64 {
        uint64_t d_ino;
        int64_t d_off;
        unsigned short d_reclen;
        unsigned char d_type;
        char d_name[];
};

static ssize_t op_readdir(struct fs *fs, struct inode *i, struct args *a, uint8_t *res, size_t cap, bool plus)
{
        struct fuse_read_in in;
        if (!take(a, &in, sizeof(in)))
                return -EINVAL;
        /* an OPENDIR handle (fd -1 for the made-up roots), or in no-open
         * mode the inode's own */
        struct handle *h = fh_get(fs, in.fh, true);
        int dfd = h ? h->fd : read_fd(fs, i->id, in.fh, true);
        if (!h && dfd < 0)
                return dfd;
        size_t limit = in.size < cap ? in.size : cap;
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
                                struct fuse_direntplus *dp = (struct fuse_direntplus *)(res + used);
                                memset(dp, 0, need);
                                if (k >= 2 && do_lookup(fs, i, name, &dp->entry_out, NULL) < 0)
                                        memset(&dp->entry_out, 0, sizeof(dp->entry_out));
                                d = &dp->dirent;
                        } else {
                                d = (struct fuse_dirent *)(res + used);
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
                                struct fuse_direntplus *dp = (struct fuse_direntplus *)(res + used);
                                memset(dp, 0, need);
                                bool dot = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
                                if (!dot && do_lookup(fs, i, de->d_name, &dp->entry_out, NULL) < 0)
                                        memset(&dp->entry_out, 0, sizeof(dp->entry_out));
                                d = &dp->dirent;
                        } else {
                                d = (struct fuse_dirent *)(res + used);
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

/* ---- extended attributes ---- */

/* Where ownership is virtual there are no POSIX ACLs (op_setxattr): none
 * is set, and one stored before is neither read nor listed. */
static bool acl_name(const char *name)
{
        return !strcmp(name, "system.posix_acl_access") || !strcmp(name, "system.posix_acl_default");
}

/* Host name for a guest xattr name, or NULL if the guest may not use it. */
static const char *xattr_host_name(const struct inode *i, const char *name, char *buf, size_t n)
{
        if (!*name || strlen(name) > XATTR_NAME_MAX || str_has_prefix(name, FS_XATTR_PREFIX))
                return NULL;
        if (!virt(i) || str_has_prefix(name, "user."))
                return name;
        /* security.*, trusted.*, system.*: kept out of the host's namespaces */
        if (snprintf(buf, n, GUEST_NS_PREFIX "%s", name) >= (int)n)
                return NULL;
        return buf;
}

static ssize_t op_getxattr(struct fs *fs, struct inode *i, struct args *a, uint8_t *res, size_t cap)
{
        struct fuse_getxattr_in in;
        if (!take(a, &in, sizeof(in)))
                return -EINVAL;
        const char *name = take_name(a);
        if (!name)
                return -EINVAL;
        char hb[XATTR_NAME_MAX + 16];
        const char *hn = xattr_host_name(i, name, hb, sizeof(hb));
        if (!hn || i->kind != K_NORMAL || (!S_ISREG(i->type) && !S_ISDIR(i->type)) || (virt(i) && acl_name(name)))
                return -ENODATA;
        char p[64];
        int r = ino_path(fs, i, p, sizeof(p));
        if (r < 0)
                return r;
        if (in.size == 0) {
                ssize_t n = getxattr(p, hn, NULL, 0);
                if (n < 0)
                        return -errno;
                struct fuse_getxattr_out o = {.size = (uint32_t)n};
                if (cap < sizeof(o))
                        return -EINVAL;
                memcpy(res, &o, sizeof(o));
                return sizeof(o);
        }
        size_t want = in.size < cap ? in.size : cap;
        ssize_t n = getxattr(p, hn, res, want);
        return n < 0 ? -errno : n;
}

static ssize_t op_listxattr(struct fs *fs, struct inode *i, struct args *a, uint8_t *res, size_t cap)
{
        struct fuse_getxattr_in in;
        if (!take(a, &in, sizeof(in)))
                return -EINVAL;
        static char list[XATTR_LIST_MAX];
        ssize_t n = 0;
        if (i->kind == K_NORMAL && (S_ISREG(i->type) || S_ISDIR(i->type))) {
                char p[64];
                int r = ino_path(fs, i, p, sizeof(p));
                if (r < 0)
                        return r;
                n = listxattr(p, list, sizeof(list));
                if (n < 0)
                        return -errno;
        }
        /* filter in place: hide ours, map stored guest namespaces back */
        size_t out = 0;
        static char flt[XATTR_LIST_MAX];
        for (ssize_t off = 0; off < n;) {
                const char *nm = list + off;
                size_t l = strnlen(nm, (size_t)(n - off));
                off += (ssize_t)l + 1;
                const char *show = NULL;
                if (str_has_prefix(nm, GUEST_NS_PREFIX) && virt(i))
                        show = acl_name(nm + strlen(GUEST_NS_PREFIX)) ? NULL : nm + strlen(GUEST_NS_PREFIX);
                else if (str_has_prefix(nm, FS_XATTR_PREFIX))
                        show = NULL;
                else if (!virt(i) || str_has_prefix(nm, "user."))
                        show = nm;
                if (show && *show) {
                        size_t sl = strlen(show) + 1;
                        memcpy(flt + out, show, sl);
                        out += sl;
                }
        }
        if (in.size == 0) {
                struct fuse_getxattr_out o = {.size = (uint32_t)out};
                if (cap < sizeof(o))
                        return -EINVAL;
                memcpy(res, &o, sizeof(o));
                return sizeof(o);
        }
        if (out > in.size || out > cap)
                return -ERANGE;
        memcpy(res, flt, out);
        return (ssize_t)out;
}

static ssize_t op_setxattr(struct fs *fs, struct inode *i, struct args *a)
{
        struct fuse_setxattr_in in;
        /* FUSE_SETXATTR_EXT is not negotiated: the short form */
        if (!take(a, &in, offsetof(struct fuse_setxattr_in, setxattr_flags)))
                return -EINVAL;
        const char *name = take_name(a);
        if (!name || in.size != a->len || in.size > XATTR_SIZE_MAX)
                return -EINVAL;
        RO_CHECK(i);
        /* POSIX ACLs: the guest kernel enforces and maps them only with
         * FUSE_POSIX_ACL, which we do not negotiate (it would cost a
         * GETXATTR per inode at its first permission check).  Stored as a
         * guest xattr, an ACL meant nothing and changed no mode: `cp -p`
         * and `cp -a`, which set the mode as an ACL where one is taken,
         * left files 0600.  Refused as on a file system without ACLs, they
         * fall back to chmod.  Passed through, the host's kernel applies
         * one to the host inode, as before. */
        if (virt(i) && acl_name(name))
                return -EOPNOTSUPP;
        char hb[XATTR_NAME_MAX + 16];
        const char *hn = xattr_host_name(i, name, hb, sizeof(hb));
        if (!hn)
                return -EPERM;
        if (i->kind != K_NORMAL || (!S_ISREG(i->type) && !S_ISDIR(i->type)))
                return -EPERM;
        char p[64];
        int r = ino_path(fs, i, p, sizeof(p));
        if (r < 0)
                return r;
        return setxattr(p, hn, a->p, in.size, (int)in.flags) < 0 ? -errno : 0;
}

static ssize_t op_removexattr(struct fs *fs, struct inode *i, struct args *a)
{
        const char *name = take_name(a);
        if (!name)
                return -EINVAL;
        RO_CHECK(i);
        char hb[XATTR_NAME_MAX + 16];
        const char *hn = xattr_host_name(i, name, hb, sizeof(hb));
        if (!hn)
                return -EPERM;
        if (i->kind != K_NORMAL || (!S_ISREG(i->type) && !S_ISDIR(i->type)))
                return -ENODATA;
        char p[64];
        int r = ino_path(fs, i, p, sizeof(p));
        if (r < 0)
                return r;
        return removexattr(p, hn) < 0 ? -errno : 0;
}

/* ---- the rest ---- */

static ssize_t op_readlink(struct fs *fs, struct inode *i, uint8_t *res, size_t cap)
{
        if (!S_ISLNK(i->type) || i->kind != K_NORMAL)
                return -EINVAL;
        int fd = ino_fd(fs, i);
        if (fd < 0)
                return fd;
        char buf[PATH_MAX];
        ssize_t n = readlinkat(fd, "", buf, sizeof(buf));
        if (n < 0)
                return -errno;
        if ((size_t)n > cap)
                return -ERANGE;
        memcpy(res, buf, (size_t)n);
        return n;
}

static ssize_t op_lseek(struct fs *fs, uint64_t nodeid, struct args *a, uint8_t *res, size_t cap)
{
        struct fuse_lseek_in in;
        if (!take(a, &in, sizeof(in)))
                return -EINVAL;
        int fd = read_fd(fs, nodeid, in.fh, false);
        if (fd < 0)
                return fd;
        if (in.whence > SEEK_HOLE || in.offset > (uint64_t)INT64_MAX || cap < sizeof(struct fuse_lseek_out))
                return -EINVAL;
        off_t r = lseek(fd, (off_t)in.offset, (int)in.whence);
        if (r < 0)
                return -errno;
        struct fuse_lseek_out o = {.offset = (uint64_t)r};
        memcpy(res, &o, sizeof(o));
        return sizeof(o);
}

static ssize_t op_fallocate(struct fs *fs, struct args *a)
{
        struct fuse_fallocate_in in;
        if (!take(a, &in, sizeof(in)))
                return -EINVAL;
        struct handle *h = fh_get(fs, in.fh, false);
        if (!h)
                return -EBADF;
        if (h->ro)
                return -EROFS;
        if (in.offset > (uint64_t)INT64_MAX || in.length > (uint64_t)INT64_MAX)
                return -EINVAL;
        return fallocate(h->fd, (int)in.mode, (off_t)in.offset, (off_t)in.length) < 0 ? -errno : 0;
}

/* DESTROY, and fs_free: every handle, every inode but the root. */
static void drop_all(struct fs *fs)
{
        for (unsigned b = 0; b < HSIZE; b++) {
                while (fs->handles[b]) {
                        struct handle *h = fs->handles[b];
                        fs->handles[b] = h->next;
                        if (h->fd >= 0)
                                close(h->fd);
                        free(h);
                }
        }
        fs->nhandles = 0;
        fs_reap(fs);
        for (size_t b = 0; b < fs->nbuckets; b++) {
                for (struct inode *i = fs->by_id[b], *next; i; i = next) {
                        next = i->next_id;
                        if (i != fs->root)
                                ino_free(i);
                }
                fs->by_id[b] = fs->by_key[b] = NULL;
        }
        for (size_t k = 0; k < fs->nshares; k++)
                fs->shares[k].file = NULL;
        fs->lru_head = fs->lru_tail = NULL;
        fs->ncached = 0;
        fs->ninodes = 0;
        if (fs->root) {
                fs->root->nopen = fs->root->nchildren = 0;
                ino_insert(fs, fs->root);
        }
}

static size_t handle_one(struct fs *fs, const uint8_t *in, size_t inlen, const struct vu_elem *e, uint8_t *out,
                         size_t outcap)
{
        struct fuse_in_header h;
        if (inlen < sizeof(h))
                return 0; /* nothing to answer to: the guest's own malformed request */
        memcpy(&h, in, sizeof(h));
        struct args a = {.p = in + sizeof(h), .len = h.len >= sizeof(h) && h.len <= inlen ? h.len - sizeof(h) : 0};
        /* requests that get no reply come without room for one */
        switch (h.opcode) {
        case FUSE_FORGET: {
                struct fuse_forget_in f;
                if (take(&a, &f, sizeof(f)))
                        forget(fs, h.nodeid, f.nlookup);
                return 0;
        }
        case FUSE_BATCH_FORGET: {
                struct fuse_batch_forget_in b;
                if (!take(&a, &b, sizeof(b)))
                        return 0;
                for (uint32_t k = 0; k < b.count; k++) {
                        struct fuse_forget_one one;
                        if (!take(&a, &one, sizeof(one)))
                                break;
                        forget(fs, one.nodeid, one.nlookup);
                }
                return 0;
        }
        case FUSE_INTERRUPT:
                return 0;
        }
        if (outcap < sizeof(struct fuse_out_header))
                return 0; /* no room to answer: the guest's own malformed request */
        uint8_t *res = out + sizeof(struct fuse_out_header);
        size_t cap = outcap - sizeof(struct fuse_out_header);
        ssize_t r;
        struct inode *i = NULL;
        /* only a write's payload may stay in guest memory (see vu_handler) */
        bool tail = e && h.opcode == FUSE_WRITE && h.len == e->in_len && h.len > inlen &&
                    inlen >= sizeof(h) + sizeof(struct fuse_write_in);
        if (h.len < sizeof(h) || (h.len > inlen && !tail)) {
                r = -EINVAL;
                goto done;
        }
        if (tail)
                a.len = inlen - sizeof(h);
        switch (h.opcode) {
        case FUSE_INIT:
                r = op_init(fs, &a, res, cap);
                goto done;
        }
        if (!fs->inited) {
                r = -EIO;
                goto done;
        }
        switch (h.opcode) {
        case FUSE_DESTROY:
                drop_all(fs);
                fs->inited = false;
                r = 0;
                goto done;
        case FUSE_READ:
                r = op_read(fs, h.nodeid, &a, res, cap);
                goto done;
        case FUSE_WRITE:
                r = op_write(fs, &a, tail ? e : NULL, h.len - sizeof(h), res, cap);
                goto done;
        case FUSE_LSEEK:
                r = op_lseek(fs, h.nodeid, &a, res, cap);
                goto done;
        case FUSE_FALLOCATE:
                r = op_fallocate(fs, &a);
                goto done;
        case FUSE_FLUSH:
                /* writes reach the host file before they are answered, and
                 * locks are the guest kernel's own: nothing to flush, and
                 * ENOSYS tells the kernel to stop asking at every close */
                r = -ENOSYS;
                goto done;
        case FUSE_RELEASE:
        case FUSE_RELEASEDIR: {
                struct fuse_release_in rel;
                r = take(&a, &rel, sizeof(rel)) ? fh_release(fs, rel.fh, h.opcode == FUSE_RELEASEDIR) : -EINVAL;
                goto done;
        }
        case FUSE_FSYNC:
        case FUSE_FSYNCDIR:
                r = op_fsync(fs, &a, h.opcode == FUSE_FSYNCDIR);
                goto done;
        case FUSE_SYNCFS:
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
                r = 0;
                goto done;
        }
        i = ino_get(fs, h.nodeid);
        if (!i) {
                r = -EBADF;
                goto done;
        }
        switch (h.opcode) {
        case FUSE_LOOKUP: r = op_lookup(fs, i, &a, res, cap); break;
        case FUSE_STATFS: r = op_statfs(fs, i, res, cap); break;
        case FUSE_GETATTR: r = reply_attr(fs, i, res, cap); break;
        case FUSE_SETATTR: r = op_setattr(fs, i, &a, res, cap); break;
        case FUSE_READLINK: r = op_readlink(fs, i, res, cap); break;
        case FUSE_SYMLINK: r = op_symlink(fs, i, &h, &a, res, cap); break;
        case FUSE_MKNOD: r = op_mknod(fs, i, &h, &a, res, cap); break;
        case FUSE_MKDIR: r = op_mkdir(fs, i, &h, &a, res, cap); break;
        case FUSE_UNLINK: r = op_unlink(fs, i, &a, false); break;
        case FUSE_RMDIR: r = op_unlink(fs, i, &a, true); break;
        case FUSE_RENAME: r = op_rename(fs, i, &a, false); break;
        case FUSE_RENAME2: r = op_rename(fs, i, &a, true); break;
        case FUSE_LINK: r = op_link(fs, i, &h, &a, res, cap); break;
        case FUSE_OPEN: r = op_open(fs, i, &a, res, cap, false); break;
        case FUSE_OPENDIR: r = op_open(fs, i, &a, res, cap, true); break;
        case FUSE_CREATE: r = op_create(fs, i, &h, &a, res, cap); break;
        case FUSE_READDIR: r = op_readdir(fs, i, &a, res, cap, false); break;
        case FUSE_READDIRPLUS: r = op_readdir(fs, i, &a, res, cap, true); break;
        /* The immutable image root has no xattrs a guest could see (layer
         * xattrs are not applied; ours are hidden): ENOSYS makes the
         * guest kernel stop asking for the whole mount, where `ls -l`
         * and overlayfs would otherwise ask for every entry. */
        case FUSE_GETXATTR: r = fs->noopen ? -ENOSYS : op_getxattr(fs, i, &a, res, cap); break;
        case FUSE_LISTXATTR: r = fs->noopen ? -ENOSYS : op_listxattr(fs, i, &a, res, cap); break;
        case FUSE_SETXATTR: r = op_setxattr(fs, i, &a); break;
        case FUSE_REMOVEXATTR: r = op_removexattr(fs, i, &a); break;
        case FUSE_ACCESS: {
                struct fuse_access_in ai;
                if (!take(&a, &ai, sizeof(ai)))
                        r = -EINVAL;
                else
                        r = (ro(i) && (ai.mask & W_OK)) ? -EROFS : 0;
                break;
        }
        default: r = -ENOSYS; break;
        }
done:;
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

static int share_open(struct share *sh, const struct fs_config *c, struct msb_error *err)
{
        sh->c = *c;
        sh->root_fd = -1;
        const char *dir = c->path;
        _cleanup_free_ char *copy = NULL;
        if (!c->path || c->path[0] != '/')
                return msb_err(err, EINVAL, "%s: not an absolute path", c->path ? c->path : "(null)");
        if (c->single_file) {
                copy = xstrdup(c->path);
                char *slash = strrchr(copy, '/');
                if (!slash[1])
                        return msb_err(err, EINVAL, "%s: not a file path", c->path);
                sh->file_name = xstrdup(slash + 1);
                *slash = 0;
                dir = *copy ? copy : "/";
        }
        sh->root_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (sh->root_fd < 0)
                return msb_err_errno(err, errno, "cannot open %s", dir);
        if (!c->single_file) {
                char p[64], v[4];
                procpath(p, sizeof(p), sh->root_fd);
                sh->marked = getxattr(p, FS_XATTR_MARK, v, sizeof(v)) >= 0;
        }
        if (c->single_file) {
                struct stat st;
                if (fstatat(sh->root_fd, sh->file_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        return msb_err(err, EINVAL, "%s: not a regular file", c->path);
        }
        return 0;
}

static void share_close(struct share *sh)
{
        if (sh->root_fd >= 0)
                close(sh->root_fd);
        free(sh->file_name);
}

int fs_new_multi(const struct fs_config *c, size_t n, bool multi, struct fs **ret, struct msb_error *err)
{
        if (n == 0 || (!multi && n != 1))
                return msb_err(err, EINVAL, "no share given");
        struct fs *fs = xcalloc(1, sizeof(*fs));
        fs->shares = xcalloc(n, sizeof(*fs->shares));
        fs->multi = multi;
        fs->noopen = !multi && c[0].immutable && c[0].read_only && !c[0].single_file;
        fs->next_ino_id = 2; /* 1 is the root */
        fs->next_fh = 1;
        fs->nbuckets = INO_BUCKETS_MIN;
        fs->by_id = xcalloc(fs->nbuckets, sizeof(*fs->by_id));
        fs->by_key = xcalloc(fs->nbuckets, sizeof(*fs->by_key));
        fs->lim = (struct fs_limits){.handles = FS_MAX_HANDLES, .inodes = FS_MAX_INODES, .inode_fds = FS_MAX_INODE_FDS};
        for (size_t k = 0; k < n; k++) {
                fs->shares[k].root_fd = -1;
                fs->nshares = k + 1;
                int r = share_open(&fs->shares[k], &c[k], err);
                if (r < 0) {
                        fs_free(fs);
                        return r;
                }
        }
        struct inode *root = xcalloc(1, sizeof(*root));
        root->id = FUSE_ROOT_ID;
        root->nlookup = 1;
        root->type = S_IFDIR;
        root->fd = -1;
        root->rfd = -1;
        root->pinned = true;
        if (multi) {
                root->kind = K_TOP;
        } else if (c[0].single_file) {
                root->kind = K_FILEROOT;
                root->sh = &fs->shares[0];
        } else {
                struct stat st;
                root->kind = K_NORMAL;
                root->sh = &fs->shares[0];
                root->fd = fcntl(fs->shares[0].root_fd, F_DUPFD_CLOEXEC, 3);
                if (root->fd < 0 || fstat(root->fd, &st) < 0) {
                        msb_err_errno(err, errno, "cannot stat %s", c[0].path);
                        if (root->fd >= 0)
                                close(root->fd);
                        free(root);
                        fs_free(fs);
                        return -EIO;
                }
                root->dev = st.st_dev;
                root->ino = st.st_ino;
        }
        fs->root = root;
        ino_insert(fs, root);
        *ret = fs;
        return 0;
}

int fs_new(const struct fs_config *c, struct fs **ret, struct msb_error *err)
{
        return fs_new_multi(c, 1, false, ret, err);
}

void fs_free(struct fs *fs)
{
        if (!fs)
                return;
        drop_all(fs);
        if (fs->root)
                ino_free(fs->root);
        for (size_t k = 0; k < fs->nshares; k++)
                share_close(&fs->shares[k]);
        free(fs->shares);
        free(fs->by_id);
        free(fs->by_key);
        free(fs);
}

void fs_set_limits(struct fs *fs, const struct fs_limits *l)
{
        fs->lim = *l;
        /* a request needs a few inodes and fds at least (a rename: two
         * parents and what moved) */
        if (fs->lim.inodes < FS_MIN_LIMIT)
                fs->lim.inodes = FS_MIN_LIMIT;
        if (fs->lim.inode_fds < FS_MIN_LIMIT)
                fs->lim.inode_fds = FS_MIN_LIMIT;
}

void fs_get_limits(const struct fs *fs, struct fs_limits *ret)
{
        *ret = fs->lim;
}

void fs_usage(const struct fs *fs, struct fs_limits *ret)
{
        *ret = (struct fs_limits){.handles = fs->nhandles, .inodes = fs->ninodes, .inode_fds = fs->ncached};
}

size_t fs_host_dirs(struct fs *fs, int *fds, unsigned *flags, size_t max)
{
        size_t n = 0;
        for (size_t k = 0; k < fs->nshares; k++, n++)
                if (n < max) {
                        fds[n] = fs->shares[k].root_fd;
                        flags[n] = (fs->shares[k].c.read_only ? JAIL_DIR_RO : 0) |
                                   (fs->shares[k].c.single_file ? JAIL_DIR_FLAT : 0);
                }
        if (fs->root && fs->root->fd >= 0) {
                if (n < max) {
                        fds[n] = fs->root->fd;
                        flags[n] = fs->root->sh->c.read_only ? JAIL_DIR_RO : 0;
                }
                n++;
        }
        return n;
}
