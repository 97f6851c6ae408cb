/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A sandbox's processes by id from the client side: the listing, attach,
 * signal, resize and stdin writes (each its own connection to the
 * supervisor), and msb_proc_read, a process's streams as events.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"

uint32_t msb_proc_id(const struct msb_proc *p)
{
        return p->id;
}

int msb_proc_pid(const struct msb_proc *p)
{
        return p->pid;
}

void client_take_info(struct msb_proc *p, const struct msb_msg *m)
{
        p->id = m->id;
        if (m->u.proc_info.pid)
                p->pid = (int)m->u.proc_info.pid;
        p->kept = m->u.proc_info.flags & MSB_PROC_KEPT;
}

static int no_id(const char *name, struct msb_error *err)
{
        return msb_err(err, ENOENT, "sandbox '%s': no process 0 (ids start at 1)", name);
}

/* The supervisor's ERROR as ours (its text names the sandbox). */
static int answer_error(const struct msb_msg *m, struct msb_error *err)
{
        return msb_err(err, m->u.error.err > 0 ? m->u.error.err : EIO, "%s", m->u.error.message);
}

/* A connection that sent the request req holds and got its first answer
 * (*m, to free); -errno with err filled if there is none. */
static int ask(struct msb_ctx *ctx, const char *name, const struct msb_buf *req, struct msb_proc **ret,
               struct msb_msg *m, struct msb_error *err)
{
        _cleanup_proc_ struct msb_proc *p = NULL;
        int r = sb_connect(ctx, name, &p, err);
        if (r < 0)
                return r;
        msb_buf_append(&p->out, msb_buf_head(req), msb_buf_pending(req));
        if (client_send_out(p) < 0)
                return msb_err(err, EIO, "sandbox '%s': its supervisor went away", name);
        r = client_recv_msg(p, m, REPLY_TIMEOUT_MS);
        if (r != 1)
                return msb_err(err, EIO, "sandbox '%s': %s", name,
                               r < 0 ? "its supervisor sent a malformed message" : "its supervisor did not answer");
        if (m->type == MSB_MSG_ERROR) {
                r = answer_error(m, err);
                msb_msg_free(m);
                return r;
        }
        *ret = TAKE_PTR(p);
        return 0;
}

/* A request answered with EXIT 0 (or ERROR). */
static int one_shot(struct msb_ctx *ctx, const char *name, const struct msb_buf *req, struct msb_error *err)
{
        _cleanup_proc_ struct msb_proc *p = NULL;
        struct msb_msg m;
        int r = ask(ctx, name, req, &p, &m, err);
        if (r < 0)
                return r;
        bool ok = m.type == MSB_MSG_EXIT;
        msb_msg_free(&m);
        return ok ? 0 : msb_err(err, EPROTO, "sandbox '%s': unexpected answer from its supervisor", name);
}

int msb_sandbox_proc_signal(struct msb_ctx *ctx, const char *name, uint32_t id, int signo, struct msb_error *err)
{
        if (signo < 1 || signo > 64)
                return msb_err(err, EINVAL, "signal %d is not a signal number (1-64)", signo);
        if (!id)
                return no_id(name, err);
        _cleanup_buf_ struct msb_buf b = {0};
        msb_enc_u32(&b, MSB_MSG_SIGNAL, id, (uint32_t)signo);
        return one_shot(ctx, name, &b, err);
}

int msb_sandbox_proc_resize(struct msb_ctx *ctx, const char *name, uint32_t id, unsigned rows, unsigned cols,
                            struct msb_error *err)
{
        if (rows < 1 || rows > 65535 || cols < 1 || cols > 65535)
                return msb_err(err, EINVAL, "a terminal of %u x %u: rows and columns are 1 to 65535", rows, cols);
        if (!id)
                return no_id(name, err);
        _cleanup_buf_ struct msb_buf b = {0};
        msb_enc_resize(&b, id, rows, cols);
        return one_shot(ctx, name, &b, err);
}

/* An ATTACH (flags of proto.h's) answered with the process's PROC_INFO. */
static int attach(struct msb_ctx *ctx, const char *name, uint32_t id, uint32_t flags, struct msb_proc **ret,
                  struct msb_error *err)
{
        if (!id)
                return no_id(name, err);
        _cleanup_buf_ struct msb_buf b = {0};
        msb_enc_u32(&b, MSB_MSG_ATTACH, id, flags | MSB_ATTACH_INFO);
        _cleanup_proc_ struct msb_proc *p = NULL;
        struct msb_msg m;
        int r = ask(ctx, name, &b, &p, &m, err);
        if (r < 0)
                return r;
        bool ok = m.type == MSB_MSG_PROC_INFO;
        if (ok) {
                client_take_info(p, &m);
                if (!(flags & (MSB_ATTACH_NO_BACKLOG | MSB_ATTACH_NO_OUTPUT)))
                        p->ev_dropped = m.u.proc_info.dropped;
        }
        msb_msg_free(&m);
        if (!ok)
                return msb_err(err, EPROTO, "sandbox '%s': unexpected answer from its supervisor", name);
        p->attach = id == VM_MAIN_ID;
        p->writer = (flags & (MSB_ATTACH_STDIN | MSB_ATTACH_NO_OUTPUT)) == (MSB_ATTACH_STDIN | MSB_ATTACH_NO_OUTPUT);
        *ret = TAKE_PTR(p);
        return 0;
}

int msb_sandbox_proc_attach(struct msb_ctx *ctx, const char *name, uint32_t id, unsigned flags,
                            struct msb_proc **ret, struct msb_error *err)
{
        if (flags & ~(MSB_ATTACH_STDIN | MSB_ATTACH_NO_BACKLOG | MSB_ATTACH_NO_OUTPUT))
                return msb_err(err, EINVAL,
                               "attach flags %#x: only MSB_ATTACH_STDIN, MSB_ATTACH_NO_BACKLOG and MSB_ATTACH_NO_OUTPUT",
                               flags);
        return attach(ctx, name, id, flags, ret, err);
}

/* Wait for what the guest says of our stdin: 1 on an ACK (counted off
 * *unacked), 0 when nothing came for REPLY_TIMEOUT_MS, -errno. */
static int write_wait(struct msb_proc *p, uint32_t id, uint32_t *unacked, size_t done, size_t n,
                      struct msb_error *err)
{
        struct msb_msg m;
        int r;
        int64_t start = mono_ms();
        while ((r = client_recv_msg(p, &m, REPLY_TIMEOUT_MS)) == 1) {
                int t = m.type;
                uint32_t ack = m.u.ack;
                if (t == MSB_MSG_ERROR)
                        r = answer_error(&m, err);
                msb_msg_free(&m);
                if (t == MSB_MSG_ERROR)
                        return r;
                if (t == MSB_MSG_EXIT) {
                        p->ev_done = true;
                        return msb_err(err, EPIPE, "sandbox '%s': process %u exited before it read its stdin "
                                                   "(%zu of %zu bytes taken)", p->name, id, done, n);
                }
                if (t == MSB_MSG_ACK) {
                        if (ack > *unacked)
                                return msb_err(err, EPROTO, "sandbox '%s': its supervisor sent a malformed message",
                                               p->name);
                        *unacked -= ack;
                        return 1;
                }
        }
        if (r < 0)
                return msb_err(err, EPROTO, "sandbox '%s': its supervisor sent a malformed message", p->name);
        if (mono_ms() - start < REPLY_TIMEOUT_MS)
                return msb_err(err, ECONNRESET, "sandbox '%s': its supervisor went away (the sandbox stopped)",
                               p->name);
        return 0;
}

int msb_proc_write(struct msb_proc *p, const void *buf, size_t n, bool eof, struct msb_error *err)
{
        if (!p->writer)
                return msb_err(err, EINVAL,
                               "sandbox '%s': process %u was not attached as a stdin writer "
                               "(MSB_ATTACH_STDIN | MSB_ATTACH_NO_OUTPUT)",
                               p->name, p->id);
        if (p->ev_done)
                return msb_err(err, EPIPE, "sandbox '%s': process %u has exited", p->name, p->id);
        const uint8_t *b = buf;
        size_t sent = 0;
        uint32_t unacked = 0;
        while (sent < n || unacked) {
                while (sent < n && unacked < MSB_PROTO_WINDOW) {
                        size_t k = n - sent;
                        if (k > MSB_PROTO_DATA_CHUNK)
                                k = MSB_PROTO_DATA_CHUNK;
                        if (k > MSB_PROTO_WINDOW - unacked)
                                k = MSB_PROTO_WINDOW - unacked;
                        msb_enc_data(&p->out, MSB_MSG_STDIN, 1, b + sent, k);
                        sent += k;
                        unacked += (uint32_t)k;
                }
                if (client_send_out(p) < 0)
                        return msb_err(err, ECONNRESET, "sandbox '%s': its supervisor went away (the sandbox stopped)",
                                       p->name);
                int r = write_wait(p, p->id, &unacked, sent - unacked, n, err);
                if (r < 0)
                        return r;
                if (r == 0)
                        return msb_err(err, ETIMEDOUT, "sandbox '%s': process %u read none of its stdin for %d s "
                                                       "(%zu of %zu bytes taken)",
                                       p->name, p->id, REPLY_TIMEOUT_MS / 1000, sent - unacked, n);
        }
        if (eof) {
                msb_enc_id(&p->out, MSB_MSG_STDIN_EOF, 1);
                if (client_send_out(p) < 0)
                        return msb_err(err, ECONNRESET, "sandbox '%s': its supervisor went away (the sandbox stopped)",
                                       p->name);
        }
        return 0;
}

int msb_sandbox_proc_write(struct msb_ctx *ctx, const char *name, uint32_t id, const void *buf, size_t n,
                           bool eof, struct msb_error *err)
{
        _cleanup_proc_ struct msb_proc *p = NULL;
        int r = attach(ctx, name, id, MSB_ATTACH_STDIN | MSB_ATTACH_NO_OUTPUT, &p, err);
        if (r < 0)
                return r;
        return msb_proc_write(p, buf, n, eof, err);
}

static void info_from(struct msb_proc_info *pi, const struct msb_msg *m)
{
        const struct msb_proc_info_msg *x = &m->u.proc_info;
        pi->id = m->id;
        pi->pid = (int)x->pid;
        pi->tty = x->flags & MSB_PROC_TTY;
        pi->kept = x->flags & MSB_PROC_KEPT;
        pi->main = x->flags & MSB_PROC_MAIN;
        pi->stdin = x->flags & MSB_PROC_STDIN;
        pi->running = !(x->flags & MSB_PROC_EXITED);
        pi->exit_code = pi->running ? -1
                        : x->exit_kind == MSB_EXIT_SIGNAL ? 128 + (int)x->exit_value
                                                          : (int)x->exit_value;
        pi->started_ms = (int64_t)x->started_ms;
        struct msb_buf cmd = {0};
        for (uint32_t i = 0; i < x->argc; i++) {
                strv_push(&pi->argv, x->argv[i]);
                if (i)
                        msb_buf_append(&cmd, " ", 1);
                msb_buf_append(&cmd, x->argv[i], strlen(x->argv[i]));
        }
        if (!pi->argv)
                pi->argv = xcalloc(1, sizeof(char *));
        pi->command = xmalloc(msb_buf_pending(&cmd) + 1);
        memcpy(pi->command, msb_buf_head(&cmd), msb_buf_pending(&cmd));
        pi->command[msb_buf_pending(&cmd)] = '\0';
        msb_buf_free(&cmd);
}

void msb_proc_info_free(struct msb_proc_info *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++) {
                free(v[i].command);
                strv_free(v[i].argv);
        }
        free(v);
}

int msb_sandbox_procs(struct msb_ctx *ctx, const char *name, struct msb_proc_info **ret, size_t *ret_n,
                      struct msb_error *err)
{
        _cleanup_buf_ struct msb_buf b = {0};
        msb_enc_empty(&b, MSB_MSG_PROCS);
        _cleanup_proc_ struct msb_proc *p = NULL;
        struct msb_msg m;
        int r = ask(ctx, name, &b, &p, &m, err);
        if (r < 0)
                return r;
        r = 1; /* m holds the first answer */
        struct msb_proc_info *v = NULL;
        size_t n = 0;
        while (r == 1 && m.type == MSB_MSG_PROC_INFO) {
                v = xrealloc(v, (n + 1) * sizeof(*v));
                memset(&v[n], 0, sizeof(*v));
                info_from(&v[n++], &m);
                msb_msg_free(&m);
                r = client_recv_msg(p, &m, REPLY_TIMEOUT_MS);
        }
        bool ok = r == 1 && m.type == MSB_MSG_EXIT;
        if (r == 1)
                msb_msg_free(&m);
        if (!ok) {
                msb_proc_info_free(v, n);
                return msb_err(err, EIO, "sandbox '%s': its supervisor did not finish the list of its processes",
                               name);
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int msb_sandbox_proc_find_pid(struct msb_ctx *ctx, const char *name, int pid, uint32_t *ret_id,
                              struct msb_error *err)
{
        struct msb_proc_info *v;
        size_t n;
        int r = msb_sandbox_procs(ctx, name, &v, &n, err);
        if (r < 0)
                return r;
        const struct msb_proc_info *best = NULL;
        /* a pid may come again: the running one, else the newest */
        for (size_t i = 0; i < n; i++)
                if (pid > 0 && v[i].pid == pid && (!best || (v[i].running && !best->running) ||
                                                   (v[i].running == best->running && v[i].id > best->id)))
                        best = &v[i];
        if (best)
                *ret_id = best->id;
        msb_proc_info_free(v, n);
        return best ? 0 : msb_err(err, ENOENT, "sandbox '%s': no process has pid %d", name, pid);
}

/* ---- msb_proc_read ---- */

/* The last output event was handed on: acknowledged, as the relay does,
 * once half a window is owed (a kept process's needs none). */
static void hand_on(struct msb_proc *p)
{
        if (!p->ev_last)
                return;
        if (!p->kept) {
                p->ev_owed += p->ev_last;
                if (p->ev_owed >= MSB_PROTO_WINDOW / 2) {
                        msb_enc_u32(&p->out, MSB_MSG_ACK, 1, p->ev_owed);
                        p->ev_owed = 0;
                }
        }
        p->ev_last = 0;
}

/* One message as an event: 1, 0 for none, -errno. */
static int read_event(struct msb_proc *p, const struct msb_msg *m, struct msb_proc_event *ev, struct msb_error *err)
{
        switch (m->type) {
        case MSB_MSG_STDOUT:
        case MSB_MSG_STDERR:
                if (!m->u.data.len)
                        return 0;
                if (m->u.data.len > MSB_PROTO_WINDOW - p->ev_owed)
                        break;
                ev->type = m->type == MSB_MSG_STDOUT ? MSB_PROC_EV_STDOUT : MSB_PROC_EV_STDERR;
                ev->data = m->u.data.data;
                ev->len = m->u.data.len;
                p->ev_last = (uint32_t)m->u.data.len;
                return 1;
        case MSB_MSG_STARTED:
                p->pid = (int)m->u.pid;
                if (p->ev_started)
                        return 0;
                p->ev_started = true;
                ev->type = MSB_PROC_EV_STARTED;
                ev->pid = p->pid;
                return 1;
        case MSB_MSG_EXIT:
                p->ev_done = true;
                ev->type = MSB_PROC_EV_EXIT;
                ev->status = client_exit_value(m);
                return 1;
        case MSB_MSG_ERROR:
                p->ev_done = true;
                return answer_error(m, err);
        case MSB_MSG_ACK:
        case MSB_MSG_PROC_INFO:
                return 0;
        default:
                break;
        }
        return msb_err(err, EPROTO, "sandbox '%s': its supervisor sent a malformed message", p->name);
}

/* What was given before the streams: STARTED, DROPPED. */
static bool first_events(struct msb_proc *p, struct msb_proc_event *ev)
{
        if (!p->ev_started && p->pid) {
                p->ev_started = true;
                ev->type = MSB_PROC_EV_STARTED;
                ev->pid = p->pid;
                return true;
        }
        if (p->ev_dropped) {
                ev->type = MSB_PROC_EV_DROPPED;
                ev->dropped = p->ev_dropped;
                p->ev_dropped = 0;
                return true;
        }
        return false;
}

int msb_proc_read(struct msb_proc *p, int timeout_ms, struct msb_proc_event *ev, struct msb_error *err)
{
        memset(ev, 0, sizeof(*ev));
        if (p->ev_done)
                return msb_err(err, EPIPE, "sandbox '%s': process %u has ended: nothing more to read", p->name, p->id);
        hand_on(p);
        if (first_events(p, ev))
                return 1;
        int64_t end = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
        for (;;) {
                struct msb_msg m;
                int q = msb_reader_next(&p->rd, &m);
                if (q < 0)
                        return msb_err(err, EPROTO, "sandbox '%s': its supervisor sent a malformed message", p->name);
                if (q == 1) {
                        int r = read_event(p, &m, ev, err);
                        msb_msg_free(&m);
                        if (r != 0)
                                return r;
                        continue;
                }
                /* what we owe goes as far as the socket takes it now */
                while (msb_buf_pending(&p->out)) {
                        ssize_t w = send(p->fd, msb_buf_head(&p->out), msb_buf_pending(&p->out),
                                         MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (w <= 0)
                                break;
                        msb_buf_consume(&p->out, (size_t)w);
                }
                int64_t left = end < 0 ? -1 : end - mono_ms();
                struct pollfd pf = {.fd = p->fd, .events = (short)(POLLIN | (msb_buf_pending(&p->out) ? POLLOUT : 0))};
                int k = poll(&pf, 1, left < 0 ? -1 : (int)(left > INT32_MAX ? INT32_MAX : left));
                if (k < 0 && errno != EINTR)
                        return msb_err_errno(err, errno, "sandbox '%s': poll", p->name);
                if (k == 0 && end >= 0 && mono_ms() >= end)
                        return 0;
                if (k <= 0 || !(pf.revents & (POLLIN | POLLHUP | POLLERR)))
                        continue;
                uint8_t buf[65536];
                ssize_t n = read(p->fd, buf, sizeof(buf));
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n <= 0)
                        return msb_err(err, ECONNRESET,
                                       "sandbox '%s': the connection to its supervisor ended (the sandbox stopped%s)",
                                       p->name, p->kept ? ", or this reader fell 1 MiB behind and was dropped" : "");
                msb_reader_feed(&p->rd, buf, (size_t)n);
        }
}
