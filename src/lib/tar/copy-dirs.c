/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The copy mode's directories (a copy out of a sandbox, msb cp): their
 * modes and times are set once the copy is in them, deepest first.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "tar.h"
#include "common/util.h"

/* A copy's directory gets its mode and time once the copy is in it.
 * -E2BIG past TAR_COPY_MAX_DIR_BYTES. */
int tar_dir_defer(struct tar_in *t, int pfd, const char *dir, const char *base, const struct entry *e)
{
        struct stat st;
        if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
                return 0; /* nothing of ours to finish */
        t->dirs_bytes += sizeof(struct dirmeta) + strlen(dir) + strlen(base) + 2;
        if (t->dirs_bytes > TAR_COPY_MAX_DIR_BYTES)
                return -E2BIG;
        if (t->ndirs == t->capdirs)
                t->dirs = xrealloc(t->dirs, (t->capdirs = t->capdirs ? 2 * t->capdirs : 64) * sizeof(*t->dirs));
        t->dirs[t->ndirs++] = (struct dirmeta){.path = *dir ? xasprintf("%s/%s", dir, base) : xstrdup(base),
                                               .mode = (mode_t)(e->mode & 01777) & ~t->copy_umask,
                                               .mtime = tar_entry_mtime(e), .dev = st.st_dev, .ino = st.st_ino};
        return 0;
}

/* Deepest first, so a directory's time is set after its subdirectories'
 * (which would change it).  Each is found again beneath the root, never
 * through a symlink at its own name. */
void tar_dirs_finish(struct tar_in *t, int rootfd)
{
        for (size_t i = t->ndirs; i-- > 0;) {
                struct dirmeta *d = &t->dirs[i];
                int fd = tar_open_beneath(rootfd, d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, true);
                struct stat st;
                /* the very directory this copy made or entered, not one
                 * swapped in under its name since */
                if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_dev != d->dev || st.st_ino != d->ino)) {
                        close(fd);
                        fd = -1;
                }
                if (fd >= 0) {
                        struct timespec ts[2] = {d->mtime, d->mtime};
                        (void)!fchmod(fd, d->mode);
                        futimens(fd, ts);
                        close(fd);
                }
        }
}

void tar_dirs_free(struct tar_in *t)
{
        for (size_t i = 0; i < t->ndirs; i++)
                free(t->dirs[i].path);
        free(t->dirs);
}
