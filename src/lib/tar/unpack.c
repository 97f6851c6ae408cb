/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unpacking a tar stream into a directory: OCI layers (ustar with GNU long
 * names and pax headers, gzip, zstd or plain, OCI whiteouts) and copies out
 * of a sandbox (msb cp, struct tar_opts.copy).  Layers are untrusted input,
 * and so is what a guest sends.  This file: tar_unpack(), its loop over
 * entries and the image's budget.
 *
 * Confinement: every entry is placed through a parent directory fd opened
 * with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) from the rootfs fd,
 * and the final component is created with *at() calls that never follow a
 * symlink (O_NOFOLLOW / O_EXCL / AT_SYMLINK_NOFOLLOW).  Relative symlinks
 * inside the image (lib -> usr/lib) keep working; any entry whose path would
 * leave the root (absolute names, "..", a symlink pointing outside) rejects
 * the whole layer.  Hard link targets are resolved the same way.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/vstat.h"
#include "tar.h"
#include "common/error.h"
#include "common/util.h"

/* Count n more bytes against the image's budget: what it writes, and what
 * it makes us decompress only to throw away (a directory "with a body").
 * -EFBIG past it. */
int tar_charge_bytes(struct tar_in *t, uint64_t n)
{
        if (n > t->o->max_bytes - t->o->bytes)
                return -EFBIG;
        t->o->bytes += n;
        return 0;
}

/* code: EFBIG (bytes) or E2BIG (entries) */
int tar_budget_error(struct tar_in *t, const struct entry *e, int code, struct msb_error *err)
{
        const char *what = t->o->copy ? "the copy is" : "the image unpacks to";
        if (code == EFBIG)
                return msb_err(err, EFBIG,
                               "entry '%s': %s more than %llu bytes (raise unpack-max-bytes in msb's config file)",
                               e->path, what, (unsigned long long)t->o->max_bytes);
        return msb_err(err, E2BIG,
                       "entry '%s': %s more than %llu entries (raise unpack-max-entries in msb's config file)",
                       e->path, t->o->copy ? "the copy has" : "the image has", (unsigned long long)t->o->max_entries);
}

int tar_skip_body(struct tar_in *t, uint64_t n, const struct entry *e, struct msb_error *err)
{
        if (tar_charge_bytes(t, n) < 0)
                return tar_budget_error(t, e, EFBIG, err);
        int r = tar_skip(t, n);
        if (r < 0)
                return msb_err(err, EIO, "entry '%s': layer is truncated", e->path);
        return 0;
}

/* The parent directory of an entry, made as needed; whiteouts (in an
 * image) make none.  -ENOENT only for a whiteout whose directory is not
 * there. */
static int entry_parent(struct tar_in *t, int rootfd, const char *dir, bool whiteout, struct entry *e,
                        struct msb_error *err)
{
        int pfd = whiteout ? tar_open_beneath(rootfd, dir, O_PATH | O_DIRECTORY, false) : tar_open_parent(rootfd, dir, t->o);
        if (pfd >= 0 || (whiteout && pfd == -ENOENT))
                return pfd;
        if (pfd == -E2BIG)
                return tar_budget_error(t, e, E2BIG, err);
        if ((pfd == -EXDEV || pfd == -ELOOP) && t->o->copy)
                return msb_err(err, EXDEV, "entry '%s': its directory is reached through a symlink, which a copy "
                                           "never follows",
                               e->path);
        if (pfd == -EXDEV || pfd == -ELOOP)
                return msb_err(err, EXDEV, "entry '%s': its directory resolves outside the image root (through a "
                                           "symlink)",
                               e->path);
        return msb_err_errno(err, pfd, "entry '%s': cannot open its directory", e->path);
}

static int apply_entry(struct tar_in *t, int rootfd, struct entry *e, struct tar_stats *st, struct msb_error *err)
{
        const char *why = NULL;
        _cleanup_free_ char *path = tar_clean_path(e->path, &why);
        if (!path)
                return msb_err(err, EINVAL, "entry '%s': %s", e->path, why);
        /* a copy is one tree, under the name asked for: nothing beside it */
        const char *top = t->o->copy_top;
        size_t tn = top ? strlen(top) : 0;
        if (top && strcmp(top, ".") && *path && (strncmp(path, top, tn) || (path[tn] && path[tn] != '/')))
                return msb_err(err, EXDEV, "entry '%s' is not under '%s', the one name the copy may create", e->path,
                               top);
        /* the root directory itself: nothing to place; a copy has no use
         * for special files */
        if (!*path || (t->o->copy && tar_is_special(e->type))) {
                st->skipped_devices += *path ? 1 : 0;
                return tar_skip_body(t, e->size, e, err);
        }
        const char *dir, *base;
        tar_split(path, &dir, &base);
        /* a whiteout in a directory that does not exist removes nothing,
         * and makes no directory either; in a copy it is a name */
        bool whiteout = !t->o->copy && !strncmp(base, ".wh.", 4);
        _cleanup_close_ int pfd = entry_parent(t, rootfd, dir, whiteout, e, err);
        if (whiteout && pfd == -ENOENT)
                return tar_skip_body(t, e->size, e, err);
        if (pfd < 0)
                return pfd;
        if (whiteout)
                return tar_apply_whiteout(t, pfd, dir, base, e, err);
        if (e->uid > MSB_ID_MAX || e->gid > MSB_ID_MAX)
                return msb_err(err, EINVAL, "entry '%s': owner %llu:%llu is out of range", e->path,
                               (unsigned long long)e->uid, (unsigned long long)e->gid);
        if (t->o->entries++ >= t->o->max_entries)
                return tar_budget_error(t, e, E2BIG, err);
        if (!t->o->copy)
                tar_placed_add_path(&t->mine, dir, base);
        bool exists_dir;
        int r = tar_make_room(t, pfd, base, e, &exists_dir, err);
        if (r == 0)
                r = tar_place(t, rootfd, pfd, dir, base, exists_dir, e, st, err);
        /* body bytes still to skip; regular files consumed theirs */
        bool file = e->type == '0' || e->type == '\0' || e->type == '7';
        return r < 0 ? r : tar_skip_body(t, file ? 0 : e->size, e, err);
}

/* The process's umask, read without changing it (umask(2) would, for
 * every thread); the strictest guess if /proc cannot say. */
static mode_t current_umask(void)
{
        _cleanup_free_ char *st = NULL;
        if (read_file_at(AT_FDCWD, "/proc/self/status", 1 << 16, &st, NULL) == 0) {
                const char *u = strstr(st, "\nUmask:\t");
                if (u)
                        return (mode_t)strtoul(u + 8, NULL, 8) & 0777;
        }
        return 0777;
}

/* One header block and what follows it. */
static int one_entry(struct tar_in *t, int rootfd, const uint8_t *h, struct entry *e, struct ext *x,
                     struct tar_stats *st, struct msb_error *err)
{
        if (!tar_checksum_ok(h))
                return msb_err(err, EINVAL, "%s is not a valid tar (bad header checksum at offset %llu)", tar_what(t),
                               (unsigned long long)(t->pos - 512));
        if (++st->entries > TAR_MAX_ENTRIES)
                return msb_err(err, E2BIG, "%s has more than %u entries", tar_what(t), TAR_MAX_ENTRIES);
        tar_entry_clear(e);
        if (tar_parse_header(h, e) < 0)
                return msb_err(err, EINVAL, "%s has a malformed tar header", tar_what(t));
        if (e->type == 'x' || e->type == 'g' || e->type == 'L' || e->type == 'K')
                return tar_read_ext(t, e, x, err);
        tar_entry_names(e, h, x);
        if (strlen(e->path) >= TAR_MAX_PATH || strlen(e->link) >= TAR_MAX_PATH)
                return msb_err(err, ENAMETOOLONG, "%s has a path longer than %u bytes", tar_what(t), TAR_MAX_PATH);
        int r = apply_entry(t, rootfd, e, st, err);
        if (r < 0)
                return r;
        /* the padding after the data */
        uint64_t padded = (e->size + 511) & ~(uint64_t)511;
        if (tar_skip(t, padded - e->size) < 0)
                return msb_err(err, EIO, "%s is truncated", tar_what(t));
        return 0;
}

int tar_unpack(int fd, int rootfd, struct tar_opts *opts, struct tar_stats *stats, struct msb_error *err)
{
        struct tar_opts defaults = TAR_OPTS_DEFAULT;
        struct tar_in t = {.fd = -1, .o = opts ? opts : &defaults, .uid = geteuid(), .gid = getegid(),
                           .umask = current_umask()};
        t.copy_umask = geteuid() == 0 ? 0 : t.umask;
        struct tar_stats st = {0};
        struct entry e = {0};
        struct ext x = {.size = UINT64_MAX};
        uint8_t h[512];
        int r = tar_stream_open(&t, fd, err);
        while (r >= 0 && (r = tar_next_header(&t, h, &st, err)) == 1)
                r = one_entry(&t, rootfd, h, &e, &x, &st, err);
        /* a copy that failed half way still gets its directories' modes
         * back (an existing one it merged into among them) */
        tar_dirs_finish(&t, rootfd);
        tar_dirs_free(&t);
        tar_entry_clear(&e);
        tar_ext_clear(&x);
        free(t.mine.v);
        tar_stream_close(&t);
        if (r == 0 && stats)
                *stats = st;
        return r;
}
