/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client side of a named sandbox: start, stop, kill, wait, remove, and
 * processes (exec, attach) whose streams are relayed over a connection to
 * the sandbox's supervisor (supervisor/).
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

#include "sbstore.h"
#include "sigmask.h"

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
};

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

static int send_out(struct msb_proc *p)
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
static int recv_msg(struct msb_proc *p, struct msb_msg *m, int timeout_ms)
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
static int sb_connect(struct msb_ctx *ctx, const char *name, struct msb_proc **ret, struct msb_error *err)
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
        struct msb_proc *p = xcalloc(1, sizeof(*p));
        p->name = xstrdup(name);
        p->dir = sb_dir(ctx, name);
        p->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (p->fd < 0 || connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                r = errno == ENOENT || errno == ECONNREFUSED ? not_running(ctx, name, err)
                                                             : msb_err_errno(err, errno, "sandbox '%s': cannot connect to %s",
                                                                             name, sa.sun_path);
                msb_proc_free(p);
                return r;
        }
        msb_enc_hello(&p->out, MSB_PROTO_VERSION, "msb");
        struct msb_msg m;
        if (send_out(p) < 0 || recv_msg(p, &m, REPLY_TIMEOUT_MS) != 1) {
                msb_proc_free(p);
                return msb_err(err, EIO, "sandbox '%s': its supervisor did not answer", name);
        }
        bool ok = m.type == MSB_MSG_HELLO && m.u.hello.version == MSB_PROTO_VERSION;
        msb_msg_free(&m);
        if (!ok) {
                msb_proc_free(p);
                return msb_err(err, EPROTO, "sandbox '%s': its supervisor speaks another protocol version", name);
        }
        *ret = p;
        return 0;
}

static int exec_status(int e)
{
        return e == ENOENT || e == ENOTDIR ? MSB_EXIT_NOT_FOUND : MSB_EXIT_NOT_EXECUTABLE;
}

static int exit_value(const struct msb_msg *m)
{
        return m->u.exit.kind == MSB_EXIT_SIGNAL ? 128 + (int)m->u.exit.value : (int)m->u.exit.value;
}

/* Send EXEC and wait for STARTED (or why not); see msb_sandbox_exec(). */
static int exec_request(struct msb_ctx *ctx, const char *name, const struct msb_exec_msg *ex, struct msb_proc **ret,
                        int *ret_status, struct msb_error *err)
{
        struct msb_proc *p;
        int r = sb_connect(ctx, name, &p, err);
        if (r < 0)
                return r;
        if (msb_enc_exec(&p->out, ex) < 0) {
                msb_proc_free(p);
                return msb_err(err, E2BIG, "the command line and environment are too large");
        }
        struct msb_msg m;
        if (send_out(p) < 0 || (r = recv_msg(p, &m, REPLY_TIMEOUT_MS)) != 1) {
                msb_proc_free(p);
                return msb_err(err, EIO, "sandbox '%s': %s", name,
                               r < 0 ? "its supervisor sent a malformed message" : "the process did not start");
        }
        if (m.type == MSB_MSG_ERROR) {
                bool exec = !strcmp(m.u.error.step, "exec") || !strcmp(m.u.error.step, "workdir") ||
                            !strcmp(m.u.error.step, "user");
                r = msb_err(err, m.u.error.err > 0 ? m.u.error.err : EIO, "%s", m.u.error.message);
                if (exec && m.u.error.err != ESRCH && m.u.error.err != EAGAIN) {
                        *ret_status = exec_status(m.u.error.err);
                        r = 1;
                }
                msb_msg_free(&m);
                msb_proc_free(p);
                return r;
        }
        if (m.type != MSB_MSG_STARTED) {
                msb_msg_free(&m);
                msb_proc_free(p);
                return msb_err(err, EPROTO, "sandbox '%s': unexpected answer from its supervisor", name);
        }
        msb_msg_free(&m);
        *ret = p;
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
                .flags = (eo->stdin ? MSB_EXEC_STDIN : 0) | (eo->tty ? MSB_EXEC_TTY : 0),
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

int sb_exec_routine(struct msb_ctx *ctx, const char *name, char *const argv[], bool with_stdin, struct msb_proc **ret,
                    struct msb_error *err)
{
        struct msb_exec_msg ex = {
                .id = 1,
                .flags = MSB_EXEC_INTERNAL | (with_stdin ? MSB_EXEC_STDIN : 0),
                .workdir = "/",
                .user = "",
                .argc = (uint32_t)strv_len((char **)argv),
                .argv = (char **)argv,
                .home = "",
                .exec_path = "",
        };
        int status;
        int r = exec_request(ctx, name, &ex, ret, &status, err);
        /* agentd always has its routines: not starting one is a failure */
        return r == 1 ? -EIO : r;
}

int msb_sandbox_attach(struct msb_ctx *ctx, const char *name, bool forward_stdin, struct msb_proc **ret,
                       struct msb_error *err)
{
        struct msb_proc *p;
        int r = sb_connect(ctx, name, &p, err);
        if (r < 0)
                return r;
        p->attach = true;
        msb_enc_u32(&p->out, MSB_MSG_ATTACH, 1, forward_stdin ? MSB_ATTACH_STDIN : 0);
        if (send_out(p) < 0) {
                msb_proc_free(p);
                return msb_err(err, EIO, "sandbox '%s': its supervisor went away", name);
        }
        *ret = p;
        return 0;
}

int msb_proc_signal(struct msb_proc *p, int signo)
{
        if (signo < 1 || signo > 64)
                return -EINVAL;
        msb_enc_u32(&p->out, MSB_MSG_SIGNAL, 1, (uint32_t)signo);
        return send_out(p);
}

int msb_proc_resize(struct msb_proc *p, unsigned rows, unsigned cols)
{
        if (rows < 1 || rows > 65535 || cols < 1 || cols > 65535)
                return -EINVAL;
        msb_enc_resize(&p->out, 1, rows, cols);
        return send_out(p);
}

int msb_proc_fd(const struct msb_proc *p)
{
        return p->fd;
}

/* ---- the relay ---- */

struct relay_state {
        const struct msb_relay_opts *ro;
        bool in_open, done, detached, killed;
        int status;
        char *error;
        int error_status; /* 126/127 for an exec failure, else 0 */
        int dk_matched;   /* detach keys typed so far */
        uint32_t out_owed; /* output written out, not acknowledged yet */
        /* a copy (sb_proc_relay_copy): stderr kept here, not written */
        char *errbuf;
        size_t errcap, errlen;
        bool copy, out_gone; /* a copy's out_fd reader went away: killed */
        int64_t giveup_at;   /* a copy told to stop: the guest gets this long */
};

static void send_resize(struct msb_proc *p, int tty_fd)
{
        struct winsize ws;
        if (tty_fd >= 0 && ioctl(tty_fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
                msb_enc_resize(&p->out, 1, ws.ws_row, ws.ws_col);
}

/* stdin to the process, minus the detach keys: a prefix of them is held
 * back until the next byte shows whether the user meant them.  n is at most
 * MSB_PROTO_DATA_CHUNK - MSB_DETACH_KEYS_MAX, so one frame takes it all. */
static void relay_stdin(struct msb_proc *p, struct relay_state *rs, const uint8_t *buf, size_t n)
{
        const char *dk = rs->ro->detach_keys;
        size_t dkn = dk ? strlen(dk) : 0;
        uint8_t tmp[MSB_PROTO_DATA_CHUNK];
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                if (dkn && buf[i] == (uint8_t)dk[rs->dk_matched]) {
                        if (++rs->dk_matched == (int)dkn) {
                                rs->detached = rs->done = true;
                                break;
                        }
                        continue;
                }
                if (rs->dk_matched) {
                        /* not the keys after all: what was held goes, and
                         * this byte may start them again */
                        memcpy(tmp + k, dk, (size_t)rs->dk_matched);
                        k += (size_t)rs->dk_matched;
                        rs->dk_matched = 0;
                        if (buf[i] == (uint8_t)dk[0]) {
                                rs->dk_matched = 1;
                                continue;
                        }
                }
                tmp[k++] = buf[i];
        }
        if (n == 0 && rs->dk_matched) {
                /* stdin ended: a held prefix was meant as input */
                memcpy(tmp, dk, (size_t)rs->dk_matched);
                k = (size_t)rs->dk_matched;
                rs->dk_matched = 0;
        }
        if (k) {
                msb_enc_data(&p->out, MSB_MSG_STDIN, 1, tmp, k);
                p->stdin_unacked += (uint32_t)k;
        }
}

/* All of b to fd; -1 if its reader went away (the rest is dropped). */
static int write_out(int fd, const uint8_t *b, size_t n)
{
        if (fd < 0)
                return 0;
        while (n > 0) {
                ssize_t w = write(fd, b, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN) {
                        struct pollfd q = {.fd = fd, .events = POLLOUT};
                        poll(&q, 1, -1);
                        continue;
                }
                if (w <= 0)
                        return -1; /* the reader went away: output is dropped */
                b += w;
                n -= (size_t)w;
        }
        return 0;
}

/* Output of the process: to its fd; for a copy, stderr into errbuf, and a
 * stdout nobody reads any more (the copy failed here) ends the process. */
static void relay_output(struct msb_proc *p, struct relay_state *rs, const struct msb_msg *m)
{
        const uint8_t *d = m->u.data.data;
        size_t n = m->u.data.len;
        if (rs->copy && m->type == MSB_MSG_STDERR) {
                size_t k = rs->errcap - 1 - rs->errlen < n ? rs->errcap - 1 - rs->errlen : n;
                memcpy(rs->errbuf + rs->errlen, d, k);
                rs->errlen += k;
                rs->errbuf[rs->errlen] = '\0';
                return;
        }
        if (rs->out_gone)
                return;
        if (write_out(m->type == MSB_MSG_STDOUT ? rs->ro->out_fd : rs->ro->err_fd, d, n) < 0 && rs->copy) {
                msb_enc_u32(&p->out, MSB_MSG_SIGNAL, 1, SIGKILL);
                rs->out_gone = true;
                rs->giveup_at = mono_ms() + COPY_GIVEUP_MS;
        }
}

static int relay_msg(struct msb_proc *p, struct relay_state *rs, struct msb_msg *m)
{
        switch (m->type) {
        case MSB_MSG_STDOUT:
        case MSB_MSG_STDERR:
                relay_output(p, rs, m);
                /* acknowledged once half a window is owed: every ACK wakes
                 * the guest, and it only stops at a full window */
                if (m->u.data.len > MSB_PROTO_WINDOW - rs->out_owed)
                        return -EPROTO;
                if (rs->out_gone)
                        return 0; /* no more ACKs: a guest that keeps sending stalls */
                rs->out_owed += (uint32_t)m->u.data.len;
                if (rs->out_owed >= MSB_PROTO_WINDOW / 2) {
                        msb_enc_u32(&p->out, MSB_MSG_ACK, 1, rs->out_owed);
                        rs->out_owed = 0;
                }
                return 0;
        case MSB_MSG_ACK:
                if (m->u.ack > p->stdin_unacked)
                        return -EPROTO;
                p->stdin_unacked -= m->u.ack;
                return 0;
        case MSB_MSG_STARTED:
                return 0;
        case MSB_MSG_EXIT:
                rs->status = exit_value(m);
                rs->done = true;
                return 0;
        case MSB_MSG_ERROR:
                rs->error = xstrdup(m->u.error.message);
                if (!strcmp(m->u.error.step, "exec"))
                        rs->error_status = exec_status(m->u.error.err);
                rs->done = true;
                return 0;
        default:
                return -EPROTO;
        }
}

static void relay_signals(struct msb_proc *p, struct relay_state *rs, int sfd)
{
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGWINCH)
                        send_resize(p, rs->ro->tty_fd);
                else
                        msb_enc_u32(&p->out, MSB_MSG_SIGNAL, 1, si.ssi_signo);
                /* a copy stops when asked, whatever the guest does */
                if (rs->copy && si.ssi_signo != SIGWINCH && !rs->giveup_at)
                        rs->giveup_at = mono_ms() + COPY_GIVEUP_MS;
        }
}

/* Handle every whole frame already received. */
static int relay_decode(struct msb_proc *p, struct relay_state *rs)
{
        struct msb_msg m;
        int q;
        while (!rs->done && (q = msb_reader_next(&p->rd, &m)) == 1) {
                int r = relay_msg(p, rs, &m);
                msb_msg_free(&m);
                if (r < 0)
                        return r;
        }
        return q < 0 ? q : 0;
}

static int relay_loop(struct msb_proc *p, struct relay_state *rs, int sfd)
{
        const struct msb_relay_opts *ro = rs->ro;
        int64_t deadline = ro->timeout_ms ? mono_ms() + ro->timeout_ms : 0;
        size_t dkn = ro->detach_keys ? strlen(ro->detach_keys) : 0;
        /* what came with the answer to our request is handled first */
        int r = relay_decode(p, rs);
        while (!rs->done && r == 0) {
                bool room = p->stdin_unacked + MSB_PROTO_DATA_CHUNK <= MSB_PROTO_WINDOW &&
                            msb_buf_pending(&p->out) < (1u << 20);
                struct pollfd pf[3] = {
                        {.fd = p->fd, .events = (short)(POLLIN | (msb_buf_pending(&p->out) ? POLLOUT : 0))},
                        {.fd = sfd, .events = POLLIN},
                        {.fd = rs->in_open && room ? ro->in_fd : -1, .events = POLLIN},
                };
                int t = -1;
                if (deadline && !rs->killed)
                        t = (int)(deadline > mono_ms() ? deadline - mono_ms() : 0);
                if (rs->giveup_at) {
                        int64_t left = rs->giveup_at - mono_ms();
                        if (left <= 0)
                                return -ETIMEDOUT;
                        if (t < 0 || left < t)
                                t = (int)left;
                }
                int k = poll(pf, 3, t);
                if (k < 0 && errno != EINTR)
                        return -errno;
                if (deadline && !rs->killed && mono_ms() >= deadline) {
                        msb_enc_u32(&p->out, MSB_MSG_SIGNAL, 1, SIGKILL);
                        rs->killed = true;
                }
                if (k <= 0)
                        continue;
                if (pf[0].revents & POLLOUT) {
                        ssize_t w = send(p->fd, msb_buf_head(&p->out), msb_buf_pending(&p->out),
                                         MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (w > 0)
                                msb_buf_consume(&p->out, (size_t)w);
                }
                if (pf[1].revents & POLLIN)
                        relay_signals(p, rs, sfd);
                if (pf[2].revents & (POLLIN | POLLHUP | POLLERR)) {
                        uint8_t buf[MSB_PROTO_DATA_CHUNK];
                        ssize_t n = read(ro->in_fd, buf, sizeof(buf) - dkn);
                        if (n > 0)
                                relay_stdin(p, rs, buf, (size_t)n);
                        else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                                relay_stdin(p, rs, buf, 0);
                                msb_enc_id(&p->out, MSB_MSG_STDIN_EOF, 1);
                                rs->in_open = false;
                        }
                }
                if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        uint8_t buf[65536];
                        ssize_t n = read(p->fd, buf, sizeof(buf));
                        if (n > 0)
                                msb_reader_feed(&p->rd, buf, (size_t)n);
                        r = relay_decode(p, rs);
                        if (!rs->done && (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)))
                                return -ECONNRESET;
                }
        }
        if (r < 0)
                return r;
        (void)send_out(p);
        return 0;
}

/* Until the supervisor has gone (its lock is free), at most timeout_ms. */
bool sb_wait_gone(const char *dir, int timeout_ms)
{
        int64_t end = mono_ms() + timeout_ms;
        while (sb_alive(dir)) {
                if (mono_ms() >= end)
                        return false;
                struct timespec ts = {0, 20 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        return true;
}

/* The relay loop with its signals: 0, or -errno. */
static int relay_run(struct msb_proc *p, struct relay_state *rs)
{
        const struct msb_relay_opts *ro = rs->ro;
        sigset_t mask, old;
        signals_block(&mask, &old, SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGPIPE, 0);
        sigset_t taken = mask;
        sigdelset(&taken, SIGPIPE);
        int sfd = signalfd(-1, &taken, SFD_CLOEXEC | SFD_NONBLOCK);
        fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK);
        send_resize(p, ro->tty_fd);
        int r = sfd < 0 ? -errno : relay_loop(p, rs, sfd);
        if (sfd >= 0)
                close(sfd);
        struct timespec zero = {0, 0};
        while (sigtimedwait(&mask, NULL, &zero) > 0) {
        }
        sigprocmask(SIG_SETMASK, &old, NULL);
        return r;
}

int sb_proc_relay_copy(struct msb_proc *p, int in_fd, int out_fd, char *errbuf, size_t errcap, int *ret_status,
                       struct msb_error *err)
{
        struct msb_relay_opts ro = {.in_fd = in_fd, .out_fd = out_fd, .err_fd = -1, .tty_fd = -1};
        struct relay_state rs = {.ro = &ro, .in_open = in_fd >= 0, .status = -1, .copy = true, .errbuf = errbuf,
                                 .errcap = errcap};
        errbuf[0] = '\0';
        int r = relay_run(p, &rs);
        if (r < 0)
                r = msb_err(err, -r, "sandbox '%s': %s", p->name,
                            r == -ECONNRESET  ? "the connection to its supervisor ended (the sandbox stopped)"
                            : r == -ETIMEDOUT ? "the copy was stopped; the guest did not end it in time"
                                              : "its supervisor sent a malformed message");
        else if (rs.error)
                r = msb_err(err, EIO, "sandbox '%s': %s", p->name, rs.error);
        else
                *ret_status = rs.status;
        free(rs.error);
        return r;
}

int msb_proc_relay(struct msb_proc *p, const struct msb_relay_opts *ro, int *ret_status, struct msb_error *err)
{
        if (ro->detach_keys && strlen(ro->detach_keys) > MSB_DETACH_KEYS_MAX)
                return msb_err(err, EINVAL, "detach keys: at most %d of them", MSB_DETACH_KEYS_MAX);
        struct relay_state rs = {.ro = ro, .in_open = ro->in_fd >= 0, .status = -1};
        int r = relay_run(p, &rs);
        if (r < 0) {
                free(rs.error);
                return msb_err(err, -r, "sandbox '%s': %s", p->name,
                               r == -ECONNRESET ? "the connection to its supervisor ended (the sandbox stopped)"
                                                : "its supervisor sent a malformed message");
        }
        if (rs.detached) {
                free(rs.error);
                return MSB_DETACHED;
        }
        if (rs.error) {
                r = msb_err(err, EIO, "%s", rs.error);
                free(rs.error);
                if (rs.error_status) {
                        *ret_status = rs.error_status;
                        return 1;
                }
                return r;
        }
        *ret_status = rs.killed ? 124 : rs.status;
        /* the main process ended: the sandbox is stopping; once this
         * returns, it has stopped (and a --rm one is gone) */
        if (p->attach && !ro->no_wait_stop)
                sb_wait_gone(p->dir, 30000);
        return 0;
}

/* ---- lifecycle ---- */

int msb_sandbox_start(struct msb_ctx *ctx, const char *name, unsigned flags, struct msb_error *err)
{
        _cleanup_close_ int lk = -1;
        struct sb_state st;
        int r = sb_open(ctx, name, &lk, &st, err);
        if (r < 0)
                return r;
        bool running = !strcmp(st.status, "running");
        sb_state_free(&st);
        if (running)
                return msb_err(err, EBUSY, "sandbox '%s' is already running", name);
        return sb_supervise(ctx, name, flags, err);
}

/* Send one request and wait for its EXIT (or the end of the connection). */
static int request(struct msb_ctx *ctx, const char *name, void (*enc)(struct msb_buf *, uint32_t), uint32_t v,
                   int timeout_ms, int *ret_status, struct msb_error *err)
{
        struct msb_proc *p;
        int r = sb_connect(ctx, name, &p, err);
        if (r < 0)
                return r;
        enc(&p->out, v);
        r = send_out(p);
        struct msb_msg m;
        int q = r < 0 ? 0 : recv_msg(p, &m, timeout_ms);
        r = 0;
        if (q == 1) {
                if (m.type == MSB_MSG_EXIT && ret_status)
                        *ret_status = exit_value(&m);
                else if (m.type == MSB_MSG_ERROR)
                        r = msb_err(err, m.u.error.err > 0 ? m.u.error.err : EIO, "sandbox '%s': %s", name,
                                    m.u.error.message);
                msb_msg_free(&m);
        } else if (ret_status)
                *ret_status = -1;
        msb_proc_free(p);
        return r;
}

static void enc_stop(struct msb_buf *b, uint32_t grace)
{
        msb_enc_u32(b, MSB_MSG_STOP, 1, grace);
}

static void enc_wait(struct msb_buf *b, uint32_t unused)
{
        msb_enc_empty(b, MSB_MSG_WAIT);
}

static void enc_kill(struct msb_buf *b, uint32_t signo)
{
        msb_enc_u32(b, MSB_MSG_SIGNAL, 1, signo);
}

int msb_sandbox_stop(struct msb_ctx *ctx, const char *name, unsigned grace_ms, struct msb_error *err)
{
        bool running;
        int r = sb_running(ctx, name, &running, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *dir = sb_dir(ctx, name);
        if (!running)
                return 0; /* as docker: stopping a stopped sandbox is fine */
        r = request(ctx, name, enc_stop, grace_ms, (int)grace_ms + 30000, NULL, err);
        if (r == -ESRCH)
                r = 0;
        if (r < 0)
                return r;
        if (!sb_wait_gone(dir, 30000))
                return msb_err(err, ETIMEDOUT, "sandbox '%s' did not stop within %u s: msb rm -f %s stops it at once",
                               name, grace_ms / 1000 + 30, name);
        return 0;
}

int msb_sandbox_kill(struct msb_ctx *ctx, const char *name, int signo, struct msb_error *err)
{
        if (signo < 1 || signo > 64)
                return msb_err(err, EINVAL, "signal %d is not a signal number (1-64)", signo);
        return request(ctx, name, enc_kill, (uint32_t)signo, REPLY_TIMEOUT_MS, NULL, err);
}

int msb_sandbox_wait(struct msb_ctx *ctx, const char *name, int *ret_status, struct msb_error *err)
{
        bool running;
        int r = sb_running(ctx, name, &running, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *dir = sb_dir(ctx, name);
        if (running) {
                int status = -1;
                r = request(ctx, name, enc_wait, 0, INT32_MAX, &status, err);
                /* the supervisor may end (its main process died) between
                 * the state read and the request, or before it answers:
                 * then the state file has the status */
                bool gone = sb_wait_gone(dir, r < 0 ? 5000 : 30000);
                if (r < 0 && r != -ESRCH && !gone)
                        return r;
                if (status >= 0) {
                        *ret_status = status;
                        return 0;
                }
        }
        struct sb_state st;
        r = sb_state_current(ctx, name, &st, err);
        if (r == -ENOENT) {
                /* it removed itself (--rm) after it stopped */
                return msb_err(err, ENOENT, "sandbox '%s' was removed when it stopped", name);
        }
        if (r < 0)
                return r;
        *ret_status = st.exit_code >= 0 ? st.exit_code : 0;
        sb_state_free(&st);
        return 0;
}

int msb_sandbox_remove(struct msb_ctx *ctx, const char *name, bool force, struct msb_error *err)
{
        _cleanup_close_ int lk = -1;
        int r = sb_open(ctx, name, &lk, NULL, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *dir = sb_dir(ctx, name);
        if (sb_alive(dir)) {
                if (!force)
                        return msb_err(err, EBUSY, "sandbox '%s' is running: msb stop %s first, or msb rm -f %s", name,
                                       name, name);
                struct msb_error e2 = {0};
                (void)request(ctx, name, enc_stop, 0, 15000, NULL, &e2);
                if (!sb_wait_gone(dir, 15000)) {
                        /* the lock's holder wrote its pid in it; a pidfd
                         * taken while it still holds the lock is it */
                        _cleanup_free_ char *lp = xasprintf("%s/run.lock", dir), *pid = NULL;
                        int pfd = -1;
                        if (read_file_at(AT_FDCWD, lp, 32, &pid, NULL) == 0 && atoi(pid) > 1)
                                pfd = (int)syscall(SYS_pidfd_open, atoi(pid), 0);
                        if (pfd >= 0 && sb_alive(dir))
                                syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
                        if (pfd >= 0)
                                close(pfd);
                        sb_wait_gone(dir, 5000);
                }
        }
        r = sb_remove_files(ctx, name);
        if (r < 0 && r != -ENOENT)
                return msb_err_errno(err, -r, "cannot remove sandbox '%s'", name);
        return 0;
}
