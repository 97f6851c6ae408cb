/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Opening an image for a run: its name looked up in the user's store,
 * then the system one, its root unpacked again if need be, its config
 * parsed.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "common/util.h"
#include "lib/ctx.h"
#include "lib/image/image.h"

/* The manifest hex the store at sfd names ref by (as imported, or as the
 * registry name it stands for); *io_norm becomes the name found. */
static bool store_find_ref(int sfd, const char *ref, char **io_norm, char ret_hex[65])
{
        _cleanup_free_ char *line = NULL;
        _cleanup_free_ char *rf = img_ref_file_name(*io_norm);
        _cleanup_free_ char *rp = xasprintf("refs/%s", rf);
        if (read_file_at(sfd, rp, 4096, &line, NULL) < 0) {
                struct msb_ref rr;
                struct msb_error ignore;
                if (msb_ref_parse(ref, &rr, &ignore) < 0)
                        return false;
                _cleanup_free_ char *canon = msb_ref_string(&rr);
                _cleanup_free_ char *crf = img_ref_file_name(canon);
                _cleanup_free_ char *crp = xasprintf("refs/%s", crf);
                msb_ref_free(&rr);
                if (read_file_at(sfd, crp, 4096, &line, NULL) < 0)
                        return false;
                free(*io_norm);
                *io_norm = TAKE_PTR(canon);
        }
        line[strcspn(line, "\n")] = '\0';
        const char *mhex;
        if (!img_digest_hex(line, &mhex))
                return false;
        memcpy(ret_hex, mhex, 65);
        return true;
}

/* Unpack the root of manifest mhex again (a store migrated from an older
 * format, a root removed by hand): its blobs are all there. */
static int store_reunpack(struct msb_ctx *ctx, const char *mhex, struct msb_error *err)
{
        struct img_store s;
        int r = img_store_open(ctx, &s, LOCK_SH, err);
        if (r < 0)
                return r;
        json_auto_t *m = img_load_blob_json(s.fd, mhex, err, "image manifest");
        r = m ? img_unpack_rootfs(ctx, &s, mhex, json_object_get(m, "layers"), err) : -EINVAL;
        img_store_close(&s);
        return r;
}

/* The bytes of manifest mhex's config, from the store at sfd. */
static int read_config(int sfd, const char *mhex, const char *norm, char **ret_json, size_t *ret_len,
                       struct msb_error *err)
{
        json_auto_t *m = img_load_blob_json(sfd, mhex, err, "image manifest");
        if (!m)
                return -EINVAL;
        const char *chex;
        if (!img_digest_hex(img_desc_digest(json_object_get(m, "config")), &chex))
                return msb_err(err, EINVAL, "image '%s': manifest has no valid config digest", norm);
        _cleanup_free_ char *cp = xasprintf("blobs/sha256/%s", chex);
        int r = read_file_at(sfd, cp, IMAGE_MAX_JSON, ret_json, ret_len);
        if (r < 0)
                return msb_err_errno(err, r, "image '%s': cannot read config", norm);
        return 0;
}

/* In the user's own store (sfd, at mine) the root of mhex is unpacked by
 * this msb's format, again if need be. */
static int own_root_ready(struct msb_ctx *ctx, int sfd, const char *mine, const char *mhex, const char *rootfs,
                          const char *norm, struct msb_error *err)
{
        struct stat st;
        int r;
        if (!img_store_current_at(sfd)) {
                /* an older store: make it private, drop its old roots */
                r = store_reunpack(ctx, mhex, err);
                if (r < 0)
                        return msb_err_wrap(err, r, "image '%s'", norm);
                /* never run from a root an older msb unpacked */
                if (!img_store_current_at(sfd))
                        return msb_err(err, EBUSY,
                                       "the image store %s is being upgraded, and another msb is using it (or a "
                                       "running sandbox uses an old image); try again when it is done",
                                       mine);
        }
        if (stat(rootfs, &st) < 0 && errno == ENOENT) {
                r = store_reunpack(ctx, mhex, err);
                if (r < 0)
                        return msb_err_wrap(err, r, "image '%s'", norm);
        }
        return 0;
}

int msb_image_open(struct msb_ctx *ctx, const char *ref, char **ret_rootfs, struct msb_image_config *ret_cfg,
                   struct msb_error *err)
{
        _cleanup_free_ char *norm = NULL;
        int r = msb_image_name_normalize(ref, &norm, err);
        if (r < 0)
                return r;
        /* the user's own store first, then the images installed for every
         * user (read-only, never unpacked into) */
        _cleanup_free_ char *mine = xasprintf("%s/images", ctx->data_dir);
        _cleanup_free_ char *sys = ctx->system_dir ? xasprintf("%s/images", ctx->system_dir) : NULL;
        const char *roots[] = {mine, sys};
        char mhex[65];
        const char *root = NULL;
        _cleanup_close_ int sfd = -1;
        for (size_t k = 0; k < ARRAY_SIZE(roots) && !root && roots[k]; k++) {
                sfd = open(roots[k], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (sfd >= 0 && store_find_ref(sfd, ref, &norm, mhex))
                        root = roots[k];
                else if (sfd >= 0) {
                        close(sfd);
                        sfd = -1;
                }
        }
        if (!root)
                return msb_err(err, ENOENT,
                               "image '%s' not found in the local store (%s); pull it with 'msb pull %s' or import "
                               "it with 'msb image import DIR %s'",
                               norm, mine, ref, ref);
        _cleanup_free_ char *cj = NULL;
        size_t cl;
        r = read_config(sfd, mhex, norm, &cj, &cl, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *rootfs = xasprintf("%s/rootfs/%s", root, mhex);
        struct stat st;
        if (root == mine) {
                r = own_root_ready(ctx, sfd, mine, mhex, rootfs, norm, err);
                if (r < 0)
                        return r;
        }
        if (stat(rootfs, &st) < 0 || !S_ISDIR(st.st_mode))
                return msb_err(err, ENOENT, "image '%s': unpacked root %s is missing; import the image again", norm,
                               rootfs);
        r = msb_image_config_parse(cj, cl, ret_cfg, err);
        if (r < 0)
                return msb_err_wrap(err, r, "image '%s'", norm);
        *ret_rootfs = TAKE_PTR(rootfs);
        return 0;
}
