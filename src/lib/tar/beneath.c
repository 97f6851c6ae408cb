/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Entry names and their directories, resolved beneath the root being
 * unpacked into: names cleaned ("./", "..", absolute), directories opened
 * (and made) with openat2(RESOLVE_BENEATH), never leaving the root.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "tar.h"
#include "common/util.h"

/*
 * Clean an entry name.  Leading "./" components are dropped; absolute names
 * and ".." components are rejected (other bytes are a name's own business).  Returns NULL (and the
 * reason) on rejection, "" for the root itself.
 */
char *tar_clean_path(const char *in, const char **why)
{
        if (in[0] == '/') {
                *why = "absolute path";
                return NULL;
        }
        size_t n = strlen(in);
        if (n >= TAR_MAX_PATH) {
                *why = "path too long";
                return NULL;
        }
        char *out = xmalloc(n + 1);
        size_t o = 0;
        for (const char *s = in; *s;) {
                size_t k = strcspn(s, "/");
                if (k == 2 && !strncmp(s, "..", 2)) {
                        free(out);
                        *why = "'..' component";
                        return NULL;
                }
                if (k > 0 && !(k == 1 && s[0] == '.')) {
                        if (o)
                                out[o++] = '/';
                        memcpy(out + o, s, k);
                        o += k;
                }
                s += k;
                while (*s == '/')
                        s++;
        }
        out[o] = '\0';
        return out;
}

/* In a copy (nosym) no symlink is followed at all, not even one inside:
 * the guest's links would let it aim later entries, hard links and
 * directory modes anywhere beneath the destination, at the user's files. */
int tar_open_beneath(int rootfd, const char *path, int flags, bool nosym)
{
        struct open_how how = {
                .flags = (uint64_t)(flags | O_CLOEXEC),
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | (nosym ? RESOLVE_NO_SYMLINKS : 0),
        };
        int fd = (int)syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof(how));
        return fd < 0 ? -errno : fd;
}

/* Open (creating as needed) the directory dir beneath rootfd.  Each
 * directory made counts against the image's entries: -E2BIG past them. */
int tar_open_parent(int rootfd, const char *dir, struct tar_opts *o)
{
        int fd = tar_open_beneath(rootfd, dir, O_PATH | O_DIRECTORY, o->copy);
        if (fd != -ENOENT)
                return fd;
        /* create missing components one by one, each resolved beneath root */
        _cleanup_free_ char *p = xstrdup(dir);
        for (char *s = p;; s++) {
                if (*s != '/' && *s != '\0')
                        continue;
                char saved = *s;
                *s = '\0';
                int t = tar_open_beneath(rootfd, p, O_PATH | O_DIRECTORY, o->copy);
                if (t == -ENOENT) {
                        char *slash = strrchr(p, '/');
                        _cleanup_close_ int pfd = -1;
                        const char *base = p;
                        if (slash) {
                                *slash = '\0';
                                pfd = tar_open_beneath(rootfd, p, O_PATH | O_DIRECTORY, o->copy);
                                *slash = '/';
                                base = slash + 1;
                        } else
                                pfd = tar_open_beneath(rootfd, "", O_PATH | O_DIRECTORY, o->copy);
                        if (pfd < 0)
                                return pfd;
                        if (o->entries++ >= o->max_entries)
                                return -E2BIG;
                        if (mkdirat(pfd, base, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        t = tar_open_beneath(rootfd, p, O_PATH | O_DIRECTORY, o->copy);
                }
                if (t < 0)
                        return t;
                close(t);
                *s = saved;
                if (!saved)
                        break;
        }
        return tar_open_beneath(rootfd, dir, O_PATH | O_DIRECTORY, o->copy);
}

void tar_split(char *path, const char **dir, const char **base)
{
        char *slash = strrchr(path, '/');
        if (slash) {
                *slash = '\0';
                *dir = path;
                *base = slash + 1;
        } else {
                *dir = "";
                *base = path;
        }
}
