/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.json to msb run options.  Every field is either mapped, accepted
 * because it has no meaning inside a VM (the table in docs/oci-runtime.md
 * says which and why), or refused with an error naming it: nothing a
 * bundle asks for is dropped without a word.
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
#include "runtime.h"

#define CONFIG_MAX (4u << 20) /* config.json: podman's are a few KiB */
#define ROWS_DEFAULT 24u
#define COLS_DEFAULT 80u

static int refuse(const char *field, const char *why)
{
        rt_error("config.json: %s: %s", field, why);
        return -EOPNOTSUPP;
}

/* A refusal whose text names its field itself. */
static int refuse_why(const char *why)
{
        rt_error("config.json: %s", why);
        return -EOPNOTSUPP;
}

static const char *jstr(json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

/* ---- the library's OCI pieces ---- */

static int lib_refuse(const char *field, const struct msb_error *err)
{
        return refuse(field, err->message[0] ? err->message : "refused by msb");
}

/* root.path is the guest's root itself with owners passed through, as
 * runc writes into it; root.readonly: served read-only by msb-fsd and
 * mounted read-only in the guest, so writes fail with EROFS (and a
 * remount in the guest cannot lift it: the host refuses them). */
static int opts_root(struct msb_run_opts *o, const char *root, bool readonly)
{
        int r = msb_run_opts_set_rootfs(o, root);
        if (r >= 0)
                r = msb_run_opts_set_root_rw(o, true);
        return r < 0 ? r : msb_run_opts_set_root_readonly(o, readonly);
}

static int opts_ids(struct msb_run_opts *o, unsigned uid, unsigned gid, const unsigned *groups, size_t n)
{
        struct msb_error err = {0};
        _cleanup_free_ uint32_t *g = n ? xcalloc(n, sizeof(uint32_t)) : NULL;
        for (size_t i = 0; i < n; i++)
                g[i] = groups[i];
        return msb_run_opts_set_ids(o, uid, gid, g, n, &err) < 0 ? lib_refuse("process.user", &err) : 0;
}

static int opts_rlimit(struct msb_run_opts *o, int res, uint64_t soft, uint64_t hard)
{
        struct msb_error err = {0};
        return msb_run_opts_add_rlimit(o, res, soft, hard, &err) < 0 ? lib_refuse("process.rlimits", &err) : 0;
}

/* tmpfs, mqueue or cgroup2, made by the guest's kernel at dest */
static int opts_kernel_mount(struct msb_run_opts *o, const char *field, const char *type, const char *dest,
                             const char *options)
{
        struct msb_error err = {0};
        return msb_run_opts_add_kernel_mount(o, type, dest, options, &err) < 0 ? lib_refuse(field, &err) : 0;
}

/* ---- process ---- */

static int parse_strv(json_t *a, const char *field, char ***ret)
{
        if (!a)
                return 0;
        if (!json_is_array(a))
                return refuse(field, "expected an array of strings");
        size_t i;
        json_t *v;
        char **out = NULL;
        json_array_foreach(a, i, v)
        {
                if (!json_is_string(v)) {
                        strv_free(out);
                        return refuse(field, "expected an array of strings");
                }
                strv_push(&out, json_string_value(v));
        }
        *ret = out;
        return 0;
}

static const struct {
        const char *name;
        int res;
} rlimits[] = {
        {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_FSIZE", RLIMIT_FSIZE},   {"RLIMIT_DATA", RLIMIT_DATA},
        {"RLIMIT_STACK", RLIMIT_STACK},     {"RLIMIT_CORE", RLIMIT_CORE},     {"RLIMIT_RSS", RLIMIT_RSS},
        {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
        {"RLIMIT_AS", RLIMIT_AS},           {"RLIMIT_LOCKS", RLIMIT_LOCKS},   {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
        {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},   {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
        {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

static int map_rlimits(struct msb_run_opts *o, json_t *a)
{
        size_t i;
        json_t *v;
        if (a && !json_is_array(a))
                return refuse("process.rlimits", "expected an array");
        json_array_foreach(a, i, v)
        {
                const char *t = jstr(v, "type");
                int res = -1;
                for (size_t k = 0; t && k < ARRAY_SIZE(rlimits); k++)
                        if (!strcmp(t, rlimits[k].name))
                                res = rlimits[k].res;
                if (res < 0)
                        return refuse("process.rlimits", t ? "unknown type (expected RLIMIT_*)" : "no type");
                int r = opts_rlimit(o, res, (uint64_t)json_integer_value(json_object_get(v, "soft")),
                                    (uint64_t)json_integer_value(json_object_get(v, "hard")));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_user(json_t *u, char **ret_user, unsigned *ret_uid, unsigned *ret_gid, unsigned **ret_groups,
                      size_t *ret_n)
{
        json_t *uid = json_object_get(u, "uid"), *gid = json_object_get(u, "gid");
        if ((uid && !json_is_integer(uid)) || (gid && !json_is_integer(gid)) || json_integer_value(uid) < 0 ||
            json_integer_value(gid) < 0)
                return refuse("process.user", "uid and gid must be numbers");
        *ret_uid = (unsigned)json_integer_value(uid);
        *ret_gid = (unsigned)json_integer_value(gid);
        if (jstr(u, "username") && *jstr(u, "username"))
                return refuse("process.user.username", "a Windows field; give uid and gid");
        json_t *g = json_object_get(u, "additionalGids");
        size_t i;
        json_t *v;
        if (ret_groups) {
                *ret_n = 0;
                *ret_groups = NULL;
                json_array_foreach(g, i, v)
                {
                        *ret_groups = xrealloc(*ret_groups, (i + 1) * sizeof(unsigned));
                        (*ret_groups)[i] = (unsigned)json_integer_value(v);
                        *ret_n = i + 1;
                }
        }
        if (ret_user)
                *ret_user = xasprintf("%u:%u", *ret_uid, *ret_gid);
        return 0;
}

static void console_size(json_t *p, unsigned *rows, unsigned *cols)
{
        json_t *cs = json_object_get(p, "consoleSize");
        json_int_t h = json_integer_value(json_object_get(cs, "height"));
        json_int_t w = json_integer_value(json_object_get(cs, "width"));
        *rows = h > 0 && h < 65536 ? (unsigned)h : ROWS_DEFAULT;
        *cols = w > 0 && w < 65536 ? (unsigned)w : COLS_DEFAULT;
}

static int map_process(struct rt_bundle *b, json_t *p)
{
        if (!json_is_object(p))
                return refuse("process", "missing: the container needs a process");
        _cleanup_strv_ char **args = NULL, **env = NULL;
        int r = parse_strv(json_object_get(p, "args"), "process.args", &args);
        if (r < 0)
                return r;
        if (!args || !args[0])
                return refuse("process.args", "empty: name the command to run");
        if (jstr(p, "commandLine"))
                return refuse("process.commandLine", "a Windows field; use process.args");
        r = parse_strv(json_object_get(p, "env"), "process.env", &env);
        if (r < 0)
                return r;
        msb_run_opts_set_entrypoint(b->o, "");
        msb_run_opts_set_command(b->o, args);
        for (char **e = env; e && *e; e++)
                if (msb_run_opts_add_env(b->o, *e) < 0)
                        return refuse("process.env", "every entry must be K=V");
        const char *cwd = jstr(p, "cwd");
        if (!cwd || cwd[0] != '/')
                return refuse("process.cwd", "must be an absolute path");
        msb_run_opts_set_workdir(b->o, cwd);
        unsigned uid, gid, *groups = NULL;
        size_t ng = 0;
        r = parse_user(json_object_get(p, "user"), NULL, &uid, &gid, &groups, &ng);
        if (r < 0)
                return r;
        r = opts_ids(b->o, uid, gid, groups, ng);
        free(groups);
        if (r < 0)
                return r;
        b->terminal = json_is_true(json_object_get(p, "terminal"));
        console_size(p, &b->rows, &b->cols);
        msb_run_opts_set_tty(b->o, b->terminal, b->rows, b->cols);
        /* the main process always reads the shim's stdin: /dev/null (EOF
         * at once) unless conmon passed a pipe */
        msb_run_opts_set_stdin(b->o, true);
        /* the VM's host processes are the container's memory: they take
         * its OOM score (the shim sets it before the VM starts) */
        json_t *oom = json_object_get(p, "oomScoreAdj");
        if (oom) {
                if (!json_is_integer(oom) || json_integer_value(oom) < -1000 || json_integer_value(oom) > 1000)
                        return refuse("process.oomScoreAdj", "expected a number from -1000 to 1000");
                b->oom_score_adj = (int)json_integer_value(oom);
                b->has_oom_score_adj = true;
        }
        if (json_object_get(p, "ioPriority"))
                return refuse("process.ioPriority", "not supported in a VM");
        if (json_object_get(p, "scheduler"))
                return refuse("process.scheduler", "not supported in a VM");
        return map_rlimits(b->o, json_object_get(p, "rlimits"));
}

/* ---- mounts ---- */

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
static int make_mountpoints(const struct rt_bundle *b, const char *root)
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
                        snprintf(why, sizeof(why), "cannot make the mount point %s in the read-only root: %s", path,
                                 strerror(-r));
                        return refuse("mounts", why);
                }
        }
        return 0;
}

static int map_mounts(struct rt_bundle *b, json_t *a)
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

/* ---- linux ---- */

static int map_namespaces(struct rt_bundle *b, json_t *a)
{
        size_t i;
        json_t *n;
        bool pid = false, ipc = false;
        json_array_foreach(a, i, n)
        {
                const char *t = jstr(n, "type"), *path = jstr(n, "path");
                if (!t)
                        return refuse("linux.namespaces", "an entry without a type");
                pid |= !strcmp(t, "pid");
                ipc |= !strcmp(t, "ipc");
                if (!strcmp(t, "network")) {
                        free(b->netns);
                        b->netns = path && *path ? xstrdup(path) : NULL;
                        b->netns_new = !b->netns;
                        continue;
                }
                if (!strcmp(t, "user"))
                        return refuse("linux.namespaces", "a user namespace: the VM has its own users; remove it");
                if (!strcmp(t, "time"))
                        return refuse("linux.namespaces", "a time namespace is not supported");
                if (strcmp(t, "pid") && strcmp(t, "ipc") && strcmp(t, "uts") && strcmp(t, "mount") &&
                    strcmp(t, "cgroup"))
                        return refuse("linux.namespaces", "unknown namespace type");
                /* the VM is its own pid, ipc, uts, mount and cgroup
                 * namespace; another container's cannot be joined.  A
                 * pod's ipc and uts are let through with a warning (the
                 * pod's hostname comes in "hostname"; its IPC objects are
                 * each container's own: docs/oci-runtime.md) */
                if (path && *path && (!strcmp(t, "ipc") || !strcmp(t, "uts")))
                        rt_warn("linux.namespaces: %s namespace %s is not shared with a VM", t, path);
                else if (path && *path) {
                        char why[PATH_MAX + 128];
                        snprintf(why, sizeof(why), "the %s namespace %s is another's, and a VM cannot join it", t,
                                 path);
                        return refuse("linux.namespaces", why);
                }
        }
        /* no entry: the host's own, which a VM cannot share */
        if (!pid)
                return refuse("linux.namespaces", "no pid namespace: the host's processes cannot be seen from a VM "
                                                  "(--pid=host is not supported)");
        if (!ipc)
                return refuse("linux.namespaces", "no ipc namespace: the host's IPC cannot be shared with a VM "
                                                  "(--ipc=host is not supported)");
        return 0;
}

/* The devices every container has (the runtime spec's list): the guest
 * has its own. */
static bool standard_device(const char *path)
{
        static const char *const std[] = {"/dev/null", "/dev/zero",    "/dev/full", "/dev/random",
                                          "/dev/urandom", "/dev/tty", "/dev/console", "/dev/ptmx"};
        for (size_t i = 0; i < ARRAY_SIZE(std); i++)
                if (!strcmp(path, std[i]))
                        return true;
        return false;
}

/* A device cgroup rule that allows something beyond the standard
 * character devices (1:3/5/7/8/9, 5:0/1/2, 136:*) asks for a host device. */
static int check_device_rule(json_t *d, size_t idx)
{
        if (!json_is_true(json_object_get(d, "allow")))
                return 0;
        const char *type = jstr(d, "type");
        json_t *maj = json_object_get(d, "major"), *min = json_object_get(d, "minor");
        json_int_t M = maj ? json_integer_value(maj) : -1, m = min ? json_integer_value(min) : -1;
        bool ok = type && !strcmp(type, "c") &&
                  ((M == 1 && (m == 3 || m == 5 || m == 7 || m == 8 || m == 9)) ||
                   (M == 5 && (m == 0 || m == 1 || m == 2)) || M == 136);
        if (ok)
                return 0;
        char field[64], why[160];
        snprintf(field, sizeof(field), "linux.resources.devices[%zu]", idx);
        snprintf(why, sizeof(why),
                 "allows host device %s %lld:%lld; a VM cannot use host devices (privileged containers are not "
                 "supported)",
                 type ? type : "a", (long long)M, (long long)m);
        return refuse(field, why);
}

int rt_size_from_resources(int64_t quota, uint64_t period, const char *cpus, int64_t mem_limit, unsigned *ret_cpus,
                           unsigned *ret_mib, char *errbuf, size_t errn)
{
        unsigned n = 0;
        if (period == 0)
                period = 100000; /* the kernel's default, as runc's */
        if (quota > 0) {
                /* past msb's most, said so by the caller: no wrap to a small count */
                uint64_t q = ((uint64_t)quota + period - 1) / period;
                n = q > MSB_MAX_CPUS ? MSB_MAX_CPUS + 1 : (unsigned)q;
        }
        else if (cpus && *cpus) {
                /* "0-3,6": count the CPUs */
                const char *p = cpus;
                while (*p) {
                        char *end;
                        unsigned long a = strtoul(p, &end, 10), z = a;
                        if (end == p)
                                goto bad;
                        if (*end == '-') {
                                p = end + 1;
                                z = strtoul(p, &end, 10);
                                if (end == p || z < a)
                                        goto bad;
                        }
                        if (z - a + 1 > MSB_MAX_CPUS + 1 || n > MSB_MAX_CPUS)
                                n = MSB_MAX_CPUS + 1;
                        else
                                n += (unsigned)(z - a + 1);
                        p = end;
                        if (*p == ',')
                                p++;
                        else if (*p)
                                goto bad;
                }
        }
        unsigned mib = 0;
        if (mem_limit > 0) {
                uint64_t m = ((uint64_t)mem_limit + (1u << 20) - 1) >> 20;
                if (m < MSB_MIN_MEMORY_MIB + RT_HOST_RESERVE_MIB) {
                        snprintf(errbuf, errn,
                                 "%llu MiB cannot hold a VM: at least %u MiB (%u for "
                                 "the guest, %u for QEMU and msb's helpers on the host)",
                                 (unsigned long long)m, MSB_MIN_MEMORY_MIB + RT_HOST_RESERVE_MIB, MSB_MIN_MEMORY_MIB,
                                 RT_HOST_RESERVE_MIB);
                        return -ERANGE;
                }
                m -= RT_HOST_RESERVE_MIB;
                mib = m > UINT32_MAX ? UINT32_MAX : (unsigned)m;
        }
        *ret_cpus = n;
        *ret_mib = mib;
        return 0;
bad:
        snprintf(errbuf, errn, "'%s': expected a list such as 0-3,6", cpus);
        return -EINVAL;
}

/* An integer field of linux.resources: absent is 0; -1 means unlimited
 * where allowed; anything else below 0, or not an integer, is refused. */
static int res_int(json_t *o, const char *key, const char *field, bool minus_one, int64_t *ret)
{
        json_t *v = json_object_get(o, key);
        *ret = 0;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < (minus_one ? -1 : 0)) {
                char why[96];
                snprintf(why, sizeof(why), "expected %s", minus_one ? "an integer, or -1 for no limit" : "a positive integer");
                return refuse(field, why);
        }
        *ret = json_integer_value(v);
        return 0;
}

static int res_str(json_t *o, const char *key, const char *field, char **ret)
{
        json_t *v = json_object_get(o, key);
        *ret = NULL;
        if (!v || json_is_null(v) || (json_is_string(v) && !*json_string_value(v)))
                return 0;
        if (!json_is_string(v) || json_string_length(v) > 1024 ||
            strspn(json_string_value(v), "0123456789,-") != json_string_length(v))
                return refuse(field, "expected a list such as 0-3,6");
        *ret = xstrdup(json_string_value(v));
        return 0;
}

/* linux.resources.unified: cgroup v2 files, "controller.name" keys only */
static int res_unified(struct rt_resources *r, json_t *u)
{
        const char *k;
        json_t *v;
        json_object_foreach(u, k, v)
        {
                char field[160];
                snprintf(field, sizeof(field), "linux.resources.unified.%.100s", k);
                /* files that tune this cgroup alone: not the typed limits'
                 * (memory.max, cpu.max, pids.max, cpuset.*), which the checks
                 * above bound, nor cpuset partitions, which take CPUs from
                 * the rest of the host */
                static const char *const ok[] = {"memory.high", "memory.low",      "memory.min",  "memory.swap.high",
                                                 "memory.oom.group", "cpu.weight", "cpu.weight.nice",
                                                 "cpu.max.burst", "cpu.idle",      "io.weight",   "io.max",
                                                 "io.latency",   "io.bfq.weight"};
                bool known = false;
                for (size_t i = 0; i < ARRAY_SIZE(ok) && !known; i++)
                        known = !strcmp(k, ok[i]);
                if (!known)
                        return refuse(field, "not among the cgroup v2 files msb-runtime writes (memory.high, "
                                             "memory.low, memory.min, memory.swap.high, memory.oom.group, "
                                             "cpu.weight, cpu.weight.nice, cpu.max.burst, cpu.idle, io.weight, "
                                             "io.max, io.latency, io.bfq.weight); the typed linux.resources "
                                             "fields set the others");
                if (!json_is_string(v) || json_string_length(v) > 4096 || strchr(json_string_value(v), '\n'))
                        return refuse(field, "expected a one-line string value");
                r->unified = xrealloc(r->unified, (r->n_unified + 1) * 2 * sizeof(char *));
                r->unified[2 * r->n_unified] = xstrdup(k);
                r->unified[2 * r->n_unified + 1] = xstrdup(json_string_value(v));
                r->n_unified++;
        }
        return 0;
}

/* The host cgroup's share of linux.resources. */
static int parse_resources(struct rt_resources *r, json_t *res)
{
        json_t *cpu = json_object_get(res, "cpu"), *mem = json_object_get(res, "memory");
        int64_t v;
        int e;
        if ((e = res_int(cpu, "quota", "linux.resources.cpu.quota", true, &r->cpu_quota)) < 0 ||
            (e = res_int(cpu, "period", "linux.resources.cpu.period", false, &v)) < 0)
                return e;
        r->cpu_period = (uint64_t)v;
        if ((e = res_int(cpu, "shares", "linux.resources.cpu.shares", false, &v)) < 0)
                return e;
        r->cpu_shares = (uint64_t)v;
        if ((e = res_str(cpu, "cpus", "linux.resources.cpu.cpus", &r->cpus)) < 0 ||
            (e = res_str(cpu, "mems", "linux.resources.cpu.mems", &r->mems)) < 0 ||
            (e = res_int(mem, "limit", "linux.resources.memory.limit", true, &r->mem_limit)) < 0 ||
            (e = res_int(mem, "swap", "linux.resources.memory.swap", true, &r->mem_swap)) < 0 ||
            (e = res_int(mem, "reservation", "linux.resources.memory.reservation", true, &r->mem_reservation)) < 0 ||
            (e = res_int(json_object_get(res, "pids"), "limit", "linux.resources.pids.limit", true, &r->pids_limit)) <
                    0)
                return e;
        /* runc's pids limit: 0 is unset, any negative value no limit */
        json_t *u = json_object_get(res, "unified");
        if (u && !json_is_object(u))
                return refuse("linux.resources.unified", "expected an object");
        return res_unified(r, u);
}

/* An annotation's size for the VM: it may lower what the resources (or
 * msb's default) give, and raise it only where msb-runtime's config
 * says so (as Kata's enable_annotations). */
static int annotation_size(const char *name, const char *given, unsigned bound, const char *from, bool *cfg_loaded,
                           struct rt_config *cfg, unsigned *io)
{
        char field[64], why[512];
        snprintf(field, sizeof(field), "annotations.%s", name);
        bool cpus = !strcmp(name, "io.msb.cpus");
        unsigned v;
        if (cpus) {
                char *end;
                unsigned long l = strtoul(given, &end, 10);
                if (end == given || *end || given[0] == '-' || l == 0 || l > MSB_MAX_CPUS)
                        return refuse(field, "expected a number of vCPUs, 1 to 64");
                v = (unsigned)l;
        } else {
                uint64_t bytes;
                if (msb_parse_size(given, &bytes) < 0 || (bytes >> 20) < MSB_MIN_MEMORY_MIB ||
                    (bytes >> 20) > MSB_MAX_MEMORY_MIB)
                        return refuse(field, "expected a size such as 512M or 2G, 128M to 64G");
                v = (unsigned)(bytes >> 20);
        }
        if (v > bound) {
                if (!*cfg_loaded) {
                        if (rt_config_load(cfg) < 0)
                                return -EINVAL;
                        *cfg_loaded = true;
                }
                if (!(cpus ? cfg->raise_cpus : cfg->raise_memory)) {
                        snprintf(why, sizeof(why),
                                 "%u%s is more than %s gives (%u%s); an annotation may only lower the VM's size, "
                                 "unless %s has 'annotations-may-raise %s'",
                                 v, cpus ? " vCPUs" : " MiB", from, bound, cpus ? "" : " MiB", rt_config_path(), name);
                        return refuse(field, why);
                }
        }
        *io = v;
        return 0;
}

static int map_resources(struct rt_bundle *b, json_t *res, json_t *annotations)
{
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(res, "devices"), i, d)
        {
                int r = check_device_rule(d, i);
                if (r < 0)
                        return r;
        }
        int e = parse_resources(&b->res, res);
        if (e < 0)
                return e;
        char why[256];
        unsigned cpus, mib;
        e = rt_size_from_resources(b->res.cpu_quota, b->res.cpu_period, b->res.cpus, b->res.mem_limit, &cpus, &mib,
                                   why, sizeof(why));
        if (e < 0)
                return refuse(e == -ERANGE ? "linux.resources.memory.limit" : "linux.resources.cpu.cpus", why);
        const char *ac = jstr(annotations, "io.msb.cpus"), *am = jstr(annotations, "io.msb.memory");
        bool loaded = false;
        struct rt_config cfg;
        if (ac && (e = annotation_size("io.msb.cpus", ac, cpus ? cpus : MSB_DEFAULT_CPUS,
                                       cpus ? "linux.resources.cpu" : "msb's default", &loaded, &cfg, &cpus)) < 0)
                return e;
        if (am && (e = annotation_size("io.msb.memory", am, mib ? mib : MSB_DEFAULT_MEMORY_MIB,
                                       mib ? "linux.resources.memory.limit" : "msb's default", &loaded, &cfg, &mib)) <
                          0)
                return e;
        if (cpus && msb_run_opts_set_cpus(b->o, cpus) < 0) {
                snprintf(why, sizeof(why), "%u vCPUs is more than msb gives a VM (%u)", cpus, MSB_MAX_CPUS);
                return refuse(ac ? "annotations.io.msb.cpus" : "linux.resources.cpu", why);
        }
        if (mib && msb_run_opts_set_memory_mib(b->o, mib) < 0) {
                snprintf(why, sizeof(why), "%u MiB of guest memory is more than msb gives a VM", mib);
                return refuse(am ? "annotations.io.msb.memory" : "linux.resources.memory.limit", why);
        }
        unsigned vcpus = cpus ? cpus : MSB_DEFAULT_CPUS;
        if (b->res.pids_limit > 0 && (uint64_t)b->res.pids_limit < RT_PIDS_MIN(vcpus)) {
                snprintf(why, sizeof(why),
                         "%lld is too few for the VM's host processes and threads (QEMU's, msb's helpers'): at "
                         "least %u; the guest's own processes are bounded by its memory",
                         (long long)b->res.pids_limit, RT_PIDS_MIN(vcpus));
                return refuse("linux.resources.pids.limit", why);
        }
        /* blockIO, hugepageLimits, network, rdma: not applied
         * (docs/oci-runtime.md) */
        return 0;
}

static int map_linux(struct rt_bundle *b, json_t *l, json_t *annotations)
{
        int r = map_namespaces(b, json_object_get(l, "namespaces"));
        if (r < 0 || !l)
                return r < 0 ? r : map_resources(b, NULL, annotations);
        if (r < 0)
                return r;
        if (json_array_size(json_object_get(l, "uidMappings")) || json_array_size(json_object_get(l, "gidMappings")))
                return refuse("linux.uidMappings", "user namespaces are not supported: the VM has its own users");
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(l, "devices"), i, d)
        {
                const char *p = jstr(d, "path");
                if (!p || !standard_device(p)) {
                        char field[64], why[PATH_MAX + 64];
                        snprintf(field, sizeof(field), "linux.devices[%zu]", i);
                        snprintf(why, sizeof(why), "%s is a host device; a VM cannot use it", p ? p : "(no path)");
                        return refuse(field, why);
                }
        }
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(l, "sysctl"), k, v)
        {
                /* written by agentd in the guest, whose kernel is the
                 * container's alone: any key it has */
                struct msb_error err = {0};
                char field[160];
                snprintf(field, sizeof(field), "linux.sysctl.%.128s", k);
                if (!json_is_string(v))
                        return refuse(field, "expected a string value");
                if (msb_run_opts_add_sysctl(b->o, k, json_string_value(v), &err) < 0)
                        return refuse(field, err.message);
        }
        if (json_object_get(l, "intelRdt"))
                return refuse("linux.intelRdt", "not supported in a VM");
        if (json_object_get(l, "personality"))
                return refuse("linux.personality", "not supported");
        if (json_object_get(l, "timeOffsets"))
                return refuse("linux.timeOffsets", "not supported");
        /* mounts made in the guest cannot reach the host: private and
         * slave are what a VM is anyway (host mounts below a volume are
         * seen, msb-fsd serves the host's view) */
        const char *prop = jstr(l, "rootfsPropagation");
        if (prop && (!strcmp(prop, "shared") || !strcmp(prop, "rshared")))
                return refuse("linux.rootfsPropagation", "mounts made in the guest cannot propagate to the host");
        if (prop && strcmp(prop, "private") && strcmp(prop, "rprivate") && strcmp(prop, "slave") &&
            strcmp(prop, "rslave") && strcmp(prop, "unbindable") && strcmp(prop, "runbindable"))
                return refuse("linux.rootfsPropagation", "unknown propagation");
        json_t *cp = json_object_get(l, "cgroupsPath");
        if (cp && !json_is_null(cp) && (!json_is_string(cp) || !*json_string_value(cp)))
                return refuse("linux.cgroupsPath", "expected a non-empty string");
        if (json_is_string(cp)) {
                char why[PATH_MAX + 64];
                if (rt_cgroup_path_check(json_string_value(cp), why, sizeof(why)) < 0)
                        return refuse("linux.cgroupsPath", why);
                b->res.cgroups_path = xstrdup(json_string_value(cp));
        }
        /* accepted: seccomp, maskedPaths, readonlyPaths, mountLabel:
         * warn_unapplied() */
        return map_resources(b, json_object_get(l, "resources"), annotations);
}

/* The process's confinement in the guest (confine.c) and the steps on its
 * root: linux.maskedPaths and readonlyPaths (under /proc and /sys: with
 * runc they hide the host kernel's state; here the guest kernel's, applied
 * all the same, so that a container sees what it would see under runc). */
static int map_confine(struct rt_bundle *b, json_t *j)
{
        json_t *l = json_object_get(j, "linux");
        struct msb_confine c;
        void *bpf;
        bool any;
        char why[512];
        struct msb_error err = {0};
        json_t *proc = json_object_get(j, "process");
        int r = rt_confine_from(json_object_get(proc, "capabilities"),
                                json_is_true(json_object_get(proc, "noNewPrivileges")),
                                json_integer_value(json_object_get(json_object_get(proc, "user"), "uid")) == 0,
                                json_object_get(l, "seccomp"), &c, &bpf, &any, why, sizeof(why));
        if (r < 0)
                return refuse_why(why);
        if (any)
                r = msb_run_opts_set_confine(b->o, &c, &err);
        free(bpf);
        if (r < 0)
                return refuse("linux.seccomp", err.message);
        static const char *const lists[] = {"maskedPaths", "readonlyPaths"};
        for (size_t k = 0; k < ARRAY_SIZE(lists); k++) {
                json_t *a = json_object_get(l, lists[k]), *v;
                size_t i;
                json_array_foreach(a, i, v)
                {
                        const char *p = json_string_value(v);
                        char field[64];
                        snprintf(field, sizeof(field), "linux.%s[%zu]", lists[k], i);
                        if (!p)
                                return refuse(field, "expected a path");
                        r = k == 0 ? msb_run_opts_add_masked_path(b->o, p, &err)
                                   : msb_run_opts_add_readonly_path(b->o, p, &err);
                        if (r < 0)
                                return refuse(field, err.message);
                }
        }
        /* host LSM labels: the guest kernel has no LSM, and the host's
         * confines QEMU and msb's helpers (docs/oci-runtime.md) */
        json_t *p = json_object_get(j, "process");
        if ((jstr(p, "apparmorProfile") && *jstr(p, "apparmorProfile")) ||
            (jstr(p, "selinuxLabel") && *jstr(p, "selinuxLabel")) || (jstr(l, "mountLabel") && *jstr(l, "mountLabel")))
                rt_debug("apparmorProfile, selinuxLabel, mountLabel: host labels, no effect inside a VM");
        return 0;
}

static int map_hooks(json_t *h)
{
        const char *k;
        json_t *v;
        json_object_foreach(h, k, v)
        {
                if (json_array_size(v)) {
                        char field[64];
                        snprintf(field, sizeof(field), "hooks.%s", k);
                        return refuse(field, "hooks are not supported by msb-runtime");
                }
        }
        return 0;
}

/* A JSON object from a file of at most CONFIG_MAX bytes; -errno after
 * rt_error() naming it (WHAT: "the process file " or ""). */
static int load_json(const char *path, const char *what, json_t **ret)
{
        _cleanup_free_ char *data = NULL;
        int r = read_file_at(AT_FDCWD, path, CONFIG_MAX, &data, NULL);
        if (r < 0) {
                rt_error("cannot read %s%s: %s", what, path, strerror(-r));
                return r;
        }
        json_error_t je;
        json_t *j = json_loads(data, 0, &je);
        if (!json_is_object(j)) {
                json_decref(j);
                rt_error("%s: not a JSON object (line %d: %s)", path, je.line, je.text);
                return -EINVAL;
        }
        *ret = j;
        return 0;
}

int rt_bundle_load(const char *bundle, struct rt_bundle *b)
{
        memset(b, 0, sizeof(*b));
        _cleanup_free_ char *path = xasprintf("%s/config.json", bundle);
        json_t *j;
        int r = load_json(path, "", &j);
        if (r < 0)
                return r;
        msb_run_opts_new(&b->o);
        const char *ver = jstr(j, "ociVersion");
        if (!ver || strncmp(ver, "1.", 2))
                r = refuse("ociVersion", "expected a 1.x version");
        json_t *root = json_object_get(j, "root");
        const char *rp = jstr(root, "path");
        if (r >= 0 && !rp)
                r = refuse("root.path", "missing");
        if (r >= 0) {
                _cleanup_free_ char *joined = rp[0] == '/' ? xstrdup(rp) : xasprintf("%s/%s", bundle, rp);
                _cleanup_free_ char *real = realpath(joined, NULL);
                struct stat st;
                if (!real || stat(real, &st) < 0 || !S_ISDIR(st.st_mode))
                        r = refuse("root.path", "not a directory");
                else
                        r = opts_root(b->o, real, json_is_true(json_object_get(root, "readonly")));
                if (r >= 0)
                        b->root = TAKE_PTR(real);
        }
        json_t *ann = json_object_get(j, "annotations");
        const char *ct = jstr(ann, "io.kubernetes.cri.container-type"), *ct2 = jstr(ann, "io.kubernetes.cri-o.ContainerType");
        b->pod_sandbox = (ct && !strcmp(ct, "sandbox")) || (ct2 && !strcmp(ct2, "sandbox"));
        b->annotations = json_is_object(ann) ? json_dumps(ann, JSON_COMPACT) : xstrdup("{}");
        if (r >= 0)
                r = map_process(b, json_object_get(j, "process"));
        const char *host = jstr(j, "hostname");
        if (r >= 0 && host && *host && msb_run_opts_set_hostname(b->o, host) < 0)
                r = refuse("hostname", "expected letters, digits, '-' and '.', at most 63");
        if (r >= 0)
                r = map_mounts(b, json_object_get(j, "mounts"));
        bool readonly = json_is_true(json_object_get(root, "readonly"));
        if (r >= 0)
                r = map_hooks(json_object_get(j, "hooks"));
        if (r >= 0)
                r = map_linux(b, json_object_get(j, "linux"), ann);
        if (r >= 0)
                r = map_confine(b, j);
        static const char *const other_os[] = {"windows", "solaris", "vm", "zos"};
        for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(other_os); i++)
                if (json_object_get(j, other_os[i]))
                        r = refuse(other_os[i], "not a Linux field");
        /* last, once nothing can refuse the bundle: a refused one leaves
         * its root as it was */
        if (r >= 0 && readonly)
                r = make_mountpoints(b, b->root);
        json_decref(j);
        if (r < 0)
                rt_bundle_free(b);
        return r;
}

void rt_bundle_free(struct rt_bundle *b)
{
        msb_run_opts_free(b->o);
        free(b->netns);
        free(b->annotations);
        free(b->root);
        strv_free(b->mountpoints);
        free(b->res.cpus);
        free(b->res.mems);
        for (size_t i = 0; i < 2 * b->res.n_unified; i++)
                free(b->res.unified[i]);
        free(b->res.unified);
        free(b->res.cgroups_path);
        memset(b, 0, sizeof(*b));
}

/* ---- exec --process ---- */

int rt_process_parse_file(const char *path, struct rt_process *p)
{
        memset(p, 0, sizeof(*p));
        json_t *j;
        int r = load_json(path, "the process file ", &j);
        if (r < 0)
                return r;
        r = parse_strv(json_object_get(j, "args"), "process.args", &p->argv);
        if (r >= 0 && (!p->argv || !p->argv[0]))
                r = refuse("process.args", "empty: name the command to run");
        if (r >= 0)
                r = parse_strv(json_object_get(j, "env"), "process.env", &p->env);
        const char *cwd = jstr(j, "cwd");
        p->cwd = cwd && *cwd ? xstrdup(cwd) : NULL;
        unsigned uid, gid;
        if (r >= 0 && json_object_get(j, "user"))
                r = parse_user(json_object_get(j, "user"), &p->user, &uid, &gid, NULL, NULL);
        p->terminal = json_is_true(json_object_get(j, "terminal"));
        console_size(j, &p->rows, &p->cols);
        p->json = j;
        if (r < 0)
                rt_process_free(p);
        return r;
}

void rt_process_free(struct rt_process *p)
{
        strv_free(p->argv);
        strv_free(p->env);
        free(p->cwd);
        free(p->user);
        free(p->bpf);
        json_decref(p->json);
        memset(p, 0, sizeof(*p));
}

int rt_exec_confine(const char *bundle, struct rt_process *p, bool no_new_privs)
{
        _cleanup_free_ char *path = xasprintf("%s/config.json", bundle);
        json_t *j;
        int r = load_json(path, "", &j);
        if (r < 0)
                return r;
        /* as runc: the --process object's capabilities, else the
         * container's; the default by the uid the process runs as */
        json_t *proc = json_object_get(j, "process");
        json_t *caps = json_object_get(p->json, "capabilities");
        if (!caps)
                caps = json_object_get(proc, "capabilities");
        bool nnp = no_new_privs || json_is_true(json_object_get(p->json ? p->json : proc, "noNewPrivileges"));
        bool root = p->user ? p->user[0] >= '0' && p->user[0] <= '9' && strtoul(p->user, NULL, 10) == 0
                            : json_integer_value(json_object_get(json_object_get(proc, "user"), "uid")) == 0;
        char why[512];
        r = rt_confine_from(caps, nnp, root, json_object_get(json_object_get(j, "linux"), "seccomp"), &p->confine,
                            &p->bpf, &p->confined, why, sizeof(why));
        json_decref(j);
        return r < 0 ? refuse_why(why) : 0;
}
