/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The run's side of a pool (docs/pool.md): take a warm VM from the pool
 * of this run's size, configure its waiting servers (shares, network
 * policy) and, at teardown, let its keeper remove what is left.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"

#include "proto/proto.h"
#include "lib/settings.h"

/* The run's side: what it took over until the servers are configured. */
struct warm {
        int keeper; /* closing it ends what is left of the VM */
        int pending[3]; /* configurations sent, answers not read yet */
        const char *what[3];
        struct child fsd[2], netd;
        char tag[2][40];
        size_t used; /* servers configured */
        size_t npending;
        bool v6;
};

/* A warm server's configuration: MAGIC, u32 length, NUL-separated args;
 * "ok\n" back, read later (warm_wait): the server opens its shares and
 * confines itself while the guest already gets its SETUP.  argv as the
 * server would have been started, without its program name and --fd.
 * The connection, or -errno. */
static int warm_send(const char *sock, const char *magic, char **argv)
{
        _cleanup_buf_ struct msb_buf b = {0};
        msb_buf_append(&b, magic, strlen(magic));
        uint32_t len = 0;
        msb_buf_append(&b, &len, 4);
        for (char **a = argv && *argv ? argv + 1 : NULL; a && *a; a++) {
                if (!strncmp(*a, "--fd", 4))
                        continue;
                msb_buf_append(&b, *a, strlen(*a) + 1);
        }
        len = (uint32_t)(msb_buf_pending(&b) - strlen(magic) - 4);
        memcpy((char *)msb_buf_head(&b) + strlen(magic), &len, 4);
        /* the servers take at most 256 KiB (WARM_CONFIG_MAX) */
        if (len > 256 * 1024)
                return -E2BIG;
        int fd = pool_unix_connect(sock);
        if (fd >= 0 && write_all(fd, msb_buf_head(&b), msb_buf_pending(&b)) < 0) {
                close(fd);
                fd = -EIO;
        }
        return fd;
}

/* Its answer: 0, or -EIO with err saying why the server named what did
 * not take its configuration. */
static int warm_wait(int fd, const char *what, struct msb_error *err)
{
        char reply[64] = "";
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        ssize_t n = read(fd, reply, sizeof(reply) - 1);
        reply[n > 0 ? n : 0] = 0;
        if (!strcmp(reply, "ok\n"))
                return 0;
        const char *why = reply[0] ? reply : n < 0 ? errno_text(errno) : "no answer (see its log)";
        return msb_err(err, EIO, "the pool's %s did not take its configuration: %s", what, why);
}

/* ---- the run's side ---- */

static void child_adopt(struct child *c, pid_t pid, int pidfd, const char *what, char *log)
{
        *c = (struct child){.pid = pid, .pidfd = pidfd, .what = xstrdup(what), .log = log};
}

/* A keeper's hand-over (n fds with it) that can be taken: complete, and
 * the VM's dir one of our runtime dir's, nothing else. */
static bool handover_ok(struct msb_ctx *ctx, const struct handover *h, int n)
{
        bool ok = n == HANDOVER_FDS && !memcmp(h->magic, HANDOVER_MAGIC, 8) && !h->id[24] &&
                  strspn(h->id, "0123456789abcdef") == 24 && memchr(h->dir, 0, sizeof(h->dir)) &&
                  memchr(h->tag[0], 0, 40) && memchr(h->tag[1], 0, 40);
        if (!ok)
                return false;
        _cleanup_free_ char *want = xasprintf("%s/%s", ctx->runtime_dir, h->id);
        return !strcmp(want, h->dir);
}

/* The handed VM becomes sb's: its runtime dir, control channel, lock and
 * QEMU, and the servers still to configure (sb->warm, with the keeper's
 * connection). */
static void warm_adopt(struct sandbox *sb, const struct handover *h, const int fds[HANDOVER_FDS], int keeper)
{
        struct warm *w = xcalloc(1, sizeof(*w));
        w->keeper = keeper;
        w->v6 = h->v6;
        memcpy(w->tag, h->tag, sizeof(w->tag));
        memcpy(sb->id, h->id, sizeof(sb->id));
        sb->dir = xstrdup(h->dir);
        sb->ctl = fds[0];
        sb->lock_fd = fds[1];
        sb->console = xasprintf("%s/console.log", sb->dir);
        child_adopt(&sb->qemu, h->qemu, fds[2], "QEMU", NULL);
        for (int i = 0; i < 2; i++)
                child_adopt(&w->fsd[i], h->fsd[i], fds[3 + i], "virtio-fs server",
                            xasprintf("%s/fsd%d.log", sb->dir, i));
        child_adopt(&w->netd, h->netd, fds[5], "network process (msb-netd)", xasprintf("%s/net.log", sb->dir));
        w->netd.net = true;
        sb->warm = w;
        fcntl(sb->ctl, F_SETFL, fcntl(sb->ctl, F_GETFL) | O_NONBLOCK);
}

int pool_take(struct vm *vm, const struct msb_run_opts *o, const struct vm_opts *vo)
{
        struct sandbox *sb = &vm->sb;
        struct msb_ctx *ctx = sb->ctx;
        /* what a warm VM has: msb-fsd, a network device behind msb-netd,
         * no disk.  Anything else boots as before. */
        const char *why = o->no_pool ? "--no-pool"
                          : vo->disk ? "a disk"
                          : vo->warm ? "a pool's own VM"
                          : strcmp(vm->be->name, "msb") ? "another fs backend"
                          : o->net_tap ? "a container's network namespace"
                          : (o->net_mode && !strcmp(o->net_mode, "none")) ? "--net none"
                          : ctx->log_level > 0 ? "--verbose"
                          : msb_setting(SET_MSB_NET_DIRECT) ? "MSB_NET_DIRECT"
                          : msb_setting(SET_MSB_DEBUG_AGENT) ? "MSB_DEBUG_AGENT"
                          : NULL;
        char key[128];
        pool_key(vm, o->cpus, o->memory_mib, key, sizeof(key));
        _cleanup_free_ char *pd = pools_dir(ctx), *sock = xasprintf("%s/%s/sock", pd, key);
        if (why) {
                if (access(sock, F_OK) == 0)
                        msb_log(ctx, 1, "pool %s: not used (%s)", key, why);
                return 0;
        }
        _cleanup_close_ int fd = pool_unix_connect(sock);
        struct ucred cr;
        socklen_t cl = sizeof(cr);
        if (fd >= 0 && (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.uid != geteuid())) {
                msb_log(ctx, 1, "pool %s: its socket is not ours; booting", key);
                return 0;
        }
        if (fd == -ECONNREFUSED) {
                _cleanup_free_ char *dir = xasprintf("%s/%s", pd, key);
                pool_dir_reap(dir);
        }
        if (fd < 0)
                return 0;
        struct timeval tv = {5, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        struct handover h;
        int fds[HANDOVER_FDS];
        if (write_all(fd, "TAKE\n", 5) < 0)
                return 0;
        int n = pool_recv_fds(fd, &h, sizeof(h), fds, HANDOVER_FDS);
        if (!handover_ok(ctx, &h, n)) {
                for (int i = 0; i < n; i++)
                        close(fds[i]);
                msb_log(ctx, 1, "pool %s: no warm VM (%s); booting one", key, n < 0 ? errno_text(-n) : "empty");
                return 0;
        }
        warm_adopt(sb, &h, fds, TAKE_FD(fd));
        msb_log(ctx, 1, "pool %s: took warm VM %s", key, sb->id);
        return 1;
}

static int warm_pending(struct warm *w, int fd, const char *what, struct msb_error *err)
{
        if (fd < 0)
                return msb_err(err, EIO, "the pool's %s cannot be configured: %s", what, errno_text(-fd));
        w->what[w->npending] = what;
        w->pending[w->npending++] = fd;
        return 0;
}

int warm_settle(struct sandbox *sb, struct msb_error *err)
{
        struct warm *w = sb->warm;
        int r = 0;
        for (size_t i = 0; i < w->npending; i++) {
                if (r >= 0)
                        r = warm_wait(w->pending[i], w->what[i], err);
                close(w->pending[i]);
        }
        w->npending = 0;
        return r;
}

int warm_add_server(struct sandbox *sb, char **argv, const char *what, struct msb_error *err)
{
        struct warm *w = sb->warm;
        size_t i = w->used;
        if (i >= 2)
                return msb_err(err, EINVAL, "a pool's VM has two virtio-fs devices");
        _cleanup_free_ char *sock = xasprintf("%s/fs%zu.sock", sb->dir, i);
        struct child *c = &sb->fsd[sb->nfsd++];
        *c = w->fsd[i];
        free(c->what);
        c->what = xstrdup(what);
        w->fsd[i] = (struct child){.pidfd = -1};
        w->used++;
        sb->shares[sb->nshares].tag = xstrdup(w->tag[i]);
        sb->shares[sb->nshares].socket_path = TAKE_PTR(sock);
        sb->nshares++;
        return warm_pending(w, warm_send(sb->shares[sb->nshares - 1].socket_path, "msb-fsd-config 1\n", argv),
                            "virtio-fs server", err);
}

int warm_finish_shares(struct sandbox *sb, struct msb_error *err)
{
        struct warm *w = sb->warm;
        while (w->used < 2) {
                /* no volumes: the device serves nothing (the guest never
                 * mounts it); its server stays one of ours to stop */
                char *none[] = {"msb-fsd", NULL};
                size_t i = w->used;
                _cleanup_free_ char *sock = xasprintf("%s/fs%zu.sock", sb->dir, i);
                sb->fsd[sb->nfsd++] = w->fsd[i];
                w->fsd[i] = (struct child){.pidfd = -1};
                w->used++;
                int r = warm_pending(w, warm_send(sock, "msb-fsd-config 1\n", none), "spare virtio-fs server", err);
                if (r < 0)
                        return r;
        }
        return 0;
}

int warm_net(struct vm *vm, char **policy, struct msb_error *err)
{
        struct sandbox *sb = &vm->sb;
        struct warm *w = sb->warm;
        sb->net_socket = xasprintf("%s/net.sock", sb->dir);
        sb->fsd[sb->nfsd++] = w->netd;
        w->netd = (struct child){.pidfd = -1};
        char **argv = NULL;
        strv_push(&argv, "msb-netd");
        for (char **a = policy; a && *a; a++)
                strv_push(&argv, *a);
        int fd = warm_send(sb->net_socket, "msb-netd-config 1\n", argv);
        strv_free(argv);
        return warm_pending(w, fd, "network process", err);
}

bool warm_net_v6(const struct sandbox *sb)
{
        return sb->warm && sb->warm->v6;
}

/* Read fd until its peer's end closes (the keeper exited), at most
 * timeout_ms */
static void keeper_wait_exit(int fd, int timeout_ms)
{
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
                clock_gettime(CLOCK_MONOTONIC, &t);
                int left = timeout_ms - (int)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (left <= 0)
                        return;
                int r = poll(&p, 1, left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return;
                char b[64];
                ssize_t n = read(fd, b, sizeof(b));
                if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
                        return;
        }
}

void warm_release(struct sandbox *sb)
{
        struct warm *w = sb->warm;
        if (!w)
                return;
        /* servers never configured (a run that failed early) */
        for (int i = 0; i < 2; i++)
                if (w->fsd[i].pidfd >= 0 && w->fsd[i].pid > 0) {
                        proc_kill_wait(w->fsd[i].pid, &w->fsd[i].pidfd);
                        free(w->fsd[i].what);
                        free(w->fsd[i].log);
                }
        if (w->netd.pidfd >= 0 && w->netd.pid > 0) {
                proc_kill_wait(w->netd.pid, &w->netd.pidfd);
                free(w->netd.what);
                free(w->netd.log);
        }
        for (size_t i = 0; i < w->npending; i++)
                close(w->pending[i]);
        if (w->keeper >= 0) {
                /* the keeper then stops what is left of the VM (the inner
                 * halves of the servers, passt) and exits, which closes its
                 * end: waited for, so nothing of the VM outlives the run */
                shutdown(w->keeper, SHUT_WR);
                keeper_wait_exit(w->keeper, 3000);
                close(w->keeper);
        }
        free(w);
        sb->warm = NULL;
}
