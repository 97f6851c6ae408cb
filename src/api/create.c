/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A create request's JSON to run options: what `msb create`/`msb run` take,
 * field by field, each through the library's setter, whose limits
 * include/msb.h writes down.  The body is untrusted (fuzz: tests/fuzz/
 * fuzz-api.c); the first bad field is named and nothing is applied after
 * it.  A sandbox is made from the options only after all of them passed.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/util.h"

#define SECS_MAX (365ull * 86400ull)
#define MIB (1024ull * 1024ull)

struct create_raw {
        const char *name, *image, *entrypoint, *workdir, *user, *hostname, *net, *pull, *accel;
        json_t *command, *env, *volumes, *net_rules, *ports, *labels;
        uint64_t cpus, memory, disk_size, max_duration, idle_timeout, timeout;
        struct api_opt_bool tty, no_pool, auto_remove, start;
};

#define F(n, fn, lo, hi) {#n, api_read_##fn, offsetof(struct create_raw, n), lo, hi}
static const struct api_field create_fields[] = {
        F(name, string, 1, 128),
        F(image, string, 1, 4096),
        F(command, strv, 0, 4096),
        F(entrypoint, string, 0, 4096),
        F(env, strmap, 0, 4096),
        F(workdir, string, 1, 4096),
        F(user, string, 1, 256),
        F(hostname, string, 1, 63),
        F(cpus, uint, 1, MSB_MAX_CPUS),
        F(memory, size, MSB_MIN_MEMORY_MIB * MIB, MSB_MAX_MEMORY_MIB * MIB),
        F(volumes, array, 0, 32), /* each item an object: volumes_apply */
        F(net, string, 1, 16),
        F(net_rules, strv, 0, 256),
        F(ports, strv, 0, 64),
        F(disk_size, size, 0, 16ull << 40),
        F(max_duration, uint, 1, SECS_MAX),
        F(idle_timeout, uint, 1, SECS_MAX),
        F(timeout, uint, 1, SECS_MAX),
        F(tty, bool, 0, 0),
        F(no_pool, bool, 0, 0),
        F(auto_remove, bool, 0, 0),
        F(pull, string, 1, 16),
        F(accel, string, 1, 16),
        F(labels, strmap, 0, MSB_LABELS_MAX),
        F(start, bool, 0, 0),
};
#undef F

/* volumes: [{"host": "/abs", "guest": "/app", "readonly": true, ...}] */
struct volume_raw {
        const char *host, *guest;
        struct api_opt_bool readonly, nosuid, noexec, owner_passthrough;
};
#define V(n, fn, lo, hi) {#n, api_read_##fn, offsetof(struct volume_raw, n), lo, hi}
static const struct api_field volume_fields[] = {
        V(host, string, 1, 4096),   V(guest, string, 1, 4096), V(readonly, bool, 0, 0),
        V(nosuid, bool, 0, 0),      V(noexec, bool, 0, 0),     V(owner_passthrough, bool, 0, 0),
};
#undef V

static int volumes_apply(json_t *a, struct msb_run_opts *o, struct api_decode_err *de)
{
        size_t i;
        json_t *e;
        json_array_foreach(a, i, e)
        {
                char where[32];
                snprintf(where, sizeof(where), "volumes[%zu]", i);
                struct volume_raw v = {0};
                if (api_decode_object(de, where, e, volume_fields, sizeof(volume_fields) / sizeof(volume_fields[0]),
                                      &v) < 0)
                        return -1;
                if (!v.host || !v.guest)
                        return api_bad(de, where, "needs \"host\" (a host path) and \"guest\" (an absolute guest path)");
                unsigned fl = (v.readonly.value ? MSB_VOLUME_RO : 0) | (v.nosuid.value ? MSB_VOLUME_NOSUID : 0) |
                              (v.noexec.value ? MSB_VOLUME_NOEXEC : 0) |
                              (v.owner_passthrough.value ? MSB_VOLUME_OWNER_PASSTHROUGH : 0);
                struct msb_error err = {0};
                if (msb_run_opts_add_volume(o, v.host, v.guest, fl, &err) < 0)
                        return api_bad(de, where, "%s", err.message);
        }
        return 0;
}

static int strv_apply(json_t *a, const char *field, struct msb_run_opts *o,
                      int (*add)(struct msb_run_opts *, const char *, struct msb_error *), struct api_decode_err *de)
{
        size_t i;
        json_t *e;
        json_array_foreach(a, i, e)
        {
                struct msb_error err = {0};
                if (add(o, json_string_value(e), &err) < 0) {
                        char item[48];
                        snprintf(item, sizeof(item), "%s[%zu]", field, i);
                        return api_bad(de, item, "%s", err.message);
                }
        }
        return 0;
}

static int env_apply(json_t *env, struct msb_run_opts *o, struct api_decode_err *de)
{
        const char *k;
        json_t *v;
        json_object_foreach(env, k, v)
        {
                if (!*k || strchr(k, '='))
                        return api_bad(de, "env", "'%s' is not a variable name (no '=', not empty)", k);
                _cleanup_free_ char *kv = xasprintf("%s=%s", k, json_string_value(v));
                if (msb_run_opts_add_env(o, kv) < 0)
                        return api_bad(de, "env", "'%s' cannot be set", k);
        }
        return 0;
}

static int labels_apply(json_t *labels, struct msb_run_opts *o, struct api_decode_err *de)
{
        const char *k;
        json_t *v;
        json_object_foreach(labels, k, v)
        {
                struct msb_error err = {0};
                if (msb_run_opts_add_label(o, k, json_string_value(v), &err) < 0)
                        return api_bad(de, "labels", "%s", err.message);
        }
        return 0;
}

static int command_apply(json_t *cmd, struct msb_run_opts *o)
{
        size_t n = json_array_size(cmd);
        _cleanup_free_ char **argv = xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
                argv[i] = (char *)json_string_value(json_array_get(cmd, i));
        return msb_run_opts_set_command(o, argv);
}

/* The scalar options, each through its setter. */
static int scalars_apply(const struct create_raw *c, struct msb_run_opts *o, struct api_decode_err *de)
{
        struct msb_error err = {0};
        if (c->image && msb_run_opts_set_image(o, c->image) < 0)
                return api_bad(de, "image", "not an image reference");
        if (c->entrypoint)
                msb_run_opts_set_entrypoint(o, c->entrypoint);
        if (c->workdir && msb_run_opts_set_workdir(o, c->workdir) < 0)
                return api_bad(de, "workdir", "expected an absolute guest path");
        if (c->user && msb_run_opts_set_user(o, c->user) < 0)
                return api_bad(de, "user", "expected \"name\", \"uid\", \"name:group\" or \"uid:gid\"");
        if (c->hostname && msb_run_opts_set_hostname(o, c->hostname) < 0)
                return api_bad(de, "hostname", "use up to 63 letters, digits, '-' and '.'");
        if (c->cpus)
                msb_run_opts_set_cpus(o, (unsigned)c->cpus);
        if (c->memory)
                msb_run_opts_set_memory_mib(o, (unsigned)(c->memory / MIB));
        if (c->net && msb_run_opts_set_net(o, c->net, &err) < 0)
                return api_bad(de, "net", "%s", err.message);
        if (c->tty.set)
                msb_run_opts_set_tty(o, c->tty.value, 24, 80);
        if (c->no_pool.set)
                msb_run_opts_set_no_pool(o, c->no_pool.value);
        if (c->auto_remove.set)
                msb_run_opts_set_auto_remove(o, c->auto_remove.value);
        if (c->max_duration)
                msb_run_opts_set_max_duration(o, (unsigned)c->max_duration);
        if (c->idle_timeout)
                msb_run_opts_set_idle_timeout(o, (unsigned)c->idle_timeout);
        if (c->timeout)
                msb_run_opts_set_timeout(o, (unsigned)c->timeout);
        if (c->pull) {
                enum msb_pull_policy pp = !strcmp(c->pull, "missing") ? MSB_PULL_MISSING
                                          : !strcmp(c->pull, "always") ? MSB_PULL_ALWAYS
                                          : !strcmp(c->pull, "never")  ? MSB_PULL_NEVER
                                                                       : (enum msb_pull_policy)-1;
                if ((int)pp < 0)
                        return api_bad(de, "pull", "expected \"always\", \"missing\" or \"never\"");
                msb_run_opts_set_pull(o, pp);
        }
        if (c->accel) {
                enum msb_accel a;
                if (msb_accel_parse(c->accel, &a) < 0)
                        return api_bad(de, "accel", "expected \"auto\", \"kvm\" or \"tcg\"");
                msb_run_opts_set_accel(o, a);
        }
        return 0;
}

int api_create_decode(json_t *body, struct msb_run_opts *o, struct api_create *out, struct api_decode_err *de)
{
        struct create_raw c = {0};
        if (api_decode_object(de, "", body, create_fields, sizeof(create_fields) / sizeof(create_fields[0]), &c) < 0)
                return -1;
        struct msb_error err = {0};
        if (c.name && msb_sandbox_name_check(c.name, &err) < 0)
                return api_bad(de, "name", "%s", err.message);
        if (!c.image)
                return api_bad(de, "image", "required: the image to run (e.g. \"busybox\")");
        if (scalars_apply(&c, o, de) < 0)
                return -1;
        /* disk_size 0: none (writes go to memory); absent: the default */
        if (json_object_get(body, "disk_size") && !json_is_null(json_object_get(body, "disk_size")) &&
            msb_run_opts_set_disk_size(o, c.disk_size) < 0)
                return api_bad(de, "disk_size", "expected 0 (no disk) or a size from 64M to 16T");
        if (c.command && command_apply(c.command, o) < 0)
                return api_bad(de, "command", "cannot be used");
        if ((c.env && env_apply(c.env, o, de) < 0) || (c.labels && labels_apply(c.labels, o, de) < 0) ||
            (c.volumes && volumes_apply(c.volumes, o, de) < 0) ||
            (c.net_rules && strv_apply(c.net_rules, "net_rules", o, msb_run_opts_add_net_rule, de) < 0) ||
            (c.ports && strv_apply(c.ports, "ports", o, msb_run_opts_add_port, de) < 0))
                return -1;
        if (msb_run_opts_check(o, &err) < 0)
                return api_bad(de, "", "%s", err.message);
        out->name = c.name;
        out->start = c.start.set ? c.start : (struct api_opt_bool){true, true};
        return 0;
}
