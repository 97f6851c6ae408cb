/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Exec in a running sandbox: one call that returns {stdout, stderr,
 * exit_code} (each stream capped, and saying when it was cut), or the same
 * streamed as NDJSON lines as they happen (docs/api.md, "Streams"):
 *
 *     {"type":"started"}
 *     {"type":"stdout","data":"..."}      data: UTF-8 text, or base64 with "encoding":"base64"
 *     {"type":"stderr","data":"..."}
 *     {"type":"exit","exit_code":0,"timed_out":false}
 *     {"type":"error","error":{...}}      the stream's last line when msb failed
 *
 * The library's relay runs in a thread of the request's, writing the
 * process's streams into two pipes that this side reads; the relay's
 * cancel pipe kills the process when the request ends first (the client
 * went away, or its output overflowed what a slow client may queue).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "api/api.h"
#include "api/text.h"
#include "common/error.h"
#include "common/util.h"

#define TIMEOUT_MS_MAX (24ull * 3600 * 1000)

struct exec_raw {
        json_t *command, *env;
        const char *workdir, *user, *stdin_data, *encoding;
        uint64_t timeout_ms, max_output;
        struct api_opt_bool tty;
};

#define F(n, fn, lo, hi) {#n, api_read_##fn, offsetof(struct exec_raw, n), lo, hi}
static const struct api_field exec_fields[] = {
        F(command, strv, 0, 4096),   F(env, strmap, 0, 4096),      F(workdir, string, 1, 4096),
        F(user, string, 1, 256),     {"stdin", api_read_string, offsetof(struct exec_raw, stdin_data), 0, 64u << 20},
        F(encoding, string, 1, 16),  F(timeout_ms, uint, 0, TIMEOUT_MS_MAX), F(max_output, uint, 0, API_EXEC_OUTPUT_MAX),
        F(tty, bool, 0, 0),
};
#undef F

/* One exec: its process, the relay thread and the pipes between. */
struct exec_run {
        char *name;
        struct msb_proc *p;
        char **argv, **env;
        pthread_t thread;
        bool thread_started;
        int out_r, err_r, cancel_w, in_fd, client_fd;
        int out_w, err_w, cancel_r; /* the relay's ends */
        unsigned timeout_ms;
        bool base64;
        int status, relay_ret;
        struct msb_error relay_err;
        /* the buffered form's */
        struct text out, err;
        uint64_t cap;
        bool out_cut, err_cut;
        /* the streamed form's */
        struct text line; /* what produce() has not handed out yet */
        size_t line_off;
        char carry[2][4]; /* a UTF-8 character cut by a chunk's end, per stream */
        size_t ncarry[2];
        bool ended, started_sent, slot, gone;
};

static void *relay_main(void *arg)
{
        struct exec_run *x = arg;
        struct msb_relay_opts ro = {.in_fd = x->in_fd, .out_fd = x->out_w, .err_fd = x->err_w, .tty_fd = -1,
                                    .timeout_ms = x->timeout_ms, .cancel_fd = x->cancel_r};
        x->relay_ret = msb_proc_relay(x->p, &ro, &x->status, &x->relay_err);
        close(x->out_w);
        close(x->err_w);
        x->out_w = x->err_w = -1;
        return NULL;
}

static void exec_free(struct exec_run *x)
{
        if (x->thread_started) {
                if (x->cancel_w >= 0)
                        close(x->cancel_w); /* the process is killed if it still runs */
                x->cancel_w = -1;
                if (x->out_r >= 0)
                        close(x->out_r); /* a relay blocked on a full pipe returns */
                if (x->err_r >= 0)
                        close(x->err_r);
                x->out_r = x->err_r = -1;
                pthread_join(x->thread, NULL);
        }
        int fds[] = {x->out_r, x->err_r, x->cancel_w, x->in_fd, x->out_w, x->err_w, x->cancel_r};
        for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        msb_proc_free(x->p);
        if (x->slot)
                api_stream_slot_give(x->name);
        free(x->name);
        free(x->argv);
        strv_free(x->env);
        text_free(&x->out);
        text_free(&x->err);
        text_free(&x->line);
        free(x);
}

/* A request's fields into an exec of sandbox name; NULL with f filled. */
static struct exec_run *exec_decode(json_t *body, const char *name, struct msb_exec_opts *eo, struct api_fail *f)
{
        struct exec_raw raw = {0};
        struct api_decode_err de = {0};
        if (api_decode_object(&de, "", body, exec_fields, sizeof(exec_fields) / sizeof(exec_fields[0]), &raw) < 0) {
                api_fail_decode(f, &de);
                return NULL;
        }
        if (!raw.command || json_array_size(raw.command) == 0) {
                api_fail_set(f, 400, "bad_request", "command", "command: required, a non-empty array of strings");
                return NULL;
        }
        if (raw.encoding && strcmp(raw.encoding, "utf-8") && strcmp(raw.encoding, "base64")) {
                api_fail_set(f, 400, "bad_request", "encoding", "encoding: expected \"utf-8\" or \"base64\"");
                return NULL;
        }
        if (raw.workdir && raw.workdir[0] != '/') {
                api_fail_set(f, 400, "bad_request", "workdir", "workdir: expected an absolute guest path");
                return NULL;
        }
        struct exec_run *x = xcalloc(1, sizeof(*x));
        x->out_r = x->err_r = x->cancel_w = x->in_fd = x->out_w = x->err_w = x->cancel_r = x->client_fd = -1;
        x->name = xstrdup(name);
        size_t n = json_array_size(raw.command);
        x->argv = xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
                x->argv[i] = (char *)json_string_value(json_array_get(raw.command, i));
        const char *k;
        json_t *v;
        json_object_foreach(raw.env, k, v)
        {
                if (!*k || strchr(k, '=')) {
                        api_fail_set(f, 400, "bad_request", "env", "env: '%s' is not a variable name", k);
                        exec_free(x);
                        return NULL;
                }
                strv_push_take(&x->env, xasprintf("%s=%s", k, json_string_value(v)));
        }
        x->timeout_ms = (unsigned)raw.timeout_ms;
        x->cap = raw.max_output ? raw.max_output : API_EXEC_OUTPUT_DEFAULT;
        x->base64 = raw.encoding && !strcmp(raw.encoding, "base64");
        if (raw.stdin_data) {
                /* what stdin holds, as a file the relay reads to its end */
                x->in_fd = memfd_create("msb-api-stdin", MFD_CLOEXEC);
                if (x->in_fd < 0 || write_all(x->in_fd, raw.stdin_data, strlen(raw.stdin_data)) < 0 ||
                    lseek(x->in_fd, 0, SEEK_SET) < 0) {
                        api_fail_set(f, 500, "internal", NULL, "%s", errno_msg(errno, "stdin").s);
                        exec_free(x);
                        return NULL;
                }
        }
        *eo = (struct msb_exec_opts){.argv = x->argv, .env = x->env, .workdir = raw.workdir, .user = raw.user,
                                     .stdin = x->in_fd >= 0, .tty = raw.tty.value, .rows = 24, .cols = 80};
        return x;
}

/* Start the process and its relay; -1 with f filled (a process that could
 * not be executed is not an error: its status is 126 or 127). */
static int exec_start(struct msb_ctx *ctx, struct exec_run *x, const struct msb_exec_opts *eo, bool *ret_not_run,
                      struct msb_error *nerr, struct api_fail *f)
{
        struct msb_error err = {0};
        int status = 0;
        *ret_not_run = false;
        int q = msb_sandbox_exec(ctx, x->name, eo, &x->p, &status, &err);
        if (q < 0) {
                api_fail_msb(f, q, &err);
                return -1;
        }
        if (q == 1) {
                x->status = status;
                *ret_not_run = true;
                *nerr = err;
                return 0;
        }
        int po[2] = {-1, -1}, pe[2] = {-1, -1}, pc[2] = {-1, -1};
        if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0 || pipe2(pc, O_CLOEXEC) < 0) {
                api_fail_set(f, 500, "internal", NULL, "%s", errno_msg(errno, "pipe").s);
                for (int i = 0; i < 2; i++) {
                        closep(&po[i]);
                        closep(&pe[i]);
                }
                return -1;
        }
        x->out_r = po[0], x->out_w = po[1], x->err_r = pe[0], x->err_w = pe[1], x->cancel_r = pc[0],
        x->cancel_w = pc[1];
        if (pthread_create(&x->thread, NULL, relay_main, x) != 0) {
                api_fail_set(f, 500, "internal", NULL, "cannot start the relay's thread");
                return -1;
        }
        x->thread_started = true;
        return 0;
}

/* ---- the one call ---- */

/* Both streams to their ends; a client that goes away meanwhile (its
 * connection hung up) has its command killed, as a stream's is. */
static void collect(struct exec_run *x)
{
        struct pollfd pf[3] = {{.fd = x->out_r, .events = POLLIN},
                               {.fd = x->err_r, .events = POLLIN},
                               {.fd = x->client_fd, .events = POLLRDHUP}};
        while (pf[0].fd >= 0 || pf[1].fd >= 0) {
                if (poll(pf, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (pf[2].revents) {
                        closep(&x->cancel_w);
                        x->cancel_w = pf[2].fd = -1;
                }
                for (int i = 0; i < 2; i++) {
                        if (!pf[i].revents)
                                continue;
                        char buf[65536];
                        ssize_t n = read(pf[i].fd, buf, sizeof(buf));
                        if (n <= 0) {
                                if (n < 0 && errno == EINTR)
                                        continue;
                                pf[i].fd = -1;
                                continue;
                        }
                        struct text *t = i ? &x->err : &x->out;
                        bool *cut = i ? &x->err_cut : &x->out_cut;
                        size_t room = t->len < x->cap ? (size_t)(x->cap - t->len) : 0;
                        text_put(t, buf, (size_t)n < room ? (size_t)n : room);
                        *cut |= (size_t)n > room; /* the rest is read and dropped: the process never stalls */
                }
        }
}

static json_t *output_json(const struct text *t, bool base64)
{
        return base64 ? text_base64_json(t->data, t->len) : text_utf8_json(t->data, t->len);
}

json_t *api_exec_once(struct msb_ctx *ctx, const char *name, json_t *body, struct api_fail *f)
{
        return api_exec_for(ctx, name, body, -1, f);
}

json_t *api_exec_for(struct msb_ctx *ctx, const char *name, json_t *body, int client_fd, struct api_fail *f)
{
        struct msb_exec_opts eo;
        struct exec_run *x = exec_decode(body, name, &eo, f);
        if (!x)
                return NULL;
        x->client_fd = client_fd;
        bool not_run;
        struct msb_error nerr = {0};
        if (exec_start(ctx, x, &eo, &not_run, &nerr, f) < 0) {
                exec_free(x);
                return NULL;
        }
        if (not_run) {
                text_put(&x->err, nerr.message, strlen(nerr.message));
                text_put(&x->err, "\n", 1);
        } else {
                collect(x);
                pthread_join(x->thread, NULL);
                x->thread_started = false;
                if (x->relay_ret < 0) {
                        api_fail_msb(f, x->relay_ret, &x->relay_err);
                        exec_free(x);
                        return NULL;
                }
                if (x->relay_ret == 1) { /* failed in the guest before it ran */
                        text_put(&x->err, x->relay_err.message, strlen(x->relay_err.message));
                        text_put(&x->err, "\n", 1);
                }
        }
        json_t *j = json_pack("{s:o, s:o, s:i, s:b, s:b, s:b}", "stdout", output_json(&x->out, x->base64), "stderr",
                              output_json(&x->err, x->base64), "exit_code", x->status, "timed_out",
                              x->timeout_ms && x->status == 124, "stdout_truncated", x->out_cut, "stderr_truncated",
                              x->err_cut);
        exec_free(x);
        return j;
}

void api_exec(struct api_req *r)
{
        struct api_fail f = {0};
        json_t *j = api_exec_for(r->ctx, r->params[0], r->body, r->client_fd, &f);
        if (j)
                api_reply_json(r, 200, j);
        else
                api_reply_fail(r, &f);
}

/* ---- the stream ---- */

static void line_json(struct exec_run *x, json_t *j)
{
        char *s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!s)
                abort();
        text_put(&x->line, s, strlen(s));
        text_put(&x->line, "\n", 1);
        free(s);
}

static void chunk_line(struct exec_run *x, const char *type, const char *buf, size_t n)
{
        line_json(x, json_pack("{s:s, s:o}", "type", type, "data",
                               x->base64 ? text_base64_json(buf, n) : text_utf8_json(buf, n)));
}

static void end_lines(struct exec_run *x)
{
        pthread_join(x->thread, NULL);
        x->thread_started = false;
        if (x->relay_ret < 0) {
                unsigned status;
                const char *code;
                api_errno_status(x->relay_err.code ? x->relay_err.code : EIO, &status, &code);
                line_json(x, json_pack("{s:s, s:o}", "type", "error", "error",
                                       api_error_inner(code, x->relay_err.message, NULL)));
        } else {
                if (x->relay_ret == 1)
                        chunk_line(x, "stderr", x->relay_err.message, strlen(x->relay_err.message));
                line_json(x, json_pack("{s:s, s:i, s:b}", "type", "exit", "exit_code", x->status, "timed_out",
                                       x->timeout_ms && x->status == 124));
        }
        x->ended = true;
}

/* Wait up to a second for output; turn what came into lines. */
static void pump(struct exec_run *x)
{
        struct pollfd pf[2] = {{.fd = x->out_r, .events = POLLIN}, {.fd = x->err_r, .events = POLLIN}};
        if (pf[0].fd < 0 && pf[1].fd < 0) {
                end_lines(x);
                return;
        }
        if (poll(pf, 2, 1000) <= 0) {
                /* quiet: see whether the client is still there */
                struct pollfd c = {.fd = x->client_fd, .events = POLLRDHUP};
                if (x->client_fd >= 0 && poll(&c, 1, 0) > 0 && (c.revents & (POLLRDHUP | POLLHUP | POLLERR)))
                        x->gone = true;
                return;
        }
        for (int i = 0; i < 2; i++) {
                if (!pf[i].revents)
                        continue;
                char buf[32768 + 4];
                size_t c = x->base64 ? 0 : x->ncarry[i];
                memcpy(buf, x->carry[i], c);
                ssize_t n = read(pf[i].fd, buf + c, sizeof(buf) - 4);
                if (n > 0) {
                        size_t all = c + (size_t)n, whole = x->base64 ? all : text_utf8_whole(buf, all);
                        x->ncarry[i] = all - whole;
                        memcpy(x->carry[i], buf + whole, x->ncarry[i]);
                        if (whole)
                                chunk_line(x, i ? "stderr" : "stdout", buf, whole);
                } else if (n == 0 || errno != EINTR) {
                        if (c) /* a cut character at the very end: as it is */
                                chunk_line(x, i ? "stderr" : "stdout", buf, c);
                        x->ncarry[i] = 0;
                        close(pf[i].fd);
                        *(i ? &x->err_r : &x->out_r) = -1;
                }
        }
}

static ssize_t stream_produce(void *state, char *buf, size_t max)
{
        struct exec_run *x = state;
        if (!x->started_sent) {
                x->started_sent = true;
                line_json(x, json_pack("{s:s}", "type", "started"));
        }
        if (x->line_off == x->line.len) {
                x->line.len = x->line_off = 0;
                if (x->ended || x->gone)
                        return -1;
                pump(x);
        }
        size_t n = x->line.len - x->line_off < max ? x->line.len - x->line_off : max;
        memcpy(buf, x->line.data + x->line_off, n);
        x->line_off += n;
        return (ssize_t)n;
}

static void stream_done(void *state)
{
        exec_free(state);
}

static const struct api_stream_ops exec_stream_ops = {stream_produce, stream_done};

void api_exec_stream(struct api_req *r)
{
        struct msb_exec_opts eo;
        struct api_fail f = {0};
        struct exec_run *x = exec_decode(r->body, r->params[0], &eo, &f);
        if (!x) {
                api_reply_fail(r, &f);
                return;
        }
        if (!api_stream_slot_take(r, x->name)) {
                exec_free(x);
                return;
        }
        x->slot = true;
        x->client_fd = r->client_fd;
        bool not_run;
        struct msb_error nerr = {0};
        if (exec_start(r->ctx, x, &eo, &not_run, &nerr, &f) < 0) {
                api_reply_fail(r, &f);
                exec_free(x);
                return;
        }
        if (not_run) {
                x->started_sent = true;
                chunk_line(x, "stderr", nerr.message, strlen(nerr.message));
                line_json(x, json_pack("{s:s, s:i, s:b}", "type", "exit", "exit_code", x->status, "timed_out", 0));
                x->ended = true;
        }
        api_reply_stream(r, "application/x-ndjson", &exec_stream_ops, x);
}
