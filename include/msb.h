/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libmsb: run untrusted commands in throw-away microVMs.
 *
 * Conventions: functions return >= 0 on success and a negative errno on
 * failure.  Where a human needs context, the optional struct msb_error is
 * filled with a one-line message naming the bad input and the fix.  The
 * library never prints; log lines go to the callback set with
 * msb_ctx_set_log().  Out-parameters are named ret_* and written only on
 * success.
 *
 * Out of memory: the library aborts the process (as glib and systemd do)
 * rather than return -ENOMEM from every function that allocates; that is the
 * only way it ends the process.  -ENOMEM is still returned where the kernel
 * or a library refuses (a VM's memory, open_memstream).
 */
#ifndef MSB_H
#define MSB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MSB_VERSION "0.1.0"

/* Exit statuses msb_run() reports for failures of its own, as docker does. */
#define MSB_EXIT_MSB_FAILED 125    /* msb itself failed */
#define MSB_EXIT_NOT_EXECUTABLE 126 /* the command exists but cannot run */
#define MSB_EXIT_NOT_FOUND 127     /* the command was not found */

#include "msb-error.h" /* struct msb_error */

/* A context: where msb keeps images, kernels and sandbox runtime dirs. */
struct msb_ctx;

/* Create a context.  Directories come from MSB_HOME, else /var/lib/msb and
 * /run/msb for root, else $XDG_DATA_HOME/msb and $XDG_RUNTIME_DIR/msb.
 * Free with msb_ctx_free(). */
int msb_ctx_new(struct msb_ctx **ret_ctx, struct msb_error *err);
/* Keep named sandboxes in DIR/sandboxes and their runtime dirs in DIR/run
 * instead (msb-runtime's --root); images and kernels stay where they were. */
int msb_ctx_set_sandbox_home(struct msb_ctx *ctx, const char *dir, struct msb_error *err);
/* Free a context (NULL is fine). */
void msb_ctx_free(struct msb_ctx *ctx);
/* Pull over plain HTTP from registries not marked insecure in the config. */
void msb_ctx_set_insecure(struct msb_ctx *ctx, bool on);
/* Log each pull's summary (layers, bytes, seconds) at level 0 instead of 1. */
void msb_ctx_set_progress(struct msb_ctx *ctx, bool on);

/* One layer of a pull in progress. */
enum msb_layer_state { MSB_LAYER_WAITING, MSB_LAYER_ACTIVE, MSB_LAYER_DONE, MSB_LAYER_FAILED, MSB_LAYER_HAD };
struct msb_layer_progress {
        const char *digest; /* "sha256:..." */
        uint64_t size;      /* as the manifest declares it */
        uint64_t done;      /* bytes so far */
        enum msb_layer_state state;
};
/* Called by the pulling thread with every layer's state: once with
 * first = true when the downloads start, about five times a second while
 * they run, and once when all have ended; secs counts from the start.  The
 * library itself never prints: drawing is the caller's.  fn NULL: none. */
void msb_ctx_set_progress_fn(struct msb_ctx *ctx,
                             void (*fn)(const struct msb_layer_progress *layers, size_t n, double secs, bool first,
                                        void *userdata),
                             void *userdata);
/* For a threaded server: the library leaves signals alone (nothing is
 * forwarded to sandboxed processes, no signal mask is changed); processes
 * are stopped through msb_relay_opts.cancel_fd and timeouts instead. */
void msb_ctx_set_no_signals(struct msb_ctx *ctx, bool on);
/* Receive log lines up to level: MSB_LOG_WARN (-1) only what a caller
 * should show its user in any case, 0 = normal, 1 = verbose diagnostics.
 * Without a callback the library's lines go nowhere: it never prints. */
#define MSB_LOG_WARN (-1)
void msb_ctx_set_log(struct msb_ctx *ctx, int level, void (*fn)(const char *line, void *userdata),
                     void *userdata);
/* Where the user's images, kernels and caches are (owned by ctx). */
const char *msb_ctx_data_dir(const struct msb_ctx *ctx);
/* Where each running sandbox has its runtime dir (owned by ctx). */
const char *msb_ctx_runtime_dir(const struct msb_ctx *ctx);
/* Where kernels and images installed for every user are looked up after
 * the user's own ($MSB_SYSTEM_DIR, default <prefix>/lib/msb). */
const char *msb_ctx_system_dir(const struct msb_ctx *ctx);

enum msb_accel {
        MSB_ACCEL_AUTO = 0, /* KVM if a probe shows it runs guest code fast, else TCG */
        MSB_ACCEL_KVM,
        MSB_ACCEL_TCG,
};
/* Parse "auto" | "kvm" | "tcg". */
int msb_accel_parse(const char *s, enum msb_accel *ret_accel);

/* Options for one run.  Create with msb_run_opts_new(), free with
 * msb_run_opts_free().  Strings are copied. */
struct msb_run_opts;
/* New options with the defaults (MSB_DEFAULT_CPUS, MSB_DEFAULT_MEMORY_MIB,
 * stdio 0, 1, 2, the image's command). */
int msb_run_opts_new(struct msb_run_opts **ret_opts);
/* Free them and every string they hold (NULL is fine). */
void msb_run_opts_free(struct msb_run_opts *opts);
/* The image to run (a name in the local store, e.g. "busybox" or "busybox:1"). */
int msb_run_opts_set_image(struct msb_run_opts *opts, const char *ref);
/* Run a host directory as the root filesystem instead of an image (it is
 * shared read-only; writes go to a throw-away overlay). */
int msb_run_opts_set_rootfs(struct msb_run_opts *opts, const char *dir);
/* Command and arguments; NULL or empty = the image's Cmd. */
int msb_run_opts_set_command(struct msb_run_opts *opts, char *const argv[]);
/* Override the image's Entrypoint ("" clears it). */
int msb_run_opts_set_entrypoint(struct msb_run_opts *opts, const char *entrypoint);
/* Add "K=V", overriding the image's value for K; -EINVAL without a "=" or
 * with an empty K. */
int msb_run_opts_add_env(struct msb_run_opts *opts, const char *kv);
/* The command's working directory, overriding the image's WorkingDir; an
 * absolute guest path, else -EINVAL. */
int msb_run_opts_set_workdir(struct msb_run_opts *opts, const char *dir);
/* "name", "uid", "name:group" or "uid:gid", resolved in the image; 1 to 256
 * bytes with no newline, else -EINVAL. */
int msb_run_opts_set_user(struct msb_run_opts *opts, const char *user);
/* A label, the caller's own metadata kept with a named sandbox (msb ls
 * --filter label=KEY=VALUE, the API's labels): KEY 1 to 128 of A-Z, a-z,
 * 0-9, '-', '.', '_', '/'; VALUE up to 1024 bytes with no control
 * character; up to 64 labels; a key again replaces its value.  -EINVAL,
 * -E2BIG, naming the label in err. */
#define MSB_LABEL_KEY_MAX 128u
#define MSB_LABEL_VALUE_MAX 1024u
#define MSB_LABELS_MAX 64u
int msb_run_opts_add_label(struct msb_run_opts *opts, const char *key, const char *value, struct msb_error *err);
/* The guest's hostname (default: the sandbox's name, or "msb-" and the
 * run's id): 1 to 63 characters of A-Z, a-z, 0-9, '-' and '.', else
 * -EINVAL. */
int msb_run_opts_set_hostname(struct msb_run_opts *opts, const char *hostname);
/* A VM's size: vCPUs 1 to MSB_MAX_CPUS, memory MSB_MIN_MEMORY_MIB to
 * MSB_MAX_MEMORY_MIB; -ERANGE outside.  Unset: the defaults. */
#define MSB_DEFAULT_CPUS 1u
#define MSB_MAX_CPUS 64u
#define MSB_DEFAULT_MEMORY_MIB 512u
#define MSB_MIN_MEMORY_MIB 128u
#define MSB_MAX_MEMORY_MIB (64u * 1024u)
/* vCPUs: 1 to MSB_MAX_CPUS (64), else -ERANGE. */
int msb_run_opts_set_cpus(struct msb_run_opts *opts, unsigned cpus);
/* Guest memory in MiB: MSB_MIN_MEMORY_MIB (128) to MSB_MAX_MEMORY_MIB
 * (65536), else -ERANGE. */
int msb_run_opts_set_memory_mib(struct msb_run_opts *opts, unsigned mib);
/* The accelerator (default MSB_ACCEL_AUTO); resolved when the run starts. */
int msb_run_opts_set_accel(struct msb_run_opts *opts, enum msb_accel accel);
/* virtio-fs server: "msb" (default) or "virtiofsd"; NULL means
 * $MSB_FS_BACKEND or "msb".  -EINVAL for an unknown name. */
int msb_run_opts_set_fs_backend(struct msb_run_opts *opts, const char *name);
/* Forward stdin_fd to the command (otherwise it reads /dev/null). */
int msb_run_opts_set_stdin(struct msb_run_opts *opts, bool forward);
/* Where the command's streams go (default 0, 1, 2). */
int msb_run_opts_set_stdio(struct msb_run_opts *opts, int stdin_fd, int stdout_fd, int stderr_fd);

/* Read-only: with the msb fs backend every write is refused on the host
 * (EROFS), whatever the guest does; the guest mounts it read-only too. */
#define MSB_VOLUME_RO (1u << 0)
/* Guest chmod/chown/mknod reach the host inode (virtiofsd's behaviour).  By
 * default they are kept in a user.msb.stat xattr and the host inode's owner
 * and mode never change. */
#define MSB_VOLUME_OWNER_PASSTHROUGH (1u << 1)
/* mounted nosuid / noexec in the guest (nodev always is) */
#define MSB_VOLUME_NOSUID (1u << 2)
#define MSB_VOLUME_NOEXEC (1u << 3)
/* Share a host file or directory at guest_path (absolute; not /, not under
 * /proc, /sys or /dev, no ".."); host_path is resolved with realpath() now.
 * Up to 32 per run.  Errors (-EINVAL, -ENOENT, -E2BIG) name the volume in
 * err.  See docs/volumes.md. */
int msb_run_opts_add_volume(struct msb_run_opts *opts, const char *host_path, const char *guest_path,
                            unsigned flags, struct msb_error *err);

/* The network (docs/network.md).  Mode: public (the default), private,
 * host, all or none.  Rules (up to 256, first match wins, before the
 * mode's defaults): allow|deny[:egress|:ingress]@TARGET[:tcp|udp|icmp[:PORTS]].
 * Published ports (up to 64): [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|/udp], on
 * 127.0.0.1 unless HOSTIP is given; the host port must be free and
 * unprivileged.  Errors name the option and the fix. */
/* The network's mode (NULL: public). */
int msb_run_opts_set_net(struct msb_run_opts *opts, const char *mode, struct msb_error *err);
/* Add one rule, after those added before. */
int msb_run_opts_add_net_rule(struct msb_run_opts *opts, const char *rule, struct msb_error *err);
/* Publish one port. */
int msb_run_opts_add_port(struct msb_run_opts *opts, const char *spec, struct msb_error *err);
/* Give the VM an existing tap device of the network namespace msb runs
 * in instead of msb's network (msb-runtime: the namespace is the
 * container's; its owner, podman or CNI, routes, forwards ports and
 * filters; no msb policy applies).  SPEC: "ifname=NAME,mac=MAC,ip=A.B.C.D/N
 * [,gw=A.B.C.D][,ip6=ADDR/N][,gw6=ADDR][,mtu=N]", the guest's eth0. */
int msb_run_opts_set_net_tap(struct msb_run_opts *opts, const char *spec, struct msb_error *err);
/* For OCI bundles (msb-runtime, docs/oci-runtime.md).  root_rw: the
 * --rootfs directory is the guest's root itself, served read-write with
 * owners passed through and no overlay (writes land in it, as under runc);
 * it implies no disk.  ids: the main process's uid, gid and additional
 * groups, used as given (no lookup in the image).  rlimits: setrlimit() for
 * the main process (up to 16; Linux resource numbers).  tmpfs: a tmpfs made
 * in the guest at GUEST, options as OCI writes them (size=, mode=,
 * nr_inodes=, uid=, gid=, ro, nosuid, nodev, noexec, atime flavours; up to
 * 16).  Errors name the value. */
/* root_rw: the --rootfs directory is the guest's root, read-write. */
int msb_run_opts_set_root_rw(struct msb_run_opts *opts, bool rw);
/* The main process's uid, gid and n additional groups (at most 63, else
 * -E2BIG). */
int msb_run_opts_set_ids(struct msb_run_opts *opts, uint32_t uid, uint32_t gid, const uint32_t *groups, size_t n,
                         struct msb_error *err);
/* A setrlimit() for the main process: a Linux resource number, soft <=
 * hard (-EINVAL); the same resource again replaces it; -E2BIG past 16. */
int msb_run_opts_add_rlimit(struct msb_run_opts *opts, int resource, uint64_t soft, uint64_t hard,
                            struct msb_error *err);
/* A tmpfs at GUEST with OCI's options (-EINVAL for others, -E2BIG past 16). */
int msb_run_opts_add_tmpfs(struct msb_run_opts *opts, const char *guest, const char *options, struct msb_error *err);
/* With root_rw: the root served and mounted read-only after all (an OCI
 * bundle's root.readonly): writes fail with EROFS. */
int msb_run_opts_set_root_readonly(struct msb_run_opts *opts, bool ro);
/* A file system of the guest kernel's own: type "tmpfs", "mqueue" or
 * "cgroup2" at GUEST, which may be under /dev or /sys (/dev/shm with a
 * size=, /dev/mqueue, /sys/fs/cgroup) but not /proc, /dev or /sys
 * themselves; options as for tmpfs (only ro, nosuid, nodev, noexec and
 * atime flavours for the others).  At most 16 in all with the tmpfs. */
int msb_run_opts_add_kernel_mount(struct msb_run_opts *opts, const char *type, const char *guest,
                                  const char *options, struct msb_error *err);

/* A process's confinement inside the guest (OCI process.capabilities,
 * noNewPrivileges, linux.seccomp).  caps: bounding, effective, permitted,
 * inheritable, ambient, bit N = capability N; seccomp: a classic BPF
 * program (struct sock_filter[], seccomp_len instructions, at most 4096)
 * or NULL.  Without one a process has its uid's usual rights. */
struct msb_confine {
        uint64_t caps[5];
        bool no_new_privs;
        const void *seccomp;
        size_t seccomp_len;
};
/* Confine the main process as c says (copied; -E2BIG for a seccomp
 * program over 4096 instructions). */
int msb_run_opts_set_confine(struct msb_run_opts *opts, const struct msb_confine *c, struct msb_error *err);
/* Steps on the guest's root once it is mounted (OCI linux.maskedPaths,
 * readonlyPaths, sysctl): a path masked (/dev/null over a file, an empty
 * read-only tmpfs over a directory) or made read-only, a sysctl written
 * (KEY as net.ipv4.ping_group_range).  A path missing in the guest is
 * skipped.  At most 64 in all. */
/* Mask GUEST (an absolute guest path). */
int msb_run_opts_add_masked_path(struct msb_run_opts *opts, const char *guest, struct msb_error *err);
/* Make GUEST read-only (an absolute guest path). */
int msb_run_opts_add_readonly_path(struct msb_run_opts *opts, const char *guest, struct msb_error *err);
/* Write VALUE to sysctl KEY. */
int msb_run_opts_add_sysctl(struct msb_run_opts *opts, const char *key, const char *value, struct msb_error *err);

/* Never take a pre-booted VM from a pool (msb pool), boot one. */
int msb_run_opts_set_no_pool(struct msb_run_opts *opts, bool no_pool);
/* The main process gets a pseudo-terminal of rows x cols, each 1 to 65535
 * (-EINVAL outside); tty false: none. */
int msb_run_opts_set_tty(struct msb_run_opts *opts, bool tty, unsigned rows, unsigned cols);
/* Size of the persistent writable layer (a sparse disk image; default 8 GiB),
 * 64 MiB to 16 TiB (-ERANGE outside); 0: none, writes go to guest memory and are lost when the sandbox stops. */
int msb_run_opts_set_disk_size(struct msb_run_opts *opts, uint64_t bytes);
/* For named sandboxes (msb_sandbox_create): */
/* Stop the sandbox this many seconds after it started (0: never). */
int msb_run_opts_set_max_duration(struct msb_run_opts *opts, unsigned secs);
/* Stop it after this many seconds with no exec and no client (0: never). */
int msb_run_opts_set_idle_timeout(struct msb_run_opts *opts, unsigned secs);
/* Kill the main process after this many seconds (0: never); the run's
 * status is then 124, as timeout(1)'s. */
int msb_run_opts_set_timeout(struct msb_run_opts *opts, unsigned secs);
/* Remove the sandbox when it stops (run --rm, run -d without a name). */
int msb_run_opts_set_auto_remove(struct msb_run_opts *opts, bool remove);
enum msb_pull_policy { MSB_PULL_MISSING = 0, MSB_PULL_ALWAYS, MSB_PULL_NEVER };
/* When msb_run pulls its image (default: when it is not in the store);
 * -EINVAL for a value not in the enum. */
int msb_run_opts_set_pull(struct msb_run_opts *opts, enum msb_pull_policy policy);

/* The options together make sense (e.g. no -p with --net none). */
int msb_run_opts_check(const struct msb_run_opts *opts, struct msb_error *err);

/* Boot a VM, run the command, relay its stdio, tear everything down.
 * *ret_status is the command's exit status, 128+N if it was killed by signal
 * N.  Returns 0 when the command ran; 1 when it could not be executed
 * (err says why, *ret_status is 126 or 127); < 0 (and fills err) when msb
 * itself failed, in which case the caller should exit 125.
 *
 * While it runs, SIGINT and SIGTERM are caught: the first is forwarded to the
 * command, a second one stops the VM.  Nothing is left behind on return. */
int msb_run(struct msb_ctx *ctx, const struct msb_run_opts *opts, int *ret_status, struct msb_error *err);

/* ---- sandboxes that live (docs/sandboxes.md) ----
 *
 * A named sandbox is an object on disk (<data>/sandboxes/NAME: its
 * options, state, writable layer and logs) that a per-sandbox supervisor
 * process runs: QEMU, the virtio-fs servers and the guest channel belong to
 * the supervisor, and every call below talks to it over a unix socket only
 * its owner can open.  Errors name the sandbox; calls are safe to make
 * concurrently from several processes (one wins, the others get an error).
 */

/* A fresh name for a sandbox nobody named: "msb-" and 8 random hex
 * digits (out holds at least 13 bytes). */
void msb_sandbox_name_random(char *out);
/* docker's grammar: [a-zA-Z0-9][a-zA-Z0-9_.-]+, at most 128 characters. */
int msb_sandbox_name_check(const char *name, struct msb_error *err);
/* Record a sandbox (status "created"); nothing runs yet.  -EEXIST if the
 * name is taken.  opts' stdio fds are not kept. */
int msb_sandbox_create(struct msb_ctx *ctx, const char *name, const struct msb_run_opts *opts,
                       struct msb_error *err);
/* Boot it under a new supervisor and return once the guest runs (and its
 * main process started, unless MSB_START_HOLD: then it starts at the first
 * msb_sandbox_attach, so no output is missed).  -EBUSY if it runs. */
#define MSB_START_HOLD (1u << 0)
/* Boot without the main process, for a while (msb cp on a stopped
 * sandbox): the sandbox stops by itself once its last client and process
 * are gone (or 60 s after the start if no client came), and its recorded
 * status, exit code and times are left as they were. */
#define MSB_START_NO_MAIN (1u << 1)
int msb_sandbox_start(struct msb_ctx *ctx, const char *name, unsigned flags, struct msb_error *err);
/* SIGTERM to the main process, then after grace_ms everything stops (the
 * guest syncs its disks).  Returns once the sandbox is stopped. */
int msb_sandbox_stop(struct msb_ctx *ctx, const char *name, unsigned grace_ms, struct msb_error *err);
/* A signal to the main process's process group. */
int msb_sandbox_kill(struct msb_ctx *ctx, const char *name, int signo, struct msb_error *err);
/* Wait until it stops; *ret_status as msb_run's. */
int msb_sandbox_wait(struct msb_ctx *ctx, const char *name, int *ret_status, struct msb_error *err);
/* Remove it and its writable layer and logs; a running one only with force
 * (it is stopped at once). */
int msb_sandbox_remove(struct msb_ctx *ctx, const char *name, bool force, struct msb_error *err);

struct msb_sandbox_info {
        char *name;
        char *image;
        char *command;   /* the main command, space-joined ("" if none) */
        const char *status; /* "created", "running", "stopped", "crashed" */
        int exit_code;   /* of the main process once stopped, else -1 */
        int64_t created, started, finished; /* unix seconds, 0 if never */
        unsigned cpus, memory_mib;
        int pid;         /* the supervisor's, when running */
        bool tty, interactive; /* how its main process was created (-t, -i) */
        char **labels;   /* "KEY=VALUE", NULL-terminated (never NULL) */
};
/* Every named sandbox, its state reconciled with its supervisor's (free
 * with msb_sandbox_info_free(*ret, *ret_n)). */
int msb_sandbox_list(struct msb_ctx *ctx, struct msb_sandbox_info **ret, size_t *ret_n, struct msb_error *err);
/* Free the n infos msb_sandbox_list or msb_sandbox_get returned. */
void msb_sandbox_info_free(struct msb_sandbox_info *info, size_t n);
/* One sandbox's; free with msb_sandbox_info_free(info, 1). */
int msb_sandbox_get(struct msb_ctx *ctx, const char *name, struct msb_sandbox_info **ret, struct msb_error *err);
/* JSON: config, state, pids, runtime paths, volumes, kernel. */
int msb_sandbox_inspect(struct msb_ctx *ctx, const char *name, char **ret_json, struct msb_error *err);
/* The main process's log files, newest last (for msb logs; CRI format:
 * "RFC3339NANO stdout|stderr P|F text"). */
int msb_sandbox_log_paths(struct msb_ctx *ctx, const char *name, char ***ret_paths, struct msb_error *err);
/* The main process's log as records, oldest first (msb logs, the API's
 * logs route).  time: as written ("2026-12-01T05:15:03.123456789Z"); err:
 * stderr, else stdout; partial: the line goes on in the next record (P,
 * not F); data: the text without its newline, len bytes (owned by the
 * reader, valid during the call). */
struct msb_log_record {
        const char *time;
        bool err, partial;
        const char *data;
        size_t len;
};
typedef int msb_log_fn(const struct msb_log_record *rec, void *userdata); /* nonzero: stop */
struct msb_logs_opts {
        bool follow;        /* then wait for more until the sandbox stops */
        long tail;          /* the last tail records only; -1: all */
        const char *since;  /* records at or after this stamp (msb_logs_since_parse), or NULL */
        bool no_stdout, no_stderr;
        int cancel_fd;      /* 0: none; else a follow ends once it is readable or hung up */
};
/* Read them: 0 at the end (or when cb stopped), -ENOENT for no sandbox. */
int msb_sandbox_logs(struct msb_ctx *ctx, const char *name, const struct msb_logs_opts *lo, msb_log_fn *cb,
                     void *userdata, struct msb_error *err);
/* --since T: RFC 3339 (2026-01-31T10:00:00Z), a unix time, or a duration
 * ago (30s, 10m, 2h, 1d) into a stamp to compare with (out: n bytes, at
 * least 40); -EINVAL otherwise. */
int msb_logs_since_parse(const char *s, char *out, size_t n);
/* What it costs the host now: CPU time and resident memory of its VM and
 * helpers (QEMU, the virtio-fs servers, msb-netd; 0 when it does not run),
 * and the blocks its writable layer takes (of disk_size_bytes; 0 without
 * one).  The network's bytes are not counted yet: -1. */
struct msb_sandbox_metrics {
        bool running;
        double cpu_seconds;
        uint64_t memory_bytes;
        uint64_t disk_bytes, disk_size_bytes;
        int64_t net_rx_bytes, net_tx_bytes;
};
int msb_sandbox_metrics(struct msb_ctx *ctx, const char *name, struct msb_sandbox_metrics *ret,
                        struct msb_error *err);
/* Lifecycle events of every named sandbox of the user, as they happen:
 * type "created", "started", "exited" (exit_code set) then "stopped",
 * "crashed", "removed"; image is NULL for "removed".  Runs until cb
 * returns nonzero or cancel_fd (0: none) is readable or hung up; 0 then.
 * Changes are seen through inotify, and once a second in any case (a
 * supervisor that died writes nothing); one stopped and removed between
 * two looks shows as "stopped" then "removed", its exit code unseen. */
struct msb_sandbox_event {
        const char *type, *name, *image;
        int exit_code;
        int64_t time; /* unix seconds, when it was seen */
};
typedef int msb_sandbox_event_fn(const struct msb_sandbox_event *e, void *userdata);
int msb_sandbox_events(struct msb_ctx *ctx, int cancel_fd, msb_sandbox_event_fn *cb, void *userdata,
                       struct msb_error *err);
/* Is it running (its supervisor alive)? */
bool msb_sandbox_running(struct msb_ctx *ctx, const char *name);

/* A pool of pre-booted VMs for runs of one size (docs/pool.md): a daemon
 * of the calling user's that keeps size VMs booted up to where agentd
 * waits for a sandbox; msb run and msb create take one when their cpus,
 * memory, kernel and accelerator match.  Start returns once it listens
 * (-EEXIST: one of that size runs).  Status: a JSON array, one object per
 * pool.  Stop: every pool, or the one named KEY; the number stopped. */
struct msb_pool_opts {
        unsigned size, cpus, memory_mib; /* 0: msb's default cpus and memory */
        enum msb_accel accel;
};
/* Start a pool's daemon; returns once it listens. */
int msb_pool_start(struct msb_ctx *ctx, const struct msb_pool_opts *opts, struct msb_error *err);
/* The pools that run, as JSON (the caller frees *ret_json). */
int msb_pool_status(struct msb_ctx *ctx, char **ret_json, struct msb_error *err);
/* Stop the pool KEY, or every pool (NULL); the number stopped. */
int msb_pool_stop(struct msb_ctx *ctx, const char *key, struct msb_error *err);

/* A process in a running sandbox: exec'd, or the main one attached to. */
struct msb_proc;
struct msb_exec_opts {
        char *const *argv;  /* required */
        char *const *env;   /* "K=V" on top of the sandbox's env, or NULL */
        const char *workdir; /* NULL: the sandbox's */
        const char *user;    /* NULL: the sandbox's */
        bool stdin;          /* forward stdin (else /dev/null) */
        bool tty;            /* a pseudo-terminal of rows x cols */
        unsigned rows, cols;
        const struct msb_confine *confine; /* NULL: the uid's usual rights */
        /* kept: it runs on when its client goes (no stdin EOF, no SIGHUP),
         * and any later client may read it, write its stdin, signal it or
         * resize it by id (msb_sandbox_proc_*; docs/sandboxes.md) */
        bool keep;
};
/* Start a process; returns once it runs.  1 (err says why, *ret_status
 * 126/127) when it could not be executed.  -EAGAIN when the sandbox runs
 * as many processes (1023), or kept processes (256), as it may. */
int msb_sandbox_exec(struct msb_ctx *ctx, const char *name, const struct msb_exec_opts *opts,
                     struct msb_proc **ret, int *ret_status, struct msb_error *err);
/* Attach to the main process (one client at a time: -EBUSY). */
int msb_sandbox_attach(struct msb_ctx *ctx, const char *name, bool forward_stdin, struct msb_proc **ret,
                       struct msb_error *err);
struct msb_relay_opts {
        int in_fd, out_fd, err_fd; /* in_fd -1: none */
        int tty_fd;        /* a terminal whose size follows SIGWINCH, or -1 */
        const char *detach_keys; /* e.g. "\x10\x11" (Ctrl-P Ctrl-Q), NULL: none; at most MSB_DETACH_KEYS_MAX */
        unsigned timeout_ms; /* SIGKILL the process after this long (0: never);
                              * its status is then 124 */
        bool no_wait_stop;   /* attached to the main process: return with its
                              * status at once, while the VM still stops
                              * (its writable file systems are synced
                              * before the status is sent) */
        int cancel_fd;       /* 0: none; else once it is readable or hung up
                              * the process is killed, as at timeout_ms */
};
/* Relay the process's streams until it exits (0, *ret_status as
 * msb_run's), the user detaches (MSB_DETACHED) or the sandbox stops.
 * SIGINT/SIGTERM/SIGHUP are forwarded to the process while it runs
 * (unless msb_ctx_set_no_signals).  Output whose fd's reader went away is
 * dropped. */
#define MSB_DETACHED 2
#define MSB_DETACH_KEYS_MAX 8
int msb_proc_relay(struct msb_proc *p, const struct msb_relay_opts *ro, int *ret_status, struct msb_error *err);
/* Send signal signo (1 to 64, else -EINVAL) to the process. */
int msb_proc_signal(struct msb_proc *p, int signo);
/* The process's terminal size (with tty): SIGWINCH in the guest. */
int msb_proc_resize(struct msb_proc *p, unsigned rows, unsigned cols);
/* The connection to poll for when driving a process without
 * msb_proc_relay (readable: output or its end is there). */
int msb_proc_fd(const struct msb_proc *p);
/* Close the connection to the process and free p (NULL is fine).  A kept
 * process runs on; any other one's stdin ends (a terminal hangs up). */
void msb_proc_free(struct msb_proc *p);

/* ---- processes by id (docs/sandboxes.md#processes) ----
 *
 * Every process of a running sandbox has an id there, never reused while
 * it runs: 1 is the main process, the others count up from 2.  A kept
 * process (msb_exec_opts.keep) belongs to no client: its output is kept
 * (the last 256 KiB, stdout and stderr in order) for whoever attaches
 * later, any number of clients may read it at once (one that falls 1 MiB
 * behind is disconnected; the process never waits for a reader), and one
 * client at a time writes its stdin.  Once it ended, its status and
 * output stay for the 64 newest such.  Errors: -ESRCH when the sandbox is
 * not running (or, for signals, the process has exited), -ENOENT for an
 * id it has no process of, each with err naming both.
 */
/* p's id in its sandbox, and its guest pid (0 until known) */
uint32_t msb_proc_id(const struct msb_proc *p);
int msb_proc_pid(const struct msb_proc *p);
struct msb_proc_info {
        uint32_t id;
        int pid;       /* the guest's; 0 until it started */
        char *command; /* its argv joined by spaces (the first 4 KiB, 64 arguments) */
        char **argv;   /* the same, NULL-terminated */
        bool tty, kept, main, running;
        bool stdin;    /* its stdin is open */
        int exit_code; /* msb_run's convention (128 + signal), -1 while running */
        int64_t started_ms; /* unix time in ms */
};
/* The sandbox's processes, by id: running ones (the main one, exec'd ones
 * kept or not; msb cp's are not listed) and kept ones that ended.  Free
 * with msb_proc_info_free(*ret, *ret_n). */
int msb_sandbox_procs(struct msb_ctx *ctx, const char *name, struct msb_proc_info **ret, size_t *ret_n,
                      struct msb_error *err);
void msb_proc_info_free(struct msb_proc_info *v, size_t n);
/* The id of the process with guest pid pid (a running one rather than
 * one that ended; -ENOENT if none). */
int msb_sandbox_proc_find_pid(struct msb_ctx *ctx, const char *name, int pid, uint32_t *ret_id,
                              struct msb_error *err);
#define MSB_ATTACH_STDIN (1u << 0)      /* become its stdin writer (-EBUSY: it has one) */
#define MSB_ATTACH_NO_BACKLOG (1u << 1) /* live output only */
#define MSB_ATTACH_NO_OUTPUT (1u << 3)  /* a kept one's: no output, only its
                                         * exit (a stdin writer, msb_proc_write) */
/* Attach to process id: a kept one's output (its backlog first, unless
 * NO_BACKLOG), then its exit (at once for one that ended); id 1 is the
 * main process, as msb_sandbox_attach (one client at a time).  A process
 * neither kept nor the main one: -EBUSY, its own client reads it.  With
 * MSB_ATTACH_STDIN: -EPIPE if its stdin is not open. */
int msb_sandbox_proc_attach(struct msb_ctx *ctx, const char *name, uint32_t id, unsigned flags,
                            struct msb_proc **ret, struct msb_error *err);
/* Signal signo (1 to 64) to process id's process group; -ESRCH if it
 * has exited. */
int msb_sandbox_proc_signal(struct msb_ctx *ctx, const char *name, uint32_t id, int signo, struct msb_error *err);
/* Process id's terminal size (-ENOTTY without one). */
int msb_sandbox_proc_resize(struct msb_ctx *ctx, const char *name, uint32_t id, unsigned rows, unsigned cols,
                            struct msb_error *err);
/* Write n bytes to kept process id's stdin, then with eof close it;
 * returns once the guest took the bytes (-EPIPE if it exited first or its
 * stdin is not open, -EBUSY while another client writes it, -ETIMEDOUT
 * when it read nothing for 30 s).  A writer that goes leaves stdin open. */
int msb_sandbox_proc_write(struct msb_ctx *ctx, const char *name, uint32_t id, const void *buf, size_t n,
                           bool eof, struct msb_error *err);
/* The same on p, attached with MSB_ATTACH_STDIN | MSB_ATTACH_NO_OUTPUT,
 * any number of times (a stream of stdin that stays its one writer;
 * -EINVAL for a p attached otherwise); n may be 0 (with eof: close it). */
int msb_proc_write(struct msb_proc *p, const void *buf, size_t n, bool eof, struct msb_error *err);

/* What msb_proc_read returns, one at a time, in order: STARTED (first,
 * when the pid is known), DROPPED (an attach's backlog lost older output),
 * STDOUT/STDERR chunks (a terminal's output is all STDOUT), EXIT (last). */
enum msb_proc_event_type {
        MSB_PROC_EV_STARTED = 1,
        MSB_PROC_EV_STDOUT,
        MSB_PROC_EV_STDERR,
        MSB_PROC_EV_DROPPED,
        MSB_PROC_EV_EXIT,
};
struct msb_proc_event {
        enum msb_proc_event_type type;
        /* STDOUT, STDERR: the bytes (at most 32 KiB), owned by p and valid
         * until the next call on p (msb_proc_read, _relay, _free) */
        const void *data;
        size_t len;
        int pid;          /* STARTED */
        uint64_t dropped; /* DROPPED: bytes of older output no longer kept */
        int status;       /* EXIT: msb_run's convention */
};
/* The next event of p, waiting at most timeout_ms (-1: no limit, 0: what
 * is there): 1 and *ev filled, 0 when nothing came in time, or -errno
 * (-ECONNRESET: the sandbox stopped, or a reader of a kept process fell
 * 1 MiB behind and was disconnected; -EPIPE after EXIT).  Output counts
 * as handed on once the next call is made: a process that is not kept
 * waits for its reader.  Before polling msb_proc_fd, call it with 0 until
 * it returns 0 (events may be buffered already).  Not with msb_proc_relay
 * on the same p. */
int msb_proc_read(struct msb_proc *p, int timeout_ms, struct msb_proc_event *ev, struct msb_error *err);

/* ---- copying files (msb cp; docs/sandboxes.md) ----
 *
 * A file or a tree, in or out, as docker cp does it: into an existing
 * directory under the source's name ("SRC/." copies a directory's
 * contents), else as the destination itself, made next to it and renamed
 * into place.  Modes and modification times are kept; symlinks are copied
 * as symlinks (never followed below the source), hard links as hard links;
 * devices, fifos and sockets are left out (counted).  A stopped sandbox is
 * booted for the copy without its main process and stopped again.
 */
struct msb_copy_stats {
        uint64_t entries; /* archive entries sent */
        uint64_t bytes;   /* file contents */
        uint64_t skipped; /* devices, fifos, sockets not copied */
};
/* Copy in: the files keep the host's owners (docker cp -a); else root's. */
#define MSB_COPY_ARCHIVE (1u << 0)
/* guest_path out of the sandbox to host_dst.  Whatever the guest presents
 * (symlinks, ".." names, special files), nothing is written outside
 * host_dst (or, when it lands by rename, a temporary directory next to
 * it); files are the caller's, without setuid/setgid bits.  Errors name
 * the input: -ENOENT (no such sandbox, guest path or host directory),
 * -ENOTDIR/-EISDIR (a directory over a file or the reverse); on an error
 * about the inputs nothing has changed.  flags: none yet (0). */
int msb_sandbox_copy_out(struct msb_ctx *ctx, const char *name, const char *guest_path, const char *host_dst,
                         unsigned flags, struct msb_copy_stats *ret_stats, struct msb_error *err);
/* host_src into the sandbox at guest_dst; nothing outside host_src is
 * read (a symlink in it is copied as one).  Errors as msb_sandbox_copy_out;
 * flags: MSB_COPY_ARCHIVE. */
int msb_sandbox_copy_in(struct msb_ctx *ctx, const char *name, const char *host_src, const char *guest_dst,
                        unsigned flags, struct msb_copy_stats *ret_stats, struct msb_error *err);
/* docker cp's "-": a tar of guest_path (its top entry named as it, or "."
 * for "DIR/." and "/") written to fd as the guest sends it; and a tar read
 * from fd (ustar, pax, GNU long names) extracted at guest_dst, a directory
 * (made if missing). */
int msb_sandbox_copy_out_tar(struct msb_ctx *ctx, const char *name, const char *guest_path, int fd, unsigned flags,
                             struct msb_error *err);
/* The tar read from fd extracted at guest_dst (see above). */
int msb_sandbox_copy_in_tar(struct msb_ctx *ctx, const char *name, int fd, const char *guest_dst, unsigned flags,
                            struct msb_error *err);

/* ---- files in a running sandbox (docs/sandboxes.md) ----
 *
 * Single files and directories by their guest path, for the API server:
 * each call runs a routine of agentd's in the sandbox (as msb cp does),
 * as the user fo->user names ("root", "1000:1000", a name of the guest's
 * /etc/passwd; NULL, "" or fo NULL: the sandbox's user, as msb exec runs
 * it), so every path is resolved and every permission checked in the
 * guest as that user's would be.  Nothing is ever turned into a host
 * path.  The sandbox must be running: these calls never boot it.
 *
 * Paths are absolute guest paths of 1 to MSB_FILE_PATH_MAX bytes.  Errors
 * are negative errnos with err naming the input: the guest's own errno as
 * it came (-ENOENT, -ENOTDIR, -EISDIR, -EEXIST, -EACCES, -ENOTEMPTY...,
 * err "sandbox 'NAME': PATH: <its text>"); -EINVAL for bad input here (a
 * relative or empty path, a mode over 07777, a user with a newline or
 * over 256 bytes, one the guest does not know); -ENAMETOOLONG; -ENOENT for
 * no such sandbox; -ESRCH when it is not running (as msb_sandbox_exec);
 * -EIO when the guest breaks the routines' format (what it sends is
 * bounds-checked: src/proto/filerec.h), -ECONNRESET when the sandbox stops
 * meanwhile.
 *
 * fo->cancel_fd (0: none): once it is readable or hung up the call stops
 * (the routine in the guest is killed) and returns -ECANCELED; a watch
 * returns 0 then. */
#define MSB_FILE_PATH_MAX 4095u
#define MSB_FILE_LIST_MAX_DEPTH 64u
#define MSB_FILE_LIST_MAX 100000u
#define MSB_FILE_WATCH_MAX_DIRS 8192u
struct msb_file_opts {
        const char *user; /* NULL or "": the sandbox's user */
        int cancel_fd;    /* 0: none */
};
struct msb_file_info {
        char *path;        /* guest path, absolute */
        char *name;        /* its last component ("/" for the root) */
        const char *type;  /* "file", "dir", "symlink", "other" (static strings) */
        uint64_t size;
        uint32_t mode;     /* st_mode: type and permission bits */
        uint32_t uid, gid;
        int64_t mtime_ns;  /* unix time, nanoseconds */
        char *link_target; /* a symlink's target, else NULL */
};
/* The entry at path itself (a symlink is not followed); free with
 * msb_file_info_free(*ret, 1). */
int msb_sandbox_file_stat(struct msb_ctx *ctx, const char *name, const struct msb_file_opts *fo, const char *path,
                          struct msb_file_info **ret, struct msb_error *err);
/* The entries of directory path (a symlink to one is followed there, never
 * below), depth levels down (1: its own entries; 1 to
 * MSB_FILE_LIST_MAX_DEPTH), each directory's after it, in the guest's
 * directory order; subdirectories it cannot read are left out, and so are
 * entries whose path would be longer than MSB_FILE_PATH_MAX.  At most
 * max_entries (1 to MSB_FILE_LIST_MAX; 0: that maximum): *ret_truncated
 * says whether there were more.  Free with msb_file_info_free(*ret, *ret_n). */
int msb_sandbox_file_list(struct msb_ctx *ctx, const char *name, const struct msb_file_opts *fo, const char *path,
                          unsigned depth, size_t max_entries, struct msb_file_info **ret, size_t *ret_n,
                          bool *ret_truncated, struct msb_error *err);
/* Free n infos (v NULL is fine). */
void msb_file_info_free(struct msb_file_info *v, size_t n);
/* A directory, with mode (up to 07777; no umask); -EEXIST if path exists.
 * parents: the missing ones too (0755), and an existing directory is fine
 * (its mode left as it is). */
int msb_sandbox_file_mkdir(struct msb_ctx *ctx, const char *name, const struct msb_file_opts *fo, const char *path,
                           unsigned mode, bool parents, struct msb_error *err);
/* A file, symlink (not what it points to) or empty directory; recursive:
 * a directory and everything in it (never through a symlink).  "/" is
 * refused (-EINVAL). */
int msb_sandbox_file_remove(struct msb_ctx *ctx, const char *name, const struct msb_file_opts *fo, const char *path,
                            bool recursive, struct msb_error *err);
/* rename(2) in the guest: to is replaced if it is a file (or an empty
 * directory, for a directory). */
int msb_sandbox_file_rename(struct msb_ctx *ctx, const char *name, const struct msb_file_opts *fo, const char *from,
                            const char *to, struct msb_error *err);
/* Bytes [offset, offset + length) of the regular file at path (symlinks
 * followed; length UINT64_MAX: to its end), written to fd as they come;
 * *ret_size (may be NULL) is the file's size.  Fewer when the file is
 * shorter, or shrinks meanwhile; never more than its size when it was
 * opened.  -EISDIR for a directory, -EINVAL for another kind.  A reader of
 * fd that goes away ends the read (-EPIPE; no SIGPIPE). */
int msb_sandbox_file_read(struct msb_ctx *ctx, const char *name, const struct msb_file_opts *fo, const char *path,
                          uint64_t offset, uint64_t length, int fd, uint64_t *ret_size, struct msb_error *err);
/* fd's bytes until its end into path, with mode (up to 07777, exactly;
 * its owner the user's), its parent directories made if parents (0755).
 * They go into a temporary file next to path, renamed over it at the end:
 * a failed or interrupted write (an error reading fd, cancel_fd, the
 * sandbox stopping) leaves the old file as it was, or nothing; a symlink
 * at path is replaced, not written through.  -EISDIR when path is a
 * directory; the user needs write access to path's directory. */
int msb_sandbox_file_write(struct msb_ctx *ctx, const char *name, const struct msb_file_opts *fo, const char *path,
                           int fd, unsigned mode, bool parents, struct msb_error *err);
/* One change under a watched directory.  op: "ready" first, once, when the
 * watches are in place (what changes after it is reported; path is the
 * directory's), then "create" (made, or moved in), "write" (its contents
 * changed), "remove", "rename" (moved away, under its old name), "chmod"
 * (mode, owner, times).  type: "dir" or, as far as the guest saw, "file",
 * "symlink", "other" ("file" for whatever is gone).  Valid during the
 * callback only. */
struct msb_file_event {
        const char *op;
        const char *path; /* absolute */
        const char *type;
};
typedef int msb_file_event_fn(const struct msb_file_event *ev, void *userdata); /* nonzero: stop */
/* Watch directory path (inotify in the guest): its entries, and with
 * recursive those of every directory below it, new ones included (at most
 * MSB_FILE_WATCH_MAX_DIRS directories: -ENOSPC beyond, as when the guest
 * kernel's own limit is reached).  Runs until cb returns nonzero (that
 * value is returned), fo->cancel_fd becomes readable (0), the directory
 * itself goes (-ENOENT), events were lost because the guest's queue
 * overflowed (-EOVERFLOW: watch again) or the sandbox stops
 * (-ECONNRESET). */
int msb_sandbox_file_watch(struct msb_ctx *ctx, const char *name, const struct msb_file_opts *fo, const char *path,
                           bool recursive, msb_file_event_fn *cb, void *userdata, struct msb_error *err);

/* Pull an image from its registry (mirrors from msb's config file first):
 * REF as docker takes it ("alpine", "host:5000/ns/app:1", "name@sha256:…").
 * Every blob is verified while it downloads; the image is usable only once
 * complete.  *ret_name (if not NULL) gets the stored name,
 * "docker.io/library/alpine:latest". */
int msb_image_pull(struct msb_ctx *ctx, const char *ref, char **ret_name, struct msb_error *err);

/* Load images from a `docker save` archive or an OCI archive (a tar of an
 * OCI layout), gzip or plain.  Names come from the archive (RepoTags,
 * io.containerd.image.name, a full org.opencontainers.image.ref.name), or
 * name if given; they are stored as registry names
 * ("docker.io/library/alpine:latest").  *ret_names lists them (strv). */
int msb_image_load(struct msb_ctx *ctx, const char *file, const char *name, char ***ret_names, struct msb_error *err);

struct msb_image_info {
        char *name;      /* as stored: "docker.io/library/alpine:latest", "busybox:latest" */
        char *id;        /* first 12 hex digits of the manifest digest */
        uint64_t size;   /* bytes the unpacked root takes on disk */
        int64_t created; /* from the image config, seconds since 1970; 0 if unknown */
        bool system;     /* installed for every user (read-only), not in the user's store */
};
/* The stored images, the user's own and then those installed for every
 * user (free with msb_image_list_free). */
int msb_image_list(struct msb_ctx *ctx, struct msb_image_info **ret, size_t *ret_n, struct msb_error *err);
/* Free the n entries msb_image_list returned. */
void msb_image_list_free(struct msb_image_info *v, size_t n);
/* Remove a name; its rootfs and blobs go when no other name uses them.
 * -EBUSY while a running sandbox uses the image, -ENOENT if unknown. */
int msb_image_remove(struct msb_ctx *ctx, const char *ref, struct msb_error *err);

/* Check user/password against registry (host[:port], "docker.io") and keep
 * them in ~/.docker/config.json ($DOCKER_CONFIG), where pulls look. */
int msb_registry_login(struct msb_ctx *ctx, const char *registry, const char *user, const char *password,
                       struct msb_error *err);
/* Forget them; -ENOENT if there were none. */
int msb_registry_logout(const char *registry, struct msb_error *err);

/* Import an image from an OCI image layout directory (as written by umoci or
 * skopeo).  tag selects the manifest annotated with that ref name (NULL: the
 * only one).  name is stored as given, with ":latest" added when it has no
 * tag. */
int msb_image_import(struct msb_ctx *ctx, const char *layout_dir, const char *tag, const char *name,
                     struct msb_error *err);

/* What msb would use for a run, for `msb info` and bug reports. */
struct msb_info {
        char *data_dir;
        char *runtime_dir;
        char *kernel;         /* path */
        char *kernel_release;
        char *kernel_flavor;  /* "msb" (tailored), "debian", "custom" */
        char *initramfs;      /* path (built if needed) */
        char *accel;          /* "kvm" or "tcg" */
        char *accel_why;
        char *qemu_version;   /* first line of qemu --version */
        char *fs_server;      /* backend name and binary */
        char *fs_server_version;
        char *system_dir;     /* kernels and images installed for every user */
        char *passt;          /* path, or NULL when none is installed */
        char *passt_version;
};
/* Fill *ret_info (free with msb_info_free).  May run the KVM probe and build
 * the initramfs, as a run would. */
int msb_info_get(struct msb_ctx *ctx, struct msb_info **ret_info, struct msb_error *err);
/* Free what msb_info_get filled (NULL is fine). */
void msb_info_free(struct msb_info *info);

/* Parse a size such as "512M", "1G", "1048576" (bytes), "2g". */
int msb_parse_size(const char *s, uint64_t *ret_bytes);
/* A signal as msb kill takes it: a number from 1 to 64, or a name with or
 * without "SIG" (HUP, INT, QUIT, KILL, USR1, USR2, TERM, CONT, STOP, TSTP,
 * WINCH, ALRM, PIPE), any case; -EINVAL otherwise. */
int msb_signal_parse(const char *s);

#ifdef __cplusplus
}
#endif
#endif
