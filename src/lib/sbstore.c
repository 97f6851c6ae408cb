/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Named sandboxes on disk: <data>/sandboxes/NAME/ holds
 *
 *   config.json  the options it was created with (never changes)
 *   state.json   status, supervisor pid, runtime paths, times, exit code
 *                (replaced atomically by whoever changes it)
 *   run.lock     flock'ed exclusively by the supervisor while it lives: a
 *                sandbox whose state says "running" but whose lock is free
 *                has crashed (its supervisor was killed, the host rebooted)
 *   op.lock      taken by start and rm while they change the sandbox (stop
 *                goes through the supervisor, which serializes it)
 *   disk.img     the writable layer (ext4 made here, written only by the
 *                guest from then on: the host never mounts or reads it)
 *   main.log[.1] the main process's output (CRI format, rotated)
 *
 * A sandbox appears by rename() of a finished temporary dir, and goes by
 * rename() to a temporary name before its files are removed: concurrent
 * creates of one name cannot both win, and no command sees half of one.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sbstore.h"

int msb_sandbox_name_check(const char *name, struct msb_error *err)
{
        size_t n = name ? strlen(name) : 0;
        bool ok = n >= 2 && n <= SB_NAME_MAX && name[0] != '.' && name[0] != '_' && name[0] != '-';
        for (size_t i = 0; ok && i < n; i++) {
                char c = name[i];
                ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                     c == '.' || c == '-';
        }
        if (!ok)
                return msb_err(err, EINVAL,
                               "sandbox name '%s' is invalid: use 2 to %d letters, digits, '_', '.' or '-', "
                               "starting with a letter or digit",
                               name ? name : "", SB_NAME_MAX);
        return 0;
}

void msb_sandbox_name_random(char *out)
{
        memcpy(out, "msb-", 4);
        if (random_hex(out + 4, 4) < 0)
                snprintf(out + 4, 9, "%08x", (unsigned)getpid() ^ (unsigned)time(NULL));
}

char *sb_dir(struct msb_ctx *ctx, const char *name)
{
        return xasprintf("%s/%s", ctx->sandboxes_dir, name);
}

/* ---- state ---- */

void sb_state_free(struct sb_state *st)
{
        free(st->runtime);
        free(st->socket);
        free(st->error);
        free(st->kernel);
        free(st->server_pids);
        memset(st, 0, sizeof(*st));
}

int sb_state_write(const char *dir, const struct sb_state *st)
{
        json_t *j = json_pack("{s:s,s:i,s:I,s:I,s:I,s:i}", "status", st->status, "pid", st->pid, "created",
                              (json_int_t)st->created, "started", (json_int_t)st->started, "finished",
                              (json_int_t)st->finished, "exit_code", st->exit_code);
        if (st->runtime)
                json_object_set_new(j, "runtime_dir", json_string(st->runtime));
        if (st->socket)
                json_object_set_new(j, "socket", json_string(st->socket));
        if (st->error)
                json_object_set_new(j, "error", json_string(st->error));
        if (st->kernel)
                json_object_set_new(j, "kernel", json_string(st->kernel));
        if (st->qemu_pid)
                json_object_set_new(j, "qemu_pid", json_integer(st->qemu_pid));
        if (st->server_pids)
                json_object_set_new(j, "server_pids", json_string(st->server_pids));
        if (st->net_pid)
                json_object_set_new(j, "net_pid", json_integer(st->net_pid));
        char *s = json_dumps(j, JSON_INDENT(2));
        json_decref(j);
        _cleanup_free_ char *path = xasprintf("%s/state.json", dir);
        /* atomic and durable: state survives a host crash as written */
        int r = write_file_atomic_at(AT_FDCWD, path, s, strlen(s), 0600);
        free(s);
        return r;
}

int sb_state_read(const char *dir, struct sb_state *st)
{
        memset(st, 0, sizeof(*st));
        _cleanup_free_ char *path = xasprintf("%s/state.json", dir);
        json_t *j = json_load_file(path, 0, NULL);
        if (!j)
                return -errno ? -errno : -EIO;
        snprintf(st->status, sizeof(st->status), "%s", sb_jstr(j, "status") ? sb_jstr(j, "status") : "created");
        st->pid = (int)json_integer_value(json_object_get(j, "pid"));
        st->created = (int64_t)json_integer_value(json_object_get(j, "created"));
        st->started = (int64_t)json_integer_value(json_object_get(j, "started"));
        st->finished = (int64_t)json_integer_value(json_object_get(j, "finished"));
        json_t *ec = json_object_get(j, "exit_code");
        st->exit_code = ec ? (int)json_integer_value(ec) : -1;
#define DUP(f, k) st->f = sb_jstr(j, k) ? xstrdup(sb_jstr(j, k)) : NULL
        DUP(runtime, "runtime_dir");
        DUP(socket, "socket");
        DUP(error, "error");
        DUP(kernel, "kernel");
        DUP(server_pids, "server_pids");
#undef DUP
        st->qemu_pid = (int)json_integer_value(json_object_get(j, "qemu_pid"));
        st->net_pid = (int)json_integer_value(json_object_get(j, "net_pid"));
        json_decref(j);
        return 0;
}

bool sb_alive(const char *dir)
{
        _cleanup_free_ char *path = xasprintf("%s/run.lock", dir);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return false;
        if (flock(fd, LOCK_SH | LOCK_NB) < 0)
                return errno == EWOULDBLOCK;
        return false; /* closing drops our shared lock */
}

/* The state, with "running" checked against the supervisor's lock. */
int sb_state_current(struct msb_ctx *ctx, const char *name, struct sb_state *st, struct msb_error *err)
{
        _cleanup_free_ char *dir = sb_dir(ctx, name);
        struct stat s;
        if (stat(dir, &s) < 0)
                return msb_err(err, ENOENT, "no sandbox named '%s' (msb ls -a lists them)", name);
        int r = sb_state_read(dir, st);
        if (r < 0)
                return msb_err_errno(err, -r, "sandbox '%s': cannot read its state", name);
        if (!strcmp(st->status, "running") && !sb_alive(dir))
                snprintf(st->status, sizeof(st->status), "crashed");
        return 0;
}

bool msb_sandbox_running(struct msb_ctx *ctx, const char *name)
{
        if (msb_sandbox_name_check(name, NULL) < 0)
                return false;
        _cleanup_free_ char *dir = sb_dir(ctx, name);
        return sb_alive(dir);
}

int sb_oplock(struct msb_ctx *ctx, const char *name, struct msb_error *err)
{
        _cleanup_free_ char *path = xasprintf("%s/%s/op.lock", ctx->sandboxes_dir, name);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return errno == ENOENT ? msb_err(err, ENOENT, "no sandbox named '%s' (msb ls -a lists them)", name)
                                       : msb_err_errno(err, errno, "sandbox '%s': %s", name, path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                close(fd);
                return msb_err(err, EBUSY,
                               "sandbox '%s' is busy: another msb command is starting or removing it; try again",
                               name);
        }
        return fd;
}

/* The opening of every lifecycle call on one sandbox: its name checked,
 * then op.lock taken (with ret_lock), then its current state read (with
 * st).  0, or -errno with err filled and nothing held. */
int sb_open(struct msb_ctx *ctx, const char *name, int *ret_lock, struct sb_state *st, struct msb_error *err)
{
        int r = msb_sandbox_name_check(name, err);
        if (r < 0)
                return r;
        _cleanup_close_ int lk = -1;
        if (ret_lock && (lk = sb_oplock(ctx, name, err)) < 0)
                return lk;
        if (st && (r = sb_state_current(ctx, name, st, err)) < 0)
                return r;
        if (ret_lock)
                *ret_lock = TAKE_FD(lk);
        return 0;
}

/* sb_open() for whether the sandbox runs now (its lock checked). */
int sb_running(struct msb_ctx *ctx, const char *name, bool *ret_running, struct msb_error *err)
{
        struct sb_state st;
        int r = sb_open(ctx, name, NULL, &st, err);
        if (r < 0)
                return r;
        *ret_running = !strcmp(st.status, "running");
        sb_state_free(&st);
        return 0;
}

/* ---- create ---- */

static const char *mke2fs_path(void)
{
        static const char *const c[] = {"/usr/sbin/mke2fs", "/sbin/mke2fs", "/usr/bin/mke2fs"};
        for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
                if (access(c[i], X_OK) == 0)
                        return c[i];
        return NULL;
}

/* An empty ext4 file system in a sparse file: made here, from then on
 * written only by the guest. */
static int make_disk(const char *path, uint64_t size, struct msb_error *err)
{
        const char *mk = mke2fs_path();
        if (!mk)
                return msb_err(err, ENOENT, "mke2fs not found: install e2fsprogs (apt-get install e2fsprogs)");
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
                return msb_err_errno(err, errno, "cannot create %s", path);
        char *argv[] = {(char *)mk, "-q", "-F", "-t", "ext4", "-L", "msb-upper", "-m", "0", "-E",
                        "lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0,nodiscard", (char *)path, NULL};
        _cleanup_close_ int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        pid_t pid;
        int pidfd = -1;
        int r = proc_spawn(argv, devnull, devnull, devnull, -1, &pid, &pidfd);
        if (r < 0)
                return msb_err_errno(err, r, "cannot run %s", mk);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (pidfd >= 0)
                close(pidfd);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return msb_err(err, EIO, "%s failed on %s (exit status %d)", mk, path,
                               WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        return 0;
}

/* What a create or rm killed half-way left: .new-* and .rm-* dirs older
 * than ten minutes (younger ones may be in use). */
static void sweep_leftovers(const char *top)
{
        _cleanup_closedir_ DIR *d = opendir(top);
        if (!d)
                return;
        for (struct dirent *de; (de = readdir(d));) {
                struct stat st;
                if ((strncmp(de->d_name, ".new-", 5) && strncmp(de->d_name, ".rm-", 4)) ||
                    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || time(NULL) - st.st_mtime < 600)
                        continue;
                /* a create that still runs holds op.lock in its dir */
                _cleanup_free_ char *lk = xasprintf("%s/op.lock", de->d_name);
                _cleanup_close_ int fd = openat(dirfd(d), lk, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0)
                        continue;
                rm_rf_at(dirfd(d), de->d_name);
        }
}

/* A sandbox made to be removed when it stops (an unnamed run -d or -t)
 * whose msb was killed between create and start never runs: after ten
 * minutes it goes too. */
static void sweep_stranded(struct msb_ctx *ctx, const char *top)
{
        _cleanup_closedir_ DIR *d = opendir(top);
        if (!d)
                return;
        for (struct dirent *de; (de = readdir_no_dot(d));) {
                if (msb_sandbox_name_check(de->d_name, NULL) < 0)
                        continue;
                _cleanup_free_ char *dir = xasprintf("%s/%s", top, de->d_name);
                _cleanup_free_ char *cpath = xasprintf("%s/config.json", dir);
                struct sb_state st;
                if (sb_state_read(dir, &st) < 0)
                        continue;
                bool old_created = !strcmp(st.status, "created") && st.created && time(NULL) - st.created > 600;
                sb_state_free(&st);
                json_t *cfg = old_created ? json_load_file(cpath, 0, NULL) : NULL;
                bool stranded = cfg && json_is_true(json_object_get(cfg, "auto_remove"));
                json_decref(cfg);
                if (!stranded || sb_alive(dir))
                        continue;
                int lk = sb_oplock(ctx, de->d_name, NULL);
                if (lk >= 0) {
                        sb_remove_files(ctx, de->d_name);
                        close(lk);
                }
        }
}

int msb_sandbox_create(struct msb_ctx *ctx, const char *name, const struct msb_run_opts *o, struct msb_error *err)
{
        int r = msb_sandbox_name_check(name, err);
        if (r < 0)
                return r;
        if (!o->image && !o->rootfs)
                return msb_err(err, EINVAL, "no image given: name an image or use --rootfs DIR");
        r = sb_opts_check_utf8(o, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *top = xstrdup(ctx->sandboxes_dir);
        r = mkdir_p(top, 0700);
        if (r < 0)
                return msb_err_errno(err, -r, "cannot create %s", top);
        sweep_leftovers(top);
        sweep_stranded(ctx, top);
        _cleanup_free_ char *final = sb_dir(ctx, name);
        if (access(final, F_OK) == 0)
                return msb_err(err, EEXIST, "sandbox name '%s' is already in use: pick another, or msb rm %s",
                               name, name);
        char rnd[9];
        random_hex(rnd, 4);
        _cleanup_free_ char *tmp = xasprintf("%s/.new-%s-%s", top, name, rnd);
        if (mkdir(tmp, 0700) < 0)
                return msb_err_errno(err, errno, "cannot create %s", tmp);
        /* held until the rename: a sweep by another create leaves us be */
        _cleanup_free_ char *lkp = xasprintf("%s/op.lock", tmp);
        _cleanup_close_ int lk = open(lkp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (lk >= 0)
                (void)flock(lk, LOCK_EX);
        json_t *cfg = sb_config_json(o);
        json_object_set_new(cfg, "name", json_string(name));
        _cleanup_free_ char *cpath = xasprintf("%s/config.json", tmp);
        char *cs = json_dumps(cfg, JSON_INDENT(2));
        json_decref(cfg);
        r = !cs || write_file_replace_at(AT_FDCWD, cpath, cs, strlen(cs), 0600) < 0
                    ? msb_err(err, EIO, "cannot write %s", cpath)
                    : 0;
        free(cs);
        struct sb_state st = {.created = time(NULL), .exit_code = -1};
        snprintf(st.status, sizeof(st.status), "created");
        if (r >= 0 && sb_state_write(tmp, &st) < 0)
                r = msb_err(err, EIO, "cannot write the state of '%s' in %s", name, tmp);
        if (r >= 0 && o->image) {
                /* the image root the disk is made on: msb rmi keeps it, and
                 * start refuses another one under the same name */
                _cleanup_free_ char *rootfs = NULL;
                struct msb_image_config cfgi = {0};
                r = msb_image_open(ctx, o->image, &rootfs, &cfgi, err);
                if (r == -ENOENT && o->pull != MSB_PULL_NEVER) {
                        struct msb_error perr = {0};
                        if (msb_image_pull(ctx, o->image, NULL, &perr) < 0)
                                r = msb_err(err, perr.code ? perr.code : EIO,
                                            "image '%s' is not in the local store, and pulling it failed: %s",
                                            o->image, perr.message);
                        else
                                r = msb_image_open(ctx, o->image, &rootfs, &cfgi, err);
                }
                msb_image_config_free(&cfgi);
                _cleanup_free_ char *rp = xasprintf("%s/rootfs", tmp);
                if (r >= 0)
                        r = write_file_replace_at(AT_FDCWD, rp, rootfs, strlen(rootfs), 0600) < 0
                                    ? msb_err(err, EIO, "cannot write %s", rp)
                                    : 0;
        }
        if (r >= 0 && !o->no_disk) {
                _cleanup_free_ char *disk = xasprintf("%s/disk.img", tmp);
                r = make_disk(disk, o->disk_size ? o->disk_size : SB_DISK_DEFAULT, err);
        }
        /* rename() onto an existing, non-empty dir fails: one create wins */
        if (r >= 0 && rename(tmp, final) < 0)
                r = errno == EEXIST || errno == ENOTEMPTY
                            ? msb_err(err, EEXIST, "sandbox name '%s' is already in use: pick another, or msb rm %s",
                                      name, name)
                            : msb_err_errno(err, errno, "cannot create %s", final);
        if (r < 0)
                rm_rf(tmp);
        return r < 0 ? r : 0;
}

/* ---- remove ---- */

/* The sandbox's files go: renamed away first, so no other command sees a
 * half-removed sandbox, then deleted. */
/* A crashed sandbox's runtime dir (its supervisor was killed): gone with
 * it, if it is one of ours (state.json names it) and nobody holds it. */
static void runtime_leftover(struct msb_ctx *ctx, const char *dir)
{
        struct sb_state st;
        if (sb_state_read(dir, &st) < 0)
                return;
        size_t n = strlen(ctx->runtime_dir);
        const char *id = st.runtime && !strncmp(st.runtime, ctx->runtime_dir, n) && st.runtime[n] == '/'
                                 ? st.runtime + n + 1
                                 : NULL;
        if (id && *id && !strchr(id, '/') && strcmp(id, ".") && strcmp(id, "..")) {
                _cleanup_free_ char *lock = xasprintf("%s/lock", st.runtime);
                _cleanup_close_ int fd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
                if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
                        rm_rf(st.runtime);
        }
        sb_state_free(&st);
}

int sb_remove_files(struct msb_ctx *ctx, const char *name)
{
        _cleanup_free_ char *dir = sb_dir(ctx, name);
        if (!sb_alive(dir))
                runtime_leftover(ctx, dir);
        char rnd[9];
        random_hex(rnd, 4);
        _cleanup_free_ char *gone = xasprintf("%s/.rm-%s-%s", ctx->sandboxes_dir, name, rnd);
        if (rename(dir, gone) < 0)
                return -errno;
        return rm_rf(gone);
}
