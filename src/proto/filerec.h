/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The records agentd's file routines (src/agent/fsops.c) write on their
 * stdout, and the host's decoder of them (src/lib/files.c), for which they
 * are a hostile guest's bytes.
 *
 * A record is a u32 (little-endian) length of its body, then the body:
 * fields, each ending in a NUL, the first naming the kind, a fixed number
 * of fields per kind:
 *
 *   "i" TYPE SIZE MODE UID GID MTIME_NS PATH LINK   (9)  an entry
 *   "e" OP TYPE PATH                                (4)  a watch's event
 *   "c"                                             (1)  a list cut at its maximum
 *   "s" SIZE                                        (2)  fs-read: the file's size,
 *                                                        its bytes follow, raw
 *
 * Numbers are decimal digits (at most 20, no leading zero; MTIME_NS may
 * start with '-', not "-0"), in range for their field.  TYPE is file, dir, symlink or other and
 * agrees with MODE's type bits; OP is create, write, remove, rename,
 * chmod, or ready (fs-watch's first: its watches are in place).  PATH is absolute, at most FILEREC_MAX_PATH bytes; LINK is ""
 * but for a symlink, whose target it is (1 to FILEREC_MAX_PATH bytes).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "proto/proto.h"

#define FILEREC_MAX_PATH 4095u
/* A body: two whole paths, the numbers and the NULs fit. */
#define FILEREC_MAX 9216u

/* The routines' own limits (msb.h says them to the library's callers). */
#define FSOPS_MAX_DEPTH 64u        /* fs-list's levels */
#define FSOPS_MAX_ENTRIES 100000u  /* fs-list's entries */
#define FSOPS_MAX_WATCHES 8192u    /* fs-watch's directories */

enum filerec_kind { FILEREC_INFO = 'i', FILEREC_EVENT = 'e', FILEREC_CUT = 'c', FILEREC_SIZE = 's' };

struct filerec {
        char kind;        /* enum filerec_kind */
        const char *type; /* INFO, EVENT: a static string */
        const char *op;   /* EVENT: a static string */
        uint64_t size;    /* INFO, SIZE */
        uint32_t mode, uid, gid;
        int64_t mtime_ns;
        /* INFO, EVENT: point into the bytes decoded (NUL-terminated there) */
        const char *path;
        const char *link; /* INFO: "" but for a symlink */
};

/* The record at the start of buf (n bytes): its whole length (the u32 and
 * the body) when buf holds all of it, 0 when more bytes are needed, or
 * -EBADMSG for one that breaks the rules above (the stream is then
 * unusable).  Nothing is allocated. */
long filerec_decode(const uint8_t *buf, size_t n, struct filerec *out);

/* "file", "dir", "symlink" or "other" for a st_mode. */
const char *filerec_type(uint32_t mode);

/* Encoders, agentd's: each appends one record to b.  -ENAMETOOLONG (and
 * nothing appended) for a path or target longer than FILEREC_MAX_PATH, or
 * -EINVAL for one that is not absolute, or an unknown op or type. */
int filerec_put_info(struct msb_buf *b, const char *path, const struct stat *st, const char *link);
int filerec_put_event(struct msb_buf *b, const char *op, const char *type, const char *path);
void filerec_put_cut(struct msb_buf *b);
void filerec_put_size(struct msb_buf *b, uint64_t size);
