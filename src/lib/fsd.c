/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-fs server backends.  "msb" is our own (src/fsd, msb-fsd): it
 * enforces read-only on the host, serves single files, keeps guest ownership
 * off host inodes and runs unprivileged.  "virtiofsd" is QEMU 7.2's C server
 * from Debian, kept as the reference we measure against: root only, no
 * read-only mode (read-only there relies on the guest's mount flags), and
 * guest chmod/chown land on host inodes.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "vmm.h"
#include "settings.h"

static const char *virtiofsd_binary(void)
{
        const char *p = msb_setting_nonempty(SET_MSB_VIRTIOFSD);
        return p ? p : "/usr/lib/qemu/virtiofsd";
}

bool fsd_virtiofsd_given(void)
{
        return msb_setting_is_set(SET_MSB_VIRTIOFSD);
}

const char *fsd_backend_asked(const char *name)
{
        return name ? name : msb_setting(SET_MSB_FS_BACKEND);
}

static char **virtiofsd_argv(const struct fsd_share *s, int listen_fd)
{
        char **v = NULL;
        strv_push(&v, virtiofsd_binary());
        strv_push_take(&v, xasprintf("--fd=%d", listen_fd));
        strv_push(&v, "-o");
        strv_push_take(&v, xasprintf("source=%s", s->path));
        /* An image root never changes under a running guest, so the guest
         * may cache it fully; volumes may change on the host at any time. */
        strv_push(&v, "-o");
        strv_push(&v, s->rootfs ? "cache=always" : "cache=auto");
        strv_push(&v, "-o");
        strv_push(&v, "sandbox=namespace");
        strv_push(&v, "-o");
        strv_push(&v, "log_level=err");
        return v;
}

static char *msb_fsd_binary(void)
{
        char *p = msb_find_helper(SET_MSB_FSD, "msb-fsd");
        return p ? p : xstrdup("msb-fsd");
}

static char **msb_fsd_argv(const struct fsd_share *s, int listen_fd)
{
        char **v = NULL;
        strv_push_take(&v, msb_fsd_binary());
        strv_push_take(&v, xasprintf("--fd=%d", listen_fd));
        strv_push(&v, "--path");
        strv_push(&v, s->path);
        if (s->file)
                strv_push(&v, "--file");
        if (s->read_only)
                strv_push(&v, "--ro");
        if (s->rootfs && s->read_only)
                strv_push(&v, "--immutable");
        strv_push(&v, "--owner");
        strv_push(&v, s->owner_passthrough ? "passthrough" : "virtual");
        /* the image root never changes while it is used: cache it for as
         * long as the guest likes; volumes may change on the host */
        strv_push(&v, "--timeout");
        strv_push(&v, s->rootfs ? "86400" : "1");
        return v;
}

static char **msb_fsd_argv_multi(const struct fsd_share *s, size_t n, int listen_fd)
{
        char **v = NULL;
        strv_push_take(&v, msb_fsd_binary());
        strv_push_take(&v, xasprintf("--fd=%d", listen_fd));
        strv_push(&v, "--timeout");
        strv_push(&v, "1");
        for (size_t i = 0; i < n; i++) {
                strv_push(&v, "--volume");
                strv_push_take(&v, xasprintf("%s,%s,%s:%s", s[i].file ? "file" : "dir", s[i].read_only ? "ro" : "rw",
                                             s[i].owner_passthrough ? "passthrough" : "virtual", s[i].path));
        }
        return v;
}

static const struct fsd_backend backends[] = {
        {.name = "msb", .argv = msb_fsd_argv, .argv_multi = msb_fsd_argv_multi, .enforces_ro = true, .needs_root = false, .files = true},
        {.name = "virtiofsd", .argv = virtiofsd_argv, .enforces_ro = false, .needs_root = true, .files = false},
};

const struct fsd_backend *fsd_backend_find(const char *name)
{
        if (!name || !*name) {
                name = fsd_backend_asked(NULL);
                if (!name || !*name)
                        name = "msb";
        }
        for (size_t i = 0; i < ARRAY_SIZE(backends); i++)
                if (!strcmp(backends[i].name, name))
                        return &backends[i];
        return NULL;
}
