/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Background processes by id (docs/api.md, "Processes"): started kept
 * (msb_exec_opts.keep) so they outlive the request, listed, read as NDJSON
 * (the supervisor's backlog, then live output, then the exit), written to,
 * signalled and resized from any later request.  The supervisor holds all
 * of it; a request here only asks.  The output stream reads the library's
 * events itself (msb_proc_read) from the connection's thread:
 *
 *     {"type":"started","pid":N}
 *     {"type":"dropped","bytes":N}        older output the backlog no longer holds
 *     {"type":"stdout"|"stderr","data":"..."}
 *     {"type":"exit","exit_code":N}
 *     {"type":"error","error":{...}}      the last line when msb failed (or the
 *                                          client fell 1 MiB behind and was let go)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/text.h"
#include "common/util.h"

#define STDIN_CHUNK (256u << 10) /* an upload goes on in pieces of the guest's window */

static json_t *proc_json(const struct msb_proc_info *p)
{
        json_t *argv = json_array();
        for (char **a = p->argv; a && *a; a++)
                json_array_append_new(argv, text_utf8_json(*a, strlen(*a)));
        json_t *j = json_pack("{s:I, s:i, s:o, s:o, s:b, s:b, s:b, s:b, s:b, s:o, s:I}", "id", (json_int_t)p->id,
                              "pid", p->pid, "command", text_utf8_json(p->command, strlen(p->command)), "argv", argv,
                              "tty", p->tty, "kept", p->kept, "main", p->main, "running", p->running, "stdin",
                              p->stdin, "exit_code", p->running ? json_null() : json_integer(p->exit_code), "started",
                              (json_int_t)(p->started_ms / 1000));
        if (!j)
                abort();
        return j;
}

/* The {id} segment: 1 to 2^32-1; 0 after a 400. */
static uint32_t id_param(struct api_req *r)
{
        const char *s = r->params[1];
        char *end;
        errno = 0;
        unsigned long long x = strtoull(s, &end, 10);
        if (!*s || *s == '-' || *s == '+' || *end || errno || x < 1 || x > UINT32_MAX) {
                api_reply_error(r, 400, "bad_request", "id", "process id '%s': expected a number from 1 to %u", s,
                                UINT32_MAX);
                return 0;
        }
        return (uint32_t)x;
}

/* ---- start one ---- */

struct start_raw {
        json_t *command, *env;
        const char *workdir, *user;
        struct api_opt_bool tty, stdin_open;
        uint64_t rows, cols;
};

#define F(n, fn, lo, hi) {#n, api_read_##fn, offsetof(struct start_raw, n), lo, hi}
static const struct api_field start_fields[] = {
        F(command, strv, 0, 4096), F(env, strmap, 0, 4096), F(workdir, string, 1, 4096),
        F(user, string, 1, 256),   F(tty, bool, 0, 0),      {"stdin", api_read_bool, offsetof(struct start_raw, stdin_open), 0, 0},
        F(rows, uint, 1, 65535),   F(cols, uint, 1, 65535),
};
#undef F

/* The request into eo (argv and env owned by the caller); -1 after a 400. */
static int start_decode(struct api_req *r, struct msb_exec_opts *eo, char ***argv, char ***env)
{
        struct start_raw raw = {0};
        struct api_decode_err de = {0};
        if (api_decode_object(&de, "", r->body, start_fields, ARRAY_SIZE(start_fields), &raw) < 0) {
                api_reply_decode_err(r, &de);
                return -1;
        }
        if (!raw.command || json_array_size(raw.command) == 0) {
                api_reply_error(r, 400, "bad_request", "command", "command: required, a non-empty array of strings");
                return -1;
        }
        if (raw.workdir && raw.workdir[0] != '/') {
                api_reply_error(r, 400, "bad_request", "workdir", "workdir: expected an absolute guest path");
                return -1;
        }
        const char *k;
        json_t *v;
        json_object_foreach(raw.env, k, v)
        {
                if (!*k || strchr(k, '=')) {
                        api_reply_error(r, 400, "bad_request", "env", "env: '%s' is not a variable name", k);
                        return -1;
                }
                strv_push_take(env, xasprintf("%s=%s", k, json_string_value(v)));
        }
        size_t n = json_array_size(raw.command);
        *argv = xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
                (*argv)[i] = (char *)json_string_value(json_array_get(raw.command, i));
        /* a terminal is its own input; else stdin stays /dev/null unless asked for */
        *eo = (struct msb_exec_opts){.argv = *argv, .env = *env, .workdir = raw.workdir, .user = raw.user,
                                     .tty = raw.tty.value, .stdin = raw.stdin_open.set ? raw.stdin_open.value
                                                                                       : raw.tty.value,
                                     .rows = raw.rows ? (unsigned)raw.rows : 24, .cols = raw.cols ? (unsigned)raw.cols : 80,
                                     .keep = true};
        return 0;
}

void api_proc_start(struct api_req *r)
{
        struct msb_exec_opts eo;
        _cleanup_free_ char **argv = NULL;
        _cleanup_strv_ char **env = NULL;
        if (start_decode(r, &eo, &argv, &env) < 0)
                return;
        struct msb_error err = {0};
        struct msb_proc *p;
        int status;
        int q = msb_sandbox_exec(r->ctx, r->params[0], &eo, &p, &status, &err);
        if (q == 1) {
                /* not started, so never listed: the reason is the answer */
                api_reply_error(r, 422, "unprocessable", "command", "%s (exit status %d)", err.message, status);
                return;
        }
        if (q < 0) {
                api_reply_msb_error(r, q, &err);
                return;
        }
        json_t *j = json_pack("{s:I, s:i}", "id", (json_int_t)msb_proc_id(p), "pid", msb_proc_pid(p));
        msb_proc_free(p); /* kept: it runs on */
        api_reply_json(r, 201, j);
}

/* ---- the listing, one ---- */

void api_proc_list(struct api_req *r)
{
        uint64_t pid = 0;
        if (api_query_uint(r, "pid", 1u << 22, &pid) < 0)
                return;
        struct msb_proc_info *v;
        size_t n;
        struct msb_error err = {0};
        int q = msb_sandbox_procs(r->ctx, r->params[0], &v, &n, &err);
        if (q < 0) {
                api_reply_msb_error(r, q, &err);
                return;
        }
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
                if (!pid || v[i].pid == (int)pid)
                        json_array_append_new(a, proc_json(&v[i]));
        msb_proc_info_free(v, n);
        api_reply_json(r, 200, json_pack("{s:o}", "processes", a));
}

void api_proc_get(struct api_req *r)
{
        uint32_t id = id_param(r);
        if (!id)
                return;
        struct msb_proc_info *v;
        size_t n;
        struct msb_error err = {0};
        int q = msb_sandbox_procs(r->ctx, r->params[0], &v, &n, &err);
        if (q < 0) {
                api_reply_msb_error(r, q, &err);
                return;
        }
        json_t *j = NULL;
        for (size_t i = 0; i < n && !j; i++)
                if (v[i].id == id)
                        j = proc_json(&v[i]);
        msb_proc_info_free(v, n);
        if (j)
                api_reply_json(r, 200, j);
        else
                api_reply_error(r, 404, "not_found", "id", "sandbox '%s': no process %u (GET .../processes lists them)",
                                r->params[0], id);
}

/* ---- signal, resize ---- */

void api_proc_signal(struct api_req *r)
{
        uint32_t id = id_param(r);
        if (!id)
                return;
        static const struct api_field fields[] = {{"signal", api_read_signal, 0, 0, 0}};
        struct api_decode_err de = {0};
        int sig = SIGKILL;
        if (api_decode_object(&de, "", r->body, fields, 1, &sig) < 0) {
                api_reply_decode_err(r, &de);
                return;
        }
        struct msb_error err = {0};
        int q = msb_sandbox_proc_signal(r->ctx, r->params[0], id, sig, &err);
        if (q < 0)
                api_reply_msb_error(r, q, &err);
        else
                api_reply_empty(r, 204);
}

struct size {
        uint64_t rows, cols;
};

void api_proc_resize(struct api_req *r)
{
        uint32_t id = id_param(r);
        if (!id)
                return;
        struct size sz = {0};
        static const struct api_field fields[] = {{"rows", api_read_uint, offsetof(struct size, rows), 1, 65535},
                                                  {"cols", api_read_uint, offsetof(struct size, cols), 1, 65535}};
        struct api_decode_err de = {0};
        if (api_decode_object(&de, "", r->body, fields, 2, &sz) < 0) {
                api_reply_decode_err(r, &de);
                return;
        }
        if (!sz.rows || !sz.cols) {
                api_reply_error(r, 400, "bad_request", sz.rows ? "cols" : "rows", "%s: required, 1 to 65535",
                                sz.rows ? "cols" : "rows");
                return;
        }
        struct msb_error err = {0};
        int q = msb_sandbox_proc_resize(r->ctx, r->params[0], id, (unsigned)sz.rows, (unsigned)sz.cols, &err);
        if (q < 0)
                api_reply_msb_error(r, q, &err);
        else
                api_reply_empty(r, 204);
}

/* ---- stdin: the body as it comes, its one writer meanwhile ---- */

void api_proc_stdin(struct api_req *r)
{
        bool eof = false;
        uint32_t id = id_param(r);
        if (!id || api_query_bool(r, "eof", &eof) < 0)
                return;
        struct msb_error err = {0};
        struct msb_proc *p;
        int q = msb_sandbox_proc_attach(r->ctx, r->params[0], id, MSB_ATTACH_STDIN | MSB_ATTACH_NO_OUTPUT, &p, &err);
        if (q < 0) {
                api_reply_msb_error(r, q, &err);
                return;
        }
        _cleanup_free_ char *buf = xmalloc(STDIN_CHUNK);
        uint64_t total = 0;
        ssize_t n;
        /* what came so far goes on at once: a client may type into it */
        while (q >= 0 && ((n = read(r->upload_fd, buf, STDIN_CHUNK)) > 0 || (n < 0 && errno == EINTR))) {
                if (n < 0)
                        continue;
                q = msb_proc_write(p, buf, (size_t)n, false, &err);
                total += (uint64_t)n;
        }
        if (q >= 0 && eof)
                q = msb_proc_write(p, NULL, 0, true, &err);
        msb_proc_free(p);
        if (q < 0)
                api_reply_msb_error(r, q, &err);
        else
                api_reply_json(r, 200, json_pack("{s:I, s:b}", "written", (json_int_t)total, "closed", eof));
}

/* ---- output as NDJSON ---- */

struct out_stream {
        char *name;
        struct msb_proc *p;
        int client_fd;
        bool base64, ended, slot;
        struct text line; /* what produce() has not handed out yet */
        size_t line_off;
        char carry[2][4]; /* a UTF-8 character cut by a chunk's end, per stream */
        size_t ncarry[2];
};

static void line_json(struct out_stream *o, json_t *j)
{
        char *s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!s)
                abort();
        text_put(&o->line, s, strlen(s));
        text_put(&o->line, "\n", 1);
        free(s);
}

static void chunk_line(struct out_stream *o, int i, const char *buf, size_t n)
{
        line_json(o, json_pack("{s:s, s:o}", "type", i ? "stderr" : "stdout", "data",
                               o->base64 ? text_base64_json(buf, n) : text_utf8_json(buf, n)));
}

/* Output bytes of stream i: whole UTF-8 characters now, a cut one kept. */
static void output_line(struct out_stream *o, int i, const char *data, size_t len)
{
        if (o->base64) {
                chunk_line(o, i, data, len);
                return;
        }
        _cleanup_free_ char *buf = xmalloc(len + 4);
        size_t c = o->ncarry[i];
        memcpy(buf, o->carry[i], c);
        memcpy(buf + c, data, len);
        size_t all = c + len, whole = text_utf8_whole(buf, all);
        o->ncarry[i] = all - whole;
        memcpy(o->carry[i], buf + whole, o->ncarry[i]);
        if (whole)
                chunk_line(o, i, buf, whole);
}

static void event_line(struct out_stream *o, const struct msb_proc_event *ev)
{
        switch (ev->type) {
        case MSB_PROC_EV_STARTED:
                line_json(o, json_pack("{s:s, s:i}", "type", "started", "pid", ev->pid));
                break;
        case MSB_PROC_EV_DROPPED:
                line_json(o, json_pack("{s:s, s:I}", "type", "dropped", "bytes", (json_int_t)ev->dropped));
                break;
        case MSB_PROC_EV_STDOUT:
        case MSB_PROC_EV_STDERR:
                output_line(o, ev->type == MSB_PROC_EV_STDERR, ev->data, ev->len);
                break;
        case MSB_PROC_EV_EXIT:
                for (int i = 0; i < 2; i++)
                        if (o->ncarry[i]) /* a cut character at the very end: as it is */
                                chunk_line(o, i, o->carry[i], o->ncarry[i]);
                line_json(o, json_pack("{s:s, s:i}", "type", "exit", "exit_code", ev->status));
                o->ended = true;
                break;
        }
}

/* Wait up to a second for the next event; what came becomes a line. */
static void out_pump(struct out_stream *o)
{
        struct msb_proc_event ev;
        struct msb_error err = {0};
        int q = msb_proc_read(o->p, 1000, &ev, &err);
        if (q == 1) {
                event_line(o, &ev);
                return;
        }
        if (q < 0) {
                unsigned status;
                const char *code;
                api_errno_status(err.code ? err.code : -q, &status, &code);
                line_json(o, json_pack("{s:s, s:o}", "type", "error", "error", api_error_inner(code, err.message, NULL)));
                o->ended = true;
                return;
        }
        /* quiet: is the client still there? */
        struct pollfd c = {.fd = o->client_fd, .events = POLLRDHUP};
        if (o->client_fd >= 0 && poll(&c, 1, 0) > 0 && (c.revents & (POLLRDHUP | POLLHUP | POLLERR)))
                o->ended = true;
}

static ssize_t out_produce(void *state, char *buf, size_t max)
{
        struct out_stream *o = state;
        if (o->line_off == o->line.len) {
                o->line.len = o->line_off = 0;
                if (o->ended)
                        return -1;
                out_pump(o);
        }
        size_t n = o->line.len - o->line_off < max ? o->line.len - o->line_off : max;
        memcpy(buf, o->line.data + o->line_off, n);
        o->line_off += n;
        return (ssize_t)n;
}

static void out_free(struct out_stream *o)
{
        msb_proc_free(o->p);
        if (o->slot)
                api_stream_slot_give(o->name);
        free(o->name);
        text_free(&o->line);
        free(o);
}

static void out_done(void *state)
{
        out_free(state);
}

static const struct api_stream_ops out_ops = {out_produce, out_done};

void api_proc_output(struct api_req *r)
{
        bool backlog = true;
        uint32_t id = id_param(r);
        if (!id || api_query_bool(r, "backlog", &backlog) < 0)
                return;
        const char *enc = api_query(r, "encoding");
        if (enc && strcmp(enc, "utf-8") && strcmp(enc, "base64")) {
                api_reply_error(r, 400, "bad_request", "encoding", "encoding: expected utf-8 or base64");
                return;
        }
        if (!api_stream_slot_take(r, r->params[0]))
                return;
        struct out_stream *o = xcalloc(1, sizeof(*o));
        o->slot = true;
        o->name = xstrdup(r->params[0]);
        o->client_fd = r->client_fd;
        o->base64 = enc && !strcmp(enc, "base64");
        struct msb_error err = {0};
        int q = msb_sandbox_proc_attach(r->ctx, o->name, id, backlog ? 0 : MSB_ATTACH_NO_BACKLOG, &o->p, &err);
        if (q < 0) {
                api_reply_msb_error(r, q, &err);
                out_free(o);
                return;
        }
        api_reply_stream(r, "application/x-ndjson", &out_ops, o);
}
