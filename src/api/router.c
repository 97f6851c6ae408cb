/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb serve's routes, one table (docs/api/openapi.yaml describes each):
 * a method, a path pattern whose {placeholders} match one segment each
 * (libmicrohttpd has percent-decoded the path; what a segment may hold is
 * the handler's to check, e.g. msb_sandbox_name_check), the handler and how
 * its body is read.  Image references hold '/', so they travel in the query.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/util.h"

static const struct api_route routes[] = {
        {"GET", "/v1/version", api_version, 0},
        {"GET", "/v1/sandboxes", api_sandbox_list, 0},
        {"POST", "/v1/sandboxes", api_sandbox_create, API_ROUTE_JSON},
        {"GET", "/v1/sandboxes/{name}", api_sandbox_get, 0},
        {"DELETE", "/v1/sandboxes/{name}", api_sandbox_delete, 0},
        {"POST", "/v1/sandboxes/{name}/start", api_sandbox_start, API_ROUTE_JSON},
        {"POST", "/v1/sandboxes/{name}/stop", api_sandbox_stop, API_ROUTE_JSON},
        {"POST", "/v1/sandboxes/{name}/kill", api_sandbox_kill, API_ROUTE_JSON},
        {"POST", "/v1/sandboxes/{name}/restart", api_sandbox_restart, API_ROUTE_JSON},
        {"POST", "/v1/sandboxes/{name}/wait", api_sandbox_wait, API_ROUTE_JSON},
        {"POST", "/v1/sandboxes/{name}/exec", api_exec, API_ROUTE_JSON},
        {"POST", "/v1/sandboxes/{name}/exec/stream", api_exec_stream, API_ROUTE_JSON},
        {"POST", "/v1/sandboxes/{name}/processes", api_proc_start, API_ROUTE_JSON},
        {"GET", "/v1/sandboxes/{name}/processes", api_proc_list, 0},
        {"GET", "/v1/sandboxes/{name}/processes/{id}", api_proc_get, 0},
        {"GET", "/v1/sandboxes/{name}/processes/{id}/output", api_proc_output, 0},
        {"POST", "/v1/sandboxes/{name}/processes/{id}/stdin", api_proc_stdin, API_ROUTE_UPLOAD},
        {"POST", "/v1/sandboxes/{name}/processes/{id}/signal", api_proc_signal, API_ROUTE_JSON},
        {"POST", "/v1/sandboxes/{name}/processes/{id}/resize", api_proc_resize, API_ROUTE_JSON},
        {"GET", "/v1/sandboxes/{name}/logs", api_logs, 0},
        {"GET", "/v1/sandboxes/{name}/metrics", api_sandbox_metrics, 0},
        {"GET", "/v1/sandboxes/{name}/archive", api_archive_get, 0},
        {"PUT", "/v1/sandboxes/{name}/archive", api_archive_put, API_ROUTE_UPLOAD},
        {"GET", "/v1/sandboxes/{name}/files", api_file_read, 0},
        {"PUT", "/v1/sandboxes/{name}/files", api_file_write, API_ROUTE_UPLOAD},
        {"GET", "/v1/sandboxes/{name}/files/stat", api_file_stat, 0},
        {"GET", "/v1/sandboxes/{name}/files/list", api_file_list, 0},
        {"POST", "/v1/sandboxes/{name}/files/mkdir", api_file_mkdir, API_ROUTE_JSON},
        {"POST", "/v1/sandboxes/{name}/files/remove", api_file_remove, API_ROUTE_JSON},
        {"POST", "/v1/sandboxes/{name}/files/rename", api_file_rename, API_ROUTE_JSON},
        {"GET", "/v1/sandboxes/{name}/files/watch", api_file_watch, 0},
        {"GET", "/v1/events", api_events, 0},
        {"GET", "/v1/images", api_image_list, 0},
        {"POST", "/v1/images/pull", api_image_pull, API_ROUTE_JSON},
        {"DELETE", "/v1/images", api_image_remove, 0},
        {"GET", "/v1/pool", api_pool_status, 0},
        {"GET", "/metrics", api_metrics, 0},
        {"POST", "/mcp", api_mcp_http, API_ROUTE_JSON},
};

const struct api_route *api_routes(size_t *n)
{
        *n = ARRAY_SIZE(routes);
        return routes;
}

/* Does path match pattern?  Fills params (owned by the caller) when it does. */
static bool match(const char *pattern, const char *path, char **params, size_t *np)
{
        const char *p = pattern, *u = path;
        size_t n = 0;
        while (*p && *u) {
                if (*p == '{') {
                        const char *pe = strchr(p, '}');
                        size_t len = strcspn(u, "/");
                        if (!pe || len == 0 || n == API_PARAMS_MAX)
                                goto no;
                        params[n++] = xasprintf("%.*s", (int)len, u);
                        p = pe + 1;
                        u += len;
                        continue;
                }
                if (*p != *u)
                        goto no;
                p++;
                u++;
        }
        if (*p || *u)
                goto no;
        *np = n;
        return true;
no:
        for (size_t i = 0; i < n; i++)
                free(params[i]);
        return false;
}

const struct api_route *api_route_find(const char *method, const char *path, char **params, size_t *nparams,
                                       bool *ret_path_known)
{
        *ret_path_known = false;
        *nparams = 0;
        for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
                char *tmp[API_PARAMS_MAX];
                size_t n;
                if (!match(routes[i].pattern, path, tmp, &n))
                        continue;
                if (strcmp(routes[i].method, method)) {
                        *ret_path_known = true;
                        for (size_t j = 0; j < n; j++)
                                free(tmp[j]);
                        continue;
                }
                memcpy(params, tmp, n * sizeof(*tmp));
                *nparams = n;
                return &routes[i];
        }
        return NULL;
}
