/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tar writer of msb cp (tarw.h): a walk of one tree, every step relative
 * to its parent directory's fd, none through a symlink.
 */
#define _GNU_SOURCE
#include "error.h"
#include "tarw.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "util.h"

#define BLOCK 512u
/* Output is gathered into this many bytes per write(). */
#define OUTBUF (64u * 1024u)
/* What ustar's 12-byte size field holds in octal (11 digits). */
#define USTAR_MAX_SIZE 077777777777ULL
#define USTAR_NAME 100u
#define USTAR_PREFIX 155u

/* A file with more than one link, by inode: the archive path of its first
 * entry, which later ones link to.  Open addressing; path NULL: free. */
struct link {
        dev_t dev;
        ino_t ino;
        char *path;
};

struct tarw {
        int fd;
        uint8_t *buf; /* OUTBUF bytes; len of them pending */
        size_t len;
        struct link *links;
        size_t nlinks, caplinks;
        struct tarw_stats st;
        const char *src;  /* the path as given, for messages */
        char ap[TARW_MAX_PATH]; /* the current entry's archive path ("" for a "." top) */
        size_t aplen, toplen;
        struct msb_error *err;
};

/* ---- messages ---- */

/* err = "<src>[/<entry below the top>]: <what, or the text of errno e>"; -e. */
static int fail(struct tarw *w, int e, const char *what)
{
        const char *rel = "";
        if (w->aplen > w->toplen)
                rel = w->ap + w->toplen + (w->toplen ? 1 : 0);
        if (what)
                msb_err(w->err, e, "%s%s%s: %s", w->src, *rel ? "/" : "", rel, what);
        else
                msb_err_errno(w->err, e, "%s%s%s", w->src, *rel ? "/" : "", rel);
        return -e;
}

/* ---- output ---- */

static int out_flush(struct tarw *w)
{
        int r = w->len ? write_all(w->fd, w->buf, w->len) : 0;
        w->len = 0;
        return r == -EPIPE ? fail(w, EPIPE, "the reader of the archive went away") : r < 0 ? fail(w, -r, NULL) : 0;
}

static int out_put(struct tarw *w, const void *p, size_t n)
{
        const uint8_t *b = p;
        while (n > 0) {
                size_t k = OUTBUF - w->len < n ? OUTBUF - w->len : n;
                memcpy(w->buf + w->len, b, k);
                w->len += k;
                b += k;
                n -= k;
                int r = w->len == OUTBUF ? out_flush(w) : 0;
                if (r < 0)
                        return r;
        }
        return 0;
}

static int out_zeros(struct tarw *w, uint64_t n)
{
        static const uint8_t z[BLOCK];
        for (; n > 0; n -= n > BLOCK ? BLOCK : n) {
                int r = out_put(w, z, n > BLOCK ? BLOCK : (size_t)n);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Zeros from the end of n bytes of data to the next block. */
static int out_pad(struct tarw *w, uint64_t n)
{
        return out_zeros(w, (BLOCK - n % BLOCK) % BLOCK);
}

/* ---- headers ---- */

struct hdr {
        const char *path;
        const char *link; /* or NULL */
        char type;
        uint32_t mode;
        uint64_t uid, gid, size;
        struct timespec mtime;
};

/* Octal in a field of n bytes, NUL-terminated; base-256 (the GNU way, which
 * lib/tar reads too) when it does not fit. */
static void put_num(uint8_t *f, size_t n, uint64_t v)
{
        if (v < (1ULL << (3 * (n - 1)))) {
                snprintf((char *)f, n, "%0*llo", (int)(n - 1), (unsigned long long)v);
                return;
        }
        memset(f, 0, n);
        f[0] = 0x80;
        for (size_t i = n - 1; i > 0 && v; i--, v >>= 8)
                f[i] = (uint8_t)(v & 0xff);
}

/* Where a name splits into ustar's prefix and name: *ret_cut is the '/'
 * between them (0: the name alone fits).  false: a pax path is needed. */
static bool ustar_split(const char *p, size_t *ret_cut)
{
        size_t n = strlen(p);
        *ret_cut = 0;
        if (n <= USTAR_NAME)
                return true;
        for (size_t i = n - USTAR_NAME - 1; i <= USTAR_PREFIX && i < n - 1; i++)
                if (p[i] == '/') {
                        *ret_cut = i;
                        return true;
                }
        return false;
}

static size_t ndigits(size_t v)
{
        size_t d = 1;
        while (v >= 10) {
                v /= 10;
                d++;
        }
        return d;
}

/* Append one "LEN key=value\n" record (LEN counts itself). */
static void pax_rec(char **pax, size_t *len, const char *key, const char *val)
{
        size_t kv = strlen(key) + strlen(val) + 3; /* ' ', '=', '\n' */
        size_t n = kv + ndigits(kv);
        n = kv + ndigits(n);
        char *rec = xasprintf("%zu %s=%s\n", n, key, val);
        *pax = xrealloc(*pax, *len + n + 1);
        memcpy(*pax + *len, rec, n + 1);
        *len += n;
        free(rec);
}

static void fill_header(uint8_t b[BLOCK], const struct hdr *h, bool fits, size_t cut)
{
        size_t n = strlen(h->path);
        if (fits && cut) {
                memcpy(b + 345, h->path, cut);
                memcpy(b, h->path + cut + 1, n - cut - 1);
        } else
                memcpy(b, h->path, n < USTAR_NAME ? n : USTAR_NAME); /* a pax path says the rest */
        put_num(b + 100, 8, h->mode & 07777);
        put_num(b + 108, 8, h->uid);
        put_num(b + 116, 8, h->gid);
        put_num(b + 124, 12, h->size);
        put_num(b + 136, 12, h->mtime.tv_sec > 0 ? (uint64_t)h->mtime.tv_sec : 0);
        b[156] = (uint8_t)h->type;
        if (h->link)
                memcpy(b + 157, h->link, strnlen(h->link, USTAR_NAME));
        memcpy(b + 257, "ustar\0" "00", 8);
        memset(b + 148, ' ', 8);
        unsigned sum = 0;
        for (unsigned i = 0; i < BLOCK; i++)
                sum += b[i];
        snprintf((char *)b + 148, 7, "%06o", sum);
}

/* The pax records h needs: a long name or link target, a size past ustar's
 * field, a time with nanoseconds.  Caller frees. */
static char *pax_for(const struct hdr *h, bool fits, size_t *ret_len)
{
        char *pax = NULL, num[48];
        *ret_len = 0;
        if (!fits)
                pax_rec(&pax, ret_len, "path", h->path);
        if (h->link && strlen(h->link) > USTAR_NAME)
                pax_rec(&pax, ret_len, "linkpath", h->link);
        if (h->size > USTAR_MAX_SIZE) {
                snprintf(num, sizeof(num), "%llu", (unsigned long long)h->size);
                pax_rec(&pax, ret_len, "size", num);
        }
        if (h->mtime.tv_nsec && h->mtime.tv_sec >= 0) {
                snprintf(num, sizeof(num), "%lld.%09ld", (long long)h->mtime.tv_sec, h->mtime.tv_nsec);
                pax_rec(&pax, ret_len, "mtime", num);
        }
        return pax;
}

static int put_header(struct tarw *w, const struct hdr *h)
{
        size_t cut, plen;
        bool fits = ustar_split(h->path, &cut);
        _cleanup_free_ char *pax = pax_for(h, fits, &plen);
        uint8_t b[BLOCK];
        int r;
        if (plen) {
                memset(b, 0, sizeof(b));
                fill_header(b, &(struct hdr){.path = "././@PaxHeader", .type = 'x', .mode = 0644, .size = plen},
                            true, 0);
                if ((r = out_put(w, b, BLOCK)) < 0 || (r = out_put(w, pax, plen)) < 0 || (r = out_pad(w, plen)) < 0)
                        return r;
        }
        memset(b, 0, sizeof(b));
        fill_header(b, h, fits, cut);
        w->st.entries++;
        return out_put(w, b, BLOCK);
}

static struct hdr hdr_of(const char *path, char type, const struct stat *st)
{
        return (struct hdr){.path = path, .type = type, .mode = st->st_mode & 07777, .uid = st->st_uid,
                            .gid = st->st_gid, .mtime = st->st_mtim};
}

/* ---- hard links ---- */

static size_t link_slot(const struct tarw *w, dev_t dev, ino_t ino)
{
        size_t mask = w->caplinks - 1;
        size_t i = (size_t)(((uint64_t)ino * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)dev) & mask;
        while (w->links[i].path && !(w->links[i].dev == dev && w->links[i].ino == ino))
                i = (i + 1) & mask;
        return i;
}

static const char *link_find(const struct tarw *w, const struct stat *st)
{
        return w->caplinks ? w->links[link_slot(w, st->st_dev, st->st_ino)].path : NULL;
}

static void link_add(struct tarw *w, const struct stat *st, const char *path)
{
        if (2 * (w->nlinks + 1) > w->caplinks) {
                struct tarw g = {.caplinks = w->caplinks ? 2 * w->caplinks : 256};
                g.links = xcalloc(g.caplinks, sizeof(*g.links));
                for (size_t i = 0; i < w->caplinks; i++)
                        if (w->links[i].path)
                                g.links[link_slot(&g, w->links[i].dev, w->links[i].ino)] = w->links[i];
                free(w->links);
                w->links = g.links;
                w->caplinks = g.caplinks;
        }
        w->links[link_slot(w, st->st_dev, st->st_ino)] = (struct link){st->st_dev, st->st_ino, xstrdup(path)};
        w->nlinks++;
}

static void links_free(struct tarw *w)
{
        for (size_t i = 0; i < w->caplinks; i++)
                free(w->links[i].path);
        free(w->links);
}

/* ---- the walk ---- */

/* The current entry's archive path; a directory's ends in '/'. */
static const char *entry_path(struct tarw *w, bool dir, char out[TARW_MAX_PATH + 2])
{
        snprintf(out, TARW_MAX_PATH + 2, "%s%s", w->aplen ? w->ap : ".", dir ? "/" : "");
        return out;
}

/* Exactly size bytes of fd: a file that shrank is padded with zeros, one
 * that grew is cut (the header was written); both counted as changed. */
static int copy_data(struct tarw *w, int fd, uint64_t size)
{
        uint64_t left = size;
        while (left > 0) {
                int r = w->len == OUTBUF ? out_flush(w) : 0;
                if (r < 0)
                        return r;
                size_t room = OUTBUF - w->len < left ? OUTBUF - w->len : (size_t)left;
                ssize_t n = read(fd, w->buf + w->len, room);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return fail(w, errno, NULL);
                if (n == 0) {
                        w->st.changed++;
                        if ((r = out_zeros(w, left)) < 0)
                                return r;
                        break;
                }
                w->len += (size_t)n;
                left -= (uint64_t)n;
        }
        w->st.bytes += size;
        return out_pad(w, size);
}

static bool same_inode(const struct stat *a, const struct stat *b)
{
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && (a->st_mode & S_IFMT) == (b->st_mode & S_IFMT);
}

static int put_file(struct tarw *w, int dfd, const char *name, const struct stat *st)
{
        char path[TARW_MAX_PATH + 2];
        entry_path(w, false, path);
        const char *first = st->st_nlink > 1 ? link_find(w, st) : NULL;
        if (first) {
                struct hdr h = hdr_of(path, '1', st);
                h.link = first;
                return put_header(w, &h);
        }
        _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        struct stat fst;
        if (fd < 0 || fstat(fd, &fst) < 0)
                return fail(w, errno, NULL);
        if (!same_inode(st, &fst))
                return fail(w, EAGAIN, "replaced while it was being copied");
        if (fst.st_nlink > 1)
                link_add(w, &fst, path);
        struct hdr h = hdr_of(path, '0', &fst);
        h.size = (uint64_t)fst.st_size;
        int r = put_header(w, &h);
        return r < 0 ? r : copy_data(w, fd, h.size);
}

static int put_symlink(struct tarw *w, int dfd, const char *name, const struct stat *st)
{
        char path[TARW_MAX_PATH + 2], target[TARW_MAX_PATH];
        ssize_t n = readlinkat(dfd, name, target, sizeof(target));
        if (n < 0)
                return fail(w, errno, NULL);
        if ((size_t)n >= sizeof(target))
                return fail(w, ENAMETOOLONG, "symlink target too long");
        target[n] = '\0';
        struct hdr h = hdr_of(entry_path(w, false, path), '2', st);
        h.link = target;
        return put_header(w, &h);
}

/* Kernel file systems whose files are not data (and may be endless):
 * their directories are copied empty. */
static bool pseudo_fs(int fd)
{
        static const long types[] = {PROC_SUPER_MAGIC, SYSFS_MAGIC,  CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC,
                                     DEBUGFS_MAGIC,    TRACEFS_MAGIC, SECURITYFS_MAGIC,   BPF_FS_MAGIC,
                                     DEVPTS_SUPER_MAGIC, PSTOREFS_MAGIC, EFIVARFS_MAGIC};
        struct statfs sf;
        if (fstatfs(fd, &sf) < 0)
                return false;
        for (size_t i = 0; i < ARRAY_SIZE(types); i++)
                if ((long)sf.f_type == types[i])
                        return true;
        return false;
}

static int cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* A directory's entry names, sorted (an archive that does not depend on
 * the order the file system lists them in). */
static int list_dir(int fd, char ***ret, size_t *ret_n)
{
        *ret = NULL;
        *ret_n = 0;
        DIR *d = fdopendir_dup(fd);
        if (!d)
                return -errno;
        char **v = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        while ((errno = 0, de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (n == cap)
                        v = xrealloc(v, (cap = cap ? 2 * cap : 64) * sizeof(*v));
                v[n++] = xstrdup(de->d_name);
        }
        int e = errno;
        closedir(d);
        if (e) {
                names_free(v, n);
                return -e;
        }
        if (n)
                qsort(v, n, sizeof(*v), cmp_names);
        *ret = v;
        *ret_n = n;
        return 0;
}

static int put_entry(struct tarw *w, int dfd, const char *name, dev_t parent_dev, unsigned depth);

/* Every entry of the open directory fd, below the current path. */
static int put_children(struct tarw *w, int fd, dev_t dev, unsigned depth)
{
        char **names = NULL;
        size_t n = 0;
        int r = list_dir(fd, &names, &n);
        if (r < 0)
                return fail(w, -r, NULL);
        size_t saved = w->aplen;
        for (size_t i = 0; i < n && r == 0; i++) {
                size_t k = strlen(names[i]);
                if (saved + 1 + k + 2 > TARW_MAX_PATH) {
                        r = fail(w, ENAMETOOLONG, "a name in it makes a path too long to copy");
                        break;
                }
                if (saved)
                        w->ap[w->aplen++] = '/';
                memcpy(w->ap + w->aplen, names[i], k + 1);
                w->aplen += k;
                r = put_entry(w, fd, names[i], dev, depth + 1);
                w->aplen = saved;
                w->ap[saved] = '\0';
        }
        names_free(names, n);
        return r;
}

static int put_dir(struct tarw *w, int dfd, const char *name, const struct stat *st, dev_t parent_dev,
                   unsigned depth)
{
        if (depth >= TARW_MAX_DEPTH)
                return fail(w, ELOOP, "directories nested too deeply to copy");
        _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat fst;
        if (fd < 0 || fstat(fd, &fst) < 0)
                return fail(w, errno, NULL);
        if (!same_inode(st, &fst))
                return fail(w, EAGAIN, "replaced while it was being copied");
        char path[TARW_MAX_PATH + 2];
        struct hdr h = hdr_of(entry_path(w, true, path), '5', &fst);
        int r = put_header(w, &h);
        if (r < 0 || ((depth == 0 || fst.st_dev != parent_dev) && pseudo_fs(fd)))
                return r;
        return put_children(w, fd, fst.st_dev, depth);
}

static int put_entry(struct tarw *w, int dfd, const char *name, dev_t parent_dev, unsigned depth)
{
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                /* one that went since its directory was listed is no error */
                return depth > 0 && errno == ENOENT ? 0 : fail(w, errno, NULL);
        switch (st.st_mode & S_IFMT) {
        case S_IFREG:
                return put_file(w, dfd, name, &st);
        case S_IFDIR:
                return put_dir(w, dfd, name, &st, parent_dev, depth);
        case S_IFLNK:
                return put_symlink(w, dfd, name, &st);
        default:
                w->st.skipped++; /* a device, fifo or socket is no data */
                return 0;
        }
}

int tarw_tree(int fd, int dirfd, const char *path, const char *name, struct tarw_stats *st,
              struct msb_error *err)
{
        struct tarw w = {.fd = fd, .src = path, .err = err};
        if (!*name || !strcmp(name, "..") || strchr(name, '/') || strlen(name) >= TARW_MAX_PATH - 2)
                return fail(&w, EINVAL, "bad name for the archive's top entry");
        if (strcmp(name, ".")) {
                w.toplen = w.aplen = strlen(name);
                memcpy(w.ap, name, w.aplen + 1);
        }
        w.buf = xmalloc(OUTBUF);
        int r = put_entry(&w, dirfd, path, 0, 0);
        if (r == 0)
                r = out_zeros(&w, 2 * BLOCK);
        if (r == 0)
                r = out_flush(&w);
        links_free(&w);
        free(w.buf);
        if (r == 0 && st)
                *st = w.st;
        return r;
}
