/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One shape for every error msb serve answers:
 *
 *     {"error": {"code": "not_found", "message": "no sandbox named 'x' (msb ls -a lists them)", "field": "..."}}
 *
 * The message is the library's, as the CLI prints it; the code is stable
 * (docs/api.md lists them) and follows from the library's errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "common/error.h"

static const struct {
        int err;
        unsigned status;
        const char *code;
} map[] = {
        {EINVAL, 400, "bad_request"},     {ERANGE, 400, "bad_request"},   {ENAMETOOLONG, 400, "bad_request"},
        {E2BIG, 400, "bad_request"},      {ENOENT, 404, "not_found"},     {EEXIST, 409, "conflict"},
        {ESRCH, 409, "not_running"},      {EBUSY, 409, "busy"},           {ENOTEMPTY, 409, "conflict"},
        {EISDIR, 409, "conflict"},        {ENOTDIR, 409, "conflict"},     {EACCES, 403, "forbidden"},
        {EPERM, 403, "forbidden"},        {EROFS, 403, "forbidden"},      {EFBIG, 413, "too_large"},
        {ENOSPC, 507, "no_space"},        {EDQUOT, 507, "no_space"},      {ENOEXEC, 422, "unprocessable"},
        {EPROTO, 502, "bad_gateway"},     {ECONNREFUSED, 502, "bad_gateway"}, {EHOSTUNREACH, 502, "bad_gateway"},
        {ETIMEDOUT, 504, "timeout"},      {ENOTSUP, 501, "not_implemented"}, {ENOSYS, 501, "not_implemented"},
        /* processes by id: stdin closed or the process gone; no terminal;
         * as many processes as the sandbox may run; the sandbox stopped */
        {EPIPE, 409, "conflict"},         {ENOTTY, 409, "conflict"},      {EAGAIN, 429, "too_many_processes"},
        {ECONNRESET, 502, "bad_gateway"},
};

void api_errno_status(int code, unsigned *ret_status, const char **ret_code)
{
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
                if (map[i].err == code) {
                        *ret_status = map[i].status;
                        *ret_code = map[i].code;
                        return;
                }
        *ret_status = 500;
        *ret_code = "internal";
}

json_t *api_error_inner(const char *code, const char *message, const char *field)
{
        json_t *e = json_pack("{s:s, s:s}", "code", code, "message", message);
        if (!e) /* a message that is not UTF-8 (a path from the guest) */
                e = json_pack("{s:s, s:s}", "code", code, "message", "(the message is not valid UTF-8)");
        if (field)
                json_object_set_new(e, "field", json_string(field));
        return e;
}

json_t *api_error_body(const char *code, const char *message, const char *field)
{
        return json_pack("{s:o}", "error", api_error_inner(code, message, field));
}

void api_fail_set(struct api_fail *f, unsigned status, const char *code, const char *field, const char *fmt, ...)
{
        f->status = status;
        f->code = code;
        snprintf(f->field, sizeof(f->field), "%s", field ? field : "");
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->message, sizeof(f->message), fmt, ap);
        va_end(ap);
}

void api_fail_msb(struct api_fail *f, int ret, const struct msb_error *err)
{
        int e = err && err->code ? err->code : ret < 0 ? -ret : EIO;
        api_errno_status(e, &f->status, &f->code);
        f->field[0] = 0;
        snprintf(f->message, sizeof(f->message), "%s", err && err->message[0] ? err->message : errno_text(e));
}

void api_fail_decode(struct api_fail *f, const struct api_decode_err *de)
{
        api_fail_set(f, 400, "bad_request", de->field[0] ? de->field : NULL, "%s%s%s", de->field,
                     de->field[0] ? ": " : "", de->message);
}
