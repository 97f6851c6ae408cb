/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb images: the images of the user's store and the system one, with
 * their sizes and creation times.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/util.h"
#include "lib/ctx.h"
#include "lib/image/image.h"

static char *ref_name_from_file(const char *f)
{
        char *out = xmalloc(strlen(f) + 1), *o = out;
        for (const char *s = f; *s; s++) {
                unsigned v;
                if (*s == '%' && sscanf(s + 1, "%2X", &v) == 1 && isxdigit((unsigned char)s[1]) &&
                    isxdigit((unsigned char)s[2])) {
                        *o++ = (char)v;
                        s += 2;
                } else
                        *o++ = *s;
        }
        *o = 0;
        return out;
}

static uint64_t tree_bytes(int dirfd, const char *name, int depth)
{
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return 0;
        uint64_t sum = (uint64_t)st.st_blocks * 512;
        if (!S_ISDIR(st.st_mode) || depth > 64)
                return sum;
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return sum;
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return sum;
        }
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        sum += tree_bytes(fd, de->d_name, depth + 1);
        return sum;
}

/* When manifest mhex's image was made, from its config; 0 if unknown. */
static time_t image_created(int sfd, const char *mhex)
{
        struct msb_error ig;
        json_auto_t *m = img_load_blob_json(sfd, mhex, &ig, "manifest");
        const char *chex;
        if (!m || !img_digest_hex(img_desc_digest(json_object_get(m, "config")), &chex))
                return 0;
        json_auto_t *c = img_load_blob_json(sfd, chex, &ig, "config");
        const char *created = json_string_value(json_object_get(c, "created"));
        struct tm tm = {0};
        if (created && strptime(created, "%Y-%m-%dT%H:%M:%S", &tm))
                return timegm(&tm);
        return 0;
}

/* Append the images of the store at root to *v. */
static int store_list(const char *root, bool system, struct msb_image_info **v, size_t *n, struct msb_error *err)
{
        _cleanup_close_ int sfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sfd < 0)
                return errno == ENOENT ? 0 : msb_err_errno(err, errno, "image store %s", root);
        _cleanup_close_ int rfd = openat(sfd, "refs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_closedir_ DIR *d = rfd >= 0 ? fdopendir_dup(rfd) : NULL;
        if (!d)
                return 0;
        struct dirent *de;
        while ((de = readdir_no_dot(d))) {
                _cleanup_free_ char *line = NULL;
                if (read_file_at(rfd, de->d_name, 4096, &line, NULL) < 0)
                        continue;
                line[strcspn(line, "\n")] = 0;
                const char *mhex;
                if (!img_digest_hex(line, &mhex))
                        continue;
                struct msb_image_info ii = {.system = system};
                ii.name = ref_name_from_file(de->d_name);
                ii.id = strndup(mhex, 12);
                _cleanup_free_ char *rp = xasprintf("rootfs/%s", mhex);
                ii.size = tree_bytes(sfd, rp, 0);
                ii.created = image_created(sfd, mhex);
                *v = xrealloc(*v, (*n + 1) * sizeof(**v));
                (*v)[(*n)++] = ii;
        }
        return 0;
}

int msb_image_list(struct msb_ctx *ctx, struct msb_image_info **ret, size_t *ret_n, struct msb_error *err)
{
        *ret = NULL;
        *ret_n = 0;
        _cleanup_free_ char *mine = xasprintf("%s/images", ctx->data_dir);
        _cleanup_free_ char *sys = ctx->system_dir ? xasprintf("%s/images", ctx->system_dir) : NULL;
        struct msb_image_info *v = NULL;
        size_t n = 0;
        int r = store_list(mine, false, &v, &n, err);
        if (r == 0 && sys && strcmp(sys, mine))
                r = store_list(sys, true, &v, &n, err);
        if (r < 0) {
                msb_image_list_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

void msb_image_list_free(struct msb_image_info *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(v[i].name);
                free(v[i].id);
        }
        free(v);
}
