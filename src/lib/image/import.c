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

#include "common/util.h"
#include "lib/ctx.h"
#include "lib/image/image.h"

/* A layout's descriptor (index entry) stored as a blob, verified. */
static int put_desc(struct img_store *s, int lfd, json_t *d, struct msb_error *err)
{
        return img_store_put_blob(s, lfd, img_desc_digest(d), json_integer_value(json_object_get(d, "size")), err);
}

/* The entry of index.json for tag; without a tag, its only entry. */
static int layout_pick(json_t *index, const char *layout_dir, const char *tag, json_t **ret_desc,
                       struct msb_error *err)
{
        json_t *ms = json_object_get(index, "manifests");
        if (!json_is_array(ms) || json_array_size(ms) == 0)
                return msb_err(err, EINVAL, "%s/index.json lists no manifests", layout_dir);
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
        if (!desc && tag)
                return msb_err(err, ENOENT, "OCI layout '%s' has no manifest tagged '%s' (tags: %s)", layout_dir, tag,
                               tags[0] ? tags : "none");
        if (!desc && json_array_size(ms) != 1)
                return msb_err(err, EINVAL, "OCI layout '%s' has %zu manifests; name one as DIR:TAG (tags: %s)",
                               layout_dir, json_array_size(ms), tags);
        *ret_desc = desc ? desc : json_array_get(ms, 0);
        return 0;
}

/* Follow *io_desc through (at most two) indexes, each stored as a blob, to
 * the linux/amd64 manifest's descriptor; *io_sub holds the index it is
 * borrowed from. */
static int follow_indexes(struct img_store *s, int lfd, json_t **io_desc, json_t **io_sub, struct msb_error *err)
{
        for (int depth = 0; depth < 2 && img_is_index_media(img_desc_media(*io_desc)); depth++) {
                const char *hex;
                if (!img_digest_hex(img_desc_digest(*io_desc), &hex))
                        return msb_err(err, EINVAL, "index entry has a bad digest");
                int r = put_desc(s, lfd, *io_desc, err);
                if (r < 0)
                        return r;
                json_decref(*io_sub);
                *io_sub = img_load_blob_json(s->fd, hex, err, "image index");
                if (!*io_sub)
                        return -EINVAL;
                *io_desc = img_index_pick_platform(*io_sub, err);
                if (!*io_desc)
                        return -ENOENT;
        }
        return 0;
}

/* The manifest's config and layers into the store; the config checked. */
static int put_manifest_blobs(struct img_store *s, int lfd, json_t *manifest, const char *mdigest,
                              struct msb_error *err)
{
        if (json_integer_value(json_object_get(manifest, "schemaVersion")) != 2)
                return msb_err(err, ENOTSUP, "image manifest %s: only schemaVersion 2 is supported", mdigest);
        json_t *config = json_object_get(manifest, "config");
        json_t *layers = json_object_get(manifest, "layers");
        if (!json_is_object(config) || !json_is_array(layers))
                return msb_err(err, EINVAL, "image manifest %s: missing config or layers", mdigest);
        if (json_array_size(layers) > IMAGE_MAX_LAYERS)
                return msb_err(err, E2BIG, "image manifest %s: %zu layers (limit %u)", mdigest, json_array_size(layers),
                               IMAGE_MAX_LAYERS);
        int r = put_desc(s, lfd, config, err);
        size_t i;
        json_t *d;
        json_array_foreach(layers, i, d)
        {
                if (r < 0)
                        return r;
                r = put_desc(s, lfd, d, err);
        }
        if (r < 0)
                return r;
        /* validate the config now so a bad one fails at import, not at run */
        const char *chex;
        img_digest_hex(img_desc_digest(config), &chex);
        return img_config_check(s->fd, chex, "image config", NULL, NULL, err);
}

/* Import the manifest desc of the layout at lfd as norm. */
static int import_desc(struct msb_ctx *ctx, struct img_store *s, int lfd, json_t *desc, const char *norm,
                       struct msb_error *err)
{
        const char *mdigest = img_desc_digest(desc), *mhex;
        if (!img_digest_hex(mdigest, &mhex))
                return msb_err(err, EINVAL, "manifest descriptor has a bad digest");
        int r = put_desc(s, lfd, desc, err);
        if (r < 0)
                return r;
        json_auto_t *manifest = img_load_blob_json(s->fd, mhex, err, "image manifest");
        if (!manifest)
                return -EINVAL;
        r = put_manifest_blobs(s, lfd, manifest, mdigest, err);
        if (r == 0)
                r = img_unpack_rootfs(ctx, s, mhex, json_object_get(manifest, "layers"), err);
        if (r == 0)
                r = img_write_ref(s->fd, norm, mhex, err);
        if (r == 0)
                msb_log(ctx, 0, "imported %s as %s", mdigest, norm);
        return r;
}

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
        json_auto_t *index = img_load_json_at(lfd, "index.json", err, layout_dir);
        json_auto_t *sub = NULL;
        json_t *desc = NULL;
        r = index ? layout_pick(index, layout_dir, tag, &desc, err) : -EINVAL;
        if (r == 0)
                r = follow_indexes(&s, lfd, &desc, &sub, err);
        if (r == 0)
                r = import_desc(ctx, &s, lfd, desc, norm, err);
        img_store_close(&s);
        return r;
}
