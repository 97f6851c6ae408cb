/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client side of a named sandbox: the connection to its supervisor
 * (supervisor/), and processes (exec, attach) over one; client_relay.c carries
 * their streams, lifecycle.c starts, stops and removes the sandbox.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

void msb_proc_free(struct msb_proc *p)
{
        if (!p)
                return;
        if (p->fd >= 0)
                close(p->fd);
        msb_reader_free(&p->rd);
        msb_buf_free(&p->out);
        free(p->name);
        free(p->dir);
        free(p);
}

int client_send_out(struct msb_proc *p)
{
        while (msb_buf_pending(&p->out)) {
                ssize_t w = send(p->fd, msb_buf_head(&p->out), msb_buf_pending(&p->out), MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN) {
                        struct pollfd q = {.fd = p->fd, .events = POLLOUT};
                        poll(&q, 1, 1000);
                        continue;
                }
                if (w <= 0)
                        return -EPIPE;
                msb_buf_consume(&p->out, (size_t)w);
        }
        return 0;
}

/* The next message, waiting up to timeout_ms: 1, 0 at EOF or timeout, < 0
 * on a protocol error. */
int client_recv_msg(struct msb_proc *p, struct msb_msg *m, int timeout_ms)
{
        int64_t end = mono_ms() + timeout_ms;
        for (;;) {
                int q = msb_reader_next(&p->rd, m);
                if (q != 0)
                        return q;
                int64_t left = end - mono_ms();
                struct pollfd pf = {.fd = p->fd, .events = POLLIN};
                if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
                        return 0;
                uint8_t buf[65536];
                ssize_t n = read(p->fd, buf, sizeof(buf));
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n <= 0)
                        return 0;
                msb_reader_feed(&p->rd, buf, (size_t)n);
        }
}

static int not_running(struct msb_ctx *ctx, const char *name, struct msb_error *err)
{
        struct sb_state st;
        int r = sb_state_current(ctx, name, &st, err);
        if (r < 0)
                return r;
        r = msb_err(err, ESRCH, "sandbox '%s' is not running (it is %s): msb start %s", name, st.status, name);
        sb_state_free(&st);
        return r;
}

/* A connection to the supervisor, HELLO exchanged. */
int sb_connect(struct msb_ctx *ctx, const char *name, struct msb_proc **ret, struct msb_error *err)
{
        struct sb_state st;
        int r = sb_open(ctx, name, NULL, &st, err);
        if (r < 0)
                return r;
        if (strcmp(st.status, "running") || !st.socket) {
                sb_state_free(&st);
                return not_running(ctx, name, err);
        }
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", st.socket);
        sb_state_free(&st);
        _cleanup_proc_ struct msb_proc *p = xcalloc(1, sizeof(*p));
        p->no_signals = ctx->no_signals;
        p->name = xstrdup(name);
        p->dir = sb_dir(ctx, name);
        p->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (p->fd < 0 || connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return errno == ENOENT || errno == ECONNREFUSED
                               ? not_running(ctx, name, err)
                               : msb_err_errno(err, errno, "sandbox '%s': cannot connect to %s", name, sa.sun_path);
        msb_enc_hello(&p->out, MSB_PROTO_VERSION, "msb");
        struct msb_msg m;
        if (client_send_out(p) < 0 || client_recv_msg(p, &m, REPLY_TIMEOUT_MS) != 1)
                return msb_err(err, EIO, "sandbox '%s': its supervisor did not answer", name);
        bool ok = m.type == MSB_MSG_HELLO && m.u.hello.version == MSB_PROTO_VERSION;
        msb_msg_free(&m);
        if (!ok)
                return msb_err(err, EPROTO, "sandbox '%s': its supervisor speaks another protocol version", name);
        *ret = TAKE_PTR(p);
        return 0;
}

int client_exec_status(int e)
{
        return e == ENOENT || e == ENOTDIR ? MSB_EXIT_NOT_FOUND : MSB_EXIT_NOT_EXECUTABLE;
}

int client_exit_value(const struct msb_msg *m)
{
        return m->u.exit.kind == MSB_EXIT_SIGNAL ? 128 + (int)m->u.exit.value : (int)m->u.exit.value;
}

/* Send EXEC and wait for STARTED (or why not); see msb_sandbox_exec(). */
static int exec_request(struct msb_ctx *ctx, const char *name, const struct msb_exec_msg *ex, struct msb_proc **ret,
                        int *ret_status, struct msb_error *err)
{
        _cleanup_proc_ struct msb_proc *p = NULL;
        int r = sb_connect(ctx, name, &p, err);
        if (r < 0)
                return r;
        if (msb_enc_exec(&p->out, ex) < 0)
                return msb_err(err, E2BIG, "the command line and environment are too large");
        struct msb_msg m;
        if (client_send_out(p) < 0)
                return msb_err(err, EIO, "sandbox '%s': its supervisor went away", name);
        /* its id in the sandbox first, then STARTED or why not */
        while ((r = client_recv_msg(p, &m, REPLY_TIMEOUT_MS)) == 1 && m.type == MSB_MSG_PROC_INFO) {
                client_take_info(p, &m);
                msb_msg_free(&m);
        }
        if (r != 1)
                return msb_err(err, EIO, "sandbox '%s': %s", name,
                               r < 0 ? "its supervisor sent a malformed message" : "the process did not start");
        if (m.type == MSB_MSG_ERROR) {
                bool exec = !strcmp(m.u.error.step, "exec") || !strcmp(m.u.error.step, "workdir") ||
                            !strcmp(m.u.error.step, "user");
                r = msb_err(err, m.u.error.err > 0 ? m.u.error.err : EIO, "%s", m.u.error.message);
                if (exec && m.u.error.err != ESRCH && m.u.error.err != EAGAIN) {
                        *ret_status = client_exec_status(m.u.error.err);
                        r = 1;
                }
                msb_msg_free(&m);
                return r;
        }
        if (m.type != MSB_MSG_STARTED) {
                msb_msg_free(&m);
                return msb_err(err, EPROTO, "sandbox '%s': unexpected answer from its supervisor", name);
        }
        p->pid = (int)m.u.pid;
        msb_msg_free(&m);
        *ret = TAKE_PTR(p);
        return 0;
}

int msb_sandbox_exec(struct msb_ctx *ctx, const char *name, const struct msb_exec_opts *eo, struct msb_proc **ret,
                     int *ret_status, struct msb_error *err)
{
        if (!eo->argv || !eo->argv[0])
                return msb_err(err, EINVAL, "no command given: name one after the sandbox");
        for (char *const *e = eo->env; e && *e; e++)
                if (!strchr(*e, '=') || **e == '=')
                        return msb_err(err, EINVAL, "environment '%s': expected K=V", *e);
        struct msb_exec_msg ex = {
                .id = 1,
                .flags = (eo->stdin ? MSB_EXEC_STDIN : 0) | (eo->tty ? MSB_EXEC_TTY : 0) |
                         (eo->keep ? MSB_EXEC_KEEP : 0),
                .workdir = (char *)(eo->workdir ? eo->workdir : ""),
                .user = (char *)(eo->user ? eo->user : ""),
                .argc = (uint32_t)strv_len((char **)eo->argv),
                .argv = (char **)eo->argv,
                .envc = (uint32_t)strv_len((char **)eo->env),
                .env = (char **)eo->env,
                .home = "",
                .exec_path = "",
                .rows = eo->tty ? (eo->rows ? eo->rows : 24) : 0,
                .cols = eo->tty ? (eo->cols ? eo->cols : 80) : 0,
        };
        if (eo->confine) {
                if (eo->confine->seccomp_len > MSB_PROTO_MAX_SECCOMP ||
                    (eo->confine->seccomp_len && !eo->confine->seccomp))
                        return msb_err(err, E2BIG, "a seccomp filter of %zu instructions; at most %u",
                                       eo->confine->seccomp_len, MSB_PROTO_MAX_SECCOMP);
                exec_confine(&ex, eo->confine);
        }
        return exec_request(ctx, name, &ex, ret, ret_status, err);
}

int sb_exec_routine(struct msb_ctx *ctx, const char *name, char *const argv[], bool with_stdin, const char *user,
                    struct msb_proc **ret, struct msb_error *err)
{
        struct msb_exec_msg ex = {
                .id = 1,
                .flags = MSB_EXEC_INTERNAL | (with_stdin ? MSB_EXEC_STDIN : 0) | (user ? MSB_EXEC_AS_USER : 0),
                .workdir = "/",
                .user = (char *)(user ? user : ""),
                .argc = (uint32_t)strv_len((char **)argv),
                .argv = (char **)argv,
                .home = "",
                .exec_path = "",
        };
        int status;
        int r = exec_request(ctx, name, &ex, ret, &status, err);
        /* agentd always has its routines: not starting one is a failure,
         * the user's (not in the guest's /etc/passwd) when one was named */
        if (r == 1 && err)
                err->code = user ? EINVAL : EIO;
        return r == 1 ? (user ? -EINVAL : -EIO) : r;
}

int msb_sandbox_attach(struct msb_ctx *ctx, const char *name, bool forward_stdin, struct msb_proc **ret,
                       struct msb_error *err)
{
        _cleanup_proc_ struct msb_proc *p = NULL;
        int r = sb_connect(ctx, name, &p, err);
        if (r < 0)
                return r;
        p->attach = true;
        p->id = VM_MAIN_ID;
        msb_enc_u32(&p->out, MSB_MSG_ATTACH, VM_MAIN_ID, forward_stdin ? MSB_ATTACH_STDIN : 0);
        if (client_send_out(p) < 0)
                return msb_err(err, EIO, "sandbox '%s': its supervisor went away", name);
        *ret = TAKE_PTR(p);
        return 0;
}

int msb_proc_signal(struct msb_proc *p, int signo)
{
        if (signo < 1 || signo > 64)
                return -EINVAL;
        msb_enc_u32(&p->out, MSB_MSG_SIGNAL, 1, (uint32_t)signo);
        return client_send_out(p);
}

int msb_proc_resize(struct msb_proc *p, unsigned rows, unsigned cols)
{
        if (rows < 1 || rows > 65535 || cols < 1 || cols > 65535)
                return -EINVAL;
        msb_enc_resize(&p->out, 1, rows, cols);
        return client_send_out(p);
}

int msb_proc_fd(const struct msb_proc *p)
{
        return p->fd;
}

