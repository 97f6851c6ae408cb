/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor's requests about processes by their id in the sandbox:
 * ATTACH to a kept one, a bare SIGNAL or RESIZE to any, PROCS (the
 * listing), and the PROC_INFO record each of them answers with.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor.h"

void sup_conn_error(struct sup *s, struct conn *c, const char *step, int e, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *text = NULL;
        if (vasprintf(&text, fmt, ap) < 0)
                abort();
        va_end(ap);
        _cleanup_free_ char *m = xasprintf("sandbox '%s': %s", s->name, text);
        msb_enc_error(&c->out, 1, step, e, m);
        c->closing = true;
}

/* How many bytes of s fit in n without cutting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t n)
{
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
                n--;
        return n;
}

void procs_keep_argv(struct gproc *p, char *const *argv, uint32_t argc)
{
        size_t left = SUP_ARGV_MAX;
        for (uint32_t i = 0; i < argc && i < SUP_ARGC_MAX && argv[i] && left; i++) {
                size_t n = strlen(argv[i]);
                if (n > left) /* cut here, and nothing after it */
                        n = left = utf8_cut(argv[i], left);
                char *a = xmalloc(n + 1);
                memcpy(a, argv[i], n);
                a[n] = '\0';
                strv_push_take(&p->argv, a);
                left -= n;
        }
}

void procs_info(struct sup *s, const struct gproc *p, struct msb_buf *out)
{
        (void)s;
        struct msb_proc_info_msg pi = {
                .pid = p->pid,
                .flags = (p->tty ? MSB_PROC_TTY : 0) | (p->kept ? MSB_PROC_KEPT : 0) | (p->main ? MSB_PROC_MAIN : 0) |
                         (p->stdin && !p->stdin_eof && !p->exited ? MSB_PROC_STDIN : 0),
                .started_ms = (uint64_t)p->started_ms,
                .argc = (uint32_t)strv_len(p->argv),
                .argv = p->argv,
        };
        if (p->kept) {
                pi.dropped = p->kept->dropped;
                if (p->exited) {
                        pi.flags |= MSB_PROC_EXITED;
                        pi.exit_kind = p->kept->exit_kind;
                        pi.exit_value = p->kept->exit_value;
                }
        }
        (void)msb_enc_proc_info(out, p->id, &pi);
}

static struct gproc *ended_find(struct sup *s, uint32_t id)
{
        for (struct gproc *p = s->ended; p; p = p->next)
                if (p->id == id)
                        return p;
        return NULL;
}

/* Process id, running: NULL with c told why not (step names the request). */
static struct gproc *running(struct sup *s, struct conn *c, uint32_t id, const char *step)
{
        struct gproc *p = sup_proc_find(s, id);
        if (p && !p->routine)
                return p;
        if (ended_find(s, id))
                sup_conn_error(s, c, step, ESRCH, "process %u has exited", id);
        else
                sup_conn_error(s, c, step, ENOENT, "no process %u", id);
        return NULL;
}

/* A stdin writer for p, if it may be one: else c is told why not. */
static bool writer_ok(struct sup *s, struct conn *c, const struct gproc *p)
{
        const char *why = p->exited      ? "has exited"
                          : !p->stdin    ? "was started without stdin"
                          : p->stdin_eof ? "has its stdin closed"
                                         : NULL;
        if (why) {
                sup_conn_error(s, c, "attach", EPIPE, "process %u %s", p->id, why);
                return false;
        }
        if (p->kept->writer) {
                sup_conn_error(s, c, "attach", EBUSY, "process %u has a stdin writer already (one at a time)", p->id);
                return false;
        }
        if (msb_buf_pending(&p->kept->inq) > MSB_PROTO_WINDOW) {
                sup_conn_error(s, c, "attach", EBUSY,
                               "process %u has not read the stdin it was sent yet; try again when it has", p->id);
                return false;
        }
        return true;
}

void procs_attach(struct sup *s, struct conn *c, uint32_t id, uint32_t flags)
{
        struct gproc *p = sup_proc_find(s, id);
        if (!p)
                p = ended_find(s, id);
        if (!p || p->routine)
                return sup_conn_error(s, c, "attach", ENOENT, "no process %u", id);
        if (!p->kept)
                return sup_conn_error(s, c, "attach", EBUSY,
                                      "process %u is not kept: only the client that started it reads it", id);
        bool in = flags & MSB_ATTACH_STDIN, reads = !(flags & MSB_ATTACH_NO_OUTPUT);
        if (in && !writer_ok(s, c, p))
                return;
        c->kind = C_PROC;
        if (flags & MSB_ATTACH_INFO)
                procs_info(s, p, &c->out);
        if (reads && !(flags & MSB_ATTACH_NO_BACKLOG) && msb_buf_pending(&p->kept->backlog))
                msb_buf_append(&c->out, msb_buf_head(&p->kept->backlog), msb_buf_pending(&p->kept->backlog));
        if (p->exited) {
                /* its record stays, but c does not point at it: the oldest
                 * records go */
                msb_enc_exit(&c->out, 1, p->kept->exit_kind, p->kept->exit_value);
                c->closing = true;
                return;
        }
        c->p = p;
        c->reads = reads;
        c->stdin = in;
        if (in)
                p->kept->writer = c;
}

void procs_signal(struct sup *s, struct conn *c, uint32_t id, uint32_t signo)
{
        struct gproc *p = running(s, c, id, "kill");
        if (!p)
                return;
        msb_enc_u32(&s->vm->out, MSB_MSG_SIGNAL, p->id, signo);
        msb_enc_exit(&c->out, 1, MSB_EXIT_CODE, 0);
        c->closing = true;
}

void procs_resize(struct sup *s, struct conn *c, uint32_t id, uint32_t rows, uint32_t cols)
{
        struct gproc *p = running(s, c, id, "resize");
        if (!p)
                return;
        if (!p->tty)
                return sup_conn_error(s, c, "resize", ENOTTY, "process %u has no terminal", id);
        msb_enc_resize(&s->vm->out, p->id, rows, cols);
        msb_enc_exit(&c->out, 1, MSB_EXIT_CODE, 0);
        c->closing = true;
}

static int by_id(const void *a, const void *b)
{
        uint32_t x = (*(struct gproc *const *)a)->id, y = (*(struct gproc *const *)b)->id;
        return x < y ? -1 : x > y;
}

/* Every process but msb cp's routines, running or kept after its end, by
 * id; then EXIT 0. */
void procs_list(struct sup *s, struct conn *c)
{
        size_t n = 0;
        _cleanup_free_ struct gproc **v = xcalloc((size_t)s->nprocs + s->nended + 1, sizeof(*v));
        for (struct gproc *p = s->procs; p; p = p->next)
                if (!p->routine)
                        v[n++] = p;
        for (struct gproc *p = s->ended; p; p = p->next)
                v[n++] = p;
        qsort(v, n, sizeof(*v), by_id);
        for (size_t i = 0; i < n; i++)
                procs_info(s, v[i], &c->out);
        msb_enc_exit(&c->out, 1, MSB_EXIT_CODE, 0);
        c->closing = true;
}
