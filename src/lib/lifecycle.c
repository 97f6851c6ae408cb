/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A named sandbox's lifecycle from the client side: start (forking its
 * supervisor), stop, kill, wait and remove, each a request to the
 * supervisor where one runs.
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
        _cleanup_proc_ struct msb_proc *p = NULL;
        int r = sb_connect(ctx, name, &p, err);
        if (r < 0)
                return r;
        enc(&p->out, v);
        r = client_send_out(p);
        struct msb_msg m;
        int q = r < 0 ? 0 : client_recv_msg(p, &m, timeout_ms);
        r = 0;
        if (q == 1) {
                if (m.type == MSB_MSG_EXIT && ret_status)
                        *ret_status = client_exit_value(&m);
                else if (m.type == MSB_MSG_ERROR)
                        r = msb_err(err, m.u.error.err > 0 ? m.u.error.err : EIO, "sandbox '%s': %s", name,
                                    m.u.error.message);
                msb_msg_free(&m);
        } else if (ret_status)
                *ret_status = -1;
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

