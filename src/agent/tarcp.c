/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb cp inside the guest: the routines agentd runs for an EXEC with
 * MSB_EXEC_INTERNAL (proto.h), in a child of its own, their stdin and
 * stdout the copy's streams:
 *
 *   cp-out PATH NAME      a tar of PATH on stdout (common/tarw.c), its top
 *                         entry named NAME
 *   cp-in DST NAME [a]    the tar on stdin, placed where docker cp puts it
 *                         for destination DST: into DST when it is a
 *                         directory (NAME "." merges the contents), else as
 *                         DST itself, made in a temporary directory next to
 *                         it and renamed into place
 *
 * The archive comes from msb on the host, made by tarw.c; it is still read
 * with every bound checked, and everything is placed through directories
 * opened beneath the target with RESOLVE_BENEATH, never through a symlink
 * at an entry's own name: the guest's processes may change the tree while
 * the copy runs, and an entry never lands outside the target.  Owners are
 * root's, or the archive's with "a" (docker cp -a); modes (setuid bits
 * included) and modification times are the archive's.
 *
 * Errors: one line on stderr; exit 2 when a path the user named does not
 * exist, else 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/error.h"
#include "common/tarw.h"
#include "common/util.h"

#define BLOCK 512u
#define INBUF (64u * 1024u)
/* A pax header is a few records for one entry. */
#define PAX_MAX (64u * 1024u)

enum { EXIT_FAILED = 1, EXIT_MISSING = 2 };

/* SIGINT (msb cp's Ctrl-C), SIGTERM (its client went away), SIGHUP: a
 * copy in stops reading and takes its temporary directory away. */
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

static int complain(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int complain(int status, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        dprintf(2, "%s\n", msg);
        return status;
}

/* ---- cp-out ---- */

static int cp_out(int argc, char **argv)
{
        if (argc != 3)
                return complain(EXIT_FAILED, "usage: cp-out PATH NAME");
        struct msb_error err = {0};
        struct tarw_stats st;
        int r = tarw_tree(1, AT_FDCWD, argv[1], argv[2], &st, &err);
        if (r < 0)
                return complain(r == -ENOENT ? EXIT_MISSING : EXIT_FAILED, "%s", err.message);
        /* the host reports what could not be copied */
        if (st.skipped)
                dprintf(2, "skipped=%llu\n", (unsigned long long)st.skipped);
        return 0;
}

/* ---- reading the archive ---- */

struct in {
        uint8_t buf[INBUF];
        size_t off, len;
};

/* Exactly n bytes of stdin: 0, or -1 at its end (a truncated archive). */
static int in_read(struct in *in, void *p, size_t n)
{
        uint8_t *d = p;
        while (n > 0) {
                if (interrupted)
                        return -1;
                if (in->off == in->len) {
                        ssize_t k = read(0, in->buf, sizeof(in->buf));
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0)
                                return -1;
                        in->off = 0;
                        in->len = (size_t)k;
                }
                size_t k = in->len - in->off < n ? in->len - in->off : n;
                if (d) {
                        memcpy(d, in->buf + in->off, k);
                        d += k;
                }
                in->off += k;
                n -= k;
        }
        return 0;
}

struct entry {
        char type;
        char path[TARW_MAX_PATH], link[TARW_MAX_PATH];
        uint64_t size, mode, uid, gid;
        struct timespec mtime;
        bool pax_path, pax_link, pax_size, pax_mtime;
};

static bool get_num(const uint8_t *f, size_t n, uint64_t *ret)
{
        uint64_t v = 0;
        size_t i = 0;
        if (f[0] & 0x80) { /* base-256 */
                for (v = f[0] & 0x3f, i = 1; i < n && !(v >> 55); i++)
                        v = (v << 8) | f[i];
                *ret = v;
                return i == n && !(f[0] & 0x40);
        }
        for (; i < n && f[i] == ' '; i++) {
        }
        for (; i < n && f[i] >= '0' && f[i] <= '7' && !(v >> 60); i++)
                v = v * 8 + (uint64_t)(f[i] - '0');
        *ret = v;
        return i == n || f[i] == '\0' || f[i] == ' ';
}

static bool set_str(char *dst, const char *src, size_t n)
{
        if (n >= TARW_MAX_PATH || memchr(src, '\0', n))
                return false;
        memcpy(dst, src, n);
        dst[n] = '\0';
        return true;
}

/* One "LEN key=value\n" record at p (n bytes left): its length, or 0. */
static size_t pax_record(struct entry *e, const char *p, size_t n)
{
        char *end;
        unsigned long len = strtoul(p, &end, 10);
        if (end == p || *end != ' ' || len > n || len < 5 || p[len - 1] != '\n')
                return 0;
        const char *k = end + 1, *eq = memchr(k, '=', (size_t)(p + len - k));
        if (!eq)
                return 0;
        const char *v = eq + 1;
        size_t klen = (size_t)(eq - k), vlen = (size_t)(p + len - 1 - v);
        char num[32];
        if (klen == 4 && !memcmp(k, "path", 4))
                e->pax_path = set_str(e->path, v, vlen);
        else if (klen == 8 && !memcmp(k, "linkpath", 8))
                e->pax_link = set_str(e->link, v, vlen);
        else if (klen == 4 && !memcmp(k, "size", 4) && vlen < sizeof(num) && set_str(num, v, vlen))
                e->pax_size = (e->size = strtoull(num, NULL, 10), true);
        else if (klen == 5 && !memcmp(k, "mtime", 5) && vlen < sizeof(num) && set_str(num, v, vlen)) {
                double frac = 0;
                char *dot = strchr(num, '.');
                if (dot)
                        frac = strtod(dot, NULL);
                e->mtime = (struct timespec){(time_t)strtoll(num, NULL, 10), (long)(frac * 1e9 + 0.5)};
                if (e->mtime.tv_nsec > 999999999)
                        e->mtime.tv_nsec = 999999999;
                e->pax_mtime = true;
        }
        return len;
}

static int read_pax(struct in *in, struct entry *e, uint64_t size)
{
        if (size > PAX_MAX)
                return -1;
        _cleanup_free_ char *p = xmalloc((size_t)size + 1);
        if (in_read(in, p, (size_t)size) < 0 || in_read(in, NULL, (BLOCK - size % BLOCK) % BLOCK) < 0)
                return -1;
        p[size] = '\0';
        for (size_t off = 0, k; off < size; off += k)
                if (!(k = pax_record(e, p + off, (size_t)size - off)))
                        return -1;
        return 0;
}

/* A GNU long name ('L') or link target ('K'), as a tar from stdin may
 * have them. */
static int read_long(struct in *in, struct entry *e, char type, uint64_t size)
{
        char buf[TARW_MAX_PATH];
        if (size >= sizeof(buf) || in_read(in, buf, (size_t)size) < 0 ||
            in_read(in, NULL, (BLOCK - size % BLOCK) % BLOCK) < 0)
                return -1;
        size_t n = strnlen(buf, (size_t)size);
        if (type == 'L')
                e->pax_path = set_str(e->path, buf, n);
        else
                e->pax_link = set_str(e->link, buf, n);
        return 0;
}

static bool checksum_ok(const uint8_t *h)
{
        uint64_t want, sum = 0;
        for (unsigned i = 0; i < BLOCK; i++)
                sum += i >= 148 && i < 156 ? ' ' : h[i];
        return get_num(h + 148, 8, &want) && want == sum;
}

/* The fields of a ustar header that pax records did not set. */
static bool from_header(struct entry *e, const uint8_t *h)
{
        uint64_t size, mtime;
        e->type = (char)h[156];
        if (!get_num(h + 100, 8, &e->mode) || !get_num(h + 108, 8, &e->uid) || !get_num(h + 116, 8, &e->gid) ||
            !get_num(h + 124, 12, &size) || !get_num(h + 136, 12, &mtime))
                return false;
        if (!e->pax_size)
                e->size = size;
        if (!e->pax_mtime)
                e->mtime = (struct timespec){(time_t)mtime, 0};
        char name[BLOCK];
        size_t pn = strnlen((const char *)h + 345, 155), nn = strnlen((const char *)h, 100);
        snprintf(name, sizeof(name), "%.*s%s%.*s", (int)pn, h + 345, pn ? "/" : "", (int)nn, h);
        if (!e->pax_path)
                snprintf(e->path, sizeof(e->path), "%s", name);
        if (!e->pax_link)
                snprintf(e->link, sizeof(e->link), "%.*s", (int)strnlen((const char *)h + 157, 100), h + 157);
        return true;
}

/* The next entry: 1, 0 at the end of the archive, -1 for a malformed or
 * truncated one.  Extended headers (pax, GNU long names) go into the entry
 * that follows them; pax global headers are read past. */
static int next_entry(struct in *in, struct entry *e)
{
        uint8_t h[BLOCK];
        memset(e, 0, sizeof(*e));
        for (int zeros = 0;;) {
                if (in_read(in, h, BLOCK) < 0)
                        return -1;
                bool zero = true;
                for (unsigned i = 0; i < BLOCK && zero; i++)
                        zero = !h[i];
                if (zero && ++zeros == 2)
                        return 0;
                if (zero)
                        continue;
                uint64_t size;
                if (!checksum_ok(h) || !get_num(h + 124, 12, &size))
                        return -1;
                int r = h[156] == 'x' ? read_pax(in, e, size)
                        : h[156] == 'L' || h[156] == 'K' ? read_long(in, e, h[156], size)
                        : h[156] == 'g' ? in_read(in, NULL, size + (BLOCK - size % BLOCK) % BLOCK)
                                        : from_header(e, h) ? 1 : -1;
                if (r != 0)
                        return r;
        }
}

/* ---- placing entries ---- */

struct dirmeta {
        char *path;
        mode_t mode;
        struct timespec mtime;
};

struct extract {
        struct in in;
        int rootfd;
        bool keep_owners;
        bool root_meta;    /* a "." top's mode and time go to the root itself */
        struct dirmeta *dirs;
        size_t ndirs, capdirs;
        char why[1024];
};

static int failed(struct extract *x, const char *path, int e, const char *what)
{
        if (what)
                snprintf(x->why, sizeof(x->why), "%s: %s", path, what);
        else
                snprintf(x->why, sizeof(x->why), "%s", errno_msg(e, "%s", path).s);
        return -1;
}

static int open_beneath(int rootfd, const char *path, int flags)
{
        struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
        return (int)syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof(how));
}

/* The directory dir beneath the root, made (0755, root's) as needed. */
static int open_dir(struct extract *x, const char *dir)
{
        char p[TARW_MAX_PATH];
        snprintf(p, sizeof(p), "%s", dir);
        for (char *s = p;; s++) {
                if (*s && *s != '/')
                        continue;
                char saved = *s;
                *s = '\0';
                int fd = open_beneath(x->rootfd, p, O_PATH | O_DIRECTORY);
                if (fd < 0 && errno == ENOENT) {
                        char *slash = strrchr(p, '/');
                        if (slash)
                                *slash = '\0';
                        _cleanup_close_ int pfd = open_beneath(x->rootfd, slash ? p : "", O_PATH | O_DIRECTORY);
                        if (slash)
                                *slash = '/';
                        if (pfd < 0 || (mkdirat(pfd, slash ? slash + 1 : p, 0755) < 0 && errno != EEXIST))
                                return -1;
                        fd = open_beneath(x->rootfd, p, O_PATH | O_DIRECTORY);
                }
                if (fd < 0)
                        return -1;
                *s = saved;
                if (!saved)
                        return fd;
                close(fd);
        }
}

/* An archive name made relative: no leading "/" or "./", no "..". */
static bool clean(char *p)
{
        if (p[0] == '/')
                return false;
        char *o = p;
        for (char *s = p; *s;) {
                size_t k = strcspn(s, "/");
                if (k == 2 && s[0] == '.' && s[1] == '.')
                        return false;
                if (k && !(k == 1 && s[0] == '.')) {
                        if (o != p)
                                *o++ = '/';
                        memmove(o, s, k);
                        o += k;
                }
                s += k;
                s += strspn(s, "/");
        }
        *o = '\0';
        return true;
}

/* Make room for e at base: nothing there, or a non-directory removed for a
 * non-directory; a directory stays for a directory (*ret_dir).  A
 * directory never becomes anything else, nor the reverse. */
static int make_room(struct extract *x, int pfd, const char *base, const struct entry *e, bool *ret_dir)
{
        struct stat st;
        *ret_dir = false;
        if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : failed(x, e->path, errno, NULL);
        bool want_dir = e->type == '5';
        if (S_ISDIR(st.st_mode) != want_dir)
                return failed(x, e->path, 0, want_dir ? "cannot overwrite a non-directory with a directory"
                                                      : "cannot overwrite a directory with a non-directory");
        *ret_dir = want_dir;
        if (!want_dir && unlinkat(pfd, base, 0) < 0 && errno != ENOENT)
                return failed(x, e->path, errno, NULL);
        return 0;
}

static void set_owner(struct extract *x, int dfd, const char *name, const struct entry *e, int flags)
{
        uid_t u = x->keep_owners ? (uid_t)e->uid : 0;
        gid_t g = x->keep_owners ? (gid_t)e->gid : 0;
        (void)!fchownat(dfd, name, u, g, flags);
}

static int copy_body(struct extract *x, int fd, const struct entry *e)
{
        uint8_t buf[INBUF];
        for (uint64_t left = e->size; left > 0;) {
                size_t k = left < sizeof(buf) ? (size_t)left : sizeof(buf);
                if (in_read(&x->in, buf, k) < 0)
                        return failed(x, e->path, 0, "the archive is truncated");
                if (write_all(fd, buf, k) < 0)
                        return failed(x, e->path, errno, NULL);
                left -= k;
        }
        return 0;
}

static int place_file(struct extract *x, int pfd, const char *base, const struct entry *e)
{
        _cleanup_close_ int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return failed(x, e->path, errno, NULL);
        if (copy_body(x, fd, e) < 0)
                return -1;
        /* chown first: it clears setuid bits */
        set_owner(x, fd, "", e, AT_EMPTY_PATH);
        struct timespec ts[2] = {e->mtime, e->mtime};
        if (fchmod(fd, (mode_t)(e->mode & 07777)) < 0 || futimens(fd, ts) < 0)
                return failed(x, e->path, errno, NULL);
        return 0;
}

static void dir_defer(struct extract *x, const char *path, const struct entry *e)
{
        if (x->ndirs == x->capdirs)
                x->dirs = xrealloc(x->dirs, (x->capdirs = x->capdirs ? 2 * x->capdirs : 64) * sizeof(*x->dirs));
        x->dirs[x->ndirs++] = (struct dirmeta){xstrdup(path), (mode_t)(e->mode & 07777), e->mtime};
}

static int place_dir(struct extract *x, int pfd, const char *base, bool exists, const struct entry *e)
{
        if (!exists && mkdirat(pfd, base, 0700) < 0)
                return failed(x, e->path, errno, NULL);
        set_owner(x, pfd, base, e, AT_SYMLINK_NOFOLLOW);
        dir_defer(x, e->path, e);
        return 0;
}

/* Modes and times of the directories, deepest first, once all is in them
 * (each found again beneath the root, not through a symlink at its name). */
static void dirs_finish(struct extract *x)
{
        for (size_t i = x->ndirs; i-- > 0;) {
                int fd = open_beneath(x->rootfd, x->dirs[i].path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
                if (fd >= 0) {
                        struct timespec ts[2] = {x->dirs[i].mtime, x->dirs[i].mtime};
                        (void)!fchmod(fd, x->dirs[i].mode);
                        futimens(fd, ts);
                        close(fd);
                }
                free(x->dirs[i].path);
        }
        free(x->dirs);
}

static int place_symlink(struct extract *x, int pfd, const char *base, const struct entry *e)
{
        if (!e->link[0] || symlinkat(e->link, pfd, base) < 0)
                return failed(x, e->path, e->link[0] ? errno : EINVAL, NULL);
        set_owner(x, pfd, base, e, AT_SYMLINK_NOFOLLOW);
        struct timespec ts[2] = {e->mtime, e->mtime};
        utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
        return 0;
}

static int place_link(struct extract *x, int pfd, const char *base, struct entry *e)
{
        if (!clean(e->link) || !e->link[0])
                return failed(x, e->path, 0, "bad hard link target");
        char *slash = strrchr(e->link, '/');
        if (slash)
                *slash = '\0';
        _cleanup_close_ int tfd = open_beneath(x->rootfd, slash ? e->link : "", O_PATH | O_DIRECTORY);
        if (tfd < 0 || linkat(tfd, slash ? slash + 1 : e->link, pfd, base, 0) < 0)
                return failed(x, e->path, errno, NULL);
        return 0;
}

static bool is_file(char type)
{
        return type == '0' || type == '\0' || type == '7';
}

/* The entry in its directory (made as needed); a file takes its body. */
static int place(struct extract *x, struct entry *e)
{
        if (!clean(e->path))
                return failed(x, e->path, 0, "a name outside the destination");
        if (!e->path[0]) { /* a "." top: the target itself */
                if (x->root_meta && e->type == '5')
                        dir_defer(x, "", e);
                return 0;
        }
        if (!is_file(e->type) && e->type != '5' && e->type != '2' && e->type != '1')
                return 0; /* nothing else is copied */
        char *slash = strrchr(e->path, '/');
        if (slash)
                *slash = '\0';
        _cleanup_close_ int pfd = open_dir(x, slash ? e->path : "");
        int err = errno;
        if (slash)
                *slash = '/';
        const char *base = slash ? slash + 1 : e->path;
        bool exists_dir;
        if (pfd < 0)
                return failed(x, e->path, err, NULL);
        if (make_room(x, pfd, base, e, &exists_dir) < 0)
                return -1;
        switch (e->type) {
        case '5':
                return place_dir(x, pfd, base, exists_dir, e);
        case '2':
                return place_symlink(x, pfd, base, e);
        case '1':
                return place_link(x, pfd, base, e);
        default:
                return place_file(x, pfd, base, e);
        }
}

/* Every entry of stdin's archive beneath x->rootfd. */
static int extract(struct extract *x)
{
        struct entry *e = xmalloc(sizeof(*e));
        int r;
        while ((r = next_entry(&x->in, e)) == 1) {
                if (place(x, e) < 0) {
                        r = -1;
                        break;
                }
                uint64_t body = is_file(e->type) ? 0 : e->size, pad = (BLOCK - e->size % BLOCK) % BLOCK;
                if (in_read(&x->in, NULL, body) < 0 || in_read(&x->in, NULL, pad) < 0) {
                        r = failed(x, e->path, 0, "the archive is truncated");
                        break;
                }
        }
        if (r < 0 && interrupted)
                snprintf(x->why, sizeof(x->why), "interrupted");
        else if (r < 0 && !x->why[0])
                snprintf(x->why, sizeof(x->why), "the archive is malformed or truncated");
        dirs_finish(x);
        free(e);
        return r;
}

/* ---- cp-in: where the copy lands ---- */

struct landing {
        const char *dst;
        int parentfd;   /* DST's directory, when the copy lands by rename */
        char tmp[32];   /* the temporary directory in it */
        const char *base; /* DST's last component */
        bool exists;    /* DST exists, a non-directory */
        bool slash;     /* DST was written with a trailing '/' */
};

/* DST an existing directory: the archive goes into it (its fd); else
 * into a temporary directory next to DST (its fd too).  Exit status on
 * failure, as a negative number. */
static int land_prepare(struct landing *l, char *dst)
{
        struct stat st;
        size_t n = strlen(dst);
        l->slash = n > 1 && dst[n - 1] == '/';
        int sr = stat(dst, &st);
        if (sr == 0 && S_ISDIR(st.st_mode)) {
                int fd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                return fd >= 0 ? fd : -complain(EXIT_FAILED, "%s", errno_msg(errno, "%s", dst).s);
        }
        if (sr < 0 && errno != ENOENT) {
                int e = errno;
                return -complain(e == ENOTDIR ? EXIT_MISSING : EXIT_FAILED, "%s", errno_msg(e, "%s", dst).s);
        }
        l->exists = sr == 0;
        while (n > 1 && dst[n - 1] == '/')
                dst[--n] = '\0';
        char *slash = strrchr(dst, '/');
        l->base = slash ? slash + 1 : dst;
        _cleanup_free_ char *parent = slash ? xasprintf("%.*s", (int)(slash - dst), dst) : xstrdup(".");
        l->parentfd = open(*parent ? parent : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (l->parentfd < 0) {
                int e = errno;
                return -complain(e == ENOENT || e == ENOTDIR ? EXIT_MISSING : EXIT_FAILED, "%s",
                                 errno_msg(e, "%s", *parent ? parent : "/").s);
        }
        for (int tries = 0; tries < 100; tries++) {
                char hex[17];
                random_hex(hex, 8);
                snprintf(l->tmp, sizeof(l->tmp), ".msb-cp-%s", hex);
                if (mkdirat(l->parentfd, l->tmp, 0700) < 0 && errno == EEXIST)
                        continue;
                int fd = openat(l->parentfd, l->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd >= 0)
                        return fd;
                l->tmp[0] = '\0';
                break;
        }
        return -complain(EXIT_FAILED, "%s",
                         errno_msg(errno, "%s: cannot make a temporary directory next to it", l->dst).s);
}

/* The copy made in the temporary directory becomes DST. */
static int land_finish(struct landing *l, int tmpfd, const char *name)
{
        bool dot = !strcmp(name, ".");
        struct stat st;
        if (!dot && fstatat(tmpfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return complain(EXIT_FAILED, "%s: the archive did not hold '%s'", l->dst, name);
        bool dir = dot || S_ISDIR(st.st_mode);
        if (l->exists && dir)
                return complain(EXIT_FAILED, "%s: cannot overwrite a non-directory with a directory", l->dst);
        if (l->slash && !dir)
                return complain(EXIT_MISSING, "%s: no such directory (a file is copied into an existing one)",
                                l->dst);
        int r = dot ? renameat(l->parentfd, l->tmp, l->parentfd, l->base)
                    : renameat(tmpfd, name, l->parentfd, l->base);
        if (r < 0)
                return complain(EXIT_FAILED, "%s", errno_msg(errno, "%s", l->dst).s);
        if (dot)
                l->tmp[0] = '\0'; /* it is DST now */
        return 0;
}

static int cp_in(int argc, char **argv)
{
        if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "a")))
                return complain(EXIT_FAILED, "usage: cp-in DST NAME [a]");
        struct landing l = {.dst = argv[1], .parentfd = -1};
        _cleanup_free_ char *dst = xstrdup(argv[1]);
        const char *name = argv[2];
        struct extract x = {.keep_owners = argc == 4};
        catch_signals();
        x.rootfd = land_prepare(&l, dst);
        if (x.rootfd < 0)
                return -x.rootfd;
        /* a "." into a new DST: the top's own mode and time are DST's */
        x.root_meta = l.tmp[0] && !strcmp(name, ".");
        int status = extract(&x) < 0 ? complain(EXIT_FAILED, "%s", x.why) : 0;
        if (status == 0 && l.tmp[0])
                status = land_finish(&l, x.rootfd, name);
        close(x.rootfd);
        if (l.tmp[0])
                rm_rf_at(l.parentfd, l.tmp);
        if (l.parentfd >= 0)
                close(l.parentfd);
        return status;
}

int tarcp_main(int argc, char **argv)
{
        if (!strcmp(argv[0], "cp-out"))
                return cp_out(argc, argv);
        if (!strcmp(argv[0], "cp-in"))
                return cp_in(argc, argv);
        return complain(127, "'%s' is not a routine of agentd", argv[0]);
}
