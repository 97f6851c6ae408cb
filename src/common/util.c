/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers every binary shares (util.h). */
#define _GNU_SOURCE
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>

void *xmalloc(size_t n)
{
        void *p = malloc(n ? n : 1);
        if (!p)
                abort();
        return p;
}

void *xcalloc(size_t n, size_t m)
{
        void *p = calloc(n ? n : 1, m ? m : 1);
        if (!p)
                abort();
        return p;
}

void *xrealloc(void *p, size_t n)
{
        p = realloc(p, n ? n : 1);
        if (!p)
                abort();
        return p;
}

char *xstrdup(const char *s)
{
        char *p = strdup(s);
        if (!p)
                abort();
        return p;
}

char *xasprintf(const char *fmt, ...)
{
        va_list ap;
        char *s;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                abort();
        va_end(ap);
        return s;
}

void strv_free(char **v)
{
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

size_t strv_len(char *const *v)
{
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

void strv_push_take(char ***v, char *s)
{
        size_t n = strv_len(*v);
        *v = xrealloc(*v, (n + 2) * sizeof(char *));
        (*v)[n] = s;
        (*v)[n + 1] = NULL;
}

bool strv_contains(char *const *v, const char *s)
{
        for (; v && *v; v++)
                if (!strcmp(*v, s))
                        return true;
        return false;
}

void strv_push(char ***v, const char *s)
{
        strv_push_take(v, xstrdup(s));
}

int write_all(int fd, const void *buf, size_t len)
{
        const uint8_t *p = buf;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

ssize_t read_all(int fd, void *buf, size_t len)
{
        uint8_t *p = buf;
        size_t got = 0;
        while (got < len) {
                ssize_t n = read(fd, p + got, len - got);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                got += (size_t)n;
        }
        return (ssize_t)got;
}

static int read_fd(int fd, size_t max, char **ret_data, size_t *ret_len);

int read_file_at(int dirfd, const char *path, size_t max, char **ret_data, size_t *ret_len)
{
        /* O_NONBLOCK: a fifo where a file should be must not hang us */
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        return read_fd(fd, max, ret_data, ret_len);
}

int read_file_in_root(int rootfd, const char *path, size_t max, char **ret_data, size_t *ret_len)
{
        struct open_how how = {
                .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        _cleanup_close_ int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
        if (fd < 0)
                return -errno;
        return read_fd(fd, max, ret_data, ret_len);
}

int open_beneath_at(int dirfd, const char *path)
{
        struct open_how how = {
                .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
        return fd < 0 ? -errno : fd;
}

int read_file_beneath(int dirfd, const char *path, size_t max, char **ret_data, size_t *ret_len)
{
        _cleanup_close_ int fd = open_beneath_at(dirfd, path);
        if (fd < 0)
                return fd;
        return read_fd(fd, max, ret_data, ret_len);
}

static int read_fd(int fd, size_t max, char **ret_data, size_t *ret_len)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((uint64_t)st.st_size > max)
                return -EFBIG;
        /* procfs and sysfs report size 0: read until EOF, never past max */
        size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, len = 0;
        _cleanup_free_ char *buf = xmalloc(cap);
        for (;;) {
                if (len + 1 >= cap) {
                        if (cap > max + 1)
                                return -EFBIG;
                        cap *= 2;
                        buf = xrealloc(buf, cap);
                }
                ssize_t n = read(fd, buf + len, cap - 1 - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max)
                        return -EFBIG;
        }
        buf[len] = '\0';
        if (ret_len)
                *ret_len = len;
        *ret_data = TAKE_PTR(buf);
        return 0;
}

static int write_file_renamed(int dirfd, const char *path, const void *data, size_t len, mode_t mode, bool durable)
{
        char hex[17];
        int r = random_hex(hex, 8);
        if (r < 0)
                return r;
        _cleanup_free_ char *tmp = xasprintf("%s.tmp-%s", path, hex);
        _cleanup_close_ int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        r = write_all(fd, data, len);
        if (r == 0 && durable && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && renameat(dirfd, tmp, dirfd, path) < 0)
                r = -errno;
        if (r < 0)
                unlinkat(dirfd, tmp, 0);
        return r;
}

int write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode)
{
        return write_file_renamed(dirfd, path, data, len, mode, true);
}

int write_file_replace_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode)
{
        return write_file_renamed(dirfd, path, data, len, mode, false);
}

int mkdir_p(const char *path, mode_t mode)
{
        _cleanup_free_ char *p = xstrdup(path);
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        struct stat st;
        if (stat(p, &st) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

DIR *fdopendir_dup(int dfd)
{
        int d = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
        if (d < 0)
                return NULL;
        DIR *dir = fdopendir(d);
        if (!dir) {
                int e = errno;
                close(d);
                errno = e;
        }
        return dir;
}

/*
 * Remove everything below dfd (consumed), iteratively: descend into a
 * non-empty child, empty it, climb back through "..", and rescan.  One
 * directory fd at a time and no recursion, so no depth of tree (an image
 * may make one thousands of levels deep) can exhaust fds or stack.  The
 * first failure stops the whole removal (a rescan would only meet it again).
 */
static int rm_children(int dfd)
{
        int cur = dfd, depth = 0, r = 0;
        for (;;) {
                DIR *d = fdopendir_dup(cur);
                if (!d) {
                        r = -errno;
                        break;
                }
                int down = -1;
                struct dirent *de;
                while (r == 0 && down < 0 && (de = readdir(d))) {
                        const char *n = de->d_name;
                        if (!strcmp(n, ".") || !strcmp(n, ".."))
                                continue;
                        if (unlinkat(cur, n, 0) == 0 || errno == ENOENT)
                                continue;
                        /* a directory left read-only (a copy cut short,
                         * a Go module cache): ours, so made writable */
                        if (errno == EACCES && fchmod(cur, 0700) == 0 && (unlinkat(cur, n, 0) == 0 || errno == ENOENT))
                                continue;
                        if (errno != EISDIR && errno != EPERM) {
                                r = -errno;
                                break;
                        }
                        if (unlinkat(cur, n, AT_REMOVEDIR) == 0 || errno == ENOENT)
                                continue;
                        if (errno != ENOTEMPTY && errno != EEXIST) {
                                r = -errno;
                                break;
                        }
                        down = openat(cur, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (down < 0 && errno == EACCES && fchmodat(cur, n, 0700, 0) == 0)
                                down = openat(cur, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (down < 0)
                                r = -errno;
                }
                closedir(d);
                if (down >= 0) {
                        close(cur);
                        cur = down;
                        depth++;
                        continue;
                }
                if (r < 0 || depth == 0)
                        break;
                /* emptied: back to the parent, whose rescan removes it */
                int up = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                close(cur);
                if (up < 0)
                        return -errno;
                cur = up;
                depth--;
        }
        close(cur);
        return r;
}

int rm_rf_at(int dirfd, const char *name)
{
        if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return -errno;
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        int r = rm_children(fd);
        if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
                r = -errno;
        return r;
}

int rm_rf(const char *path)
{
        return rm_rf_at(AT_FDCWD, path);
}

int random_hex(char *out, size_t len)
{
        uint8_t buf[64];
        if (len > sizeof(buf))
                return -EINVAL;
        size_t got = 0;
        while (got < len) {
                ssize_t n = getrandom(buf + got, len - got, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                got += (size_t)n;
        }
        static const char hexd[] = "0123456789abcdef";
        for (size_t i = 0; i < len; i++) {
                out[2 * i] = hexd[buf[i] >> 4];
                out[2 * i + 1] = hexd[buf[i] & 15];
        }
        out[2 * len] = '\0';
        return 0;
}

bool str_has_prefix(const char *s, const char *prefix)
{
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

struct dirent *readdir_no_dot(DIR *d)
{
        struct dirent *de;
        while ((de = readdir(d)) && de->d_name[0] == '.') {
        }
        return de;
}
