/* SPDX-License-Identifier: Apache-2.0 */
/* libmsb internals shared between subsystems. */
#pragma once

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/util.h"
#include "msb.h"


#include "ctx.h"

/* ---- sha256.c ---- */
struct sha256 {
        uint32_t h[8];
        uint64_t len;
        uint8_t buf[64];
        size_t n;
        /* libcrypto's state when it hashes this one (sha256_fast()):
         * SHA256_CTX is 112 bytes; room to spare, checked at build time */
        bool ossl;
        _Alignas(16) uint8_t ossl_ctx[128];
};
/* Hash with libcrypto (loaded now, dlopen, if it can be: SHA-NI or AVX2,
 * ~6x the portable code on this CPU) in every sha256_init() from here on.
 * Bulk hashing (pulls, imports) asks for it; start-up paths that hash a
 * few bytes do not pay for loading it.  Returns whether it is in use. */
bool sha256_fast(void);
void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t out[32]);
/* hex digest, 65 bytes */
void sha256_hex(struct sha256 *s, char out[65]);

/* ---- cpio.c: newc writer ---- */
struct cpio_writer {
        int fd;
        uint64_t off;
        uint32_t ino;
        int err;
};
void cpio_init(struct cpio_writer *w, int fd);
int cpio_add(struct cpio_writer *w, const char *name, mode_t mode, uint32_t rdev_major, uint32_t rdev_minor,
             const void *data, size_t len);
int cpio_finish(struct cpio_writer *w);

/* ---- config.c: msb's config file ---- */
/* Its path ($MSB_CONFIG, $XDG_CONFIG_HOME/msb/config, ~/.config/msb/config),
 * or NULL without HOME; the caller frees it. */
char *msb_config_path(void);
/* Call fn for every setting line (words[0] is the key, n counts the words,
 * checked against the key's arity; where names file and line).  A missing
 * file is empty; an unknown key fails. */
int msb_config_each(int (*fn)(char **words, int n, void *ud, const char *where, struct msb_error *err), void *ud,
                    struct msb_error *err);
/* Overwrite *bytes / *entries with unpack-max-bytes / unpack-max-entries
 * where the file sets them. */
int msb_config_unpack_limits(uint64_t *bytes, uint64_t *entries, struct msb_error *err);

/* ---- tar/: unpacking layers, archives and copies (msb cp) ---- */
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

/* ---- elf.c ---- */
struct elf_src {
        void *ctx;
        uint64_t size; /* of the file */
        ssize_t (*pread)(void *ctx, void *buf, size_t n, uint64_t off);
};
/* Of an x86-64 ELF file (untrusted): its program interpreter and up to
 * max_needed DT_NEEDED names (no '/'); NULL/NULL for anything else or
 * anything out of bounds.  Caller frees both. */
void elf_deps(const struct elf_src *src, size_t max_needed, char **ret_interp, char ***ret_needed);
/* The same over n bytes in memory, for a file said to be size bytes long
 * (tests and the fuzzer). */
void elf_deps_mem(const uint8_t *p, size_t n, uint64_t size, size_t max_needed, char **ret_interp,
                  char ***ret_needed);

#include "guest_path.h"
#include "vmm.h" /* kit.c, accel.c, vmm.c, fsd.c */

/* ---- image/: the image store, references and the registry client ---- */
#include "image/image.h"

/* vmm.c, fsd.c: in vmm.h, included above */

/* The passt binary a run would use (net.c), or NULL when there is none. */
char *msb_passt_binary(const struct msb_ctx *ctx);

#include "proc.h"
