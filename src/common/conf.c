/* SPDX-License-Identifier: Apache-2.0 */
/* Config files of msb and msb-runtime, read line by line (conf.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "error.h"
#include "util.h"

static void known_keys(const struct conf_key *keys, size_t nkeys, char *out, size_t n)
{
        size_t used = 0;
        out[0] = '\0';
        for (size_t k = 0; k < nkeys && used < n; k++) {
                int w = snprintf(out + used, n - used, "%s%s", k ? ", " : "", keys[k].key);
                if (w < 0)
                        break;
                used += (size_t)w;
        }
}

int conf_each(const char *what, const char *path, const struct conf_key *keys, size_t nkeys,
              int (*fn)(char **w, int n, void *ud, const char *where, struct msb_error *err), void *ud,
              struct msb_error *err)
{
        _cleanup_free_ char *data = NULL;
        int r = read_file_at(AT_FDCWD, path, CONF_MAX_BYTES, &data, NULL);
        if (r == -ENOENT)
                return 0;
        if (r == -EINVAL)
                return msb_err(err, EINVAL, "%s %s: not a regular file, or larger than 1 MiB", what, path);
        if (r < 0)
                return msb_err_errno(err, r, "%s %s", what, path);
        int lineno = 0;
        for (char *line = data, *next; line && *line; line = next) {
                /* by hand, not strtok: empty lines count for line numbers */
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                lineno++;
                char *hash = strchr(line, '#');
                if (hash)
                        *hash = 0;
                char *w[CONF_MAX_WORDS + 1] = {0};
                int n = 0;
                for (char *s = NULL, *t = strtok_r(line, " \t\r", &s); t && n <= CONF_MAX_WORDS;
                     t = strtok_r(NULL, " \t\r", &s))
                        w[n++] = t;
                if (n == 0)
                        continue;
                char where[PATH_MAX + 64];
                snprintf(where, sizeof(where), "%s %s line %d", what, path, lineno);
                size_t k = 0;
                while (k < nkeys && strcmp(keys[k].key, w[0]))
                        k++;
                if (k == nkeys) {
                        char known[512];
                        known_keys(keys, nkeys, known, sizeof(known));
                        return msb_err(err, EINVAL, "%s: unknown setting '%.64s' (known: %s)", where, w[0], known);
                }
                bool ok = keys[k].nargs < 0 ? n >= 2 && n <= CONF_MAX_WORDS : n == keys[k].nargs + 1;
                if (!ok)
                        return msb_err(err, EINVAL, "%s: expected '%s'", where, keys[k].usage);
                if ((r = fn(w, n, ud, where, err)) < 0)
                        return r;
        }
        return 0;
}
