/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb-runtime: an OCI runtime (runc's command line) whose containers are
 * msb named sandboxes.  One file per job: main.c (global options, logging,
 * dispatch), state.c (a container's state dir), bundle.c (config.json to
 * msb run options; its sections in bundle-process.c, bundle-mounts.c,
 * bundle-linux.c, bundle-resources.c: bundle.h), shim.c (the process conmon waits on), commands.c (the
 * verbs), exec.c (runtime exec), console.c (--console-socket).
 * See docs/oci-runtime.md.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/error.h"
#include "msb.h"

/* What runc answers for every failure of its own. */
#define RT_EXIT_FAILED 1

/* The global options. */
struct rt_globals {
        const char *root; /* --root: state dirs, and the sandboxes under .msb */
        const char *log;  /* --log FILE, or NULL */
        bool log_json;    /* --log-format json */
        bool debug;
        bool systemd_cgroup; /* --systemd-cgroup: cgroupsPath is slice:prefix:name */
};
extern struct rt_globals rt_g;

/* One line to stderr ("msb-runtime: ...") and to --log as an error;
 * returns RT_EXIT_FAILED for `return rt_error(...)`. */
int rt_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* To --log only (level "debug" with --debug, else nothing; "warning"
 * always). */
void rt_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void rt_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The caller's msb context (images, kernels) with its sandboxes and
 * runtime dirs in <root>/.msb.  NULL after rt_error(). */
struct msb_ctx *rt_ctx(void);
/* libmsb's log lines into --log. */
void rt_lib_log(const char *line, void *userdata);

/* ---- state.c: <root>/<id>/ ---- */
struct rt_container {
        char *id;
        char *name;   /* the msb sandbox's */
        char *bundle; /* absolute */
        char *created; /* RFC 3339 */
        char *annotations; /* JSON object text */
        char *dir;    /* <root>/<id> */
        pid_t pid;    /* the shim's, 0 before it exists */
        uint64_t pid_start; /* its start time (/proc/PID/stat field 22), against pid reuse */
        bool tty;
        char **cgroups; /* the container's cgroup directories, NULL-terminated, or NULL */
};
enum rt_status { RT_CREATING, RT_CREATED, RT_RUNNING, RT_STOPPED };
const char *rt_status_name(enum rt_status s);
/* runc's grammar for IDs ([A-Za-z0-9_+.-]+, not . or ..), also a path
 * component of --root; -EINVAL after rt_error(). */
int rt_id_check(const char *id);
/* The sandbox name for an ID: the ID itself when msb takes it, else
 * "oci-" + a readable part + a hash (out: at least 129 bytes). */
void rt_id_to_name(const char *id, char *out, size_t n);
/* Load <root>/<id>/state.json; -ENOENT (after rt_error: "container ID
 * does not exist") or -EIO. */
int rt_container_load(const char *id, struct rt_container *ret);
int rt_container_save(const struct rt_container *c);
void rt_container_free(struct rt_container *c);
/* created (the shim waits at the fifo), running, or stopped. */
enum rt_status rt_container_status(struct msb_ctx *ctx, const struct rt_container *c);
/* Is c->pid still the shim we started? */
bool rt_shim_alive(const struct rt_container *c);
uint64_t rt_pid_start_time(pid_t pid);
/* "<dir>/exec.fifo" (owned) */
char *rt_fifo_path(const struct rt_container *c);
/* The state JSON of the runtime spec (owned). */
char *rt_state_json(struct msb_ctx *ctx, const struct rt_container *c, bool pretty);
/* RFC 3339 UTC with nanoseconds, now. */
void rt_now_rfc3339(char *out, size_t n);

/* ---- netns.c: a container's network namespace, handed to its VM ---- */
/* In the current network namespace (NS names it in messages): its one
 * interface is redirected to a new tap device.  0 with *ret_spec the
 * msb_run_opts_set_net_tap() spec (owned); 0 and NULL: no interface but
 * lo (--network none), or *ret_taken: another VM holds it (a pod's other
 * container).  -errno with err filled (several interfaces, no IPv4...). */
int rt_netns_claim(const char *ns, char **ret_spec, bool *ret_taken, struct msb_error *err);

/* ---- confine.c: capabilities, no_new_privs, seccomp ---- */
#define MSB_CAP_SETS_RT 5      /* bounding, effective, permitted, inheritable, ambient */
#define MSB_SECCOMP_MAX_RT 4096 /* instructions */
/* A capability's number from CAP_NAME or NAME (any case), or -1. */
int rt_cap_number(const char *name);
/* process.capabilities into masks (unknown names: left out, warned). */
int rt_caps_parse(json_t *caps, uint64_t out[MSB_CAP_SETS_RT], struct msb_error *err);
/* linux.seccomp into a classic BPF program for this architecture (owned,
 * *ret_len instructions).  -errno with err naming the field. */
int rt_seccomp_compile(json_t *seccomp, void **ret_bpf, size_t *ret_len, struct msb_error *err);
/* A process's confinement from process.capabilities (NULL: root keeps
 * every capability, another uid has none), noNewPrivileges and the
 * bundle's linux.seccomp (or NULL).  *any false: nothing asked.  The
 * filter goes to *bpf (owned); c->seccomp points at it. */
int rt_confine_from(json_t *caps, bool no_new_privs, bool root, json_t *seccomp, struct msb_confine *c, void **bpf,
                    bool *any, struct msb_error *err);

/* ---- config.c: msb-runtime's own settings ---- */
#define RT_CONFIG_DEFAULT "/etc/msb/runtime.conf"
struct rt_config {
        bool raise_cpus, raise_memory; /* annotations-may-raise */
};
/* $MSB_RUNTIME_CONFIG, else RT_CONFIG_DEFAULT. */
const char *rt_config_path(void);
/* A missing file is all defaults; -EINVAL after rt_error(). */
int rt_config_load(struct rt_config *ret);

/* ---- cgroup.c: the container's cgroup on the host ---- */
/* linux.resources as the cgroup gets them (0 or NULL: not set; -1:
 * unlimited) and linux.cgroupsPath. */
struct rt_resources {
        int64_t cpu_quota;
        uint64_t cpu_period, cpu_shares;
        char *cpus, *mems;
        int64_t mem_limit, mem_swap, mem_reservation;
        int64_t pids_limit;
        char **unified; /* key, value, key, value... (v2 only) */
        size_t n_unified;
        char *cgroups_path;
};
/* Any limit at all (without one, a cgroup that cannot be made is a
 * warning, not an error: rootless). */
bool rt_resources_any(const struct rt_resources *r);
/* Make the cgroup (one directory per hierarchy) and write the limits:
 * 0 with *ret_dirs (owned, NULL-terminated), or -errno with err naming the
 * field; nothing made stays. */
int rt_cgroup_create(const char *id, const struct rt_resources *r, char ***ret_dirs, struct msb_error *err);
/* Put pid into every one of dirs. */
int rt_cgroup_join(char **dirs, pid_t pid, struct msb_error *err);
/* rmdir each, once empty; what is still in one after a second is killed. */
void rt_cgroup_remove(char **dirs);
/* Pure, for unit tests: "machine.slice:libpod:abc" to
 * "/machine.slice/libpod-abc.scope"; a-b.slice nests in a.slice. */
int rt_cgroup_systemd_path(const char *spec, char *out, size_t n, struct msb_error *err);
/* No "." or ".." components, not too long. */
int rt_cgroup_path_check(const char *p, struct msb_error *err);
/* The host-side minimum of pids.limit: QEMU's threads (its I/O pool
 * grows to 64), one per vCPU, msb's helpers. */
#define RT_PIDS_MIN(cpus) (80u + (cpus))

/* ---- bundle.c: config.json ---- */
struct rt_bundle {
        struct msb_run_opts *o;
        char *netns;      /* linux.namespaces network path, or NULL */
        bool netns_new;   /* a network namespace without a path: a new, empty one */
        bool pod_sandbox; /* a Kubernetes pod's pause container (CRI annotations) */
        char *annotations; /* JSON object text */
        bool terminal;
        unsigned rows, cols;
        char *root;        /* root.path, resolved */
        char **mountpoints; /* "d/path" or "f/path": each mount's destination, a dir or a file */
        bool has_oom_score_adj; /* process.oomScoreAdj: the shim's own, so the VM's */
        int oom_score_adj;
        struct rt_resources res; /* for the host's cgroup */
};
/* Read <bundle>/config.json into b (run options for the sandbox); every
 * field msb cannot honour is refused with an error naming it. -errno after
 * rt_error(). */
int rt_bundle_load(const char *bundle, struct rt_bundle *b);
void rt_bundle_free(struct rt_bundle *b);
/* The process JSON of `exec --process` or of config.json's "process". */
struct rt_process {
        char **argv, **env;
        char *cwd;
        char *user; /* "uid:gid" */
        bool terminal;
        unsigned rows, cols;
        bool confined; /* capabilities, no_new_privs or a filter asked for */
        struct msb_confine confine;
        void *bpf;
        json_t *json; /* the --process object, or NULL */
};
/* An exec'd process's confinement, as runc's: the capabilities and
 * noNewPrivileges of its --process object (else of the bundle's process),
 * the bundle's seccomp filter; no_new_privs forces it (exec's flag).
 * -errno after rt_error(). */
int rt_exec_confine(const char *bundle, struct rt_process *p, bool no_new_privs);
/* Parse a process object given as JSON text (from --process). */
int rt_process_parse_file(const char *path, struct rt_process *p);
void rt_process_free(struct rt_process *p);
/* vCPUs and guest memory from linux.resources (pure, for unit tests):
 * quota/period rounded up, else the cpuset's count, else 0 (msb's
 * default); memory: the limit less RT_HOST_RESERVE_MIB, so that the VM
 * fits in the cgroup with QEMU and msb's helpers; 0 when no limit; a
 * limit too small for MSB_MIN_MEMORY_MIB of guest is an error.  Errors
 * name the field. */
#define RT_HOST_RESERVE_MIB 96u
int rt_size_from_resources(int64_t quota, uint64_t period, const char *cpus, int64_t mem_limit, unsigned *ret_cpus,
                           unsigned *ret_mib, char *errbuf, size_t errn);

/* ---- console.c ---- */
/* A host pty pair: *ret_master, *ret_slave (raw, close-on-exec). */
int rt_pty_open(int *ret_master, int *ret_slave, unsigned rows, unsigned cols);
/* Send fd over the unix socket at path, as runc does (SCM_RIGHTS, the
 * pty's name as the data). */
int rt_console_send(const char *path, int fd);

/* ---- shim.c ---- */
struct rt_shim_args {
        struct rt_container *c;
        struct rt_bundle *b;
        const char *console_socket;
        const char *pid_file;
};
/* Fork the shim; returns once the VM is up (0) or failed (after
 * rt_error).  The shim's pid is in c->pid and in pid_file. */
int rt_shim_spawn(struct msb_ctx *ctx, struct rt_shim_args *a);
/* The relay child of `exec`: same shape, for one process. */
int rt_write_pid_file(const char *path, pid_t pid);
/* A child (shim, exec relay) writes "ok" on fd once it runs, or why not,
 * and closes it; false (the child reaped, err->message its reason or "")
 * unless ok. */
bool rt_child_ready(int fd, pid_t pid, struct msb_error *err);

/* ---- the verbs ---- */
int rt_cmd_create(int argc, char **argv);
int rt_cmd_start(int argc, char **argv);
int rt_cmd_state(int argc, char **argv);
int rt_cmd_kill(int argc, char **argv);
int rt_cmd_delete(int argc, char **argv);
int rt_cmd_exec(int argc, char **argv);
int rt_cmd_ps(int argc, char **argv);
int rt_cmd_list(int argc, char **argv);
int rt_cmd_features(int argc, char **argv);
/* A signal by name (with or without SIG) or number; -1 if none. */
int rt_parse_signal(const char *s);
