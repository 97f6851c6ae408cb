/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb pull: a reference resolved through mirrors and the registry to a
 * manifest for linux/amd64, its config checked, its layers fetched
 * (fetch.c) and unpacked, its name recorded.
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>

#include "lib/internal.h"

static bool is_schema1(const char *media, json_t *m)
{
        return str_has_prefix(media, "application/vnd.docker.distribution.manifest.v1") ||
               json_integer_value(json_object_get(m, "schemaVersion")) == 1;
}

/* Fetch a manifest (by tag or digest) and check it: by digest its bytes must
 * hash to it.  Returns the parsed JSON and its sha256. */
static json_t *fetch_manifest(struct reg *g, const char *reference, const char *want_digest, char *ret_hex,
                              char **ret_media, char **ret_body, size_t *ret_len, struct msb_error *err)
{
        char *body = NULL, *media = NULL;
        size_t len;
        if (msb_reg_manifest(g, reference, &body, &len, &media, err) < 0)
                return NULL;
        struct sha256 h;
        sha256_init(&h);
        sha256_update(&h, body, len);
        sha256_hex(&h, ret_hex);
        if (want_digest && strcmp(want_digest + 7, ret_hex) != 0) {
                msb_err(err, EBADMSG, "manifest %s: content does not match its digest: expected %s, got sha256:%s",
                        reference, want_digest, ret_hex);
                free(body);
                free(media);
                return NULL;
        }
        json_error_t je;
        json_t *m = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(m)) {
                msb_err(err, EBADMSG, "manifest %s: not a JSON object (%s)", reference, je.text);
                json_decref(m);
                free(body);
                free(media);
                return NULL;
        }
        if (!*media || !strcmp(media, "application/json")) {
                const char *mt = json_string_value(json_object_get(m, "mediaType"));
                free(media);
                media = xstrdup(mt ? mt : "");
        }
        *ret_media = media;
        *ret_body = body;
        *ret_len = len;
        return m;
}

static int pull_from(struct msb_ctx *ctx, struct img_store *s, struct reg *g, const struct msb_ref *ref, const char *name,
                     char *ret_mhex, struct msb_error *err)
{
        char hex[65];
        _cleanup_free_ char *media = NULL, *body = NULL;
        size_t len;
        int r = 0;
        json_t *m = fetch_manifest(g, ref->digest ? ref->digest : ref->tag, ref->digest, hex, &media, &body, &len, err);
        if (!m)
                return -EIO;
        if (img_is_index_media(media)) {
                json_t *d = img_index_pick_platform(m, err);
                if (!d) {
                        json_decref(m);
                        return -ENOENT;
                }
                _cleanup_free_ char *want = xstrdup(img_desc_digest(d) ? img_desc_digest(d) : "");
                const char *wh;
                if (!img_digest_hex(want, &wh)) {
                        json_decref(m);
                        return msb_err(err, EBADMSG, "%s: index entry has a bad digest", name);
                }
                r = img_store_put_bytes(s, hex, body, len, err); /* the index too: pull by its digest works offline */
                json_decref(m);
                free(media);
                free(body);
                media = body = NULL;
                if (r < 0)
                        return r;
                m = fetch_manifest(g, want, want, hex, &media, &body, &len, err);
                if (!m)
                        return -EIO;
                if (img_is_index_media(media)) {
                        json_decref(m);
                        return msb_err(err, EBADMSG, "%s: an index inside an index", name);
                }
        }
        if (is_schema1(media, m)) {
                json_decref(m);
                return msb_err(err, ENOTSUP,
                               "%s: the registry serves a schema 1 manifest, which msb does not support; push the "
                               "image again with a current docker, podman or skopeo",
                               name);
        }
        if (strcmp(media, "application/vnd.oci.image.manifest.v1+json") != 0 &&
            strcmp(media, "application/vnd.docker.distribution.manifest.v2+json") != 0) {
                json_decref(m);
                return msb_err(err, ENOTSUP, "%s: unsupported manifest media type '%s'", name, media);
        }
        json_t *config = json_object_get(m, "config");
        json_t *layers = json_object_get(m, "layers");
        if (json_integer_value(json_object_get(m, "schemaVersion")) != 2 || !json_is_object(config) ||
            !json_is_array(layers) || json_array_size(layers) > IMAGE_MAX_LAYERS) {
                json_decref(m);
                return msb_err(err, EBADMSG, "%s: manifest %s lacks config or layers, or has more than %u layers",
                               name, hex, IMAGE_MAX_LAYERS);
        }
        r = img_store_fetch_blob(s, g, img_desc_digest(config), json_integer_value(json_object_get(config, "size")), NULL, err);
        if (r > 0)
                r = 0;
        /* the config before any layer: a bad one or another platform's
         * fails before the big downloads */
        if (r == 0) {
                /* validate the config now so a bad one fails at pull, not at run */
                const char *chex;
                img_digest_hex(img_desc_digest(config), &chex);
                _cleanup_free_ char *p = xasprintf("blobs/sha256/%s", chex);
                _cleanup_free_ char *cj = NULL;
                size_t cl;
                r = read_file_at(s->fd, p, IMAGE_MAX_JSON, &cj, &cl);
                struct msb_image_config c;
                if (r < 0)
                        r = msb_err_errno(err, r, "%s: image config", name);
                else if ((r = msb_image_config_parse(cj, cl, &c, err)) == 0)
                        msb_image_config_free(&c);
                if (r == 0) {
                        /* a single-platform image must be for this host too */
                        json_t *cfgj = json_loadb(cj, cl, 0, NULL);
                        const char *arch = json_string_value(json_object_get(cfgj, "architecture"));
                        const char *os = json_string_value(json_object_get(cfgj, "os"));
                        if ((arch && strcmp(arch, "amd64") != 0) || (os && strcmp(os, "linux") != 0))
                                r = msb_err(err, ENOEXEC, "%s is an image for %s/%s; this host runs linux/amd64", name,
                                            os ? os : "?", arch ? arch : "?");
                        json_decref(cfgj);
                }
        }
        if (r == 0)
                r = img_fetch_layers(ctx, s, g, layers, name, err);
        /* the manifest goes in last: a blob store never names layers it lacks */
        if (r == 0)
                r = img_store_put_bytes(s, hex, body, len, err);
        if (r == 0)
                r = img_unpack_rootfs(ctx, s, hex, layers, err);
        json_decref(m);
        if (r == 0)
                memcpy(ret_mhex, hex, 65);
        return r;
}

int msb_image_pull(struct msb_ctx *ctx, const char *refstr, char **ret_name, struct msb_error *err)
{
        struct msb_ref ref;
        int r = msb_ref_parse(refstr, &ref, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *name = msb_ref_string(&ref);
        _cleanup_strv_ char **mirrors = NULL;
        bool insecure;
        r = msb_registry_config(ref.domain, &mirrors, &insecure, err);
        if (r < 0) {
                msb_ref_free(&ref);
                return r;
        }
        _cleanup_strv_ char **bases = NULL;
        for (char **m = mirrors; m && *m; m++)
                strv_push(&bases, *m);
        strv_push_take(&bases, msb_reg_upstream(ref.domain, insecure || ctx->insecure));
        struct img_store s;
        r = img_store_open(ctx, &s, LOCK_SH, err);
        if (r < 0) {
                msb_ref_free(&ref);
                return r;
        }
        char mhex[65] = "";
        char tried[1024] = "";
        r = msb_reg_init(err);
        if (r < 0) {
                img_store_close(&s);
                msb_ref_free(&ref);
                return r;
        }
        r = -EIO;
        for (char **b = bases; *b; b++) {
                msb_log(ctx, 1, "pulling %s from %s", name, *b);
                struct reg *g = msb_reg_open(ctx, *b, ref.domain, ref.repo);
                struct msb_error e1 = {0};
                r = pull_from(ctx, &s, g, &ref, name, mhex, &e1);
                msb_reg_close(g);
                if (r == 0)
                        break;
                if (err)
                        *err = e1;
                size_t l = strlen(tried);
                snprintf(tried + l, sizeof(tried) - l, "%s%s", l ? "; " : "", e1.message);
                /* a corrupt or hostile answer is not a reason to try elsewhere quietly */
                if (r == -EBADMSG || r == -ENOTSUP)
                        break;
        }
        if (r < 0 && strv_len(bases) > 1 && r != -EBADMSG && r != -ENOTSUP)
                msb_err(err, r, "cannot pull %s: %s", name, tried);
        if (r == 0 && (r = img_write_ref(s.fd, name, mhex, err)) == 0)
                msb_log(ctx, 0, "pulled %s (sha256:%s)", name, mhex);
        img_store_close(&s);
        msb_ref_free(&ref);
        if (r == 0 && ret_name)
                *ret_name = TAKE_PTR(name);
        return r;
}
