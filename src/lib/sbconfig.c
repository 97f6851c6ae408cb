/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A named sandbox's config.json: the run options it was created with,
 * written once by msb create and read back by its supervisor at every
 * start, each field checked again through the options' setters.  The
 * directory's layout is sbstore.c's.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbstore.h"

/* ---- config ---- */

static bool utf8_ok(const char *s)
{
        json_t *j = s ? json_string(s) : json_null();
        bool ok = j != NULL;
        json_decref(j);
        return ok;
}

/* JSON holds only UTF-8: say which input is not, rather than lose it. */
int sb_opts_check_utf8(const struct msb_run_opts *o, struct msb_error *err)
{
        const char *one[] = {o->image, o->rootfs, o->entrypoint, o->workdir, o->user, o->hostname};
        for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++)
                if (!utf8_ok(one[i]))
                        return msb_err(err, EINVAL, "'%s' is not valid UTF-8, which a sandbox's config must be", one[i]);
        for (char **v = o->command; v && *v; v++)
                if (!utf8_ok(*v))
                        return msb_err(err, EINVAL, "argument '%s' is not valid UTF-8, which a sandbox's config must be",
                                       *v);
        for (char **v = o->env; v && *v; v++)
                if (!utf8_ok(*v))
                        return msb_err(err, EINVAL, "--env '%s' is not valid UTF-8, which a sandbox's config must be",
                                       *v);
        for (char **v = o->labels; v && *v; v++)
                if (!utf8_ok(*v))
                        return msb_err(err, EINVAL, "label '%s' is not valid UTF-8, which a sandbox's config must be",
                                       *v);
        for (size_t i = 0; i < o->nvols; i++)
                if (!utf8_ok(o->vols[i].host) || !utf8_ok(o->vols[i].guest))
                        return msb_err(err, EINVAL, "volume '%s:%s' is not valid UTF-8, which a sandbox's config must be",
                                       o->vols[i].host, o->vols[i].guest);
        return 0;
}

static json_t *strv_json(char **v)
{
        json_t *a = json_array();
        for (; v && *v; v++)
                json_array_append_new(a, json_string(*v));
        return a;
}

static json_t *volumes_json(const struct msb_run_opts *o)
{
        json_t *vols = json_array();
        for (size_t i = 0; i < o->nvols; i++)
                json_array_append_new(vols, json_pack("{s:s,s:s,s:b,s:b,s:b,s:b}", "host", o->vols[i].host, "guest",
                                                      o->vols[i].guest, "ro", !!(o->vols[i].flags & MSB_VOLUME_RO),
                                                      "passthrough",
                                                      !!(o->vols[i].flags & MSB_VOLUME_OWNER_PASSTHROUGH), "nosuid",
                                                      !!(o->vols[i].flags & MSB_VOLUME_NOSUID), "noexec",
                                                      !!(o->vols[i].flags & MSB_VOLUME_NOEXEC)));
        return vols;
}

/* What only OCI bundles set (src/lib/run_opts.c; bundle_opts_load() reads
 * it back); a limit of -1 is unlimited. */
static void bundle_opts_json(const struct msb_run_opts *o, json_t *j)
{
        if (o->root_rw)
                json_object_set_new(j, "root_rw", json_true());
        if (o->root_ro)
                json_object_set_new(j, "root_ro", json_true());
        if (o->ids_set) {
                json_t *g = json_array();
                for (uint32_t i = 1; i < o->ids.ngroups; i++)
                        json_array_append_new(g, json_integer(o->ids.groups[i]));
                json_object_set_new(j, "ids", json_pack("{s:I,s:I,s:o}", "uid", (json_int_t)o->ids.uid, "gid",
                                                        (json_int_t)o->ids.gid, "groups", g));
        }
        if (o->nrlimits) {
                json_t *rl = json_array();
                for (uint32_t i = 0; i < o->nrlimits; i++)
                        json_array_append_new(
                                rl, json_pack("[i,I,I]", (int)o->rlimits[i].resource,
                                              o->rlimits[i].soft == UINT64_MAX ? -1 : (json_int_t)o->rlimits[i].soft,
                                              o->rlimits[i].hard == UINT64_MAX ? -1 : (json_int_t)o->rlimits[i].hard));
                json_object_set_new(j, "rlimits", rl);
        }
        if (o->ntmpfs) {
                json_t *t = json_array();
                for (size_t i = 0; i < o->ntmpfs; i++)
                        json_array_append_new(t, json_pack("{s:s,s:s,s:s,s:i}", "type", o->tmpfs[i].type, "path",
                                                           o->tmpfs[i].path, "options", o->tmpfs[i].options, "flags",
                                                           (int)o->tmpfs[i].flags));
                json_object_set_new(j, "tmpfs", t);
        }
        if (o->nsteps) {
                json_t *t = json_array();
                for (size_t i = 0; i < o->nsteps; i++)
                        json_array_append_new(t, json_pack("{s:i,s:s,s:s}", "kind", (int)o->steps[i].kind, "path",
                                                           o->steps[i].path, "value", o->steps[i].value));
                json_object_set_new(j, "root_steps", t);
        }
        if (o->confine_set) {
                json_t *caps = json_array();
                for (int i = 0; i < MSB_CAP_SETS; i++)
                        json_array_append_new(caps, json_integer((json_int_t)o->confine.caps[i]));
                _cleanup_free_ char *hex = xmalloc(o->confine.seccomp_len * 16 + 1);
                hex[0] = 0;
                for (size_t i = 0; i < o->confine.seccomp_len * 8; i++)
                        sprintf(hex + 2 * i, "%02x", o->seccomp_buf[i]);
                json_object_set_new(j, "confine", json_pack("{s:o,s:b,s:s}", "caps", caps, "no_new_privs",
                                                            o->confine.no_new_privs, "seccomp", hex));
        }
}

json_t *sb_config_json(const struct msb_run_opts *o)
{
        json_t *j = json_object();
        json_object_set_new(j, "image", o->image ? json_string(o->image) : json_null());
        json_object_set_new(j, "rootfs", o->rootfs ? json_string(o->rootfs) : json_null());
        json_object_set_new(j, "command", strv_json(o->command));
        json_object_set_new(j, "entrypoint", o->entrypoint_set ? json_string(o->entrypoint ? o->entrypoint : "")
                                                                 : json_null());
        json_object_set_new(j, "env", strv_json(o->env));
        json_object_set_new(j, "labels", strv_json(o->labels));
        json_object_set_new(j, "workdir", o->workdir ? json_string(o->workdir) : json_null());
        json_object_set_new(j, "user", o->user ? json_string(o->user) : json_null());
        json_object_set_new(j, "hostname", o->hostname ? json_string(o->hostname) : json_null());
        json_object_set_new(j, "cpus", json_integer(o->cpus));
        json_object_set_new(j, "memory_mib", json_integer(o->memory_mib));
        json_object_set_new(j, "accel", json_string(o->accel == MSB_ACCEL_KVM   ? "kvm"
                                                    : o->accel == MSB_ACCEL_TCG ? "tcg"
                                                                                : "auto"));
        json_object_set_new(j, "fs_backend", o->fs_backend ? json_string(o->fs_backend) : json_null());
        json_object_set_new(j, "interactive", json_boolean(o->stdin_forward));
        json_object_set_new(j, "tty", json_boolean(o->tty));
        json_object_set_new(j, "rows", json_integer(o->rows));
        json_object_set_new(j, "cols", json_integer(o->cols));
        json_object_set_new(j, "disk_size", json_integer((json_int_t)o->disk_size));
        json_object_set_new(j, "disk", json_boolean(!o->no_disk));
        json_object_set_new(j, "max_duration", json_integer(o->max_duration));
        json_object_set_new(j, "idle_timeout", json_integer(o->idle_timeout));
        json_object_set_new(j, "auto_remove", json_boolean(o->auto_remove));
        json_object_set_new(j, "volumes", volumes_json(o));
        bundle_opts_json(o, j);
        json_object_set_new(j, "net", o->net_mode ? json_string(o->net_mode) : json_null());
        json_object_set_new(j, "net_rules", strv_json(o->net_rules));
        json_object_set_new(j, "ports", strv_json(o->net_ports));
        if (o->net_tap)
                json_object_set_new(j, "net_tap", json_string(o->net_tap));
        return j;
}

const char *sb_jstr(json_t *j, const char *key)
{
        json_t *v = json_object_get(j, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

char **sb_jstrv(json_t *j, const char *key)
{
        char **v = NULL;
        json_t *a = json_object_get(j, key), *e;
        size_t i;
        json_array_foreach(a, i, e) if (json_is_string(e)) strv_push(&v, json_string_value(e));
        return v;
}

static uint64_t jlimit(json_t *v)
{
        json_int_t x = json_integer_value(v);
        return x < 0 ? UINT64_MAX : (uint64_t)x;
}

/* What msb-runtime adds (sb_config_json), checked again through the setters. */
static int bundle_opts_load(json_t *j, struct msb_run_opts *o, const char *name, struct msb_error *err)
{
        int r = 0;
        msb_run_opts_set_root_rw(o, json_is_true(json_object_get(j, "root_rw")));
        msb_run_opts_set_root_readonly(o, json_is_true(json_object_get(j, "root_ro")));
        json_t *ids = json_object_get(j, "ids");
        if (json_is_object(ids)) {
                uint32_t g[IDS_MAX_GROUPS];
                size_t n = 0, i;
                json_t *e;
                json_array_foreach(json_object_get(ids, "groups"), i, e) if (n < IDS_MAX_GROUPS) g[n++] =
                        (uint32_t)json_integer_value(e);
                r = msb_run_opts_set_ids(o, (uint32_t)json_integer_value(json_object_get(ids, "uid")),
                                         (uint32_t)json_integer_value(json_object_get(ids, "gid")), g, n, err);
        }
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(j, "rlimits"), i, e)
        {
                if (r >= 0)
                        r = msb_run_opts_add_rlimit(o, (int)json_integer_value(json_array_get(e, 0)),
                                                    jlimit(json_array_get(e, 1)), jlimit(json_array_get(e, 2)), err);
        }
        json_array_foreach(json_object_get(j, "tmpfs"), i, e)
        {
                if (r < 0)
                        break;
                const char *ty = sb_jstr(e, "type"), *p = sb_jstr(e, "path"), *op = sb_jstr(e, "options");
                r = p && op ? msb_run_opts_add_kernel_mount(o, ty ? ty : "tmpfs", p, op, err) : -EINVAL;
                if (r >= 0)
                        o->tmpfs[o->ntmpfs - 1].flags = (unsigned)json_integer_value(json_object_get(e, "flags")) &
                                                        (MSB_MOUNT_RO | MSB_MOUNT_NOSUID | MSB_MOUNT_NODEV |
                                                         MSB_MOUNT_NOEXEC);
        }
        json_array_foreach(json_object_get(j, "root_steps"), i, e)
        {
                if (r < 0)
                        break;
                unsigned kind = (unsigned)json_integer_value(json_object_get(e, "kind"));
                const char *p = sb_jstr(e, "path"), *v = sb_jstr(e, "value");
                if (!p || !v)
                        r = -EINVAL;
                else if (kind == MSB_MOUNT_MASK)
                        r = msb_run_opts_add_masked_path(o, p, err);
                else if (kind == MSB_MOUNT_ROPATH)
                        r = msb_run_opts_add_readonly_path(o, p, err);
                else if (kind == MSB_MOUNT_SYSCTL && !strncmp(p, "/proc/sys/", 10)) {
                        _cleanup_free_ char *key = xstrdup(p + 10);
                        for (char *k = key; *k; k++)
                                if (*k == '/')
                                        *k = '.';
                        r = msb_run_opts_add_sysctl(o, key, v, err);
                } else
                        r = -EINVAL;
        }
        json_t *cf = json_object_get(j, "confine");
        if (r >= 0 && cf) {
                struct msb_confine c = {.no_new_privs = json_is_true(json_object_get(cf, "no_new_privs"))};
                for (int k = 0; k < MSB_CAP_SETS; k++)
                        c.caps[k] = (uint64_t)json_integer_value(json_array_get(json_object_get(cf, "caps"), (size_t)k));
                const char *hex = sb_jstr(cf, "seccomp");
                size_t n = hex ? strlen(hex) : 0;
                _cleanup_free_ uint8_t *bpf = xmalloc(n / 2 + 1);
                static const char digits[] = "0123456789abcdef";
                for (size_t b = 0; hex && b < n / 2; b++) {
                        const char *h = strchr(digits, hex[2 * b]), *l = strchr(digits, hex[2 * b + 1]);
                        if (!h || !l || !*h || !*l) {
                                r = -EINVAL;
                                break;
                        }
                        bpf[b] = (uint8_t)((h - digits) << 4 | (l - digits));
                }
                c.seccomp = bpf;
                c.seccomp_len = n / 16;
                if (r >= 0 && (n % 16 || (r = msb_run_opts_set_confine(o, &c, err)) < 0))
                        r = r < 0 ? r : -EINVAL;
        }
        return r < 0 ? msb_err_wrap(err, r, "sandbox '%s'", name) : 0;
}

/* The options a sandbox was created with; volumes are checked again (a
 * host path may have gone since). */
int sb_config_load(struct msb_ctx *ctx, const char *name, struct msb_run_opts **ret, struct msb_error *err)
{
        _cleanup_free_ char *path = xasprintf("%s/%s/config.json", ctx->sandboxes_dir, name);
        json_error_t je;
        json_t *j = json_load_file(path, 0, &je);
        if (!j)
                return msb_err(err, EIO, "sandbox '%s': cannot read %s: %s", name, path, je.text);
        struct msb_run_opts *o;
        msb_run_opts_new(&o);
        if (sb_jstr(j, "image"))
                msb_run_opts_set_image(o, sb_jstr(j, "image"));
        if (sb_jstr(j, "rootfs"))
                msb_run_opts_set_rootfs(o, sb_jstr(j, "rootfs"));
        o->command = sb_jstrv(j, "command");
        if (sb_jstr(j, "entrypoint"))
                msb_run_opts_set_entrypoint(o, sb_jstr(j, "entrypoint"));
        o->env = sb_jstrv(j, "env");
        o->labels = sb_jstrv(j, "labels");
        if (sb_jstr(j, "workdir"))
                msb_run_opts_set_workdir(o, sb_jstr(j, "workdir"));
        if (sb_jstr(j, "user"))
                msb_run_opts_set_user(o, sb_jstr(j, "user"));
        if (sb_jstr(j, "hostname"))
                msb_run_opts_set_hostname(o, sb_jstr(j, "hostname"));
        o->cpus = (unsigned)json_integer_value(json_object_get(j, "cpus"));
        o->memory_mib = (unsigned)json_integer_value(json_object_get(j, "memory_mib"));
        if (sb_jstr(j, "accel"))
                msb_accel_parse(sb_jstr(j, "accel"), &o->accel);
        if (sb_jstr(j, "fs_backend"))
                o->fs_backend = xstrdup(sb_jstr(j, "fs_backend"));
        o->stdin_forward = json_is_true(json_object_get(j, "interactive"));
        o->tty = json_is_true(json_object_get(j, "tty"));
        if (o->tty)
                msb_run_opts_set_tty(o, true, (unsigned)json_integer_value(json_object_get(j, "rows")),
                                     (unsigned)json_integer_value(json_object_get(j, "cols")));
        o->disk_size = (uint64_t)json_integer_value(json_object_get(j, "disk_size"));
        o->no_disk = json_is_false(json_object_get(j, "disk"));
        o->max_duration = (unsigned)json_integer_value(json_object_get(j, "max_duration"));
        o->idle_timeout = (unsigned)json_integer_value(json_object_get(j, "idle_timeout"));
        o->auto_remove = json_is_true(json_object_get(j, "auto_remove"));
        json_t *vols = json_object_get(j, "volumes"), *v;
        size_t i;
        int r = 0;
        json_array_foreach(vols, i, v)
        {
                const char *h = sb_jstr(v, "host"), *g = sb_jstr(v, "guest");
                unsigned fl = (json_is_true(json_object_get(v, "ro")) ? MSB_VOLUME_RO : 0) |
                              (json_is_true(json_object_get(v, "passthrough")) ? MSB_VOLUME_OWNER_PASSTHROUGH : 0) |
                              (json_is_true(json_object_get(v, "nosuid")) ? MSB_VOLUME_NOSUID : 0) |
                              (json_is_true(json_object_get(v, "noexec")) ? MSB_VOLUME_NOEXEC : 0);
                if (!h || !g || (r = msb_run_opts_add_volume(o, h, g, fl, err)) < 0) {
                        r = msb_err_wrap(err, r < 0 ? r : -EINVAL, "sandbox '%s'", name);
                        break;
                }
        }
        /* checked again like the volumes; a port taken since is only an
         * error when the sandbox starts */
        const char *mode = sb_jstr(j, "net");
        if (r >= 0 && mode && (r = msb_run_opts_set_net(o, mode, err)) < 0)
                r = msb_err_wrap(err, r, "sandbox '%s'", name);
        _cleanup_strv_ char **rules = sb_jstrv(j, "net_rules");
        for (char **x = rules; r >= 0 && x && *x; x++)
                if ((r = msb_run_opts_add_net_rule(o, *x, err)) < 0)
                        r = msb_err_wrap(err, r, "sandbox '%s'", name);
        o->net_ports = sb_jstrv(j, "ports");
        const char *tap = sb_jstr(j, "net_tap");
        if (r >= 0 && tap && (r = msb_run_opts_set_net_tap(o, tap, err)) < 0)
                r = msb_err_wrap(err, r, "sandbox '%s'", name);
        if (r >= 0)
                r = bundle_opts_load(j, o, name, err);
        json_decref(j);
        if (o->cpus < 1 || o->memory_mib < 1)
                r = msb_err(err, EINVAL, "sandbox '%s': %s is damaged (no cpus or memory)", name, path);
        if (r < 0) {
                msb_run_opts_free(o);
                return r;
        }
        *ret = o;
        return 0;
}

