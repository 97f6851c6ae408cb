/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kept processes (MSB_EXEC_KEEP), which belong to no connection: their
 * output acknowledged here, kept in a bounded backlog and copied to every
 * reader (a reader that falls SUP_READER_MAX behind is dropped); their
 * stdin from one writer at a time through a queue that keeps the guest's
 * window; their record kept once they ended (the SUP_MAX_ENDED newest).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor.h"

void kept_begin(struct sup *s, struct gproc *p, struct conn *c)
{
        p->kept = xcalloc(1, sizeof(*p->kept));
        s->nkept++;
        c->kind = C_PROC;
        c->p = p;
        c->reads = true;
        if (p->stdin) {
                c->stdin = true;
                p->kept->writer = c;
        }
}

void kept_conn_gone(struct sup *s, struct gproc *p, struct conn *c)
{
        (void)s;
        struct kept *k = p->kept;
        if (k->writer == c) {
                /* what it sent stays on its way; the guest's ACKs for it
                 * are nobody's now */
                k->prev += p->stdin_unacked;
                p->stdin_unacked = 0;
                k->writer = NULL;
        }
        c->p = NULL;
}

/* Frame f (n bytes) to every connection attached to p: output only to its
 * readers, and a reader that has SUP_READER_MAX unsent is dropped instead
 * (without a word: it does not read). */
static void send_all(struct sup *s, struct gproc *p, const uint8_t *f, size_t n, bool output)
{
        for (struct conn *c = s->conns; c; c = c->next) {
                if (c->p != p || c->closing || (output && !c->reads))
                        continue;
                if (output && msb_buf_pending(&c->out) + n > SUP_READER_MAX) {
                        msb_log(s->ctx, 1, "a reader of process %u fell %u KiB behind: dropped", p->id,
                                SUP_READER_MAX >> 10);
                        kept_conn_gone(s, p, c);
                        msb_buf_free(&c->out);
                        c->closing = true;
                        continue;
                }
                msb_buf_append(&c->out, f, n);
        }
}

void kept_send(struct sup *s, struct gproc *p, const struct msb_buf *frame)
{
        send_all(s, p, msb_buf_head(frame), msb_buf_pending(frame), false);
}

/* The oldest frames go until the backlog fits again (it holds only frames
 * encoded here: their headers are ours). */
static void backlog_trim(struct kept *k)
{
        while (msb_buf_pending(&k->backlog) > SUP_BACKLOG_MAX) {
                const uint8_t *h = msb_buf_head(&k->backlog);
                uint32_t plen = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
                k->dropped += plen - 4;
                msb_buf_consume(&k->backlog, MSB_PROTO_HDR_SIZE + plen);
        }
}

int kept_output(struct sup *s, struct gproc *p, const struct msb_msg *m)
{
        struct kept *k = p->kept;
        size_t len = m->u.data.len;
        if (len > MSB_PROTO_WINDOW - p->owed)
                return -EPROTO; /* the guest ignored its window */
        /* nobody is waited for: acknowledged once half a window is owed
         * (every ACK wakes the guest) */
        p->owed += (uint32_t)len;
        if (p->owed >= MSB_PROTO_WINDOW / 2) {
                msb_enc_u32(&s->vm->out, MSB_MSG_ACK, p->id, p->owed);
                p->owed = 0;
        }
        size_t start = msb_buf_pending(&k->backlog);
        msb_enc_data(&k->backlog, m->type, 1, m->u.data.data, len);
        send_all(s, p, msb_buf_head(&k->backlog) + start, msb_buf_pending(&k->backlog) - start, true);
        backlog_trim(k);
        return 0;
}

/* Queued stdin to the guest, as far as the process's window lets it. */
static void stdin_pump(struct sup *s, struct gproc *p)
{
        struct kept *k = p->kept;
        while (msb_buf_pending(&k->inq) && k->inflight < MSB_PROTO_WINDOW) {
                size_t n = msb_buf_pending(&k->inq);
                if (n > MSB_PROTO_WINDOW - k->inflight)
                        n = MSB_PROTO_WINDOW - k->inflight;
                if (n > MSB_PROTO_DATA_CHUNK)
                        n = MSB_PROTO_DATA_CHUNK;
                msb_enc_data(&s->vm->out, MSB_MSG_STDIN, p->id, msb_buf_head(&k->inq), n);
                msb_buf_consume(&k->inq, n);
                k->inflight += (uint32_t)n;
        }
        if (k->eof_pending && !msb_buf_pending(&k->inq)) {
                msb_enc_id(&s->vm->out, MSB_MSG_STDIN_EOF, p->id);
                k->eof_pending = false;
        }
}

/* The guest took n bytes: the oldest are those of writers gone, the rest
 * the current writer's, which hears of them. */
int kept_stdin_ack(struct sup *s, struct gproc *p, uint32_t n)
{
        struct kept *k = p->kept;
        if (n > k->inflight)
                return -EPROTO;
        k->inflight -= n;
        uint32_t old = n < k->prev ? n : k->prev;
        k->prev -= old;
        uint32_t mine = n - old;
        if (mine > p->stdin_unacked)
                return -EPROTO; /* cannot be: inflight <= prev + stdin_unacked */
        p->stdin_unacked -= mine;
        if (k->writer && mine)
                msb_enc_u32(&k->writer->out, MSB_MSG_ACK, 1, mine);
        stdin_pump(s, p);
        return 0;
}

int kept_client_msg(struct sup *s, struct conn *c, struct msb_msg *m)
{
        struct gproc *p = c->p;
        struct kept *k = p->kept;
        bool writer = c == k->writer && !p->stdin_eof;
        switch (m->type) {
        case MSB_MSG_STDIN:
                if (!writer) {
                        /* dropped, but acknowledged: the client's window stays right */
                        if (m->u.data.len)
                                msb_enc_u32(&c->out, MSB_MSG_ACK, 1, (uint32_t)m->u.data.len);
                        return 0;
                }
                if (p->stdin_unacked + m->u.data.len > MSB_PROTO_WINDOW)
                        return -EPROTO;
                p->stdin_unacked += (uint32_t)m->u.data.len;
                msb_buf_append(&k->inq, m->u.data.data, m->u.data.len);
                stdin_pump(s, p);
                return 0;
        case MSB_MSG_STDIN_EOF:
                if (writer) {
                        p->stdin_eof = true;
                        k->eof_pending = true;
                        stdin_pump(s, p);
                }
                return 0;
        case MSB_MSG_SIGNAL:
                return msb_enc_u32(&s->vm->out, MSB_MSG_SIGNAL, p->id, m->u.signo);
        case MSB_MSG_RESIZE:
                return msb_enc_resize(&s->vm->out, p->id, m->u.resize.rows, m->u.resize.cols);
        case MSB_MSG_ACK:
                return 0; /* readers acknowledge out of habit: nothing waits for them */
        default:
                return -EPROTO;
        }
}

void kept_release(struct sup *s, struct gproc *p)
{
        for (struct conn *c = s->conns; c; c = c->next)
                if (c->p == p) {
                        kept_conn_gone(s, p, c);
                        c->closing = true;
                }
}

void kept_free(struct kept *k)
{
        if (!k)
                return;
        msb_buf_free(&k->backlog);
        msb_buf_free(&k->inq);
        free(k);
}

static void ended_free(struct gproc *p)
{
        kept_free(p->kept);
        strv_free(p->argv);
        free(p);
}

/* It ended: its readers hear how, and its record moves to s->ended (the
 * oldest there goes past SUP_MAX_ENDED). */
void kept_exited(struct sup *s, struct gproc *p, uint32_t kind, uint32_t value)
{
        struct kept *k = p->kept;
        p->exited = true;
        k->exit_kind = kind;
        k->exit_value = value;
        _cleanup_buf_ struct msb_buf f = {0};
        msb_enc_exit(&f, 1, kind, value);
        kept_send(s, p, &f);
        kept_release(s, p);
        /* stdin still on its way is dropped by agentd, which ACKs it: the
         * id is no longer known then, and that is no error */
        msb_buf_free(&k->inq);
        k->inflight = k->prev = 0;
        p->stdin_unacked = 0;
        for (struct gproc **pp = &s->procs; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        break;
                }
        s->nprocs--;
        s->nkept--;
        p->next = s->ended;
        s->ended = p;
        if (++s->nended > SUP_MAX_ENDED) {
                struct gproc **pp = &s->ended;
                while ((*pp)->next)
                        pp = &(*pp)->next;
                ended_free(*pp);
                *pp = NULL;
                s->nended--;
        }
}

void kept_ended_free(struct sup *s)
{
        while (s->ended) {
                struct gproc *p = s->ended;
                s->ended = p->next;
                ended_free(p);
        }
        s->nended = 0;
}
