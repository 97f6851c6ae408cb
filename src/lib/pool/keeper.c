/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A pool's keeper: a process of its own that boots one VM as far as it
 * goes without a sandbox, waits at idle priority, and hands the VM over
 * to the run the pool passes it; then lives as long as that run's
 * connection and removes what is left of the VM.
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
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool.h"

#include "proto/proto.h"

/* ---- the keeper ---- */

/* Every thread of pid and of its descendants to policy (SCHED_IDLE while a
 * VM boots for the pool, SCHED_OTHER once it is a run's). */
static void sched_tree(pid_t pid, int policy, int depth)
{
        if (depth > 4)
                return;
        _cleanup_free_ char *tdir = xasprintf("/proc/%d/task", pid);
        _cleanup_closedir_ DIR *d = opendir(tdir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir_no_dot(d))) {
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
        return pool_send_fds(c, &h, sizeof(h), fds, HANDOVER_FDS);
}

/* Reap whatever of ours has exited. */
static void keeper_reap(void)
{
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
}

/* Boot the VM at idle priority as far as agentd's HELLO; a VM that does
 * not get there ends the keeper. */
static struct vm *keeper_boot(struct msb_ctx *ctx, const struct msb_run_opts *o, int pool_fd)
{
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
                                                                         : errno_text(-r));
                fprintf(stderr, "msb pool: a VM did not boot: %s\n", why);
                vm_free(vm);
                _exit(1);
        }
        return vm;
}

/* The pool sends the run's connection (returned), or goes away (-1); a VM
 * that dies meanwhile (the OOM killer likes idle ones) ends its keeper,
 * and the pool boots another (-1). */
static int keeper_wait_run(struct vm *vm, int pool_fd)
{
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
                        if (pool_recv_fds(pool_fd, &tag, 1, &c, 1) != 1)
                                c = -1;
                        break;
                }
        }
        return c;
}

/* Until the run's connection c closes. */
static void keeper_wait_end(int c)
{
        for (;;) {
                struct pollfd p = {.fd = c, .events = POLLIN};
                if (poll(&p, 1, -1) < 0 && errno != EINTR)
                        break;
                char b[64];
                if (p.revents && read(c, b, sizeof(b)) <= 0)
                        break;
        }
}

_Noreturn void pool_keeper_main(struct msb_ctx *ctx, const struct msb_run_opts *o, int pool_fd)
{
        prctl(PR_SET_NAME, "msb-pool-vm");
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
                _exit(1);
        /* our children (QEMU, the servers) are reaped here */
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        struct vm *vm = keeper_boot(ctx, o, pool_fd);
        char ready[96];
        int rl = snprintf(ready, sizeof(ready), "R %d %d %d %d %s\n", vm->sb.qemu.pid, vm->sb.fsd[0].pid,
                          vm->sb.fsd[1].pid, vm->sb.fsd[2].pid, vm->sb.id);
        (void)!write(pool_fd, ready, (size_t)rl);
        int c = keeper_wait_run(vm, pool_fd);
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
        keeper_wait_end(c);
        /* the run is over (or gone): what is left of the VM goes */
        vm_free(vm);
        keeper_reap();
        _exit(0);
}
