/* SPDX-License-Identifier: Apache-2.0 */
/* A stream of NDJSON lines produced by a thread of its own, through a bounded queue (lineq.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/lineq.h"
#include "api/text.h"
#include "common/error.h"
#include "common/util.h"

struct lineq {
        struct msb_ctx *ctx;
        char *name; /* the sandbox whose stream slot this holds, or NULL */
        lineq_fn *fn;
        void *arg;
        void (*free_arg)(void *);
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct text q;
        size_t off;
        bool ended, gone;
        int cancel_r, cancel_w;
        int client_fd; /* polled for a hang-up while there is nothing to send */
};

bool lineq_put(struct lineq *q, json_t *j)
{
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!s)
                return true; /* not JSON-able (not UTF-8): skipped */
        pthread_mutex_lock(&q->lock);
        while (!q->gone && q->q.len - q->off > API_STREAM_QUEUE_MAX)
                pthread_cond_wait(&q->cond, &q->lock);
        bool gone = q->gone;
        if (!gone) {
                text_put(&q->q, s, strlen(s));
                text_put(&q->q, "\n", 1);
                pthread_cond_broadcast(&q->cond);
        }
        pthread_mutex_unlock(&q->lock);
        free(s);
        return !gone;
}

static void *lineq_main(void *arg)
{
        struct lineq *q = arg;
        struct msb_error err = {0};
        int r = q->fn(q, q->ctx, q->cancel_r, q->arg, &err);
        if (r < 0) {
                unsigned st;
                const char *code;
                api_errno_status(err.code ? err.code : -r, &st, &code);
                lineq_put(q, json_pack("{s:s, s:o}", "type", "error", "error", api_error_inner(code, err.message, NULL)));
        }
        pthread_mutex_lock(&q->lock);
        q->ended = true;
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->lock);
        return NULL;
}

static ssize_t lineq_produce(void *state, char *buf, size_t max)
{
        struct lineq *q = state;
        pthread_mutex_lock(&q->lock);
        if (q->off == q->q.len && !q->ended) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                pthread_cond_timedwait(&q->cond, &q->lock, &ts);
        }
        ssize_t n = 0;
        if (q->off < q->q.len) {
                size_t k = q->q.len - q->off < max ? q->q.len - q->off : max;
                memcpy(buf, q->q.data + q->off, k);
                q->off += k;
                if (q->off == q->q.len)
                        q->q.len = q->off = 0;
                pthread_cond_broadcast(&q->cond);
                n = (ssize_t)k;
        } else if (q->ended) {
                n = -1;
        }
        pthread_mutex_unlock(&q->lock);
        /* a quiet stream (a watch, a follow) learns of a client gone only
         * here: nothing written would tell */
        struct pollfd p = {.fd = q->client_fd, .events = POLLRDHUP};
        if (n == 0 && q->client_fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
                n = -1;
        return n;
}

static void lineq_free(struct lineq *q)
{
        if (q->name)
                api_stream_slot_give(q->name);
        if (q->free_arg)
                q->free_arg(q->arg);
        pthread_mutex_destroy(&q->lock);
        pthread_cond_destroy(&q->cond);
        text_free(&q->q);
        msb_ctx_free(q->ctx);
        free(q->name);
        if (q->cancel_r >= 0)
                close(q->cancel_r);
        if (q->cancel_w >= 0)
                close(q->cancel_w);
        free(q);
}

static void lineq_done(void *state)
{
        struct lineq *q = state;
        pthread_mutex_lock(&q->lock);
        q->gone = true;
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->lock);
        close(q->cancel_w); /* a follow or a watch ends */
        q->cancel_w = -1;
        pthread_join(q->thread, NULL);
        lineq_free(q);
}

static const struct api_stream_ops lineq_ops = {lineq_produce, lineq_done};

void lineq_start(struct api_req *r, const char *name, lineq_fn *fn, void *arg, void (*free_arg)(void *))
{
        if (name && !api_stream_slot_take(r, name)) {
                if (free_arg)
                        free_arg(arg);
                return;
        }
        struct lineq *q = xcalloc(1, sizeof(*q));
        q->name = name ? xstrdup(name) : NULL;
        q->fn = fn;
        q->arg = arg;
        q->free_arg = free_arg;
        q->cancel_r = q->cancel_w = -1;
        q->client_fd = r->client_fd;
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->cond, NULL);
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
                api_reply_error(r, 500, "internal", NULL, "%s", errno_msg(errno, "pipe").s);
                lineq_free(q);
                return;
        }
        q->cancel_r = p[0];
        q->cancel_w = p[1];
        q->ctx = r->ctx; /* the thread outlives the handler */
        r->ctx = NULL;
        if (pthread_create(&q->thread, NULL, lineq_main, q) != 0) {
                api_reply_error(r, 503, "unavailable", NULL, "cannot start a thread now (too many at once): try again");
                lineq_free(q);
                return;
        }
        api_reply_stream(r, "application/x-ndjson", &lineq_ops, q);
}
