/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the host reads from the image root before the VM starts, to spare
 * the guest work it does slowly under TCG: the user's ids, where argv[0]
 * is, and the libraries it will load.  Only where no volume changes what
 * the guest will see.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "common/util.h"
#include "elf.h"
#include "guest_path.h"
#include "common/users.h"
#include "proto/proto.h"
#include "run.h"

/* Does a volume at guest path g cover path p (p itself, or a parent)? */
static bool volume_covers(const char *g, const char *p)
{
        size_t n = strlen(g);
        if (!strcmp(g, "/"))
                return true;
        return !strncmp(p, g, n) && (p[n] == '\0' || p[n] == '/');
}

/* Does a volume at guest path g cover path p, or lie inside it? */
static bool volume_touches(const char *g, const char *p)
{
        return volume_covers(g, p) || volume_covers(p, g);
}

/*
 * The image root as the host reads it before the VM starts, to do work the
 * guest would do slowly under TCG (who the user is, where argv[0] is).  That
 * is only right where no volume changes what the guest will see, and paths
 * in an image may go through its symlinks (/bin -> usr/bin, and volumes
 * are placed by agentd with the same resolution): so volumes and the paths
 * looked at are compared both as written and as resolved in the image.
 */
struct image_view {
        int rfd;            /* the image root, O_PATH */
        char *host_prefix;  /* its real host path */
        char **vol_real;    /* each volume's guest path, resolved in the image */
        const struct msb_run_opts *o;
};

/* Guest path p as it resolves in the image: its longest existing prefix
 * with symlinks followed inside the root, then the rest as written. */
static char *image_resolve(const struct image_view *v, const char *p)
{
        _cleanup_free_ char *norm = guest_path_normalize(p);
        size_t n = strlen(norm);
        for (;;) {
                _cleanup_free_ char *pre = xasprintf("%.*s", (int)n, norm);
                struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
                _cleanup_close_ int fd = n > 1 ? (int)syscall(SYS_openat2, v->rfd, pre + 1, &how, sizeof(how)) : -1;
                if (fd >= 0) {
                        char link[64], real[PATH_MAX];
                        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
                        ssize_t l = readlink(link, real, sizeof(real) - 1);
                        size_t pl = strlen(v->host_prefix);
                        if (l > 0) {
                                real[l] = 0;
                                if (!strncmp(real, v->host_prefix, pl) && (real[pl] == '/' || real[pl] == 0))
                                        return real[pl] || norm[n] ? xasprintf("%s%s", real + pl, norm + n)
                                                                   : xstrdup("/");
                        }
                        break;
                }
                if (n <= 1)
                        break;
                while (n > 1 && norm[n - 1] != '/')
                        n--;
                if (n > 1)
                        n--; /* drop the '/' too */
        }
        return xstrdup(norm);
}

static bool image_view_open(struct image_view *v, const char *rootfs, const struct msb_run_opts *o)
{
        *v = (struct image_view){.rfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC), .o = o};
        if (v->rfd < 0)
                return false;
        char link[64], real[PATH_MAX];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", v->rfd);
        ssize_t l = readlink(link, real, sizeof(real) - 1);
        if (l <= 0) {
                close(v->rfd);
                return false;
        }
        real[l] = 0;
        v->host_prefix = xstrdup(strcmp(real, "/") ? real : "");
        v->vol_real = xcalloc(o->nvols + 1, sizeof(char *));
        for (size_t i = 0; i < o->nvols; i++)
                v->vol_real[i] = image_resolve(v, o->vols[i].guest);
        return true;
}

static void image_view_close(struct image_view *v)
{
        if (v->rfd >= 0)
                close(v->rfd);
        free(v->host_prefix);
        for (size_t i = 0; v->vol_real && i < v->o->nvols; i++)
                free(v->vol_real[i]);
        free(v->vol_real);
}

/* Does some volume change what the guest sees at or under path p? */
static bool image_path_shadowed(const struct image_view *v, const char *p)
{
        _cleanup_free_ char *real = image_resolve(v, p);
        for (size_t i = 0; i < v->o->nvols; i++)
                if (volume_touches(v->o->vols[i].guest, p) || volume_touches(v->vol_real[i], real))
                        return true;
        return false;
}

/*
 * Resolve the user from the image's /etc/passwd and /etc/group here, in
 * microseconds, instead of in the guest, where reading two files through
 * overlayfs and virtio-fs under TCG cost ~10 ms of every start.  When a
 * volume covers either file the command would see other contents, so the
 * guest resolves it (*have stays false); likewise if the files cannot be
 * read here for any reason but absence.  An unknown name fails before any
 * VM starts.
 */
static int host_resolve_user(const struct image_view *v, const char *spec, struct ids *ids, bool *have,
                             struct msb_error *err)
{
        *have = false;
        if (v->rfd < 0 || image_path_shadowed(v, "/etc/passwd") || image_path_shadowed(v, "/etc/group"))
                return 0;
        _cleanup_free_ char *passwd = NULL, *group = NULL;
        int r = read_file_in_root(v->rfd, "etc/passwd", 4u << 20, &passwd, NULL);
        if (r < 0 && r != -ENOENT)
                return 0;
        r = read_file_in_root(v->rfd, "etc/group", 4u << 20, &group, NULL);
        if (r < 0 && r != -ENOENT)
                return 0;
        struct msb_error why = {0};
        if (ids_resolve(spec, passwd, group, ids, &why) < 0)
                return msb_err(err, ENOENT, "%s: name one the image has, or a numeric uid[:gid] (-u)", why.message);
        *have = true;
        return 0;
}

/*
 * Find argv[0] on the command's PATH in the image, as execvp in the guest
 * would: the first PATH entry holding a regular file with an execute bit.
 * In the guest each miss was a lookup through overlayfs and virtio-fs
 * (busybox's `true` is in the sixth and last default entry: ~14 round trips
 * under TCG).  Returns the path to exec, or NULL to leave the search to the
 * guest: a name with a slash, a relative PATH entry, a volume on or inside
 * a PATH entry, anything unexpected, or no match (the guest then reports
 * "not found" as before).  agentd falls back to its own search if exec of
 * this path fails.
 */
static char *host_find_exec(const struct image_view *v, const char *cmd, char **env)
{
        if (v->rfd < 0 || !*cmd || strchr(cmd, '/') || strlen(cmd) > 255)
                return NULL;
        const char *path = MSB_DEFAULT_PATH;
        for (char **e = env; e && *e; e++)
                if (!strncmp(*e, "PATH=", 5)) {
                        path = *e + 5;
                        break;
                }
        for (const char *s = path;;) {
                const char *e = strchrnul(s, ':');
                _cleanup_free_ char *dir = xasprintf("%.*s", (int)(e - s), s);
                if (dir[0] != '/')
                        return NULL;
                _cleanup_free_ char *norm = guest_path_normalize(dir);
                if (strstr(norm, "/..")) /* volumes are compared as plain paths */
                        return NULL;
                if (image_path_shadowed(v, norm))
                        return NULL;
                _cleanup_free_ char *full = xasprintf("%s/%s", strcmp(norm, "/") ? norm : "", cmd);
                struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
                _cleanup_close_ int fd = (int)syscall(SYS_openat2, v->rfd, full + 1, &how, sizeof(how));
                struct stat st;
                if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111))
                        return TAKE_PTR(full);
                if (fd < 0 && errno != ENOENT && errno != ENOTDIR)
                        return NULL;
                if (!*e)
                        return NULL;
                s = e + 1;
        }
}

static ssize_t fd_pread(void *ctx, void *buf, size_t n, uint64_t off)
{
        return pread(*(int *)ctx, buf, n, (off_t)off);
}

/* An image file, resolved in the image: opened read-only if regular. */
static int image_open_file(const struct image_view *v, const char *path, struct stat *st)
{
        struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                               .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
        int fd = path[0] == '/' ? (int)syscall(SYS_openat2, v->rfd, path + 1, &how, sizeof(how)) : -1;
        if (fd >= 0 && (fstat(fd, st) < 0 || !S_ISREG(st->st_mode))) {
                close(fd);
                fd = -1;
        }
        return fd;
}

/*
 * What a dynamic executable loads before its own code runs: the program
 * interpreter and the libraries it names, where the loader looks first for
 * a glibc or musl image.  agentd reads them ahead with the executable: left
 * to the loader, each is paged in fault by fault, one round trip at a time.
 * A hint only: a wrong guess costs a read-ahead, a missed library nothing.
 */
static char **host_prefetch_list(const struct image_view *v, const char *exec_path)
{
        static const char *const libdirs[] = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64",
                                              "/usr/lib64", "/lib", "/usr/lib"};
        if (!exec_path || v->rfd < 0)
                return NULL;
        struct stat st;
        _cleanup_close_ int fd = image_open_file(v, exec_path, &st);
        if (fd < 0)
                return NULL;
        struct elf_src src = {.ctx = &fd, .size = (uint64_t)st.st_size, .pread = fd_pread};
        _cleanup_free_ char *interp = NULL;
        _cleanup_strv_ char **needed = NULL;
        elf_deps(&src, MSB_PROTO_MAX_PREFETCH - 1, &interp, &needed);
        char **list = NULL;
        if (interp) {
                _cleanup_close_ int ifd = image_open_file(v, interp, &st);
                if (ifd >= 0)
                        strv_push(&list, interp);
        }
        for (char **n = needed; n && *n; n++)
                for (size_t d = 0; d < ARRAY_SIZE(libdirs); d++) {
                        _cleanup_free_ char *p = xasprintf("%s/%s", libdirs[d], *n);
                        _cleanup_close_ int lfd = image_open_file(v, p, &st);
                        if (lfd >= 0) {
                                strv_push(&list, p);
                                break;
                        }
                }
        return list;
}

/* The main command's user, executable and read-ahead list, as far as the
 * image says them. */
int host_resolve_main(struct vm *vm, const struct msb_run_opts *o, struct msb_error *err)
{
        struct image_view view;
        if (!image_view_open(&view, vm->rootfs, o))
                view = (struct image_view){.rfd = -1};
        int r = 0;
        if (o->ids_set) {
                /* given (an OCI bundle's process.user): no lookup in the image */
                vm->ids = o->ids;
                vm->have_ids = true;
                const char *home = "/";
                for (char **e = vm->env; e && *e; e++)
                        if (!strncmp(*e, "HOME=", 5) && (*e)[5] == '/')
                                home = *e + 5;
                snprintf(vm->ids.home, sizeof(vm->ids.home), "%s", home);
        } else {
                r = host_resolve_user(&view, vm->user, &vm->ids, &vm->have_ids, err);
        }
        if (r == 0) {
                vm->exec_path = host_find_exec(&view, vm->argv[0], vm->env);
                vm->prefetch = host_prefetch_list(&view, vm->exec_path);
        }
        image_view_close(&view);
        return r;
}
