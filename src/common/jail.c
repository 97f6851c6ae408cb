/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The confinement of msb-fsd and msb-netd (see jail.h and docs/fsd.md
 * "Confinement"), in this order:
 *   1. unprivileged: a user namespace mapping only our own uid and gid, so
 *      the rest needs no root;
 *   2. a pid namespace, entered by forking: mounting a procfs needs
 *      CAP_SYS_ADMIN over the pid namespace it shows, and one that shows
 *      only ourselves has no /proc/PID/root of another process to walk out
 *      through.  The parent only waits;
 *   3. mount, network and IPC namespaces; pivot_root into an empty tmpfs
 *      holding that procfs and the shares' bind mounts, the old root
 *      detached;
 *   4. capabilities cut, no_new_privs, the seccomp allow-list.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/jail.h"
#include "common/util.h"

static const int allowed[] = {
        SYS_read, SYS_write, SYS_close, SYS_fstat, SYS_newfstatat, SYS_statx, SYS_lseek, SYS_mmap, SYS_munmap,
        SYS_mremap, SYS_mprotect, SYS_madvise, SYS_brk, SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn,
        SYS_pread64, SYS_pwrite64, SYS_readv, SYS_writev, SYS_preadv, SYS_pwritev, SYS_open, SYS_openat,
        SYS_openat2, SYS_mkdirat, SYS_mknodat, SYS_unlinkat, SYS_renameat, SYS_renameat2, SYS_linkat, SYS_symlinkat,
        SYS_readlinkat, SYS_fchownat, SYS_fchmodat, SYS_chmod, SYS_utimensat, SYS_getxattr, SYS_lgetxattr,
        SYS_setxattr, SYS_listxattr, SYS_removexattr, SYS_fstatfs, SYS_ftruncate, SYS_fsync, SYS_fdatasync, SYS_syncfs,
        SYS_fallocate, SYS_getdents64, SYS_fcntl, SYS_dup, SYS_dup3, SYS_epoll_wait, SYS_epoll_pwait,
        SYS_epoll_ctl, SYS_accept4, SYS_recvmsg, SYS_recvfrom, SYS_sendto, SYS_sendmsg, SYS_exit,
        SYS_exit_group, SYS_getpid, SYS_gettid, SYS_geteuid, SYS_getuid, SYS_getegid, SYS_getgid, SYS_futex,
        SYS_clock_gettime, SYS_restart_syscall, SYS_tgkill, SYS_getrandom, SYS_copy_file_range,
        /* not serving's own: sanitizer runtimes set up an alternate signal
         * stack, so an ASan build of msb-fsd (and test-fsd) can run
         * confined; it only names memory of ours */
        SYS_sigaltstack,
};

/* msb-netd's: it only moves bytes between the sockets it was given */
static const int net_allowed[] = {
        SYS_read, SYS_write, SYS_close, SYS_recvfrom, SYS_poll, SYS_ppoll, SYS_mmap, SYS_munmap, SYS_mremap,
        SYS_madvise, SYS_brk, SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_exit, SYS_exit_group,
        SYS_clock_gettime, SYS_getrandom, SYS_futex, SYS_fstat, SYS_newfstatat, SYS_getpid, SYS_gettid,
        SYS_restart_syscall, SYS_sigaltstack,
        /* its log, restarted when full (netd/main.c); it has no other file */
        SYS_ftruncate,
};

/* Kill on anything not in the list.  With sendto_no_addr, sendto() is
 * allowed only without a destination address (args[4] NULL): a connected
 * socket's peer, never another. */
/* jail_seccomp_log(): a call outside the list is logged, not fatal */
static bool seccomp_log;

void jail_seccomp_log(bool on)
{
        seccomp_log = on;
}

static int install_filter(const int *list, size_t nlist, bool sendto_no_addr)
{
        struct sock_filter f[4 + 5 + 128 + 2];
        if (nlist > 128)
                return -E2BIG;
        size_t n = 0;
        f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
        if (sendto_no_addr) {
                /* the five instructions below; then nlist compares, KILL, ALLOW */
                size_t kill = n + 5 + nlist, allow = kill + 1;
                f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sendto, 0, 4);
                n++;
                f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[4]));
                f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, (uint8_t)(kill - n - 1));
                n++;
                f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                                      offsetof(struct seccomp_data, args[4]) + 4);
                f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, (uint8_t)(allow - n - 1),
                                                    (uint8_t)(kill - n - 1));
                n++;
        }
        for (size_t i = 0; i < nlist; i++) {
                /* on a match jump to the ALLOW at the end */
                unsigned to_allow = (unsigned)(nlist - i);
                f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)list[i], (uint8_t)to_allow, 0);
        }
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, seccomp_log ? SECCOMP_RET_LOG : SECCOMP_RET_KILL_PROCESS);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
                return -errno;
        return 0;
}

static int install_seccomp(void)
{
        return install_filter(allowed, ARRAY_SIZE(allowed), false);
}

/* Root only: keep the file capabilities serving needs, drop the rest. */
static int drop_caps_to(uint64_t keep)
{
        for (int c = 0; c <= CAP_LAST_CAP; c++)
                if (!(keep & (1ULL << c)))
                        prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct d[2] = {
                {.effective = (uint32_t)keep, .permitted = (uint32_t)keep},
                {.effective = (uint32_t)(keep >> 32), .permitted = (uint32_t)(keep >> 32)},
        };
        return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

static int drop_caps(bool passthrough)
{
        uint64_t keep = (1ULL << CAP_CHOWN) | (1ULL << CAP_DAC_OVERRIDE) | (1ULL << CAP_DAC_READ_SEARCH) |
                        (1ULL << CAP_FOWNER) | (1ULL << CAP_FSETID);
        if (passthrough)
                keep |= 1ULL << CAP_MKNOD;
        return drop_caps_to(keep);
}

static int write_proc(const char *path, const char *s)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = write(fd, s, strlen(s));
        int e = errno;
        close(fd);
        return n == (ssize_t)strlen(s) ? 0 : -e;
}

/* Unprivileged: a user namespace mapping only our own uid and gid, so the
 * rest can be done without root.  Files keep being created as our uid. */
static int enter_userns(void)
{
        uid_t uid = geteuid();
        gid_t gid = getegid();
        if (unshare(CLONE_NEWUSER) < 0)
                return -errno;
        char map[64];
        int r = write_proc("/proc/self/setgroups", "deny");
        snprintf(map, sizeof(map), "%u %u 1", (unsigned)uid, (unsigned)uid);
        if (r == 0)
                r = write_proc("/proc/self/uid_map", map);
        snprintf(map, sizeof(map), "%u %u 1", (unsigned)gid, (unsigned)gid);
        if (r == 0)
                r = write_proc("/proc/self/gid_map", map);
        return r;
}

/* Where the new root is put together before pivot_root: any directory will
 * do, even one that is shared: the tmpfs mounted on it is in our mount
 * namespace alone, and the shares are copied before it (clone_tree). */
#define NEWROOT "/tmp"

/* mount_setattr(2)'s argument, declared here for C libraries older than
 * glibc 2.36 */
struct msb_mount_attr {
        uint64_t attr_set, attr_clr, propagation, userns_fd;
};
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x1
#define MOUNT_ATTR_NOSUID 0x2
#define MOUNT_ATTR_NODEV 0x4
#define MOUNT_ATTR_NOEXEC 0x8
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif

/*
 * The directory fd refers to, reached in our new mount namespace.  fd was
 * opened before it existed, so it sits on one of the host's mounts, which
 * cannot be bind-mounted from here (EINVAL); its path leads to our copy of
 * that mount, and must lead to the very same directory, or the share is
 * refused.
 */
static int reopen_here(int fd)
{
        char link[64], path[PATH_MAX];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, path, sizeof(path) - 1);
        if (n <= 0 || (size_t)n >= sizeof(path) - 1)
                return n < 0 ? -errno : -ENAMETOOLONG;
        path[n] = 0;
        if (path[0] != '/')
                return -ENOENT; /* not reachable by path */
        int nfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (nfd < 0)
                return -errno;
        struct stat a, b;
        if (fstat(nfd, &a) < 0 || fstat(fd, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
                close(nfd);
                return -ESTALE; /* moved or covered since it was opened */
        }
        return nfd;
}

/*
 * A detached copy of the mount tree at the directory here refers to
 * (open_tree, 5.2+), taken before anything of ours is mounted, so no share,
 * not even the host's "/" or the very directory the new root is built on,
 * can contain the new root.  flat: a single-file share's directory (which
 * may be the host's "/"): its own file system only, none of the mounts
 * below it (/proc, /sys, /dev, ...), which the server has no use for.
 */
static int clone_tree(int here, unsigned flags)
{
        unsigned f = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | ((flags & JAIL_DIR_FLAT) ? 0 : AT_RECURSIVE);
        int fd = (int)syscall(SYS_open_tree, here, "", f);
        return fd < 0 ? -errno : fd;
}

/* Attach the tree clone_tree made at target.  nodev: the kernel refuses to
 * open a device node in a share even if the server tried; nosuid, noexec:
 * nothing is run from it; read-only shares read-only on the mount too. */
static int attach_dir(int tree, int fd, const char *target, unsigned flags)
{
        bool ro = flags & JAIL_DIR_RO;
        if (syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return -errno;
        struct msb_mount_attr a = {
                .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | (ro ? MOUNT_ATTR_RDONLY : 0),
        };
        /* mounts below the share too (5.12+) */
        if (syscall(SYS_mount_setattr, AT_FDCWD, target, AT_RECURSIVE, &a, sizeof(a)) == 0)
                return 0;
        if (errno != ENOSYS)
                return -errno;
        /* older kernels: the share's own mount, restating the flags a user
         * namespace may not drop (read-only, atime) */
        struct statvfs sv;
        if (fstatvfs(fd, &sv) < 0)
                return -errno;
        unsigned long fl = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC;
        if (ro || (sv.f_flag & ST_RDONLY))
                fl |= MS_RDONLY;
        fl |= (sv.f_flag & ST_NOATIME) ? MS_NOATIME : (sv.f_flag & ST_RELATIME) ? MS_RELATIME : MS_STRICTATIME;
        if (sv.f_flag & ST_NODIRATIME)
                fl |= MS_NODIRATIME;
        return mount(NULL, target, NULL, fl, NULL) < 0 ? -errno : 0;
}

/*
 * Nothing of the host's tree stays reachable: an empty tmpfs becomes the
 * root (pivot_root, the old one detached, as bubblewrap does), holding a
 * procfs of our own pid namespace and each directory of dirs bind-mounted
 * as /0, /1, ...; dirs[k] is then replaced by the same directory reached
 * through /k.  Runs in the child, the pid namespace's first process.
 */
static int empty_root(const int *dirs, const unsigned *flags, size_t n, struct msb_error *err)
{
#define FAIL(what) return msb_err_errno(err, errno, "%s", what)
        if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC) < 0)
                FAIL("cannot set up an empty mount namespace");
        /* nothing we mount may propagate to the host */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                FAIL("cannot make the mount namespace private");
        /* every share's tree first: the tmpfs is in none of them */
        int tree[JAIL_MAX_DIRS];
        int r = 0;
        size_t ntree = 0;
        const char *what = "cannot reach a share in the new mount namespace";
        for (; ntree < n && r == 0; ntree++) {
                int here = r = reopen_here(dirs[ntree]);
                if (here >= 0) {
                        r = clone_tree(here, flags[ntree]);
                        close(here);
                        what = "cannot copy a share's mounts";
                }
                tree[ntree] = r;
                r = r < 0 ? r : 0;
        }
        if (r == 0 && mount("msb-fsd", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755") < 0) {
                r = -errno;
                what = "cannot mount the new root's tmpfs on " NEWROOT;
        }
        char p[64];
        for (size_t k = 0; k < n && r == 0; k++) {
                snprintf(p, sizeof(p), NEWROOT "/%zu", k);
                if (mkdir(p, 0755) < 0)
                        r = -errno;
                else
                        r = attach_dir(tree[k], dirs[k], p, flags[k]);
                what = "cannot mount a share in the new root";
        }
        for (size_t k = 0; k < ntree; k++)
                if (tree[k] >= 0)
                        close(tree[k]);
        if (r < 0) {
                errno = -r;
                FAIL(what);
        }
        /*
         * A procfs of our own: msb-fsd reopens O_PATH fds and reaches their
         * xattrs through /proc/self/fd/N.  Only our pid namespace's
         * processes (just us) are in it, so no /proc/PID/root leads out;
         * read-only, so no /proc/sys setting can be written; and with
         * subset=pid (5.8+) there is nothing but the pid directories.
         */
        if (mkdir(NEWROOT "/proc", 0555) < 0)
                FAIL("cannot make /proc in the new root");
        unsigned long pf = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY;
        if (mount("proc", NEWROOT "/proc", "proc", pf, "subset=pid") < 0 &&
            (errno != EINVAL || mount("proc", NEWROOT "/proc", "proc", pf, NULL) < 0))
                FAIL("cannot mount a procfs in the new root");
        if (mount(NULL, NEWROOT, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                FAIL("cannot make the new root read-only");
        /* the old root goes on top of the new one, and is then detached */
        if (chdir(NEWROOT) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 ||
            chdir("/") < 0)
                FAIL("cannot pivot into the new root");
        for (size_t k = 0; k < n; k++) {
                snprintf(p, sizeof(p), "/%zu", k);
                int fd = open(p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        FAIL("cannot reopen a share inside the new root");
                /* the very directory the server opened, now on the bind mount */
                struct stat a, b;
                bool same = fstat(fd, &a) == 0 && fstat(dirs[k], &b) == 0 && a.st_dev == b.st_dev &&
                            a.st_ino == b.st_ino;
                r = same && dup3(fd, dirs[k], O_CLOEXEC) >= 0 ? 0 : same ? -errno : -EXDEV;
                close(fd);
                if (r < 0) {
                        errno = -r;
                        FAIL("cannot reopen a share inside the new root");
                }
        }
        if (chdir("/proc/self/fd") < 0)
                FAIL("cannot enter /proc/self/fd in the new root");
        return 0;
#undef FAIL
}

/*
 * The process msb started stays outside and waits: it holds nothing (every
 * fd but the pipe the child watches is closed) and leaves the way the
 * server did, so msb, which watches this pid, sees the server's exit.  The
 * server dies with it (PDEATHSIG), and it dies with msb.
 */
static _Noreturn void wait_and_leave(pid_t child, int keep)
{
        if (keep > 3)
                syscall(SYS_close_range, 3, keep - 1, 0);
        syscall(SYS_close_range, keep + 1, ~0U, 0);
        int st;
        while (waitpid(child, &st, 0) < 0)
                if (errno != EINTR)
                        _exit(1);
        if (WIFEXITED(st))
                _exit(WEXITSTATUS(st));
        int sig = WTERMSIG(st);
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* its own death needs no core file */
        signal(sig, SIG_DFL);
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, sig);
        sigprocmask(SIG_UNBLOCK, &s, NULL);
        raise(sig);
        _exit(128 + sig);
}

/* Unshare the pid namespace and fork: the child, its first process, returns 0. */
static int enter_pidns(struct msb_error *err)
{
        int alive[2];
        if (unshare(CLONE_NEWPID) < 0 || pipe2(alive, O_CLOEXEC) < 0)
                return msb_err_errno(err, errno, "cannot set up a pid namespace");
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
                int r = msb_err_errno(err, errno, "cannot fork into the pid namespace");
                close(alive[0]);
                close(alive[1]);
                return r;
        }
        if (pid > 0) {
                close(alive[0]);
                wait_and_leave(pid, alive[1]);
        }
        /* die with the parent, and check it did not go before that took
         * effect (getppid() is 0 in here): its end of the pipe closes */
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        close(alive[1]);
        struct pollfd pf = {.fd = alive[0], .events = POLLIN};
        if (poll(&pf, 1, 0) != 0)
                _exit(1);
        close(alive[0]);
        return 0;
}

/* Into the pid namespace, then the empty root around dirs. */
static int enter_empty_root(const int *dirs, const unsigned *flags, size_t ndirs, struct msb_error *err)
{
        int r = enter_pidns(err);
        return r < 0 ? r : empty_root(dirs, flags, ndirs, err);
}

int jail_enter_fsd(const int *dirs, const unsigned *flags, size_t ndirs, bool passthrough, struct msb_error *err)
{
        if (ndirs > JAIL_MAX_DIRS)
                return msb_err(err, E2BIG, "%zu share directories: at most %d", ndirs, JAIL_MAX_DIRS);
        int r;
        if (geteuid() == 0) {
                if ((r = enter_empty_root(dirs, flags, ndirs, err)) < 0)
                        return r;
                if ((r = drop_caps(passthrough)) < 0)
                        return msb_err_errno(err, r, "cannot drop capabilities");
        } else if (enter_userns() == 0) {
                /* where unprivileged user namespaces are allowed; elsewhere
                 * the seccomp filter below is what confines us */
                if ((r = enter_empty_root(dirs, flags, ndirs, err)) < 0)
                        return r;
                drop_caps(false);
        }
        if ((r = install_seccomp()) < 0)
                return msb_err_errno(err, r, "cannot install the seccomp filter");
        return 0;
}

int jail_enter_netd(struct msb_error *err)
{
        int r;
        if ((geteuid() == 0 || enter_userns() == 0) && (r = enter_empty_root(NULL, NULL, 0, err)) < 0)
                return r;
        if ((r = drop_caps_to(0)) < 0 && geteuid() == 0)
                return msb_err_errno(err, r, "cannot drop capabilities");
        if ((r = install_filter(net_allowed, ARRAY_SIZE(net_allowed), true)) < 0)
                return msb_err_errno(err, r, "cannot install the seccomp filter");
        return 0;
}
