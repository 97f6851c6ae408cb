/* SPDX-License-Identifier: Apache-2.0 */
/* Named sandboxes on disk (sbstore.c) and their supervisor (supervisor/). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "vm.h"

#define SB_NAME_MAX 128

struct sb_state {
        char status[16]; /* created, running, stopped, crashed */
        int pid;         /* the supervisor's */
        int qemu_pid;    /* while running */
        char *server_pids; /* the virtio-fs servers', space-separated, while running */
        int net_pid;     /* msb-netd's, while running with a network */
        int64_t created, started, finished;
        int exit_code;   /* -1: none */
        char *runtime;   /* runtime dir while running */
        char *socket;    /* the supervisor's socket while running */
        char *error;     /* why the last start or run failed */
        char *kernel;
};

char *sb_dir(struct msb_ctx *ctx, const char *name);
/* sbconfig.c: whether every string of o is valid UTF-8 (JSON holds no
 * other): 0, or -EINVAL with err naming the input. */
int sb_opts_check_utf8(const struct msb_run_opts *o, struct msb_error *err);
/* sbconfig.c: o as config.json's object (a new reference). */
json_t *sb_config_json(const struct msb_run_opts *o);
/* sbconfig.c: the string at key of object j, or NULL */
const char *sb_jstr(json_t *j, const char *key);
/* sbconfig.c: the array of strings at key of j, as a new vector (or NULL) */
char **sb_jstrv(json_t *j, const char *key);
/* sbconfig.c: read config.json back into new run options (*ret). */
int sb_config_load(struct msb_ctx *ctx, const char *name, struct msb_run_opts **ret, struct msb_error *err);
int sb_state_read(const char *dir, struct sb_state *st);
int sb_state_write(const char *dir, const struct sb_state *st);
void sb_state_free(struct sb_state *st);
/* Is a supervisor holding the sandbox's run.lock? */
bool sb_alive(const char *dir);
/* The state, "running" checked against the lock ("crashed" if it is free). */
int sb_state_current(struct msb_ctx *ctx, const char *name, struct sb_state *st, struct msb_error *err);
/* op.lock, taken without waiting: its fd, or -EBUSY with err filled. */
int sb_oplock(struct msb_ctx *ctx, const char *name, struct msb_error *err);
/* Name checked, then op.lock taken (ret_lock non-NULL: its fd), then the
 * current state read (st non-NULL): the opening of a lifecycle call.
 * On failure nothing is held. */
int sb_open(struct msb_ctx *ctx, const char *name, int *ret_lock, struct sb_state *st, struct msb_error *err);
/* sb_open() for whether the sandbox is running now: *ret_running. */
int sb_running(struct msb_ctx *ctx, const char *name, bool *ret_running, struct msb_error *err);
int sb_remove_files(struct msb_ctx *ctx, const char *name);

/* supervisor/start.c: fork a supervisor for the sandbox and return once it
 * reports the guest ready (or why not). */
int sb_supervise(struct msb_ctx *ctx, const char *name, unsigned flags, struct msb_error *err);

/* The fuzzer's way into the supervisor's handlers (supervisor/fuzz.c). */
void sup_fuzz(const uint8_t *data, size_t size);
/* lifecycle.c: until the supervisor has gone (its lock is free), at most
 * timeout_ms; whether it has. */
bool sb_wait_gone(const char *dir, int timeout_ms);
/* client.c, for copy.c and files.c: start a routine of agentd's
 * (MSB_EXEC_INTERNAL: "cp-out", "fs-stat"...), stdin forwarded or not, as
 * root (user NULL: msb cp's way) or as user ("" = the sandbox's; -EINVAL
 * when the guest does not know it); returns once it runs. */
int sb_exec_routine(struct msb_ctx *ctx, const char *name, char *const argv[], bool with_stdin, const char *user,
                    struct msb_proc **ret, struct msb_error *err);
/* client_relay.c: relay a routine's streams until it exits: in_fd (or -1) to its stdin,
 * its stdout to out_fd, its stderr kept in errbuf (errcap bytes, cut,
 * NUL-terminated).  When out_fd's reader goes away the process is killed
 * and what it still sends is dropped.  *ret_status as msb_run's. */
int sb_proc_relay_copy(struct msb_proc *p, int in_fd, int out_fd, char *errbuf, size_t errcap, int *ret_status,
                       struct msb_error *err);
