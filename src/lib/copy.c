/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb cp: files and trees into and out of a named sandbox.
 *
 * The bytes travel as a tar stream over a routine of agentd's run like an
 * exec'd process (MSB_EXEC_INTERNAL: cp-out writes a tar of a guest path
 * to its stdout, cp-in extracts its stdin), so the protocol's flow control
 * carries them and nothing is held whole in memory on either side.  A
 * thread here unpacks (src/lib/tar's copy mode, confined beneath the target:
 * whatever names, symlinks or special files the guest presents, nothing is
 * written outside it) or writes the archive (common/tarw.c, which follows
 * no symlink below the source and so reads nothing outside it), through a
 * pipe to the relay.
 *
 * Where a copy lands is docker cp's rule: into an existing directory under
 * the source's name ("SRC/." merges the source directory's contents), else
 * as the destination itself, which is made in a temporary directory next
 * to it and renamed into place, so a failed copy leaves nothing there.
 *
 * A stopped sandbox is booted for the copy without its main process
 * (MSB_START_NO_MAIN) and stops by itself once the copy is done.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/tarw.h"
#include "sbstore.h"
#include "config.h"
#include "tar/unpack.h"

/* What is kept of a routine's stderr: its one-line error. */
#define ROUTINE_ERR_MAX 4096
/* A sandbox booted for the copy stops once it is done: waited for this
 * long, so that msb cp returns with the sandbox stopped as it was. */
#define BOOTED_STOP_MS 30000
/* The top entry of a copy that lands by rename. */
#define TOP_NAME "copy"

/* ---- paths ---- */

/* The last component of p, trailing slashes ignored ("" for "/"). */
static char *last_name(const char *p)
{
        size_t n = strlen(p);
        while (n > 0 && p[n - 1] == '/')
                n--;
        size_t s = n;
        while (s > 0 && p[s - 1] != '/')
                s--;
        return xasprintf("%.*s", (int)(n - s), p + s);
}

/* "DIR/." (or "."): a directory's contents, docker cp's way to ask. */
static bool wants_contents(const char *p)
{
        size_t n = strlen(p);
        return (n == 1 && p[0] == '.') || (n >= 2 && !strcmp(p + n - 2, "/."));
}

/* The archive's top entry for a source path: its name, or "." for its
 * contents (also for "/", which has no name). */
static char *top_name(const char *src)
{
        char *n = last_name(src);
        if (wants_contents(src) || !*n || !strcmp(n, "..")) {
                free(n);
                return xstrdup(".");
        }
        return n;
}

/* A guest path, absolute: relative ones start at "/" (docker's). */
static int guest_path(const char *p, char **ret, struct msb_error *err)
{
        if (!p || !*p)
                return msb_err(err, EINVAL, "cp: the path in the sandbox is empty");
        if (strlen(p) >= TARW_MAX_PATH)
                return msb_err(err, ENAMETOOLONG, "cp: path '%.64s...' is too long", p);
        *ret = p[0] == '/' ? xstrdup(p) : xasprintf("/%s", p);
        return 0;
}

/* ---- the sandbox ---- */

/* Running, or booted now for the copy (*ret_booted): then it stops by
 * itself once the copy's connection is gone. */
static int sb_acquire(struct msb_ctx *ctx, const char *name, bool *ret_booted, struct msb_error *err)
{
        bool running;
        int r = sb_running(ctx, name, &running, err);
        if (r < 0)
                return r;
        *ret_booted = false;
        if (running)
                return 0;
        r = msb_sandbox_start(ctx, name, MSB_START_NO_MAIN, err);
        if (r == -EBUSY && msb_sandbox_running(ctx, name))
                return 0; /* another command started it meanwhile: it is there */
        if (r < 0)
                return msb_err_wrap(err, r, "cp: cannot boot sandbox '%s' for the copy", name);
        *ret_booted = true;
        return 0;
}

static void sb_release(struct msb_ctx *ctx, const char *name, bool booted)
{
        if (!booted)
                return;
        _cleanup_free_ char *dir = sb_dir(ctx, name);
        sb_wait_gone(dir, BOOTED_STOP_MS);
}

/* A routine's end: 0, or its error (its stderr's first line other than
 * the counts it reports; exit 2 means a path it was given does not
 * exist).  *skipped gets what it left out. */
static int routine_result(const char *name, int status, char *errbuf, uint64_t *skipped, struct msb_error *err)
{
        char *line = NULL, *save = NULL;
        for (char *l = strtok_r(errbuf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                if (!strncmp(l, "skipped=", 8))
                        *skipped += strtoull(l + 8, NULL, 10);
                else if (!line)
                        line = l;
        }
        if (status == 0)
                return 0;
        if (line)
                return msb_err(err, status == 2 ? ENOENT : EIO, "sandbox '%s': %s", name, line);
        if (status == 128 + SIGINT || status == 128 + SIGTERM)
                return msb_err(err, EINTR, "cp: interrupted");
        return msb_err(err, EIO, "sandbox '%s': the copy ended with status %d", name, status);
}

/* ---- out of the sandbox ---- */

struct unpack_job {
        int fd, rootfd;
        struct tar_opts o;
        struct tar_stats st;
        struct msb_error err;
        int r;
};

static void *unpack_thread(void *arg)
{
        struct unpack_job *j = arg;
        j->r = tar_unpack(j->fd, j->rootfd, &j->o, &j->st, &j->err);
        /* what may still come is not wanted: the relay stops its sender */
        close(j->fd);
        return NULL;
}

/* Where a copy out goes: into dirfd (an existing directory, or a
 * temporary one next to the destination, tmp). */
struct out_target {
        const char *dst;
        int dirfd, parentfd;
        char *tmp;     /* the temporary directory's name in parentfd, or NULL */
        char *base;    /* the destination's last component */
        char *top;     /* the archive's top entry */
        bool exists;   /* the destination exists, a non-directory */
        bool slash;    /* it was written with a trailing '/' */
};

static void out_target_free(struct out_target *t)
{
        if (t->dirfd >= 0)
                close(t->dirfd);
        if (t->tmp)
                rm_rf_at(t->parentfd, t->tmp);
        if (t->parentfd >= 0)
                close(t->parentfd);
        free(t->tmp);
        free(t->base);
        free(t->top);
}

/* A temporary directory next to the destination, for it to be made in. */
static int out_tmpdir(struct out_target *t, struct msb_error *err)
{
        _cleanup_free_ char *parent = xstrdup(t->dst);
        size_t n = strlen(parent);
        while (n > 1 && parent[n - 1] == '/')
                parent[--n] = '\0';
        char *slash = strrchr(parent, '/');
        if (slash)
                *(slash == parent ? slash + 1 : slash) = '\0';
        t->base = last_name(t->dst);
        t->parentfd = open(slash ? parent : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (t->parentfd < 0)
                return msb_err(err, errno, "cp: destination '%s': directory '%s' %s", t->dst, slash ? parent : ".",
                               errno == ENOENT ? "does not exist" : errno_text(errno));
        for (int tries = 0; tries < 100; tries++) {
                char hex[17];
                random_hex(hex, 8);
                free(t->tmp);
                t->tmp = xasprintf(".msb-cp-%s", hex);
                if (mkdirat(t->parentfd, t->tmp, 0700) == 0)
                        break;
                int e = errno;
                free(t->tmp);
                t->tmp = NULL;
                if (e != EEXIST)
                        return msb_err_errno(err, e, "cp: cannot write next to '%s'", t->dst);
        }
        t->dirfd = t->tmp ? openat(t->parentfd, t->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
        return t->dirfd < 0 ? msb_err(err, EIO, "cp: cannot write next to '%s'", t->dst) : 0;
}

/* Look at the destination before anything runs: nothing is changed on
 * the host when a path is wrong. */
static int out_target_open(struct out_target *t, const char *dst, const char *src, struct msb_error *err)
{
        *t = (struct out_target){.dst = dst, .dirfd = -1, .parentfd = -1};
        if (!*dst)
                return msb_err(err, EINVAL, "cp: the destination path is empty");
        t->slash = dst[strlen(dst) - 1] == '/';
        struct stat st;
        int sr = stat(dst, &st);
        if (sr == 0 && S_ISDIR(st.st_mode)) {
                t->top = top_name(src);
                t->dirfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                return t->dirfd < 0 ? msb_err_errno(err, errno, "cp: destination '%s'", dst) : 0;
        }
        if (sr < 0 && errno != ENOENT)
                return msb_err_errno(err, errno, "cp: destination '%s'", dst);
        t->exists = sr == 0;
        t->top = xstrdup(TOP_NAME);
        return out_tmpdir(t, err);
}

/* The copy made in the temporary directory becomes the destination. */
static int out_land(struct out_target *t, struct msb_error *err)
{
        struct stat st;
        if (fstatat(t->dirfd, TOP_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return msb_err(err, EIO, "cp: the sandbox sent nothing to copy");
        bool dir = S_ISDIR(st.st_mode);
        if (t->exists && dir)
                return msb_err(err, ENOTDIR, "cp: cannot overwrite non-directory '%s' with a directory", t->dst);
        if (t->slash && !dir)
                return msb_err(err, ENOENT, "cp: destination directory '%s' does not exist", t->dst);
        if (renameat(t->dirfd, TOP_NAME, t->parentfd, t->base) < 0)
                return msb_err_errno(err, errno, "cp: cannot put the copy at '%s'", t->dst);
        return 0;
}

/* The routine's tar through a pipe into the unpacking thread. */
static int out_stream(struct msb_proc *p, const char *name, struct out_target *t, struct msb_copy_stats *cs,
                      struct msb_error *err)
{
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return msb_err_errno(err, errno, "pipe");
        struct unpack_job j = {.fd = pfd[0], .rootfd = t->dirfd, .o = TAR_OPTS_DEFAULT};
        j.o.copy = true;
        j.o.copy_top = t->top; /* the one name the guest may create under a directory */
        int r = msb_config_unpack_limits(&j.o.max_bytes, &j.o.max_entries, err);
        pthread_t th;
        if (r < 0 || (r = thread_start(&th, unpack_thread, &j)) < 0) {
                close(pfd[0]);
                close(pfd[1]);
                return r < 0 && !err->message[0] ? msb_err(err, -r, "cp: cannot start a thread") : r;
        }
        char errbuf[ROUTINE_ERR_MAX];
        int status = -1;
        r = sb_proc_relay_copy(p, -1, pfd[1], errbuf, sizeof(errbuf), &status, err);
        close(pfd[1]);
        pthread_join(th, NULL);
        if (r < 0)
                return r;
        cs->skipped = j.st.skipped_devices;
        cs->entries = j.st.entries;
        cs->bytes = j.st.bytes;
        r = routine_result(name, status, errbuf, &cs->skipped, err);
        if (r == 0 && j.r < 0) {
                *err = j.err;
                r = msb_err_wrap(err, j.r, "cp: what sandbox '%s' sent was refused", name);
        }
        return r;
}

/* What every copy checks first: the sandbox exists, the flags are known
 * for the direction, and the guest path, made absolute (*ret_gpath). */
static int copy_check(struct msb_ctx *ctx, const char *name, const char *gpath, unsigned flags, bool in,
                      char **ret_gpath, struct msb_error *err)
{
        struct sb_state st;
        int r = sb_open(ctx, name, NULL, &st, err);
        if (r < 0)
                return r;
        sb_state_free(&st);
        if (flags & ~(in ? MSB_COPY_ARCHIVE : 0u))
                return msb_err(err, EINVAL, "cp: unknown flags for a copy %s a sandbox", in ? "into" : "out of");
        return guest_path(gpath, ret_gpath, err);
}

int msb_sandbox_copy_out(struct msb_ctx *ctx, const char *name, const char *src, const char *dst, unsigned flags,
                         struct msb_copy_stats *ret_stats, struct msb_error *err)
{
        struct msb_error none;
        _cleanup_free_ char *gsrc = NULL;
        err = err ? err : &none;
        err->message[0] = '\0';
        int r = copy_check(ctx, name, src, flags, false, &gsrc, err);
        if (r < 0)
                return r;
        struct out_target t;
        bool booted = false;
        struct msb_proc *p = NULL;
        struct msb_copy_stats cs = {0};
        r = out_target_open(&t, dst, gsrc, err);
        if (r >= 0)
                r = sb_acquire(ctx, name, &booted, err);
        char *argv[] = {"cp-out", gsrc, t.top, NULL};
        if (r >= 0)
                r = sb_exec_routine(ctx, name, argv, false, NULL, &p, err);
        if (r >= 0)
                r = out_stream(p, name, &t, &cs, err);
        if (r >= 0 && t.tmp)
                r = out_land(&t, err);
        msb_proc_free(p);
        out_target_free(&t);
        sb_release(ctx, name, booted);
        if (r >= 0 && ret_stats)
                *ret_stats = cs;
        return r < 0 ? r : 0;
}

/* A copy out as a tar on fd (docker cp's "-"): the guest's stream as it
 * is, for the caller to read as an archive. */
int msb_sandbox_copy_out_tar(struct msb_ctx *ctx, const char *name, const char *src, int fd, unsigned flags,
                             struct msb_error *err)
{
        _cleanup_free_ char *gsrc = NULL;
        int r = copy_check(ctx, name, src, flags, false, &gsrc, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *top = top_name(gsrc);
        char *argv[] = {"cp-out", gsrc, top, NULL};
        bool booted = false;
        struct msb_proc *p = NULL;
        char errbuf[ROUTINE_ERR_MAX];
        int status = -1;
        uint64_t skipped = 0;
        r = sb_acquire(ctx, name, &booted, err);
        if (r >= 0)
                r = sb_exec_routine(ctx, name, argv, false, NULL, &p, err);
        if (r >= 0)
                r = sb_proc_relay_copy(p, -1, fd, errbuf, sizeof(errbuf), &status, err);
        if (r >= 0)
                r = routine_result(name, status, errbuf, &skipped, err);
        msb_proc_free(p);
        sb_release(ctx, name, booted);
        return r < 0 ? r : 0;
}

/* ---- into the sandbox ---- */

struct pack_job {
        int fd;
        const char *src, *top;
        struct tarw_stats st;
        struct msb_error err;
        int r;
};

static void *pack_thread(void *arg)
{
        struct pack_job *j = arg;
        j->r = tarw_tree(j->fd, AT_FDCWD, j->src, j->top, &j->st, &j->err);
        close(j->fd); /* the end of the routine's stdin */
        return NULL;
}

/* The source exists (a directory, for its contents): checked before
 * anything runs. */
static int in_source_check(const char *src, struct msb_error *err)
{
        struct stat st;
        if (!*src)
                return msb_err(err, EINVAL, "cp: the source path is empty");
        if ((wants_contents(src) ? stat(src, &st) : lstat(src, &st)) < 0)
                return msb_err(err, errno, "cp: source '%s' %s", src,
                               errno == ENOENT ? "does not exist" : errno_text(errno));
        return 0;
}

/* The tar of the source through a pipe into the routine's stdin. */
static int in_stream(struct msb_proc *p, const char *name, const char *src, const char *top,
                     struct msb_copy_stats *cs, struct msb_error *err)
{
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return msb_err_errno(err, errno, "pipe");
        struct pack_job j = {.fd = pfd[1], .src = src, .top = top};
        pthread_t th;
        int r = thread_start(&th, pack_thread, &j);
        if (r < 0) {
                close(pfd[0]);
                close(pfd[1]);
                return msb_err(err, -r, "cp: cannot start a thread");
        }
        char errbuf[ROUTINE_ERR_MAX];
        int status = -1;
        r = sb_proc_relay_copy(p, pfd[0], -1, errbuf, sizeof(errbuf), &status, err);
        close(pfd[0]); /* a writer still writing gets EPIPE */
        pthread_join(th, NULL);
        if (r < 0)
                return r;
        cs->entries = j.st.entries;
        cs->bytes = j.st.bytes;
        cs->skipped = j.st.skipped;
        /* the source failing is the story; EPIPE only says the routine
         * stopped reading, which its own error explains */
        if (j.r < 0 && j.r != -EPIPE)
                return msb_err(err, -j.r, "cp: %s", j.err.message);
        return routine_result(name, status, errbuf, &cs->skipped, err);
}

/* The routine for a copy in, fed from in_fd, or from a thread writing a
 * tar of src (in_fd < 0). */
static int copy_in_run(struct msb_ctx *ctx, const char *name, const char *src, int in_fd, char *argv[],
                       struct msb_copy_stats *cs, struct msb_error *err)
{
        bool booted = false;
        struct msb_proc *p = NULL;
        char errbuf[ROUTINE_ERR_MAX];
        int status = -1;
        int r = sb_acquire(ctx, name, &booted, err);
        if (r >= 0)
                r = sb_exec_routine(ctx, name, argv, true, NULL, &p, err);
        if (r >= 0 && in_fd < 0)
                r = in_stream(p, name, src, argv[2], cs, err);
        else if (r >= 0 && (r = sb_proc_relay_copy(p, in_fd, -1, errbuf, sizeof(errbuf), &status, err)) >= 0)
                r = routine_result(name, status, errbuf, &cs->skipped, err);
        msb_proc_free(p);
        sb_release(ctx, name, booted);
        return r;
}

int msb_sandbox_copy_in_tar(struct msb_ctx *ctx, const char *name, int fd, const char *dst, unsigned flags,
                            struct msb_error *err)
{
        _cleanup_free_ char *gdst = NULL;
        int r = copy_check(ctx, name, dst, flags, true, &gdst, err);
        if (r < 0)
                return r;
        char *argv[] = {"cp-in", gdst, ".", (flags & MSB_COPY_ARCHIVE) ? "a" : NULL, NULL};
        struct msb_copy_stats cs = {0};
        r = copy_in_run(ctx, name, NULL, fd, argv, &cs, err);
        return r < 0 ? r : 0;
}

int msb_sandbox_copy_in(struct msb_ctx *ctx, const char *name, const char *src, const char *dst, unsigned flags,
                        struct msb_copy_stats *ret_stats, struct msb_error *err)
{
        struct msb_error none;
        _cleanup_free_ char *gdst = NULL;
        err = err ? err : &none;
        int r = copy_check(ctx, name, dst, flags, true, &gdst, err);
        if (r < 0 || (r = in_source_check(src, err)) < 0)
                return r;
        _cleanup_free_ char *top = top_name(src);
        struct msb_copy_stats cs = {0};
        char *argv[] = {"cp-in", gdst, top, (flags & MSB_COPY_ARCHIVE) ? "a" : NULL, NULL};
        r = copy_in_run(ctx, name, src, -1, argv, &cs, err);
        if (r >= 0 && ret_stats)
                *ret_stats = cs;
        return r < 0 ? r : 0;
}
