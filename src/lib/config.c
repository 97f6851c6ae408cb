/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb's config file: $MSB_CONFIG, else $XDG_CONFIG_HOME/msb/config, else
 * ~/.config/msb/config.  One setting per line, words separated by blanks,
 * '#' starts a comment:
 *
 *   mirror DOMAIN URL           registry mirrors (registry.c)
 *   insecure DOMAIN             plain-HTTP registries (registry.c)
 *   unpack-max-bytes SIZE       budget of one image's unpacked files
 *   unpack-max-entries COUNT    and of its entries (src/lib/tar)
 *
 * Every reader goes through msb_config_each, so a line no reader knows is
 * an error whoever reads the file, with its line number.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/conf.h"
#include "common/error.h"
#include "common/util.h"
#include "msb.h"
#include "config.h"
#include "settings.h"

char *msb_config_path(void)
{
        const char *e = msb_setting(SET_MSB_CONFIG);
        if (e && *e)
                return xstrdup(e);
        e = msb_setting(SET_XDG_CONFIG_HOME);
        if (e && *e)
                return xasprintf("%s/msb/config", e);
        e = msb_setting(SET_HOME);
        return e && *e ? xasprintf("%s/.config/msb/config", e) : NULL;
}

static const struct conf_key keys[] = {
        {"mirror", 2, "mirror DOMAIN URL"},
        {"insecure", 1, "insecure DOMAIN"},
        {"unpack-max-bytes", 1, "unpack-max-bytes SIZE"},
        {"unpack-max-entries", 1, "unpack-max-entries COUNT"},
};

int msb_config_each(int (*fn)(char **words, int n, void *ud, const char *where, struct msb_error *err), void *ud,
                    struct msb_error *err)
{
        _cleanup_free_ char *p = msb_config_path();
        if (!p)
                return 0;
        return conf_each("config", p, keys, ARRAY_SIZE(keys), fn, ud, err);
}

struct limits {
        uint64_t *bytes, *entries;
};

static int limits_line(char **w, int n, void *ud, const char *where, struct msb_error *err)
{
        struct limits *l = ud;
        if (!strcmp(w[0], "unpack-max-bytes")) {
                if (msb_parse_size(w[1], l->bytes) < 0 || *l->bytes == 0)
                        return msb_err(err, EINVAL, "%s: unpack-max-bytes '%s' is not a size like 64G or 500M", where,
                                       w[1]);
        } else if (!strcmp(w[0], "unpack-max-entries")) {
                char *end;
                errno = 0;
                unsigned long long v = strtoull(w[1], &end, 10);
                if (errno || *end || v == 0 || w[1][0] == '-')
                        return msb_err(err, EINVAL, "%s: unpack-max-entries '%s' is not a positive count", where,
                                       w[1]);
                *l->entries = v;
        }
        return 0;
}

int msb_config_unpack_limits(uint64_t *bytes, uint64_t *entries, struct msb_error *err)
{
        struct limits l = {bytes, entries};
        return msb_config_each(limits_line, &l, err);
}
