/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-fs server backends.  Today: QEMU 7.2's C virtiofsd from Debian.  It
 * has no read-only mode, so read-only shares rely on the guest's mount flags;
 * our own server (a later issue) will enforce it on the host.
 */
#define _GNU_SOURCE
#include <stdio.h>

#include "internal.h"

static const char *virtiofsd_binary(void)
{
        const char *p = getenv("MSB_VIRTIOFSD");
        return p && *p ? p : "/usr/lib/qemu/virtiofsd";
}

static char **virtiofsd_argv(const char *dir, int listen_fd, bool read_only)
{
        char **v = NULL;
        strv_push(&v, virtiofsd_binary());
        strv_push_take(&v, xasprintf("--fd=%d", listen_fd));
        strv_push(&v, "-o");
        strv_push_take(&v, xasprintf("source=%s", dir));
        /* An image root never changes under a running guest, so the guest
         * may cache it fully; volumes may change on the host at any time. */
        strv_push(&v, "-o");
        strv_push(&v, read_only ? "cache=always" : "cache=auto");
        strv_push(&v, "-o");
        strv_push(&v, "sandbox=namespace");
        strv_push(&v, "-o");
        strv_push(&v, "log_level=err");
        return v;
}

static const struct fsd_backend virtiofsd_backend = {
        .name = "virtiofsd",
        .argv = virtiofsd_argv,
};

const struct fsd_backend *fsd_backend_default(void)
{
        return &virtiofsd_backend;
}
