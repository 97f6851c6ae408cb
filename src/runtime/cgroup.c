/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A container's cgroup on the host, as runc makes it: at linux.cgroupsPath
 * (absolute: from the hierarchy's root; relative: below the runtime's own
 * cgroup; "slice:prefix:name" with --systemd-cgroup; none: the container's
 * ID below the runtime's own cgroup), holding linux.resources' CPU, cpuset,
 * memory and pids limits.  The shim joins it before the VM boots, so QEMU,
 * msb-fsd, msb-netd, passt and the supervisor are all in it: what the
 * bundle allows bounds the whole container, its VM included.
 *
 * cgroup v2 (one tree at /sys/fs/cgroup): one directory, with the
 * controllers enabled in the ancestors' cgroup.subtree_control.  v1: one
 * directory per hierarchy the runtime itself is in (every controller and
 * name=systemd; the hybrid layout's controller-less v2 tree is left
 * alone).  See docs/oci-runtime.md.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>

#include "common/util.h"
#include "runtime.h"

#define RMDIR_WAIT_MS 5000
#define RMDIR_KILL_AFTER_MS 1000

struct hier {
        char *mnt;   /* its mount point */
        char *own;   /* the runtime's cgroup in it, relative to the mount's root */
        char *ctrls; /* "cpu,cpuacct", "name=systemd", "" for v2 */
        bool v2;
};

static void hiers_free(struct hier *h, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(h[i].mnt);
                free(h[i].own);
                free(h[i].ctrls);
        }
        free(h);
}

/* Does the comma list have every word of want's comma list? */
static bool has_all(const char *list, const char *want)
{
        _cleanup_free_ char *w = xstrdup(want);
        for (char *s = NULL, *t = strtok_r(w, ",", &s); t; t = strtok_r(NULL, ",", &s)) {
                size_t n = strlen(t);
                const char *p = list;
                bool found = false;
                while (p && *p) {
                        const char *e = strchrnul(p, ',');
                        if ((size_t)(e - p) == n && !strncmp(p, t, n))
                                found = true;
                        p = *e ? e + 1 : NULL;
                }
                if (!found)
                        return false;
        }
        return true;
}

/* A mountinfo line's mount point, root and, for a cgroup (v1 with
 * ctrls, or v2 with ctrls NULL), whether it is the one. */
static bool mount_of(char *line, const char *ctrls, char **ret_mnt, char **ret_root)
{
        char *f[6] = {0};
        char *s = NULL, *t = strtok_r(line, " ", &s);
        for (int i = 0; t && i < 6; i++, t = strtok_r(NULL, " ", &s))
                f[i] = t;
        while (t && strcmp(t, "-"))
                t = strtok_r(NULL, " ", &s);
        char *type = t ? strtok_r(NULL, " ", &s) : NULL;
        char *src = type ? strtok_r(NULL, " ", &s) : NULL;
        char *super = src ? strtok_r(NULL, " \n", &s) : NULL;
        if (!f[4] || !super)
                return false;
        if (ctrls ? strcmp(type, "cgroup") || !has_all(super, ctrls) : strcmp(type, "cgroup2"))
                return false;
        *ret_root = f[3];
        *ret_mnt = f[4];
        return true;
}

/* Where a hierarchy is mounted: 0 with h->mnt, and own made relative to
 * the mount's root (a bind of a subtree, a cgroup namespace's view). */
static int find_mount(struct hier *h, const char *own)
{
        FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return -errno;
        char *line = NULL;
        size_t cap = 0;
        int r = -ENOENT;
        while (r == -ENOENT && getline(&line, &cap, f) > 0) {
                char *mnt, *root;
                if (!mount_of(line, h->v2 ? NULL : h->ctrls, &mnt, &root))
                        continue;
                /* mountinfo escapes blanks as \040: such a mount point is not ours to guess */
                if (strchr(mnt, '\\'))
                        continue;
                size_t rl = strcmp(root, "/") ? strlen(root) : 0;
                const char *rel = own;
                if (rl && !strncmp(own, root, rl) && (own[rl] == '/' || !own[rl]))
                        rel = own + rl;
                h->mnt = xstrdup(mnt);
                h->own = xstrdup(*rel ? rel : "/");
                r = 0;
        }
        free(line);
        fclose(f);
        return r;
}

/* The hierarchies to make the container's cgroup in. */
static int hierarchies(struct hier **ret, size_t *ret_n)
{
        struct statfs sf;
        bool unified = statfs("/sys/fs/cgroup", &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
        FILE *f = fopen("/proc/self/cgroup", "re");
        if (!f)
                return -errno;
        struct hier *h = NULL;
        size_t n = 0;
        char *line = NULL;
        size_t cap = 0;
        int r = 0;
        while (getline(&line, &cap, f) > 0) {
                line[strcspn(line, "\n")] = '\0';
                char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c2 = '\0';
                const char *ctrls = c1 + 1, *path = c2 + 1;
                bool v2 = !*ctrls;
                if (v2 != unified)
                        continue; /* v1 lines on a v2 host; the hybrid layout's v2 line */
                h = xrealloc(h, (n + 1) * sizeof(*h));
                h[n] = (struct hier){.ctrls = xstrdup(ctrls), .v2 = v2};
                if ((r = find_mount(&h[n], path)) < 0) {
                        free(h[n].ctrls);
                        if (r != -ENOENT)
                                break;
                        r = 0; /* a hierarchy that is not mounted: nothing to put limits in */
                        continue;
                }
                n++;
        }
        free(line);
        fclose(f);
        if (r == 0 && n == 0)
                r = -ENOENT;
        if (r < 0) {
                hiers_free(h, n);
                return r;
        }
        *ret = h;
        *ret_n = n;
        return 0;
}

int rt_cgroup_systemd_path(const char *spec, char *out, size_t n, struct msb_error *err)
{
        const char *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || strchr(c2 + 1, ':') || strchr(spec, '/')) {
                return msb_err(err, EINVAL, "'%s': with --systemd-cgroup, expected slice:prefix:name", spec);
        }
        char slice[256];
        size_t sl = (size_t)(c1 - spec);
        if (sl >= sizeof(slice) || (size_t)(c2 - c1 - 1) >= 128 || strlen(c2 + 1) >= 128)
                return msb_err(err, EINVAL, "'%s': too long", spec);
        memcpy(slice, spec, sl);
        slice[sl] = '\0';
        if (!*slice)
                strcpy(slice, "system.slice");
        size_t len = strlen(slice);
        if (len < 7 || strcmp(slice + len - 6, ".slice") || (slice[0] == '-' && strcmp(slice, "-.slice")) ||
            strspn(slice, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") != len)
                return msb_err(err, EINVAL, "'%s': '%s' is not a systemd slice name (such as machine.slice)", spec,
                               slice);
        /* a-b-c.slice lives in /a.slice/a-b.slice/a-b-c.slice (-.slice: the root) */
        size_t used = 0;
        out[0] = '\0';
        if (strcmp(slice, "-.slice")) {
                slice[len - 6] = '\0';
                for (char *dash = slice;; dash++) {
                        dash = strchr(dash, '-');
                        int w = snprintf(out + used, n - used, "/%.*s.slice", dash ? (int)(dash - slice) : (int)len,
                                         slice);
                        if (w < 0 || (size_t)w >= n - used)
                                goto toolong;
                        used += (size_t)w;
                        if (!dash)
                                break;
                }
        }
        const char *name = c2 + 1;
        char prefix[128];
        snprintf(prefix, sizeof(prefix), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
        size_t nl = strlen(name);
        if (!nl)
                return msb_err(err, EINVAL, "'%s': the name is empty", spec);
        /* a name that is a slice is the cgroup itself, as with runc */
        int w = nl > 6 && !strcmp(name + nl - 6, ".slice")
                        ? snprintf(out + used, n - used, "/%s", name)
                        : snprintf(out + used, n - used, "/%s%s%s.scope", prefix, *prefix ? "-" : "", name);
        if (w < 0 || (size_t)w >= n - used)
                goto toolong;
        return 0;
toolong:
        return msb_err(err, EINVAL, "'%s': too long", spec);
}

int rt_cgroup_path_check(const char *p, struct msb_error *err)
{
        if (strlen(p) >= PATH_MAX / 2)
                return msb_err(err, EINVAL, "too long");
        for (const char *s = p; *s;) {
                const char *e = strchrnul(s, '/');
                if ((e - s == 2 && !strncmp(s, "..", 2)) || (e - s == 1 && *s == '.'))
                        return msb_err(err, EINVAL, "'%s': '.' and '..' are not allowed", p);
                s = *e ? e + 1 : e;
        }
        return 0;
}

/* Write val into dir/file; field names it in err (may be NULL). */
static int put(const char *dir, const char *file, const char *val, const char *field, struct msb_error *err)
{
        _cleanup_free_ char *p = xasprintf("%s/%s", dir, file);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC);
        size_t len = strlen(val);
        if (fd < 0 || write(fd, val, len) != (ssize_t)len) {
                int e = errno ? errno : EIO;
                return msb_err_errno(err, e, "%s: cannot write '%s' to %s", field, val, p);
        }
        return 0;
}

static int put_i(const char *dir, const char *file, int64_t v, const char *field, struct msb_error *err)
{
        char b[32];
        snprintf(b, sizeof(b), "%lld", (long long)v);
        return put(dir, file, b, field, err);
}

/* v1's cpuset: a new cgroup's cpus and mems are empty, and a process
 * cannot join it until they are its parent's. */
static void cpuset_inherit(const char *dir)
{
        static const char *files[] = {"cpuset.cpus", "cpuset.mems"};
        _cleanup_free_ char *parent = xstrdup(dir);
        *strrchr(parent, '/') = '\0';
        for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
                _cleanup_free_ char *mine = NULL, *theirs = NULL;
                _cleanup_free_ char *mp = xasprintf("%s/%s", dir, files[i]), *pp = xasprintf("%s/%s", parent, files[i]);
                if (read_file_at(AT_FDCWD, mp, 4096, &mine, NULL) < 0 || strspn(mine, " \n") != strlen(mine))
                        continue;
                if (read_file_at(AT_FDCWD, pp, 4096, &theirs, NULL) == 0)
                        put(dir, files[i], theirs, "", NULL);
        }
}

/* v2: the controllers the limits need, enabled on the way down. */
static void enable_controllers(const char *dir)
{
        static const char *want[] = {"+cpu", "+cpuset", "+memory", "+pids"};
        for (size_t i = 0; i < ARRAY_SIZE(want); i++)
                put(dir, "cgroup.subtree_control", want[i], "", NULL);
}

/* No process and no child cgroup in dir: it may become the container's
 * (delete kills what is left in it, and removes it). */
static bool empty_cgroup(const char *dir)
{
        _cleanup_free_ char *p = xasprintf("%s/cgroup.procs", dir), *data = NULL;
        if (read_file_at(AT_FDCWD, p, 4096, &data, NULL) < 0 || data[strspn(data, " \n")])
                return false;
        DIR *d = opendir(dir);
        if (!d)
                return false;
        bool empty = true;
        struct dirent *de;
        while (empty && (de = readdir(d)))
                empty = de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
        closedir(d);
        return empty;
}

/* mkdir -p below mnt; *ret_made: the first level this call made (its
 * depth in rel), or -1.  Each level gets what a v1 cpuset or v2 needs. */
static int make_dirs(const struct hier *h, const char *leaf, int *ret_made)
{
        *ret_made = -1;
        size_t ml = strlen(h->mnt);
        _cleanup_free_ char *p = xstrdup(leaf);
        int depth = 0;
        for (char *s = p + ml + 1; s && *s; depth++) {
                char *e = strchr(s, '/');
                if (e)
                        *e = '\0';
                if (h->v2) {
                        /* the parent's subtree_control, before the child */
                        char *slash = strrchr(p, '/');
                        *slash = '\0';
                        enable_controllers(*p ? p : "/");
                        *slash = '/';
                }
                if (mkdir(p, 0755) == 0) {
                        if (*ret_made < 0)
                                *ret_made = depth;
                } else if (errno != EEXIST)
                        return -errno;
                else if (!e && !empty_cgroup(p))
                        return -EBUSY; /* a leaf that is someone else's */
                if (!h->v2 && has_all(h->ctrls, "cpuset"))
                        cpuset_inherit(p);
                if (e)
                        *e = '/';
                s = e ? e + 1 : NULL;
        }
        return 0;
}

static bool has(const struct hier *h, const char *ctrl)
{
        return h->v2 || has_all(h->ctrls, ctrl);
}

/* The limits in one hierarchy's directory. */
static int apply(const struct hier *h, const char *dir, const struct rt_resources *r, struct msb_error *err)
{
        int e = 0;
        const uint64_t period = r->cpu_period ? r->cpu_period : 100000;
        if (h->v2) {
                char b[64];
                if (!e && r->cpu_quota) {
                        if (r->cpu_quota > 0)
                                snprintf(b, sizeof(b), "%lld %llu", (long long)r->cpu_quota, (unsigned long long)period);
                        else
                                snprintf(b, sizeof(b), "max %llu", (unsigned long long)period);
                        e = put(dir, "cpu.max", b, "linux.resources.cpu.quota", err);
                }
                if (!e && r->cpu_shares) {
                        uint64_t s = r->cpu_shares < 2 ? 2 : r->cpu_shares > 262144 ? 262144 : r->cpu_shares;
                        e = put_i(dir, "cpu.weight", (int64_t)(1 + ((s - 2) * 9999) / 262142),
                                  "linux.resources.cpu.shares", err);
                }
        } else if (has(h, "cpu")) {
                if (!e && r->cpu_shares)
                        e = put_i(dir, "cpu.shares", (int64_t)r->cpu_shares, "linux.resources.cpu.shares", err);
                if (!e && r->cpu_period)
                        e = put_i(dir, "cpu.cfs_period_us", (int64_t)r->cpu_period, "linux.resources.cpu.period", err);
                if (!e && r->cpu_quota)
                        e = put_i(dir, "cpu.cfs_quota_us", r->cpu_quota > 0 ? r->cpu_quota : -1,
                                  "linux.resources.cpu.quota", err);
        }
        if (has(h, "cpuset")) {
                if (!e && r->cpus)
                        e = put(dir, "cpuset.cpus", r->cpus, "linux.resources.cpu.cpus", err);
                if (!e && r->mems)
                        e = put(dir, "cpuset.mems", r->mems, "linux.resources.cpu.mems", err);
        }
        if (has(h, "memory")) {
                const char *lim = h->v2 ? "memory.max" : "memory.limit_in_bytes";
                if (!e && r->mem_limit)
                        e = r->mem_limit > 0 ? put_i(dir, lim, r->mem_limit, "linux.resources.memory.limit", err)
                                             : put(dir, lim, h->v2 ? "max" : "-1", "linux.resources.memory.limit", err);
                if (!e && r->mem_reservation > 0)
                        e = put_i(dir, h->v2 ? "memory.low" : "memory.soft_limit_in_bytes", r->mem_reservation,
                                  "linux.resources.memory.reservation", err);
                if (!e && r->mem_swap) {
                        /* the spec's swap is memory + swap, as v1's memsw; v2's
                         * swap.max is the swap alone */
                        const char *f = h->v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes";
                        _cleanup_free_ char *p = xasprintf("%s/%s", dir, f);
                        if (access(p, F_OK) < 0)
                                rt_warn("linux.resources.memory.swap: the host has no swap accounting (%s): not "
                                        "applied",
                                        f);
                        else if (r->mem_swap < 0)
                                e = put(dir, f, h->v2 ? "max" : "-1", "linux.resources.memory.swap", err);
                        else if (!h->v2)
                                e = put_i(dir, f, r->mem_swap, "linux.resources.memory.swap", err);
                        else if (r->mem_limit > 0 && r->mem_swap >= r->mem_limit)
                                e = put_i(dir, f, r->mem_swap - r->mem_limit, "linux.resources.memory.swap", err);
                        else
                                e = msb_err(err, EINVAL,
                                            "linux.resources.memory.swap: %lld is less than the memory limit "
                                            "(it counts memory and swap together)",
                                            (long long)r->mem_swap);
                }
        }
        if (has(h, "pids") && !e && r->pids_limit)
                e = r->pids_limit > 0 ? put_i(dir, "pids.max", r->pids_limit, "linux.resources.pids.limit", err)
                                      : put(dir, "pids.max", "max", "linux.resources.pids.limit", err);
        for (size_t i = 0; h->v2 && !e && i < r->n_unified; i++) {
                char field[160];
                snprintf(field, sizeof(field), "linux.resources.unified.%.100s", r->unified[2 * i]);
                e = put(dir, r->unified[2 * i], r->unified[2 * i + 1], field, err);
        }
        return e;
}

static void sleep_ms(long ms)
{
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

/* SIGKILL what is left in dir: the container's own processes. */
static void kill_all(const char *dir)
{
        _cleanup_free_ char *p = xasprintf("%s/cgroup.procs", dir), *data = NULL;
        if (read_file_at(AT_FDCWD, p, 1 << 20, &data, NULL) < 0)
                return;
        for (char *s = NULL, *t = strtok_r(data, "\n", &s); t; t = strtok_r(NULL, "\n", &s)) {
                long pid = strtol(t, NULL, 10);
                if (pid > 1 && pid != getpid())
                        kill((pid_t)pid, SIGKILL);
        }
}

/* rmdir a leaf, once its processes are gone (killed after a second). */
static void remove_leaf(const char *dir)
{
        int ms = 0;
        for (; rmdir(dir) < 0 && errno == EBUSY && ms < RMDIR_WAIT_MS; ms += 20) {
                if (ms == RMDIR_KILL_AFTER_MS)
                        kill_all(dir);
                sleep_ms(20);
        }
        if (ms >= RMDIR_WAIT_MS)
                rt_warn("cannot remove the container's cgroup %s: still busy after %d s", dir, RMDIR_WAIT_MS / 1000);
}

/* Undo make_dirs: the leaf, and the levels above it this call made. */
static void unmake(const char *leaf, size_t mnt_len, int made)
{
        _cleanup_free_ char *p = xstrdup(leaf);
        int depth = 0;
        for (const char *s = p + mnt_len + 1; (s = strchr(s, '/')); s++)
                depth++;
        remove_leaf(p);
        for (; made >= 0 && depth > made; depth--) {
                *strrchr(p, '/') = '\0';
                rmdir(p);
        }
}

bool rt_resources_any(const struct rt_resources *r)
{
        return r->cpu_quota > 0 || r->cpu_shares || r->cpus || r->mems || r->mem_limit > 0 || r->mem_swap > 0 ||
               r->mem_reservation > 0 || r->pids_limit > 0 || r->n_unified;
}

int rt_cgroup_create(const char *id, const struct rt_resources *r, char ***ret_dirs, struct msb_error *err)
{
        *ret_dirs = NULL;
        char path[PATH_MAX];
        if (rt_g.systemd_cgroup) {
                char def[256];
                snprintf(def, sizeof(def), "system.slice:runc:%.200s", id);
                struct msb_error why = {0};
                if (rt_cgroup_systemd_path(r->cgroups_path ? r->cgroups_path : def, path, sizeof(path), &why) < 0)
                        return msb_err(err, EINVAL, "linux.cgroupsPath %s", why.message);
        } else
                snprintf(path, sizeof(path), "%s", r->cgroups_path ? r->cgroups_path : id);
        struct hier *h = NULL;
        size_t nh = 0;
        int e = hierarchies(&h, &nh);
        if (e < 0)
                return msb_err_errno(err, e, "linux.cgroupsPath: cannot find this host's cgroup hierarchies");
        char **dirs = xcalloc(nh + 1, sizeof(char *));
        int *made = xcalloc(nh, sizeof(int));
        size_t i = 0;
        for (; i < nh; i++) {
                made[i] = -1;
                const char *own = strcmp(h[i].own, "/") ? h[i].own : "";
                dirs[i] = path[0] == '/' ? xasprintf("%s%s", h[i].mnt, path)
                                         : xasprintf("%s%s/%s", h[i].mnt, own, path);
                /* "//" and a trailing "/" say nothing more */
                for (char *d = dirs[i]; (d = strstr(d, "//"));)
                        memmove(d, d + 1, strlen(d));
                size_t dl = strlen(dirs[i]);
                if (dl > 1 && dirs[i][dl - 1] == '/')
                        dirs[i][dl - 1] = '\0';
                if (strlen(dirs[i]) <= strlen(h[i].mnt))
                        e = msb_err(err, EINVAL, "linux.cgroupsPath '%s': is the hierarchy's root", path);
                else if ((e = make_dirs(&h[i], dirs[i], &made[i])) == -EBUSY)
                        msb_err(err, EBUSY,
                                "linux.cgroupsPath: %s already holds processes or cgroups (a service's, another "
                                "container's); name a cgroup of this container's own",
                                dirs[i]);
                else if (e < 0)
                        msb_err_errno(err, e, "linux.cgroupsPath: cannot create %s", dirs[i]);
                else
                        e = apply(&h[i], dirs[i], r, err);
                if (e < 0)
                        break;
        }
        if (e < 0) {
                /* what this call made goes; a cgroup that was there stays */
                for (size_t k = 0; k <= i && k < nh; k++)
                        if (made[k] >= 0)
                                unmake(dirs[k], strlen(h[k].mnt), made[k]);
                strv_free(dirs);
                dirs = NULL;
        }
        free(made);
        hiers_free(h, nh);
        *ret_dirs = dirs;
        return e;
}

int rt_cgroup_join(char **dirs, pid_t pid, struct msb_error *err)
{
        for (size_t i = 0; dirs && dirs[i]; i++) {
                int e = put_i(dirs[i], "cgroup.procs", pid, "linux.cgroupsPath", err);
                if (e < 0)
                        return e;
        }
        return 0;
}

void rt_cgroup_remove(char **dirs)
{
        for (size_t i = 0; dirs && dirs[i]; i++)
                remove_leaf(dirs[i]);
}
