/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The routes that are not a sandbox's: the version, images (list, pull
 * with progress as NDJSON, remove), the pool's status, and the server's
 * metrics in Prometheus' text format.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/text.h"
#include "common/util.h"

void api_version(struct api_req *r)
{
        api_reply_json(r, 200, json_pack("{s:s, s:s}", "version", MSB_VERSION, "api", "v1"));
}

void api_image_list(struct api_req *r)
{
        struct msb_image_info *v;
        size_t n;
        struct msb_error err = {0};
        int q = msb_image_list(r->ctx, &v, &n, &err);
        if (q < 0) {
                api_reply_msb_error(r, q, &err);
                return;
        }
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++) {
                json_t *e = json_pack("{s:o, s:s, s:I, s:o, s:b}", "name", text_utf8_json(v[i].name, strlen(v[i].name)),
                                      "id", v[i].id, "size", (json_int_t)v[i].size, "created",
                                      v[i].created > 0 ? json_integer(v[i].created) : json_null(), "system",
                                      v[i].system);
                json_array_append_new(a, e);
        }
        msb_image_list_free(v, n);
        api_reply_json(r, 200, json_pack("{s:o}", "images", a));
}

void api_image_remove(struct api_req *r)
{
        const char *ref = api_query(r, "ref");
        if (!ref || !*ref) {
                api_reply_error(r, 400, "bad_request", "ref", "ref: required, the image's name (e.g. ?ref=busybox)");
                return;
        }
        struct msb_error err = {0};
        int q = msb_image_remove(r->ctx, ref, &err);
        if (q < 0) {
                api_reply_msb_error(r, q, &err);
                return;
        }
        api_reply_empty(r, 204);
}

void api_pool_status(struct api_req *r)
{
        char *js = NULL;
        struct msb_error err = {0};
        int q = msb_pool_status(r->ctx, &js, &err);
        if (q < 0) {
                api_reply_msb_error(r, q, &err);
                return;
        }
        json_t *j = json_loads(js, 0, NULL);
        free(js);
        if (!j)
                j = json_array();
        api_reply_json(r, 200, json_pack("{s:o}", "pools", j));
}

/* ---- pull, streamed ---- */

struct pull {
        struct msb_ctx *ctx;
        char *ref;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        json_t *progress; /* the latest, not yet sent: older ones are dropped */
        json_t *end;      /* done or error */
        bool end_sent;
        struct text out;
        size_t off;
};

static void on_progress(const struct msb_layer_progress *l, size_t n, double secs, bool first, void *ud)
{
        struct pull *p = ud;
        static const char *const states[] = {"waiting", "downloading", "done", "failed", "present"};
        json_t *layers = json_array();
        for (size_t i = 0; i < n; i++)
                json_array_append_new(layers, json_pack("{s:s, s:I, s:I, s:s}", "digest", l[i].digest, "size",
                                                        (json_int_t)l[i].size, "done", (json_int_t)l[i].done,
                                                        "state", states[l[i].state]));
        json_t *j = json_pack("{s:s, s:f, s:o}", "type", "progress", "seconds", secs, "layers", layers);
        pthread_mutex_lock(&p->lock);
        json_decref(p->progress);
        p->progress = j;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
}

static void *pull_main(void *arg)
{
        struct pull *p = arg;
        char *name = NULL;
        struct msb_error err = {0};
        int q = msb_image_pull(p->ctx, p->ref, &name, &err);
        json_t *end;
        if (q < 0) {
                unsigned st;
                const char *code;
                api_errno_status(err.code ? err.code : -q, &st, &code);
                end = json_pack("{s:s, s:o}", "type", "error", "error", api_error_inner(code, err.message, NULL));
        } else {
                end = json_pack("{s:s, s:s}", "type", "done", "name", name);
        }
        free(name);
        pthread_mutex_lock(&p->lock);
        p->end = end;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

static ssize_t pull_produce(void *state, char *buf, size_t max)
{
        struct pull *p = state;
        if (p->off == p->out.len) {
                p->out.len = p->off = 0;
                if (p->end_sent)
                        return -1;
                pthread_mutex_lock(&p->lock);
                if (!p->progress && !p->end) {
                        struct timespec ts;
                        clock_gettime(CLOCK_REALTIME, &ts);
                        ts.tv_sec += 1;
                        pthread_cond_timedwait(&p->cond, &p->lock, &ts);
                }
                json_t *j = p->progress ? p->progress : p->end;
                if (j == p->progress)
                        p->progress = NULL;
                else if (j)
                        p->end_sent = true;
                pthread_mutex_unlock(&p->lock);
                if (!j)
                        return 0;
                char *s = json_dumps(j, JSON_COMPACT);
                if (j != p->end)
                        json_decref(j);
                text_put(&p->out, s, strlen(s));
                text_put(&p->out, "\n", 1);
                free(s);
        }
        size_t n = p->out.len - p->off < max ? p->out.len - p->off : max;
        memcpy(buf, p->out.data + p->off, n);
        p->off += n;
        return (ssize_t)n;
}

static void pull_done(void *state)
{
        struct pull *p = state;
        /* a client that went away does not stop the pull: it lands in the store */
        pthread_join(p->thread, NULL);
        json_decref(p->progress);
        json_decref(p->end);
        text_free(&p->out);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->cond);
        msb_ctx_free(p->ctx);
        free(p->ref);
        free(p);
}

static const struct api_stream_ops pull_ops = {pull_produce, pull_done};

void api_image_pull(struct api_req *r)
{
        static const struct api_field fields[] = {{"ref", api_read_string, 0, 1, 4096}};
        const char *ref = NULL;
        struct api_decode_err de = {0};
        if (api_decode_object(&de, "", r->body, fields, 1, &ref) < 0) {
                api_reply_decode_err(r, &de);
                return;
        }
        if (!ref) {
                api_reply_error(r, 400, "bad_request", "ref", "ref: required, e.g. \"alpine\" or \"host:5000/app:1\"");
                return;
        }
        struct pull *p = xcalloc(1, sizeof(*p));
        p->ref = xstrdup(ref);
        p->ctx = r->ctx;
        r->ctx = NULL;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->cond, NULL);
        msb_ctx_set_progress_fn(p->ctx, on_progress, p);
        if (pthread_create(&p->thread, NULL, pull_main, p) != 0) {
                api_reply_error(r, 503, "unavailable", NULL, "cannot start a thread now (too many at once): try again");
                pthread_mutex_destroy(&p->lock);
                pthread_cond_destroy(&p->cond);
                msb_ctx_free(p->ctx);
                free(p->ref);
                free(p);
                return;
        }
        api_reply_stream(r, "application/x-ndjson", &pull_ops, p);
}

/* ---- /metrics ---- */

void api_metrics(struct api_req *r)
{
        struct api_counters c;
        api_counters_get(&c);
        struct msb_sandbox_info *v = NULL;
        size_t n = 0;
        struct msb_error err = {0};
        size_t running = 0;
        if (msb_sandbox_list(r->ctx, &v, &n, &err) >= 0)
                for (size_t i = 0; i < n; i++)
                        running += !strcmp(v[i].status, "running");
        msb_sandbox_info_free(v, n);
        char *body = xasprintf("# HELP msb_api_requests_total Requests answered.\n"
                               "# TYPE msb_api_requests_total counter\n"
                               "msb_api_requests_total %llu\n"
                               "# HELP msb_api_errors_total Requests answered with an error, by class.\n"
                               "# TYPE msb_api_errors_total counter\n"
                               "msb_api_errors_total{class=\"4xx\"} %llu\n"
                               "msb_api_errors_total{class=\"5xx\"} %llu\n"
                               "# HELP msb_api_unauthorized_total Requests refused for want of a valid token or uid.\n"
                               "# TYPE msb_api_unauthorized_total counter\n"
                               "msb_api_unauthorized_total %llu\n"
                               "# HELP msb_api_streams Streaming responses open now.\n"
                               "# TYPE msb_api_streams gauge\n"
                               "msb_api_streams %llu\n"
                               "# HELP msb_sandboxes Named sandboxes of this user, and how many run.\n"
                               "# TYPE msb_sandboxes gauge\n"
                               "msb_sandboxes{status=\"all\"} %zu\n"
                               "msb_sandboxes{status=\"running\"} %zu\n",
                               (unsigned long long)c.requests, (unsigned long long)c.errors_4xx,
                               (unsigned long long)c.errors_5xx, (unsigned long long)c.unauthorized,
                               (unsigned long long)c.streams_open, n, running);
        api_reply_text(r, 200, "text/plain; version=0.0.4", body);
}
