/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /v1/sandboxes/{name}/logs: the main process's log as NDJSON, one
 * record a line, stdout and stderr kept apart:
 *
 *     {"time":"2026-12-01T05:15:03.123456789Z","stream":"stdout","data":"hi","partial":false}
 *
 * ?tail=N, ?since=T (as msb logs --since), ?stream=stdout|stderr, and
 * ?follow=true to wait for more until the sandbox stops.  The library's
 * reader (msb_sandbox_logs) runs in a thread of its own and hands lines
 * over through a bounded queue: a slow client holds back only its reader;
 * one that goes away ends the follow through its cancel pipe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/text.h"
#include "common/error.h"
#include "common/util.h"

#define TAIL_MAX 100000000ull

struct logs {
        struct msb_ctx *ctx;
        char *name;
        char since[64];
        struct msb_logs_opts lo;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond; /* the queue changed */
        struct text q;       /* whole lines, waiting for the client */
        size_t qoff;
        bool ended, gone, slot;
        int cancel_r, cancel_w;
};

static int on_record(const struct msb_log_record *r, void *ud)
{
        struct logs *l = ud;
        json_t *j = json_pack("{s:s, s:s, s:o, s:b}", "time", r->time, "stream", r->err ? "stderr" : "stdout", "data",
                              text_utf8_json(r->data, r->len), "partial", r->partial);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!s)
                return 0; /* a stamp that is not UTF-8: a file cut short; skipped */
        pthread_mutex_lock(&l->lock);
        while (!l->gone && l->q.len - l->qoff > API_STREAM_QUEUE_MAX)
                pthread_cond_wait(&l->cond, &l->lock);
        bool gone = l->gone;
        if (!gone) {
                text_put(&l->q, s, strlen(s));
                text_put(&l->q, "\n", 1);
                pthread_cond_broadcast(&l->cond);
        }
        pthread_mutex_unlock(&l->lock);
        free(s);
        return gone;
}

static void *logs_main(void *arg)
{
        struct logs *l = arg;
        struct msb_error err = {0};
        int r = msb_sandbox_logs(l->ctx, l->name, &l->lo, on_record, l, &err);
        pthread_mutex_lock(&l->lock);
        if (r < 0 && !l->gone) { /* it went between the check and the read */
                unsigned st;
                const char *code;
                api_errno_status(err.code ? err.code : -r, &st, &code);
                json_t *j = json_pack("{s:s, s:o}", "type", "error", "error", api_error_inner(code, err.message, NULL));
                char *s = json_dumps(j, JSON_COMPACT);
                json_decref(j);
                if (s) {
                        text_put(&l->q, s, strlen(s));
                        text_put(&l->q, "\n", 1);
                        free(s);
                }
        }
        l->ended = true;
        pthread_cond_broadcast(&l->cond);
        pthread_mutex_unlock(&l->lock);
        return NULL;
}

static ssize_t logs_produce(void *state, char *buf, size_t max)
{
        struct logs *l = state;
        pthread_mutex_lock(&l->lock);
        if (l->qoff == l->q.len && !l->ended) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                pthread_cond_timedwait(&l->cond, &l->lock, &ts);
        }
        ssize_t n = 0;
        if (l->qoff < l->q.len) {
                size_t k = l->q.len - l->qoff < max ? l->q.len - l->qoff : max;
                memcpy(buf, l->q.data + l->qoff, k);
                l->qoff += k;
                if (l->qoff == l->q.len)
                        l->q.len = l->qoff = 0;
                pthread_cond_broadcast(&l->cond);
                n = (ssize_t)k;
        } else if (l->ended) {
                n = -1;
        }
        pthread_mutex_unlock(&l->lock);
        return n;
}

static void logs_free(struct logs *l)
{
        if (l->slot)
                api_stream_slot_give(l->name);
        pthread_mutex_destroy(&l->lock);
        pthread_cond_destroy(&l->cond);
        text_free(&l->q);
        msb_ctx_free(l->ctx);
        free(l->name);
        free(l);
}

static void logs_done(void *state)
{
        struct logs *l = state;
        pthread_mutex_lock(&l->lock);
        l->gone = true;
        pthread_cond_broadcast(&l->cond);
        pthread_mutex_unlock(&l->lock);
        close(l->cancel_w); /* a follow ends */
        pthread_join(l->thread, NULL);
        close(l->cancel_r);
        logs_free(l);
}

static const struct api_stream_ops logs_ops = {logs_produce, logs_done};

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
        pthread_mutex_init(&l->lock, NULL);
        pthread_cond_init(&l->cond, NULL);
        l->cancel_r = l->cancel_w = -1;
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
        if (!api_stream_slot_take(r, l->name)) {
                logs_free(l);
                return;
        }
        l->slot = true;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
                api_reply_error(r, 500, "internal", NULL, "%s", errno_msg(errno, "pipe").s);
                logs_free(l);
                return;
        }
        l->cancel_r = p[0];
        l->cancel_w = p[1];
        l->lo.cancel_fd = p[0];
        l->ctx = r->ctx; /* the reader outlives the handler */
        r->ctx = NULL;
        if (pthread_create(&l->thread, NULL, logs_main, l) != 0)
                abort();
        api_reply_stream(r, "application/x-ndjson", &logs_ops, l);
}
