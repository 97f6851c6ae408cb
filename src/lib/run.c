/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One ephemeral run, msb_run: a VM started (boot.c), then the relay loop
 * between it and our stdio (the main process's streams, signals forwarded,
 * --timeout) until the command exits or the VM dies, then teardown.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "proc.h"
#include "proto/proto.h"
#include "run.h"

/* Stop reading host stdin while this much is queued for the guest. */
#define CTL_OUTQ_HIGH (1u << 20)

struct relay {
        struct msb_buf out; /* to guest */
        struct msb_reader rd;
        bool have_hello, done;
        bool stdout_broken, stderr_broken;
        int status;
        char *error;
        int sigints;
        uint32_t stdin_unacked; /* STDIN bytes the guest has not handed on yet */
        uint32_t out_owed;      /* output written out, not acknowledged yet */
        const struct msb_run_opts *o;
        /* the loop's */
        struct vm *vm;
        int sfd;
        bool stdin_open, qemu_gone, vm_killed;
        int64_t kill_at; /* --timeout */
        char *failure;   /* msb's own failure: the VM died, a server died, ... */
};

/* The volume an agentd message "GUEST: ..." is about, if any. */
static const struct volume *volume_of(const struct msb_run_opts *o, const char *msg)
{
        for (size_t i = 0; i < o->nvols; i++) {
                size_t n = strlen(o->vols[i].guest);
                if (!strncmp(msg, o->vols[i].guest, n) && msg[n] == ':' && msg[n + 1] == ' ')
                        return &o->vols[i];
        }
        return NULL;
}

static int write_host(int fd, const uint8_t *p, size_t n, bool *broken)
{
        if (*broken)
                return 0;
        while (n > 0) {
                ssize_t w = write(fd, p, n);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd pf = {.fd = fd, .events = POLLOUT};
                                poll(&pf, 1, -1);
                                continue;
                        }
                        /* reader went away (EPIPE): drop output, keep running */
                        *broken = true;
                        return 0;
                }
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

static int exec_status(int e)
{
        return e == ENOENT || e == ENOTDIR ? MSB_EXIT_NOT_FOUND : MSB_EXIT_NOT_EXECUTABLE;
}

/* agentd's ERROR: the command could not be executed (a docker status), or
 * a step of the guest's setup failed; the run ends. */
static int relay_guest_error(struct relay *rl, const struct msb_msg *m)
{
        if (m->id != VM_MAIN_ID && m->id != 0)
                return -EPROTO;
        const struct volume *v;
        const char *step = m->u.error.step;
        int e = m->u.error.err;
        if (!strcmp(step, "exec")) {
                rl->status = exec_status(e);
                rl->error = xasprintf("%s: %s", m->u.error.message,
                                      e == ENOENT ? "executable file not found in $PATH"
                                                  : (e > 0 && e < 4096 ? errno_text(e) : "unknown error"));
                rl->status = -rl->status; /* mark: exec error with a status */
        } else if (!strcmp(step, "volume") && (v = volume_of(rl->o, m->u.error.message))) {
                /* agentd names the guest path; add the host side */
                rl->error = xasprintf("volume '%s:%s': %s%s%s", v->host, v->guest,
                                      m->u.error.message + strlen(v->guest) + 2, e ? ": " : "",
                                      e > 0 && e < 4096 ? errno_text(e) : "");
        } else {
                rl->error = xasprintf("guest setup failed at step '%s': %s%s%s", step, m->u.error.message,
                                      e ? ": " : "", e > 0 && e < 4096 ? errno_text(e) : "");
        }
        rl->done = true;
        msb_enc_empty(&rl->out, MSB_MSG_SHUTDOWN);
        return 0;
}

static int handle_msg(struct sandbox *sb, struct relay *rl, struct msb_msg *m, const struct msb_exec_msg *run)
{
        switch (m->type) {
        case MSB_MSG_HELLO:
                if (rl->have_hello)
                        return -EPROTO;
                if (m->u.hello.version != MSB_PROTO_VERSION) {
                        rl->error = xasprintf("guest agent speaks protocol version %u, msb speaks %u: rebuild the "
                                              "guest kit",
                                              m->u.hello.version, MSB_PROTO_VERSION);
                        rl->done = true;
                        return 0;
                }
                rl->have_hello = true;
                msb_log(sb->ctx, 1, "guest agent ready; running %s", run->argv[0]);
                return 0;
        case MSB_MSG_STDOUT:
        case MSB_MSG_STDERR:
                if (m->id != VM_MAIN_ID)
                        return -EPROTO;
                write_host(sb->o->fds[m->type == MSB_MSG_STDOUT ? 1 : 2], m->u.data.data, m->u.data.len,
                           m->type == MSB_MSG_STDOUT ? &rl->stdout_broken : &rl->stderr_broken);
                /* written out (or dropped for a reader that went away):
                 * the guest may send this much more.  Said once half a
                 * window is owed, not per chunk: every ACK wakes the guest,
                 * which under TCG cost a third of the output's throughput;
                 * the guest stops only at a whole window, so it never waits
                 * on an ACK held back here. */
                if (m->u.data.len > MSB_PROTO_WINDOW - rl->out_owed)
                        return -EPROTO; /* more than its window */
                rl->out_owed += (uint32_t)m->u.data.len;
                if (rl->out_owed >= MSB_PROTO_WINDOW / 2) {
                        msb_enc_u32(&rl->out, MSB_MSG_ACK, VM_MAIN_ID, rl->out_owed);
                        rl->out_owed = 0;
                }
                return 0;
        case MSB_MSG_ACK:
                if (m->id != VM_MAIN_ID || m->u.ack > rl->stdin_unacked)
                        return -EPROTO;
                rl->stdin_unacked -= m->u.ack;
                return 0;
        case MSB_MSG_STARTED:
                return m->id == VM_MAIN_ID ? 0 : -EPROTO;
        case MSB_MSG_EXIT:
                if (m->id != VM_MAIN_ID)
                        return -EPROTO;
                rl->status = m->u.exit.kind == MSB_EXIT_SIGNAL ? 128 + (int)m->u.exit.value : (int)m->u.exit.value;
                /* all output came before EXIT and has been written out;
                 * agentd synced the volumes before it sent EXIT, so the VM
                 * holds nothing more of ours and is stopped at once */
                rl->done = true;
                msb_enc_empty(&rl->out, MSB_MSG_SHUTDOWN);
                return 0;
        case MSB_MSG_ERROR:
                return relay_guest_error(rl, m);
        default:
                /* host-bound types only; anything else is a violation */
                return -EPROTO;
        }
}

/* Frames from the guest, as many as are whole.  got == 0: QEMU closed the
 * channel (it is exiting). */
static void relay_guest_in(struct relay *rl)
{
        struct sandbox *sb = &rl->vm->sb;
        uint8_t buf[65536];
        ssize_t got = read(sb->ctl, buf, sizeof(buf));
        if (got <= 0) {
                if (got == 0)
                        rl->qemu_gone = true;
                return;
        }
        msb_reader_feed(&rl->rd, buf, (size_t)got);
        struct msb_msg m;
        int q;
        while (!rl->done && (q = msb_reader_next(&rl->rd, &m)) == 1) {
                int h = handle_msg(sb, rl, &m, &rl->vm->main);
                msb_msg_free(&m);
                if (h < 0) {
                        q = h;
                        break;
                }
        }
        if (!rl->done && q < 0)
                rl->failure = xstrdup("the guest sent a malformed control message; stopping it");
        if (rl->done)
                /* the guest is told, if the socket takes it now; it is
                 * stopped anyway */
                (void)!write(sb->ctl, msb_buf_head(&rl->out), msb_buf_pending(&rl->out));
}

/* The first SIGINT/SIGTERM/SIGHUP goes to the command; a second one (or
 * one before the guest answered) stops the VM. */
static void relay_signals(struct relay *rl)
{
        struct signalfd_siginfo si;
        while (!rl->vm_killed && read(rl->sfd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGPIPE)
                        continue;
                if (rl->have_hello && !rl->done && rl->sigints == 0) {
                        msb_log(rl->vm->sb.ctx, 1, "forwarding signal %u to the command", si.ssi_signo);
                        msb_enc_u32(&rl->out, MSB_MSG_SIGNAL, VM_MAIN_ID, si.ssi_signo);
                        rl->sigints++;
                } else if (!rl->done) {
                        rl->vm_killed = true;
                        rl->status = 128 + (int)si.ssi_signo;
                }
        }
}

static void relay_stdin(struct relay *rl)
{
        uint8_t buf[MSB_PROTO_DATA_CHUNK];
        ssize_t got = read(rl->o->fds[0], buf, sizeof(buf));
        if (got > 0) {
                msb_enc_data(&rl->out, MSB_MSG_STDIN, VM_MAIN_ID, buf, (size_t)got);
                rl->stdin_unacked += (uint32_t)got;
        } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                msb_enc_id(&rl->out, MSB_MSG_STDIN_EOF, VM_MAIN_ID);
                rl->stdin_open = false;
        }
}

/* A server also exits when QEMU closes its socket on the way out (a guest
 * panic, a power-off): then QEMU's exit is the story, and it follows
 * within moments. */
static void relay_server_exited(struct relay *rl, size_t i)
{
        struct sandbox *sb = &rl->vm->sb;
        struct pollfd q = {.fd = sb->qemu.pidfd, .events = POLLIN};
        bool qemu_exiting = poll(&q, 1, 1000) == 1, sig;
        char how[48];
        /* a server that failed is the cause, whether QEMU follows it or not */
        if (child_failed(&sb->fsd[i], how, sizeof(how), &sig))
                rl->failure = vm_failure(rl->vm, "the VM was stopped");
        proc_kill_wait(sb->fsd[i].pid, &sb->fsd[i].pidfd);
        sb->fsd[i].pid = 0;
        if (rl->failure)
                return;
        if (qemu_exiting)
                rl->qemu_gone = true;
        else
                rl->failure = xasprintf("the %s exited unexpectedly; the VM was stopped", sb->fsd[i].what);
}

/* QEMU is gone; frames it delivered may still be queued in the socket. */
static void relay_drain(struct relay *rl)
{
        struct sandbox *sb = &rl->vm->sb;
        for (;;) {
                uint8_t buf[65536];
                ssize_t got = read(sb->ctl, buf, sizeof(buf));
                if (got <= 0)
                        break;
                msb_reader_feed(&rl->rd, buf, (size_t)got);
                struct msb_msg m;
                while (!rl->done && msb_reader_next(&rl->rd, &m) == 1) {
                        handle_msg(sb, rl, &m, &rl->vm->main);
                        msb_msg_free(&m);
                }
        }
}

/* Boot deadline, then --timeout: ms to wait (-1: none).  Sets the outcome
 * when one has passed. */
static int relay_deadlines(struct relay *rl)
{
        int64_t now = mono_ms();
        if (!rl->have_hello && !rl->done) {
                if (now >= rl->vm->boot_deadline)
                        rl->failure = xasprintf("the VM did not start the guest agent within %d s",
                                                boot_timeout_ms(rl->vm->accel) / 1000);
                return (int)(rl->vm->boot_deadline > now ? rl->vm->boot_deadline - now : 0);
        }
        if (rl->kill_at && !rl->done) {
                if (now >= rl->kill_at) {
                        /* --timeout: the VM is stopped, as a second Ctrl-C would */
                        msb_log(rl->vm->sb.ctx, 1, "--timeout reached: stopping the VM");
                        rl->vm_killed = true;
                        rl->status = 124;
                }
                return (int)(rl->kill_at > now ? rl->kill_at - now : 0);
        }
        return -1;
}

static bool relay_over(const struct relay *rl)
{
        return rl->done || rl->qemu_gone || rl->vm_killed || rl->failure;
}

/* One round: wait for the control channel, signals, QEMU, stdin and the
 * servers, then handle what is ready. */
static void relay_round(struct relay *rl)
{
        struct sandbox *sb = &rl->vm->sb;
        struct pollfd p[4 + MAX_VOLUMES + 1];
        int n = 0;
        p[n++] = (struct pollfd){.fd = sb->ctl, .events = (short)(POLLIN | (msb_buf_pending(&rl->out) ? POLLOUT : 0))};
        p[n++] = (struct pollfd){.fd = rl->sfd, .events = POLLIN};
        p[n++] = (struct pollfd){.fd = sb->qemu.pidfd, .events = POLLIN};
        bool room = msb_buf_pending(&rl->out) < CTL_OUTQ_HIGH &&
                    rl->stdin_unacked + MSB_PROTO_DATA_CHUNK <= MSB_PROTO_WINDOW;
        p[n++] = (struct pollfd){.fd = rl->stdin_open && room ? rl->o->fds[0] : -1, .events = POLLIN};
        for (size_t i = 0; i < sb->nfsd; i++)
                p[n++] = (struct pollfd){.fd = sb->fsd[i].pidfd, .events = POLLIN};
        int timeout = relay_deadlines(rl);
        if (relay_over(rl))
                return;
        int k = poll(p, (nfds_t)n, timeout);
        if (k < 0 && errno != EINTR)
                rl->failure = xstrdup(errno_msg(errno, "poll").s);
        if (k <= 0)
                return;
        if (p[0].revents & POLLOUT) {
                ssize_t w = write(sb->ctl, msb_buf_head(&rl->out), msb_buf_pending(&rl->out));
                if (w > 0)
                        msb_buf_consume(&rl->out, (size_t)w);
        }
        if (p[0].revents & (POLLIN | POLLHUP))
                relay_guest_in(rl);
        if (!relay_over(rl) && (p[1].revents & POLLIN))
                relay_signals(rl);
        if (!relay_over(rl) && (p[3].revents & (POLLIN | POLLHUP | POLLERR)))
                relay_stdin(rl);
        for (size_t i = 0; i < sb->nfsd && !relay_over(rl); i++)
                if (p[4 + i].revents & POLLIN)
                        relay_server_exited(rl, i);
        if (p[2].revents & POLLIN)
                rl->qemu_gone = true;
}

/* What the run comes to: 0 and the status, 1 for a command that could not
 * be executed, < 0 for msb's own failure. */
static int relay_result(struct relay *rl, int *ret_status, struct msb_error *err)
{
        if (!rl->done && !rl->vm_killed && !rl->failure)
                rl->failure = vm_failure(rl->vm, "the VM stopped before the command finished");
        if (rl->failure || (rl->error && rl->status >= 0))
                return msb_err(err, EIO, "%s", rl->failure ? rl->failure : rl->error);
        if (rl->error) {
                /* exec failure: report, but with the docker status */
                msb_err(err, ENOEXEC, "%s", rl->error);
                *ret_status = -rl->status;
                return 1;
        }
        *ret_status = rl->status;
        return 0;
}

/* The ephemeral run's loop: the main process's streams to and from our
 * stdio, signals forwarded, until it exits or the VM dies. */
static int relay_main(struct vm *vm, const struct msb_run_opts *o, int sfd, int *ret_status, struct msb_error *err)
{
        struct relay rl = {
                .o = o,
                .vm = vm,
                .sfd = sfd,
                /* a pool's VM said HELLO to its keeper */
                .have_hello = vm->sb.warm != NULL,
                .out = vm->out,
                .stdin_open = o->stdin_forward,
                .kill_at = o->timeout ? mono_ms() + (int64_t)o->timeout * 1000 : 0,
        };
        vm->out = (struct msb_buf){0};
        while (!relay_over(&rl))
                relay_round(&rl);
        if (rl.qemu_gone && !rl.done)
                relay_drain(&rl);
        int r = relay_result(&rl, ret_status, err);
        free(rl.failure);
        free(rl.error);
        msb_buf_free(&rl.out);
        msb_reader_free(&rl.rd);
        return r;
}

int msb_run(struct msb_ctx *ctx, const struct msb_run_opts *o, int *ret_status, struct msb_error *err)
{
        _cleanup_close_ int sfd = -1;
        sigset_t mask, oldmask;
        int r;
        /* ---- signals: taken through a signalfd for the whole run ---- */
        proc_block_signals(&mask, &oldmask, SIGINT, SIGTERM, SIGHUP, SIGPIPE, 0);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        struct vm *vm = NULL;
        if (sfd < 0) {
                r = msb_err_errno(err, errno, "signalfd");
                goto out_sig;
        }
        r = vm_start(ctx, o, &(struct vm_opts){0}, &vm, err);
        if (r < 0)
                goto out_sig;
        r = relay_main(vm, o, sfd, ret_status, err);
out_sig:
        vm_free(vm);
        {
                /* drop signals that arrived during teardown, then restore */
                struct timespec zero = {0, 0};
                while (sigtimedwait(&mask, NULL, &zero) > 0) {
                }
        }
        sigprocmask(SIG_SETMASK, &oldmask, NULL);
        return r;
}
