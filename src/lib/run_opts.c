/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The options of a run (struct msb_run_opts, vm.h): every msb_run_opts_*
 * setter, each checking its value against the limits documented in msb.h.
 * The network's (--net and friends) are in net.c.  Those an OCI bundle needs
 * beyond msb run's (msb-runtime, docs/oci-runtime.md): its root served
 * read-write, explicit ids, rlimits, tmpfs mounts and the steps made in the
 * guest, are at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "guest_path.h"
#include "vm.h"

int msb_run_opts_new(struct msb_run_opts **ret)
{
        struct msb_run_opts *o = xcalloc(1, sizeof(*o));
        o->cpus = MSB_DEFAULT_CPUS;
        o->memory_mib = DEFAULT_MEMORY_MIB;
        o->fds[0] = 0;
        o->fds[1] = 1;
        o->fds[2] = 2;
        *ret = o;
        return 0;
}

void msb_run_opts_free(struct msb_run_opts *o)
{
        if (!o)
                return;
        free(o->image);
        free(o->rootfs);
        strv_free(o->command);
        free(o->entrypoint);
        strv_free(o->env);
        strv_free(o->labels);
        free(o->workdir);
        free(o->user);
        free(o->hostname);
        free(o->fs_backend);
        for (size_t i = 0; i < o->ntmpfs; i++) {
                free(o->tmpfs[i].type);
                free(o->tmpfs[i].path);
                free(o->tmpfs[i].options);
        }
        free(o->net_mode);
        strv_free(o->net_rules);
        strv_free(o->net_ports);
        free(o->net_tap);
        for (size_t i = 0; i < o->nsteps; i++) {
                free(o->steps[i].path);
                free(o->steps[i].value);
        }
        free(o->seccomp_buf);
        for (size_t i = 0; i < o->nvols; i++) {
                free(o->vols[i].host);
                free(o->vols[i].guest);
        }
        free(o);
}

static void set_str(char **dst, const char *s)
{
        free(*dst);
        *dst = s ? xstrdup(s) : NULL;
}

int msb_run_opts_set_image(struct msb_run_opts *o, const char *ref)
{
        set_str(&o->image, ref);
        return 0;
}
int msb_run_opts_set_rootfs(struct msb_run_opts *o, const char *dir)
{
        set_str(&o->rootfs, dir);
        return 0;
}
int msb_run_opts_set_command(struct msb_run_opts *o, char *const argv[])
{
        strv_free(o->command);
        o->command = NULL;
        for (size_t i = 0; argv && argv[i]; i++)
                strv_push(&o->command, argv[i]);
        return 0;
}
int msb_run_opts_set_entrypoint(struct msb_run_opts *o, const char *ep)
{
        set_str(&o->entrypoint, ep);
        o->entrypoint_set = true;
        return 0;
}
int msb_run_opts_add_env(struct msb_run_opts *o, const char *kv)
{
        if (!kv || !strchr(kv, '=') || kv[0] == '=')
                return -EINVAL;
        strv_push(&o->env, kv);
        return 0;
}
int msb_run_opts_set_workdir(struct msb_run_opts *o, const char *d)
{
        if (!d || d[0] != '/')
                return -EINVAL;
        set_str(&o->workdir, d);
        return 0;
}
int msb_run_opts_set_user(struct msb_run_opts *o, const char *u)
{
        if (!u || !*u || strlen(u) > 256 || strchr(u, '\n'))
                return -EINVAL;
        set_str(&o->user, u);
        return 0;
}
static bool label_key_ok(const char *k, size_t n)
{
        if (n == 0 || n > MSB_LABEL_KEY_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= '0' && k[i] <= '9') ||
                      k[i] == '-' || k[i] == '.' || k[i] == '_' || k[i] == '/'))
                        return false;
        return true;
}
int msb_run_opts_add_label(struct msb_run_opts *o, const char *key, const char *value, struct msb_error *err)
{
        size_t kn = key ? strlen(key) : 0;
        if (!label_key_ok(key ? key : "", kn))
                return msb_err(err, EINVAL,
                               "label key '%s': use 1 to %u of A-Z, a-z, 0-9, '-', '.', '_' and '/'", key ? key : "",
                               MSB_LABEL_KEY_MAX);
        if (!value || strlen(value) > MSB_LABEL_VALUE_MAX)
                return msb_err(err, EINVAL, "label '%s': the value must be at most %u bytes", key, MSB_LABEL_VALUE_MAX);
        for (const char *c = value; *c; c++)
                if ((unsigned char)*c < 0x20 || *c == 0x7f)
                        return msb_err(err, EINVAL, "label '%s': the value must not hold control characters", key);
        /* the same key again replaces its value */
        for (char **v = o->labels; v && *v; v++)
                if (!strncmp(*v, key, kn) && (*v)[kn] == '=') {
                        free(*v);
                        *v = xasprintf("%s=%s", key, value);
                        return 0;
                }
        if (strv_len(o->labels) >= MSB_LABELS_MAX)
                return msb_err(err, E2BIG, "label '%s': a sandbox has at most %u labels", key, MSB_LABELS_MAX);
        strv_push_take(&o->labels, xasprintf("%s=%s", key, value));
        return 0;
}
int msb_run_opts_set_hostname(struct msb_run_opts *o, const char *h)
{
        if (!h || !*h || strlen(h) > 63)
                return -EINVAL;
        for (const char *s = h; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      *s == '-' || *s == '.'))
                        return -EINVAL;
        set_str(&o->hostname, h);
        return 0;
}
int msb_run_opts_set_cpus(struct msb_run_opts *o, unsigned cpus)
{
        if (cpus < 1 || cpus > MSB_MAX_CPUS)
                return -ERANGE;
        o->cpus = cpus;
        return 0;
}
int msb_run_opts_set_memory_mib(struct msb_run_opts *o, unsigned mib)
{
        /* the cloud kernel plus agentd need some room to boot */
        if (mib < MSB_MIN_MEMORY_MIB || mib > MSB_MAX_MEMORY_MIB)
                return -ERANGE;
        o->memory_mib = mib;
        return 0;
}
int msb_run_opts_set_no_pool(struct msb_run_opts *o, bool no_pool)
{
        o->no_pool = no_pool;
        return 0;
}

int msb_run_opts_set_accel(struct msb_run_opts *o, enum msb_accel a)
{
        o->accel = a;
        return 0;
}
int msb_run_opts_set_stdin(struct msb_run_opts *o, bool forward)
{
        o->stdin_forward = forward;
        return 0;
}
int msb_run_opts_set_pull(struct msb_run_opts *o, enum msb_pull_policy p)
{
        if (p != MSB_PULL_MISSING && p != MSB_PULL_ALWAYS && p != MSB_PULL_NEVER)
                return -EINVAL;
        o->pull = p;
        return 0;
}

int msb_run_opts_set_fs_backend(struct msb_run_opts *o, const char *name)
{
        if (name && !fsd_backend_find(name))
                return -EINVAL;
        set_str(&o->fs_backend, name);
        return 0;
}

int msb_run_opts_set_tty(struct msb_run_opts *o, bool tty, unsigned rows, unsigned cols)
{
        if (tty && (rows < 1 || rows > 65535 || cols < 1 || cols > 65535))
                return -EINVAL;
        o->tty = tty;
        o->rows = tty ? rows : 0;
        o->cols = tty ? cols : 0;
        return 0;
}

int msb_run_opts_set_disk_size(struct msb_run_opts *o, uint64_t bytes)
{
        if (bytes && (bytes < SB_DISK_MIN || bytes > SB_DISK_MAX))
                return -ERANGE;
        o->no_disk = bytes == 0;
        o->disk_size = bytes;
        return 0;
}

int msb_run_opts_set_max_duration(struct msb_run_opts *o, unsigned secs)
{
        o->max_duration = secs;
        return 0;
}

int msb_run_opts_set_idle_timeout(struct msb_run_opts *o, unsigned secs)
{
        o->idle_timeout = secs;
        return 0;
}

int msb_run_opts_set_timeout(struct msb_run_opts *o, unsigned secs)
{
        o->timeout = secs;
        return 0;
}

int msb_run_opts_set_auto_remove(struct msb_run_opts *o, bool remove)
{
        o->auto_remove = remove;
        return 0;
}

int msb_run_opts_set_stdio(struct msb_run_opts *o, int in, int out, int err)
{
        o->fds[0] = in;
        o->fds[1] = out;
        o->fds[2] = err;
        return 0;
}

int msb_run_opts_add_volume(struct msb_run_opts *o, const char *host, const char *guest, unsigned flags,
                            struct msb_error *err)
{
        if (!host || !*host)
                return msb_err(err, EINVAL, "volume: host path is empty");
        if (!guest || !*guest)
                return msb_err(err, EINVAL, "volume '%s': guest path is empty", host);
        if (flags & ~(MSB_VOLUME_RO | MSB_VOLUME_OWNER_PASSTHROUGH | MSB_VOLUME_NOSUID | MSB_VOLUME_NOEXEC))
                return msb_err(err, EINVAL, "volume '%s:%s': unknown flags 0x%x", host, guest, flags);
        if (o->nvols >= MAX_VOLUMES)
                return msb_err(err, E2BIG, "volume '%s:%s': at most %u volumes per sandbox", host, guest, MAX_VOLUMES);
        _cleanup_free_ char *g = guest_path_normalize(guest);
        const char *why;
        if (guest_path_check(g, &why) < 0)
                return msb_err(err, EINVAL, "volume '%s:%s': guest path %s", host, guest, why);
        /* symlinks in HOST are resolved once, here */
        _cleanup_free_ char *real = realpath(host, NULL);
        if (!real)
                return msb_err(err, errno, "volume '%s:%s': host path '%s' %s", host, guest, host,
                               errno == ENOENT ? "does not exist" : errno_text(errno));
        struct stat st;
        if (stat(real, &st) < 0)
                return msb_err_errno(err, errno, "volume '%s:%s'", host, guest);
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
                return msb_err(err, EINVAL,
                               "volume '%s:%s': host path %s is neither a regular file nor a directory (a socket, "
                               "device or fifo cannot be shared)",
                               host, guest, real);
        for (size_t i = 0; i < o->nvols; i++)
                if (!strcmp(o->vols[i].guest, g))
                        return msb_err(err, EINVAL, "volume '%s:%s': guest path %s is already used by another volume",
                                       host, guest, g);
        o->vols[o->nvols++] =
                (struct volume){.host = TAKE_PTR(real), .guest = TAKE_PTR(g), .flags = flags, .file = S_ISREG(st.st_mode)};
        return 0;
}


/* ---------------- OCI bundles (msb-runtime) ---------------- */

int msb_run_opts_set_root_rw(struct msb_run_opts *o, bool rw)
{
        o->root_rw = rw;
        /* writes go to the root itself: no writable layer of msb's */
        if (rw)
                o->no_disk = true;
        return 0;
}

int msb_run_opts_set_ids(struct msb_run_opts *o, uint32_t uid, uint32_t gid, const uint32_t *groups, size_t n,
                         struct msb_error *err)
{
        if (n + 1 > IDS_MAX_GROUPS)
                return msb_err(err, E2BIG, "user %u: %zu additional groups, at most %u", uid, n, IDS_MAX_GROUPS - 1);
        o->ids = (struct ids){.uid = uid, .gid = gid, .ngroups = 1};
        o->ids.groups[0] = gid;
        for (size_t i = 0; i < n; i++)
                if (groups[i] != gid)
                        o->ids.groups[o->ids.ngroups++] = groups[i];
        o->ids_set = true;
        return 0;
}

int msb_run_opts_add_rlimit(struct msb_run_opts *o, int resource, uint64_t soft, uint64_t hard,
                            struct msb_error *err)
{
        if (resource < 0 || (unsigned)resource >= MSB_PROTO_RLIMIT_NR)
                return msb_err(err, EINVAL, "rlimit %d: not a Linux resource limit", resource);
        if (soft > hard)
                return msb_err(err, EINVAL, "rlimit %d: soft limit %llu is above the hard limit %llu", resource,
                               (unsigned long long)soft, (unsigned long long)hard);
        for (uint32_t i = 0; i < o->nrlimits; i++)
                if (o->rlimits[i].resource == (uint32_t)resource) {
                        o->rlimits[i] = (struct msb_rlimit){(uint32_t)resource, soft, hard};
                        return 0;
                }
        if (o->nrlimits >= MSB_PROTO_MAX_RLIMITS)
                return msb_err(err, E2BIG, "at most %u rlimits", MSB_PROTO_MAX_RLIMITS);
        o->rlimits[o->nrlimits++] = (struct msb_rlimit){(uint32_t)resource, soft, hard};
        return 0;
}

/* OCI's options for a tmpfs: flags msb applies, data the guest's tmpfs
 * takes (size=, mode=, nr_inodes=, uid=, gid=), and the ones that mean
 * nothing to a fresh tmpfs in a VM (atime flavours, "rw"). */
static int tmpfs_option(const char *opt, unsigned *flags, char **data)
{
        static const struct {
                const char *name;
                unsigned flag;
        } fl[] = {{"ro", MSB_MOUNT_RO},         {"nosuid", MSB_MOUNT_NOSUID}, {"nodev", MSB_MOUNT_NODEV},
                  {"noexec", MSB_MOUNT_NOEXEC}, {"rw", 0},                    {"suid", 0},
                  {"dev", 0},                   {"exec", 0},                  {"relatime", 0},
                  {"strictatime", 0},           {"noatime", 0},               {"nodiratime", 0},
                  {"private", 0},               {"rprivate", 0},              {"tmpcopyup", 0}};
        for (size_t i = 0; i < ARRAY_SIZE(fl); i++)
                if (!strcmp(opt, fl[i].name)) {
                        *flags |= fl[i].flag;
                        return 0;
                }
        static const char *const keys[] = {"size=", "mode=", "nr_inodes=", "nr_blocks=", "uid=", "gid="};
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                size_t n = strlen(keys[i]);
                if (!strncmp(opt, keys[i], n) && opt[n] && strspn(opt + n, "0123456789kmgKMG%") == strlen(opt + n)) {
                        char *d = *data ? xasprintf("%s,%s", *data, opt) : xstrdup(opt);
                        free(*data);
                        *data = d;
                        return 0;
                }
        }
        return -EINVAL;
}

/* Where a kernel file system may go: what a volume may (absolute, no
 * "..", not /), and also below /dev and /sys, though not on them or on
 * /dev/pts, and nowhere under /proc. */
static const char *kernel_mount_path_why(const char *g)
{
        const char *why;
        if (guest_path_check(g, &why) == 0)
                return NULL;
        bool under_dev = !strncmp(g, "/dev/", 5) && strcmp(g, "/dev/pts") != 0;
        bool under_sys = !strncmp(g, "/sys/", 5);
        if (!under_dev && !under_sys)
                return why;
        /* the same checks on a path outside the banned trees */
        _cleanup_free_ char *elsewhere = xasprintf("/x%s", g);
        return guest_path_check(elsewhere, &why) == 0 ? NULL : why;
}

int msb_run_opts_add_kernel_mount(struct msb_run_opts *o, const char *type, const char *guest, const char *options,
                                  struct msb_error *err)
{
        if (!type || (strcmp(type, "tmpfs") && strcmp(type, "mqueue") && strcmp(type, "cgroup2")))
                return msb_err(err, EINVAL, "mount %s: type '%s' is not tmpfs, mqueue or cgroup2", guest,
                               type ? type : "");
        if (o->ntmpfs >= MAX_TMPFS)
                return msb_err(err, E2BIG, "mount %s: at most %u tmpfs, mqueue and cgroup2 mounts", guest, MAX_TMPFS);
        _cleanup_free_ char *g = guest_path_normalize(guest);
        const char *why = kernel_mount_path_why(g);
        if (why)
                return msb_err(err, EINVAL, "mount %s: guest path %s", guest, why);
        unsigned flags = 0;
        _cleanup_free_ char *data = NULL, *opts = xstrdup(options ? options : "");
        char *save = NULL;
        for (char *t = strtok_r(opts, ",", &save); t; t = strtok_r(NULL, ",", &save))
                if (tmpfs_option(t, &flags, &data) < 0)
                        return msb_err(err, EINVAL,
                                       "%s %s: option '%s' is not supported in a VM (size=, mode=, nr_inodes=, uid=, "
                                       "gid=, ro, nosuid, nodev, noexec and atime options are)",
                                       type, guest, t);
        if (data && strcmp(type, "tmpfs") != 0)
                return msb_err(err, EINVAL, "%s %s: '%s' is a tmpfs option", type, guest, data);
        if (data && strlen(data) > 256)
                return msb_err(err, EINVAL, "%s %s: options too long", type, guest);
        o->tmpfs[o->ntmpfs++] = (struct tmpfs_mount){.type = xstrdup(type),
                                                     .path = TAKE_PTR(g),
                                                     .options = data ? TAKE_PTR(data) : xstrdup(""),
                                                     .flags = flags};
        return 0;
}

int msb_run_opts_add_tmpfs(struct msb_run_opts *o, const char *guest, const char *options, struct msb_error *err)
{
        return msb_run_opts_add_kernel_mount(o, "tmpfs", guest, options, err);
}

int msb_run_opts_set_root_readonly(struct msb_run_opts *o, bool ro)
{
        o->root_ro = ro;
        return 0;
}

int msb_run_opts_set_confine(struct msb_run_opts *o, const struct msb_confine *c, struct msb_error *err)
{
        if (c->seccomp_len > MSB_PROTO_MAX_SECCOMP || (c->seccomp_len && !c->seccomp))
                return msb_err(err, E2BIG, "a seccomp filter of %zu instructions; at most %u", c->seccomp_len,
                               MSB_PROTO_MAX_SECCOMP);
        free(o->seccomp_buf);
        o->seccomp_buf = NULL;
        o->confine = *c;
        if (c->seccomp_len) {
                o->seccomp_buf = xmalloc(c->seccomp_len * 8);
                memcpy(o->seccomp_buf, c->seccomp, c->seccomp_len * 8);
        }
        o->confine.seccomp = o->seccomp_buf;
        o->confine_set = true;
        return 0;
}

static int add_step(struct msb_run_opts *o, unsigned kind, const char *what, const char *guest, const char *value,
                    struct msb_error *err)
{
        if (o->nsteps >= MAX_ROOT_STEPS)
                return msb_err(err, E2BIG, "%s %s: at most %u masked paths, read-only paths and sysctls", what, guest,
                               MAX_ROOT_STEPS);
        /* anywhere in the guest, /proc and /sys above all; the guest
         * resolves it inside its root */
        size_t n = strlen(guest);
        bool ok = guest[0] == '/' && n > 1 && n < 1024 && !strstr(guest, "//") && !strstr(guest, "/./") &&
                  !strstr(guest, "/../") && strcmp(guest + n - 2, "/.") && (n < 3 || strcmp(guest + n - 3, "/.."));
        if (!ok)
                return msb_err(err, EINVAL, "%s %s: expected an absolute path below / without . or ..", what, guest);
        _cleanup_free_ char *g = xstrdup(guest);
        if (g[n - 1] == '/')
                g[n - 1] = 0;
        o->steps[o->nsteps++] = (struct root_step){.kind = kind, .path = TAKE_PTR(g), .value = xstrdup(value)};
        return 0;
}

int msb_run_opts_add_masked_path(struct msb_run_opts *o, const char *guest, struct msb_error *err)
{
        return add_step(o, MSB_MOUNT_MASK, "masked path", guest, "", err);
}

int msb_run_opts_add_readonly_path(struct msb_run_opts *o, const char *guest, struct msb_error *err)
{
        return add_step(o, MSB_MOUNT_ROPATH, "read-only path", guest, "", err);
}

int msb_run_opts_add_sysctl(struct msb_run_opts *o, const char *key, const char *value, struct msb_error *err)
{
        /* net.ipv4.ping_group_range -> /proc/sys/net/ipv4/ping_group_range */
        size_t n = strlen(key);
        if (!n || n > 200 || strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/") != n ||
            key[0] == '.' || key[n - 1] == '.' || strstr(key, "..") || strchr(key, '/'))
                return msb_err(err, EINVAL, "sysctl '%s': expected a key such as net.ipv4.ip_forward", key);
        if (strlen(value) > 256 || strchr(value, '\n'))
                return msb_err(err, EINVAL, "sysctl %s: value too long or on several lines", key);
        _cleanup_free_ char *path = xasprintf("/proc/sys/%s", key);
        for (char *p = path + 10; *p; p++)
                if (*p == '.')
                        *p = '/';
        if (o->nsteps >= MAX_ROOT_STEPS)
                return msb_err(err, E2BIG, "sysctl %s: at most %u masked paths, read-only paths and sysctls", key,
                               MAX_ROOT_STEPS);
        o->steps[o->nsteps++] = (struct root_step){.kind = MSB_MOUNT_SYSCTL, .path = TAKE_PTR(path), .value = xstrdup(value)};
        return 0;
}
