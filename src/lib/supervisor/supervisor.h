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
 * Kept processes (EXEC with MSB_EXEC_KEEP; kept.c) are the exception: they
 * belong to no connection.  The supervisor acknowledges their output
 * itself, keeps the last SUP_BACKLOG_MAX bytes of it for readers that come
 * later, and copies it to every connection attached to the process; one
 * that has SUP_READER_MAX bytes unsent is dropped, so neither the process
 * nor the sandbox ever waits for a reader.  Their stdin comes from one
 * writer at a time, through a queue of its own (a writer that left may
 * still have bytes in flight, and the guest's window is per process).
 * When one ends, its record (status, backlog) stays listed; the
 * SUP_MAX_ENDED newest are kept.
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

/* Kept processes (kept.c) */
#define SUP_MAX_KEPT 256               /* running at once in one sandbox */
#define SUP_MAX_ENDED 64               /* ended ones still listed, the newest */
#define SUP_BACKLOG_MAX (256u << 10)   /* output kept for readers that come later */
#define SUP_READER_MAX (1u << 20)      /* a reader with this much unsent is dropped */
#define SUP_ARGV_MAX 4096              /* bytes of a process's argv kept for listings */
#define SUP_ARGC_MAX 64                /* and at most this many arguments */

struct conn;

/* What only a kept process has. */
struct kept {
        struct msb_buf backlog; /* STDOUT/STDERR frames (id 1), oldest first */
        uint64_t dropped;       /* output bytes the backlog let go */
        struct conn *writer;    /* its stdin writer, or NULL */
        struct msb_buf inq;     /* stdin from writers, not sent to the guest yet */
        uint32_t inflight;      /* stdin sent to the guest, not ACKed yet */
        uint32_t prev;          /* of inq + inflight: bytes of writers gone */
        bool eof_pending;       /* STDIN_EOF goes once inq is empty */
        uint32_t exit_kind, exit_value;
};

struct gproc {
        uint32_t id;
        struct conn *conn; /* its client, or NULL (always NULL when kept) */
        bool main, exited, tty, stdin, stdin_eof;
        bool routine; /* of agentd's (msb cp): nobody else wants what it does */
        uint32_t to_client;     /* output forwarded to conn, not yet ACKed by it */
        uint32_t owed;          /* output taken with no client, not yet ACKed */
        uint32_t stdin_unacked; /* from conn (kept: its writer), not yet ACKed to it */
        uint32_t stdin_orphan;  /* from a client that left, not yet ACKed */
        uint32_t pid;           /* the guest's, from STARTED (0 before) */
        int64_t started_ms;     /* unix time of its EXEC */
        char **argv;            /* bounded copy for listings (the main one: NULL) */
        struct kept *kept;      /* MSB_EXEC_KEEP, else NULL */
        struct gproc *next;
};

/* C_PROC: attached by id to a kept process (or its EXEC was kept) */
enum conn_kind { C_NEW, C_EXEC, C_ATTACH, C_WAIT, C_STOP, C_PROC };

struct conn {
        int fd;
        struct msb_reader rd;
        struct msb_buf out;
        enum conn_kind kind;
        bool hello, closing; /* closing: drop once out is flushed; input ignored */
        bool stdin;          /* ATTACH with MSB_ATTACH_STDIN */
        bool reads;          /* a kept process's output goes to it */
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
        struct gproc *ended; /* kept processes that ended, newest first */
        uint32_t nended, nkept; /* nkept: running ones */
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

/* kept.c: p is kept from now on (its EXEC came from c) */
void kept_begin(struct sup *s, struct gproc *p, struct conn *c);
/* kept.c: a chunk of a kept process's output; -EPROTO past its window */
int kept_output(struct sup *s, struct gproc *p, const struct msb_msg *m);
/* kept.c: a frame (id 1) to every connection attached to p */
void kept_send(struct sup *s, struct gproc *p, const struct msb_buf *frame);
/* kept.c: the guest's ACK of its stdin; its EXIT */
int kept_stdin_ack(struct sup *s, struct gproc *p, uint32_t n);
void kept_exited(struct sup *s, struct gproc *p, uint32_t kind, uint32_t value);
/* kept.c: what a connection attached to a kept process sends */
int kept_client_msg(struct sup *s, struct conn *c, struct msb_msg *m);
/* kept.c: c (attached to kept p) goes */
void kept_conn_gone(struct sup *s, struct gproc *p, struct conn *c);
/* kept.c: the connections attached to p are told nothing more and close */
void kept_release(struct sup *s, struct gproc *p);
/* kept.c: free p's kept state */
void kept_free(struct kept *k);
/* kept.c: every ended record goes */
void kept_ended_free(struct sup *s);

/* procs.c: ATTACH id (not the main process's), flags */
void procs_attach(struct sup *s, struct conn *c, uint32_t id, uint32_t flags);
/* procs.c: a bare SIGNAL or RESIZE to process id (not the main one's SIGNAL) */
void procs_signal(struct sup *s, struct conn *c, uint32_t id, uint32_t signo);
void procs_resize(struct sup *s, struct conn *c, uint32_t id, uint32_t rows, uint32_t cols);
/* procs.c: PROCS, the listing */
void procs_list(struct sup *s, struct conn *c);
/* procs.c: p's PROC_INFO onto out */
void procs_info(struct sup *s, const struct gproc *p, struct msb_buf *out);
/* procs.c: a bounded copy of argv for p's listing */
void procs_keep_argv(struct gproc *p, char *const *argv, uint32_t argc);
/* procs.c: an ERROR on c (step, errno, "sandbox 'NAME': " and the text), c then closes */
void sup_conn_error(struct sup *s, struct conn *c, const char *step, int e, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

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
