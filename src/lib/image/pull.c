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

#include "common/util.h"
#include "lib/ctx.h"
#include "lib/sha256.h"
#include "lib/image/image.h"

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

/* The manifest ref names: through an index to linux/amd64's (the index
 * stored too: a pull by its digest works offline), and one msb can use.
 * Its sha256 into hex, its bytes into *ret_body and *ret_len. */
static int resolve_manifest(struct img_store *s, struct reg *g, const struct msb_ref *ref, const char *name,
                            char hex[65], char **ret_body, size_t *ret_len, json_t **ret_m, struct msb_error *err)
{
        _cleanup_free_ char *media = NULL, *body = NULL;
        size_t len;
        json_auto_t *m = fetch_manifest(g, ref->digest ? ref->digest : ref->tag, ref->digest, hex, &media, &body, &len,
                                        err);
        if (!m)
                return -EIO;
        if (img_is_index_media(media)) {
                json_t *d = img_index_pick_platform(m, err);
                if (!d)
                        return -ENOENT;
                _cleanup_free_ char *want = xstrdup(img_desc_digest(d) ? img_desc_digest(d) : "");
                const char *wh;
                if (!img_digest_hex(want, &wh))
                        return msb_err(err, EBADMSG, "%s: index entry has a bad digest", name);
                int r = img_store_put_bytes(s, hex, body, len, err);
                json_decref(TAKE_PTR(m));
                free(TAKE_PTR(media));
                free(TAKE_PTR(body));
                if (r < 0)
                        return r;
                m = fetch_manifest(g, want, want, hex, &media, &body, &len, err);
                if (!m)
                        return -EIO;
                if (img_is_index_media(media))
                        return msb_err(err, EBADMSG, "%s: an index inside an index", name);
        }
        if (is_schema1(media, m))
                return msb_err(err, ENOTSUP,
                               "%s: the registry serves a schema 1 manifest, which msb does not support; push the "
                               "image again with a current docker, podman or skopeo",
                               name);
        if (strcmp(media, "application/vnd.oci.image.manifest.v1+json") != 0 &&
            strcmp(media, "application/vnd.docker.distribution.manifest.v2+json") != 0)
                return msb_err(err, ENOTSUP, "%s: unsupported manifest media type '%s'", name, media);
        *ret_m = TAKE_PTR(m);
        *ret_body = TAKE_PTR(body);
        *ret_len = len;
        return 0;
}

/* The config before any layer: a bad one or another platform's fails
 * before the big downloads (and at pull, not at run). */
static int pull_config(struct img_store *s, struct reg *g, json_t *config, const char *name, struct msb_error *err)
{
        int r = img_store_fetch_blob(s, g, img_desc_digest(config), json_integer_value(json_object_get(config, "size")),
                                     NULL, err);
        if (r < 0)
                return r;
        const char *chex;
        img_digest_hex(img_desc_digest(config), &chex);
        _cleanup_free_ char *what = xasprintf("%s: image config", name);
        _cleanup_free_ char *cj = NULL;
        size_t cl;
        r = img_config_check(s->fd, chex, what, &cj, &cl, err);
        if (r < 0)
                return r;
        /* a single-platform image must be for this host too */
        json_auto_t *cfgj = json_loadb(cj, cl, 0, NULL);
        const char *arch = json_string_value(json_object_get(cfgj, "architecture"));
        const char *os = json_string_value(json_object_get(cfgj, "os"));
        if ((arch && strcmp(arch, "amd64") != 0) || (os && strcmp(os, "linux") != 0))
                return msb_err(err, ENOEXEC, "%s is an image for %s/%s; this host runs linux/amd64", name,
                               os ? os : "?", arch ? arch : "?");
        return 0;
}

/* Pull ref from the registry (or mirror) g into the store: the manifest's
 * sha256 into ret_mhex. */
static int pull_from(struct msb_ctx *ctx, struct img_store *s, struct reg *g, const struct msb_ref *ref,
                     const char *name, char *ret_mhex, struct msb_error *err)
{
        char hex[65];
        _cleanup_free_ char *body = NULL;
        size_t len = 0;
        json_auto_t *m = NULL;
        int r = resolve_manifest(s, g, ref, name, hex, &body, &len, &m, err);
        if (r < 0)
                return r;
        json_t *config = json_object_get(m, "config");
        json_t *layers = json_object_get(m, "layers");
        if (json_integer_value(json_object_get(m, "schemaVersion")) != 2 || !json_is_object(config) ||
            !json_is_array(layers) || json_array_size(layers) > IMAGE_MAX_LAYERS)
                return msb_err(err, EBADMSG, "%s: manifest %s lacks config or layers, or has more than %u layers",
                               name, hex, IMAGE_MAX_LAYERS);
        r = pull_config(s, g, config, name, err);
        if (r == 0)
                r = img_fetch_layers(ctx, s, g, layers, name, err);
        /* the manifest goes in last: a blob store never names layers it lacks */
        if (r == 0)
                r = img_store_put_bytes(s, hex, body, len, err);
        if (r == 0)
                r = img_unpack_rootfs(ctx, s, hex, layers, err);
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
