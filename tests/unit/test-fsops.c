/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agentd's file routines (src/agent/fsops.c), run here on the host in a
 * child, their records decoded by the host's decoder (proto/filerec.c):
 * stat, list by depth with its cut, mkdir, remove, rename, read ranges,
 * write (its mode, parents, and an interrupted write that leaves the old
 * file), watch, and the "ERRNO text" line of each error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "agent/agent.h"
#include "check.h"
#include "common/util.h"
#include "proto/filerec.h"

static char tmpl[] = "/tmp/msb-test-fsops-XXXXXX";
static char *base;
static int basefd = -1;
static char out[1 << 20], err[4096];
static size_t outlen;

static char *P(const char *rel)
{
        static char bufs[8][4200];
        static int i;
        char *b = bufs[i++ % 8];
        snprintf(b, sizeof(bufs[0]), "%s/%s", base, rel);
        return b;
}

static void put(const char *rel, const char *content, mode_t mode)
{
        int fd = openat(basefd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        CHECK(fd >= 0);
        CHECK_INT(write_all(fd, content, strlen(content)), 0);
        CHECK_INT(fchmod(fd, mode), 0);
        close(fd);
}

static struct stat lst(const char *rel)
{
        struct stat st = {0};
        if (fstatat(basefd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
                st.st_mode = 0;
        return st;
}

/* The routine as uid (or as we are: -1), stdin from in (or /dev/null): its
 * exit status; stdout in out, stderr in err. */
static int run_as(int uid, const char *in, char **argv)
{
        int o[2], e[2];
        CHECK_INT(pipe(o), 0);
        CHECK_INT(pipe(e), 0);
        pid_t pid = fork();
        if (pid == 0) {
                int i = in ? open(in, O_RDONLY | O_CLOEXEC) : open("/dev/null", O_RDONLY | O_CLOEXEC);
                dup2(i, 0);
                dup2(o[1], 1);
                dup2(e[1], 2);
                if (uid >= 0 && (setgid((gid_t)uid) < 0 || setuid((uid_t)uid) < 0))
                        _exit(99);
                _exit(fsops_main((int)strv_len(argv), argv));
        }
        close(o[1]);
        close(e[1]);
        ssize_t n = read_all(o[0], out, sizeof(out));
        outlen = n > 0 ? (size_t)n : 0;
        n = read_all(e[0], err, sizeof(err) - 1);
        err[n > 0 ? n : 0] = '\0';
        close(o[0]);
        close(e[0]);
        int st;
        waitpid(pid, &st, 0);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int run(char **argv)
{
        return run_as(-1, NULL, argv);
}

/* The errno of the routine's error line (0 if none). */
static int err_errno(void)
{
        return atoi(err);
}

/* The records of out, decoded: how many (recs[] filled, at most max). */
static size_t records(struct filerec *recs, size_t max, size_t *ret_rest)
{
        size_t n = 0, off = 0;
        long k;
        while (n < max && (k = filerec_decode((uint8_t *)out + off, outlen - off, &recs[n])) > 0) {
                off += (size_t)k;
                n++;
        }
        if (ret_rest)
                *ret_rest = off;
        return n;
}

static void test_stat(void)
{
        put("f", "hello", 0640);
        CHECK_INT(symlinkat("f", basefd, "l"), 0);
        char *a1[] = {"fs-stat", P("f"), NULL};
        CHECK_INT(run(a1), 0);
        struct filerec r[4];
        CHECK_INT(records(r, 4, NULL), 1);
        CHECK_STR(r[0].type, "file");
        CHECK_INT(r[0].size, 5);
        CHECK_INT(r[0].mode, S_IFREG | 0640);
        CHECK_STR(r[0].path, P("f"));
        char *a2[] = {"fs-stat", P("l"), NULL};
        CHECK_INT(run(a2), 0);
        CHECK_INT(records(r, 4, NULL), 1);
        CHECK_STR(r[0].type, "symlink");
        CHECK_STR(r[0].link, "f");
        char *a3[] = {"fs-stat", P("nope"), NULL};
        CHECK_INT(run(a3), 1);
        CHECK_INT(err_errno(), ENOENT);
        CHECK(strstr(err, P("nope")) != NULL);
        CHECK_INT(outlen, 0);
        char *a4[] = {"fs-stat", "relative", NULL};
        CHECK_INT(run(a4), 1);
        CHECK_INT(err_errno(), EINVAL);
        char *a5[] = {"fs-nothing", "/", NULL};
        CHECK_INT(run(a5), 1);
        CHECK_INT(err_errno(), ENOSYS);
}

static bool has_path(struct filerec *r, size_t n, const char *rel)
{
        for (size_t i = 0; i < n; i++)
                if (r[i].path && !strcmp(r[i].path, P(rel)))
                        return true;
        return false;
}

static void test_list(void)
{
        CHECK_INT(mkdirat(basefd, "t", 0755), 0);
        CHECK_INT(mkdirat(basefd, "t/sub", 0755), 0);
        CHECK_INT(mkdirat(basefd, "t/sub/deeper", 0755), 0);
        put("t/a", "a", 0644);
        put("t/sub/b", "b", 0644);
        put("t/sub/deeper/c", "c", 0644);
        CHECK_INT(symlinkat("sub", basefd, "t/link"), 0);
        struct filerec r[16];
        char *a1[] = {"fs-list", P("t"), "1", "100", NULL};
        CHECK_INT(run(a1), 0);
        CHECK_INT(records(r, 16, NULL), 3);
        CHECK(has_path(r, 3, "t/a") && has_path(r, 3, "t/sub") && has_path(r, 3, "t/link"));
        char *a2[] = {"fs-list", P("t"), "2", "100", NULL};
        CHECK_INT(run(a2), 0);
        size_t n = records(r, 16, NULL);
        CHECK_INT(n, 5);
        CHECK(has_path(r, n, "t/sub/b") && has_path(r, n, "t/sub/deeper"));
        CHECK(!has_path(r, n, "t/link/b")); /* never through a symlink */
        char *a3[] = {"fs-list", P("t"), "64", "100", NULL};
        CHECK_INT(run(a3), 0);
        CHECK_INT(records(r, 16, NULL), 6);
        char *a4[] = {"fs-list", P("t"), "2", "2", NULL};
        CHECK_INT(run(a4), 0);
        CHECK_INT(records(r, 16, NULL), 3);
        CHECK_INT(r[2].kind, FILEREC_CUT);
        /* exactly max: no cut */
        char *a5[] = {"fs-list", P("t"), "1", "3", NULL};
        CHECK_INT(run(a5), 0);
        CHECK_INT(records(r, 16, NULL), 3);
        CHECK_INT(r[2].kind, FILEREC_INFO);
        char *a6[] = {"fs-list", P("t/a"), "1", "3", NULL};
        CHECK_INT(run(a6), 1);
        CHECK_INT(err_errno(), ENOTDIR);
        char *a7[] = {"fs-list", P("t"), "65", "3", NULL};
        CHECK_INT(run(a7), 1);
        CHECK_INT(err_errno(), EINVAL);
        /* a symlink to a directory is followed at the top */
        char *a8[] = {"fs-list", P("t/link"), "1", "10", NULL};
        CHECK_INT(run(a8), 0);
        CHECK_INT(records(r, 16, NULL), 2);
        CHECK(has_path(r, 2, "t/link/b"));
}

static void test_mkdir_remove_rename(void)
{
        char *a1[] = {"fs-mkdir", P("m/a/b"), "700", "p", NULL};
        CHECK_INT(run(a1), 0);
        CHECK_INT(lst("m/a/b").st_mode, S_IFDIR | 0700);
        CHECK_INT(lst("m/a").st_mode, S_IFDIR | 0755);
        CHECK_INT(run(a1), 0); /* there already: fine with p */
        char *a2[] = {"fs-mkdir", P("m/a/b"), "700", NULL};
        CHECK_INT(run(a2), 1);
        CHECK_INT(err_errno(), EEXIST);
        char *a3[] = {"fs-mkdir", P("m/x/y"), "755", NULL};
        CHECK_INT(run(a3), 1);
        CHECK_INT(err_errno(), ENOENT);
        put("m/file", "", 0644);
        char *a4[] = {"fs-mkdir", P("m/file/y"), "755", "p", NULL};
        CHECK_INT(run(a4), 1);
        CHECK_INT(err_errno(), ENOTDIR);
        char *a5[] = {"fs-mkdir", P("m/bad"), "9", NULL};
        CHECK_INT(run(a5), 1);
        CHECK_INT(err_errno(), EINVAL);

        char *r1[] = {"fs-remove", P("m/a"), NULL};
        CHECK_INT(run(r1), 1);
        CHECK_INT(err_errno(), ENOTEMPTY);
        CHECK_INT(symlinkat("file", basefd, "m/a/b/ln"), 0);
        char *r2[] = {"fs-remove", P("m/a"), "r", NULL};
        CHECK_INT(run(r2), 0);
        CHECK_INT(lst("m/a").st_mode, 0);
        CHECK(S_ISREG(lst("m/file").st_mode)); /* a symlink's target stays */
        CHECK_INT(run(r2), 1);
        CHECK_INT(err_errno(), ENOENT);
        char *r3[] = {"fs-remove", "//", "r", NULL};
        CHECK_INT(run(r3), 1);
        CHECK_INT(err_errno(), EINVAL);

        char *n1[] = {"fs-rename", P("m/file"), P("m/moved"), NULL};
        CHECK_INT(run(n1), 0);
        CHECK(S_ISREG(lst("m/moved").st_mode));
        CHECK_INT(run(n1), 1);
        CHECK_INT(err_errno(), ENOENT);
        char *n2[] = {"fs-rename", P("m/moved"), "m/rel", NULL};
        CHECK_INT(run(n2), 1);
        CHECK_INT(err_errno(), EINVAL);
}

static void test_read(void)
{
        put("r", "0123456789", 0644);
        struct filerec rec;
        char *a1[] = {"fs-read", P("r"), "2", "5", NULL};
        CHECK_INT(run(a1), 0);
        long k = filerec_decode((uint8_t *)out, outlen, &rec);
        CHECK(k > 0);
        CHECK_INT(rec.kind, FILEREC_SIZE);
        CHECK_INT(rec.size, 10);
        CHECK_INT(outlen - (size_t)k, 5);
        CHECK(!memcmp(out + k, "23456", 5));
        char *a2[] = {"fs-read", P("r"), "8", "18446744073709551615", NULL};
        CHECK_INT(run(a2), 0);
        k = filerec_decode((uint8_t *)out, outlen, &rec);
        CHECK_INT(outlen - (size_t)k, 2);
        char *a3[] = {"fs-read", P("r"), "11", "5", NULL};
        CHECK_INT(run(a3), 0);
        k = filerec_decode((uint8_t *)out, outlen, &rec);
        CHECK_INT(outlen - (size_t)k, 0);
        char *a4[] = {"fs-read", base, "0", "5", NULL};
        CHECK_INT(run(a4), 1);
        CHECK_INT(err_errno(), EISDIR);
        CHECK_INT(mkfifoat(basefd, "fifo", 0644), 0);
        char *a5[] = {"fs-read", P("fifo"), "0", "5", NULL};
        CHECK_INT(run(a5), 1);
        CHECK_INT(err_errno(), EINVAL);
}

static void check_no_temp(const char *rel)
{
        _cleanup_free_ char *cmd = xasprintf("test -z \"$(ls -A %s/%s | grep '^.msb-write-')\"", base, rel);
        CHECK_INT(system(cmd), 0);
}

static void test_write(void)
{
        put("in", "new contents", 0644);
        put("w", "old", 0644);
        char *a1[] = {"fs-write", P("w"), "640", NULL};
        CHECK_INT(run_as(-1, P("in"), a1), 0);
        char *s = NULL;
        CHECK_INT(read_file_at(basefd, "w", 100, &s, NULL), 0);
        CHECK_STR(s, "new contents");
        free(s);
        CHECK_INT(lst("w").st_mode, S_IFREG | 0640);
        char *a2[] = {"fs-write", P("wp/a/b"), "4755", "p", NULL};
        CHECK_INT(run_as(-1, P("in"), a2), 0);
        CHECK_INT(lst("wp/a/b").st_mode, S_IFREG | 04755);
        CHECK_INT(lst("wp/a").st_mode, S_IFDIR | 0755);
        char *a3[] = {"fs-write", P("nodir/x"), "644", NULL};
        CHECK_INT(run_as(-1, P("in"), a3), 1);
        CHECK_INT(err_errno(), ENOENT);
        char *a4[] = {"fs-write", P("wp"), "644", NULL};
        CHECK_INT(run_as(-1, P("in"), a4), 1);
        CHECK_INT(err_errno(), EISDIR);
        char *a5[] = {"fs-write", P("wp/"), "644", NULL};
        CHECK_INT(run_as(-1, P("in"), a5), 1);
        CHECK_INT(err_errno(), EINVAL);
        check_no_temp("");
        check_no_temp("wp/a");

        /* stopped before its stdin ended: the old file stays, no temporary */
        int in[2];
        CHECK_INT(pipe(in), 0);
        pid_t pid = fork();
        if (pid == 0) {
                dup2(in[0], 0);
                close(in[1]);
                int devnull = open("/dev/null", O_WRONLY);
                dup2(devnull, 2);
                char *a6[] = {"fs-write", P("w"), "600", NULL};
                _exit(fsops_main(3, a6));
        }
        close(in[0]);
        CHECK_INT(write_all(in[1], "partial", 7), 0);
        usleep(100000); /* it has read it */
        kill(pid, SIGTERM);
        int st;
        waitpid(pid, &st, 0);
        close(in[1]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        CHECK_INT(read_file_at(basefd, "w", 100, &s, NULL), 0);
        CHECK_STR(s, "new contents");
        free(s);
        check_no_temp("");
}

/* The next record a watch wrote to fd (buf keeps what came after it). */
static bool next_event(int fd, char *buf, size_t *len, struct filerec *rec, char *path)
{
        for (;;) {
                long k = filerec_decode((uint8_t *)buf, *len, rec);
                if (k > 0) {
                        snprintf(path, 4200, "%s", rec->path);
                        rec->path = path;
                        memmove(buf, buf + k, *len - (size_t)k);
                        *len -= (size_t)k;
                        return true;
                }
                struct pollfd pf = {.fd = fd, .events = POLLIN};
                ssize_t n;
                if (k < 0 || poll(&pf, 1, 5000) <= 0 || (n = read(fd, buf + *len, 65536 - *len)) <= 0)
                        return false;
                *len += (size_t)n;
        }
}

static void test_watch(void)
{
        CHECK_INT(mkdirat(basefd, "wt", 0755), 0);
        CHECK_INT(mkdirat(basefd, "wt/old", 0755), 0);
        int o[2];
        CHECK_INT(pipe(o), 0);
        pid_t pid = fork();
        if (pid == 0) {
                dup2(o[1], 1);
                close(o[0]);
                int devnull = open("/dev/null", O_WRONLY);
                dup2(devnull, 2);
                char *a[] = {"fs-watch", P("wt"), "r", NULL};
                _exit(fsops_main(3, a));
        }
        close(o[1]);
        static char buf[65536];
        size_t len = 0;
        struct filerec rec;
        char path[4200];
        CHECK(next_event(o[0], buf, &len, &rec, path));
        CHECK_STR(rec.op, "ready");
        put("wt/f", "x", 0644);
        CHECK(next_event(o[0], buf, &len, &rec, path));
        CHECK_STR(rec.op, "create");
        CHECK_STR(rec.type, "file");
        CHECK_STR(rec.path, P("wt/f"));
        /* the write and chmod of put() */
        bool wrote = false;
        while (next_event(o[0], buf, &len, &rec, path) && strcmp(rec.op, "chmod"))
                wrote = wrote || !strcmp(rec.op, "write");
        CHECK(wrote);
        /* a directory that existed, and a new one, are watched too */
        put("wt/old/g", "", 0644);
        CHECK(next_event(o[0], buf, &len, &rec, path));
        CHECK_STR(rec.path, P("wt/old/g"));
        while (next_event(o[0], buf, &len, &rec, path) && strcmp(rec.op, "chmod")) {
        }
        CHECK_INT(mkdirat(basefd, "wt/new", 0755), 0);
        CHECK(next_event(o[0], buf, &len, &rec, path));
        CHECK_STR(rec.op, "create");
        CHECK_STR(rec.type, "dir");
        CHECK_INT(symlinkat("x", basefd, "wt/new/ln"), 0);
        CHECK(next_event(o[0], buf, &len, &rec, path));
        CHECK_STR(rec.path, P("wt/new/ln"));
        CHECK_STR(rec.type, "symlink");
        CHECK_INT(renameat(basefd, "wt/new", basefd, "wt/renamed"), 0);
        CHECK(next_event(o[0], buf, &len, &rec, path));
        CHECK_STR(rec.op, "rename");
        CHECK_STR(rec.path, P("wt/new"));
        CHECK(next_event(o[0], buf, &len, &rec, path));
        CHECK_STR(rec.op, "create");
        CHECK_STR(rec.path, P("wt/renamed"));
        /* the moved directory is watched under its new name */
        CHECK_INT(unlinkat(basefd, "wt/renamed/ln", 0), 0);
        CHECK(next_event(o[0], buf, &len, &rec, path));
        CHECK_STR(rec.op, "remove");
        CHECK_STR(rec.path, P("wt/renamed/ln"));
        /* the top going ends the watch with ENOENT */
        rm_rf_at(basefd, "wt");
        while (next_event(o[0], buf, &len, &rec, path)) {
        }
        int st;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        close(o[0]);
}

/* As another user: the guest's permissions, and their errno. */
static void test_as_nobody(void)
{
        if (geteuid() != 0) {
                fprintf(stderr, "not root: permissions not checked\n");
                return;
        }
        CHECK_INT(chmod(base, 0755), 0);
        CHECK_INT(mkdirat(basefd, "priv", 0700), 0);
        put("priv/secret", "s", 0600);
        put("open", "o", 0600);
        char *a1[] = {"fs-stat", P("priv/secret"), NULL};
        CHECK_INT(run_as(65534, NULL, a1), 1);
        CHECK_INT(err_errno(), EACCES);
        char *a2[] = {"fs-read", P("open"), "0", "1", NULL};
        CHECK_INT(run_as(65534, NULL, a2), 1);
        CHECK_INT(err_errno(), EACCES);
        CHECK_INT(run_as(-1, NULL, a2), 0);
}

int main(void)
{
        base = mkdtemp(tmpl);
        if (!base)
                return 1;
        basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        test_stat();
        test_list();
        test_mkdir_remove_rename();
        test_read();
        test_write();
        test_watch();
        test_as_nobody();
        rm_rf(base);
        CHECK_DONE();
}
