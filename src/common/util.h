/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers shared by the host library, the CLI and agentd: cleanup
 * attributes in the style of systemd/crun/bubblewrap, and fd-relative file
 * helpers.  Nothing here prints or exits.
 */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void freep(void *p)
{
        free(*(void **)p);
}
static inline void closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
void strv_free(char **v);
static inline void strv_freep(char ***v)
{
        strv_free(*v);
}

#define _cleanup_free_ __attribute__((cleanup(freep)))
#define _cleanup_close_ __attribute__((cleanup(closep)))
#define _cleanup_strv_ __attribute__((cleanup(strv_freep)))
static inline void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}
#define _cleanup_closedir_ __attribute__((cleanup(closedirp)))
static inline void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ __attribute__((cleanup(fclosep)))

/* Take ownership out of a cleanup variable. */
#define TAKE_PTR(p)                          \
        ({                                   \
                __typeof__(p) _tp_ = (p);    \
                (p) = NULL;                  \
                _tp_;                        \
        })
#define TAKE_FD(fd)                    \
        ({                             \
                int _tf_ = (fd);       \
                (fd) = -1;             \
                _tf_;                  \
        })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* malloc-or-abort: an out-of-memory here cannot be handled more usefully. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

size_t strv_len(char *const *v);
/* Append a copy of s to a NULL-terminated vector (reallocates). */
void strv_push(char ***v, const char *s);
bool strv_contains(char *const *v, const char *s);
/* Append and take ownership of s. */
void strv_push_take(char ***v, char *s);

/* Read/write whole fds, retrying on EINTR and short transfers. */
int write_all(int fd, const void *buf, size_t len);
ssize_t read_all(int fd, void *buf, size_t len);

/* Read a whole file (relative to dirfd) up to max bytes; NUL-terminates. */
int read_file_at(int dirfd, const char *path, size_t max, char **ret_data, size_t *ret_len);
/* The same, with path resolved as if rootfd were "/" (symlinks included):
 * for files inside an untrusted tree such as an image's root. */
int read_file_in_root(int rootfd, const char *path, size_t max, char **ret_data, size_t *ret_len);
/* Open path beneath dirfd for reading, through no symlink at all and
 * without blocking (a fifo): for archives and layouts, whose names are
 * untrusted.  -errno on failure. */
int open_beneath_at(int dirfd, const char *path);
/* read_file_at() through open_beneath_at(). */
int read_file_beneath(int dirfd, const char *path, size_t max, char **ret_data, size_t *ret_len);
/* Write a file atomically (tmp + rename) relative to dirfd. */
int write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode);
/* Readers see the old file or the whole new one, but nothing is promised
 * after a power cut (no fsync): for runtime state, which a reboot clears. */
int write_file_replace_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode);

/* mkdir -p; existing directories are fine. */
int mkdir_p(const char *path, mode_t mode);
/* Remove name inside dirfd recursively without following symlinks. */
int rm_rf_at(int dirfd, const char *name);
/* A directory stream over a duplicate of dfd, which stays the caller's;
 * NULL (errno set) on failure, with nothing leaked. */
DIR *fdopendir_dup(int dfd);
int rm_rf(const char *path);

/* Lowercase hex of len random bytes (getrandom); out has 2*len+1 bytes. */
int random_hex(char *out, size_t len);

bool str_has_prefix(const char *s, const char *prefix);

/* The next entry of d whose name does not start with '.' (not ".", "..",
 * nor a hidden or temporary name), or NULL at the end. */
struct dirent *readdir_no_dot(DIR *d);
