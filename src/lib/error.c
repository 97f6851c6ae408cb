/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "internal.h"

int msb_err(struct msb_error *err, int code, const char *fmt, ...)
{
        if (code < 0)
                code = -code;
        if (code == 0)
                code = EINVAL;
        if (err) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(err->message, sizeof(err->message), fmt, ap);
                va_end(ap);
                err->code = code;
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
                        snprintf(err->message, sizeof(err->message), "%s: %s", prefix, strerror(-r));
                err->code = -r;
        }
        return r;
}
