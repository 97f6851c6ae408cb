/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A container's state dir, <root>/<id>/: state.json (ours: id, sandbox
 * name, bundle, shim pid and start time, creation time, annotations) and
 * exec.fifo while the container is created and not started.  The status
 * is computed, never stored: the shim alive or not, the fifo there or not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/util.h"
#include "runtime.h"

#define STATE_MAX (1u << 20) /* annotations included */
#define NAME_KEEP 40         /* readable part of a mapped ID */

const char *rt_status_name(enum rt_status s)
{
        static const char *const n[] = {"creating", "created", "running", "stopped"};
        return n[s];
}

int rt_id_check(const char *id)
{
        size_t n = strlen(id);
        bool ok = n > 0 && n <= 1024 && id[0] != '.';
        for (size_t i = 0; ok && i < n; i++) {
                char c = id[i];
                ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                     c == '+' || c == '-' || c == '.';
        }
        if (!ok) {
                rt_error("invalid container ID '%s': use letters, digits, '_', '+', '-' and '.', not starting "
                         "with '.'",
                         id);
                return -EINVAL;
        }
        return 0;
}

void rt_id_to_name(const char *id, char *out, size_t n)
{
        if (msb_sandbox_name_check(id, NULL) == 0) {
                snprintf(out, n, "%s", id);
                return;
        }
        /* FNV-1a over the whole ID; the readable part keeps the allowed
         * characters only.  A clash is caught at create (the name taken). */
        uint64_t h = 1469598103934665603ull;
        for (const unsigned char *p = (const unsigned char *)id; *p; p++)
                h = (h ^ *p) * 1099511628211ull;
        char keep[NAME_KEEP + 1];
        size_t k = 0;
        for (const char *p = id; *p && k < NAME_KEEP; p++)
                if (*p != '+')
                        keep[k++] = *p;
        keep[k] = '\0';
        snprintf(out, n, "oci-%s%s%016llx", keep, k ? "-" : "", (unsigned long long)h);
}

void rt_now_rfc3339(char *out, size_t n)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        char base[32];
        strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(out, n, "%s.%09ldZ", base, ts.tv_nsec);
}

static char *state_path(const char *id)
{
        return xasprintf("%s/%s/state.json", rt_g.root, id);
}

static char *jdup(json_t *o, const char *k)
{
        const char *s = json_string_value(json_object_get(o, k));
        return s ? xstrdup(s) : NULL;
}

int rt_container_load(const char *id, struct rt_container *ret)
{
        if (rt_id_check(id) < 0)
                return -EINVAL;
        _cleanup_free_ char *path = state_path(id), *data = NULL;
        int r = read_file_at(AT_FDCWD, path, STATE_MAX, &data, NULL);
        if (r == -ENOENT || r == -ENOTDIR) {
                rt_error("container %s does not exist", id);
                return -ENOENT;
        }
        if (r < 0) {
                rt_error("%s", errno_msg(-r, "container %s: cannot read %s", id, path).s);
                return r;
        }
        json_t *j = json_loads(data, 0, NULL);
        if (!json_is_object(j) || !json_string_value(json_object_get(j, "name"))) {
                json_decref(j);
                rt_error("container %s: %s is damaged; msb-runtime delete --force %s removes it", id, path, id);
                return -EIO;
        }
        struct rt_container c = {
                .id = xstrdup(id),
                .name = jdup(j, "name"),
                .bundle = jdup(j, "bundle"),
                .created = jdup(j, "created"),
                .dir = xasprintf("%s/%s", rt_g.root, id),
                .pid = (pid_t)json_integer_value(json_object_get(j, "pid")),
                .pid_start = (uint64_t)json_integer_value(json_object_get(j, "pid_start")),
                .tty = json_is_true(json_object_get(j, "tty")),
        };
        json_t *a = json_object_get(j, "annotations");
        c.annotations = json_is_object(a) ? json_dumps(a, JSON_COMPACT) : xstrdup("{}");
        json_t *cg = json_object_get(j, "cgroups");
        if (json_array_size(cg)) {
                c.cgroups = xcalloc(json_array_size(cg) + 1, sizeof(char *));
                size_t i, k = 0;
                json_t *d;
                json_array_foreach(cg, i, d)
                {
                        const char *s = json_string_value(d);
                        if (s && s[0] == '/')
                                c.cgroups[k++] = xstrdup(s);
                }
        }
        json_decref(j);
        *ret = c;
        return 0;
}

int rt_container_save(const struct rt_container *c)
{
        json_t *a = json_loads(c->annotations ? c->annotations : "{}", 0, NULL);
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:o}", "id", c->id, "name", c->name, "bundle",
                              c->bundle, "created", c->created, "pid", (json_int_t)c->pid, "pid_start",
                              (json_int_t)c->pid_start, "tty", c->tty, "annotations", a ? a : json_object());
        if (j && c->cgroups) {
                json_t *cg = json_array();
                for (size_t i = 0; c->cgroups[i]; i++)
                        json_array_append_new(cg, json_string(c->cgroups[i]));
                json_object_set_new(j, "cgroups", cg);
        }
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!s)
                return -ENOMEM;
        _cleanup_free_ char *path = state_path(c->id);
        int r = write_file_replace_at(AT_FDCWD, path, s, strlen(s), 0600);
        free(s);
        return r;
}

void rt_container_free(struct rt_container *c)
{
        free(c->id);
        free(c->name);
        free(c->bundle);
        free(c->created);
        free(c->annotations);
        free(c->dir);
        strv_free(c->cgroups);
        memset(c, 0, sizeof(*c));
}

uint64_t rt_pid_start_time(pid_t pid)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        _cleanup_free_ char *data = NULL;
        if (pid <= 0 || read_file_at(AT_FDCWD, path, 4096, &data, NULL) < 0)
                return 0;
        /* the command name may hold spaces and parentheses: fields count
         * from the last ')' */
        char *p = strrchr(data, ')');
        if (!p)
                return 0;
        char state;
        unsigned long long start = 0;
        /* state ppid pgrp session tty tpgid flags minflt cminflt majflt
         * cmajflt utime stime cutime cstime priority nice threads
         * itrealvalue starttime */
        if (sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &state,
                   &start) != 2)
                return 0;
        if (state == 'Z' || state == 'X')
                return 0; /* exited, not reaped yet: gone for us */
        return start;
}

bool rt_shim_alive(const struct rt_container *c)
{
        return c->pid > 0 && c->pid_start && rt_pid_start_time(c->pid) == c->pid_start;
}

char *rt_fifo_path(const struct rt_container *c)
{
        return xasprintf("%s/exec.fifo", c->dir);
}

enum rt_status rt_container_status(struct msb_ctx *ctx, const struct rt_container *c)
{
        if (c->pid == 0)
                return RT_CREATING;
        if (!rt_shim_alive(c) || !msb_sandbox_running(ctx, c->name))
                return RT_STOPPED;
        _cleanup_free_ char *fifo = rt_fifo_path(c);
        return access(fifo, F_OK) == 0 ? RT_CREATED : RT_RUNNING;
}

char *rt_state_json(struct msb_ctx *ctx, const struct rt_container *c, bool pretty)
{
        enum rt_status s = rt_container_status(ctx, c);
        json_t *a = json_loads(c->annotations ? c->annotations : "{}", 0, NULL);
        json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:o}", "ociVersion", "1.0.2-dev", "id", c->id,
                              "pid", (json_int_t)(s == RT_STOPPED ? 0 : c->pid), "status", rt_status_name(s),
                              "bundle", c->bundle, "created", c->created, "owner", "", "annotations",
                              a ? a : json_object());
        char *out = j ? json_dumps(j, pretty ? JSON_INDENT(2) : JSON_COMPACT) : NULL;
        json_decref(j);
        return out ? out : xstrdup("{}");
}
