/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest kit: a kernel plus an initramfs holding agentd and the kernel
 * modules agentd needs.
 *
 * Kernel, first found of:
 *   $MSB_KERNEL (+ optional $MSB_MODULES, the lib/modules/<release> tree;
 *   $MSB_KERNEL_ACPI=off for a kernel that takes its virtio-mmio devices from
 *   the command line),
 *   <data>/kernels/msb/{vmlinux|vmlinuz,release}: msb's tailored kernel, everything
 *   built in, booted with ACPI off (scripts/kernel-build.sh),
 *   <data>/kernels/default/{vmlinuz,modules}: Debian's cloud kernel
 *   (scripts/kit.sh).
 * $MSB_KIT=debian skips the tailored kernel.
 *
 * Initramfs: built here and cached as <data>/cache/initramfs-<key>.cpio where
 * key hashes agentd's bytes, the kernel's identity (path, size, mtime) and the
 * modules' bytes, so it is rebuilt exactly when agentd or the kernel change.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/util.h"
#include "sha256.h"
#include "cpio.h"
#include "vmm.h"
#include "settings.h"

/* The drivers agentd needs; their dependencies are added from modinfo. */
static const char *const needed_modules[] = {"virtio_mmio", "virtio_console", "virtiofs", "overlay",
                                             /* a named sandbox's writable layer */
                                             "virtio_blk", "ext4",
                                             /* the network (dependencies: net_failover, failover) */
                                             "virtio_net"};
#define MAX_MODULES 64

struct modfile {
        char name[64];
        char *path;
};

struct modindex {
        struct modfile *v;
        size_t n;
};

static void modname_norm(char *s)
{
        for (; *s; s++)
                if (*s == '-')
                        *s = '_';
}

static void modindex_walk(struct modindex *ix, const char *dir, int depth)
{
        if (depth > 16)
                return;
        _cleanup_closedir_ DIR *d = opendir(dir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir_no_dot(d))) {
                _cleanup_free_ char *p = xasprintf("%s/%s", dir, de->d_name);
                if (de->d_type == DT_DIR) {
                        modindex_walk(ix, p, depth + 1);
                        continue;
                }
                size_t n = strlen(de->d_name);
                if (n < 4 || n >= 64 + 3 || strcmp(de->d_name + n - 3, ".ko"))
                        continue;
                ix->v = xrealloc(ix->v, (ix->n + 1) * sizeof(*ix->v));
                struct modfile *m = &ix->v[ix->n++];
                snprintf(m->name, sizeof(m->name), "%.*s", (int)(n - 3), de->d_name);
                modname_norm(m->name);
                m->path = TAKE_PTR(p);
        }
}

static const struct modfile *modindex_find(const struct modindex *ix, const char *name)
{
        for (size_t i = 0; i < ix->n; i++)
                if (!strcmp(ix->v[i].name, name))
                        return &ix->v[i];
        return NULL;
}

static bool module_builtin(const char *moddir, const char *name)
{
        _cleanup_free_ char *p = xasprintf("%s/modules.builtin", moddir);
        _cleanup_free_ char *data = NULL;
        if (read_file_at(AT_FDCWD, p, 4 << 20, &data, NULL) < 0)
                return false;
        char *save = NULL;
        for (char *l = strtok_r(data, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                char *b = strrchr(l, '/');
                b = b ? b + 1 : l;
                size_t n = strlen(b);
                if (n > 3 && !strcmp(b + n - 3, ".ko"))
                        b[n - 3] = '\0';
                modname_norm(b);
                if (!strcmp(b, name))
                        return true;
        }
        return false;
}

/* "depends=a,b" from the .modinfo strings of a module file. */
static int module_depends(const char *data, size_t len, char ***ret)
{
        static const char key[] = "\0depends=";
        const char *p = memmem(data, len, key, sizeof(key) - 1);
        char **deps = NULL;
        if (p) {
                p += sizeof(key) - 1;
                const char *end = memchr(p, '\0', len - (size_t)(p - data));
                if (!end)
                        return -EINVAL;
                _cleanup_free_ char *list = strndup(p, (size_t)(end - p));
                char *save = NULL;
                for (char *d = strtok_r(list, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
                        modname_norm(d);
                        strv_push(&deps, d);
                }
        }
        *ret = deps;
        return 0;
}

struct modlist {
        const struct modfile *v[MAX_MODULES];
        char *data[MAX_MODULES];
        size_t len[MAX_MODULES];
        size_t n;
};

/* An index entry in use is touched when older than this; one not touched
 * for CACHE_UNUSED_S is garbage, with the initramfs only it pointed at. */
#define CACHE_TOUCH_S (24 * 3600)
#define CACHE_UNUSED_S (14 * 24 * 3600)
/* Younger files may belong to a build in progress elsewhere. */
#define CACHE_GRACE_S 3600

/*
 * Every msb build (a new agentd) and kernel update leaves an initramfs
 * behind, ~1-2 MB each.  Run after a build: drop index entries unused for
 * two weeks, initramfs files no remaining entry points at, and temporary
 * files of builds that died; nothing younger than an hour (another msb may
 * be building it right now).
 */
static void prune_cache(const char *cache)
{
        _cleanup_close_ int dfd = open(cache, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return;
        time_t now = time(NULL);
        char **live = NULL;
        DIR *d = fdopendir_dup(dfd);
        if (!d)
                return;
        for (int pass = 0; pass < 2; pass++) {
                rewinddir(d);
                struct dirent *de;
                while ((de = readdir(d))) {
                        const char *n = de->d_name;
                        struct stat st;
                        if (strncmp(n, "initramfs-", 10) != 0 || fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                continue;
                        time_t age = now - st.st_mtime;
                        if (pass == 0 && !strncmp(n, "initramfs-index-", 16) && S_ISLNK(st.st_mode)) {
                                char t[256];
                                ssize_t tl = readlinkat(dfd, n, t, sizeof(t) - 1);
                                if (strstr(n, ".tmp-")) {
                                        if (age > CACHE_GRACE_S)
                                                unlinkat(dfd, n, 0);
                                } else if (age > CACHE_UNUSED_S || tl <= 0) {
                                        unlinkat(dfd, n, 0);
                                } else {
                                        t[tl] = 0;
                                        strv_push(&live, t);
                                }
                        } else if (pass == 1 && age > CACHE_GRACE_S && S_ISREG(st.st_mode) &&
                                   (strstr(n, ".tmp-") || !strv_contains(live, n))) {
                                unlinkat(dfd, n, 0);
                        }
                }
        }
        closedir(d);
        strv_free(live);
}

/* Depth-first: dependencies are appended before the module itself, which
 * gives the load order. */
static int add_module(struct modlist *ml, const struct modindex *ix, const char *moddir, const char *name,
                      int depth, struct msb_error *err)
{
        if (depth > 16)
                return msb_err(err, ELOOP, "kernel module dependency loop at '%s'", name);
        for (size_t i = 0; i < ml->n; i++)
                if (!strcmp(ml->v[i]->name, name))
                        return 0;
        const struct modfile *m = modindex_find(ix, name);
        if (!m) {
                if (module_builtin(moddir, name))
                        return 0;
                return msb_err(err, ENOENT,
                               "kernel module '%s' not found under %s; the guest kernel needs it (built in or as a module)",
                               name, moddir);
        }
        char *data;
        size_t len;
        int r = read_file_at(AT_FDCWD, m->path, 64 << 20, &data, &len);
        if (r < 0)
                return msb_err_errno(err, r, "cannot read kernel module %s", m->path);
        _cleanup_strv_ char **deps = NULL;
        if (module_depends(data, len, &deps) < 0) {
                free(data);
                return msb_err(err, EINVAL, "kernel module %s: malformed modinfo", m->path);
        }
        for (char **d = deps; d && *d; d++) {
                r = add_module(ml, ix, moddir, *d, depth + 1, err);
                if (r < 0) {
                        free(data);
                        return r;
                }
        }
        if (ml->n >= MAX_MODULES) {
                free(data);
                return msb_err(err, E2BIG, "too many kernel modules needed");
        }
        ml->v[ml->n] = m;
        ml->data[ml->n] = data;
        ml->len[ml->n] = len;
        ml->n++;
        return 0;
}

char *msb_find_helper(enum msb_setting env, const char *name)
{
        const char *e = msb_setting_nonempty(env);
        if (e)
                return xstrdup(e);
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0)
                return NULL;
        exe[n] = '\0';
        char *dir = dirname(exe);
        const char *cands[] = {"", "/../libexec/msb"};
        for (size_t i = 0; i < ARRAY_SIZE(cands); i++) {
                char *p = xasprintf("%s%s/%s", dir, cands[i], name);
                if (access(p, R_OK) == 0)
                        return p;
                free(p);
        }
        return NULL;
}

/* msb's tailored kernel under root/kernels/msb, if there is one.  The
 * uncompressed ELF boots through PVH, skipping the decompressor: ~15% off
 * the TCG boot (bench/startup). */
static bool kit_try_msb(const char *root, struct msb_kit *kit, char **ret_moddir)
{
        _cleanup_free_ char *tk = xasprintf("%s/kernels/msb/vmlinux", root);
        if (access(tk, R_OK) < 0) {
                free(tk);
                tk = xasprintf("%s/kernels/msb/vmlinuz", root);
                if (access(tk, R_OK) < 0)
                        return false;
        }
        _cleanup_free_ char *rp = xasprintf("%s/kernels/msb/release", root);
        _cleanup_free_ char *rel = NULL;
        if (read_file_at(AT_FDCWD, rp, 256, &rel, NULL) == 0) {
                rel[strcspn(rel, "\n")] = '\0';
                kit->release = TAKE_PTR(rel);
        }
        kit->kernel = TAKE_PTR(tk);
        kit->flavor = "msb";
        kit->acpi = false;
        *ret_moddir = NULL;
        return true;
}

/* Debian's cloud kernel under root/kernels/default, with its modules. */
static bool kit_try_debian(const char *root, struct msb_kit *kit, char **ret_moddir)
{
        _cleanup_free_ char *kernel = xasprintf("%s/kernels/default/vmlinuz", root);
        if (access(kernel, R_OK) < 0)
                return false;
        *ret_moddir = xasprintf("%s/kernels/default/modules", root);
        kit->kernel = TAKE_PTR(kernel);
        kit->flavor = "debian";
        kit->acpi = true;
        return true;
}

static int find_kernel(struct msb_ctx *ctx, struct msb_kit *kit, char **ret_moddir, struct msb_error *err)
{
        const char *k = msb_setting(SET_MSB_KERNEL);
        if (k && *k) {
                if (access(k, R_OK) < 0)
                        return msb_err_errno(err, errno, "MSB_KERNEL '%s'", k);
                kit->kernel = xstrdup(k);
                const char *m = msb_setting(SET_MSB_MODULES);
                *ret_moddir = m && *m ? xstrdup(m) : NULL;
                const char *a = msb_setting(SET_MSB_KERNEL_ACPI);
                kit->acpi = !(a && !strcmp(a, "off"));
                kit->flavor = "custom";
                return 0;
        }
        const char *want = msb_setting(SET_MSB_KIT);
        if (want && *want && strcmp(want, "msb") && strcmp(want, "debian"))
                return msb_err(err, EINVAL, "MSB_KIT '%s': expected msb or debian", want);
        /* the user's own kit, then the one installed for every user */
        const char *roots[] = {ctx->data_dir, ctx->system_dir};
        if (!want || !*want || !strcmp(want, "msb")) {
                for (size_t i = 0; i < ARRAY_SIZE(roots); i++)
                        if (roots[i] && kit_try_msb(roots[i], kit, ret_moddir))
                                return 0;
                if (want && !strcmp(want, "msb"))
                        return msb_err(err, ENOENT,
                                       "MSB_KIT=msb but neither %s/kernels/msb nor %s/kernels/msb has a kernel: run "
                                       "scripts/kernel-build.sh",
                                       ctx->data_dir, ctx->system_dir);
        }
        for (size_t i = 0; i < ARRAY_SIZE(roots); i++)
                if (roots[i] && kit_try_debian(roots[i], kit, ret_moddir))
                        return 0;
        return msb_err(err, ENOENT,
                       "no guest kernel in %s/kernels or %s/kernels: run ./setup.sh (as root it installs one for "
                       "every user) or set MSB_KERNEL to a kernel image",
                       ctx->data_dir, ctx->system_dir);
}

void msb_kit_free(struct msb_kit *kit)
{
        free(kit->kernel);
        free(kit->initramfs);
        free(kit->release);
        memset(kit, 0, sizeof(*kit));
}

/* The files a kit is made of: the kernel (kit->kernel), agentd, and the
 * modules tree if there is one, with their identities for the cache. */
struct kit_files {
        const char *kernel;
        char *agentd_path;
        char *moddir;
        bool have_mods;
        struct stat kst, ast, mst;
};

static void kit_files_free(struct kit_files *f)
{
        free(f->agentd_path);
        free(f->moddir);
}

/* The kernel release a modules tree is for: <release>/modules (our kit) or
 * lib/modules/<release>; NULL if its path cannot be resolved. */
static char *modules_release(const char *moddir)
{
        _cleanup_free_ char *real = realpath(moddir, NULL);
        if (!real)
                return NULL;
        char *b = strrchr(real, '/');
        if (b && !strcmp(b, "/modules")) {
                *b = '\0';
                b = strrchr(real, '/');
        }
        return xstrdup(b ? b + 1 : real);
}

/* The kernel, agentd and modules this run would use, and their stat. */
static int kit_find_files(struct msb_ctx *ctx, struct msb_kit *kit, struct kit_files *f, struct msb_error *err)
{
        int r = find_kernel(ctx, kit, &f->moddir, err);
        if (r < 0)
                return r;
        f->kernel = kit->kernel;
        f->agentd_path = msb_find_helper(SET_MSB_AGENTD, "agentd");
        if (!f->agentd_path)
                return msb_err(err, ENOENT, "cannot find agentd next to msb; set MSB_AGENTD to its path");
        if (stat(f->kernel, &f->kst) < 0)
                return msb_err_errno(err, errno, "guest kernel %s", f->kernel);
        if (stat(f->agentd_path, &f->ast) < 0)
                return msb_err_errno(err, errno, "cannot read agentd %s", f->agentd_path);
        f->have_mods = f->moddir && access(f->moddir, R_OK) == 0;
        if (f->have_mods) {
                stat(f->moddir, &f->mst);
                _cleanup_free_ char *release = modules_release(f->moddir);
                if (!kit->release && release)
                        kit->release = TAKE_PTR(release);
        }
        return 0;
}

/* The fast path's index entry: the files' identities (path, inode, size,
 * mtime) and the list of drivers name it, so that agentd is not re-hashed
 * nor the modules tree walked. */
static char *kit_index_path(const char *cache, const struct kit_files *f)
{
        const struct stat *ast = &f->ast, *kst = &f->kst;
        struct sha256 ih;
        sha256_init(&ih);
        char id[3 * PATH_MAX + 512];
        int n = snprintf(id, sizeof(id), "v1\n%s\n%llu %llu %lld %lld.%ld\n%s\n%llu %llu %lld %lld.%ld\n%s\n%lld.%ld\n",
                         f->agentd_path, (unsigned long long)ast->st_dev, (unsigned long long)ast->st_ino,
                         (long long)ast->st_size, (long long)ast->st_mtim.tv_sec, ast->st_mtim.tv_nsec, f->kernel,
                         (unsigned long long)kst->st_dev, (unsigned long long)kst->st_ino, (long long)kst->st_size,
                         (long long)kst->st_mtim.tv_sec, kst->st_mtim.tv_nsec, f->have_mods ? f->moddir : "",
                         (long long)f->mst.st_mtim.tv_sec, f->mst.st_mtim.tv_nsec);
        sha256_update(&ih, id, (size_t)n);
        /* a new list of drivers is a new initramfs */
        for (size_t i = 0; i < ARRAY_SIZE(needed_modules); i++)
                sha256_update(&ih, needed_modules[i], strlen(needed_modules[i]) + 1);
        char ihex[65];
        sha256_hex(&ih, ihex);
        return xasprintf("%s/initramfs-index-%.32s", cache, ihex);
}

/* The initramfs the index entry points at, if it is still there (owned),
 * else NULL. */
static char *kit_cached(const char *cache, const char *index_path)
{
        char target[PATH_MAX];
        ssize_t tl = readlink(index_path, target, sizeof(target) - 1);
        if (tl <= 0)
                return NULL;
        target[tl] = 0;
        _cleanup_free_ char *ip = xasprintf("%s/%s", cache, target);
        if (strchr(target, '/') || access(ip, R_OK) != 0)
                return NULL;
        /* in use: at most one touch a day keeps prune_cache() away from it */
        struct stat lst;
        if (lstat(index_path, &lst) == 0 && time(NULL) - lst.st_mtime > CACHE_TOUCH_S)
                utimensat(AT_FDCWD, index_path, NULL, AT_SYMLINK_NOFOLLOW);
        return TAKE_PTR(ip);
}

static void modlist_free(struct modlist *ml)
{
        for (size_t i = 0; i < ml->n; i++)
                free(ml->data[i]);
}

static void modindex_free(struct modindex *ix)
{
        for (size_t i = 0; i < ix->n; i++)
                free(ix->v[i].path);
        free(ix->v);
}

/* The initramfs's name in the cache: a hash of agentd's bytes, the kernel's
 * identity and the modules' bytes. */
static void kit_initramfs_key(const struct kit_files *f, const char *agentd, size_t agentd_len,
                              const struct modlist *ml, char hex[65])
{
        struct sha256 h;
        sha256_init(&h);
        sha256_update(&h, agentd, agentd_len);
        char kid[PATH_MAX + 128];
        int n = snprintf(kid, sizeof(kid), "%s\n%lld\n%lld.%ld\n", f->kernel, (long long)f->kst.st_size,
                         (long long)f->kst.st_mtim.tv_sec, f->kst.st_mtim.tv_nsec);
        sha256_update(&h, kid, (size_t)n);
        for (size_t i = 0; i < ml->n; i++) {
                sha256_update(&h, ml->v[i]->name, strlen(ml->v[i]->name) + 1);
                sha256_update(&h, ml->data[i], ml->len[i]);
        }
        sha256_hex(&h, hex);
}

/* The modules under lib/msb/ with their load order (modules.order). */
static int cpio_add_modules(struct cpio_writer *w, const struct modlist *ml, struct msb_error *err)
{
        cpio_add(w, "lib", S_IFDIR | 0755, 0, 0, NULL, 0);
        cpio_add(w, "lib/msb", S_IFDIR | 0755, 0, 0, NULL, 0);
        char *order = NULL;
        size_t olen = 0;
        FILE *of = open_memstream(&order, &olen);
        if (!of)
                return msb_err(err, ENOMEM, "cannot build the module list: out of memory");
        for (size_t i = 0; i < ml->n; i++) {
                _cleanup_free_ char *nm = xasprintf("lib/msb/%s.ko", ml->v[i]->name);
                cpio_add(w, nm, S_IFREG | 0644, 0, 0, ml->data[i], ml->len[i]);
                fprintf(of, "%s.ko\n", ml->v[i]->name);
        }
        fclose(of);
        cpio_add(w, "lib/msb/modules.order", S_IFREG | 0644, 0, 0, order, olen);
        free(order);
        return 0;
}

/* Write the initramfs at path (through a temporary file renamed into
 * place): /dev/console, agentd as /init, the modules. */
static int kit_write_initramfs(struct msb_ctx *ctx, const char *cache, const char *path, const char *agentd,
                               size_t agentd_len, const struct modlist *ml, struct msb_error *err)
{
        int r = mkdir_p(cache, 0755);
        if (r < 0)
                return msb_err_errno(err, r, "cannot create %s", cache);
        msb_log(ctx, 1, "building initramfs %s (%zu modules)", path, ml->n);
        char tmphex[17];
        random_hex(tmphex, 8);
        _cleanup_free_ char *tmp = xasprintf("%s.tmp-%s", path, tmphex);
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return msb_err_errno(err, errno, "cannot create %s", tmp);
        struct cpio_writer w;
        cpio_init(&w, fd);
        cpio_add(&w, "dev", S_IFDIR | 0755, 0, 0, NULL, 0);
        cpio_add(&w, "dev/console", S_IFCHR | 0600, 5, 1, NULL, 0);
        cpio_add(&w, "init", S_IFREG | 0755, 0, 0, agentd, agentd_len);
        if (ml->n && (r = cpio_add_modules(&w, ml, err)) < 0) {
                unlink(tmp);
                return r;
        }
        r = cpio_finish(&w);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return msb_err_errno(err, r, "cannot write initramfs %s", path);
        }
        return 0;
}

/* The slow path: read agentd and the modules, build the initramfs unless
 * one with the same contents is cached, and point the index entry at it. */
static int kit_build(struct msb_ctx *ctx, const struct kit_files *f, const char *cache, const char *index_path,
                     char **ret_initramfs, struct msb_error *err)
{
        _cleanup_free_ char *agentd = NULL;
        size_t agentd_len;
        int r = read_file_at(AT_FDCWD, f->agentd_path, 64 << 20, &agentd, &agentd_len);
        if (r < 0)
                return msb_err_errno(err, r, "cannot read agentd %s", f->agentd_path);
        __attribute__((cleanup(modlist_free))) struct modlist ml = {0};
        __attribute__((cleanup(modindex_free))) struct modindex ix = {0};
        if (f->have_mods) {
                modindex_walk(&ix, f->moddir, 0);
                for (size_t i = 0; i < ARRAY_SIZE(needed_modules) && r >= 0; i++)
                        r = add_module(&ml, &ix, f->moddir, needed_modules[i], 0, err);
                if (r < 0)
                        return r;
        }
        char hex[65];
        kit_initramfs_key(f, agentd, agentd_len, &ml, hex);
        _cleanup_free_ char *path = xasprintf("%s/initramfs-%.32s.cpio", cache, hex);
        if (access(path, R_OK) != 0 && (r = kit_write_initramfs(ctx, cache, path, agentd, agentd_len, &ml, err)) < 0)
                return r;
        /* remember it for the fast path (a symlink: atomic, tiny) */
        _cleanup_free_ char *itmp = xasprintf("%s.tmp-%d", index_path, (int)getpid());
        _cleanup_free_ char *base = xasprintf("initramfs-%.32s.cpio", hex);
        unlink(itmp);
        if (symlink(base, itmp) == 0 && rename(itmp, index_path) < 0)
                unlink(itmp);
        /* a new agentd or kernel: what older ones built may be garbage now */
        prune_cache(cache);
        *ret_initramfs = TAKE_PTR(path);
        return 0;
}

int msb_kit_prepare(struct msb_ctx *ctx, struct msb_kit *ret_kit, struct msb_error *err)
{
        /* freed on every return; handed over (and cleared) on success */
        __attribute__((cleanup(msb_kit_free))) struct msb_kit kit = {0};
        __attribute__((cleanup(kit_files_free))) struct kit_files f = {0};
        int r = kit_find_files(ctx, &kit, &f, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *cache = xasprintf("%s/cache", ctx->data_dir);
        _cleanup_free_ char *index_path = kit_index_path(cache, &f);
        kit.initramfs = kit_cached(cache, index_path);
        if (!kit.initramfs && (r = kit_build(ctx, &f, cache, index_path, &kit.initramfs, err)) < 0)
                return r;
        if (!kit.release)
                kit.release = xstrdup("unknown");
        *ret_kit = kit;
        kit = (struct msb_kit){0};
        return 0;
}
