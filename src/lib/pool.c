/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A pool of pre-booted VMs (msb pool, docs/pool.md).
 *
 * The pool is a daemon per size (cpus, memory, kernel, accelerator) with a
 * socket in <runtime>/.pools/<key>/.  It keeps N "keepers": a keeper is a
 * process of its own that boots one VM as far as it can go without a
 * sandbox (two virtio-fs servers and msb-netd started --warm, QEMU with no
 * root, agentd waiting for its HELLO) and then waits.  A run that matches
 * connects, and the pool passes the connection to a ready keeper, which
 * hands the VM over: the control channel, the runtime dir's lock and the
 * pidfds go to the run over SCM_RIGHTS.  The run then configures the
 * servers (shares, policy) and talks to agentd as after its own boot.
 *
 * Lifetimes: a keeper dies with the pool (PR_SET_PDEATHSIG) until it
 * hands its VM over; from then on it lives as long as the run's
 * connection, and when that closes it kills what is left of the VM and
 * removes its runtime dir.  A VM is never given twice.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "internal.h"
#include "proto/proto.h"
#include "vm.h"

#define HANDOVER_MAGIC "msbwarm1"
#define HANDOVER_FDS 6 /* ctl, lock, QEMU, the two servers, msb-netd (pidfds) */
#define POOL_MAX_SIZE 64

struct handover {
        char magic[8];
        char id[25];
        bool v6;
        pid_t qemu, fsd[2], netd;
        char tag[2][40];
        char dir[1024];
};

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

/* ---- keys and paths ---- */

static uint64_t fnv1a(uint64_t h, const char *s)
{
        for (; s && *s; s++)
                h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
        return (h ^ 0xff) * 0x100000001b3ull;
}

/* c<cpus>-m<MiB>-<accel>-<hash of the kernel and initramfs> */
static void pool_key(const struct vm *vm, unsigned cpus, unsigned mib, char *out, size_t n)
{
        uint64_t h = fnv1a(fnv1a(0xcbf29ce484222325ull, vm->kit.kernel), vm->kit.initramfs);
        h = fnv1a(h, vm->kit.acpi ? "acpi" : "mmio");
        snprintf(out, n, "c%u-m%u-%s-%016llx", cpus, mib, vm->accel == MSB_ACCEL_KVM ? "kvm" : "tcg",
                 (unsigned long long)h);
}

/* <runtime>/.pools: cleanup_stale() passes over dot names */
static char *pools_dir(struct msb_ctx *ctx)
{
        return xasprintf("%s/.pools", ctx->runtime_dir);
}

static int unix_connect(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        return fd;
}

static int send_fds(int sock, const void *data, size_t len, const int *fds, size_t nfds)
{
        char cbuf[CMSG_SPACE(sizeof(int) * HANDOVER_FDS)] = {0};
        struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        if (nfds) {
                mh.msg_control = cbuf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
        }
        ssize_t n;
        while ((n = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
        }
        return n == (ssize_t)len ? 0 : -EIO;
}

/* One message of exactly len bytes with up to maxfds fds (the rest are
 * closed); the number of fds, or -errno. */
static int recv_fds(int sock, void *data, size_t len, int *fds, size_t maxfds)
{
        char cbuf[CMSG_SPACE(sizeof(int) * HANDOVER_FDS)] = {0};
        struct iovec iov = {.iov_base = data, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
        ssize_t n;
        while ((n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL)) < 0 && errno == EINTR) {
        }
        /* a failed recvmsg leaves the control buffer as it was */
        if (n < 0)
                return -errno;
        int got = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                int *in = (int *)CMSG_DATA(c);
                for (size_t i = 0; i < k; i++) {
                        if ((size_t)got < maxfds)
                                fds[got++] = in[i];
                        else
                                close(in[i]);
                }
        }
        if (n != (ssize_t)len || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
                for (int i = 0; i < got; i++)
                        close(fds[i]);
                return n < 0 ? -errno : -EPROTO;
        }
        return got;
}

/* A warm server's configuration: MAGIC, u32 length, NUL-separated args;
 * "ok\n" back, read later (warm_wait): the server opens its shares and
 * confines itself while the guest already gets its SETUP.  argv as the
 * server would have been started, without its program name and --fd.
 * The connection, or -errno. */
static int warm_send(const char *sock, const char *magic, char **argv)
{
        struct msb_buf b = {0};
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
        if (len > 256 * 1024) {
                msb_buf_free(&b);
                return -E2BIG;
        }
        int fd = unix_connect(sock);
        if (fd >= 0 && write_all(fd, msb_buf_head(&b), msb_buf_pending(&b)) < 0) {
                close(fd);
                fd = -EIO;
        }
        msb_buf_free(&b);
        return fd;
}

/* Its answer: 0, or -EIO with why filled. */
static int warm_wait(int fd, char *why, size_t whyn)
{
        char reply[64] = "";
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        ssize_t n = read(fd, reply, sizeof(reply) - 1);
        reply[n > 0 ? n : 0] = 0;
        if (!strcmp(reply, "ok\n"))
                return 0;
        snprintf(why, whyn, "%s", reply[0] ? reply : n < 0 ? strerror(errno) : "no answer (see its log)");
        return -EIO;
}

/* A pool killed without its cleanup (SIGKILL) leaves its socket: whoever
 * finds it refusing connections, with nobody holding the lock, removes
 * the directory.  Its idle VMs died with it. */
static void pool_dir_reap(const char *dir)
{
        _cleanup_free_ char *lk = xasprintf("%s/lock", dir);
        _cleanup_close_ int fd = open(lk, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
                rm_rf(dir);
}

/* ---- the run's side ---- */

static void child_adopt(struct child *c, pid_t pid, int pidfd, const char *what, char *log)
{
        *c = (struct child){.pid = pid, .pidfd = pidfd, .what = xstrdup(what), .log = log};
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
                          : getenv("MSB_NET_DIRECT") ? "MSB_NET_DIRECT"
                          : getenv("MSB_DEBUG_AGENT") ? "MSB_DEBUG_AGENT"
                          : NULL;
        char key[128];
        pool_key(vm, o->cpus, o->memory_mib, key, sizeof(key));
        _cleanup_free_ char *pd = pools_dir(ctx), *sock = xasprintf("%s/%s/sock", pd, key);
        if (why) {
                if (access(sock, F_OK) == 0)
                        msb_log(ctx, 1, "pool %s: not used (%s)", key, why);
                return 0;
        }
        _cleanup_close_ int fd = unix_connect(sock);
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
        int n = recv_fds(fd, &h, sizeof(h), fds, HANDOVER_FDS);
        _cleanup_free_ char *want = NULL;
        bool ok = n == HANDOVER_FDS && !memcmp(h.magic, HANDOVER_MAGIC, 8) && !h.id[24] &&
                  strspn(h.id, "0123456789abcdef") == 24 && memchr(h.dir, 0, sizeof(h.dir)) &&
                  memchr(h.tag[0], 0, 40) && memchr(h.tag[1], 0, 40);
        /* the VM's dir is one of our runtime dir's, nothing else */
        if (ok) {
                want = xasprintf("%s/%s", ctx->runtime_dir, h.id);
                ok = !strcmp(want, h.dir);
        }
        if (!ok) {
                for (int i = 0; i < n; i++)
                        close(fds[i]);
                msb_log(ctx, 1, "pool %s: no warm VM (%s); booting one", key, n < 0 ? strerror(-n) : "empty");
                return 0;
        }
        struct warm *w = xcalloc(1, sizeof(*w));
        w->keeper = TAKE_FD(fd);
        w->v6 = h.v6;
        memcpy(w->tag, h.tag, sizeof(w->tag));
        memcpy(sb->id, h.id, sizeof(sb->id));
        sb->dir = xstrdup(h.dir);
        sb->ctl = fds[0];
        sb->lock_fd = fds[1];
        sb->console = xasprintf("%s/console.log", sb->dir);
        child_adopt(&sb->qemu, h.qemu, fds[2], "QEMU", NULL);
        for (int i = 0; i < 2; i++)
                child_adopt(&w->fsd[i], h.fsd[i], fds[3 + i], "virtio-fs server",
                            xasprintf("%s/fsd%d.log", sb->dir, i));
        child_adopt(&w->netd, h.netd, fds[5], "network process (msb-netd)", xasprintf("%s/net.log", sb->dir));
        w->netd.net = true;
        sb->warm = w;
        fcntl(sb->ctl, F_SETFL, fcntl(sb->ctl, F_GETFL) | O_NONBLOCK);
        msb_log(ctx, 1, "pool %s: took warm VM %s", key, sb->id);
        return 1;
}

static int warm_pending(struct warm *w, int fd, const char *what, struct msb_error *err)
{
        if (fd < 0)
                return msb_err(err, EIO, "the pool's %s cannot be configured: %s", what, strerror(-fd));
        w->what[w->npending] = what;
        w->pending[w->npending++] = fd;
        return 0;
}

int warm_settle(struct sandbox *sb, struct msb_error *err)
{
        struct warm *w = sb->warm;
        int r = 0;
        for (size_t i = 0; i < w->npending; i++) {
                char why[128];
                if (r >= 0 && warm_wait(w->pending[i], why, sizeof(why)) < 0)
                        r = msb_err(err, EIO, "the pool's %s did not take its configuration: %s", w->what[i], why);
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

/* ---- the keeper ---- */

/* Every thread of pid and of its descendants to policy (SCHED_IDLE while a
 * VM boots for the pool, SCHED_OTHER once it is a run's). */
static void sched_tree(pid_t pid, int policy, int depth)
{
        if (depth > 4)
                return;
        _cleanup_free_ char *tdir = xasprintf("/proc/%d/task", pid);
        DIR *d = opendir(tdir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                pid_t tid = (pid_t)atoi(de->d_name);
                struct sched_param sp = {0};
                (void)sched_setscheduler(tid, policy, &sp);
                _cleanup_free_ char *kids = NULL;
                _cleanup_free_ char *kp = xasprintf("%s/%s/children", tdir, de->d_name);
                if (read_file_at(AT_FDCWD, kp, 4096, &kids, NULL) < 0)
                        continue;
                for (char *save = NULL, *t = strtok_r(kids, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
                        sched_tree((pid_t)atoi(t), policy, depth + 1);
        }
        closedir(d);
}

static void keeper_sched(struct vm *vm, int policy)
{
        if (geteuid() != 0)
                return; /* SCHED_IDLE could not be left again */
        struct sandbox *sb = &vm->sb;
        sched_tree(sb->qemu.pid, policy, 0);
        for (size_t i = 0; i < sb->nfsd; i++)
                sched_tree(sb->fsd[i].pid, policy, 0);
}

/* agentd's HELLO: the VM is as far as it goes without a sandbox. */
static int keeper_wait_hello(struct vm *vm, int pool_fd, int timeout_ms)
{
        struct sandbox *sb = &vm->sb;
        struct msb_reader rd = {0};
        int64_t deadline = mono_ms() + timeout_ms;
        int r = -ETIMEDOUT;
        while (mono_ms() < deadline) {
                struct pollfd p[3] = {{.fd = sb->ctl, .events = POLLIN},
                                      {.fd = sb->qemu.pidfd, .events = POLLIN},
                                      {.fd = pool_fd, .events = POLLIN}};
                if (poll(p, 3, (int)(deadline - mono_ms())) < 0 && errno != EINTR)
                        break;
                if (p[1].revents || p[2].revents) {
                        r = -EPIPE;
                        break;
                }
                if (!p[0].revents)
                        continue;
                uint8_t buf[4096];
                ssize_t n = read(sb->ctl, buf, sizeof(buf));
                if (n <= 0) {
                        r = -EPIPE;
                        break;
                }
                msb_reader_feed(&rd, buf, (size_t)n);
                struct msb_msg m;
                int q = msb_reader_next(&rd, &m);
                if (q < 0)
                        break;
                if (q == 1) {
                        bool ok = m.type == MSB_MSG_HELLO && m.u.hello.version == MSB_PROTO_VERSION;
                        msb_msg_free(&m);
                        /* anything after HELLO would be lost with rd */
                        r = ok && rd.len == rd.consumed ? 0 : -EPROTO;
                        break;
                }
        }
        msb_reader_free(&rd);
        return r;
}

/* Hand the VM to the run on fd c. */
static int keeper_hand_over(struct vm *vm, int c)
{
        struct sandbox *sb = &vm->sb;
        struct handover h = {.qemu = sb->qemu.pid, .fsd = {sb->fsd[0].pid, sb->fsd[1].pid}, .netd = sb->fsd[2].pid};
        memcpy(h.magic, HANDOVER_MAGIC, 8);
        memcpy(h.id, sb->id, sizeof(h.id));
        h.v6 = vm->net.prefix6 != 0;
        for (int i = 0; i < 2; i++)
                snprintf(h.tag[i], sizeof(h.tag[i]), "%s", sb->shares[i].tag);
        if (strlen(sb->dir) >= sizeof(h.dir))
                return -ENAMETOOLONG;
        strcpy(h.dir, sb->dir);
        int fds[HANDOVER_FDS] = {sb->ctl, sb->lock_fd, sb->qemu.pidfd, sb->fsd[0].pidfd, sb->fsd[1].pidfd,
                                 sb->fsd[2].pidfd};
        return send_fds(c, &h, sizeof(h), fds, HANDOVER_FDS);
}

/* Reap whatever of ours has exited. */
static void keeper_reap(void)
{
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
}

static _Noreturn void keeper_main(struct msb_ctx *ctx, const struct msb_run_opts *o, int pool_fd)
{
        prctl(PR_SET_NAME, "msb-pool-vm");
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
                _exit(1);
        /* our children (QEMU, the servers) are reaped here */
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        struct sched_param sp = {0};
        if (geteuid() == 0)
                sched_setscheduler(0, SCHED_IDLE, &sp);
        struct vm *vm = vm_new(ctx, o);
        struct msb_error err = {0};
        int r = vm_boot_warm(vm, o, &err);
        /* the VM boots at idle priority; its keeper answers at normal */
        if (geteuid() == 0)
                sched_setscheduler(0, SCHED_OTHER, &sp);
        if (r >= 0)
                r = keeper_wait_hello(vm, pool_fd, vm->accel == MSB_ACCEL_KVM ? 30000 : 90000);
        if (r < 0) {
                _cleanup_free_ char *why = vm_failure(vm, err.message[0] ? err.message
                                                          : r == -EPIPE  ? "QEMU exited before agentd was up"
                                                                         : strerror(-r));
                fprintf(stderr, "msb pool: a VM did not boot: %s\n", why);
                vm_free(vm);
                _exit(1);
        }
        char ready[96];
        int rl = snprintf(ready, sizeof(ready), "R %d %d %d %d %s\n", vm->sb.qemu.pid, vm->sb.fsd[0].pid,
                          vm->sb.fsd[1].pid, vm->sb.fsd[2].pid, vm->sb.id);
        (void)!write(pool_fd, ready, (size_t)rl);
        /* the pool sends the run's connection, or goes away; a VM that
         * dies meanwhile (the OOM killer likes idle ones) ends its keeper,
         * and the pool boots another */
        int c = -1;
        for (;;) {
                struct pollfd p[5] = {{.fd = pool_fd, .events = POLLIN}, {.fd = vm->sb.qemu.pidfd, .events = POLLIN},
                                      {.fd = vm->sb.ctl, .events = POLLIN}};
                nfds_t np = 3;
                for (size_t i = 0; i < vm->sb.nfsd && np < 5; i++)
                        p[np++] = (struct pollfd){.fd = vm->sb.fsd[i].pidfd, .events = POLLIN};
                if (poll(p, np, -1) < 0 && errno != EINTR)
                        break;
                bool dead = false;
                for (nfds_t i = 1; i < np; i++)
                        dead |= p[i].revents != 0;
                if (dead) {
                        fprintf(stderr, "msb pool: an idle VM's %s ended; it is replaced\n",
                                p[1].revents ? "QEMU" : p[2].revents ? "agentd" : "server");
                        break;
                }
                if (p[0].revents) {
                        char tag;
                        if (recv_fds(pool_fd, &tag, 1, &c, 1) != 1)
                                c = -1;
                        break;
                }
        }
        if (c < 0) {
                vm_free(vm);
                _exit(0);
        }
        /* the VM is the run's now: it outlives the pool */
        prctl(PR_SET_PDEATHSIG, 0);
        close(pool_fd);
        keeper_sched(vm, SCHED_OTHER);
        if (keeper_hand_over(vm, c) < 0) {
                vm_free(vm);
                _exit(1);
        }
        /* the run talks to agentd from here on.  The VM's processes are
         * not reaped before vm_free(): an unreaped leader pins its pid and
         * process group, which vm_free() then kills whole (passt in
         * msb-netd's); the run waits for their exits on its pidfds */
        close(vm->sb.ctl);
        vm->sb.ctl = -1;
        for (;;) {
                struct pollfd p = {.fd = c, .events = POLLIN};
                if (poll(&p, 1, -1) < 0 && errno != EINTR)
                        break;
                char b[64];
                if (p.revents && read(c, b, sizeof(b)) <= 0)
                        break;
        }
        /* the run is over (or gone): what is left of the VM goes */
        vm_free(vm);
        keeper_reap();
        _exit(0);
}

/* ---- the pool ---- */

struct keeper {
        pid_t pid;
        int fd;
        bool ready;
        pid_t procs[4]; /* QEMU, the servers, msb-netd: for status */
        char id[25];    /* its runtime dir's name */
        int64_t ready_at;
        unsigned long long ticks_at_ready;
};

struct pool {
        struct msb_ctx *ctx;
        struct msb_run_opts *o;
        unsigned size;
        char key[128];
        char *dir;
        int lfd, sfd, lock;
        struct keeper k[POOL_MAX_SIZE];
        size_t nk;
        unsigned failures;
        int64_t next_spawn;
        unsigned long handed;
};

/* utime + stime of a process, in clock ticks */
static unsigned long long proc_ticks(pid_t pid)
{
        _cleanup_free_ char *p = xasprintf("/proc/%d/stat", pid), *s = NULL;
        if (read_file_at(AT_FDCWD, p, 4096, &s, NULL) < 0)
                return 0;
        char *e = strrchr(s, ')');
        unsigned long long ut = 0, st = 0;
        if (!e || sscanf(e + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
                return 0;
        return ut + st;
}

static unsigned long proc_rss_kib(pid_t pid)
{
        _cleanup_free_ char *p = xasprintf("/proc/%d/status", pid), *s = NULL;
        if (read_file_at(AT_FDCWD, p, 65536, &s, NULL) < 0)
                return 0;
        char *l = strstr(s, "\nVmRSS:");
        return l ? strtoul(l + 7, NULL, 10) : 0;
}

static unsigned long long keeper_ticks(const struct keeper *k)
{
        unsigned long long t = proc_ticks(k->pid);
        for (int i = 0; i < 4; i++)
                if (k->procs[i] > 0)
                        t += proc_ticks(k->procs[i]);
        return t;
}

static void pool_spawn(struct pool *p)
{
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                return;
        pid_t pid = fork();
        if (pid < 0) {
                close(sp[0]);
                close(sp[1]);
                return;
        }
        if (pid == 0) {
                close(sp[0]);
                close(p->lfd);
                close(p->sfd);
                /* a keeper must not hold the pool's lock: a pool killed
                 * with SIGKILL would look alive while its handed VMs run */
                close(p->lock);
                for (size_t i = 0; i < p->nk; i++)
                        close(p->k[i].fd);
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                keeper_main(p->ctx, p->o, sp[1]);
        }
        close(sp[1]);
        p->k[p->nk++] = (struct keeper){.pid = pid, .fd = sp[0]};
}

static void keeper_drop(struct pool *p, size_t i)
{
        close(p->k[i].fd);
        p->k[i] = p->k[--p->nk];
}

/* "R qemu fsd0 fsd1 netd\n" from a keeper whose VM is ready, or EOF */
static void keeper_input(struct pool *p, size_t i)
{
        struct keeper *k = &p->k[i];
        char b[128];
        ssize_t n = read(k->fd, b, sizeof(b) - 1);
        if (n <= 0) {
                if (!k->ready) {
                        /* it did not boot: its log says why; try again later */
                        p->failures++;
                        unsigned d = p->failures > 5 ? 30 : 1u << p->failures;
                        p->next_spawn = mono_ms() + (int64_t)d * 1000;
                        fprintf(stderr, "msb pool: a VM failed to boot (%u in a row); next try in %u s\n", p->failures,
                                d);
                }
                keeper_drop(p, i);
                return;
        }
        b[n] = 0;
        if (b[0] == 'R' && !k->ready) {
                sscanf(b + 1, "%d %d %d %d %24s", &k->procs[0], &k->procs[1], &k->procs[2], &k->procs[3], k->id);
                k->ready = true;
                k->ready_at = mono_ms();
                k->ticks_at_ready = keeper_ticks(k);
                p->failures = 0;
        }
}

static char *pool_status_json(struct pool *p)
{
        json_t *vms = json_array();
        size_t ready = 0;
        long hz = sysconf(_SC_CLK_TCK);
        for (size_t i = 0; i < p->nk; i++) {
                const struct keeper *k = &p->k[i];
                if (!k->ready) {
                        json_array_append_new(vms, json_pack("{s:s,s:i}", "state", "booting", "pid", (int)k->pid));
                        continue;
                }
                ready++;
                unsigned long rss = proc_rss_kib(k->pid);
                for (int j = 0; j < 4; j++)
                        rss += k->procs[j] > 0 ? proc_rss_kib(k->procs[j]) : 0;
                int64_t ms = mono_ms() - k->ready_at;
                double cpu = ms > 0 && hz > 0 ? 100.0 * (double)(keeper_ticks(k) - k->ticks_at_ready) / (double)hz /
                                                        ((double)ms / 1000.0)
                                              : 0;
                json_array_append_new(vms, json_pack("{s:s,s:i,s:s,s:i,s:I,s:f,s:I}", "state", "ready", "pid",
                                                     (int)k->pid, "id", k->id, "qemu_pid", (int)k->procs[0],
                                                     "rss_kib", (json_int_t)rss,
                                                     "idle_cpu_percent", cpu, "idle_seconds",
                                                     (json_int_t)(ms / 1000)));
        }
        _cleanup_free_ char *log = xasprintf("%s/pool.log", p->dir);
        json_t *j = json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:I,s:i,s:s,s:o}", "key", p->key, "pid", (int)getpid(), "size",
                              (int)p->size, "cpus", (int)p->o->cpus, "memory_mib", (int)p->o->memory_mib, "ready",
                              (int)ready, "handed_out", (json_int_t)p->handed, "failed_boots_in_a_row",
                              (int)p->failures, "log", log, "vms", vms);
        char *s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        return s;
}

/* A client: TAKE (a run), STATUS or STOP; only our own user's.  Returns
 * true for STOP. */
static bool pool_client(struct pool *p)
{
        int c = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
                return false;
        struct ucred cr;
        socklen_t cl = sizeof(cr);
        if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.uid != geteuid()) {
                close(c);
                return false;
        }
        struct timeval tv = {1, 0};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        char req[16] = "";
        ssize_t n = read(c, req, sizeof(req) - 1);
        req[n > 0 ? n : 0] = 0;
        bool stop = false;
        if (!strcmp(req, "TAKE\n")) {
                for (size_t i = 0; i < p->nk; i++)
                        if (p->k[i].ready) {
                                /* the keeper answers the run itself */
                                if (send_fds(p->k[i].fd, "C", 1, &c, 1) == 0)
                                        p->handed++;
                                keeper_drop(p, i);
                                break;
                        }
                /* none ready: closing says so, and the run boots */
        } else if (!strcmp(req, "STATUS\n")) {
                _cleanup_free_ char *s = pool_status_json(p);
                (void)write_all(c, s, strlen(s));
                (void)write_all(c, "\n", 1);
        } else if (!strcmp(req, "STOP\n")) {
                (void)write_all(c, "ok\n", 3);
                stop = true;
        }
        close(c);
        return stop;
}

static _Noreturn void pool_main(struct pool *p)
{
        prctl(PR_SET_NAME, "msb-pool");
        for (;;) {
                size_t booting = 0;
                for (size_t i = 0; i < p->nk; i++)
                        booting += !p->k[i].ready;
                /* one VM boots at a time: refills take one core at most */
                if (p->nk < p->size && !booting && mono_ms() >= p->next_spawn)
                        pool_spawn(p);
                struct pollfd f[POOL_MAX_SIZE + 2];
                size_t nf = 0;
                f[nf++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
                f[nf++] = (struct pollfd){.fd = p->sfd, .events = POLLIN};
                for (size_t i = 0; i < p->nk; i++)
                        f[nf++] = (struct pollfd){.fd = p->k[i].fd, .events = POLLIN};
                int timeout = p->nk < p->size ? 1000 : -1;
                if (poll(f, nf, timeout) < 0 && errno != EINTR)
                        break;
                if (f[1].revents) {
                        struct signalfd_siginfo si;
                        bool quit = false;
                        while (read(p->sfd, &si, sizeof(si)) == sizeof(si))
                                quit |= si.ssi_signo != SIGCHLD;
                        while (waitpid(-1, NULL, WNOHANG) > 0) {
                        }
                        if (quit)
                                break;
                }
                /* keepers before clients: indexes move as they go */
                for (size_t i = nf; i-- > 2;)
                        if (f[i].revents)
                                keeper_input(p, i - 2);
                if (f[0].revents && pool_client(p))
                        break;
        }
        /* idle VMs go with the pool (handed ones are their runs'): a
         * keeper whose pool connection closes stops its VM, reaps it and
         * removes its dir; SIGKILL after 5 s */
        for (size_t i = 0; i < p->nk; i++)
                shutdown(p->k[i].fd, SHUT_RDWR);
        int64_t until = mono_ms() + 5000;
        for (size_t i = 0; i < p->nk; i++) {
                while (waitpid(p->k[i].pid, NULL, WNOHANG) == 0 && mono_ms() < until) {
                        struct timespec ts = {0, 5 * 1000 * 1000};
                        nanosleep(&ts, NULL);
                }
                if (kill(p->k[i].pid, 0) == 0) {
                        kill(p->k[i].pid, SIGKILL);
                        waitpid(p->k[i].pid, NULL, 0);
                }
        }
        _cleanup_free_ char *sock = xasprintf("%s/sock", p->dir);
        unlink(sock);
        rm_rf(p->dir);
        _exit(0);
}

/* ---- the API ---- */

/* The key of the pool a run with these options would use. */
static int key_for(struct msb_ctx *ctx, const struct msb_run_opts *o, char *key, size_t n, struct msb_error *err)
{
        struct vm v = {0};
        _cleanup_free_ char *why = NULL;
        int r = msb_kit_prepare(ctx, &v.kit, err);
        if (r >= 0)
                r = msb_accel_resolve(ctx, o->accel, &v.accel, &why, err);
        if (r >= 0)
                pool_key(&v, o->cpus, o->memory_mib, key, n);
        msb_kit_free(&v.kit);
        return r;
}

int msb_pool_start(struct msb_ctx *ctx, const struct msb_pool_opts *po, struct msb_error *err)
{
        if (po->size < 1 || po->size > POOL_MAX_SIZE)
                return msb_err(err, EINVAL, "--size %u: a pool keeps 1 to %d VMs", po->size, POOL_MAX_SIZE);
        struct msb_run_opts *o;
        msb_run_opts_new(&o);
        int r = 0;
        if (po->cpus && msb_run_opts_set_cpus(o, po->cpus) < 0)
                r = msb_err(err, EINVAL, "--cpus %u: 1 to 64", po->cpus);
        if (r >= 0 && po->memory_mib && msb_run_opts_set_memory_mib(o, po->memory_mib) < 0)
                r = msb_err(err, EINVAL, "--memory %u MiB: expected a size from 128M to 64G", po->memory_mib);
        msb_run_opts_set_accel(o, po->accel);
        struct pool *p = xcalloc(1, sizeof(*p));
        p->ctx = ctx;
        p->o = o;
        p->size = po->size;
        p->lfd = p->sfd = p->lock = -1;
        if (r >= 0)
                r = key_for(ctx, o, p->key, sizeof(p->key), err);
        _cleanup_free_ char *pd = pools_dir(ctx);
        if (r >= 0 && (r = mkdir_p(pd, 0700)) < 0)
                r = msb_err(err, r, "cannot create %s: %s", pd, strerror(-r));
        p->dir = xasprintf("%s/%s", pd, p->key);
        _cleanup_free_ char *lockp = xasprintf("%s/lock", p->dir), *sock = xasprintf("%s/sock", p->dir),
                             *logp = xasprintf("%s/pool.log", p->dir);
        _cleanup_close_ int lock = -1;
        if (r >= 0 && mkdir(p->dir, 0700) < 0 && errno != EEXIST)
                r = msb_err(err, errno, "cannot create %s: %s", p->dir, strerror(errno));
        if (r >= 0 && ((lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0))
                r = msb_err(err, EEXIST, "a pool of this size (%s) is already running: msb pool status", p->key);
        /* a client that found the directory stale may have removed it
         * between our open and our lock: ours must still be the lock */
        struct stat ls, ps;
        if (r >= 0 && (fstat(lock, &ls) < 0 || stat(lockp, &ps) < 0 || ls.st_ino != ps.st_ino || ls.st_dev != ps.st_dev))
                r = msb_err(err, EAGAIN, "pool %s: its directory changed while it started; run msb pool start again",
                            p->key);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (r >= 0 && strlen(sock) >= sizeof(sa.sun_path))
                r = msb_err(err, ENAMETOOLONG, "%s is too long for a unix socket; set MSB_HOME", sock);
        if (r >= 0) {
                strcpy(sa.sun_path, sock);
                unlink(sock);
                p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(p->lfd, 16) < 0)
                        r = msb_err(err, errno, "cannot listen on %s: %s", sock, strerror(errno));
        }
        int rp[2] = {-1, -1};
        if (r >= 0 && pipe2(rp, O_CLOEXEC) < 0)
                r = msb_err(err, errno, "pipe: %s", strerror(errno));
        pid_t pid = r >= 0 ? fork() : -1;
        if (r >= 0 && pid < 0)
                r = msb_err(err, errno, "fork: %s", strerror(errno));
        if (r >= 0 && pid == 0) {
                /* the daemon: out of the caller's session, its own log */
                setsid();
                if (fork() != 0)
                        _exit(0);
                close(rp[0]);
                int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
                int logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                dup2(nul, 0);
                dup2(nul, 1);
                dup2(logfd >= 0 ? logfd : nul, 2);
                /* nothing of the caller's reaches the keepers and VMs */
                for (int fd = 3; fd < 4096; fd++)
                        if (fd != lock && fd != p->lfd && fd != rp[1])
                                close(fd);
                if (chdir("/") < 0)
                        _exit(1);
                sigset_t m;
                sigemptyset(&m);
                sigaddset(&m, SIGTERM);
                sigaddset(&m, SIGINT);
                sigaddset(&m, SIGHUP);
                sigaddset(&m, SIGCHLD);
                sigprocmask(SIG_BLOCK, &m, NULL);
                signal(SIGPIPE, SIG_IGN);
                p->sfd = signalfd(-1, &m, SFD_CLOEXEC | SFD_NONBLOCK);
                fprintf(stderr, "msb pool %s: %u VMs of %u vCPU, %u MiB\n", p->key, p->size, o->cpus, o->memory_mib);
                (void)!write(rp[1], "ok", 2);
                close(rp[1]);
                p->lock = TAKE_FD(lock); /* held for the daemon's life */
                pool_main(p);
        }
        if (rp[1] >= 0)
                close(rp[1]);
        if (pid > 0) {
                waitpid(pid, NULL, 0);
                char ok[2] = "";
                if (read(rp[0], ok, 2) != 2)
                        r = msb_err(err, EIO, "the pool did not start: see %s", logp);
        }
        if (rp[0] >= 0)
                close(rp[0]);
        if (p->lfd >= 0)
                close(p->lfd);
        free(p->dir);
        free(p);
        msb_run_opts_free(o);
        return r;
}

/* Each pool's socket, with f run on each answer to REQ. */
static int each_pool(struct msb_ctx *ctx, const char *req, const char *only, void (*f)(const char *, void *),
                     void *ud)
{
        _cleanup_free_ char *pd = pools_dir(ctx);
        DIR *d = opendir(pd);
        if (!d)
                return 0;
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || (only && strcmp(only, de->d_name)))
                        continue;
                _cleanup_free_ char *sock = xasprintf("%s/%s/sock", pd, de->d_name);
                _cleanup_close_ int fd = unix_connect(sock);
                if (fd == -ECONNREFUSED || fd == -ENOENT) {
                        _cleanup_free_ char *dir = xasprintf("%s/%s", pd, de->d_name);
                        pool_dir_reap(dir);
                }
                if (fd < 0)
                        continue;
                struct timeval tv = {5, 0};
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                if (write_all(fd, req, strlen(req)) < 0)
                        continue;
                char buf[65536];
                size_t got = 0;
                ssize_t k;
                while (got < sizeof(buf) - 1 && (k = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
                        got += (size_t)k;
                buf[got] = 0;
                f(buf, ud);
                n++;
        }
        closedir(d);
        return n;
}

static void collect(const char *answer, void *ud)
{
        json_t *a = ud, *j = json_loads(answer, 0, NULL);
        if (j)
                json_array_append_new(a, j);
}

int msb_pool_status(struct msb_ctx *ctx, char **ret_json, struct msb_error *err)
{
        json_t *a = json_array();
        each_pool(ctx, "STATUS\n", NULL, collect, a);
        *ret_json = json_dumps(a, JSON_INDENT(2));
        json_decref(a);
        return *ret_json ? 0 : msb_err(err, ENOMEM, "out of memory");
}

static void nothing(const char *answer, void *ud)
{
        (void)answer;
        (void)ud;
}

int msb_pool_stop(struct msb_ctx *ctx, const char *key, struct msb_error *err)
{
        int n = each_pool(ctx, "STOP\n", key, nothing, NULL);
        if (key && n == 0)
                return msb_err(err, ENOENT, "no pool '%s' is running: msb pool status lists them", key);
        /* each is gone once its directory is */
        _cleanup_free_ char *pd = pools_dir(ctx);
        for (int i = 0; i < 500; i++) {
                DIR *d = opendir(pd);
                bool left = false;
                struct dirent *de;
                while (d && (de = readdir(d)))
                        if (de->d_name[0] != '.' && (!key || !strcmp(key, de->d_name))) {
                                _cleanup_free_ char *lk = xasprintf("%s/%s/lock", pd, de->d_name);
                                _cleanup_close_ int fd = open(lk, O_RDWR | O_CLOEXEC);
                                left |= fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0;
                        }
                if (d)
                        closedir(d);
                if (!left)
                        break;
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        return n;
}
