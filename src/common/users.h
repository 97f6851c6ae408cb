/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A docker-style user spec resolved against the text of an image's
 * /etc/passwd and /etc/group (no NSS: agentd is static, and the host reads
 * the image's files, not its own).  Used by msb before the VM starts and by
 * agentd when a volume may cover those files.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "msb-error.h"

#define IDS_MAX_GROUPS 64
#define IDS_MAX_HOME 4096

struct ids {
        uint32_t uid, gid;
        uint32_t groups[IDS_MAX_GROUPS]; /* groups[0] is gid */
        uint32_t ngroups;
        char home[IDS_MAX_HOME];
};

/*
 * spec: "" (root), name, uid, and either with ":group" or ":gid".
 * passwd, group: the files' text (NUL-terminated), NULL when absent.
 * As docker does: an unknown numeric uid runs with gid 0 and HOME=/ (/root
 * for uid 0); an unknown name or group is an error.  Returns 0, or -ENOENT
 * with err saying which name was not found in which file.
 */
int ids_resolve(const char *spec, const char *passwd, const char *group, struct ids *ret, struct msb_error *err);
