/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What msb ls, inspect and logs read of named sandboxes: their list, one
 * sandbox's summary, its whole config and state as JSON, its log files.
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

/* ---- list, inspect ---- */

static char *joined_command(json_t *cfg)
{
        _cleanup_strv_ char **v = sb_jstrv(cfg, "command");
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
                .image = xstrdup(sb_jstr(cfg, "image") ? sb_jstr(cfg, "image") : sb_jstr(cfg, "rootfs") ? sb_jstr(cfg, "rootfs") : ""),
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
                .labels = sb_jstrv(cfg, "labels"),
        };
        if (!in->labels)
                in->labels = xcalloc(1, sizeof(char *));
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
                strv_free(v[i].labels);
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
        const char *mode = sb_jstr(cfg, "net");
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

