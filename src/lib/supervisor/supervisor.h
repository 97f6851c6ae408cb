/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A named sandbox's supervisor: one process per running sandbox (what
 * conmon is to podman).  It owns the VM (QEMU, the virtio-fs servers, the
 * guest channel), keeps the main process's log, and serves msb commands on
 * a unix socket in the sandbox's runtime dir: one request per connection
 * (EXEC, ATTACH, STOP, WAIT or a bare SIGNAL), each connection then carrying
 * one process's streams as id 1, which the supervisor maps to the guest's
 * id for it.
 *
 * Flow control is end to end: output a client has not acknowledged is not
 * acknowledged to the guest, so a slow client holds back its own process
 * (at most MSB_PROTO_WINDOW bytes in flight) and nothing else.  A process
 * without a client (detached, or its client went away) is acknowledged at
 * once.
 *
 * Killing the supervisor kills QEMU and the servers (PDEATHSIG) and frees
 * run.lock: the next command shows the sandbox as crashed.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "lib/sbstore.h"

#define LOG_MAX_BYTES (10u << 20) /* per file; one older file is kept */
#define SHUTDOWN_WAIT_MS 10000     /* after SHUTDOWN, QEMU is killed */
#define CONN_MAX 256
/* Stop reading the guest and clients while this much waits for the guest:
 * a guest that does not read its port cannot make us queue without end. */
#define GUEST_OUTQ_HIGH (1u << 20)
#define STARTED_WAIT_MS 60000 /* from HELLO to the main process's STARTED */
#define ATTACH_WAIT_MS 60000  /* a held main process waits this long for its client */
#define FAREWELL_MS 2000      /* for the last words to every client */
/* Booted without its main process (msb cp on a stopped sandbox): it stops
 * once its last client and process are gone, or after this long if no
 * client ever came (the one that started it died). */
#define NO_MAIN_FIRST_CLIENT_MS 60000

struct conn;

struct gproc {
        uint32_t id;
        struct conn *conn; /* its client, or NULL */
        bool main, exited, tty, stdin, stdin_eof;
        bool routine; /* of agentd's (msb cp): nobody else wants what it does */
        uint32_t to_client;     /* output forwarded to conn, not yet ACKed by it */
        uint32_t owed;          /* output taken with no client, not yet ACKed */
        uint32_t stdin_unacked; /* from conn, not yet ACKed by the guest */
        uint32_t stdin_orphan;  /* from a client that left, not yet ACKed */
        struct gproc *next;
};

enum conn_kind { C_NEW, C_EXEC, C_ATTACH, C_WAIT, C_STOP };

struct conn {
        int fd;
        struct msb_reader rd;
        struct msb_buf out;
        enum conn_kind kind;
        bool hello, closing; /* closing: drop once out is flushed; input ignored */
        bool stdin;          /* ATTACH with MSB_ATTACH_STDIN */
        struct gproc *p;
        struct conn *next;
};

struct sup {
        struct msb_ctx *ctx;
        const char *name;
        char *dir;
        struct msb_run_opts *o;
        struct vm *vm;
        int lfd, sfd, lock_fd, ready_fd, log_fd;
        uint64_t log_size;
        struct msb_reader rd; /* from the guest */
        struct gproc *procs, *main;
        uint32_t nprocs, next_id;
        struct conn *conns;
        uint32_t nconns;
        bool have_hello, main_pending; /* main EXEC held for the first ATTACH */
        int stop_phase;                /* 0, 1: SIGTERM sent, 2: SHUTDOWN sent */
        int64_t stop_deadline, max_deadline, idle_since;
        int64_t started_deadline; /* the main process must have STARTED by then */
        int64_t attach_deadline;  /* a held main process must be attached to by then */
        int status; /* main's, msb_run's convention; -1 none */
        char *error;
        bool crashed, done, main_error;
        bool no_main, had_client; /* MSB_START_NO_MAIN; a client connected */
        struct sb_state st;
        struct sb_state before; /* with no_main: the state to leave again */
};

/* log.c: open <dir>/main.log (s->log_fd -1 if it cannot be) */
void sup_log_open(struct sup *s);
/* log.c: one of the main process's output chunks, as CRI records */
void sup_log_write(struct sup *s, bool err, const uint8_t *p, size_t n);

/* guest.c: tell the starter msg ("ok" or why not), once */
void sup_ready(struct sup *s, const char *msg);
/* guest.c: one message from agentd; -EPROTO for one that breaks the protocol */
int sup_guest_msg(struct sup *s, struct msb_msg *m);
/* guest.c: read and handle what the guest channel holds */
void sup_guest_read(struct sup *s);

/* server.c: the process with guest id id, or NULL */
struct gproc *sup_proc_find(struct sup *s, uint32_t id);
/* server.c: a new process (the main one if main) */
struct gproc *sup_proc_new(struct sup *s, uint32_t id, bool main);
/* server.c: forget a process; its client's connection closes */
void sup_proc_free(struct sup *s, struct gproc *p);
/* server.c: close a client's connection, its process told as fits */
void sup_conn_close(struct sup *s, struct conn *c);
/* server.c: one message from a client; -EPROTO drops the client */
int sup_client_msg(struct sup *s, struct conn *c, struct msb_msg *m);
/* server.c: read and handle what a client sent */
void sup_client_read(struct sup *s, struct conn *c);
/* server.c: take a new connection on the socket */
void sup_client_accept(struct sup *s);
/* server.c: send what b holds without blocking, as far as fd takes it */
void sup_flush_fd(int fd, struct msb_buf *b);
/* server.c: tell every client how it ended, within wait_ms for all */
void sup_farewell(struct sup *s, int wait_ms);
/* server.c: listen on <runtime dir>/ctl.sock (s->lfd, s->st.socket) */
int sup_listen_on(struct sup *s, struct msb_error *err);

/* loop.c: the first cause of the end is kept (msg owned, freed if not kept) */
void sup_set_error(struct sup *s, char *msg);
/* loop.c: begin stopping, the main process given grace_ms after SIGTERM */
void sup_stop_begin(struct sup *s, unsigned grace_ms);
/* loop.c: note whether the sandbox is idle now */
void sup_idle_update(struct sup *s, int64_t now);
/* loop.c: until s->done */
void sup_loop(struct sup *s);

/* end.c: after the loop: clients told, the VM gone, the state written */
void sup_end(struct sup *s);
/* end.c: free what s holds */
void sup_free(struct sup *s);
