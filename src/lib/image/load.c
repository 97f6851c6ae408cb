/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb load: a docker save archive or an OCI archive (untrusted, unpacked
 * by tar/ into the store's tmp/) into the store.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "common/util.h"
#include "msb.h"
#include "lib/sha256.h"
#include "lib/config.h"
#include "lib/tar/unpack.h"
#include "lib/image/image.h"

static char *canonical_name(const char *n)
{
        struct msb_ref r;
        struct msb_error ig;
        if (msb_ref_parse(n, &r, &ig) < 0)
                return NULL;
        char *s = msb_ref_string(&r);
        msb_ref_free(&r);
        return s;
}

/* Copy a file of the unpacked archive into the blob store under its sha256;
 * fills hex and size. */
static int store_put_file(struct img_store *s, int dirfd, const char *path, char *hex, uint64_t *size,
                          struct msb_error *err)
{
        _cleanup_close_ int in = open_beneath_at(dirfd, path);
        if (in < 0)
                return msb_err_errno(err, -in, "archive entry '%s'", path);
        _cleanup_free_ char *tmp = NULL;
        /* a docker save archive declares no sizes: the unpack budget
         * bounded the file already; one blob's own cap on top */
        int r = img_store_copy_in(s, in, path, IMAGE_MAX_BLOB, &tmp, hex, size, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *dst = xasprintf("blobs/sha256/%s", hex);
        if (renameat(s->fd, tmp, s->fd, dst) < 0) {
                r = msb_err_errno(err, errno, "cannot store %s", path);
                unlinkat(s->fd, tmp, 0);
        }
        return r;
}

/* An image's config file into the store, checked. */
static int docker_config(struct img_store *s, int dirfd, const char *cfg, char chex[65], uint64_t *csize,
                         struct msb_error *err)
{
        int r = store_put_file(s, dirfd, cfg, chex, csize, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *cp = xasprintf("blobs/sha256/%s", chex);
        _cleanup_free_ char *cj = NULL;
        size_t cl;
        struct msb_image_config c;
        r = read_file_at(s->fd, cp, IMAGE_MAX_JSON, &cj, &cl);
        if (r < 0 || (r = msb_image_config_parse(cj, cl, &c, err)) < 0) {
                if (r != -EINVAL)
                        msb_err_errno(err, r, "docker archive: config %s", cfg);
                return r;
        }
        msb_image_config_free(&c);
        return 0;
}

/* Image i's layers into the store and a manifest that names them and the
 * config chex (csize bytes) into m. */
static int docker_layers(struct img_store *s, int dirfd, size_t i, json_t *layers, const char *chex, uint64_t csize,
                         json_t **ret_m, struct msb_error *err)
{
        json_auto_t *m = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[]}", "schemaVersion", 2, "mediaType",
                                   "application/vnd.docker.distribution.manifest.v2+json", "config", "mediaType",
                                   "application/vnd.docker.container.image.v1+json", "digest", "", "size",
                                   (json_int_t)csize, "layers");
        _cleanup_free_ char *cd = xasprintf("sha256:%s", chex);
        json_object_set_new(json_object_get(m, "config"), "digest", json_string(cd));
        size_t k;
        json_t *l;
        json_array_foreach(layers, k, l)
        {
                const char *lp = json_string_value(l);
                char lhex[65];
                uint64_t lsize;
                if (!lp)
                        return msb_err(err, EINVAL, "docker archive: image %zu: a layer is not a path", i);
                int r = store_put_file(s, dirfd, lp, lhex, &lsize, err);
                if (r < 0)
                        return r;
                _cleanup_free_ char *ld = xasprintf("sha256:%s", lhex);
                json_array_append_new(json_object_get(m, "layers"),
                                      json_pack("{s:s, s:s, s:I}", "mediaType",
                                                "application/vnd.docker.image.rootfs.diff.tar", "digest", ld, "size",
                                                (json_int_t)lsize));
        }
        *ret_m = TAKE_PTR(m);
        return 0;
}

/* Record image i (manifest mhex) under the name given, else under the
 * archive's RepoTags; each name into *names. */
static int docker_names(struct img_store *s, json_t *e, size_t i, const char *name, const char *mhex, char ***names,
                        struct msb_error *err)
{
        _cleanup_strv_ char **tags = NULL;
        if (name)
                strv_push(&tags, name);
        else {
                size_t t;
                json_t *tv;
                json_array_foreach(json_object_get(e, "RepoTags"), t, tv)
                        if (json_string_value(tv))
                                strv_push(&tags, json_string_value(tv));
        }
        if (!tags)
                return msb_err(err, EINVAL,
                               "docker archive: image %zu has no RepoTags; give it a name: msb load -i FILE NAME", i);
        for (char **t = tags; *t; t++) {
                _cleanup_free_ char *canon = canonical_name(*t);
                if (!canon)
                        return msb_err(err, EINVAL, "docker archive: '%s' is not a valid image name", *t);
                int r = img_write_ref(s->fd, canon, mhex, err);
                if (r < 0)
                        return r;
                strv_push(names, canon);
        }
        return 0;
}

/* Entry i of a docker save manifest.json into the store. */
static int docker_image(struct msb_ctx *ctx, struct img_store *s, int dirfd, json_t *e, size_t i, const char *name,
                        char ***names, struct msb_error *err)
{
        const char *cfg = json_string_value(json_object_get(e, "Config"));
        json_t *layers = json_object_get(e, "Layers");
        if (!cfg || !json_is_array(layers) || json_array_size(layers) > IMAGE_MAX_LAYERS)
                return msb_err(err, EINVAL, "docker archive: image %zu lacks Config or Layers", i);
        char chex[65];
        uint64_t csize;
        int r = docker_config(s, dirfd, cfg, chex, &csize, err);
        json_auto_t *m = NULL;
        if (r == 0)
                r = docker_layers(s, dirfd, i, layers, chex, csize, &m, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *mj = json_dumps(m, JSON_COMPACT);
        char mhex[65];
        struct sha256 h;
        sha256_init(&h);
        sha256_update(&h, mj, strlen(mj));
        sha256_hex(&h, mhex);
        r = img_store_put_bytes(s, mhex, mj, strlen(mj), err);
        if (r == 0)
                r = img_unpack_rootfs(ctx, s, mhex, json_object_get(m, "layers"), err);
        if (r == 0)
                r = docker_names(s, e, i, name, mhex, names, err);
        return r;
}

/* docker save: manifest.json lists Config, RepoTags and Layers (plain or
 * gzip tars) per image. */
static int load_docker(struct msb_ctx *ctx, struct img_store *s, int dirfd, const char *name, char ***names,
                       struct msb_error *err)
{
        _cleanup_free_ char *raw = NULL;
        size_t rawlen;
        int r = read_file_beneath(dirfd, "manifest.json", IMAGE_MAX_JSON, &raw, &rawlen);
        if (r < 0)
                return msb_err_errno(err, r, "docker archive: manifest.json");
        json_error_t je;
        json_auto_t *list = json_loadb(raw, rawlen, JSON_REJECT_DUPLICATES, &je);
        if (!list)
                return msb_err(err, EINVAL, "docker archive: manifest.json: %s (line %d)", je.text, je.line);
        if (!json_is_array(list) || json_array_size(list) == 0)
                return msb_err(err, EINVAL, "docker archive: manifest.json lists no images");
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e)
        {
                r = docker_image(ctx, s, dirfd, e, i, name, names, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* An OCI archive: import each tagged manifest of the layout dir (dfd),
 * under the name given, else the one its annotations give. */
static int load_oci(struct msb_ctx *ctx, int dfd, const char *dir, const char *name, char ***names,
                    struct msb_error *err)
{
        json_auto_t *index = img_load_json_at(dfd, "index.json", err, "OCI archive");
        if (!index)
                return -EINVAL;
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(index, "manifests"), i, d)
        {
                json_t *ann = json_object_get(d, "annotations");
                const char *ref = json_string_value(json_object_get(ann, "org.opencontainers.image.ref.name"));
                const char *full = json_string_value(json_object_get(ann, "io.containerd.image.name"));
                const char *want = name ? name : full ? full : (ref && strpbrk(ref, "/:") ? ref : NULL);
                if (!want)
                        return msb_err(err, EINVAL,
                                       "OCI archive: manifest %zu has no image name; give one: msb load -i FILE NAME",
                                       i);
                _cleanup_free_ char *canon = canonical_name(want);
                if (!canon)
                        return msb_err(err, EINVAL, "OCI archive: '%s' is not a valid image name", want);
                int r = msb_image_import(ctx, dir, ref, canon, err);
                if (r < 0)
                        return r;
                strv_push(names, canon);
                if (name)
                        break;
        }
        return 0;
}

/* Unpack the archive fd into a new tmp/load-* of the store (*ret_tmp,
 * opened as *ret_dfd), by the same hardened code as a layer. */
static int unpack_archive(struct img_store *s, int fd, const char *file, char **ret_tmp, int *ret_dfd,
                          struct msb_error *err)
{
        char rnd[17];
        random_hex(rnd, 8);
        _cleanup_free_ char *tmp = xasprintf("tmp/load-%s", rnd);
        if (mkdirat(s->fd, tmp, 0700) < 0)
                return msb_err_errno(err, errno, "cannot create %s/%s", s->root, tmp);
        *ret_tmp = xstrdup(tmp);
        int dfd = openat(s->fd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        *ret_dfd = dfd;
        struct tar_stats st;
        struct tar_opts opts = TAR_OPTS_DEFAULT;
        opts.plain = true;
        int r = msb_config_unpack_limits(&opts.max_bytes, &opts.max_entries, err);
        if (r == 0)
                r = dfd < 0 ? msb_err(err, errno, "cannot open %s", tmp) : tar_unpack(fd, dfd, &opts, &st, err);
        if (r < 0)
                msb_err_wrap(err, r, "'%s' is not a readable image archive", file);
        return r;
}

int msb_image_load(struct msb_ctx *ctx, const char *file, const char *name, char ***ret_names, struct msb_error *err)
{
        *ret_names = NULL;
        /* O_NONBLOCK: a fifo must not hang us (later holding the store lock) */
        _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0)
                return msb_err_errno(err, errno, "'%s'", file);
        struct stat fst;
        if (fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode))
                return msb_err(err, EINVAL, "'%s' is not a regular file; save the archive to a file first", file);
        fcntl(fd, F_SETFL, 0);
        struct img_store s;
        /* locked before anything is put in tmp/ */
        int r = img_store_open(ctx, &s, LOCK_SH, err);
        if (r < 0)
                return r;
        /* the archive is untrusted: unpacked by the same hardened code as a
         * layer, into the store's tmp, removed afterwards */
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int dfd = -1;
        r = unpack_archive(&s, fd, file, &tmp, &dfd, err);
        if (r == 0 && faccessat(dfd, "manifest.json", R_OK, 0) == 0) {
                r = load_docker(ctx, &s, dfd, name, ret_names, err);
        } else if (r == 0 && faccessat(dfd, "oci-layout", R_OK, 0) == 0) {
                _cleanup_free_ char *dir = xasprintf("%s/%s", s.root, tmp);
                r = load_oci(ctx, dfd, dir, name, ret_names, err);
        } else if (r == 0) {
                r = msb_err(err, EINVAL,
                            "'%s' is neither a docker save archive (manifest.json) nor an OCI archive (oci-layout)", file);
        }
        if (tmp)
                rm_rf_at(s.fd, tmp);
        img_store_close(&s);
        if (r < 0) {
                strv_free(*ret_names);
                *ret_names = NULL;
        }
        return r;
}
