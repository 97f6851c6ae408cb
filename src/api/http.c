/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libmicrohttpd's callbacks for msb serve: who may ask (the socket's peer
 * uid, a TCP request's bearer token, checked before anything else), the
 * body (a bounded JSON object, or an upload fed to its handler's thread
 * through a pipe), the reply each handler leaves, streamed bodies, the
 * streams-per-sandbox count and the counters /metrics shows.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/http.h"
#include "common/error.h"
#include "common/util.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct api_counters counters;

/* ---- one request's life ---- */

struct req_state {
        struct api_req r;
        const struct api_route *route;
        struct api_listener *l;
        struct MHD_Response *resp;
        unsigned status;
        char *body; /* a JSON route's body */
        size_t body_len;
        bool too_large;
        /* an upload: the handler runs in a thread reading up_fd's other end */
        pthread_t up_thread;
        bool up_started;
        int up_wfd, up_cut_wfd;
        uint64_t up_discarded;
        int64_t t0;
        char *line; /* "GET /v1/..." for the log */
};

static void count(unsigned status)
{
        pthread_mutex_lock(&lock);
        counters.requests++;
        if (status == 401)
                counters.unauthorized++;
        if (status >= 400 && status < 500)
                counters.errors_4xx++;
        else if (status >= 500)
                counters.errors_5xx++;
        pthread_mutex_unlock(&lock);
}

void api_counters_get(struct api_counters *c)
{
        pthread_mutex_lock(&lock);
        *c = counters;
        pthread_mutex_unlock(&lock);
}

static void set_reply(struct api_req *r, unsigned status, struct MHD_Response *resp)
{
        struct req_state *s = (struct req_state *)r;
        if (r->replied) { /* a handler's bug: the first reply stands */
                MHD_destroy_response(resp);
                return;
        }
        r->replied = true;
        s->status = status;
        s->resp = resp;
}

void api_reply_json(struct api_req *r, unsigned status, json_t *body)
{
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (!text)
                abort(); /* out of memory: msb's policy (docs/architecture.md) */
        size_t n = strlen(text);
        text = realloc(text, n + 2);
        if (!text)
                abort();
        text[n] = '\n';
        text[n + 1] = 0;
        struct MHD_Response *resp = MHD_create_response_from_buffer(n + 1, text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        set_reply(r, status, resp);
}

void api_reply_text(struct api_req *r, unsigned status, const char *content_type, char *body)
{
        struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        set_reply(r, status, resp);
}

void api_reply_empty(struct api_req *r, unsigned status)
{
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        set_reply(r, status, resp);
}

void api_reply_error(struct api_req *r, unsigned status, const char *code, const char *field, const char *fmt, ...)
{
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        api_reply_json(r, status, api_error_body(code, msg, field));
}

void api_reply_fail(struct api_req *r, const struct api_fail *f)
{
        api_reply_json(r, f->status, api_error_body(f->code, f->message, f->field[0] ? f->field : NULL));
}

void api_reply_msb_error(struct api_req *r, int ret, const struct msb_error *err)
{
        int e = err && err->code ? err->code : ret < 0 ? -ret : EIO;
        unsigned status;
        const char *code;
        api_errno_status(e, &status, &code);
        const char *msg = err && err->message[0] ? err->message : errno_text(e);
        api_reply_json(r, status, api_error_body(code, msg, NULL));
}

/* ---- streams ---- */

struct stream {
        const struct api_stream_ops *ops;
        void *state;
        bool ended;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
        struct stream *st = cls;
        if (st->ended)
                return MHD_CONTENT_READER_END_OF_STREAM;
        ssize_t n = st->ops->produce(st->state, buf, max);
        if (n < 0) {
                st->ended = true;
                return MHD_CONTENT_READER_END_OF_STREAM;
        }
        return n;
}

static void stream_free(void *cls)
{
        struct stream *st = cls;
        st->ops->done(st->state);
        pthread_mutex_lock(&lock);
        counters.streams_open--;
        pthread_mutex_unlock(&lock);
        free(st);
}

void api_reply_stream(struct api_req *r, const char *content_type, const struct api_stream_ops *ops, void *state)
{
        struct stream *st = xcalloc(1, sizeof(*st));
        st->ops = ops;
        st->state = state;
        pthread_mutex_lock(&lock);
        counters.streams_open++;
        pthread_mutex_unlock(&lock);
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_read, st,
                                                                      stream_free);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        set_reply(r, 200, resp);
}

bool api_client_gone(const struct api_req *r)
{
        if (r->client_fd < 0)
                return false;
        struct pollfd p = {.fd = r->client_fd, .events = POLLRDHUP};
        return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Streams per sandbox: a small table, most servers see few sandboxes. */
struct slot {
        char *name;
        unsigned n;
};
static struct slot *slots;
static size_t nslots;

bool api_stream_slot_take(struct api_req *r, const char *name)
{
        pthread_mutex_lock(&lock);
        struct slot *free_slot = NULL;
        for (size_t i = 0; i < nslots; i++) {
                if (slots[i].name && !strcmp(slots[i].name, name)) {
                        if (slots[i].n >= API_STREAMS_PER_SANDBOX) {
                                pthread_mutex_unlock(&lock);
                                api_reply_error(r, 429, "too_many_streams", NULL,
                                                "sandbox '%s' already has %u streams open: close one first", name,
                                                API_STREAMS_PER_SANDBOX);
                                return false;
                        }
                        slots[i].n++;
                        pthread_mutex_unlock(&lock);
                        return true;
                }
                if (!slots[i].name && !free_slot)
                        free_slot = &slots[i];
        }
        if (!free_slot) {
                slots = xrealloc(slots, (nslots + 1) * sizeof(*slots));
                free_slot = &slots[nslots++];
        }
        free_slot->name = xstrdup(name);
        free_slot->n = 1;
        pthread_mutex_unlock(&lock);
        return true;
}

void api_stream_slot_give(const char *name)
{
        pthread_mutex_lock(&lock);
        for (size_t i = 0; i < nslots; i++)
                if (slots[i].name && !strcmp(slots[i].name, name)) {
                        if (--slots[i].n == 0) {
                                free(slots[i].name);
                                slots[i].name = NULL;
                        }
                        break;
                }
        pthread_mutex_unlock(&lock);
}

/* ---- queries ---- */

const char *api_query(const struct api_req *r, const char *key)
{
        return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

void api_reply_decode_err(struct api_req *r, const struct api_decode_err *de)
{
        api_reply_error(r, 400, "bad_request", de->field[0] ? de->field : NULL, "%s%s%s", de->field,
                        de->field[0] ? ": " : "", de->message);
}

int api_query_uint(struct api_req *r, const char *key, uint64_t max, uint64_t *ret)
{
        const char *v = api_query(r, key);
        if (!v)
                return 0;
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (!*v || *v == '-' || *end || errno || x > max) {
                api_reply_error(r, 400, "bad_request", key, "%s: expected a number from 0 to %llu", key,
                                (unsigned long long)max);
                return -1;
        }
        *ret = x;
        return 0;
}

int api_query_bool(struct api_req *r, const char *key, bool *ret)
{
        const char *v = api_query(r, key);
        if (!v)
                return 0;
        if (!strcmp(v, "true") || !strcmp(v, "1") || !*v)
                *ret = true;
        else if (!strcmp(v, "false") || !strcmp(v, "0"))
                *ret = false;
        else {
                api_reply_error(r, 400, "bad_request", key, "%s: expected true or false", key);
                return -1;
        }
        return 0;
}

/* ---- who may ask ---- */

/* The unix socket: only the server's own uid. */
static bool peer_ok(int fd)
{
        struct ucred cr;
        socklen_t len = sizeof(cr);
        return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.uid == getuid();
}

/* Constant time in the token's length: every byte is compared. */
static bool token_equal(const char *a, size_t alen, const char *b, size_t blen)
{
        unsigned char d = alen != blen;
        for (size_t i = 0; i < blen; i++)
                d |= (unsigned char)(i < alen ? a[i] : 0) ^ (unsigned char)b[i];
        return d == 0;
}

static bool token_ok(struct MHD_Connection *c, const struct api_listener *l)
{
        const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!h || strncasecmp(h, "Bearer ", 7))
                return false;
        h += 7;
        while (*h == ' ')
                h++;
        size_t n = strlen(h);
        while (n > 0 && h[n - 1] == ' ')
                n--;
        return token_equal(h, n, l->token, strlen(l->token));
}

/* ---- the access handler ---- */

static void *upload_main(void *arg)
{
        struct req_state *s = arg;
        s->route->fn(&s->r);
        close(s->r.upload_fd);
        s->r.upload_fd = -1;
        return NULL;
}

/* The request's own context: the library's lines to our log, signals left to serve.c. */
static int new_ctx(struct req_state *s)
{
        struct msb_error err = {0};
        if (msb_ctx_new(&s->r.ctx, &err) < 0) {
                api_reply_msb_error(&s->r, -EIO, &err);
                return -1;
        }
        msb_ctx_set_log(s->r.ctx, MSB_LOG_WARN, api_log_line, NULL);
        msb_ctx_set_no_signals(s->r.ctx, true);
        return 0;
}

static void run_handler(struct req_state *s)
{
        if (new_ctx(s) < 0)
                return;
        s->route->fn(&s->r);
        if (!s->r.replied)
                api_reply_error(&s->r, 500, "internal", NULL, "the handler for %s gave no answer", s->r.path);
}

static int body_json(struct req_state *s)
{
        if (s->too_large) {
                api_reply_error(&s->r, 413, "too_large", NULL, "the request body is over %u bytes", API_BODY_MAX);
                return -1;
        }
        if (s->body_len == 0) {
                s->r.body = json_object();
                return 0;
        }
        json_error_t je;
        s->r.body = json_loadb(s->body, s->body_len, JSON_REJECT_DUPLICATES, &je);
        if (!s->r.body) {
                api_reply_error(&s->r, 400, "bad_request", NULL, "the body is not JSON: %s (line %d, column %d)",
                                je.text, je.line, je.column);
                return -1;
        }
        if (!json_is_object(s->r.body)) {
                api_reply_error(&s->r, 400, "bad_request", NULL, "the body must be a JSON object");
                return -1;
        }
        return 0;
}

static enum MHD_Result queue(struct MHD_Connection *c, struct req_state *s)
{
        if (!s->resp)
                api_reply_error(&s->r, 500, "internal", NULL, "no answer");
        count(s->status);
        enum MHD_Result q = MHD_queue_response(c, s->status, s->resp);
        MHD_destroy_response(s->resp);
        s->resp = NULL;
        return q;
}

/* "METHOD URL" for the log, bytes outside printable ASCII as \xHH: a
 * client's %0a cannot forge a line of the log, nor a byte mangle it. */
static char *log_line_of(const char *method, const char *url)
{
        size_t n = strlen(method) + 1 + 4 * strlen(url) + 1, o = 0;
        char *s = xcalloc(1, n);
        o += (size_t)snprintf(s, n, "%s ", method);
        for (const unsigned char *p = (const unsigned char *)url; *p && o + 5 <= n; p++) {
                if (*p >= 0x20 && *p < 0x7f && *p != '\\')
                        s[o++] = (char)*p;
                else
                        o += (size_t)snprintf(s + o, n - o, "\\x%02x", *p);
        }
        return s;
}

/* The first call, once the headers are in: check who asks, find the route. */
static enum MHD_Result first_call(struct api_listener *l, struct MHD_Connection *c, const char *url,
                                  const char *method, void **con_cls)
{
        struct req_state *s = xcalloc(1, sizeof(*s));
        s->l = l;
        s->r.conn = c;
        s->r.method = method;
        s->r.client_fd = -1;
        s->r.upload_fd = s->r.upload_cut_fd = -1;
        s->up_wfd = s->up_cut_wfd = -1;
        s->t0 = api_now_ms();
        s->line = log_line_of(method, url);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci)
                s->r.client_fd = ci->connect_fd;
        *con_cls = s;
        /* url is the path; libmicrohttpd keeps the query apart */
        s->r.path = url;
        if (l->unix_socket ? (s->r.client_fd < 0 || !peer_ok(s->r.client_fd)) : !token_ok(c, l)) {
                api_reply_error(&s->r, 401, "unauthorized", NULL,
                                l->unix_socket ? "this socket answers only its owner's uid"
                                               : "a valid bearer token is required (Authorization: Bearer TOKEN, "
                                                 "the token in msb serve's --token-file)");
                if (!l->unix_socket)
                        MHD_add_response_header(s->resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
                return MHD_YES;
        }
        /* who holds the token may idle as long as the owner does */
        if (!l->unix_socket)
                MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)API_IDLE_S);
        bool known = false;
        s->route = api_route_find(method, url, s->r.params, &s->r.nparams, &known);
        if (!s->route) {
                if (known)
                        api_reply_error(&s->r, 405, "method_not_allowed", NULL, "%s is not a method of %s", method,
                                        url);
                else
                        api_reply_error(&s->r, 404, "not_found", NULL, "no route %s %s (docs/api/openapi.yaml lists them)",
                                        method, url);
        }
        return MHD_YES;
}

static void upload_cut_close(struct req_state *s)
{
        if (s->up_cut_wfd >= 0)
                close(s->up_cut_wfd);
        if (s->r.upload_cut_fd >= 0)
                close(s->r.upload_cut_fd);
        s->up_cut_wfd = s->r.upload_cut_fd = -1;
}

static int upload_start(struct req_state *s)
{
        int p[2] = {-1, -1}, c[2] = {-1, -1};
        if (pipe2(p, O_CLOEXEC) < 0 || pipe2(c, O_CLOEXEC) < 0) {
                api_reply_error(&s->r, 500, "internal", NULL, "%s", errno_msg(errno, "pipe").s);
                for (int i = 0; i < 2; i++) {
                        if (p[i] >= 0)
                                close(p[i]);
                        if (c[i] >= 0)
                                close(c[i]);
                }
                return -1;
        }
        if (new_ctx(s) < 0) {
                close(p[0]);
                close(p[1]);
                close(c[0]);
                close(c[1]);
                return -1;
        }
        s->r.upload_fd = p[0];
        s->up_wfd = p[1];
        s->r.upload_cut_fd = c[0];
        s->up_cut_wfd = c[1];
        if (pthread_create(&s->up_thread, NULL, upload_main, s) != 0) {
                close(p[0]);
                close(p[1]);
                upload_cut_close(s);
                s->r.upload_fd = s->up_wfd = -1;
                api_reply_error(&s->r, 500, "internal", NULL, "cannot start a thread for the upload");
                return -1;
        }
        s->up_started = true;
        return 0;
}

/* An upload's chunk into the handler's pipe; once the handler stopped
 * reading (it replied), the rest is read and dropped, up to a bound. */
static enum MHD_Result upload_chunk(struct req_state *s, const char *data, size_t n)
{
        if (s->up_wfd >= 0 && write_all(s->up_wfd, data, n) < 0) {
                close(s->up_wfd);
                s->up_wfd = -1;
        }
        if (s->up_wfd < 0) {
                s->up_discarded += n;
                if (s->up_discarded > API_BODY_MAX)
                        return MHD_NO;
        }
        return MHD_YES;
}

static void upload_end(struct req_state *s)
{
        if (s->up_wfd >= 0)
                close(s->up_wfd);
        s->up_wfd = -1;
        pthread_join(s->up_thread, NULL);
        upload_cut_close(s);
        s->up_started = false;
        if (!s->r.replied)
                api_reply_error(&s->r, 500, "internal", NULL, "the handler for %s gave no answer", s->r.path);
}

enum MHD_Result api_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                           const char *version, const char *data, size_t *data_size, void **con_cls)
{
        struct req_state *s = *con_cls;
        if (!s)
                return first_call(cls, c, url, method, con_cls);
        if (s->r.replied && !s->up_started) {
                /* answered before the body (401, 404, 405, 413): drop what comes, bounded */
                if (*data_size) {
                        s->up_discarded += *data_size;
                        *data_size = 0;
                        return s->up_discarded > API_BODY_MAX ? MHD_NO : MHD_YES;
                }
                return queue(c, s);
        }
        if (s->route->flags & API_ROUTE_UPLOAD) {
                if (!s->up_started && !s->r.replied && upload_start(s) < 0)
                        return MHD_YES;
                if (*data_size) {
                        enum MHD_Result q = upload_chunk(s, data, *data_size);
                        *data_size = 0;
                        return q;
                }
                upload_end(s);
                return queue(c, s);
        }
        if (*data_size) {
                if (s->body_len + *data_size > API_BODY_MAX) {
                        /* answered at once; the rest is dropped, bounded, above */
                        s->too_large = true;
                        *data_size = 0;
                        body_json(s);
                        return MHD_YES;
                } else {
                        s->body = xrealloc(s->body, s->body_len + *data_size);
                        memcpy(s->body + s->body_len, data, *data_size);
                        s->body_len += *data_size;
                }
                *data_size = 0;
                return MHD_YES;
        }
        if (!(s->route->flags & API_ROUTE_JSON) && s->body_len) {
                api_reply_error(&s->r, 400, "bad_request", NULL, "%s %s takes no body", method, s->r.path);
                return queue(c, s);
        }
        if (!(s->route->flags & API_ROUTE_JSON) || body_json(s) == 0)
                run_handler(s);
        return queue(c, s);
}

void api_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
        struct req_state *s = *con_cls;
        if (!s)
                return;
        if (s->up_started) { /* the client went away mid-upload: cut, then the end */
                if (s->up_cut_wfd >= 0)
                        close(s->up_cut_wfd);
                s->up_cut_wfd = -1;
                if (s->up_wfd >= 0)
                        close(s->up_wfd);
                s->up_wfd = -1;
                pthread_join(s->up_thread, NULL);
                upload_cut_close(s);
        }
        api_log("%s %u%s (%lld ms)", s->line, s->status, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (cut)",
                (long long)(api_now_ms() - s->t0));
        if (s->resp)
                MHD_destroy_response(s->resp);
        for (size_t i = 0; i < s->r.nparams; i++)
                free(s->r.params[i]);
        json_decref(s->r.body);
        msb_ctx_free(s->r.ctx);
        free(s->body);
        free(s->line);
        free(s);
        *con_cls = NULL;
}
