/* SPDX-License-Identifier: Apache-2.0 */
/* The client side of a named sandbox, shared by client.c (the connection,
 * exec, attach), client_relay.c (a process's streams) and lifecycle.c (start,
 * stop, kill, wait, remove). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "sbstore.h"

#define REPLY_TIMEOUT_MS 30000
#define COPY_GIVEUP_MS 5000 /* a copy told to stop ends by then, guest or not */

struct msb_proc {
        int fd;
        bool attach;  /* to the main process: its end is the sandbox's */
        char *dir;    /* the sandbox's */
        struct msb_reader rd;
        struct msb_buf out;
        uint32_t stdin_unacked;
        char *name;
        uint32_t id;  /* in its sandbox (from PROC_INFO), 0 if not told */
        int pid;      /* the guest's, 0 until known */
        bool kept;    /* the supervisor acknowledges its output itself */
        bool writer;  /* attached as a kept process's stdin writer only (msb_proc_write) */
        /* msb_proc_read (client_procs.c) */
        uint32_t ev_last;    /* the last output event's bytes: handed on at the next call */
        uint32_t ev_owed;    /* handed on, not acknowledged yet */
        uint64_t ev_dropped; /* a DROPPED event to give first (an attach's backlog) */
        bool ev_started, ev_done; /* STARTED, EXIT given */
        bool no_signals; /* its context's: relays leave signals alone */
};

static inline void msb_proc_freep(struct msb_proc **p)
{
        msb_proc_free(*p);
}
#define _cleanup_proc_ __attribute__((cleanup(msb_proc_freep)))

/* client.c: send what p->out holds, waiting as the socket needs: 0, or
 * -EPIPE */
int client_send_out(struct msb_proc *p);
/* client.c: the next message, waiting up to timeout_ms: 1, 0 at EOF or
 * timeout, < 0 on a protocol error. */
int client_recv_msg(struct msb_proc *p, struct msb_msg *m, int timeout_ms);
/* client.c: a connection to the sandbox's supervisor, HELLO exchanged
 * (-ESRCH with err filled when it is not running). */
int sb_connect(struct msb_ctx *ctx, const char *name, struct msb_proc **ret, struct msb_error *err);
/* client.c: the exit status for a failed exec's errno (126 or 127). */
int client_exec_status(int e);
/* client.c: an EXIT's status, msb_run's convention (128 + signal). */
int client_exit_value(const struct msb_msg *m);
/* client_procs.c: what a PROC_INFO says of p's process (its id, pid, kept) */
void client_take_info(struct msb_proc *p, const struct msb_msg *m);
