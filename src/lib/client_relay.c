/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A sandbox process's streams relayed between the caller's fds and its
 * connection to the supervisor: stdin with flow control, output written
 * out and acknowledged, signals and terminal size forwarded, detach keys,
 * and a copy's variant (sb_proc_relay_copy) for msb cp.
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
#include "proc.h"

#define COPY_GIVEUP_MS 5000 /* a copy told to stop ends by then, guest or not */

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
                rs->status = client_exit_value(m);
                rs->done = true;
                return 0;
        case MSB_MSG_ERROR:
                rs->error = xstrdup(m->u.error.message);
                if (!strcmp(m->u.error.step, "exec"))
                        rs->error_status = client_exec_status(m->u.error.err);
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
                struct pollfd pf[4] = {
                        {.fd = p->fd, .events = (short)(POLLIN | (msb_buf_pending(&p->out) ? POLLOUT : 0))},
                        {.fd = sfd, .events = POLLIN},
                        {.fd = rs->in_open && room ? ro->in_fd : -1, .events = POLLIN},
                        {.fd = ro->cancel_fd > 0 && !rs->killed ? ro->cancel_fd : -1, .events = POLLIN},
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
                int k = poll(pf, 4, t);
                if (k < 0 && errno != EINTR)
                        return -errno;
                if ((deadline && !rs->killed && mono_ms() >= deadline) ||
                    (k > 0 && (pf[3].revents & (POLLIN | POLLHUP | POLLERR)))) {
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
        (void)client_send_out(p);
        return 0;
}


/* The relay loop with its signals: 0, or -errno. */
static int relay_run(struct msb_proc *p, struct relay_state *rs)
{
        const struct msb_relay_opts *ro = rs->ro;
        if (p->no_signals) {
                fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK);
                send_resize(p, ro->tty_fd);
                return relay_loop(p, rs, -1);
        }
        sigset_t mask, old;
        proc_block_signals(&mask, &old, SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGPIPE, 0);
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
