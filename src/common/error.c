/* SPDX-License-Identifier: Apache-2.0 */
/* Errors and errno text; see error.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

const char *errno_text(int code)
{
        return strerror(code < 0 ? -code : code);
}

__attribute__((format(printf, 4, 0))) static void vfill(struct msb_error *err, int code, bool with_errno,
                                                     const char *fmt, va_list ap)
{
        char msg[sizeof(err->message)];
        vsnprintf(msg, sizeof(msg), fmt, ap);
        if (with_errno)
                snprintf(err->message, sizeof(err->message), "%s: %s", msg, errno_text(code));
        else
                memcpy(err->message, msg, sizeof(msg));
        err->code = code;
}

static int positive(int code)
{
        if (code < 0)
                code = -code;
        return code ? code : EINVAL;
}

int msb_err(struct msb_error *err, int code, const char *fmt, ...)
{
        code = positive(code);
        if (err) {
                va_list ap;
                va_start(ap, fmt);
                vfill(err, code, false, fmt, ap);
                va_end(ap);
        }
        return -code;
}

int msb_err_errno(struct msb_error *err, int code, const char *fmt, ...)
{
        code = positive(code);
        if (err) {
                va_list ap;
                va_start(ap, fmt);
                vfill(err, code, true, fmt, ap);
                va_end(ap);
        }
        return -code;
}

int msb_err_wrap(struct msb_error *err, int r, const char *fmt, ...)
{
        if (r > 0)
                r = -r;
        if (err) {
                char prefix[1024];
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(prefix, sizeof(prefix), fmt, ap);
                va_end(ap);
                char old[sizeof(err->message)];
                memcpy(old, err->message, sizeof(old));
                if (old[0])
                        snprintf(err->message, sizeof(err->message), "%s: %s", prefix, old);
                else
                        snprintf(err->message, sizeof(err->message), "%s: %s", prefix, errno_text(r));
                err->code = -r;
        }
        return r;
}

struct errno_msg errno_msg(int code, const char *fmt, ...)
{
        struct errno_msg m;
        char msg[sizeof(m.s)];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(m.s, sizeof(m.s), "%s: %s", msg, errno_text(code));
        return m;
}
