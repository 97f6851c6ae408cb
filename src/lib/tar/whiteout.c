/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI whiteouts (".wh.NAME", ".wh..wh..opq") and what they need: the set
 * of paths (and, for copies' hard links, inodes) this layer placed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "tar.h"
#include "common/error.h"
#include "common/util.h"

/*
 * What this layer has placed, by path, for opaque whiteouts: they hide the
 * lower layers' content of a directory, not the entries the same layer put
 * there (which may come before the marker in the stream: tar writers sort
 * by name, and "-x" sorts before ".wh..wh..opq").  64-bit hashes of the
 * cleaned paths, open addressing (struct placed); at most TAR_MAX_ENTRIES
 * per layer.
 */

/* FNV-1a, one byte at a time, so a path and its prefixes share one pass */
#define FNV_INIT 14695981039346656037ULL
static uint64_t fnv_byte(uint64_t h, uint8_t c)
{
        return (h ^ c) * 1099511628211ULL;
}

/* 0 marks an empty slot: no path hashes to it */
static uint64_t nonzero(uint64_t h)
{
        return h ? h : 1;
}

/* The hash of the path dir/name ("" dir: name alone). */
static uint64_t path_hash(const char *dir, const char *name)
{
        uint64_t h = FNV_INIT;
        for (const char *p = dir; *p; p++)
                h = fnv_byte(h, (uint8_t)*p);
        if (*dir)
                h = fnv_byte(h, '/');
        for (const char *p = name; *p; p++)
                h = fnv_byte(h, (uint8_t)*p);
        return nonzero(h);
}

void tar_placed_add(struct placed *s, uint64_t h)
{
        if (2 * (s->n + 1) > s->cap) {
                struct placed g = {.cap = s->cap ? 2 * s->cap : 1024};
                g.v = xcalloc(g.cap, sizeof(*g.v));
                for (size_t i = 0; i < s->cap; i++)
                        if (s->v[i])
                                tar_placed_add(&g, s->v[i]);
                free(s->v);
                *s = g;
        }
        size_t i = h & (s->cap - 1);
        while (s->v[i] && s->v[i] != h)
                i = (i + 1) & (s->cap - 1);
        if (!s->v[i]) {
                s->v[i] = h;
                s->n++;
        }
}

/* Add dir/name and every directory above it (implied parents count as
 * placed: their lower content is hidden below them, not they themselves). */
void tar_placed_add_path(struct placed *s, const char *dir, const char *name)
{
        uint64_t h = FNV_INIT;
        for (const char *p = dir; *p; p++) {
                if (*p == '/')
                        tar_placed_add(s, nonzero(h)); /* an ancestor */
                h = fnv_byte(h, (uint8_t)*p);
        }
        if (*dir) {
                tar_placed_add(s, nonzero(h));
                h = fnv_byte(h, '/');
        }
        for (const char *p = name; *p; p++)
                h = fnv_byte(h, (uint8_t)*p);
        tar_placed_add(s, nonzero(h));
}

/* A copy's own files by inode: a hard link may name only those (names can
 * be aimed, and hashes of names collide on purpose). */
uint64_t tar_ino_hash(const struct stat *st)
{
        uint64_t h = FNV_INIT;
        for (size_t i = 0; i < sizeof(st->st_dev); i++)
                h = fnv_byte(h, (uint8_t)(st->st_dev >> (8 * i)));
        for (size_t i = 0; i < sizeof(st->st_ino); i++)
                h = fnv_byte(h, (uint8_t)(st->st_ino >> (8 * i)));
        return nonzero(h);
}

bool tar_placed_has(const struct placed *s, uint64_t h)
{
        if (!s->cap)
                return false;
        for (size_t i = h & (s->cap - 1); s->v[i]; i = (i + 1) & (s->cap - 1))
                if (s->v[i] == h)
                        return true;
        return false;
}

/* Opaque whiteout of the directory dfd (path dir, "" for the root): remove
 * what earlier layers put below it, keeping what this layer placed (and,
 * below a kept directory, again only what this layer placed). */
static int clear_dir(const struct placed *mine, int dfd, const char *dir, int depth)
{
        if (depth > (int)(TAR_MAX_PATH / 2))
                return -ELOOP;
        DIR *dd = fdopendir_dup(dfd);
        if (!dd)
                return -errno;
        struct dirent *de;
        int r = 0;
        while (r == 0 && (de = readdir(dd))) {
                const char *n = de->d_name;
                if (!strcmp(n, ".") || !strcmp(n, ".."))
                        continue;
                if (!tar_placed_has(mine, path_hash(dir, n))) {
                        r = rm_rf_at(dfd, n);
                        continue;
                }
                int sub = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        continue; /* a file (or symlink) of this layer: kept */
                _cleanup_free_ char *path = *dir ? xasprintf("%s/%s", dir, n) : xstrdup(n);
                r = clear_dir(mine, sub, path, depth + 1);
                close(sub);
        }
        closedir(dd);
        return r;
}

/* OCI whiteouts: ".wh.NAME" removes NAME, ".wh..wh..opq" what earlier
 * layers put in its directory. */
int tar_apply_whiteout(struct tar_in *t, int pfd, const char *dir, const char *base, struct entry *e,
                          struct msb_error *err)
{
        int r;
        if (!strcmp(base, ".wh..wh..opq")) {
                _cleanup_close_ int d = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                r = d < 0 ? -errno : clear_dir(&t->mine, d, dir, 0);
        } else if (!base[4] || !strcmp(base + 4, ".") || !strcmp(base + 4, ".."))
                return msb_err(err, EINVAL, "entry '%s': malformed whiteout", e->path);
        else
                r = rm_rf_at(pfd, base + 4);
        if (r < 0)
                return msb_err_errno(err, r, "entry '%s': whiteout failed", e->path);
        return tar_skip_body(t, e->size, e, err);
}
