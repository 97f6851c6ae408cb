/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A tar writer over a file tree, for msb cp: the host writes what it copies
 * in, agentd what it copies out.  ustar, with pax records where ustar has no
 * room (long names and link targets, sizes of 8 GiB and more, sub-second
 * modification times).
 *
 * The walk never follows a symlink below the top (a symlink is an entry of
 * its own), never reads a file it did not lstat as regular (opened
 * O_NOFOLLOW and checked to be the same inode), emits hard links as link
 * entries, streams contents in chunks (no whole-file buffers), and leaves
 * out what cannot be copied as data: devices, fifos, sockets (counted), and
 * the contents of kernel file systems (proc, sysfs...) mounted below the top.
 */
#pragma once

#include "msb-error.h"

#include <stddef.h>
#include <stdint.h>

/* Deepest directory nesting walked: one open fd per level. */
#define TARW_MAX_DEPTH 512u
/* Longest name in the archive (src/lib/tar's TAR_MAX_PATH). */
#define TARW_MAX_PATH 4096u

struct tarw_stats {
        uint64_t entries;
        uint64_t bytes;   /* file contents */
        uint64_t skipped; /* devices, fifos, sockets left out */
        uint64_t changed; /* files whose size changed while they were read */
};

/*
 * Write a tar of path (relative to dirfd; every component but the last may
 * be a symlink, the last is taken as it is) to fd, its top entry named name:
 * a plain name, or "." (for a directory: its entries then have no prefix).
 * The end-of-archive blocks are written only on success, so a reader sees
 * a failed walk as a truncated archive.  Returns 0 and fills *st, or -errno
 * with err filled ("path: reason"); -ENOENT when path does not exist,
 * -EPIPE when fd's reader went away.
 */
int tarw_tree(int fd, int dirfd, const char *path, const char *name, struct tarw_stats *st,
              struct msb_error *err);
