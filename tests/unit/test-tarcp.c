/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agentd's msb cp routines (src/agent/tarcp.c), run here on the host in a
 * child with the archive as stdin: where cp-in lands a copy (docker cp's
 * rules), what it keeps (modes, times, owners with "a"), what it refuses
 * (a directory over a file, a parent that is not there, a symlink planted
 * at the destination), and that a failed copy leaves nothing behind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "agent/agent.h"
#include "check.h"
#include "common/tarw.h"
#include "common/util.h"

static char tmpl[] = "/tmp/msb-test-tarcp-XXXXXX";
static char *base;
static int basefd = -1;

static void put(const char *rel, const char *content, mode_t mode)
{
        int fd = openat(basefd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        CHECK(fd >= 0);
        CHECK_INT(write_all(fd, content, strlen(content)), 0);
        CHECK_INT(fchmod(fd, mode), 0);
        close(fd);
}

/* Run a routine with stdin from base/in.tar (if any), stdout to
 * base/out.tar, stderr to base/err: its exit status. */
static int run(char **argv)
{
        pid_t pid = fork();
        if (pid == 0) {
                int in = openat(basefd, "in.tar", O_RDONLY | O_CLOEXEC);
                int out = openat(basefd, "out.tar", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                int er = openat(basefd, "err", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (in < 0)
                        in = open("/dev/null", O_RDONLY | O_CLOEXEC);
                dup2(in, 0);
                dup2(out, 1);
                dup2(er, 2);
                _exit(tarcp_main((int)strv_len(argv), argv));
        }
        int st;
        waitpid(pid, &st, 0);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* base/in.tar: a tar of base/path with its top entry named name */
static void archive(const char *path, const char *name)
{
        int fd = openat(basefd, "in.tar", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        struct msb_error e = {0};
        CHECK_INT(tarw_tree(fd, basefd, path, name, NULL, &e), 0);
        close(fd);
}

static int cp_in(const char *dst_rel, const char *name, bool keep)
{
        _cleanup_free_ char *dst = xasprintf("%s/%s", base, dst_rel);
        char *argv[] = {"cp-in", dst, (char *)name, keep ? "a" : NULL, NULL};
        return run(argv);
}

static char *slurp(const char *rel)
{
        char *data = NULL;
        if (read_file_at(basefd, rel, 1 << 20, &data, NULL) < 0)
                return NULL;
        return data;
}

static void check_file(const char *rel, const char *want)
{
        char *s = slurp(rel);
        CHECK_STR(s, want);
        free(s);
}

static struct stat lst(const char *rel)
{
        struct stat st = {0};
        if (fstatat(basefd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
                st.st_mode = 0;
        return st;
}

/* nothing named .msb-cp-* left in base/rel */
static void check_no_temp(const char *rel)
{
        _cleanup_free_ char *cmd = xasprintf("test -z \"$(ls -A %s/%s | grep '^.msb-cp-')\"", base, rel);
        CHECK_INT(system(cmd), 0);
}

static void reset(const char *rel)
{
        rm_rf_at(basefd, rel);
}

static void make_src(void)
{
        CHECK_INT(mkdirat(basefd, "src", 0750), 0);
        put("src/f", "hello", 04755);
        CHECK_INT(mkdirat(basefd, "src/sub", 0700), 0);
        put("src/sub/g", "g", 0600);
        CHECK_INT(symlinkat("../../outside", basefd, "src/sub/up"), 0);
        CHECK_INT(linkat(basefd, "src/f", basefd, "src/sub/hard", 0), 0);
        struct timespec ts[2] = {{1111111111, 222}, {1111111111, 222}};
        CHECK_INT(utimensat(basefd, "src/sub", ts, 0), 0);
        CHECK_INT(utimensat(basefd, "src/f", ts, 0), 0);
        CHECK_INT(mkdirat(basefd, "outside", 0755), 0);
}

/* into an existing directory, as a new path, "." contents, file over file */
static void test_landing(void)
{
        archive("src", "src");
        CHECK_INT(mkdirat(basefd, "dst", 0755), 0);
        CHECK_INT(cp_in("dst", "src", false), 0);
        check_file("dst/src/sub/g", "g");
        CHECK_INT(lst("dst/src/f").st_mode & 07777, 04755);
        CHECK_INT(lst("dst/src/sub").st_mode & 07777, 0700);
        CHECK_INT(lst("dst/src/sub").st_mtim.tv_sec, 1111111111);
        CHECK_INT(lst("dst/src/sub").st_mtim.tv_nsec, 222);
        CHECK_INT(lst("dst/src/f").st_ino, lst("dst/src/sub/hard").st_ino);
        CHECK(S_ISLNK(lst("dst/src/sub/up").st_mode));
        CHECK_INT(cp_in("new", "src", false), 0);
        check_file("new/f", "hello");
        CHECK_INT(lst("new").st_mode & 07777, 0750);
        check_no_temp("");
        archive("src", ".");
        CHECK_INT(cp_in("dst", ".", false), 0);
        check_file("dst/f", "hello");
        CHECK_INT(cp_in("new2/", ".", false), 0);
        CHECK_INT(lst("new2").st_mode & 07777, 0750);
        check_file("new2/sub/g", "g");
        archive("src/sub/g", "g");
        put("file", "old", 0644);
        CHECK_INT(cp_in("file", "g", false), 0);
        check_file("file", "g");
        check_no_temp("");
        reset("dst");
        reset("new");
        reset("new2");
}

/* what is refused, and leaves everything as it was */
static void test_refused(void)
{
        put("file", "keep", 0644);
        archive("src", "src");
        CHECK_INT(cp_in("file", "src", false), 1);
        check_file("file", "keep");
        CHECK_INT(cp_in("nodir/x", "src", false), 2);
        CHECK_INT(lst("nodir").st_mode, 0);
        archive("src/f", "f");
        CHECK_INT(cp_in("notyet/", "f", false), 2);
        CHECK_INT(lst("notyet").st_mode, 0);
        check_no_temp("");
        /* a symlink planted where the copy goes is not followed */
        CHECK_INT(mkdirat(basefd, "dst", 0755), 0);
        _cleanup_free_ char *out = xasprintf("%s/outside", base);
        CHECK_INT(symlinkat(out, basefd, "dst/src"), 0);
        archive("src", "src");
        CHECK_INT(cp_in("dst", "src", false), 1);
        CHECK_INT(lst("outside/f").st_mode, 0);
        char *err = slurp("err");
        CHECK(err && strstr(err, "cannot overwrite a non-directory with a directory"));
        free(err);
        /* a truncated archive is an error */
        reset("dst");
        CHECK_INT(mkdirat(basefd, "dst", 0755), 0);
        archive("src", "src");
        _cleanup_free_ char *tar = xasprintf("%s/in.tar", base);
        CHECK_INT(truncate(tar, 1024), 0);
        CHECK_INT(cp_in("dst", "src", false), 1);
        reset("dst");
}

/* owners: root's by default, the archive's with "a" (as root only) */
static void test_owners(void)
{
        if (geteuid() != 0) {
                fprintf(stderr, "not root: owners not checked\n");
                return;
        }
        CHECK_INT(fchownat(basefd, "src/sub/g", 1234, 5678, 0), 0);
        archive("src", "src");
        CHECK_INT(cp_in("o1", "src", false), 0);
        CHECK_INT(lst("o1/sub/g").st_uid, 0);
        CHECK_INT(cp_in("o2", "src", true), 0);
        CHECK_INT(lst("o2/sub/g").st_uid, 1234);
        CHECK_INT(lst("o2/sub/g").st_gid, 5678);
        CHECK_INT(lst("o2/f").st_mode & 07777, 04755); /* chown did not clear it */
}

static void test_out(void)
{
        _cleanup_free_ char *missing = xasprintf("%s/nope", base), *src = xasprintf("%s/src", base);
        char *argv[] = {"cp-out", missing, "x", NULL};
        CHECK_INT(run(argv), 2);
        char *err = slurp("err");
        CHECK(err && strstr(err, "nope: No such file or directory"));
        free(err);
        CHECK_INT(mkfifoat(basefd, "src/fifo", 0600), 0);
        char *argv2[] = {"cp-out", src, "x", NULL};
        CHECK_INT(run(argv2), 0);
        err = slurp("err");
        CHECK_STR(err, "skipped=1\n");
        free(err);
        CHECK(lst("out.tar").st_size > 2048);
        char *argv3[] = {"cp-nothing", NULL};
        CHECK_INT(run(argv3), 127);
}

/* a tar from stdin (msb cp - NAME:DIR) made by GNU tar, long names and all */
static void test_gnu_tar_in(void)
{
        if (system("tar --version >/dev/null 2>&1") != 0) {
                fprintf(stderr, "no tar here: skipping the GNU tar check\n");
                return;
        }
        char longn[201];
        memset(longn, 'L', 200);
        longn[200] = '\0';
        _cleanup_free_ char *rel = xasprintf("src/sub/%s", longn);
        put(rel, "long", 0644);
        _cleanup_free_ char *cmd = xasprintf("tar --format=gnu -cf %s/in.tar -C %s/src .", base, base);
        CHECK_INT(system(cmd), 0);
        CHECK_INT(cp_in("gnu", ".", false), 0);
        _cleanup_free_ char *back = xasprintf("gnu/sub/%s", longn);
        check_file(back, "long");
        check_file("gnu/sub/g", "g");
        CHECK_INT(lst("gnu/f").st_ino, lst("gnu/sub/hard").st_ino);
        unlinkat(basefd, rel, 0);
}

int main(void)
{
        base = mkdtemp(tmpl);
        if (!base)
                return 1;
        basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        make_src();
        test_landing();
        test_refused();
        test_owners();
        test_gnu_tar_in();
        test_out();
        close(basefd);
        _cleanup_free_ char *cmd = xasprintf("rm -rf %s", base);
        if (system(cmd) != 0)
                check_failures++;
        CHECK_DONE();
}
