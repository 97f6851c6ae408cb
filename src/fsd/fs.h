/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The FUSE half of msb-fsd: answers the guest kernel's FUSE requests (wire
 * format from linux/fuse.h) against one share on the host, applying the
 * share's policy.  Transport-free: vhost.c hands it copied request bytes.
 *
 * Confinement: host files are reached only through O_PATH fds held per
 * inode, starting from the share's root; every name from the guest is one
 * checked path component opened with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS); symlinks are stored and never
 * followed; only regular files and directories are ever opened for I/O.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FS_MAX_WRITE (1u << 20)
/* request and reply buffers: the largest write or read plus headers */
#define FS_BUF_SIZE (FS_MAX_WRITE + 4096)

enum fs_owner_mode {
        FS_OWNER_VIRTUAL,     /* guest uid/gid/mode/rdev kept in a user.* xattr */
        FS_OWNER_PASSTHROUGH, /* applied to the host inode, as virtiofsd does */
};

struct fs_config {
        const char *path;      /* a directory, or with single_file a regular file */
        bool single_file;      /* the root holds exactly this file */
        bool read_only;        /* every mutation answers EROFS */
        enum fs_owner_mode owner;
        double timeout;        /* seconds the guest may cache entries and attributes */
        bool immutable;        /* read-only, and nothing changes it while served (an
                                * image root): files open without an OPEN round trip */
};

struct fs;
/* The process's working directory must be /proc/self/fd while it serves:
 * inodes are reopened and their xattrs reached through it.  Open the share; on failure returns -errno and writes a reason to err. */
int fs_new(const struct fs_config *c, struct fs **ret, char *err, size_t errsz);
/* n shares behind one device.  With multi, the root is a made-up directory
 * whose entry "K" is share K (its root directory, or for a single-file share
 * the file itself), each with its own policy; the guest mounts it once and
 * bind-mounts the entries.  Without, n must be 1 and the root is the share. */
int fs_new_multi(const struct fs_config *c, size_t n, bool multi, struct fs **ret, char *err, size_t errsz);
void fs_free(struct fs *fs);
struct vu_elem;
/* One request in, one reply out (see vu_handler); 0 means no reply. */
size_t fs_handle(void *fs, const uint8_t *in, size_t inlen, const struct vu_elem *e, uint8_t *out, size_t outcap);

/* The xattr holding virtualized ownership, hidden from the guest. */
#define FS_XATTR_PREFIX "user.msb."
#define FS_XATTR_STAT "user.msb.stat"
/* On a directory share's root: some file below may carry FS_XATTR_STAT
 * (without it the server does not look, which saves a system call per
 * inode). */
#define FS_XATTR_MARK "user.msb.virt"
