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
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sbstore.h"

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

struct sup;
static void set_error(struct sup *s, char *msg);

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

/* ---- the main process's log (CRI format) ---- */

static void log_open(struct sup *s)
{
        _cleanup_free_ char *p = xasprintf("%s/main.log", s->dir);
        s->log_fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        struct stat st;
        s->log_size = s->log_fd >= 0 && fstat(s->log_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void log_rotate(struct sup *s)
{
        _cleanup_free_ char *p = xasprintf("%s/main.log", s->dir), *old = xasprintf("%s/main.log.1", s->dir);
        if (s->log_fd >= 0)
                close(s->log_fd);
        (void)rename(p, old);
        log_open(s);
}

/* One record per line; a chunk's unfinished last line is its own record
 * marked P (partial), as the CRI format does. */
static void log_write(struct sup *s, bool err, const uint8_t *p, size_t n)
{
        if (s->log_fd < 0)
                return;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        char stamp[64];
        size_t k = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(stamp + k, sizeof(stamp) - k, ".%09ldZ %s ", ts.tv_nsec, err ? "stderr" : "stdout");
        struct msb_buf b = {0};
        while (n > 0) {
                const uint8_t *nl = memchr(p, '\n', n);
                size_t len = nl ? (size_t)(nl - p) : n;
                msb_buf_append(&b, stamp, strlen(stamp));
                msb_buf_append(&b, nl ? "F " : "P ", 2);
                msb_buf_append(&b, p, len);
                msb_buf_append(&b, "\n", 1);
                p += len + (nl ? 1 : 0);
                n -= len + (nl ? 1 : 0);
        }
        (void)write_all(s->log_fd, msb_buf_head(&b), msb_buf_pending(&b));
        s->log_size += msb_buf_pending(&b);
        msb_buf_free(&b);
        if (s->log_size > LOG_MAX_BYTES)
                log_rotate(s);
}

/* ---- processes and clients ---- */

static struct gproc *proc_find(struct sup *s, uint32_t id)
{
        for (struct gproc *p = s->procs; p; p = p->next)
                if (p->id == id)
                        return p;
        return NULL;
}

static struct gproc *proc_new(struct sup *s, uint32_t id, bool main)
{
        struct gproc *p = xcalloc(1, sizeof(*p));
        p->id = id;
        p->main = main;
        p->next = s->procs;
        s->procs = p;
        s->nprocs++;
        if (main)
                s->main = p;
        return p;
}

/* The client goes: what it had not acknowledged is acknowledged for it,
 * so its process never stalls on a reader that is gone. */
static void proc_detach(struct sup *s, struct gproc *p)
{
        if (!p->conn)
                return;
        if (p->to_client)
                msb_enc_u32(&s->vm->out, MSB_MSG_ACK, p->id, p->to_client);
        p->to_client = 0;
        /* the guest's ACKs for what this client sent are not the next one's */
        p->stdin_orphan += p->stdin_unacked;
        p->stdin_unacked = 0;
        p->conn->p = NULL;
        p->conn = NULL;
}

static void proc_free(struct sup *s, struct gproc *p)
{
        if (p->conn) {
                p->conn->p = NULL;
                p->conn->closing = true;
        }
        for (struct gproc **pp = &s->procs; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        break;
                }
        s->nprocs--;
        if (s->main == p)
                s->main = NULL;
        free(p);
}

static void conn_close(struct sup *s, struct conn *c)
{
        struct gproc *p = c->p;
        if (p && c->kind == C_EXEC && !p->exited) {
                /* a terminal that goes away hangs up, as a real one does;
                 * a stdin that goes away ends */
                if (p->routine) /* a copy in takes its temporary directory away */
                        msb_enc_u32(&s->vm->out, MSB_MSG_SIGNAL, p->id, SIGTERM);
                else if (p->tty)
                        msb_enc_u32(&s->vm->out, MSB_MSG_SIGNAL, p->id, SIGHUP);
                else if (p->stdin && !p->stdin_eof) {
                        msb_enc_id(&s->vm->out, MSB_MSG_STDIN_EOF, p->id);
                        p->stdin_eof = true;
                }
        }
        if (p)
                proc_detach(s, p);
        for (struct conn **pp = &s->conns; *pp; pp = &(*pp)->next)
                if (*pp == c) {
                        *pp = c->next;
                        break;
                }
        s->nconns--;
        close(c->fd);
        msb_reader_free(&c->rd);
        msb_buf_free(&c->out);
        free(c);
}

static void conn_error(struct sup *s, struct conn *c, const char *step, int e, const char *msg)
{
        _cleanup_free_ char *m = xasprintf("sandbox '%s': %s", s->name, msg);
        msb_enc_error(&c->out, 1, step, e, m);
        c->closing = true;
}

/* ---- stopping ---- */

static void stop_begin(struct sup *s, unsigned grace_ms)
{
        if (s->stop_phase)
                return;
        if (s->main && !s->main->exited && grace_ms > 0) {
                msb_enc_u32(&s->vm->out, MSB_MSG_SIGNAL, s->main->id, SIGTERM);
                s->stop_phase = 1;
                s->stop_deadline = mono_ms() + grace_ms;
                msb_log(s->ctx, 1, "stopping: SIGTERM to the main process, %u ms grace", grace_ms);
                return;
        }
        if (s->main && !s->main->exited && s->status < 0)
                s->status = 128 + SIGKILL; /* docker's 137 for a stop that had to kill */
        msb_enc_empty(&s->vm->out, MSB_MSG_SHUTDOWN);
        s->stop_phase = 2;
        s->stop_deadline = mono_ms() + SHUTDOWN_WAIT_MS;
        msb_log(s->ctx, 1, "stopping: SHUTDOWN");
}

static void stop_tick(struct sup *s)
{
        if (!s->stop_phase || mono_ms() < s->stop_deadline)
                return;
        if (s->stop_phase == 1) {
                s->stop_phase = 0;
                stop_begin(s, 0);
        } else {
                msb_log(s->ctx, 1, "the guest did not power off in time; stopping QEMU");
                s->done = true;
        }
}

/* ---- from the guest ---- */

static void ready(struct sup *s, const char *msg)
{
        if (s->ready_fd < 0)
                return;
        (void)write_all(s->ready_fd, msg, strlen(msg));
        close(s->ready_fd);
        s->ready_fd = -1;
}

static void main_ended(struct sup *s, int status)
{
        if (s->status < 0 || s->stop_phase != 0)
                s->status = status;
        /* the guest killed everything else and synced before EXIT: the VM
         * holds nothing more of ours */
        s->done = true;
}

static int exec_status(int e)
{
        return e == ENOENT || e == ENOTDIR ? MSB_EXIT_NOT_FOUND : MSB_EXIT_NOT_EXECUTABLE;
}

static int guest_output(struct sup *s, struct msb_msg *m)
{
        struct gproc *p = proc_find(s, m->id);
        if (!p)
                return -EPROTO;
        if (p->main)
                log_write(s, m->type == MSB_MSG_STDERR, m->u.data.data, m->u.data.len);
        if (!m->u.data.len)
                return 0;
        if (p->conn) {
                if (p->to_client + m->u.data.len > MSB_PROTO_WINDOW)
                        return -EPROTO; /* the guest ignored its window */
                msb_enc_data(&p->conn->out, m->type, 1, m->u.data.data, m->u.data.len);
                p->to_client += (uint32_t)m->u.data.len;
        } else {
                /* nobody reads it but the log: acknowledged as soon as half
                 * a window is owed (every ACK wakes the guest) */
                if (m->u.data.len > MSB_PROTO_WINDOW - p->owed)
                        return -EPROTO;
                p->owed += (uint32_t)m->u.data.len;
                if (p->owed >= MSB_PROTO_WINDOW / 2) {
                        msb_enc_u32(&s->vm->out, MSB_MSG_ACK, p->id, p->owed);
                        p->owed = 0;
                }
        }
        return 0;
}

static int guest_error(struct sup *s, struct msb_msg *m)
{
        const char *step = m->u.error.step;
        int e = m->u.error.err;
        _cleanup_free_ char *text = xasprintf("%s%s%s", m->u.error.message, e ? ": " : "",
                                              !strcmp(step, "exec") && e == ENOENT
                                                      ? "executable file not found in $PATH"
                                                      : (e > 0 && e < 4096 ? strerror(e) : ""));
        if (m->id == 0) {
                set_error(s, xasprintf("guest setup failed at step '%s': %s", step, text));
                s->crashed = true;
                s->done = true;
                return 0;
        }
        struct gproc *p = proc_find(s, m->id);
        if (!p)
                return -EPROTO;
        if (p->conn)
                msb_enc_error(&p->conn->out, 1, step, e, text);
        if (p->main) {
                set_error(s, xstrdup(text));
                s->status = !strcmp(step, "exec") ? exec_status(e) : MSB_EXIT_NOT_EXECUTABLE;
                s->main_error = true;
                s->done = true;
        }
        proc_free(s, p);
        return 0;
}

static int guest_msg(struct sup *s, struct msb_msg *m)
{
        struct gproc *p;
        switch (m->type) {
        case MSB_MSG_HELLO:
                if (s->have_hello)
                        return -EPROTO;
                if (m->u.hello.version != MSB_PROTO_VERSION) {
                        set_error(s, xasprintf("guest agent speaks protocol version %u, msb speaks %u: rebuild the "
                                               "guest kit (./setup.sh)",
                                               m->u.hello.version, MSB_PROTO_VERSION));
                        s->crashed = s->done = true;
                        return 0;
                }
                s->have_hello = true;
                if (!s->main || s->main_pending)
                        ready(s, "ok");
                if (s->main && !s->main_pending)
                        s->started_deadline = mono_ms() + STARTED_WAIT_MS;
                if (s->main_pending)
                        s->attach_deadline = mono_ms() + ATTACH_WAIT_MS;
                return 0;
        case MSB_MSG_STARTED:
                if (!(p = proc_find(s, m->id)))
                        return -EPROTO;
                if (p->main) {
                        ready(s, "ok");
                        s->started_deadline = 0;
                }
                if (p->conn)
                        msb_enc_u32(&p->conn->out, MSB_MSG_STARTED, 1, m->u.pid);
                return 0;
        case MSB_MSG_STDOUT:
        case MSB_MSG_STDERR:
                return guest_output(s, m);
        case MSB_MSG_ACK: {
                /* stdin still in flight when a process ended is dropped and
                 * acknowledged by agentd after its EXIT: ids are never
                 * reused, so an ACK for one that was is no error */
                if (!(p = proc_find(s, m->id)))
                        return m->id < s->next_id ? 0 : -EPROTO;
                if (m->u.ack > p->stdin_orphan + p->stdin_unacked)
                        return -EPROTO;
                uint32_t old = m->u.ack < p->stdin_orphan ? m->u.ack : p->stdin_orphan;
                p->stdin_orphan -= old;
                uint32_t mine = m->u.ack - old;
                p->stdin_unacked -= mine;
                if (p->conn && mine)
                        msb_enc_u32(&p->conn->out, MSB_MSG_ACK, 1, mine);
                return 0;
        }
        case MSB_MSG_EXIT:
                if (!(p = proc_find(s, m->id)))
                        return -EPROTO;
                p->exited = true;
                if (p->conn)
                        msb_enc_exit(&p->conn->out, 1, m->u.exit.kind, m->u.exit.value);
                if (p->main)
                        main_ended(s, m->u.exit.kind == MSB_EXIT_SIGNAL ? 128 + (int)m->u.exit.value
                                                                          : (int)m->u.exit.value);
                proc_free(s, p);
                return 0;
        case MSB_MSG_ERROR:
                return guest_error(s, m);
        default:
                return -EPROTO;
        }
}

/* ---- from clients ---- */

static void send_main(struct sup *s)
{
        s->main_pending = false;
        struct gproc *p = proc_new(s, VM_MAIN_ID, true);
        p->stdin = s->vm->main.flags & MSB_EXEC_STDIN;
        p->tty = s->vm->main.flags & MSB_EXEC_TTY;
        s->attach_deadline = 0;
        s->started_deadline = mono_ms() + STARTED_WAIT_MS;
        if (msb_enc_exec(&s->vm->out, &s->vm->main) < 0) {
                set_error(s, xstrdup("the command line and environment are too large"));
                s->done = true;
        }
}

static void exec_sent(struct sup *s, struct conn *c, const struct msb_exec_msg *ex)
{
        struct gproc *p = proc_new(s, ex->id, false);
        p->tty = ex->flags & MSB_EXEC_TTY;
        p->stdin = ex->flags & MSB_EXEC_STDIN;
        p->routine = ex->flags & MSB_EXEC_INTERNAL;
        p->conn = c;
        c->p = p;
        c->kind = C_EXEC;
}

/* A routine of agentd's (msb cp): as root, from "/", in no environment of
 * the image's, whoever the sandbox's user is (docker cp's way). */
static void client_exec_routine(struct sup *s, struct conn *c, struct msb_exec_msg *ex)
{
        ex->flags = MSB_EXEC_INTERNAL | MSB_EXEC_IDS | (ex->flags & MSB_EXEC_STDIN);
        ex->workdir = "/";
        ex->user = "0:0";
        ex->env = NULL;
        ex->envc = 0;
        ex->uid = ex->gid = 0;
        ex->ngroups = 1;
        ex->groups[0] = 0;
        ex->home = "/root";
        ex->exec_path = "";
        ex->nprefetch = 0;
        ex->prefetch = NULL;
        ex->nseccomp = 0;
        ex->seccomp = NULL;
        memset(ex->caps, 0, sizeof(ex->caps));
        if (msb_enc_exec(&s->vm->out, ex) < 0)
                return conn_error(s, c, "exec", E2BIG, "the command line is too large");
        exec_sent(s, c, ex);
}

static void client_exec(struct sup *s, struct conn *c, struct msb_exec_msg *req)
{
        if (s->nprocs >= MSB_PROTO_MAX_PROCS - 1)
                return conn_error(s, c, "exec", EAGAIN, "too many processes in this sandbox");
        if (s->stop_phase || s->done)
                return conn_error(s, c, "exec", ESRCH, "the sandbox is stopping");
        struct vm *vm = s->vm;
        _cleanup_strv_ char **env = NULL;
        for (char **e = vm->env; e && *e; e++)
                strv_push(&env, *e);
        for (uint32_t i = 0; i < req->envc; i++) {
                size_t k = (size_t)(strchr(req->env[i], '=') - req->env[i]);
                for (size_t j = 0; env && env[j]; j++)
                        if (!strncmp(env[j], req->env[i], k) && env[j][k] == '=') {
                                free(env[j]);
                                env[j] = xstrdup(req->env[i]);
                                goto next;
                        }
                strv_push(&env, req->env[i]);
        next:;
        }
        struct msb_exec_msg ex = *req;
        ex.id = s->next_id++;
        if (req->flags & MSB_EXEC_INTERNAL)
                return client_exec_routine(s, c, &ex);
        /* a client may confine its process further, never loosen it */
        ex.flags &= MSB_EXEC_STDIN | MSB_EXEC_TTY | MSB_EXEC_CONFINE | MSB_EXEC_NO_NEW_PRIVS;
        ex.env = env;
        ex.envc = (uint32_t)strv_len(env);
        if (!ex.workdir[0])
                ex.workdir = vm->main.workdir ? vm->main.workdir : "";
        bool same_user = !ex.user[0] || !strcmp(ex.user, vm->user);
        if (!ex.user[0])
                ex.user = (char *)vm->user;
        if (same_user && vm->have_ids) {
                /* resolved once from the image at boot, as for the main process */
                ex.flags |= MSB_EXEC_IDS;
                ex.uid = vm->ids.uid;
                ex.gid = vm->ids.gid;
                ex.ngroups = vm->ids.ngroups;
                memcpy(ex.groups, vm->ids.groups, vm->ids.ngroups * sizeof(vm->ids.groups[0]));
                ex.home = vm->ids.home;
        } else {
                ex.ngroups = 0;
                ex.home = "";
        }
        ex.exec_path = "";
        ex.nprefetch = 0;
        ex.prefetch = NULL;
        if (msb_enc_exec(&vm->out, &ex) < 0)
                return conn_error(s, c, "exec", E2BIG, "the command line and environment are too large");
        exec_sent(s, c, &ex);
}

static void client_attach(struct sup *s, struct conn *c, uint32_t flags)
{
        if (!s->main && !s->main_pending)
                return conn_error(s, c, "attach", ESRCH, "the sandbox has no main process running");
        if ((s->main && s->main->conn) || s->stop_phase)
                return conn_error(s, c, "attach", EBUSY,
                                  s->stop_phase ? "the sandbox is stopping" : "another client is attached already");
        if (s->main_pending)
                send_main(s);
        if (s->main->owed) {
                msb_enc_u32(&s->vm->out, MSB_MSG_ACK, s->main->id, s->main->owed);
                s->main->owed = 0;
        }
        c->kind = C_ATTACH;
        c->p = s->main;
        c->stdin = flags & MSB_ATTACH_STDIN;
        s->main->conn = c;
}

/* The first request on a connection decides what it is. */
static int client_request(struct sup *s, struct conn *c, struct msb_msg *m)
{
        switch (m->type) {
        case MSB_MSG_EXEC:
                client_exec(s, c, &m->u.exec);
                return 0;
        case MSB_MSG_ATTACH:
                client_attach(s, c, m->u.flags);
                return 0;
        case MSB_MSG_STOP:
                c->kind = C_STOP;
                stop_begin(s, m->u.grace_ms);
                return 0;
        case MSB_MSG_WAIT:
                c->kind = C_WAIT;
                return 0;
        case MSB_MSG_SIGNAL:
                if (!s->main || s->main->exited)
                        conn_error(s, c, "kill", ESRCH, "the sandbox has no main process running");
                else {
                        msb_enc_u32(&s->vm->out, MSB_MSG_SIGNAL, s->main->id, m->u.signo);
                        msb_enc_exit(&c->out, 1, MSB_EXIT_CODE, 0);
                        c->closing = true;
                }
                return 0;
        default:
                return -EPROTO;
        }
}

static int client_msg(struct sup *s, struct conn *c, struct msb_msg *m)
{
        if (!c->hello) {
                if (m->type != MSB_MSG_HELLO || m->u.hello.version != MSB_PROTO_VERSION)
                        return -EPROTO;
                c->hello = true;
                return 0;
        }
        if (c->closing)
                return 0; /* its answer is on the way; what it sends now is moot */
        if (c->kind == C_NEW)
                return client_request(s, c, m);
        struct gproc *p = c->p;
        if (m->id != 1)
                return -EPROTO;
        if (!p)
                return 0; /* its process ended; late input is dropped */
        bool takes_stdin = p->stdin && !p->stdin_eof && (c->kind == C_EXEC || c->stdin);
        switch (m->type) {
        case MSB_MSG_STDIN:
                if (p->stdin_unacked + m->u.data.len > MSB_PROTO_WINDOW)
                        return -EPROTO;
                if (!takes_stdin) {
                        /* dropped, but acknowledged: the client's window stays right */
                        if (m->u.data.len)
                                msb_enc_u32(&c->out, MSB_MSG_ACK, 1, (uint32_t)m->u.data.len);
                        return 0;
                }
                p->stdin_unacked += (uint32_t)m->u.data.len;
                return msb_enc_data(&s->vm->out, MSB_MSG_STDIN, p->id, m->u.data.data, m->u.data.len);
        case MSB_MSG_STDIN_EOF:
                if (!takes_stdin)
                        return 0;
                p->stdin_eof = true;
                return msb_enc_id(&s->vm->out, MSB_MSG_STDIN_EOF, p->id);
        case MSB_MSG_SIGNAL:
                return msb_enc_u32(&s->vm->out, MSB_MSG_SIGNAL, p->id, m->u.signo);
        case MSB_MSG_RESIZE:
                return msb_enc_resize(&s->vm->out, p->id, m->u.resize.rows, m->u.resize.cols);
        case MSB_MSG_ACK:
                if (m->u.ack > p->to_client)
                        return -EPROTO;
                p->to_client -= m->u.ack;
                return msb_enc_u32(&s->vm->out, MSB_MSG_ACK, p->id, m->u.ack);
        default:
                return -EPROTO;
        }
}

static void client_read(struct sup *s, struct conn *c)
{
        uint8_t buf[65536];
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n <= 0) {
                if (n == 0 || (errno != EAGAIN && errno != EINTR))
                        conn_close(s, c);
                return;
        }
        msb_reader_feed(&c->rd, buf, (size_t)n);
        struct msb_msg m;
        int q;
        while ((q = msb_reader_next(&c->rd, &m)) == 1) {
                int r = client_msg(s, c, &m);
                msb_msg_free(&m);
                if (r < 0) {
                        q = r;
                        break;
                }
        }
        if (q < 0)
                conn_close(s, c);
}

static void client_accept(struct sup *s)
{
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
                return;
        struct ucred cr;
        socklen_t len = sizeof(cr);
        /* the socket's dir is the owner's only; the peer is checked anyway */
        if (s->nconns >= CONN_MAX || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 ||
            (cr.uid != geteuid() && cr.uid != 0)) {
                close(fd);
                return;
        }
        struct conn *c = xcalloc(1, sizeof(*c));
        c->fd = fd;
        s->had_client = true;
        msb_enc_hello(&c->out, MSB_PROTO_VERSION, "msb-supervisor");
        c->next = s->conns;
        s->conns = c;
        s->nconns++;
}

/* ---- the loop ---- */

static void guest_read(struct sup *s)
{
        uint8_t buf[65536];
        ssize_t n = read(s->vm->sb.ctl, buf, sizeof(buf));
        if (n <= 0) {
                if (n == 0) {
                        /* QEMU closed the channel: it is exiting */
                        struct pollfd q = {.fd = s->vm->sb.qemu.pidfd, .events = POLLIN};
                        (void)poll(&q, 1, 1000);
                        if (!s->done && !s->stop_phase)
                                s->crashed = true;
                        s->done = true;
                }
                return;
        }
        msb_reader_feed(&s->rd, buf, (size_t)n);
        struct msb_msg m;
        int q;
        while (!s->done && (q = msb_reader_next(&s->rd, &m)) == 1) {
                int r = guest_msg(s, &m);
                msb_msg_free(&m);
                if (r < 0) {
                        q = r;
                        break;
                }
        }
        if (!s->done && q < 0) {
                set_error(s, xstrdup("the guest sent a malformed control message; the sandbox was stopped"));
                s->crashed = s->done = true;
        }
}

static void flush_fd(int fd, struct msb_buf *b)
{
        while (msb_buf_pending(b)) {
                ssize_t w = send(fd, msb_buf_head(b), msb_buf_pending(b), MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w <= 0)
                        return;
                msb_buf_consume(b, (size_t)w);
        }
}

static void set_error(struct sup *s, char *msg)
{
        if (s->error) { /* the first cause is the story */
                free(msg);
                return;
        }
        s->error = msg;
}

/* No client using it (a waiter does not count) and no exec'd process (the
 * main one may run): idle. */
static void idle_update(struct sup *s, int64_t now)
{
        /* booted for a copy, what counts is a client: a routine whose
         * client left was told to stop, and a guest that ignores that
         * must not keep the VM up */
        bool idle = s->no_main || s->nprocs == (s->main ? 1u : 0u);
        for (struct conn *c = s->conns; c && idle; c = c->next)
                idle = c->kind == C_WAIT || c->kind == C_STOP;
        if (!idle)
                s->idle_since = 0;
        else if (!s->idle_since)
                s->idle_since = now;
}

/* Booted for a copy: when it stops (0: not idle, no deadline). */
static int64_t no_main_deadline(const struct sup *s)
{
        if (!s->no_main || !s->idle_since)
                return 0;
        return s->idle_since + (s->had_client ? 0 : NO_MAIN_FIRST_CLIENT_MS);
}

/* The next deadline, in ms from now (-1: none). */
static int next_timeout(struct sup *s, int64_t now)
{
        int64_t t = -1;
        int64_t at[7] = {
                !s->have_hello ? s->vm->boot_deadline : 0,
                s->stop_phase ? s->stop_deadline : 0,
                !s->stop_phase ? s->max_deadline : 0,
                !s->stop_phase && s->o->idle_timeout && s->idle_since
                        ? s->idle_since + (int64_t)s->o->idle_timeout * 1000
                        : 0,
                !s->stop_phase ? s->started_deadline : 0,
                !s->stop_phase ? s->attach_deadline : 0,
                !s->stop_phase ? no_main_deadline(s) : 0,
        };
        for (size_t i = 0; i < ARRAY_SIZE(at); i++) {
                if (!at[i])
                        continue;
                int64_t d = at[i] > now ? at[i] - now : 0;
                if (t < 0 || d < t)
                        t = d;
        }
        return t > INT32_MAX ? INT32_MAX : (int)t;
}

static void timers(struct sup *s, int64_t now)
{
        if (!s->have_hello && now >= s->vm->boot_deadline) {
                set_error(s, xasprintf("the VM did not start the guest agent within %lld s (MSB_BOOT_TIMEOUT "
                                       "sets the limit)",
                                       (long long)(s->vm->boot_deadline - s->vm->boot_started) / 1000));
                s->crashed = s->done = true;
                return;
        }
        stop_tick(s);
        if (s->stop_phase)
                return;
        if (s->started_deadline && now >= s->started_deadline) {
                set_error(s, xstrdup("the guest agent did not start the main process within 60 s"));
                s->crashed = s->done = true;
        } else if (s->attach_deadline && now >= s->attach_deadline) {
                msb_log(s->ctx, 1, "nobody attached to the held main process within 60 s; stopping");
                stop_begin(s, 0);
        } else if (no_main_deadline(s) && now >= no_main_deadline(s)) {
                msb_log(s->ctx, 1, "booted without its main process, and nothing uses it any more: stopping");
                stop_begin(s, 0);
        } else if (s->max_deadline && now >= s->max_deadline) {
                msb_log(s->ctx, 1, "--max-duration reached");
                stop_begin(s, 10000);
        } else if (s->o->idle_timeout && s->idle_since &&
                   now >= s->idle_since + (int64_t)s->o->idle_timeout * 1000) {
                msb_log(s->ctx, 1, "--idle-timeout reached");
                stop_begin(s, 10000);
        }
}

static void signals(struct sup *s)
{
        struct signalfd_siginfo si;
        while (read(s->sfd, &si, sizeof(si)) == sizeof(si))
                if (si.ssi_signo == SIGTERM)
                        stop_begin(s, 10000);
}

/* A virtio-fs server exited.  QEMU closes their sockets when it powers
 * off, so that is the normal way out when QEMU follows within moments. */
static void server_exited(struct sup *s, size_t i)
{
        struct vm *vm = s->vm;
        struct pollfd q = {.fd = vm->sb.qemu.pidfd, .events = POLLIN};
        bool qemu_exiting = poll(&q, 1, 1000) == 1;
        proc_kill_wait(vm->sb.fsd[i].pid, &vm->sb.fsd[i].pidfd);
        vm->sb.fsd[i].pid = 0;
        if (!qemu_exiting && !s->stop_phase) {
                set_error(s, xasprintf("the %s exited unexpectedly; the VM was stopped", vm->sb.fsd[i].what));
                s->crashed = true;
        }
        s->done = true;
}

static void loop(struct sup *s)
{
        struct vm *vm = s->vm;
        while (!s->done) {
                struct pollfd p[4 + MAX_VOLUMES + 1 + CONN_MAX];
                struct conn *cs[CONN_MAX];
                int n = 0;
                /* a guest that does not drain what we owe it is not read from */
                bool room = msb_buf_pending(&vm->out) < GUEST_OUTQ_HIGH;
                p[n++] = (struct pollfd){.fd = vm->sb.ctl,
                                         .events = (short)((room ? POLLIN : 0) |
                                                           (msb_buf_pending(&vm->out) ? POLLOUT : 0))};
                p[n++] = (struct pollfd){.fd = vm->sb.qemu.pidfd, .events = POLLIN};
                p[n++] = (struct pollfd){.fd = s->sfd, .events = POLLIN};
                p[n++] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
                int nfixed = n;
                for (size_t i = 0; i < vm->sb.nfsd; i++)
                        p[n++] = (struct pollfd){.fd = vm->sb.fsd[i].pid > 0 ? vm->sb.fsd[i].pidfd : -1,
                                                 .events = POLLIN};
                int cbase = n, nc = 0;
                for (struct conn *c = s->conns; c && nc < CONN_MAX; c = c->next) {
                        cs[nc++] = c;
                        p[n++] = (struct pollfd){
                                .fd = c->fd,
                                .events = (short)((room ? POLLIN : 0) | (msb_buf_pending(&c->out) ? POLLOUT : 0))};
                }
                int64_t now = mono_ms();
                idle_update(s, now);
                int k = poll(p, (nfds_t)n, next_timeout(s, now));
                if (k < 0 && errno != EINTR)
                        break;
                timers(s, mono_ms());
                if (k <= 0)
                        continue;
                if (p[0].revents & POLLOUT)
                        flush_fd(vm->sb.ctl, &vm->out);
                if (p[0].revents & (POLLIN | POLLHUP))
                        guest_read(s);
                if (p[1].revents & POLLIN) {
                        if (!s->stop_phase && !s->done) {
                                s->crashed = true;
                                set_error(s, xstrdup("the VM stopped unexpectedly"));
                        }
                        s->done = true;
                }
                if (p[2].revents & POLLIN)
                        signals(s);
                if (p[3].revents & POLLIN)
                        client_accept(s);
                for (int i = nfixed; i < cbase && !s->done; i++)
                        if (p[i].revents & POLLIN)
                                server_exited(s, (size_t)(i - nfixed));
                for (int i = 0; i < nc; i++) {
                        struct conn *c = cs[i];
                        short re = p[cbase + i].revents;
                        if (re & POLLOUT)
                                flush_fd(c->fd, &c->out);
                        if (c->closing && !msb_buf_pending(&c->out))
                                conn_close(s, c);
                        else if (re & (POLLIN | POLLHUP | POLLERR))
                                client_read(s, c);
                }
        }
}

/* Tell every client how it ended, within wait_ms for all of them. */
static void farewell(struct sup *s, int wait_ms)
{
        int st = s->status;
        bool sig = st > 128 && st < 128 + 65;
        for (struct conn *c = s->conns; c; c = c->next) {
                if (c->closing)
                        continue;
                if (c->kind == C_WAIT || c->kind == C_STOP || (c->kind == C_ATTACH && c->p && !s->main_error))
                        msb_enc_exit(&c->out, 1, sig ? MSB_EXIT_SIGNAL : MSB_EXIT_CODE,
                                     (uint32_t)(sig ? st - 128 : st >= 0 ? st & 255 : s->crashed ? 255 : 0));
                else if (c->kind == C_EXEC && c->p)
                        /* the sandbox stopped under it: killed */
                        msb_enc_exit(&c->out, 1, MSB_EXIT_SIGNAL, SIGKILL);
        }
        int64_t end = mono_ms() + wait_ms;
        for (;;) {
                struct pollfd p[CONN_MAX];
                struct conn *cs[CONN_MAX];
                int n = 0;
                for (struct conn *c = s->conns; c && n < CONN_MAX; c = c->next)
                        if (msb_buf_pending(&c->out)) {
                                cs[n] = c;
                                p[n++] = (struct pollfd){.fd = c->fd, .events = POLLOUT};
                        }
                int64_t left = end - mono_ms();
                if (!n || left <= 0 || poll(p, (nfds_t)n, (int)left) <= 0)
                        break;
                for (int i = 0; i < n; i++)
                        if (p[i].revents & POLLOUT)
                                flush_fd(cs[i]->fd, &cs[i]->out);
                        else if (p[i].revents)
                                msb_buf_free(&cs[i]->out); /* gone */
        }
        while (s->conns)
                conn_close(s, s->conns);
}

static int listen_on(struct sup *s, struct msb_error *err)
{
        _cleanup_free_ char *path = xasprintf("%s/ctl.sock", s->vm->sb.dir);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return msb_err(err, ENAMETOOLONG, "runtime dir path %s is too long for a unix socket",
                               s->vm->sb.dir);
        strcpy(sa.sun_path, path);
        s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s->lfd, 64) < 0)
                return msb_err(err, errno, "cannot listen on %s: %s", path, strerror(errno));
        s->st.socket = TAKE_PTR(path);
        return 0;
}

/* Booted for a copy: the sandbox is left as it was found (a "created" one
 * has still never run; a stopped one keeps its exit code and times). */
static void state_restore(struct sup *s)
{
        snprintf(s->st.status, sizeof(s->st.status), "%s",
                 !strcmp(s->before.status, "running") ? "crashed" : s->before.status);
        s->st.started = s->before.started;
        s->st.finished = s->before.finished;
        s->st.exit_code = s->before.exit_code;
        free(s->error);
        s->error = s->before.error ? xstrdup(s->before.error) : NULL;
}

static void state_final(struct sup *s)
{
        snprintf(s->st.status, sizeof(s->st.status), "%s", s->crashed ? "crashed" : "stopped");
        s->st.finished = time(NULL);
        s->st.exit_code = s->status >= 0 ? s->status : (s->crashed ? 255 : 0);
        if (s->no_main && !s->crashed)
                state_restore(s);
        s->st.pid = 0;
        s->st.qemu_pid = 0;
        s->st.net_pid = 0;
        free(s->st.server_pids);
        s->st.server_pids = NULL;
        free(s->st.runtime);
        free(s->st.socket);
        s->st.runtime = s->st.socket = NULL;
        free(s->st.error);
        s->st.error = s->error ? xstrdup(s->error) : NULL;
        sb_state_write(s->dir, &s->st);
}

/* run.lock, held for our whole life, with our pid in it (for msb rm -f
 * when nothing else answers). */
static int sup_lock(struct sup *s)
{
        _cleanup_free_ char *lock = xasprintf("%s/run.lock", s->dir);
        s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0)
                return -EBUSY;
        char pidbuf[24];
        int pl = snprintf(pidbuf, sizeof(pidbuf), "%d\n", getpid());
        if (ftruncate(s->lock_fd, 0) < 0 || pwrite(s->lock_fd, pidbuf, (size_t)pl, 0) != pl)
                msb_log(s->ctx, 1, "cannot record our pid in %s", lock);
        return 0;
}

static void sup_signals(struct sup *s)
{
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGPIPE);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        s->sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* The VM, on the sandbox's disk and pinned image root, and our socket. */
static int sup_boot(struct sup *s, unsigned flags, struct msb_error *err)
{
        int r = sb_config_load(s->ctx, s->name, &s->o, err);
        if (r < 0)
                return r;
        sb_state_read(s->dir, &s->st);
        s->no_main = flags & MSB_START_NO_MAIN;
        if (s->no_main)
                sb_state_read(s->dir, &s->before);
        sup_signals(s);
        _cleanup_free_ char *disk = xasprintf("%s/disk.img", s->dir);
        _cleanup_free_ char *pinned = NULL, *pinpath = xasprintf("%s/rootfs", s->dir);
        (void)read_file_at(AT_FDCWD, pinpath, PATH_MAX, &pinned, NULL);
        struct vm_opts vo = {
                .pinned_rootfs = pinned,
                .disk = s->o->no_disk ? NULL : disk,
                .hostname = s->name,
                .main_optional = true,
                .hold_main = flags & (MSB_START_HOLD | MSB_START_NO_MAIN),
                .tty = s->o->tty,
                .rows = s->o->rows ? s->o->rows : 24,
                .cols = s->o->cols ? s->o->cols : 80,
        };
        s->ctx->detached = true;
        r = vm_start(s->ctx, s->o, &vo, &s->vm, err);
        if (r < 0)
                return r;
        /* a pool's VM said HELLO to its keeper */
        s->have_hello = s->vm->sb.warm != NULL;
        r = listen_on(s, err);
        if (r < 0)
                return r;
        if (s->no_main)
                ; /* booted for a copy: the main process is not started */
        else if (s->vm->main.argc && (flags & MSB_START_HOLD))
                s->main_pending = true;
        else if (s->vm->main.argc) {
                struct gproc *m = proc_new(s, VM_MAIN_ID, true);
                m->stdin = s->vm->main.flags & MSB_EXEC_STDIN;
                m->tty = s->vm->main.flags & MSB_EXEC_TTY;
        }
        return 0;
}

static void sup_running(struct sup *s)
{
        log_open(s);
        snprintf(s->st.status, sizeof(s->st.status), "running");
        s->st.pid = getpid();
        s->st.started = time(NULL);
        s->st.finished = 0;
        s->st.exit_code = -1;
        free(s->st.runtime);
        s->st.runtime = xstrdup(s->vm->sb.dir);
        free(s->st.kernel);
        s->st.kernel = xstrdup(s->vm->kit.kernel);
        s->st.qemu_pid = s->vm->sb.qemu.pid;
        free(s->st.server_pids);
        s->st.server_pids = xstrdup("");
        s->st.net_pid = 0;
        for (size_t i = 0; i < s->vm->sb.nfsd; i++) {
                if (s->vm->sb.fsd[i].net) {
                        s->st.net_pid = (int)s->vm->sb.fsd[i].pid;
                        continue;
                }
                char *n = xasprintf("%s%s%d", s->st.server_pids, *s->st.server_pids ? " " : "",
                                    (int)s->vm->sb.fsd[i].pid);
                free(s->st.server_pids);
                s->st.server_pids = n;
        }
        free(s->st.error);
        s->st.error = NULL;
        sb_state_write(s->dir, &s->st);
        if (s->o->max_duration)
                s->max_deadline = mono_ms() + (int64_t)s->o->max_duration * 1000;
}

/* After the loop: nobody new gets in, the starter and every client hear
 * how it ended, the VM goes, the state says so. */
static void sup_end(struct sup *s)
{
        close(s->lfd);
        s->lfd = -1;
        if (s->st.socket)
                unlink(s->st.socket);
        if (s->ready_fd >= 0) {
                /* a VM that died or never came up: its console says why */
                const char *what = s->error ? s->error : "the VM stopped during start";
                _cleanup_free_ char *msg = s->crashed ? vm_failure(s->vm, what) : xstrdup(what);
                ready(s, msg);
        }
        farewell(s, FAREWELL_MS);
        vm_free(s->vm);
        s->vm = NULL;
        if (s->log_fd >= 0)
                close(s->log_fd);
        while (s->procs)
                proc_free(s, s->procs);
        state_final(s);
        /* one that was stopped stays, whatever it was made with */
        if (s->o->auto_remove && !s->no_main)
                sb_remove_files(s->ctx, s->name);
}

static void sup_free(struct sup *s)
{
        vm_free(s->vm);
        msb_run_opts_free(s->o);
        if (s->sfd >= 0)
                close(s->sfd);
        if (s->lfd >= 0)
                close(s->lfd);
        msb_reader_free(&s->rd);
        sb_state_free(&s->st);
        sb_state_free(&s->before);
        free(s->error);
        free(s->dir);
}

/* Runs in the supervisor process; returns its exit status. */
static int supervise(struct msb_ctx *ctx, const char *name, unsigned flags, int ready_fd)
{
        struct sup s = {.ctx = ctx, .name = name, .lfd = -1, .sfd = -1, .lock_fd = -1, .ready_fd = ready_fd,
                        .log_fd = -1, .next_id = VM_MAIN_ID + 1, .status = -1};
        struct msb_error err = {0};
        s.dir = sb_dir(ctx, name);
        int r = sup_lock(&s);
        if (r < 0)
                ready(&s, "it is already running (or still stopping: try again in a moment)");
        else if ((r = sup_boot(&s, flags, &err)) < 0) {
                if (s.o) {
                        free(s.st.error);
                        s.st.error = xstrdup(err.message);
                        sb_state_write(s.dir, &s.st);
                }
                ready(&s, err.message);
        } else {
                sup_running(&s);
                loop(&s);
                sup_end(&s);
        }
        sup_free(&s);
        return r < 0 ? 1 : 0;
}

/* The supervisor is the grandchild, in its own session, so that nothing
 * the CLI does (its exit, Ctrl-C on its terminal) reaches it. */
int sb_supervise(struct msb_ctx *ctx, const char *name, unsigned flags, struct msb_error *err)
{
        int rp[2];
        if (pipe2(rp, O_CLOEXEC) < 0)
                return msb_err(err, errno, "pipe: %s", strerror(errno));
        _cleanup_free_ char *logp = xasprintf("%s/%s/supervisor.log", ctx->sandboxes_dir, name);
        /* a subreaper CLI would inherit the orphaned supervisor */
        int was_subreaper = 0;
        prctl(PR_GET_CHILD_SUBREAPER, &was_subreaper);
        prctl(PR_SET_CHILD_SUBREAPER, 0);
        pid_t pid = fork();
        if (pid == 0) {
                setsid();
                if (fork() != 0)
                        _exit(0);
                if (chdir("/") < 0)
                        _exit(1);
                /* out of the way of 0..3 first (the CLI may have run with
                 * a standard fd closed) */
                int w = fcntl(rp[1], F_DUPFD_CLOEXEC, 10);
                int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
                int logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (w < 0 || nul < 0)
                        _exit(1);
                dup2(nul, 0);
                dup2(nul, 1);
                dup2(logfd >= 0 ? logfd : nul, 2);
                dup2(w, 3);
                /* the CLI's locks and files stay the CLI's: op.lock above all */
                if (close_range(4, ~0u, 0) < 0)
                        for (int fd = 4; fd < 65536; fd++)
                                close(fd);
                fcntl(3, F_SETFD, FD_CLOEXEC);
                signal(SIGINT, SIG_DFL);
                signal(SIGPIPE, SIG_IGN);
                prctl(PR_SET_NAME, "msb-supervisor");
                _exit(supervise(ctx, name, flags, 3));
        }
        prctl(PR_SET_CHILD_SUBREAPER, was_subreaper);
        close(rp[1]);
        if (pid < 0) {
                close(rp[0]);
                return msb_err(err, errno, "fork: %s", strerror(errno));
        }
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        char msg[4096];
        size_t n = 0;
        for (;;) {
                ssize_t k = read(rp[0], msg + n, sizeof(msg) - 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0 || (n += (size_t)k) >= sizeof(msg) - 1)
                        break;
        }
        close(rp[0]);
        msg[n] = '\0';
        if (!strcmp(msg, "ok"))
                return 0;
        return msb_err(err, EIO, "sandbox '%s' did not start: %s", name,
                       n ? msg : "its supervisor died; run with --verbose and see <data>/sandboxes/NAME/supervisor.log");
}

/* ---- for the fuzzer ---- */

/* A supervisor with no VM behind it: frames from a hostile guest and from
 * three clients, interleaved as data says (each chunk: one selector byte,
 * a little-endian u16 length, the bytes), go through the same handlers as
 * in the loop.  Nothing is read from or written to a real fd. */
void sup_fuzz(const uint8_t *data, size_t size)
{
        struct vm vm = {0};
        char *argv[] = {"sh", NULL}, *env[] = {"A=b", NULL};
        vm.main = (struct msb_exec_msg){.id = VM_MAIN_ID, .flags = MSB_EXEC_MAIN | MSB_EXEC_STDIN, .workdir = "",
                                        .user = "", .argc = 1, .argv = argv, .envc = 1, .env = env, .home = "",
                                        .exec_path = ""};
        vm.env = env;
        vm.user = "";
        vm.boot_deadline = INT64_MAX;
        struct msb_run_opts o = {0};
        struct sup s = {.name = "fuzz", .vm = &vm, .o = &o, .lfd = -1, .sfd = -1, .lock_fd = -1, .ready_fd = -1,
                        .log_fd = -1, .next_id = VM_MAIN_ID + 1, .status = -1, .main_pending = size && (data[0] & 1)};
        if (!s.main_pending)
                proc_new(&s, VM_MAIN_ID, true)->stdin = true;
        struct msb_ctx quiet = {0}; /* no log function: msb_log says nothing */
        s.ctx = &quiet;
        struct conn *cl[3];
        for (int i = 0; i < 3; i++) {
                cl[i] = xcalloc(1, sizeof(*cl[i]));
                cl[i]->fd = -1;
                cl[i]->next = s.conns;
                s.conns = cl[i];
                s.nconns++;
        }
        size_t off = size ? 1 : 0;
        while (off + 3 <= size && !s.done) {
                unsigned sel = data[off] % 4;
                size_t n = (size_t)(data[off + 1] | data[off + 2] << 8);
                off += 3;
                if (n > size - off)
                        n = size - off;
                struct msb_reader *rd = NULL;
                struct conn *c = NULL;
                if (sel == 0)
                        rd = &s.rd;
                else {
                        for (struct conn *x = s.conns; x; x = x->next)
                                if (x == cl[sel - 1])
                                        c = x;
                        if (c)
                                rd = &c->rd;
                }
                if (rd) {
                        msb_reader_feed(rd, data + off, n);
                        struct msb_msg m;
                        int q;
                        while (!s.done && (q = msb_reader_next(rd, &m)) == 1) {
                                int r = c ? client_msg(&s, c, &m) : guest_msg(&s, &m);
                                msb_msg_free(&m);
                                if (r < 0)
                                        break;
                        }
                }
                off += n;
                /* what the loop does between rounds */
                idle_update(&s, mono_ms());
                for (int i = 0; i < 3; i++)
                        for (struct conn *x = s.conns; x; x = x->next)
                                if (x == cl[i] && x->closing) {
                                        conn_close(&s, x);
                                        cl[i] = NULL;
                                        break;
                                }
                if (msb_buf_pending(&vm.out) > GUEST_OUTQ_HIGH)
                        msb_buf_free(&vm.out); /* the guest read it */
        }
        farewell(&s, 0);
        while (s.procs)
                proc_free(&s, s.procs);
        msb_buf_free(&vm.out);
        msb_reader_free(&s.rd);
        free(s.error);
}
