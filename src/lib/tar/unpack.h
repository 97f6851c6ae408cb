/* SPDX-License-Identifier: Apache-2.0 */
/* The tar unpacker's interface: image layers, docker load archives and msb cp
 * copies (src/lib/tar/; tar.h is what its files share). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "msb-error.h"

#define TAR_MAX_ENTRIES 1000000u /* per layer; a "tar bomb" of names */
#define TAR_MAX_PATH 4096u
#define TAR_MAX_PAX (1u << 20) /* extended header size */
/* Default budget of one image, all layers together: generous for any real
 * image, small enough that a tiny compressed layer cannot fill the disk.
 * msb's config file overrides both (unpack-max-bytes, unpack-max-entries). */
#define TAR_IMAGE_MAX_BYTES (64ULL << 30)
#define TAR_IMAGE_MAX_ENTRIES 4000000ULL
/* A copy's directories get their modes and times at the end: their names
 * are kept until then, at most this many bytes of them (about a million
 * directories), so that what a guest sends cannot make msb grow without
 * bound. */
#define TAR_COPY_MAX_DIR_BYTES (128u << 20)
struct tar_opts {
        uint64_t max_bytes, max_entries; /* for the whole image */
        uint64_t bytes, entries;         /* used so far, by every layer */
        bool plain;  /* an archive, not an image: no metadata, special files skipped */
        bool marked; /* the root carries MSB_XATTR_MARK */
        /* a copy out of a sandbox (msb cp): an uncompressed tar; no
         * whiteouts (".wh." is a name like any other) and no xattrs; modes
         * kept without setuid/setgid (directories' once all is in them),
         * modification times kept (nanoseconds from pax), special files
         * skipped; an entry never replaces a directory with a non-directory
         * or the reverse, and a hard link must name an entry of the same
         * copy */
        bool copy;
        /* with copy: every entry is this name or beneath it ("." or NULL:
         * any name, for a copy into a directory of its own) */
        const char *copy_top;
};
#define TAR_OPTS_DEFAULT ((struct tar_opts){.max_bytes = TAR_IMAGE_MAX_BYTES, .max_entries = TAR_IMAGE_MAX_ENTRIES})
struct tar_stats {
        uint64_t entries;
        uint64_t bytes;
        uint64_t skipped_devices; /* special files not placed (archives, copies, no xattrs) */
        uint64_t meta_lost;       /* owners/modes the store's file system could not record */
};
/* Unpack a (gzip-compressed or plain) tar stream from fd into the directory
 * rootfd (opened O_RDONLY), applying OCI whiteouts.  Never writes outside
 * rootfd: entries with absolute names or "..", or that resolve through a
 * symlink leading outside, reject the layer (-EXDEV/-EINVAL with err
 * filled).  Nothing on the host gets an image's owners, setuid bits or
 * device nodes: they are recorded in MSB_XATTR_STAT (common/vstat.h).
 * opts (NULL: TAR_OPTS_DEFAULT) carries the image's budget across its
 * layers; exceeding it fails with E2BIG/EFBIG. */
int tar_unpack(int fd, int rootfd, struct tar_opts *opts, struct tar_stats *stats, struct msb_error *err);
