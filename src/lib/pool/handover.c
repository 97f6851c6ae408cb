/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the pool's processes share: the key of a pool's size, its
 * directory, and the unix sockets over which the VM's fds are handed from
 * a keeper to the run (SCM_RIGHTS).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "pool.h"

/* ---- keys and paths ---- */

static uint64_t fnv1a(uint64_t h, const char *s)
{
        for (; s && *s; s++)
                h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
        return (h ^ 0xff) * 0x100000001b3ull;
}

/* c<cpus>-m<MiB>-<accel>-<hash of the kernel and initramfs> */
void pool_key(const struct vm *vm, unsigned cpus, unsigned mib, char *out, size_t n)
{
        uint64_t h = fnv1a(fnv1a(0xcbf29ce484222325ull, vm->kit.kernel), vm->kit.initramfs);
        h = fnv1a(h, vm->kit.acpi ? "acpi" : "mmio");
        snprintf(out, n, "c%u-m%u-%s-%016llx", cpus, mib, vm->accel == MSB_ACCEL_KVM ? "kvm" : "tcg",
                 (unsigned long long)h);
}

/* <runtime>/.pools: cleanup_stale() passes over dot names */
char *pools_dir(struct msb_ctx *ctx)
{
        return xasprintf("%s/.pools", ctx->runtime_dir);
}

int pool_unix_connect(const char *path)
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

int pool_send_fds(int sock, const void *data, size_t len, const int *fds, size_t nfds)
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
int pool_recv_fds(int sock, void *data, size_t len, int *fds, size_t maxfds)
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

/* A pool killed without its cleanup (SIGKILL) leaves its socket: whoever
 * finds it refusing connections, with nobody holding the lock, removes
 * the directory.  Its idle VMs died with it. */
void pool_dir_reap(const char *dir)
{
        _cleanup_free_ char *lk = xasprintf("%s/lock", dir);
        _cleanup_close_ int fd = open(lk, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
                rm_rf(dir);
}
