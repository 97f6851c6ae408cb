/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The FUSE half of msb-fsd: answers the guest kernel's FUSE requests (wire
 * format from linux/fuse.h) against one share on the host, applying the
 * share's policy.  Transport-free: vring.c hands it copied request bytes.
 *
 * Confinement: host files are reached only through O_PATH fds held per
 * inode, starting from the share's root; every name from the guest is one
 * checked path component opened with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS); symlinks are stored and never
 * followed; only regular files and directories are ever opened for I/O (a
 * device, fifo or socket is looked at through its O_PATH fd, never opened).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/vstat.h"

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

/*
 * What one server holds for its guest, at most (docs/fsd.md "Limits").  A
 * guest that reaches one gets an error for that request; the server and
 * the host go on.
 */
struct fs_limits {
        size_t handles;   /* open files and directories: EMFILE beyond */
        size_t inodes;    /* inodes the guest holds lookups on: ENFILE beyond */
        size_t inode_fds; /* fds kept by inodes; least recently used closed beyond */
};
/* OPEN, OPENDIR and CREATE handles, each a host fd (a made-up root's
 * listing has none, but memory).  Guest processes get 1024 files each by
 * default; 64 Ki open at once is past what a guest's processes together
 * keep, and 64 Ki host fds (plus as many O_PATH fds of their inodes) is
 * what a host can give every server. */
#define FS_MAX_HANDLES 65536u
/* Inodes, ~200 bytes of server memory each (measured: docs/fsd.md).  A
 * guest's kernel keeps every inode it looked up until memory pressure makes
 * it FORGET, at >= 1 KiB of its own memory each (fuse_inode 896 + dentry
 * 192 bytes on Linux 6.x), so no guest holds more than its RAM / 1 KiB:
 * msb-fsd sets the limit to that (FS_GUEST_BYTES_PER_INODE, from the
 * memory table), at least FS_MIN_INODES, at most this, which is what a
 * 2 GiB guest can hold.  A bigger guest running find over more files than
 * this gets ENFILE for the rest, until it forgets some. */
#define FS_MAX_INODES (1u << 21)
#define FS_MIN_INODES (1u << 17)
#define FS_GUEST_BYTES_PER_INODE 1024u
/* O_PATH (and no-OPEN read) fds kept open by inodes: beyond, the least
 * recently used inode's are closed, and reopened by name in its parent on
 * next use, so a guest holding a million inodes costs the host 16 Ki fds. */
#define FS_MAX_INODE_FDS 16384u
/* The least fs_set_limits accepts for inodes and inode fds: what one
 * request uses at once. */
#define FS_MIN_LIMIT 8u

struct fs;
/* The process's working directory must be /proc/self/fd while it serves:
 * inodes are reopened and their xattrs reached through it.  Open the share,
 * with the FS_MAX_* limits; on failure returns -errno with a reason in
 * err. */
int fs_new(const struct fs_config *c, struct fs **ret, struct msb_error *err);
/* n shares behind one device.  With multi, the root is a made-up directory
 * whose entry "K" is share K (its root directory, or for a single-file share
 * the file itself), each with its own policy; the guest mounts it once and
 * bind-mounts the entries.  Without, n must be 1 and the root is the share. */
int fs_new_multi(const struct fs_config *c, size_t n, bool multi, struct fs **ret, struct msb_error *err);
void fs_free(struct fs *fs);
/* Replace the limits (raised to FS_MIN_LIMIT where lower); what is held
 * beyond a lowered one stays until released, nothing new is taken. */
void fs_set_limits(struct fs *fs, const struct fs_limits *l);
void fs_get_limits(const struct fs *fs, struct fs_limits *ret);
/* What is held now: handles, inodes (the root included), cached inode fds. */
void fs_usage(const struct fs *fs, struct fs_limits *ret);
/* The directory fds through which fs reaches the host (every share's
 * root, a single-file share's directory, the root inode's): what the
 * jail carries into its new root (jail_enter_fsd), with their
 * JAIL_DIR_* flags.  Fills at most
 * max and returns how many there are; call before serving. */
size_t fs_host_dirs(struct fs *fs, int *fds, unsigned *flags, size_t max);
struct vu_elem;
/* One request in, one reply out (see vu_handler); 0 means no reply. */
size_t fs_handle(void *fs, const uint8_t *in, size_t inlen, const struct vu_elem *e, uint8_t *out, size_t outcap);

/* The xattr holding virtualized ownership, hidden from the guest: the
 * one the layer unpacker writes too (common/vstat.h). */
#define FS_XATTR_PREFIX MSB_XATTR_PREFIX
#define FS_XATTR_STAT MSB_XATTR_STAT
/* On a directory share's root: some file below may carry FS_XATTR_STAT
 * (without it the server does not look, which saves a system call per
 * inode). */
#define FS_XATTR_MARK MSB_XATTR_MARK
