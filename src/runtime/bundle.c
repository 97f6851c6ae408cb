/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.json to msb run options.  Every field is either mapped, accepted
 * because it has no meaning inside a VM (the table in docs/oci-runtime.md
 * says which and why), or refused with an error naming it: nothing a
 * bundle asks for is dropped without a word.
 *
 * This file loads the bundle, holds the helpers its parts share, and maps
 * what no part does (hooks, confinement, annotations); the parts:
 * bundle-process.c (process), bundle-mounts.c (mounts), bundle-linux.c
 * (namespaces, devices) and bundle-resources.c (linux.resources and the
 * VM's size).  exec --process files are read here too.
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

#define CONFIG_MAX (4u << 20) /* config.json: podman's are a few KiB */

int refuse(const char *field, const char *why)
{
        rt_error("config.json: %s: %s", field, why);
        return -EOPNOTSUPP;
}

/* A refusal whose text names its field itself. */
int refuse_why(const char *why)
{
        rt_error("config.json: %s", why);
        return -EOPNOTSUPP;
}

const char *jstr(json_t *o, const char *k)
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
int opts_root(struct msb_run_opts *o, const char *root, bool readonly)
{
        int r = msb_run_opts_set_rootfs(o, root);
        if (r >= 0)
                r = msb_run_opts_set_root_rw(o, true);
        return r < 0 ? r : msb_run_opts_set_root_readonly(o, readonly);
}

int opts_ids(struct msb_run_opts *o, unsigned uid, unsigned gid, const unsigned *groups, size_t n)
{
        struct msb_error err = {0};
        _cleanup_free_ uint32_t *g = n ? xcalloc(n, sizeof(uint32_t)) : NULL;
        for (size_t i = 0; i < n; i++)
                g[i] = groups[i];
        return msb_run_opts_set_ids(o, uid, gid, g, n, &err) < 0 ? lib_refuse("process.user", &err) : 0;
}

int opts_rlimit(struct msb_run_opts *o, int res, uint64_t soft, uint64_t hard)
{
        struct msb_error err = {0};
        return msb_run_opts_add_rlimit(o, res, soft, hard, &err) < 0 ? lib_refuse("process.rlimits", &err) : 0;
}

/* tmpfs, mqueue or cgroup2, made by the guest's kernel at dest */
int opts_kernel_mount(struct msb_run_opts *o, const char *field, const char *type, const char *dest,
                      const char *options)
{
        struct msb_error err = {0};
        return msb_run_opts_add_kernel_mount(o, type, dest, options, &err) < 0 ? lib_refuse(field, &err) : 0;
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
        struct msb_error err = {0};
        json_t *proc = json_object_get(j, "process");
        int r = rt_confine_from(json_object_get(proc, "capabilities"),
                                json_is_true(json_object_get(proc, "noNewPrivileges")),
                                json_integer_value(json_object_get(json_object_get(proc, "user"), "uid")) == 0,
                                json_object_get(l, "seccomp"), &c, &bpf, &any, &err);
        if (r < 0)
                return refuse_why(err.message);
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
int load_json(const char *path, const char *what, json_t **ret)
{
        _cleanup_free_ char *data = NULL;
        int r = read_file_at(AT_FDCWD, path, CONFIG_MAX, &data, NULL);
        if (r < 0) {
                rt_error("%s", errno_msg(-r, "cannot read %s%s", what, path).s);
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
        struct msb_error err = {0};
        r = rt_confine_from(caps, nnp, root, json_object_get(json_object_get(j, "linux"), "seccomp"), &p->confine,
                            &p->bpf, &p->confined, &err);
        json_decref(j);
        return r < 0 ? refuse_why(err.message) : 0;
}

