/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor's command server: msb commands on ctl.sock, one request
 * per connection (EXEC, ATTACH, STOP, WAIT, a bare SIGNAL or RESIZE,
 * PROCS), each connection then carrying one process's streams as id 1,
 * which is mapped to the guest's id for it.  Also the bookkeeping of
 * processes and connections that the guest side shares.  Requests about
 * processes by id are procs.c's, kept processes kept.c's.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "supervisor.h"

/* ---- processes and clients ---- */

struct gproc *sup_proc_find(struct sup *s, uint32_t id)
{
        for (struct gproc *p = s->procs; p; p = p->next)
                if (p->id == id)
                        return p;
        return NULL;
}

struct gproc *sup_proc_new(struct sup *s, uint32_t id, bool main)
{
        struct gproc *p = xcalloc(1, sizeof(*p));
        p->id = id;
        p->main = main;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        p->started_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (main)
                procs_keep_argv(p, s->vm->main.argv, s->vm->main.argc);
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

void sup_proc_free(struct sup *s, struct gproc *p)
{
        if (p->conn) {
                p->conn->p = NULL;
                p->conn->closing = true;
        }
        if (p->kept) {
                kept_release(s, p);
                kept_free(p->kept);
                s->nkept--;
        }
        strv_free(p->argv);
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

void sup_conn_close(struct sup *s, struct conn *c)
{
        struct gproc *p = c->p;
        if (p && p->kept)
                kept_conn_gone(s, p, c); /* it runs on, stdin open */
        else if (p && c->kind == C_EXEC && !p->exited) {
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
        if (p && !p->kept)
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

/* ---- from clients ---- */

static void send_main(struct sup *s)
{
        s->main_pending = false;
        struct gproc *p = sup_proc_new(s, VM_MAIN_ID, true);
        p->stdin = s->vm->main.flags & MSB_EXEC_STDIN;
        p->tty = s->vm->main.flags & MSB_EXEC_TTY;
        s->attach_deadline = 0;
        s->started_deadline = mono_ms() + STARTED_WAIT_MS;
        if (msb_enc_exec(&s->vm->out, &s->vm->main) < 0) {
                sup_set_error(s, xstrdup("the command line and environment are too large"));
                s->done = true;
        }
}

/* EXEC went to the guest: the process is known, and its client hears
 * its id (STARTED follows from the guest). */
static void exec_sent(struct sup *s, struct conn *c, const struct msb_exec_msg *ex, bool keep)
{
        struct gproc *p = sup_proc_new(s, ex->id, false);
        p->tty = ex->flags & MSB_EXEC_TTY;
        p->stdin = ex->flags & MSB_EXEC_STDIN;
        p->routine = ex->flags & MSB_EXEC_INTERNAL;
        procs_keep_argv(p, ex->argv, ex->argc);
        c->kind = C_EXEC;
        if (keep)
                kept_begin(s, p, c);
        else {
                p->conn = c;
                c->p = p;
        }
        procs_info(s, p, &c->out);
}

/* Who an exec runs as: its user ("" = the sandbox's), with the ids
 * resolved once from the image at boot when it is the sandbox's own, as for
 * the main process; else agentd resolves it from the guest's files. */
static void exec_user(const struct vm *vm, struct msb_exec_msg *ex)
{
        bool same_user = !ex->user[0] || !strcmp(ex->user, vm->user);
        if (!ex->user[0])
                ex->user = (char *)vm->user;
        if (same_user && vm->have_ids) {
                ex->flags |= MSB_EXEC_IDS;
                ex->uid = vm->ids.uid;
                ex->gid = vm->ids.gid;
                ex->ngroups = vm->ids.ngroups;
                memcpy(ex->groups, vm->ids.groups, vm->ids.ngroups * sizeof(vm->ids.groups[0]));
                ex->home = (char *)vm->ids.home;
        } else {
                ex->flags &= ~MSB_EXEC_IDS;
                ex->ngroups = 0;
                ex->home = "";
        }
}

/* A routine of agentd's, from "/", in no environment of the image's: msb
 * cp's as root, whoever the sandbox's user is (docker cp's way); the file
 * operations' (MSB_EXEC_AS_USER) as the user asked for, as an exec. */
static void client_exec_routine(struct sup *s, struct conn *c, struct msb_exec_msg *ex)
{
        bool as_user = ex->flags & MSB_EXEC_AS_USER;
        ex->flags = MSB_EXEC_INTERNAL | MSB_EXEC_IDS | (ex->flags & MSB_EXEC_STDIN);
        ex->workdir = "/";
        ex->env = NULL;
        ex->envc = 0;
        if (as_user)
                exec_user(s->vm, ex);
        else {
                ex->user = "0:0";
                ex->uid = ex->gid = 0;
                ex->ngroups = 1;
                ex->groups[0] = 0;
                ex->home = "/root";
        }
        ex->exec_path = "";
        ex->nprefetch = 0;
        ex->prefetch = NULL;
        ex->nseccomp = 0;
        ex->seccomp = NULL;
        memset(ex->caps, 0, sizeof(ex->caps));
        if (msb_enc_exec(&s->vm->out, ex) < 0)
                return sup_conn_error(s, c, "exec", E2BIG, "the command line is too large");
        exec_sent(s, c, ex, false);
}

static void client_exec(struct sup *s, struct conn *c, struct msb_exec_msg *req)
{
        if (s->nprocs >= MSB_PROTO_MAX_PROCS - 1)
                return sup_conn_error(s, c, "exec", EAGAIN, "too many processes in this sandbox");
        if (s->stop_phase || s->done)
                return sup_conn_error(s, c, "exec", ESRCH, "the sandbox is stopping");
        bool keep = (req->flags & MSB_EXEC_KEEP) && !(req->flags & MSB_EXEC_INTERNAL);
        if (keep && s->nkept >= SUP_MAX_KEPT)
                return sup_conn_error(s, c, "exec", EAGAIN,
                                      "%u kept processes run in this sandbox already: end one first", SUP_MAX_KEPT);
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
        exec_user(vm, &ex);
        ex.exec_path = "";
        ex.nprefetch = 0;
        ex.prefetch = NULL;
        if (msb_enc_exec(&vm->out, &ex) < 0)
                return sup_conn_error(s, c, "exec", E2BIG, "the command line and environment are too large");
        exec_sent(s, c, &ex, keep);
}

static void client_attach(struct sup *s, struct conn *c, uint32_t id, uint32_t flags)
{
        if (id != VM_MAIN_ID)
                return procs_attach(s, c, id, flags);
        if (flags & MSB_ATTACH_NO_OUTPUT)
                return sup_conn_error(s, c, "attach", EINVAL,
                                      "process 1 is the main process: its stdin is written by the client "
                                      "attached to it with stdin (msb attach)");
        if (!s->main && !s->main_pending)
                return sup_conn_error(s, c, "attach", ESRCH, "the sandbox has no main process running");
        if ((s->main && s->main->conn) || s->stop_phase)
                return sup_conn_error(s, c, "attach", EBUSY, "%s",
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
        if (flags & MSB_ATTACH_INFO)
                procs_info(s, s->main, &c->out);
}

/* The first request on a connection decides what it is. */
static int client_request(struct sup *s, struct conn *c, struct msb_msg *m)
{
        switch (m->type) {
        case MSB_MSG_EXEC:
                client_exec(s, c, &m->u.exec);
                return 0;
        case MSB_MSG_ATTACH:
                client_attach(s, c, m->id, m->u.flags);
                return 0;
        case MSB_MSG_STOP:
                c->kind = C_STOP;
                sup_stop_begin(s, m->u.grace_ms);
                return 0;
        case MSB_MSG_WAIT:
                c->kind = C_WAIT;
                return 0;
        case MSB_MSG_RESIZE:
                procs_resize(s, c, m->id, m->u.resize.rows, m->u.resize.cols);
                return 0;
        case MSB_MSG_PROCS:
                procs_list(s, c);
                return 0;
        case MSB_MSG_SIGNAL:
                if (m->id != VM_MAIN_ID)
                        procs_signal(s, c, m->id, m->u.signo);
                else if (!s->main || s->main->exited)
                        sup_conn_error(s, c, "kill", ESRCH, "the sandbox has no main process running");
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

int sup_client_msg(struct sup *s, struct conn *c, struct msb_msg *m)
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
        if (p->kept)
                return kept_client_msg(s, c, m);
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

void sup_client_read(struct sup *s, struct conn *c)
{
        uint8_t buf[65536];
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n <= 0) {
                if (n == 0 || (errno != EAGAIN && errno != EINTR))
                        sup_conn_close(s, c);
                return;
        }
        msb_reader_feed(&c->rd, buf, (size_t)n);
        struct msb_msg m;
        int q;
        while ((q = msb_reader_next(&c->rd, &m)) == 1) {
                int r = sup_client_msg(s, c, &m);
                msb_msg_free(&m);
                if (r < 0) {
                        q = r;
                        break;
                }
        }
        if (q < 0)
                sup_conn_close(s, c);
}

void sup_client_accept(struct sup *s)
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

void sup_flush_fd(int fd, struct msb_buf *b)
{
        while (msb_buf_pending(b)) {
                ssize_t w = send(fd, msb_buf_head(b), msb_buf_pending(b), MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w <= 0)
                        return;
                msb_buf_consume(b, (size_t)w);
        }
}

/* Tell every client how it ended, within wait_ms for all of them. */
void sup_farewell(struct sup *s, int wait_ms)
{
        int st = s->status;
        bool sig = st > 128 && st < 128 + 65;
        for (struct conn *c = s->conns; c; c = c->next) {
                if (c->closing)
                        continue;
                if (c->kind == C_WAIT || c->kind == C_STOP || (c->kind == C_ATTACH && c->p && !s->main_error))
                        msb_enc_exit(&c->out, 1, sig ? MSB_EXIT_SIGNAL : MSB_EXIT_CODE,
                                     (uint32_t)(sig ? st - 128 : st >= 0 ? st & 255 : s->crashed ? 255 : 0));
                else if ((c->kind == C_EXEC || c->kind == C_PROC) && c->p)
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
                                sup_flush_fd(cs[i]->fd, &cs[i]->out);
                        else if (p[i].revents)
                                msb_buf_free(&cs[i]->out); /* gone */
        }
        while (s->conns)
                sup_conn_close(s, s->conns);
}

int sup_listen_on(struct sup *s, struct msb_error *err)
{
        _cleanup_free_ char *path = xasprintf("%s/ctl.sock", s->vm->sb.dir);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return msb_err(err, ENAMETOOLONG, "runtime dir path %s is too long for a unix socket",
                               s->vm->sb.dir);
        strcpy(sa.sun_path, path);
        s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s->lfd, 64) < 0)
                return msb_err_errno(err, errno, "cannot listen on %s", path);
        s->st.socket = TAKE_PTR(path);
        return 0;
}
