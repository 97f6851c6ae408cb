/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb as an MCP server (Model Context Protocol, JSON-RPC 2.0): one handler
 * for both transports, `msb mcp` on stdio (a line each way) and POST /mcp
 * on msb serve (streamable HTTP, answered with application/json).  Tools
 * create, list, get, stop and remove sandboxes, run commands, and read
 * logs and metrics, each with a JSON schema; their text output is bounded
 * (TOOL_TEXT_MAX) and says where it was cut.  A tool that fails answers a
 * tool error (isError), never a crash; a malformed message answers a
 * JSON-RPC error.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/text.h"
#include "common/util.h"

#define TOOL_TEXT_MAX (64u * 1024u)
#define LOG_TAIL_DEFAULT 200
static const char *const protocol_versions[] = {"2025-06-18", "2025-03-26", "2024-11-05"};

/* ---- tool results ---- */

static json_t *tool_text(const char *s, size_t n, bool is_error, json_t *structured)
{
        struct text t = {0};
        text_put(&t, s, n < TOOL_TEXT_MAX ? n : TOOL_TEXT_MAX);
        if (n > TOOL_TEXT_MAX) {
                char mark[96];
                int k = snprintf(mark, sizeof(mark), "\n[... %zu more bytes cut by msb]", n - TOOL_TEXT_MAX);
                text_put(&t, mark, (size_t)k);
        }
        json_t *r = json_pack("{s:[{s:s, s:o}], s:b}", "content", "type", "text", "text",
                              text_utf8_json(t.data ? t.data : "", t.len), "isError", is_error);
        text_free(&t);
        if (structured)
                json_object_set_new(r, "structuredContent", structured);
        return r;
}

static json_t *tool_fail(const struct api_fail *f)
{
        char *m = xasprintf("%s (%s)", f->message, f->code);
        json_t *r = tool_text(m, strlen(m), true, NULL);
        free(m);
        return r;
}

static json_t *tool_json(json_t *j)
{
        char *s = json_dumps(j, JSON_INDENT(1));
        json_t *r = tool_text(s, strlen(s), false, j);
        free(s);
        return r;
}

/* args' string at key, or NULL with f filled */
static const char *arg_name(json_t *args, struct api_fail *f)
{
        const char *n = json_string_value(json_object_get(args, "name"));
        if (!n)
                api_fail_set(f, 400, "bad_request", "name", "name: required, the sandbox's name");
        return n;
}

/* ---- the tools ---- */

static json_t *t_create(struct msb_ctx *ctx, json_t *args, struct api_fail *f)
{
        json_t *body = json_deep_copy(args);
        if (!json_object_get(body, "command"))
                json_object_set_new(body, "command", json_pack("[s,s]", "sleep", "2147483647"));
        json_t *j = api_create_once(ctx, body, f);
        json_decref(body);
        return j;
}

static json_t *t_list(struct msb_ctx *ctx, json_t *args, struct api_fail *f)
{
        const char *status = json_string_value(json_object_get(args, "status"));
        struct msb_sandbox_info *v;
        size_t n;
        struct msb_error err = {0};
        int q = msb_sandbox_list(ctx, &v, &n, &err);
        if (q < 0) {
                api_fail_msb(f, q, &err);
                return NULL;
        }
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
                if (!status || !strcmp(status, v[i].status))
                        json_array_append_new(a, api_sandbox_json(&v[i]));
        msb_sandbox_info_free(v, n);
        return json_pack("{s:o}", "sandboxes", a);
}

static json_t *t_get(struct msb_ctx *ctx, json_t *args, struct api_fail *f)
{
        const char *name = arg_name(args, f);
        struct msb_sandbox_info *in;
        struct msb_error err = {0};
        int q = name ? msb_sandbox_get(ctx, name, &in, &err) : -1;
        if (q < 0) {
                if (name)
                        api_fail_msb(f, q, &err);
                return NULL;
        }
        json_t *j = api_sandbox_json(in);
        msb_sandbox_info_free(in, 1);
        return j;
}

static json_t *t_stop(struct msb_ctx *ctx, json_t *args, struct api_fail *f)
{
        const char *name = arg_name(args, f);
        json_int_t grace = json_integer_value(json_object_get(args, "grace_ms"));
        struct msb_error err = {0};
        int q = name ? msb_sandbox_stop(ctx, name, grace > 0 && grace < 3600000 ? (unsigned)grace : 10000, &err) : -1;
        if (q < 0) {
                if (name)
                        api_fail_msb(f, q, &err);
                return NULL;
        }
        return t_get(ctx, args, f);
}

static json_t *t_remove(struct msb_ctx *ctx, json_t *args, struct api_fail *f)
{
        const char *name = arg_name(args, f);
        struct msb_error err = {0};
        int q = name ? msb_sandbox_remove(ctx, name, true, &err) : -1;
        if (q < 0) {
                if (name)
                        api_fail_msb(f, q, &err);
                return NULL;
        }
        return json_pack("{s:s, s:b}", "name", name, "removed", 1);
}

static json_t *t_exec(struct msb_ctx *ctx, json_t *args, struct api_fail *f)
{
        const char *name = arg_name(args, f);
        if (!name)
                return NULL;
        json_t *body = json_deep_copy(args);
        json_object_del(body, "name");
        if (!json_object_get(body, "max_output"))
                json_object_set_new(body, "max_output", json_integer(TOOL_TEXT_MAX));
        json_t *j = api_exec_once(ctx, name, body, f);
        json_decref(body);
        return j;
}

struct logbuf {
        struct text t;
};

static int log_line(const struct msb_log_record *r, void *ud)
{
        struct logbuf *b = ud;
        text_put(&b->t, r->err ? "[stderr] " : "", r->err ? 9 : 0);
        text_put(&b->t, r->data, r->len);
        if (!r->partial)
                text_put(&b->t, "\n", 1);
        return b->t.len > 4 * TOOL_TEXT_MAX; /* more than a tool can show: stop reading */
}

static json_t *t_logs(struct msb_ctx *ctx, json_t *args, struct api_fail *f)
{
        const char *name = arg_name(args, f);
        if (!name)
                return NULL;
        json_t *tail = json_object_get(args, "tail");
        struct msb_logs_opts lo = {.tail = json_is_integer(tail) && json_integer_value(tail) >= 0
                                                   ? (long)json_integer_value(tail)
                                                   : LOG_TAIL_DEFAULT};
        struct logbuf b = {{0}};
        struct msb_error err = {0};
        int q = msb_sandbox_logs(ctx, name, &lo, log_line, &b, &err);
        if (q < 0) {
                text_free(&b.t);
                api_fail_msb(f, q, &err);
                return NULL;
        }
        json_t *j = json_pack("{s:o}", "log", text_utf8_json(b.t.data ? b.t.data : "", b.t.len));
        text_free(&b.t);
        return j;
}

static json_t *t_metrics(struct msb_ctx *ctx, json_t *args, struct api_fail *f)
{
        const char *name = arg_name(args, f);
        struct msb_sandbox_metrics m;
        struct msb_error err = {0};
        int q = name ? msb_sandbox_metrics(ctx, name, &m, &err) : -1;
        if (q < 0) {
                if (name)
                        api_fail_msb(f, q, &err);
                return NULL;
        }
        return json_pack("{s:s, s:b, s:f, s:I, s:I}", "name", name, "running", m.running, "cpu_seconds",
                         m.cpu_seconds, "memory_bytes", (json_int_t)m.memory_bytes, "disk_bytes",
                         (json_int_t)m.disk_bytes);
}

#define NAME_SCHEMA "\"name\": {\"type\": \"string\", \"description\": \"the sandbox's name\"}"
static const struct tool {
        const char *name, *description, *schema;
        json_t *(*run)(struct msb_ctx *, json_t *, struct api_fail *);
        bool exec_text; /* show stdout/stderr as text */
} tools[] = {
        {"sandbox_create",
         "Create and start a microVM sandbox from an image. It keeps running (its main command sleeps) until "
         "removed. Returns the sandbox: its name, status and settings.",
         "{\"type\": \"object\", \"properties\": {\"image\": {\"type\": \"string\", \"description\": \"an image in the "
         "local store, e.g. busybox\"}, \"name\": {\"type\": \"string\"}, \"command\": {\"type\": \"array\", "
         "\"items\": {\"type\": \"string\"}}, \"env\": {\"type\": \"object\", \"additionalProperties\": {\"type\": "
         "\"string\"}}, \"cpus\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 64}, \"memory\": {\"type\": "
         "\"string\", \"description\": \"e.g. 512M\"}, \"disk_size\": {\"type\": \"string\", \"description\": \"0 for "
         "none, e.g. 1G\"}, \"net\": {\"enum\": [\"public\", \"private\", \"host\", \"all\", \"none\"]}, \"labels\": "
         "{\"type\": \"object\", \"additionalProperties\": {\"type\": \"string\"}}}, \"required\": [\"image\"], "
         "\"additionalProperties\": false}",
         t_create, false},
        {"sandbox_list", "List the user's sandboxes (optionally only those with a status).",
         "{\"type\": \"object\", \"properties\": {\"status\": {\"enum\": [\"created\", \"running\", \"stopped\", "
         "\"crashed\"]}}, \"additionalProperties\": false}",
         t_list, false},
        {"sandbox_get", "One sandbox: status, exit code, image, size, labels.",
         "{\"type\": \"object\", \"properties\": {" NAME_SCHEMA "}, \"required\": [\"name\"], \"additionalProperties\": false}",
         t_get, false},
        {"sandbox_stop", "Stop a sandbox: SIGTERM to its main process, then the VM after grace_ms.",
         "{\"type\": \"object\", \"properties\": {" NAME_SCHEMA ", \"grace_ms\": {\"type\": \"integer\", \"minimum\": "
         "0}}, \"required\": [\"name\"], \"additionalProperties\": false}",
         t_stop, false},
        {"sandbox_remove", "Remove a sandbox with its disk and logs (a running one is stopped at once).",
         "{\"type\": \"object\", \"properties\": {" NAME_SCHEMA "}, \"required\": [\"name\"], \"additionalProperties\": false}",
         t_remove, false},
        {"exec",
         "Run a command in a running sandbox to its end. Returns its exit code, stdout and stderr (each cut at 64 KiB, "
         "with a marker). A command that cannot be found exits 127.",
         "{\"type\": \"object\", \"properties\": {" NAME_SCHEMA ", \"command\": {\"type\": \"array\", \"items\": "
         "{\"type\": \"string\"}, \"minItems\": 1, \"description\": \"argv, e.g. [\\\"sh\\\", \\\"-c\\\", \\\"ls "
         "/\\\"]\"}, \"stdin\": {\"type\": \"string\"}, \"workdir\": {\"type\": \"string\"}, \"env\": {\"type\": "
         "\"object\", \"additionalProperties\": {\"type\": \"string\"}}, \"timeout_ms\": {\"type\": \"integer\", "
         "\"minimum\": 0}}, \"required\": [\"name\", \"command\"], \"additionalProperties\": false}",
         t_exec, true},
        {"logs", "The last lines of a sandbox's main process output (stderr lines marked).",
         "{\"type\": \"object\", \"properties\": {" NAME_SCHEMA ", \"tail\": {\"type\": \"integer\", \"minimum\": 0, "
         "\"description\": \"lines, default 200\"}}, \"required\": [\"name\"], \"additionalProperties\": false}",
         t_logs, false},
        {"metrics", "What a sandbox costs the host now: CPU seconds, resident memory, disk blocks.",
         "{\"type\": \"object\", \"properties\": {" NAME_SCHEMA "}, \"required\": [\"name\"], \"additionalProperties\": false}",
         t_metrics, false},
};

static json_t *tools_list(void)
{
        json_t *a = json_array();
        for (size_t i = 0; i < ARRAY_SIZE(tools); i++) {
                json_t *schema = json_loads(tools[i].schema, 0, NULL);
                if (!schema)
                        abort(); /* a schema of ours that is not JSON: caught by tests/unit/test-api.c */
                json_array_append_new(a, json_pack("{s:s, s:s, s:o}", "name", tools[i].name, "description",
                                                   tools[i].description, "inputSchema", schema));
        }
        return json_pack("{s:o}", "tools", a);
}

static json_t *exec_result_text(json_t *j)
{
        const char *out = json_string_value(json_object_get(j, "stdout"));
        const char *err = json_string_value(json_object_get(j, "stderr"));
        char *s = xasprintf("exit_code: %lld%s\n--- stdout ---\n%s\n--- stderr ---\n%s",
                            (long long)json_integer_value(json_object_get(j, "exit_code")),
                            json_is_true(json_object_get(j, "timed_out")) ? " (timed out)" : "", out ? out : "",
                            err ? err : "");
        json_t *r = tool_text(s, strlen(s), false, j);
        free(s);
        return r;
}

static json_t *tools_call(struct msb_ctx *ctx, json_t *params, int *ret_code, const char **ret_msg)
{
        const char *name = json_string_value(json_object_get(params, "name"));
        json_t *args = json_object_get(params, "arguments");
        if (!args)
                args = json_object();
        else
                json_incref(args);
        const struct tool *t = NULL;
        for (size_t i = 0; name && i < ARRAY_SIZE(tools); i++)
                if (!strcmp(tools[i].name, name))
                        t = &tools[i];
        if (!t || !json_is_object(args)) {
                json_decref(args);
                *ret_code = -32602;
                *ret_msg = !t ? "unknown tool (tools/list names them)" : "arguments must be an object";
                return NULL;
        }
        /* only what the tool's schema offers: an agent must not reach
         * volumes, ports or users it was never shown */
        json_t *schema = json_loads(t->schema, 0, NULL);
        json_t *props = json_object_get(schema, "properties");
        const char *k;
        json_t *v;
        json_object_foreach(args, k, v)
        {
                if (!json_object_get(props, k)) {
                        struct api_fail bad = {0};
                        api_fail_set(&bad, 400, "bad_request", k, "%s: not an argument of %s (tools/list has its schema)",
                                     k, t->name);
                        json_decref(schema);
                        json_decref(args);
                        return tool_fail(&bad);
                }
        }
        json_decref(schema);
        struct api_fail f = {0};
        json_t *j = t->run(ctx, args, &f);
        json_decref(args);
        if (!j)
                return tool_fail(&f);
        return t->exec_text ? exec_result_text(j) : tool_json(j);
}

static json_t *initialize(json_t *params)
{
        const char *want = json_string_value(json_object_get(params, "protocolVersion"));
        const char *v = protocol_versions[0];
        for (size_t i = 0; want && i < ARRAY_SIZE(protocol_versions); i++)
                if (!strcmp(want, protocol_versions[i]))
                        v = want;
        return json_pack("{s:s, s:{s:{s:b}}, s:{s:s, s:s}, s:s}", "protocolVersion", v, "capabilities", "tools",
                         "listChanged", 0, "serverInfo", "name", "msb", "version", MSB_VERSION, "instructions",
                         "Each sandbox is a microVM booted from an image: create one, run commands in it with exec, "
                         "remove it when done.");
}

json_t *api_mcp_handle(struct msb_ctx *ctx, json_t *msg)
{
        json_t *id = json_object_get(msg, "id");
        const char *method = json_string_value(json_object_get(msg, "method"));
        if (!json_is_object(msg) || !method) {
                /* a response or a notification without a method: nothing to answer */
                if (json_is_object(msg) && !id)
                        return NULL;
                return json_pack("{s:s, s:O?, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id, "error", "code", -32600,
                                 "message", "expected a JSON-RPC 2.0 request");
        }
        if (!id)
                return NULL; /* notifications/initialized, cancelled, ...: nothing to answer */
        json_t *params = json_object_get(msg, "params");
        json_t *result = NULL;
        int code = -32601;
        const char *emsg = "method not found";
        if (!strcmp(method, "initialize"))
                result = initialize(params);
        else if (!strcmp(method, "ping"))
                result = json_object();
        else if (!strcmp(method, "tools/list"))
                result = tools_list();
        else if (!strcmp(method, "tools/call"))
                result = tools_call(ctx, params, &code, &emsg);
        if (!result)
                return json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id, "error", "code", code,
                                 "message", emsg);
        return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result);
}

void api_mcp_http(struct api_req *r)
{
        json_t *resp = api_mcp_handle(r->ctx, r->body);
        if (!resp)
                api_reply_empty(r, 202);
        else
                api_reply_json(r, 200, resp);
}

int api_mcp_stdio(void)
{
        struct msb_ctx *ctx;
        struct msb_error err = {0};
        if (msb_ctx_new(&ctx, &err) < 0) {
                fprintf(stderr, "msb mcp: %s\n", err.message);
                return 1;
        }
        msb_ctx_set_no_signals(ctx, true);
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, stdin)) > 0) {
                if (n > (ssize_t)API_BODY_MAX) {
                        fprintf(stderr, "msb mcp: a message over %u bytes was dropped\n", API_BODY_MAX);
                        continue;
                }
                json_error_t je;
                json_t *msg = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &je);
                json_t *resp = msg ? api_mcp_handle(ctx, msg)
                                   : json_pack("{s:s, s:n, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", "error", "code",
                                               -32700, "message", "parse error");
                json_decref(msg);
                if (resp) {
                        char *s = json_dumps(resp, JSON_COMPACT);
                        json_decref(resp);
                        if (s) {
                                fputs(s, stdout);
                                fputc('\n', stdout);
                                fflush(stdout);
                                free(s);
                        }
                }
        }
        free(line);
        msb_ctx_free(ctx);
        return 0;
}
