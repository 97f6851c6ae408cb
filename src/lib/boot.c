/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VM's life: vm_start (plan, runtime dir, servers, network, QEMU, then
 * HELLO, SETUP and the main EXEC queued for agentd), a pool's VM booted
 * with no sandbox yet, and teardown.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "proc.h"
#include "common/users.h"
#include "proto/proto.h"
#include "run.h"
#include "settings.h"

_Static_assert(IDS_MAX_GROUPS <= MSB_PROTO_MAX_GROUPS, "groups must fit a RUN message");

static void sandbox_teardown(struct sandbox *sb)
{
        /* signal everyone first: QEMU's and the servers' exits (address
         * space, namespaces) then overlap instead of queueing */
        proc_kill(sb->qemu.pid, sb->qemu.pidfd);
        for (size_t i = 0; i < sb->nfsd; i++)
                proc_kill(sb->fsd[i].pid, sb->fsd[i].pidfd);
        if (sb->qemu.pid > 0)
                proc_kill_wait(sb->qemu.pid, &sb->qemu.pidfd);
        console_stop(sb);
        for (size_t i = 0; i < sb->nfsd; i++) {
                proc_kill_wait(sb->fsd[i].pid, &sb->fsd[i].pidfd);
                free(sb->fsd[i].what);
                free(sb->fsd[i].log);
        }
        free(sb->qemu.what);
        for (size_t i = 0; i < sb->nshares; i++) {
                free(sb->shares[i].tag);
                free(sb->shares[i].socket_path);
        }
        if (sb->ctl >= 0)
                close(sb->ctl);
        warm_release(sb);
        if (sb->dir) {
                rm_rf(sb->dir);
                free(sb->dir);
        }
        if (sb->lock_fd >= 0)
                close(sb->lock_fd);
        free(sb->console);
        free(sb->net_socket);
        free(sb->net_tap);
}

int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int boot_timeout_ms(enum msb_accel a)
{
        /* seconds, 1 to a day; anything else (atoi's overflow included) is
         * ignored for the default */
        const char *e = msb_setting(SET_MSB_BOOT_TIMEOUT);
        if (e && *e) {
                char *end;
                errno = 0;
                long v = strtol(e, &end, 10);
                if (!errno && !*end && v > 0 && v <= 86400)
                        return (int)v * 1000;
        }
        return a == MSB_ACCEL_KVM ? 30000 : 90000;
}

static int vm_qemu(struct vm *vm, const struct msb_run_opts *o, const struct vm_opts *vo, struct msb_error *err)
{
        struct sandbox *sb = &vm->sb;
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                return msb_err_errno(err, errno, "socketpair");
        sb->ctl = sp[0];
        struct vmm_config vc = {
                .qemu = vmm_qemu_binary(),
                .kernel = vm->kit.kernel,
                .initramfs = vm->kit.initramfs,
                .accel = vm->accel,
                .cpus = o->cpus,
                .memory_mib = o->memory_mib,
                .ctl_fd = 3,
                .console_fd = 4,
                .debug = msb_setting(SET_MSB_DEBUG_AGENT) != NULL,
                .tsc_khz = vm->accel == MSB_ACCEL_TCG ? msb_host_tsc_khz(sb->ctx) : 0,
                .acpi = vm->kit.acpi,
                /* a read-write root is mounted after SETUP, not early; a
                 * pool's VM has no root yet */
                .root_tag = o->root_rw || vo->warm ? NULL : sb->shares[0].tag,
                .warm = vo->warm,
                .shares = sb->shares,
                .nshares = sb->nshares,
                .disk = vo->disk,
                .net_socket = sb->net_socket,
                .net_tap = sb->net_tap,
                .net_mac = sb->net_mac,
        };
        _cleanup_strv_ char **qargv = vmm_qemu_argv(&vc);
        _cleanup_free_ char *qlog = xasprintf("%s/qemu.log", sb->dir);
        _cleanup_close_ int qlogfd = open(qlog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        int con = -1;
        int r = console_start(sb, &con, err);
        if (r < 0) {
                close(sp[1]);
                return r;
        }
        r = proc_spawn_fds(qargv, -1, qlogfd, qlogfd, (int[]){sp[1], con}, 2, &sb->qemu.pid, &sb->qemu.pidfd);
        close(sp[1]);
        close(con);
        if (r < 0)
                return msb_err_errno(err, r, "cannot start %s", qargv[0]);
        sb->qemu.what = xstrdup("QEMU");
        fcntl(sb->ctl, F_SETFL, fcntl(sb->ctl, F_GETFL) | O_NONBLOCK);
        return console_run(sb, err);
}

/* An EXEC's confinement (msb_confine) */
void exec_confine(struct msb_exec_msg *m, const struct msb_confine *c)
{
        m->flags |= MSB_EXEC_CONFINE | (c->no_new_privs ? MSB_EXEC_NO_NEW_PRIVS : 0);
        memcpy(m->caps, c->caps, sizeof(m->caps));
        m->nseccomp = (uint32_t)c->seccomp_len;
        m->seccomp = (uint8_t *)c->seccomp;
}

/* A pool's VM (pool/): the kernel, a runtime dir, two warm virtio-fs
 * servers (the image root's and the volumes'), a warm msb-netd and QEMU,
 * booting with no sandbox yet. */
int vm_boot_warm(struct vm *vm, const struct msb_run_opts *o, struct msb_error *err)
{
        struct msb_ctx *ctx = vm->sb.ctx;
        _cleanup_free_ char *why = NULL;
        int r = msb_kit_prepare(ctx, &vm->kit, err);
        if (r >= 0)
                r = msb_accel_resolve(ctx, o->accel, &vm->accel, &why, err);
        if (r >= 0)
                r = vm_runtime_dir(vm, ctx, err);
        char *bin = msb_find_helper(SET_MSB_FSD, "msb-fsd");
        char *argv[] = {bin ? bin : "msb-fsd", "--fd=3", "--warm", NULL};
        for (int i = 0; i < 2 && r >= 0; i++)
                r = add_server(&vm->sb, argv, i ? "virtio-fs server for the volumes" : "virtio-fs server for the image root",
                               err);
        free(bin);
        if (r >= 0)
                r = vm_net_warm(vm, err);
        if (r >= 0)
                r = vm_qemu(vm, o, &(struct vm_opts){.warm = true}, err);
        return r;
}

/* HELLO, SETUP and the main EXEC go out at once: they wait in the socket
 * until agentd opens its port, which saves a round trip at every start. */
static int vm_greet(struct vm *vm, const struct msb_run_opts *o, const struct vm_opts *vo, struct msb_error *err)
{
        struct sandbox *sb = &vm->sb;
        vm->hostname = o->hostname ? xstrdup(o->hostname)
                                   : vo->hostname ? xstrdup(vo->hostname) : xasprintf("msb-%.8s", sb->id);
        vm->setup = (struct msb_setup_msg){
                .flags = (vo->disk ? MSB_SETUP_DISK : 0) | (vm->has_net ? MSB_SETUP_NET : 0) |
                         (o->root_rw ? MSB_SETUP_ROOT_RW : 0) | (o->root_rw && o->root_ro ? MSB_SETUP_ROOT_RO : 0),
                .net = vm->net,
                .rootfs_tag = sb->shares[0].tag,
                .hostname = vm->hostname,
                .nmounts = (uint32_t)(o->nvols + o->ntmpfs + o->nsteps),
                .mounts = vm->mounts,
        };
        struct msb_exec_msg *m = &vm->main;
        *m = (struct msb_exec_msg){
                .id = VM_MAIN_ID,
                .flags = MSB_EXEC_MAIN | (o->stdin_forward ? MSB_EXEC_STDIN : 0) | (vo->tty ? MSB_EXEC_TTY : 0),
                .workdir = o->workdir ? o->workdir : (vm->cfg.workdir ? vm->cfg.workdir : ""),
                .user = (char *)vm->user,
                .argc = (uint32_t)strv_len(vm->argv),
                .argv = vm->argv,
                .envc = (uint32_t)strv_len(vm->env),
                .env = vm->env,
                .exec_path = vm->exec_path,
                .prefetch = vm->prefetch,
                .nprefetch = (uint32_t)strv_len(vm->prefetch),
                .rows = vo->tty ? vo->rows : 0,
                .cols = vo->tty ? vo->cols : 0,
                .nrlimits = o->nrlimits,
        };
        memcpy(m->rlimits, o->rlimits, sizeof(m->rlimits));
        if (o->confine_set)
                exec_confine(m, &o->confine);
        if (vm->have_ids) {
                m->flags |= MSB_EXEC_IDS;
                m->uid = vm->ids.uid;
                m->gid = vm->ids.gid;
                m->ngroups = vm->ids.ngroups;
                memcpy(m->groups, vm->ids.groups, vm->ids.ngroups * sizeof(vm->ids.groups[0]));
                m->home = vm->ids.home;
        }
        msb_enc_hello(&vm->out, MSB_PROTO_VERSION, "msb");
        if (msb_enc_setup(&vm->out, &vm->setup) < 0 ||
            (m->argc && !vo->hold_main && msb_enc_exec(&vm->out, m) < 0))
                return msb_err(err, E2BIG, "the command line and environment are too large");
        vm->boot_started = mono_ms();
        vm->boot_deadline = vm->boot_started + boot_timeout_ms(vm->accel);
        return 0;
}

struct vm *vm_new(struct msb_ctx *ctx, const struct msb_run_opts *o)
{
        struct vm *vm = xcalloc(1, sizeof(*vm));
        vm->sb = (struct sandbox){.ctx = ctx, .o = o, .lock_fd = -1, .ctl = -1};
        vm->sb.qemu.pidfd = -1;
        return vm;
}

int vm_start(struct msb_ctx *ctx, const struct msb_run_opts *o, const struct vm_opts *vo, struct vm **ret,
             struct msb_error *err)
{
        struct vm *vm = vm_new(ctx, o);
        int r = vm_plan(vm, ctx, o, vo, err);
        if (r >= 0)
                pool_take(vm, o, vo);
        if (r >= 0)
                r = vm_runtime_dir(vm, ctx, err);
        if (r >= 0)
                r = vm_shares(vm, o, err);
        if (r >= 0 && vm->sb.warm)
                r = warm_finish_shares(&vm->sb, err);
        if (r >= 0)
                r = vm_net(vm, o, err);
        if (r >= 0 && !vm->sb.warm)
                r = vm_qemu(vm, o, vo, err);
        if (r >= 0)
                r = vm_greet(vm, o, vo, err);
        if (r >= 0 && vm->sb.warm) {
                /* the guest starts on its SETUP while the servers confine
                 * themselves; what does not fit the socket now goes in the
                 * relay's loop */
                ssize_t n = write(vm->sb.ctl, msb_buf_head(&vm->out), msb_buf_pending(&vm->out));
                if (n > 0)
                        msb_buf_consume(&vm->out, (size_t)n);
                r = warm_settle(&vm->sb, err);
        }
        if (r < 0) {
                vm_free(vm);
                return r;
        }
        *ret = vm;
        return 0;
}

void vm_free(struct vm *vm)
{
        if (!vm)
                return;
        sandbox_teardown(&vm->sb);
        msb_kit_free(&vm->kit);
        msb_image_config_free(&vm->cfg);
        free(vm->rootfs);
        free(vm->hostname);
        free(vm->exec_path);
        strv_free(vm->argv);
        strv_free(vm->env);
        strv_free(vm->prefetch);
        msb_buf_free(&vm->out);
        free(vm);
}
