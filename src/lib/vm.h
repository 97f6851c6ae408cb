/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A booted VM and what it owns (runtime dir, virtio-fs servers, QEMU, the
 * control channel), shared by the ephemeral run (run.c) and a named
 * sandbox's supervisor (supervisor/).  The run's options are in
 * run_opts.c; the steps of a start are declared in run.h.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"
#include "proc.h"
#include "vmm.h"
#include "image/image.h"
#include "common/users.h"
#include "proto/proto.h"

#define MAX_VOLUMES 32u
#define MAX_TMPFS 16u
#define MAX_ROOT_STEPS 64u
#define DEFAULT_MEMORY_MIB MSB_DEFAULT_MEMORY_MIB
/* the main process's id on the guest channel */
#define VM_MAIN_ID 1u
/* the persistent writable layer's disk image */
#define SB_DISK_DEFAULT (8ull << 30)
#define SB_DISK_MIN (64ull << 20)
#define SB_DISK_MAX (16ull << 40)

struct volume {
        char *host;   /* resolved once: realpath */
        char *guest;  /* normalized */
        unsigned flags;
        bool file;    /* host is a regular file */
};

struct msb_run_opts {
        char *image;
        char *rootfs;
        char **command;
        char *entrypoint;
        bool entrypoint_set;
        char **env;
        char **labels; /* "KEY=VALUE", the caller's own metadata */
        char *workdir;
        char *user;
        char *hostname;
        unsigned cpus;
        unsigned memory_mib;
        enum msb_accel accel;
        char *fs_backend;
        enum msb_pull_policy pull;
        bool stdin_forward;
        int fds[3];
        struct volume vols[MAX_VOLUMES];
        size_t nvols;
        /* named sandboxes */
        bool tty;
        unsigned rows, cols;
        uint64_t disk_size;
        unsigned max_duration, idle_timeout;
        bool auto_remove;
        unsigned timeout; /* seconds, ephemeral run */
        bool no_disk; /* writes go to guest memory (tmpfs), as in an ephemeral run */
        bool no_pool; /* never a pool's VM */
        /* OCI bundles (msb-runtime): the root served read-write, owners
         * passed through, no overlay; explicit ids; rlimits; tmpfs mounts */
        bool root_rw, root_ro;
        bool ids_set;
        struct ids ids;
        struct msb_rlimit rlimits[MSB_PROTO_MAX_RLIMITS];
        uint32_t nrlimits;
        struct tmpfs_mount {
                char *type; /* tmpfs, mqueue, cgroup2 */
                char *path, *options;
                unsigned flags; /* MSB_MOUNT_RO/NOSUID/NODEV/NOEXEC */
        } tmpfs[MAX_TMPFS];
        size_t ntmpfs;
        struct root_step {
                unsigned kind; /* MSB_MOUNT_MASK, _ROPATH or _SYSCTL */
                char *path;    /* guest path (/proc/sys/... for a sysctl) */
                char *value;   /* a sysctl's, else "" */
        } steps[MAX_ROOT_STEPS];
        size_t nsteps;
        bool confine_set;
        struct msb_confine confine; /* seccomp points into seccomp_buf */
        uint8_t *seccomp_buf;
        /* the network (src/lib/netopts.c); mode NULL: public */
        char *net_mode;
        char **net_rules;
        char **net_ports;
        char *net_tap; /* msb_run_opts_set_net_tap()'s spec, or NULL */
};

struct child {
        pid_t pid;
        int pidfd;
        char *what;
        char *log;   /* its stderr, for the message when it dies */
        bool net;    /* msb-netd, among the servers */
};

struct sandbox {
        struct msb_ctx *ctx;
        const struct msb_run_opts *o;
        char id[25];
        char *dir;
        int lock_fd;
        int ctl;     /* our end of the control channel */
        struct child qemu;
        struct child fsd[MAX_VOLUMES + 2]; /* the servers: virtio-fs, then msb-netd */
        size_t nfsd;
        struct vmm_share shares[MAX_VOLUMES + 1];
        size_t nshares;
        char *console;
        struct console *con; /* its keeper (console.c), where we run QEMU */
        char *net_socket;
        char *net_tap; /* the tap's name, with net_tap */
        char net_mac[18];
        struct warm *warm; /* a pool's VM this sandbox took over (pool/), or NULL */
};

struct vm_opts {
        const char *disk;     /* the writable layer's disk image, or NULL for tmpfs */
        const char *hostname; /* default hostname (the sandbox's name), or NULL */
        const char *pinned_rootfs; /* the image must still resolve to this root */
        bool main_optional;   /* no command anywhere: no main process */
        bool hold_main;       /* the main EXEC is sent later (vm->main), by the caller */
        bool tty;             /* the main process gets a terminal of rows x cols */
        uint32_t rows, cols;
        bool warm;            /* a pool's VM: no sandbox yet (pool/) */
};

struct vm {
        struct sandbox sb;
        const struct fsd_backend *be;
        struct msb_kit kit;
        struct msb_image_config cfg;
        enum msb_accel accel;
        char *rootfs, *hostname, *exec_path;
        const char *user;
        char **argv, **env, **prefetch;
        struct ids ids;
        bool have_ids;
        struct msb_mount_spec mounts[MAX_VOLUMES + MAX_TMPFS + MAX_ROOT_STEPS];
        char subs[MAX_VOLUMES][12];
        struct msb_setup_msg setup;
        struct msb_net_spec net; /* eth0's configuration, when has_net */
        bool has_net;
        struct msb_exec_msg main; /* argc 0: none */
        struct msb_buf out;       /* queued for the guest: HELLO, SETUP[, EXEC] */
        int64_t boot_started, boot_deadline; /* CLOCK_MONOTONIC ms: agentd must answer by then */
};

/* ---- net.c ---- */
/* The guest's side of its link.  Private addresses, but the guest reaches
 * nothing by them: passt terminates every connection on the host. */
#define NET_GUEST4 "10.0.2.15"
#define NET_GW4 "10.0.2.2"
/* every sandbox's: each has a link of its own */
#define NET_GUEST_MAC "52:54:00:6d:73:62"
/* The options together make sense (no ports or rules with --net none). */
int net_opts_check(const struct msb_run_opts *o, struct msb_error *err);
/* Start msb-netd (and through it passt) unless --net none; fills
 * vm->net.  The process joins sb->fsd[]. */
int vm_net(struct vm *vm, const struct msb_run_opts *o, struct msb_error *err);
/* msb-netd --warm for a pool's VM; netd_policy_argv(): a sandbox's own
 * arguments (mode, rules, ports). */
int vm_net_warm(struct vm *vm, struct msb_error *err);
char **netd_policy_argv(const struct msb_run_opts *o, bool verbose, bool direct);

/* ---- pool/: pre-booted VMs (docs/pool.md) ---- */
/* Take a warm VM from a pool matching this run, if there is one: 1 and
 * vm->sb holds it (runtime dir, QEMU, the servers to configure), or 0: boot
 * as usual.  Never an error of the run's. */
int pool_take(struct vm *vm, const struct msb_run_opts *o, const struct vm_opts *vo);
/* With sb->warm: configure the next warm virtio-fs server with argv (as it
 * would have been started) instead of starting one. */
int warm_add_server(struct sandbox *sb, char **argv, const char *what, struct msb_error *err);
/* The warm servers this run did not configure are told to serve nothing. */
int warm_finish_shares(struct sandbox *sb, struct msb_error *err);
/* Give the warm msb-netd its policy; whether it set up IPv6. */
int warm_net(struct vm *vm, char **policy, struct msb_error *err);
bool warm_net_v6(const struct sandbox *sb);
/* The warm servers' answers to their configurations (sent by
 * warm_add_server(), warm_finish_shares(), warm_net()): read once the
 * guest has its SETUP, so that both proceed at once. */
int warm_settle(struct sandbox *sb, struct msb_error *err);
/* Teardown: the keeper's connection closed (it removes what is left). */
void warm_release(struct sandbox *sb);
/* The runtime dir, lock and QEMU of a VM booted for a pool. */
int vm_boot_warm(struct vm *vm, const struct msb_run_opts *o, struct msb_error *err);
/* Fill an EXEC's confinement (MSB_EXEC_CONFINE) from c; m points into c. */
void exec_confine(struct msb_exec_msg *m, const struct msb_confine *c);

/* A VM that owns nothing yet, for vm_start or vm_boot_warm; vm_free. */
struct vm *vm_new(struct msb_ctx *ctx, const struct msb_run_opts *o);
/* Resolve, then boot: on success the VM is starting and vm->out holds what
 * goes to the guest first.  On failure nothing is left behind. */
int vm_start(struct msb_ctx *ctx, const struct msb_run_opts *o, const struct vm_opts *vo, struct vm **ret,
             struct msb_error *err);
/* Stop everything the VM owns and remove its runtime dir. */
void vm_free(struct vm *vm);
/* The guest console's last lines (owned). */
/* ---- console.c ---- */
/* What the console log may grow to before it is rotated (console.log.1):
 * the console costs /run at most twice this. */
#define CONSOLE_LOG_MAX (1u << 20)
/* Open sb->console; *ret_qemu_end is the socket QEMU writes to (what it
 * writes waits in the socket until console_run). */
int console_start(struct sandbox *sb, int *ret_qemu_end, struct msb_error *err);
/* Start the thread that copies the console to sb->console, bounded: after
 * QEMU is spawned, so that msb's new thread does not hold up QEMU's exec. */
int console_run(struct sandbox *sb, struct msb_error *err);
/* Once QEMU has exited: wait up to timeout_ms for its last bytes to be
 * written; whether they were. */
bool console_settle(struct sandbox *sb, int timeout_ms);
/* QEMU is gone: write the rest, end the thread. */
void console_stop(struct sandbox *sb);

/* Why a VM stopped: what, then the first failed helper's own last lines,
 * or the guest console's. */
char *vm_failure(struct vm *vm, const char *what);
int64_t mono_ms(void);
