/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.json's linux section, but for its resources: namespaces (what a
 * VM has or gives anyway), devices, sysctl and the rest, each mapped,
 * accepted or refused with the field named (docs/oci-runtime.md).
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
int check_device_rule(json_t *d, size_t idx)
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

int map_linux(struct rt_bundle *b, json_t *l, json_t *annotations)
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
                struct msb_error why = {0};
                if (rt_cgroup_path_check(json_string_value(cp), &why) < 0)
                        return refuse("linux.cgroupsPath", why.message);
                b->res.cgroups_path = xstrdup(json_string_value(cp));
        }
        /* accepted: seccomp, maskedPaths, readonlyPaths, mountLabel:
         * warn_unapplied() */
        return map_resources(b, json_object_get(l, "resources"), annotations);
}

