/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb image import: an OCI image layout directory (oci-layout, index.json,
 * blobs/) into the store, each blob verified as it is copied.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>

#include "lib/internal.h"

int msb_image_import(struct msb_ctx *ctx, const char *layout_dir, const char *tag, const char *name,
                     struct msb_error *err)
{
        _cleanup_free_ char *norm = NULL;
        int r = msb_image_name_normalize(name, &norm, err);
        if (r < 0)
                return r;
        _cleanup_close_ int lfd = open(layout_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (lfd < 0)
                return msb_err_errno(err, errno, "OCI layout '%s'", layout_dir);
        if (faccessat(lfd, "oci-layout", R_OK, 0) < 0)
                return msb_err(err, EINVAL, "'%s' is not an OCI image layout (no oci-layout file)", layout_dir);
        struct img_store s;
        r = img_store_open(ctx, &s, LOCK_SH, err);
        if (r < 0)
                return r;
        json_t *index = img_load_json_at(lfd, "index.json", err, layout_dir);
        json_t *manifest = NULL, *sub = NULL;
        if (!index) {
                r = -EINVAL;
                goto out;
        }
        json_t *ms = json_object_get(index, "manifests");
        if (!json_is_array(ms) || json_array_size(ms) == 0) {
                r = msb_err(err, EINVAL, "%s/index.json lists no manifests", layout_dir);
                goto out;
        }
        json_t *desc = NULL;
        size_t i;
        json_t *d;
        char tags[512] = "";
        json_array_foreach(ms, i, d)
        {
                const char *t = json_string_value(
                        json_object_get(json_object_get(d, "annotations"), "org.opencontainers.image.ref.name"));
                size_t l = strlen(tags);
                if (t)
                        snprintf(tags + l, sizeof(tags) - l, "%s%s", l ? ", " : "", t);
                if (tag && t && !strcmp(t, tag))
                        desc = d;
        }
        if (!desc) {
                if (tag) {
                        r = msb_err(err, ENOENT, "OCI layout '%s' has no manifest tagged '%s' (tags: %s)", layout_dir,
                                    tag, tags[0] ? tags : "none");
                        goto out;
                }
                if (json_array_size(ms) != 1) {
                        r = msb_err(err, EINVAL, "OCI layout '%s' has %zu manifests; name one as DIR:TAG (tags: %s)",
                                    layout_dir, json_array_size(ms), tags);
                        goto out;
                }
                desc = json_array_get(ms, 0);
        }
        for (int depth = 0; depth < 2 && img_is_index_media(img_desc_media(desc)); depth++) {
                const char *hex;
                if (!img_digest_hex(img_desc_digest(desc), &hex)) {
                        r = msb_err(err, EINVAL, "index entry has a bad digest");
                        goto out;
                }
                r = img_store_put_blob(&s, lfd, img_desc_digest(desc), json_integer_value(json_object_get(desc, "size")), err);
                if (r < 0)
                        goto out;
                _cleanup_free_ char *p = xasprintf("blobs/sha256/%s", hex);
                json_decref(sub);
                sub = img_load_json_at(s.fd, p, err, "image index");
                if (!sub) {
                        r = -EINVAL;
                        goto out;
                }
                desc = img_index_pick_platform(sub, err);
                if (!desc) {
                        r = -ENOENT;
                        goto out;
                }
        }
        const char *mdigest = img_desc_digest(desc), *mhex;
        if (!img_digest_hex(mdigest, &mhex)) {
                r = msb_err(err, EINVAL, "manifest descriptor has a bad digest");
                goto out;
        }
        r = img_store_put_blob(&s, lfd, mdigest, json_integer_value(json_object_get(desc, "size")), err);
        if (r < 0)
                goto out;
        {
                _cleanup_free_ char *p = xasprintf("blobs/sha256/%s", mhex);
                manifest = img_load_json_at(s.fd, p, err, "image manifest");
        }
        if (!manifest) {
                r = -EINVAL;
                goto out;
        }
        if (json_integer_value(json_object_get(manifest, "schemaVersion")) != 2) {
                r = msb_err(err, ENOTSUP, "image manifest %s: only schemaVersion 2 is supported", mdigest);
                goto out;
        }
        json_t *config = json_object_get(manifest, "config");
        json_t *layers = json_object_get(manifest, "layers");
        if (!json_is_object(config) || !json_is_array(layers)) {
                r = msb_err(err, EINVAL, "image manifest %s: missing config or layers", mdigest);
                goto out;
        }
        if (json_array_size(layers) > IMAGE_MAX_LAYERS) {
                r = msb_err(err, E2BIG, "image manifest %s: %zu layers (limit %u)", mdigest, json_array_size(layers),
                            IMAGE_MAX_LAYERS);
                goto out;
        }
        r = img_store_put_blob(&s, lfd, img_desc_digest(config), json_integer_value(json_object_get(config, "size")), err);
        if (r < 0)
                goto out;
        json_array_foreach(layers, i, d)
        {
                r = img_store_put_blob(&s, lfd, img_desc_digest(d), json_integer_value(json_object_get(d, "size")), err);
                if (r < 0)
                        goto out;
        }
        /* validate the config now so a bad one fails at import, not at run */
        {
                const char *chex;
                img_digest_hex(img_desc_digest(config), &chex);
                _cleanup_free_ char *p = xasprintf("blobs/sha256/%s", chex);
                _cleanup_free_ char *cj = NULL;
                size_t cl;
                r = read_file_at(s.fd, p, IMAGE_MAX_JSON, &cj, &cl);
                if (r < 0) {
                        r = msb_err_errno(err, r, "image config");
                        goto out;
                }
                struct msb_image_config c;
                r = msb_image_config_parse(cj, cl, &c, err);
                if (r < 0)
                        goto out;
                msb_image_config_free(&c);
        }
        r = img_unpack_rootfs(ctx, &s, mhex, layers, err);
        if (r < 0)
                goto out;
        r = img_write_ref(s.fd, norm, mhex, err);
        if (r < 0)
                goto out;
        msb_log(ctx, 0, "imported %s as %s", mdigest, norm);
out:
        json_decref(index);
        json_decref(sub);
        json_decref(manifest);
        img_store_close(&s);
        return r;
}
