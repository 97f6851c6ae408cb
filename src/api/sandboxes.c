/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sandbox routes: create (and start), list with filters, get, start,
 * stop, kill, restart, wait, delete.  Each is one library call on a fresh
 * context, so the API and the CLI see the same sandboxes and a restarted
 * server finds every one where it was.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/util.h"

#define GRACE_MS_DEFAULT 10000u
#define GRACE_MS_MAX 3600000u

static json_t *time_json(int64_t t)
{
        return t > 0 ? json_integer(t) : json_null();
}

json_t *api_sandbox_json(const struct msb_sandbox_info *in)
{
        json_t *labels = json_object();
        for (char **l = in->labels; l && *l; l++) {
                const char *eq = strchr(*l, '=');
                if (eq) {
                        _cleanup_free_ char *k = xasprintf("%.*s", (int)(eq - *l), *l);
                        json_object_set_new(labels, k, json_string(eq + 1));
                }
        }
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:i, s:i, s:b, s:b, s:o}", "name", in->name,
                              "image", in->image, "command", in->command, "status", in->status, "exit_code",
                              in->exit_code >= 0 ? json_integer(in->exit_code) : json_null(), "created",
                              time_json(in->created), "started", time_json(in->started), "finished",
                              time_json(in->finished), "cpus", (int)in->cpus, "memory_mib", (int)in->memory_mib, "tty",
                              in->tty, "interactive", in->interactive, "labels", labels);
        /* a command or image that is not UTF-8 cannot be in config.json: j is never NULL */
        if (!j)
                abort();
        return j;
}

/* The sandbox now, as a 200 (or status). */
static void reply_sandbox(struct api_req *r, unsigned status, const char *name)
{
        struct msb_sandbox_info *in;
        struct msb_error err = {0};
        int q = msb_sandbox_get(r->ctx, name, &in, &err);
        if (q < 0) {
                api_reply_msb_error(r, q, &err);
                return;
        }
        api_reply_json(r, status, api_sandbox_json(in));
        msb_sandbox_info_free(in, 1);
}

static bool name_ok(struct api_req *r, const char *name)
{
        struct msb_error err = {0};
        if (msb_sandbox_name_check(name, &err) < 0) {
                api_reply_error(r, 404, "not_found", NULL, "no sandbox named '%s': %s", name, err.message);
                return false;
        }
        return true;
}

json_t *api_create_once(struct msb_ctx *ctx, json_t *body, struct api_fail *f)
{
        struct msb_run_opts *o;
        msb_run_opts_new(&o);
        struct api_create c = {0};
        struct api_decode_err de = {0};
        if (api_create_decode(body, o, &c, &de) < 0) {
                api_fail_decode(f, &de);
                msb_run_opts_free(o);
                return NULL;
        }
        char gen[32];
        if (!c.name)
                msb_sandbox_name_random(gen);
        const char *name = c.name ? c.name : gen;
        struct msb_error err = {0};
        int q = msb_sandbox_create(ctx, name, o, &err);
        msb_run_opts_free(o);
        if (q >= 0 && c.start.value && (q = msb_sandbox_start(ctx, name, 0, &err)) < 0) {
                /* as msb run -d: a sandbox that never ran is not kept */
                struct msb_error e2 = {0};
                msb_sandbox_remove(ctx, name, true, &e2);
        }
        struct msb_sandbox_info *in;
        if (q >= 0)
                q = msb_sandbox_get(ctx, name, &in, &err);
        if (q < 0) {
                api_fail_msb(f, q, &err);
                return NULL;
        }
        json_t *j = api_sandbox_json(in);
        msb_sandbox_info_free(in, 1);
        return j;
}

void api_sandbox_create(struct api_req *r)
{
        struct api_fail f = {0};
        json_t *j = api_create_once(r->ctx, r->body, &f);
        if (j)
                api_reply_json(r, 201, j);
        else
                api_reply_fail(r, &f);
}

/* The label=KEY=VALUE (or label=KEY) filters of a list, every one of which must hold. */
struct filters {
        const char *status;
        const char *labels[16];
        size_t nlabels;
        bool too_many;
};

static enum MHD_Result collect_label(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
        struct filters *f = cls;
        if (strcmp(key, "label") || !value)
                return MHD_YES;
        if (f->nlabels == sizeof(f->labels) / sizeof(f->labels[0]))
                f->too_many = true;
        else
                f->labels[f->nlabels++] = value;
        return MHD_YES;
}

static bool has_label(const struct msb_sandbox_info *in, const char *want)
{
        bool with_value = strchr(want, '=') != NULL;
        size_t kn = strcspn(want, "=");
        for (char **l = in->labels; l && *l; l++)
                if (with_value ? !strcmp(*l, want) : !strncmp(*l, want, kn) && (*l)[kn] == '=')
                        return true;
        return false;
}

static bool keep(const struct msb_sandbox_info *in, const struct filters *f)
{
        if (f->status && strcmp(in->status, f->status))
                return false;
        for (size_t i = 0; i < f->nlabels; i++)
                if (!has_label(in, f->labels[i]))
                        return false;
        return true;
}

void api_sandbox_list(struct api_req *r)
{
        struct filters f = {.status = api_query(r, "status")};
        static const char *const statuses[] = {"created", "running", "stopped", "crashed"};
        if (f.status) {
                size_t i = 0;
                while (i < 4 && strcmp(f.status, statuses[i]))
                        i++;
                if (i == 4) {
                        api_reply_error(r, 400, "bad_request", "status",
                                        "status: expected created, running, stopped or crashed");
                        return;
                }
        }
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_label, &f);
        if (f.too_many) {
                api_reply_error(r, 400, "bad_request", "label", "label: at most 16 filters");
                return;
        }
        struct msb_sandbox_info *v;
        size_t n;
        struct msb_error err = {0};
        int q = msb_sandbox_list(r->ctx, &v, &n, &err);
        if (q < 0) {
                api_reply_msb_error(r, q, &err);
                return;
        }
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
                if (keep(&v[i], &f))
                        json_array_append_new(a, api_sandbox_json(&v[i]));
        msb_sandbox_info_free(v, n);
        api_reply_json(r, 200, json_pack("{s:o}", "sandboxes", a));
}

void api_sandbox_get(struct api_req *r)
{
        if (name_ok(r, r->params[0]))
                reply_sandbox(r, 200, r->params[0]);
}

void api_sandbox_start(struct api_req *r)
{
        const char *name = r->params[0];
        struct api_decode_err de = {0};
        if (api_decode_object(&de, "", r->body, NULL, 0, NULL) < 0) {
                api_reply_decode_err(r, &de);
                return;
        }
        struct msb_error err = {0};
        int q;
        if (!name_ok(r, name))
                return;
        if ((q = msb_sandbox_start(r->ctx, name, 0, &err)) < 0) {
                api_reply_msb_error(r, q, &err);
                return;
        }
        reply_sandbox(r, 200, name);
}

struct stop_raw {
        uint64_t grace_ms;
        bool set;
};

static int stop_body(struct api_req *r, uint64_t *grace)
{
        static const struct api_field fields[] = {{"grace_ms", api_read_uint, 0, 0, GRACE_MS_MAX}};
        struct api_decode_err de = {0};
        *grace = GRACE_MS_DEFAULT;
        if (api_decode_object(&de, "", r->body, fields, 1, grace) < 0) {
                api_reply_decode_err(r, &de);
                return -1;
        }
        return 0;
}

void api_sandbox_stop(struct api_req *r)
{
        const char *name = r->params[0];
        uint64_t grace;
        if (stop_body(r, &grace) < 0 || !name_ok(r, name))
                return;
        struct msb_error err = {0};
        int q = msb_sandbox_stop(r->ctx, name, (unsigned)grace, &err);
        if (q < 0) {
                api_reply_msb_error(r, q, &err);
                return;
        }
        reply_sandbox(r, 200, name);
}

void api_sandbox_restart(struct api_req *r)
{
        const char *name = r->params[0];
        uint64_t grace;
        if (stop_body(r, &grace) < 0 || !name_ok(r, name))
                return;
        struct msb_error err = {0};
        int q = 0;
        if (msb_sandbox_running(r->ctx, name))
                q = msb_sandbox_stop(r->ctx, name, (unsigned)grace, &err);
        if (q >= 0)
                q = msb_sandbox_start(r->ctx, name, 0, &err);
        if (q < 0) {
                api_reply_msb_error(r, q, &err);
                return;
        }
        reply_sandbox(r, 200, name);
}

int api_read_signal(struct api_decode_err *de, const struct api_field *f, const char *field, json_t *v, void *out)
{
        int sig = -1;
        if (json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 64)
                sig = (int)json_integer_value(v);
        else if (json_is_string(v))
                sig = msb_signal_parse(json_string_value(v));
        if (sig < 0)
                return api_bad(de, field, "expected a signal: a number from 1 to 64 or a name such as \"TERM\"");
        *(int *)out = sig;
        return 0;
}

void api_sandbox_kill(struct api_req *r)
{
        const char *name = r->params[0];
        static const struct api_field fields[] = {{"signal", api_read_signal, 0, 0, 0}};
        struct api_decode_err de = {0};
        int sig = SIGKILL;
        if (api_decode_object(&de, "", r->body, fields, 1, &sig) < 0) {
                api_reply_decode_err(r, &de);
                return;
        }
        if (!name_ok(r, name))
                return;
        struct msb_error err = {0};
        int q = msb_sandbox_kill(r->ctx, name, sig, &err);
        if (q < 0) {
                api_reply_msb_error(r, q, &err);
                return;
        }
        reply_sandbox(r, 200, name);
}

void api_sandbox_wait(struct api_req *r)
{
        const char *name = r->params[0];
        struct api_decode_err de = {0};
        if (api_decode_object(&de, "", r->body, NULL, 0, NULL) < 0) {
                api_reply_decode_err(r, &de);
                return;
        }
        if (!name_ok(r, name))
                return;
        struct msb_error err = {0};
        int status = -1;
        int q = msb_sandbox_wait(r->ctx, name, &status, &err);
        if (q < 0) {
                api_reply_msb_error(r, q, &err);
                return;
        }
        api_reply_json(r, 200, json_pack("{s:s, s:i}", "name", name, "exit_code", status));
}

void api_sandbox_metrics(struct api_req *r)
{
        const char *name = r->params[0];
        if (!name_ok(r, name))
                return;
        struct msb_sandbox_metrics m;
        struct msb_error err = {0};
        int q = msb_sandbox_metrics(r->ctx, name, &m, &err);
        if (q < 0) {
                api_reply_msb_error(r, q, &err);
                return;
        }
        api_reply_json(r, 200,
                       json_pack("{s:s, s:b, s:f, s:I, s:I, s:I, s:o, s:o}", "name", name, "running", m.running,
                                 "cpu_seconds", m.cpu_seconds, "memory_bytes", (json_int_t)m.memory_bytes,
                                 "disk_bytes", (json_int_t)m.disk_bytes, "disk_size_bytes",
                                 (json_int_t)m.disk_size_bytes, "net_rx_bytes",
                                 m.net_rx_bytes >= 0 ? json_integer(m.net_rx_bytes) : json_null(), "net_tx_bytes",
                                 m.net_tx_bytes >= 0 ? json_integer(m.net_tx_bytes) : json_null()));
}

void api_sandbox_delete(struct api_req *r)
{
        const char *name = r->params[0];
        bool force = false;
        if (api_query_bool(r, "force", &force) < 0 || !name_ok(r, name))
                return;
        struct msb_error err = {0};
        int q = msb_sandbox_remove(r->ctx, name, force, &err);
        if (q < 0) {
                api_reply_msb_error(r, q, &err);
                return;
        }
        api_reply_empty(r, 204);
}
