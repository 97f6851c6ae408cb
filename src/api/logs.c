/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /v1/sandboxes/{name}/logs: the main process's log as NDJSON, one
 * record a line, stdout and stderr kept apart:
 *
 *     {"time":"2026-12-01T05:15:03.123456789Z","stream":"stdout","data":"hi","partial":false}
 *
 * ?tail=N, ?since=T (as msb logs --since), ?stream=stdout|stderr, and
 * ?follow=true to wait for more until the sandbox stops.  The library's
 * reader (msb_sandbox_logs) runs in the stream's own thread (lineq.h).
 * GET /v1/events: every sandbox's lifecycle events (msb_sandbox_events).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "api/lineq.h"
#include "api/text.h"
#include "common/util.h"

#define TAIL_MAX 100000000ull

struct logs {
        char *name;
        char since[64];
        struct msb_logs_opts lo;
};

static int on_record(const struct msb_log_record *r, void *ud)
{
        return !lineq_put(ud, json_pack("{s:s, s:s, s:o, s:b}", "time", r->time, "stream",
                                        r->err ? "stderr" : "stdout", "data", text_utf8_json(r->data, r->len),
                                        "partial", r->partial));
}

static int logs_run(struct lineq *q, struct msb_ctx *ctx, int cancel_fd, void *arg, struct msb_error *err)
{
        struct logs *l = arg;
        l->lo.cancel_fd = cancel_fd;
        return msb_sandbox_logs(ctx, l->name, &l->lo, on_record, q, err);
}

static void logs_free(void *arg)
{
        struct logs *l = arg;
        free(l->name);
        free(l);
}

/* The query into l->lo; -1 after a 400. */
static int logs_query(struct api_req *r, struct logs *l)
{
        uint64_t tail = 0;
        bool has_tail = api_query(r, "tail") != NULL;
        if (api_query_uint(r, "tail", TAIL_MAX, &tail) < 0 || api_query_bool(r, "follow", &l->lo.follow) < 0)
                return -1;
        l->lo.tail = has_tail ? (long)tail : -1;
        const char *since = api_query(r, "since");
        if (since) {
                if (msb_logs_since_parse(since, l->since, sizeof(l->since)) < 0) {
                        api_reply_error(r, 400, "bad_request", "since",
                                        "since: expected 2026-01-31T10:00:00Z, a unix time, or a duration such as 30s, "
                                        "10m, 2h");
                        return -1;
                }
                l->lo.since = l->since;
        }
        const char *stream = api_query(r, "stream");
        if (stream && strcmp(stream, "stdout") && strcmp(stream, "stderr") && strcmp(stream, "both")) {
                api_reply_error(r, 400, "bad_request", "stream", "stream: expected stdout, stderr or both");
                return -1;
        }
        l->lo.no_stdout = stream && !strcmp(stream, "stderr");
        l->lo.no_stderr = stream && !strcmp(stream, "stdout");
        return 0;
}

void api_logs(struct api_req *r)
{
        struct logs *l = xcalloc(1, sizeof(*l));
        l->name = xstrdup(r->params[0]);
        char **paths;
        struct msb_error err = {0};
        int q;
        if (logs_query(r, l) < 0) {
                logs_free(l);
                return;
        }
        /* a missing sandbox is a 404 before the stream starts */
        if ((q = msb_sandbox_log_paths(r->ctx, l->name, &paths, &err)) < 0) {
                api_reply_msb_error(r, q, &err);
                logs_free(l);
                return;
        }
        strv_free(paths);
        lineq_start(r, l->name, logs_run, l, logs_free);
}

/* ---- events ---- */

static int on_event(const struct msb_sandbox_event *e, void *ud)
{
        json_t *j = json_pack("{s:s, s:s, s:I}", "type", e->type, "name", e->name, "time", (json_int_t)e->time);
        if (j && e->image)
                json_object_set_new(j, "image", text_utf8_json(e->image, strlen(e->image)));
        if (j && !strcmp(e->type, "exited"))
                json_object_set_new(j, "exit_code", json_integer(e->exit_code));
        return !lineq_put(ud, j);
}

static int events_run(struct lineq *q, struct msb_ctx *ctx, int cancel_fd, void *arg, struct msb_error *err)
{
        return msb_sandbox_events(ctx, cancel_fd, on_event, q, err);
}

void api_events(struct api_req *r)
{
        lineq_start(r, NULL, events_run, NULL, NULL);
}
