/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Layer unpacking: normal entries, whiteouts, gzip, long names, and every
 * known way a hostile layer tries to write outside the rootfs.  Each hostile
 * case checks both the rejection and that nothing landed outside.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <zlib.h>

#include "check.h"
#include "common/vstat.h"
#include "common/util.h"
#include "lib/tar/unpack.h"

struct tb {
        uint8_t *p;
        size_t len, cap;
};

static void tb_put(struct tb *t, const void *d, size_t n)
{
        if (t->len + n > t->cap) {
                t->cap = (t->len + n) * 2 + 4096;
                t->p = xrealloc(t->p, t->cap);
        }
        memcpy(t->p + t->len, d, n);
        t->len += n;
}

static void tb_pad(struct tb *t)
{
        static const uint8_t z[512];
        tb_put(t, z, (512 - t->len % 512) % 512);
}

/* (Re)compute a header's checksum field. */
static void tb_checksum(uint8_t h[512])
{
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (int i = 0; i < 512; i++)
                sum += h[i];
        snprintf((char *)h + 148, 8, "%06o", sum);
        h[155] = ' ';
}

struct owner {
        unsigned uid, gid, major, minor;
};

/* One ustar entry; name up to 99 bytes. */
static void tb_entry_as(struct tb *t, const char *name, char type, unsigned mode, const char *link, const void *data,
                        size_t size, struct owner o)
{
        uint8_t h[512] = {0};
        snprintf((char *)h, 100, "%s", name);
        snprintf((char *)h + 100, 8, "%07o", mode);
        snprintf((char *)h + 108, 8, "%07o", o.uid);
        snprintf((char *)h + 116, 8, "%07o", o.gid);
        snprintf((char *)h + 329, 8, "%07o", o.major);
        snprintf((char *)h + 337, 8, "%07o", o.minor);
        snprintf((char *)h + 124, 12, "%011zo", size);
        snprintf((char *)h + 136, 12, "%011o", 0);
        h[156] = (uint8_t)type;
        if (link)
                snprintf((char *)h + 157, 100, "%s", link);
        memcpy(h + 257, "ustar\0" "00", 8);
        tb_checksum(h);
        tb_put(t, h, 512);
        if (size) {
                tb_put(t, data, size);
                tb_pad(t);
        }
}

static void tb_entry(struct tb *t, const char *name, char type, unsigned mode, const char *link, const void *data,
                     size_t size)
{
        tb_entry_as(t, name, type, mode, link, data, size, (struct owner){0, 0, 0, 0});
}

static void tb_file(struct tb *t, const char *name, const char *content)
{
        tb_entry(t, name, '0', 0644, NULL, content, strlen(content));
}

static void tb_end(struct tb *t)
{
        static const uint8_t z[1024];
        tb_put(t, z, sizeof(z));
}

static char tmpl_base[] = "/tmp/msb-test-tar-XXXXXX";
static char *base;       /* contains root/ and outside/ */
static int rootfd = -1;

static void fresh_root(void)
{
        char *cmd;
        if (rootfd >= 0)
                close(rootfd);
        if (asprintf(&cmd, "rm -rf %s/root %s/outside && mkdir %s/root %s/outside", base, base, base, base) < 0 ||
            system(cmd) != 0)
                abort();
        free(cmd);
        char *p = xasprintf("%s/root", base);
        rootfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(p);
}

/* Write t as a layer file (gzip or plain) and unpack it with opts. */
static int unpack_opts(struct tb *t, bool gz, struct tar_opts *opts, struct tar_stats *st, struct msb_error *e);

static int unpack(struct tb *t, bool gz, struct msb_error *e)
{
        return unpack_opts(t, gz, NULL, NULL, e);
}

static int unpack_opts(struct tb *t, bool gz, struct tar_opts *opts, struct tar_stats *st, struct msb_error *e)
{
        char *path = xasprintf("%s/layer", base);
        if (gz) {
                gzFile g = gzopen(path, "wb");
                gzwrite(g, t->p, (unsigned)t->len);
                gzclose(g);
        } else {
                int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                write_all(fd, t->p, t->len);
                close(fd);
        }
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        memset(e, 0, sizeof(*e));
        int r = tar_unpack(fd, rootfd, opts, st, e);
        close(fd);
        free(path);
        free(t->p);
        memset(t, 0, sizeof(*t));
        return r;
}

static char *slurp(const char *rel)
{
        char *data = NULL;
        if (read_file_at(rootfd, rel, 1 << 20, &data, NULL) < 0)
                return NULL;
        return data;
}

/* The MSB_XATTR_STAT record of rel, or NULL. */
static char *vstat_of(const char *rel)
{
        char *p = xasprintf("%s/root/%s", base, rel);
        char buf[MSB_VSTAT_MAX] = {0};
        ssize_t n = lgetxattr(p, MSB_XATTR_STAT, buf, sizeof(buf) - 1);
        free(p);
        return n > 0 ? xstrdup(buf) : NULL;
}

static int outside_count(void)
{
        char *cmd = xasprintf("test -z \"$(ls -A %s/outside)\" && ! test -e %s/evil", base, base);
        int r = system(cmd);
        free(cmd);
        return r == 0 ? 0 : 1;
}

static void test_basic(bool gz)
{
        fresh_root();
        struct tb t = {0};
        struct msb_error e;
        tb_entry(&t, "./", '5', 0755, NULL, NULL, 0);
        tb_entry(&t, "./a/", '5', 0750, NULL, NULL, 0);
        tb_entry(&t, "./a/f", '0', 0640, NULL, "hello", 5);
        tb_entry(&t, "./a/l", '2', 0777, "f", NULL, 0);
        tb_entry(&t, "./a/h", '1', 0, "./a/f", NULL, 0);
        tb_file(&t, "x/y/z", "deep");
        tb_entry(&t, "a/fifo", '6', 0600, NULL, NULL, 0);
        tb_end(&t);
        CHECK_INT(unpack(&t, gz, &e), 0);
        if (e.message[0])
                fprintf(stderr, "unexpected: %s\n", e.message);
        char *s = slurp("a/f");
        CHECK_STR(s, "hello");
        free(s);
        struct stat st, st2;
        CHECK_INT(fstatat(rootfd, "a/f", &st, 0), 0);
        /* on the host, readable by every user (a shared store serves them
         * all); the image's modes are what the guest sees */
        CHECK_INT(st.st_mode & 07777, 0644);
        CHECK_INT(fstatat(rootfd, "a", &st2, 0), 0);
        CHECK_INT(st2.st_mode & 07777, 0755);
        char *v = vstat_of("a/f");
        CHECK_STR(v, "1:0:0:100640:0");
        free(v);
        v = vstat_of("a");
        CHECK_STR(v, "1:0:0:40750:0");
        free(v);
        char lt[16] = {0};
        CHECK_INT(readlinkat(rootfd, "a/l", lt, sizeof(lt)), 1);
        CHECK_STR(lt, "f");
        CHECK_INT(fstatat(rootfd, "a/h", &st2, 0), 0);
        CHECK_INT(st2.st_ino, st.st_ino);
        s = slurp("x/y/z");
        CHECK_STR(s, "deep");
        free(s);
        /* a fifo is never made on the host: a placeholder file says it */
        CHECK_INT(fstatat(rootfd, "a/fifo", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK(S_ISREG(st.st_mode));
        s = vstat_of("a/fifo");
        CHECK_STR(s, "1:0:0:10600:0");
        free(s);
}

static void test_whiteouts(void)
{
        fresh_root();
        struct tb t = {0};
        struct msb_error e;
        tb_file(&t, "d/keep", "k");
        tb_file(&t, "d/gone", "g");
        tb_file(&t, "d/gonedir/inner", "i");
        tb_file(&t, "e/old1", "o");
        tb_file(&t, "e/sub/old2", "o");
        tb_end(&t);
        CHECK_INT(unpack(&t, true, &e), 0);
        tb_entry(&t, "d/.wh.gone", '0', 0644, NULL, NULL, 0);
        tb_entry(&t, "d/.wh.gonedir", '0', 0644, NULL, NULL, 0);
        tb_entry(&t, "e/", '5', 0755, NULL, NULL, 0);
        tb_entry(&t, "e/.wh..wh..opq", '0', 0644, NULL, NULL, 0);
        tb_file(&t, "e/new", "n");
        tb_end(&t);
        CHECK_INT(unpack(&t, false, &e), 0);
        struct stat st;
        CHECK_INT(fstatat(rootfd, "d/keep", &st, 0), 0);
        CHECK(fstatat(rootfd, "d/gone", &st, 0) < 0 && errno == ENOENT);
        CHECK(fstatat(rootfd, "d/gonedir", &st, 0) < 0 && errno == ENOENT);
        CHECK(fstatat(rootfd, "e/old1", &st, 0) < 0 && errno == ENOENT);
        CHECK(fstatat(rootfd, "e/sub", &st, 0) < 0 && errno == ENOENT);
        CHECK_INT(fstatat(rootfd, "e/new", &st, 0), 0);
        CHECK(fstatat(rootfd, "d/.wh.gone", &st, 0) < 0);
        /* a whiteout may not name ".." */
        tb_entry(&t, "d/.wh..", '0', 0644, NULL, NULL, 0);
        tb_end(&t);
        CHECK_INT(unpack(&t, false, &e), -EINVAL);
}

/* An opaque whiteout hides the lower layers' content of its directory, not
 * what the same layer put there, before the marker or after it. */
static void test_opaque_keeps_own_layer(void)
{
        fresh_root();
        struct tb t = {0};
        struct msb_error e;
        tb_file(&t, "e/old1", "o");
        tb_file(&t, "e/sub/old2", "o");
        tb_file(&t, "e/keepdir/lower", "o");
        tb_end(&t);
        CHECK_INT(unpack(&t, true, &e), 0);
        tb_entry(&t, "e/", '5', 0755, NULL, NULL, 0);
        tb_file(&t, "e/+early", "mine");
        tb_file(&t, "e/keepdir/mine", "mine");
        tb_entry(&t, "e/.wh..wh..opq", '0', 0644, NULL, NULL, 0);
        tb_file(&t, "e/late", "mine");
        tb_end(&t);
        CHECK_INT(unpack(&t, false, &e), 0);
        struct stat st;
        CHECK_INT(fstatat(rootfd, "e/+early", &st, 0), 0);
        CHECK_INT(fstatat(rootfd, "e/keepdir/mine", &st, 0), 0);
        CHECK_INT(fstatat(rootfd, "e/late", &st, 0), 0);
        CHECK(fstatat(rootfd, "e/keepdir/lower", &st, 0) < 0 && errno == ENOENT);
        CHECK(fstatat(rootfd, "e/old1", &st, 0) < 0 && errno == ENOENT);
        CHECK(fstatat(rootfd, "e/sub", &st, 0) < 0 && errno == ENOENT);
}

static void test_long_names(void)
{
        fresh_root();
        struct tb t = {0};
        struct msb_error e;
        char longp[300];
        memset(longp, 'p', sizeof(longp));
        memcpy(longp + 100, "/", 1);
        memcpy(longp + 200, "/", 1);
        longp[299] = 0;
        /* pax path record */
        char rec[400];
        int n = (int)strlen(longp) + 6 + 1; /* " path=" + "\n" */
        int len = n + 3;                   /* three digits */
        snprintf(rec, sizeof(rec), "%d path=%s\n", len, longp);
        CHECK_INT((int)strlen(rec), len);
        tb_entry(&t, "PaxHeaders/x", 'x', 0644, NULL, rec, strlen(rec));
        tb_file(&t, "short-ignored", "pax");
        /* GNU long name */
        char gnu[200];
        memset(gnu, 'g', sizeof(gnu));
        gnu[199] = 0;
        tb_entry(&t, "././@LongLink", 'L', 0644, NULL, gnu, strlen(gnu) + 1);
        tb_file(&t, "short2", "gnu");
        tb_end(&t);
        CHECK_INT(unpack(&t, false, &e), 0);
        char *s = slurp(longp);
        CHECK_STR(s, "pax");
        free(s);
        s = slurp(gnu);
        CHECK_STR(s, "gnu");
        free(s);
        struct stat st;
        CHECK(fstatat(rootfd, "short-ignored", &st, 0) < 0);
}

static void test_replace(void)
{
        fresh_root();
        struct tb t = {0};
        struct msb_error e;
        char *outside = xasprintf("%s/outside/file", base);
        /* a symlink pointing outside, later replaced by a regular file:
         * the file must replace the link, never be written through it */
        tb_entry(&t, "a", '2', 0777, outside, NULL, 0);
        tb_file(&t, "a", "replaced");
        tb_file(&t, "b", "file");
        tb_entry(&t, "b/", '5', 0755, NULL, NULL, 0);
        tb_file(&t, "b/in", "x");
        tb_end(&t);
        CHECK_INT(unpack(&t, false, &e), 0);
        char *s = slurp("a");
        CHECK_STR(s, "replaced");
        free(s);
        s = slurp("b/in");
        CHECK_STR(s, "x");
        free(s);
        CHECK_INT(outside_count(), 0);
        free(outside);
}

/* relative symlinks that stay inside are followed, as in merged-/usr images */
static void test_inside_symlink_dir(void)
{
        fresh_root();
        struct tb t = {0};
        struct msb_error e;
        tb_entry(&t, "usr/lib/", '5', 0755, NULL, NULL, 0);
        tb_entry(&t, "lib", '2', 0777, "usr/lib", NULL, 0);
        tb_file(&t, "lib/x", "via-link");
        tb_end(&t);
        CHECK_INT(unpack(&t, false, &e), 0);
        char *s = slurp("usr/lib/x");
        CHECK_STR(s, "via-link");
        free(s);
}

static void expect_rejected(const char *what, struct tb *t, int err_code, const char *msg_part)
{
        struct msb_error e;
        tb_end(t);
        int r = unpack(t, false, &e);
        if (r != -err_code)
                fprintf(stderr, "case '%s': got %d (%s), expected %d\n", what, r, e.message, -err_code);
        CHECK_INT(r, -err_code);
        if (msg_part && !strstr(e.message, msg_part)) {
                fprintf(stderr, "case '%s': message '%s' lacks '%s'\n", what, e.message, msg_part);
                check_failures++;
        }
        CHECK_INT(outside_count(), 0);
}

static void test_hostile(void)
{
        char *outside = xasprintf("%s/outside", base);
        char *outside_file = xasprintf("%s/outside/target", base);
        struct tb t = {0};

        fresh_root();
        tb_file(&t, "/evil", "x");
        expect_rejected("absolute name", &t, EINVAL, "absolute path");

        fresh_root();
        tb_file(&t, "../evil", "x");
        expect_rejected("dot-dot name", &t, EINVAL, "'..'");

        fresh_root();
        tb_file(&t, "a/../../evil", "x");
        expect_rejected("inner dot-dot", &t, EINVAL, "'..'");

        fresh_root();
        tb_entry(&t, "sym", '2', 0777, outside, NULL, 0);
        tb_file(&t, "sym/pwned", "x");
        expect_rejected("symlink then write (absolute)", &t, EXDEV, "outside the image root");

        fresh_root();
        tb_entry(&t, "up", '2', 0777, "../outside", NULL, 0);
        tb_file(&t, "up/pwned", "x");
        expect_rejected("symlink then write (relative)", &t, EXDEV, "outside the image root");

        fresh_root();
        tb_entry(&t, "d/", '5', 0755, NULL, NULL, 0);
        tb_entry(&t, "d/up", '2', 0777, "../..", NULL, 0);
        tb_entry(&t, "d/up/outside/pwned", '5', 0755, NULL, NULL, 0);
        expect_rejected("symlink then mkdir", &t, EXDEV, NULL);

        /* hard links to outside: by "..", absolute, through a symlink */
        int fd = open(outside_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        close(fd);
        fresh_root();
        fd = open(outside_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        close(fd);
        tb_entry(&t, "h", '1', 0644, "../outside/target", NULL, 0);
        struct msb_error e;
        tb_end(&t);
        CHECK_INT(unpack(&t, false, &e), -EXDEV);
        struct stat st;
        CHECK_INT(stat(outside_file, &st), 0);
        CHECK_INT(st.st_nlink, 1);

        tb_entry(&t, "h", '1', 0644, outside_file, NULL, 0);
        tb_end(&t);
        CHECK_INT(unpack(&t, false, &e), -EXDEV);
        CHECK_INT(stat(outside_file, &st), 0);
        CHECK_INT(st.st_nlink, 1);

        tb_entry(&t, "s", '2', 0777, outside, NULL, 0);
        tb_entry(&t, "h", '1', 0644, "s/target", NULL, 0);
        tb_end(&t);
        CHECK_INT(unpack(&t, false, &e), -EXDEV);
        CHECK_INT(stat(outside_file, &st), 0);
        CHECK_INT(st.st_nlink, 1);
        unlink(outside_file);

        /* whiteout through a symlink must not delete outside */
        fresh_root();
        fd = open(outside_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        close(fd);
        tb_entry(&t, "s", '2', 0777, outside, NULL, 0);
        tb_entry(&t, "s/.wh.target", '0', 0644, NULL, NULL, 0);
        tb_end(&t);
        CHECK_INT(unpack(&t, false, &e), -EXDEV);
        CHECK_INT(stat(outside_file, &st), 0);
        unlink(outside_file);

        free(outside);
        free(outside_file);
}

static void test_malformed(void)
{
        struct tb t = {0};
        struct msb_error e;
        fresh_root();
        /* truncated data */
        tb_entry(&t, "f", '0', 0644, NULL, "abc", 3);
        t.len -= 512; /* drop the data block */
        CHECK_INT(unpack(&t, false, &e), -EIO);
        CHECK(strstr(e.message, "truncated") != NULL);
        /* bad checksum */
        tb_file(&t, "f", "x");
        t.p[0] ^= 1;
        tb_end(&t);
        CHECK_INT(unpack(&t, false, &e), -EINVAL);
        CHECK(strstr(e.message, "checksum") != NULL);
        /* oversized pax header */
        uint8_t h[512];
        tb_entry(&t, "x", 'x', 0644, NULL, NULL, 0);
        memcpy(h, t.p, 512);
        t.len = 0;
        snprintf((char *)h + 124, 12, "%011o", 2u << 20);
        tb_checksum(h);
        tb_put(&t, h, 512);
        tb_end(&t);
        CHECK_INT(unpack(&t, false, &e), -E2BIG);
        /* not a tar at all */
        tb_put(&t, "garbage", 7);
        CHECK_INT(unpack(&t, false, &e), -EIO);
        /* empty stream */
        CHECK_INT(unpack(&t, false, &e), -EIO);
        /* unsupported type */
        tb_entry(&t, "sparse", 'S', 0644, NULL, NULL, 0);
        tb_end(&t);
        CHECK_INT(unpack(&t, false, &e), -ENOTSUP);
}

/* Owners, setuid bits and device nodes of an image live in metadata only:
 * what lands on the host grants no host user anything. */
static void test_no_privilege_on_host(void)
{
        fresh_root();
        struct tb t = {0};
        struct msb_error e;
        tb_entry_as(&t, "bin/", '5', 0755, NULL, NULL, 0, (struct owner){0, 0, 0, 0});
        tb_entry_as(&t, "bin/su", '0', 04755, NULL, "#!", 2, (struct owner){0, 0, 0, 0});
        tb_entry_as(&t, "bin/wall", '0', 02755, NULL, "#!", 2, (struct owner){0, 5, 0, 0});
        tb_entry_as(&t, "home/u/", '5', 0700, NULL, NULL, 0, (struct owner){1000, 1000, 0, 0});
        tb_entry_as(&t, "home/u/secret", '0', 0000, NULL, "s", 1, (struct owner){1000, 1000, 0, 0});
        tb_entry_as(&t, "dev/sda", '4', 0660, NULL, NULL, 0, (struct owner){0, 6, 8, 0});
        tb_entry_as(&t, "dev/zero", '3', 0666, NULL, NULL, 0, (struct owner){0, 0, 1, 5});
        tb_entry_as(&t, "tmp/", '5', 01777, NULL, NULL, 0, (struct owner){0, 0, 0, 0});
        tb_end(&t);
        CHECK_INT(unpack(&t, false, &e), 0);
        if (e.message[0])
                fprintf(stderr, "unexpected: %s\n", e.message);
        const char *names[] = {"bin/su", "bin/wall", "home/u", "home/u/secret", "dev/sda", "dev/zero", "tmp"};
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
                struct stat st;
                CHECK_INT(fstatat(rootfd, names[k], &st, AT_SYMLINK_NOFOLLOW), 0);
                /* host: ours, no setuid/setgid, only files and directories */
                CHECK_INT(st.st_uid, geteuid());
                CHECK_INT(st.st_gid, getegid());
                CHECK_INT(st.st_mode & 06000, 0);
                CHECK(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode));
                CHECK((st.st_mode & 0400) != 0);
        }
        /* the guest's view */
        struct {
                const char *name, *want;
        } v[] = {
                {"bin/su", "1:0:0:104755:0"},
                {"bin/wall", "1:0:5:102755:0"},
                {"home/u", "1:1000:1000:40700:0"},
                {"home/u/secret", "1:1000:1000:100000:0"},
                {"dev/sda", "1:0:6:60660:2048"},
                {"dev/zero", "1:0:0:20666:261"},
        };
        for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++) {
                char *got = vstat_of(v[k].name);
                CHECK_STR(got, v[k].want);
                free(got);
        }
        /* never writable by group or others on the host (a shared store
         * must not become a drop box): the sticky 1777 is metadata */
        struct stat tst;
        CHECK_INT(fstatat(rootfd, "tmp", &tst, 0), 0);
        CHECK_INT(tst.st_mode & 07777, 0755);
        char *tv = vstat_of("tmp");
        CHECK_STR(tv, "1:0:0:41777:0");
        free(tv);
        /* nothing to record for what the host shows as is (as root) */
        if (geteuid() == 0) {
                char *got = vstat_of("bin");
                CHECK(got == NULL);
                free(got);
        }
        char mark[4] = {0};
        CHECK_INT((int)fgetxattr(rootfd, MSB_XATTR_MARK, mark, sizeof(mark)), 1);
        /* a later layer that declares the directory plainly drops the record */
        tb_entry_as(&t, "home/u/", '5', 0755, NULL, NULL, 0, (struct owner){geteuid(), getegid(), 0, 0});
        tb_end(&t);
        CHECK_INT(unpack(&t, false, &e), 0);
        char *got = vstat_of("home/u");
        CHECK(got == NULL);
        free(got);
}

/* An archive (msb load) gets no metadata and no special files at all. */
static void test_plain_mode(void)
{
        fresh_root();
        struct tb t = {0};
        struct msb_error e = {0};
        tb_entry_as(&t, "config.json", '3', 0644, NULL, NULL, 0, (struct owner){0, 0, 1, 5});
        tb_entry(&t, "fifo", '6', 0644, NULL, NULL, 0);
        tb_file(&t, "manifest.json", "[]");
        tb_end(&t);
        struct tar_opts o = TAR_OPTS_DEFAULT;
        o.plain = true;
        struct tar_stats st;
        CHECK_INT(unpack_opts(&t, false, &o, &st, &e), 0);
        CHECK_INT(st.skipped_devices, 2);
        struct stat sb;
        CHECK(fstatat(rootfd, "config.json", &sb, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
        CHECK(fstatat(rootfd, "fifo", &sb, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
        char mark[4];
        CHECK(fgetxattr(rootfd, MSB_XATTR_MARK, mark, sizeof(mark)) < 0);
}

/* One image's budget holds across its layers: a small layer that expands
 * to much more than allowed fails, naming the limit. */
static void test_budget(void)
{
        fresh_root();
        struct tar_opts o = TAR_OPTS_DEFAULT;
        o.max_bytes = 10000;
        o.max_entries = 5;
        struct msb_error e = {0};
        static char big[6000];
        memset(big, 'x', sizeof(big));
        for (int layer = 0; layer < 2; layer++) {
                struct tb t = {0};
                tb_entry(&t, layer ? "b" : "a", '0', 0644, NULL, big, sizeof(big));
                tb_end(&t);
                CHECK_INT(unpack_opts(&t, true, &o, NULL, &e), layer ? -EFBIG : 0);
        }
        CHECK(strstr(e.message, "unpack-max-bytes") != NULL);
        fresh_root();
        o = (struct tar_opts)TAR_OPTS_DEFAULT;
        o.max_entries = 5;
        struct tb t = {0};
        for (int k = 0; k < 6; k++) {
                char n[8];
                snprintf(n, sizeof(n), "f%d", k);
                tb_file(&t, n, "x");
        }
        tb_end(&t);
        CHECK_INT(unpack_opts(&t, false, &o, NULL, &e), -E2BIG);
        CHECK(strstr(e.message, "unpack-max-entries") != NULL);

        /* what costs without being an entry of its own still counts:
         * implied parent directories, whiteouts in missing directories
         * (which make nothing), symlink targets, bodies of entries that
         * have none */
        struct {
                const char *name;
                char type;
                const char *link;
                size_t body;
                int want;
        } cases[] = {
                {"a/b/c/d/e/f/g/h/i/j/k", '0', NULL, 0, -E2BIG},
                {"x/y/z/w/.wh.gone", '0', NULL, 0, 0},
                {"s", '2', "0123456789012345678901234567890123456789", 0, -EFBIG},
                {"d/", '5', NULL, 4096, -EFBIG},
        };
        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                fresh_root();
                o = (struct tar_opts)TAR_OPTS_DEFAULT;
                o.max_entries = 5;
                o.max_bytes = 32;
                struct tb c = {0};
                static char body[4096];
                tb_entry(&c, cases[k].name, cases[k].type, 0755, cases[k].link, cases[k].body ? body : NULL,
                         cases[k].body);
                tb_end(&c);
                CHECK_INT(unpack_opts(&c, false, &o, NULL, &e), cases[k].want);
                struct stat sb;
                if (cases[k].name[0] == 'x') /* the whiteout made no directory */
                        CHECK(fstatat(rootfd, "x", &sb, 0) < 0 && errno == ENOENT);
        }
}

/* A tree deeper than the fd limit can still be removed (a failed unpack
 * of a hostile layer must not leave it behind). */
static void test_deep_tree_removed(void)
{
        fresh_root();
        int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        for (int i = 0; i < 3000; i++) {
                CHECK_INT(mkdirat(fd, "d", 0755), 0);
                int nfd = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                close(fd);
                fd = nfd;
        }
        CHECK_INT(openat(fd, "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644) >= 0, 1);
        close(fd);
        struct rlimit old, low = {256, 256};
        getrlimit(RLIMIT_NOFILE, &old);
        setrlimit(RLIMIT_NOFILE, &low);
        CHECK_INT(rm_rf_at(rootfd, "d"), 0);
        setrlimit(RLIMIT_NOFILE, &old);
        struct stat sb;
        CHECK(fstatat(rootfd, "d", &sb, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
}

/* ---- copies out of a sandbox (msb cp): what the guest sends is hostile ---- */

static int copy_unpack(struct tb *t, struct tar_stats *st, struct msb_error *e)
{
        struct tar_opts o = TAR_OPTS_DEFAULT;
        o.copy = true;
        return unpack_opts(t, false, &o, st, e);
}

static void expect_copy_rejected(const char *what, struct tb *t, int err_code, const char *msg_part)
{
        struct msb_error e;
        tb_end(t);
        int r = copy_unpack(t, NULL, &e);
        if (r != -err_code)
                fprintf(stderr, "copy case '%s': got %d (%s), expected %d\n", what, r, e.message, -err_code);
        CHECK_INT(r, -err_code);
        if (msg_part && !strstr(e.message, msg_part)) {
                fprintf(stderr, "copy case '%s': message '%s' lacks '%s'\n", what, e.message, msg_part);
                check_failures++;
        }
        CHECK_INT(outside_count(), 0);
}

/* A pax header with one record, for the entry that follows. */
static void tb_pax(struct tb *t, const char *key, const char *val)
{
        char rec[512];
        size_t kv = strlen(key) + strlen(val) + 3, n = kv + 2;
        if (n >= 100)
                n++;
        snprintf(rec, sizeof(rec), "%zu %s=%s\n", n, key, val);
        tb_entry(t, "././@PaxHeader", 'x', 0644, NULL, rec, strlen(rec));
}

static void test_copy_escapes(void)
{
        char *outside = xasprintf("%s/outside", base);
        char *outside_file = xasprintf("%s/outside/target", base);
        struct tb t = {0};

        fresh_root();
        tb_file(&t, "../evil", "x");
        expect_copy_rejected("dot-dot name", &t, EINVAL, "'..'");
        fresh_root();
        tb_file(&t, "/evil", "x");
        expect_copy_rejected("absolute name", &t, EINVAL, "absolute path");
        fresh_root();
        tb_entry(&t, "x/", '5', 0755, NULL, NULL, 0);
        tb_entry(&t, "x/link", '2', 0777, outside, NULL, 0);
        tb_file(&t, "x/link/pwned", "x");
        expect_copy_rejected("symlink then a file through it", &t, EXDEV, "symlink");
        fresh_root();
        tb_entry(&t, "x/", '5', 0755, NULL, NULL, 0);
        tb_entry(&t, "x/up", '2', 0777, "../../../..", NULL, 0);
        tb_entry(&t, "x/up/tmp/", '5', 0755, NULL, NULL, 0);
        expect_copy_rejected("symlink up then a directory through it", &t, EXDEV, NULL);

        /* hard links: outside by "..", absolute, and a file of the user's
         * that the copy did not bring (it must not gain a name in it) */
        fresh_root();
        int fd = open(outside_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        close(fd);
        fd = openat(rootfd, "mine", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        close(fd);
        struct msb_error e;
        const char *targets[] = {"../outside/target", outside_file, "mine"};
        for (size_t k = 0; k < ARRAY_SIZE(targets); k++) {
                tb_entry(&t, "h", '1', 0644, targets[k], NULL, 0);
                tb_end(&t);
                CHECK_INT(copy_unpack(&t, NULL, &e), -EXDEV);
        }
        CHECK(strstr(e.message, "not a file of the copy") != NULL);
        struct stat st;
        CHECK(fstatat(rootfd, "h", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
        CHECK_INT(stat(outside_file, &st), 0);
        CHECK_INT(st.st_nlink, 1);
        CHECK_INT(fstatat(rootfd, "mine", &st, 0), 0);
        CHECK_INT(st.st_nlink, 1);
        unlink(outside_file);
        free(outside);
        free(outside_file);

        /* a link of the guest's own, inside the destination, leads nowhere
         * either: no entry goes through any symlink */
        fresh_root();
        tb_entry(&t, "x/", '5', 0755, NULL, NULL, 0);
        fd = openat(rootfd, "users", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(fd < 0);
        CHECK_INT(mkdirat(rootfd, "users", 0755), 0);
        tb_entry(&t, "x/l", '2', 0777, "../users", NULL, 0);
        tb_file(&t, "x/l/Makefile", "pwned");
        expect_copy_rejected("a file through a symlink inside", &t, EXDEV, "symlink");
        CHECK(fstatat(rootfd, "users/Makefile", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
        /* a hard link to a name the guest pointed at the user's file */
        fresh_root();
        fd = openat(rootfd, "secret", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        close(fd);
        tb_entry(&t, "t", '2', 0777, "secret", NULL, 0);
        tb_entry(&t, "h", '1', 0644, "t", NULL, 0);
        tb_end(&t);
        CHECK_INT(copy_unpack(&t, NULL, &e), 0);
        /* h names the symlink the copy made, never what it points at */
        CHECK_INT(fstatat(rootfd, "h", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK(S_ISLNK(st.st_mode));
        CHECK_INT(fstatat(rootfd, "secret", &st, 0), 0);
        CHECK_INT(st.st_nlink, 1);
}

/* A copy asked for under one name creates nothing beside it. */
static void test_copy_top(void)
{
        fresh_root();
        struct tb t = {0};
        struct msb_error e = {0};
        struct tar_opts o = TAR_OPTS_DEFAULT;
        o.copy = true;
        o.copy_top = "out";
        tb_entry(&t, "out/", '5', 0755, NULL, NULL, 0);
        tb_file(&t, "out/f", "fine");
        tb_entry(&t, ".ssh/", '5', 0777, NULL, NULL, 0);
        tb_file(&t, ".ssh/authorized_keys", "attacker");
        tb_end(&t);
        CHECK_INT(unpack_opts(&t, false, &o, NULL, &e), -EXDEV);
        CHECK(strstr(e.message, "not under 'out'") != NULL);
        struct stat st;
        CHECK(fstatat(rootfd, ".ssh", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
        char *f = slurp("out/f");
        CHECK_STR(f, "fine");
        free(f);
        /* "outward" is not "out" */
        fresh_root();
        tb_file(&t, "outward", "x");
        tb_end(&t);
        CHECK_INT(unpack_opts(&t, false, &o, NULL, &e), -EXDEV);
}

/* ".wh." is a name like any other; no xattrs; special files skipped */
static void test_copy_names_and_kinds(void)
{
        fresh_root();
        int fd = openat(rootfd, "keep", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        close(fd);
        struct tb t = {0};
        struct msb_error e = {0};
        tb_file(&t, ".wh.keep", "w");
        tb_file(&t, ".wh..wh..opq", "o");
        tb_entry_as(&t, "owned", '0', 0644, NULL, "x", 1, (struct owner){1234, 5678, 0, 0});
        tb_entry(&t, "fifo", '6', 0644, NULL, NULL, 0);
        tb_entry_as(&t, "null", '3', 0666, NULL, NULL, 0, (struct owner){0, 0, 1, 3});
        tb_end(&t);
        struct tar_stats ts;
        CHECK_INT(copy_unpack(&t, &ts, &e), 0);
        CHECK_INT(ts.skipped_devices, 2);
        struct stat st;
        CHECK_INT(fstatat(rootfd, "keep", &st, 0), 0);
        char *s = slurp(".wh.keep");
        CHECK_STR(s, "w");
        free(s);
        s = slurp(".wh..wh..opq");
        CHECK_STR(s, "o");
        free(s);
        CHECK(fstatat(rootfd, "fifo", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
        CHECK(fstatat(rootfd, "null", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
        CHECK_INT(fstatat(rootfd, "owned", &st, 0), 0);
        CHECK_INT(st.st_uid, geteuid());
        CHECK(vstat_of("owned") == NULL);
        char mark[4];
        CHECK(fgetxattr(rootfd, MSB_XATTR_MARK, mark, sizeof(mark)) < 0);
}

static void check_mode(const char *rel, unsigned want)
{
        struct stat st;
        CHECK_INT(fstatat(rootfd, rel, &st, AT_SYMLINK_NOFOLLOW), 0);
        if ((st.st_mode & 07777) != want)
                fprintf(stderr, "%s: mode %o, expected %o\n", rel, st.st_mode & 07777, want);
        CHECK_INT(st.st_mode & 07777, want);
}

/* permissions kept but setuid/setgid; times kept to the nanosecond, a
 * directory's after its entries went in */
static void test_copy_modes_times(void)
{
        /* as tar does: for a user the umask applies (nothing lands group
         * or world writable that the user would not have made so) */
        mode_t old = umask(022);
        fresh_root();
        struct tb t = {0};
        struct msb_error e = {0};
        tb_pax(&t, "mtime", "1234567890.123456789");
        tb_entry(&t, "ro/", '5', 0555, NULL, NULL, 0);
        tb_file(&t, "ro/f", "in a read-only dir");
        tb_entry(&t, "suid", '0', 04755, NULL, "x", 1);
        tb_entry(&t, "sgid/", '5', 02775, NULL, NULL, 0);
        tb_entry(&t, "tmp/", '5', 01777, NULL, NULL, 0);
        tb_entry(&t, "open", '0', 0666, NULL, "x", 1);
        tb_pax(&t, "mtime", "1000000000.5");
        tb_entry(&t, "sym", '2', 0777, "ro/f", NULL, 0);
        tb_end(&t);
        CHECK_INT(copy_unpack(&t, NULL, &e), 0);
        if (e.message[0])
                fprintf(stderr, "unexpected: %s\n", e.message);
        check_mode("ro", 0555);
        check_mode("suid", 0755);
        bool root = geteuid() == 0; /* root keeps the modes as they are */
        check_mode("sgid", root ? 0775 : 0755);
        check_mode("tmp", root ? 01777 : 01755);
        check_mode("open", root ? 0666 : 0644);
        struct stat st;
        CHECK_INT(fstatat(rootfd, "ro", &st, 0), 0);
        CHECK_INT(st.st_mtim.tv_sec, 1234567890);
        CHECK_INT(st.st_mtim.tv_nsec, 123456789);
        CHECK_INT(fstatat(rootfd, "sym", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_INT(st.st_mtim.tv_sec, 1000000000);
        CHECK_INT(st.st_mtim.tv_nsec, 500000000);
        char *s = slurp("ro/f");
        CHECK_STR(s, "in a read-only dir");
        free(s);
        umask(old);
}

/* never a directory turned into a file or the reverse; a copy that stops
 * half way is an error */
static void test_copy_replace_and_truncation(void)
{
        fresh_root();
        CHECK_INT(mkdirat(rootfd, "d", 0755), 0);
        int fd = openat(rootfd, "d/precious", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        close(fd);
        fd = openat(rootfd, "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        close(fd);
        struct tb t = {0};
        tb_file(&t, "d", "a file over a directory");
        expect_copy_rejected("file over a directory", &t, EISDIR, "cannot overwrite a directory");
        tb_entry(&t, "f/", '5', 0755, NULL, NULL, 0);
        expect_copy_rejected("directory over a file", &t, ENOTDIR, NULL);
        tb_entry(&t, "d", '2', 0777, "x", NULL, 0);
        expect_copy_rejected("symlink over a directory", &t, EISDIR, NULL);
        struct stat st;
        CHECK_INT(fstatat(rootfd, "d/precious", &st, 0), 0);
        CHECK_INT(fstatat(rootfd, "f", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK(S_ISREG(st.st_mode));

        /* a file over a file and a directory into a directory are fine */
        tb_file(&t, "f", "new");
        tb_entry(&t, "d/", '5', 0700, NULL, NULL, 0);
        tb_file(&t, "d/more", "m");
        tb_end(&t);
        struct msb_error e;
        CHECK_INT(copy_unpack(&t, NULL, &e), 0);
        char *s = slurp("f");
        CHECK_STR(s, "new");
        free(s);
        CHECK_INT(fstatat(rootfd, "d/precious", &st, 0), 0);
        check_mode("d", 0700);

        /* no end-of-archive blocks: the sender did not finish */
        fresh_root();
        tb_file(&t, "a", "x");
        CHECK_INT(copy_unpack(&t, NULL, &e), -EIO);
        CHECK(strstr(e.message, "the copy is truncated") != NULL);
        tb_end(&t);
        CHECK_INT(copy_unpack(&t, NULL, &e), 0); /* the end alone: an empty copy, which is no error here */
        CHECK_INT(copy_unpack(&t, NULL, &e), -EIO); /* no bytes at all */
        CHECK(strstr(e.message, "the copy is empty") != NULL);
}

int main(void)
{
        base = mkdtemp(tmpl_base);
        if (!base)
                return 1;
        test_basic(false);
        test_basic(true);
        test_whiteouts();
        test_opaque_keeps_own_layer();
        test_long_names();
        test_replace();
        test_inside_symlink_dir();
        test_hostile();
        test_malformed();
        test_no_privilege_on_host();
        test_plain_mode();
        test_budget();
        test_deep_tree_removed();
        test_copy_escapes();
        test_copy_top();
        test_copy_names_and_kinds();
        test_copy_modes_times();
        test_copy_replace_and_truncation();
        close(rootfd);
        char *cmd = xasprintf("rm -rf %s", base);
        if (system(cmd) != 0)
                check_failures++;
        free(cmd);
        CHECK_DONE();
}
