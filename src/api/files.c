/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Files in a running sandbox by guest path (msb_sandbox_file_*):
 *
 *   GET  .../files?path=&offset=&length=    the bytes, streamed (application/octet-stream)
 *   PUT  .../files?path=&mode=&parents=     the body, streamed into the file (landed by rename)
 *   GET  .../files/stat?path=               one entry
 *   GET  .../files/list?path=&depth=&max=   entries, depth levels down
 *   POST .../files/mkdir   {path, mode, parents}
 *   POST .../files/remove  {path, recursive}
 *   POST .../files/rename  {from, to}
 *   GET  .../files/watch?path=&recursive=   changes as NDJSON until the client goes
 *
 * Each takes the guest user as ?user= or "user" (default: the sandbox's).
 * A read runs in a thread of its own writing into a pipe the response
 * reads, an upload reads the body's pipe (a client gone mid-body cancels
 * it: the file stays as it was), a watch is a lineq stream.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/lineq.h"
#include "api/text.h"
#include "common/error.h"
#include "common/util.h"

#define LIST_MAX_DEFAULT 10000u

static json_t *str_json(const char *s)
{
        return text_utf8_json(s, strlen(s));
}

static json_t *info_json(const struct msb_file_info *fi)
{
        char perm[8], when[48];
        snprintf(perm, sizeof(perm), "%04o", fi->mode & 07777);
        time_t secs = (time_t)(fi->mtime_ns / 1000000000 - (fi->mtime_ns % 1000000000 < 0));
        long ns = (long)(fi->mtime_ns - (int64_t)secs * 1000000000);
        struct tm tm;
        if (gmtime_r(&secs, &tm))
                snprintf(when + strftime(when, 30, "%Y-%m-%dT%H:%M:%S", &tm), 20, ".%09ldZ", ns);
        else
                snprintf(when, sizeof(when), "1970-01-01T00:00:00Z");
        return json_pack("{s:o, s:o, s:s, s:I, s:i, s:s, s:I, s:I, s:I, s:s, s:o}", "path", str_json(fi->path), "name",
                         str_json(fi->name), "type", fi->type, "size", (json_int_t)fi->size, "mode", (int)fi->mode,
                         "permissions", perm, "uid", (json_int_t)fi->uid, "gid", (json_int_t)fi->gid, "mtime_ns",
                         (json_int_t)fi->mtime_ns, "mtime", when, "link_target",
                         fi->link_target ? str_json(fi->link_target) : json_null());
}

/* ?path= (required), ?user= into fo; NULL after a 400. */
static const char *query_common(struct api_req *r, const char *key, struct msb_file_opts *fo)
{
        const char *p = api_query(r, key);
        if (!p || !*p) {
                api_reply_error(r, 400, "bad_request", key, "%s: required, an absolute guest path", key);
                return NULL;
        }
        fo->user = api_query(r, "user");
        return p;
}

/* ?mode= in octal, up to 07777; -1 after a 400. */
static int query_mode(struct api_req *r, unsigned *ret)
{
        const char *m = api_query(r, "mode");
        if (!m)
                return 0;
        char *end;
        errno = 0;
        unsigned long v = strtoul(m, &end, 8);
        if (!*m || *end || errno || v > 07777 || *m == '-' || *m == '+' || *m == ' ') {
                api_reply_error(r, 400, "bad_request", "mode", "mode: expected octal digits, at most 7777");
                return -1;
        }
        *ret = (unsigned)v;
        return 0;
}

/* ---- stat, list ---- */

void api_file_stat(struct api_req *r)
{
        struct msb_file_opts fo = {0};
        const char *path = query_common(r, "path", &fo);
        if (!path)
                return;
        struct msb_error err = {0};
        struct msb_file_info *fi;
        int q = msb_sandbox_file_stat(r->ctx, r->params[0], &fo, path, &fi, &err);
        if (q < 0)
                return api_reply_msb_error(r, q, &err);
        api_reply_json(r, 200, info_json(fi));
        msb_file_info_free(fi, 1);
}

void api_file_list(struct api_req *r)
{
        struct msb_file_opts fo = {0};
        const char *path = query_common(r, "path", &fo);
        uint64_t depth = 1, max = LIST_MAX_DEFAULT;
        if (!path || api_query_uint(r, "depth", MSB_FILE_LIST_MAX_DEPTH, &depth) < 0 ||
            api_query_uint(r, "max", MSB_FILE_LIST_MAX, &max) < 0)
                return;
        if (depth < 1 || max < 1)
                return api_reply_error(r, 400, "bad_request", depth < 1 ? "depth" : "max", "%s: at least 1",
                                       depth < 1 ? "depth" : "max");
        struct msb_error err = {0};
        struct msb_file_info *v;
        size_t n;
        bool cut;
        int q = msb_sandbox_file_list(r->ctx, r->params[0], &fo, path, (unsigned)depth, (size_t)max, &v, &n, &cut, &err);
        if (q < 0)
                return api_reply_msb_error(r, q, &err);
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
                json_array_append_new(a, info_json(&v[i]));
        msb_file_info_free(v, n);
        api_reply_json(r, 200, json_pack("{s:o, s:b}", "entries", a, "truncated", cut));
}

/* ---- mkdir, remove, rename ---- */

struct change {
        const char *path, *to, *user;
        uint64_t mode;
        struct api_opt_bool flag; /* parents, recursive */
};

/* The body into c with fields, the first one (and "to" if asked)
 * required; false after a 400. */
static bool change_body(struct api_req *r, const struct api_field *fields, size_t n, bool to, struct change *c)
{
        struct api_decode_err de = {0};
        if (api_decode_object(&de, "", r->body, fields, n, c) < 0) {
                api_reply_decode_err(r, &de);
                return false;
        }
        const char *missing = !c->path ? fields[0].name : to && !c->to ? "to" : NULL;
        if (missing) {
                api_reply_error(r, 400, "bad_request", missing, "%s: required, an absolute guest path", missing);
                return false;
        }
        return true;
}

static void change_done(struct api_req *r, int q, const struct msb_error *err)
{
        if (q < 0)
                return api_reply_msb_error(r, q, err);
        api_reply_empty(r, 204);
}

#define F(name, fn, member, min, max) {name, fn, offsetof(struct change, member), min, max}

void api_file_mkdir(struct api_req *r)
{
        static const struct api_field fields[] = {
                F("path", api_read_string, path, 1, MSB_FILE_PATH_MAX),
                F("mode", api_read_uint, mode, 0, 07777),
                F("parents", api_read_bool, flag, 0, 0),
                F("user", api_read_string, user, 1, 256),
        };
        struct change c = {.mode = 0755};
        if (!change_body(r, fields, ARRAY_SIZE(fields), false, &c))
                return;
        struct msb_file_opts fo = {.user = c.user};
        struct msb_error err = {0};
        change_done(r, msb_sandbox_file_mkdir(r->ctx, r->params[0], &fo, c.path, (unsigned)c.mode, c.flag.value, &err),
                    &err);
}

void api_file_remove(struct api_req *r)
{
        static const struct api_field fields[] = {
                F("path", api_read_string, path, 1, MSB_FILE_PATH_MAX),
                F("recursive", api_read_bool, flag, 0, 0),
                F("user", api_read_string, user, 1, 256),
        };
        struct change c = {0};
        if (!change_body(r, fields, ARRAY_SIZE(fields), false, &c))
                return;
        struct msb_file_opts fo = {.user = c.user};
        struct msb_error err = {0};
        change_done(r, msb_sandbox_file_remove(r->ctx, r->params[0], &fo, c.path, c.flag.value, &err), &err);
}

void api_file_rename(struct api_req *r)
{
        static const struct api_field fields[] = {
                F("from", api_read_string, path, 1, MSB_FILE_PATH_MAX),
                F("to", api_read_string, to, 1, MSB_FILE_PATH_MAX),
                F("user", api_read_string, user, 1, 256),
        };
        struct change c = {0};
        if (!change_body(r, fields, ARRAY_SIZE(fields), true, &c))
                return;
        struct msb_file_opts fo = {.user = c.user};
        struct msb_error err = {0};
        change_done(r, msb_sandbox_file_rename(r->ctx, r->params[0], &fo, c.path, c.to, &err), &err);
}

/* ---- read ---- */

struct reading {
        struct msb_ctx *ctx;
        char *name, *path, *user;
        uint64_t offset, length;
        int rfd, wfd, cancel_r, cancel_w, client_fd;
        pthread_t thread;
        int ret;
        struct msb_error err;
        char first[4096];
        size_t first_len, first_off;
};

static void *read_main(void *arg)
{
        struct reading *g = arg;
        struct msb_file_opts fo = {.user = g->user, .cancel_fd = g->cancel_r};
        g->ret = msb_sandbox_file_read(g->ctx, g->name, &fo, g->path, g->offset, g->length, g->wfd, NULL, &g->err);
        close(g->wfd);
        g->wfd = -1;
        return NULL;
}

static ssize_t read_produce(void *state, char *buf, size_t max)
{
        struct reading *g = state;
        if (g->first_off < g->first_len) {
                size_t n = g->first_len - g->first_off < max ? g->first_len - g->first_off : max;
                memcpy(buf, g->first + g->first_off, n);
                g->first_off += n;
                return (ssize_t)n;
        }
        struct pollfd p[2] = {{.fd = g->rfd, .events = POLLIN}, {.fd = g->client_fd, .events = POLLRDHUP}};
        int k = poll(p, 2, 1000);
        if (k <= 0)
                return 0;
        if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR))
                return -1;
        if (!p[0].revents)
                return 0;
        ssize_t n = read(g->rfd, buf, max);
        if (n < 0 && errno == EINTR)
                return 0;
        /* an error past the first bytes can only cut the body short */
        return n > 0 ? n : -1;
}

static void read_free(struct reading *g)
{
        if (g->name)
                api_stream_slot_give(g->name);
        if (g->rfd >= 0)
                close(g->rfd);
        if (g->cancel_r >= 0)
                close(g->cancel_r);
        if (g->cancel_w >= 0)
                close(g->cancel_w);
        msb_ctx_free(g->ctx);
        free(g->name);
        free(g->path);
        free(g->user);
        free(g);
}

static void read_done(void *state)
{
        struct reading *g = state;
        close(g->cancel_w); /* the read stops, wherever it waits */
        g->cancel_w = -1;
        close(g->rfd);
        g->rfd = -1;
        pthread_join(g->thread, NULL);
        read_free(g);
}

static const struct api_stream_ops read_ops = {read_produce, read_done};

void api_file_read(struct api_req *r)
{
        struct msb_file_opts fo = {0};
        const char *path = query_common(r, "path", &fo);
        uint64_t offset = 0, length = UINT64_MAX;
        if (!path || api_query_uint(r, "offset", UINT64_MAX, &offset) < 0 ||
            api_query_uint(r, "length", UINT64_MAX, &length) < 0 || !api_stream_slot_take(r, r->params[0]))
                return;
        struct reading *g = xcalloc(1, sizeof(*g));
        *g = (struct reading){.name = xstrdup(r->params[0]), .path = xstrdup(path), .offset = offset,
                              .length = length, .client_fd = r->client_fd, .rfd = -1, .wfd = -1, .cancel_r = -1,
                              .cancel_w = -1, .user = fo.user ? xstrdup(fo.user) : NULL};
        int p[2], c[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
                api_reply_error(r, 500, "internal", NULL, "%s", errno_msg(errno, "pipe").s);
                return read_free(g);
        }
        g->rfd = p[0];
        g->wfd = p[1];
        if (pipe2(c, O_CLOEXEC) < 0) {
                api_reply_error(r, 500, "internal", NULL, "%s", errno_msg(errno, "pipe").s);
                close(g->wfd);
                return read_free(g);
        }
        g->cancel_r = c[0];
        g->cancel_w = c[1];
        /* the read outlives the handler: its own context */
        g->ctx = r->ctx;
        r->ctx = NULL;
        if (pthread_create(&g->thread, NULL, read_main, g) != 0) {
                close(g->wfd);
                api_reply_error(r, 503, "unavailable", NULL, "cannot start a thread now (too many at once): try again");
                return read_free(g);
        }
        /* the first bytes, or the end, tell an error (no such file) from
         * the file's bytes: errors still get their status */
        ssize_t n = read_all(g->rfd, g->first, sizeof(g->first));
        if (n <= 0) {
                pthread_join(g->thread, NULL);
                if (g->ret < 0) {
                        api_reply_msb_error(r, g->ret, &g->err);
                        return read_free(g);
                }
        }
        g->first_len = n > 0 ? (size_t)n : 0;
        api_reply_stream(r, "application/octet-stream", &read_ops, g);
}

/* ---- write ---- */

void api_file_write(struct api_req *r)
{
        struct msb_file_opts fo = {0};
        const char *path = query_common(r, "path", &fo);
        unsigned mode = 0644;
        bool parents = false;
        if (!path || query_mode(r, &mode) < 0 || api_query_bool(r, "parents", &parents) < 0)
                return;
        fo.cancel_fd = r->upload_cut_fd;
        struct msb_error err = {0};
        int q = msb_sandbox_file_write(r->ctx, r->params[0], &fo, path, r->upload_fd, mode, parents, &err);
        if (q < 0)
                return api_reply_msb_error(r, q, &err);
        api_reply_empty(r, 204);
}

/* ---- watch ---- */

struct watching {
        char *name, *path, *user;
        bool recursive;
};

static int on_change(const struct msb_file_event *e, void *ud)
{
        json_t *j = !strcmp(e->op, "ready")
                            ? json_pack("{s:s, s:o}", "type", "ready", "path", str_json(e->path))
                            : json_pack("{s:s, s:o, s:s}", "type", e->op, "path", str_json(e->path), "file_type", e->type);
        return !lineq_put(ud, j);
}

static int watch_run(struct lineq *q, struct msb_ctx *ctx, int cancel_fd, void *arg, struct msb_error *err)
{
        struct watching *w = arg;
        struct msb_file_opts fo = {.user = w->user, .cancel_fd = cancel_fd};
        return msb_sandbox_file_watch(ctx, w->name, &fo, w->path, w->recursive, on_change, q, err);
}

static void watch_free(void *arg)
{
        struct watching *w = arg;
        free(w->name);
        free(w->path);
        free(w->user);
        free(w);
}

void api_file_watch(struct api_req *r)
{
        struct msb_file_opts fo = {0};
        const char *path = query_common(r, "path", &fo);
        bool recursive = false;
        if (!path || api_query_bool(r, "recursive", &recursive) < 0)
                return;
        /* what is wrong with the path (or the sandbox) is a status before
         * the stream starts */
        struct msb_error err = {0};
        struct msb_file_info *fi;
        int q = msb_sandbox_file_stat(r->ctx, r->params[0], &fo, path, &fi, &err);
        if (q < 0)
                return api_reply_msb_error(r, q, &err);
        bool not_dir = strcmp(fi->type, "dir") && strcmp(fi->type, "symlink");
        msb_file_info_free(fi, 1);
        if (not_dir)
                return api_reply_error(r, 409, "conflict", "path", "sandbox '%s': %s: not a directory", r->params[0],
                                       path);
        struct watching *w = xcalloc(1, sizeof(*w));
        *w = (struct watching){.name = xstrdup(r->params[0]), .path = xstrdup(path), .recursive = recursive,
                               .user = fo.user ? xstrdup(fo.user) : NULL};
        lineq_start(r, w->name, watch_run, w, watch_free);
}
