/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading OCI documents (untrusted JSON) from a store or a layout:
 * digests, descriptors, indexes and the platform msb picks from them.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "lib/image/image.h"

bool img_digest_hex(const char *digest, const char **ret_hex)
{
        if (!digest || strncmp(digest, "sha256:", 7) != 0)
                return false;
        const char *h = digest + 7;
        if (strlen(h) != 64)
                return false;
        for (int i = 0; i < 64; i++)
                if (!isdigit((unsigned char)h[i]) && !(h[i] >= 'a' && h[i] <= 'f'))
                        return false;
        *ret_hex = h;
        return true;
}

json_t *img_load_json_at(int dirfd, const char *path, struct msb_error *err, const char *what)
{
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r = read_file_beneath(dirfd, path, IMAGE_MAX_JSON, &data, &len);
        if (r == -EFBIG || r == -EINVAL) {
                msb_err(err, r, "%s: cannot read %s: %s", what, path,
                        r == -EFBIG ? "larger than 4 MiB" : "not a regular file");
                return NULL;
        }
        if (r < 0) {
                msb_err_errno(err, r, "%s: cannot read %s", what, path);
                return NULL;
        }
        json_error_t je;
        json_t *j = json_loadb(data, len, 0, &je);
        if (!j || !json_is_object(j)) {
                json_decref(j);
                msb_err(err, EINVAL, "%s: %s is not a JSON object (%s)", what, path, j ? "wrong type" : je.text);
                return NULL;
        }
        return j;
}

const char *img_desc_digest(json_t *d)
{
        return json_string_value(json_object_get(d, "digest"));
}

const char *img_desc_media(json_t *d)
{
        const char *m = json_string_value(json_object_get(d, "mediaType"));
        return m ? m : "";
}

bool img_is_index_media(const char *m)
{
        return !strcmp(m, "application/vnd.oci.image.index.v1+json") ||
               !strcmp(m, "application/vnd.docker.distribution.manifest.list.v2+json");
}

/* From an index, pick linux/amd64. */
json_t *img_index_pick_platform(json_t *index, struct msb_error *err)
{
        json_t *ms = json_object_get(index, "manifests");
        if (!json_is_array(ms) || json_array_size(ms) == 0) {
                msb_err(err, EINVAL, "image index has no manifests");
                return NULL;
        }
        size_t i;
        json_t *d;
        char avail[512] = "";
        json_array_foreach(ms, i, d)
        {
                json_t *p = json_object_get(d, "platform");
                const char *os = json_string_value(json_object_get(p, "os"));
                const char *arch = json_string_value(json_object_get(p, "architecture"));
                if (!p)
                        return d; /* a single-platform layout without platform info */
                if (os && arch && !strcmp(os, "linux") && !strcmp(arch, "amd64"))
                        return d;
                size_t l = strlen(avail);
                snprintf(avail + l, sizeof(avail) - l, "%s%s/%s", l ? ", " : "", os ? os : "?", arch ? arch : "?");
        }
        msb_err(err, ENOENT, "image has no linux/amd64 variant (available: %s)", avail);
        return NULL;
}

json_t *img_load_blob_json(int sfd, const char *hex, struct msb_error *err, const char *what)
{
        _cleanup_free_ char *p = xasprintf("blobs/sha256/%s", hex);
        return img_load_json_at(sfd, p, err, what);
}
