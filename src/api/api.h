/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb serve, the API server (docs/api.md): what its files share.
 *
 *   serve.c     the listeners (unix socket, TCP, TLS), the token, the daemons' life
 *   http.c      libmicrohttpd's callbacks: who may ask, bodies, replies, streams
 *   router.c    the route table: method and path to handler
 *   errors.c    one JSON shape for every error, errno to status and code
 *   decode.c    request JSON read strictly (unknown fields, types, ranges named)
 *   create.c    a create request's JSON to msb_run_opts (fuzzed: tests/fuzz/fuzz-api.c)
 *   sandboxes.c the sandbox routes: create, list, get, lifecycle, delete
 *   exec.c      exec: one call, or streamed as NDJSON
 *   procs.c     background processes by id: start, list, output, stdin, signal, resize
 *   archive.c   trees in and out as tar
 *   files.c     files by guest path: read, write, stat, list, mkdir, remove, rename, watch
 *   lineq.c     a stream fed by a thread of its own through a bounded queue
 *   logs.c      the main process's log (tail, since, follow), and every sandbox's events
 *   text.c      bytes into JSON strings (UTF-8 with replacement, base64)
 *   images.c    images, the pool, the version, /metrics
 *   mcp.c       the MCP server: tools over stdio (msb mcp) and POST /mcp
 *
 * The server holds no sandbox state: every handler opens a fresh msb_ctx and
 * asks the library, which asks the sandboxes' supervisors and the store the
 * CLI uses.  Each connection has a thread of its own (libmicrohttpd's
 * thread-per-connection mode), so a handler may block, and a stream is a
 * producer called from that thread whenever the client can take more.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "msb.h"

struct MHD_Connection;

/* Bounds (docs/api.md, "Limits"). */
#define API_BODY_MAX (1u << 20)        /* a JSON request body */
#define API_CONN_MAX 256u              /* connections at once, all clients */
#define API_CONN_PER_IP 64u            /* TCP connections from one address */
#define API_IDLE_S 300u                /* an idle connection closes */
#define API_PREAUTH_IDLE_S 10u         /* a TCP connection's, until a request of it passed the token check */
#define API_STREAMS_PER_SANDBOX 64u    /* streaming responses on one sandbox at once */
#define API_EXEC_OUTPUT_DEFAULT (1u << 20) /* exec's collected stdout and stderr, each */
#define API_EXEC_OUTPUT_MAX (64u << 20)
#define API_STREAM_QUEUE_MAX (1u << 20) /* a stream's output a slow client has not taken */
#define API_PARAMS_MAX 4

struct api_server;

/* One request, as its handler sees it. */
struct api_req {
        struct MHD_Connection *conn;
        const char *method;
        const char *path;                    /* without the query */
        char *params[API_PARAMS_MAX];        /* the route's {placeholders}, decoded */
        size_t nparams;
        json_t *body;                        /* a JSON route's body (an object), or NULL */
        struct msb_ctx *ctx;                 /* this request's, freed after it */
        int client_fd;                       /* the connection's socket (a stream polls it for a hang-up) */
        int upload_fd;                       /* an upload route's body, read until EOF (a pipe) */
        /* an upload's: hung up before upload_fd's EOF when the client went
         * away mid-body, so that a cut body is not taken for a whole one
         * (a cancel fd for the library), else never */
        int upload_cut_fd;
        bool replied;
};

/* A handler replies exactly once through one of the api_reply_* calls; its
 * return value is ignored (MHD's answer comes from the reply). */
typedef void api_handler(struct api_req *r);

/* http.c: replies */
void api_reply_json(struct api_req *r, unsigned status, json_t *body); /* steals body */
/* An error in the one shape (errors.c): msb's message as the CLI prints it. */
void api_reply_error(struct api_req *r, unsigned status, const char *code, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
/* A library error, its status and code from err->code (or r if err has none). */
void api_reply_msb_error(struct api_req *r, int ret, const struct msb_error *err);
void api_reply_empty(struct api_req *r, unsigned status);
/* A text body (steals body, a malloc'd string). */
void api_reply_text(struct api_req *r, unsigned status, const char *content_type, char *body);

/* A streamed body: produce() is called with room for max bytes and returns
 * how many it wrote, 0 after waiting up to a second with nothing to say
 * (it is called again), or -1 at the end.  done() frees the state, whether
 * the stream ended or the client went away. */
struct api_stream_ops {
        ssize_t (*produce)(void *state, char *buf, size_t max);
        void (*done)(void *state);
};
void api_reply_stream(struct api_req *r, const char *content_type, const struct api_stream_ops *ops, void *state);
/* Has the client hung up (its socket read end closed)? */
bool api_client_gone(const struct api_req *r);

/* A query parameter, or NULL. */
const char *api_query(const struct api_req *r, const char *key);

/* errors.c */
/* The status and stable code for an errno from the library. */
void api_errno_status(int code, unsigned *ret_status, const char **ret_code);
/* {"error": {"code", "message", "field"?}}, and the inner object alone (a stream's error line) */
json_t *api_error_body(const char *code, const char *message, const char *field);
json_t *api_error_inner(const char *code, const char *message, const char *field);

/* decode.c: strict readers of a request's JSON, for create.c and the
 * handlers.  A reader fills de (the field, as "volumes[2].guest", and why)
 * and returns -1; api_reply_decode_err answers it as a 400. */
struct api_decode_err {
        char field[128];
        char message[512];
};
int api_bad(struct api_decode_err *de, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void api_reply_decode_err(struct api_req *r, const struct api_decode_err *de);
/* One key of an object: how to read it, where to, and its bounds. */
struct api_field;
typedef int api_field_fn(struct api_decode_err *de, const struct api_field *f, const char *field, json_t *v,
                         void *out);
struct api_field {
        const char *name;
        api_field_fn *read;
        size_t offset;     /* into the output struct */
        uint64_t min, max; /* numbers: the range; strings: the length */
};
/* Every key of obj must be one of fields (else the unknown one is named);
 * each is read into out.  where: the object's own field name, "" at the top. */
int api_decode_object(struct api_decode_err *de, const char *where, json_t *obj, const struct api_field *fields,
                      size_t n, void *out);
/* const char * (borrowed from the JSON), bool (with a "set" bool after it:
 * struct api_opt_bool), uint64_t, json_t * (an array of strings, borrowed),
 * uint64_t from a size ("512M" or a number of bytes), json_t * (an object
 * of strings, borrowed); api_read_array: any array (json_t *, borrowed) */
api_field_fn api_read_string, api_read_bool, api_read_uint, api_read_strv, api_read_array, api_read_size,
        api_read_strmap;
/* sandboxes.c: an int signal from a number (1 to 64) or a name ("TERM") */
api_field_fn api_read_signal;
struct api_opt_bool {
        bool value, set;
};
/* A query parameter as a number in [0, max] (absent: *ret untouched) or a
 * bool ("true", "false", "1", "0"); -1 after a 400 naming it. */
int api_query_uint(struct api_req *r, const char *key, uint64_t max, uint64_t *ret);
int api_query_bool(struct api_req *r, const char *key, bool *ret);

/* create.c: a create request into opts, plus what is not a run option. */
struct api_create {
        const char *name; /* NULL: a generated one */
        struct api_opt_bool start; /* default true */
};
int api_create_decode(json_t *body, struct msb_run_opts *opts, struct api_create *c, struct api_decode_err *de);

/* sandboxes.c */
json_t *api_sandbox_json(const struct msb_sandbox_info *info);
struct api_fail;
/* Create (and start) from a create request: the sandbox's object, or NULL with f filled. */
json_t *api_create_once(struct msb_ctx *ctx, json_t *body, struct api_fail *f);
api_handler api_sandbox_create, api_sandbox_list, api_sandbox_get, api_sandbox_start, api_sandbox_stop,
        api_sandbox_kill, api_sandbox_restart, api_sandbox_wait, api_sandbox_delete, api_sandbox_metrics;
/* A failure a handler's work returns rather than replies (the work is
 * shared with the MCP tools): api_reply_fail answers it. */
struct api_fail {
        unsigned status;
        const char *code;
        char field[128];
        char message[2048];
};
void api_fail_set(struct api_fail *f, unsigned status, const char *code, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
void api_fail_msb(struct api_fail *f, int ret, const struct msb_error *err);
void api_fail_decode(struct api_fail *f, const struct api_decode_err *de);
void api_reply_fail(struct api_req *r, const struct api_fail *f);

/* exec.c */
api_handler api_exec, api_exec_stream;
/* procs.c: background processes by id */
api_handler api_proc_start, api_proc_list, api_proc_get, api_proc_output, api_proc_stdin, api_proc_signal,
        api_proc_resize;
/* One exec to its end: its result object, or NULL with f filled. */
json_t *api_exec_once(struct msb_ctx *ctx, const char *name, json_t *body, struct api_fail *f);
/* The same for a client on client_fd (-1: none): its hanging up kills the command. */
json_t *api_exec_for(struct msb_ctx *ctx, const char *name, json_t *body, int client_fd, struct api_fail *f);
/* mcp.c: one JSON-RPC message's answer (NULL: none, a notification) */
json_t *api_mcp_handle(struct msb_ctx *ctx, json_t *msg);
api_handler api_mcp_http;
/* msb mcp: the same on stdin/stdout, a line each, until EOF */
int api_mcp_stdio(void);
/* logs.c */
api_handler api_logs, api_events;
/* archive.c */
api_handler api_archive_get, api_archive_put;
/* files.c */
api_handler api_file_read, api_file_write, api_file_stat, api_file_list, api_file_mkdir, api_file_remove,
        api_file_rename, api_file_watch;
/* images.c */
api_handler api_version, api_image_list, api_image_pull, api_image_remove, api_pool_status, api_metrics;

/* Streams on one sandbox (http.c): take one (false, and a 429 sent, past
 * API_STREAMS_PER_SANDBOX), give it back. */
bool api_stream_slot_take(struct api_req *r, const char *name);
void api_stream_slot_give(const char *name);

/* Server-wide counters for /metrics (http.c). */
struct api_counters {
        uint64_t requests, errors_4xx, errors_5xx, unauthorized, streams_open;
};
void api_counters_get(struct api_counters *c);

/* router.c */
struct api_route {
        const char *method;
        const char *pattern; /* "/v1/sandboxes/{name}/exec": {x} matches one segment */
        api_handler *fn;
        unsigned flags;
};
#define API_ROUTE_JSON (1u << 0)   /* the body is a JSON object (an empty body is {}) */
#define API_ROUTE_UPLOAD (1u << 1) /* the body is streamed to the handler (archive uploads) */
/* The route for method and path, params filled; NULL and *ret_path_known
 * true when the path exists with another method (405). */
const struct api_route *api_route_find(const char *method, const char *path, char **params, size_t *nparams,
                                       bool *ret_path_known);
/* Every route, for the tests (msb serve --routes). */
const struct api_route *api_routes(size_t *n);

/* Logging on stderr (serve.c): one line each, with the time. */
void api_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The library's log lines, as msb_ctx_set_log wants them. */
void api_log_line(const char *line, void *ud);
/* A monotonic clock in ms. */
int64_t api_now_ms(void);

/* serve.c */
struct api_serve_opts {
        const char *socket_path; /* NULL: <runtime dir>/api.sock */
        const char *listen;      /* "ADDR:PORT" for TCP, or NULL */
        const char *token_file;  /* NULL: <data dir>/api.token */
        const char *tls_cert, *tls_key;
        bool insecure;
        bool quiet;
};
/* Serve until SIGINT or SIGTERM: 0, or 1 after printing why it could not. */
int api_serve(const struct api_serve_opts *o);
/* Where msb serve listens by default for this user. */
char *api_default_socket(struct msb_ctx *ctx);
