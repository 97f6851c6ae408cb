/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One error path for every binary (crun's make_error/error_wrap): a
 * message naming the input and the fix goes into a struct msb_error, and
 * the text of an errno is written in exactly one place, error.c.  The
 * library only fills errors; front ends and daemons print err.message, or
 * errno_msg() for a log line of their own.
 */
#pragma once

#include "msb-error.h"

/* Fill err (may be NULL) with the message; returns -code (code may be
 * given either sign; 0 counts as EINVAL). */
int msb_err(struct msb_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same, with ": <text of errno code>" after the message. */
int msb_err_errno(struct msb_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefix err's message with context, "context: old message", or when err
 * holds none yet, fill it with "context: <text of r>".  Returns r as a
 * negative errno. */
int msb_err_wrap(struct msb_error *err, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "<message>: <text of errno code>" by value, for a log line of a front
 * end or daemon: die("%s", errno_msg(errno, "cannot run %s", exe).s). */
struct errno_msg {
        char s[2048];
};
struct errno_msg errno_msg(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text of errno code alone, for a message that must carry it
 * elsewhere than at its end. */
const char *errno_text(int code);
