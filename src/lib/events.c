/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lifecycle events of all the user's named sandboxes, the CLI's and the
 * API's alike (msb events, GET /v1/events): the sandboxes' directories are
 * watched with inotify, and on every change (and once a second, for a
 * supervisor that died without writing) the list is read again and
 * compared with the last one.  What changed becomes events, in order:
 * created, started, exited (with the exit code) then stopped, crashed,
 * removed.  A sandbox stopped and removed between two looks shows as
 * stopped then removed, its exit code unseen.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"
#include "common/error.h"
#include "common/util.h"
#include "msb.h"

#define RECHECK_MS 1000
#define WATCHES_MAX 4096 /* past this, new sandboxes are seen by the periodic check */

struct seen {
        char *name;
        char status[16];
        int exit_code;
        int64_t started;
};

struct watcher {
        msb_sandbox_event_fn *cb;
        void *ud;
        bool stop;
        int ifd;
        unsigned nwatch;
};

static void emit(struct watcher *w, const char *type, const struct msb_sandbox_info *in, const char *name)
{
        if (w->stop)
                return;
        struct msb_sandbox_event e = {.type = type, .name = name, .exit_code = -1, .time = time(NULL)};
        if (in) {
                e.image = in->image;
                e.exit_code = in->exit_code;
        }
        if (w->cb(&e, w->ud) != 0)
                w->stop = true;
}

static const struct seen *find(const struct seen *v, size_t n, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (!strcmp(v[i].name, name))
                        return &v[i];
        return NULL;
}

/* One sandbox compared with what it was (old NULL: new). */
static void diff_one(struct watcher *w, const struct seen *old, const struct msb_sandbox_info *in)
{
        bool run = !strcmp(in->status, "running");
        bool was_run = old && !strcmp(old->status, "running");
        if (!old)
                emit(w, "created", in, in->name);
        if (was_run && (!run || in->started != old->started)) {
                if (!run && !strcmp(in->status, "crashed")) {
                        emit(w, "crashed", in, in->name);
                } else {
                        emit(w, "exited", in, in->name);
                        emit(w, "stopped", in, in->name);
                }
        }
        if (run && (!was_run || in->started != old->started))
                emit(w, "started", in, in->name);
        if (!run && old && !was_run && strcmp(old->status, in->status) && !strcmp(in->status, "crashed"))
                emit(w, "crashed", in, in->name);
}

static void seen_free(struct seen *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i].name);
        free(v);
}

/* Read the list again, say what changed, keep it as the new last one. */
static int reconcile(struct watcher *w, struct msb_ctx *ctx, struct seen **last, size_t *nlast, bool quiet,
                     struct msb_error *err)
{
        struct msb_sandbox_info *v;
        size_t n;
        int r = msb_sandbox_list(ctx, &v, &n, err);
        if (r < 0)
                return r;
        struct seen *now = xcalloc(n ? n : 1, sizeof(*now));
        for (size_t i = 0; i < n; i++) {
                if (!quiet)
                        diff_one(w, find(*last, *nlast, v[i].name), &v[i]);
                now[i].name = xstrdup(v[i].name);
                snprintf(now[i].status, sizeof(now[i].status), "%s", v[i].status);
                now[i].exit_code = v[i].exit_code;
                now[i].started = v[i].started;
                if (w->ifd >= 0 && w->nwatch < WATCHES_MAX) {
                        _cleanup_free_ char *dir = xasprintf("%s/%s", ctx->sandboxes_dir, v[i].name);
                        if (inotify_add_watch(w->ifd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR) >= 0)
                                w->nwatch++; /* the same dir again gives the same watch: an over-count, harmless */
                }
        }
        for (size_t i = 0; i < *nlast && !quiet; i++)
                if (!find(now, n, (*last)[i].name)) {
                        /* stopped and removed between two looks: it did stop */
                        if (!strcmp((*last)[i].status, "running"))
                                emit(w, "stopped", NULL, (*last)[i].name);
                        emit(w, "removed", NULL, (*last)[i].name);
                }
        msb_sandbox_info_free(v, n);
        seen_free(*last, *nlast);
        *last = now;
        *nlast = n;
        return 0;
}

int msb_sandbox_events(struct msb_ctx *ctx, int cancel_fd, msb_sandbox_event_fn *cb, void *ud, struct msb_error *err)
{
        struct watcher w = {.cb = cb, .ud = ud, .ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)};
        if (mkdir_p(ctx->sandboxes_dir, 0700) < 0) {
                if (w.ifd >= 0)
                        close(w.ifd);
                return msb_err_errno(err, errno, "cannot make %s", ctx->sandboxes_dir);
        }
        if (w.ifd >= 0)
                inotify_add_watch(w.ifd, ctx->sandboxes_dir,
                                  IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_ONLYDIR);
        struct seen *last = NULL;
        size_t nlast = 0;
        int r = reconcile(&w, ctx, &last, &nlast, true, err);
        while (r >= 0 && !w.stop) {
                struct pollfd p[2] = {{.fd = w.ifd, .events = POLLIN}, {.fd = cancel_fd > 0 ? cancel_fd : -1, .events = POLLIN}};
                int k = poll(p, 2, RECHECK_MS);
                if (k < 0 && errno != EINTR) {
                        r = msb_err_errno(err, errno, "poll");
                        break;
                }
                if (k > 0 && p[1].revents)
                        break;
                if (k > 0 && (p[0].revents & POLLIN)) {
                        char buf[8192];
                        while (read(w.ifd, buf, sizeof(buf)) > 0) {
                        }
                        /* a burst of writes (create, then start) settles first */
                        struct timespec ts = {0, 20 * 1000 * 1000};
                        nanosleep(&ts, NULL);
                }
                r = reconcile(&w, ctx, &last, &nlast, false, err);
        }
        seen_free(last, nlast);
        if (w.ifd >= 0)
                close(w.ifd);
        return r < 0 ? r : 0;
}
