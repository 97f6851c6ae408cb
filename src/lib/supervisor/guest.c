/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor's side of the guest channel: agentd's messages (HELLO,
 * STARTED, output, ACKs, EXIT, ERROR) mapped onto the processes and
 * their clients, and the starter told once the guest is ready.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor.h"

void sup_ready(struct sup *s, const char *msg)
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
        struct gproc *p = sup_proc_find(s, m->id);
        if (!p)
                return -EPROTO;
        if (p->main)
                sup_log_write(s, m->type == MSB_MSG_STDERR, m->u.data.data, m->u.data.len);
        if (!m->u.data.len)
                return 0;
        if (p->kept)
                return kept_output(s, p, m);
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
                                                      : (e > 0 && e < 4096 ? errno_text(e) : ""));
        if (m->id == 0) {
                sup_set_error(s, xasprintf("guest setup failed at step '%s': %s", step, text));
                s->crashed = true;
                s->done = true;
                return 0;
        }
        struct gproc *p = sup_proc_find(s, m->id);
        if (!p)
                return -EPROTO;
        if (p->conn)
                msb_enc_error(&p->conn->out, 1, step, e, text);
        if (p->kept) {
                _cleanup_buf_ struct msb_buf f = {0};
                msb_enc_error(&f, 1, step, e, text);
                kept_send(s, p, &f);
        }
        if (p->main) {
                sup_set_error(s, xstrdup(text));
                s->status = !strcmp(step, "exec") ? exec_status(e) : MSB_EXIT_NOT_EXECUTABLE;
                s->main_error = true;
                s->done = true;
        }
        sup_proc_free(s, p);
        return 0;
}

int sup_guest_msg(struct sup *s, struct msb_msg *m)
{
        struct gproc *p;
        switch (m->type) {
        case MSB_MSG_HELLO:
                if (s->have_hello)
                        return -EPROTO;
                if (m->u.hello.version != MSB_PROTO_VERSION) {
                        sup_set_error(s, xasprintf("guest agent speaks protocol version %u, msb speaks %u: rebuild the "
                                               "guest kit (./setup.sh)",
                                               m->u.hello.version, MSB_PROTO_VERSION));
                        s->crashed = s->done = true;
                        return 0;
                }
                s->have_hello = true;
                if (!s->main || s->main_pending)
                        sup_ready(s, "ok");
                if (s->main && !s->main_pending)
                        s->started_deadline = mono_ms() + STARTED_WAIT_MS;
                if (s->main_pending)
                        s->attach_deadline = mono_ms() + ATTACH_WAIT_MS;
                return 0;
        case MSB_MSG_STARTED:
                if (!(p = sup_proc_find(s, m->id)))
                        return -EPROTO;
                p->pid = m->u.pid;
                if (p->main) {
                        sup_ready(s, "ok");
                        s->started_deadline = 0;
                }
                if (p->conn)
                        msb_enc_u32(&p->conn->out, MSB_MSG_STARTED, 1, m->u.pid);
                if (p->kept) {
                        _cleanup_buf_ struct msb_buf f = {0};
                        msb_enc_u32(&f, MSB_MSG_STARTED, 1, m->u.pid);
                        kept_send(s, p, &f);
                }
                return 0;
        case MSB_MSG_STDOUT:
        case MSB_MSG_STDERR:
                return guest_output(s, m);
        case MSB_MSG_ACK: {
                /* stdin still in flight when a process ended is dropped and
                 * acknowledged by agentd after its EXIT: ids are never
                 * reused, so an ACK for one that was is no error */
                if (!(p = sup_proc_find(s, m->id)))
                        return m->id < s->next_id ? 0 : -EPROTO;
                if (p->kept)
                        return kept_stdin_ack(s, p, m->u.ack);
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
                if (!(p = sup_proc_find(s, m->id)))
                        return -EPROTO;
                if (p->kept) {
                        kept_exited(s, p, m->u.exit.kind, m->u.exit.value);
                        return 0;
                }
                p->exited = true;
                if (p->conn)
                        msb_enc_exit(&p->conn->out, 1, m->u.exit.kind, m->u.exit.value);
                if (p->main)
                        main_ended(s, m->u.exit.kind == MSB_EXIT_SIGNAL ? 128 + (int)m->u.exit.value
                                                                          : (int)m->u.exit.value);
                sup_proc_free(s, p);
                return 0;
        case MSB_MSG_ERROR:
                return guest_error(s, m);
        default:
                return -EPROTO;
        }
}

void sup_guest_read(struct sup *s)
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
                int r = sup_guest_msg(s, &m);
                msb_msg_free(&m);
                if (r < 0) {
                        q = r;
                        break;
                }
        }
        if (!s->done && q < 0) {
                sup_set_error(s, xstrdup("the guest sent a malformed control message; the sandbox was stopped"));
                s->crashed = s->done = true;
        }
}
