/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Local image names: what a name may be ("alpine:3.19", ":latest" added),
 * and the refs/ files of the store that point each name at its manifest.
 * The store's layout is described in store.c.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "lib/image/image.h"

int msb_image_name_normalize(const char *name, char **ret, struct msb_error *err)
{
        if (!name || !*name)
                return msb_err(err, EINVAL, "image name is empty");
        size_t n = strlen(name);
        if (n > 255)
                return msb_err(err, EINVAL, "image name '%.40s...' is longer than 255 characters", name);
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || strchr("._-/:@", c)))
                        return msb_err(err, EINVAL,
                                       "image name '%s': character '%c' is not allowed (use lowercase letters, "
                                       "digits and . _ - / :)",
                                       name, c);
        }
        if (name[0] == '/' || name[0] == '.' || name[0] == '-' || strstr(name, "//") || strstr(name, ".."))
                return msb_err(err, EINVAL, "image name '%s' is malformed", name);
        const char *last = strrchr(name, '/');
        const char *colon = strchr(last ? last : name, ':');
        if (colon && !colon[1])
                return msb_err(err, EINVAL, "image name '%s' has an empty tag", name);
        *ret = colon || strchr(name, '@') ? xstrdup(name) : xasprintf("%s:latest", name);
        return 0;
}

char *img_ref_file_name(const char *name)
{
        char *out = xmalloc(strlen(name) * 3 + 1);
        char *o = out;
        for (const char *s = name; *s; s++) {
                if (*s == '/' || *s == ':' || *s == '%' || *s == '@')
                        o += sprintf(o, "%%%02X", (unsigned char)*s);
                else
                        *o++ = *s;
        }
        *o = '\0';
        return out;
}

/* Point name at manifest <hex> (atomically: a reader sees the old or the new). */
int img_write_ref(int store_fd, const char *name, const char *hex, struct msb_error *err)
{
        _cleanup_free_ char *rf = img_ref_file_name(name);
        _cleanup_free_ char *rp = xasprintf("refs/%s", rf);
        _cleanup_free_ char *line = xasprintf("sha256:%s\n", hex);
        int r = write_file_atomic_at(store_fd, rp, line, strlen(line), 0644);
        return r < 0 ? msb_err_errno(err, r, "cannot record image name %s", name) : 0;
}
