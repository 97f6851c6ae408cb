/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.json's mounts: bind mounts (each option applied, meaningless
 * across a VM, or refused), the kernel filesystems the guest mounts
 * itself, and the mountpoints made in the rootfs for them
 * (docs/oci-runtime.md).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <jansson.h>
#include <linux/openat2.h>

#include "common/util.h"
#include "bundle.h"
#include "runtime.h"

/* A bind mount's options, each applied, meaningless across a VM, or
 * refused (returns why):
 *  - ro (msb-fsd enforces it on the host), nosuid, noexec: applied;
 *    nodev always is (host device nodes mean nothing in the guest);
 *  - private/slave propagation (and r-): mounts made in the guest never
 *    reach the host, and msb-fsd serves the host's view of the source,
 *    host mounts below it included, which is what slave asks;
 *  - z/Z: podman relabels the source itself before create; bind, rbind,
 *    rw, suid, exec, defaults, (r)unbindable: what a volume is anyway;
 *  - relatime: what the host's mount of the source does for msb-fsd's
 *    reads.  Other atime flavours would need msb-fsd's reads to follow
 *    them: refused. */
static const char *bind_option(const char *opt, unsigned *flags)
{
        static const char *const same[] = {
                "bind",   "rbind",   "rw",         "rrw",         "private", "rprivate", "slave", "rslave",
                "z",      "Z",       "unbindable", "runbindable", "suid",    "exec",     "nodev", "defaults",
                "relatime",
        };
        if (!strcmp(opt, "ro") || !strcmp(opt, "rro")) {
                *flags |= MSB_VOLUME_RO;
                return NULL;
        }
        if (!strcmp(opt, "nosuid")) {
                *flags |= MSB_VOLUME_NOSUID;
                return NULL;
        }
        if (!strcmp(opt, "noexec")) {
                *flags |= MSB_VOLUME_NOEXEC;
                return NULL;
        }
        for (size_t i = 0; i < ARRAY_SIZE(same); i++)
                if (!strcmp(opt, same[i]))
                        return NULL;
        if (!strcmp(opt, "shared") || !strcmp(opt, "rshared"))
                return "mounts made in the guest cannot propagate to the host";
        if (!strcmp(opt, "dev"))
                return "host device nodes cannot be used in a VM (volumes are always nodev)";
        if (!strcmp(opt, "noatime") || !strcmp(opt, "strictatime") || !strcmp(opt, "nodiratime") ||
            !strcmp(opt, "norelatime"))
                return "access times of a volume are the host mount's (relatime); remove the option";
        return "unknown or not supported";
}

/* The file systems agentd mounts in every root from the guest's own
 * kernel: proc at /proc, sysfs at /sys, devtmpfs at /dev (a tmpfs asked
 * there is the same: a fresh /dev), devpts at /dev/pts.  Their options
 * (nosuid, noexec, ro of /sys, the size of /dev, devpts' modes) are not
 * applied: see "Accepted" in docs/oci-runtime.md for why each is moot. */
static const struct {
        const char *dest, *type;
} guest_made[] = {
        {"/proc", "proc"}, {"/dev", "tmpfs"}, {"/dev", "devtmpfs"}, {"/dev/pts", "devpts"}, {"/sys", "sysfs"},
};

static char *join_options(char **opts)
{
        char *joined = xstrdup("");
        for (char **o = opts; o && *o; o++) {
                char *n = xasprintf("%s%s%s", joined, *joined ? "," : "", *o);
                free(joined);
                joined = n;
        }
        return joined;
}

/* Is path (inside root, symlinks resolved there) missing or an empty
 * directory?  A tmpfs with tmpcopyup over it starts as it would. */
static bool dir_empty_in(const char *root, const char *path)
{
        _cleanup_close_ int rootfd = root ? open(root, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
        if (rootfd < 0)
                return false;
        struct open_how how = {.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                               .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
        int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
        if (fd < 0)
                return errno == ENOENT;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return false;
        }
        struct dirent *de;
        bool empty = true;
        while (empty && (de = readdir(d)))
                empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
        closedir(d);
        return empty;
}

/* podman binds a tmpfs of its own at /dev/shm (its --shm-size): the guest
 * gets a tmpfs of the same size (memory cannot be shared with the host's).
 * Anything but a tmpfs there is refused. */
static int map_shm_bind(struct rt_bundle *b, const char *field, const char *src)
{
        struct statfs sf;
        char why[PATH_MAX + 128];
        if (statfs(src, &sf) < 0 || sf.f_type != TMPFS_MAGIC) {
                snprintf(why, sizeof(why),
                         "%s bound at /dev/shm is not a tmpfs: the guest's /dev/shm cannot be a host directory", src);
                return refuse(field, why);
        }
        _cleanup_free_ char *o = xasprintf("mode=1777,size=%lluk,nosuid,nodev,noexec",
                                           (unsigned long long)sf.f_blocks * (unsigned long long)sf.f_bsize / 1024);
        return opts_kernel_mount(b->o, field, "tmpfs", "/dev/shm", o);
}

static int map_mount(struct rt_bundle *b, json_t *m, size_t idx)
{
        char field[64];
        snprintf(field, sizeof(field), "mounts[%zu]", idx);
        const char *dest = jstr(m, "destination"), *type = jstr(m, "type"), *src = jstr(m, "source");
        if (!dest || dest[0] != '/')
                return refuse(field, "destination must be an absolute path");
        _cleanup_strv_ char **opts = NULL;
        int r = parse_strv(json_object_get(m, "options"), field, &opts);
        if (r < 0)
                return r;
        bool bind = type && !strcmp(type, "bind");
        for (char **o = opts; o && *o; o++)
                if (!strcmp(*o, "bind") || !strcmp(*o, "rbind"))
                        bind = true;
        char why[PATH_MAX + 128];
        for (size_t i = 0; type && i < ARRAY_SIZE(guest_made); i++)
                if (!strcmp(dest, guest_made[i].dest) && !strcmp(type, guest_made[i].type))
                        return 0;
        if (!bind) {
                _cleanup_free_ char *joined = join_options(opts);
                if (type && !strcmp(type, "tmpfs") && strv_contains(opts, "tmpcopyup") && !dir_empty_in(b->root, dest)) {
                        snprintf(why, sizeof(why),
                                 "tmpcopyup: %s has files in the root, and the guest's tmpfs would start empty "
                                 "(copying them up is not supported)",
                                 dest);
                        return refuse(field, why);
                }
                if (type && (!strcmp(type, "tmpfs") || !strcmp(type, "mqueue") || !strcmp(type, "cgroup2"))) {
                        _cleanup_free_ char *mp = xasprintf("d%s", dest);
                        strv_push(&b->mountpoints, mp);
                        return opts_kernel_mount(b->o, field, type, dest, joined);
                }
                /* cgroup v1 is not in the guest kernel: its own v2 tree */
                if (type && !strcmp(type, "cgroup") && !strcmp(dest, "/sys/fs/cgroup"))
                        return opts_kernel_mount(b->o, field, "cgroup2", dest, joined);
                snprintf(why, sizeof(why),
                         "a '%s' mount at %s cannot be made in the VM (bind, tmpfs, mqueue, cgroup at "
                         "/sys/fs/cgroup, cgroup2, and proc/sysfs/devpts at their usual places are)",
                         type ? type : "(no type)", dest);
                return refuse(field, why);
        }
        if (!src || src[0] != '/')
                return refuse(field, "a bind mount's source must be an absolute host path");
        unsigned flags = 0;
        for (char **o = opts; o && *o; o++) {
                const char *no = bind_option(*o, &flags);
                if (no) {
                        snprintf(why, sizeof(why), "option '%s' of the bind mount at %s: %s", *o, dest, no);
                        return refuse(field, why);
                }
        }
        if (!strcmp(dest, "/dev/shm"))
                return map_shm_bind(b, field, src);
        struct stat st;
        _cleanup_free_ char *mp = xasprintf("%c%s", stat(src, &st) == 0 && !S_ISDIR(st.st_mode) ? 'f' : 'd', dest);
        strv_push(&b->mountpoints, mp);
        struct msb_error err = {0};
        if (msb_run_opts_add_volume(b->o, src, dest, flags, &err) < 0) {
                snprintf(why, sizeof(why), "%s", err.message);
                return refuse(field, why);
        }
        return 0;
}

/* One mount point in a read-only root, made on the host as runc makes it
 * before it remounts the root: the guest cannot write there.  Every
 * component is resolved inside the root (an image's symlinks cannot lead
 * out of it); missing directories are made 0755, a file mount point an
 * empty 0644 file. */
static int make_mountpoint(int rootfd, const char *path, bool file)
{
        _cleanup_free_ char *p = xstrdup(path);
        char *slash = strrchr(p, '/');
        *slash = '\0';
        const char *last = slash + 1;
        if (!*last)
                return 0;
        _cleanup_close_ int dfd = -1;
        if (*p) {
                /* the parent: each component in turn */
                char *c = p + 1;
                for (;;) {
                        char *next = strchr(c, '/');
                        if (next)
                                *next = '\0';
                        struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                                               .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
                        int fd = (int)syscall(SYS_openat2, rootfd, p + 1, &how, sizeof(how));
                        if (fd < 0 && errno == ENOENT) {
                                /* its parent resolved in the root: make it there */
                                char *ps = strrchr(p, '/');
                                *ps = '\0';
                                _cleanup_close_ int pfd =
                                        *p ? (int)syscall(SYS_openat2, rootfd, p + 1, &how, sizeof(how))
                                           : fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
                                *ps = '/';
                                if (pfd < 0 || (mkdirat(pfd, ps + 1, 0755) < 0 && errno != EEXIST))
                                        return -errno;
                                fd = (int)syscall(SYS_openat2, rootfd, p + 1, &how, sizeof(how));
                        }
                        if (fd < 0)
                                return -errno;
                        if (!next) {
                                dfd = fd;
                                break;
                        }
                        close(fd);
                        *next = '/';
                        c = next + 1;
                }
        } else
                dfd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
        if (dfd < 0)
                return -errno;
        if (file) {
                int fd = openat(dfd, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (fd < 0 && errno != EEXIST)
                        return -errno;
                if (fd >= 0)
                        close(fd);
                return 0;
        }
        return mkdirat(dfd, last, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

/* With root.readonly, the mount points of the bundle's mounts outside
 * the guest kernel's own trees (/proc, /sys, /dev). */
int make_mountpoints(const struct rt_bundle *b, const char *root)
{
        _cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return refuse("root.path", "cannot open it");
        for (char **m = b->mountpoints; m && *m; m++) {
                const char *path = *m + 1;
                if (!strncmp(path, "/proc/", 6) || !strncmp(path, "/sys/", 5) || !strncmp(path, "/dev/", 5))
                        continue;
                int r = make_mountpoint(rootfd, path, **m == 'f');
                if (r < 0) {
                        char why[PATH_MAX + 128];
                        snprintf(why, sizeof(why), "%s",
                                 errno_msg(-r, "cannot make the mount point %s in the read-only root", path).s);
                        return refuse("mounts", why);
                }
        }
        return 0;
}

int map_mounts(struct rt_bundle *b, json_t *a)
{
        if (a && !json_is_array(a))
                return refuse("mounts", "expected an array");
        size_t i;
        json_t *m;
        json_array_foreach(a, i, m)
        {
                int r = map_mount(b, m, i);
                if (r < 0)
                        return r;
        }
        return 0;
}

