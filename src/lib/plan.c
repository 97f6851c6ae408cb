/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VM's plan, resolved before anything is started: the fs backend, the
 * image (pulled if asked or missing) or --rootfs, the main command as
 * docker composes it with its environment and user, the kernel kit and the
 * accelerator.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "run.h"

#define VIRTIOFSD_MAX_VOLUMES 6u

/* Final env: image Env, then -e values overriding by key. */
static char **merge_env(char **image_env, char **user_env)
{
        char **out = NULL;
        for (char **e = image_env; e && *e; e++)
                strv_push(&out, *e);
        for (char **e = user_env; e && *e; e++) {
                size_t k = (size_t)(strchr(*e, '=') - *e);
                bool replaced = false;
                for (char **x = out; x && *x; x++)
                        if (!strncmp(*x, *e, k) && (*x)[k] == '=') {
                                free(*x);
                                *x = xstrdup(*e);
                                replaced = true;
                        }
                if (!replaced)
                        strv_push(&out, *e);
        }
        return out;
}

/* The fs backend, and what it can serve. */
static int vm_backend(struct vm *vm, const struct msb_run_opts *o, struct msb_error *err)
{
        vm->be = fsd_backend_find(o->fs_backend);
        const struct fsd_backend *be = vm->be;
        if (!be)
                return msb_err(err, EINVAL, "fs backend '%s': unknown; use msb or virtiofsd",
                               fsd_backend_asked(o->fs_backend));
        /* QEMU 7.2's virtiofsd refuses to run unprivileged; say so up front
         * rather than as a server that died. */
        if (be->needs_root && geteuid() != 0 && !fsd_virtiofsd_given())
                return msb_err(err, EPERM, "the virtiofsd fs backend (/usr/lib/qemu/virtiofsd) only runs as root; "
                                           "run msb with sudo or use --fs-backend msb");
        if (be->argv_multi)
                return 0;
        /* one device per volume: microvm has 8 virtio-mmio slots, two of
         * them taken by the control port and the image */
        if (o->nvols > VIRTIOFSD_MAX_VOLUMES)
                return msb_err(err, E2BIG,
                               "the %s fs backend takes at most %u volumes (one device each); use --fs-backend msb "
                               "for up to %u",
                               be->name, VIRTIOFSD_MAX_VOLUMES, MAX_VOLUMES);
        for (size_t i = 0; i < o->nvols; i++)
                if (o->vols[i].file)
                        return msb_err(err, ENOTSUP,
                                       "volume '%s:%s': the %s fs backend cannot share a single file; use "
                                       "--fs-backend msb",
                                       o->vols[i].host, o->vols[i].guest, be->name);
        return 0;
}

/* The image root and config (pulled first if asked or missing), or the
 * --rootfs directory. */
static int vm_image(struct vm *vm, struct msb_ctx *ctx, const struct msb_run_opts *o, const struct vm_opts *vo,
                    struct msb_error *err)
{
        if (o->rootfs) {
                vm->rootfs = realpath(o->rootfs, NULL);
                struct stat st;
                if (!vm->rootfs || stat(vm->rootfs, &st) < 0 || !S_ISDIR(st.st_mode))
                        return msb_err(err, ENOENT, "--rootfs '%s': not a directory", o->rootfs);
                return 0;
        }
        int r;
        if (o->pull == MSB_PULL_ALWAYS && (r = msb_image_pull(ctx, o->image, NULL, err)) < 0)
                return r;
        r = msb_image_open(ctx, o->image, &vm->rootfs, &vm->cfg, err);
        if (r == -ENOENT && o->pull == MSB_PULL_MISSING) {
                struct msb_error perr = {0};
                int pr = msb_image_pull(ctx, o->image, NULL, &perr);
                if (pr < 0)
                        return msb_err(err, pr, "image '%s' is not in the local store, and pulling it failed: %s",
                                       o->image, perr.message);
                r = msb_image_open(ctx, o->image, &vm->rootfs, &vm->cfg, err);
        }
        if (r < 0)
                return r;
        if (vo->pinned_rootfs && strcmp(vo->pinned_rootfs, vm->rootfs))
                return msb_err(err, ESTALE,
                               "image '%s' changed since this sandbox was created (pulled again?), and its disk was "
                               "made on the old one: msb rm the sandbox and create it again",
                               o->image);
        return 0;
}

/* The main command as docker composes it, its environment and user; what
 * the host can resolve from the image is resolved here. */
static int vm_main_command(struct vm *vm, struct msb_ctx *ctx, const struct msb_run_opts *o,
                           const struct vm_opts *vo, struct msb_error *err)
{
        if (o->entrypoint_set) {
                if (o->entrypoint && *o->entrypoint)
                        strv_push(&vm->argv, o->entrypoint);
        } else
                for (char **e = vm->cfg.entrypoint; e && *e; e++)
                        strv_push(&vm->argv, *e);
        char **cmd = o->command && o->command[0] ? o->command : (o->entrypoint_set ? NULL : vm->cfg.cmd);
        for (char **e = cmd; e && *e; e++)
                strv_push(&vm->argv, *e);
        if ((!vm->argv || !vm->argv[0]) && !vo->main_optional)
                return msb_err(err, EINVAL, "no command given and the image has no Cmd or Entrypoint: add one "
                                            "after the image name");
        vm->env = merge_env(vm->cfg.env, o->env);
        vm->user = o->user ? o->user : (vm->cfg.user ? vm->cfg.user : "");
        if (!vm->argv || !vm->argv[0])
                return 0;
        int r = host_resolve_main(vm, o, err);
        if (r < 0)
                return r;
        char who[64] = "left to the guest";
        if (vm->have_ids)
                snprintf(who, sizeof(who), "uid %u gid %u", vm->ids.uid, vm->ids.gid);
        msb_log(ctx, 1, "from the image: user %s; %s %s%s; %zu more file(s) to read ahead", who, vm->argv[0],
                vm->exec_path ? "is " : "", vm->exec_path ? vm->exec_path : "left to the guest's PATH search",
                strv_len(vm->prefetch));
        return 0;
}

/* What to run, resolved before anything is started: the image, the main
 * command, its user, the kernel and the accelerator. */
int vm_plan(struct vm *vm, struct msb_ctx *ctx, const struct msb_run_opts *o, const struct vm_opts *vo,
                   struct msb_error *err)
{
        if (!o->image && !o->rootfs)
                return msb_err(err, EINVAL, "no image given: name an image or use --rootfs DIR");
        int r = net_opts_check(o, err);
        if (r >= 0)
                r = vm_backend(vm, o, err);
        if (r >= 0)
                r = vm_image(vm, ctx, o, vo, err);
        if (r >= 0)
                r = vm_main_command(vm, ctx, o, vo, err);
        if (r >= 0)
                r = msb_kit_prepare(ctx, &vm->kit, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *accel_why = NULL;
        r = msb_accel_resolve(ctx, o->accel, &vm->accel, &accel_why, err);
        if (r < 0)
                return r;
        msb_log(ctx, 1, "accelerator: %s (%s)", vm->accel == MSB_ACCEL_KVM ? "kvm" : "tcg", accel_why);
        msb_log(ctx, 1, "kernel: %s (%s, %s kit)", vm->kit.kernel, vm->kit.release, vm->kit.flavor);
        return 0;
}
