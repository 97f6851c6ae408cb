/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Named sandboxes on disk: <data>/sandboxes/NAME/ holds
 *
 *   config.json  the options it was created with (never changes)
 *   state.json   status, supervisor pid, runtime paths, times, exit code
 *                (replaced atomically by whoever changes it)
 *   run.lock     flock'ed exclusively by the supervisor while it lives: a
 *                sandbox whose state says "running" but whose lock is free
 *                has crashed (its supervisor was killed, the host rebooted)
 *   op.lock      taken by start and rm while they change the sandbox (stop
 *                goes through the supervisor, which serializes it)
 *   disk.img     the writable layer (ext4 made here, written only by the
 *                guest from then on: the host never mounts or reads it)
 *   main.log[.1] the main process's output (CRI format, rotated)
 *
 * A sandbox appears by rename() of a finished temporary dir, and goes by
 * rename() to a temporary name before its files are removed: concurrent
 * creates of one name cannot both win, and no command sees half of one.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sbstore.h"

int msb_sandbox_name_check(const char *name, struct msb_error *err)
{
        size_t n = name ? strlen(name) : 0;
        bool ok = n >= 2 && n <= SB_NAME_MAX && name[0] != '.' && name[0] != '_' && name[0] != '-';
        for (size_t i = 0; ok && i < n; i++) {
                char c = name[i];
                ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                     c == '.' || c == '-';
        }
        if (!ok)
                return msb_err(err, EINVAL,
                               "sandbox name '%s' is invalid: use 2 to %d letters, digits, '_', '.' or '-', "
                               "starting with a letter or digit",
                               name ? name : "", SB_NAME_MAX);
        return 0;
}

void msb_sandbox_name_random(char *out)
{
        memcpy(out, "msb-", 4);
        if (random_hex(out + 4, 4) < 0)
                snprintf(out + 4, 9, "%08x", (unsigned)getpid() ^ (unsigned)time(NULL));
}

char *sb_dir(struct msb_ctx *ctx, const char *name)
{
        return xasprintf("%s/%s", ctx->sandboxes_dir, name);
}

/* ---- config ---- */

static bool utf8_ok(const char *s)
{
        json_t *j = s ? json_string(s) : json_null();
        bool ok = j != NULL;
        json_decref(j);
        return ok;
}

/* JSON holds only UTF-8: say which input is not, rather than lose it. */
static int opts_check_utf8(const struct msb_run_opts *o, struct msb_error *err)
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

/* What only OCI bundles set (src/lib/bundle.c; bundle_opts_load() reads
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

static json_t *opts_json(const struct msb_run_opts *o)
{
        json_t *j = json_object();
        json_object_set_new(j, "image", o->image ? json_string(o->image) : json_null());
        json_object_set_new(j, "rootfs", o->rootfs ? json_string(o->rootfs) : json_null());
        json_object_set_new(j, "command", strv_json(o->command));
        json_object_set_new(j, "entrypoint", o->entrypoint_set ? json_string(o->entrypoint ? o->entrypoint : "")
                                                                 : json_null());
        json_object_set_new(j, "env", strv_json(o->env));
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

static const char *jstr(json_t *j, const char *key)
{
        json_t *v = json_object_get(j, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

static char **jstrv(json_t *j, const char *key)
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

/* What msb-runtime adds (opts_json), checked again through the setters. */
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
                const char *ty = jstr(e, "type"), *p = jstr(e, "path"), *op = jstr(e, "options");
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
                const char *p = jstr(e, "path"), *v = jstr(e, "value");
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
                const char *hex = jstr(cf, "seccomp");
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
        if (jstr(j, "image"))
                msb_run_opts_set_image(o, jstr(j, "image"));
        if (jstr(j, "rootfs"))
                msb_run_opts_set_rootfs(o, jstr(j, "rootfs"));
        o->command = jstrv(j, "command");
        if (jstr(j, "entrypoint"))
                msb_run_opts_set_entrypoint(o, jstr(j, "entrypoint"));
        o->env = jstrv(j, "env");
        if (jstr(j, "workdir"))
                msb_run_opts_set_workdir(o, jstr(j, "workdir"));
        if (jstr(j, "user"))
                msb_run_opts_set_user(o, jstr(j, "user"));
        if (jstr(j, "hostname"))
                msb_run_opts_set_hostname(o, jstr(j, "hostname"));
        o->cpus = (unsigned)json_integer_value(json_object_get(j, "cpus"));
        o->memory_mib = (unsigned)json_integer_value(json_object_get(j, "memory_mib"));
        if (jstr(j, "accel"))
                msb_accel_parse(jstr(j, "accel"), &o->accel);
        if (jstr(j, "fs_backend"))
                o->fs_backend = xstrdup(jstr(j, "fs_backend"));
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
                const char *h = jstr(v, "host"), *g = jstr(v, "guest");
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
        const char *mode = jstr(j, "net");
        if (r >= 0 && mode && (r = msb_run_opts_set_net(o, mode, err)) < 0)
                r = msb_err_wrap(err, r, "sandbox '%s'", name);
        _cleanup_strv_ char **rules = jstrv(j, "net_rules");
        for (char **x = rules; r >= 0 && x && *x; x++)
                if ((r = msb_run_opts_add_net_rule(o, *x, err)) < 0)
                        r = msb_err_wrap(err, r, "sandbox '%s'", name);
        o->net_ports = jstrv(j, "ports");
        const char *tap = jstr(j, "net_tap");
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

/* ---- state ---- */

void sb_state_free(struct sb_state *st)
{
        free(st->runtime);
        free(st->socket);
        free(st->error);
        free(st->kernel);
        free(st->server_pids);
        memset(st, 0, sizeof(*st));
}

int sb_state_write(const char *dir, const struct sb_state *st)
{
        json_t *j = json_pack("{s:s,s:i,s:I,s:I,s:I,s:i}", "status", st->status, "pid", st->pid, "created",
                              (json_int_t)st->created, "started", (json_int_t)st->started, "finished",
                              (json_int_t)st->finished, "exit_code", st->exit_code);
        if (st->runtime)
                json_object_set_new(j, "runtime_dir", json_string(st->runtime));
        if (st->socket)
                json_object_set_new(j, "socket", json_string(st->socket));
        if (st->error)
                json_object_set_new(j, "error", json_string(st->error));
        if (st->kernel)
                json_object_set_new(j, "kernel", json_string(st->kernel));
        if (st->qemu_pid)
                json_object_set_new(j, "qemu_pid", json_integer(st->qemu_pid));
        if (st->server_pids)
                json_object_set_new(j, "server_pids", json_string(st->server_pids));
        if (st->net_pid)
                json_object_set_new(j, "net_pid", json_integer(st->net_pid));
        char *s = json_dumps(j, JSON_INDENT(2));
        json_decref(j);
        _cleanup_free_ char *path = xasprintf("%s/state.json", dir);
        /* atomic and durable: state survives a host crash as written */
        int r = write_file_atomic_at(AT_FDCWD, path, s, strlen(s), 0600);
        free(s);
        return r;
}

int sb_state_read(const char *dir, struct sb_state *st)
{
        memset(st, 0, sizeof(*st));
        _cleanup_free_ char *path = xasprintf("%s/state.json", dir);
        json_t *j = json_load_file(path, 0, NULL);
        if (!j)
                return -errno ? -errno : -EIO;
        snprintf(st->status, sizeof(st->status), "%s", jstr(j, "status") ? jstr(j, "status") : "created");
        st->pid = (int)json_integer_value(json_object_get(j, "pid"));
        st->created = (int64_t)json_integer_value(json_object_get(j, "created"));
        st->started = (int64_t)json_integer_value(json_object_get(j, "started"));
        st->finished = (int64_t)json_integer_value(json_object_get(j, "finished"));
        json_t *ec = json_object_get(j, "exit_code");
        st->exit_code = ec ? (int)json_integer_value(ec) : -1;
#define DUP(f, k) st->f = jstr(j, k) ? xstrdup(jstr(j, k)) : NULL
        DUP(runtime, "runtime_dir");
        DUP(socket, "socket");
        DUP(error, "error");
        DUP(kernel, "kernel");
        DUP(server_pids, "server_pids");
#undef DUP
        st->qemu_pid = (int)json_integer_value(json_object_get(j, "qemu_pid"));
        st->net_pid = (int)json_integer_value(json_object_get(j, "net_pid"));
        json_decref(j);
        return 0;
}

bool sb_alive(const char *dir)
{
        _cleanup_free_ char *path = xasprintf("%s/run.lock", dir);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return false;
        if (flock(fd, LOCK_SH | LOCK_NB) < 0)
                return errno == EWOULDBLOCK;
        return false; /* closing drops our shared lock */
}

/* The state, with "running" checked against the supervisor's lock. */
int sb_state_current(struct msb_ctx *ctx, const char *name, struct sb_state *st, struct msb_error *err)
{
        _cleanup_free_ char *dir = sb_dir(ctx, name);
        struct stat s;
        if (stat(dir, &s) < 0)
                return msb_err(err, ENOENT, "no sandbox named '%s' (msb ls -a lists them)", name);
        int r = sb_state_read(dir, st);
        if (r < 0)
                return msb_err_errno(err, -r, "sandbox '%s': cannot read its state", name);
        if (!strcmp(st->status, "running") && !sb_alive(dir))
                snprintf(st->status, sizeof(st->status), "crashed");
        return 0;
}

bool msb_sandbox_running(struct msb_ctx *ctx, const char *name)
{
        if (msb_sandbox_name_check(name, NULL) < 0)
                return false;
        _cleanup_free_ char *dir = sb_dir(ctx, name);
        return sb_alive(dir);
}

int sb_oplock(struct msb_ctx *ctx, const char *name, struct msb_error *err)
{
        _cleanup_free_ char *path = xasprintf("%s/%s/op.lock", ctx->sandboxes_dir, name);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return errno == ENOENT ? msb_err(err, ENOENT, "no sandbox named '%s' (msb ls -a lists them)", name)
                                       : msb_err_errno(err, errno, "sandbox '%s': %s", name, path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                close(fd);
                return msb_err(err, EBUSY,
                               "sandbox '%s' is busy: another msb command is starting or removing it; try again",
                               name);
        }
        return fd;
}

/* The opening of every lifecycle call on one sandbox: its name checked,
 * then op.lock taken (with ret_lock), then its current state read (with
 * st).  0, or -errno with err filled and nothing held. */
int sb_open(struct msb_ctx *ctx, const char *name, int *ret_lock, struct sb_state *st, struct msb_error *err)
{
        int r = msb_sandbox_name_check(name, err);
        if (r < 0)
                return r;
        _cleanup_close_ int lk = -1;
        if (ret_lock && (lk = sb_oplock(ctx, name, err)) < 0)
                return lk;
        if (st && (r = sb_state_current(ctx, name, st, err)) < 0)
                return r;
        if (ret_lock)
                *ret_lock = TAKE_FD(lk);
        return 0;
}

/* sb_open() for whether the sandbox runs now (its lock checked). */
int sb_running(struct msb_ctx *ctx, const char *name, bool *ret_running, struct msb_error *err)
{
        struct sb_state st;
        int r = sb_open(ctx, name, NULL, &st, err);
        if (r < 0)
                return r;
        *ret_running = !strcmp(st.status, "running");
        sb_state_free(&st);
        return 0;
}

/* ---- create ---- */

static const char *mke2fs_path(void)
{
        static const char *const c[] = {"/usr/sbin/mke2fs", "/sbin/mke2fs", "/usr/bin/mke2fs"};
        for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
                if (access(c[i], X_OK) == 0)
                        return c[i];
        return NULL;
}

/* An empty ext4 file system in a sparse file: made here, from then on
 * written only by the guest. */
static int make_disk(const char *path, uint64_t size, struct msb_error *err)
{
        const char *mk = mke2fs_path();
        if (!mk)
                return msb_err(err, ENOENT, "mke2fs not found: install e2fsprogs (apt-get install e2fsprogs)");
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
                return msb_err_errno(err, errno, "cannot create %s", path);
        char *argv[] = {(char *)mk, "-q", "-F", "-t", "ext4", "-L", "msb-upper", "-m", "0", "-E",
                        "lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0,nodiscard", (char *)path, NULL};
        _cleanup_close_ int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        pid_t pid;
        int pidfd = -1;
        int r = proc_spawn(argv, devnull, devnull, devnull, -1, &pid, &pidfd);
        if (r < 0)
                return msb_err_errno(err, r, "cannot run %s", mk);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (pidfd >= 0)
                close(pidfd);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return msb_err(err, EIO, "%s failed on %s (exit status %d)", mk, path,
                               WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        return 0;
}

/* What a create or rm killed half-way left: .new-* and .rm-* dirs older
 * than ten minutes (younger ones may be in use). */
static void sweep_leftovers(const char *top)
{
        _cleanup_closedir_ DIR *d = opendir(top);
        if (!d)
                return;
        for (struct dirent *de; (de = readdir(d));) {
                struct stat st;
                if ((strncmp(de->d_name, ".new-", 5) && strncmp(de->d_name, ".rm-", 4)) ||
                    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || time(NULL) - st.st_mtime < 600)
                        continue;
                /* a create that still runs holds op.lock in its dir */
                _cleanup_free_ char *lk = xasprintf("%s/op.lock", de->d_name);
                _cleanup_close_ int fd = openat(dirfd(d), lk, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0)
                        continue;
                rm_rf_at(dirfd(d), de->d_name);
        }
}

/* A sandbox made to be removed when it stops (an unnamed run -d or -t)
 * whose msb was killed between create and start never runs: after ten
 * minutes it goes too. */
static void sweep_stranded(struct msb_ctx *ctx, const char *top)
{
        _cleanup_closedir_ DIR *d = opendir(top);
        if (!d)
                return;
        for (struct dirent *de; (de = readdir_no_dot(d));) {
                if (msb_sandbox_name_check(de->d_name, NULL) < 0)
                        continue;
                _cleanup_free_ char *dir = xasprintf("%s/%s", top, de->d_name);
                _cleanup_free_ char *cpath = xasprintf("%s/config.json", dir);
                struct sb_state st;
                if (sb_state_read(dir, &st) < 0)
                        continue;
                bool old_created = !strcmp(st.status, "created") && st.created && time(NULL) - st.created > 600;
                sb_state_free(&st);
                json_t *cfg = old_created ? json_load_file(cpath, 0, NULL) : NULL;
                bool stranded = cfg && json_is_true(json_object_get(cfg, "auto_remove"));
                json_decref(cfg);
                if (!stranded || sb_alive(dir))
                        continue;
                int lk = sb_oplock(ctx, de->d_name, NULL);
                if (lk >= 0) {
                        sb_remove_files(ctx, de->d_name);
                        close(lk);
                }
        }
}

int msb_sandbox_create(struct msb_ctx *ctx, const char *name, const struct msb_run_opts *o, struct msb_error *err)
{
        int r = msb_sandbox_name_check(name, err);
        if (r < 0)
                return r;
        if (!o->image && !o->rootfs)
                return msb_err(err, EINVAL, "no image given: name an image or use --rootfs DIR");
        r = opts_check_utf8(o, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *top = xstrdup(ctx->sandboxes_dir);
        r = mkdir_p(top, 0700);
        if (r < 0)
                return msb_err_errno(err, -r, "cannot create %s", top);
        sweep_leftovers(top);
        sweep_stranded(ctx, top);
        _cleanup_free_ char *final = sb_dir(ctx, name);
        if (access(final, F_OK) == 0)
                return msb_err(err, EEXIST, "sandbox name '%s' is already in use: pick another, or msb rm %s",
                               name, name);
        char rnd[9];
        random_hex(rnd, 4);
        _cleanup_free_ char *tmp = xasprintf("%s/.new-%s-%s", top, name, rnd);
        if (mkdir(tmp, 0700) < 0)
                return msb_err_errno(err, errno, "cannot create %s", tmp);
        /* held until the rename: a sweep by another create leaves us be */
        _cleanup_free_ char *lkp = xasprintf("%s/op.lock", tmp);
        _cleanup_close_ int lk = open(lkp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (lk >= 0)
                (void)flock(lk, LOCK_EX);
        json_t *cfg = opts_json(o);
        json_object_set_new(cfg, "name", json_string(name));
        _cleanup_free_ char *cpath = xasprintf("%s/config.json", tmp);
        char *cs = json_dumps(cfg, JSON_INDENT(2));
        json_decref(cfg);
        r = !cs || write_file_replace_at(AT_FDCWD, cpath, cs, strlen(cs), 0600) < 0
                    ? msb_err(err, EIO, "cannot write %s", cpath)
                    : 0;
        free(cs);
        struct sb_state st = {.created = time(NULL), .exit_code = -1};
        snprintf(st.status, sizeof(st.status), "created");
        if (r >= 0 && sb_state_write(tmp, &st) < 0)
                r = msb_err(err, EIO, "cannot write the state of '%s' in %s", name, tmp);
        if (r >= 0 && o->image) {
                /* the image root the disk is made on: msb rmi keeps it, and
                 * start refuses another one under the same name */
                _cleanup_free_ char *rootfs = NULL;
                struct msb_image_config cfgi = {0};
                r = msb_image_open(ctx, o->image, &rootfs, &cfgi, err);
                if (r == -ENOENT && o->pull != MSB_PULL_NEVER) {
                        struct msb_error perr = {0};
                        if (msb_image_pull(ctx, o->image, NULL, &perr) < 0)
                                r = msb_err(err, perr.code ? perr.code : EIO,
                                            "image '%s' is not in the local store, and pulling it failed: %s",
                                            o->image, perr.message);
                        else
                                r = msb_image_open(ctx, o->image, &rootfs, &cfgi, err);
                }
                msb_image_config_free(&cfgi);
                _cleanup_free_ char *rp = xasprintf("%s/rootfs", tmp);
                if (r >= 0)
                        r = write_file_replace_at(AT_FDCWD, rp, rootfs, strlen(rootfs), 0600) < 0
                                    ? msb_err(err, EIO, "cannot write %s", rp)
                                    : 0;
        }
        if (r >= 0 && !o->no_disk) {
                _cleanup_free_ char *disk = xasprintf("%s/disk.img", tmp);
                r = make_disk(disk, o->disk_size ? o->disk_size : SB_DISK_DEFAULT, err);
        }
        /* rename() onto an existing, non-empty dir fails: one create wins */
        if (r >= 0 && rename(tmp, final) < 0)
                r = errno == EEXIST || errno == ENOTEMPTY
                            ? msb_err(err, EEXIST, "sandbox name '%s' is already in use: pick another, or msb rm %s",
                                      name, name)
                            : msb_err_errno(err, errno, "cannot create %s", final);
        if (r < 0)
                rm_rf(tmp);
        return r < 0 ? r : 0;
}

/* ---- list, inspect ---- */

static char *joined_command(json_t *cfg)
{
        _cleanup_strv_ char **v = jstrv(cfg, "command");
        size_t n = 1;
        for (char **e = v; e && *e; e++)
                n += strlen(*e) + 1;
        char *s = xcalloc(n, 1);
        for (char **e = v; e && *e; e++) {
                if (e != v)
                        strcat(s, " ");
                strcat(s, *e);
        }
        return s;
}

static int info_load(struct msb_ctx *ctx, const char *name, struct msb_sandbox_info *in)
{
        struct sb_state st;
        if (sb_state_current(ctx, name, &st, NULL) < 0)
                return -ENOENT;
        _cleanup_free_ char *path = xasprintf("%s/%s/config.json", ctx->sandboxes_dir, name);
        json_t *cfg = json_load_file(path, 0, NULL);
        if (!cfg) {
                sb_state_free(&st);
                return -EIO;
        }
        *in = (struct msb_sandbox_info){
                .name = xstrdup(name),
                .image = xstrdup(jstr(cfg, "image") ? jstr(cfg, "image") : jstr(cfg, "rootfs") ? jstr(cfg, "rootfs") : ""),
                .command = joined_command(cfg),
                .exit_code = st.exit_code,
                .created = st.created,
                .started = st.started,
                .finished = st.finished,
                .cpus = (unsigned)json_integer_value(json_object_get(cfg, "cpus")),
                .memory_mib = (unsigned)json_integer_value(json_object_get(cfg, "memory_mib")),
                .pid = !strcmp(st.status, "running") ? st.pid : 0,
                .tty = json_is_true(json_object_get(cfg, "tty")),
                .interactive = json_is_true(json_object_get(cfg, "interactive")),
        };
        static const char *const names[] = {"created", "running", "stopped", "crashed"};
        in->status = "crashed";
        for (size_t i = 0; i < 4; i++)
                if (!strcmp(st.status, names[i]))
                        in->status = names[i];
        json_decref(cfg);
        sb_state_free(&st);
        return 0;
}

static int cmp_info(const void *a, const void *b)
{
        const struct msb_sandbox_info *x = a, *y = b;
        return x->created != y->created ? (x->created > y->created ? -1 : 1) : strcmp(x->name, y->name);
}

int msb_sandbox_list(struct msb_ctx *ctx, struct msb_sandbox_info **ret, size_t *ret_n, struct msb_error *err)
{
        _cleanup_free_ char *top = xstrdup(ctx->sandboxes_dir);
        struct msb_sandbox_info *v = NULL;
        size_t n = 0;
        _cleanup_closedir_ DIR *d = opendir(top);
        if (!d && errno != ENOENT)
                return msb_err_errno(err, errno, "cannot read %s", top);
        for (struct dirent *de; d && (de = readdir_no_dot(d));) {
                if (msb_sandbox_name_check(de->d_name, NULL) < 0)
                        continue;
                v = realloc(v, (n + 1) * sizeof(*v));
                if (!v)
                        abort();
                if (info_load(ctx, de->d_name, &v[n]) == 0)
                        n++;
        }
        if (n)
                qsort(v, n, sizeof(*v), cmp_info);
        *ret = v;
        *ret_n = n;
        return 0;
}

int msb_sandbox_get(struct msb_ctx *ctx, const char *name, struct msb_sandbox_info **ret, struct msb_error *err)
{
        int r = msb_sandbox_name_check(name, err);
        if (r < 0)
                return r;
        struct msb_sandbox_info *in = xcalloc(1, sizeof(*in));
        r = info_load(ctx, name, in);
        if (r < 0) {
                free(in);
                return r == -ENOENT ? msb_err(err, ENOENT, "no sandbox named '%s' (msb ls -a lists them)", name)
                                    : msb_err(err, -r, "sandbox '%s': cannot read its config", name);
        }
        *ret = in;
        return 0;
}

void msb_sandbox_info_free(struct msb_sandbox_info *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(v[i].name);
                free(v[i].image);
                free(v[i].command);
        }
        free(v);
}

int msb_sandbox_inspect(struct msb_ctx *ctx, const char *name, char **ret_json, struct msb_error *err)
{
        struct sb_state st;
        int r = sb_open(ctx, name, NULL, &st, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *dir = sb_dir(ctx, name);
        _cleanup_free_ char *cpath = xasprintf("%s/config.json", dir);
        json_t *cfg = json_load_file(cpath, 0, NULL);
        if (!cfg) {
                sb_state_free(&st);
                return msb_err(err, EIO, "sandbox '%s': cannot read %s", name, cpath);
        }
        bool running = !strcmp(st.status, "running");
        json_t *state = json_pack("{s:s,s:b,s:i,s:I,s:I,s:I}", "status", st.status, "running", running, "pid",
                                  running ? st.pid : 0, "created", (json_int_t)st.created, "started",
                                  (json_int_t)st.started, "finished", (json_int_t)st.finished);
        json_object_set_new(state, "exit_code", st.exit_code >= 0 && !running ? json_integer(st.exit_code)
                                                                               : json_null());
        if (st.error)
                json_object_set_new(state, "error", json_string(st.error));
        if (running) {
                json_t *pids = json_pack("{s:i,s:i}", "supervisor", st.pid, "qemu", st.qemu_pid);
                json_t *servers = json_array();
                for (char *save = NULL, *t = st.server_pids ? strtok_r(st.server_pids, " ", &save) : NULL; t;
                     t = strtok_r(NULL, " ", &save))
                        json_array_append_new(servers, json_integer(atoi(t)));
                json_object_set_new(pids, "fs_servers", servers);
                if (st.net_pid)
                        json_object_set_new(pids, "network", json_integer(st.net_pid));
                json_object_set_new(state, "pids", pids);
        }
        _cleanup_free_ char *disk = xasprintf("%s/disk.img", dir), *log = xasprintf("%s/main.log", dir);
        json_t *paths = json_pack("{s:s,s:s,s:s}", "dir", dir, "disk", disk, "log", log);
        if (running && st.runtime)
                json_object_set_new(paths, "runtime_dir", json_string(st.runtime));
        if (running && st.socket)
                json_object_set_new(paths, "socket", json_string(st.socket));
        json_t *top = json_pack("{s:s,s:o,s:o,s:o}", "name", name, "config", cfg, "state", state, "paths", paths);
        if (st.kernel)
                json_object_set_new(top, "kernel", json_string(st.kernel));
        json_object_set(top, "volumes", json_object_get(cfg, "volumes"));
        const char *mode = jstr(cfg, "net");
        json_t *net = json_pack("{s:s}", "mode", mode ? mode : "public");
        if (!mode || strcmp(mode, "none") != 0) {
                json_object_set_new(net, "address", json_string(NET_GUEST4));
                json_object_set_new(net, "gateway", json_string(NET_GW4));
                json_object_set(net, "rules", json_object_get(cfg, "net_rules"));
                json_object_set(net, "ports", json_object_get(cfg, "ports"));
        }
        json_object_set_new(top, "network", net);
        *ret_json = json_dumps(top, JSON_INDENT(2));
        json_decref(top);
        sb_state_free(&st);
        return 0;
}

int msb_sandbox_log_paths(struct msb_ctx *ctx, const char *name, char ***ret_paths, struct msb_error *err)
{
        int r = msb_sandbox_name_check(name, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *dir = sb_dir(ctx, name);
        if (access(dir, F_OK) < 0)
                return msb_err(err, ENOENT, "no sandbox named '%s' (msb ls -a lists them)", name);
        char **v = NULL;
        _cleanup_free_ char *old = xasprintf("%s/main.log.1", dir);
        if (access(old, F_OK) == 0)
                strv_push(&v, old);
        strv_push_take(&v, xasprintf("%s/main.log", dir));
        *ret_paths = v;
        return 0;
}

/* ---- remove ---- */

/* The sandbox's files go: renamed away first, so no other command sees a
 * half-removed sandbox, then deleted. */
/* A crashed sandbox's runtime dir (its supervisor was killed): gone with
 * it, if it is one of ours (state.json names it) and nobody holds it. */
static void runtime_leftover(struct msb_ctx *ctx, const char *dir)
{
        struct sb_state st;
        if (sb_state_read(dir, &st) < 0)
                return;
        size_t n = strlen(ctx->runtime_dir);
        const char *id = st.runtime && !strncmp(st.runtime, ctx->runtime_dir, n) && st.runtime[n] == '/'
                                 ? st.runtime + n + 1
                                 : NULL;
        if (id && *id && !strchr(id, '/') && strcmp(id, ".") && strcmp(id, "..")) {
                _cleanup_free_ char *lock = xasprintf("%s/lock", st.runtime);
                _cleanup_close_ int fd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
                if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
                        rm_rf(st.runtime);
        }
        sb_state_free(&st);
}

int sb_remove_files(struct msb_ctx *ctx, const char *name)
{
        _cleanup_free_ char *dir = sb_dir(ctx, name);
        if (!sb_alive(dir))
                runtime_leftover(ctx, dir);
        char rnd[9];
        random_hex(rnd, 4);
        _cleanup_free_ char *gone = xasprintf("%s/.rm-%s-%s", ctx->sandboxes_dir, name, rnd);
        if (rename(dir, gone) < 0)
                return -errno;
        return rm_rf(gone);
}
