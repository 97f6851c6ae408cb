/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stream fed by a thread of its own (lineq.c): the thread runs a library
 * call that hands over JSON lines through a bounded queue (a slow client
 * holds back only that thread); when the client goes, the queue says so to
 * the next put and the call's cancel fd becomes readable.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "api/api.h"

struct lineq;
/* The thread's work; its return < 0 with err filled ends the stream with an error line. */
typedef int lineq_fn(struct lineq *q, struct msb_ctx *ctx, int cancel_fd, void *arg, struct msb_error *err);
/* Take the request's context and the stream slot of sandbox name (or none: NULL), run fn(arg) in a thread
 * and reply with the stream; free_arg(arg) at the end.  On a failure to start it replies an error. */
void lineq_start(struct api_req *r, const char *name, lineq_fn *fn, void *arg, void (*free_arg)(void *));
/* One line (steals j) for the client; false when the client went away: stop. */
bool lineq_put(struct lineq *q, json_t *j);
