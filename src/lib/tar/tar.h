/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the files of src/lib/tar/ (the unpacker of layers and of msb
 * cp copies), and by nothing else: the library calls tar_unpack(),
 * declared in lib/tar/unpack.h.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

#include "lib/tar/unpack.h"

/* What this layer has placed, by path hash: see clear_dir(). */
struct placed {
        uint64_t *v; /* 0 = empty slot */
        size_t cap, n;
};

/* A directory of a copy whose mode and time are set once the copy is in
 * it (its entries would change the time; a read-only mode would keep them
 * out). */
struct dirmeta {
        char *path;
        mode_t mode;
        struct timespec mtime;
        dev_t dev;
        ino_t ino;
};

struct tar_in {
        bool raw;             /* a plain stream read as it is (copies) */
        gzFile gz;            /* or gzip or plain, detected */
        ZSTD_DStream *zs;     /* or zstd */
        int fd;
        uint8_t *zbuf;
        ZSTD_inBuffer zin;
        bool zeof;
        uint64_t pos;
        struct tar_opts *o;   /* the image's budget and mode */
        uid_t uid;            /* who we are: the owner of what we create */
        gid_t gid;
        mode_t umask;
        /* what a copy takes off the guest's modes: the umask for a user,
         * nothing for root (GNU tar's rule) */
        mode_t copy_umask;
        struct placed mine;   /* what this layer placed (opaque whiteouts, copies' hard links) */
        struct dirmeta *dirs; /* copies: directories to finish */
        size_t ndirs, capdirs, dirs_bytes;
};

struct entry {
        char *path;
        char *link;
        char type;
        uint64_t size;
        uint64_t mode, uid, gid, mtime, devmajor, devminor;
        long mtime_ns; /* from a pax mtime */
};

/* What extended headers (pax 'x', GNU 'L' and 'K') say about the entry
 * that follows them; a pax path or link target wins over a GNU one. */
struct ext {
        char *pax_path, *pax_link, *longname, *longlink;
        uint64_t size; /* UINT64_MAX: none */
        bool has_mtime;
        struct timespec mtime;
};

/* ---- stream.c ---- */
/* Read exactly len bytes: -ENODATA at a truncated end, -EIO if corrupt. */
int tar_read(struct tar_in *t, void *buf, size_t len);
/* Read n bytes, writing them to fd (-1: dropping them); -errno of a
 * failed write. */
int tar_read_to(struct tar_in *t, int fd, uint64_t n);
/* Read and drop n bytes. */
int tar_skip(struct tar_in *t, uint64_t n);
/* Open fd's stream: raw for a copy; else zstd or gzip (or plain), by its
 * bytes. */
int tar_stream_open(struct tar_in *t, int fd, struct msb_error *err);
void tar_stream_close(struct tar_in *t);

/* ---- header.c ---- */
/* "the copy" or "layer", for messages. */
const char *tar_what(const struct tar_in *t);
/* Whether a 512-byte header's checksum is right. */
bool tar_checksum_ok(const uint8_t *h);
/* The numeric fields and type of header h into e; -EINVAL if malformed. */
int tar_parse_header(const uint8_t *h, struct entry *e);
/* The next header into h: 1, or 0 at the end of the archive. */
int tar_next_header(struct tar_in *t, uint8_t h[512], const struct tar_stats *st, struct msb_error *err);
/* An extended header's body (pax 'x' or 'g', GNU 'L' or 'K') into x. */
int tar_read_ext(struct tar_in *t, const struct entry *e, struct ext *x, struct msb_error *err);
/* e's name, link target and time from x (consumed) or header h. */
void tar_entry_names(struct entry *e, const uint8_t *h, struct ext *x);
void tar_ext_clear(struct ext *x);
void tar_entry_clear(struct entry *e);

/* ---- beneath.c ---- */
/* An entry name cleaned ("" for the root), or NULL and *why. */
char *tar_clean_path(const char *in, const char **why);
/* openat2 of path beneath rootfd; nosym: no symlink followed at all. */
int tar_open_beneath(int rootfd, const char *path, int flags, bool nosym);
/* Open (creating as needed) the directory dir beneath rootfd. */
int tar_open_parent(int rootfd, const char *dir, struct tar_opts *o);
/* Split path (modified) at its last '/': dir ("" if none) and base. */
void tar_split(char *path, const char **dir, const char **base);

/* ---- whiteout.c ---- */
/* Add hash h to the set. */
void tar_placed_add(struct placed *s, uint64_t h);
/* Add dir/name and every directory above it. */
void tar_placed_add_path(struct placed *s, const char *dir, const char *name);
/* A file's hash by inode (copies' hard links). */
uint64_t tar_ino_hash(const struct stat *st);
bool tar_placed_has(const struct placed *s, uint64_t h);
/* Apply the whiteout entry base of directory pfd (path dir). */
int tar_apply_whiteout(struct tar_in *t, int pfd, const char *dir, const char *base, struct entry *e,
                       struct msb_error *err);

/* ---- meta.c ---- */
/* The host mode (S_IFMT included) of an entry of kind. */
mode_t tar_host_mode(const struct tar_in *t, const struct entry *e, mode_t kind);
/* Record on fd what the guest must see of e; fresh: we just made fd with
 * mode hmode.  -EOPNOTSUPP for a special file without user xattrs. */
int tar_meta_apply(struct tar_in *t, int rootfd, int fd, bool fresh, mode_t hmode, const struct entry *e,
                   mode_t kind, struct tar_stats *st, struct msb_error *err);

/* ---- place.c ---- */
/* Whether type is a device node or fifo. */
bool tar_is_special(char type);
struct timespec tar_entry_mtime(const struct entry *e);
/* Clear what is at base for e (*ret_dir: a directory stays). */
int tar_make_room(struct tar_in *t, int pfd, const char *base, const struct entry *e, bool *ret_dir,
                  struct msb_error *err);
/* Place e as base in pfd (path dir). */
int tar_place(struct tar_in *t, int rootfd, int pfd, const char *dir, const char *base, bool exists_dir,
              struct entry *e, struct tar_stats *st, struct msb_error *err);

/* ---- copy-dirs.c ---- */
/* Remember a copy's directory to finish; -E2BIG past the limit. */
int tar_dir_defer(struct tar_in *t, int pfd, const char *dir, const char *base, const struct entry *e);
/* Set the remembered directories' modes and times. */
void tar_dirs_finish(struct tar_in *t, int rootfd);
void tar_dirs_free(struct tar_in *t);

/* ---- unpack.c ---- */
/* Count n bytes against the image's budget: -EFBIG past it. */
int tar_charge_bytes(struct tar_in *t, uint64_t n);
/* The budget's message for e; code EFBIG (bytes) or E2BIG (entries). */
int tar_budget_error(struct tar_in *t, const struct entry *e, int code, struct msb_error *err);
/* Skip n body bytes of e, charged to the budget. */
int tar_skip_body(struct tar_in *t, uint64_t n, const struct entry *e, struct msb_error *err);
