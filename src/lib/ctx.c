/* SPDX-License-Identifier: Apache-2.0 */
/* A context: where msb keeps its files (MSB_HOME, XDG dirs, the system dir), how it logs. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "ctx.h"
#include "image/image.h"
#include "settings.h"

static char *env_dir(enum msb_setting var, const char *suffix)
{
        const char *v = msb_setting(var);
        if (!v || v[0] != '/')
                return NULL;
        return xasprintf("%s%s", v, suffix);
}

int msb_ctx_new(struct msb_ctx **ret_ctx, struct msb_error *err)
{
        struct msb_ctx *c = xcalloc(1, sizeof(*c));
        const char *home = msb_setting(SET_MSB_HOME);
        if (home && *home) {
                if (home[0] != '/') {
                        free(c);
                        return msb_err(err, EINVAL, "MSB_HOME '%s' must be an absolute path", home);
                }
                c->data_dir = xstrdup(home);
                c->runtime_dir = xasprintf("%s/run", home);
        } else if (geteuid() == 0) {
                c->data_dir = xstrdup("/var/lib/msb");
                c->runtime_dir = xstrdup("/run/msb");
        } else {
                c->data_dir = env_dir(SET_XDG_DATA_HOME, "/msb");
                if (!c->data_dir) {
                        const char *h = msb_setting(SET_HOME);
                        if (!h || h[0] != '/') {
                                free(c);
                                return msb_err(err, EINVAL, "cannot find a data directory: set MSB_HOME or HOME");
                        }
                        c->data_dir = xasprintf("%s/.local/share/msb", h);
                }
                c->runtime_dir = env_dir(SET_XDG_RUNTIME_DIR, "/msb");
                if (!c->runtime_dir)
                        c->runtime_dir = xasprintf("%s/run", c->data_dir);
        }
        /* what `meson install` (./setup.sh as root) put there for every
         * user: kernels and the default image, read-only */
        const char *sys = msb_setting(SET_MSB_SYSTEM_DIR);
        if (sys && *sys && sys[0] != '/') {
                msb_ctx_free(c);
                return msb_err(err, EINVAL, "MSB_SYSTEM_DIR '%s' must be an absolute path", sys);
        }
        c->system_dir = xstrdup(sys && *sys ? sys : MSB_SYSTEM_DIR);
        c->sandboxes_dir = xasprintf("%s/sandboxes", c->data_dir);
        *ret_ctx = c;
        return 0;
}

int msb_ctx_set_sandbox_home(struct msb_ctx *ctx, const char *dir, struct msb_error *err)
{
        if (!dir || dir[0] != '/')
                return msb_err(err, EINVAL, "sandbox home '%s' must be an absolute path", dir ? dir : "");
        free(ctx->sandboxes_dir);
        free(ctx->runtime_dir);
        ctx->sandboxes_dir = xasprintf("%s/sandboxes", dir);
        ctx->runtime_dir = xasprintf("%s/run", dir);
        return 0;
}

void msb_ctx_free(struct msb_ctx *ctx)
{
        if (!ctx)
                return;
        free(ctx->data_dir);
        free(ctx->runtime_dir);
        free(ctx->sandboxes_dir);
        free(ctx->system_dir);
        free(ctx);
}

void msb_ctx_set_log(struct msb_ctx *ctx, int level, void (*fn)(const char *, void *), void *ud)
{
        ctx->log_level = level;
        ctx->log_fn = fn;
        ctx->log_ud = ud;
}

void msb_ctx_set_no_signals(struct msb_ctx *ctx, bool on)
{
        ctx->no_signals = on;
}

const char *msb_ctx_data_dir(const struct msb_ctx *ctx)
{
        return ctx->data_dir;
}

const char *msb_ctx_runtime_dir(const struct msb_ctx *ctx)
{
        return ctx->runtime_dir;
}

const char *msb_ctx_system_dir(const struct msb_ctx *ctx)
{
        return ctx->system_dir;
}

void msb_log(const struct msb_ctx *ctx, int level, const char *fmt, ...)
{
        if (!ctx->log_fn || level > ctx->log_level)
                return;
        char line[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        ctx->log_fn(line, ctx->log_ud);
}

void msb_ctx_set_progress(struct msb_ctx *ctx, bool on)
{
        ctx->progress = on;
}

void msb_ctx_set_progress_fn(struct msb_ctx *ctx,
                             void (*fn)(const struct msb_layer_progress *, size_t, double, bool, void *), void *ud)
{
        ctx->progress_fn = fn;
        ctx->progress_ud = ud;
}

void msb_ctx_set_insecure(struct msb_ctx *ctx, bool on)
{
        ctx->insecure = on;
}
