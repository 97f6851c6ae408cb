/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Trees in and out of a sandbox as tar, as `msb cp` moves them
 * (msb_sandbox_copy_out_tar, msb_sandbox_copy_in_tar): GET streams the
 * guest's archive of ?path= to the client as it comes, PUT extracts the
 * uploaded archive at ?path= (a directory, made if missing).  Nothing is
 * held whole in memory: the bytes go through a pipe between the library's
 * copy, in a thread, and the connection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "common/error.h"
#include "common/util.h"

static const char *path_param(struct api_req *r)
{
        const char *p = api_query(r, "path");
        if (!p || p[0] != '/') {
                api_reply_error(r, 400, "bad_request", "path", "path: required, an absolute guest path");
                return NULL;
        }
        return p;
}

struct out_copy {
        struct msb_ctx *ctx;
        char *name, *path;
        int rfd, wfd, client_fd;
        pthread_t thread;
        int ret;
        struct msb_error err;
        bool first, eof, slot;
        char first_buf[512];
        size_t first_len, first_off;
};

static void *out_main(void *arg)
{
        struct out_copy *c = arg;
        c->ret = msb_sandbox_copy_out_tar(c->ctx, c->name, c->path, c->wfd, 0, &c->err);
        close(c->wfd);
        c->wfd = -1;
        return NULL;
}

static ssize_t out_produce(void *state, char *buf, size_t max)
{
        struct out_copy *c = state;
        if (c->first_off < c->first_len) {
                size_t n = c->first_len - c->first_off < max ? c->first_len - c->first_off : max;
                memcpy(buf, c->first_buf + c->first_off, n);
                c->first_off += n;
                return (ssize_t)n;
        }
        struct pollfd p[2] = {{.fd = c->rfd, .events = POLLIN}, {.fd = c->client_fd, .events = POLLRDHUP}};
        int k = poll(p, 2, 1000);
        if (k <= 0)
                return 0;
        if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR))
                return -1;
        if (!p[0].revents)
                return 0;
        ssize_t n = read(c->rfd, buf, max);
        if (n < 0 && errno == EINTR)
                return 0;
        /* an error past the first bytes can only cut the archive short: the
         * client sees a tar without its end */
        return n > 0 ? n : -1;
}

static void out_free(struct out_copy *c)
{
        if (c->slot)
                api_stream_slot_give(c->name);
        msb_ctx_free(c->ctx);
        free(c->name);
        free(c->path);
        free(c);
}

static void out_done(void *state)
{
        struct out_copy *c = state;
        close(c->rfd); /* a copy still writing gets EPIPE and stops */
        pthread_join(c->thread, NULL);
        out_free(c);
}

static const struct api_stream_ops out_ops = {out_produce, out_done};

void api_archive_get(struct api_req *r)
{
        const char *path = path_param(r);
        if (!path || !api_stream_slot_take(r, r->params[0]))
                return;
        struct out_copy *c = xcalloc(1, sizeof(*c));
        c->slot = true;
        c->name = xstrdup(r->params[0]);
        c->path = xstrdup(path);
        c->client_fd = r->client_fd;
        /* the copy outlives the handler: its own context */
        c->ctx = r->ctx;
        r->ctx = NULL;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
                api_reply_error(r, 500, "internal", NULL, "%s", errno_msg(errno, "pipe").s);
                out_free(c);
                return;
        }
        c->rfd = p[0];
        c->wfd = p[1];
        if (pthread_create(&c->thread, NULL, out_main, c) != 0) {
                close(c->rfd);
                close(c->wfd);
                api_reply_error(r, 503, "unavailable", NULL, "cannot start a thread now (too many at once): try again");
                out_free(c);
                return;
        }
        /* the first block tells an error (no such path) from an archive:
         * errors still get their status before any byte is sent */
        ssize_t n = read_all(c->rfd, c->first_buf, sizeof(c->first_buf));
        if (n <= 0) {
                pthread_join(c->thread, NULL);
                close(c->rfd);
                c->rfd = -1;
                if (c->ret < 0)
                        api_reply_msb_error(r, c->ret, &c->err);
                else
                        api_reply_error(r, 502, "bad_gateway", NULL, "sandbox '%s' sent no archive for %s", c->name,
                                        c->path);
                out_free(c);
                return;
        }
        c->first_len = (size_t)n;
        api_reply_stream(r, "application/x-tar", &out_ops, c);
}

void api_archive_put(struct api_req *r)
{
        const char *path = path_param(r);
        if (!path)
                return;
        struct msb_error err = {0};
        int q = msb_sandbox_copy_in_tar(r->ctx, r->params[0], r->upload_fd, path, 0, &err);
        if (q < 0) {
                api_reply_msb_error(r, q, &err);
                return;
        }
        api_reply_empty(r, 204);
}
