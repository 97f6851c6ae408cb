/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store's unpacked roots (rootfs/<manifest hex>): unpacking a
 * manifest's layers into one, and whether a sandbox uses one (which keeps
 * it from removal and migration).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "common/util.h"
#include "lib/ctx.h"
#include "lib/config.h"
#include "lib/tar/unpack.h"
#include "lib/image/image.h"

int img_unpack_rootfs(struct msb_ctx *ctx, struct img_store *s, const char *mhex, json_t *layers,
                      struct msb_error *err)
{
        _cleanup_free_ char *final = xasprintf("rootfs/%s", mhex);
        if (faccessat(s->fd, final, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return 0;
        char rnd[17];
        random_hex(rnd, 8);
        _cleanup_free_ char *tmp = xasprintf("tmp/rootfs-%s", rnd);
        if (mkdirat(s->fd, tmp, 0755) < 0)
                return msb_err_errno(err, errno, "cannot create %s/%s", s->root, tmp);
        struct tar_opts opts = TAR_OPTS_DEFAULT;
        int r = msb_config_unpack_limits(&opts.max_bytes, &opts.max_entries, err);
        _cleanup_close_ int rootfd = openat(s->fd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (rootfd < 0)
                r = msb_err_errno(err, errno, "cannot open %s", tmp);
        size_t i;
        json_t *l;
        json_array_foreach(layers, i, l)
        {
                if (r < 0)
                        break;
                const char *hex;
                const char *dg = img_desc_digest(l);
                if (!img_digest_hex(dg, &hex)) {
                        r = msb_err(err, EINVAL, "layer %zu: bad digest", i);
                        break;
                }
                _cleanup_free_ char *bp = xasprintf("blobs/sha256/%s", hex);
                _cleanup_close_ int bfd = openat(s->fd, bp, O_RDONLY | O_CLOEXEC);
                if (bfd < 0) {
                        r = msb_err_errno(err, errno, "layer %s", dg);
                        break;
                }
                struct tar_stats st;
                r = tar_unpack(bfd, rootfd, &opts, &st, err);
                if (r < 0) {
                        msb_err_wrap(err, r, "layer %s rejected", dg);
                        break;
                }
                msb_log(ctx, 1, "unpacked layer %.19s: %llu entries, %llu bytes", dg, (unsigned long long)st.entries,
                        (unsigned long long)st.bytes);
                if (st.meta_lost || st.skipped_devices)
                        msb_log(ctx, 0,
                                "layer %.19s: %s has no user extended attributes: %llu owners or modes were not "
                                "kept, %llu device nodes or fifos left out",
                                dg, s->root, (unsigned long long)st.meta_lost,
                                (unsigned long long)st.skipped_devices);
        }
        if (r == 0 && renameat(s->fd, tmp, s->fd, final) < 0) {
                if (errno == EEXIST || errno == ENOTEMPTY)
                        r = 0; /* a concurrent import won; ours is identical */
                else
                        r = msb_err_errno(err, errno, "cannot move rootfs into place");
                rm_rf_at(s->fd, tmp);
        } else if (r < 0)
                rm_rf_at(s->fd, tmp);
        return r;
}

/* Does a named sandbox (running or not) sit on this image root?  Its disk
 * was made on it.  *who (if not NULL) gets the first such name. */
bool img_sandbox_uses_rootfs(struct msb_ctx *ctx, const char *rootfs, char **who)
{
        _cleanup_free_ char *top = xstrdup(ctx->sandboxes_dir);
        _cleanup_closedir_ DIR *d = opendir(top);
        if (!d)
                return false;
        bool used = false;
        for (struct dirent *de; !used && (de = readdir(d));) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *rp = xasprintf("%s/%s/rootfs", top, de->d_name);
                _cleanup_free_ char *r = NULL;
                if (read_file_at(AT_FDCWD, rp, PATH_MAX, &r, NULL) == 0 && !strcmp(r, rootfs)) {
                        used = true;
                        if (who)
                                *who = xstrdup(de->d_name);
                }
        }
        return used;
}

/* Is a running sandbox (runtime dir with its lock held) using rootfs? */
bool img_rootfs_in_use(struct msb_ctx *ctx, const char *rootfs)
{
        _cleanup_closedir_ DIR *d = opendir(ctx->runtime_dir);
        if (!d)
                return false;
        bool used = false;
        struct dirent *de;
        while (!used && (de = readdir_no_dot(d))) {
                _cleanup_free_ char *lp = xasprintf("%s/%s/lock", ctx->runtime_dir, de->d_name);
                _cleanup_free_ char *rp = xasprintf("%s/%s/rootfs", ctx->runtime_dir, de->d_name);
                _cleanup_close_ int fd = open(lp, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || flock(fd, LOCK_SH | LOCK_NB) == 0)
                        continue; /* not running */
                _cleanup_free_ char *r = NULL;
                if (read_file_at(AT_FDCWD, rp, PATH_MAX, &r, NULL) == 0 && !strcmp(r, rootfs))
                        used = true;
        }
        return used || img_sandbox_uses_rootfs(ctx, rootfs, NULL);
}
