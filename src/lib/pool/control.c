/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb pool start, status and stop: the daemon of a size started in the
 * background, and every running pool asked over its socket.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/proc.h"
#include "pool.h"

#include <jansson.h>

/* ---- the API ---- */

/* The key of the pool a run with these options would use. */
static int key_for(struct msb_ctx *ctx, const struct msb_run_opts *o, char *key, size_t n, struct msb_error *err)
{
        struct vm v = {0};
        _cleanup_free_ char *why = NULL;
        int r = msb_kit_prepare(ctx, &v.kit, err);
        if (r >= 0)
                r = msb_accel_resolve(ctx, o->accel, &v.accel, &why, err);
        if (r >= 0)
                pool_key(&v, o->cpus, o->memory_mib, key, n);
        msb_kit_free(&v.kit);
        return r;
}

/* The run options of the pool's VMs: 0, or -EINVAL with err filled (*ret
 * is made either way, for the caller to free). */
static int pool_opts(const struct msb_pool_opts *po, struct msb_run_opts **ret, struct msb_error *err)
{
        struct msb_run_opts *o;
        msb_run_opts_new(&o);
        *ret = o;
        int r = 0;
        if (po->cpus && msb_run_opts_set_cpus(o, po->cpus) < 0)
                r = msb_err(err, EINVAL, "--cpus %u: 1 to 64", po->cpus);
        if (r >= 0 && po->memory_mib && msb_run_opts_set_memory_mib(o, po->memory_mib) < 0)
                r = msb_err(err, EINVAL, "--memory %u MiB: expected a size from 128M to 64G", po->memory_mib);
        msb_run_opts_set_accel(o, po->accel);
        return r;
}

/* The pool's directory, and its lock taken (*lock, the caller's to close
 * even on failure). */
static int pool_lock_dir(struct pool *p, const char *lockp, int *lock, struct msb_error *err)
{
        if (mkdir(p->dir, 0700) < 0 && errno != EEXIST)
                return msb_err_errno(err, errno, "cannot create %s", p->dir);
        if ((*lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 || flock(*lock, LOCK_EX | LOCK_NB) < 0)
                return msb_err(err, EEXIST, "a pool of this size (%s) is already running: msb pool status", p->key);
        /* a client that found the directory stale may have removed it
         * between our open and our lock: ours must still be the lock */
        struct stat ls, ps;
        if (fstat(*lock, &ls) < 0 || stat(lockp, &ps) < 0 || ls.st_ino != ps.st_ino || ls.st_dev != ps.st_dev)
                return msb_err(err, EAGAIN, "pool %s: its directory changed while it started; run msb pool start again",
                               p->key);
        return 0;
}

/* The pool's socket, p->lfd. */
static int pool_listen(struct pool *p, const char *sock, struct msb_error *err)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(sock) >= sizeof(sa.sun_path))
                return msb_err(err, ENAMETOOLONG, "%s is too long for a unix socket; set MSB_HOME", sock);
        strcpy(sa.sun_path, sock);
        unlink(sock);
        p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(p->lfd, 16) < 0)
                return msb_err_errno(err, errno, "cannot listen on %s", sock);
        return 0;
}

/* In the forked child: become the daemon (out of the caller's session,
 * its own log), say "ok" on rp[1] and serve. */
static _Noreturn void pool_daemonize(struct pool *p, int lock, const int rp[2], const char *logp)
{
        setsid();
        if (fork() != 0)
                _exit(0);
        close(rp[0]);
        int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
        int logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(logfd >= 0 ? logfd : nul, 2);
        /* nothing of the caller's reaches the keepers and VMs */
        for (int fd = 3; fd < 4096; fd++)
                if (fd != lock && fd != p->lfd && fd != rp[1])
                        close(fd);
        if (chdir("/") < 0)
                _exit(1);
        sigset_t m;
        proc_block_signals(&m, NULL, SIGTERM, SIGINT, SIGHUP, SIGCHLD, 0);
        signal(SIGPIPE, SIG_IGN);
        p->sfd = signalfd(-1, &m, SFD_CLOEXEC | SFD_NONBLOCK);
        fprintf(stderr, "msb pool %s: %u VMs of %u vCPU, %u MiB\n", p->key, p->size, p->o->cpus, p->o->memory_mib);
        (void)!write(rp[1], "ok", 2);
        close(rp[1]);
        p->lock = lock; /* held for the daemon's life */
        pool_daemon_main(p);
}

int msb_pool_start(struct msb_ctx *ctx, const struct msb_pool_opts *po, struct msb_error *err)
{
        if (po->size < 1 || po->size > POOL_MAX_SIZE)
                return msb_err(err, EINVAL, "--size %u: a pool keeps 1 to %d VMs", po->size, POOL_MAX_SIZE);
        struct msb_run_opts *o;
        int r = pool_opts(po, &o, err);
        struct pool *p = xcalloc(1, sizeof(*p));
        p->ctx = ctx;
        p->o = o;
        p->size = po->size;
        p->lfd = p->sfd = p->lock = -1;
        if (r >= 0)
                r = key_for(ctx, o, p->key, sizeof(p->key), err);
        _cleanup_free_ char *pd = pools_dir(ctx);
        if (r >= 0 && (r = mkdir_p(pd, 0700)) < 0)
                r = msb_err_errno(err, r, "cannot create %s", pd);
        p->dir = xasprintf("%s/%s", pd, p->key);
        _cleanup_free_ char *lockp = xasprintf("%s/lock", p->dir), *sock = xasprintf("%s/sock", p->dir),
                             *logp = xasprintf("%s/pool.log", p->dir);
        _cleanup_close_ int lock = -1;
        if (r >= 0)
                r = pool_lock_dir(p, lockp, &lock, err);
        if (r >= 0)
                r = pool_listen(p, sock, err);
        int rp[2] = {-1, -1};
        if (r >= 0 && pipe2(rp, O_CLOEXEC) < 0)
                r = msb_err_errno(err, errno, "pipe");
        pid_t pid = r >= 0 ? fork() : -1;
        if (r >= 0 && pid < 0)
                r = msb_err_errno(err, errno, "fork");
        if (r >= 0 && pid == 0)
                pool_daemonize(p, lock, rp, logp);
        if (rp[1] >= 0)
                close(rp[1]);
        if (pid > 0) {
                waitpid(pid, NULL, 0);
                char ok[2] = "";
                if (read(rp[0], ok, 2) != 2)
                        r = msb_err(err, EIO, "the pool did not start: see %s", logp);
        }
        if (rp[0] >= 0)
                close(rp[0]);
        if (p->lfd >= 0)
                close(p->lfd);
        free(p->dir);
        free(p);
        msb_run_opts_free(o);
        return r;
}

/* Each pool's socket, with f run on each answer to REQ. */
static int each_pool(struct msb_ctx *ctx, const char *req, const char *only, void (*f)(const char *, void *),
                     void *ud)
{
        _cleanup_free_ char *pd = pools_dir(ctx);
        _cleanup_closedir_ DIR *d = opendir(pd);
        if (!d)
                return 0;
        int n = 0;
        struct dirent *de;
        while ((de = readdir_no_dot(d))) {
                if (only && strcmp(only, de->d_name))
                        continue;
                _cleanup_free_ char *sock = xasprintf("%s/%s/sock", pd, de->d_name);
                _cleanup_close_ int fd = pool_unix_connect(sock);
                if (fd == -ECONNREFUSED || fd == -ENOENT) {
                        _cleanup_free_ char *dir = xasprintf("%s/%s", pd, de->d_name);
                        pool_dir_reap(dir);
                }
                if (fd < 0)
                        continue;
                struct timeval tv = {5, 0};
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                if (write_all(fd, req, strlen(req)) < 0)
                        continue;
                char buf[65536];
                size_t got = 0;
                ssize_t k;
                while (got < sizeof(buf) - 1 && (k = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
                        got += (size_t)k;
                buf[got] = 0;
                f(buf, ud);
                n++;
        }
        return n;
}

static void collect(const char *answer, void *ud)
{
        json_t *a = ud, *j = json_loads(answer, 0, NULL);
        if (j)
                json_array_append_new(a, j);
}

int msb_pool_status(struct msb_ctx *ctx, char **ret_json, struct msb_error *err)
{
        json_t *a = json_array();
        each_pool(ctx, "STATUS\n", NULL, collect, a);
        *ret_json = json_dumps(a, JSON_INDENT(2));
        json_decref(a);
        return *ret_json ? 0 : msb_err(err, ENOMEM, "out of memory");
}

static void nothing(const char *answer, void *ud)
{
        (void)answer;
        (void)ud;
}

int msb_pool_stop(struct msb_ctx *ctx, const char *key, struct msb_error *err)
{
        int n = each_pool(ctx, "STOP\n", key, nothing, NULL);
        if (key && n == 0)
                return msb_err(err, ENOENT, "no pool '%s' is running: msb pool status lists them", key);
        /* each is gone once its directory is */
        _cleanup_free_ char *pd = pools_dir(ctx);
        for (int i = 0; i < 500; i++) {
                _cleanup_closedir_ DIR *d = opendir(pd);
                bool left = false;
                struct dirent *de;
                while (d && (de = readdir_no_dot(d)))
                        if (!key || !strcmp(key, de->d_name)) {
                                _cleanup_free_ char *lk = xasprintf("%s/%s/lock", pd, de->d_name);
                                _cleanup_close_ int fd = open(lk, O_RDWR | O_CLOEXEC);
                                left |= fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0;
                        }
                if (!left)
                        break;
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        return n;
}
