/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VM's virtio-fs servers: one for the image root, then the volumes (one
 * server for all of them, or one each for a backend that cannot), and the
 * mounts agentd makes of them, in order.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/util.h"
#include "proc.h"
#include "run.h"

/* Start one virtio-fs server: msb binds and listens on its socket, the
 * server inherits the listening socket, so QEMU can connect the moment it
 * starts (no wait-for-socket race).  The device gets a random tag, never
 * derived from a path, so two shares can never collide. */
int add_server(struct sandbox *sb, char **argv_for_fd3, const char *what, struct msb_error *err)
{
        if (sb->warm)
                return warm_add_server(sb, argv_for_fd3, what, err);
        size_t i = sb->nshares;
        char tag[33];
        random_hex(tag, 8);
        memmove(tag + 3, tag, 17);
        memcpy(tag, "msb", 3);
        _cleanup_free_ char *sock = xasprintf("%s/fs%zu.sock", sb->dir, i);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(sock) >= sizeof(sa.sun_path))
                return msb_err(err, ENAMETOOLONG, "runtime dir path %s is too long for a unix socket; set MSB_HOME",
                               sb->dir);
        strcpy(sa.sun_path, sock);
        _cleanup_close_ int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        /* two: QEMU, and a warm server's configuration (pool/) */
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 2) < 0)
                return msb_err_errno(err, errno, "cannot create socket %s", sock);
        _cleanup_free_ char *logp = xasprintf("%s/fsd%zu.log", sb->dir, i);
        _cleanup_close_ int logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        struct child *c = &sb->fsd[sb->nfsd];
        int r = proc_spawn(argv_for_fd3, -1, logfd, logfd, lfd, &c->pid, &c->pidfd);
        if (r < 0)
                return msb_err_errno(err, r, "cannot start %s", argv_for_fd3[0]);
        c->what = xstrdup(what);
        c->log = TAKE_PTR(logp);
        sb->nfsd++;
        sb->shares[i].tag = xstrdup(tag);
        sb->shares[i].socket_path = TAKE_PTR(sock);
        sb->nshares++;
        return 0;
}

static int add_share(struct sandbox *sb, const struct fsd_backend *be, const struct fsd_share *share,
                     struct msb_error *err)
{
        _cleanup_strv_ char **argv = be->argv(share, 3);
        _cleanup_free_ char *what = xasprintf("virtio-fs server for %s", share->path);
        return add_server(sb, argv, what, err);
}

/* All volumes behind one device (msb-fsd): any number of them costs one
 * process and one of microvm's eight virtio-mmio slots. */
static int add_volumes(struct sandbox *sb, const struct fsd_backend *be, const struct msb_run_opts *o,
                       struct msb_error *err)
{
        struct fsd_share sh[MAX_VOLUMES];
        for (size_t i = 0; i < o->nvols; i++)
                sh[i] = (struct fsd_share){.path = o->vols[i].host,
                                           .file = o->vols[i].file,
                                           .read_only = o->vols[i].flags & MSB_VOLUME_RO,
                                           .owner_passthrough = o->vols[i].flags & MSB_VOLUME_OWNER_PASSTHROUGH};
        _cleanup_strv_ char **argv = be->argv_multi(sh, o->nvols, 3);
        return add_server(sb, argv, "virtio-fs server for the volumes", err);
}

static int cmp_depth(const void *a, const void *b)
{
        const struct msb_mount_spec *x = a, *y = b;
        size_t dx = 0, dy = 0;
        for (const char *s = x->path; *s; s++)
                dx += *s == '/';
        for (const char *s = y->path; *s; s++)
                dy += *s == '/';
        return dx < dy ? -1 : dx > dy ? 1 : strcmp(x->path, y->path);
}

/* The virtio-fs servers: the image root, then the volumes. */
int vm_shares(struct vm *vm, const struct msb_run_opts *o, struct msb_error *err)
{
        struct sandbox *sb = &vm->sb;
        const struct fsd_backend *be = vm->be;
        /* an OCI bundle's root is written by its container, and its owners
         * are the container's (o->root_rw); an image root never changes */
        int r = add_share(sb, be,
                          &(struct fsd_share){.path = vm->rootfs,
                                              .read_only = !o->root_rw || o->root_ro,
                                              .rootfs = !o->root_rw,
                                              .owner_passthrough = o->root_rw},
                          err);
        if (r < 0)
                return r;
        if (o->nvols && be->argv_multi) {
                r = add_volumes(sb, be, o, err);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < o->nvols; i++) {
                if (be->argv_multi) {
                        snprintf(vm->subs[i], sizeof(vm->subs[i]), "%zu", i);
                } else {
                        vm->subs[i][0] = 0;
                        r = add_share(sb, be,
                                      &(struct fsd_share){.path = o->vols[i].host,
                                                          .read_only = o->vols[i].flags & MSB_VOLUME_RO,
                                                          .owner_passthrough =
                                                                  o->vols[i].flags & MSB_VOLUME_OWNER_PASSTHROUGH},
                                      err);
                        if (r < 0)
                                return r;
                }
                vm->mounts[i] = (struct msb_mount_spec){
                        .tag = sb->shares[be->argv_multi ? 1 : i + 1].tag,
                        .sub = vm->subs[i],
                        .path = o->vols[i].guest,
                        .flags = (o->vols[i].flags & MSB_VOLUME_RO ? MSB_MOUNT_RO : 0) |
                                 (o->vols[i].file ? MSB_MOUNT_FILE : 0) |
                                 (o->vols[i].flags & MSB_VOLUME_NOSUID ? MSB_MOUNT_NOSUID : 0) |
                                 (o->vols[i].flags & MSB_VOLUME_NOEXEC ? MSB_MOUNT_NOEXEC : 0)};
        }
        for (size_t i = 0; i < o->ntmpfs; i++)
                vm->mounts[o->nvols + i] = (struct msb_mount_spec){
                        .tag = o->tmpfs[i].options, .sub = o->tmpfs[i].type, .path = o->tmpfs[i].path,
                        .flags = MSB_MOUNT_KERNFS | o->tmpfs[i].flags};
        /* parents before children: /data before /data/sub */
        qsort(vm->mounts, o->nvols + o->ntmpfs, sizeof(vm->mounts[0]), cmp_depth);
        /* then the steps on what is mounted, in their order */
        for (size_t i = 0; i < o->nsteps; i++)
                vm->mounts[o->nvols + o->ntmpfs + i] = (struct msb_mount_spec){
                        .tag = o->steps[i].value, .sub = "", .path = o->steps[i].path, .flags = o->steps[i].kind};
        return 0;
}
