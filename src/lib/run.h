/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The steps of a VM's start, shared between the files that take them:
 * plan.c (what to run), image_view.c (what the host reads from the image
 * first), rundir.c (the runtime dir), shares.c (the virtio-fs servers),
 * boot.c (QEMU, the first messages, teardown), failure.c (why it stopped)
 * and run.c (the ephemeral run).  What other subsystems use of a VM is
 * in vm.h.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "vm.h"

/* plan.c: resolve what to run before anything is started (the fs backend,
 * the image or --rootfs, the main command, the kernel kit, the
 * accelerator), filling vm. */
int vm_plan(struct vm *vm, struct msb_ctx *ctx, const struct msb_run_opts *o, const struct vm_opts *vo,
            struct msb_error *err);

/* image_view.c: the main command's ids (o's, or the image's for vm->user),
 * the path vm->argv[0] execs and the files to read ahead, from the image
 * root where no volume changes what the guest sees; left unset for the
 * guest otherwise.  < 0 only for a user the image does not have. */
int host_resolve_main(struct vm *vm, const struct msb_run_opts *o, struct msb_error *err);

/* rundir.c: make and lock the runtime dir (a pool's VM's is taken over),
 * after removing the leftovers of runs that were killed. */
int vm_runtime_dir(struct vm *vm, struct msb_ctx *ctx, struct msb_error *err);

/* shares.c: start one virtio-fs server (argv takes its listening socket as
 * fd 3) and add its share, or configure a warm one (sb->warm). */
int add_server(struct sandbox *sb, char **argv_for_fd3, const char *what, struct msb_error *err);
/* shares.c: the servers for the image root and the volumes, and the mounts
 * agentd makes (vm->mounts: parents first, then the root's steps). */
int vm_shares(struct vm *vm, const struct msb_run_opts *o, struct msb_error *err);

/* failure.c: whether helper c has exited by itself with an error, how
 * ("exit status 2", "killed by signal 9") in how; its status stays for the
 * reaper. */
bool child_failed(const struct child *c, char *how, size_t howsz, bool *ret_signaled);

/* boot.c: ms agentd has to answer in ($MSB_BOOT_TIMEOUT seconds, else by
 * accelerator). */
int boot_timeout_ms(enum msb_accel a);
