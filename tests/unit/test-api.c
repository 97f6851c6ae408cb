/* SPDX-License-Identifier: Apache-2.0 */
/* msb serve's pieces without a server: text into JSON, the route table, the
 * errno map, and the create decoder's answers (src/api/). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "api/api.h"
#include "api/text.h"
#include "check.h"

static void check_text(void)
{
        json_t *j = text_utf8_json("a\xff\xc3\xa9", 4);
        CHECK_STR(json_string_value(j), "a\xef\xbf\xbd\xc3\xa9");
        json_decref(j);
        j = text_utf8_json("\xed\xa0\x80", 3); /* a surrogate is not UTF-8 */
        CHECK_INT(json_string_length(j), 9);
        json_decref(j);
        CHECK_INT(text_utf8_whole("ab\xc3", 3), 2);
        CHECK_INT(text_utf8_whole("ab\xe2\x82", 4), 2);
        CHECK_INT(text_utf8_whole("ab\xe2\x82\xac", 5), 5);
        CHECK_INT(text_utf8_whole("ab", 2), 2);
        const char *b64[][2] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"\xff" "A", "/0E="}};
        for (size_t i = 0; i < sizeof(b64) / sizeof(b64[0]); i++) {
                j = text_base64_json(b64[i][0], strlen(b64[i][0]));
                CHECK_STR(json_string_value(j), b64[i][1]);
                json_decref(j);
        }
}

static void check_routes(void)
{
        char *p[API_PARAMS_MAX];
        size_t n;
        bool known;
        const struct api_route *r = api_route_find("POST", "/v1/sandboxes/box-1/exec", p, &n, &known);
        CHECK(r && r->fn == api_exec);
        CHECK_INT(n, 1);
        CHECK_STR(p[0], "box-1");
        free(p[0]);
        /* processes by id: the name and the id, and the right one of four routes under an id */
        r = api_route_find("GET", "/v1/sandboxes/box-1/processes/12/output", p, &n, &known);
        CHECK(r && r->fn == api_proc_output);
        CHECK_INT(n, 2);
        CHECK_STR(p[1], "12");
        free(p[0]);
        free(p[1]);
        r = api_route_find("POST", "/v1/sandboxes/box-1/processes/12/stdin", p, &n, &known);
        CHECK(r && r->fn == api_proc_stdin && (r->flags & API_ROUTE_UPLOAD));
        free(p[0]);
        free(p[1]);
        r = api_route_find("GET", "/v1/sandboxes/box-1/processes/12", p, &n, &known);
        CHECK(r && r->fn == api_proc_get);
        free(p[0]);
        free(p[1]);
        CHECK(!api_route_find("DELETE", "/v1/sandboxes/box-1/processes/12", p, &n, &known) && known);
        CHECK(!api_route_find("PUT", "/v1/sandboxes", p, &n, &known) && known);
        CHECK(!api_route_find("GET", "/v1/sandboxes//exec", p, &n, &known) && !known);
        CHECK(!api_route_find("GET", "/v1/sandboxes/a/b", p, &n, &known) && !known);
        CHECK(!api_route_find("GET", "/v1/sandboxesx", p, &n, &known) && !known);
        /* files: the bytes at .../files, the rest below it */
        static const struct {
                const char *method, *path;
                api_handler *fn;
        } files[] = {
                {"GET", "/v1/sandboxes/b/files", api_file_read},       {"PUT", "/v1/sandboxes/b/files", api_file_write},
                {"GET", "/v1/sandboxes/b/files/stat", api_file_stat},  {"GET", "/v1/sandboxes/b/files/list", api_file_list},
                {"POST", "/v1/sandboxes/b/files/mkdir", api_file_mkdir}, {"POST", "/v1/sandboxes/b/files/remove", api_file_remove},
                {"POST", "/v1/sandboxes/b/files/rename", api_file_rename}, {"GET", "/v1/sandboxes/b/files/watch", api_file_watch},
        };
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                r = api_route_find(files[i].method, files[i].path, p, &n, &known);
                CHECK(r && r->fn == files[i].fn);
                if (r)
                        free(p[0]);
        }
        r = api_route_find("PUT", "/v1/sandboxes/b/files", p, &n, &known);
        CHECK(r && (r->flags & API_ROUTE_UPLOAD));
        if (r)
                free(p[0]);
        CHECK(!api_route_find("DELETE", "/v1/sandboxes/b/files", p, &n, &known) && known);
}

static void check_errors(void)
{
        unsigned st;
        const char *code;
        api_errno_status(ENOENT, &st, &code);
        CHECK_INT(st, 404);
        api_errno_status(ESRCH, &st, &code);
        CHECK_STR(code, "not_running");
        /* processes: stdin closed, no terminal, too many, the sandbox gone under a reader */
        api_errno_status(EPIPE, &st, &code);
        CHECK_INT(st, 409);
        api_errno_status(ENOTTY, &st, &code);
        CHECK_STR(code, "conflict");
        api_errno_status(EAGAIN, &st, &code);
        CHECK_INT(st, 429);
        CHECK_STR(code, "too_many_processes");
        api_errno_status(ECONNRESET, &st, &code);
        CHECK_INT(st, 502);
        api_errno_status(12345, &st, &code);
        CHECK_INT(st, 500);
}

/* decode BODY; the field named (or "" when it passed) */
static const char *decode(const char *body)
{
        static struct api_decode_err de;
        json_t *j = json_loads(body, 0, NULL);
        struct msb_run_opts *o;
        msb_run_opts_new(&o);
        struct api_create c = {0};
        de = (struct api_decode_err){0};
        int r = api_create_decode(j, o, &c, &de);
        msb_run_opts_free(o);
        json_decref(j);
        return r == 0 ? "" : de.field;
}

static void check_create(void)
{
        CHECK_STR(decode("{\"image\":\"busybox\",\"cpus\":2,\"memory\":\"256M\",\"env\":{\"A\":\"1\"},"
                         "\"labels\":{\"k\":\"v\"},\"disk_size\":0,\"start\":false}"),
                  "");
        CHECK_STR(decode("{\"image\":\"busybox\",\"cpus\":65}"), "cpus");
        CHECK_STR(decode("{\"image\":\"busybox\",\"memory\":12}"), "memory");
        CHECK_STR(decode("{\"image\":\"busybox\",\"env\":{\"A=B\":\"1\"}}"), "env");
        CHECK_STR(decode("{\"image\":\"busybox\",\"labels\":{\"bad key\":\"1\"}}"), "labels");
        CHECK_STR(decode("{\"image\":\"busybox\",\"volumes\":[{\"host\":\"/\",\"guest\":\"/x\",\"ro\":true}]}"),
                  "volumes[0].ro");
        CHECK_STR(decode("{\"image\":\"busybox\",\"command\":[\"a\",1]}"), "command[1]");
        CHECK_STR(decode("{\"image\":\"busybox\",\"net\":\"none\",\"ports\":[\"8080:80\"]}"), "");
        CHECK_STR(decode("{\"image\":\"busybox\",\"name\":\"-x\"}"), "name");
        CHECK_STR(decode("{\"image\":\"busybox\",\"disk_size\":\"1M\"}"), "disk_size");
        CHECK_STR(decode("{\"image\":\"busybox\",\"tty\":1}"), "tty");
        CHECK_STR(decode("{}"), "image");
}

/* The MCP handler without a server: every tool's schema is JSON, and bad messages get JSON-RPC errors. */
static void check_mcp(void)
{
        json_t *m = json_pack("{s:s, s:i, s:s}", "jsonrpc", "2.0", "id", 7, "method", "tools/list");
        json_t *r = api_mcp_handle(NULL, m);
        json_t *tools = json_object_get(json_object_get(r, "result"), "tools");
        CHECK_INT(json_array_size(tools), 8);
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t) CHECK(json_is_object(json_object_get(t, "inputSchema")));
        json_decref(r);
        json_decref(m);
        m = json_pack("{s:s, s:i, s:s}", "jsonrpc", "2.0", "id", 8, "method", "no/such");
        r = api_mcp_handle(NULL, m);
        CHECK_INT(json_integer_value(json_object_get(json_object_get(r, "error"), "code")), -32601);
        json_decref(r);
        json_decref(m);
        m = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", "notifications/initialized");
        CHECK(api_mcp_handle(NULL, m) == NULL);
        json_decref(m);
        m = json_pack("{s:s, s:i, s:s, s:{s:s}}", "jsonrpc", "2.0", "id", 9, "method", "tools/call", "params", "name",
                      "nope");
        r = api_mcp_handle(NULL, m);
        CHECK_INT(json_integer_value(json_object_get(json_object_get(r, "error"), "code")), -32602);
        json_decref(r);
        json_decref(m);
}

int main(void)
{
        check_mcp();
        check_text();
        check_routes();
        check_errors();
        check_create();
        CHECK_DONE();
}
