/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Placing one entry in its (already opened) directory: regular files,
 * directories, symlinks, hard links and special files, each made without
 * following a symlink at its own name.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tar.h"
#include "common/error.h"
#include "common/util.h"

/* Create base in pfd for writing, exclusively, never through a symlink:
 * whatever an earlier layer put there (of any kind) is removed first.
 * Created with mode, unless the umask would take bits from it (then fixed
 * by the caller: *ret_chmod). */
static int create_entry(struct tar_in *t, int pfd, const char *base, mode_t mode, bool *ret_chmod)
{
        mode_t m = (mode & ~t->umask) == mode ? mode : 0600;
        *ret_chmod = m != mode;
        for (int tries = 0;; tries++) {
                int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, m);
                if (fd >= 0 || errno != EEXIST || tries > 0)
                        return fd < 0 ? -errno : fd;
                /* a copy never removes a directory (tar_make_room() said so) */
                int r = !t->o->copy ? rm_rf_at(pfd, base) : unlinkat(pfd, base, 0) < 0 ? -errno : 0;
                if (r < 0)
                        return r;
        }
}

struct timespec tar_entry_mtime(const struct entry *e)
{
        return (struct timespec){.tv_sec = (time_t)e->mtime, .tv_nsec = e->mtime_ns};
}

static int place_file(struct tar_in *t, int rootfd, int pfd, const char *base, struct entry *e, struct tar_stats *st,
                      struct msb_error *err)
{
        mode_t hm = tar_host_mode(t, e, S_IFREG);
        bool fix;
        _cleanup_close_ int fd = create_entry(t, pfd, base, hm & 07777, &fix);
        if (fd < 0)
                return msb_err_errno(err, fd, "entry '%s': cannot create", e->path);
        int r = tar_read_to(t, fd, e->size);
        if (r < 0)
                return r == -ENODATA ? msb_err(err, EIO, "entry '%s': layer is truncated", e->path)
                                     : msb_err_errno(err, r, "entry '%s'", e->path);
        if (fix && fchmod(fd, hm & 07777) < 0)
                return msb_err_errno(err, errno, "entry '%s': chmod", e->path);
        if ((r = tar_meta_apply(t, rootfd, fd, true, hm, e, S_IFREG, st, err)) < 0)
                return r;
        struct timespec ts[2] = {tar_entry_mtime(e), tar_entry_mtime(e)};
        futimens(fd, ts);
        st->bytes += e->size;
        struct stat fst;
        if (t->o->copy && fstat(fd, &fst) == 0)
                tar_placed_add(&t->mine, tar_ino_hash(&fst));
        return 0;
}

static int place_dir(struct tar_in *t, int rootfd, int pfd, const char *base, bool exists, struct entry *e,
                     struct msb_error *err)
{
        if (!exists && mkdirat(pfd, base, 0700) < 0)
                return msb_err_errno(err, errno, "entry '%s': mkdir", e->path);
        _cleanup_close_ int fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return msb_err_errno(err, errno, "entry '%s'", e->path);
        if (fchmod(fd, tar_host_mode(t, e, S_IFDIR) & 07777) < 0)
                return msb_err_errno(err, errno, "entry '%s': chmod", e->path);
        struct tar_stats ignored = {0};
        return tar_meta_apply(t, rootfd, fd, false, 0, e, S_IFDIR, &ignored, err);
}

/* A device node, fifo (or socket): never made on the host, where it would
 * be usable by whoever can reach the store; an empty placeholder file
 * whose metadata makes the guest see what the image holds.  Archives
 * (plain mode) have no use for them at all. */
static int place_special(struct tar_in *t, int rootfd, int pfd, const char *base, struct entry *e,
                         struct tar_stats *st, struct msb_error *err)
{
        mode_t kind = e->type == '3' ? S_IFCHR : e->type == '4' ? S_IFBLK : S_IFIFO;
        if (e->devmajor >= 4096 || e->devminor >= (1u << 20))
                return msb_err(err, EINVAL, "entry '%s': device number %llu:%llu is out of range", e->path,
                               (unsigned long long)e->devmajor, (unsigned long long)e->devminor);
        if (t->o->plain) {
                st->skipped_devices++;
                return 0;
        }
        bool fix;
        _cleanup_close_ int fd = create_entry(t, pfd, base, 0600, &fix);
        if (fd < 0)
                return msb_err_errno(err, fd, "entry '%s': cannot create", e->path);
        int r = tar_meta_apply(t, rootfd, fd, true, S_IFREG | 0600, e, kind, st, err);
        if (r == -EOPNOTSUPP) {
                unlinkat(pfd, base, 0);
                st->skipped_devices++;
                return 0;
        }
        struct timespec ts[2] = {{(time_t)e->mtime, 0}, {(time_t)e->mtime, 0}};
        futimens(fd, ts);
        return r;
}

bool tar_is_special(char type)
{
        return type == '3' || type == '4' || type == '6';
}

/*
 * What is at base already.  Files and special files replace it as they are
 * made (create_entry); other kinds remove it first, except that a directory
 * stays for a directory (*ret_dir).  A copy never turns a directory into
 * something else or the reverse (docker cp's rule): that would delete a
 * tree, or a file, the user has.
 */
int tar_make_room(struct tar_in *t, int pfd, const char *base, const struct entry *e, bool *ret_dir,
                     struct msb_error *err)
{
        bool creates = e->type == '0' || e->type == '\0' || e->type == '7' || tar_is_special(e->type);
        struct stat cur;
        *ret_dir = false;
        if ((creates && !t->o->copy) || fstatat(pfd, base, &cur, AT_SYMLINK_NOFOLLOW) < 0)
                return 0;
        bool is_dir = S_ISDIR(cur.st_mode), want_dir = e->type == '5';
        if (t->o->copy && is_dir != want_dir)
                return msb_err(err, is_dir ? EISDIR : ENOTDIR, "entry '%s': cannot overwrite %s with %s", e->path,
                               is_dir ? "a directory" : "a non-directory", is_dir ? "a non-directory" : "a directory");
        if (is_dir && want_dir) {
                *ret_dir = true;
                return 0;
        }
        int r = creates ? 0 : rm_rf_at(pfd, base);
        if (r < 0)
                return msb_err_errno(err, r, "entry '%s': cannot replace existing entry", e->path);
        return 0;
}

static int place_symlink(struct tar_in *t, int pfd, const char *base, struct entry *e, struct msb_error *err)
{
        if (!e->link || !*e->link)
                return msb_err(err, EINVAL, "entry '%s': symlink without target", e->path);
        /* stored verbatim; never followed while unpacking except through
         * tar_open_beneath(), which keeps resolution inside.  A symlink cannot
         * carry a user xattr: it keeps the host owner, which nothing
         * checks. */
        if (tar_charge_bytes(t, strlen(e->link)) < 0)
                return tar_budget_error(t, e, EFBIG, err);
        if (symlinkat(e->link, pfd, base) < 0)
                return msb_err_errno(err, errno, "entry '%s': symlink", e->path);
        struct stat lst;
        if (t->o->copy) {
                struct timespec ts[2] = {tar_entry_mtime(e), tar_entry_mtime(e)};
                utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
                if (fstatat(pfd, base, &lst, AT_SYMLINK_NOFOLLOW) == 0)
                        tar_placed_add(&t->mine, tar_ino_hash(&lst));
        }
        return 0;
}

/* A hard link: its target resolved beneath the root, never a directory;
 * in a copy, an entry the same copy placed (not a file the user had). */
static int place_link(struct tar_in *t, int rootfd, int pfd, const char *base, struct entry *e,
                      struct msb_error *err)
{
        const char *lwhy = NULL;
        _cleanup_free_ char *target = e->link ? tar_clean_path(e->link, &lwhy) : NULL;
        if (!target || !*target)
                return msb_err(err, EXDEV, "entry '%s': hard link target '%s': %s", e->path, e->link ? e->link : "",
                               lwhy ? lwhy : "empty");
        const char *tdir, *tbase;
        tar_split(target, &tdir, &tbase);
        _cleanup_close_ int tfd = tar_open_beneath(rootfd, tdir, O_PATH | O_DIRECTORY, t->o->copy);
        if (tfd < 0)
                return msb_err(err, EXDEV, "entry '%s': hard link target '%s' is outside the image root or missing",
                               e->path, e->link);
        struct stat tst;
        if (fstatat(tfd, tbase, &tst, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(tst.st_mode))
                return msb_err(err, EINVAL, "entry '%s': hard link target '%s' is missing or a directory", e->path,
                               e->link);
        if (t->o->copy && !tar_placed_has(&t->mine, tar_ino_hash(&tst)))
                return msb_err(err, EXDEV, "entry '%s': hard link target '%s' is not a file of the copy", e->path,
                               e->link);
        /* the link shares the target's inode, and so its metadata */
        if (linkat(tfd, tbase, pfd, base, 0) < 0)
                return msb_err_errno(err, errno, "entry '%s': link", e->path);
        return 0;
}

/* The entry, its parent open (pfd) and its place made. */
int tar_place(struct tar_in *t, int rootfd, int pfd, const char *dir, const char *base, bool exists_dir,
                 struct entry *e, struct tar_stats *st, struct msb_error *err)
{
        switch (e->type) {
        case '0':
        case '\0':
        case '7':
                if (tar_charge_bytes(t, e->size) < 0)
                        return tar_budget_error(t, e, EFBIG, err);
                return place_file(t, rootfd, pfd, base, e, st, err);
        case '5': {
                int r = place_dir(t, rootfd, pfd, base, exists_dir, e, err);
                if (r == 0 && t->o->copy && tar_dir_defer(t, pfd, dir, base, e) < 0)
                        return msb_err(err, E2BIG, "entry '%s': the copy has more directories than msb keeps track "
                                                   "of (%u MiB of their names)",
                                       e->path, TAR_COPY_MAX_DIR_BYTES >> 20);
                return r;
        }
        case '2':
                return place_symlink(t, pfd, base, e, err);
        case '1':
                return place_link(t, rootfd, pfd, base, e, err);
        case '3':
        case '4':
        case '6':
                return place_special(t, rootfd, pfd, base, e, st, err);
        default:
                return msb_err(err, ENOTSUP, "entry '%s': unsupported tar entry type '%c'", e->path, e->type);
        }
}
