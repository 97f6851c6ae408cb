/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VM's runtime dir, <runtime>/<id>/: made, locked and marked with the
 * image root it uses; a killed run's leftovers removed.
 *
 * It holds a lock file (flock held for the whole run), the console log,
 * QEMU's and the servers' stderr, and the vhost-user sockets.  It is
 * removed on every exit path (boot.c's teardown); a run that was SIGKILLed
 * leaves it unlocked, and the next run removes it (its children died with
 * it through PDEATHSIG).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "common/util.h"
#include "run.h"

static void cleanup_stale(struct msb_ctx *ctx)
{
        _cleanup_closedir_ DIR *d = opendir(ctx->runtime_dir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir_no_dot(d))) {
                _cleanup_free_ char *lock = xasprintf("%s/%s/lock", ctx->runtime_dir, de->d_name);
                _cleanup_close_ int fd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0) {
                        /* no lock file: only remove dirs old enough to not
                         * be a run that is still being set up */
                        struct stat st;
                        _cleanup_free_ char *dir = xasprintf("%s/%s", ctx->runtime_dir, de->d_name);
                        if (stat(dir, &st) == 0 && time(NULL) - st.st_mtime > 60) {
                                msb_log(ctx, 1, "removing stale sandbox dir %s", dir);
                                rm_rf_at(dirfd(d), de->d_name);
                        }
                        continue;
                }
                if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
                        msb_log(ctx, 1, "removing leftovers of sandbox %s", de->d_name);
                        rm_rf_at(dirfd(d), de->d_name);
                }
        }
}

static int vm_rootfs_marker(struct vm *vm, struct msb_ctx *ctx)
{
        struct sandbox *sb = &vm->sb;
        msb_log(ctx, 1, "sandbox %s, runtime dir %s%s", sb->id, sb->dir, sb->warm ? " (a pool's VM)" : "");
        if (!vm->rootfs)
                return 0;
        /* which image root this run uses: msb rmi refuses to remove it */
        _cleanup_free_ char *ip = xasprintf("%s/rootfs", sb->dir);
        (void)write_file_replace_at(AT_FDCWD, ip, vm->rootfs, strlen(vm->rootfs), 0600);
        return 0;
}

/* The runtime dir <runtime>/<id>/, locked for as long as the VM runs. */
int vm_runtime_dir(struct vm *vm, struct msb_ctx *ctx, struct msb_error *err)
{
        struct sandbox *sb = &vm->sb;
        if (sb->warm) {
                /* the pool's VM's, taken over (pool/); a killed run's
                 * leftovers are collected as by a boot */
                cleanup_stale(ctx);
                return vm_rootfs_marker(vm, ctx);
        }
        int r = mkdir_p(ctx->runtime_dir, 0700);
        if (r < 0)
                return msb_err_errno(err, r, "cannot create runtime dir %s", ctx->runtime_dir);
        cleanup_stale(ctx);
        random_hex(sb->id, 12);
        /* made and locked under a dot name, which cleanup_stale skips, and
         * only then put in place: another run's cleanup_stale can never
         * take the lock of a dir still being set up */
        _cleanup_free_ char *tmp = xasprintf("%s/.%s", ctx->runtime_dir, sb->id);
        if (mkdir(tmp, 0700) < 0)
                return msb_err_errno(err, errno, "cannot create %s", tmp);
        _cleanup_free_ char *lock = xasprintf("%s/lock", tmp);
        sb->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (sb->lock_fd < 0 || flock(sb->lock_fd, LOCK_EX) < 0) {
                r = msb_err_errno(err, errno, "cannot lock %s", lock);
                rm_rf(tmp);
                return r;
        }
        _cleanup_free_ char *dir = xasprintf("%s/%s", ctx->runtime_dir, sb->id);
        if (rename(tmp, dir) < 0) {
                r = msb_err_errno(err, errno, "cannot create %s", dir);
                rm_rf(tmp);
                return r;
        }
        sb->dir = TAKE_PTR(dir);
        sb->console = xasprintf("%s/console.log", sb->dir);
        return vm_rootfs_marker(vm, ctx);
}
