/* SPDX-License-Identifier: Apache-2.0 */
/*
 * POSIX behaviour of a shared directory, checked from inside a guest:
 *
 *   fscheck DIR      run every check in DIR (which must be empty), print one
 *                    "ok NAME" or "FAIL NAME: why" line each and a summary;
 *                    exit 1 if any failed.
 *
 * Static, no dependencies: it runs in any image.  The host side of the
 * e2e suite (tests/e2e/test-fs.sh) then checks what landed on the host.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static int failed, passed;
static char cur[64];
static int cur_bad;

/* printf-like, so the compiler checks every EXPECT message and accepts the
 * vprintf below (clang's -Wformat-nonliteral under -Werror=format=2) */
__attribute__((format(printf, 1, 2))) static void bad(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        if (!cur_bad)
                printf("FAIL %s: ", cur);
        else
                printf("     %s: ", cur);
        vprintf(fmt, ap);
        printf("\n");
        va_end(ap);
        cur_bad = 1;
}
#define EXPECT(c)                                                                    \
        do {                                                                         \
                if (!(c))                                                            \
                        bad("line %d: %s (errno %s)", __LINE__, #c, strerror(errno)); \
        } while (0)
#define EXPECT_ERR(call, e)                                                                            \
        do {                                                                                           \
                errno = 0;                                                                             \
                long _r = (long)(call);                                                                \
                if (_r != -1 || errno != (e))                                                          \
                        bad("line %d: %s gave %ld/%s, want %s", __LINE__, #call, _r, strerror(errno), strerror(e)); \
        } while (0)

static void begin(const char *n)
{
        snprintf(cur, sizeof(cur), "%s", n);
        cur_bad = 0;
}
static void end(void)
{
        if (cur_bad)
                failed++;
        else {
                passed++;
                printf("ok   %s\n", cur);
        }
        fflush(stdout);
}

static int put(const char *p, const char *s)
{
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
                return -1;
        ssize_t n = write(fd, s, strlen(s));
        close(fd);
        return n == (ssize_t)strlen(s) ? 0 : -1;
}
static char *get(const char *p)
{
        static char buf[4096];
        int fd = open(p, O_RDONLY);
        if (fd < 0)
                return NULL;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n < 0)
                return NULL;
        buf[n] = 0;
        return buf;
}
static int is(const char *p, const char *want)
{
        const char *g = get(p);
        return g && !strcmp(g, want);
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: fscheck DIR\n");
                return 2;
        }
        if (chdir(argv[1]) < 0) {
                perror(argv[1]);
                return 2;
        }
        umask(022);
        struct stat st, st2;

        begin("create-write-read");
        EXPECT(put("a", "hello") == 0);
        EXPECT(is("a", "hello"));
        EXPECT_ERR(open("a", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
        int fd = open("a", O_WRONLY | O_APPEND);
        EXPECT(fd >= 0 && write(fd, " world", 6) == 6);
        close(fd);
        EXPECT(is("a", "hello world"));
        end();

        begin("rename-over");
        EXPECT(put("b", "new") == 0);
        EXPECT(rename("b", "a") == 0);
        EXPECT(is("a", "new"));
        EXPECT_ERR(stat("b", &st), ENOENT);
        EXPECT(put("c", "cee") == 0);
        EXPECT_ERR(renameat2(AT_FDCWD, "c", AT_FDCWD, "a", RENAME_NOREPLACE), EEXIST);
        EXPECT(renameat2(AT_FDCWD, "c", AT_FDCWD, "a", RENAME_EXCHANGE) == 0);
        EXPECT(is("a", "cee") && is("c", "new"));
        EXPECT(mkdir("d", 0755) == 0 && rename("c", "d/c") == 0 && is("d/c", "new"));
        end();

        begin("hard-links");
        EXPECT(link("a", "a2") == 0);
        EXPECT(stat("a", &st) == 0 && stat("a2", &st2) == 0);
        EXPECT(st.st_ino == st2.st_ino && st.st_nlink == 2);
        EXPECT(put("a2", "via-link") == 0 && is("a", "via-link"));
        EXPECT(unlink("a") == 0 && is("a2", "via-link"));
        EXPECT(stat("a2", &st) == 0 && st.st_nlink == 1);
        EXPECT(mkdir("ld", 0755) == 0);
        EXPECT_ERR(link("ld", "ld2"), EPERM);
        end();

        begin("symlinks");
        EXPECT(symlink("a2", "s") == 0);
        char lb[256] = {0};
        EXPECT(readlink("s", lb, sizeof(lb)) == 2 && !strcmp(lb, "a2"));
        EXPECT(lstat("s", &st) == 0 && S_ISLNK(st.st_mode));
        EXPECT(is("s", "via-link"));
        EXPECT(symlink("nowhere/at/all", "dangling") == 0);
        EXPECT_ERR(open("dangling", O_RDONLY), ENOENT);
        /* a symlink's own times (touch -h, cp -a, tar x), not its target's */
        struct timespec lts[2] = {{1000000, 0}, {2000000, 0}};
        EXPECT(utimensat(AT_FDCWD, "dangling", lts, AT_SYMLINK_NOFOLLOW) == 0);
        EXPECT(lstat("dangling", &st) == 0 && st.st_mtime == 2000000 && st.st_atime == 1000000);
        EXPECT(utimensat(AT_FDCWD, "s", lts, AT_SYMLINK_NOFOLLOW) == 0);
        EXPECT(stat("a2", &st) == 0 && st.st_mtime != 2000000);
        end();

        begin("unlink-while-open");
        EXPECT(put("u", "still here") == 0);
        fd = open("u", O_RDWR);
        EXPECT(fd >= 0 && unlink("u") == 0);
        char ub[32] = {0};
        EXPECT(pread(fd, ub, sizeof(ub) - 1, 0) == 10 && !strcmp(ub, "still here"));
        EXPECT(pwrite(fd, "X", 1, 0) == 1);
        EXPECT(fstat(fd, &st) == 0 && st.st_nlink == 0);
        close(fd);
        EXPECT_ERR(stat("u", &st), ENOENT);
        end();

        begin("sparse-files");
        fd = open("sparse", O_RDWR | O_CREAT, 0644);
        off_t far = 1LL << 30;
        EXPECT(fd >= 0 && pwrite(fd, "end", 3, far) == 3);
        EXPECT(fstat(fd, &st) == 0 && st.st_size == far + 3);
        EXPECT(st.st_blocks < 1024);
        EXPECT(lseek(fd, 0, SEEK_DATA) >= far - 4096 * 256);
        EXPECT(lseek(fd, 0, SEEK_HOLE) == 0);
        char zb[4] = {1, 1, 1, 1};
        EXPECT(pread(fd, zb, 4, 4096) == 4 && !zb[0] && !zb[3]);
        EXPECT(ftruncate(fd, 10) == 0 && fstat(fd, &st) == 0 && st.st_size == 10);
        EXPECT(fallocate(fd, 0, 0, 1 << 20) == 0 && fstat(fd, &st) == 0 && st.st_size == 1 << 20);
        close(fd);
        EXPECT(truncate("sparse", 0) == 0 && stat("sparse", &st) == 0 && st.st_size == 0);
        end();

        begin("xattrs");
        EXPECT(setxattr("a2", "user.color", "blue", 4, 0) == 0);
        char xb[4096] = {0};
        EXPECT(getxattr("a2", "user.color", xb, sizeof(xb)) == 4 && !memcmp(xb, "blue", 4));
        EXPECT_ERR(setxattr("a2", "user.color", "red", 3, XATTR_CREATE), EEXIST);
        ssize_t ln = listxattr("a2", xb, sizeof(xb));
        int seen = 0, hidden_leak = 0;
        for (ssize_t o = 0; ln > 0 && o < ln; o += (ssize_t)strlen(xb + o) + 1) {
                seen |= !strcmp(xb + o, "user.color");
                hidden_leak |= !strncmp(xb + o, "user.msb.", 9);
        }
        EXPECT(seen && !hidden_leak);
        EXPECT_ERR(setxattr("a2", "user.msb.stat", "1:0:0:4755:0", 12, 0), EPERM);
        EXPECT_ERR(getxattr("a2", "user.msb.stat", xb, sizeof(xb)), ENODATA);
        EXPECT(setxattr("a2", "trusted.guest", "t", 1, 0) == 0);
        EXPECT(getxattr("a2", "trusted.guest", xb, sizeof(xb)) == 1);
        EXPECT(removexattr("a2", "user.color") == 0);
        EXPECT_ERR(getxattr("a2", "user.color", xb, sizeof(xb)), ENODATA);
        end();

        begin("large-file");
        fd = open("big", O_RDWR | O_CREAT | O_TRUNC, 0644);
        static unsigned char blk[1 << 20];
        unsigned sum = 0, sum2 = 0;
        for (int i = 0; i < 64 && fd >= 0; i++) {
                for (size_t k = 0; k < sizeof(blk); k++)
                        blk[k] = (unsigned char)(k * 7 + (size_t)i);
                EXPECT(write(fd, blk, sizeof(blk)) == (ssize_t)sizeof(blk));
                for (size_t k = 0; k < sizeof(blk); k += 4096)
                        sum += blk[k];
        }
        EXPECT(fd >= 0 && fsync(fd) == 0 && lseek(fd, 0, SEEK_SET) == 0);
        for (int i = 0; i < 64; i++) {
                EXPECT(read(fd, blk, sizeof(blk)) == (ssize_t)sizeof(blk));
                for (size_t k = 0; k < sizeof(blk); k += 4096)
                        sum2 += blk[k];
        }
        EXPECT(sum == sum2);
        close(fd);
        EXPECT(unlink("big") == 0);
        end();

        begin("10k-directory");
        EXPECT(mkdir("many", 0755) == 0);
        char nb[64];
        for (int i = 0; i < 10000; i++) {
                snprintf(nb, sizeof(nb), "many/f%05d", i);
                fd = open(nb, O_WRONLY | O_CREAT, 0644);
                if (fd < 0) {
                        bad("create %s: %s", nb, strerror(errno));
                        break;
                }
                close(fd);
        }
        DIR *d = opendir("many");
        int count = 0;
        for (struct dirent *de; d && (de = readdir(d));)
                count += de->d_name[0] != '.';
        if (d)
                closedir(d);
        EXPECT(count == 10000);
        for (int i = 0; i < 10000; i++) {
                snprintf(nb, sizeof(nb), "many/f%05d", i);
                if (unlink(nb) < 0) {
                        bad("unlink %s: %s", nb, strerror(errno));
                        break;
                }
        }
        EXPECT(rmdir("many") == 0);
        end();

        begin("directories");
        EXPECT(mkdir("e", 0700) == 0 && put("e/x", "x") == 0);
        EXPECT_ERR(rmdir("e"), ENOTEMPTY);
        EXPECT_ERR(mkdir("e", 0700), EEXIST);
        EXPECT(unlink("e/x") == 0 && rmdir("e") == 0);
        EXPECT_ERR(rmdir("a2"), ENOTDIR);
        end();

        begin("times");
        struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1234567890}};
        EXPECT(utimensat(AT_FDCWD, "a2", ts, 0) == 0);
        EXPECT(stat("a2", &st) == 0 && st.st_mtim.tv_sec == 1234567890 && st.st_atim.tv_sec == 1000000000);
        end();

        begin("guest-ownership-and-modes");
        EXPECT(put("owned", "o") == 0);
        /* chown clears setuid (POSIX), so it goes first */
        EXPECT(chown("owned", 1234, 5678) == 0);
        EXPECT(chmod("owned", 04777) == 0);
        EXPECT(stat("owned", &st) == 0 && (st.st_mode & 07777) == 04777 && st.st_uid == 1234 && st.st_gid == 5678);
        EXPECT(mknod("chardev", S_IFCHR | 0666, makedev(1, 3)) == 0);
        EXPECT(stat("chardev", &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
        EXPECT(mkfifo("fifo", 0644) == 0 && stat("fifo", &st) == 0 && S_ISFIFO(st.st_mode));
        end();

        begin("privileges-dropped-on-write");
        /* what the guest's VFS does on tmpfs: any write or truncate drops
         * a file capability; one by a caller without CAP_FSETID also drops
         * setuid, and setgid when group-executable; chown drops setuid */
        {
                const uint32_t cap[5] = {0x02000001, 1u << 10, 0, 0, 0}; /* v2, effective, cap_net_bind_service */
                EXPECT(put("priv", "p") == 0);
                EXPECT(setxattr("priv", "security.capability", cap, sizeof(cap), 0) == 0);
                EXPECT(chmod("priv", 06755) == 0);
                int pfd = open("priv", O_WRONLY | O_APPEND);
                EXPECT(pfd >= 0 && write(pfd, "q", 1) == 1);
                close(pfd);
                EXPECT_ERR(getxattr("priv", "security.capability", NULL, 0), ENODATA);
                EXPECT(stat("priv", &st) == 0 && (st.st_mode & 07777) == 06755);
                EXPECT(chown("priv", 1000, 1000) == 0 && chmod("priv", 06755) == 0);
                EXPECT(put("sgid-only", "g") == 0 && chown("sgid-only", 1000, 1000) == 0);
                EXPECT(chmod("sgid-only", 02666) == 0);
                pid_t kid = fork();
                if (kid == 0) {
                        if (setgid(1000) < 0 || setuid(1000) < 0)
                                _exit(10);
                        int wfd = open("priv", O_WRONLY | O_APPEND);
                        if (wfd < 0 || write(wfd, "u", 1) != 1)
                                _exit(11);
                        close(wfd);
                        if (stat("priv", &st) < 0 || (st.st_mode & 07777) != 0755)
                                _exit(12);
                        if (chmod("priv", 04755) < 0 || truncate("priv", 0) < 0)
                                _exit(13);
                        if (stat("priv", &st) < 0 || (st.st_mode & 07777) != 0755)
                                _exit(14);
                        /* not group-executable: setgid stays */
                        if (put("sgid-only", "w") < 0 || stat("sgid-only", &st) < 0 || (st.st_mode & 07777) != 02666)
                                _exit(15);
                        _exit(0);
                }
                int kws = 0;
                EXPECT(kid > 0 && waitpid(kid, &kws, 0) == kid);
                if (!WIFEXITED(kws) || WEXITSTATUS(kws) != 0)
                        bad("non-root child failed at step %d", WIFEXITED(kws) ? WEXITSTATUS(kws) : -1);
                EXPECT(chmod("priv", 04755) == 0 && chown("priv", 0, 0) == 0);
                EXPECT(stat("priv", &st) == 0 && (st.st_mode & 07777) == 0755);
        }
        end();

        begin("setgid-directory");
        /* what is made in a setgid directory takes its group; a directory
         * also its setgid bit; whoever makes it */
        EXPECT(mkdir("sgd", 0755) == 0 && chown("sgd", 0, 1234) == 0 && chmod("sgd", 02777) == 0);
        EXPECT(put("sgd/f", "f") == 0 && stat("sgd/f", &st) == 0 && st.st_gid == 1234);
        EXPECT(mkdir("sgd/d", 0755) == 0 && stat("sgd/d", &st) == 0 && st.st_gid == 1234 &&
               (st.st_mode & 07777) == 02755);
        EXPECT(symlink("f", "sgd/l") == 0 && lstat("sgd/l", &st) == 0 && st.st_gid == 1234);
        EXPECT(mknod("sgd/n", S_IFIFO | 0644, 0) == 0 && stat("sgd/n", &st) == 0 && st.st_gid == 1234);
        {
                pid_t kid = fork();
                if (kid == 0) {
                        if (setgid(1000) < 0 || setuid(1000) < 0)
                                _exit(10);
                        if (put("sgd/mine", "m") < 0 || stat("sgd/mine", &st) < 0 || st.st_gid != 1234 ||
                            st.st_uid != 1000)
                                _exit(11);
                        _exit(0);
                }
                int kws = 0;
                EXPECT(kid > 0 && waitpid(kid, &kws, 0) == kid);
                if (!WIFEXITED(kws) || WEXITSTATUS(kws) != 0)
                        bad("non-root child failed at step %d", WIFEXITED(kws) ? WEXITSTATUS(kws) : -1);
        }
        end();

        begin("symlink-chown-ctime");
        /* a chown of a symlink itself moves its ctime, as for every file
         * and on tmpfs: by root, and by its owner to a group it is in
         * (where ownership is virtual the host link's owner never changes) */
        {
                struct stat l1, l2;
                EXPECT(symlink("x", "lc1") == 0 && symlink("x", "lc2") == 0 && lchown("lc2", 1000, 1234) == 0);
                EXPECT(lstat("lc1", &l1) == 0 && lstat("lc2", &l2) == 0);
                /* past any host timestamp granularity */
                nanosleep(&(struct timespec){.tv_sec = 1, .tv_nsec = 100000000}, NULL);
                EXPECT(lchown("lc1", 65534, 65533) == 0 && lstat("lc1", &st) == 0);
                EXPECT(st.st_uid == 65534 && st.st_gid == 65533 && st.st_ctime > l1.st_ctime);
                pid_t kid = fork();
                if (kid == 0) {
                        if (setgid(1000) < 0 || setuid(1000) < 0)
                                _exit(10);
                        if (lchown("lc2", (uid_t)-1, 1000) < 0 || lstat("lc2", &st) < 0 || st.st_gid != 1000)
                                _exit(11);
                        if (st.st_ctime <= l2.st_ctime)
                                _exit(12);
                        _exit(0);
                }
                int kws = 0;
                EXPECT(kid > 0 && waitpid(kid, &kws, 0) == kid);
                if (!WIFEXITED(kws) || WEXITSTATUS(kws) != 0)
                        bad("non-root child failed at step %d", WIFEXITED(kws) ? WEXITSTATUS(kws) : -1);
        }
        end();

        begin("no-posix-acls");
        /* the guest kernel does not apply ACLs on virtio-fs here, so
         * setting one is refused as where there are none: GNU cp -p/-a
         * then set the mode with chmod (they used to leave files 0600) */
        {
                const uint32_t acl[7] = {2, 0x00060001, 0xffffffff, 0x00040004, 0xffffffff, 0x00040020, 0xffffffff};
                EXPECT(put("acl", "a") == 0 && chmod("acl", 0600) == 0);
                EXPECT_ERR(setxattr("acl", "system.posix_acl_access", acl, sizeof(acl), 0), EOPNOTSUPP);
                EXPECT(chmod("acl", 0644) == 0 && stat("acl", &st) == 0 && (st.st_mode & 07777) == 0644);
        }
        end();

        begin("permissions-as-non-root");
        EXPECT(put("secret", "s") == 0 && chmod("secret", 0600) == 0);
        EXPECT(mkdir("rootdir", 0755) == 0);
        EXPECT(mkdir("open", 0777) == 0 && chmod("open", 0777) == 0);
        pid_t pid = fork();
        if (pid == 0) {
                if (setgid(1000) < 0 || setuid(1000) < 0)
                        _exit(10);
                if (open("secret", O_RDONLY) >= 0 || errno != EACCES)
                        _exit(11);
                if (open("rootdir/x", O_WRONLY | O_CREAT, 0644) >= 0 || errno != EACCES)
                        _exit(12);
                if (put("open/mine", "m") < 0)
                        _exit(13);
                struct stat s;
                if (stat("open/mine", &s) < 0 || s.st_uid != 1000 || s.st_gid != 1000)
                        _exit(14);
                if (chmod("secret", 0644) == 0 || errno != EPERM)
                        _exit(15);
                _exit(0);
        }
        int ws = 0;
        EXPECT(pid > 0 && waitpid(pid, &ws, 0) == pid);
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
                bad("non-root child failed at step %d", WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
        end();

        begin("escape-attempts");
        /* a symlink to / made in the guest resolves in the guest, never on
         * the host: what lands is in the guest's /tmp */
        EXPECT(symlink("/", "toroot") == 0);
        EXPECT(put("toroot/tmp/msb-escape-marker", "guest") == 0);
        EXPECT(stat("/tmp/msb-escape-marker", &st) == 0);
        EXPECT(symlink("../../../../../../", "up") == 0);
        /* .. at the share root is the guest's parent directory */
        EXPECT(stat("..", &st) == 0 && stat(argv[1], &st2) == 0);
        EXPECT(st.st_dev != st2.st_dev || st.st_ino != st2.st_ino);
        /* rename out of the share */
        EXPECT(put("leaving", "l") == 0);
        EXPECT_ERR(rename("leaving", "/tmp/leaving"), EXDEV);
        EXPECT_ERR(link("leaving", "/tmp/leaving2"), EXDEV);
        end();

        printf("%d passed, %d failed\n", passed, failed);
        return failed ? 1 : 0;
}
