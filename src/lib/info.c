/* SPDX-License-Identifier: Apache-2.0 */
/* msb info: the kernel, accelerator, VMM and fs server a run would use. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "common/util.h"
#include "proc.h"
#include "netopts.h"

/* First line of a command's stdout (with a deadline), or "unknown". */
static char *first_line(char *const argv[])
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return xstrdup("unknown");
        pid_t pid;
        int pidfd;
        int r = proc_spawn(argv, -1, p[1], p[1], -1, &pid, &pidfd);
        close(p[1]);
        if (r < 0) {
                close(p[0]);
                return xasprintf("unknown (%s)", errno_text(r));
        }
        char buf[512];
        size_t len = 0;
        for (;;) {
                struct pollfd pf = {.fd = p[0], .events = POLLIN};
                if (poll(&pf, 1, 5000) <= 0)
                        break;
                ssize_t n = read(p[0], buf + len, sizeof(buf) - 1 - len);
                if (n <= 0)
                        break;
                len += (size_t)n;
                if (len == sizeof(buf) - 1 || memchr(buf, '\n', len))
                        break;
        }
        close(p[0]);
        proc_kill_wait(pid, &pidfd);
        buf[len] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return xstrdup(len ? buf : "unknown");
}

/* passt 2025's --version exits without flushing a piped stdout: the build
 * set-up made (scripts/passt-build.sh) writes its version beside it. */
static char *passt_version(const char *passt)
{
        _cleanup_free_ char *dir = xstrdup(passt);
        char *slash = strrchr(dir, '/');
        if (slash) {
                *slash = '\0';
                _cleanup_free_ char *f = xasprintf("%s/version", dir);
                _cleanup_free_ char *v = NULL;
                size_t len;
                if (read_file_at(AT_FDCWD, f, 256, &v, &len) == 0 && len > 0) {
                        v[strcspn(v, "\n")] = '\0';
                        return xasprintf("%s (built by set-up from Debian trixie's source)", v);
                }
        }
        char *pv[] = {(char *)passt, "--version", NULL};
        return first_line(pv);
}

void msb_info_free(struct msb_info *i)
{
        if (!i)
                return;
        free(i->data_dir);
        free(i->runtime_dir);
        free(i->kernel);
        free(i->kernel_release);
        free(i->kernel_flavor);
        free(i->initramfs);
        free(i->accel);
        free(i->accel_why);
        free(i->qemu_version);
        free(i->fs_server);
        free(i->fs_server_version);
        free(i->system_dir);
        free(i->passt);
        free(i->passt_version);
        free(i);
}

int msb_info_get(struct msb_ctx *ctx, struct msb_info **ret, struct msb_error *err)
{
        struct msb_kit kit = {0};
        int r = msb_kit_prepare(ctx, &kit, err);
        if (r < 0)
                return r;
        enum msb_accel a;
        char *why = NULL;
        r = msb_accel_resolve(ctx, MSB_ACCEL_AUTO, &a, &why, err);
        if (r < 0) {
                msb_kit_free(&kit);
                return r;
        }
        struct msb_info *i = xcalloc(1, sizeof(*i));
        i->data_dir = xstrdup(ctx->data_dir);
        i->runtime_dir = xstrdup(ctx->runtime_dir);
        i->system_dir = xstrdup(ctx->system_dir);
        i->kernel = TAKE_PTR(kit.kernel);
        i->kernel_release = TAKE_PTR(kit.release);
        i->kernel_flavor = xstrdup(kit.flavor);
        i->initramfs = TAKE_PTR(kit.initramfs);
        i->accel = xstrdup(a == MSB_ACCEL_KVM ? "kvm" : "tcg");
        i->accel_why = why;
        char *qv[] = {(char *)vmm_qemu_binary(), "--version", NULL};
        i->qemu_version = first_line(qv);
        const struct fsd_backend *b = fsd_backend_find(NULL);
        if (!b)
                b = fsd_backend_find("msb");
        char **fv = b->argv(&(struct fsd_share){.path = "/", .read_only = true}, 3);
        i->fs_server = xasprintf("%s (%s)", b->name, fv[0]);
        char *vv[] = {fv[0], "--version", NULL};
        i->fs_server_version = first_line(vv);
        strv_free(fv);
        i->passt = msb_passt_binary(ctx);
        if (i->passt)
                i->passt_version = passt_version(i->passt);
        msb_kit_free(&kit);
        *ret = i;
        return 0;
}
