/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The inodes msb-fsd holds for its guest (docs/fsd.md "Limits"): the
 * tables by node id and by host inode, the fd cache that keeps at most
 * fs->lim.inode_fds of their fds open, and their lifetime (lookups the
 * guest holds, open handles, children that may need them to reopen).
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

unsigned hash64(uint64_t v, size_t nbuckets)
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

struct inode *ino_get(struct fs *fs, uint64_t id)
{
        for (struct inode *i = fs->by_id[hash64(id, fs->nbuckets)]; i; i = i->next_id)
                if (i->id == id)
                        return i;
        return NULL;
}

/* The same host inode in two shares is two inodes: each has its policy. */
struct inode *ino_find(struct fs *fs, struct share *sh, dev_t dev, ino_t ino)
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

void ino_insert(struct fs *fs, struct inode *i)
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

void ino_rekey(struct fs *fs, struct inode *i, dev_t dev, ino_t ino)
{
        ino_unlink_key(fs, i);
        i->dev = dev;
        i->ino = ino;
        unsigned b = hkey(dev, ino, fs->nbuckets);
        i->next_key = fs->by_key[b];
        fs->by_key[b] = i;
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
void lru_update(struct fs *fs, struct inode *i)
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
void lru_trim(struct fs *fs)
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
void ino_put(struct fs *fs, struct inode *i)
{
        if (i != fs->root && !i->dead && !i->nlookup && !i->nopen && !i->nchildren)
                ino_kill(fs, i);
}

void ino_free(struct inode *i)
{
        ino_close_fds(i);
        free(i->name);
        free(i);
}

/* Free what the request dropped. */
void fs_reap(struct fs *fs)
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
void ino_move(struct fs *fs, struct inode *i, struct inode *parent, const char *name)
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
int ino_fd(struct fs *fs, struct inode *i)
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

/* A new inode, counted against fs->lim.inodes; NULL when it is full (ENFILE)
 * or memory is short. */
struct inode *ino_new(struct fs *fs, struct share *sh, int *err)
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
int ino_take(struct fs *fs, struct share *sh, struct inode *parent, const char *name, int fd,
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

void forget(struct fs *fs, uint64_t id, uint64_t n)
{
        struct inode *i = ino_get(fs, id);
        if (!i || i == fs->root)
                return;
        i->nlookup = n >= i->nlookup ? 0 : i->nlookup - n;
        ino_put(fs, i);
}

/* DESTROY, and fs_free: every handle, every inode but the root. */
void fs_drop_all(struct fs *fs)
{
        fh_drop_all(fs);
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
