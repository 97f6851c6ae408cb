/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb cp's tar writer (common/tarw.c) round-tripped through the unpacker's
 * copy mode (lib/tar/): files, empty files, directories, relative and
 * absolute symlinks, hard links, names past ustar's 100 and 255 bytes,
 * modes and nanosecond times; special files left out; no symlink followed
 * on the way in.  GNU tar must read the archive too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "check.h"
#include "common/tarw.h"
#include "common/util.h"
#include "lib/tar/unpack.h"

static char tmpl[] = "/tmp/msb-test-tarw-XXXXXX";
static char *base;
static int basefd = -1;

static void put(int dfd, const char *rel, const char *content, mode_t mode)
{
        int fd = openat(dfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        CHECK(fd >= 0);
        CHECK_INT(write_all(fd, content, strlen(content)), 0);
        CHECK_INT(fchmod(fd, mode), 0);
        close(fd);
}

static void set_time(int dfd, const char *rel, time_t sec, long ns)
{
        struct timespec ts[2] = {{sec, ns}, {sec, ns}};
        CHECK_INT(utimensat(dfd, rel, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static char *long_name(char c, size_t n)
{
        char *s = xmalloc(n + 1);
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

/* src/ with every kind of entry; "secret" next to it, which a symlink
 * points at and nothing may copy. */
static void make_tree(void)
{
        CHECK_INT(mkdirat(basefd, "src", 0755), 0);
        int s = openat(basefd, "src", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        put(basefd, "secret", "do not read", 0600);
        put(s, "f", "hello", 0640);
        put(s, "empty", "", 0600);
        put(s, "suid", "#!/bin/sh\n", 04755);
        put(s, ".wh.name", "a name like any other", 0644);
        CHECK_INT(mkdirat(s, "d", 0750), 0);
        put(s, "d/g", "in d", 0644);
        CHECK_INT(linkat(s, "f", s, "hard", 0), 0);
        CHECK_INT(linkat(s, "f", s, "d/hard2", 0), 0);
        CHECK_INT(symlinkat("f", s, "rel"), 0);
        CHECK_INT(symlinkat("/etc/passwd", s, "abs"), 0);
        CHECK_INT(symlinkat("../secret", s, "up"), 0);
        CHECK_INT(symlinkat("..", s, "updir"), 0);
        CHECK_INT(mkfifoat(s, "fifo", 0644), 0);
        /* a 150-byte name (pax path) and a 300-byte path (no ustar split) */
        _cleanup_free_ char *n150 = long_name('n', 150), *d120 = long_name('D', 120);
        put(s, n150, "long", 0644);
        CHECK_INT(mkdirat(s, d120, 0755), 0);
        _cleanup_free_ char *deep = xasprintf("%s/%s", d120, n150);
        put(s, deep, "longer", 0644);
        _cleanup_free_ char *lt = long_name('t', 200);
        CHECK_INT(symlinkat(lt, s, "longlink"), 0);
        CHECK_INT(mkdirat(s, "ro", 0755), 0);
        put(s, "ro/x", "x", 0644);
        CHECK_INT(fchmodat(s, "ro", 0555, 0), 0);
        set_time(s, "f", 1234567890, 123456789);
        set_time(s, "rel", 1000000000, 5);
        set_time(s, "ro", 1500000000, 999999999);
        set_time(s, "d", 1600000000, 0);
        close(s);
}

/* The archive of path (relative to base), top entry named name. */
static int archive(const char *path, const char *name, struct tarw_stats *st, char *why)
{
        int fd = openat(basefd, "a.tar", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        struct msb_error e = {0};
        int r = tarw_tree(fd, basefd, path, name, st, &e);
        snprintf(why, 512, "%s", e.message);
        close(fd);
        return r;
}

static int unpack_to(const char *dir, struct tar_stats *st, struct msb_error *e)
{
        rm_rf_at(basefd, dir);
        CHECK_INT(mkdirat(basefd, dir, 0700), 0);
        int root = openat(basefd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int fd = openat(basefd, "a.tar", O_RDONLY | O_CLOEXEC);
        struct tar_opts o = TAR_OPTS_DEFAULT;
        o.copy = true;
        memset(e, 0, sizeof(*e));
        int r = tar_unpack(fd, root, &o, st, e);
        if (r < 0)
                fprintf(stderr, "unpack: %s\n", e->message);
        close(fd);
        close(root);
        return r;
}

static struct stat lst(const char *rel)
{
        struct stat st = {0};
        if (fstatat(basefd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
                st.st_mode = 0;
        return st;
}

static void check_same(const char *a, const char *b)
{
        struct stat x = lst(a), y = lst(b);
        if (x.st_mode != y.st_mode || x.st_mtim.tv_sec != y.st_mtim.tv_sec || x.st_mtim.tv_nsec != y.st_mtim.tv_nsec ||
            (S_ISREG(x.st_mode) && x.st_size != y.st_size)) {
                fprintf(stderr, "%s and %s differ: mode %o/%o mtime %ld.%09ld/%ld.%09ld\n", a, b, x.st_mode,
                        y.st_mode, (long)x.st_mtim.tv_sec, x.st_mtim.tv_nsec, (long)y.st_mtim.tv_sec,
                        y.st_mtim.tv_nsec);
                check_failures++;
        }
}

static char *slurp(const char *rel)
{
        char *data = NULL;
        if (read_file_at(basefd, rel, 1 << 20, &data, NULL) < 0)
                return NULL;
        return data;
}

static char *target(const char *rel)
{
        static char buf[512];
        ssize_t n = readlinkat(basefd, rel, buf, sizeof(buf) - 1);
        buf[n < 0 ? 0 : n] = '\0';
        return buf;
}

static void test_round_trip(void)
{
        struct tarw_stats ws;
        char why[512] = "";
        CHECK_INT(archive("src", "copy", &ws, why), 0);
        CHECK_INT(ws.skipped, 1); /* the fifo */
        struct tar_stats ts;
        struct msb_error e;
        CHECK_INT(unpack_to("dst", &ts, &e), 0);
        const char *same[] = {"f", "empty", ".wh.name", "d", "d/g", "rel", "abs", "up", "ro", "ro/x", "hard"};
        for (size_t i = 0; i < ARRAY_SIZE(same); i++) {
                _cleanup_free_ char *a = xasprintf("src/%s", same[i]), *b = xasprintf("dst/copy/%s", same[i]);
                check_same(a, b);
        }
        CHECK_INT(lst("dst/copy/suid").st_mode & 07777, 0755); /* setuid dropped on the host */
        CHECK_INT(lst("dst/copy/fifo").st_mode, 0);
        struct stat f = lst("dst/copy/f"), h = lst("dst/copy/hard"), h2 = lst("dst/copy/d/hard2");
        CHECK(f.st_ino == h.st_ino && f.st_ino == h2.st_ino);
        CHECK_INT(f.st_nlink, 3);
        CHECK_STR(target("dst/copy/abs"), "/etc/passwd");
        CHECK_STR(target("dst/copy/up"), "../secret");
        CHECK_STR(target("dst/copy/updir"), "..");
        _cleanup_free_ char *lt = long_name('t', 200), *n150 = long_name('n', 150), *d120 = long_name('D', 120);
        CHECK_STR(target("dst/copy/longlink"), lt);
        _cleanup_free_ char *p1 = xasprintf("dst/copy/%s", n150), *p2 = xasprintf("dst/copy/%s/%s", d120, n150);
        char *s = slurp(p1);
        CHECK_STR(s, "long");
        free(s);
        s = slurp(p2);
        CHECK_STR(s, "longer");
        free(s);
        s = slurp("dst/copy/f");
        CHECK_STR(s, "hello");
        free(s);
        CHECK_INT(lst("dst/copy/empty").st_size, 0);
        /* the symlinks came as symlinks: nothing of what they point at */
        CHECK_INT(lst("dst/secret").st_mode, 0);
        CHECK_INT(ts.bytes, ws.bytes);
}

/* "." as the top: the directory's entries without a prefix */
static void test_contents(void)
{
        struct tarw_stats ws;
        char why[512] = "";
        CHECK_INT(archive("src/d", ".", &ws, why), 0);
        struct tar_stats ts;
        struct msb_error e;
        CHECK_INT(unpack_to("dst", &ts, &e), 0);
        char *s = slurp("dst/g");
        CHECK_STR(s, "in d");
        free(s);
        /* a hard link whose first name is outside what is copied is a file */
        CHECK_INT(lst("dst/hard2").st_nlink, 1);
}

/* a top that is a file, or a symlink (copied as one, not followed) */
static void test_tops(void)
{
        struct tarw_stats ws;
        char why[512] = "";
        struct tar_stats ts;
        struct msb_error e;
        CHECK_INT(archive("src/f", "renamed", &ws, why), 0);
        CHECK_INT(unpack_to("dst", &ts, &e), 0);
        check_same("src/f", "dst/renamed");
        CHECK_INT(archive("src/up", "up", &ws, why), 0);
        CHECK_INT(unpack_to("dst", &ts, &e), 0);
        CHECK_STR(target("dst/up"), "../secret");
        CHECK_INT(archive("src/nothing", "x", &ws, why), -ENOENT);
        CHECK(strstr(why, "src/nothing") != NULL);
        CHECK_INT(archive("src/f", "a/b", &ws, why), -EINVAL);
}

/* Its output is a tar other tools read (GNU tar, with the long names). */
static void test_gnu_tar_reads_it(void)
{
        struct tarw_stats ws;
        char why[512] = "";
        CHECK_INT(archive("src", "copy", &ws, why), 0);
        _cleanup_free_ char *cmd = xasprintf("cd %s && rm -rf gnu && mkdir gnu && tar -xf a.tar -C gnu 2>&1", base);
        if (system("tar --version >/dev/null 2>&1") != 0) {
                fprintf(stderr, "no tar here: skipping the GNU tar check\n");
                return;
        }
        CHECK_INT(system(cmd), 0);
        _cleanup_free_ char *d120 = long_name('D', 120), *n150 = long_name('n', 150);
        _cleanup_free_ char *p = xasprintf("gnu/copy/%s/%s", d120, n150);
        char *s = slurp(p);
        CHECK_STR(s, "longer");
        free(s);
        check_same("src/f", "gnu/copy/f");
}

int main(void)
{
        base = mkdtemp(tmpl);
        if (!base)
                return 1;
        basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        make_tree();
        test_round_trip();
        test_contents();
        test_tops();
        test_gnu_tar_reads_it();
        /* ro/ would keep a non-root rm from its entries */
        close(basefd);
        _cleanup_free_ char *cmd = xasprintf("chmod -R u+w %s && rm -rf %s", base, base);
        if (system(cmd) != 0)
                check_failures++;
        CHECK_DONE();
}
