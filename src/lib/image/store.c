/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Local image store, laid out so registry pulls can land in it too:
 *
 *   <data>/images/blobs/sha256/<hex>   content-addressed blobs (manifests,
 *                                      configs, layers), verified on insert
 *   <data>/images/rootfs/<hex>/        unpacked root of the manifest <hex>
 *   <data>/images/refs/<escaped name>  "sha256:<manifest hex>"
 *   <data>/images/tmp/                 work in progress, renamed into place
 *
 * Every step that makes something visible is a rename, so a killed import
 * never leaves a half-unpacked rootfs that a later run would use.  Image
 * JSON and layers are untrusted: sizes are capped, digests verified, layers
 * unpacked by tar/'s confined writer.
 *
 * This file: opening the store (private directories, its format and
 * migration, the lock, sweeping tmp/) and putting blobs into it.  Names
 * are in names.c, unpacked roots in rootfs.c.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "common/util.h"
#include "lib/ctx.h"
#include "lib/sha256.h"
#include "lib/image/image.h"

/*
 * Nobody but the store's owner may reach into it: an unpacked root holds
 * whatever an image brought (its owners, modes and device nodes are only
 * metadata now, but a pre-0.2 store had them for real, and blobs are the
 * owner's business).  Made so, and made so again for a store created by
 * an older msb, or a data dir someone opened up.
 */
static int store_dirs_private(struct msb_ctx *ctx, const char *root, struct msb_error *err)
{
        const char *dirs[] = {ctx->data_dir, root};
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
                int r = mkdir_p(dirs[i], 0700);
                struct stat st;
                if (r == 0 && stat(dirs[i], &st) < 0)
                        r = -errno;
                if (r < 0)
                        return msb_err_errno(err, r, "cannot create image store %s", dirs[i]);
                if (st.st_uid != geteuid())
                        return msb_err(err, EPERM,
                                       "%s belongs to uid %u, not to you: another user could change your images; "
                                       "set MSB_HOME to a directory of your own",
                                       dirs[i], (unsigned)st.st_uid);
                if ((st.st_mode & 077) && chmod(dirs[i], st.st_mode & 07700) < 0)
                        return msb_err_errno(err, errno, "cannot make %s private (mode 0700)", dirs[i]);
        }
        return 0;
}

static int store_open_unlocked(struct msb_ctx *ctx, struct img_store *s, struct msb_error *err)
{
        s->lock = -1;
        s->ctx = ctx;
        /* whatever comes into the store is hashed: the fast code, please */
        sha256_fast();
        s->root = xasprintf("%s/images", ctx->data_dir);
        int r = store_dirs_private(ctx, s->root, err);
        static const char *const sub[] = {"blobs/sha256", "rootfs", "refs", "tmp"};
        for (size_t i = 0; r == 0 && i < ARRAY_SIZE(sub); i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", s->root, sub[i]);
                r = mkdir_p(p, 0700);
                if (r < 0)
                        msb_err_errno(err, r, "cannot create image store %s", p);
        }
        if (r < 0) {
                free(s->root);
                return r;
        }
        s->fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->fd < 0) {
                int e = errno;
                msb_err_errno(err, e, "cannot open image store %s", s->root);
                free(s->root);
                return -e;
        }
        return 0;
}

void img_store_close(struct img_store *s)
{
        free(s->root);
        if (s->fd >= 0)
                close(s->fd);
        if (s->lock >= 0)
                close(s->lock);
}

/* Adding to the store (pull, import) holds the store lock shared; removing
 * (rmi's collection of unused blobs) holds it exclusive, so it never takes
 * the blobs of a pull that has not written its name yet. */
/* Partial downloads older than this are not worth resuming. */
#define PARTIAL_MAX_AGE_S (7 * 24 * 3600)

/*
 * With the store lock held exclusive nobody else is working in tmp/: what
 * is there was left by a pull, import or load that died (SIGKILL, power
 * cut).  Unpacked trees and copies go; partial downloads stay for a week,
 * for the next pull of that blob to resume.
 */
static void store_sweep_tmp(struct img_store *s)
{
        _cleanup_close_ int dfd = openat(s->fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        _cleanup_closedir_ DIR *d = dfd >= 0 ? fdopendir_dup(dfd) : NULL;
        if (!d)
                return;
        time_t now = time(NULL);
        struct dirent *de;
        while ((de = readdir(d))) {
                const char *n = de->d_name;
                if (!strcmp(n, ".") || !strcmp(n, ".."))
                        continue;
                struct stat st;
                if (fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (!strncmp(n, "partial-", 8) && S_ISREG(st.st_mode) && now - st.st_mtime < PARTIAL_MAX_AGE_S)
                        continue;
                if (S_ISDIR(st.st_mode))
                        rm_rf_at(dfd, n);
                else
                        unlinkat(dfd, n, 0);
        }
}

/*
 * The store's format: 2 since unpacked roots hold no owners, setuid bits
 * or device nodes of their images (tar/meta.c); 3 since they are readable by
 * every user (a shared store serves every user's msb-fsd).  Roots unpacked by an older msb
 * are removed (unless a sandbox runs from one) and unpacked again from
 * their blobs when next used.  Called with the store lock exclusive.
 */
#define STORE_FORMAT "3\n"

bool img_store_current_at(int sfd)
{
        char buf[8] = {0};
        _cleanup_close_ int fd = openat(sfd, "format", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        return fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0 && !strcmp(buf, STORE_FORMAT);
}

static void store_migrate(struct msb_ctx *ctx, struct img_store *s)
{
        if (img_store_current_at(s->fd))
                return;
        _cleanup_close_ int dfd = openat(s->fd, "rootfs", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        _cleanup_closedir_ DIR *d = dfd >= 0 ? fdopendir_dup(dfd) : NULL;
        if (!d)
                return;
        bool busy = false;
        struct dirent *de;
        while ((de = readdir_no_dot(d))) {
                _cleanup_free_ char *full = xasprintf("%s/rootfs/%s", s->root, de->d_name);
                if (img_rootfs_in_use(ctx, full) || rm_rf_at(dfd, de->d_name) < 0)
                        busy = true; /* not current until every old root is gone */
        }
        if (!busy)
                write_file_atomic_at(s->fd, "format", STORE_FORMAT, strlen(STORE_FORMAT), 0600);
}

static int store_lock(struct img_store *s, int how, struct msb_error *err)
{
        s->lock = openat(s->fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (s->lock < 0)
                return msb_err_errno(err, errno, "cannot lock the image store %s", s->root);
        /* alone in the store? then clear what dead writers left first */
        if (how == LOCK_SH && flock(s->lock, LOCK_EX | LOCK_NB) == 0) {
                store_sweep_tmp(s);
                store_migrate(s->ctx, s);
        }
        if (flock(s->lock, how) < 0)
                return msb_err_errno(err, errno, "cannot lock the image store %s", s->root);
        if (how == LOCK_EX) {
                store_sweep_tmp(s);
                store_migrate(s->ctx, s);
        }
        return 0;
}

/* The store, locked how (LOCK_SH to add, LOCK_EX to remove): every user of
 * the store holds the lock, so tmp/ can be swept by whoever is alone. */
int img_store_open(struct msb_ctx *ctx, struct img_store *s, int how, struct msb_error *err)
{
        int r = store_open_unlocked(ctx, s, err);
        if (r < 0)
                return r;
        r = store_lock(s, how, err);
        if (r < 0)
                img_store_close(s);
        return r;
}

/* Copy fd in into a new tmp/blob-<random> of the store, hashing it on the
 * way: *ret_tmp (store-relative), its sha256 hex and size.  On error the
 * tmp file is gone. */
int img_store_copy_in(struct img_store *s, int in, const char *what, uint64_t max, char **ret_tmp, char hex[65],
                         uint64_t *ret_size, struct msb_error *err)
{
        /* only a regular file is a blob: a device (endless /dev/zero) or a
         * fifo (a hang with the store locked) never is */
        struct stat ist;
        if (fstat(in, &ist) < 0)
                return msb_err_errno(err, errno, "%s", what);
        if (!S_ISREG(ist.st_mode))
                return msb_err(err, EINVAL, "%s is not a regular file", what);
        char rnd[17];
        random_hex(rnd, 8);
        char *tmp = xasprintf("tmp/blob-%s", rnd);
        _cleanup_close_ int out = openat(s->fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (out < 0) {
                int e = errno;
                msb_err_errno(err, e, "cannot create %s/%s", s->root, tmp);
                free(tmp);
                return -e;
        }
        struct sha256 h;
        sha256_init(&h);
        uint8_t buf[65536];
        uint64_t total = 0;
        int r = 0;
        for (;;) {
                ssize_t n = read(in, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = msb_err_errno(err, errno, "%s: read", what);
                        break;
                }
                if (n == 0)
                        break;
                if ((uint64_t)n > max - total) {
                        r = msb_err(err, EFBIG, "%s is larger than the %llu bytes declared for it", what,
                                    (unsigned long long)max);
                        break;
                }
                sha256_update(&h, buf, (size_t)n);
                total += (uint64_t)n;
                if ((r = write_all(out, buf, (size_t)n)) < 0) {
                        r = msb_err_errno(err, r, "%s: write", what);
                        break;
                }
        }
        if (r < 0) {
                unlinkat(s->fd, tmp, 0);
                free(tmp);
                return r;
        }
        sha256_hex(&h, hex);
        *ret_size = total;
        *ret_tmp = tmp;
        return 0;
}

/* Copy blob <hex> from a layout's blobs dir into the store, verifying it. */
int img_store_put_blob(struct img_store *s, int layout_fd, const char *digest, json_int_t size, struct msb_error *err)
{
        const char *hex;
        if (!img_digest_hex(digest, &hex))
                return msb_err(err, EINVAL, "digest '%s' is not sha256:<64 hex digits>", digest ? digest : "");
        _cleanup_free_ char *dst = xasprintf("blobs/sha256/%s", hex);
        if (faccessat(s->fd, dst, R_OK, 0) == 0)
                return 0;
        _cleanup_close_ int in = open_beneath_at(layout_fd, dst);
        if (in < 0)
                return msb_err_errno(err, -in, "blob %s", digest);
        _cleanup_free_ char *tmp = NULL;
        char got[65];
        uint64_t total;
        int r = img_store_copy_in(s, in, digest, size >= 0 ? (uint64_t)size : IMAGE_MAX_BLOB, &tmp, got, &total, err);
        if (r < 0)
                return r;
        if (strcmp(got, hex) != 0)
                r = msb_err(err, EBADMSG, "blob %s: content does not match its digest (got sha256:%s)", digest, got);
        if (r == 0 && size >= 0 && (uint64_t)size != total)
                r = msb_err(err, EBADMSG, "blob %s: size %llu does not match the descriptor's %lld", digest,
                            (unsigned long long)total, (long long)size);
        if (r == 0 && renameat(s->fd, tmp, s->fd, dst) < 0)
                r = msb_err_errno(err, errno, "blob %s: rename", digest);
        if (r < 0)
                unlinkat(s->fd, tmp, 0);
        return r;
}

/* Store bytes we already hold (a manifest) under their digest. */
int img_store_put_bytes(struct img_store *s, const char *hex, const char *data, size_t len, struct msb_error *err)
{
        _cleanup_free_ char *dst = xasprintf("blobs/sha256/%s", hex);
        if (faccessat(s->fd, dst, R_OK, 0) == 0)
                return 0;
        int r = write_file_atomic_at(s->fd, dst, data, len, 0644);
        return r < 0 ? msb_err_errno(err, r, "cannot store manifest %s", hex) : 0;
}
