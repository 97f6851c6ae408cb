/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.json's process: args, env, cwd, user, rlimits, terminal and its
 * size, capabilities and noNewPrivileges, mapped to msb run options or
 * refused with an error naming the field (docs/oci-runtime.md).
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

#define ROWS_DEFAULT 24u
#define COLS_DEFAULT 80u

int parse_strv(json_t *a, const char *field, char ***ret)
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

int parse_user(json_t *u, char **ret_user, unsigned *ret_uid, unsigned *ret_gid, unsigned **ret_groups,
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

void console_size(json_t *p, unsigned *rows, unsigned *cols)
{
        json_t *cs = json_object_get(p, "consoleSize");
        json_int_t h = json_integer_value(json_object_get(cs, "height"));
        json_int_t w = json_integer_value(json_object_get(cs, "width"));
        *rows = h > 0 && h < 65536 ? (unsigned)h : ROWS_DEFAULT;
        *cols = w > 0 && w < 65536 ? (unsigned)w : COLS_DEFAULT;
}

int map_process(struct rt_bundle *b, json_t *p)
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

