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
#include <dirent.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <time.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define MAX_JSON_SIZE (4u << 20) /* index, manifest, config */
#define MAX_LAYERS 128u
#define MAX_BLOB_SIZE (16ULL << 30) /* one layer */
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

/* Point name at manifest <hex> (atomically: a reader sees the old or the new). */
static int write_ref(int store_fd, const char *name, const char *hex, struct msb_error *err)
{
        _cleanup_free_ char *rf = ref_file_name(name);
        _cleanup_free_ char *rp = xasprintf("refs/%s", rf);
        _cleanup_free_ char *line = xasprintf("sha256:%s\n", hex);
        int r = write_file_atomic_at(store_fd, rp, line, strlen(line), 0644);
        return r < 0 ? msb_err_errno(err, r, "cannot record image name %s", name) : 0;
}

static json_t *load_json_at(int dirfd, const char *path, struct msb_error *err, const char *what)
{
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r = read_file_beneath(dirfd, path, MAX_JSON_SIZE, &data, &len);
        if (r == -EFBIG || r == -EINVAL) {
                msb_err(err, r, "%s: cannot read %s: %s", what, path,
                        r == -EFBIG ? "larger than 4 MiB" : "not a regular file");
                return NULL;
        }
        if (r < 0) {
                msb_err_errno(err, r, "%s: cannot read %s", what, path);
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
        struct msb_ctx *ctx;
        char *root; /* <data>/images */
        int fd;
        int lock;   /* -1 until store_lock */
};

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

static int store_open_unlocked(struct msb_ctx *ctx, struct store *s, struct msb_error *err)
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

static void store_close(struct store *s)
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
static void store_sweep_tmp(struct store *s)
{
        _cleanup_close_ int dfd = openat(s->fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        DIR *d = dfd >= 0 ? fdopendir_dup(dfd) : NULL;
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
        closedir(d);
}

static bool rootfs_in_use(struct msb_ctx *ctx, const char *rootfs);

/* Does a named sandbox (running or not) sit on this image root?  Its disk
 * was made on it.  *who (if not NULL) gets the first such name. */
static bool sandbox_uses_rootfs(struct msb_ctx *ctx, const char *rootfs, char **who)
{
        _cleanup_free_ char *top = xstrdup(ctx->sandboxes_dir);
        DIR *d = opendir(top);
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
        closedir(d);
        return used;
}

/*
 * The store's format: 2 since unpacked roots hold no owners, setuid bits
 * or device nodes of their images (tar.c); 3 since they are readable by
 * every user (a shared store serves every user's msb-fsd).  Roots unpacked by an older msb
 * are removed (unless a sandbox runs from one) and unpacked again from
 * their blobs when next used.  Called with the store lock exclusive.
 */
#define STORE_FORMAT "3\n"

static bool store_current_at(int sfd)
{
        char buf[8] = {0};
        _cleanup_close_ int fd = openat(sfd, "format", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        return fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0 && !strcmp(buf, STORE_FORMAT);
}

static void store_migrate(struct msb_ctx *ctx, struct store *s)
{
        if (store_current_at(s->fd))
                return;
        _cleanup_close_ int dfd = openat(s->fd, "rootfs", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        DIR *d = dfd >= 0 ? fdopendir_dup(dfd) : NULL;
        if (!d)
                return;
        bool busy = false;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *full = xasprintf("%s/rootfs/%s", s->root, de->d_name);
                if (rootfs_in_use(ctx, full) || rm_rf_at(dfd, de->d_name) < 0)
                        busy = true; /* not current until every old root is gone */
        }
        closedir(d);
        if (!busy)
                write_file_atomic_at(s->fd, "format", STORE_FORMAT, strlen(STORE_FORMAT), 0600);
}

static int store_lock(struct store *s, int how, struct msb_error *err)
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
static int store_open(struct msb_ctx *ctx, struct store *s, int how, struct msb_error *err)
{
        int r = store_open_unlocked(ctx, s, err);
        if (r < 0)
                return r;
        r = store_lock(s, how, err);
        if (r < 0)
                store_close(s);
        return r;
}

/* Copy fd in into a new tmp/blob-<random> of the store, hashing it on the
 * way: *ret_tmp (store-relative), its sha256 hex and size.  On error the
 * tmp file is gone. */
static int store_copy_in(struct store *s, int in, const char *what, uint64_t max, char **ret_tmp, char hex[65],
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
static int store_put_blob(struct store *s, int layout_fd, const char *digest, json_int_t size, struct msb_error *err)
{
        const char *hex;
        if (!digest_hex(digest, &hex))
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
        int r = store_copy_in(s, in, digest, size >= 0 ? (uint64_t)size : MAX_BLOB_SIZE, &tmp, got, &total, err);
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
                const char *dg = desc_digest(l);
                if (!digest_hex(dg, &hex)) {
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
        struct store s;
        r = store_open(ctx, &s, LOCK_SH, err);
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
                        r = msb_err_errno(err, r, "image config");
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
        r = write_ref(s.fd, norm, mhex, err);
        if (r < 0)
                goto out;
        msb_log(ctx, 0, "imported %s as %s", mdigest, norm);
out:
        json_decref(index);
        json_decref(sub);
        json_decref(manifest);
        store_close(&s);
        return r;
}

/* The manifest hex the store at sfd names ref by (as imported, or as the
 * registry name it stands for); *io_norm becomes the name found. */
static bool store_find_ref(int sfd, const char *ref, char **io_norm, char ret_hex[65])
{
        _cleanup_free_ char *line = NULL;
        _cleanup_free_ char *rf = ref_file_name(*io_norm);
        _cleanup_free_ char *rp = xasprintf("refs/%s", rf);
        if (read_file_at(sfd, rp, 4096, &line, NULL) < 0) {
                struct msb_ref rr;
                struct msb_error ignore;
                if (msb_ref_parse(ref, &rr, &ignore) < 0)
                        return false;
                _cleanup_free_ char *canon = msb_ref_string(&rr);
                _cleanup_free_ char *crf = ref_file_name(canon);
                _cleanup_free_ char *crp = xasprintf("refs/%s", crf);
                msb_ref_free(&rr);
                if (read_file_at(sfd, crp, 4096, &line, NULL) < 0)
                        return false;
                free(*io_norm);
                *io_norm = TAKE_PTR(canon);
        }
        line[strcspn(line, "\n")] = '\0';
        const char *mhex;
        if (!digest_hex(line, &mhex))
                return false;
        memcpy(ret_hex, mhex, 65);
        return true;
}

/* Unpack the root of manifest mhex again (a store migrated from an older
 * format, a root removed by hand): its blobs are all there. */
static int store_reunpack(struct msb_ctx *ctx, const char *mhex, struct msb_error *err)
{
        struct store s;
        int r = store_open(ctx, &s, LOCK_SH, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *mp = xasprintf("blobs/sha256/%s", mhex);
        json_t *m = load_json_at(s.fd, mp, err, "image manifest");
        r = m ? unpack_rootfs(ctx, &s, mhex, json_object_get(m, "layers"), err) : -EINVAL;
        json_decref(m);
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
                return msb_err_errno(err, r, "image '%s': cannot read config", norm);
        _cleanup_free_ char *rootfs = xasprintf("%s/rootfs/%s", root, mhex);
        struct stat st;
        if (root == mine && !store_current_at(sfd)) {
                /* an older store: make it private, drop its old roots */
                r = store_reunpack(ctx, mhex, err);
                if (r < 0)
                        return msb_err_wrap(err, r, "image '%s'", norm);
                /* never run from a root an older msb unpacked */
                if (!store_current_at(sfd))
                        return msb_err(err, EBUSY,
                                       "the image store %s is being upgraded, and another msb is using it (or a "
                                       "running sandbox uses an old image); try again when it is done",
                                       mine);
        }
        if (root == mine && stat(rootfs, &st) < 0 && errno == ENOENT) {
                r = store_reunpack(ctx, mhex, err);
                if (r < 0)
                        return msb_err_wrap(err, r, "image '%s'", norm);
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

/* ---------------- pulling from registries ---------------- */

/* One blob to fetch, shared with the progress display. */
struct fetch_job {
        const char *digest;
        uint64_t size;
        uint64_t done;        /* bytes so far (atomic) */
        int state;            /* FETCH_* (atomic) */
        int r;
        struct msb_error err;
};
enum { FETCH_WAITING, FETCH_ACTIVE, FETCH_DONE, FETCH_FAILED, FETCH_HAD };

struct blob_sink {
        int fd;
        struct sha256 h;
        uint64_t got, max;
        const char *digest;
        struct fetch_job *job;
        struct msb_error *err;
};

static int blob_sink_status(void *arg, long status)
{
        struct blob_sink *b = arg;
        if (status == 200 && b->got > 0) {
                /* the registry ignored our range: start over */
                if (ftruncate(b->fd, 0) < 0)
                        return -errno;
                sha256_init(&b->h);
                b->got = 0;
                if (b->job)
                        __atomic_store_n(&b->job->done, 0, __ATOMIC_RELAXED);
        }
        return 0;
}

static int blob_sink_write(void *arg, const void *p, size_t n)
{
        struct blob_sink *b = arg;
        if (b->got + n > b->max)
                return msb_err(b->err, EBADMSG, "blob %s: the registry sent more than the %llu bytes its descriptor says",
                               b->digest, (unsigned long long)b->max);
        sha256_update(&b->h, p, n);
        const uint8_t *q = p;
        size_t left = n;
        off_t at = (off_t)b->got;
        while (left > 0) {
                ssize_t w = pwrite(b->fd, q, left, at);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return msb_err_errno(b->err, errno, "blob %s: write", b->digest);
                q += w;
                left -= (size_t)w;
                at += w;
        }
        b->got += n;
        if (b->job)
                __atomic_store_n(&b->job->done, b->got, __ATOMIC_RELAXED);
        return 0;
}

/* Download a blob into the store unless it is there; verified while it
 * arrives, kept only when digest and size match.  The bytes go to
 * tmp/partial-<hex>, locked while written: a pull that was killed leaves
 * it, and the next one resumes it with a range request (re-hashing what is
 * there); two pulls of one blob take turns. */
static int store_fetch_blob(struct store *s, struct reg *g, const char *digest, json_int_t size,
                            struct fetch_job *job, struct msb_error *err)
{
        const char *hex;
        if (!digest_hex(digest, &hex))
                return msb_err(err, EINVAL, "digest '%s' is not sha256:<64 hex digits>", digest ? digest : "");
        if (size < 0 || (uint64_t)size > MAX_BLOB_SIZE)
                return msb_err(err, EINVAL, "blob %s: size %lld is out of range (limit %llu)", digest, (long long)size,
                               (unsigned long long)MAX_BLOB_SIZE);
        _cleanup_free_ char *dst = xasprintf("blobs/sha256/%s", hex);
        if (faccessat(s->fd, dst, R_OK, 0) == 0)
                return 1; /* shared with an image we already have */
        _cleanup_free_ char *part = xasprintf("tmp/partial-%s", hex);
        _cleanup_close_ int fd = openat(s->fd, part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return msb_err_errno(err, errno, "cannot create %s/%s", s->root, part);
        if (flock(fd, LOCK_EX) < 0)
                return msb_err_errno(err, errno, "cannot lock %s/%s", s->root, part);
        if (faccessat(s->fd, dst, R_OK, 0) == 0)
                return 1; /* the other pull finished it */
        struct blob_sink b = {.fd = fd, .max = (uint64_t)size, .digest = digest, .job = job, .err = err};
        sha256_init(&b.h);
        /* what an interrupted pull left: hash it and go on from there */
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_size > 0 && (uint64_t)st.st_size <= (uint64_t)size) {
                uint8_t buf[65536];
                ssize_t n;
                while ((n = pread(fd, buf, sizeof(buf), (off_t)b.got)) > 0) {
                        sha256_update(&b.h, buf, (size_t)n);
                        b.got += (uint64_t)n;
                }
        } else if (ftruncate(fd, 0) < 0) {
                return msb_err_errno(err, errno, "blob %s: truncate", digest);
        }
        int r = 0;
        if (b.got < (uint64_t)size)
                r = msb_reg_blob(g, digest, b.got, blob_sink_status, blob_sink_write, &b, err);
        char got[65];
        sha256_hex(&b.h, got);
        bool bad = false;
        if (r == 0 && b.got != (uint64_t)size) {
                r = msb_err(err, EBADMSG, "blob %s: got %llu bytes, its descriptor says %lld (truncated download?)",
                            digest, (unsigned long long)b.got, (long long)size);
                bad = true;
        }
        if (r == 0 && strcmp(got, hex) != 0) {
                r = msb_err(err, EBADMSG, "blob %s: content does not match its digest: expected %s, got sha256:%s",
                            digest, digest, got);
                bad = true;
        }
        if (r == -EBADMSG)
                bad = true;
        if (r == 0 && renameat(s->fd, part, s->fd, dst) < 0)
                r = msb_err_errno(err, errno, "blob %s: rename", digest);
        /* a wrong answer is not worth resuming; a broken connection is */
        if (bad)
                unlinkat(s->fd, part, 0);
        return r;
}

#define FETCH_THREADS 4

struct fetcher {
        struct store *s;
        struct reg *g;
        struct fetch_job *jobs;
        size_t n;
        size_t next;    /* atomic */
        bool stop;      /* atomic: a job failed */
        size_t running; /* atomic: workers not yet finished */
};

static void *fetch_worker(void *arg)
{
        struct fetcher *f = arg;
        struct reg *g = msb_reg_clone(f->g);
        for (;;) {
                size_t i = __atomic_fetch_add(&f->next, 1, __ATOMIC_RELAXED);
                if (i >= f->n || __atomic_load_n(&f->stop, __ATOMIC_RELAXED))
                        break;
                struct fetch_job *j = &f->jobs[i];
                __atomic_store_n(&j->state, FETCH_ACTIVE, __ATOMIC_RELAXED);
                int r = store_fetch_blob(f->s, g, j->digest, (json_int_t)j->size, j, &j->err);
                j->r = r < 0 ? r : 0;
                if (r == 1)
                        __atomic_store_n(&j->done, j->size, __ATOMIC_RELAXED);
                __atomic_store_n(&j->state, r < 0 ? FETCH_FAILED : r == 1 ? FETCH_HAD : FETCH_DONE,
                                 __ATOMIC_RELEASE);
                if (r < 0)
                        __atomic_store_n(&f->stop, true, __ATOMIC_RELAXED);
        }
        msb_reg_close(g);
        __atomic_fetch_sub(&f->running, 1, __ATOMIC_RELEASE);
        return NULL;
}

static void fmt_bytes(uint64_t b, char *out, size_t n)
{
        if (b >= 1000000)
                snprintf(out, n, "%.1f MB", (double)b / 1e6);
        else
                snprintf(out, n, "%.1f kB", (double)b / 1e3);
}

/* Hand the layers' state to the caller's progress function, if any. */
static void progress_report(struct msb_ctx *ctx, struct fetch_job *jobs, size_t n, double secs, bool first)
{
        if (!ctx->progress_fn)
                return;
        struct msb_layer_progress *p = xcalloc(n, sizeof(*p));
        for (size_t i = 0; i < n; i++) {
                int st = __atomic_load_n(&jobs[i].state, __ATOMIC_ACQUIRE);
                p[i] = (struct msb_layer_progress){
                        .digest = jobs[i].digest,
                        .size = jobs[i].size,
                        .done = __atomic_load_n(&jobs[i].done, __ATOMIC_RELAXED),
                        .state = st == FETCH_WAITING  ? MSB_LAYER_WAITING
                                 : st == FETCH_ACTIVE ? MSB_LAYER_ACTIVE
                                 : st == FETCH_DONE   ? MSB_LAYER_DONE
                                 : st == FETCH_HAD    ? MSB_LAYER_HAD
                                                      : MSB_LAYER_FAILED,
                };
        }
        ctx->progress_fn(p, n, secs, first, ctx->progress_ud);
        free(p);
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fetch the layers, up to FETCH_THREADS at a time; the first failure stops
 * the others from starting and is returned. */
static int fetch_layers(struct msb_ctx *ctx, struct store *s, struct reg *g, json_t *layers, const char *name,
                        struct msb_error *err)
{
        size_t n = json_array_size(layers);
        if (n == 0)
                return 0;
        struct fetch_job *jobs = xcalloc(n, sizeof(*jobs));
        size_t i;
        json_t *d;
        json_array_foreach(layers, i, d)
        {
                jobs[i].digest = desc_digest(d) ? desc_digest(d) : "";
                json_int_t sz = json_integer_value(json_object_get(d, "size"));
                jobs[i].size = sz > 0 ? (uint64_t)sz : 0;
                if (sz < 0 || !json_is_integer(json_object_get(d, "size"))) {
                        free(jobs);
                        return msb_err(err, EBADMSG, "%s: layer %zu has no valid size", name, i);
                }
        }
        struct fetcher f = {.s = s, .g = g, .jobs = jobs, .n = n};
        size_t nt = n < FETCH_THREADS ? n : FETCH_THREADS;
        pthread_t th[FETCH_THREADS];
        size_t started = 0;
        f.running = nt;
        for (; started < nt; started++)
                if (pthread_create(&th[started], NULL, fetch_worker, &f) != 0)
                        break;
        __atomic_fetch_sub(&f.running, nt - started, __ATOMIC_RELEASE);
        if (started == 0) {
                f.running = 1;
                fetch_worker(&f); /* no threads: do it here */
        }
        double t0 = now_s();
        progress_report(ctx, jobs, n, 0, true);
        for (;;) {
                bool all = __atomic_load_n(&f.running, __ATOMIC_ACQUIRE) == 0;
                progress_report(ctx, jobs, n, now_s() - t0, false);
                if (all)
                        break;
                struct timespec ts = {0, 200 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        for (size_t k = 0; k < started; k++)
                pthread_join(th[k], NULL);
        progress_report(ctx, jobs, n, now_s() - t0, false);
        int r = 0;
        uint64_t total = 0;
        for (size_t k = 0; k < n; k++) {
                total += jobs[k].state == FETCH_DONE ? jobs[k].size : 0;
                if (jobs[k].r < 0 && r == 0) {
                        r = jobs[k].r;
                        if (err)
                                *err = jobs[k].err;
                }
        }
        if (r == 0) {
                char tb[32];
                fmt_bytes(total, tb, sizeof(tb));
                msb_log(ctx, ctx->progress ? 0 : 1, "%s: %zu layers, %s downloaded in %.1f s", name, n, tb,
                        now_s() - t0);
        }
        free(jobs);
        return r;
}

/* Store bytes we already hold (a manifest) under their digest. */
static int store_put_bytes(struct store *s, const char *hex, const char *data, size_t len, struct msb_error *err)
{
        _cleanup_free_ char *dst = xasprintf("blobs/sha256/%s", hex);
        if (faccessat(s->fd, dst, R_OK, 0) == 0)
                return 0;
        int r = write_file_atomic_at(s->fd, dst, data, len, 0644);
        return r < 0 ? msb_err_errno(err, r, "cannot store manifest %s", hex) : 0;
}

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

static int pull_from(struct msb_ctx *ctx, struct store *s, struct reg *g, const struct msb_ref *ref, const char *name,
                     char *ret_mhex, struct msb_error *err)
{
        char hex[65];
        _cleanup_free_ char *media = NULL, *body = NULL;
        size_t len;
        int r = 0;
        json_t *m = fetch_manifest(g, ref->digest ? ref->digest : ref->tag, ref->digest, hex, &media, &body, &len, err);
        if (!m)
                return -EIO;
        if (is_index_media(media)) {
                json_t *d = index_pick_platform(m, err);
                if (!d) {
                        json_decref(m);
                        return -ENOENT;
                }
                _cleanup_free_ char *want = xstrdup(desc_digest(d) ? desc_digest(d) : "");
                const char *wh;
                if (!digest_hex(want, &wh)) {
                        json_decref(m);
                        return msb_err(err, EBADMSG, "%s: index entry has a bad digest", name);
                }
                r = store_put_bytes(s, hex, body, len, err); /* the index too: pull by its digest works offline */
                json_decref(m);
                free(media);
                free(body);
                media = body = NULL;
                if (r < 0)
                        return r;
                m = fetch_manifest(g, want, want, hex, &media, &body, &len, err);
                if (!m)
                        return -EIO;
                if (is_index_media(media)) {
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
            !json_is_array(layers) || json_array_size(layers) > MAX_LAYERS) {
                json_decref(m);
                return msb_err(err, EBADMSG, "%s: manifest %s lacks config or layers, or has more than %u layers",
                               name, hex, MAX_LAYERS);
        }
        r = store_fetch_blob(s, g, desc_digest(config), json_integer_value(json_object_get(config, "size")), NULL, err);
        if (r > 0)
                r = 0;
        /* the config before any layer: a bad one or another platform's
         * fails before the big downloads */
        if (r == 0) {
                /* validate the config now so a bad one fails at pull, not at run */
                const char *chex;
                digest_hex(desc_digest(config), &chex);
                _cleanup_free_ char *p = xasprintf("blobs/sha256/%s", chex);
                _cleanup_free_ char *cj = NULL;
                size_t cl;
                r = read_file_at(s->fd, p, MAX_JSON_SIZE, &cj, &cl);
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
                r = fetch_layers(ctx, s, g, layers, name, err);
        /* the manifest goes in last: a blob store never names layers it lacks */
        if (r == 0)
                r = store_put_bytes(s, hex, body, len, err);
        if (r == 0)
                r = unpack_rootfs(ctx, s, hex, layers, err);
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
        struct store s;
        r = store_open(ctx, &s, LOCK_SH, err);
        if (r < 0) {
                msb_ref_free(&ref);
                return r;
        }
        char mhex[65] = "";
        char tried[1024] = "";
        r = msb_reg_init(err);
        if (r < 0) {
                store_close(&s);
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
        if (r == 0 && (r = write_ref(s.fd, name, mhex, err)) == 0)
                msb_log(ctx, 0, "pulled %s (sha256:%s)", name, mhex);
        store_close(&s);
        msb_ref_free(&ref);
        if (r == 0 && ret_name)
                *ret_name = TAKE_PTR(name);
        return r;
}

/* ---------------- listing and removing ---------------- */

static char *ref_name_from_file(const char *f)
{
        char *out = xmalloc(strlen(f) + 1), *o = out;
        for (const char *s = f; *s; s++) {
                unsigned v;
                if (*s == '%' && sscanf(s + 1, "%2X", &v) == 1 && isxdigit((unsigned char)s[1]) &&
                    isxdigit((unsigned char)s[2])) {
                        *o++ = (char)v;
                        s += 2;
                } else
                        *o++ = *s;
        }
        *o = 0;
        return out;
}

static uint64_t tree_bytes(int dirfd, const char *name, int depth)
{
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return 0;
        uint64_t sum = (uint64_t)st.st_blocks * 512;
        if (!S_ISDIR(st.st_mode) || depth > 64)
                return sum;
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return sum;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return sum;
        }
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        sum += tree_bytes(fd, de->d_name, depth + 1);
        closedir(d);
        return sum;
}

/* Append the images of the store at root to *v. */
static int store_list(const char *root, bool system, struct msb_image_info **v, size_t *n, struct msb_error *err)
{
        _cleanup_close_ int sfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sfd < 0)
                return errno == ENOENT ? 0 : msb_err_errno(err, errno, "image store %s", root);
        _cleanup_close_ int rfd = openat(sfd, "refs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = rfd >= 0 ? fdopendir_dup(rfd) : NULL;
        if (!d)
                return 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *line = NULL;
                if (read_file_at(rfd, de->d_name, 4096, &line, NULL) < 0)
                        continue;
                line[strcspn(line, "\n")] = 0;
                const char *mhex;
                if (!digest_hex(line, &mhex))
                        continue;
                struct msb_image_info ii = {.system = system};
                ii.name = ref_name_from_file(de->d_name);
                ii.id = strndup(mhex, 12);
                _cleanup_free_ char *rp = xasprintf("rootfs/%s", mhex);
                ii.size = tree_bytes(sfd, rp, 0);
                /* created: from the config */
                _cleanup_free_ char *mp = xasprintf("blobs/sha256/%s", mhex);
                struct msb_error ig;
                json_t *m = load_json_at(sfd, mp, &ig, "manifest");
                const char *chex;
                if (m && digest_hex(desc_digest(json_object_get(m, "config")), &chex)) {
                        _cleanup_free_ char *cp = xasprintf("blobs/sha256/%s", chex);
                        json_t *c = load_json_at(sfd, cp, &ig, "config");
                        const char *created = json_string_value(json_object_get(c, "created"));
                        struct tm tm = {0};
                        if (created && strptime(created, "%Y-%m-%dT%H:%M:%S", &tm))
                                ii.created = timegm(&tm);
                        json_decref(c);
                }
                json_decref(m);
                *v = xrealloc(*v, (*n + 1) * sizeof(**v));
                (*v)[(*n)++] = ii;
        }
        closedir(d);
        return 0;
}

int msb_image_list(struct msb_ctx *ctx, struct msb_image_info **ret, size_t *ret_n, struct msb_error *err)
{
        *ret = NULL;
        *ret_n = 0;
        _cleanup_free_ char *mine = xasprintf("%s/images", ctx->data_dir);
        _cleanup_free_ char *sys = ctx->system_dir ? xasprintf("%s/images", ctx->system_dir) : NULL;
        struct msb_image_info *v = NULL;
        size_t n = 0;
        int r = store_list(mine, false, &v, &n, err);
        if (r == 0 && sys && strcmp(sys, mine))
                r = store_list(sys, true, &v, &n, err);
        if (r < 0) {
                msb_image_list_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

void msb_image_list_free(struct msb_image_info *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(v[i].name);
                free(v[i].id);
        }
        free(v);
}

/* Is a running sandbox (runtime dir with its lock held) using rootfs? */
static bool rootfs_in_use(struct msb_ctx *ctx, const char *rootfs)
{
        DIR *d = opendir(ctx->runtime_dir);
        if (!d)
                return false;
        bool used = false;
        struct dirent *de;
        while (!used && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *lp = xasprintf("%s/%s/lock", ctx->runtime_dir, de->d_name);
                _cleanup_free_ char *rp = xasprintf("%s/%s/rootfs", ctx->runtime_dir, de->d_name);
                _cleanup_close_ int fd = open(lp, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || flock(fd, LOCK_SH | LOCK_NB) == 0)
                        continue; /* not running */
                _cleanup_free_ char *r = NULL;
                if (read_file_at(AT_FDCWD, rp, PATH_MAX, &r, NULL) == 0 && !strcmp(r, rootfs))
                        used = true;
        }
        closedir(d);
        return used || sandbox_uses_rootfs(ctx, rootfs, NULL);
}

/* Add the blobs manifest hex references (itself, config, layers); -errno
 * when the manifest cannot be read. */
static int mark_manifest(int sfd, const char *mhex, char ***keep, struct msb_error *err)
{
        strv_push(keep, mhex);
        _cleanup_free_ char *mp = xasprintf("blobs/sha256/%s", mhex);
        json_t *m = load_json_at(sfd, mp, err, "manifest");
        if (!m)
                return -EIO;
        const char *h;
        if (digest_hex(desc_digest(json_object_get(m, "config")), &h))
                strv_push(keep, h);
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(m, "layers"), i, l)
                if (digest_hex(desc_digest(l), &h))
                        strv_push(keep, h);
        json_decref(m);
        return 0;
}

/* Every blob some name in refs/ uses.  A name or manifest that cannot be
 * read fails the whole walk: what it names must not look unused. */
static int store_live_blobs(struct store *s, char ***ret_keep, struct msb_error *err)
{
        _cleanup_close_ int rfd = openat(s->fd, "refs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = rfd >= 0 ? fdopendir_dup(rfd) : NULL;
        if (!d)
                return msb_err_errno(err, errno, "cannot list %s/refs", s->root);
        char **keep = NULL;
        int r = 0;
        struct dirent *de;
        while (r == 0 && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *line = NULL;
                const char *h;
                r = read_file_at(rfd, de->d_name, 4096, &line, NULL);
                if (r < 0) {
                        msb_err_errno(err, r, "cannot read %s/refs/%s", s->root, de->d_name);
                        break;
                }
                line[strcspn(line, "\n")] = 0;
                if (!digest_hex(line, &h)) {
                        r = msb_err(err, EINVAL, "%s/refs/%s is corrupt", s->root, de->d_name);
                        break;
                }
                r = mark_manifest(s->fd, h, &keep, err);
        }
        closedir(d);
        if (r < 0) {
                strv_free(keep);
                return r;
        }
        *ret_keep = keep;
        return 0;
}

int msb_image_remove(struct msb_ctx *ctx, const char *ref, struct msb_error *err)
{
        struct store s;
        int r = store_open(ctx, &s, LOCK_EX, err);
        if (r < 0)
                return r;
        /* the name as imported, or the registry name it stands for */
        _cleanup_free_ char *norm = NULL, *rp = NULL, *line = NULL;
        if (msb_image_name_normalize(ref, &norm, err) == 0) {
                _cleanup_free_ char *rf = ref_file_name(norm);
                rp = xasprintf("refs/%s", rf);
                if (read_file_at(s.fd, rp, 4096, &line, NULL) < 0) {
                        free(rp);
                        rp = NULL;
                }
        }
        struct msb_ref rr;
        struct msb_error ig;
        if (!rp && msb_ref_parse(ref, &rr, &ig) == 0) {
                _cleanup_free_ char *canon = msb_ref_string(&rr);
                _cleanup_free_ char *rf = ref_file_name(canon);
                msb_ref_free(&rr);
                rp = xasprintf("refs/%s", rf);
                if (read_file_at(s.fd, rp, 4096, &line, NULL) < 0) {
                        free(rp);
                        rp = NULL;
                }
        }
        if (!rp) {
                store_close(&s);
                return msb_err(err, ENOENT, "image '%s' is not in the local store; 'msb images' lists what is", ref);
        }
        line[strcspn(line, "\n")] = 0;
        const char *mhex;
        if (!digest_hex(line, &mhex)) {
                store_close(&s);
                return msb_err(err, EINVAL, "image '%s': store entry %s is corrupt", ref, rp);
        }
        _cleanup_free_ char *rootfs = xasprintf("%s/rootfs/%s", s.root, mhex);
        if (rootfs_in_use(ctx, rootfs)) {
                store_close(&s);
                _cleanup_free_ char *who = NULL;
                if (sandbox_uses_rootfs(ctx, rootfs, &who))
                        return msb_err(err, EBUSY, "image '%s' is used by sandbox '%s'; msb rm %s first", ref, who,
                                       who);
                return msb_err(err, EBUSY, "image '%s' is used by a running sandbox; stop it first", ref);
        }
        if (unlinkat(s.fd, rp, 0) < 0) {
                r = msb_err_errno(err, errno, "cannot remove %s/%s", s.root, rp);
                store_close(&s);
                return r;
        }
        /* Collect what no remaining name uses: rootfs dirs and blobs. */
        char **keep = NULL;
        struct msb_error gc_err = {0};
        if (store_live_blobs(&s, &keep, &gc_err) < 0) {
                msb_log(ctx, 0, "removed %s; unused blobs were kept: %s", ref, gc_err.message);
                store_close(&s);
                return 0;
        }
        bool still = false;
        for (char **k = keep; k && *k && !still; k++)
                still = !strcmp(*k, mhex);
        if (!still) {
                _cleanup_free_ char *rr2 = xasprintf("rootfs/%s", mhex);
                rm_rf_at(s.fd, rr2);
                char **mine = NULL;
                mark_manifest(s.fd, mhex, &mine, &gc_err);
                for (char **m = mine; m && *m; m++) {
                        bool used = false;
                        for (char **k = keep; k && *k && !used; k++)
                                used = !strcmp(*k, *m);
                        if (!used) {
                                _cleanup_free_ char *bp = xasprintf("blobs/sha256/%s", *m);
                                unlinkat(s.fd, bp, 0);
                        }
                }
                strv_free(mine);
        }
        strv_free(keep);
        store_close(&s);
        msb_log(ctx, 0, "removed %s", ref);
        return 0;
}

/* ---------------- docker save / OCI archives ---------------- */

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
static int store_put_file(struct store *s, int dirfd, const char *path, char *hex, uint64_t *size, struct msb_error *err)
{
        _cleanup_close_ int in = open_beneath_at(dirfd, path);
        if (in < 0)
                return msb_err_errno(err, -in, "archive entry '%s'", path);
        _cleanup_free_ char *tmp = NULL;
        /* a docker save archive declares no sizes: the unpack budget
         * bounded the file already; one blob's own cap on top */
        int r = store_copy_in(s, in, path, MAX_BLOB_SIZE, &tmp, hex, size, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *dst = xasprintf("blobs/sha256/%s", hex);
        if (renameat(s->fd, tmp, s->fd, dst) < 0) {
                r = msb_err_errno(err, errno, "cannot store %s", path);
                unlinkat(s->fd, tmp, 0);
        }
        return r;
}

/* docker save: manifest.json lists Config, RepoTags and Layers (plain or
 * gzip tars) per image. */
static int load_docker(struct msb_ctx *ctx, struct store *s, int dirfd, const char *name, char ***names,
                       struct msb_error *err)
{
        _cleanup_free_ char *raw = NULL;
        size_t rawlen;
        int r = read_file_beneath(dirfd, "manifest.json", MAX_JSON_SIZE, &raw, &rawlen);
        if (r < 0)
                return msb_err_errno(err, r, "docker archive: manifest.json");
        json_error_t je;
        json_t *list = json_loadb(raw, rawlen, JSON_REJECT_DUPLICATES, &je);
        if (!list)
                return msb_err(err, EINVAL, "docker archive: manifest.json: %s (line %d)", je.text, je.line);
        if (!json_is_array(list) || json_array_size(list) == 0)
                r = msb_err(err, EINVAL, "docker archive: manifest.json lists no images");
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e)
        {
                if (r < 0)
                        break;
                const char *cfg = json_string_value(json_object_get(e, "Config"));
                json_t *layers = json_object_get(e, "Layers");
                if (!cfg || !json_is_array(layers) || json_array_size(layers) > MAX_LAYERS) {
                        r = msb_err(err, EINVAL, "docker archive: image %zu lacks Config or Layers", i);
                        break;
                }
                char chex[65];
                uint64_t csize;
                if ((r = store_put_file(s, dirfd, cfg, chex, &csize, err)) < 0)
                        break;
                {
                        _cleanup_free_ char *cp = xasprintf("blobs/sha256/%s", chex);
                        _cleanup_free_ char *cj = NULL;
                        size_t cl;
                        struct msb_image_config c;
                        r = read_file_at(s->fd, cp, MAX_JSON_SIZE, &cj, &cl);
                        if (r < 0 || (r = msb_image_config_parse(cj, cl, &c, err)) < 0) {
                                if (r != -EINVAL)
                                        msb_err_errno(err, r, "docker archive: config %s", cfg);
                                break;
                        }
                        msb_image_config_free(&c);
                }
                json_t *m = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[]}", "schemaVersion", 2, "mediaType",
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
                        if (!lp) {
                                r = msb_err(err, EINVAL, "docker archive: image %zu: a layer is not a path", i);
                                break;
                        }
                        if ((r = store_put_file(s, dirfd, lp, lhex, &lsize, err)) < 0)
                                break;
                        _cleanup_free_ char *ld = xasprintf("sha256:%s", lhex);
                        json_array_append_new(json_object_get(m, "layers"),
                                              json_pack("{s:s, s:s, s:I}", "mediaType",
                                                        "application/vnd.docker.image.rootfs.diff.tar", "digest", ld,
                                                        "size", (json_int_t)lsize));
                }
                char *mj = r == 0 ? json_dumps(m, JSON_COMPACT) : NULL;
                char mhex[65];
                if (mj) {
                        struct sha256 h;
                        sha256_init(&h);
                        sha256_update(&h, mj, strlen(mj));
                        sha256_hex(&h, mhex);
                        r = store_put_bytes(s, mhex, mj, strlen(mj), err);
                        if (r == 0)
                                r = unpack_rootfs(ctx, s, mhex, json_object_get(m, "layers"), err);
                }
                free(mj);
                json_decref(m);
                if (r < 0)
                        break;
                /* names: the one given, else the archive's RepoTags */
                char **tags = NULL;
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
                        r = msb_err(err, EINVAL, "docker archive: image %zu has no RepoTags; give it a name: msb load -i FILE NAME",
                                    i);
                for (char **t = tags; t && *t && r == 0; t++) {
                        _cleanup_free_ char *canon = canonical_name(*t);
                        if (!canon) {
                                r = msb_err(err, EINVAL, "docker archive: '%s' is not a valid image name", *t);
                                break;
                        }
                        r = write_ref(s->fd, canon, mhex, err);
                        if (r == 0)
                                strv_push(names, canon);
                }
                strv_free(tags);
        }
        json_decref(list);
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
        struct store s;
        /* locked before anything is put in tmp/ */
        int r = store_open(ctx, &s, LOCK_SH, err);
        if (r < 0)
                return r;
        /* the archive is untrusted: unpacked by the same hardened code as a
         * layer, into the store's tmp, removed afterwards */
        char rnd[17];
        random_hex(rnd, 8);
        _cleanup_free_ char *tmp = xasprintf("tmp/load-%s", rnd);
        if (mkdirat(s.fd, tmp, 0700) < 0) {
                r = msb_err_errno(err, errno, "cannot create %s/%s", s.root, tmp);
                store_close(&s);
                return r;
        }
        _cleanup_close_ int dfd = openat(s.fd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        struct tar_stats st;
        struct tar_opts opts = TAR_OPTS_DEFAULT;
        opts.plain = true;
        r = msb_config_unpack_limits(&opts.max_bytes, &opts.max_entries, err);
        if (r == 0)
                r = dfd < 0 ? msb_err(err, errno, "cannot open %s", tmp) : tar_unpack(fd, dfd, &opts, &st, err);
        if (r < 0)
                msb_err_wrap(err, r, "'%s' is not a readable image archive", file);
        if (r == 0 && faccessat(dfd, "manifest.json", R_OK, 0) == 0) {
                r = load_docker(ctx, &s, dfd, name, ret_names, err);
        } else if (r == 0 && faccessat(dfd, "oci-layout", R_OK, 0) == 0) {
                /* an OCI archive: import each tagged manifest */
                json_t *index = load_json_at(dfd, "index.json", err, "OCI archive");
                size_t i;
                json_t *d;
                _cleanup_free_ char *dir = xasprintf("%s/%s", s.root, tmp);
                r = index ? 0 : -EINVAL;
                json_array_foreach(json_object_get(index, "manifests"), i, d)
                {
                        if (r < 0)
                                break;
                        json_t *ann = json_object_get(d, "annotations");
                        const char *ref = json_string_value(json_object_get(ann, "org.opencontainers.image.ref.name"));
                        const char *full = json_string_value(json_object_get(ann, "io.containerd.image.name"));
                        const char *want = name ? name : full ? full : (ref && strpbrk(ref, "/:") ? ref : NULL);
                        if (!want) {
                                r = msb_err(err, EINVAL, "OCI archive: manifest %zu has no image name; give one: msb load -i FILE NAME",
                                            i);
                                break;
                        }
                        _cleanup_free_ char *canon = canonical_name(want);
                        if (!canon) {
                                r = msb_err(err, EINVAL, "OCI archive: '%s' is not a valid image name", want);
                                break;
                        }
                        r = msb_image_import(ctx, dir, ref, canon, err);
                        if (r == 0)
                                strv_push(ret_names, canon);
                        if (name)
                                break;
                }
                json_decref(index);
        } else if (r == 0) {
                r = msb_err(err, EINVAL,
                            "'%s' is neither a docker save archive (manifest.json) nor an OCI archive (oci-layout)", file);
        }
        rm_rf_at(s.fd, tmp);
        store_close(&s);
        if (r < 0) {
                strv_free(*ret_names);
                *ret_names = NULL;
        }
        return r;
}
