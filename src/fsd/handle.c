/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The files and directories the guest has open (OPEN, OPENDIR, CREATE):
 * a table of handles, each a host fd and a reference on its inode, at most
 * fs->lim.handles of them.
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

struct handle *fh_get(struct fs *fs, uint64_t id, bool dir)
{
        for (struct handle *h = fs->handles[hash64(id, HSIZE)]; h; h = h->next)
                if (h->id == id)
                        return h->dir == dir ? h : NULL;
        return NULL;
}

/* A handle for fd (consumed only on success) on inode i. */
int fh_new(struct fs *fs, int fd, bool dir, bool read_only, struct inode *i, uint64_t *ret)
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

int fh_release(struct fs *fs, uint64_t id, bool dir)
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

void fh_drop_all(struct fs *fs)
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
}
