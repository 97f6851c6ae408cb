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
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/vm.h"

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

/* handover.c: c<cpus>-m<MiB>-<accel>-<hash of the kernel and initramfs> */
void pool_key(const struct vm *vm, unsigned cpus, unsigned mib, char *out, size_t n);
/* handover.c: <runtime>/.pools (owned); cleanup_stale() passes over dot names */
char *pools_dir(struct msb_ctx *ctx);
/* handover.c: a unix stream socket connected to path, or -errno */
int pool_unix_connect(const char *path);
/* handover.c: one message with up to HANDOVER_FDS fds; 0 or -EIO */
int pool_send_fds(int sock, const void *data, size_t len, const int *fds, size_t nfds);
/* handover.c: one message of exactly len bytes with up to maxfds fds (the
 * rest are closed); the number of fds, or -errno */
int pool_recv_fds(int sock, void *data, size_t len, int *fds, size_t maxfds);
/* handover.c: remove a dead pool's directory (nobody holds its lock) */
void pool_dir_reap(const char *dir);

/* keeper.c: a keeper's life, in the process the daemon forks for it:
 * boot one VM, say so on pool_fd, hand the VM to the run the pool passes */
_Noreturn void pool_keeper_main(struct msb_ctx *ctx, const struct msb_run_opts *o, int pool_fd);

/* daemon.c: the daemon of one size */
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

/* daemon.c: serve p->lfd and keep p->size VMs until STOP or a signal;
 * then the idle VMs and the pool's directory go */
_Noreturn void pool_daemon_main(struct pool *p);
