/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A server's life: its shares opened and checked (fs_new, fs_new_multi),
 * its limits, the directories it reaches the host through, its teardown.
 * The requests are dispatch.c's; see fs.h.
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
#include "common/jail.h"
#include "fsd/server.h"

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
        fs_drop_all(fs);
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
