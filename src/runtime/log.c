/* SPDX-License-Identifier: Apache-2.0 */
/* msb-runtime's output: errors to stderr and --log (text or runc's JSON
 * lines), diagnostics to --log only; and the msb context under --root. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/util.h"
#include "runtime.h"

struct rt_globals rt_g;

static void log_line(const char *level, const char *msg)
{
        if (!rt_g.log)
                return;
        int fd = open(rt_g.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        char now[64];
        rt_now_rfc3339(now, sizeof(now));
        char *line = NULL;
        if (rt_g.log_json) {
                /* runc's (logrus's) JSON lines: containerd's shim reads the
                 * last "msg" to say why a command failed */
                json_t *j = json_pack("{s:s, s:s, s:s}", "level", level, "msg", msg, "time", now);
                char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
                json_decref(j);
                if (s)
                        line = xasprintf("%s\n", s);
                free(s);
        } else {
                line = xasprintf("time=\"%s\" level=%s msg=\"%s\"\n", now, level, msg);
        }
        if (line)
                (void)write_all(fd, line, strlen(line));
        free(line);
        close(fd);
}

static void vlog(const char *level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void vlog(const char *level, const char *fmt, va_list ap)
{
        char *msg = NULL;
        if (vasprintf(&msg, fmt, ap) < 0)
                return;
        log_line(level, msg);
        free(msg);
}

int rt_error(const char *fmt, ...)
{
        va_list ap;
        char *msg = NULL;
        va_start(ap, fmt);
        int n = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (n < 0)
                return RT_EXIT_FAILED;
        fprintf(stderr, "msb-runtime: %s\n", msg);
        log_line("error", msg);
        free(msg);
        return RT_EXIT_FAILED;
}

void rt_debug(const char *fmt, ...)
{
        if (!rt_g.debug)
                return;
        va_list ap;
        va_start(ap, fmt);
        vlog("debug", fmt, ap);
        va_end(ap);
}

void rt_warn(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vlog("warning", fmt, ap);
        va_end(ap);
}

void rt_lib_log(const char *line, void *userdata)
{
        (void)userdata;
        log_line(rt_g.debug ? "debug" : "info", line);
}

/* Every command's context: images and kernels are the caller's own (one
 * store and one kernel cache however many --root dirs there are), the
 * sandboxes and their runtime dirs live in <root>/.msb (an ID cannot start
 * with '.', so no container's state dir can be it).  The shim inherits
 * this context through its fork. */
struct msb_ctx *rt_ctx(void)
{
        struct msb_error err = {0};
        struct msb_ctx *ctx;
        if (msb_ctx_new(&ctx, &err) < 0) {
                rt_error("%s", err.message);
                return NULL;
        }
        _cleanup_free_ char *home = xasprintf("%s/.msb", rt_g.root);
        if (mkdir_p(home, 0700) < 0) {
                rt_error("%s", errno_msg(errno, "cannot create %s", home).s);
                msb_ctx_free(ctx);
                return NULL;
        }
        if (msb_ctx_set_sandbox_home(ctx, home, &err) < 0) {
                rt_error("%s", err.message);
                msb_ctx_free(ctx);
                return NULL;
        }
        msb_ctx_set_log(ctx, rt_g.debug ? 1 : 0, rt_lib_log, NULL);
        return ctx;
}
