/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb rmi: a name removed from the store, and what no remaining name uses
 * (its unpacked root, its blobs) collected, with the store locked
 * exclusive.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>

#include "common/util.h"
#include "lib/ctx.h"
#include "lib/image/image.h"

/* Add the blobs manifest hex references (itself, config, layers); -errno
 * when the manifest cannot be read. */
static int mark_manifest(int sfd, const char *mhex, char ***keep, struct msb_error *err)
{
        strv_push(keep, mhex);
        json_auto_t *m = img_load_blob_json(sfd, mhex, err, "manifest");
        if (!m)
                return -EIO;
        const char *h;
        if (img_digest_hex(img_desc_digest(json_object_get(m, "config")), &h))
                strv_push(keep, h);
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(m, "layers"), i, l)
                if (img_digest_hex(img_desc_digest(l), &h))
                        strv_push(keep, h);
        return 0;
}

/* Every blob some name in refs/ uses.  A name or manifest that cannot be
 * read fails the whole walk: what it names must not look unused. */
static int store_live_blobs(struct img_store *s, char ***ret_keep, struct msb_error *err)
{
        _cleanup_close_ int rfd = openat(s->fd, "refs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_closedir_ DIR *d = rfd >= 0 ? fdopendir_dup(rfd) : NULL;
        if (!d)
                return msb_err_errno(err, errno, "cannot list %s/refs", s->root);
        _cleanup_strv_ char **keep = NULL;
        int r = 0;
        struct dirent *de;
        while (r == 0 && (de = readdir_no_dot(d))) {
                _cleanup_free_ char *line = NULL;
                const char *h;
                r = read_file_at(rfd, de->d_name, 4096, &line, NULL);
                if (r < 0) {
                        msb_err_errno(err, r, "cannot read %s/refs/%s", s->root, de->d_name);
                        break;
                }
                line[strcspn(line, "\n")] = 0;
                if (!img_digest_hex(line, &h)) {
                        r = msb_err(err, EINVAL, "%s/refs/%s is corrupt", s->root, de->d_name);
                        break;
                }
                r = mark_manifest(s->fd, h, &keep, err);
        }
        if (r < 0)
                return r;
        *ret_keep = TAKE_PTR(keep);
        return 0;
}

/* The refs/ file (store-relative, *ret_path) and its line for ref: the name
 * as imported, or the registry name it stands for.  false if neither is
 * there. */
static bool find_ref_file(int sfd, const char *ref, char **ret_path, char **ret_line)
{
        _cleanup_free_ char *norm = NULL;
        char *names[2] = {NULL, NULL};
        struct msb_error ig;
        if (msb_image_name_normalize(ref, &norm, &ig) == 0)
                names[0] = TAKE_PTR(norm);
        struct msb_ref rr;
        if (msb_ref_parse(ref, &rr, &ig) == 0) {
                names[1] = msb_ref_string(&rr);
                msb_ref_free(&rr);
        }
        bool found = false;
        for (size_t k = 0; k < ARRAY_SIZE(names); k++) {
                if (!found && names[k]) {
                        _cleanup_free_ char *rf = img_ref_file_name(names[k]);
                        _cleanup_free_ char *rp = xasprintf("refs/%s", rf);
                        if (read_file_at(sfd, rp, 4096, ret_line, NULL) == 0) {
                                *ret_path = TAKE_PTR(rp);
                                found = true;
                        }
                }
                free(names[k]);
        }
        return found;
}

/* Collect what no remaining name uses of manifest mhex: its root and its
 * blobs.  A store that cannot be walked keeps them (-errno, gc_err). */
static int collect(struct img_store *s, const char *mhex, struct msb_error *gc_err)
{
        _cleanup_strv_ char **keep = NULL;
        int r = store_live_blobs(s, &keep, gc_err);
        if (r < 0)
                return r;
        for (char **k = keep; k && *k; k++)
                if (!strcmp(*k, mhex))
                        return 0; /* another name for the same image */
        _cleanup_free_ char *rr2 = xasprintf("rootfs/%s", mhex);
        rm_rf_at(s->fd, rr2);
        _cleanup_strv_ char **mine = NULL;
        mark_manifest(s->fd, mhex, &mine, gc_err);
        for (char **m = mine; m && *m; m++) {
                bool used = false;
                for (char **k = keep; k && *k && !used; k++)
                        used = !strcmp(*k, *m);
                if (!used) {
                        _cleanup_free_ char *bp = xasprintf("blobs/sha256/%s", *m);
                        unlinkat(s->fd, bp, 0);
                }
        }
        return 0;
}

/* Remove the name refs/<rp> of manifest mhex, unless a sandbox uses its
 * root; then collect what nothing else uses. */
static int remove_ref(struct msb_ctx *ctx, struct img_store *s, const char *ref, const char *rp, const char *mhex,
                      struct msb_error *err)
{
        _cleanup_free_ char *rootfs = xasprintf("%s/rootfs/%s", s->root, mhex);
        if (img_rootfs_in_use(ctx, rootfs)) {
                _cleanup_free_ char *who = NULL;
                if (img_sandbox_uses_rootfs(ctx, rootfs, &who))
                        return msb_err(err, EBUSY, "image '%s' is used by sandbox '%s'; msb rm %s first", ref, who,
                                       who);
                return msb_err(err, EBUSY, "image '%s' is used by a running sandbox; stop it first", ref);
        }
        if (unlinkat(s->fd, rp, 0) < 0)
                return msb_err_errno(err, errno, "cannot remove %s/%s", s->root, rp);
        struct msb_error gc_err = {0};
        if (collect(s, mhex, &gc_err) < 0)
                msb_log(ctx, 0, "removed %s; unused blobs were kept: %s", ref, gc_err.message);
        else
                msb_log(ctx, 0, "removed %s", ref);
        return 0;
}

int msb_image_remove(struct msb_ctx *ctx, const char *ref, struct msb_error *err)
{
        struct img_store s;
        int r = img_store_open(ctx, &s, LOCK_EX, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *rp = NULL, *line = NULL;
        const char *mhex;
        if (!find_ref_file(s.fd, ref, &rp, &line)) {
                r = msb_err(err, ENOENT, "image '%s' is not in the local store; 'msb images' lists what is", ref);
        } else {
                line[strcspn(line, "\n")] = 0;
                if (img_digest_hex(line, &mhex))
                        r = remove_ref(ctx, &s, ref, rp, mhex, err);
                else
                        r = msb_err(err, EINVAL, "image '%s': store entry %s is corrupt", ref, rp);
        }
        img_store_close(&s);
        return r;
}
