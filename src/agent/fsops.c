/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The library's file operations inside the guest (msb_sandbox_file_*,
 * src/lib/files.c): routines agentd runs for an EXEC with
 * MSB_EXEC_INTERNAL, in a child of its own, as the user the host asked for,
 * so that every path is resolved, and every permission checked, as that
 * user's would be.  Paths are the guest's own, absolute.
 *
 *   fs-stat PATH                the entry (a symlink is not followed)
 *   fs-list PATH DEPTH MAX      PATH's entries, DEPTH levels down, never
 *                               through a symlink; at most MAX, then a CUT
 *   fs-mkdir PATH MODE [p]      "p": parents too (0755), an existing
 *                               directory is fine
 *   fs-remove PATH [r]          "r": a directory and all in it
 *   fs-rename FROM TO           rename(2)
 *   fs-read PATH OFFSET LENGTH  a SIZE record, then the bytes
 *   fs-write PATH MODE [p]      stdin into a temporary file next to PATH,
 *                               renamed to it at stdin's end
 *   fs-watch PATH [r]           a "ready" EVENT once its watches are in
 *                               place, then inotify's EVENTs under PATH
 *                               until killed
 *
 * Records on stdout as proto/filerec.h frames them.  Errors: one line
 * "ERRNO text" on stderr, ERRNO the failing call's errno, and exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/error.h"
#include "common/util.h"
#include "proto/filerec.h"

#define EXIT_FAILED 1
#define FLUSH_AT (64u * 1024u)
#define CHUNK (64u * 1024u)

static struct msb_buf out;

/* The error line the host turns back into errno e. */
static int complain(int e, bool with_text, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int complain(int e, bool with_text, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (with_text)
                dprintf(2, "%d %s\n", e, errno_msg(e, "%s", msg).s);
        else
                dprintf(2, "%d %s\n", e, msg);
        return EXIT_FAILED;
}

#define fail_errno(e, ...) complain((e), true, __VA_ARGS__)
#define fail_plain(e, ...) complain((e), false, __VA_ARGS__)

/* What is queued for stdout; a host that went away ends the routine. */
static void flush(void)
{
        if (msb_buf_pending(&out) && write_all(1, msb_buf_head(&out), msb_buf_pending(&out)) < 0)
                _exit(EXIT_FAILED);
        msb_buf_consume(&out, msb_buf_pending(&out));
}

static void maybe_flush(void)
{
        if (msb_buf_pending(&out) >= FLUSH_AT)
                flush();
}

static bool abs_path(const char *p)
{
        return p[0] == '/' && strlen(p) <= FILEREC_MAX_PATH;
}

/* A decimal (base 10) or octal (base 8) number up to max. */
static bool get_num(const char *s, int base, unsigned long long max, unsigned long long *ret)
{
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, base);
        if (!*s || *s == '-' || *end || errno || v > max)
                return false;
        *ret = v;
        return true;
}

static bool flag_arg(int argc, char **argv, int i, const char *flag, bool *ret)
{
        *ret = argc > i;
        return argc <= i || !strcmp(argv[i], flag);
}

/* path joined with name (a path ending in '/', as "/", without a second
 * one); false when it would be longer than a record takes. */
static bool join(char *dst, const char *path, const char *name)
{
        bool slash = path[0] && path[strlen(path) - 1] == '/';
        size_t n = (size_t)snprintf(dst, FILEREC_MAX_PATH + 2, "%s%s%s", path, slash ? "" : "/", name);
        return n <= FILEREC_MAX_PATH;
}

/* ---- stat, list ---- */

/* The INFO record of name in dfd, known as path. */
static int put_entry(int dfd, const char *name, const char *path, const struct stat *st)
{
        char link[FILEREC_MAX_PATH + 2] = "";
        if (S_ISLNK(st->st_mode)) {
                ssize_t k = readlinkat(dfd, name, link, sizeof(link));
                if (k < 0)
                        return -errno;
                if ((size_t)k > FILEREC_MAX_PATH)
                        return -ENAMETOOLONG;
                link[k] = '\0';
        }
        return filerec_put_info(&out, path, st, link);
}

static int fs_stat(int argc, char **argv)
{
        const char *path = argv[1];
        struct stat st;
        if (lstat(path, &st) < 0)
                return fail_errno(errno, "%s", path);
        int r = put_entry(AT_FDCWD, path, path, &st);
        if (r < 0)
                return fail_errno(-r, "%s", path);
        flush();
        return 0;
}

struct walk {
        unsigned long long max, count;
        bool cut;
};

/* dfd's entries (path is its name), and theirs down to depth levels: 0,
 * or -errno for dfd itself.  Entries that go away meanwhile, and
 * directories below that cannot be read, are left out. */
static int walk_dir(struct walk *w, int dfd, const char *path, unsigned long long depth)
{
        DIR *d = fdopendir(dfd);
        if (!d) {
                int e = errno;
                close(dfd);
                return -e;
        }
        struct dirent *de;
        char child[FILEREC_MAX_PATH + 2];
        while (!w->cut && (de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                struct stat st;
                if (!join(child, path, de->d_name) || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (w->count == w->max) {
                        w->cut = true;
                        break;
                }
                if (put_entry(dirfd(d), de->d_name, child, &st) < 0)
                        continue;
                w->count++;
                maybe_flush();
                if (!S_ISDIR(st.st_mode) || depth <= 1)
                        continue;
                int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub >= 0)
                        walk_dir(w, sub, child, depth - 1);
        }
        closedir(d);
        return 0;
}

static int fs_list(int argc, char **argv)
{
        const char *path = argv[1];
        struct walk w = {0};
        unsigned long long depth;
        if (!get_num(argv[2], 10, FSOPS_MAX_DEPTH, &depth) || depth < 1 ||
            !get_num(argv[3], 10, FSOPS_MAX_ENTRIES, &w.max) || w.max < 1)
                return fail_plain(EINVAL, "usage: fs-list PATH DEPTH(1-%u) MAX(1-%u)", FSOPS_MAX_DEPTH,
                                  FSOPS_MAX_ENTRIES);
        /* PATH itself may be a symlink to the directory, as for ls */
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return fail_errno(errno, "%s", path);
        int r = walk_dir(&w, fd, path, depth);
        if (r < 0)
                return fail_errno(-r, "%s", path);
        if (w.cut)
                filerec_put_cut(&out);
        flush();
        return 0;
}

/* ---- mkdir, remove, rename ---- */

/* mkdir -p: every missing directory of path made (0755; the last with
 * mode), an existing directory left as it is. */
static int mkdir_parents(const char *path, mode_t mode)
{
        char p[FILEREC_MAX_PATH + 1];
        snprintf(p, sizeof(p), "%s", path);
        for (char *s = p + 1;; s++) {
                if (*s && *s != '/')
                        continue;
                bool last = !*s || !s[strspn(s, "/")];
                char saved = *s;
                *s = '\0';
                struct stat st;
                if (mkdir(p, last ? mode : 0755) < 0 && (errno != EEXIST || stat(p, &st) < 0 || !S_ISDIR(st.st_mode)))
                        return fail_errno(errno == EEXIST ? ENOTDIR : errno, "%s", p);
                if (last)
                        return 0;
                *s = saved;
        }
}

static int fs_mkdir(int argc, char **argv)
{
        unsigned long long mode;
        bool parents;
        if (!get_num(argv[2], 8, 07777, &mode) || !flag_arg(argc, argv, 3, "p", &parents))
                return fail_plain(EINVAL, "usage: fs-mkdir PATH MODE [p]");
        umask(0);
        if (parents)
                return mkdir_parents(argv[1], (mode_t)mode);
        if (mkdir(argv[1], (mode_t)mode) < 0)
                return fail_errno(errno, "%s", argv[1]);
        return 0;
}

static int fs_remove(int argc, char **argv)
{
        const char *path = argv[1];
        bool recursive;
        if (!flag_arg(argc, argv, 2, "r", &recursive))
                return fail_plain(EINVAL, "usage: fs-remove PATH [r]");
        if (!path[strspn(path, "/")])
                return fail_plain(EINVAL, "%s: the root cannot be removed", path);
        struct stat st;
        if (lstat(path, &st) < 0)
                return fail_errno(errno, "%s", path);
        int r = 0;
        if (!S_ISDIR(st.st_mode))
                r = unlink(path) < 0 ? -errno : 0;
        else if (!recursive)
                r = rmdir(path) < 0 ? -errno : 0;
        else
                r = rm_rf_at(AT_FDCWD, path);
        return r < 0 ? fail_errno(-r, "%s", path) : 0;
}

static int fs_rename(int argc, char **argv)
{
        if (rename(argv[1], argv[2]) < 0)
                return fail_errno(errno, "%s -> %s", argv[1], argv[2]);
        return 0;
}

/* ---- read, write ---- */

static int fs_read(int argc, char **argv)
{
        const char *path = argv[1];
        unsigned long long offset, length;
        if (!get_num(argv[2], 10, UINT64_MAX, &offset) || !get_num(argv[3], 10, UINT64_MAX, &length))
                return fail_plain(EINVAL, "usage: fs-read PATH OFFSET LENGTH");
        /* O_NONBLOCK: a fifo must not hang us before it is refused */
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return fail_errno(errno, "%s", path);
        if (S_ISDIR(st.st_mode))
                return fail_errno(EISDIR, "%s", path);
        if (!S_ISREG(st.st_mode))
                return fail_plain(EINVAL, "%s: not a regular file", path);
        uint64_t size = (uint64_t)st.st_size;
        filerec_put_size(&out, size);
        flush();
        /* never past the size said, however the file grows meanwhile */
        uint64_t left = offset >= size ? 0 : size - offset < length ? size - offset : length;
        _cleanup_free_ uint8_t *buf = xmalloc(CHUNK);
        while (left > 0) {
                ssize_t k = pread(fd, buf, left < CHUNK ? (size_t)left : CHUNK, (off_t)offset);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return fail_errno(errno, "%s", path);
                if (k == 0)
                        break; /* it shrank */
                if (write_all(1, buf, (size_t)k) < 0)
                        return EXIT_FAILED;
                offset += (uint64_t)k;
                left -= (uint64_t)k;
        }
        return 0;
}

/* SIGTERM (the host's client went away), SIGINT, SIGHUP: a write stops
 * and takes its temporary file away. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
        interrupted = sig;
}

static void catch_signals(void)
{
        struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: read() returns */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
}

/* stdin to its end into fd: 0, or -errno (-EINTR when told to stop). */
static int take_stdin(int fd)
{
        _cleanup_free_ uint8_t *buf = xmalloc(CHUNK);
        for (;;) {
                if (interrupted)
                        return -EINTR;
                ssize_t k = read(0, buf, CHUNK);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return 0;
                if (write_all(fd, buf, (size_t)k) < 0)
                        return -errno;
        }
}

/* The directory part of path ("/" for "/x") made if asked, and opened. */
static int write_dir(const char *path, const char *base, bool parents)
{
        _cleanup_free_ char *dir = xasprintf("%.*s", (int)(base - path), path);
        if (parents && strcmp(dir, "/") && mkdir_parents(dir, 0755) != 0)
                return -1;
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                fail_errno(errno, "%s", dir);
        return dfd;
}

static int fs_write(int argc, char **argv)
{
        const char *path = argv[1];
        unsigned long long mode;
        bool parents;
        if (!get_num(argv[2], 8, 07777, &mode) || !flag_arg(argc, argv, 3, "p", &parents))
                return fail_plain(EINVAL, "usage: fs-write PATH MODE [p]");
        const char *base = strrchr(path, '/') + 1;
        if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
                return fail_plain(EINVAL, "%s: not a file's name", path);
        catch_signals();
        umask(0);
        _cleanup_close_ int dfd = write_dir(path, base, parents);
        if (dfd < 0)
                return EXIT_FAILED;
        struct stat st;
        if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
                return fail_errno(EISDIR, "%s", path);
        char tmp[40], hex[17];
        int fd = -1;
        for (int tries = 0; fd < 0 && tries < 100; tries++) {
                random_hex(hex, 8);
                snprintf(tmp, sizeof(tmp), ".msb-write-%s", hex);
                fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0 && errno != EEXIST)
                        return fail_errno(errno, "%s: cannot make a temporary file next to it", path);
        }
        if (fd < 0)
                return fail_errno(EEXIST, "%s: cannot make a temporary file next to it", path);
        int r = take_stdin(fd);
        if (r == 0 && fchmod(fd, (mode_t)mode) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && interrupted)
                r = -EINTR;
        if (r == 0 && renameat(dfd, tmp, dfd, base) < 0)
                r = -errno;
        if (r < 0) {
                unlinkat(dfd, tmp, 0);
                return r == -EINTR ? fail_plain(EINTR, "%s: the write was interrupted; the file is as it was", path)
                                   : fail_errno(-r, "%s", path);
        }
        return 0;
}

/* ---- watch ---- */

#define WATCH_MASK                                                                                             \
        (IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | \
         IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

struct watched {
        int wd;
        char *path;
};

struct watch {
        int fd;
        bool recursive;
        int top; /* the top's wd */
        const char *top_path;
        struct watched *v;
        size_t n;
};

static struct watched *watch_find(struct watch *w, int wd)
{
        for (size_t i = 0; i < w->n; i++)
                if (w->v[i].wd == wd)
                        return &w->v[i];
        return NULL;
}

/* A watch on the directory path (not through a symlink, but for the
 * top): 0, or the routine's exit status once it has complained.  The
 * same directory again (moved within the tree) keeps its wd, with the
 * new path. */
static int watch_add(struct watch *w, const char *path, bool top)
{
        int wd = inotify_add_watch(w->fd, path, WATCH_MASK | (top ? 0 : IN_DONT_FOLLOW));
        if (wd < 0 && errno == ENOSPC)
                return fail_plain(ENOSPC, "%s: the guest's limit of inotify watches is reached (%u directories "
                                  "watched): watch a smaller tree", w->top_path, (unsigned)w->n);
        if (wd < 0)
                return top ? fail_errno(errno, "%s", path) : 0; /* gone, or not a directory any more */
        struct watched *old = watch_find(w, wd);
        if (old) {
                free(old->path);
                old->path = xstrdup(path);
                return 0;
        }
        if (w->n == FSOPS_MAX_WATCHES) {
                inotify_rm_watch(w->fd, wd);
                return fail_plain(ENOSPC, "%s: more than %u directories to watch: watch a smaller tree",
                                  w->top_path, FSOPS_MAX_WATCHES);
        }
        if (w->n % 64 == 0)
                w->v = xrealloc(w->v, (w->n + 64) * sizeof(*w->v));
        w->v[w->n++] = (struct watched){wd, xstrdup(path)};
        if (top)
                w->top = wd;
        return 0;
}

/* Watches for path and every directory below it, breadth first, holding
 * no directory open while it goes down. */
static int watch_tree(struct watch *w, const char *path, bool top)
{
        char **queue = NULL;
        strv_push(&queue, path);
        size_t queued = 1;
        int r = 0;
        char child[FILEREC_MAX_PATH + 2];
        for (size_t i = 0; queue[i] && r == 0; i++) {
                if ((r = watch_add(w, queue[i], top && i == 0)) != 0 || !w->recursive)
                        break;
                DIR *d = opendir(queue[i]);
                struct dirent *de;
                while (d && (de = readdir(d))) {
                        struct stat st;
                        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
                            (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) || !join(child, queue[i], de->d_name) ||
                            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
                                continue;
                        if (w->n + queued - i > FSOPS_MAX_WATCHES) {
                                r = fail_plain(ENOSPC, "%s: more than %u directories to watch: watch a smaller tree",
                                               w->top_path, FSOPS_MAX_WATCHES);
                                break;
                        }
                        strv_push(&queue, child);
                        queued++;
                }
                if (d)
                        closedir(d);
        }
        strv_free(queue);
        return r;
}

/* A directory moved away: its watches and those below it go (it gets new
 * ones if it lands inside the tree). */
static void watch_forget(struct watch *w, const char *path)
{
        size_t n = strlen(path);
        for (size_t i = 0; i < w->n;) {
                const char *p = w->v[i].path;
                if (w->v[i].wd != w->top && !strncmp(p, path, n) && (!p[n] || p[n] == '/')) {
                        inotify_rm_watch(w->fd, w->v[i].wd);
                        free(w->v[i].path);
                        w->v[i] = w->v[--w->n];
                } else
                        i++;
        }
}

static const char *event_op(uint32_t mask)
{
        return mask & (IN_CREATE | IN_MOVED_TO) ? "create"
               : mask & IN_MODIFY               ? "write"
               : mask & IN_DELETE               ? "remove"
               : mask & IN_MOVED_FROM           ? "rename"
               : mask & IN_ATTRIB               ? "chmod"
                                                : NULL;
}

/* One inotify event: its record, and the watches it changes.  0, or the
 * exit status the routine ends with. */
static int watch_event(struct watch *w, const struct inotify_event *ev)
{
        if (ev->mask & IN_Q_OVERFLOW)
                return fail_plain(EOVERFLOW, "%s: events were lost (the guest's queue overflowed): watch again",
                                  w->top_path);
        struct watched *dir = watch_find(w, ev->wd);
        if (!dir)
                return 0;
        if (ev->wd == w->top && (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)))
                return fail_plain(ENOENT, "%s: it was %s", w->top_path,
                                  ev->mask & IN_DELETE_SELF ? "removed" : "moved away");
        if (ev->mask & IN_IGNORED) {
                free(dir->path);
                *dir = w->v[--w->n];
                return 0;
        }
        /* a directory's own events but the top's: its parent's watch has them */
        const char *op = event_op(ev->mask);
        if (!op || (!ev->len && ev->wd != w->top))
                return 0;
        char path[FILEREC_MAX_PATH + 2];
        if (!ev->len)
                snprintf(path, sizeof(path), "%s", dir->path);
        else if (!join(path, dir->path, ev->name))
                return 0;
        bool isdir = ev->mask & IN_ISDIR;
        struct stat st;
        const char *type = isdir ? "dir" : "file";
        if (!isdir && !(ev->mask & (IN_DELETE | IN_MOVED_FROM)) && lstat(path, &st) == 0)
                type = filerec_type(st.st_mode);
        filerec_put_event(&out, op, type, path);
        if (w->recursive && isdir && (ev->mask & IN_MOVED_FROM))
                watch_forget(w, path);
        if (w->recursive && isdir && (ev->mask & (IN_CREATE | IN_MOVED_TO)))
                return watch_tree(w, path, false);
        return 0;
}

static int watch_run(struct watch *w)
{
        /* aligned for struct inotify_event */
        _Alignas(struct inotify_event) char buf[64 * 1024];
        for (;;) {
                ssize_t k = read(w->fd, buf, sizeof(buf));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return fail_errno(k < 0 ? errno : EIO, "%s: inotify", w->top_path);
                for (char *p = buf; p < buf + k;) {
                        const struct inotify_event *ev = (const struct inotify_event *)p;
                        int r = watch_event(w, ev);
                        if (r != 0) {
                                flush();
                                return r;
                        }
                        p += sizeof(*ev) + ev->len;
                }
                flush();
        }
}

static int fs_watch(int argc, char **argv)
{
        struct watch w = {.top_path = argv[1], .top = -1};
        if (!flag_arg(argc, argv, 2, "r", &w.recursive))
                return fail_plain(EINVAL, "usage: fs-watch PATH [r]");
        struct stat st;
        if (stat(argv[1], &st) < 0)
                return fail_errno(errno, "%s", argv[1]);
        if (!S_ISDIR(st.st_mode))
                return fail_errno(ENOTDIR, "%s", argv[1]);
        w.fd = inotify_init1(IN_CLOEXEC);
        if (w.fd < 0)
                return fail_errno(errno, "%s: inotify", argv[1]);
        int r = watch_tree(&w, argv[1], true);
        if (r == 0) {
                filerec_put_event(&out, "ready", "dir", argv[1]);
                flush();
                r = watch_run(&w);
        }
        for (size_t i = 0; i < w.n; i++)
                free(w.v[i].path);
        free(w.v);
        close(w.fd);
        return r;
}

/* ---- the dispatch ---- */

static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
        int min, max; /* arguments, argv[0] included */
        int paths;    /* how many of the first arguments are absolute paths */
} routines[] = {
        {"fs-stat", fs_stat, 2, 2, 1},     {"fs-list", fs_list, 4, 4, 1},   {"fs-mkdir", fs_mkdir, 3, 4, 1},
        {"fs-remove", fs_remove, 2, 3, 1}, {"fs-rename", fs_rename, 3, 3, 2}, {"fs-read", fs_read, 4, 4, 1},
        {"fs-write", fs_write, 3, 4, 1},   {"fs-watch", fs_watch, 2, 3, 1},
};

int fsops_main(int argc, char **argv)
{
        for (size_t i = 0; i < sizeof(routines) / sizeof(routines[0]); i++) {
                if (strcmp(argv[0], routines[i].name))
                        continue;
                if (argc < routines[i].min || argc > routines[i].max)
                        return fail_plain(EINVAL, "%s: wrong number of arguments", argv[0]);
                for (int k = 1; k <= routines[i].paths; k++)
                        if (!abs_path(argv[k]))
                                return fail_plain(EINVAL, "%s: not an absolute path of at most %u bytes", argv[k],
                                                  FILEREC_MAX_PATH);
                int r = routines[i].fn(argc, argv);
                msb_buf_free(&out);
                return r;
        }
        return fail_plain(ENOSYS, "'%s' is not a routine of agentd", argv[0]);
}
