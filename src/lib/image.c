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
 * unpacked by tar.c's confined writer.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define MAX_JSON_SIZE (4u << 20) /* index, manifest, config */
#define MAX_LAYERS 128u
#define MAX_CONFIG_LIST 4096u /* entries in Env / Cmd / Entrypoint */

void msb_image_config_free(struct msb_image_config *c)
{
        strv_free(c->entrypoint);
        strv_free(c->cmd);
        strv_free(c->env);
        free(c->workdir);
        free(c->user);
        memset(c, 0, sizeof(*c));
}

static bool digest_hex(const char *digest, const char **ret_hex)
{
        if (!digest || strncmp(digest, "sha256:", 7) != 0)
                return false;
        const char *h = digest + 7;
        if (strlen(h) != 64)
                return false;
        for (int i = 0; i < 64; i++)
                if (!isdigit((unsigned char)h[i]) && !(h[i] >= 'a' && h[i] <= 'f'))
                        return false;
        *ret_hex = h;
        return true;
}

int msb_image_name_normalize(const char *name, char **ret, struct msb_error *err)
{
        if (!name || !*name)
                return msb_err(err, EINVAL, "image name is empty");
        size_t n = strlen(name);
        if (n > 255)
                return msb_err(err, EINVAL, "image name '%.40s...' is longer than 255 characters", name);
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || strchr("._-/:@", c)))
                        return msb_err(err, EINVAL,
                                       "image name '%s': character '%c' is not allowed (use lowercase letters, "
                                       "digits and . _ - / :)",
                                       name, c);
        }
        if (name[0] == '/' || name[0] == '.' || name[0] == '-' || strstr(name, "//") || strstr(name, ".."))
                return msb_err(err, EINVAL, "image name '%s' is malformed", name);
        const char *last = strrchr(name, '/');
        const char *colon = strchr(last ? last : name, ':');
        if (colon && !colon[1])
                return msb_err(err, EINVAL, "image name '%s' has an empty tag", name);
        *ret = colon || strchr(name, '@') ? xstrdup(name) : xasprintf("%s:latest", name);
        return 0;
}

static char *ref_file_name(const char *name)
{
        char *out = xmalloc(strlen(name) * 3 + 1);
        char *o = out;
        for (const char *s = name; *s; s++) {
                if (*s == '/' || *s == ':' || *s == '%' || *s == '@')
                        o += sprintf(o, "%%%02X", (unsigned char)*s);
                else
                        *o++ = *s;
        }
        *o = '\0';
        return out;
}

static json_t *load_json_at(int dirfd, const char *path, struct msb_error *err, const char *what)
{
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r = read_file_at(dirfd, path, MAX_JSON_SIZE, &data, &len);
        if (r < 0) {
                msb_err(err, r, "%s: cannot read %s: %s", what, path, r == -EFBIG ? "larger than 4 MiB" : strerror(-r));
                return NULL;
        }
        json_error_t je;
        json_t *j = json_loadb(data, len, 0, &je);
        if (!j || !json_is_object(j)) {
                json_decref(j);
                msb_err(err, EINVAL, "%s: %s is not a JSON object (%s)", what, path, j ? "wrong type" : je.text);
                return NULL;
        }
        return j;
}

static int json_strv(json_t *a, char ***ret, const char *field, struct msb_error *err)
{
        *ret = NULL;
        if (!a || json_is_null(a))
                return 0;
        if (!json_is_array(a) || json_array_size(a) > MAX_CONFIG_LIST)
                return msb_err(err, EINVAL, "image config: %s must be an array of at most %u strings", field,
                               MAX_CONFIG_LIST);
        char **v = xcalloc(1, sizeof(char *));
        size_t i;
        json_t *x;
        json_array_foreach(a, i, x)
        {
                if (!json_is_string(x) || strlen(json_string_value(x)) != json_string_length(x)) {
                        strv_free(v);
                        return msb_err(err, EINVAL, "image config: %s[%zu] is not a string", field, i);
                }
                strv_push(&v, json_string_value(x));
        }
        *ret = v;
        return 0;
}

int msb_image_config_parse(const char *json, size_t len, struct msb_image_config *ret, struct msb_error *err)
{
        json_error_t je;
        json_t *root = json_loadb(json, len, 0, &je);
        if (!root || !json_is_object(root)) {
                json_decref(root);
                return msb_err(err, EINVAL, "image config is not a JSON object");
        }
        struct msb_image_config c = {0};
        json_t *cfg = json_object_get(root, "config");
        int r = 0;
        if (cfg && json_is_object(cfg)) {
                r = json_strv(json_object_get(cfg, "Entrypoint"), &c.entrypoint, "Entrypoint", err);
                if (r == 0)
                        r = json_strv(json_object_get(cfg, "Cmd"), &c.cmd, "Cmd", err);
                if (r == 0)
                        r = json_strv(json_object_get(cfg, "Env"), &c.env, "Env", err);
                for (char **e = c.env; r == 0 && e && *e; e++)
                        if (!strchr(*e, '=') || **e == '=')
                                r = msb_err(err, EINVAL, "image config: Env entry '%s' is not KEY=VALUE", *e);
                json_t *w = json_object_get(cfg, "WorkingDir");
                if (r == 0 && json_is_string(w) && json_string_length(w) > 0) {
                        c.workdir = xstrdup(json_string_value(w));
                        if (c.workdir[0] != '/')
                                r = msb_err(err, EINVAL, "image config: WorkingDir '%s' is not absolute", c.workdir);
                }
                json_t *u = json_object_get(cfg, "User");
                if (r == 0 && json_is_string(u) && json_string_length(u) > 0)
                        c.user = xstrdup(json_string_value(u));
        } else if (cfg && !json_is_null(cfg))
                r = msb_err(err, EINVAL, "image config: 'config' is not an object");
        json_decref(root);
        if (r < 0) {
                msb_image_config_free(&c);
                return r;
        }
        *ret = c;
        return 0;
}

struct store {
        char *root; /* <data>/images */
        int fd;
};

static int store_open(struct msb_ctx *ctx, struct store *s, struct msb_error *err)
{
        s->root = xasprintf("%s/images", ctx->data_dir);
        static const char *const sub[] = {"blobs/sha256", "rootfs", "refs", "tmp"};
        for (size_t i = 0; i < ARRAY_SIZE(sub); i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", s->root, sub[i]);
                int r = mkdir_p(p, 0755);
                if (r < 0) {
                        free(s->root);
                        return msb_err(err, r, "cannot create image store %s: %s", p, strerror(-r));
                }
        }
        s->fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->fd < 0) {
                int e = errno;
                msb_err(err, e, "cannot open image store %s: %s", s->root, strerror(e));
                free(s->root);
                return -e;
        }
        return 0;
}

static void store_close(struct store *s)
{
        free(s->root);
        if (s->fd >= 0)
                close(s->fd);
}

/* Copy blob <hex> from a layout's blobs dir into the store, verifying it. */
static int store_put_blob(struct store *s, int layout_fd, const char *digest, json_int_t size, struct msb_error *err)
{
        const char *hex;
        if (!digest_hex(digest, &hex))
                return msb_err(err, EINVAL, "digest '%s' is not sha256:<64 hex digits>", digest ? digest : "");
        _cleanup_free_ char *dst = xasprintf("blobs/sha256/%s", hex);
        if (faccessat(s->fd, dst, R_OK, 0) == 0)
                return 0;
        _cleanup_free_ char *src = xasprintf("blobs/sha256/%s", hex);
        _cleanup_close_ int in = openat(layout_fd, src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (in < 0)
                return msb_err(err, errno, "blob %s: %s", digest, strerror(errno));
        char rnd[17];
        random_hex(rnd, 8);
        _cleanup_free_ char *tmp = xasprintf("tmp/blob-%s", rnd);
        _cleanup_close_ int out = openat(s->fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (out < 0)
                return msb_err(err, errno, "cannot create %s/%s: %s", s->root, tmp, strerror(errno));
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
                        r = msb_err(err, errno, "blob %s: read: %s", digest, strerror(errno));
                        break;
                }
                if (n == 0)
                        break;
                sha256_update(&h, buf, (size_t)n);
                total += (uint64_t)n;
                r = write_all(out, buf, (size_t)n);
                if (r < 0) {
                        r = msb_err(err, r, "blob %s: write: %s", digest, strerror(-r));
                        break;
                }
        }
        char got[65];
        sha256_hex(&h, got);
        if (r == 0 && strcmp(got, hex) != 0)
                r = msb_err(err, EBADMSG, "blob %s: content does not match its digest (got sha256:%s)", digest, got);
        if (r == 0 && size >= 0 && (uint64_t)size != total)
                r = msb_err(err, EBADMSG, "blob %s: size %llu does not match the descriptor's %lld", digest,
                            (unsigned long long)total, (long long)size);
        if (r == 0 && fsync(out) < 0)
                r = msb_err(err, errno, "blob %s: fsync: %s", digest, strerror(errno));
        if (r == 0 && renameat(s->fd, tmp, s->fd, dst) < 0)
                r = msb_err(err, errno, "blob %s: rename: %s", digest, strerror(errno));
        if (r < 0)
                unlinkat(s->fd, tmp, 0);
        return r;
}

static const char *desc_digest(json_t *d)
{
        return json_string_value(json_object_get(d, "digest"));
}

static const char *desc_media(json_t *d)
{
        const char *m = json_string_value(json_object_get(d, "mediaType"));
        return m ? m : "";
}

static bool is_index_media(const char *m)
{
        return !strcmp(m, "application/vnd.oci.image.index.v1+json") ||
               !strcmp(m, "application/vnd.docker.distribution.manifest.list.v2+json");
}

/* From an index, pick linux/amd64. */
static json_t *index_pick_platform(json_t *index, struct msb_error *err)
{
        json_t *ms = json_object_get(index, "manifests");
        if (!json_is_array(ms) || json_array_size(ms) == 0) {
                msb_err(err, EINVAL, "image index has no manifests");
                return NULL;
        }
        size_t i;
        json_t *d;
        char avail[512] = "";
        json_array_foreach(ms, i, d)
        {
                json_t *p = json_object_get(d, "platform");
                const char *os = json_string_value(json_object_get(p, "os"));
                const char *arch = json_string_value(json_object_get(p, "architecture"));
                if (!p)
                        return d; /* a single-platform layout without platform info */
                if (os && arch && !strcmp(os, "linux") && !strcmp(arch, "amd64"))
                        return d;
                size_t l = strlen(avail);
                snprintf(avail + l, sizeof(avail) - l, "%s%s/%s", l ? ", " : "", os ? os : "?", arch ? arch : "?");
        }
        msb_err(err, ENOENT, "image has no linux/amd64 variant (available: %s)", avail);
        return NULL;
}

static int unpack_rootfs(struct msb_ctx *ctx, struct store *s, const char *mhex, json_t *layers, struct msb_error *err)
{
        _cleanup_free_ char *final = xasprintf("rootfs/%s", mhex);
        if (faccessat(s->fd, final, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return 0;
        char rnd[17];
        random_hex(rnd, 8);
        _cleanup_free_ char *tmp = xasprintf("tmp/rootfs-%s", rnd);
        if (mkdirat(s->fd, tmp, 0755) < 0)
                return msb_err(err, errno, "cannot create %s/%s: %s", s->root, tmp, strerror(errno));
        int r = 0;
        _cleanup_close_ int rootfd = openat(s->fd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (rootfd < 0)
                r = msb_err(err, errno, "cannot open %s: %s", tmp, strerror(errno));
        size_t i;
        json_t *l;
        json_array_foreach(layers, i, l)
        {
                if (r < 0)
                        break;
                const char *hex;
                const char *dg = desc_digest(l);
                if (!digest_hex(dg, &hex)) {
                        r = msb_err(err, EINVAL, "layer %zu: bad digest", i);
                        break;
                }
                const char *mt = desc_media(l);
                if (strstr(mt, "zstd")) {
                        r = msb_err(err, ENOTSUP, "layer %s: zstd-compressed layers are not supported yet", dg);
                        break;
                }
                _cleanup_free_ char *bp = xasprintf("blobs/sha256/%s", hex);
                _cleanup_close_ int bfd = openat(s->fd, bp, O_RDONLY | O_CLOEXEC);
                if (bfd < 0) {
                        r = msb_err(err, errno, "layer %s: %s", dg, strerror(errno));
                        break;
                }
                struct tar_stats st;
                r = tar_unpack(bfd, rootfd, &st, err);
                if (r < 0) {
                        msb_err_wrap(err, r, "layer %s rejected", dg);
                        break;
                }
                msb_log(ctx, 1, "unpacked layer %.19s: %llu entries, %llu bytes", dg, (unsigned long long)st.entries,
                        (unsigned long long)st.bytes);
        }
        if (r == 0 && renameat(s->fd, tmp, s->fd, final) < 0) {
                if (errno == EEXIST || errno == ENOTEMPTY)
                        r = 0; /* a concurrent import won; ours is identical */
                else
                        r = msb_err(err, errno, "cannot move rootfs into place: %s", strerror(errno));
                rm_rf_at(s->fd, tmp);
        } else if (r < 0)
                rm_rf_at(s->fd, tmp);
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
                return msb_err(err, errno, "OCI layout '%s': %s", layout_dir, strerror(errno));
        if (faccessat(lfd, "oci-layout", R_OK, 0) < 0)
                return msb_err(err, EINVAL, "'%s' is not an OCI image layout (no oci-layout file)", layout_dir);
        struct store s;
        r = store_open(ctx, &s, err);
        if (r < 0)
                return r;
        json_t *index = load_json_at(lfd, "index.json", err, layout_dir);
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
        for (int depth = 0; depth < 2 && is_index_media(desc_media(desc)); depth++) {
                const char *hex;
                if (!digest_hex(desc_digest(desc), &hex)) {
                        r = msb_err(err, EINVAL, "index entry has a bad digest");
                        goto out;
                }
                r = store_put_blob(&s, lfd, desc_digest(desc), json_integer_value(json_object_get(desc, "size")), err);
                if (r < 0)
                        goto out;
                _cleanup_free_ char *p = xasprintf("blobs/sha256/%s", hex);
                json_decref(sub);
                sub = load_json_at(s.fd, p, err, "image index");
                if (!sub) {
                        r = -EINVAL;
                        goto out;
                }
                desc = index_pick_platform(sub, err);
                if (!desc) {
                        r = -ENOENT;
                        goto out;
                }
        }
        const char *mdigest = desc_digest(desc), *mhex;
        if (!digest_hex(mdigest, &mhex)) {
                r = msb_err(err, EINVAL, "manifest descriptor has a bad digest");
                goto out;
        }
        r = store_put_blob(&s, lfd, mdigest, json_integer_value(json_object_get(desc, "size")), err);
        if (r < 0)
                goto out;
        {
                _cleanup_free_ char *p = xasprintf("blobs/sha256/%s", mhex);
                manifest = load_json_at(s.fd, p, err, "image manifest");
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
        if (json_array_size(layers) > MAX_LAYERS) {
                r = msb_err(err, E2BIG, "image manifest %s: %zu layers (limit %u)", mdigest, json_array_size(layers),
                            MAX_LAYERS);
                goto out;
        }
        r = store_put_blob(&s, lfd, desc_digest(config), json_integer_value(json_object_get(config, "size")), err);
        if (r < 0)
                goto out;
        json_array_foreach(layers, i, d)
        {
                r = store_put_blob(&s, lfd, desc_digest(d), json_integer_value(json_object_get(d, "size")), err);
                if (r < 0)
                        goto out;
        }
        /* validate the config now so a bad one fails at import, not at run */
        {
                const char *chex;
                digest_hex(desc_digest(config), &chex);
                _cleanup_free_ char *p = xasprintf("blobs/sha256/%s", chex);
                _cleanup_free_ char *cj = NULL;
                size_t cl;
                r = read_file_at(s.fd, p, MAX_JSON_SIZE, &cj, &cl);
                if (r < 0) {
                        r = msb_err(err, r, "image config: %s", strerror(-r));
                        goto out;
                }
                struct msb_image_config c;
                r = msb_image_config_parse(cj, cl, &c, err);
                if (r < 0)
                        goto out;
                msb_image_config_free(&c);
        }
        r = unpack_rootfs(ctx, &s, mhex, layers, err);
        if (r < 0)
                goto out;
        {
                _cleanup_free_ char *rf = ref_file_name(norm);
                _cleanup_free_ char *rp = xasprintf("refs/%s", rf);
                _cleanup_free_ char *line = xasprintf("%s\n", mdigest);
                r = write_file_atomic_at(s.fd, rp, line, strlen(line), 0644);
                if (r < 0)
                        r = msb_err(err, r, "cannot record image name: %s", strerror(-r));
        }
        msb_log(ctx, 0, "imported %s as %s", mdigest, norm);
out:
        json_decref(index);
        json_decref(sub);
        json_decref(manifest);
        store_close(&s);
        return r;
}

int msb_image_open(struct msb_ctx *ctx, const char *ref, char **ret_rootfs, struct msb_image_config *ret_cfg,
                   struct msb_error *err)
{
        _cleanup_free_ char *norm = NULL;
        int r = msb_image_name_normalize(ref, &norm, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *root = xasprintf("%s/images", ctx->data_dir);
        _cleanup_close_ int sfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *rf = ref_file_name(norm);
        _cleanup_free_ char *rp = xasprintf("refs/%s", rf);
        _cleanup_free_ char *line = NULL;
        if (sfd < 0 || read_file_at(sfd, rp, 4096, &line, NULL) < 0)
                return msb_err(err, ENOENT,
                               "image '%s' not found in the local store (%s); import it with "
                               "'msb image import DIR %s'",
                               norm, root, ref);
        line[strcspn(line, "\n")] = '\0';
        const char *mhex;
        if (!digest_hex(line, &mhex))
                return msb_err(err, EINVAL, "image '%s': store entry %s/%s is corrupt", norm, root, rp);
        _cleanup_free_ char *mp = xasprintf("blobs/sha256/%s", mhex);
        json_t *m = load_json_at(sfd, mp, err, "image manifest");
        if (!m)
                return -EINVAL;
        const char *chex;
        if (!digest_hex(desc_digest(json_object_get(m, "config")), &chex)) {
                json_decref(m);
                return msb_err(err, EINVAL, "image '%s': manifest has no valid config digest", norm);
        }
        _cleanup_free_ char *cp = xasprintf("blobs/sha256/%s", chex);
        json_decref(m);
        _cleanup_free_ char *cj = NULL;
        size_t cl;
        r = read_file_at(sfd, cp, MAX_JSON_SIZE, &cj, &cl);
        if (r < 0)
                return msb_err(err, r, "image '%s': cannot read config: %s", norm, strerror(-r));
        _cleanup_free_ char *rootfs = xasprintf("%s/rootfs/%s", root, mhex);
        struct stat st;
        if (stat(rootfs, &st) < 0 || !S_ISDIR(st.st_mode))
                return msb_err(err, ENOENT, "image '%s': unpacked root %s is missing; import the image again", norm,
                               rootfs);
        r = msb_image_config_parse(cj, cl, ret_cfg, err);
        if (r < 0)
                return msb_err_wrap(err, r, "image '%s'", norm);
        *ret_rootfs = TAKE_PTR(rootfs);
        return 0;
}
