/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI layer unpacking: ustar with GNU long names and pax headers, gzip or
 * plain, OCI whiteouts.  Layers are untrusted input.
 *
 * Confinement: every entry is placed through a parent directory fd opened
 * with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) from the rootfs fd,
 * and the final component is created with *at() calls that never follow a
 * symlink (O_NOFOLLOW / O_EXCL / AT_SYMLINK_NOFOLLOW).  Relative symlinks
 * inside the image (lib -> usr/lib) keep working; any entry whose path would
 * leave the root (absolute names, "..", a symlink pointing outside) rejects
 * the whole layer.  Hard link targets are resolved the same way.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

#include "common/vstat.h"
#include "internal.h"

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

static int zstd_read(struct tar_in *t, uint8_t *p, size_t len)
{
        ZSTD_outBuffer out = {.dst = p, .size = len, .pos = 0};
        while (out.pos < out.size) {
                if (t->zin.pos == t->zin.size && !t->zeof) {
                        ssize_t n;
                        do
                                n = read(t->fd, t->zbuf, ZSTD_DStreamInSize());
                        while (n < 0 && errno == EINTR);
                        if (n < 0)
                                return -EIO;
                        if (n == 0)
                                t->zeof = true;
                        t->zin = (ZSTD_inBuffer){.src = t->zbuf, .size = (size_t)n, .pos = 0};
                }
                size_t before = out.pos;
                size_t rc = ZSTD_decompressStream(t->zs, &out, &t->zin);
                if (ZSTD_isError(rc))
                        return -EIO;
                if (out.pos == before && t->zin.pos == t->zin.size && t->zeof)
                        return -ENODATA; /* truncated */
        }
        t->pos += len;
        return 0;
}

static int raw_read(struct tar_in *t, uint8_t *p, size_t len)
{
        ssize_t n = read_all(t->fd, p, len);
        if (n < 0)
                return -EIO;
        t->pos += (uint64_t)n;
        return (size_t)n < len ? -ENODATA : 0;
}

static int tin_read(struct tar_in *t, void *buf, size_t len)
{
        uint8_t *p = buf;
        if (t->raw)
                return raw_read(t, p, len);
        if (t->zs)
                return zstd_read(t, p, len);
        while (len > 0) {
                unsigned chunk = len > (1u << 30) ? (1u << 30) : (unsigned)len;
                int n = gzread(t->gz, p, chunk);
                if (n < 0)
                        return -EIO;
                if (n == 0)
                        return -ENODATA; /* truncated */
                p += n;
                len -= (size_t)n;
                t->pos += (uint64_t)n;
        }
        return 0;
}

static int tin_skip(struct tar_in *t, uint64_t n)
{
        uint8_t buf[65536];
        while (n > 0) {
                size_t k = n > sizeof(buf) ? sizeof(buf) : (size_t)n;
                int r = tin_read(t, buf, k);
                if (r < 0)
                        return r;
                n -= k;
        }
        return 0;
}

/* Numeric header field: octal text, or base-256 when the top bit is set. */
static int parse_num(const uint8_t *f, size_t n, uint64_t *ret)
{
        uint64_t v = 0;
        if (f[0] & 0x80) {
                if (f[0] & 0x40)
                        return -EINVAL; /* negative */
                v = f[0] & 0x3f;
                for (size_t i = 1; i < n; i++) {
                        if (v >> 55)
                                return -ERANGE;
                        v = (v << 8) | f[i];
                }
                *ret = v;
                return 0;
        }
        size_t i = 0;
        while (i < n && (f[i] == ' ' || f[i] == '\0'))
                i++;
        for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
                if (v >> 60)
                        return -ERANGE;
                v = v * 8 + (uint64_t)(f[i] - '0');
        }
        for (; i < n; i++)
                if (f[i] != ' ' && f[i] != '\0')
                        return -EINVAL;
        *ret = v;
        return 0;
}

static bool checksum_ok(const uint8_t *h)
{
        uint64_t want;
        if (parse_num(h + 148, 8, &want) < 0)
                return false;
        uint64_t s = 0;
        for (int i = 0; i < 512; i++)
                s += (i >= 148 && i < 156) ? ' ' : h[i];
        return s == want;
}

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

static void ext_clear(struct ext *x)
{
        free(x->pax_path);
        free(x->pax_link);
        free(x->longname);
        free(x->longlink);
        *x = (struct ext){.size = UINT64_MAX};
}

static void entry_clear(struct entry *e)
{
        free(e->path);
        free(e->link);
        memset(e, 0, sizeof(*e));
}

/* A pax mtime, "SECONDS[.FRACTION]"; false for anything else (negative
 * times included: the entry keeps its header's). */
static bool pax_time(const char *v, size_t n, struct timespec *ret)
{
        uint64_t sec = 0;
        long ns = 0;
        size_t i = 0;
        for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
                if (sec > (UINT64_C(1) << 40))
                        return false; /* past any time_t a file has */
                sec = sec * 10 + (uint64_t)(v[i] - '0');
        }
        if (i == 0 || (i < n && v[i] != '.'))
                return false;
        long scale = 100000000;
        for (i++; i < n; i++, scale /= 10) {
                if (v[i] < '0' || v[i] > '9')
                        return false;
                ns += scale * (v[i] - '0'); /* digits past nanoseconds add 0 */
        }
        *ret = (struct timespec){.tv_sec = (time_t)sec, .tv_nsec = ns};
        return true;
}

/* pax records: "%d key=value\n" */
static int parse_pax(const char *buf, size_t len, struct ext *x)
{
        size_t off = 0;
        while (off < len) {
                size_t reclen = 0, i = off;
                while (i < len && buf[i] >= '0' && buf[i] <= '9') {
                        reclen = reclen * 10 + (size_t)(buf[i] - '0');
                        if (reclen > len)
                                return -EINVAL;
                        i++;
                }
                if (i >= len || buf[i] != ' ' || reclen == 0 || off + reclen > len || buf[off + reclen - 1] != '\n')
                        return -EINVAL;
                const char *kv = buf + i + 1;
                size_t kvlen = off + reclen - 1 - (i + 1);
                const char *eq = memchr(kv, '=', kvlen);
                if (!eq)
                        return -EINVAL;
                size_t klen = (size_t)(eq - kv), vlen = kvlen - klen - 1;
                if (memchr(eq + 1, '\0', vlen) && !(klen > 13 && !strncmp(kv, "SCHILY.xattr.", 13)))
                        return -EINVAL;
                if (klen == 4 && !strncmp(kv, "path", 4)) {
                        free(x->pax_path);
                        x->pax_path = strndup(eq + 1, vlen);
                } else if (klen == 8 && !strncmp(kv, "linkpath", 8)) {
                        free(x->pax_link);
                        x->pax_link = strndup(eq + 1, vlen);
                } else if (klen == 5 && !strncmp(kv, "mtime", 5)) {
                        x->has_mtime = pax_time(eq + 1, vlen, &x->mtime);
                } else if (klen == 4 && !strncmp(kv, "size", 4)) {
                        uint64_t v = 0;
                        for (size_t k = 0; k < vlen; k++) {
                                char c = eq[1 + k];
                                if (c < '0' || c > '9' || v > UINT64_MAX / 10 - 10)
                                        return -EINVAL;
                                v = v * 10 + (uint64_t)(c - '0');
                        }
                        x->size = v;
                }
                off += reclen;
        }
        return 0;
}

static char *field_str(const uint8_t *f, size_t n)
{
        size_t k = strnlen((const char *)f, n);
        return strndup((const char *)f, k);
}

/*
 * Clean an entry name.  Leading "./" components are dropped; absolute names
 * and ".." components are rejected (other bytes are a name's own business).  Returns NULL (and the
 * reason) on rejection, "" for the root itself.
 */
static char *clean_path(const char *in, const char **why)
{
        if (in[0] == '/') {
                *why = "absolute path";
                return NULL;
        }
        size_t n = strlen(in);
        if (n >= TAR_MAX_PATH) {
                *why = "path too long";
                return NULL;
        }
        char *out = xmalloc(n + 1);
        size_t o = 0;
        for (const char *s = in; *s;) {
                size_t k = strcspn(s, "/");
                if (k == 2 && !strncmp(s, "..", 2)) {
                        free(out);
                        *why = "'..' component";
                        return NULL;
                }
                if (k > 0 && !(k == 1 && s[0] == '.')) {
                        if (o)
                                out[o++] = '/';
                        memcpy(out + o, s, k);
                        o += k;
                }
                s += k;
                while (*s == '/')
                        s++;
        }
        out[o] = '\0';
        return out;
}

/* In a copy (nosym) no symlink is followed at all, not even one inside:
 * the guest's links would let it aim later entries, hard links and
 * directory modes anywhere beneath the destination, at the user's files. */
static int open_beneath(int rootfd, const char *path, int flags, bool nosym)
{
        struct open_how how = {
                .flags = (uint64_t)(flags | O_CLOEXEC),
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | (nosym ? RESOLVE_NO_SYMLINKS : 0),
        };
        int fd = (int)syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof(how));
        return fd < 0 ? -errno : fd;
}

/* Open (creating as needed) the directory dir beneath rootfd.  Each
 * directory made counts against the image's entries: -E2BIG past them. */
static int open_parent(int rootfd, const char *dir, struct tar_opts *o)
{
        int fd = open_beneath(rootfd, dir, O_PATH | O_DIRECTORY, o->copy);
        if (fd != -ENOENT)
                return fd;
        /* create missing components one by one, each resolved beneath root */
        _cleanup_free_ char *p = xstrdup(dir);
        for (char *s = p;; s++) {
                if (*s != '/' && *s != '\0')
                        continue;
                char saved = *s;
                *s = '\0';
                int t = open_beneath(rootfd, p, O_PATH | O_DIRECTORY, o->copy);
                if (t == -ENOENT) {
                        char *slash = strrchr(p, '/');
                        _cleanup_close_ int pfd = -1;
                        const char *base = p;
                        if (slash) {
                                *slash = '\0';
                                pfd = open_beneath(rootfd, p, O_PATH | O_DIRECTORY, o->copy);
                                *slash = '/';
                                base = slash + 1;
                        } else
                                pfd = open_beneath(rootfd, "", O_PATH | O_DIRECTORY, o->copy);
                        if (pfd < 0)
                                return pfd;
                        if (o->entries++ >= o->max_entries)
                                return -E2BIG;
                        if (mkdirat(pfd, base, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        t = open_beneath(rootfd, p, O_PATH | O_DIRECTORY, o->copy);
                }
                if (t < 0)
                        return t;
                close(t);
                *s = saved;
                if (!saved)
                        break;
        }
        return open_beneath(rootfd, dir, O_PATH | O_DIRECTORY, o->copy);
}

static void split(char *path, const char **dir, const char **base)
{
        char *slash = strrchr(path, '/');
        if (slash) {
                *slash = '\0';
                *dir = path;
                *base = slash + 1;
        } else {
                *dir = "";
                *base = path;
        }
}

/*
 * What this layer has placed, by path, for opaque whiteouts: they hide the
 * lower layers' content of a directory, not the entries the same layer put
 * there (which may come before the marker in the stream: tar writers sort
 * by name, and "-x" sorts before ".wh..wh..opq").  64-bit hashes of the
 * cleaned paths, open addressing (struct placed); at most TAR_MAX_ENTRIES
 * per layer.
 */

/* FNV-1a, one byte at a time, so a path and its prefixes share one pass */
#define FNV_INIT 14695981039346656037ULL
static uint64_t fnv_byte(uint64_t h, uint8_t c)
{
        return (h ^ c) * 1099511628211ULL;
}

/* 0 marks an empty slot: no path hashes to it */
static uint64_t nonzero(uint64_t h)
{
        return h ? h : 1;
}

/* The hash of the path dir/name ("" dir: name alone). */
static uint64_t path_hash(const char *dir, const char *name)
{
        uint64_t h = FNV_INIT;
        for (const char *p = dir; *p; p++)
                h = fnv_byte(h, (uint8_t)*p);
        if (*dir)
                h = fnv_byte(h, '/');
        for (const char *p = name; *p; p++)
                h = fnv_byte(h, (uint8_t)*p);
        return nonzero(h);
}

static void placed_add(struct placed *s, uint64_t h)
{
        if (2 * (s->n + 1) > s->cap) {
                struct placed g = {.cap = s->cap ? 2 * s->cap : 1024};
                g.v = xcalloc(g.cap, sizeof(*g.v));
                for (size_t i = 0; i < s->cap; i++)
                        if (s->v[i])
                                placed_add(&g, s->v[i]);
                free(s->v);
                *s = g;
        }
        size_t i = h & (s->cap - 1);
        while (s->v[i] && s->v[i] != h)
                i = (i + 1) & (s->cap - 1);
        if (!s->v[i]) {
                s->v[i] = h;
                s->n++;
        }
}

/* Add dir/name and every directory above it (implied parents count as
 * placed: their lower content is hidden below them, not they themselves). */
static void placed_add_path(struct placed *s, const char *dir, const char *name)
{
        uint64_t h = FNV_INIT;
        for (const char *p = dir; *p; p++) {
                if (*p == '/')
                        placed_add(s, nonzero(h)); /* an ancestor */
                h = fnv_byte(h, (uint8_t)*p);
        }
        if (*dir) {
                placed_add(s, nonzero(h));
                h = fnv_byte(h, '/');
        }
        for (const char *p = name; *p; p++)
                h = fnv_byte(h, (uint8_t)*p);
        placed_add(s, nonzero(h));
}

/* A copy's own files by inode: a hard link may name only those (names can
 * be aimed, and hashes of names collide on purpose). */
static uint64_t ino_hash(const struct stat *st)
{
        uint64_t h = FNV_INIT;
        for (size_t i = 0; i < sizeof(st->st_dev); i++)
                h = fnv_byte(h, (uint8_t)(st->st_dev >> (8 * i)));
        for (size_t i = 0; i < sizeof(st->st_ino); i++)
                h = fnv_byte(h, (uint8_t)(st->st_ino >> (8 * i)));
        return nonzero(h);
}

static bool placed_has(const struct placed *s, uint64_t h)
{
        if (!s->cap)
                return false;
        for (size_t i = h & (s->cap - 1); s->v[i]; i = (i + 1) & (s->cap - 1))
                if (s->v[i] == h)
                        return true;
        return false;
}

/* Opaque whiteout of the directory dfd (path dir, "" for the root): remove
 * what earlier layers put below it, keeping what this layer placed (and,
 * below a kept directory, again only what this layer placed). */
static int clear_dir(const struct placed *mine, int dfd, const char *dir, int depth)
{
        if (depth > (int)(TAR_MAX_PATH / 2))
                return -ELOOP;
        DIR *dd = fdopendir_dup(dfd);
        if (!dd)
                return -errno;
        struct dirent *de;
        int r = 0;
        while (r == 0 && (de = readdir(dd))) {
                const char *n = de->d_name;
                if (!strcmp(n, ".") || !strcmp(n, ".."))
                        continue;
                if (!placed_has(mine, path_hash(dir, n))) {
                        r = rm_rf_at(dfd, n);
                        continue;
                }
                int sub = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        continue; /* a file (or symlink) of this layer: kept */
                _cleanup_free_ char *path = *dir ? xasprintf("%s/%s", dir, n) : xstrdup(n);
                r = clear_dir(mine, sub, path, depth + 1);
                close(sub);
        }
        closedir(dd);
        return r;
}

static int write_data(struct tar_in *t, int fd, uint64_t size)
{
        uint8_t buf[65536];
        while (size > 0) {
                size_t k = size > sizeof(buf) ? sizeof(buf) : (size_t)size;
                int r = tin_read(t, buf, k);
                if (r < 0)
                        return r;
                r = write_all(fd, buf, k);
                if (r < 0)
                        return r;
                size -= k;
        }
        return 0;
}

/* Count n more bytes against the image's budget: what it writes, and what
 * it makes us decompress only to throw away (a directory "with a body").
 * -EFBIG past it. */
static int charge_bytes(struct tar_in *t, uint64_t n)
{
        if (n > t->o->max_bytes - t->o->bytes)
                return -EFBIG;
        t->o->bytes += n;
        return 0;
}

/* code: EFBIG (bytes) or E2BIG (entries) */
static int budget_error(struct tar_in *t, const struct entry *e, int code, struct msb_error *err)
{
        const char *what = t->o->copy ? "the copy is" : "the image unpacks to";
        if (code == EFBIG)
                return msb_err(err, EFBIG,
                               "entry '%s': %s more than %llu bytes (raise unpack-max-bytes in msb's config file)",
                               e->path, what, (unsigned long long)t->o->max_bytes);
        return msb_err(err, E2BIG,
                       "entry '%s': %s more than %llu entries (raise unpack-max-entries in msb's config file)",
                       e->path, t->o->copy ? "the copy has" : "the image has", (unsigned long long)t->o->max_entries);
}

static int skip_body(struct tar_in *t, uint64_t n, const struct entry *e, struct msb_error *err)
{
        if (charge_bytes(t, n) < 0)
                return budget_error(t, e, EFBIG, err);
        int r = tin_skip(t, n);
        if (r < 0)
                return msb_err(err, EIO, "entry '%s': layer is truncated", e->path);
        return 0;
}

/*
 * How an entry lands on the host.  The host copy never carries what could
 * hand a host user something: it is owned by whoever unpacks (never
 * chowned), has no setuid/setgid bits, and a device node, fifo or socket
 * is an empty regular file.  Its owner is always able to read it (the
 * virtio-fs server runs as that owner).  What the guest must see instead
 * (owner, full mode, type, device number) goes into MSB_XATTR_STAT, which
 * msb-fsd serves; the image root is marked so msb-fsd looks for it.
 */
static mode_t host_mode(const struct tar_in *t, const struct entry *e, mode_t kind)
{
        /* a copy's file keeps its permissions but setuid/setgid (no one
         * else reaches a copy as they do the store); its directories are
         * the owner's alone until they are finished (dirs_finish()) */
        if (t->o->copy)
                return kind == S_IFDIR ? S_IFDIR | 0700 : S_IFREG | ((mode_t)(e->mode & 0777) & ~t->copy_umask);
        /* never writable by group or others: a shared store (the default
         * image installed for every user) must not become a drop box; and
         * always readable by all: a user's store is in a 0700 directory
         * anyway, and the shared one must serve every user's msb-fsd (an
         * image's 0700 /root would otherwise be unreadable to all but the
         * installer).  The image's real mode (1777 /tmp, 0700 /root, 0666
         * files) is recorded instead */
        mode_t m = (mode_t)(e->mode & 0755);
        if (kind == S_IFDIR)
                return S_IFDIR | 0755;
        return S_IFREG | (kind == S_IFREG ? m | 0444 : 0644);
}

/* Record on fd what the guest must see of the entry where the host's
 * stat (hst) differs; remove a stale record otherwise.  -EOPNOTSUPP when
 * the store's file system has no user xattrs. */
static int meta_record(struct tar_in *t, int rootfd, int fd, const struct stat *hst, bool fresh,
                       const struct entry *e, mode_t kind)
{
        mode_t want = kind | (mode_t)(e->mode & 07777);
        unsigned rdev = 0;
        if (kind == S_IFCHR || kind == S_IFBLK)
                rdev = (unsigned)makedev((unsigned)e->devmajor, (unsigned)e->devminor);
        if (hst->st_uid == e->uid && hst->st_gid == e->gid && hst->st_mode == want) {
                /* a record from an earlier layer's entry goes */
                if (!fresh && fremovexattr(fd, MSB_XATTR_STAT) < 0 && errno != ENODATA && errno != EOPNOTSUPP)
                        return -errno;
                return 0;
        }
        if (t->o->plain)
                return 0;
        if (!t->o->marked) {
                if (fsetxattr(rootfd, MSB_XATTR_MARK, "1", 1, 0) < 0)
                        return -errno;
                t->o->marked = true;
        }
        char buf[MSB_VSTAT_MAX];
        int n = msb_vstat_format(buf, (unsigned)e->uid, (unsigned)e->gid, (unsigned)want, rdev);
        return fsetxattr(fd, MSB_XATTR_STAT, buf, (size_t)n, 0) < 0 ? -errno : 0;
}

/* meta_record for fd, with the failure reported for entry e.  A file we
 * just made (fresh) is ours with mode hmode (S_IFMT included): no fstat,
 * no stale record to remove, two system calls less per entry. */
static int meta_apply(struct tar_in *t, int rootfd, int fd, bool fresh, mode_t hmode, const struct entry *e,
                      mode_t kind, struct tar_stats *st, struct msb_error *err)
{
        struct stat hst = {.st_uid = t->uid, .st_gid = t->gid, .st_mode = hmode};
        if (t->o->copy)
                return 0; /* a copy is the host's: nothing recorded for a guest */
        if (!fresh && fstat(fd, &hst) < 0)
                return msb_err_errno(err, errno, "entry '%s': stat", e->path);
        int r = meta_record(t, rootfd, fd, &hst, fresh, e, kind);
        if (r == -EOPNOTSUPP) {
                /* the guest sees the host's owner and mode: never more */
                st->meta_lost++;
                return kind == S_IFREG || kind == S_IFDIR ? 0 : -EOPNOTSUPP;
        }
        return r < 0 ? msb_err_errno(err, r, "entry '%s': cannot record its owner and mode", e->path) : 0;
}

/* Create base in pfd for writing, exclusively, never through a symlink:
 * whatever an earlier layer put there (of any kind) is removed first.
 * Created with mode, unless the umask would take bits from it (then fixed
 * by the caller: *ret_chmod). */
static int create_entry(struct tar_in *t, int pfd, const char *base, mode_t mode, bool *ret_chmod)
{
        mode_t m = (mode & ~t->umask) == mode ? mode : 0600;
        *ret_chmod = m != mode;
        for (int tries = 0;; tries++) {
                int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, m);
                if (fd >= 0 || errno != EEXIST || tries > 0)
                        return fd < 0 ? -errno : fd;
                /* a copy never removes a directory (make_room() said so) */
                int r = !t->o->copy ? rm_rf_at(pfd, base) : unlinkat(pfd, base, 0) < 0 ? -errno : 0;
                if (r < 0)
                        return r;
        }
}

static struct timespec entry_mtime(const struct entry *e)
{
        return (struct timespec){.tv_sec = (time_t)e->mtime, .tv_nsec = e->mtime_ns};
}

static int place_file(struct tar_in *t, int rootfd, int pfd, const char *base, struct entry *e, struct tar_stats *st,
                      struct msb_error *err)
{
        mode_t hm = host_mode(t, e, S_IFREG);
        bool fix;
        _cleanup_close_ int fd = create_entry(t, pfd, base, hm & 07777, &fix);
        if (fd < 0)
                return msb_err_errno(err, fd, "entry '%s': cannot create", e->path);
        int r = write_data(t, fd, e->size);
        if (r < 0)
                return r == -ENODATA ? msb_err(err, EIO, "entry '%s': layer is truncated", e->path)
                                     : msb_err_errno(err, r, "entry '%s'", e->path);
        if (fix && fchmod(fd, hm & 07777) < 0)
                return msb_err_errno(err, errno, "entry '%s': chmod", e->path);
        if ((r = meta_apply(t, rootfd, fd, true, hm, e, S_IFREG, st, err)) < 0)
                return r;
        struct timespec ts[2] = {entry_mtime(e), entry_mtime(e)};
        futimens(fd, ts);
        st->bytes += e->size;
        struct stat fst;
        if (t->o->copy && fstat(fd, &fst) == 0)
                placed_add(&t->mine, ino_hash(&fst));
        return 0;
}

/* A copy's directory gets its mode and time once the copy is in it.
 * -E2BIG past TAR_COPY_MAX_DIR_BYTES. */
static int dir_defer(struct tar_in *t, int pfd, const char *dir, const char *base, const struct entry *e)
{
        struct stat st;
        if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
                return 0; /* nothing of ours to finish */
        t->dirs_bytes += sizeof(struct dirmeta) + strlen(dir) + strlen(base) + 2;
        if (t->dirs_bytes > TAR_COPY_MAX_DIR_BYTES)
                return -E2BIG;
        if (t->ndirs == t->capdirs)
                t->dirs = xrealloc(t->dirs, (t->capdirs = t->capdirs ? 2 * t->capdirs : 64) * sizeof(*t->dirs));
        t->dirs[t->ndirs++] = (struct dirmeta){.path = *dir ? xasprintf("%s/%s", dir, base) : xstrdup(base),
                                               .mode = (mode_t)(e->mode & 01777) & ~t->copy_umask,
                                               .mtime = entry_mtime(e), .dev = st.st_dev, .ino = st.st_ino};
        return 0;
}

/* Deepest first, so a directory's time is set after its subdirectories'
 * (which would change it).  Each is found again beneath the root, never
 * through a symlink at its own name. */
static void dirs_finish(struct tar_in *t, int rootfd)
{
        for (size_t i = t->ndirs; i-- > 0;) {
                struct dirmeta *d = &t->dirs[i];
                int fd = open_beneath(rootfd, d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, true);
                struct stat st;
                /* the very directory this copy made or entered, not one
                 * swapped in under its name since */
                if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_dev != d->dev || st.st_ino != d->ino)) {
                        close(fd);
                        fd = -1;
                }
                if (fd >= 0) {
                        struct timespec ts[2] = {d->mtime, d->mtime};
                        (void)!fchmod(fd, d->mode);
                        futimens(fd, ts);
                        close(fd);
                }
        }
}

static void dirs_free(struct tar_in *t)
{
        for (size_t i = 0; i < t->ndirs; i++)
                free(t->dirs[i].path);
        free(t->dirs);
}

static int place_dir(struct tar_in *t, int rootfd, int pfd, const char *base, bool exists, struct entry *e,
                     struct msb_error *err)
{
        if (!exists && mkdirat(pfd, base, 0700) < 0)
                return msb_err_errno(err, errno, "entry '%s': mkdir", e->path);
        _cleanup_close_ int fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return msb_err_errno(err, errno, "entry '%s'", e->path);
        if (fchmod(fd, host_mode(t, e, S_IFDIR) & 07777) < 0)
                return msb_err_errno(err, errno, "entry '%s': chmod", e->path);
        struct tar_stats ignored = {0};
        return meta_apply(t, rootfd, fd, false, 0, e, S_IFDIR, &ignored, err);
}

/* A device node, fifo (or socket): never made on the host, where it would
 * be usable by whoever can reach the store; an empty placeholder file
 * whose metadata makes the guest see what the image holds.  Archives
 * (plain mode) have no use for them at all. */
static int place_special(struct tar_in *t, int rootfd, int pfd, const char *base, struct entry *e,
                         struct tar_stats *st, struct msb_error *err)
{
        mode_t kind = e->type == '3' ? S_IFCHR : e->type == '4' ? S_IFBLK : S_IFIFO;
        if (e->devmajor >= 4096 || e->devminor >= (1u << 20))
                return msb_err(err, EINVAL, "entry '%s': device number %llu:%llu is out of range", e->path,
                               (unsigned long long)e->devmajor, (unsigned long long)e->devminor);
        if (t->o->plain) {
                st->skipped_devices++;
                return 0;
        }
        bool fix;
        _cleanup_close_ int fd = create_entry(t, pfd, base, 0600, &fix);
        if (fd < 0)
                return msb_err_errno(err, fd, "entry '%s': cannot create", e->path);
        int r = meta_apply(t, rootfd, fd, true, S_IFREG | 0600, e, kind, st, err);
        if (r == -EOPNOTSUPP) {
                unlinkat(pfd, base, 0);
                st->skipped_devices++;
                return 0;
        }
        struct timespec ts[2] = {{(time_t)e->mtime, 0}, {(time_t)e->mtime, 0}};
        futimens(fd, ts);
        return r;
}

/* OCI whiteouts: ".wh.NAME" removes NAME, ".wh..wh..opq" what earlier
 * layers put in its directory. */
static int apply_whiteout(struct tar_in *t, int pfd, const char *dir, const char *base, struct entry *e,
                          struct msb_error *err)
{
        int r;
        if (!strcmp(base, ".wh..wh..opq")) {
                _cleanup_close_ int d = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                r = d < 0 ? -errno : clear_dir(&t->mine, d, dir, 0);
        } else if (!base[4] || !strcmp(base + 4, ".") || !strcmp(base + 4, ".."))
                return msb_err(err, EINVAL, "entry '%s': malformed whiteout", e->path);
        else
                r = rm_rf_at(pfd, base + 4);
        if (r < 0)
                return msb_err_errno(err, r, "entry '%s': whiteout failed", e->path);
        return skip_body(t, e->size, e, err);
}

static bool is_special(char type)
{
        return type == '3' || type == '4' || type == '6';
}

/*
 * What is at base already.  Files and special files replace it as they are
 * made (create_entry); other kinds remove it first, except that a directory
 * stays for a directory (*ret_dir).  A copy never turns a directory into
 * something else or the reverse (docker cp's rule): that would delete a
 * tree, or a file, the user has.
 */
static int make_room(struct tar_in *t, int pfd, const char *base, const struct entry *e, bool *ret_dir,
                     struct msb_error *err)
{
        bool creates = e->type == '0' || e->type == '\0' || e->type == '7' || is_special(e->type);
        struct stat cur;
        *ret_dir = false;
        if ((creates && !t->o->copy) || fstatat(pfd, base, &cur, AT_SYMLINK_NOFOLLOW) < 0)
                return 0;
        bool is_dir = S_ISDIR(cur.st_mode), want_dir = e->type == '5';
        if (t->o->copy && is_dir != want_dir)
                return msb_err(err, is_dir ? EISDIR : ENOTDIR, "entry '%s': cannot overwrite %s with %s", e->path,
                               is_dir ? "a directory" : "a non-directory", is_dir ? "a non-directory" : "a directory");
        if (is_dir && want_dir) {
                *ret_dir = true;
                return 0;
        }
        int r = creates ? 0 : rm_rf_at(pfd, base);
        if (r < 0)
                return msb_err_errno(err, r, "entry '%s': cannot replace existing entry", e->path);
        return 0;
}

static int place_symlink(struct tar_in *t, int pfd, const char *base, struct entry *e, struct msb_error *err)
{
        if (!e->link || !*e->link)
                return msb_err(err, EINVAL, "entry '%s': symlink without target", e->path);
        /* stored verbatim; never followed while unpacking except through
         * open_beneath(), which keeps resolution inside.  A symlink cannot
         * carry a user xattr: it keeps the host owner, which nothing
         * checks. */
        if (charge_bytes(t, strlen(e->link)) < 0)
                return budget_error(t, e, EFBIG, err);
        if (symlinkat(e->link, pfd, base) < 0)
                return msb_err_errno(err, errno, "entry '%s': symlink", e->path);
        struct stat lst;
        if (t->o->copy) {
                struct timespec ts[2] = {entry_mtime(e), entry_mtime(e)};
                utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
                if (fstatat(pfd, base, &lst, AT_SYMLINK_NOFOLLOW) == 0)
                        placed_add(&t->mine, ino_hash(&lst));
        }
        return 0;
}

/* A hard link: its target resolved beneath the root, never a directory;
 * in a copy, an entry the same copy placed (not a file the user had). */
static int place_link(struct tar_in *t, int rootfd, int pfd, const char *base, struct entry *e,
                      struct msb_error *err)
{
        const char *lwhy = NULL;
        _cleanup_free_ char *target = e->link ? clean_path(e->link, &lwhy) : NULL;
        if (!target || !*target)
                return msb_err(err, EXDEV, "entry '%s': hard link target '%s': %s", e->path, e->link ? e->link : "",
                               lwhy ? lwhy : "empty");
        const char *tdir, *tbase;
        split(target, &tdir, &tbase);
        _cleanup_close_ int tfd = open_beneath(rootfd, tdir, O_PATH | O_DIRECTORY, t->o->copy);
        if (tfd < 0)
                return msb_err(err, EXDEV, "entry '%s': hard link target '%s' is outside the image root or missing",
                               e->path, e->link);
        struct stat tst;
        if (fstatat(tfd, tbase, &tst, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(tst.st_mode))
                return msb_err(err, EINVAL, "entry '%s': hard link target '%s' is missing or a directory", e->path,
                               e->link);
        if (t->o->copy && !placed_has(&t->mine, ino_hash(&tst)))
                return msb_err(err, EXDEV, "entry '%s': hard link target '%s' is not a file of the copy", e->path,
                               e->link);
        /* the link shares the target's inode, and so its metadata */
        if (linkat(tfd, tbase, pfd, base, 0) < 0)
                return msb_err_errno(err, errno, "entry '%s': link", e->path);
        return 0;
}

/* The entry, its parent open (pfd) and its place made. */
static int place(struct tar_in *t, int rootfd, int pfd, const char *dir, const char *base, bool exists_dir,
                 struct entry *e, struct tar_stats *st, struct msb_error *err)
{
        switch (e->type) {
        case '0':
        case '\0':
        case '7':
                if (charge_bytes(t, e->size) < 0)
                        return budget_error(t, e, EFBIG, err);
                return place_file(t, rootfd, pfd, base, e, st, err);
        case '5': {
                int r = place_dir(t, rootfd, pfd, base, exists_dir, e, err);
                if (r == 0 && t->o->copy && dir_defer(t, pfd, dir, base, e) < 0)
                        return msb_err(err, E2BIG, "entry '%s': the copy has more directories than msb keeps track "
                                                   "of (%u MiB of their names)",
                                       e->path, TAR_COPY_MAX_DIR_BYTES >> 20);
                return r;
        }
        case '2':
                return place_symlink(t, pfd, base, e, err);
        case '1':
                return place_link(t, rootfd, pfd, base, e, err);
        case '3':
        case '4':
        case '6':
                return place_special(t, rootfd, pfd, base, e, st, err);
        default:
                return msb_err(err, ENOTSUP, "entry '%s': unsupported tar entry type '%c'", e->path, e->type);
        }
}

/* The parent directory of an entry, made as needed; whiteouts (in an
 * image) make none.  -ENOENT only for a whiteout whose directory is not
 * there. */
static int entry_parent(struct tar_in *t, int rootfd, const char *dir, bool whiteout, struct entry *e,
                        struct msb_error *err)
{
        int pfd = whiteout ? open_beneath(rootfd, dir, O_PATH | O_DIRECTORY, false) : open_parent(rootfd, dir, t->o);
        if (pfd >= 0 || (whiteout && pfd == -ENOENT))
                return pfd;
        if (pfd == -E2BIG)
                return budget_error(t, e, E2BIG, err);
        if ((pfd == -EXDEV || pfd == -ELOOP) && t->o->copy)
                return msb_err(err, EXDEV, "entry '%s': its directory is reached through a symlink, which a copy "
                                           "never follows",
                               e->path);
        if (pfd == -EXDEV || pfd == -ELOOP)
                return msb_err(err, EXDEV, "entry '%s': its directory resolves outside the image root (through a "
                                           "symlink)",
                               e->path);
        return msb_err_errno(err, pfd, "entry '%s': cannot open its directory", e->path);
}

static int apply_entry(struct tar_in *t, int rootfd, struct entry *e, struct tar_stats *st, struct msb_error *err)
{
        const char *why = NULL;
        _cleanup_free_ char *path = clean_path(e->path, &why);
        if (!path)
                return msb_err(err, EINVAL, "entry '%s': %s", e->path, why);
        /* a copy is one tree, under the name asked for: nothing beside it */
        const char *top = t->o->copy_top;
        size_t tn = top ? strlen(top) : 0;
        if (top && strcmp(top, ".") && *path && (strncmp(path, top, tn) || (path[tn] && path[tn] != '/')))
                return msb_err(err, EXDEV, "entry '%s' is not under '%s', the one name the copy may create", e->path,
                               top);
        /* the root directory itself: nothing to place; a copy has no use
         * for special files */
        if (!*path || (t->o->copy && is_special(e->type))) {
                st->skipped_devices += *path ? 1 : 0;
                return skip_body(t, e->size, e, err);
        }
        const char *dir, *base;
        split(path, &dir, &base);
        /* a whiteout in a directory that does not exist removes nothing,
         * and makes no directory either; in a copy it is a name */
        bool whiteout = !t->o->copy && !strncmp(base, ".wh.", 4);
        _cleanup_close_ int pfd = entry_parent(t, rootfd, dir, whiteout, e, err);
        if (whiteout && pfd == -ENOENT)
                return skip_body(t, e->size, e, err);
        if (pfd < 0)
                return pfd;
        if (whiteout)
                return apply_whiteout(t, pfd, dir, base, e, err);
        if (e->uid > MSB_ID_MAX || e->gid > MSB_ID_MAX)
                return msb_err(err, EINVAL, "entry '%s': owner %llu:%llu is out of range", e->path,
                               (unsigned long long)e->uid, (unsigned long long)e->gid);
        if (t->o->entries++ >= t->o->max_entries)
                return budget_error(t, e, E2BIG, err);
        if (!t->o->copy)
                placed_add_path(&t->mine, dir, base);
        bool exists_dir;
        int r = make_room(t, pfd, base, e, &exists_dir, err);
        if (r == 0)
                r = place(t, rootfd, pfd, dir, base, exists_dir, e, st, err);
        /* body bytes still to skip; regular files consumed theirs */
        bool file = e->type == '0' || e->type == '\0' || e->type == '7';
        return r < 0 ? r : skip_body(t, file ? 0 : e->size, e, err);
}

/* The process's umask, read without changing it (umask(2) would, for
 * every thread); the strictest guess if /proc cannot say. */
static mode_t current_umask(void)
{
        _cleanup_free_ char *st = NULL;
        if (read_file_at(AT_FDCWD, "/proc/self/status", 1 << 16, &st, NULL) == 0) {
                const char *u = strstr(st, "\nUmask:\t");
                if (u)
                        return (mode_t)strtoul(u + 8, NULL, 8) & 0777;
        }
        return 0777;
}

/* Open fd's stream: raw for a copy; else zstd by its magic number, or
 * gzread, which reads gzip (also concatenated members) and passes plain
 * data through. */
static int stream_open(struct tar_in *t, int fd, struct msb_error *err)
{
        t->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (t->fd < 0)
                return msb_err_errno(err, errno, "dup");
        uint8_t magic[4] = {0};
        t->raw = t->o->copy;
        if (!t->raw && pread(t->fd, magic, 4, 0) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f &&
            magic[3] == 0xfd) {
                t->zs = ZSTD_createDStream();
                t->zbuf = xmalloc(ZSTD_DStreamInSize());
                /* a layer may not make us allocate a huge window */
                if (!t->zs || ZSTD_isError(ZSTD_initDStream(t->zs)) ||
                    ZSTD_isError(ZSTD_DCtx_setParameter(t->zs, ZSTD_d_windowLogMax, 27)))
                        return msb_err(err, ENOMEM, "cannot open zstd layer stream");
        } else if (!t->raw) {
                t->gz = gzdopen(t->fd, "rb");
                if (!t->gz)
                        return msb_err(err, ENOMEM, "cannot open layer stream");
                gzbuffer(t->gz, 128 * 1024);
        }
        return 0;
}

static void stream_close(struct tar_in *t)
{
        if (t->gz)
                gzclose(t->gz); /* and its fd */
        else if (t->fd >= 0)
                close(t->fd);
        ZSTD_freeDStream(t->zs);
        free(t->zbuf);
}

static const char *what(const struct tar_in *t)
{
        return t->o->copy ? "the copy" : "layer";
}

/* The next header into h: 1, or 0 at the end of the archive: two zero
 * blocks, or the end of the data (some writers omit the blocks; not in a
 * copy, where a missing end means its writer failed). */
static int next_header(struct tar_in *t, uint8_t h[512], const struct tar_stats *st, struct msb_error *err)
{
        for (int zeros = 0;;) {
                int r = tin_read(t, h, 512);
                if (r == -ENODATA && t->pos == 0)
                        return msb_err(err, EIO, "%s is empty", what(t));
                if (r == -ENODATA)
                        return (zeros > 0 || st->entries > 0) && t->pos % 512 == 0 && !t->o->copy
                                       ? 0
                                       : msb_err(err, EIO, "%s is truncated", what(t));
                if (r < 0)
                        return msb_err(err, EIO, "%s is not a valid tar or gzip stream", what(t));
                bool zero = true;
                for (int i = 0; i < 512 && zero; i++)
                        zero = h[i] == 0;
                if (!zero)
                        return 1;
                if (++zeros == 2)
                        return 0;
        }
}

static int parse_header(const uint8_t *h, struct entry *e)
{
        e->type = (char)h[156];
        if (parse_num(h + 124, 12, &e->size) < 0 || parse_num(h + 100, 8, &e->mode) < 0 ||
            parse_num(h + 108, 8, &e->uid) < 0 || parse_num(h + 116, 8, &e->gid) < 0 ||
            parse_num(h + 136, 12, &e->mtime) < 0 || parse_num(h + 329, 8, &e->devmajor) < 0 ||
            parse_num(h + 337, 8, &e->devminor) < 0)
                return -EINVAL;
        return 0;
}

/* An extended header's body (pax 'x' or 'g', GNU 'L' or 'K') into x. */
static int read_ext(struct tar_in *t, const struct entry *e, struct ext *x, struct msb_error *err)
{
        if (e->size > TAR_MAX_PAX)
                return msb_err(err, E2BIG, "%s has a %llu-byte extended header (limit %u)", what(t),
                               (unsigned long long)e->size, TAR_MAX_PAX);
        uint64_t padded = (e->size + 511) & ~(uint64_t)511;
        _cleanup_free_ char *buf = xmalloc((size_t)padded + 1);
        if (tin_read(t, buf, (size_t)padded) < 0)
                return msb_err(err, EIO, "%s is truncated", what(t));
        buf[e->size] = '\0';
        if (e->type == 'x' && parse_pax(buf, (size_t)e->size, x) < 0)
                return msb_err(err, EINVAL, "%s has a malformed pax header", what(t));
        char **slot = e->type == 'L' ? &x->longname : e->type == 'K' ? &x->longlink : NULL;
        if (slot) {
                free(*slot);
                *slot = strndup(buf, (size_t)e->size);
        }
        return 0;
}

/* e's name, link target and time: from what extended headers said (x,
 * consumed), else the header's fields (a ustar prefix joins the name). */
static void entry_names(struct entry *e, const uint8_t *h, struct ext *x)
{
        if (x->pax_path || x->longname)
                e->path = x->pax_path ? TAKE_PTR(x->pax_path) : TAKE_PTR(x->longname);
        else {
                _cleanup_free_ char *name = field_str(h, 100);
                _cleanup_free_ char *prefix = memcmp(h + 257, "ustar", 5) == 0 ? field_str(h + 345, 155)
                                                                                : xstrdup("");
                e->path = *prefix ? xasprintf("%s/%s", prefix, name) : TAKE_PTR(name);
        }
        if (x->pax_link || x->longlink)
                e->link = x->pax_link ? TAKE_PTR(x->pax_link) : TAKE_PTR(x->longlink);
        else
                e->link = field_str(h + 157, 100);
        if (x->size != UINT64_MAX)
                e->size = x->size;
        if (x->has_mtime) {
                e->mtime = (uint64_t)x->mtime.tv_sec;
                e->mtime_ns = x->mtime.tv_nsec;
        }
        ext_clear(x);
}

/* One header block and what follows it. */
static int one_entry(struct tar_in *t, int rootfd, const uint8_t *h, struct entry *e, struct ext *x,
                     struct tar_stats *st, struct msb_error *err)
{
        if (!checksum_ok(h))
                return msb_err(err, EINVAL, "%s is not a valid tar (bad header checksum at offset %llu)", what(t),
                               (unsigned long long)(t->pos - 512));
        if (++st->entries > TAR_MAX_ENTRIES)
                return msb_err(err, E2BIG, "%s has more than %u entries", what(t), TAR_MAX_ENTRIES);
        entry_clear(e);
        if (parse_header(h, e) < 0)
                return msb_err(err, EINVAL, "%s has a malformed tar header", what(t));
        if (e->type == 'x' || e->type == 'g' || e->type == 'L' || e->type == 'K')
                return read_ext(t, e, x, err);
        entry_names(e, h, x);
        if (strlen(e->path) >= TAR_MAX_PATH || strlen(e->link) >= TAR_MAX_PATH)
                return msb_err(err, ENAMETOOLONG, "%s has a path longer than %u bytes", what(t), TAR_MAX_PATH);
        int r = apply_entry(t, rootfd, e, st, err);
        if (r < 0)
                return r;
        /* the padding after the data */
        uint64_t padded = (e->size + 511) & ~(uint64_t)511;
        if (tin_skip(t, padded - e->size) < 0)
                return msb_err(err, EIO, "%s is truncated", what(t));
        return 0;
}

int tar_unpack(int fd, int rootfd, struct tar_opts *opts, struct tar_stats *stats, struct msb_error *err)
{
        struct tar_opts defaults = TAR_OPTS_DEFAULT;
        struct tar_in t = {.fd = -1, .o = opts ? opts : &defaults, .uid = geteuid(), .gid = getegid(),
                           .umask = current_umask()};
        t.copy_umask = geteuid() == 0 ? 0 : t.umask;
        struct tar_stats st = {0};
        struct entry e = {0};
        struct ext x = {.size = UINT64_MAX};
        uint8_t h[512];
        int r = stream_open(&t, fd, err);
        while (r >= 0 && (r = next_header(&t, h, &st, err)) == 1)
                r = one_entry(&t, rootfd, h, &e, &x, &st, err);
        /* a copy that failed half way still gets its directories' modes
         * back (an existing one it merged into among them) */
        dirs_finish(&t, rootfd);
        dirs_free(&t);
        entry_clear(&e);
        ext_clear(&x);
        free(t.mine.v);
        stream_close(&t);
        if (r == 0 && stats)
                *stats = st;
        return r;
}
