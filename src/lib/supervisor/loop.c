/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor's event loop: the guest channel, QEMU's and the
 * servers' pidfds, signals and clients polled together; the deadlines
 * (boot, STARTED, attach, idle, --max-duration) and the stop sequence
 * (SIGTERM to the main process, then SHUTDOWN, then QEMU killed).
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "supervisor.h"

/* ---- stopping ---- */

void sup_stop_begin(struct sup *s, unsigned grace_ms)
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
                sup_stop_begin(s, 0);
        } else {
                msb_log(s->ctx, 1, "the guest did not power off in time; stopping QEMU");
                s->done = true;
        }
}

void sup_set_error(struct sup *s, char *msg)
{
        if (s->error) { /* the first cause is the story */
                free(msg);
                return;
        }
        s->error = msg;
}

/* No client using it (a waiter does not count) and no exec'd process (the
 * main one may run): idle. */
void sup_idle_update(struct sup *s, int64_t now)
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
                sup_set_error(s, xasprintf("the VM did not start the guest agent within %lld s (MSB_BOOT_TIMEOUT "
                                       "sets the limit)",
                                       (long long)(s->vm->boot_deadline - s->vm->boot_started) / 1000));
                s->crashed = s->done = true;
                return;
        }
        stop_tick(s);
        if (s->stop_phase)
                return;
        if (s->started_deadline && now >= s->started_deadline) {
                sup_set_error(s, xstrdup("the guest agent did not start the main process within 60 s"));
                s->crashed = s->done = true;
        } else if (s->attach_deadline && now >= s->attach_deadline) {
                msb_log(s->ctx, 1, "nobody attached to the held main process within 60 s; stopping");
                sup_stop_begin(s, 0);
        } else if (no_main_deadline(s) && now >= no_main_deadline(s)) {
                msb_log(s->ctx, 1, "booted without its main process, and nothing uses it any more: stopping");
                sup_stop_begin(s, 0);
        } else if (s->max_deadline && now >= s->max_deadline) {
                msb_log(s->ctx, 1, "--max-duration reached");
                sup_stop_begin(s, 10000);
        } else if (s->o->idle_timeout && s->idle_since &&
                   now >= s->idle_since + (int64_t)s->o->idle_timeout * 1000) {
                msb_log(s->ctx, 1, "--idle-timeout reached");
                sup_stop_begin(s, 10000);
        }
}

static void signals(struct sup *s)
{
        struct signalfd_siginfo si;
        while (read(s->sfd, &si, sizeof(si)) == sizeof(si))
                if (si.ssi_signo == SIGTERM)
                        sup_stop_begin(s, 10000);
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
                sup_set_error(s, xasprintf("the %s exited unexpectedly; the VM was stopped", vm->sb.fsd[i].what));
                s->crashed = true;
        }
        s->done = true;
}

void sup_loop(struct sup *s)
{
        struct vm *vm = s->vm;
        while (!s->done) {
                /* what has said its last goes now (a kept process's reader
                 * that fell behind has nothing more to say) */
                for (struct conn *c = s->conns, *nx; c; c = nx) {
                        nx = c->next;
                        if (c->closing && !msb_buf_pending(&c->out))
                                sup_conn_close(s, c);
                }
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
                sup_idle_update(s, now);
                int k = poll(p, (nfds_t)n, next_timeout(s, now));
                if (k < 0 && errno != EINTR)
                        break;
                timers(s, mono_ms());
                if (k <= 0)
                        continue;
                if (p[0].revents & POLLOUT)
                        sup_flush_fd(vm->sb.ctl, &vm->out);
                if (p[0].revents & (POLLIN | POLLHUP))
                        sup_guest_read(s);
                if (p[1].revents & POLLIN) {
                        if (!s->stop_phase && !s->done) {
                                s->crashed = true;
                                sup_set_error(s, xstrdup("the VM stopped unexpectedly"));
                        }
                        s->done = true;
                }
                if (p[2].revents & POLLIN)
                        signals(s);
                if (p[3].revents & POLLIN)
                        sup_client_accept(s);
                for (int i = nfixed; i < cbase && !s->done; i++)
                        if (p[i].revents & POLLIN)
                                server_exited(s, (size_t)(i - nfixed));
                for (int i = 0; i < nc; i++) {
                        struct conn *c = cs[i];
                        short re = p[cbase + i].revents;
                        if (re & POLLOUT)
                                sup_flush_fd(c->fd, &c->out);
                        if (c->closing && !msb_buf_pending(&c->out))
                                sup_conn_close(s, c);
                        else if (re & (POLLIN | POLLHUP | POLLERR))
                                sup_client_read(s, c);
                }
        }
}
