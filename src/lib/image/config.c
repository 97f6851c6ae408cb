/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The image config blob (untrusted JSON): Entrypoint, Cmd, Env, WorkingDir
 * and User, checked as it is parsed, for a run to use.
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <string.h>

#include "common/util.h"
#include "lib/image/image.h"

#define MAX_CONFIG_LIST 4096u /* entries in Env / Cmd / Entrypoint */

void msb_image_config_free(struct msb_image_config *c)
{
        strv_free(c->entrypoint);
        strv_free(c->cmd);
        strv_free(c->env);
        free(c->workdir);
        free(c->user);
        memset(c, 0, sizeof(*c));
}

static int json_strv(json_t *a, char ***ret, const char *field, struct msb_error *err)
{
        *ret = NULL;
        if (!a || json_is_null(a))
                return 0;
        if (!json_is_array(a) || json_array_size(a) > MAX_CONFIG_LIST)
                return msb_err(err, EINVAL, "image config: %s must be an array of at most %u strings", field,
                               MAX_CONFIG_LIST);
        char **v = xcalloc(1, sizeof(char *));
        size_t i;
        json_t *x;
        json_array_foreach(a, i, x)
        {
                if (!json_is_string(x) || strlen(json_string_value(x)) != json_string_length(x)) {
                        strv_free(v);
                        return msb_err(err, EINVAL, "image config: %s[%zu] is not a string", field, i);
                }
                strv_push(&v, json_string_value(x));
        }
        *ret = v;
        return 0;
}

int msb_image_config_parse(const char *json, size_t len, struct msb_image_config *ret, struct msb_error *err)
{
        json_error_t je;
        json_t *root = json_loadb(json, len, 0, &je);
        if (!root || !json_is_object(root)) {
                json_decref(root);
                return msb_err(err, EINVAL, "image config is not a JSON object");
        }
        struct msb_image_config c = {0};
        json_t *cfg = json_object_get(root, "config");
        int r = 0;
        if (cfg && json_is_object(cfg)) {
                r = json_strv(json_object_get(cfg, "Entrypoint"), &c.entrypoint, "Entrypoint", err);
                if (r == 0)
                        r = json_strv(json_object_get(cfg, "Cmd"), &c.cmd, "Cmd", err);
                if (r == 0)
                        r = json_strv(json_object_get(cfg, "Env"), &c.env, "Env", err);
                for (char **e = c.env; r == 0 && e && *e; e++)
                        if (!strchr(*e, '=') || **e == '=')
                                r = msb_err(err, EINVAL, "image config: Env entry '%s' is not KEY=VALUE", *e);
                json_t *w = json_object_get(cfg, "WorkingDir");
                if (r == 0 && json_is_string(w) && json_string_length(w) > 0) {
                        c.workdir = xstrdup(json_string_value(w));
                        if (c.workdir[0] != '/')
                                r = msb_err(err, EINVAL, "image config: WorkingDir '%s' is not absolute", c.workdir);
                }
                json_t *u = json_object_get(cfg, "User");
                if (r == 0 && json_is_string(u) && json_string_length(u) > 0)
                        c.user = xstrdup(json_string_value(u));
        } else if (cfg && !json_is_null(cfg))
                r = msb_err(err, EINVAL, "image config: 'config' is not an object");
        json_decref(root);
        if (r < 0) {
                msb_image_config_free(&c);
                return r;
        }
        *ret = c;
        return 0;
}

int img_config_check(int sfd, const char *chex, const char *what, char **ret_json, size_t *ret_len,
                     struct msb_error *err)
{
        _cleanup_free_ char *p = xasprintf("blobs/sha256/%s", chex);
        _cleanup_free_ char *cj = NULL;
        size_t cl;
        int r = read_file_at(sfd, p, IMAGE_MAX_JSON, &cj, &cl);
        if (r < 0)
                return msb_err_errno(err, r, "%s", what);
        struct msb_image_config c;
        r = msb_image_config_parse(cj, cl, &c, err);
        if (r < 0)
                return r;
        msb_image_config_free(&c);
        if (ret_json) {
                *ret_json = TAKE_PTR(cj);
                *ret_len = cl;
        }
        return 0;
}
